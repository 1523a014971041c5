//! Sinch Conversation API v1 adapter (WhatsApp channel).
//!
//! - Webhook POSTs carry `x-sinch-webhook-signature` = base64(HMAC-SHA256(secret,
//!   raw_body ‖ "." ‖ nonce ‖ "." ‖ timestamp)) plus the nonce and timestamp headers
//!   ([`verify_signature`]). The headers only exist when the webhook has a `secret`, so an
//!   account without one cannot be authenticated at all: configure a secret.
//! - Webhook bodies carry one event each; we read `MESSAGE_INBOUND` (`message`) and
//!   `MESSAGE_DELIVERY` (`message_delivery_report`) and ignore every other trigger
//!   ([`parse_webhook`]).
//! - Inbound `media_message` and `media_card_message` become [`InboundBody::Media`] with a
//!   [`MediaSource::Url`]; [`SinchClient::fetch_media`] downloads it.
//! - Sending is `POST {api_base}/v1/projects/{project_id}/messages:send` with an OAuth2
//!   client-credentials Bearer token, cached per key id by [`SinchClient`]:
//!   [`SinchClient::send`] carries text (`text_message`), media (`media_message`, or a
//!   `card_message` when an image or video has a caption) and WhatsApp templates
//!   (`template_message.channel_template.WHATSAPP`).
//!
//! Mapping choices:
//! - `InboundMessage::to_phone_number_id` is the envelope `app_id`: Sinch addresses the
//!   business by Conversation app, never by phone number or Meta phone_number_id, so the
//!   app id is the only business identifier the payload carries.
//! - `InboundBody::Unsupported::kind` is the Sinch `contact_message` variant key
//!   (`location_message`, `choice_response_message` …).
//! - The callbacks carry no MIME type, so an inbound media item's kind comes from its URL's
//!   file extension.
//!
//! Reference: the Sinch section of the provider notes; fixtures under `tests/fixtures/sinch_*`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::Sha256;

use super::http::{classify_transport_error, download, parse_retry_after, truncate};
use super::{
    DeliveryStatus, FetchError, FetchedMedia, InboundBody, InboundMedia, InboundMessage, MediaKind,
    MediaSource, OutboundContent, OutboundMedia, OutboundTemplate, ProviderError, SendOutcome, StatusUpdate,
    WebhookBatch, WebhookError,
};

type HmacSha256 = Hmac<Sha256>;

/// Header names (HTTP header names are case-insensitive; Sinch sends them lowercase).
pub const SIGNATURE_HEADER: &str = "x-sinch-webhook-signature";
pub const NONCE_HEADER: &str = "x-sinch-webhook-signature-nonce";
pub const TIMESTAMP_HEADER: &str = "x-sinch-webhook-signature-timestamp";
/// Currently always `HmacSHA256`; informational only.
pub const ALGORITHM_HEADER: &str = "x-sinch-webhook-signature-algorithm";

/// How long before its expiry a cached OAuth token is replaced, so a token never expires
/// between being read from the cache and reaching Sinch.
pub const DEFAULT_TOKEN_REFRESH_MARGIN: Duration = Duration::from_secs(60);

/// Sinch reason codes (`reason.code` in delivery callbacks, sinch-sdk-python
/// `reason_code_type.py`) that mean something the contact center reacts to: the 24-hour
/// window is closed (offer a template), the template or media was refused (fix it), the
/// recipient cannot be reached. When one appears in a synchronous error we surface it as
/// the error code instead of the generic gRPC status. `UNKNOWN` is left out: the status
/// says as much. Whether Sinch ever puts these in a synchronous error (rather than only in
/// a later `FAILED` callback) is UNCONFIRMED, so they are looked for anywhere in the error.
const REASON_CODES: [&str; 26] = [
    "OUTSIDE_ALLOWED_SENDING_WINDOW",
    "RECIPIENT_NOT_OPTED_IN",
    "RECIPIENT_INVALID_CHANNEL_IDENTITY",
    "RECIPIENT_NOT_REACHABLE",
    "DELIVERY_REJECTED_DUE_TO_POLICY",
    "RATE_LIMITED",
    "INTERNAL_ERROR",
    "CHANNEL_FAILURE",
    "CHANNEL_BAD_CONFIGURATION",
    "CHANNEL_CONFIGURATION_MISSING",
    "MEDIA_TYPE_UNSUPPORTED",
    "MEDIA_TOO_LARGE",
    "MEDIA_NOT_REACHABLE",
    "NO_CHANNELS_LEFT",
    "TEMPLATE_NOT_FOUND",
    "TEMPLATE_INSUFFICIENT_PARAMETERS",
    "TEMPLATE_NON_EXISTING_LANGUAGE_OR_VERSION",
    "DELIVERY_TIMED_OUT",
    "CONTACT_NOT_FOUND",
    "BAD_REQUEST",
    "UNKNOWN_APP",
    "NO_CHANNEL_IDENTITY_FOR_CONTACT",
    "CHANNEL_REJECT",
    "NO_PERMISSION",
    "NO_PROFILE_AVAILABLE",
    "UNSUPPORTED_OPERATION",
];

/// The reason codes that say "later may work" whatever the HTTP status: rate limiting.
/// Everything else in [`REASON_CODES`] is a verdict on this message (window closed, no
/// such template, media too large …), so retrying the same request cannot help.
/// `INTERNAL_ERROR` and `DELIVERY_TIMED_OUT` are not retried on their own: a retry may
/// deliver twice, and a Sinch-side failure already comes with a 5xx, which is retried.
const RETRYABLE_REASON_CODES: [&str; 1] = ["RATE_LIMITED"];

fn hmac_sha256(key: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length (long keys are hashed first), so this cannot fail.
    <HmacSha256 as KeyInit>::new_from_slice(key).expect("HMAC accepts keys of any length")
}

// ---------------------------------------------------------------------------------------
// Webhook signature

/// Why a Sinch webhook signature was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SinchSignatureError {
    /// One of the signature, nonce or timestamp headers is absent or empty.
    #[error("missing Sinch signature, nonce or timestamp header")]
    Missing,
    /// The signature does not match (or the secret / timestamp is unusable).
    #[error("Sinch signature does not match")]
    Bad,
    /// Authentic, but the timestamp is too far from now: a replay or a badly skewed clock.
    #[error("Sinch signature timestamp is outside the allowed skew")]
    Stale,
}

impl From<SinchSignatureError> for WebhookError {
    /// Stale requests are refused like forged ones; the distinction only matters for logs.
    fn from(e: SinchSignatureError) -> Self {
        match e {
            SinchSignatureError::Missing => WebhookError::MissingSignature,
            SinchSignatureError::Bad | SinchSignatureError::Stale => WebhookError::BadSignature,
        }
    }
}

fn signature_mac(secret: &[u8], raw_body: &[u8], nonce: &str, timestamp: &str) -> HmacSha256 {
    let mut mac = hmac_sha256(secret);
    mac.update(raw_body);
    mac.update(b".");
    mac.update(nonce.as_bytes());
    mac.update(b".");
    mac.update(timestamp.as_bytes());
    mac
}

/// The `x-sinch-webhook-signature` value (padded standard base64) for a body, nonce and
/// timestamp. Used by tests and the load generator to produce requests Sinch would send.
pub fn sign(secret: &[u8], raw_body: &[u8], nonce: &str, timestamp: &str) -> String {
    BASE64.encode(signature_mac(secret, raw_body, nonce, timestamp).finalize().into_bytes())
}

/// Checks a Sinch webhook signature against the raw request body.
///
/// - `raw_body` must be the bytes exactly as received (the SDKs re-serialise parsed JSON,
///   which only works by luck).
/// - The MAC is checked first, in constant time (`Mac::verify_slice`); only an authentic
///   request can be reported [`SinchSignatureError::Stale`], so that error is a reliable
///   sign of clock skew or a replay rather than noise from forgeries.
/// - Stale means `|now - timestamp| > max_skew`; the timestamp is Unix seconds.
/// - An empty `secret` never verifies, since anyone could sign with it.
/// - Nonce reuse is not checked here (it needs shared state): callers that want replay
///   protection inside the skew window must remember nonces for `2 * max_skew`.
pub fn verify_signature(
    secret: &[u8],
    raw_body: &[u8],
    nonce: Option<&str>,
    timestamp: Option<&str>,
    signature: Option<&str>,
    now: DateTime<Utc>,
    max_skew: Duration,
) -> Result<(), SinchSignatureError> {
    fn present(v: Option<&str>) -> Option<&str> {
        v.filter(|s| !s.trim().is_empty())
    }
    let (Some(nonce), Some(timestamp), Some(signature)) =
        (present(nonce), present(timestamp), present(signature))
    else {
        return Err(SinchSignatureError::Missing);
    };
    if secret.is_empty() {
        return Err(SinchSignatureError::Bad);
    }
    let expected = BASE64.decode(signature.trim()).map_err(|_| SinchSignatureError::Bad)?;
    signature_mac(secret, raw_body, nonce, timestamp)
        .verify_slice(&expected)
        .map_err(|_| SinchSignatureError::Bad)?;
    // Authentic from here on. A timestamp we cannot read cannot be checked for freshness.
    let signed_at = timestamp
        .trim()
        .parse::<i64>()
        .ok()
        .and_then(|s| DateTime::from_timestamp(s, 0))
        .ok_or(SinchSignatureError::Bad)?;
    let skew = (now - signed_at).abs();
    // A max_skew too large for chrono means "no limit".
    match chrono::Duration::from_std(max_skew) {
        Ok(max) if skew > max => Err(SinchSignatureError::Stale),
        _ => Ok(()),
    }
}

// ---------------------------------------------------------------------------------------
// Webhook parsing

/// The callback envelope. Every trigger shares it; the payload key names the trigger.
/// Payloads are read as untyped values so that an odd field degrades one message instead
/// of failing the delivery, which Sinch would then retry for almost a day.
#[derive(Deserialize)]
struct Envelope {
    app_id: Option<Value>,
    accepted_time: Option<Value>,
    event_time: Option<Value>,
    message: Option<Value>,
    message_delivery_report: Option<Value>,
}

/// Parses a Sinch callback body into normalized messages and statuses.
///
/// Call [`verify_signature`] on the same bytes first.
/// - `MESSAGE_INBOUND` (`message`, direction `TO_APP`, WhatsApp channel) becomes one
///   [`InboundMessage`]. Messages from other channels of a multi-channel app are skipped:
///   a reply would go out on WhatsApp.
/// - `MESSAGE_DELIVERY` (`message_delivery_report`) becomes one [`StatusUpdate`] for
///   `DELIVERED`, `READ` and `FAILED`. `QUEUED_ON_CHANNEL` is skipped (the send response
///   already told us the message was accepted, and it says nothing about the handset),
///   as are `SWITCHING_CHANNEL` and values Sinch adds later.
/// - Other triggers (contact, conversation, event notifications …) give an empty batch.
///
/// A body that is not a JSON object, or a message/report without its id, sender or a
/// usable timestamp, is [`WebhookError::Malformed`]. Never panics, whatever the input.
pub fn parse_webhook(raw_body: &[u8]) -> Result<WebhookBatch, WebhookError> {
    let envelope: Envelope = serde_json::from_slice(raw_body).map_err(|e| malformed_json("body", &e))?;
    let mut batch = WebhookBatch::default();
    if let Some(message) = envelope.message.as_ref().filter(|m| !m.is_null())
        && let Some(msg) = normalize_message(message, &envelope)?
    {
        batch.messages.push(msg);
    }
    if let Some(report) = envelope.message_delivery_report.as_ref().filter(|r| !r.is_null())
        && let Some(status) = normalize_report(report, &envelope)?
    {
        batch.statuses.push(status);
    }
    Ok(batch)
}

fn str_at<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str).filter(|s| !s.trim().is_empty())
}

