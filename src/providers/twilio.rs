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
//! - Sending is `POST {base}/2010-04-01/Accounts/{AccountSid}/Messages.json`, form-encoded,
//!   with HTTP Basic auth ([`TwilioClient`]); the answer is classified for the outbox's
//!   retry policy. Error codes are kept raw (e.g. 63016 = outside the 24-hour window) so a
//!   later layer can map them.
//!
//! Reference: the Twilio section of the provider notes; fixtures under
//! `tests/fixtures/twilio_*`, signature vectors in `tests/fixtures/signature_vectors.md`.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use serde::Deserialize;
use serde_json::Value;
use sha1::Sha1;
use sha2::{Digest, Sha256};

use super::{
    DeliveryStatus, InboundBody, InboundMessage, ProviderError, SendOutcome, StatusUpdate, WebhookBatch,
    WebhookError,
};

type HmacSha1 = Hmac<Sha1>;

/// Name of the header that carries the webhook signature.
pub const SIGNATURE_HEADER: &str = "X-Twilio-Signature";

/// Query parameter Twilio adds to the signed URL of JSON webhooks.
const BODY_HASH_PARAM: &str = "bodySHA256";

/// Twilio's channel prefix on WhatsApp addresses (`whatsapp:+15551234567`).
const WHATSAPP_PREFIX: &str = "whatsapp:";

/// Upper bound for provider text we copy into errors and log lines.
const MAX_SNIPPET_CHARS: usize = 200;

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
    let matched = url_candidates(url)
        .iter()
        .fold(false, |ok, candidate| signature_mac(auth_token, candidate, params).verify_slice(&expected).is_ok() | ok);
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
        Some(n) => n.trim().parse::<u32>().map_err(|_| WebhookError::Malformed("NumMedia is not a number".into()))?,
        None => 0,
    };
    if num_media > 0 {
        // WhatsApp messages carry at most one media item, so index 0 describes it. For
        // documents Twilio puts the file name in Body, which is what the agent needs.
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
        (Some(code), message) => {
            Some(ProviderError { title: message.unwrap_or_else(|| format!("Twilio error {code}")), code, detail: None })
        }
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

fn truncate(s: &str) -> String {
    s.chars().take(MAX_SNIPPET_CHARS).collect()
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
/// RFC 9457 `{type, title, status, code, detail, ...}`.
#[derive(Deserialize)]
struct ErrorBody {
    code: Option<Value>,
    message: Option<String>,
    more_info: Option<String>,
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
            detail: self.detail.or(self.more_info).map(|d| truncate(&d)),
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
        let url = format!(
            "{}/2010-04-01/Accounts/{account_sid}/Messages.json",
            api_base_url.trim_end_matches('/')
        );
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

/// `+15551234567` → `whatsapp:+15551234567`. A missing '+' is added; an empty number stays
/// empty after the prefix and Twilio rejects it with a 400, which is the right outcome.
fn channel_address(number: &str) -> String {
    let number = number.trim();
    let number = number.strip_prefix(WHATSAPP_PREFIX).unwrap_or(number).trim();
    let digits = number.strip_prefix('+').unwrap_or(number);
    if digits.is_empty() { WHATSAPP_PREFIX.to_owned() } else { format!("{WHATSAPP_PREFIX}+{digits}") }
}

fn invalid_request(detail: String) -> SendOutcome {
    SendOutcome::Rejected {
        http_status: 0,
        error: ProviderError {
            code: "invalid_request".into(),
            title: "the request could not be built".into(),
            detail: Some(truncate(&detail)),
        },
    }
}

fn classify_transport_error(e: &reqwest::Error) -> SendOutcome {
    if e.is_builder() {
        // A bad URL or header value: configuration, retrying cannot help.
        return invalid_request(e.to_string());
    }
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "transport error"
    };
    SendOutcome::Retryable { reason: format!("{kind}: {}", truncate(&e.to_string())), retry_after: None }
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

/// `Retry-After` is either delay-seconds or an HTTP date.
fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = DateTime::parse_from_rfc2822(value).ok()?;
    Some((at.with_timezone(&Utc) - Utc::now()).to_std().unwrap_or(Duration::ZERO))
}
