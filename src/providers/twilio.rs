//! Twilio Programmable Messaging (WhatsApp sender) adapter.
//!
//! - Webhooks (inbound messages and status callbacks) are `application/x-www-form-urlencoded`
//!   POSTs ([`parse_form`]). They are authenticated with `X-Twilio-Signature`:
//!   base64(HMAC-SHA1(AuthToken, URL ‖ sorted name‖value pairs)) ([`verify_signature`]).
//!   The URL must be the public URL configured in Twilio, not one rebuilt from the Host
//!   header behind a proxy. JSON webhooks sign only the URL, which then carries a
//!   `bodySHA256` query parameter ([`verify_json_body`]).
//! - Twilio webhooks carry no event time, so the caller passes the arrival time
//!   ([`parse_webhook`]).
//! - Inbound media arrives as `NumMedia` + `MediaUrl0`/`MediaContentType0` and becomes
//!   [`InboundBody::Media`] with a [`MediaSource::Url`]; [`TwilioClient::fetch_media`]
//!   downloads it, with the account's Basic auth only when the URL is on the account's
//!   API host.
//! - Sending is `POST {base}/2010-04-01/Accounts/{AccountSid}/Messages.json`, form-encoded,
//!   with HTTP Basic auth ([`TwilioClient::send`]): text as `Body`, media as `MediaUrl`
//!   (caption in `Body`), templates as Content API `ContentSid` + `ContentVariables`. The
//!   answer is classified for the outbox's retry policy. Error codes are kept raw (e.g.
//!   63016 = outside the 24-hour window) so a later layer can map them.
//!
//! Reference: the Twilio section of the provider notes; fixtures under
//! `tests/fixtures/twilio_*`, signature vectors in `tests/fixtures/signature_vectors.md`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use serde::Deserialize;
use serde_json::Value;
use sha1::Sha1;
use sha2::{Digest, Sha256};

use super::http::{classify_transport_error, download, invalid_request, parse_retry_after, truncate};
use super::{
    DeliveryStatus, FetchError, FetchedMedia, InboundBody, InboundMedia, InboundMessage, MediaKind,
    MediaSource, OutboundContent, OutboundMedia, OutboundTemplate, ProviderError, SendOutcome, StatusUpdate,
    WebhookBatch, WebhookError,
};

type HmacSha1 = Hmac<Sha1>;

/// Name of the header that carries the webhook signature.
pub const SIGNATURE_HEADER: &str = "X-Twilio-Signature";

/// Query parameter Twilio adds to the signed URL of JSON webhooks.
const BODY_HASH_PARAM: &str = "bodySHA256";

/// Twilio's channel prefix on WhatsApp addresses (`whatsapp:+15551234567`).
const WHATSAPP_PREFIX: &str = "whatsapp:";

fn hmac_sha1(key: &[u8]) -> HmacSha1 {
    // HMAC takes keys of any length (long keys are hashed first), so this cannot fail.
    <HmacSha1 as KeyInit>::new_from_slice(key).expect("HMAC accepts keys of any length")
}

// ---------------------------------------------------------------------------------------
// Webhook signature

/// The MAC over `url` followed by every `name‖value` pair, sorted by name then value.
///
/// Identical pairs count once: the current SDKs de-duplicate repeated values (official
/// vector T5), and a signature that matches them is what Twilio sends.
fn signature_mac(auth_token: &str, url: &str, params: &[(String, String)]) -> HmacSha1 {
    let mut pairs: Vec<(&str, &str)> = params.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    // Byte order on UTF-8 is code-point order, which is what the SDKs sort by.
    pairs.sort_unstable();
    pairs.dedup();
    let mut mac = hmac_sha1(auth_token.as_bytes());
    mac.update(url.as_bytes());
    for (name, value) in pairs {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    mac
}

/// The `X-Twilio-Signature` value Twilio would send for a request to exactly `url` with
/// the decoded form `params` (pass no params for JSON webhooks).
///
/// Used by tests and the load generator to produce requests Twilio would send.
pub fn expected_signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    BASE64.encode(signature_mac(auth_token, url, params).finalize().into_bytes())
}

/// Checks `X-Twilio-Signature` for a form webhook.
///
/// `url` is the full public URL Twilio called, query string included; `params` are all
/// decoded form pairs as received (Twilio adds parameters without notice, so never pass
/// a whitelist). Twilio is inconsistent about ports, so, like the official SDKs, the
/// signature may match the URL as given, the URL without its port, or the URL with the
/// scheme's default port added. Each comparison is constant-time. An empty `auth_token`
/// is a misconfiguration and never verifies, since anyone could sign with it.
pub fn verify_signature(
    auth_token: &str,
    url: &str,
    params: &[(String, String)],
    header: Option<&str>,
) -> Result<(), WebhookError> {
    let header = header.ok_or(WebhookError::MissingSignature)?;
    let expected = BASE64.decode(header.trim()).map_err(|_| WebhookError::BadSignature)?;
    if auth_token.is_empty() {
        return Err(WebhookError::BadSignature);
    }
    // Every candidate is checked (no early exit) so timing does not tell which URL form
    // was close; `verify_slice` is constant-time per candidate.
    let matched = url_candidates(url).iter().fold(false, |ok, candidate| {
        signature_mac(auth_token, candidate, params).verify_slice(&expected).is_ok() | ok
    });
    if matched { Ok(()) } else { Err(WebhookError::BadSignature) }
}

/// Checks a JSON webhook: `url_with_body_hash` is the full URL Twilio called, whose query
/// carries `bodySHA256=<hex sha256 of the raw body>`; the signature covers only that URL.
///
/// Both checks are needed: the URL signature proves the hash came from Twilio, and the
/// hash ties the body to it. A URL without `bodySHA256` is refused, since nothing would
/// then vouch for the body.
pub fn verify_json_body(
    auth_token: &str,
    url_with_body_hash: &str,
    raw_body: &[u8],
    header: Option<&str>,
) -> Result<(), WebhookError> {
    verify_signature(auth_token, url_with_body_hash, &[], header)?;
    let claimed = query_param(url_with_body_hash, BODY_HASH_PARAM).ok_or(WebhookError::BadSignature)?;
    let claimed = hex::decode(claimed).map_err(|_| WebhookError::BadSignature)?;
    let actual = Sha256::digest(raw_body);
    // The body hash is not a secret (the sender knows the body), so a plain compare would
    // do; constant time costs nothing here.
    if constant_time_eq(&claimed, actual.as_slice()) { Ok(()) } else { Err(WebhookError::BadSignature) }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The first raw (still percent-encoded) value of query parameter `name`, if any.
fn query_param<'a>(url: &'a str, name: &str) -> Option<&'a str> {
    let before_fragment = url.split('#').next().unwrap_or(url);
    let (_, query) = before_fragment.split_once('?')?;
    query.split('&').find_map(|pair| {
        let (n, v) = pair.split_once('=').unwrap_or((pair, ""));
        (n == name).then_some(v)
    })
}

/// The URL forms the official SDKs accept: as given, without the port, and with the
/// scheme's default port (443 for https, 80 otherwise) when it has none. Duplicates are
/// dropped. URLs we cannot split into scheme and authority are only tried as given.
fn url_candidates(url: &str) -> Vec<String> {
    let mut out = vec![url.to_owned()];
    if let Some(parts) = split_authority(url) {
        let without_port = format!("{}{}{}", parts.prefix, parts.host, parts.rest);
        let default_port = if parts.scheme.eq_ignore_ascii_case("https") { "443" } else { "80" };
        let with_port = match parts.port {
            Some(_) => url.to_owned(),
            None => format!("{}{}:{}{}", parts.prefix, parts.host, default_port, parts.rest),
        };
        for candidate in [without_port, with_port] {
            if !out.contains(&candidate) {
                out.push(candidate);
            }
        }
    }
    out
}

struct UrlParts<'a> {
    scheme: &'a str,
    /// Everything up to the host: `scheme://` plus any `user:pass@`.
    prefix: &'a str,
    host: &'a str,
    port: Option<&'a str>,
    /// Path, query and fragment, unchanged.
    rest: &'a str,
}

/// Splits `scheme://[userinfo@]host[:port]rest` without a URL crate. All split points are
/// ASCII characters, so every slice lands on a char boundary.
fn split_authority(url: &str) -> Option<UrlParts<'_>> {
    let scheme_end = url.find("://")?;
    let scheme = &url[..scheme_end];
    let authority_start = scheme_end + 3;
    let after = &url[authority_start..];
    let authority_len = after.find(['/', '?', '#']).unwrap_or(after.len());
    let authority = &after[..authority_len];
    let rest = &after[authority_len..];
    let host_start = authority.rfind('@').map_or(0, |i| i + 1);
    let prefix = &url[..authority_start + host_start];
    let host_port = &authority[host_start..];
    // An IPv6 literal has colons inside brackets; the port colon comes after ']'.
    let colon = match host_port.rfind(']') {
        Some(bracket) => host_port[bracket..].find(':').map(|i| bracket + i),
        None => host_port.rfind(':'),
    };
    let (host, port) = match colon {
        Some(i) if host_port[i + 1..].bytes().all(|b| b.is_ascii_digit()) => {
            (&host_port[..i], Some(&host_port[i + 1..]))
        }
        Some(_) => return None,
        None => (host_port, None),
    };
    if host.is_empty() {
        return None;
    }
    Some(UrlParts { scheme, prefix, host, port, rest })
}

// ---------------------------------------------------------------------------------------
// Form decoding

/// Decodes an `application/x-www-form-urlencoded` body into (name, value) pairs in order.
///
/// `+` is a space and `%XX` a byte; the decoded bytes must be UTF-8. Empty segments
/// (`a=1&&b=2`, an empty body) are skipped and a segment without `=` is a name with an
/// empty value, as browsers do. A `%` not followed by two hex digits is `Malformed`:
/// such a body did not come from Twilio.
pub fn parse_form(raw_body: &[u8]) -> Result<Vec<(String, String)>, WebhookError> {
    raw_body
        .split(|&b| b == b'&')
        .filter(|segment| !segment.is_empty())
        .map(|segment| {
            let (name, value) = match segment.iter().position(|&b| b == b'=') {
                Some(i) => (&segment[..i], &segment[i + 1..]),
                None => (segment, &segment[..0]),
            };
            Ok((form_decode(name)?, form_decode(value)?))
        })
        .collect()
}

fn form_decode(input: &[u8]) -> Result<String, WebhookError> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = input.get(i + 1).copied().and_then(hex_value);
                let lo = input.get(i + 2).copied().and_then(hex_value);
                match (hi, lo) {
                    (Some(hi), Some(lo)) => out.push(hi << 4 | lo),
                    _ => return Err(WebhookError::Malformed("invalid percent-encoding in form body".into())),
                }
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| WebhookError::Malformed("form body is not UTF-8".into()))
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Encodes pairs the way the WHATWG form serializer (and Twilio's SDKs) do: alphanumerics
/// and `*-._` stay, space becomes `+`, every other byte is `%XX` (uppercase).
fn form_encode(pairs: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        form_encode_into(&mut out, name);
        out.push('=');
        form_encode_into(&mut out, value);
    }
    out
}

fn form_encode_into(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in s.as_bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => out.push(char::from(b)),
            b' ' => out.push('+'),
            _ => {
                out.push('%');
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 0x0f)]));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Webhook parsing