fn normalize_message(message: &Value, envelope: &Envelope) -> Result<Option<InboundMessage>, WebhookError> {
    if !message.is_object() {
        return Err(WebhookError::Malformed("`message` is not an object".into()));
    }
    // MESSAGE_INBOUND only carries TO_APP; anything else is an echo of our own message.
    if str_at(message, "direction").is_some_and(|d| d != "TO_APP") {
        tracing::debug!("ignoring Sinch message that is not TO_APP");
        return Ok(None);
    }
    let identity = message.get("channel_identity");
    if let Some(channel) = identity.and_then(|i| str_at(i, "channel"))
        && channel != "WHATSAPP"
    {
        tracing::debug!(channel = %truncate(channel), "ignoring Sinch message from a non-WhatsApp channel");
        return Ok(None);
    }
    let id = str_at(message, "id").ok_or_else(|| WebhookError::Malformed("message without `id`".into()))?;
    let from = identity
        .and_then(|i| str_at(i, "identity"))
        .and_then(to_e164)
        .ok_or_else(|| WebhookError::Malformed("message without `channel_identity.identity`".into()))?;
    // The envelope app_id is the app the webhook belongs to; channel_identity.app_id is
    // usually "" for inbound but is the same app when set.
    let app_id = envelope
        .app_id
        .as_ref()
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
        .or_else(|| identity.and_then(|i| str_at(i, "app_id")))
        .ok_or_else(|| WebhookError::Malformed("message without `app_id`".into()))?;
    // accept_time: when Sinch accepted the message from WhatsApp. event_time (the
    // envelope's) is the fallback, then the envelope accepted_time.
    let timestamp =
        [message.get("accept_time"), envelope.event_time.as_ref(), envelope.accepted_time.as_ref()]
            .into_iter()
            .flatten()
            .find_map(parse_time)
            .ok_or_else(|| WebhookError::Malformed("message without a usable `accept_time`".into()))?;
    let body = match message.get("contact_message") {
        Some(Value::Object(cm)) => inbound_body(cm),
        _ => InboundBody::Unsupported { kind: "unknown".into(), summary: "[unknown]".into() },
    };
    Ok(Some(InboundMessage {
        provider_message_id: id.to_owned(),
        from,
        to_phone_number_id: app_id.to_owned(),
        // Sinch callbacks carry no WhatsApp profile name (only a contact_id).
        profile_name: None,
        timestamp,
        body,
    }))
}

/// `contact_message` holds exactly one variant key plus an optional `reply_to`.
fn inbound_body(cm: &Map<String, Value>) -> InboundBody {
    let Some((kind, payload)) = cm.iter().find(|(k, _)| k.as_str() != "reply_to") else {
        return InboundBody::Unsupported { kind: "unknown".into(), summary: "[unknown]".into() };
    };
    if kind == "text_message"
        && let Some(text) = payload.get("text").and_then(Value::as_str)
    {
        return InboundBody::Text(text.to_owned());
    }
    if matches!(kind.as_str(), "media_message" | "media_card_message")
        && let Some(media) = inbound_media(payload)
    {
        return InboundBody::Media(media);
    }
    let summary = match kind.as_str() {
        "location_message" => {
            let coord = |k: &str| payload.get("coordinates").and_then(|c| c.get(k)).and_then(Value::as_f64);
            match (coord("latitude"), coord("longitude")) {
                (Some(lat), Some(lon)) => Some(format!("[location] {lat},{lon}")),
                _ => None,
            }
        }
        // WhatsApp button and list replies arrive here; Sinch gives the postback data of
        // the chosen option, not its title.
        "choice_response_message" => str_at(payload, "postback_data").map(str::to_owned),
        // Media without a URL has nothing to fetch; its caption is all the agent can see.
        "media_card_message" => str_at(payload, "caption").map(str::to_owned),
        _ => None,
    };
    InboundBody::Unsupported { kind: kind.clone(), summary: summary.unwrap_or_else(|| format!("[{kind}]")) }
}

/// `media_message{url, thumbnail_url?, filename_override?}` or `media_card_message{url,
/// caption}`; `None` without a URL.
///
/// The callback has no MIME type (UNCONFIRMED whether newer payloads add one, so a
/// `mime_type` or `media_type` field is read when present); otherwise the kind comes from
/// the URL's extension, and the download's `Content-Type` is what the media fetcher
/// stores. A document's file name is `filename_override`, else the URL's last segment.
fn inbound_media(payload: &Value) -> Option<InboundMedia> {
    let url = str_at(payload, "url")?.trim();
    let declared = ["mime_type", "media_type"].iter().find_map(|k| str_at(payload, k)).map(str::trim);
    let content_type = declared.filter(|t| t.contains('/'));
    let kind = match (content_type, declared.and_then(|t| MediaKind::parse(&t.to_ascii_lowercase()))) {
        (Some(ct), _) => MediaKind::from_content_type(ct),
        (None, Some(kind)) => kind,
        (None, None) => media_kind_from_url(url),
    };
    let filename = str_at(payload, "filename_override")
        .map(str::to_owned)
        .or_else(|| (kind == MediaKind::Document).then(|| last_path_segment(url)).flatten());
    Some(InboundMedia {
        kind,
        source: MediaSource::Url(url.to_owned()),
        content_type: content_type.map(str::to_owned),
        caption: str_at(payload, "caption").map(str::to_owned),
        filename,
    })
}

/// The file extension of the URL's path (query and fragment ignored), lower-cased.
fn url_extension(url: &str) -> Option<String> {
    let segment = last_raw_segment(url)?;
    let (_, ext) = segment.rsplit_once('.')?;
    Some(ext.to_ascii_lowercase())
}

/// The kind WhatsApp would file the URL's extension under. `webp` is an image (a sticker
/// only when the sender says so, which Sinch does not pass on); unknown types are
/// documents, as WhatsApp sends them.
fn media_kind_from_url(url: &str) -> MediaKind {
    match url_extension(url).as_deref() {
        Some("jpg" | "jpeg" | "png" | "webp") => MediaKind::Image,
        Some("mp4" | "3gp") => MediaKind::Video,
        Some("ogg" | "opus" | "mp3" | "amr" | "aac" | "m4a") => MediaKind::Audio,
        _ => MediaKind::Document,
    }
}

/// The last non-empty path segment, still percent-encoded; `None` for a bare host.
fn last_raw_segment(url: &str) -> Option<&str> {
    let before_query = url.split(['?', '#']).next().unwrap_or_default();
    let path = match before_query.split_once("://") {
        Some((_, rest)) => rest.split_once('/').map(|(_, path)| path)?,
        None => before_query,
    };
    path.rsplit('/').find(|s| !s.is_empty())
}

/// The URL's last path segment, percent-decoded, as a file name.
fn last_path_segment(url: &str) -> Option<String> {
    let raw = last_raw_segment(url)?;
    let name = percent_decode(raw);
    // A decoded '/' or '\\' would make the name a path.
    let name = name.replace(['/', '\\'], "_");
    (!name.trim().is_empty()).then_some(name)
}

/// `%XX` to bytes (invalid escapes kept as they are); non-UTF-8 results are decoded lossily.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(hi), Some(lo)) =
                (bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex))
        {
            // Two hex digits are at most 0xFF.
            out.push(u8::try_from(hi * 16 + lo).unwrap_or(b'?'));
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn normalize_report(report: &Value, envelope: &Envelope) -> Result<Option<StatusUpdate>, WebhookError> {
    if !report.is_object() {
        return Err(WebhookError::Malformed("`message_delivery_report` is not an object".into()));
    }
    let status = match str_at(report, "status") {
        Some("DELIVERED") => DeliveryStatus::Delivered,
        Some("READ") => DeliveryStatus::Read,
        Some("FAILED") => DeliveryStatus::Failed,
        Some(other) => {
            tracing::debug!(status = %truncate(other), "ignoring Sinch delivery status we do not track");
            return Ok(None);
        }
        None => return Err(WebhookError::Malformed("delivery report without `status`".into())),
    };
    let id = str_at(report, "message_id")
        .ok_or_else(|| WebhookError::Malformed("delivery report without `message_id`".into()))?;
    // event_time is when the channel reported the status; accepted_time when Sinch took it.
    let timestamp = [envelope.event_time.as_ref(), envelope.accepted_time.as_ref()]
        .into_iter()
        .flatten()
        .find_map(parse_time)
        .ok_or_else(|| WebhookError::Malformed("delivery report without a usable `event_time`".into()))?;
    let recipient = report
        .get("channel_identity")
        .and_then(|i| str_at(i, "identity"))
        .and_then(to_e164)
        .unwrap_or_default();
    let error = report.get("reason").filter(|r| r.is_object()).map(|r| {
        let code = str_at(r, "code").unwrap_or("UNKNOWN");
        let detail = [("sub_code", "sub_code"), ("channel_code", "WhatsApp code")]
            .iter()
            .filter_map(|(key, label)| {
                let v = r.get(*key)?;
                let text = v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string());
                (!text.is_empty() && text != "null" && text != "UNSPECIFIED_SUB_CODE")
                    .then(|| format!("{label} {}", truncate(&text)))
            })
            .collect::<Vec<_>>();
        ProviderError {
            code: code.to_owned(),
            title: str_at(r, "description").map(truncate).unwrap_or_else(|| code.to_owned()),
            detail: (!detail.is_empty()).then(|| detail.join(", ")),
        }
    });
    Ok(Some(StatusUpdate { provider_message_id: id.to_owned(), status, timestamp, recipient, error }))
}

/// Sinch times are RFC 3339 strings with a fractional part ("2026-01-05T10:00:01.100Z").
fn parse_time(v: &Value) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(v.as_str()?.trim()).ok().map(|t| t.with_timezone(&Utc))
}

/// Sinch identities are digits without '+'; the domain wants E.164 with '+'.
fn to_e164(number: &str) -> Option<String> {
    let digits = number.trim().trim_start_matches('+');
    (!digits.is_empty()).then(|| format!("+{digits}"))
}

/// A short reason that does not quote the payload: serde's messages can echo values,
/// which may be customer data.
fn malformed_json(what: &str, e: &serde_json::Error) -> WebhookError {
    use serde_json::error::Category;
    let reason = match e.classify() {
        Category::Eof => format!("{what}: truncated JSON"),
        Category::Syntax | Category::Io => {
            format!("{what}: not JSON at line {} column {}", e.line(), e.column())
        }
        Category::Data => format!("{what}: not a JSON object of the expected shape"),
    };
    WebhookError::Malformed(reason)
}

// ---------------------------------------------------------------------------------------
// Outbound client

#[derive(Serialize)]
struct SendRequest<'a> {
    app_id: &'a str,
    recipient: Recipient,
    message: OutMessage<'a>,
    channel_priority_order: [&'static str; 1],
}

#[derive(Serialize)]
struct Recipient {
    identified_by: IdentifiedBy,
}

#[derive(Serialize)]
struct IdentifiedBy {
    channel_identities: [ChannelIdentity; 1],
}

#[derive(Serialize)]
struct ChannelIdentity {
    channel: &'static str,
    identity: String,
}

/// The `message` of a send request: exactly one variant key (`text_message` …).
#[derive(Serialize)]
enum OutMessage<'a> {
    #[serde(rename = "text_message")]
    Text { text: &'a str },
    #[serde(rename = "media_message")]
    Media(OutMedia<'a>),
    /// Media with a caption (see [`outbound_media_message`]).
    #[serde(rename = "card_message")]
    Card { title: &'a str, media_message: OutMedia<'a> },
    #[serde(rename = "template_message")]
    Template { channel_template: ChannelTemplate<'a> },
}

#[derive(Serialize)]
struct OutMedia<'a> {
    url: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    filename_override: Option<&'a str>,
}

/// `channel_template.WHATSAPP`: a Meta-approved template referenced by name.
#[derive(Serialize)]
struct ChannelTemplate<'a> {
    #[serde(rename = "WHATSAPP")]
    whatsapp: WhatsAppTemplate<'a>,
}

#[derive(Serialize)]
struct WhatsAppTemplate<'a> {
    template_id: &'a str,
    language_code: &'a str,
    /// `body[1]text`, `body[2]text` … (1-based, per Sinch's WhatsApp channel docs).
    parameters: Map<String, Value>,
}

#[derive(Deserialize)]
struct SendResponse {
    message_id: Option<String>,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: Option<String>,
    expires_in: Option<Value>,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ApiError,
}

#[derive(Deserialize)]
struct ApiError {
    message: Option<String>,
    status: Option<String>,
    #[serde(default)]
    details: Value,
}

