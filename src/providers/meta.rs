//! Meta WhatsApp Cloud API (Graph) adapter.
//!
//! - Webhook POSTs are authenticated with `X-Hub-Signature-256: sha256=<hex>`, an
//!   HMAC-SHA256 of the raw body bytes keyed with the App Secret ([`verify_signature`]).
//!   Always verify the bytes exactly as received, before any parsing.
//! - The GET verification handshake echoes `hub.challenge` when `hub.mode=subscribe` and
//!   `hub.verify_token` matches ([`verify_handshake`]).
//! - Webhook bodies are an `entry[].changes[].value` envelope that batches inbound
//!   messages and delivery statuses ([`parse_webhook`]). Inbound image, audio, video,
//!   document and sticker messages carry only a media id (no URL, no bytes); they become
//!   [`InboundBody::Media`] with [`MediaSource::MetaMediaId`].
//! - Media is downloaded in two steps ([`MetaClient::fetch_media`]): `GET {base}/{version}/{media_id}`
//!   answers a short-lived URL, which is then fetched with the same Bearer token.
//! - Sending is `POST {base}/{version}/{phone_number_id}/messages` with a Bearer token
//!   ([`MetaClient::send`]): text, media by `link`, or an approved template; the answer is
//!   classified for the outbox's retry policy.
//!
//! Reference: the Meta section of the provider notes; fixtures under `tests/fixtures/meta_*`.

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

/// Name of the header that carries the webhook signature.
pub const SIGNATURE_HEADER: &str = "X-Hub-Signature-256";
const SIGNATURE_PREFIX: &str = "sha256=";

/// Graph error codes that mean "slow down" or "temporarily unavailable" even when they
/// arrive with HTTP 400: 4 app call limit, 80007 WABA rate limit, 130429 throughput,
/// 131048 spam rate limit, 131056 pair rate limit, 131057 account in maintenance,
/// 131016 service unavailable (the provider notes' throttling list, §2.4).
///
/// Deliberately not here: 131064 (daily messaging limit: retrying within the outbox's
/// back-off cannot succeed), 131052/131053 (media download/upload failed: the link or the
/// file is bad, so a retry sends the same bad media), and 80004 (not in the provider notes).
/// Kaleyra forwards Meta's codes, so its client consults this list too.
pub(crate) const RETRYABLE_GRAPH_CODES: [i64; 7] = [4, 80007, 130429, 131048, 131056, 131057, 131016];

fn hmac_sha256(key: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length (long keys are hashed first), so this cannot fail.
    <HmacSha256 as KeyInit>::new_from_slice(key).expect("HMAC accepts keys of any length")
}

// ---------------------------------------------------------------------------------------
// Webhook signature

/// The full `X-Hub-Signature-256` value (`sha256=<lowercase hex>`) for `body`.
///
/// Used by tests and the load generator to produce requests Meta would send.
pub fn sign(app_secret: &[u8], body: &[u8]) -> String {
    let mut mac = hmac_sha256(app_secret);
    mac.update(body);
    format!("{SIGNATURE_PREFIX}{}", hex::encode(mac.finalize().into_bytes()))
}

/// Checks the `X-Hub-Signature-256` header against the raw request body.
///
/// `raw_body` must be the bytes exactly as received: re-serialised JSON does not match.
/// The comparison is constant-time (`Mac::verify_slice`). An empty `app_secret` is treated
/// as a misconfiguration and never verifies, since anyone could sign with it.
pub fn verify_signature(
    app_secret: &[u8],
    raw_body: &[u8],
    header: Option<&str>,
) -> Result<(), WebhookError> {
    let header = header.ok_or(WebhookError::MissingSignature)?;
    let hex_sig = header.trim().strip_prefix(SIGNATURE_PREFIX).ok_or(WebhookError::BadSignature)?;
    let expected = hex::decode(hex_sig).map_err(|_| WebhookError::BadSignature)?;
    if app_secret.is_empty() {
        return Err(WebhookError::BadSignature);
    }
    let mut mac = hmac_sha256(app_secret);
    mac.update(raw_body);
    mac.verify_slice(&expected).map_err(|_| WebhookError::BadSignature)
}

// ---------------------------------------------------------------------------------------
// GET verification handshake

/// Why a `GET` verification request was refused (the webhook handler answers 403 for a wrong
/// token and 400 for a malformed request).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    #[error("hub.mode is not \"subscribe\"")]
    WrongMode,
    #[error("hub.verify_token does not match")]
    WrongToken,
    #[error("hub.challenge is missing")]
    MissingChallenge,
}

/// Checks Meta's subscription handshake (`hub.mode`, `hub.verify_token`, `hub.challenge`
/// query parameters, already URL-decoded) and returns the challenge to echo verbatim as
/// a `200 text/plain` body.
///
/// The token is compared in constant time. An empty `expected_token` never matches, so a
/// missing configuration cannot be satisfied by an empty `hub.verify_token`.
pub fn verify_handshake(
    mode: Option<&str>,
    token: Option<&str>,
    challenge: Option<&str>,
    expected_token: &str,
) -> Result<String, HandshakeError> {
    if mode != Some("subscribe") {
        return Err(HandshakeError::WrongMode);
    }
    let token = token.ok_or(HandshakeError::WrongToken)?;
    if expected_token.is_empty() || !constant_time_eq(token.as_bytes(), expected_token.as_bytes()) {
        return Err(HandshakeError::WrongToken);
    }
    match challenge {
        Some(c) if !c.is_empty() => Ok(c.to_owned()),
        _ => Err(HandshakeError::MissingChallenge),
    }
}

/// Equality whose timing does not reveal how much of a guess matches, nor whether its
/// length is right: both sides are MACed under a fixed key and the fixed-size tags are
/// compared with the constant-time `verify_slice`.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    const KEY: &[u8] = b"switchboard/meta/verify-token";
    let mut mac_a = hmac_sha256(KEY);
    mac_a.update(a);
    let tag_a = mac_a.finalize().into_bytes();
    let mut mac_b = hmac_sha256(KEY);
    mac_b.update(b);
    mac_b.verify_slice(&tag_a).is_ok()
}

// ---------------------------------------------------------------------------------------
// Webhook parsing

#[derive(Deserialize)]
struct Envelope {
    object: String,
    entry: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    changes: Vec<Change>,
}

#[derive(Deserialize)]
struct Change {
    field: String,
    // Kept untyped: its shape depends on `field` (which follows it in Meta's JSON), and
    // fields we ignore (template status updates, account updates …) must not fail the batch.
    #[serde(default)]
    value: Value,
}

#[derive(Deserialize)]
struct MessagesValue {
    metadata: Option<Metadata>,
    contacts: Option<Vec<Contact>>,
    messages: Option<Vec<RawMessage>>,
    statuses: Option<Vec<RawStatus>>,
}

#[derive(Deserialize)]
struct Metadata {
    phone_number_id: String,
}

#[derive(Deserialize)]
struct Contact {
    wa_id: Option<String>,
    profile: Option<Profile>,
}

#[derive(Deserialize)]
struct Profile {
    name: Option<String>,
}

#[derive(Deserialize)]
struct RawMessage {
    id: String,
    from: String,
    timestamp: Value,
    #[serde(rename = "type")]
    kind: String,
    // The per-type payload (`text`, `image`, `interactive` …) lives under a key named
    // after `type`. It is read leniently: an odd payload degrades the summary instead of
    // failing the whole batch, which Meta would otherwise redeliver for 7 days.
    #[serde(flatten)]
    rest: Map<String, Value>,
}

#[derive(Deserialize)]
struct RawStatus {
    id: String,
    status: String,
    timestamp: Value,
    recipient_id: Option<String>,
    errors: Option<Vec<RawError>>,
}

#[derive(Deserialize)]
struct RawError {
    code: Option<Value>,
    title: Option<String>,
    message: Option<String>,
    error_data: Option<ErrorData>,
}

#[derive(Deserialize)]
struct ErrorData {
    details: Option<String>,
}

/// Parses a webhook POST body into normalized messages and statuses.
///
/// Call [`verify_signature`] on the same bytes first. Changes whose `field` is not
/// `"messages"` (template status updates and other subscriptions) are skipped, as are
/// statuses we do not track (`played`, or values Meta adds later). Anything that is not
/// the expected envelope, or a message/status missing its id, sender or timestamp, is
/// [`WebhookError::Malformed`]. Never panics, whatever the input.
pub fn parse_webhook(raw_body: &[u8]) -> Result<WebhookBatch, WebhookError> {
    let envelope: Envelope = serde_json::from_slice(raw_body).map_err(|e| malformed_json("body", &e))?;
    if envelope.object != "whatsapp_business_account" {
        return Err(WebhookError::Malformed("`object` is not whatsapp_business_account".into()));
    }
    let mut batch = WebhookBatch::default();
    for change in envelope.entry.into_iter().flat_map(|e| e.changes) {
        if change.field != "messages" {
            continue;
        }
        let value: MessagesValue =
            serde_json::from_value(change.value).map_err(|e| malformed_json("change value", &e))?;
        let contacts = value.contacts.unwrap_or_default();
        let messages = value.messages.unwrap_or_default();
        if !messages.is_empty() {
            let phone_number_id = value
                .metadata
                .map(|m| m.phone_number_id)
                .ok_or_else(|| WebhookError::Malformed("messages without metadata.phone_number_id".into()))?;
            for raw in messages {
                batch.messages.push(normalize_message(raw, &phone_number_id, &contacts)?);
            }
        }
        for raw in value.statuses.unwrap_or_default() {
            if let Some(status) = normalize_status(raw)? {
                batch.statuses.push(status);
            }
        }
    }
    Ok(batch)
}

fn normalize_message(
    raw: RawMessage,
    phone_number_id: &str,
    contacts: &[Contact],
) -> Result<InboundMessage, WebhookError> {
    let timestamp = parse_timestamp(&raw.timestamp)?;
    let from = to_e164(&raw.from).ok_or_else(|| WebhookError::Malformed("empty message `from`".into()))?;
    let profile_name = profile_name_for(contacts, &raw.from);
    let body = inbound_body(&raw.kind, &raw.rest);
    Ok(InboundMessage {
        provider_message_id: raw.id,
        from,
        to_phone_number_id: phone_number_id.to_owned(),
        profile_name,
        timestamp,
        body,
    })
}

/// The sender's profile name: the contact whose `wa_id` is the sender, or the only
/// contact of the change (`wa_id` and `from` can differ in format for some countries).
fn profile_name_for(contacts: &[Contact], from: &str) -> Option<String> {
    let digits = from.trim_start_matches('+');
    let contact = contacts
        .iter()
        .find(|c| c.wa_id.as_deref().map(|w| w.trim_start_matches('+')) == Some(digits))
        .or(if contacts.len() == 1 { contacts.first() } else { None })?;
    contact.profile.as_ref()?.name.clone().filter(|n| !n.is_empty())
}