/// Normalizes one Twilio webhook (already form-decoded) into a [`WebhookBatch`].
///
/// An inbound message (`SmsStatus=received`, or `Body`/`NumMedia` without
/// `MessageStatus`) becomes one [`InboundMessage`]; a status callback becomes at most one
/// [`StatusUpdate`]. Twilio sends no event time, so both carry `received_at`.
///
/// Statuses the contact center does not track (`queued`, `sending`, `accepted`,
/// `scheduled`, `canceled`, ... and any Twilio adds later) give an empty batch rather
/// than an error: an error answer would only make Twilio retry or hit the fallback URL.
/// Unknown parameters are ignored.
pub fn parse_webhook(
    params: &[(String, String)],
    received_at: DateTime<Utc>,
) -> Result<WebhookBatch, WebhookError> {
    let form = Form(params);
    let message_status = form.get("MessageStatus");
    let inbound = form.get("SmsStatus") == Some("received")
        || message_status == Some("received")
        || (message_status.is_none() && (form.get("Body").is_some() || form.get("NumMedia").is_some()));
    let mut batch = WebhookBatch::default();
    if inbound {
        batch.messages.push(normalize_inbound(&form, received_at)?);
    } else if let Some(status) = message_status {
        batch.statuses.extend(normalize_status(&form, status, received_at)?);
    } else {
        return Err(WebhookError::Malformed("neither an inbound message nor a status callback".into()));
    }
    Ok(batch)
}

/// Lookup over decoded pairs; a repeated name yields its first value.
struct Form<'a>(&'a [(String, String)]);

impl Form<'_> {
    fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// The value, or `None` when absent or empty (Twilio sends empty `Body=` on media).
    fn non_empty(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|v| !v.is_empty())
    }

    fn required(&self, name: &'static str) -> Result<&str, WebhookError> {
        self.non_empty(name).ok_or_else(|| WebhookError::Malformed(format!("missing {name}")))
    }
}

fn normalize_inbound(form: &Form<'_>, received_at: DateTime<Utc>) -> Result<InboundMessage, WebhookError> {
    let provider_message_id = form.required("MessageSid")?.to_owned();
    let from = address_to_e164(form.required("From")?)
        .ok_or_else(|| WebhookError::Malformed("From is not a WhatsApp number".into()))?;
    let to_phone_number_id = address_to_e164(form.required("To")?)
        .ok_or_else(|| WebhookError::Malformed("To is not a WhatsApp number".into()))?;
    Ok(InboundMessage {
        provider_message_id,
        from,
        to_phone_number_id,
        profile_name: form.non_empty("ProfileName").map(str::to_owned),
        timestamp: received_at,
        body: inbound_body(form)?,
    })
}

fn inbound_body(form: &Form<'_>) -> Result<InboundBody, WebhookError> {
    let body = form.get("Body").unwrap_or_default();
    let kind_or = |default: &str| form.non_empty("MessageType").unwrap_or(default).to_owned();
    let num_media = match form.non_empty("NumMedia") {
        Some(n) => {
            n.trim().parse::<u32>().map_err(|_| WebhookError::Malformed("NumMedia is not a number".into()))?
        }
        None => 0,
    };
    if num_media > 0 {
        // WhatsApp messages carry at most one media item, so index 0 describes it (Twilio
        // numbers them from 0; "at most one" is UNCONFIRMED in a primary doc, so any
        // further items are ignored rather than refused).
        if let Some(url) = form.non_empty("MediaUrl0").map(str::trim).filter(|u| !u.is_empty()) {
            return Ok(InboundBody::Media(inbound_media(form, url, body)));
        }
        // Media announced without a URL: nothing to fetch, so the agent sees what it was.
        let content_type = form.non_empty("MediaContentType0").unwrap_or("media");
        let summary = match body {
            "" => format!("[{content_type}]"),
            caption => format!("[{content_type}] {}", caption),
        };
        return Ok(InboundBody::Unsupported { kind: kind_or("media"), summary });
    }
    if let (Some(lat), Some(lon)) = (form.non_empty("Latitude"), form.non_empty("Longitude")) {
        // Formatted through f64 like the Meta adapter, so both give the same summary.
        let summary = match (lat.trim().parse::<f64>(), lon.trim().parse::<f64>()) {
            (Ok(lat), Ok(lon)) => format!("[location] {lat},{lon}"),
            _ => "[location]".to_owned(),
        };
        return Ok(InboundBody::Unsupported { kind: kind_or("location"), summary });
    }
    if form.get("ButtonPayload").is_some() || form.get("ButtonText").is_some() {
        let summary = form
            .non_empty("ButtonText")
            .or(Some(body).filter(|b| !b.is_empty()))
            .or(form.non_empty("ButtonPayload"))
            .map_or_else(|| "[button]".to_owned(), str::to_owned);
        return Ok(InboundBody::Unsupported { kind: kind_or("button"), summary });
    }
    match form.non_empty("MessageType") {
        // A non-text type with no Body (e.g. a type Twilio adds later) is not a message
        // the customer typed; an empty Text would hide that from the agent.
        Some(kind) if kind != "text" && body.is_empty() => {
            Ok(InboundBody::Unsupported { kind: kind.to_owned(), summary: format!("[{kind}]") })
        }
        _ => Ok(InboundBody::Text(body.to_owned())),
    }
}

/// The media item at index 0.
///
/// - `kind` follows `MediaContentType0`; without one, `MessageType` (`image`, `document` …)
///   when it names a kind, else document. Twilio's `MessageType=sticker` turns an
///   `image/webp` into a sticker, which the MIME type alone cannot tell.
/// - For documents Twilio puts the file name in `Body` (as in `twilio_inbound_document.form`;
///   not stated in Twilio's docs, so UNCONFIRMED): a `Body` that looks like a file name
///   is taken as the file name, anything else stays the caption.
fn inbound_media(form: &Form<'_>, url: &str, body: &str) -> InboundMedia {
    let content_type = form.non_empty("MediaContentType0").map(str::trim).filter(|c| !c.is_empty());
    let message_type = form.non_empty("MessageType").map(str::to_ascii_lowercase);
    let mut kind = match (content_type, message_type.as_deref().and_then(MediaKind::parse)) {
        (Some(ct), _) => MediaKind::from_content_type(ct),
        (None, Some(kind)) => kind,
        (None, None) => MediaKind::Document,
    };
    if kind == MediaKind::Image && message_type.as_deref() == Some("sticker") {
        kind = MediaKind::Sticker;
    }
    let text = Some(body).filter(|b| !b.trim().is_empty()).map(str::to_owned);
    let (caption, filename) = match text {
        Some(name) if kind == MediaKind::Document && looks_like_file_name(&name) => (None, Some(name)),
        other => (other, None),
    };
    InboundMedia {
        kind,
        source: MediaSource::Url(url.to_owned()),
        content_type: content_type.map(str::to_owned),
        caption,
        filename,
    }
}

/// One line, not too long, ending in a short alphanumeric extension (`invoice.pdf`).
fn looks_like_file_name(text: &str) -> bool {
    let text = text.trim();
    if text.len() > 255 || text.contains(['\n', '\r', '/', '\\']) {
        return false;
    }
    match text.rsplit_once('.') {
        Some((stem, ext)) => {
            !stem.trim().is_empty()
                && (1..=5).contains(&ext.len())
                && ext.bytes().all(|b| b.is_ascii_alphanumeric())
        }
        None => false,
    }
}

fn normalize_status(
    form: &Form<'_>,
    status: &str,
    received_at: DateTime<Utc>,
) -> Result<Option<StatusUpdate>, WebhookError> {
    let status = match status {
        "sent" => DeliveryStatus::Sent,
        "delivered" => DeliveryStatus::Delivered,
        "read" => DeliveryStatus::Read,
        // `undelivered` is final for the contact center: the carrier gave up.
        "failed" | "undelivered" => DeliveryStatus::Failed,
        other => {
            tracing::debug!(status = %truncate(other), "ignoring Twilio status we do not track");
            return Ok(None);
        }
    };
    let provider_message_id = form.required("MessageSid")?.to_owned();
    // Twilio always sends From on status callbacks; its absence means this is not one.
    form.required("From")?;
    let error_code = form.non_empty("ErrorCode").map(str::to_owned);
    let channel_message = form.non_empty("ChannelStatusMessage").map(truncate);
    let error = match (error_code, channel_message) {
        (Some(code), message) => Some(ProviderError {
            title: message.unwrap_or_else(|| format!("Twilio error {code}")),
            code,
            detail: None,
        }),
        (None, Some(message)) => Some(ProviderError { code: "unknown".into(), title: message, detail: None }),
        (None, None) => None,
    };
    Ok(Some(StatusUpdate {
        provider_message_id,
        status,
        timestamp: received_at,
        // On status callbacks `To` is the customer. An empty recipient is better than
        // dropping the status.
        recipient: form.get("To").and_then(address_to_e164).unwrap_or_default(),
        error,
    }))
}

/// `whatsapp:+15551234567` (or a bare `+15551234567`) to `+15551234567`. Other channels
/// (`messenger:…`, `rcs:…`) and anything that is not 1–15 digits give `None`.
fn address_to_e164(address: &str) -> Option<String> {
    let number = address.trim();
    let number = number.strip_prefix(WHATSAPP_PREFIX).unwrap_or(number).trim();
    let digits = number.strip_prefix('+').unwrap_or(number);
    let valid = (1..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit());
    valid.then(|| format!("+{digits}"))
}

// ---------------------------------------------------------------------------------------
// Outbound client

/// The 201 Message resource; only the sid matters here, the initial status (`queued`,
/// `accepted`) never arrives as a callback and carries nothing the outbox needs.
#[derive(Deserialize)]
struct MessageResource {
    sid: Option<String>,
}

/// Both error shapes Twilio uses: legacy `{code, message, more_info, status}` and
/// RFC 9457 `{type, title, status, code, detail, ...}`. `more_info` (a link to Twilio's page
/// for the code) is not read: the code itself is kept.
#[derive(Deserialize)]
struct ErrorBody {
    code: Option<Value>,
    message: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    title: Option<String>,
    detail: Option<String>,
}

impl ErrorBody {
    /// The Twilio error code as text. RFC 9457 bodies without `code` still name it as the
    /// last segment of `type` (`https://www.twilio.com/docs/errors/20003`).
    fn code(&self) -> Option<String> {
        let from_code = self.code.as_ref().and_then(|c| match c {
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        });
        from_code.or_else(|| {
            let last = self.kind.as_deref()?.trim_end_matches('/').rsplit('/').next()?;
            (!last.is_empty() && last.bytes().all(|b| b.is_ascii_digit())).then(|| last.to_owned())
        })
    }

    fn into_provider_error(self, http_status: u16) -> ProviderError {
        let code = self.code().unwrap_or_else(|| format!("http_{http_status}"));
        ProviderError {
            title: truncate(&self.title.or(self.message).unwrap_or_else(|| format!("HTTP {http_status}"))),
            detail: self.detail.map(|d| truncate(&d)),
            code,
        }
    }
}

/// Sends WhatsApp messages through Twilio's Messages API. Credentials and numbers are
/// passed per call because each contact-center account has its own. Configure timeouts
/// on the `reqwest::Client`: a timeout is reported as retryable.
#[derive(Debug, Clone)]
pub struct TwilioClient {
    http: reqwest::Client,
}

impl TwilioClient {
    pub fn new(http: reqwest::Client) -> Self {
        Self { http }
    }

    /// Sends a free-form text (only allowed inside the 24-hour window; outside it Twilio
    /// answers or later reports 63016, kept raw in the error code).
    ///
    /// Numbers are E.164; the `whatsapp:` channel prefix is added here (and not doubled
    /// if already present). `status_callback` is the public URL for status callbacks.
    /// Never panics; every failure is a [`SendOutcome`].
    // The argument list mirrors the Meta client's, which the outbox was written against.
    #[allow(clippy::too_many_arguments)]
    pub async fn send_text(
        &self,
        api_base_url: &str,
        account_sid: &str,
        auth_token: &str,
        from_e164: &str,
        to_e164: &str,
        body: &str,
        status_callback: Option<&str>,
    ) -> SendOutcome {
        let to = channel_address(to_e164);
        let from = channel_address(from_e164);
        let mut pairs = vec![("To", to.as_str()), ("From", from.as_str()), ("Body", body)];
        pairs.extend(status_callback.map(|url| ("StatusCallback", url)));
        self.post_message(api_base_url, account_sid, auth_token, &pairs).await
    }