/// A cached access token, per (token URL, key id).
#[derive(Clone)]
struct CachedToken {
    access_token: String,
    /// When to stop using it: expiry minus the refresh margin.
    refresh_at: Instant,
}

/// Sends messages through the Conversation API.
///
/// Holds the shared `reqwest::Client` and an OAuth token cache keyed by (token URL, key
/// id), so accounts with different access keys never share a token. The cache lock is
/// held while a token is fetched, so concurrent sends wait for one fetch instead of each
/// fetching (Sinch rate-limits the token endpoint). Configure timeouts on the
/// `reqwest::Client`: a timeout is reported as retryable.
pub struct SinchClient {
    http: reqwest::Client,
    refresh_margin: Duration,
    tokens: tokio::sync::Mutex<HashMap<(String, String), CachedToken>>,
}

impl std::fmt::Debug for SinchClient {
    // The cache holds bearer tokens; never print them.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SinchClient").field("refresh_margin", &self.refresh_margin).finish_non_exhaustive()
    }
}

/// Where the bearer token came from, so a 401 on a cached token can be retried once.
enum TokenSource {
    Cache,
    Fresh,
}

impl SinchClient {
    pub fn new(http: reqwest::Client) -> Self {
        Self::with_refresh_margin(http, DEFAULT_TOKEN_REFRESH_MARGIN)
    }

    /// Like [`SinchClient::new`] with a custom margin before token expiry (tests use 0).
    pub fn with_refresh_margin(http: reqwest::Client, refresh_margin: Duration) -> Self {
        Self { http, refresh_margin, tokens: tokio::sync::Mutex::new(HashMap::new()) }
    }

    /// Sends a free-form WhatsApp text (only allowed inside the 24-hour window; outside
    /// it Sinch accepts the request and later reports `FAILED` with
    /// `OUTSIDE_ALLOWED_SENDING_WINDOW` in a delivery callback).
    ///
    /// - `auth_base_url`: `https://auth.sinch.com` (global); the token is cached.
    /// - `api_base_url`: the app's regional base, e.g. `https://eu.conversation.api.sinch.com`
    ///   (a region mismatch gives 404, which is `Rejected`).
    /// - `to_e164` gets a leading '+' if it lacks one.
    ///
    /// A 401 answered to a cached token evicts it and retries once with a fresh one (the
    /// token may have been revoked). Never panics; every failure is a [`SendOutcome`].
    // The argument list mirrors the other adapters: credentials are per account, per call.
    #[allow(clippy::too_many_arguments)]
    pub async fn send_text(
        &self,
        auth_base_url: &str,
        api_base_url: &str,
        project_id: &str,
        app_id: &str,
        key_id: &str,
        key_secret: &str,
        to_e164: &str,
        body: &str,
    ) -> SendOutcome {
        let message = OutMessage::Text { text: body };
        let target = SendTarget { auth_base_url, api_base_url, project_id, key_id, key_secret };
        self.send_message(&target, app_id, to_e164, message).await
    }

    /// Sends any [`OutboundContent`]; the outbox's single entry point. Arguments and
    /// failure handling are those of [`SinchClient::send_text`].
    ///
    /// - Text: `text_message{text}`.
    /// - Media: `media_message{url, filename_override?}` (`sinch_outbound_media.json`);
    ///   Sinch picks the WhatsApp type from the URL. See [`outbound_media_message`] for
    ///   captions.
    /// - Template: `template_message.channel_template.WHATSAPP{template_id: name,
    ///   language_code, parameters{"body[1]text": …}}` (`sinch_outbound_template.json`).
    ///   Templates are referenced by name; only body parameters are sent.
    #[allow(clippy::too_many_arguments)]
    pub async fn send(
        &self,
        auth_base_url: &str,
        api_base_url: &str,
        project_id: &str,
        app_id: &str,
        key_id: &str,
        key_secret: &str,
        to_e164: &str,
        content: &OutboundContent,
    ) -> SendOutcome {
        let message = match content {
            OutboundContent::Text(text) => OutMessage::Text { text },
            OutboundContent::Media(media) => outbound_media_message(media),
            OutboundContent::Template(OutboundTemplate { name, language, body_parameters }) => {
                OutMessage::Template {
                    channel_template: ChannelTemplate {
                        whatsapp: WhatsAppTemplate {
                            template_id: name,
                            language_code: language,
                            parameters: body_parameters
                                .iter()
                                .enumerate()
                                .map(|(i, p)| (format!("body[{}]text", i + 1), Value::String(p.clone())))
                                .collect(),
                        },
                    },
                }
            }
        };
        let target = SendTarget { auth_base_url, api_base_url, project_id, key_id, key_secret };
        self.send_message(&target, app_id, to_e164, message).await
    }

    /// Downloads an inbound media item's URL, holding at most `max_bytes`.
    ///
    /// A plain GET: whether Sinch's media URLs need authentication is UNCONFIRMED (Sinch
    /// only says they "may require authentication for some channels"); the ones seen are
    /// pre-signed links. If WhatsApp media starts answering 401/403, this is where the
    /// bearer token would go (those answers are permanent failures today). Anything but an
    /// absolute http(s) URL is [`FetchError::Permanent`] without a request.
    pub async fn fetch_media(&self, url: &str, max_bytes: u64) -> Result<FetchedMedia, FetchError> {
        let parsed = reqwest::Url::parse(url.trim())
            .map_err(|_| FetchError::Permanent("media URL is not an absolute URL".into()))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(FetchError::Permanent("media URL is not http(s)".into()));
        }
        download(self.http.get(parsed), max_bytes).await
    }

    /// Posts one message, with the token cache and the single retry on a 401 to a cached
    /// token.
    async fn send_message(
        &self,
        target: &SendTarget<'_>,
        app_id: &str,
        to_e164: &str,
        message: OutMessage<'_>,
    ) -> SendOutcome {
        let SendTarget { auth_base_url, api_base_url, project_id, key_id, key_secret } = *target;
        let payload = SendRequest {
            app_id,
            recipient: Recipient {
                identified_by: IdentifiedBy {
                    channel_identities: [ChannelIdentity {
                        channel: "WHATSAPP",
                        identity: to_e164_lenient(to_e164),
                    }],
                },
            },
            message,
            channel_priority_order: ["WHATSAPP"],
        };
        let url = format!(
            "{}/v1/projects/{}/messages:send",
            api_base_url.trim_end_matches('/'),
            project_id.trim_matches('/')
        );
        let token_url = format!("{}/oauth2/token", auth_base_url.trim_end_matches('/'));
        let cache_key = (token_url.clone(), key_id.to_owned());

        for attempt in 0..2 {
            let (token, source) = match self.token(&token_url, &cache_key, key_id, key_secret).await {
                Ok(t) => t,
                Err(outcome) => return outcome,
            };
            let response = match self.http.post(&url).bearer_auth(&token).json(&payload).send().await {
                Ok(r) => r,
                Err(e) => return classify_transport_error(&e),
            };
            if response.status() == reqwest::StatusCode::UNAUTHORIZED {
                self.tokens.lock().await.remove(&cache_key);
                if attempt == 0 && matches!(source, TokenSource::Cache) {
                    tracing::info!("Sinch refused a cached token; fetching a new one");
                    continue;
                }
            }
            return classify_send_response(response).await;
        }
        // Unreachable in practice: the second attempt always uses a fresh token and returns.
        SendOutcome::Retryable { reason: "token refused twice".into(), retry_after: None }
    }

    /// A valid token from the cache, or a fresh one (cached before it is returned).
    async fn token(
        &self,
        token_url: &str,
        cache_key: &(String, String),
        key_id: &str,
        key_secret: &str,
    ) -> Result<(String, TokenSource), SendOutcome> {
        let mut tokens = self.tokens.lock().await;
        if let Some(cached) = tokens.get(cache_key)
            && Instant::now() < cached.refresh_at
        {
            return Ok((cached.access_token.clone(), TokenSource::Cache));
        }
        let fetched_at = Instant::now();
        let (access_token, expires_in) = self.fetch_token(token_url, key_id, key_secret).await?;
        tokens.insert(
            cache_key.clone(),
            CachedToken {
                access_token: access_token.clone(),
                refresh_at: fetched_at + expires_in.saturating_sub(self.refresh_margin),
            },
        );
        Ok((access_token, TokenSource::Fresh))
    }

    /// OAuth2 client credentials: Basic key_id:key_secret, form `grant_type=client_credentials`.
    ///
    /// Nothing has been sent yet when this fails, so everything except refused
    /// credentials (400/401/403) is retryable, including an unreadable answer.
    async fn fetch_token(
        &self,
        token_url: &str,
        key_id: &str,
        key_secret: &str,
    ) -> Result<(String, Duration), SendOutcome> {
        // The `form` feature of reqwest is not enabled; this body needs no encoding.
        let request = self
            .http
            .post(token_url)
            .basic_auth(key_id, Some(key_secret))
            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials");
        let response = request.send().await.map_err(|e| classify_transport_error(&e))?;
        let status = response.status();
        let retry_after = retry_after_of(&response);
        let body = response.bytes().await.unwrap_or_default();
        if status.is_success() {
            let parsed = serde_json::from_slice::<TokenResponse>(&body).ok();
            let token = parsed.as_ref().and_then(|t| t.access_token.clone()).filter(|t| !t.is_empty());
            let expires_in = parsed
                .as_ref()
                .and_then(|t| t.expires_in.as_ref())
                .and_then(|v| v.as_u64().or_else(|| v.as_str()?.trim().parse().ok()))
                .unwrap_or(0);
            return match token {
                Some(token) => Ok((token, Duration::from_secs(expires_in))),
                None => Err(SendOutcome::Retryable {
                    reason: "token response without access_token".into(),
                    retry_after: None,
                }),
            };
        }
        let code = status.as_u16();
        if code == 429 || code == 408 || status.is_server_error() {
            return Err(SendOutcome::Retryable {
                reason: format!("token endpoint HTTP {code}"),
                retry_after,
            });
        }
        Err(SendOutcome::Rejected {
            http_status: code,
            error: ProviderError {
                code: "auth_failed".into(),
                title: format!("Sinch refused the access key (HTTP {code})"),
                detail: (!body.is_empty()).then(|| truncate(&String::from_utf8_lossy(&body))),
            },
        })
    }
}

/// Where and as whom to send: the per-account settings every send needs.
#[derive(Clone, Copy)]
struct SendTarget<'a> {
    auth_base_url: &'a str,
    api_base_url: &'a str,
    project_id: &'a str,
    key_id: &'a str,
    key_secret: &'a str,
}

/// Outbound media.
///
/// Sinch's `media_message` has no caption field. The provider notes list no outbound
/// `media_card_message`, but Sinch's WhatsApp channel docs say a `card_message` is
/// transcoded to a WhatsApp media message with a plain-text caption, and that image and
/// video media in a card are shown as rich content (sinch/docs, 2021; how `title` is laid
/// out in the caption is UNCONFIRMED). So:
/// - an image or video with a caption goes as `card_message{title: caption, media_message}`;
/// - a document, audio or sticker goes as `media_message`, and a caption is dropped: in a
///   card, audio and stickers become a plain link and documents only sometimes render,
///   which is worse than a missing caption (audio and stickers have no caption on
///   WhatsApp anyway). The file name travels as `filename_override`.
fn outbound_media_message(media: &OutboundMedia) -> OutMessage<'_> {
    let out = OutMedia {
        url: &media.url,
        filename_override: media.filename.as_deref().filter(|f| !f.trim().is_empty()),
    };
    let caption = media.caption.as_deref().filter(|c| !c.trim().is_empty());
    match (caption, media.kind) {
        (Some(title), MediaKind::Image | MediaKind::Video) => {
            OutMessage::Card { title, media_message: OutMedia { filename_override: None, ..out } }
        }
        (Some(_), kind) => {
            tracing::debug!(kind = kind.as_str(), "Sinch media_message has no caption; caption not sent");
            OutMessage::Media(out)
        }
        (None, _) => OutMessage::Media(out),
    }
}

fn to_e164_lenient(number: &str) -> String {
    // An empty number stays empty; Sinch rejects it with a 400, which is the right outcome.
    to_e164(number).unwrap_or_default()
}

fn retry_after_of(response: &reqwest::Response) -> Option<Duration> {
    response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_retry_after)
}