fn inbound_body(kind: &str, rest: &Map<String, Value>) -> InboundBody {
    let payload = rest.get(kind);
    let str_at =
        |key: &str| payload.and_then(|p| p.get(key)).and_then(Value::as_str).filter(|s| !s.is_empty());
    if kind == "text"
        && let Some(body) = payload.and_then(|p| p.get("body")).and_then(Value::as_str)
    {
        return InboundBody::Text(body.to_owned());
    }
    if let Some(media_kind) = MediaKind::parse(kind)
        && let Some(id) = payload.and_then(|p| p.get("id")).and_then(media_id_text)
    {
        return InboundBody::Media(InboundMedia {
            kind: media_kind,
            source: MediaSource::MetaMediaId(id),
            content_type: str_at("mime_type").map(str::to_owned),
            caption: str_at("caption").map(str::to_owned),
            // Meta sends `filename` for documents only; kept whenever it is there.
            filename: str_at("filename").map(str::to_owned),
        });
    }
    // What remains: media without a usable id (nothing to download, so the caption is the
    // best an agent gets) and the types the contact center does not handle natively.
    let summary = match kind {
        "image" | "video" | "document" | "audio" | "sticker" => str_at("caption")
            .map(str::to_owned)
            .or_else(|| str_at("filename").filter(|_| kind == "document").map(|f| format!("[document] {f}"))),
        "interactive" => payload.and_then(|p| {
            let reply = p.get("button_reply").or_else(|| p.get("list_reply"))?;
            reply.get("title").and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned)
        }),
        "button" => str_at("text").or_else(|| str_at("payload")).map(str::to_owned),
        "location" => {
            let coord = |k: &str| payload.and_then(|p| p.get(k)).and_then(Value::as_f64);
            match (coord("latitude"), coord("longitude")) {
                (Some(lat), Some(lon)) => Some(format!("[location] {lat},{lon}")),
                _ => None,
            }
        }
        "reaction" => str_at("emoji").map(|e| format!("[reaction] {e}")),
        _ => None,
    };
    InboundBody::Unsupported {
        kind: kind.to_owned(),
        summary: summary.unwrap_or_else(|| format!("[{kind}]")),
    }
}

/// A media id as it appears in a webhook (a string of digits; a bare number is tolerated),
/// if it could be fetched: it goes into the Graph URL path, so only ids that
/// [`is_valid_media_id`] are kept. Anything else leaves the message `Unsupported` instead
/// of handing the media fetcher an id it would refuse anyway.
fn media_id_text(v: &Value) -> Option<String> {
    let id = match v {
        Value::String(s) => s.trim().to_owned(),
        Value::Number(n) if n.is_u64() => n.to_string(),
        _ => return None,
    };
    is_valid_media_id(&id).then_some(id)
}

/// Meta media ids are digits; letters, `_` and `-` are allowed too for safety margin. Nothing
/// that could change the URL path (`/`, `.`, `?`, `%`) gets through.
pub fn is_valid_media_id(id: &str) -> bool {
    !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn normalize_status(raw: RawStatus) -> Result<Option<StatusUpdate>, WebhookError> {
    let status = match raw.status.as_str() {
        "sent" => DeliveryStatus::Sent,
        "delivered" => DeliveryStatus::Delivered,
        "read" => DeliveryStatus::Read,
        "failed" => DeliveryStatus::Failed,
        // `played` (voice message played) and any status Meta adds later carry nothing the
        // contact center tracks; failing the batch would make Meta redeliver it for days.
        other => {
            tracing::debug!(status = %truncate(other), "ignoring Meta status we do not track");
            return Ok(None);
        }
    };
    let timestamp = parse_timestamp(&raw.timestamp)?;
    let error = raw.errors.and_then(|errors| errors.into_iter().next()).map(|e| ProviderError {
        code: e.code.as_ref().map(code_to_string).unwrap_or_default(),
        title: e.title.or(e.message).unwrap_or_default(),
        detail: e.error_data.and_then(|d| d.details),
    });
    Ok(Some(StatusUpdate {
        provider_message_id: raw.id,
        status,
        timestamp,
        // Group statuses may lack it; an empty recipient is better than dropping the status.
        recipient: raw.recipient_id.as_deref().and_then(to_e164).unwrap_or_default(),
        error,
    }))
}

/// Meta timestamps are Unix seconds as a string; numbers are accepted too.
fn parse_timestamp(v: &Value) -> Result<DateTime<Utc>, WebhookError> {
    let secs = match v {
        Value::String(s) => s.trim().parse::<i64>().ok(),
        Value::Number(n) => n.as_i64(),
        _ => None,
    };
    secs.and_then(|s| DateTime::from_timestamp(s, 0))
        .ok_or_else(|| WebhookError::Malformed("timestamp is not Unix seconds".into()))
}

/// Meta numbers are digits without '+'; the domain wants E.164 with '+'.
fn to_e164(number: &str) -> Option<String> {
    let digits = number.trim().trim_start_matches('+');
    (!digits.is_empty()).then(|| format!("+{digits}"))
}

fn code_to_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A short reason that does not quote the payload: serde's "invalid type" messages echo
/// values, which may be customer data.
fn malformed_json(what: &str, e: &serde_json::Error) -> WebhookError {
    use serde_json::error::Category;
    // Errors from `from_value` have no position (line 0).
    let at =
        if e.line() > 0 { format!(" at line {} column {}", e.line(), e.column()) } else { String::new() };
    let reason = match e.classify() {
        Category::Eof => format!("{what}: truncated JSON"),
        Category::Syntax | Category::Io => format!("{what}: not JSON{at}"),
        // "missing field `x` at line …" names only our own field, so it is safe to keep.
        Category::Data if e.to_string().starts_with("missing field") => {
            format!("{what}: {}", truncate(&e.to_string()))
        }
        Category::Data => format!("{what}: unexpected shape{at}"),
    };
    WebhookError::Malformed(reason)
}

// ---------------------------------------------------------------------------------------
// Outbound client

/// The Cloud API message body for `content` (also Kaleyra v2's `messaging_object`, which is
/// the same Meta shape).
///
/// - Text: `text{preview_url:false, body}`; `reply_to` adds `context{message_id}`.
/// - Media by `link` (Meta downloads it from our signed URL): `caption` only for image,
///   video and document and `filename` only for document, because Meta rejects them on
///   audio and sticker. Empty strings are left out rather than sent as empty fields.
/// - Template: `template{name, language{code}, components}` with one `body` component of
///   text parameters; `components` is left out when there are no parameters (a template
///   without variables is sent with name and language only).
pub(crate) fn message_payload(to_e164: &str, content: &OutboundContent, reply_to: Option<&str>) -> Value {
    let mut payload = Map::new();
    payload.insert("messaging_product".into(), "whatsapp".into());
    payload.insert("recipient_type".into(), "individual".into());
    payload.insert("to".into(), to_e164_lenient(to_e164).into());
    if let Some(message_id) = reply_to {
        payload.insert("context".into(), serde_json::json!({ "message_id": message_id }));
    }
    let (kind, body) = match content {
        OutboundContent::Text(text) => ("text", serde_json::json!({"preview_url": false, "body": text})),
        OutboundContent::Media(media) => (media.kind.as_str(), media_object(media)),
        OutboundContent::Template(template) => ("template", template_object(template)),
    };
    payload.insert("type".into(), kind.into());
    payload.insert(kind.into(), body);
    Value::Object(payload)
}

fn media_object(media: &OutboundMedia) -> Value {
    let mut object = Map::new();
    object.insert("link".into(), media.url.clone().into());
    let non_empty = |s: &Option<String>| s.as_deref().filter(|s| !s.is_empty()).map(str::to_owned);
    if matches!(media.kind, MediaKind::Image | MediaKind::Video | MediaKind::Document)
        && let Some(caption) = non_empty(&media.caption)
    {
        object.insert("caption".into(), caption.into());
    }
    if media.kind == MediaKind::Document
        && let Some(filename) = non_empty(&media.filename)
    {
        object.insert("filename".into(), filename.into());
    }
    Value::Object(object)
}

fn template_object(template: &OutboundTemplate) -> Value {
    let mut object = Map::new();
    object.insert("name".into(), template.name.clone().into());
    object.insert("language".into(), serde_json::json!({ "code": template.language }));
    if !template.body_parameters.is_empty() {
        let parameters: Vec<Value> =
            template.body_parameters.iter().map(|p| serde_json::json!({"type": "text", "text": p})).collect();
        object.insert("components".into(), serde_json::json!([{"type": "body", "parameters": parameters}]));
    }
    Value::Object(object)
}

#[derive(Deserialize)]
struct SendResponse {
    messages: Vec<SentMessage>,
}

#[derive(Deserialize)]
struct SentMessage {
    id: String,
}

#[derive(Deserialize)]
struct GraphErrorBody {
    error: GraphError,
}

#[derive(Deserialize)]
struct GraphError {
    message: Option<String>,
    code: Option<Value>,
    error_data: Option<ErrorData>,
    is_transient: Option<bool>,
}

impl GraphError {
    fn code_number(&self) -> Option<i64> {
        match self.code.as_ref()? {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    fn into_provider_error(self) -> ProviderError {
        ProviderError {
            code: self.code.as_ref().map(code_to_string).unwrap_or_else(|| "unknown".into()),
            title: self.message.unwrap_or_default(),
            detail: self.error_data.and_then(|d| d.details),
        }
    }
}

/// Sends messages through the Cloud API.
///
/// Stateless apart from the shared `reqwest::Client`; the endpoint and credentials are
/// per call because each contact-center account has its own number and token. Configure
/// timeouts on the `reqwest::Client`: a timeout is reported as retryable.
#[derive(Debug, Clone)]
pub struct MetaClient {
    http: reqwest::Client,
}

impl MetaClient {
    pub fn new(http: reqwest::Client) -> Self {
        Self { http }
    }

    /// Sends a free-form text message (only allowed inside the 24-hour customer service
    /// window; outside it Meta answers 131047, which is `Rejected`).
    ///
    /// `reply_to` quotes an earlier message by its wamid. `to_e164` gets a leading '+' if
    /// it lacks one: without it Meta would prefix the business number's country code.
    /// Never panics; every failure is a [`SendOutcome`].
    // The argument list is the interface the outbox was written against.
    #[allow(clippy::too_many_arguments)]
    pub async fn send_text(
        &self,
        api_base_url: &str,
        api_version: &str,
        phone_number_id: &str,
        access_token: &str,
        to_e164: &str,
        body: &str,
        reply_to: Option<&str>,
    ) -> SendOutcome {
        let payload = message_payload(to_e164, &OutboundContent::Text(body.to_owned()), reply_to);
        let url = messages_url(api_base_url, api_version, phone_number_id);
        self.post_message(&url, access_token, &payload).await
    }

    /// Sends text, media or a template (see `message_payload` for the exact bodies).
    ///
    /// Text and media are only allowed inside the 24-hour window (131047 outside it, which
    /// is `Rejected`); templates are allowed at any time. Media goes by `link`: Meta fetches
    /// the URL itself, so it must be publicly reachable for as long as Meta may retry; a
    /// link Meta cannot fetch is reported as 131052/131053 (`Rejected`, here or later in a
    /// failed status). `to_e164` gets a leading '+' if it lacks one. Never panics; every
    /// failure is a [`SendOutcome`].
    pub async fn send(
        &self,
        api_base_url: &str,
        api_version: &str,
        phone_number_id: &str,
        access_token: &str,
        to_e164: &str,
        content: &OutboundContent,
    ) -> SendOutcome {
        let payload = message_payload(to_e164, content, None);
        let url = messages_url(api_base_url, api_version, phone_number_id);
        self.post_message(&url, access_token, &payload).await
    }

    /// Downloads an inbound media item by its Meta media id, holding at most `max_bytes`.
    ///
    /// 1. `GET {base}/{version}/{media_id}` with the Bearer token answers
    ///    `{url, mime_type, sha256, file_size, id}` (fixture `meta_media_url_response.json`).
    ///    A `file_size` over `max_bytes` is [`FetchError::TooLarge`] without downloading.
    /// 2. `GET {url}` with the same token (the URL is valid for 5 minutes, so it is used at
    ///    once and never stored). The download's `Content-Type` wins over the metadata's
    ///    `mime_type`, which fills in when the download has none.
    ///
    /// Classification: transport failures, 5xx, 408, 429, Graph rate-limit codes (even on a
    /// 400) and `is_transient` errors are retryable; other 4xx and an unreadable answer are
    /// permanent. An id that is not `[A-Za-z0-9_-]+` is refused before any request, since it
    /// becomes part of the URL path.
    pub async fn fetch_media(
        &self,
        api_base_url: &str,
        api_version: &str,
        access_token: &str,
        media_id: &str,
        max_bytes: u64,
    ) -> Result<FetchedMedia, FetchError> {
        if !is_valid_media_id(media_id) {
            return Err(FetchError::Permanent("not a Meta media id".into()));
        }
        let url =
            format!("{}/{}/{}", api_base_url.trim_end_matches('/'), api_version.trim_matches('/'), media_id);
        let response =
            self.http.get(url).bearer_auth(access_token).send().await.map_err(fetch_transport_error)?;
        let status = response.status();
        if !status.is_success() {
            // The status alone classifies the failure; an unreadable error body only loses
            // the Graph code, which refines it.
            let body = read_bounded(response, MAX_METADATA_BYTES).await.unwrap_or_default();
            return Err(classify_metadata_error(status.as_u16(), &body));
        }
        let body = read_bounded(response, MAX_METADATA_BYTES).await?;
        let metadata: MediaUrlResponse = serde_json::from_slice(&body)
            .map_err(|_| FetchError::Permanent("media metadata is not the expected JSON object".into()))?;
        if metadata.file_size.as_ref().and_then(size_value).is_some_and(|size| size > max_bytes) {
            return Err(FetchError::TooLarge { limit: max_bytes });
        }
        let download_url = metadata
            .url
            .as_deref()
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .ok_or_else(|| FetchError::Permanent("media metadata without a url".into()))?;
        // The token travels to this URL, so only plain web URLs are followed. (reqwest drops
        // the Authorization header if the download redirects to another host.)
        match reqwest::Url::parse(download_url) {
            Ok(u) if matches!(u.scheme(), "https" | "http") => {}
            _ => return Err(FetchError::Permanent("media metadata url is not an http(s) URL".into())),
        }
        let mut media = download(self.http.get(download_url).bearer_auth(access_token), max_bytes).await?;
        if media.content_type.as_deref().is_none_or(|c| c.trim().is_empty()) {
            media.content_type = metadata.mime_type.filter(|m| !m.trim().is_empty());
        }
        Ok(media)
    }

    /// The WhatsApp Business Account's message templates (`GET /{version}/{waba_id}/message_templates`,
    /// Bearer), following the `paging.cursors.after` cursor for at most `MAX_TEMPLATE_PAGES`
    /// pages. Failures are classified like media metadata (5xx, 429 and rate codes
    /// retryable; other 4xx and an unreadable answer permanent).
    pub async fn list_templates(
        &self,
        api_base_url: &str,
        api_version: &str,
        waba_id: &str,
        access_token: &str,
    ) -> Result<Vec<TemplateInfo>, FetchError> {
        if !is_valid_media_id(waba_id) {
            return Err(FetchError::Permanent("not a WhatsApp Business Account id".into()));
        }
        let base = format!(
            "{}/{}/{}/message_templates?limit=100",
            api_base_url.trim_end_matches('/'),
            api_version.trim_matches('/'),
            waba_id
        );
        let mut templates = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..MAX_TEMPLATE_PAGES {
            let mut url = reqwest::Url::parse(&base)
                .map_err(|_| FetchError::Permanent("the API base URL is not a URL".into()))?;
            if let Some(cursor) = &after {
                url.query_pairs_mut().append_pair("after", cursor);
            }
            let response =
                self.http.get(url).bearer_auth(access_token).send().await.map_err(fetch_transport_error)?;
            let status = response.status();
            let body = read_bounded(response, MAX_TEMPLATE_PAGE_BYTES).await?;
            if !status.is_success() {
                return Err(classify_metadata_error(status.as_u16(), &body));
            }
            let (page, next) = parse_template_list(&body)
                .map_err(|reason| FetchError::Permanent(format!("template list: {reason}")))?;
            templates.extend(page);
            match next {
                Some(cursor) if !cursor.is_empty() => after = Some(cursor),
                _ => break,
            }
        }
        Ok(templates)
    }

    async fn post_message(&self, url: &str, access_token: &str, payload: &impl Serialize) -> SendOutcome {
        // `bearer_auth` marks the header sensitive, so it is redacted from debug output.
        match self.http.post(url).bearer_auth(access_token).json(payload).send().await {
            Ok(response) => classify_response(response).await,
            Err(e) => classify_transport_error(&e),
        }
    }
}

/// Pages of templates read at most (100 templates each).
const MAX_TEMPLATE_PAGES: usize = 10;
/// A page of 100 templates with their components stays well under this.
const MAX_TEMPLATE_PAGE_BYTES: usize = 4 * 1024 * 1024;

/// A message template as the agent picks it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TemplateInfo {
    pub name: String,
    pub language: String,
    /// `APPROVED`, `PENDING`, `REJECTED`, `PAUSED`, `DISABLED` ...
    pub status: String,
    /// `UTILITY`, `MARKETING`, `AUTHENTICATION`.
    pub category: String,
    /// The body text with its `{{n}}` placeholders.
    pub body: Option<String>,
    /// How many body parameters a send must carry: the highest `{{n}}` in the body.
    pub body_parameters: usize,
}

/// One page of `…/message_templates`: the templates and the `after` cursor, if any.
/// Templates without a name or language are skipped rather than failing the list.
pub fn parse_template_list(raw: &[u8]) -> Result<(Vec<TemplateInfo>, Option<String>), String> {
    let value: Value = serde_json::from_slice(raw).map_err(|_| "not JSON".to_owned())?;
    let data = value.get("data").and_then(Value::as_array).ok_or_else(|| "no `data` array".to_owned())?;
    let text = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).map(str::to_owned);
    let templates = data
        .iter()
        .filter_map(|t| {
            let body = t.get("components").and_then(Value::as_array).and_then(|components| {
                components
                    .iter()
                    .find(|c| {
                        c.get("type").and_then(Value::as_str).is_some_and(|k| k.eq_ignore_ascii_case("body"))
                    })
                    .and_then(|c| text(c, "text"))
            });
            Some(TemplateInfo {
                name: text(t, "name")?,
                language: text(t, "language")?,
                status: text(t, "status").unwrap_or_default(),
                category: text(t, "category").unwrap_or_default(),
                body_parameters: body.as_deref().map(highest_placeholder).unwrap_or(0),
                body,
            })
        })
        .collect();
    let after = value.pointer("/paging/cursors/after").and_then(Value::as_str).map(str::to_owned);
    // Meta sends cursors on the last page too; `next` is present only when there is more.
    let after = after.filter(|_| value.pointer("/paging/next").is_some());
    Ok((templates, after))
}

/// The highest `{{n}}` in a template text (0 without placeholders).
fn highest_placeholder(text: &str) -> usize {
    text.split("{{")
        .skip(1)
        .filter_map(|rest| rest.split_once("}}").and_then(|(n, _)| n.trim().parse::<usize>().ok()))
        .max()
        .unwrap_or(0)
}

/// The media metadata answer is a small JSON object; anything bigger is not it.
const MAX_METADATA_BYTES: usize = 64 * 1024;

#[derive(Deserialize)]
struct MediaUrlResponse {
    url: Option<String>,
    mime_type: Option<String>,
    // A string in the spec and the fixture ("303833"); numbers are accepted too.
    file_size: Option<Value>,
}

fn size_value(v: &Value) -> Option<u64> {
    match v {
        Value::String(s) => s.trim().parse().ok(),
        Value::Number(n) => n.as_u64(),
        _ => None,
    }
}

fn fetch_transport_error(e: reqwest::Error) -> FetchError {
    // A request that cannot be built (bad base URL) is configuration: retrying cannot help.
    if e.is_builder() {
        return FetchError::Permanent(format!(
            "the request could not be built: {}",
            truncate(&e.to_string())
        ));
    }
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "transport error"
    };
    FetchError::Retryable(format!("{kind}: {}", truncate(&e.to_string())))
}