    /// Sends an approved template through the Content API: `content_sid` (`HX…`) and
    /// `content_variables_json`, a JSON object *string* such as `{"1":"Jane"}`, sent as is.
    /// Since 2025-04 this is the only way to send a template; template text in `Body`
    /// fails with 63016. `messaging_service_sid` (`MG…`) is optional; with it Twilio
    /// sends from the service and `From` must belong to it.
    #[allow(clippy::too_many_arguments)]
    pub async fn send_template(
        &self,
        api_base_url: &str,
        account_sid: &str,
        auth_token: &str,
        from_e164: &str,
        to_e164: &str,
        messaging_service_sid: Option<&str>,
        content_sid: &str,
        content_variables_json: &str,
        status_callback: Option<&str>,
    ) -> SendOutcome {
        let to = channel_address(to_e164);
        let from = channel_address(from_e164);
        let mut pairs = vec![("To", to.as_str()), ("From", from.as_str())];
        pairs.extend(messaging_service_sid.map(|sid| ("MessagingServiceSid", sid)));
        pairs.push(("ContentSid", content_sid));
        pairs.push(("ContentVariables", content_variables_json));
        pairs.extend(status_callback.map(|url| ("StatusCallback", url)));
        self.post_message(api_base_url, account_sid, auth_token, &pairs).await
    }

    /// Sends any [`OutboundContent`]; the outbox's single entry point.
    ///
    /// - Text: exactly [`TwilioClient::send_text`].
    /// - Media: `MediaUrl` (Twilio fetches it from our signed link) with the caption in
    ///   `Body` when there is one (`twilio_outbound_media.form`). Twilio has no file-name
    ///   parameter: WhatsApp shows the name from the URL's last segment, so `filename` and
    ///   `content_type` are not sent.
    /// - Template: `ContentSid` = the template's `name` (a Content SID, `HX…`) and
    ///   `ContentVariables` = `{"1":"…","2":"…"}` from the body parameters, in order. The
    ///   language is not sent: a Content SID carries its own.
    #[allow(clippy::too_many_arguments)]
    pub async fn send(
        &self,
        api_base_url: &str,
        account_sid: &str,
        auth_token: &str,
        from_e164: &str,
        to_e164: &str,
        content: &OutboundContent,
        status_callback: Option<&str>,
    ) -> SendOutcome {
        let to = channel_address(to_e164);
        let from = channel_address(from_e164);
        let mut pairs = vec![("To", to.as_str()), ("From", from.as_str())];
        let variables;
        match content {
            OutboundContent::Text(body) => pairs.push(("Body", body.as_str())),
            OutboundContent::Media(OutboundMedia { url, caption, .. }) => {
                pairs.extend(caption.as_deref().filter(|c| !c.is_empty()).map(|c| ("Body", c)));
                pairs.push(("MediaUrl", url.as_str()));
            }
            OutboundContent::Template(OutboundTemplate { name, body_parameters, .. }) => {
                variables = content_variables(body_parameters);
                pairs.push(("ContentSid", name.as_str()));
                pairs.push(("ContentVariables", variables.as_str()));
            }
        }
        pairs.extend(status_callback.map(|url| ("StatusCallback", url)));
        self.post_message(api_base_url, account_sid, auth_token, &pairs).await
    }

    /// Downloads an inbound media item (`MediaUrl0`), holding at most `max_bytes`.
    ///
    /// Twilio's media URLs need the account's Basic auth when "enforce HTTP auth on media
    /// URLs" is on, and otherwise redirect to a short-lived CDN URL (UNCONFIRMED, from
    /// memory). Credentials are attached only when `url` is on the same scheme, host and
    /// port as `api_base_url` and under its path, so a forged or odd webhook can never make
    /// us send the auth token to another host. reqwest follows the redirect to the CDN and
    /// drops `Authorization` whenever a redirect changes host, port or scheme.
    ///
    /// Anything but an absolute http(s) URL is [`FetchError::Permanent`] without a request.
    pub async fn fetch_media(
        &self,
        api_base_url: &str,
        account_sid: &str,
        auth_token: &str,
        url: &str,
        max_bytes: u64,
    ) -> Result<FetchedMedia, FetchError> {
        let parsed = reqwest::Url::parse(url.trim())
            .map_err(|_| FetchError::Permanent("media URL is not an absolute URL".into()))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(FetchError::Permanent("media URL is not http(s)".into()));
        }
        let with_auth = is_under_api_base(&parsed, api_base_url);
        let mut request = self.http.get(parsed);
        if with_auth {
            request = request.basic_auth(account_sid, Some(auth_token));
        }
        download(request, max_bytes).await
    }

    async fn post_message(
        &self,
        api_base_url: &str,
        account_sid: &str,
        auth_token: &str,
        pairs: &[(&str, &str)],
    ) -> SendOutcome {
        // The sid goes into the URL path; anything but an alphanumeric sid could change
        // the path, so it is refused before any request is made.
        if account_sid.is_empty() || !account_sid.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return invalid_request("account sid must be alphanumeric".into());
        }
        let url =
            format!("{}/2010-04-01/Accounts/{account_sid}/Messages.json", api_base_url.trim_end_matches('/'));
        // reqwest 0.13 builds without its `form` feature here, so the body is encoded by
        // hand; `basic_auth` marks the header sensitive, so it is redacted from debug output.
        let request = self
            .http
            .post(url)
            .basic_auth(account_sid, Some(auth_token))
            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(reqwest::header::ACCEPT, "application/json")
            .body(form_encode(pairs));
        match request.send().await {
            Ok(response) => classify_response(response).await,
            Err(e) => classify_transport_error(&e),
        }
    }
}

/// Whether `url` is on `api_base_url`'s origin (scheme, host, port) and under its path.
/// Compared parsed, not as string prefixes: `https://api.twilio.com.evil.example/` and
/// `https://api.twilio.com@evil.example/` both start with `https://api.twilio.com`.
fn is_under_api_base(url: &reqwest::Url, api_base_url: &str) -> bool {
    let Ok(base) = reqwest::Url::parse(api_base_url.trim()) else {
        return false;
    };
    if url.origin() != base.origin() || !matches!(base.scheme(), "http" | "https") {
        return false;
    }
    // Credentials in the URL itself would override ours; such a URL is not Twilio's.
    if !url.username().is_empty() || url.password().is_some() {
        return false;
    }
    let base_path = base.path().trim_end_matches('/');
    match url.path().strip_prefix(base_path) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

/// `ContentVariables`: a JSON object *string* mapping "1", "2" … to the body parameters,
/// in order (`{"1":"Jane","2":"4711"}`).
fn content_variables(parameters: &[String]) -> String {
    struct Variables<'a>(&'a [String]);
    impl serde::Serialize for Variables<'_> {
        fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            use serde::ser::SerializeMap as _;
            let mut map = serializer.serialize_map(Some(self.0.len()))?;
            for (i, value) in self.0.iter().enumerate() {
                map.serialize_entry(&(i + 1).to_string(), value)?;
            }
            map.end()
        }
    }
    // Serializing strings into a map of strings cannot fail.
    serde_json::to_string(&Variables(parameters)).unwrap_or_else(|_| "{}".to_owned())
}