async fn classify_send_response(response: reqwest::Response) -> SendOutcome {
    let status = response.status();
    let retry_after = retry_after_of(&response);
    let body = response.bytes().await;

    if status.is_success() {
        // Sinch may have queued the message even if we cannot read the answer, so this is
        // not retried: a duplicate to the customer is worse than a visible failure.
        let id = body
            .ok()
            .and_then(|b| serde_json::from_slice::<SendResponse>(&b).ok())
            .and_then(|r| r.message_id)
            .filter(|id| !id.is_empty());
        return match id {
            Some(provider_message_id) => SendOutcome::Accepted { provider_message_id },
            None => SendOutcome::Rejected {
                http_status: status.as_u16(),
                error: ProviderError {
                    code: "invalid_response".into(),
                    title: "success response without a message_id".into(),
                    detail: None,
                },
            },
        };
    }

    let body = body.unwrap_or_default();
    let api = serde_json::from_slice::<ErrorBody>(&body).ok().map(|b| b.error);
    let code = status.as_u16();
    let api_status = api.as_ref().and_then(|a| a.status.as_deref());
    // A Sinch reason code (e.g. the window one) anywhere in the error wins over the generic
    // gRPC status, because callers act on it.
    let reason = api
        .as_ref()
        .and_then(|a| reason_code_in(&format!("{} {}", a.message.as_deref().unwrap_or(""), a.details)));
    let retryable = code == 429
        || code == 408
        || status.is_server_error()
        || matches!(api_status, Some("RESOURCE_EXHAUSTED" | "UNAVAILABLE"))
        || reason.is_some_and(|r| RETRYABLE_REASON_CODES.contains(&r));
    if retryable {
        let reason = match &api {
            Some(a) => format!(
                "HTTP {code}: {}: {}",
                reason.or(a.status.as_deref()).unwrap_or("?"),
                truncate(a.message.as_deref().unwrap_or(""))
            ),
            None => format!("HTTP {code}"),
        };
        return SendOutcome::Retryable { reason, retry_after };
    }

    let error = match api {
        Some(a) => {
            let details = (!a.details.is_null() && a.details != Value::Array(vec![]))
                .then(|| truncate(&a.details.to_string()));
            ProviderError {
                code: reason
                    .map(str::to_owned)
                    .or_else(|| a.status.clone().filter(|s| !s.is_empty()))
                    .unwrap_or_else(|| format!("http_{code}")),
                title: truncate(a.message.as_deref().unwrap_or("")),
                detail: details,
            }
        }
        None => ProviderError {
            code: format!("http_{code}"),
            title: format!("HTTP {status}"),
            detail: (!body.is_empty()).then(|| truncate(&String::from_utf8_lossy(&body))),
        },
    };
    SendOutcome::Rejected { http_status: code, error }
}