/// Reads a response body, refusing (as permanent) one longer than `limit`.
async fn read_bounded(mut response: reqwest::Response, limit: usize) -> Result<Vec<u8>, FetchError> {
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(fetch_transport_error)? {
        if bytes.len() + chunk.len() > limit {
            return Err(FetchError::Permanent("media metadata answer is too large".into()));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// A non-2xx answer to the media metadata GET, classified like a send's.
fn classify_metadata_error(status: u16, body: &[u8]) -> FetchError {
    let graph = serde_json::from_slice::<GraphErrorBody>(body).ok().map(|b| b.error);
    let retryable = status == 429
        || status == 408
        || (500..600).contains(&status)
        || graph
            .as_ref()
            .and_then(GraphError::code_number)
            .is_some_and(|c| RETRYABLE_GRAPH_CODES.contains(&c))
        || graph.as_ref().and_then(|g| g.is_transient) == Some(true);
    let reason = match &graph {
        Some(g) => format!(
            "media metadata answered HTTP {status}: Graph error {}: {}",
            g.code.as_ref().map(code_to_string).unwrap_or_default(),
            truncate(g.message.as_deref().unwrap_or(""))
        ),
        None => format!("media metadata answered HTTP {status}"),
    };
    if retryable { FetchError::Retryable(reason) } else { FetchError::Permanent(reason) }
}

fn messages_url(api_base_url: &str, api_version: &str, phone_number_id: &str) -> String {
    format!(
        "{}/{}/{}/messages",
        api_base_url.trim_end_matches('/'),
        api_version.trim_matches('/'),
        phone_number_id.trim_matches('/')
    )
}

fn to_e164_lenient(number: &str) -> String {
    // An empty number stays empty; Meta rejects it with a 400, which is the right outcome.
    to_e164(number).unwrap_or_default()
}

async fn classify_response(response: reqwest::Response) -> SendOutcome {
    let status = response.status();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_retry_after);
    let body = response.bytes().await;

    if status.is_success() {
        // Meta may have sent the message even if we cannot read the answer, so this is
        // not retried: a duplicate to the customer is worse than a visible failure.
        let id = body
            .ok()
            .and_then(|b| serde_json::from_slice::<SendResponse>(&b).ok())
            .and_then(|r| r.messages.into_iter().next().map(|m| m.id).filter(|id| !id.is_empty()));
        return match id {
            Some(provider_message_id) => SendOutcome::Accepted { provider_message_id },
            None => SendOutcome::Rejected {
                http_status: status.as_u16(),
                error: ProviderError {
                    code: "invalid_response".into(),
                    title: "success response without a message id".into(),
                    detail: None,
                },
            },
        };
    }

    let body = body.unwrap_or_default();
    let graph = serde_json::from_slice::<GraphErrorBody>(&body).ok().map(|b| b.error);
    let code = graph.as_ref().and_then(GraphError::code_number);
    let retryable = status.as_u16() == 429
        || status.as_u16() == 408
        || status.is_server_error()
        || code.is_some_and(|c| RETRYABLE_GRAPH_CODES.contains(&c))
        || graph.as_ref().and_then(|g| g.is_transient) == Some(true);

    if retryable {
        let reason = match &graph {
            Some(g) => format!(
                "HTTP {}: Graph error {}: {}",
                status.as_u16(),
                g.code.as_ref().map(code_to_string).unwrap_or_default(),
                truncate(g.message.as_deref().unwrap_or(""))
            ),
            None => format!("HTTP {}", status.as_u16()),
        };
        return SendOutcome::Retryable { reason, retry_after };
    }

    let error = match graph {
        Some(g) => g.into_provider_error(),
        None => ProviderError {
            code: format!("http_{}", status.as_u16()),
            title: format!("HTTP {status}"),
            detail: (!body.is_empty()).then(|| truncate(&String::from_utf8_lossy(&body))),
        },
    };
    SendOutcome::Rejected { http_status: status.as_u16(), error }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::test_support::{
        Rng, fixture, fixture_json, fixture_names, mutate_value, signed_bytes,
    };
    use std::time::Duration;

    use chrono::TimeZone;
    use proptest::prelude::*;
    use wiremock::matchers::{body_json, header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    const FIXTURE_SECRET: &[u8] = b"test_app_secret_0123456789abcdef";
    const PHONE_NUMBER_ID: &str = "100000000000002";
    const TOKEN: &str = "EAAG-test-token";

    #[test]
    fn the_template_list_fixture_parses_into_pickable_templates() {
        let (templates, after) =
            parse_template_list(&fixture("meta_template_list_response.json")).expect("parses");
        assert_eq!(
            templates,
            vec![TemplateInfo {
                name: "order_update".into(),
                language: "en_US".into(),
                status: "APPROVED".into(),
                category: "UTILITY".into(),
                body: Some("Hi {{1}}, your order {{2}} has shipped.".into()),
                body_parameters: 2,
            }]
        );
        assert_eq!(after, None, "cursors without `next` mean the last page");
        assert!(parse_template_list(b"{}").is_err());
        assert!(parse_template_list(b"nope").is_err());
        let odd = br#"{"data": [{"name": "x"}, {"name": "y", "language": "en", "components": "?"}]}"#;
        let (templates, _) = parse_template_list(odd).expect("lenient");
        assert_eq!(templates.len(), 1, "a template without a language is skipped");
        assert_eq!((templates[0].body.as_deref(), templates[0].body_parameters), (None, 0));
    }

    #[tokio::test]
    async fn list_templates_follows_the_cursor_and_classifies_failures() {
        let server = MockServer::start().await;
        let page = |name: &str, next: bool| {
            let mut v = serde_json::json!({"data": [{"name": name, "language": "en", "status": "APPROVED",
                "category": "UTILITY", "components": [{"type": "BODY", "text": "Hi {{1}}"}]}],
                "paging": {"cursors": {"before": "B", "after": format!("after-{name}")}}});
            if next {
                v["paging"]["next"] = "https://graph.facebook.com/next".into();
            }
            ResponseTemplate::new(200).set_body_json(v)
        };
        Mock::given(method("GET"))
            .and(path("/v23.0/100000000000001/message_templates"))
            .and(wiremock::matchers::query_param("after", "after-one"))
            .respond_with(page("two", false))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/v23.0/100000000000001/message_templates"))
            .and(header("Authorization", "Bearer tok"))
            .respond_with(page("one", true))
            .mount(&server)
            .await;
        let client = MetaClient::new(reqwest::Client::new());
        let names: Vec<String> = client
            .list_templates(&server.uri(), "v23.0", "100000000000001", "tok")
            .await
            .expect("listed")
            .into_iter()
            .map(|t| t.name)
            .collect();
        assert_eq!(names, ["one", "two"]);
        assert!(matches!(
            client.list_templates(&server.uri(), "v23.0", "../x", "tok").await,
            Err(FetchError::Permanent(_))
        ));
        let failing = MockServer::start().await;
        Mock::given(method("GET")).respond_with(ResponseTemplate::new(503)).mount(&failing).await;
        assert!(matches!(
            client.list_templates(&failing.uri(), "v23.0", "1", "tok").await,
            Err(FetchError::Retryable(_))
        ));
    }

    fn parse_fixture(name: &str) -> WebhookBatch {
        parse_webhook(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    fn ts(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(secs, 0).single().expect("valid timestamp")
    }

    /// (file, header value) for every Meta row of signature_vectors.md part B.
    fn meta_signature_rows() -> Vec<(String, String)> {
        let md = String::from_utf8(fixture("signature_vectors.md")).expect("utf-8");
        md.lines()
            .filter(|l| l.starts_with("| meta_") && l.contains("| X-Hub-Signature-256 |"))
            .map(|l| {
                let cells: Vec<&str> = l.split('|').map(str::trim).collect();
                (cells[1].to_owned(), cells[3].trim_matches('`').to_owned())
            })
            .collect()
    }

    // -- signatures --------------------------------------------------------------------

    #[test]
    fn official_vector_m1() {
        let expected = "sha256=0c61947b610d4f45e65f3d680e26027121ec2413e77598bcb6cfc6e0d9888221";
        assert_eq!(sign(b"TEST_APP_SECRET", b"test"), expected);
        assert_eq!(verify_signature(b"TEST_APP_SECRET", b"test", Some(expected)), Ok(()));
    }

    #[test]
    fn every_fixture_signature_from_part_b_verifies() {
        let rows = meta_signature_rows();
        assert_eq!(rows.len(), 14, "signature_vectors.md part B lists 14 Meta fixtures");
        for (file, header) in rows {
            let body = signed_bytes(&file);
            assert_eq!(sign(FIXTURE_SECRET, &body), header, "{file}");
            assert_eq!(verify_signature(FIXTURE_SECRET, &body, Some(&header)), Ok(()), "{file}");
            // The trailing newline is not part of the signed body.
            assert_eq!(
                verify_signature(FIXTURE_SECRET, &fixture(&file), Some(&header)),
                Err(WebhookError::BadSignature),
                "{file} with newline"
            );
            // Nor does it verify under another secret.
            assert_eq!(
                verify_signature(b"another_secret", &body, Some(&header)),
                Err(WebhookError::BadSignature),
                "{file} other secret"
            );
        }
    }

    #[test]
    fn uppercase_hex_and_surrounding_whitespace_are_accepted() {
        let sig = sign(b"TEST_APP_SECRET", b"test");
        let upper = format!("sha256={}", sig["sha256=".len()..].to_uppercase());
        assert_eq!(verify_signature(b"TEST_APP_SECRET", b"test", Some(&upper)), Ok(()));
        assert_eq!(verify_signature(b"TEST_APP_SECRET", b"test", Some(&format!(" {sig} "))), Ok(()));
    }

    #[test]
    fn missing_signature() {
        assert_eq!(verify_signature(b"TEST_APP_SECRET", b"test", None), Err(WebhookError::MissingSignature));
    }

    #[test]
    fn bad_signatures_are_rejected() {
        let good = sign(b"TEST_APP_SECRET", b"test");
        let hex_part = &good["sha256=".len()..];
        let mut flipped = hex_part.to_owned();
        flipped.replace_range(0..1, if hex_part.starts_with('0') { "1" } else { "0" });
        let cases = [
            String::new(),
            "sha256=".to_owned(),
            hex_part.to_owned(),                     // no prefix
            format!("sha1={hex_part}"),              // wrong algorithm
            format!("SHA256={hex_part}"),            // prefix is case-sensitive
            format!("sha256={}", &hex_part[..62]),   // truncated by one byte
            format!("sha256={}", &hex_part[..63]),   // odd number of hex digits
            format!("sha256={hex_part}00"),          // too long
            format!("sha256={}zz", &hex_part[..62]), // not hex
            format!("sha256={flipped}"),             // one nibble off
            format!("sha256={}", "0".repeat(64)),    // right length, wrong value
            format!("sha256= {hex_part}"),           // space after '='
        ];
        for case in cases {
            assert_eq!(
                verify_signature(b"TEST_APP_SECRET", b"test", Some(&case)),
                Err(WebhookError::BadSignature),
                "{case:?}"
            );
        }
        // The body is part of the MAC.
        assert_eq!(
            verify_signature(b"TEST_APP_SECRET", b"test ", Some(&good)),
            Err(WebhookError::BadSignature)
        );
    }

    #[test]
    fn empty_app_secret_never_verifies() {
        let sig = sign(b"", b"test");
        assert_eq!(verify_signature(b"", b"test", Some(&sig)), Err(WebhookError::BadSignature));
    }

    // -- inbound messages --------------------------------------------------------------

    fn single_message(name: &str) -> InboundMessage {
        let batch = parse_fixture(name);
        assert!(batch.statuses.is_empty(), "{name}");
        assert_eq!(batch.messages.len(), 1, "{name}");
        let msg = batch.messages.into_iter().next().expect("one message");
        assert_eq!(msg.from, "+15551234567", "{name}");
        assert_eq!(msg.to_phone_number_id, PHONE_NUMBER_ID, "{name}");
        assert_eq!(msg.profile_name.as_deref(), Some("Jane Doe"), "{name}");
        msg
    }

    fn unsupported(kind: &str, summary: &str) -> InboundBody {
        InboundBody::Unsupported { kind: kind.into(), summary: summary.into() }
    }

    #[test]
    fn parses_inbound_text() {
        let msg = single_message("meta_inbound_text.json");
        assert_eq!(
            msg,
            InboundMessage {
                provider_message_id: "wamid.FAKEIN0001".into(),
                from: "+15551234567".into(),
                to_phone_number_id: PHONE_NUMBER_ID.into(),
                profile_name: Some("Jane Doe".into()),
                timestamp: ts(1767607200),
                body: InboundBody::Text("Hi, I need help with order 4711".into()),
            }
        );
    }

    #[test]
    fn parses_inbound_image_with_caption() {
        let msg = single_message("meta_inbound_image.json");
        assert_eq!(msg.provider_message_id, "wamid.FAKEIN0002");
        assert_eq!(msg.timestamp, ts(1767607260));
        assert_eq!(
            msg.body,
            InboundBody::Media(InboundMedia {
                kind: MediaKind::Image,
                source: MediaSource::MetaMediaId("900000000000001".into()),
                content_type: Some("image/jpeg".into()),
                caption: Some("damaged box".into()),
                filename: None,
            })
        );
    }

    #[test]
    fn parses_inbound_document_with_caption() {
        let msg = single_message("meta_inbound_document.json");
        assert_eq!(msg.provider_message_id, "wamid.FAKEIN0003");
        assert_eq!(msg.timestamp, ts(1767607320));
        assert_eq!(
            msg.body,
            InboundBody::Media(InboundMedia {
                kind: MediaKind::Document,
                source: MediaSource::MetaMediaId("900000000000002".into()),
                content_type: Some("application/pdf".into()),
                caption: Some("my invoice".into()),
                filename: Some("invoice-4711.pdf".into()),
            })
        );
    }

    #[test]
    fn parses_inbound_audio_without_caption() {
        let msg = single_message("meta_inbound_audio.json");
        assert_eq!(msg.provider_message_id, "wamid.FAKEIN0004");
        assert_eq!(msg.timestamp, ts(1767607380));
        assert_eq!(
            msg.body,
            InboundBody::Media(InboundMedia {
                kind: MediaKind::Audio,
                source: MediaSource::MetaMediaId("900000000000003".into()),
                content_type: Some("audio/ogg; codecs=opus".into()),
                caption: None,
                filename: None,
            })
        );
    }

    #[test]
    fn parses_inbound_location() {
        let msg = single_message("meta_inbound_location.json");
        assert_eq!(msg.provider_message_id, "wamid.FAKEIN0005");
        assert_eq!(msg.timestamp, ts(1767607440));
        assert_eq!(msg.body, unsupported("location", "[location] 37.44221496582,-122.16165924072"));
    }

    #[test]
    fn parses_inbound_button_reply() {
        let msg = single_message("meta_inbound_button_reply.json");
        assert_eq!(msg.provider_message_id, "wamid.FAKEIN0006");
        assert_eq!(msg.timestamp, ts(1767607500));
        assert_eq!(msg.body, unsupported("interactive", "Talk to an agent"));
    }

    #[test]
    fn parses_inbound_list_reply() {
        let msg = single_message("meta_inbound_list_reply.json");
        assert_eq!(msg.provider_message_id, "wamid.FAKEIN0007");
        assert_eq!(msg.timestamp, ts(1767607560));
        assert_eq!(msg.body, unsupported("interactive", "Billing"));
    }

    #[test]
    fn parses_inbound_template_quick_reply() {
        let msg = single_message("meta_inbound_template_quick_reply.json");
        assert_eq!(msg.provider_message_id, "wamid.FAKEIN0008");
        assert_eq!(msg.timestamp, ts(1767607620));
        assert_eq!(msg.body, unsupported("button", "Stop promotions"));
    }

    /// Builds a one-message webhook around `message` (a JSON object).
    fn envelope_with_message(message: Value) -> Vec<u8> {
        let mut v = fixture_json("meta_inbound_text.json");
        v["entry"][0]["changes"][0]["value"]["messages"] = Value::Array(vec![message]);
        serde_json::to_vec(&v).expect("serialize")
    }

    fn body_of(message: Value) -> InboundBody {
        let batch = parse_webhook(&envelope_with_message(message)).expect("parses");
        batch.messages.into_iter().next().expect("one message").body
    }

    #[test]
    fn summaries_for_other_message_types() {
        let base = |kind: &str, payload: Value| serde_json::json!({"from": "15551234567", "id": "wamid.X", "timestamp": "1767607200", "type": kind, kind: payload});
        assert_eq!(
            body_of(base("sticker", serde_json::json!({"mime_type": "image/webp"}))),
            unsupported("sticker", "[sticker]"),
            "media without an id has nothing to download"
        );
        assert_eq!(
            body_of(base("video", serde_json::json!({"caption": "look"}))),
            unsupported("video", "look")
        );
        assert_eq!(
            body_of(base("image", serde_json::json!({"caption": ""}))),
            unsupported("image", "[image]")
        );
        assert_eq!(
            body_of(base("document", serde_json::json!({"filename": "a.pdf"}))),
            unsupported("document", "[document] a.pdf")
        );
        assert_eq!(
            body_of(base("reaction", serde_json::json!({"message_id": "wamid.Y", "emoji": "👍"}))),
            unsupported("reaction", "[reaction] 👍")
        );
        assert_eq!(
            body_of(base("button", serde_json::json!({"payload": "P"}))),
            unsupported("button", "P"),
            "payload when the button has no text"
        );
        assert_eq!(
            body_of(base("interactive", serde_json::json!({"type": "nfm_reply", "nfm_reply": {}}))),
            unsupported("interactive", "[interactive]")
        );
        assert_eq!(body_of(base("location", serde_json::json!({}))), unsupported("location", "[location]"));
        // Meta's `unsupported` type carries no payload, only errors.
        let unsupported_msg = serde_json::json!({
            "from": "15551234567", "id": "wamid.X", "timestamp": "1767607200", "type": "unsupported",
            "errors": [{"code": 131051, "title": "Message type unknown"}]
        });
        assert_eq!(body_of(unsupported_msg), unsupported("unsupported", "[unsupported]"));
        // A text message without a body degrades instead of failing the batch.
        assert_eq!(body_of(base("text", serde_json::json!({}))), unsupported("text", "[text]"));
        // Numeric timestamps are tolerated.
        let mut numeric = base("text", serde_json::json!({"body": "hi"}));
        numeric["timestamp"] = serde_json::json!(1767607200);
        assert_eq!(body_of(numeric), InboundBody::Text("hi".into()));
    }

    fn media(kind: MediaKind, id: &str) -> InboundMedia {
        InboundMedia {
            kind,
            source: MediaSource::MetaMediaId(id.into()),
            content_type: None,
            caption: None,
            filename: None,
        }
    }

    #[test]
    fn every_media_type_with_an_id_becomes_media() {
        let base = |kind: &str, payload: Value| serde_json::json!({"from": "15551234567", "id": "wamid.X", "timestamp": "1767607200", "type": kind, kind: payload});
        for kind in
            [MediaKind::Image, MediaKind::Audio, MediaKind::Video, MediaKind::Document, MediaKind::Sticker]
        {
            let name = kind.as_str();
            assert_eq!(
                body_of(base(name, serde_json::json!({"id": "123", "mime_type": "x/y", "sha256": "h"}))),
                InboundBody::Media(InboundMedia { content_type: Some("x/y".into()), ..media(kind, "123") }),
                "{name}"
            );
        }
        // Animated stickers and voice notes carry extra flags that change nothing.
        assert_eq!(
            body_of(base("sticker", serde_json::json!({"id": "7", "animated": true}))),
            InboundBody::Media(media(MediaKind::Sticker, "7"))
        );
        assert_eq!(
            body_of(base("video", serde_json::json!({"id": "8", "caption": "look", "filename": "v.mp4"}))),
            InboundBody::Media(InboundMedia {
                caption: Some("look".into()),
                filename: Some("v.mp4".into()),
                ..media(MediaKind::Video, "8")
            })
        );
        // Empty caption / mime type are absent, not empty.
        assert_eq!(
            body_of(base("image", serde_json::json!({"id": "9", "caption": "", "mime_type": ""}))),
            InboundBody::Media(media(MediaKind::Image, "9"))
        );
        // A numeric id is tolerated.
        assert_eq!(
            body_of(base("image", serde_json::json!({"id": 900000000000001_u64}))),
            InboundBody::Media(media(MediaKind::Image, "900000000000001"))
        );
    }

    #[test]
    fn media_without_a_usable_id_stays_unsupported() {
        let base = |kind: &str, payload: Value| serde_json::json!({"from": "15551234567", "id": "wamid.X", "timestamp": "1767607200", "type": kind, kind: payload});
        for id in [
            Value::Null,
            "".into(),
            "  ".into(),
            "../../me".into(),
            "12/34".into(),
            "12?x=1".into(),
            "12%2F".into(),
            serde_json::json!(-5),
            serde_json::json!(1.5),
            serde_json::json!({"id": "1"}),
        ] {
            assert_eq!(
                body_of(base("image", serde_json::json!({"id": id, "caption": "box"}))),
                unsupported("image", "box"),
                "{id}"
            );
        }
        // Not a media type, even with an id.
        assert_eq!(
            body_of(base("location", serde_json::json!({"id": "1", "latitude": 1.5, "longitude": 2.0}))),
            unsupported("location", "[location] 1.5,2")
        );
    }

    #[test]
    fn media_id_validation() {
        for ok in ["900000000000001", "a", "A_b-9"] {
            assert!(is_valid_media_id(ok), "{ok}");
        }
        for bad in ["", " 1", "1 ", "1/2", "..", "1.2", "1?", "1#", "1%2F", "é", "1\n"] {
            assert!(!is_valid_media_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn profile_name_matches_the_sender_or_the_only_contact() {
        let mut v = fixture_json("meta_inbound_text.json");
        let value = &mut v["entry"][0]["changes"][0]["value"];
        value["contacts"] = serde_json::json!([
            {"profile": {"name": "Other"}, "wa_id": "15550000000"},
            {"profile": {"name": "Jane"}, "wa_id": "15551234567"}
        ]);
        let batch = parse_webhook(&serde_json::to_vec(&v).expect("ser")).expect("parses");
        assert_eq!(batch.messages[0].profile_name.as_deref(), Some("Jane"));

        let mut v = fixture_json("meta_inbound_text.json");
        v["entry"][0]["changes"][0]["value"]["contacts"] =
            serde_json::json!([{"profile": {"name": "Only"}, "wa_id": "5215551234567"}]);
        let batch = parse_webhook(&serde_json::to_vec(&v).expect("ser")).expect("parses");
        assert_eq!(batch.messages[0].profile_name.as_deref(), Some("Only"));

        let mut v = fixture_json("meta_inbound_text.json");
        v["entry"][0]["changes"][0]["value"].as_object_mut().expect("object").remove("contacts");
        let batch = parse_webhook(&serde_json::to_vec(&v).expect("ser")).expect("parses");
        assert_eq!(batch.messages[0].profile_name, None);
    }

    #[test]
    fn batches_across_entries_and_changes() {
        let text = fixture_json("meta_inbound_text.json");
        let status = fixture_json("meta_status_read.json");
        let template = fixture_json("meta_template_status_update.json");
        let v = serde_json::json!({
            "object": "whatsapp_business_account",
            "entry": [
                {"id": "1", "changes": [text["entry"][0]["changes"][0], status["entry"][0]["changes"][0]]},
                {"id": "2", "changes": [template["entry"][0]["changes"][0], text["entry"][0]["changes"][0]]}
            ]
        });
        let batch = parse_webhook(&serde_json::to_vec(&v).expect("ser")).expect("parses");
        assert_eq!(batch.messages.len(), 2);
        assert_eq!(batch.statuses.len(), 1);
    }

    // -- statuses ----------------------------------------------------------------------

    fn single_status(name: &str) -> StatusUpdate {
        let batch = parse_fixture(name);
        assert!(batch.messages.is_empty(), "{name}");
        assert_eq!(batch.statuses.len(), 1, "{name}");
        let status = batch.statuses.into_iter().next().expect("one status");
        assert_eq!(status.provider_message_id, "wamid.FAKEOUT0001", "{name}");
        assert_eq!(status.recipient, "+15551234567", "{name}");
        assert_eq!(status.timestamp, ts(1767607700), "{name}");
        status
    }

    #[test]
    fn parses_status_sent_delivered_read() {
        for (name, expected) in [
            ("meta_status_sent.json", DeliveryStatus::Sent),
            ("meta_status_delivered.json", DeliveryStatus::Delivered),
            ("meta_status_read.json", DeliveryStatus::Read),
        ] {
            let status = single_status(name);
            assert_eq!(status.status, expected, "{name}");
            assert_eq!(status.error, None, "{name}");
        }
    }

    #[test]
    fn parses_status_failed_with_error() {
        let status = single_status("meta_status_failed.json");
        assert_eq!(status.status, DeliveryStatus::Failed);
        assert_eq!(
            status.error,
            Some(ProviderError {
                code: "131047".into(),
                title: "Re-engagement message".into(),
                detail: Some(
                    "Message failed to send because more than 24 hours have passed since the customer last \
                     replied to this number."
                        .into()
                ),
            })
        );
    }

    #[test]
    fn parses_status_failed_ecosystem() {
        let status = single_status("meta_status_failed_ecosystem.json");
        assert_eq!(status.status, DeliveryStatus::Failed);
        let error = status.error.expect("error");
        assert_eq!(error.code, "131049");
        assert_eq!(error.title, "This message was not delivered to maintain healthy ecosystem engagement.");
        assert_eq!(
            error.detail.as_deref(),
            Some("In order to maintain a healthy ecosystem engagement, the message failed to be delivered.")
        );
    }

    #[test]
    fn played_and_unknown_statuses_are_skipped() {
        for s in ["played", "deleted", "something_new"] {
            let mut v = fixture_json("meta_status_read.json");
            v["entry"][0]["changes"][0]["value"]["statuses"][0]["status"] = Value::String(s.into());
            let batch = parse_webhook(&serde_json::to_vec(&v).expect("ser")).expect(s);
            assert_eq!(batch, WebhookBatch::default(), "{s}");
        }
    }

    #[test]
    fn error_title_falls_back_to_message() {
        let mut v = fixture_json("meta_status_failed.json");
        v["entry"][0]["changes"][0]["value"]["statuses"][0]["errors"] =
            serde_json::json!([{"code": 131026, "message": "Message undeliverable"}, {"code": 1}]);
        let batch = parse_webhook(&serde_json::to_vec(&v).expect("ser")).expect("parses");
        assert_eq!(
            batch.statuses[0].error,
            Some(ProviderError {
                code: "131026".into(),
                title: "Message undeliverable".into(),
                detail: None
            })
        );
    }

    #[test]
    fn template_status_update_is_ignored() {
        assert_eq!(parse_fixture("meta_template_status_update.json"), WebhookBatch::default());
    }

    // -- malformed ---------------------------------------------------------------------

    fn assert_malformed(body: &[u8]) {
        match parse_webhook(body) {
            Err(WebhookError::Malformed(reason)) => {
                assert!(!reason.is_empty() && reason.len() < 300, "{reason:?}")
            }
            other => panic!("expected Malformed for {:?}, got {other:?}", String::from_utf8_lossy(body)),
        }
    }

    #[test]
    fn malformed_bodies() {
        let text = fixture("meta_inbound_text.json");
        let cases: Vec<Vec<u8>> = vec![
            b"".to_vec(),
            b"not json".to_vec(),
            b"\xff\xfe\x00".to_vec(),
            b"{}".to_vec(),
            b"[]".to_vec(),
            b"null".to_vec(),
            br#"{"object":"whatsapp_business_account"}"#.to_vec(),
            br#"{"object":"whatsapp_business_account","entry":{}}"#.to_vec(),
            br#"{"object":"whatsapp_business_account","entry":"x"}"#.to_vec(),
            br#"{"object":"whatsapp_business_account","entry":[{"id":"1"}]}"#.to_vec(),
            br#"{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages"}]}]}"#
                .to_vec(),
            br#"{"object":"page","entry":[]}"#.to_vec(),
            text[..text.len() / 2].to_vec(),
            text[..text.len() - 3].to_vec(),
        ];
        for case in cases {
            assert_malformed(&case);
        }
    }

    #[test]
    fn malformed_messages_and_statuses() {
        let edit_message = |f: &dyn Fn(&mut Value)| {
            let mut v = fixture_json("meta_inbound_text.json");
            f(&mut v["entry"][0]["changes"][0]["value"]);
            serde_json::to_vec(&v).expect("ser")
        };
        assert_malformed(&edit_message(&|v| v["messages"][0]["timestamp"] = "yesterday".into()));
        assert_malformed(&edit_message(&|v| v["messages"][0]["timestamp"] = "99999999999999999999".into()));
        assert_malformed(&edit_message(&|v| v["messages"][0]["timestamp"] = serde_json::json!(1e300)));
        assert_malformed(&edit_message(&|v| v["messages"][0]["from"] = "".into()));
        assert_malformed(&edit_message(&|v| v["messages"][0]["id"] = Value::Null));
        assert_malformed(&edit_message(&|v| v["messages"] = "x".into()));
        assert_malformed(&edit_message(&|v| {
            v.as_object_mut().expect("object").remove("metadata");
        }));
        let edit_status = |f: &dyn Fn(&mut Value)| {
            let mut v = fixture_json("meta_status_failed.json");
            f(&mut v["entry"][0]["changes"][0]["value"]["statuses"][0]);
            serde_json::to_vec(&v).expect("ser")
        };
        assert_malformed(&edit_status(&|s| s["timestamp"] = Value::Null));
        assert_malformed(&edit_status(&|s| s["status"] = serde_json::json!(3)));
        assert_malformed(&edit_status(&|s| s["errors"] = serde_json::json!({"code": 1})));
    }

    #[test]
    fn malformed_reason_does_not_echo_payload() {
        let mut v = fixture_json("meta_inbound_text.json");
        v["entry"][0]["changes"][0]["value"]["messages"][0]["from"] =
            serde_json::json!({"secret": "+4915112345"});
        let Err(WebhookError::Malformed(reason)) = parse_webhook(&serde_json::to_vec(&v).expect("ser"))
        else {
            panic!("expected Malformed");
        };
        assert!(!reason.contains("4915112345"), "{reason}");
    }

    #[test]
    fn statuses_only_change_needs_no_metadata_or_recipient() {
        let mut v = fixture_json("meta_status_delivered.json");
        let value = &mut v["entry"][0]["changes"][0]["value"];
        value.as_object_mut().expect("object").remove("metadata");
        value["statuses"][0].as_object_mut().expect("object").remove("recipient_id");
        let batch = parse_webhook(&serde_json::to_vec(&v).expect("ser")).expect("parses");
        assert_eq!(batch.statuses[0].recipient, "");
        assert_eq!(batch.statuses[0].status, DeliveryStatus::Delivered);
    }

    // -- handshake ---------------------------------------------------------------------

    /// The query parameters of the GET in meta_verify_get.txt.
    fn verify_get_params() -> (String, String, String) {
        let text = String::from_utf8(fixture("meta_verify_get.txt")).expect("utf-8");
        let request_line = text.lines().next().expect("request line");
        let target = request_line.split(' ').nth(1).expect("request target");
        let query = target.split_once('?').expect("query").1;
        let get = |key: &str| {
            query
                .split('&')
                .filter_map(|kv| kv.split_once('='))
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.to_owned())
                .expect(key)
        };
        (get("hub.mode"), get("hub.verify_token"), get("hub.challenge"))
    }

    #[test]
    fn handshake_from_fixture() {
        let (mode, token, challenge) = verify_get_params();
        assert_eq!(
            verify_handshake(Some(&mode), Some(&token), Some(&challenge), "my-verify-token"),
            Ok("1158201444".to_owned())
        );
    }

    #[test]
    fn handshake_failures() {
        let ok = "my-verify-token";
        let c = Some("1158201444");
        assert_eq!(verify_handshake(None, Some(ok), c, ok), Err(HandshakeError::WrongMode));
        assert_eq!(verify_handshake(Some("unsubscribe"), Some(ok), c, ok), Err(HandshakeError::WrongMode));
        assert_eq!(verify_handshake(Some("Subscribe"), Some(ok), c, ok), Err(HandshakeError::WrongMode));
        assert_eq!(verify_handshake(Some("subscribe"), None, c, ok), Err(HandshakeError::WrongToken));
        assert_eq!(
            verify_handshake(Some("subscribe"), Some("my-verify-toke"), c, ok),
            Err(HandshakeError::WrongToken)
        );
        assert_eq!(
            verify_handshake(Some("subscribe"), Some("my-verify-token "), c, ok),
            Err(HandshakeError::WrongToken)
        );
        assert_eq!(verify_handshake(Some("subscribe"), Some(""), c, ""), Err(HandshakeError::WrongToken));
        assert_eq!(
            verify_handshake(Some("subscribe"), Some(ok), None, ok),
            Err(HandshakeError::MissingChallenge)
        );
        assert_eq!(
            verify_handshake(Some("subscribe"), Some(ok), Some(""), ok),
            Err(HandshakeError::MissingChallenge)
        );
    }

    #[test]
    fn constant_time_eq_is_equality() {
        assert!(constant_time_eq(b"", b""));
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"", b"a"));
    }

    // -- client ------------------------------------------------------------------------

    fn client() -> MetaClient {
        MetaClient::new(reqwest::Client::builder().timeout(Duration::from_secs(5)).build().expect("client"))
    }

    const MESSAGES_PATH: &str = "/v23.0/100000000000002/messages";

    async fn send(server: &MockServer, body: &str, reply_to: Option<&str>) -> SendOutcome {
        client()
            .send_text(&server.uri(), "v23.0", PHONE_NUMBER_ID, TOKEN, "+15551234567", body, reply_to)
            .await
    }

    async fn respond_with(template: ResponseTemplate) -> SendOutcome {
        let server = MockServer::start().await;
        Mock::given(method("POST")).and(path(MESSAGES_PATH)).respond_with(template).mount(&server).await;
        send(&server, "hi", None).await
    }

    fn graph_error(code: i64, message: &str) -> Value {
        serde_json::json!({"error": {"message": message, "type": "OAuthException", "code": code,
            "error_data": {"messaging_product": "whatsapp", "details": "details here"}, "fbtrace_id": "AFAKE"}})
    }

    #[tokio::test]
    async fn send_text_success_matches_fixture_body() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path(MESSAGES_PATH))
            .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
            .and(header("content-type", "application/json"))
            .and(body_json(fixture_json("meta_outbound_text.json")))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_raw(fixture("meta_send_response.json"), "application/json"),
            )
            .expect(1)
            .mount(&server)
            .await;
        let outcome = send(&server, "Hello Jane, agent Sam here. How can I help?", None).await;
        assert_eq!(outcome, SendOutcome::Accepted { provider_message_id: "wamid.FAKEOUT0001".into() });
    }

    #[tokio::test]
    async fn send_text_reply_adds_context() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path(MESSAGES_PATH))
            .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
            .and(body_json(fixture_json("meta_outbound_reply_text.json")))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_raw(fixture("meta_send_response.json"), "application/json"),
            )
            .expect(1)
            .mount(&server)
            .await;
        let outcome = send(&server, "Looking into order 4711 now.", Some("wamid.FAKEIN0001")).await;
        assert_eq!(outcome, SendOutcome::Accepted { provider_message_id: "wamid.FAKEOUT0001".into() });
    }

    #[tokio::test]
    async fn send_text_adds_plus_and_tolerates_trailing_slash() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path(MESSAGES_PATH))
            .and(wiremock::matchers::body_partial_json(serde_json::json!({"to": "+15551234567"})))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_raw(fixture("meta_send_response.json"), "application/json"),
            )
            .expect(1)
            .mount(&server)
            .await;
        let base = format!("{}/", server.uri());
        let outcome =
            client().send_text(&base, "v23.0", PHONE_NUMBER_ID, TOKEN, "15551234567", "hi", None).await;
        assert!(matches!(outcome, SendOutcome::Accepted { .. }), "{outcome:?}");
    }

    #[tokio::test]
    async fn window_closed_131047_is_rejected() {
        let outcome = respond_with(
            ResponseTemplate::new(400).set_body_json(graph_error(131047, "(#131047) Re-engagement message")),
        )
        .await;
        assert_eq!(
            outcome,
            SendOutcome::Rejected {
                http_status: 400,
                error: ProviderError {
                    code: "131047".into(),
                    title: "(#131047) Re-engagement message".into(),
                    detail: Some("details here".into()),
                },
            }
        );
    }

    #[tokio::test]
    async fn expired_token_is_rejected() {
        let outcome = respond_with(
            ResponseTemplate::new(401).set_body_json(graph_error(190, "Error validating access token")),
        )
        .await;
        match outcome {
            SendOutcome::Rejected { http_status: 401, error } => assert_eq!(error.code, "190"),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn non_graph_4xx_is_rejected_with_http_code() {
        let outcome = respond_with(ResponseTemplate::new(404).set_body_string("<html>nope</html>")).await;
        match outcome {
            SendOutcome::Rejected { http_status: 404, error } => {
                assert_eq!(error.code, "http_404");
                assert_eq!(error.detail.as_deref(), Some("<html>nope</html>"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn http_429_with_retry_after_is_retryable() {
        let outcome = respond_with(
            ResponseTemplate::new(429)
                .insert_header("Retry-After", "7")
                .set_body_raw(fixture("meta_error_response_rate_limit.json"), "application/json"),
        )
        .await;
        match outcome {
            SendOutcome::Retryable { reason, retry_after } => {
                assert_eq!(retry_after, Some(Duration::from_secs(7)));
                assert!(reason.contains("429") && reason.contains("130429"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn http_5xx_is_retryable() {
        for status in [500, 502, 503] {
            let outcome = respond_with(ResponseTemplate::new(status)).await;
            assert!(
                matches!(&outcome, SendOutcome::Retryable { retry_after: None, reason } if reason.contains(&status.to_string())),
                "{status}: {outcome:?}"
            );
        }
        let outcome = respond_with(ResponseTemplate::new(503).insert_header("retry-after", "120")).await;
        assert!(
            matches!(outcome, SendOutcome::Retryable { retry_after: Some(d), .. } if d == Duration::from_secs(120))
        );
    }

    #[tokio::test]
    async fn rate_limit_graph_codes_are_retryable_even_with_400() {
        for name in ["meta_error_response_rate_limit.json", "meta_error_response_pair_rate.json"] {
            let outcome =
                respond_with(ResponseTemplate::new(400).set_body_raw(fixture(name), "application/json"))
                    .await;
            assert!(matches!(outcome, SendOutcome::Retryable { .. }), "{name}: {outcome:?}");
        }
        for code in RETRYABLE_GRAPH_CODES {
            let outcome =
                respond_with(ResponseTemplate::new(400).set_body_json(graph_error(code, "slow down"))).await;
            match outcome {
                SendOutcome::Retryable { reason, .. } => {
                    assert!(reason.contains(&code.to_string()), "{reason}")
                }
                other => panic!("{code}: {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn transient_graph_error_is_retryable() {
        let mut body = graph_error(131000, "Something went wrong");
        body["error"]["is_transient"] = Value::Bool(true);
        let outcome = respond_with(ResponseTemplate::new(400).set_body_json(body)).await;
        assert!(matches!(outcome, SendOutcome::Retryable { .. }), "{outcome:?}");
    }

    #[tokio::test]
    async fn success_without_message_id_is_rejected() {
        for body in [
            serde_json::json!({"messaging_product": "whatsapp", "messages": []}),
            serde_json::json!({"messaging_product": "whatsapp"}),
            serde_json::json!({"messages": [{"id": ""}]}),
        ] {
            let outcome = respond_with(ResponseTemplate::new(200).set_body_json(body.clone())).await;
            match outcome {
                SendOutcome::Rejected { http_status: 200, error } => {
                    assert_eq!(error.code, "invalid_response")
                }
                other => panic!("{body}: {other:?}"),
            }
        }
        let outcome = respond_with(ResponseTemplate::new(200).set_body_string("not json")).await;
        assert!(matches!(outcome, SendOutcome::Rejected { http_status: 200, .. }), "{outcome:?}");
    }

    #[tokio::test]
    async fn timeout_is_retryable() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_raw(fixture("meta_send_response.json"), "application/json")
                    .set_delay(Duration::from_secs(3)),
            )
            .mount(&server)
            .await;
        let http = reqwest::Client::builder().timeout(Duration::from_millis(200)).build().expect("client");
        let outcome = MetaClient::new(http)
            .send_text(&server.uri(), "v23.0", PHONE_NUMBER_ID, TOKEN, "+15551234567", "hi", None)
            .await;
        match outcome {
            SendOutcome::Retryable { reason, retry_after: None } => {
                assert!(reason.starts_with("timeout"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn connection_refused_is_retryable() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        drop(listener);
        let outcome = client()
            .send_text(&format!("http://{addr}"), "v23.0", PHONE_NUMBER_ID, TOKEN, "+15551234567", "hi", None)
            .await;
        assert!(matches!(outcome, SendOutcome::Retryable { retry_after: None, .. }), "{outcome:?}");
    }

    #[tokio::test]
    async fn invalid_base_url_is_rejected_not_retried() {
        let outcome = client()
            .send_text("not a url", "v23.0", PHONE_NUMBER_ID, TOKEN, "+15551234567", "hi", None)
            .await;
        assert!(matches!(outcome, SendOutcome::Rejected { http_status: 0, .. }), "{outcome:?}");
    }

    #[tokio::test]
    async fn rate_limit_fixtures_are_retryable_whatever_the_status() {
        for name in ["meta_error_response_rate_limit.json", "meta_error_response_pair_rate.json"] {
            for status in [400, 403, 429, 500] {
                let outcome = respond_with(
                    ResponseTemplate::new(status).set_body_raw(fixture(name), "application/json"),
                )
                .await;
                assert!(matches!(outcome, SendOutcome::Retryable { .. }), "{name} {status}: {outcome:?}");
            }
        }
        for code in [4, 80007, 130429, 131048, 131056] {
            assert!(RETRYABLE_GRAPH_CODES.contains(&code), "{code}");
        }
    }

    #[tokio::test]
    async fn media_errors_are_rejected() {
        for code in [131052, 131053] {
            let outcome = respond_with(
                ResponseTemplate::new(400).set_body_json(graph_error(code, "Media download error")),
            )
            .await;
            match outcome {
                SendOutcome::Rejected { http_status: 400, error } => assert_eq!(error.code, code.to_string()),
                other => panic!("{code}: {other:?}"),
            }
        }
    }

    // -- send (text, media, template) ----------------------------------------------------

    /// Mounts a messages endpoint that only answers `expected` (exactly) and sends `content`.
    async fn send_content_expecting(content: &OutboundContent, expected: Value) -> SendOutcome {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path(MESSAGES_PATH))
            .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
            .and(header("content-type", "application/json"))
            .and(body_json(expected))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_raw(fixture("meta_send_response.json"), "application/json"),
            )
            .expect(1)
            .mount(&server)
            .await;
        client().send(&server.uri(), "v23.0", PHONE_NUMBER_ID, TOKEN, "+15551234567", content).await
    }

    fn accepted() -> SendOutcome {
        SendOutcome::Accepted { provider_message_id: "wamid.FAKEOUT0001".into() }
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

    #[tokio::test]
    async fn send_text_content_matches_fixture() {
        let content = OutboundContent::Text("Hello Jane, agent Sam here. How can I help?".into());
        assert_eq!(
            send_content_expecting(&content, fixture_json("meta_outbound_text.json")).await,
            accepted()
        );
    }

    #[tokio::test]
    async fn send_image_matches_fixture() {
        let content = outbound_media(
            MediaKind::Image,
            "https://cdn.example.com/img/label.jpg",
            Some("Your return label"),
            Some("label.jpg"), // images carry no file name: dropped
        );
        assert_eq!(
            send_content_expecting(&content, fixture_json("meta_outbound_image.json")).await,
            accepted()
        );
    }

    #[tokio::test]
    async fn send_document_matches_fixture() {
        let content = outbound_media(
            MediaKind::Document,
            "https://cdn.example.com/files/invoice-4711.pdf",
            Some("Invoice 4711"),
            Some("invoice-4711.pdf"),
        );
        assert_eq!(
            send_content_expecting(&content, fixture_json("meta_outbound_document.json")).await,
            accepted()
        );
    }

    #[tokio::test]
    async fn send_audio_and_sticker_carry_no_caption_or_filename() {
        for kind in [MediaKind::Audio, MediaKind::Sticker] {
            let content = outbound_media(kind, "https://cdn.example.com/m", Some("caption"), Some("f.ogg"));
            let expected = serde_json::json!({
                "messaging_product": "whatsapp", "recipient_type": "individual", "to": "+15551234567",
                "type": kind.as_str(), kind.as_str(): {"link": "https://cdn.example.com/m"}
            });
            assert_eq!(send_content_expecting(&content, expected).await, accepted(), "{kind:?}");
        }
        let video =
            outbound_media(MediaKind::Video, "https://cdn.example.com/v", Some("look"), Some("v.mp4"));
        let expected = serde_json::json!({
            "messaging_product": "whatsapp", "recipient_type": "individual", "to": "+15551234567",
            "type": "video", "video": {"link": "https://cdn.example.com/v", "caption": "look"}
        });
        assert_eq!(send_content_expecting(&video, expected).await, accepted());
        // Empty caption and file name are left out.
        let document = outbound_media(MediaKind::Document, "https://cdn.example.com/d", Some(""), Some(""));
        let expected = serde_json::json!({
            "messaging_product": "whatsapp", "recipient_type": "individual", "to": "+15551234567",
            "type": "document", "document": {"link": "https://cdn.example.com/d"}
        });
        assert_eq!(send_content_expecting(&document, expected).await, accepted());
    }

    #[tokio::test]
    async fn send_template_matches_fixture() {
        let content = OutboundContent::Template(OutboundTemplate {
            name: "order_update".into(),
            language: "en_US".into(),
            body_parameters: vec!["Jane".into(), "4711".into()],
        });
        assert_eq!(
            send_content_expecting(&content, fixture_json("meta_outbound_template.json")).await,
            accepted()
        );
    }

    #[tokio::test]
    async fn send_template_without_parameters_has_no_components() {
        let content = OutboundContent::Template(OutboundTemplate {
            name: "hello_world".into(),
            language: "en_US".into(),
            body_parameters: vec![],
        });
        let expected = serde_json::json!({
            "messaging_product": "whatsapp", "recipient_type": "individual", "to": "+15551234567",
            "type": "template", "template": {"name": "hello_world", "language": {"code": "en_US"}}
        });
        assert_eq!(send_content_expecting(&content, expected).await, accepted());
    }

    #[tokio::test]
    async fn send_classifies_like_send_text() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(
                ResponseTemplate::new(400).set_body_json(graph_error(132001, "Template does not exist")),
            )
            .mount(&server)
            .await;
        let content = OutboundContent::Template(OutboundTemplate {
            name: "missing".into(),
            language: "en".into(),
            body_parameters: vec![],
        });
        let outcome =
            client().send(&server.uri(), "v23.0", PHONE_NUMBER_ID, TOKEN, "15551234567", &content).await;
        assert!(
            matches!(&outcome, SendOutcome::Rejected { http_status: 400, error } if error.code == "132001")
        );
        let outcome = client().send("not a url", "v23.0", PHONE_NUMBER_ID, TOKEN, "1", &content).await;
        assert!(matches!(outcome, SendOutcome::Rejected { http_status: 0, .. }), "{outcome:?}");
    }

    // -- media download ------------------------------------------------------------------

    const MEDIA_ID: &str = "900000000000001";
    const MEDIA_PATH: &str = "/v23.0/900000000000001";
    const DOWNLOAD_PATH: &str = "/whatsapp_business/attachments/";

    /// The fixture metadata answer, with its URL pointed at the mock server.
    fn media_metadata(server: &MockServer) -> Value {
        let mut v = fixture_json("meta_media_url_response.json");
        v["url"] = format!("{}{DOWNLOAD_PATH}?mid={MEDIA_ID}&ext=1767607260&hash=FAKE", server.uri()).into();
        v
    }

    async fn mount_metadata(server: &MockServer, answer: ResponseTemplate) {
        Mock::given(method("GET"))
            .and(path(MEDIA_PATH))
            .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
            .respond_with(answer)
            .mount(server)
            .await;
    }

    async fn mount_download(server: &MockServer, answer: ResponseTemplate, calls: u64) {
        Mock::given(method("GET"))
            .and(path(DOWNLOAD_PATH))
            .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
            .respond_with(answer)
            .expect(calls)
            .mount(server)
            .await;
    }

    async fn fetch(server: &MockServer, max_bytes: u64) -> Result<FetchedMedia, FetchError> {
        client().fetch_media(&server.uri(), "v23.0", TOKEN, MEDIA_ID, max_bytes).await
    }

    #[tokio::test]
    async fn fetch_media_follows_the_metadata_url_with_the_token() {
        let server = MockServer::start().await;
        mount_metadata(&server, ResponseTemplate::new(200).set_body_json(media_metadata(&server))).await;
        mount_download(
            &server,
            ResponseTemplate::new(200).set_body_raw(b"JPEGDATA".to_vec(), "image/png"),
            2,
        )
        .await;
        let media = fetch(&server, 1_000_000).await.expect("fetched");
        assert_eq!(
            media,
            FetchedMedia { bytes: b"JPEGDATA".to_vec(), content_type: Some("image/png".into()) }
        );
        // A trailing slash on the base URL is tolerated.
        let base = format!("{}/", server.uri());
        client().fetch_media(&base, "/v23.0/", TOKEN, MEDIA_ID, 1_000_000).await.expect("fetched");
    }

    #[tokio::test]
    async fn fetch_media_uses_the_metadata_mime_type_when_the_download_has_none() {
        let server = MockServer::start().await;
        mount_metadata(&server, ResponseTemplate::new(200).set_body_json(media_metadata(&server))).await;
        mount_download(&server, ResponseTemplate::new(200).set_body_bytes(b"JPEGDATA".to_vec()), 1).await;
        let media = fetch(&server, 1_000_000).await.expect("fetched");
        assert_eq!(media.content_type.as_deref(), Some("image/jpeg"));
        assert_eq!(media.bytes, b"JPEGDATA");
    }

    #[tokio::test]
    async fn fetch_media_refuses_a_big_file_before_downloading() {
        let server = MockServer::start().await;
        mount_metadata(&server, ResponseTemplate::new(200).set_body_json(media_metadata(&server))).await;
        mount_download(&server, ResponseTemplate::new(200).set_body_bytes(vec![0; 10]), 0).await;
        // file_size is "303833" in the fixture.
        assert_eq!(fetch(&server, 303_832).await, Err(FetchError::TooLarge { limit: 303_832 }));
        // A numeric file_size counts too.
        let server = MockServer::start().await;
        let mut metadata = media_metadata(&server);
        metadata["file_size"] = serde_json::json!(5000);
        mount_metadata(&server, ResponseTemplate::new(200).set_body_json(metadata)).await;
        mount_download(&server, ResponseTemplate::new(200).set_body_bytes(vec![0; 10]), 0).await;
        assert_eq!(fetch(&server, 4999).await, Err(FetchError::TooLarge { limit: 4999 }));
    }

    #[tokio::test]
    async fn fetch_media_enforces_the_limit_on_the_download_too() {
        let server = MockServer::start().await;
        let mut metadata = media_metadata(&server);
        metadata.as_object_mut().expect("object").remove("file_size");
        mount_metadata(&server, ResponseTemplate::new(200).set_body_json(metadata)).await;
        mount_download(&server, ResponseTemplate::new(200).set_body_bytes(vec![0; 100]), 1).await;
        assert_eq!(fetch(&server, 99).await, Err(FetchError::TooLarge { limit: 99 }));
    }

    #[tokio::test]
    async fn fetch_media_refuses_bad_ids_without_a_request() {
        let server = MockServer::start().await;
        Mock::given(wiremock::matchers::any())
            .respond_with(ResponseTemplate::new(200))
            .expect(0)
            .mount(&server)
            .await;
        for id in ["", "../me", "1/messages", "1?fields=x", "1%2F2", "1 2", "1\n"] {
            let result = client().fetch_media(&server.uri(), "v23.0", TOKEN, id, 1000).await;
            assert!(matches!(result, Err(FetchError::Permanent(_))), "{id:?}: {result:?}");
        }
    }

    #[tokio::test]
    async fn fetch_media_metadata_errors_are_classified() {
        let cases: Vec<(ResponseTemplate, bool)> = vec![
            (ResponseTemplate::new(500), true),
            (ResponseTemplate::new(503).set_body_string("down"), true),
            (ResponseTemplate::new(429), true),
            (ResponseTemplate::new(408), true),
            (
                ResponseTemplate::new(400)
                    .set_body_raw(fixture("meta_error_response_rate_limit.json"), "application/json"),
                true,
            ),
            (ResponseTemplate::new(400).set_body_json(graph_error(4, "Application request limit")), true),
            (
                {
                    let mut body = graph_error(131000, "Something went wrong");
                    body["error"]["is_transient"] = Value::Bool(true);
                    ResponseTemplate::new(400).set_body_json(body)
                },
                true,
            ),
            (ResponseTemplate::new(404).set_body_json(graph_error(100, "Unsupported get request")), false),
            (
                ResponseTemplate::new(401).set_body_json(graph_error(190, "Error validating access token")),
                false,
            ),
            (ResponseTemplate::new(403), false),
            // 2xx but not the metadata object.
            (ResponseTemplate::new(200).set_body_string("not json"), false),
            (ResponseTemplate::new(200).set_body_json(serde_json::json!([1, 2])), false),
            (ResponseTemplate::new(200).set_body_json(serde_json::json!({"id": MEDIA_ID})), false),
            (ResponseTemplate::new(200).set_body_json(serde_json::json!({"url": ""})), false),
            (
                ResponseTemplate::new(200).set_body_json(serde_json::json!({"url": "file:///etc/passwd"})),
                false,
            ),
            (ResponseTemplate::new(200).set_body_json(serde_json::json!({"url": "not a url"})), false),
            (ResponseTemplate::new(200).set_body_bytes(vec![b' '; MAX_METADATA_BYTES + 1]), false),
        ];
        for (i, (answer, retryable)) in cases.into_iter().enumerate() {
            let server = MockServer::start().await;
            mount_metadata(&server, answer).await;
            match fetch(&server, 1_000_000).await {
                Err(FetchError::Retryable(reason)) if retryable => {
                    assert!(!reason.contains(TOKEN), "{reason}")
                }
                Err(FetchError::Permanent(reason)) if !retryable => {
                    assert!(!reason.contains(TOKEN), "{reason}")
                }
                other => panic!("case {i}: {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn fetch_media_download_errors_are_classified() {
        for (status, retryable) in [(404, false), (403, false), (500, true), (503, true), (429, true)] {
            let server = MockServer::start().await;
            mount_metadata(&server, ResponseTemplate::new(200).set_body_json(media_metadata(&server))).await;
            mount_download(&server, ResponseTemplate::new(status), 1).await;
            let result = fetch(&server, 1_000_000).await;
            if retryable {
                assert!(matches!(result, Err(FetchError::Retryable(_))), "{status}: {result:?}");
            } else {
                assert!(matches!(result, Err(FetchError::Permanent(_))), "{status}: {result:?}");
            }
        }
    }

    #[tokio::test]
    async fn fetch_media_transport_failures() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        drop(listener);
        let result = client().fetch_media(&format!("http://{addr}"), "v23.0", TOKEN, MEDIA_ID, 1000).await;
        assert!(matches!(result, Err(FetchError::Retryable(_))), "{result:?}");
        let result = client().fetch_media("not a url", "v23.0", TOKEN, MEDIA_ID, 1000).await;
        assert!(matches!(result, Err(FetchError::Permanent(_))), "{result:?}");
        // The metadata points at a host that is gone: retryable (a new URL may work).
        let server = MockServer::start().await;
        let mut metadata = media_metadata(&server);
        metadata["url"] = format!("http://{addr}/x").into();
        mount_metadata(&server, ResponseTemplate::new(200).set_body_json(metadata)).await;
        let result = fetch(&server, 1_000_000).await;
        assert!(matches!(result, Err(FetchError::Retryable(_))), "{result:?}");
    }

    #[test]
    fn retry_after_formats() {
        assert_eq!(parse_retry_after("0"), Some(Duration::ZERO));
        assert_eq!(parse_retry_after(" 30 "), Some(Duration::from_secs(30)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO),
            "date in the past"
        );
        let future = (Utc::now() + chrono::Duration::seconds(120)).to_rfc2822();
        let d = parse_retry_after(&future).expect("date");
        assert!(d > Duration::from_secs(100) && d <= Duration::from_secs(120), "{d:?}");
        assert_eq!(parse_retry_after("-5"), None);
        assert_eq!(parse_retry_after("soon"), None);
    }

    // -- robustness --------------------------------------------------------------------

    fn all_meta_json_fixtures() -> Vec<Vec<u8>> {
        let names = fixture_names("meta_", ".json");
        assert!(names.len() >= 20, "{names:?}");
        names.iter().map(|n| fixture(n)).collect()
    }

    #[test]
    fn random_and_mutated_inputs_never_panic() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let json_alphabet = br#"{}[]":,.-+0123456789eEabcdefghijklmnopqrstuvwxyz_ \n\\"#;
        let header = sign(FIXTURE_SECRET, b"x");
        let check = |body: &[u8], rng: &mut Rng| {
            let _ = parse_webhook(body);
            let _ = verify_signature(FIXTURE_SECRET, body, Some(&header));
            let random_header = String::from_utf8_lossy(&rng.bytes(80, None)).into_owned();
            assert!(verify_signature(FIXTURE_SECRET, body, Some(&random_header)).is_err());
            let prefixed =
                format!("sha256={}", String::from_utf8_lossy(&rng.bytes(70, Some(b"0123456789abcdefg"))));
            let _ = verify_signature(&rng.bytes(40, None), body, Some(&prefixed));
        };

        for i in 0..3000 {
            let alphabet = if i % 2 == 0 { None } else { Some(&json_alphabet[..]) };
            let body = rng.bytes(512, alphabet);
            check(&body, &mut rng);
        }

        for original in all_meta_json_fixtures() {
            for _ in 0..150 {
                let mut body = original.clone();
                match rng.below(4) {
                    0 => body.truncate(rng.below(original.len())),
                    1 => {
                        let i = rng.below(body.len());
                        body[i] ^= 1 << rng.below(8);
                    }
                    2 => {
                        let i = rng.below(body.len());
                        body.insert(i, json_alphabet[rng.below(json_alphabet.len())]);
                    }
                    _ => {
                        let i = rng.below(body.len());
                        body.remove(i);
                    }
                }
                check(&body, &mut rng);
            }
            let value: Value = serde_json::from_slice(&original).expect("fixture is JSON");
            for _ in 0..150 {
                let mut v = value.clone();
                for _ in 0..=rng.below(3) {
                    mutate_value(&mut v, &mut rng, &["12345"]);
                }
                let body = serde_json::to_vec(&v).expect("ser");
                check(&body, &mut rng);
            }
        }
    }
    // -- property-based fuzzing ------------------------------------------------------------

    /// A JSON value of any type for a media field, biased towards plausible ids.
    fn arbitrary_field() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            "[0-9]{1,20}".prop_map(Value::String),
            "[A-Za-z0-9_./%?#-]{0,12}".prop_map(Value::String),
            any::<String>().prop_map(Value::String),
            any::<i64>().prop_map(|n| serde_json::json!(n)),
            any::<f64>().prop_map(|f| serde_json::json!(f)),
            any::<bool>().prop_map(Value::Bool),
            Just(serde_json::json!({"nested": [1]})),
        ]
    }

    fn media_fixtures() -> [Vec<u8>; 4] {
        [
            fixture("meta_inbound_image.json"),
            fixture("meta_inbound_audio.json"),
            fixture("meta_inbound_document.json"),
            fixture("meta_status_failed.json"),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn proptest_arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = parse_webhook(&bytes);
            let _ = verify_signature(FIXTURE_SECRET, &bytes, Some(&String::from_utf8_lossy(&bytes)));
        }

        /// Splices random bytes over a random range of a real media fixture, so the parser
        /// gets deep into the media path with broken input.
        #[test]
        fn proptest_spliced_fixtures_never_panic(
            which in 0usize..4,
            start in any::<proptest::sample::Index>(),
            len in 0usize..48,
            replacement in proptest::collection::vec(any::<u8>(), 0..48),
        ) {
            let mut body = media_fixtures()[which].clone();
            let start = start.index(body.len());
            let end = (start + len).min(body.len());
            body.splice(start..end, replacement);
            let _ = parse_webhook(&body);
        }

        /// Any values in the media fields: the batch never fails, and the message is media
        /// exactly when the id is a usable one, with the other fields carried over verbatim.
        #[test]
        fn proptest_media_fields(
            kind in prop_oneof![
                Just("image"), Just("audio"), Just("video"), Just("document"), Just("sticker")
            ],
            id in arbitrary_field(),
            mime_type in arbitrary_field(),
            caption in arbitrary_field(),
            filename in arbitrary_field(),
        ) {
            let message = serde_json::json!({
                "from": "15551234567", "id": "wamid.P", "timestamp": "1767607200", "type": kind,
                kind: {"id": id, "mime_type": mime_type, "caption": caption, "filename": filename},
            });
            let batch = parse_webhook(&envelope_with_message(message));
            prop_assert!(batch.is_ok(), "{batch:?}");
            let body = batch.expect("checked").messages.remove(0).body;
            let text = |v: &Value| v.as_str().filter(|s| !s.is_empty()).map(str::to_owned);
            let usable_id = match &id {
                Value::String(s) => Some(s.trim().to_owned()).filter(|s| is_valid_media_id(s)),
                Value::Number(n) if n.is_u64() => Some(n.to_string()),
                _ => None,
            };
            match usable_id {
                Some(id) => {
                    let expected = InboundBody::Media(InboundMedia {
                        kind: MediaKind::parse(kind).expect("media kind"),
                        source: MediaSource::MetaMediaId(id),
                        content_type: text(&mime_type),
                        caption: text(&caption),
                        filename: text(&filename),
                    });
                    prop_assert_eq!(body, expected);
                }
                None => {
                    prop_assert!(
                        matches!(&body, InboundBody::Unsupported { kind: k, .. } if k == kind),
                        "{body:?}"
                    );
                }
            }
        }
    }
}