/// `+15551234567` → `whatsapp:+15551234567`. A missing '+' is added; an empty number stays
/// empty after the prefix and Twilio rejects it with a 400, which is the right outcome.
fn channel_address(number: &str) -> String {
    let number = number.trim();
    let number = number.strip_prefix(WHATSAPP_PREFIX).unwrap_or(number).trim();
    let digits = number.strip_prefix('+').unwrap_or(number);
    if digits.is_empty() { WHATSAPP_PREFIX.to_owned() } else { format!("{WHATSAPP_PREFIX}+{digits}") }
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
        // Twilio may have queued the message even if we cannot read the answer, so this is
        // not retried: a duplicate to the customer is worse than a visible failure.
        let sid = body
            .ok()
            .and_then(|b| serde_json::from_slice::<MessageResource>(&b).ok())
            .and_then(|r| r.sid)
            .filter(|sid| !sid.is_empty());
        return match sid {
            Some(provider_message_id) => SendOutcome::Accepted { provider_message_id },
            None => SendOutcome::Rejected {
                http_status: status.as_u16(),
                error: ProviderError {
                    code: "invalid_response".into(),
                    title: "success response without a message sid".into(),
                    detail: None,
                },
            },
        };
    }

    let body = body.unwrap_or_default();
    let parsed = serde_json::from_slice::<ErrorBody>(&body).ok();
    if status.as_u16() == 429 || status.as_u16() == 408 || status.is_server_error() {
        let reason = match parsed.as_ref().and_then(ErrorBody::code) {
            Some(code) => format!("HTTP {}: Twilio error {code}", status.as_u16()),
            None => format!("HTTP {}", status.as_u16()),
        };
        return SendOutcome::Retryable { reason, retry_after };
    }
    let error = match parsed {
        Some(e) => e.into_provider_error(status.as_u16()),
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
    use crate::providers::test_support::{fixture, fixture_names, signed_bytes};
    use std::time::Duration;

    use crate::providers::http::MAX_SNIPPET_CHARS;

    use chrono::TimeZone;
    use wiremock::matchers::{body_string, header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    const FIXTURE_TOKEN: &str = "test_auth_token_0123456789abcdef";
    const INBOUND_URL: &str = "https://cc.example.com/webhooks/twilio/inbound";
    const STATUS_URL: &str = "https://cc.example.com/webhooks/twilio/status";
    const ACCOUNT_SID: &str = "AC00000000000000000000000000000001";
    const STATUS_CALLBACK: &str = "https://cc.example.com/webhooks/twilio/status";
    const CUSTOMER: &str = "+15551234567";
    const BUSINESS: &str = "+15557654321";

    fn form_fixture(name: &str) -> Vec<(String, String)> {
        parse_form(&signed_bytes(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    fn received_at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 5, 10, 0, 0).single().expect("valid timestamp")
    }

    fn parse_fixture(name: &str) -> WebhookBatch {
        parse_webhook(&form_fixture(name), received_at()).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())).collect()
    }

    fn with(params: &[(String, String)], name: &str, value: &str) -> Vec<(String, String)> {
        let mut out: Vec<_> = params.iter().filter(|(n, _)| n != name).cloned().collect();
        out.push((name.to_owned(), value.to_owned()));
        out
    }

    fn without(params: &[(String, String)], name: &str) -> Vec<(String, String)> {
        params.iter().filter(|(n, _)| n != name).cloned().collect()
    }

    // -- official vectors (signature_vectors.md A1) -------------------------------------

    const T_TOKEN: &str = "12345";
    const T_URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";

    fn t_params() -> Vec<(String, String)> {
        pairs(&[
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+14158675309"),
            ("Digits", "1234"),
            ("From", "+14158675309"),
            ("To", "+18005551212"),
        ])
    }

    fn assert_vector(id: &str, url: &str, params: &[(String, String)], expected: &str) {
        assert_eq!(expected_signature(T_TOKEN, url, params), expected, "{id}: computed signature");
        assert_eq!(verify_signature(T_TOKEN, url, params, Some(expected)), Ok(()), "{id}: verify");
    }

    #[test]
    fn official_vector_t1() {
        assert_vector("T1", T_URL, &t_params(), "RSOYDt4T1cUTdK1PDd93/VVr8B8=");
        // Port stripping: Twilio may sign without the port we were configured with.
        let with_port = "https://mycompany.com:443/myapp.php?foo=1&bar=2";
        assert_eq!(
            verify_signature(T_TOKEN, with_port, &t_params(), Some("RSOYDt4T1cUTdK1PDd93/VVr8B8=")),
            Ok(())
        );
    }

    #[test]
    fn official_vector_t2_default_https_port_added() {
        let signed = "https://mycompany.com:443/myapp.php?foo=1&bar=2";
        assert_vector("T2", signed, &t_params(), "kvajT1Ptam85bY51eRf/AJRuM3w=");
        // The validator adds :443 to a URL without a port.
        assert_eq!(
            verify_signature(T_TOKEN, T_URL, &t_params(), Some("kvajT1Ptam85bY51eRf/AJRuM3w=")),
            Ok(())
        );
    }

    #[test]
    fn official_vector_t3_default_http_port() {
        let signed = "http://mycompany.com:80/myapp.php?foo=1&bar=2";
        assert_vector("T3", signed, &t_params(), "0ZXoZLH/DfblKGATFgpif+LLRf4=");
        let no_port = "http://mycompany.com/myapp.php?foo=1&bar=2";
        assert_eq!(
            verify_signature(T_TOKEN, no_port, &t_params(), Some("0ZXoZLH/DfblKGATFgpif+LLRf4=")),
            Ok(())
        );
        // https never gets :80 added.
        assert_eq!(
            verify_signature(T_TOKEN, T_URL, &t_params(), Some("0ZXoZLH/DfblKGATFgpif+LLRf4=")),
            Err(WebhookError::BadSignature)
        );
    }

    #[test]
    fn official_vector_t4_custom_port() {
        assert_vector(
            "T4",
            "http://mycompany.com:1234/myapp.php?foo=1&bar=2",
            &t_params(),
            "Zmvh+3yNM1Phv2jhDCwEM3q5ebU=",
        );
    }

    #[test]
    fn official_vector_t5_repeated_names_deduplicated_and_sorted() {
        let params = pairs(&[
            ("Sid", "CA123"),
            ("SidAccount", "AC123"),
            ("Digits", "5678"),
            ("Digits", "1234"),
            ("Digits", "1234"),
        ]);
        assert_vector("T5", T_URL, &params, "IK+Dwps556ElfBT0I3Rgjkr1wJU=");
    }

    #[test]
    fn official_vector_t11_credentials_in_url() {
        assert_vector(
            "T11",
            "https://user:pass@mycompany.com/myapp.php?foo=1&bar=2",
            &t_params(),
            "CukzLTc1tT5dXEDIHm/tKBanW10=",
        );
    }

    #[test]
    fn official_vector_t12_array_values_sorted() {
        let params = pairs(&[
            ("MessagingBinding.Address", "+1415xxxxxxx"),
            ("MessagingBinding.Address", "+1325xxxxxxx"),
        ]);
        assert_vector("T12", T_URL, &params, "83O6e2vORAoJHUNzJjDWN1jz+BA=");
    }

    #[test]
    fn official_vector_t13_encoded_query() {
        let url = format!("{T_URL}&Body=It%27s+amazing");
        assert_vector("T13", &url, &t_params(), "TfZzewPq8wqrGlMfyAud8+/IvJ0=");
        // twilio-node's legacy re-encoding of a raw `'` is not implemented: the URL must be
        // passed as Twilio called it.
        let raw = format!("{T_URL}&Body=It's+amazing");
        assert_eq!(
            verify_signature(T_TOKEN, &raw, &t_params(), Some("TfZzewPq8wqrGlMfyAud8+/IvJ0=")),
            Err(WebhookError::BadSignature)
        );
    }

    #[test]
    fn official_vector_t14_legacy_docs() {
        let params = without(&t_params(), "Caller");
        assert_vector(
            "T14",
            "http://mycompany.com/myapp.php?foo=1&bar=2",
            &params,
            "HpS7PBa1Agvt4OtO+wZp75IuQa0=",
        );
    }

    const T6_BODY: &[u8] = br#"{"property": "value", "boolean": true}"#;
    const T6_HASH: &str = "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620";
    const T8_HASH: &str = "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";

    #[test]
    fn official_vectors_t6_t8_body_hashes() {
        assert_eq!(hex::encode(Sha256::digest(T6_BODY)), T6_HASH);
        assert_eq!(hex::encode(Sha256::digest(b"{}")), T8_HASH);
    }

    #[test]
    fn official_vector_t7_json_body() {
        let url = format!("{T_URL}&bodySHA256={T6_HASH}");
        let sig = "a9nBmqA0ju/hNViExpshrM61xv4=";
        assert_eq!(expected_signature(T_TOKEN, &url, &[]), sig);
        assert_eq!(verify_json_body(T_TOKEN, &url, T6_BODY, Some(sig)), Ok(()));
    }

    #[test]
    fn official_vector_t9_json_body_only_port_variant_matches() {
        let url = format!("{T_URL}&bodySHA256={T8_HASH}");
        let with_port = format!("https://mycompany.com:443/myapp.php?foo=1&bar=2&bodySHA256={T8_HASH}");
        let sig = "Ldidvp12m26NI7eqEvxnEpkd9Hc=";
        assert_eq!(expected_signature(T_TOKEN, &with_port, &[]), sig);
        assert_ne!(expected_signature(T_TOKEN, &url, &[]), sig);
        assert_eq!(verify_json_body(T_TOKEN, &url, b"{}", Some(sig)), Ok(()));
    }

    #[test]
    fn official_vector_t10_json_body_hash_only_query() {
        let url = format!("https://mycompany.com/myapp.php?bodySHA256={T6_HASH}");
        let sig = "y77kIzt2vzLz71DgmJGsen2scGs=";
        assert_eq!(expected_signature(T_TOKEN, &url, &[]), sig);
        assert_eq!(verify_json_body(T_TOKEN, &url, T6_BODY, Some(sig)), Ok(()));
    }

    #[test]
    fn json_body_failures() {
        let url = format!("{T_URL}&bodySHA256={T6_HASH}");
        let sig = "a9nBmqA0ju/hNViExpshrM61xv4=";
        // A body that does not match the signed hash.
        assert_eq!(verify_json_body(T_TOKEN, &url, b"{}", Some(sig)), Err(WebhookError::BadSignature));
        assert_eq!(verify_json_body(T_TOKEN, &url, b"", Some(sig)), Err(WebhookError::BadSignature));
        assert_eq!(verify_json_body(T_TOKEN, &url, T6_BODY, None), Err(WebhookError::MissingSignature));
        assert_eq!(
            verify_json_body(T_TOKEN, &url, T6_BODY, Some("RSOYDt4T1cUTdK1PDd93/VVr8B8=")),
            Err(WebhookError::BadSignature)
        );
        assert_eq!(verify_json_body("54321", &url, T6_BODY, Some(sig)), Err(WebhookError::BadSignature));
        // A correctly signed URL without bodySHA256 vouches for no body.
        let t1 = "RSOYDt4T1cUTdK1PDd93/VVr8B8=";
        assert_eq!(expected_signature(T_TOKEN, T_URL, &t_params()), t1);
        let url_only = expected_signature(T_TOKEN, T_URL, &[]);
        assert_eq!(verify_json_body(T_TOKEN, T_URL, b"{}", Some(&url_only)), Err(WebhookError::BadSignature));
        // A non-hex bodySHA256 that is nevertheless signed.
        let odd = format!("{T_URL}&bodySHA256=zz");
        let odd_sig = expected_signature(T_TOKEN, &odd, &[]);
        assert_eq!(verify_json_body(T_TOKEN, &odd, b"{}", Some(&odd_sig)), Err(WebhookError::BadSignature));
        // Uppercase hex in the URL is still the same hash.
        let upper = format!("{T_URL}&bodySHA256={}", T6_HASH.to_uppercase());
        let upper_sig = expected_signature(T_TOKEN, &upper, &[]);
        assert_eq!(verify_json_body(T_TOKEN, &upper, T6_BODY, Some(&upper_sig)), Ok(()));
    }

    // -- part B fixture signatures ------------------------------------------------------

    /// (file, header value) for every Twilio row of signature_vectors.md part B.
    fn twilio_signature_rows() -> Vec<(String, String)> {
        let md = String::from_utf8(fixture("signature_vectors.md")).expect("utf-8");
        md.lines()
            .filter(|l| l.starts_with("| twilio_") && l.contains("| X-Twilio-Signature |"))
            .map(|l| {
                let cells: Vec<&str> = l.split('|').map(str::trim).collect();
                (cells[1].to_owned(), cells[3].trim_matches('`').to_owned())
            })
            .collect()
    }

    fn fixture_url(name: &str) -> &'static str {
        if name.starts_with("twilio_inbound_") { INBOUND_URL } else { STATUS_URL }
    }

    #[test]
    fn every_fixture_signature_from_part_b_verifies() {
        let rows = twilio_signature_rows();
        assert_eq!(rows.len(), 10, "part B lists 5 inbound and 5 status fixtures");
        for (name, sig) in rows {
            let params = form_fixture(&name);
            let url = fixture_url(&name);
            assert_eq!(expected_signature(FIXTURE_TOKEN, url, &params), sig, "{name}");
            assert_eq!(verify_signature(FIXTURE_TOKEN, url, &params, Some(&sig)), Ok(()), "{name}");
            // The other endpoint's URL must not verify.
            let other = if url == INBOUND_URL { STATUS_URL } else { INBOUND_URL };
            assert_eq!(
                verify_signature(FIXTURE_TOKEN, other, &params, Some(&sig)),
                Err(WebhookError::BadSignature),
                "{name}"
            );
            // Pair order in the body does not matter; the signature sorts.
            let mut reversed = params.clone();
            reversed.reverse();
            assert_eq!(verify_signature(FIXTURE_TOKEN, url, &reversed, Some(&sig)), Ok(()), "{name}");
        }
    }

    #[test]
    fn fixture_port_variants() {
        let params = form_fixture("twilio_inbound_text.form");
        let sig = "OWubPYnfzWi/hghiztNGanJsxZs=";
        // Configured with the explicit default port, Twilio signed without it.
        let with_port = "https://cc.example.com:443/webhooks/twilio/inbound";
        assert_eq!(verify_signature(FIXTURE_TOKEN, with_port, &params, Some(sig)), Ok(()));
        // Configured without a port, Twilio signed with :443.
        let sig_443 = expected_signature(FIXTURE_TOKEN, with_port, &params);
        assert_eq!(verify_signature(FIXTURE_TOKEN, INBOUND_URL, &params, Some(&sig_443)), Ok(()));
        // A signature over a different port is not accepted for the no-port URL.
        let sig_8443 =
            expected_signature(FIXTURE_TOKEN, "https://cc.example.com:8443/webhooks/twilio/inbound", &params);
        assert_eq!(
            verify_signature(FIXTURE_TOKEN, INBOUND_URL, &params, Some(&sig_8443)),
            Err(WebhookError::BadSignature)
        );
        // Nor :80 for https.
        let sig_80 =
            expected_signature(FIXTURE_TOKEN, "https://cc.example.com:80/webhooks/twilio/inbound", &params);
        assert_eq!(
            verify_signature(FIXTURE_TOKEN, INBOUND_URL, &params, Some(&sig_80)),
            Err(WebhookError::BadSignature)
        );
    }

    #[test]
    fn missing_and_wrong_signatures() {
        let params = form_fixture("twilio_inbound_text.form");
        let sig = "OWubPYnfzWi/hghiztNGanJsxZs=";
        let verify = |token: &str, url: &str, p: &[(String, String)], h: Option<&str>| {
            verify_signature(token, url, p, h)
        };
        assert_eq!(verify(FIXTURE_TOKEN, INBOUND_URL, &params, None), Err(WebhookError::MissingSignature));
        // Surrounding whitespace from a proxy is tolerated.
        assert_eq!(
            verify(FIXTURE_TOKEN, INBOUND_URL, &params, Some(" OWubPYnfzWi/hghiztNGanJsxZs= ")),
            Ok(())
        );
        for bad in ["", "not base64!", "OWubPYnfzWi/hghiztNGanJsxZs", "owubpynfzwi/hghizTNGanJsxZs=", "AAAA"]
        {
            assert_eq!(
                verify(FIXTURE_TOKEN, INBOUND_URL, &params, Some(bad)),
                Err(WebhookError::BadSignature),
                "{bad:?}"
            );
        }
        // The Meta-style header is not a Twilio signature.
        assert_eq!(
            verify(FIXTURE_TOKEN, INBOUND_URL, &params, Some("sha256=OWubPYnfzWi/hghiztNGanJsxZs=")),
            Err(WebhookError::BadSignature)
        );
        let bad = Err(WebhookError::BadSignature);
        assert_eq!(verify("test_auth_token_0123456789abcdeF", INBOUND_URL, &params, Some(sig)), bad);
        assert_eq!(verify(FIXTURE_TOKEN, &format!("{INBOUND_URL}/"), &params, Some(sig)), bad);
        assert_eq!(verify(FIXTURE_TOKEN, &format!("{INBOUND_URL}?x=1"), &params, Some(sig)), bad);
        assert_eq!(
            verify(FIXTURE_TOKEN, "http://cc.example.com/webhooks/twilio/inbound", &params, Some(sig)),
            bad
        );
        // Tampered, added and removed parameters.
        assert_eq!(verify(FIXTURE_TOKEN, INBOUND_URL, &with(&params, "Body", "refund me"), Some(sig)), bad);
        assert_eq!(verify(FIXTURE_TOKEN, INBOUND_URL, &with(&params, "Extra", ""), Some(sig)), bad);
        assert_eq!(verify(FIXTURE_TOKEN, INBOUND_URL, &without(&params, "ProfileName"), Some(sig)), bad);
        assert_eq!(verify(FIXTURE_TOKEN, INBOUND_URL, &[], Some(sig)), bad);
        // An empty token never verifies, even with a signature made with it.
        let empty_sig = expected_signature("", INBOUND_URL, &params);
        assert_eq!(verify("", INBOUND_URL, &params, Some(&empty_sig)), bad);
    }

    #[test]
    fn new_parameters_are_signed_too() {
        let params = with(&form_fixture("twilio_inbound_text.form"), "SomethingTwilioAddedLater", "x");
        let sig = expected_signature(FIXTURE_TOKEN, INBOUND_URL, &params);
        assert_eq!(verify_signature(FIXTURE_TOKEN, INBOUND_URL, &params, Some(&sig)), Ok(()));
        assert!(parse_webhook(&params, received_at()).is_ok());
    }

    #[test]
    fn url_candidates_cover_port_forms() {
        assert_eq!(
            url_candidates("https://h.example/p?q=1"),
            vec!["https://h.example/p?q=1", "https://h.example:443/p?q=1"]
        );
        assert_eq!(
            url_candidates("http://h.example:80/p"),
            vec!["http://h.example:80/p", "http://h.example/p"]
        );
        assert_eq!(url_candidates("HTTPS://h.example"), vec!["HTTPS://h.example", "HTTPS://h.example:443"]);
        assert_eq!(
            url_candidates("https://u:p@h.example:8443/x"),
            vec!["https://u:p@h.example:8443/x", "https://u:p@h.example/x"]
        );
        assert_eq!(url_candidates("https://[::1]:8443/x"), vec!["https://[::1]:8443/x", "https://[::1]/x"]);
        assert_eq!(url_candidates("https://[::1]/x"), vec!["https://[::1]/x", "https://[::1]:443/x"]);
        // Things we cannot split are tried only as given.
        for odd in ["", "no-scheme/path", "https://", "https://:443/x", "https://h:port/x", "https://é:1é"]
        {
            assert_eq!(url_candidates(odd), vec![odd.to_owned()], "{odd:?}");
        }
    }

    #[test]
    fn query_param_lookup() {
        assert_eq!(query_param("https://h/p?a=1&bodySHA256=ab#frag", "bodySHA256"), Some("ab"));
        assert_eq!(query_param("https://h/p?bodySHA256", "bodySHA256"), Some(""));
        assert_eq!(query_param("https://h/p#?bodySHA256=ab", "bodySHA256"), None);
        assert_eq!(query_param("https://h/p?xbodySHA256=ab", "bodySHA256"), None);
    }

    // -- form decoding -----------------------------------------------------------------

    #[test]
    fn parse_form_decodes() {
        let decoded = parse_form(b"a=1&&b&c=x+y%2Bz%20%C3%A9&=v&d=e=f&&").expect("valid");
        assert_eq!(decoded, pairs(&[("a", "1"), ("b", ""), ("c", "x y+z é"), ("", "v"), ("d", "e=f")]));
        assert_eq!(parse_form(b"").expect("empty"), vec![]);
        assert_eq!(parse_form(b"%41%4a%4A=%7e").expect("hex case"), pairs(&[("AJJ", "~")]));
        let params = form_fixture("twilio_inbound_text.form");
        assert_eq!(params.len(), 16);
        assert_eq!(params[0], ("SmsMessageSid".into(), "SMa1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1".into()));
        let body = params.iter().find(|(n, _)| n == "Body").map(|(_, v)| v.as_str());
        assert_eq!(body, Some("Hi, I need help with order 4711"));
    }

    #[test]
    fn parse_form_rejects_malformed() {
        for bad in
            [&b"a=%"[..], b"a=%4", b"a=%zz", b"a=%4g", b"%=1", b"a=1&b=%%41", b"a=%FF", b"a=\xff", b"a=%C3"]
        {
            match parse_form(bad) {
                Err(WebhookError::Malformed(reason)) => {
                    assert!(!reason.contains('%') && !reason.contains("a="), "{reason}")
                }
                other => panic!("{:?}: {other:?}", String::from_utf8_lossy(bad)),
            }
        }
    }

    #[test]
    fn form_encoding_round_trips_every_twilio_form_fixture() {
        let names = fixture_names("twilio_", ".form");
        assert_eq!(names.len(), 13, "{names:?}");
        for name in names {
            let raw = signed_bytes(&name);
            let params = form_fixture(&name);
            let borrowed: Vec<(&str, &str)> = params.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
            assert_eq!(form_encode(&borrowed).as_bytes(), &raw[..], "{name}");
        }
    }

    // -- inbound parsing ---------------------------------------------------------------

    fn single_message(name: &str) -> InboundMessage {
        let batch = parse_fixture(name);
        assert!(batch.statuses.is_empty(), "{name}");
        assert_eq!(batch.messages.len(), 1, "{name}");
        batch.messages.into_iter().next().expect("one message")
    }

    fn unsupported(kind: &str, summary: &str) -> InboundBody {
        InboundBody::Unsupported { kind: kind.into(), summary: summary.into() }
    }

    #[test]
    fn parses_inbound_text() {
        assert_eq!(
            single_message("twilio_inbound_text.form"),
            InboundMessage {
                provider_message_id: "SMa1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1".into(),
                from: CUSTOMER.into(),
                to_phone_number_id: BUSINESS.into(),
                profile_name: Some("Jane Doe".into()),
                timestamp: received_at(),
                body: InboundBody::Text("Hi, I need help with order 4711".into()),
            }
        );
    }

    const MEDIA_URL: &str = "https://api.twilio.com/2010-04-01/Accounts/AC00000000000000000000000000000001\
                             /Messages/MMb2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2/Media/MEd4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4";

    const DOCUMENT_URL: &str = "https://api.twilio.com/2010-04-01/Accounts/AC00000000000000000000000000000001\
                                /Messages/MMb2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2/Media/MEe5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5";

    fn expected_media(kind: MediaKind, content_type: Option<&str>, caption: Option<&str>) -> InboundBody {
        InboundBody::Media(InboundMedia {
            kind,
            source: MediaSource::Url(MEDIA_URL.into()),
            content_type: content_type.map(str::to_owned),
            caption: caption.map(str::to_owned),
            filename: None,
        })
    }

    #[test]
    fn parses_inbound_media_with_caption() {
        let m = single_message("twilio_inbound_media.form");
        assert_eq!(m.provider_message_id, "MMb2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2");
        assert_eq!((m.from.as_str(), m.to_phone_number_id.as_str()), (CUSTOMER, BUSINESS));
        assert_eq!(m.timestamp, received_at());
        assert_eq!(
            m.body,
            expected_media(MediaKind::Image, Some("image/jpeg"), Some("photo of the damaged box"))
        );
    }

    #[test]
    fn parses_inbound_document_with_file_name() {
        let m = single_message("twilio_inbound_document.form");
        assert_eq!(m.provider_message_id, "MMb2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2");
        assert_eq!(
            m.body,
            InboundBody::Media(InboundMedia {
                kind: MediaKind::Document,
                source: MediaSource::Url(DOCUMENT_URL.into()),
                content_type: Some("application/pdf".into()),
                caption: None,
                filename: Some("invoice.pdf".into()),
            })
        );
    }

    #[test]
    fn parses_inbound_location() {
        let m = single_message("twilio_inbound_location.form");
        assert_eq!(m.provider_message_id, "SMa1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1");
        assert_eq!(m.profile_name.as_deref(), Some("Jane Doe"));
        assert_eq!(m.body, unsupported("location", "[location] 51.51322977399644,-0.2197976373036567"));
    }

    #[test]
    fn parses_inbound_button_reply() {
        let m = single_message("twilio_inbound_button_reply.form");
        assert_eq!(m.from, CUSTOMER);
        assert_eq!(m.body, unsupported("button", "Talk to an agent"));
    }

    fn body_of(params: &[(String, String)]) -> InboundBody {
        let batch = parse_webhook(params, received_at()).expect("parses");
        assert_eq!(batch.messages.len(), 1);
        batch.messages.into_iter().next().expect("one message").body
    }

    #[test]
    fn inbound_body_variants() {
        let media = form_fixture("twilio_inbound_media.form");
        let caption = Some("photo of the damaged box");
        // The content type decides the kind; MessageType is only a fallback.
        assert_eq!(
            body_of(&without(&media, "MessageType")),
            expected_media(MediaKind::Image, Some("image/jpeg"), caption)
        );
        assert_eq!(
            body_of(&with(&media, "Body", "")),
            expected_media(MediaKind::Image, Some("image/jpeg"), None)
        );
        assert_eq!(
            body_of(&with(&media, "Body", " ")),
            expected_media(MediaKind::Image, Some("image/jpeg"), None)
        );
        assert_eq!(
            body_of(&without(&without(&media, "MediaContentType0"), "Body")),
            expected_media(MediaKind::Image, None, None)
        );
        assert_eq!(
            body_of(&without(&without(&media, "MediaContentType0"), "MessageType")),
            expected_media(MediaKind::Document, None, caption)
        );
        for (ct, kind) in [
            ("audio/ogg; codecs=opus", MediaKind::Audio),
            ("video/mp4", MediaKind::Video),
            ("application/octet-stream", MediaKind::Document),
            ("IMAGE/PNG", MediaKind::Image),
        ] {
            assert_eq!(
                body_of(&with(&media, "MediaContentType0", ct)),
                expected_media(kind, Some(ct), caption),
                "{ct}"
            );
        }
        // A sticker is an image/webp the sender called a sticker.
        let sticker = with(&with(&media, "MediaContentType0", "image/webp"), "MessageType", "sticker");
        assert_eq!(body_of(&sticker), expected_media(MediaKind::Sticker, Some("image/webp"), caption));
        // NumMedia=0 or a missing URL: no media to fetch.
        assert_eq!(
            body_of(&with(&media, "NumMedia", "0")),
            InboundBody::Text("photo of the damaged box".into())
        );
        assert_eq!(
            body_of(&without(&media, "MediaUrl0")),
            unsupported("image", "[image/jpeg] photo of the damaged box")
        );
        assert_eq!(
            body_of(&with(&media, "MediaUrl0", " ")),
            unsupported("image", "[image/jpeg] photo of the damaged box")
        );
        // A document's Body is its file name only when it looks like one.
        let document = form_fixture("twilio_inbound_document.form");
        let doc = |body: &str| match body_of(&with(&document, "Body", body)) {
            InboundBody::Media(m) => (m.caption, m.filename),
            other => panic!("{other:?}"),
        };
        assert_eq!(doc("scan 2.PDF"), (None, Some("scan 2.PDF".into())));
        assert_eq!(doc("please see the attached"), (Some("please see the attached".into()), None));
        assert_eq!(doc("see invoice.pdf\nthanks"), (Some("see invoice.pdf\nthanks".into()), None));
        assert_eq!(doc("v1.final-draft"), (Some("v1.final-draft".into()), None));
        assert_eq!(doc(".pdf"), (Some(".pdf".into()), None));
        assert_eq!(doc(""), (None, None));
        let text = form_fixture("twilio_inbound_text.form");
        assert_eq!(
            body_of(&without(&text, "MessageType")),
            InboundBody::Text("Hi, I need help with order 4711".into())
        );
        assert_eq!(
            body_of(&without(&text, "NumMedia")),
            InboundBody::Text("Hi, I need help with order 4711".into())
        );
        // A type we do not know, with nothing typed, is shown as its type.
        assert_eq!(
            body_of(&with(&with(&text, "MessageType", "sticker"), "Body", "")),
            unsupported("sticker", "[sticker]")
        );
        // An interactive reply with a Body stays readable text.
        assert_eq!(
            body_of(&with(&text, "MessageType", "interactive")),
            InboundBody::Text("Hi, I need help with order 4711".into())
        );
        let button = form_fixture("twilio_inbound_button_reply.form");
        assert_eq!(body_of(&without(&button, "ButtonText")), unsupported("button", "Talk to an agent"));
        let payload_only = with(&without(&without(&button, "ButtonText"), "MessageType"), "Body", "");
        assert_eq!(body_of(&payload_only), unsupported("button", "AGENT_HANDOFF"));
        let location = form_fixture("twilio_inbound_location.form");
        assert_eq!(body_of(&with(&location, "Latitude", "north")), unsupported("location", "[location]"));
        assert_eq!(
            body_of(&without(&location, "MessageType")),
            unsupported("location", "[location] 51.51322977399644,-0.2197976373036567")
        );
    }

    #[test]
    fn inbound_address_forms() {
        let text = form_fixture("twilio_inbound_text.form");
        let parse = |p: &[(String, String)]| parse_webhook(p, received_at());
        let m = parse(&with(&text, "From", "+15551234567")).expect("bare E.164");
        assert_eq!(m.messages[0].from, CUSTOMER);
        let m = parse(&with(&text, "From", "whatsapp:15551234567")).expect("without +");
        assert_eq!(m.messages[0].from, CUSTOMER);
        let m = parse(&without(&text, "ProfileName")).expect("no profile");
        assert_eq!(m.messages[0].profile_name, None);
        let m = parse(&with(&text, "ProfileName", "")).expect("empty profile");
        assert_eq!(m.messages[0].profile_name, None);
        for from in ["messenger:123456", "whatsapp:", "whatsapp:+1555abc", "whatsapp:+1234567890123456"] {
            assert!(matches!(parse(&with(&text, "From", from)), Err(WebhookError::Malformed(_))), "{from}");
        }
    }

    fn assert_malformed(params: &[(String, String)], expect: &str) {
        match parse_webhook(params, received_at()) {
            Err(WebhookError::Malformed(reason)) => {
                assert!(reason.contains(expect), "{reason}");
                // Reasons name fields, never values.
                assert!(
                    !reason.contains("+1555") && !reason.contains("SM") && !reason.contains("Jane"),
                    "{reason}"
                );
            }
            other => panic!("expected Malformed({expect}), got {other:?}"),
        }
    }

    #[test]
    fn malformed_webhooks() {
        let text = form_fixture("twilio_inbound_text.form");
        assert_malformed(&without(&text, "MessageSid"), "MessageSid");
        assert_malformed(&with(&text, "MessageSid", ""), "MessageSid");
        assert_malformed(&without(&text, "From"), "From");
        assert_malformed(&without(&text, "To"), "To");
        assert_malformed(&with(&text, "NumMedia", "one"), "NumMedia");
        assert_malformed(&[], "neither");
        assert_malformed(&pairs(&[("AccountSid", ACCOUNT_SID)]), "neither");
        let status = form_fixture("twilio_status_delivered.form");
        assert_malformed(&without(&status, "MessageSid"), "MessageSid");
        assert_malformed(&without(&status, "From"), "From");
    }

    // -- status callbacks --------------------------------------------------------------

    fn single_status(name: &str) -> StatusUpdate {
        let batch = parse_fixture(name);
        assert!(batch.messages.is_empty(), "{name}");
        assert_eq!(batch.statuses.len(), 1, "{name}");
        batch.statuses.into_iter().next().expect("one status")
    }

    #[test]
    fn parses_status_sent_delivered_read() {
        for (name, status) in [
            ("twilio_status_sent.form", DeliveryStatus::Sent),
            ("twilio_status_delivered.form", DeliveryStatus::Delivered),
            ("twilio_status_read.form", DeliveryStatus::Read),
        ] {
            assert_eq!(
                single_status(name),
                StatusUpdate {
                    provider_message_id: "SMc3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3".into(),
                    status,
                    timestamp: received_at(),
                    recipient: CUSTOMER.into(),
                    error: None,
                },
                "{name}"
            );
        }
    }

    #[test]
    fn parses_status_failed_window_closed() {
        let s = single_status("twilio_status_failed.form");
        assert_eq!(s.status, DeliveryStatus::Failed);
        assert_eq!(s.recipient, CUSTOMER);
        assert_eq!(
            s.error,
            Some(ProviderError {
                code: "63016".into(),
                title: "Failed to send freeform message because you are outside the allowed window.".into(),
                detail: None,
            })
        );
    }

    #[test]
    fn parses_status_undelivered_as_failed() {
        let s = single_status("twilio_status_undelivered.form");
        assert_eq!(s.status, DeliveryStatus::Failed);
        assert_eq!(
            s.error,
            Some(ProviderError {
                code: "63024".into(),
                title: "Invalid message recipient".into(),
                detail: None
            })
        );
    }

    #[test]
    fn status_error_variants() {
        let failed = form_fixture("twilio_status_failed.form");
        let s =
            &parse_webhook(&without(&failed, "ChannelStatusMessage"), received_at()).expect("ok").statuses[0];
        assert_eq!(s.error.as_ref().map(|e| e.title.as_str()), Some("Twilio error 63016"));
        let s = &parse_webhook(&without(&failed, "ErrorCode"), received_at()).expect("ok").statuses[0];
        assert_eq!(s.error.as_ref().map(|e| e.code.as_str()), Some("unknown"));
        let s = &parse_webhook(&with(&failed, "ChannelStatusMessage", &"x".repeat(5000)), received_at())
            .expect("ok")
            .statuses[0];
        assert_eq!(s.error.as_ref().map(|e| e.title.len()), Some(MAX_SNIPPET_CHARS));
        let s = &parse_webhook(&without(&failed, "To"), received_at()).expect("ok").statuses[0];
        assert_eq!(s.recipient, "");
    }

    #[test]
    fn untracked_statuses_are_skipped() {
        let sent = form_fixture("twilio_status_sent.form");
        for status in
            ["queued", "sending", "accepted", "scheduled", "canceled", "partially_delivered", "new_thing"]
        {
            let batch = parse_webhook(&with(&sent, "MessageStatus", status), received_at()).expect(status);
            assert_eq!(batch, WebhookBatch::default(), "{status}");
        }
    }

    #[test]
    fn received_status_is_an_inbound_message() {
        let text = form_fixture("twilio_inbound_text.form");
        let batch = parse_webhook(&with(&text, "MessageStatus", "received"), received_at()).expect("ok");
        assert_eq!(batch.messages.len(), 1);
        let batch =
            parse_webhook(&with(&without(&text, "SmsStatus"), "MessageStatus", "received"), received_at())
                .expect("ok");
        assert_eq!(batch.messages.len(), 1);
    }

    // -- client ------------------------------------------------------------------------

    const AUTH_TOKEN: &str = "test_auth_token_0123456789abcdef";
    const MESSAGES_PATH: &str = "/2010-04-01/Accounts/AC00000000000000000000000000000001/Messages.json";
    const TEXT: &str = "Hello Jane, agent Sam here. How can I help?";

    fn client() -> TwilioClient {
        TwilioClient::new(reqwest::Client::builder().timeout(Duration::from_secs(5)).build().expect("client"))
    }

    fn basic_auth() -> String {
        format!("Basic {}", BASE64.encode(format!("{ACCOUNT_SID}:{AUTH_TOKEN}")))
    }

    fn fixture_text(name: &str) -> String {
        String::from_utf8(signed_bytes(name)).expect("utf-8")
    }

    async fn send(server: &MockServer) -> SendOutcome {
        client()
            .send_text(
                &server.uri(),
                ACCOUNT_SID,
                AUTH_TOKEN,
                BUSINESS,
                CUSTOMER,
                TEXT,
                Some(STATUS_CALLBACK),
            )
            .await
    }

    async fn respond_with(template: ResponseTemplate) -> SendOutcome {
        let server = MockServer::start().await;
        Mock::given(method("POST")).and(path(MESSAGES_PATH)).respond_with(template).mount(&server).await;
        send(&server).await
    }

    fn created() -> ResponseTemplate {
        ResponseTemplate::new(201).set_body_raw(fixture("twilio_send_response.json"), "application/json")
    }

    async fn mock_expecting_body(server: &MockServer, body: String) {
        Mock::given(method("POST"))
            .and(path(MESSAGES_PATH))
            .and(header("authorization", basic_auth().as_str()))
            .and(header("content-type", "application/x-www-form-urlencoded"))
            .and(body_string(body))
            .respond_with(created())
            .expect(1)
            .mount(server)
            .await;
    }

    fn accepted() -> SendOutcome {
        SendOutcome::Accepted { provider_message_id: "SMc3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3".into() }
    }

    #[tokio::test]
    async fn send_text_success_matches_fixture_body() {
        let server = MockServer::start().await;
        mock_expecting_body(&server, fixture_text("twilio_outbound_text.form")).await;
        assert_eq!(send(&server).await, accepted());
    }

    #[tokio::test]
    async fn send_text_normalizes_numbers_and_base_url() {
        let server = MockServer::start().await;
        mock_expecting_body(&server, fixture_text("twilio_outbound_text.form")).await;
        let base = format!("{}/", server.uri());
        let outcome = client()
            .send_text(
                &base,
                ACCOUNT_SID,
                AUTH_TOKEN,
                "whatsapp:+15557654321",
                "15551234567",
                TEXT,
                Some(STATUS_CALLBACK),
            )
            .await;
        assert_eq!(outcome, accepted());
    }

    #[tokio::test]
    async fn send_text_without_status_callback() {
        let server = MockServer::start().await;
        let body =
            "To=whatsapp%3A%2B15551234567&From=whatsapp%3A%2B15557654321&Body=hi+%26+bye%3D%F0%9F%91%8B";
        mock_expecting_body(&server, body.to_owned()).await;
        let outcome = client()
            .send_text(&server.uri(), ACCOUNT_SID, AUTH_TOKEN, BUSINESS, CUSTOMER, "hi & bye=👋", None)
            .await;
        assert_eq!(outcome, accepted());
    }

    #[tokio::test]
    async fn send_template_success_matches_fixture_body() {
        let server = MockServer::start().await;
        mock_expecting_body(&server, fixture_text("twilio_outbound_template.form")).await;
        let outcome = client()
            .send_template(
                &server.uri(),
                ACCOUNT_SID,
                AUTH_TOKEN,
                BUSINESS,
                CUSTOMER,
                Some("MG00000000000000000000000000000002"),
                "HX0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a",
                r#"{"1": "Jane", "2": "4711"}"#,
                Some(STATUS_CALLBACK),
            )
            .await;
        assert_eq!(outcome, accepted());
    }

    #[tokio::test]
    async fn send_template_without_messaging_service() {
        let server = MockServer::start().await;
        let body = "To=whatsapp%3A%2B15551234567&From=whatsapp%3A%2B15557654321\
                    &ContentSid=HX1&ContentVariables=%7B%7D";
        mock_expecting_body(&server, body.to_owned()).await;
        let outcome = client()
            .send_template(
                &server.uri(),
                ACCOUNT_SID,
                AUTH_TOKEN,
                BUSINESS,
                CUSTOMER,
                None,
                "HX1",
                "{}",
                None,
            )
            .await;
        assert_eq!(outcome, accepted());
    }

    #[tokio::test]
    async fn legacy_error_is_rejected_with_raw_code() {
        let outcome = respond_with(
            ResponseTemplate::new(400)
                .set_body_raw(fixture("twilio_error_response.json"), "application/json"),
        )
        .await;
        assert_eq!(
            outcome,
            SendOutcome::Rejected {
                http_status: 400,
                error: ProviderError {
                    code: "21211".into(),
                    title: "The 'To' number whatsapp:+1555 is not a valid phone number.".into(),
                    // `more_info` is only a link: agents are shown the message instead.
                    detail: None,
                },
            }
        );
    }

    #[tokio::test]
    async fn rfc9457_error_is_rejected_with_raw_code() {
        let body = serde_json::json!({
            "type": "https://www.twilio.com/docs/errors/63016",
            "title": "Outside the allowed window",
            "status": 400,
            "code": 63016,
            "detail": "Failed to send freeform message because you are outside the allowed window.",
            "instance": "/2010-04-01/Accounts/AC00000000000000000000000000000001/Messages.json",
        });
        let outcome = respond_with(ResponseTemplate::new(400).set_body_json(body)).await;
        assert_eq!(
            outcome,
            SendOutcome::Rejected {
                http_status: 400,
                error: ProviderError {
                    code: "63016".into(),
                    title: "Outside the allowed window".into(),
                    detail: Some(
                        "Failed to send freeform message because you are outside the allowed window.".into()
                    ),
                },
            }
        );
        // Without `code`, the number at the end of `type` is the code.
        let body = serde_json::json!({"type": "https://www.twilio.com/docs/errors/20003", "title": "Unauthorized",
            "status": 401});
        match respond_with(ResponseTemplate::new(401).set_body_json(body)).await {
            SendOutcome::Rejected { http_status: 401, error } => {
                assert_eq!((error.code.as_str(), error.title.as_str()), ("20003", "Unauthorized"))
            }
            other => panic!("{other:?}"),
        }
        // A string code is kept as is.
        let body = serde_json::json!({"code": "21610", "message": "unsubscribed"});
        match respond_with(ResponseTemplate::new(400).set_body_json(body)).await {
            SendOutcome::Rejected { error, .. } => assert_eq!(error.code, "21610"),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn non_json_4xx_is_rejected_with_http_code() {
        match respond_with(ResponseTemplate::new(404).set_body_string("<html>nope</html>")).await {
            SendOutcome::Rejected { http_status: 404, error } => {
                assert_eq!(error.code, "http_404");
                assert_eq!(error.detail.as_deref(), Some("<html>nope</html>"));
            }
            other => panic!("{other:?}"),
        }
        match respond_with(ResponseTemplate::new(400).set_body_json(serde_json::json!({}))).await {
            SendOutcome::Rejected { http_status: 400, error } => assert_eq!(error.code, "http_400"),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn http_429_with_retry_after_is_retryable() {
        let body = serde_json::json!({"code": 20429, "message": "Too Many Requests", "status": 429});
        let outcome =
            respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "7").set_body_json(body))
                .await;
        match outcome {
            SendOutcome::Retryable { reason, retry_after } => {
                assert_eq!(retry_after, Some(Duration::from_secs(7)));
                assert!(reason.contains("429") && reason.contains("20429"), "{reason}");
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
    async fn success_without_sid_is_rejected() {
        for body in
            [serde_json::json!({"status": "queued"}), serde_json::json!({"sid": ""}), serde_json::json!([])]
        {
            let outcome = respond_with(ResponseTemplate::new(201).set_body_json(body.clone())).await;
            match outcome {
                SendOutcome::Rejected { http_status: 201, error } => {
                    assert_eq!(error.code, "invalid_response")
                }
                other => panic!("{body}: {other:?}"),
            }
        }
        let outcome = respond_with(ResponseTemplate::new(201).set_body_string("not json")).await;
        assert!(matches!(outcome, SendOutcome::Rejected { http_status: 201, .. }), "{outcome:?}");
    }

    #[tokio::test]
    async fn timeout_is_retryable() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(created().set_delay(Duration::from_secs(3)))
            .mount(&server)
            .await;
        let http = reqwest::Client::builder().timeout(Duration::from_millis(200)).build().expect("client");
        let outcome = TwilioClient::new(http)
            .send_text(&server.uri(), ACCOUNT_SID, AUTH_TOKEN, BUSINESS, CUSTOMER, "hi", None)
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
            .send_text(&format!("http://{addr}"), ACCOUNT_SID, AUTH_TOKEN, BUSINESS, CUSTOMER, "hi", None)
            .await;
        assert!(matches!(outcome, SendOutcome::Retryable { retry_after: None, .. }), "{outcome:?}");
    }

    #[tokio::test]
    async fn bad_configuration_is_rejected_not_retried() {
        let server = MockServer::start().await;
        Mock::given(method("POST")).respond_with(created()).expect(0).mount(&server).await;
        for sid in ["", "AC1/../x", "AC1?x=1", "AC1#", "AC 1"] {
            let outcome =
                client().send_text(&server.uri(), sid, AUTH_TOKEN, BUSINESS, CUSTOMER, "hi", None).await;
            assert!(matches!(outcome, SendOutcome::Rejected { http_status: 0, .. }), "{sid:?}: {outcome:?}");
        }
        let outcome =
            client().send_text("not a url", ACCOUNT_SID, AUTH_TOKEN, BUSINESS, CUSTOMER, "hi", None).await;
        assert!(matches!(outcome, SendOutcome::Rejected { http_status: 0, .. }), "{outcome:?}");
    }

    #[test]
    fn retry_after_formats() {
        assert_eq!(parse_retry_after(" 30 "), Some(Duration::from_secs(30)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn channel_address_forms() {
        assert_eq!(channel_address("+15551234567"), "whatsapp:+15551234567");
        assert_eq!(channel_address("15551234567"), "whatsapp:+15551234567");
        assert_eq!(channel_address(" whatsapp:+15551234567 "), "whatsapp:+15551234567");
        assert_eq!(channel_address(""), "whatsapp:");
    }

    // -- send(OutboundContent) ---------------------------------------------------------

    async fn send_content(server: &MockServer, content: &OutboundContent) -> SendOutcome {
        client()
            .send(&server.uri(), ACCOUNT_SID, AUTH_TOKEN, BUSINESS, CUSTOMER, content, Some(STATUS_CALLBACK))
            .await
    }

    fn outbound_media(caption: Option<&str>) -> OutboundContent {
        OutboundContent::Media(OutboundMedia {
            kind: MediaKind::Document,
            url: "https://cdn.example.com/files/invoice-4711.pdf".into(),
            content_type: "application/pdf".into(),
            caption: caption.map(str::to_owned),
            filename: Some("invoice-4711.pdf".into()),
        })
    }

    fn template(parameters: &[&str]) -> OutboundContent {
        OutboundContent::Template(OutboundTemplate {
            name: "HX0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a".into(),
            language: "en_US".into(),
            body_parameters: parameters.iter().map(|p| (*p).to_owned()).collect(),
        })
    }

    #[tokio::test]
    async fn send_text_content_matches_fixture_body() {
        let server = MockServer::start().await;
        mock_expecting_body(&server, fixture_text("twilio_outbound_text.form")).await;
        assert_eq!(send_content(&server, &OutboundContent::Text(TEXT.into())).await, accepted());
    }

    #[tokio::test]
    async fn send_media_with_caption_matches_fixture_body() {
        let server = MockServer::start().await;
        mock_expecting_body(&server, fixture_text("twilio_outbound_media.form")).await;
        assert_eq!(send_content(&server, &outbound_media(Some("Here is your invoice"))).await, accepted());
    }

    #[tokio::test]
    async fn send_media_without_caption_has_no_body() {
        let server = MockServer::start().await;
        let body = "To=whatsapp%3A%2B15551234567&From=whatsapp%3A%2B15557654321\
                    &MediaUrl=https%3A%2F%2Fcdn.example.com%2Ffiles%2Finvoice-4711.pdf";
        mock_expecting_body(&server, body.to_owned()).await;
        let outcome = client()
            .send(&server.uri(), ACCOUNT_SID, AUTH_TOKEN, BUSINESS, CUSTOMER, &outbound_media(None), None)
            .await;
        assert_eq!(outcome, accepted());
        // An empty caption is no caption.
        let server = MockServer::start().await;
        mock_expecting_body(&server, body.to_owned()).await;
        let outcome = client()
            .send(&server.uri(), ACCOUNT_SID, AUTH_TOKEN, BUSINESS, CUSTOMER, &outbound_media(Some("")), None)
            .await;
        assert_eq!(outcome, accepted());
    }

    #[tokio::test]
    async fn send_template_content_builds_content_variables() {
        let server = MockServer::start().await;
        let body = "To=whatsapp%3A%2B15551234567&From=whatsapp%3A%2B15557654321\
                    &ContentSid=HX0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a\
                    &ContentVariables=%7B%221%22%3A%22Jane%22%2C%222%22%3A%224711%22%7D\
                    &StatusCallback=https%3A%2F%2Fcc.example.com%2Fwebhooks%2Ftwilio%2Fstatus";
        mock_expecting_body(&server, body.to_owned()).await;
        assert_eq!(send_content(&server, &template(&["Jane", "4711"])).await, accepted());
        // Same variables as the fixture (which was written with spaces after separators and
        // with a Messaging Service).
        let fixture_params = form_fixture("twilio_outbound_template.form");
        let fixture_vars = fixture_params.iter().find(|(n, _)| n == "ContentVariables").map(|(_, v)| v);
        let ours = content_variables(&["Jane".into(), "4711".into()]);
        assert_eq!(
            serde_json::from_str::<Value>(&ours).expect("json"),
            serde_json::from_str::<Value>(fixture_vars.expect("fixture has ContentVariables")).expect("json")
        );
    }

    #[test]
    fn content_variables_are_numbered_in_order_and_escaped() {
        assert_eq!(content_variables(&[]), "{}");
        let many: Vec<String> = (1..=11).map(|i| format!("v{i}")).collect();
        let json = content_variables(&many);
        assert!(json.starts_with(r#"{"1":"v1","2":"v2","#) && json.ends_with(r#""10":"v10","11":"v11"}"#));
        let odd = content_variables(&["a \"quote\" \\ and\nnewline".into(), "é👋".into()]);
        let parsed: Value = serde_json::from_str(&odd).expect("valid JSON");
        assert_eq!(parsed["1"], "a \"quote\" \\ and\nnewline");
        assert_eq!(parsed["2"], "é👋");
    }

    #[tokio::test]
    async fn send_refuses_bad_account_sid_for_every_content() {
        let server = MockServer::start().await;
        Mock::given(method("POST")).respond_with(created()).expect(0).mount(&server).await;
        for content in [OutboundContent::Text("hi".into()), outbound_media(None), template(&["x"])] {
            let outcome = client()
                .send(&server.uri(), "AC1/../x", AUTH_TOKEN, BUSINESS, CUSTOMER, &content, None)
                .await;
            assert!(matches!(outcome, SendOutcome::Rejected { http_status: 0, .. }), "{outcome:?}");
        }
    }

    // -- fetch_media -------------------------------------------------------------------

    const MEDIA_PATH: &str = "/2010-04-01/Accounts/AC00000000000000000000000000000001/Messages/MM1/Media/ME1";

    async fn fetch(base: &str, url: &str, max_bytes: u64) -> Result<FetchedMedia, FetchError> {
        client().fetch_media(base, ACCOUNT_SID, AUTH_TOKEN, url, max_bytes).await
    }

    fn jpeg() -> ResponseTemplate {
        ResponseTemplate::new(200).set_body_raw(b"\xff\xd8\xff fake jpeg".to_vec(), "image/jpeg")
    }

    fn authorization_of(request: &wiremock::Request) -> Option<String> {
        request.headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_owned)
    }

    #[tokio::test]
    async fn fetch_media_sends_basic_auth_to_the_api_host() {
        let api = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path(MEDIA_PATH))
            .and(header("authorization", basic_auth().as_str()))
            .respond_with(jpeg())
            .expect(1)
            .mount(&api)
            .await;
        let media = fetch(&api.uri(), &format!("{}{MEDIA_PATH}", api.uri()), 1024).await.expect("fetched");
        assert_eq!(media.bytes, b"\xff\xd8\xff fake jpeg");
        assert_eq!(media.content_type.as_deref(), Some("image/jpeg"));
    }

    #[tokio::test]
    async fn fetch_media_sends_no_credentials_to_another_host() {
        let api = MockServer::start().await;
        let other = MockServer::start().await;
        Mock::given(method("GET")).respond_with(jpeg()).expect(1).mount(&other).await;
        let media = fetch(&api.uri(), &format!("{}{MEDIA_PATH}", other.uri()), 1024).await.expect("fetched");
        assert_eq!(media.content_type.as_deref(), Some("image/jpeg"));
        let requests = other.received_requests().await.expect("recording");
        assert_eq!(requests.len(), 1);
        assert_eq!(authorization_of(&requests[0]), None);
        assert!(api.received_requests().await.expect("recording").is_empty());
    }

    #[tokio::test]
    async fn fetch_media_redirect_to_cdn_drops_credentials() {
        let api = MockServer::start().await;
        let cdn = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path(MEDIA_PATH))
            .respond_with(
                ResponseTemplate::new(307).insert_header("location", format!("{}/cdn/ME1", cdn.uri())),
            )
            .expect(1)
            .mount(&api)
            .await;
        Mock::given(method("GET")).and(path("/cdn/ME1")).respond_with(jpeg()).expect(1).mount(&cdn).await;
        let media = fetch(&api.uri(), &format!("{}{MEDIA_PATH}", api.uri()), 1024).await.expect("fetched");
        assert_eq!(media.bytes, b"\xff\xd8\xff fake jpeg");
        let api_requests = api.received_requests().await.expect("recording");
        assert_eq!(authorization_of(&api_requests[0]), Some(basic_auth()));
        let cdn_requests = cdn.received_requests().await.expect("recording");
        assert_eq!(authorization_of(&cdn_requests[0]), None, "the token must not follow the redirect");
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
            .respond_with(ResponseTemplate::new(500))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/big"))
            .respond_with(ResponseTemplate::new(200).set_body_raw(vec![0u8; 2048], "video/mp4"))
            .mount(&server)
            .await;
        let base = server.uri();
        assert!(matches!(fetch(&base, &format!("{base}/gone"), 1024).await, Err(FetchError::Permanent(_))));
        assert!(matches!(fetch(&base, &format!("{base}/busy"), 1024).await, Err(FetchError::Retryable(_))));
        assert_eq!(
            fetch(&base, &format!("{base}/big"), 1024).await,
            Err(FetchError::TooLarge { limit: 1024 })
        );
        assert_eq!(fetch(&base, &format!("{base}/big"), 2048).await.map(|m| m.bytes.len()), Ok(2048));
        // Connection refused is retryable.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        drop(listener);
        assert!(matches!(
            fetch(&base, &format!("http://{addr}/x"), 1024).await,
            Err(FetchError::Retryable(_))
        ));
    }

    #[tokio::test]
    async fn fetch_media_refuses_non_http_urls_without_a_request() {
        let server = MockServer::start().await;
        Mock::given(method("GET")).respond_with(jpeg()).expect(0).mount(&server).await;
        for url in
            ["", "not a url", "/relative/path", "file:///etc/passwd", "ftp://api.twilio.com/x", "data:,x"]
        {
            assert!(
                matches!(fetch(&server.uri(), url, 1024).await, Err(FetchError::Permanent(_))),
                "{url:?}"
            );
        }
    }

    #[test]
    fn api_base_matching_is_by_origin_and_path() {
        let under = |url: &str, base: &str| is_under_api_base(&reqwest::Url::parse(url).expect("url"), base);
        let base = "https://api.twilio.com";
        assert!(under("https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1", base));
        assert!(under("https://API.twilio.com:443/x", "https://api.twilio.com/"));
        for url in [
            "https://api.twilio.com.evil.example/x",
            "https://api.twilio.com@evil.example/x",
            "https://user:pw@api.twilio.com/x",
            "http://api.twilio.com/x",
            "https://api.twilio.com:8443/x",
            "https://media.twilio.com/x",
        ] {
            assert!(!under(url, base), "{url}");
        }
        // A base with a path only covers that path, on a segment boundary.
        assert!(under("http://127.0.0.1:9/twilio/2010-04-01/x", "http://127.0.0.1:9/twilio/"));
        assert!(under("http://127.0.0.1:9/twilio", "http://127.0.0.1:9/twilio"));
        assert!(!under("http://127.0.0.1:9/twilion/x", "http://127.0.0.1:9/twilio"));
        assert!(!under("http://127.0.0.1:9/x", "http://127.0.0.1:9/twilio"));
        // An unusable base never gets credentials.
        for bad in ["", "not a url", "ftp://api.twilio.com"] {
            assert!(!under("https://api.twilio.com/x", bad), "{bad:?}");
        }
    }

    // -- property-based fuzzing (proptest) ---------------------------------------------

    mod props {
        use super::*;
        use proptest::prelude::*;

        /// Values that reach the interesting paths more often than uniform strings do.
        fn field_value() -> impl Strategy<Value = String> {
            prop_oneof![
                any::<String>(),
                "[0-9]{0,3}",
                Just(String::new()),
                Just(" ".to_owned()),
                "(https?|ftp|file|data)://[a-z.:@0-9]{0,20}/[ -~]{0,30}",
                "(image|audio|video|application|text)/[a-z0-9.+-]{0,12}(; ?[a-z]+=[a-z0-9]+)?",
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]

            #[test]
            fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
                if let Ok(params) = parse_form(&bytes) {
                    let _ = parse_webhook(&params, received_at());
                    let sig = expected_signature(FIXTURE_TOKEN, INBOUND_URL, &params);
                    prop_assert_eq!(verify_signature(FIXTURE_TOKEN, INBOUND_URL, &params, Some(&sig)), Ok(()));
                    // Arbitrary bytes as the header never verify unless they are the signature.
                    let header = String::from_utf8_lossy(&bytes);
                    if header.trim() != sig {
                        prop_assert!(verify_signature(FIXTURE_TOKEN, INBOUND_URL, &params, Some(&header)).is_err());
                    }
                }
                let url = String::from_utf8_lossy(&bytes);
                let _ = verify_json_body(FIXTURE_TOKEN, &url, &bytes, Some("OWubPYnfzWi/hghiztNGanJsxZs="));
                let _ = url_candidates(&url);
                let _ = query_param(&url, BODY_HASH_PARAM);
            }

            #[test]
            fn form_encoding_round_trips(pairs in proptest::collection::vec((any::<String>(), any::<String>()), 0..8)) {
                let borrowed: Vec<(&str, &str)> = pairs.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
                let decoded = parse_form(form_encode(&borrowed).as_bytes()).expect("our own encoding parses");
                // Even an empty pair survives: it encodes as "=", which is not an empty segment.
                prop_assert_eq!(decoded, pairs);
            }

            #[test]
            fn mutated_media_fixture_parses_consistently(
                num_media in field_value(),
                url in field_value(),
                content_type in field_value(),
                body in field_value(),
                message_type in field_value(),
            ) {
                let base = form_fixture("twilio_inbound_media.form");
                let params = with(
                    &with(&with(&with(&with(&base, "NumMedia", &num_media), "MediaUrl0", &url),
                        "MediaContentType0", &content_type), "Body", &body),
                    "MessageType", &message_type,
                );
                let count = num_media.trim().parse::<u32>();
                match parse_webhook(&params, received_at()) {
                    Err(WebhookError::Malformed(reason)) => {
                        prop_assert!(!num_media.is_empty() && count.is_err(), "{}", reason);
                    }
                    Err(other) => prop_assert!(false, "{:?}", other),
                    Ok(batch) => {
                        prop_assert_eq!(batch.messages.len(), 1);
                        let body_out = &batch.messages[0].body;
                        let has_media = count.is_ok_and(|n| n > 0) && !url.trim().is_empty();
                        match body_out {
                            InboundBody::Media(m) => {
                                prop_assert!(has_media);
                                prop_assert_eq!(&m.source, &MediaSource::Url(url.trim().to_owned()));
                                let ct = Some(content_type.trim()).filter(|c| !c.is_empty());
                                prop_assert_eq!(m.content_type.as_deref(), ct);
                                if let Some(ct) = ct {
                                    let expected = MediaKind::from_content_type(ct);
                                    prop_assert!(m.kind == expected
                                        || (expected == MediaKind::Image && m.kind == MediaKind::Sticker));
                                }
                                // The customer's text is kept, as caption or file name.
                                let text = Some(body.clone()).filter(|b| !b.trim().is_empty());
                                prop_assert_eq!(m.caption.clone().or(m.filename.clone()), text);
                            }
                            _ => prop_assert!(!has_media, "{:?}", body_out),
                        }
                        // Mutated fields are signed like any other.
                        let sig = expected_signature(FIXTURE_TOKEN, INBOUND_URL, &params);
                        prop_assert_eq!(verify_signature(FIXTURE_TOKEN, INBOUND_URL, &params, Some(&sig)), Ok(()));
                        let original = "OWubPYnfzWi/hghiztNGanJsxZs=";
                        prop_assert!(verify_signature(FIXTURE_TOKEN, INBOUND_URL, &params, Some(original)).is_err());
                    }
                }
            }
        }
    }

    // -- no-panic fuzzing --------------------------------------------------------------

    /// xorshift64: deterministic, so a failure reproduces from the iteration number.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: usize) -> usize {
            usize::try_from(self.next() % u64::try_from(n.max(1)).expect("fits")).expect("fits")
        }

        fn byte(&mut self) -> u8 {
            // Mostly form syntax, so the decoder's interesting paths are hit often.
            const ALPHABET: &[u8] = b"%&=+0123456789abcdefABCDEFxyz:/?#[]@ ";
            if self.below(4) == 0 {
                self.next().to_le_bytes()[0]
            } else {
                ALPHABET[self.below(ALPHABET.len())]
            }
        }
    }

    fn mutate(rng: &mut XorShift, mut bytes: Vec<u8>) -> Vec<u8> {
        for _ in 0..=rng.below(4) {
            let at = rng.below(bytes.len() + 1);
            match rng.below(4) {
                0 if at < bytes.len() => bytes[at] = rng.byte(),
                1 => bytes.insert(at, rng.byte()),
                2 if at < bytes.len() => {
                    bytes.remove(at);
                }
                _ => bytes.truncate(at),
            }
        }
        bytes
    }

    #[test]
    fn fuzz_parse_and_verify_never_panic() {
        let seeds: Vec<Vec<u8>> =
            twilio_signature_rows().iter().map(|(name, _)| signed_bytes(name)).collect();
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        let mut parsed = 0;
        for i in 0..20_000 {
            let input = if i % 2 == 0 {
                let len = rng.below(160);
                (0..len).map(|_| rng.byte()).collect()
            } else {
                let seed = seeds[rng.below(seeds.len())].clone();
                mutate(&mut rng, seed)
            };
            let url_bytes = mutate(&mut rng, INBOUND_URL.as_bytes().to_vec());
            let url = String::from_utf8_lossy(&url_bytes);
            let header_bytes = mutate(&mut rng, b"OWubPYnfzWi/hghiztNGanJsxZs=".to_vec());
            let header = String::from_utf8_lossy(&header_bytes);
            if let Ok(params) = parse_form(&input) {
                parsed += 1;
                let _ = parse_webhook(&params, received_at());
                let _ = expected_signature(FIXTURE_TOKEN, &url, &params);
                let verdict = verify_signature(FIXTURE_TOKEN, &url, &params, Some(&header));
                // Random input never forges a signature (an unmodified fixture may verify).
                if verdict.is_ok() {
                    assert!(seeds.contains(&input), "iteration {i} forged a signature");
                }
            }
            let _ = verify_json_body(FIXTURE_TOKEN, &url, &input, Some(&header));
            let _ = url_candidates(&url);
        }
        assert!(parsed > 1_000, "the fuzz loop should exercise parse_webhook ({parsed})");
    }
}