/// The first whole word of `text` that is one of [`REASON_CODES`]. Whole words, so that
/// e.g. `RATE_LIMITED_BY_CARRIER` (or a code inside a longer one) is not misread.
fn reason_code_in(text: &str) -> Option<&'static str> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .find_map(|word| REASON_CODES.iter().find(|code| **code == word).copied())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::test_support::{
        FIXTURES, Rng, fixture, fixture_json, fixture_names, mutate_bytes, mutate_value, signed_bytes,
    };

    use chrono::TimeZone;
    use wiremock::matchers::{body_json, body_string, header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    const FIXTURE_SECRET: &[u8] = b"test_webhook_secret_0123456789";
    const FIXTURE_NONCE: &str = "01HFAKENONCE00000000000000";
    const FIXTURE_TS: &str = "1767607201";
    const SKEW: Duration = Duration::from_secs(300);
    const APP_ID: &str = "01HFAKEAPP0000000000000000";
    const PROJECT: &str = "00000000-1111-2222-3333-444444444444";

    const S1_BODY: &str = r#"{"app_id":"01EB37HMH1M6SV18BSNS3G135H","accepted_time":"2020-11-17T15:09:11.659Z","project_id":"c36f3d3d-1513-2edd-ae42-11995557ff61","message_delivery_report":{"message_id":"01EQBC1A3BEK731GY4YXEN0C2R","conversation_id":"01EPYATA64TMNZ1FV02JKF12JF","status":"QUEUED_ON_CHANNEL","contact_id":"01EXA07N79THJ20WSN6AS30TMW"}}"#;
    const S2_BODY: &str = r#"{"app_id":"","accepted_time":"2021-10-18T17:49:13.813615Z","project_id":"e2df3a34-a71b-4448-9db5-a8d2baad28e4","contact_create_notification":{"contact":{"id":"01FJA8B466Y0R2GNXD78MD9SM1","channel_identities":[{"channel":"SMS","identity":"48123456789","app_id":""}],"display_name":"New Test Contact","email":"new.contact@email.com","external_id":"","metadata":"","language":"EN_US"}},"message_metadata":""}"#;

    fn ts(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(secs, 0).single().expect("valid timestamp")
    }

    fn rfc3339(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).expect("rfc3339").with_timezone(&Utc)
    }

    /// (file, header value) for every Sinch row of signature_vectors.md part B.
    fn sinch_signature_rows() -> Vec<(String, String)> {
        let md = String::from_utf8(fixture("signature_vectors.md")).expect("utf-8");
        md.lines()
            .filter(|l| l.starts_with("| sinch_") && l.contains("| x-sinch-webhook-signature |"))
            .map(|l| {
                let cells: Vec<&str> = l.split('|').map(str::trim).collect();
                (cells[1].to_owned(), cells[3].trim_matches('`').to_owned())
            })
            .collect()
    }

    // -- signatures --------------------------------------------------------------------

    #[test]
    fn official_vectors_s1_s2() {
        let now = ts(1_634_579_353 + 10);
        for (body, expected) in [
            (S1_BODY, "Yc+3R1pIS78xLASybulhs8BsSo9BPB3Pr92QCUoczfk="),
            (S2_BODY, "6bpJoRmFoXVjfJIVglMoJzYXxnoxRujzR4k2GOXewOE="),
        ] {
            assert_eq!(
                sign(b"foo_secret1234", body.as_bytes(), "01FJA8B4A7BM43YGWSG9GBV067", "1634579353"),
                expected
            );
            assert_eq!(
                verify_signature(
                    b"foo_secret1234",
                    body.as_bytes(),
                    Some("01FJA8B4A7BM43YGWSG9GBV067"),
                    Some("1634579353"),
                    Some(expected),
                    now,
                    SKEW
                ),
                Ok(())
            );
        }
        // The vectors' bodies parse too: S1 is QUEUED_ON_CHANNEL (skipped), S2 another trigger.
        assert_eq!(parse_webhook(S1_BODY.as_bytes()), Ok(WebhookBatch::default()));
        assert_eq!(parse_webhook(S2_BODY.as_bytes()), Ok(WebhookBatch::default()));
    }

    #[test]
    fn every_fixture_signature_from_part_b_verifies() {
        let rows = sinch_signature_rows();
        assert_eq!(rows.len(), 9, "signature_vectors.md part B lists 9 Sinch fixtures");
        let now = ts(1_767_607_201);
        for (file, sig) in rows {
            let body = signed_bytes(&file);
            assert_eq!(sign(FIXTURE_SECRET, &body, FIXTURE_NONCE, FIXTURE_TS), sig, "{file}");
            let verify = |secret: &[u8], body: &[u8], nonce: &str, timestamp: &str| {
                verify_signature(secret, body, Some(nonce), Some(timestamp), Some(&sig), now, SKEW)
            };
            assert_eq!(verify(FIXTURE_SECRET, &body, FIXTURE_NONCE, FIXTURE_TS), Ok(()), "{file}");
            let bad = Err(SinchSignatureError::Bad);
            assert_eq!(
                verify(FIXTURE_SECRET, &fixture(&file), FIXTURE_NONCE, FIXTURE_TS),
                bad,
                "{file} + newline"
            );
            assert_eq!(verify(b"another_secret", &body, FIXTURE_NONCE, FIXTURE_TS), bad, "{file}");
            assert_eq!(
                verify(FIXTURE_SECRET, &body, "01HFAKENONCE00000000000001", FIXTURE_TS),
                bad,
                "{file}"
            );
            assert_eq!(verify(FIXTURE_SECRET, &body, FIXTURE_NONCE, "1767607202"), bad, "{file}");
        }
    }

    fn verify_fixture(
        nonce: Option<&str>,
        timestamp: Option<&str>,
        signature: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), SinchSignatureError> {
        let body = signed_bytes("sinch_inbound_text.json");
        verify_signature(FIXTURE_SECRET, &body, nonce, timestamp, signature, now, SKEW)
    }

    const TEXT_SIG: &str = "p2wjES4g+ttUQA0MhkdcjaugGmmbB4/CGdM8jnixNcw=";

    #[test]
    fn stale_timestamps_are_refused_only_when_authentic() {
        let signed = 1_767_607_201;
        let ok = |now| verify_fixture(Some(FIXTURE_NONCE), Some(FIXTURE_TS), Some(TEXT_SIG), now);
        assert_eq!(ok(ts(signed + 300)), Ok(()), "exactly max_skew is allowed");
        assert_eq!(ok(ts(signed - 300)), Ok(()), "clock behind");
        assert_eq!(ok(ts(signed + 301)), Err(SinchSignatureError::Stale));
        assert_eq!(ok(ts(signed - 301)), Err(SinchSignatureError::Stale), "future timestamp");
        assert_eq!(ok(ts(0)), Err(SinchSignatureError::Stale));
        // A forged request is Bad even when its timestamp is also stale.
        assert_eq!(
            verify_fixture(Some(FIXTURE_NONCE), Some(FIXTURE_TS), Some("AAAA"), ts(0)),
            Err(SinchSignatureError::Bad)
        );
        // Huge max_skew never overflows.
        let body = signed_bytes("sinch_inbound_text.json");
        let r = verify_signature(
            FIXTURE_SECRET,
            &body,
            Some(FIXTURE_NONCE),
            Some(FIXTURE_TS),
            Some(TEXT_SIG),
            ts(0),
            Duration::MAX,
        );
        assert_eq!(r, Ok(()));
    }

    #[test]
    fn missing_headers() {
        let now = ts(1_767_607_201);
        let missing = Err(SinchSignatureError::Missing);
        assert_eq!(verify_fixture(None, Some(FIXTURE_TS), Some(TEXT_SIG), now), missing);
        assert_eq!(verify_fixture(Some(FIXTURE_NONCE), None, Some(TEXT_SIG), now), missing);
        assert_eq!(verify_fixture(Some(FIXTURE_NONCE), Some(FIXTURE_TS), None, now), missing);
        assert_eq!(verify_fixture(Some(""), Some(FIXTURE_TS), Some(TEXT_SIG), now), missing);
        assert_eq!(verify_fixture(Some(FIXTURE_NONCE), Some(" "), Some(TEXT_SIG), now), missing);
        assert_eq!(verify_fixture(Some(FIXTURE_NONCE), Some(FIXTURE_TS), Some(""), now), missing);
        assert_eq!(WebhookError::from(SinchSignatureError::Missing), WebhookError::MissingSignature);
        assert_eq!(WebhookError::from(SinchSignatureError::Stale), WebhookError::BadSignature);
    }

    #[test]
    fn wrong_signatures() {
        let now = ts(1_767_607_201);
        let bad = Err(SinchSignatureError::Bad);
        for sig in [
            "not base64!",
            "AAAA",
            "p2wjES4g+ttUQA0MhkdcjaugGmmbB4/CGdM8jnixNcx=",
            "p2wjES4g+ttUQA0MhkdcjaugGmmbB4/CGdM8jnixNc",
            "sha256=p2wjES4g+ttUQA0MhkdcjaugGmmbB4/CGdM8jnixNcw=",
        ] {
            assert_eq!(verify_fixture(Some(FIXTURE_NONCE), Some(FIXTURE_TS), Some(sig), now), bad, "{sig}");
        }
        // Surrounding whitespace on the signature header is tolerated.
        let padded = format!(" {TEXT_SIG} ");
        assert_eq!(verify_fixture(Some(FIXTURE_NONCE), Some(FIXTURE_TS), Some(&padded), now), Ok(()));
        // An empty secret never verifies, even with a matching signature.
        let body = signed_bytes("sinch_inbound_text.json");
        let sig = sign(b"", &body, FIXTURE_NONCE, FIXTURE_TS);
        let r = verify_signature(b"", &body, Some(FIXTURE_NONCE), Some(FIXTURE_TS), Some(&sig), now, SKEW);
        assert_eq!(r, bad);
        // An authentic but non-numeric timestamp cannot be checked for freshness.
        let sig = sign(FIXTURE_SECRET, &body, FIXTURE_NONCE, "yesterday");
        let r = verify_signature(
            FIXTURE_SECRET,
            &body,
            Some(FIXTURE_NONCE),
            Some("yesterday"),
            Some(&sig),
            now,
            SKEW,
        );
        assert_eq!(r, bad);
    }

    // -- parsing -----------------------------------------------------------------------

    fn single_message(name: &str) -> InboundMessage {
        let batch = parse_webhook(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(batch.statuses.is_empty(), "{name}");
        assert_eq!(batch.messages.len(), 1, "{name}");
        batch.messages.into_iter().next().expect("one message")
    }

    fn unsupported(kind: &str, summary: &str) -> InboundBody {
        InboundBody::Unsupported { kind: kind.into(), summary: summary.into() }
    }

    #[test]
    fn parses_inbound_text() {
        let msg = single_message("sinch_inbound_text.json");
        assert_eq!(
            msg,
            InboundMessage {
                provider_message_id: "01HFAKEINMSG0000000000001".into(),
                from: "+15551234567".into(),
                to_phone_number_id: APP_ID.into(),
                profile_name: None,
                timestamp: rfc3339("2026-01-05T10:00:01.100Z"),
                body: InboundBody::Text("Hi, I need help with order 4711".into()),
            }
        );
    }

    #[test]
    fn parses_other_inbound_fixtures() {
        let cases = [
            (
                "sinch_inbound_media.json",
                "01HFAKEINMSG0000000000002",
                InboundBody::Media(InboundMedia {
                    kind: MediaKind::Image,
                    source: MediaSource::Url(
                        "https://example-media.sinch.invalid/whatsapp/FAKE-MEDIA-ID.jpg".into(),
                    ),
                    content_type: None,
                    caption: None,
                    filename: None,
                }),
            ),
            (
                "sinch_inbound_media_card.json",
                "01HFAKEINMSG0000000000003",
                InboundBody::Media(InboundMedia {
                    kind: MediaKind::Document,
                    source: MediaSource::Url(
                        "https://example-media.sinch.invalid/whatsapp/FAKE-MEDIA-ID2.pdf".into(),
                    ),
                    content_type: None,
                    caption: Some("my invoice".into()),
                    filename: Some("FAKE-MEDIA-ID2.pdf".into()),
                }),
            ),
            (
                "sinch_inbound_location.json",
                "01HFAKEINMSG0000000000004",
                unsupported("location_message", "[location] 37.4422,-122.1616"),
            ),
            (
                "sinch_inbound_choice_response.json",
                "01HFAKEINMSG0000000000005",
                unsupported("choice_response_message", "AGENT_HANDOFF"),
            ),
        ];
        for (name, id, body) in cases {
            let msg = single_message(name);
            assert_eq!(msg.provider_message_id, id, "{name}");
            assert_eq!(msg.from, "+15551234567", "{name}");
            assert_eq!(msg.to_phone_number_id, APP_ID, "{name}");
            assert_eq!(msg.body, body, "{name}");
        }
    }

    fn with_message(mut envelope: Value, f: impl FnOnce(&mut Map<String, Value>)) -> Vec<u8> {
        if let Some(Value::Object(m)) = envelope.get_mut("message") {
            f(m);
        }
        serde_json::to_vec(&envelope).expect("ser")
    }

    fn body_for(contact_message: Value) -> InboundBody {
        let bytes = with_message(fixture_json("sinch_inbound_text.json"), |m| {
            m.insert("contact_message".into(), contact_message);
        });
        let batch = parse_webhook(&bytes).expect("parses");
        batch.messages.into_iter().next().expect("message").body
    }

    #[test]
    fn summaries_for_other_contact_messages() {
        use serde_json::json;
        let media = |kind, url: &str, caption: Option<&str>, filename: Option<&str>| {
            InboundBody::Media(InboundMedia {
                kind,
                source: MediaSource::Url(url.into()),
                content_type: None,
                caption: caption.map(str::to_owned),
                filename: filename.map(str::to_owned),
            })
        };
        let cases = [
            (
                json!({"media_message": {
                    "url": "https://x/a.PDF?sig=1", "filename_override": "invoice.pdf"
                }}),
                media(MediaKind::Document, "https://x/a.PDF?sig=1", None, Some("invoice.pdf")),
            ),
            (
                json!({"media_message": {"url": "https://x/voice.ogg", "thumbnail_url": "https://x/t.jpg"}}),
                media(MediaKind::Audio, "https://x/voice.ogg", None, None),
            ),
            (
                json!({"media_message": {"url": "https://x/noext"}}),
                media(MediaKind::Document, "https://x/noext", None, Some("noext")),
            ),
            (
                json!({"media_message": {"url": "https://x/d/My%20Scan.pdf#p=2"}}),
                media(MediaKind::Document, "https://x/d/My%20Scan.pdf#p=2", None, Some("My Scan.pdf")),
            ),
            (
                json!({"media_message": {"url": "https://x/", "filename_override": ""}}),
                media(MediaKind::Document, "https://x/", None, None),
            ),
            (
                json!({"media_card_message": {"url": "https://x/v.mp4", "caption": ""}}),
                media(MediaKind::Video, "https://x/v.mp4", None, None),
            ),
            (
                json!({"media_card_message": {"url": "https://x/p.WEBP", "caption": "look"}}),
                media(MediaKind::Image, "https://x/p.WEBP", Some("look"), None),
            ),
            // A declared type wins over the extension (no such field is documented today).
            (
                json!({"media_message": {"url": "https://x/a.bin", "mime_type": "audio/ogg"}}),
                InboundBody::Media(InboundMedia {
                    kind: MediaKind::Audio,
                    source: MediaSource::Url("https://x/a.bin".into()),
                    content_type: Some("audio/ogg".into()),
                    caption: None,
                    filename: None,
                }),
            ),
            (
                json!({"media_message": {"url": "https://x/a.bin", "media_type": "VIDEO"}}),
                media(MediaKind::Video, "https://x/a.bin", None, None),
            ),
            // Without a URL there is nothing to fetch.
            (json!({"media_message": {}}), unsupported("media_message", "[media_message]")),
            (
                json!({"media_card_message": {"url": " ", "caption": "lost photo"}}),
                unsupported("media_card_message", "lost photo"),
            ),
            (json!({"media_message": {"url": 5}}), unsupported("media_message", "[media_message]")),
            (
                json!({"fallback_message": {"reason": {"code": "UNKNOWN"}, "raw_message": "{}"}}),
                unsupported("fallback_message", "[fallback_message]"),
            ),
            (
                json!({"channel_specific_message": {"message_type": "nfm_reply"}}),
                unsupported("channel_specific_message", "[channel_specific_message]"),
            ),
            (
                json!({"reply_to": {"message_id": "x"}, "text_message": {"text": "quoted"}}),
                InboundBody::Text("quoted".into()),
            ),
            (json!({"text_message": {"text": 5}}), unsupported("text_message", "[text_message]")),
            (
                json!({"location_message": {"title": "x"}}),
                unsupported("location_message", "[location_message]"),
            ),
            (json!({}), unsupported("unknown", "[unknown]")),
            (json!("text"), unsupported("unknown", "[unknown]")),
        ];
        for (cm, expected) in cases {
            assert_eq!(body_for(cm.clone()), expected, "{cm}");
        }
    }

    #[test]
    fn media_kind_and_file_name_from_url() {
        for (url, kind) in [
            ("https://x/a.jpg", MediaKind::Image),
            ("https://x/a.JPEG?x=1.mp4", MediaKind::Image),
            ("https://x/a.png#frag.ogg", MediaKind::Image),
            ("https://x/a.webp", MediaKind::Image),
            ("https://x/a.mp4", MediaKind::Video),
            ("https://x/a.3gp", MediaKind::Video),
            ("https://x/a.opus", MediaKind::Audio),
            ("https://x/a.ogg", MediaKind::Audio),
            ("https://x/a.mp3", MediaKind::Audio),
            ("https://x/a.amr", MediaKind::Audio),
            ("https://x/a.aac", MediaKind::Audio),
            ("https://x/a.m4a", MediaKind::Audio),
            ("https://x/a.pdf", MediaKind::Document),
            ("https://x/a.gif", MediaKind::Document),
            ("https://x.jpg", MediaKind::Document),
            ("https://x.jpg/", MediaKind::Document),
            ("https://x/dir.jpg/", MediaKind::Image),
            ("", MediaKind::Document),
        ] {
            assert_eq!(media_kind_from_url(url), kind, "{url}");
        }
        assert_eq!(last_path_segment("https://x/a/b%2F..%5Cc.pdf?q"), Some("b_.._c.pdf".into()));
        assert_eq!(last_path_segment("https://x/%E2%82%AC%zz.pdf"), Some("€%zz.pdf".into()));
        assert_eq!(last_path_segment("https://x/%FF.pdf"), Some("\u{FFFD}.pdf".into()));
        assert_eq!(last_path_segment("https://x"), None);
        assert_eq!(last_path_segment("https://x/%20"), None);
    }

    #[test]
    fn inbound_edge_cases() {
        let base = fixture_json("sinch_inbound_text.json");
        // Echoes of our own messages and other channels are skipped.
        let bytes = with_message(base.clone(), |m| {
            m.insert("direction".into(), "TO_CONTACT".into());
        });
        assert_eq!(parse_webhook(&bytes), Ok(WebhookBatch::default()));
        let bytes = with_message(base.clone(), |m| {
            m.insert(
                "channel_identity".into(),
                serde_json::json!({"channel": "SMS", "identity": "15551234567"}),
            );
        });
        assert_eq!(parse_webhook(&bytes), Ok(WebhookBatch::default()));
        // accept_time missing: the envelope event_time is used.
        let bytes = with_message(base.clone(), |m| {
            m.remove("accept_time");
        });
        let msg = parse_webhook(&bytes).expect("parses").messages.remove(0);
        assert_eq!(msg.timestamp, rfc3339("2026-01-05T10:00:00.456Z"));
        // Missing id, sender, app or any time: malformed.
        for key in ["id", "channel_identity"] {
            let bytes = with_message(base.clone(), |m| {
                m.remove(key);
            });
            assert!(matches!(parse_webhook(&bytes), Err(WebhookError::Malformed(_))), "{key}");
        }
        let mut no_app = base.clone();
        no_app["app_id"] = "".into();
        assert!(matches!(
            parse_webhook(&serde_json::to_vec(&no_app).expect("ser")),
            Err(WebhookError::Malformed(_))
        ));
        let mut no_time = base.clone();
        no_time["event_time"] = Value::Null;
        no_time["accepted_time"] = "garbage".into();
        no_time["message"]["accept_time"] = 12.into();
        assert!(matches!(
            parse_webhook(&serde_json::to_vec(&no_time).expect("ser")),
            Err(WebhookError::Malformed(_))
        ));
    }

    fn single_status(name: &str) -> StatusUpdate {
        let batch = parse_webhook(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(batch.messages.is_empty(), "{name}");
        assert_eq!(batch.statuses.len(), 1, "{name}");
        batch.statuses.into_iter().next().expect("one status")
    }

    #[test]
    fn parses_delivery_reports() {
        assert_eq!(parse_webhook(&fixture("sinch_delivery_queued.json")), Ok(WebhookBatch::default()));
        for (name, status) in [
            ("sinch_delivery.json", DeliveryStatus::Delivered),
            ("sinch_delivery_read.json", DeliveryStatus::Read),
        ] {
            assert_eq!(
                single_status(name),
                StatusUpdate {
                    provider_message_id: "01HFAKEOUTMSG000000000001".into(),
                    status,
                    timestamp: rfc3339("2026-01-05T10:05:01.000Z"),
                    recipient: "+15551234567".into(),
                    error: None,
                },
                "{name}"
            );
        }
        let failed = single_status("sinch_delivery_failed.json");
        assert_eq!(failed.status, DeliveryStatus::Failed);
        let error = failed.error.expect("error");
        assert_eq!(error.code, "OUTSIDE_ALLOWED_SENDING_WINDOW");
        assert!(error.title.contains("more than 24 hours"), "{}", error.title);
        assert_eq!(error.detail.as_deref(), Some("WhatsApp code 131047"));
    }

    #[test]
    fn delivery_report_edge_cases() {
        let base = fixture_json("sinch_delivery.json");
        let with = |f: &dyn Fn(&mut Value)| {
            let mut v = base.clone();
            f(&mut v);
            parse_webhook(&serde_json::to_vec(&v).expect("ser"))
        };
        assert_eq!(
            with(&|v| v["message_delivery_report"]["status"] = "SWITCHING_CHANNEL".into()),
            Ok(WebhookBatch::default())
        );
        assert_eq!(
            with(&|v| v["message_delivery_report"]["status"] = "SOMETHING_NEW".into()),
            Ok(WebhookBatch::default())
        );
        for f in [
            &(|v: &mut Value| v["message_delivery_report"]["status"] = Value::Null) as &dyn Fn(&mut Value),
            &|v: &mut Value| v["message_delivery_report"]["message_id"] = "".into(),
            &|v: &mut Value| {
                v["event_time"] = Value::Null;
                v["accepted_time"] = Value::Null;
            },
            &|v: &mut Value| v["message_delivery_report"] = "x".into(),
        ] {
            assert!(matches!(with(f), Err(WebhookError::Malformed(_))));
        }
        // event_time missing: accepted_time is used; recipient missing: empty.
        let batch = with(&|v| {
            v["event_time"] = Value::Null;
            v["message_delivery_report"]["channel_identity"] = Value::Null;
        })
        .expect("parses");
        assert_eq!(batch.statuses[0].timestamp, rfc3339("2026-01-05T10:05:00.000Z"));
        assert_eq!(batch.statuses[0].recipient, "");
        // FAILED with a reason that has only a code.
        let batch = with(&|v| {
            v["message_delivery_report"]["status"] = "FAILED".into();
            v["message_delivery_report"]["reason"] =
                serde_json::json!({"code": "RECIPIENT_NOT_OPTED_IN", "channel_code": 470});
        })
        .expect("parses");
        let error = batch.statuses[0].error.clone().expect("error");
        assert_eq!(
            (error.code.as_str(), error.title.as_str()),
            ("RECIPIENT_NOT_OPTED_IN", "RECIPIENT_NOT_OPTED_IN")
        );
        assert_eq!(error.detail.as_deref(), Some("WhatsApp code 470"));
    }

    #[test]
    fn malformed_bodies() {
        for body in [&b""[..], b"[]", b"null", b"42", b"{", b"\"x\"", b"{\"message\": 5}", b"\xff\xfe"] {
            assert!(
                matches!(parse_webhook(body), Err(WebhookError::Malformed(_))),
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
        // Other triggers and an empty object carry nothing for us.
        assert_eq!(parse_webhook(b"{}"), Ok(WebhookBatch::default()));
        assert_eq!(parse_webhook(br#"{"app_id":"a","event":{}}"#), Ok(WebhookBatch::default()));
        // The reason never echoes the payload.
        for body in
            [&br#"{"message": "secret customer text"}"#[..], br#"["secret customer text"]"#, b"secret"]
        {
            let err = parse_webhook(body).expect_err("malformed");
            assert!(!err.to_string().contains("secret"), "{err}");
        }
    }

    // -- outbound ----------------------------------------------------------------------

    fn client() -> SinchClient {
        SinchClient::new(reqwest::Client::builder().timeout(Duration::from_secs(5)).build().expect("client"))
    }

    fn token_response(token: &str, expires_in: u64) -> ResponseTemplate {
        ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "access_token": token, "expires_in": expires_in, "scope": "", "token_type": "bearer"
        }))
    }

    async fn mount_token(server: &MockServer, template: ResponseTemplate) {
        Mock::given(method("POST"))
            .and(path("/oauth2/token"))
            // base64("key-id:key-secret")
            .and(header("authorization", "Basic a2V5LWlkOmtleS1zZWNyZXQ="))
            .and(header("content-type", "application/x-www-form-urlencoded"))
            .and(body_string("grant_type=client_credentials"))
            .respond_with(template)
            .named("token")
            .mount(server)
            .await;
    }

    async fn mount_send(server: &MockServer, template: ResponseTemplate) {
        Mock::given(method("POST"))
            .and(path(format!("/v1/projects/{PROJECT}/messages:send")))
            .respond_with(template)
            .named("send")
            .mount(server)
            .await;
    }

    async fn send_with(c: &SinchClient, server: &MockServer, body: &str) -> SendOutcome {
        c.send_text(
            &server.uri(),
            &server.uri(),
            PROJECT,
            APP_ID,
            "key-id",
            "key-secret",
            "15551234567",
            body,
        )
        .await
    }

    fn sent_response() -> ResponseTemplate {
        ResponseTemplate::new(200).set_body_raw(fixture("sinch_send_response.json"), "application/json")
    }

    fn accepted() -> SendOutcome {
        SendOutcome::Accepted { provider_message_id: "01HFAKEOUTMSG000000000001".into() }
    }

    fn count(server_requests: &[wiremock::Request], p: &str) -> usize {
        server_requests.iter().filter(|r| r.url.path() == p).count()
    }

    /// `sinch_oauth_token_request.txt` is the token request as Sinch documents it: POST to
    /// `/oauth2/token`, Basic auth with the key id and secret, a form body
    /// `grant_type=client_credentials`. The request we make must be exactly that.
    #[tokio::test]
    async fn token_request_matches_the_fixture() {
        let text = String::from_utf8(
            std::fs::read(format!("{FIXTURES}/sinch_oauth_token_request.txt")).expect("fixture"),
        )
        .expect("utf8");
        let mut lines = text.lines();
        let request_line = lines.next().expect("request line");
        let (fixture_method, fixture_url) = request_line.split_once(' ').expect("method and url");
        let fixture_path = fixture_url.trim_start_matches("https://auth.sinch.com");
        let content_type =
            lines.clone().find_map(|l| l.strip_prefix("Content-Type: ")).expect("content type");
        let form = text.rsplit("\n\n").next().expect("body").trim();
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/oauth2/token"))
            .respond_with(token_response("tok", 3600))
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/v1/projects/project-1/messages:send"))
            .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"message_id": "m1"})))
            .mount(&server)
            .await;
        let client = SinchClient::new(reqwest::Client::new());
        let _ = client
            .send_text(
                &server.uri(),
                &server.uri(),
                "project-1",
                "app",
                "KEY_ID",
                "KEY_SECRET",
                "+15551234567",
                "hi",
            )
            .await;
        let requests = server.received_requests().await.expect("recorded");
        let token_request =
            requests.iter().find(|r| r.url.path() == "/oauth2/token").expect("a token request");
        assert_eq!(token_request.method.as_str(), fixture_method);
        assert_eq!(token_request.url.path(), fixture_path);
        assert_eq!(token_request.headers["content-type"], content_type);
        assert_eq!(String::from_utf8_lossy(&token_request.body), form);
        let basic = format!("Basic {}", BASE64.encode("KEY_ID:KEY_SECRET"));
        assert_eq!(token_request.headers["authorization"], basic.as_str());
    }

    #[tokio::test]
    async fn token_fixture_is_fetched_once_and_reused() {
        let server = MockServer::start().await;
        mount_token(
            &server,
            ResponseTemplate::new(200)
                .set_body_raw(fixture("sinch_oauth_token_response.json"), "application/json"),
        )
        .await;
        Mock::given(method("POST"))
            .and(path(format!("/v1/projects/{PROJECT}/messages:send")))
            .and(header("authorization", "Bearer eyJFAKE.FAKE.FAKE"))
            .respond_with(sent_response())
            .mount(&server)
            .await;
        let c = client();
        assert_eq!(send_with(&c, &server, "one").await, accepted());
        assert_eq!(send_with(&c, &server, "two").await, accepted());
        let requests = server.received_requests().await.expect("recording");
        assert_eq!(count(&requests, "/oauth2/token"), 1);
        assert_eq!(count(&requests, &format!("/v1/projects/{PROJECT}/messages:send")), 2);
    }

    #[tokio::test]
    async fn token_is_refreshed_after_expiry() {
        let server = MockServer::start().await;
        mount_token(&server, token_response("short", 1)).await;
        mount_send(&server, sent_response()).await;
        let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().expect("client");
        let c = SinchClient::with_refresh_margin(http, Duration::ZERO);
        assert_eq!(send_with(&c, &server, "one").await, accepted());
        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert_eq!(send_with(&c, &server, "two").await, accepted());
        let requests = server.received_requests().await.expect("recording");
        assert_eq!(count(&requests, "/oauth2/token"), 2);
    }

    #[tokio::test]
    async fn token_shorter_than_the_margin_is_not_reused() {
        let server = MockServer::start().await;
        mount_token(&server, token_response("t", 30)).await;
        mount_send(&server, sent_response()).await;
        let c = client();
        assert_eq!(send_with(&c, &server, "one").await, accepted());
        assert_eq!(send_with(&c, &server, "two").await, accepted());
        let requests = server.received_requests().await.expect("recording");
        assert_eq!(count(&requests, "/oauth2/token"), 2);
    }

    #[tokio::test]
    async fn send_body_matches_fixture_shape() {
        let server = MockServer::start().await;
        mount_token(&server, token_response("tok", 3600)).await;
        let mut expected = fixture_json("sinch_outbound_text.json");
        // send_text does not set the optional metadata/correlation fields.
        if let Value::Object(m) = &mut expected {
            m.remove("message_metadata");
            m.remove("correlation_id");
        }
        Mock::given(method("POST"))
            .and(path(format!("/v1/projects/{PROJECT}/messages:send")))
            .and(header("authorization", "Bearer tok"))
            .and(body_json(expected))
            .respond_with(sent_response())
            .expect(1)
            .mount(&server)
            .await;
        let base = format!("{}/", server.uri());
        let outcome = client()
            .send_text(
                &base,
                &base,
                PROJECT,
                APP_ID,
                "key-id",
                "key-secret",
                "+15551234567",
                "Hello Jane, agent Sam here.",
            )
            .await;
        assert_eq!(outcome, accepted());
    }

    #[tokio::test]
    async fn error_fixture_is_rejected_with_status_code() {
        let server = MockServer::start().await;
        mount_token(&server, token_response("tok", 3600)).await;
        mount_send(
            &server,
            ResponseTemplate::new(400).set_body_raw(fixture("sinch_error_response.json"), "application/json"),
        )
        .await;
        match send_with(&client(), &server, "hi").await {
            SendOutcome::Rejected { http_status: 400, error } => {
                assert_eq!(error.code, "INVALID_ARGUMENT");
                assert_eq!(error.title, "Invalid argument");
                assert_eq!(error.detail, None);
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn window_reason_code_is_kept_visible() {
        let server = MockServer::start().await;
        mount_token(&server, token_response("tok", 3600)).await;
        let info = serde_json::json!({
            "@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "OUTSIDE_ALLOWED_SENDING_WINDOW"
        });
        let body = serde_json::json!({"error": {
            "code": 400, "message": "Failed", "status": "FAILED_PRECONDITION", "details": [info]
        }});
        mount_send(&server, ResponseTemplate::new(400).set_body_json(body)).await;
        match send_with(&client(), &server, "hi").await {
            SendOutcome::Rejected { http_status: 400, error } => {
                assert_eq!(error.code, "OUTSIDE_ALLOWED_SENDING_WINDOW");
                assert!(error.detail.as_deref().is_some_and(|d| d.contains("ErrorInfo")), "{error:?}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn non_json_4xx_and_success_without_id_are_rejected() {
        let server = MockServer::start().await;
        mount_token(&server, token_response("tok", 3600)).await;
        mount_send(&server, ResponseTemplate::new(404).set_body_string("region mismatch")).await;
        match send_with(&client(), &server, "hi").await {
            SendOutcome::Rejected { http_status: 404, error } => {
                assert_eq!(error.code, "http_404");
                assert_eq!(error.detail.as_deref(), Some("region mismatch"));
            }
            other => panic!("{other:?}"),
        }
        let server = MockServer::start().await;
        mount_token(&server, token_response("tok", 3600)).await;
        mount_send(&server, ResponseTemplate::new(200).set_body_string("{}")).await;
        let outcome = send_with(&client(), &server, "hi").await;
        assert!(
            matches!(&outcome, SendOutcome::Rejected { http_status: 200, error }
                if error.code == "invalid_response"),
            "{outcome:?}"
        );
    }

    #[tokio::test]
    async fn retryable_statuses() {
        for (status, retry_after) in [(429, Some("7")), (500, None), (503, Some("120")), (408, None)] {
            let server = MockServer::start().await;
            mount_token(&server, token_response("tok", 3600)).await;
            let mut template = ResponseTemplate::new(status).set_body_json(serde_json::json!({"error": {
                "code": status, "message": "slow down", "status": "RESOURCE_EXHAUSTED"
            }}));
            if let Some(v) = retry_after {
                template = template.insert_header("Retry-After", v);
            }
            mount_send(&server, template).await;
            match send_with(&client(), &server, "hi").await {
                SendOutcome::Retryable { reason, retry_after: got } => {
                    assert!(reason.contains(&status.to_string()), "{reason}");
                    assert_eq!(got, retry_after.map(|s| Duration::from_secs(s.parse().expect("secs"))));
                }
                other => panic!("{status}: {other:?}"),
            }
        }
        // RESOURCE_EXHAUSTED is retryable whatever the HTTP status.
        let server = MockServer::start().await;
        mount_token(&server, token_response("tok", 3600)).await;
        mount_send(
            &server,
            ResponseTemplate::new(400)
                .set_body_json(serde_json::json!({"error": {"status": "RESOURCE_EXHAUSTED"}})),
        )
        .await;
        assert!(matches!(send_with(&client(), &server, "hi").await, SendOutcome::Retryable { .. }));
    }

    #[tokio::test]
    async fn token_endpoint_failures() {
        // Refused credentials: rejected, and the send endpoint is never called.
        let server = MockServer::start().await;
        mount_token(&server, ResponseTemplate::new(401).set_body_string(r#"{"error":"invalid_client"}"#))
            .await;
        mount_send(&server, sent_response()).await;
        let outcome = send_with(&client(), &server, "hi").await;
        assert!(
            matches!(&outcome, SendOutcome::Rejected { http_status: 401, error }
                if error.code == "auth_failed"),
            "{outcome:?}"
        );
        let requests = server.received_requests().await.expect("recording");
        assert_eq!(requests.len(), 1);
        // 5xx / 429 / unreadable token answers are retryable.
        for template in [
            ResponseTemplate::new(503),
            ResponseTemplate::new(429).insert_header("Retry-After", "3"),
            ResponseTemplate::new(200).set_body_string("{}"),
        ] {
            let server = MockServer::start().await;
            mount_token(&server, template).await;
            let outcome = send_with(&client(), &server, "hi").await;
            assert!(matches!(outcome, SendOutcome::Retryable { .. }), "{outcome:?}");
        }
    }

    #[tokio::test]
    async fn revoked_cached_token_is_replaced_once() {
        let server = MockServer::start().await;
        mount_token(&server, token_response("tok", 3600)).await;
        let c = client();
        mount_send(&server, sent_response()).await;
        assert_eq!(send_with(&c, &server, "one").await, accepted());
        server.reset().await;
        mount_token(&server, token_response("tok", 3600)).await;
        Mock::given(method("POST"))
            .and(path(format!("/v1/projects/{PROJECT}/messages:send")))
            .respond_with(ResponseTemplate::new(401))
            .mount(&server)
            .await;
        let outcome = send_with(&c, &server, "two").await;
        assert!(matches!(outcome, SendOutcome::Rejected { http_status: 401, .. }), "{outcome:?}");
        let requests = server.received_requests().await.expect("recording");
        // cached token refused -> one new token -> refused again -> give up.
        assert_eq!(count(&requests, "/oauth2/token"), 1);
        assert_eq!(count(&requests, &format!("/v1/projects/{PROJECT}/messages:send")), 2);
    }

    #[tokio::test]
    async fn timeout_and_connection_errors_are_retryable() {
        let server = MockServer::start().await;
        mount_token(&server, token_response("tok", 3600)).await;
        mount_send(&server, sent_response().set_delay(Duration::from_secs(3))).await;
        let http = reqwest::Client::builder().timeout(Duration::from_millis(300)).build().expect("client");
        match send_with(&SinchClient::new(http), &server, "hi").await {
            SendOutcome::Retryable { reason, retry_after: None } => {
                assert!(reason.starts_with("timeout"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        drop(listener);
        let dead = format!("http://{addr}");
        let outcome = client().send_text(&dead, &dead, PROJECT, APP_ID, "k", "s", "+1555", "hi").await;
        assert!(matches!(outcome, SendOutcome::Retryable { retry_after: None, .. }), "{outcome:?}");
        let outcome =
            client().send_text("not a url", "not a url", PROJECT, APP_ID, "k", "s", "+1555", "hi").await;
        assert!(matches!(outcome, SendOutcome::Rejected { http_status: 0, .. }), "{outcome:?}");
    }

    #[tokio::test]
    async fn tokens_are_cached_per_key_id() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/oauth2/token"))
            .respond_with(token_response("tok", 3600))
            .mount(&server)
            .await;
        mount_send(&server, sent_response()).await;
        let c = client();
        for key in ["key-a", "key-b", "key-a"] {
            let outcome =
                c.send_text(&server.uri(), &server.uri(), PROJECT, APP_ID, key, "s", "+1555", "hi").await;
            assert_eq!(outcome, accepted());
        }
        let requests = server.received_requests().await.expect("recording");
        assert_eq!(count(&requests, "/oauth2/token"), 2);
    }

    // -- send(OutboundContent) -----------------------------------------------------------

    async fn mount_send_expecting(server: &MockServer, expected: Value) {
        Mock::given(method("POST"))
            .and(path(format!("/v1/projects/{PROJECT}/messages:send")))
            .and(header("authorization", "Bearer tok"))
            .and(body_json(expected))
            .respond_with(sent_response())
            .expect(1)
            .mount(server)
            .await;
    }

    async fn send_content(server: &MockServer, content: &OutboundContent) -> SendOutcome {
        client()
            .send(
                &server.uri(),
                &server.uri(),
                PROJECT,
                APP_ID,
                "key-id",
                "key-secret",
                "+15551234567",
                content,
            )
            .await
    }

    /// A fixture's request body without the optional fields `send` never sets.
    fn expected_body(name: &str) -> Value {
        let mut expected = fixture_json(name);
        if let Value::Object(m) = &mut expected {
            m.remove("message_metadata");
            m.remove("correlation_id");
        }
        expected
    }

    /// The text fixture's envelope with another `message`.
    fn body_with_message(message: Value) -> Value {
        let mut expected = expected_body("sinch_outbound_text.json");
        expected["message"] = message;
        expected
    }

    fn outbound_media(
        kind: MediaKind,
        url: &str,
        caption: Option<&str>,
        filename: Option<&str>,
    ) -> OutboundContent {
        OutboundContent::Media(OutboundMedia {
            kind,
            url: url.into(),
            content_type: "application/octet-stream".into(),
            caption: caption.map(str::to_owned),
            filename: filename.map(str::to_owned),
        })
    }

    const INVOICE_URL: &str = "https://cdn.example.com/files/invoice-4711.pdf";

    #[tokio::test]
    async fn send_text_content_matches_fixture() {
        let server = MockServer::start().await;
        mount_token(&server, token_response("tok", 3600)).await;
        mount_send_expecting(&server, expected_body("sinch_outbound_text.json")).await;
        let content = OutboundContent::Text("Hello Jane, agent Sam here.".into());
        assert_eq!(send_content(&server, &content).await, accepted());
    }

    #[tokio::test]
    async fn send_media_matches_fixture() {
        let server = MockServer::start().await;
        mount_token(&server, token_response("tok", 3600)).await;
        mount_send_expecting(&server, expected_body("sinch_outbound_media.json")).await;
        let content = outbound_media(MediaKind::Document, INVOICE_URL, None, None);
        assert_eq!(send_content(&server, &content).await, accepted());
    }

    #[tokio::test]
    async fn send_media_with_file_name_sets_filename_override() {
        let server = MockServer::start().await;
        mount_token(&server, token_response("tok", 3600)).await;
        mount_send_expecting(
            &server,
            body_with_message(serde_json::json!({"media_message": {
                "url": INVOICE_URL, "filename_override": "Invoice 4711.pdf"
            }})),
        )
        .await;
        let content = outbound_media(MediaKind::Document, INVOICE_URL, None, Some("Invoice 4711.pdf"));
        assert_eq!(send_content(&server, &content).await, accepted());
    }

    #[tokio::test]
    async fn send_captioned_image_is_a_card_message() {
        let server = MockServer::start().await;
        mount_token(&server, token_response("tok", 3600)).await;
        let url = "https://cdn.example.com/files/box.jpg";
        mount_send_expecting(
            &server,
            body_with_message(serde_json::json!({"card_message": {
                "title": "The damaged box", "media_message": {"url": url}
            }})),
        )
        .await;
        let content = outbound_media(MediaKind::Image, url, Some("The damaged box"), Some("box.jpg"));
        assert_eq!(send_content(&server, &content).await, accepted());
    }

    #[tokio::test]
    async fn send_captioned_document_stays_a_media_message() {
        let server = MockServer::start().await;
        mount_token(&server, token_response("tok", 3600)).await;
        mount_send_expecting(&server, expected_body("sinch_outbound_media.json")).await;
        // Documents (and audio) keep media_message; the caption cannot travel. A blank
        // caption on an image is no caption either.
        let content =
            outbound_media(MediaKind::Document, INVOICE_URL, Some("Here is your invoice"), Some(" "));
        assert_eq!(send_content(&server, &content).await, accepted());
        let server = MockServer::start().await;
        mount_token(&server, token_response("tok", 3600)).await;
        let url = "https://cdn.example.com/files/box.jpg";
        mount_send_expecting(&server, body_with_message(serde_json::json!({"media_message": {"url": url}})))
            .await;
        let content = outbound_media(MediaKind::Image, url, Some("  "), None);
        assert_eq!(send_content(&server, &content).await, accepted());
    }

    #[tokio::test]
    async fn send_template_matches_fixture() {
        let server = MockServer::start().await;
        mount_token(&server, token_response("tok", 3600)).await;
        mount_send_expecting(&server, expected_body("sinch_outbound_template.json")).await;
        let content = OutboundContent::Template(OutboundTemplate {
            name: "order_update".into(),
            language: "en_US".into(),
            body_parameters: vec!["Jane".into(), "4711".into()],
        });
        assert_eq!(send_content(&server, &content).await, accepted());
    }

    #[tokio::test]
    async fn send_template_without_parameters() {
        let server = MockServer::start().await;
        mount_token(&server, token_response("tok", 3600)).await;
        mount_send_expecting(
            &server,
            body_with_message(serde_json::json!({"template_message": {"channel_template": {"WHATSAPP": {
                "template_id": "hello_world", "language_code": "en", "parameters": {}
            }}}})),
        )
        .await;
        let content = OutboundContent::Template(OutboundTemplate {
            name: "hello_world".into(),
            language: "en".into(),
            body_parameters: vec![],
        });
        assert_eq!(send_content(&server, &content).await, accepted());
    }

    #[tokio::test]
    async fn send_reuses_token_and_retries_a_revoked_one() {
        let server = MockServer::start().await;
        mount_token(&server, token_response("tok", 3600)).await;
        mount_send(&server, sent_response()).await;
        let c = client();
        let content = outbound_media(MediaKind::Image, "https://cdn.example.com/a.jpg", None, None);
        let uri = server.uri();
        let send = async |c: &SinchClient| {
            c.send(&uri, &uri, PROJECT, APP_ID, "key-id", "key-secret", "+1555", &content).await
        };
        assert_eq!(send(&c).await, accepted());
        assert_eq!(send(&c).await, accepted());
        let requests = server.received_requests().await.expect("recording");
        assert_eq!(count(&requests, "/oauth2/token"), 1);
        server.reset().await;
        mount_token(&server, token_response("tok", 3600)).await;
        Mock::given(method("POST"))
            .and(path(format!("/v1/projects/{PROJECT}/messages:send")))
            .respond_with(ResponseTemplate::new(401))
            .mount(&server)
            .await;
        assert!(matches!(send(&c).await, SendOutcome::Rejected { http_status: 401, .. }));
        let requests = server.received_requests().await.expect("recording");
        assert_eq!(count(&requests, "/oauth2/token"), 1);
        assert_eq!(count(&requests, &format!("/v1/projects/{PROJECT}/messages:send")), 2);
    }

    async fn respond_with_reason(status: u16, reason: &str) -> SendOutcome {
        let server = MockServer::start().await;
        mount_token(&server, token_response("tok", 3600)).await;
        let info = serde_json::json!({"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason});
        let body = serde_json::json!({"error": {
            "code": status, "message": "Failed", "status": "FAILED_PRECONDITION", "details": [info]
        }});
        mount_send(&server, ResponseTemplate::new(status).set_body_json(body)).await;
        send_with(&client(), &server, "hi").await
    }

    #[tokio::test]
    async fn reason_codes_decide_retry() {
        match respond_with_reason(400, "RATE_LIMITED").await {
            SendOutcome::Retryable { reason, .. } => assert!(reason.contains("RATE_LIMITED"), "{reason}"),
            other => panic!("{other:?}"),
        }
        for code in [
            "OUTSIDE_ALLOWED_SENDING_WINDOW",
            "TEMPLATE_NOT_FOUND",
            "TEMPLATE_INSUFFICIENT_PARAMETERS",
            "TEMPLATE_NON_EXISTING_LANGUAGE_OR_VERSION",
            "MEDIA_TOO_LARGE",
            "MEDIA_TYPE_UNSUPPORTED",
            "MEDIA_NOT_REACHABLE",
            "RECIPIENT_NOT_OPTED_IN",
        ] {
            match respond_with_reason(400, code).await {
                SendOutcome::Rejected { http_status: 400, error } => assert_eq!(error.code, code),
                other => panic!("{code}: {other:?}"),
            }
        }
        // Only whole words count.
        match respond_with_reason(400, "NOT_RATE_LIMITED_AT_ALL").await {
            SendOutcome::Rejected { error, .. } => assert_eq!(error.code, "FAILED_PRECONDITION"),
            other => panic!("{other:?}"),
        }
        assert_eq!(reason_code_in("x MEDIA_TOO_LARGE, RATE_LIMITED"), Some("MEDIA_TOO_LARGE"));
        assert_eq!(reason_code_in("rate_limited RATE_LIMITEDX"), None);
        assert_eq!(reason_code_in(""), None);
    }

    // -- fetch_media -------------------------------------------------------------------

    #[tokio::test]
    async fn fetch_media_is_a_plain_get() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/whatsapp/FAKE-MEDIA-ID.jpg"))
            .respond_with(ResponseTemplate::new(200).set_body_raw(b"jpeg bytes".to_vec(), "image/jpeg"))
            .expect(1)
            .mount(&server)
            .await;
        let url = format!("{}/whatsapp/FAKE-MEDIA-ID.jpg", server.uri());
        let media = client().fetch_media(&url, 1024).await.expect("fetched");
        assert_eq!(
            media,
            FetchedMedia { bytes: b"jpeg bytes".to_vec(), content_type: Some("image/jpeg".into()) }
        );
        let requests = server.received_requests().await.expect("recording");
        assert!(requests[0].headers.get("authorization").is_none());
    }

    #[tokio::test]
    async fn fetch_media_classifies_failures() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/gone"))
            .respond_with(ResponseTemplate::new(404))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/busy"))
            .respond_with(ResponseTemplate::new(503))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/big"))
            .respond_with(ResponseTemplate::new(200).set_body_raw(vec![7u8; 4096], "video/mp4"))
            .mount(&server)
            .await;
        let c = client();
        let uri = server.uri();
        assert!(matches!(c.fetch_media(&format!("{uri}/gone"), 1024).await, Err(FetchError::Permanent(_))));
        assert!(matches!(c.fetch_media(&format!("{uri}/busy"), 1024).await, Err(FetchError::Retryable(_))));
        assert_eq!(
            c.fetch_media(&format!("{uri}/big"), 4095).await,
            Err(FetchError::TooLarge { limit: 4095 })
        );
        for url in
            ["", "relative/x.jpg", "file:///etc/passwd", "ftp://example.com/x.jpg", "javascript:alert(1)"]
        {
            assert!(matches!(c.fetch_media(url, 1024).await, Err(FetchError::Permanent(_))), "{url:?}");
        }
        assert!(server.received_requests().await.expect("recording").len() == 3);
    }

    #[test]
    fn retry_after_formats() {
        assert_eq!(parse_retry_after(" 30 "), Some(Duration::from_secs(30)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon"), None);
    }

    // -- robustness --------------------------------------------------------------------

    #[test]
    fn random_and_mutated_inputs_never_panic() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let json_alphabet = br#"{}[]":,.-+0123456789eEabcdefghijklmnopqrstuvwxyzTZ_ \n\\"#;
        let now = ts(1_767_607_201);
        let check = |body: &[u8], rng: &mut Rng| {
            let _ = parse_webhook(body);
            let nonce = String::from_utf8_lossy(&rng.bytes(30, None)).into_owned();
            let stamp = String::from_utf8_lossy(&rng.bytes(20, Some(b"-0123456789 "))).into_owned();
            let sig = String::from_utf8_lossy(&rng.bytes(60, None)).into_owned();
            let skew = Duration::from_secs(rng.next());
            assert!(
                verify_signature(FIXTURE_SECRET, body, Some(&nonce), Some(&stamp), Some(&sig), now, skew)
                    .is_err()
            );
            // A correct signature over a random timestamp: Ok, Stale or Bad, never a panic.
            let good = sign(&rng.bytes(40, None), body, &nonce, &stamp);
            let _ =
                verify_signature(FIXTURE_SECRET, body, Some(&nonce), Some(&stamp), Some(&good), now, skew);
        };
        for i in 0..3000 {
            let alphabet = if i % 2 == 0 { None } else { Some(&json_alphabet[..]) };
            let body = rng.bytes(512, alphabet);
            check(&body, &mut rng);
        }
        let names = fixture_names("sinch_", ".json");
        assert!(names.len() >= 12, "{names:?}");
        for name in names {
            let original = fixture(&name);
            for _ in 0..150 {
                let mut body = original.clone();
                mutate_bytes(&mut body, &mut rng, json_alphabet);
                check(&body, &mut rng);
            }
            let value: Value = serde_json::from_slice(&original).expect("fixture is JSON");
            for _ in 0..150 {
                let mut v = value.clone();
                for _ in 0..=rng.below(3) {
                    mutate_value(&mut v, &mut rng, &["2026-01-05T10:00:01Z"]);
                }
                check(&serde_json::to_vec(&v).expect("ser"), &mut rng);
            }
        }
    }

    // -- property-based fuzzing (proptest) ---------------------------------------------

    mod props {
        use super::*;
        use proptest::prelude::*;

        fn field_value() -> impl Strategy<Value = Value> {
            prop_oneof![
                any::<String>().prop_map(Value::String),
                "(https?|ftp|file)://[a-z.:@0-9]{0,20}(/[ -~]{0,20}){0,3}(\\.(jpg|PNG|mp4|ogg|pdf|webp|x))?"
                    .prop_map(Value::String),
                Just(Value::String(String::new())),
                Just(Value::Null),
                any::<i64>().prop_map(Value::from),
                Just(serde_json::json!({"url": "https://x/a.jpg"})),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]

            #[test]
            fn arbitrary_bytes_never_panic(
                bytes in proptest::collection::vec(any::<u8>(), 0..2048),
                nonce in any::<String>(),
                timestamp in "-?[0-9]{0,12}",
                signature in any::<String>(),
                skew in any::<u64>(),
            ) {
                let _ = parse_webhook(&bytes);
                let now = ts(1_767_607_201);
                let skew = Duration::from_secs(skew);
                let verdict = verify_signature(
                    FIXTURE_SECRET, &bytes, Some(&nonce), Some(&timestamp), Some(&signature), now, skew,
                );
                prop_assert!(verdict.is_err(), "random input forged a signature");
                // The right signature over the same input: anything but Bad.
                let good = sign(FIXTURE_SECRET, &bytes, &nonce, &timestamp);
                let verdict = verify_signature(
                    FIXTURE_SECRET, &bytes, Some(&nonce), Some(&timestamp), Some(&good), now, skew,
                );
                if !nonce.trim().is_empty() && !timestamp.trim().is_empty() {
                    // Bad only when the (authentic) timestamp is unreadable as Unix seconds.
                    if verdict == Err(SinchSignatureError::Bad) {
                        let readable = timestamp.trim().parse::<i64>().ok().and_then(|s| DateTime::from_timestamp(s, 0));
                        prop_assert!(readable.is_none());
                    }
                }
                let text = String::from_utf8_lossy(&bytes);
                let _ = media_kind_from_url(&text);
                let _ = last_path_segment(&text);
                let _ = reason_code_in(&text);
            }

            #[test]
            fn mutated_media_fixtures_parse_consistently(
                card in any::<bool>(),
                url in field_value(),
                caption in field_value(),
                filename in field_value(),
                mime in field_value(),
            ) {
                let (name, key) = if card {
                    ("sinch_inbound_media_card.json", "media_card_message")
                } else {
                    ("sinch_inbound_media.json", "media_message")
                };
                let mut v = fixture_json(name);
                let payload = &mut v["message"]["contact_message"][key];
                payload["url"] = url.clone();
                payload["caption"] = caption.clone();
                payload["filename_override"] = filename.clone();
                payload["mime_type"] = mime;
                let bytes = serde_json::to_vec(&v).expect("ser");
                let batch = parse_webhook(&bytes).expect("only media fields changed");
                prop_assert_eq!(batch.messages.len(), 1);
                let usable_url = url.as_str().map(str::trim).filter(|u| !u.is_empty());
                match (&batch.messages[0].body, usable_url) {
                    (InboundBody::Media(m), Some(u)) => {
                        prop_assert_eq!(&m.source, &MediaSource::Url(u.to_owned()));
                        let caption = caption.as_str().filter(|c| !c.trim().is_empty());
                        prop_assert_eq!(m.caption.as_deref(), caption);
                        if let Some(f) = filename.as_str().filter(|f| !f.trim().is_empty()) {
                            prop_assert_eq!(m.filename.as_deref(), Some(f));
                        }
                    }
                    (InboundBody::Unsupported { kind, .. }, None) => prop_assert_eq!(kind.as_str(), key),
                    (other, u) => prop_assert!(false, "{:?} for url {:?}", other, u),
                }
                // Any body signs and verifies, and the fixture's own signature no longer fits
                // unless nothing changed.
                let sig = sign(FIXTURE_SECRET, &bytes, FIXTURE_NONCE, FIXTURE_TS);
                let now = ts(1_767_607_201);
                prop_assert_eq!(
                    verify_signature(FIXTURE_SECRET, &bytes, Some(FIXTURE_NONCE), Some(FIXTURE_TS), Some(&sig), now, SKEW),
                    Ok(())
                );
            }

            #[test]
            fn mutated_fixture_bytes_never_panic(
                index in 0usize..14,
                edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..6),
            ) {
                let names = fixture_names("sinch_", ".json");
                let mut body = fixture(&names[index % names.len()]);
                for (at, byte, op) in edits {
                    let i = at.index(body.len() + 1);
                    match op {
                        0 if i < body.len() => body[i] = byte,
                        1 => body.insert(i, byte),
                        _ => body.truncate(i),
                    }
                }
                let _ = parse_webhook(&body);
                let now = ts(1_767_607_201);
                let _ = verify_signature(FIXTURE_SECRET, &body, Some(FIXTURE_NONCE), Some(FIXTURE_TS), Some(TEXT_SIG), now, SKEW);
            }
        }
    }
}
