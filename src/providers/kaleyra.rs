//! Kaleyra WhatsApp adapter (v1 callback profiles for inbound, v2 API for sending and
//! status callbacks).
//!
//! - Kaleyra publishes **no webhook signature**. A callback profile can carry a static
//!   custom header or Basic auth, configured per account; [`verify_callback`] checks
//!   either in constant time. (The "Advanced Authentication" bearer-token flow is not
//!   supported here.) Pair it with an IP allow-list where possible.
//! - Inbound messages arrive in a body **we define** in Kaleyra's console from its
//!   placeholders (`<from>`, `<wanumber>`, `<body>`, `<type>`, `<created_at>` …); we expect
//!   a JSON object with the documented placeholder names as keys (`kaleyra_inbound_*`).
//! - Status callbacks (v2) wrap a Meta status in `meta_object.value.statuses[]` next to
//!   Kaleyra's `extra_info` (`kaleyra_status*`).
//! - Sending is `POST {base}/v2/{sid}/whatsapp/{business_number}/messages` with header
//!   `api-key` and a Meta-shaped `messaging_object` ([`KaleyraClient`]).
//!
//! Mapping choices:
//! - `InboundMessage::to_phone_number_id` is the business number in E.164 with '+'
//!   (`wanumber`, or `metadata.display_phone_number` on v2 payloads). v1 callbacks carry
//!   no Meta phone_number_id, only the number, so the number is the one identifier both
//!   generations share.
//! - Much of Kaleyra's wire format is UNCONFIRMED (see the provider notes): the parser is
//!   lenient where the docs are vague (timestamp formats, status casing, id location).
//!
//! Reference: the Kaleyra section of the provider notes; fixtures under `tests/fixtures/kaleyra_*`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, NaiveDateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::http::{classify_transport_error, invalid_request, parse_retry_after, truncate};
use super::{
    DeliveryStatus, InboundBody, InboundMessage, ProviderError, SendOutcome, StatusUpdate, WebhookBatch,
    WebhookError,
};

type HmacSha256 = Hmac<Sha256>;

/// Prefix of inbound ids we derive ourselves (see [`derived_message_id`]).
pub const DERIVED_ID_PREFIX: &str = "kaleyra:";

fn hmac_sha256(key: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length (long keys are hashed first), so this cannot fail.
    <HmacSha256 as KeyInit>::new_from_slice(key).expect("HMAC accepts keys of any length")
}

// ---------------------------------------------------------------------------------------
// Callback authentication

/// How an account's Kaleyra callback profile proves it is Kaleyra.
#[derive(Clone, PartialEq, Eq)]
pub enum CallbackAuth {
    /// A static custom header with a shared secret, e.g. `X-Callback-Token: <secret>`.
    SharedHeader { name: String, value: String },
    /// HTTP Basic auth configured on the callback profile.
    Basic { user: String, password: String },
}

impl std::fmt::Debug for CallbackAuth {
    // Holds secrets; never print them.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::SharedHeader { name, .. } => {
                f.debug_struct("SharedHeader").field("name", name).finish_non_exhaustive()
            }
            Self::Basic { user, .. } => f.debug_struct("Basic").field("user", user).finish_non_exhaustive(),
        }
    }
}

/// Checks a callback's headers (name, value pairs as received; names compared
/// case-insensitively) against the account's configured [`CallbackAuth`].
///
/// - No matching header: [`WebhookError::MissingSignature`]; wrong value:
///   [`WebhookError::BadSignature`].
/// - Values are compared in constant time. When a header repeats, any occurrence may match.
/// - An empty configured secret (header value, or both user and password) never matches, so
///   a missing configuration cannot be satisfied by an empty header.
pub fn verify_callback(auth: &CallbackAuth, headers: &[(String, String)]) -> Result<(), WebhookError> {
    fn values<'a>(headers: &'a [(String, String)], name: &'a str) -> impl Iterator<Item = &'a str> {
        headers.iter().filter(move |(n, _)| n.trim().eq_ignore_ascii_case(name)).map(|(_, v)| v.trim())
    }
    match auth {
        CallbackAuth::SharedHeader { name, value } => {
            let mut found = false;
            let mut ok = false;
            for got in values(headers, name.trim()) {
                found = true;
                // Evaluate every occurrence so timing does not depend on which one matched.
                ok |= constant_time_eq(got.as_bytes(), value.as_bytes());
            }
            match (found, ok && !value.is_empty()) {
                (false, _) => Err(WebhookError::MissingSignature),
                (true, true) => Ok(()),
                (true, false) => Err(WebhookError::BadSignature),
            }
        }
        CallbackAuth::Basic { user, password } => {
            let expected = format!("{user}:{password}");
            let mut found = false;
            let mut ok = false;
            for got in values(headers, "authorization") {
                found = true;
                let Some((scheme, credentials)) = got.split_once(' ') else { continue };
                if !scheme.eq_ignore_ascii_case("basic") {
                    continue;
                }
                let decoded = BASE64.decode(credentials.trim()).unwrap_or_default();
                ok |= constant_time_eq(&decoded, expected.as_bytes());
            }
            match (found, ok && !(user.is_empty() && password.is_empty())) {
                (false, _) => Err(WebhookError::MissingSignature),
                (true, true) => Ok(()),
                (true, false) => Err(WebhookError::BadSignature),
            }
        }
    }
}

/// Equality whose timing reveals neither how much of a guess matches nor whether its
/// length is right: both sides are MACed under a fixed key and the fixed-size tags are
/// compared with the constant-time `verify_slice`.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    const KEY: &[u8] = b"switchboard/kaleyra/callback-auth";
    let mut mac_a = hmac_sha256(KEY);
    mac_a.update(a);
    let tag_a = mac_a.finalize().into_bytes();
    let mut mac_b = hmac_sha256(KEY);
    mac_b.update(b);
    mac_b.verify_slice(&tag_a).is_ok()
}

// ---------------------------------------------------------------------------------------
// Webhook parsing

/// Parses a Kaleyra callback body into normalized messages and statuses.
///
/// Call [`verify_callback`] first. Recognised shapes, by their keys:
/// - `meta_object` (v2 status callback): each `meta_object.value.statuses[]` entry; when
///   there is none (e.g. `NOT-SENT`, where Kaleyra never reached Meta; shape
///   UNCONFIRMED) the top-level `status` / `message_id` are used. `meta_object.value.messages[]`
///   (v2 inbound, UNCONFIRMED) is read like Meta's messages.
/// - `messages` at the top level (the On-Premises-style inbound shown in Kaleyra's docs).
/// - otherwise a v1 callback-profile inbound (`from`, `wanumber`, `body`, `type` …).
///
/// `received_at` stands in for a missing or unreadable provider timestamp: the
/// `created_at` format is UNCONFIRMED and losing the message would be worse.
/// Statuses we do not track are skipped. Never panics, whatever the input.
pub fn parse_webhook(raw_body: &[u8], received_at: DateTime<Utc>) -> Result<WebhookBatch, WebhookError> {
    let value: Value = serde_json::from_slice(raw_body).map_err(|e| malformed_json("body", &e))?;
    let Value::Object(root) = value else {
        return Err(WebhookError::Malformed("body is not a JSON object".into()));
    };
    let mut batch = WebhookBatch::default();
    if let Some(meta) = root.get("meta_object") {
        let inner = meta.get("value").unwrap_or(&Value::Null);
        let business = inner.get("metadata").and_then(|m| str_at(m, "display_phone_number"));
        let statuses = inner.get("statuses").and_then(Value::as_array).filter(|s| !s.is_empty());
        match statuses {
            Some(statuses) => {
                for raw in statuses {
                    if let Some(s) = normalize_status(raw, received_at)? {
                        batch.statuses.push(s);
                    }
                }
            }
            None if root.contains_key("status") => {
                if let Some(s) = top_level_status(&root, received_at)? {
                    batch.statuses.push(s);
                }
            }
            None => {}
        }
        if let Some(messages) = inner.get("messages").and_then(Value::as_array) {
            let contacts = inner.get("contacts");
            for raw in messages {
                batch.messages.push(meta_style_message(raw, business, contacts, received_at)?);
            }
        }
        return Ok(batch);
    }
    if let Some(messages) = root.get("messages").and_then(Value::as_array) {
        let business = root.get("metadata").and_then(|m| str_at(m, "display_phone_number"));
        let business = business.or_else(|| str_at_map(&root, "wanumber"));
        for raw in messages {
            batch.messages.push(meta_style_message(raw, business, root.get("contacts"), received_at)?);
        }
        return Ok(batch);
    }
    batch.messages.push(v1_message(&root, received_at)?);
    Ok(batch)
}

fn str_at<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty())
}

fn str_at_map<'a>(m: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    m.get(key).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty())
}

/// A v1 callback-profile inbound: the placeholders we put in the body template.
fn v1_message(root: &Map<String, Value>, received_at: DateTime<Utc>) -> Result<InboundMessage, WebhookError> {
    let from_raw = str_at_map(root, "from")
        .or_else(|| str_at_map(root, "mobile"))
        .ok_or_else(|| WebhookError::Malformed("inbound without `from`".into()))?;
    let from = to_e164(from_raw).ok_or_else(|| WebhookError::Malformed("inbound without `from`".into()))?;
    let business = str_at_map(root, "wanumber")
        .and_then(to_e164)
        .ok_or_else(|| WebhookError::Malformed("inbound without `wanumber`".into()))?;
    let created_at = root.get("created_at").unwrap_or(&Value::Null);
    let timestamp = parse_time(created_at).unwrap_or_else(|| {
        tracing::debug!("Kaleyra created_at missing or unreadable; using the arrival time");
        received_at
    });
    let body_text = root.get("body").and_then(Value::as_str).unwrap_or("");
    let kind = str_at_map(root, "type").unwrap_or(if body_text.is_empty() { "unknown" } else { "text" });
    let media_url = str_at_map(root, "media_url").unwrap_or("");
    // If the account's template carries a provider id (none is documented), prefer it.
    let id = ["message_id", "id", "wamid"]
        .iter()
        .find_map(|k| str_at_map(root, k))
        .map(str::to_owned)
        .unwrap_or_else(|| {
            let created_raw = match created_at {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            };
            derived_message_id(&[&business, &from, &created_raw, kind, body_text, media_url])
        });
    let body = if kind == "text" {
        InboundBody::Text(body_text.to_owned())
    } else {
        let summary = match kind {
            "location" => location_summary(root.get("location")),
            _ => None,
        }
        .or_else(|| (!body_text.trim().is_empty()).then(|| truncate(body_text.trim())))
        .unwrap_or_else(|| format!("[{kind}]"));
        InboundBody::Unsupported { kind: kind.to_owned(), summary }
    };
    Ok(InboundMessage {
        provider_message_id: id,
        from,
        to_phone_number_id: business,
        profile_name: str_at_map(root, "name").map(str::to_owned),
        timestamp,
        body,
    })
}

/// A stable id for an inbound message that came without one.
///
/// v1 callback profiles have no message-id placeholder, yet Kaleyra retries callbacks and
/// the domain dedupes on `provider_message_id`. So the id must be the same on every
/// redelivery: a hash of fields Kaleyra fills from the message itself (business number,
/// sender, `created_at` as sent, type, body, media URL), never of the arrival time.
/// Fields are length-prefixed so that different splits of the same bytes cannot collide.
/// Known limit: two identical messages from one sender within one `created_at` tick
/// (seconds) collapse into one.
pub fn derived_message_id(fields: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for f in fields {
        hasher.update((f.len() as u64).to_be_bytes());
        hasher.update(f.as_bytes());
    }
    format!("{DERIVED_ID_PREFIX}{}", hex::encode(hasher.finalize()))
}

/// `location` format is UNCONFIRMED: accept an object, a JSON string of one, or "lat,lon".
fn location_summary(v: Option<&Value>) -> Option<String> {
    let v = v?;
    let parsed;
    let obj = match v {
        Value::String(s) if s.trim_start().starts_with('{') => {
            parsed = serde_json::from_str::<Value>(s).ok()?;
            &parsed
        }
        Value::String(s) => {
            let (lat, lon) = s.split_once(',')?;
            let (lat, lon) = (lat.trim().parse::<f64>().ok()?, lon.trim().parse::<f64>().ok()?);
            return Some(format!("[location] {lat},{lon}"));
        }
        other => other,
    };
    let coord = |k: &str| obj.get(k).and_then(|c| c.as_f64().or_else(|| c.as_str()?.trim().parse().ok()));
    match (coord("latitude"), coord("longitude")) {
        (Some(lat), Some(lon)) => Some(format!("[location] {lat},{lon}")),
        _ => None,
    }
}

/// A Meta-shaped inbound message (v2 / On-Premises style; UNCONFIRMED for Kaleyra).
fn meta_style_message(
    raw: &Value,
    business: Option<&str>,
    contacts: Option<&Value>,
    received_at: DateTime<Utc>,
) -> Result<InboundMessage, WebhookError> {
    let id = str_at(raw, "id").ok_or_else(|| WebhookError::Malformed("message without `id`".into()))?;
    let from = str_at(raw, "from")
        .and_then(to_e164)
        .ok_or_else(|| WebhookError::Malformed("message without `from`".into()))?;
    let business = business
        .and_then(to_e164)
        .ok_or_else(|| WebhookError::Malformed("message without the business number".into()))?;
    let timestamp = raw.get("timestamp").and_then(parse_time).unwrap_or(received_at);
    let kind = str_at(raw, "type").unwrap_or("unknown");
    let payload = raw.get(kind);
    let body = match (kind, payload.and_then(|p| str_at(p, "body"))) {
        ("text", Some(text)) => InboundBody::Text(text.to_owned()),
        _ => {
            let summary = match kind {
                "location" => location_summary(payload),
                _ => payload.and_then(|p| str_at(p, "caption")).map(truncate),
            };
            InboundBody::Unsupported {
                kind: kind.to_owned(),
                summary: summary.unwrap_or_else(|| format!("[{kind}]")),
            }
        }
    };
    let profile_name = contacts
        .and_then(Value::as_array)
        .filter(|c| c.len() == 1)
        .and_then(|c| c.first())
        .and_then(|c| c.get("profile"))
        .and_then(|p| str_at(p, "name"))
        .map(str::to_owned);
    Ok(InboundMessage {
        provider_message_id: id.to_owned(),
        from,
        to_phone_number_id: business,
        profile_name,
        timestamp,
        body,
    })
}

/// Kaleyra statuses, any case; `not-sent` / `NOT-SENT` means Kaleyra never handed the
/// message to Meta, which for the contact center is a failure.
fn delivery_status(s: &str) -> Option<DeliveryStatus> {
    match s.trim().to_ascii_lowercase().replace('_', "-").as_str() {
        "sent" => Some(DeliveryStatus::Sent),
        "delivered" => Some(DeliveryStatus::Delivered),
        "read" => Some(DeliveryStatus::Read),
        "failed" | "not-sent" => Some(DeliveryStatus::Failed),
        _ => None,
    }
}

fn is_not_sent(s: &str) -> bool {
    s.trim().to_ascii_lowercase().replace('_', "-") == "not-sent"
}

fn not_sent_error() -> ProviderError {
    ProviderError {
        code: "not_sent".into(),
        title: "Kaleyra did not hand the message to WhatsApp".into(),
        detail: None,
    }
}

fn normalize_status(raw: &Value, received_at: DateTime<Utc>) -> Result<Option<StatusUpdate>, WebhookError> {
    let status_raw =
        str_at(raw, "status").ok_or_else(|| WebhookError::Malformed("status without `status`".into()))?;
    let Some(status) = delivery_status(status_raw) else {
        tracing::debug!(status = %truncate(status_raw), "ignoring Kaleyra status we do not track");
        return Ok(None);
    };
    let id = str_at(raw, "id").ok_or_else(|| WebhookError::Malformed("status without `id`".into()))?;
    let error = raw
        .get("errors")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
        .map(|e| ProviderError {
            code: e.get("code").map(value_text).unwrap_or_default(),
            title: str_at(e, "title").or_else(|| str_at(e, "message")).map(truncate).unwrap_or_default(),
            detail: e.get("error_data").and_then(|d| str_at(d, "details")).map(truncate),
        })
        .or_else(|| is_not_sent(status_raw).then(not_sent_error));
    Ok(Some(StatusUpdate {
        provider_message_id: id.to_owned(),
        status,
        timestamp: raw.get("timestamp").and_then(parse_time).unwrap_or(received_at),
        recipient: str_at(raw, "recipient_id").and_then(to_e164).unwrap_or_default(),
        error,
    }))
}

/// A status callback without `meta_object.value.statuses` (UNCONFIRMED shape).
fn top_level_status(
    root: &Map<String, Value>,
    received_at: DateTime<Utc>,
) -> Result<Option<StatusUpdate>, WebhookError> {
    let status_raw = str_at_map(root, "status").unwrap_or("");
    let Some(status) = delivery_status(status_raw) else {
        tracing::debug!(status = %truncate(status_raw), "ignoring Kaleyra status we do not track");
        return Ok(None);
    };
    let id = str_at_map(root, "message_id")
        .or_else(|| root.get("extra_info").and_then(|e| str_at(e, "message_id")))
        .ok_or_else(|| WebhookError::Malformed("status without `message_id`".into()))?;
    let error = if status == DeliveryStatus::Failed {
        let reason = ["error", "reason", "message"].iter().find_map(|k| str_at_map(root, k));
        Some(match reason {
            Some(r) if !is_not_sent(status_raw) => {
                ProviderError { code: "failed".into(), title: truncate(r), detail: None }
            }
            Some(r) => ProviderError { detail: Some(truncate(r)), ..not_sent_error() },
            None if is_not_sent(status_raw) => not_sent_error(),
            None => ProviderError { code: "failed".into(), title: "failed".into(), detail: None },
        })
    } else {
        None
    };
    Ok(Some(StatusUpdate {
        provider_message_id: id.to_owned(),
        status,
        timestamp: root.get("timestamp").and_then(parse_time).unwrap_or(received_at),
        recipient: str_at_map(root, "recipient_id").and_then(to_e164).unwrap_or_default(),
        error,
    }))
}

/// Kaleyra times: Unix seconds (string or number; the fixtures and Meta statuses),
/// Unix milliseconds, RFC 3339, or "YYYY-MM-DD HH:MM:SS" taken as UTC. The exact
/// `created_at` format is UNCONFIRMED, hence the list.
fn parse_time(v: &Value) -> Option<DateTime<Utc>> {
    let from_int = |n: i64| {
        // Anything past year 5138 in seconds is taken as milliseconds.
        if n.abs() >= 100_000_000_000 {
            DateTime::from_timestamp_millis(n)
        } else {
            DateTime::from_timestamp(n, 0)
        }
    };
    match v {
        Value::Number(n) => n.as_i64().and_then(from_int),
        Value::String(s) => {
            let s = s.trim();
            if let Ok(n) = s.parse::<i64>() {
                return from_int(n);
            }
            if let Ok(t) = DateTime::parse_from_rfc3339(s) {
                return Some(t.with_timezone(&Utc));
            }
            NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").ok().map(|t| t.and_utc())
        }
        _ => None,
    }
}

/// Kaleyra numbers are digits with country code and no '+'; the domain wants E.164.
fn to_e164(number: &str) -> Option<String> {
    let digits = number.trim().trim_start_matches('+');
    (!digits.is_empty()).then(|| format!("+{digits}"))
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A short reason that does not quote the payload.
fn malformed_json(what: &str, e: &serde_json::Error) -> WebhookError {
    use serde_json::error::Category;
    let reason = match e.classify() {
        Category::Eof => format!("{what}: truncated JSON"),
        Category::Syntax | Category::Io => {
            format!("{what}: not JSON at line {} column {}", e.line(), e.column())
        }
        Category::Data => format!("{what}: unexpected shape"),
    };
    WebhookError::Malformed(reason)
}

// ---------------------------------------------------------------------------------------
// Outbound client

#[derive(Serialize)]
struct SendRequest<'a> {
    messaging_object: MessagingObject<'a>,
    extra_info: ExtraInfo<'a>,
}

#[derive(Serialize)]
struct MessagingObject<'a> {
    messaging_product: &'static str,
    recipient_type: &'static str,
    to: String,
    #[serde(rename = "type")]
    kind: &'static str,
    text: TextPayload<'a>,
}

#[derive(Serialize)]
struct TextPayload<'a> {
    preview_url: bool,
    body: &'a str,
}

#[derive(Serialize)]
struct ExtraInfo<'a> {
    #[serde(rename = "ref")]
    reference: &'a str,
    ref1: &'a str,
    ref2: &'a str,
}

/// Sends messages through Kaleyra's v2 WhatsApp API.
///
/// Stateless apart from the shared `reqwest::Client`; the endpoint and API key are per
/// call. Configure timeouts on the `reqwest::Client`: a timeout is reported as retryable.
#[derive(Debug, Clone)]
pub struct KaleyraClient {
    http: reqwest::Client,
}

impl KaleyraClient {
    pub fn new(http: reqwest::Client) -> Self {
        Self { http }
    }

    /// Sends a free-form WhatsApp text (only allowed inside the 24-hour window).
    ///
    /// - `api_base_url`: the account's pod, e.g. `https://api.in.kaleyra.io`.
    /// - `business_number`: the sender number; a leading '+' is dropped for the path
    ///   because Kaleyra writes numbers as digits everywhere else (UNCONFIRMED).
    /// - `reference` goes to `extra_info.ref` and comes back in status callbacks.
    ///
    /// The response shape is UNCONFIRMED; see [`message_id_from_response`]. Never panics;
    /// every failure is a [`SendOutcome`].
    // Credentials and routing are per account, per call, as in the other adapters.
    #[allow(clippy::too_many_arguments)]
    pub async fn send_text(
        &self,
        api_base_url: &str,
        sid: &str,
        api_key: &str,
        business_number: &str,
        to_e164: &str,
        body: &str,
        reference: Option<&str>,
    ) -> SendOutcome {
        let payload = SendRequest {
            messaging_object: MessagingObject {
                messaging_product: "whatsapp",
                recipient_type: "individual",
                to: to_e164_lenient(to_e164),
                kind: "text",
                text: TextPayload { preview_url: false, body },
            },
            extra_info: ExtraInfo { reference: reference.unwrap_or(""), ref1: "", ref2: "" },
        };
        let url = format!(
            "{}/v2/{}/whatsapp/{}/messages",
            api_base_url.trim_end_matches('/'),
            sid.trim_matches('/'),
            business_number.trim().trim_start_matches('+').trim_matches('/')
        );
        let mut api_key_value = match reqwest::header::HeaderValue::from_str(api_key) {
            Ok(v) => v,
            Err(_) => return invalid_request("the api key is not a valid header value".into()),
        };
        // Keep the key out of debug output.
        api_key_value.set_sensitive(true);
        match self.http.post(url).header("api-key", api_key_value).json(&payload).send().await {
            Ok(response) => classify_response(response).await,
            Err(e) => classify_transport_error(&e),
        }
    }
}

fn to_e164_lenient(number: &str) -> String {
    to_e164(number).unwrap_or_default()
}

/// The message id in a success response, whose shape is UNCONFIRMED. Third-party clients
/// read `messages[0].id` (Meta-shaped, the wamid that status callbacks use), `data.message_id`,
/// `data[0].message_id` (v1 shape) or `id`; tried in that order because a top-level `id`
/// in the v1 shape is the request id, not the message's.
pub fn message_id_from_response(body: &Value) -> Option<String> {
    let candidates = [
        body.get("messages").and_then(|m| m.get(0)).and_then(|m| m.get("id")),
        body.get("data").and_then(|d| d.get("message_id")),
        body.get("data").and_then(|d| d.get(0)).and_then(|d| d.get("message_id")),
        body.get("id"),
    ];
    candidates.into_iter().flatten().find_map(|v| match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

/// The error in a failure response (UNCONFIRMED shape): `error` as an object
/// (`{code, message}`) or a string, else top-level `code` / `message`.
fn provider_error_from(body: &Value, http_status: u16) -> ProviderError {
    let error = body.get("error");
    let obj = error.filter(|e| e.is_object());
    let code = obj
        .and_then(|e| e.get("code"))
        .or_else(|| body.get("code"))
        .map(value_text)
        .filter(|c| !c.is_empty() && c != "null")
        .unwrap_or_else(|| format!("http_{http_status}"));
    let title = obj
        .and_then(|e| str_at(e, "message").or_else(|| str_at(e, "title")))
        .or_else(|| error.and_then(Value::as_str))
        .or_else(|| str_at(body, "message"))
        .map(truncate)
        .unwrap_or_else(|| format!("HTTP {http_status}"));
    let detail = obj.and_then(|e| e.get("error_data")).and_then(|d| str_at(d, "details")).map(truncate);
    ProviderError { code, title, detail }
}

async fn classify_response(response: reqwest::Response) -> SendOutcome {
    let status = response.status();
    let code = status.as_u16();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_retry_after);
    let body = response.bytes().await.unwrap_or_default();
    let json = serde_json::from_slice::<Value>(&body).ok();

    if status.is_success() {
        // Kaleyra may have queued the message even if we cannot read the answer, so this is
        // not retried: a duplicate to the customer is worse than a visible failure.
        return match json.as_ref().and_then(message_id_from_response) {
            Some(provider_message_id) => SendOutcome::Accepted { provider_message_id },
            None => SendOutcome::Rejected {
                http_status: code,
                error: ProviderError {
                    code: "invalid_response".into(),
                    title: "success response without a message id".into(),
                    detail: (!body.is_empty()).then(|| truncate(&String::from_utf8_lossy(&body))),
                },
            },
        };
    }
    if code == 429 || code == 408 || status.is_server_error() {
        let reason = match &json {
            Some(j) => {
                let e = provider_error_from(j, code);
                format!("HTTP {code}: {}: {}", e.code, e.title)
            }
            None => format!("HTTP {code}"),
        };
        return SendOutcome::Retryable { reason, retry_after };
    }
    let error = match &json {
        Some(j) if j.is_object() => provider_error_from(j, code),
        _ => ProviderError {
            code: format!("http_{code}"),
            title: format!("HTTP {status}"),
            detail: (!body.is_empty()).then(|| truncate(&String::from_utf8_lossy(&body))),
        },
    };
    SendOutcome::Rejected { http_status: code, error }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    use chrono::TimeZone;
    use serde_json::json;
    use wiremock::matchers::{body_json, header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
    const SID: &str = "HXAP0000000000";
    const KEY: &str = "Afake-api-key";

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!("{FIXTURES}/{name}");
        std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
    }

    fn fixture_json(name: &str) -> Value {
        serde_json::from_slice(&fixture(name)).expect("fixture is JSON")
    }

    fn ts(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(secs, 0).single().expect("valid timestamp")
    }

    fn received() -> DateTime<Utc> {
        ts(1_800_000_000)
    }

    fn parse(body: &[u8]) -> Result<WebhookBatch, WebhookError> {
        parse_webhook(body, received())
    }

    fn parse_value(v: &Value) -> Result<WebhookBatch, WebhookError> {
        parse(&serde_json::to_vec(v).expect("ser"))
    }

    fn h(name: &str, value: &str) -> (String, String) {
        (name.to_owned(), value.to_owned())
    }

    // -- callback auth -----------------------------------------------------------------

    #[test]
    fn shared_header_auth() {
        let auth = CallbackAuth::SharedHeader { name: "X-Callback-Token".into(), value: "s3cret".into() };
        assert_eq!(verify_callback(&auth, &[h("x-callback-token", "s3cret")]), Ok(()));
        assert_eq!(verify_callback(&auth, &[h("X-CALLBACK-TOKEN", " s3cret ")]), Ok(()));
        assert_eq!(
            verify_callback(&auth, &[h("x-callback-token", "nope"), h("x-callback-token", "s3cret")]),
            Ok(())
        );
        assert_eq!(verify_callback(&auth, &[]), Err(WebhookError::MissingSignature));
        assert_eq!(verify_callback(&auth, &[h("x-other", "s3cret")]), Err(WebhookError::MissingSignature));
        for wrong in ["", "s3cre", "s3cret2", "S3CRET"] {
            assert_eq!(
                verify_callback(&auth, &[h("x-callback-token", wrong)]),
                Err(WebhookError::BadSignature),
                "{wrong}"
            );
        }
        let empty = CallbackAuth::SharedHeader { name: "X-Callback-Token".into(), value: String::new() };
        assert_eq!(verify_callback(&empty, &[h("x-callback-token", "")]), Err(WebhookError::BadSignature));
        assert!(!format!("{auth:?}").contains("s3cret"));
    }

    #[test]
    fn basic_auth() {
        let auth = CallbackAuth::Basic { user: "kaleyra".into(), password: "pa:ss".into() };
        let good = format!("Basic {}", BASE64.encode("kaleyra:pa:ss"));
        assert_eq!(verify_callback(&auth, &[h("Authorization", &good)]), Ok(()));
        assert_eq!(verify_callback(&auth, &[h("authorization", &good.replace("Basic", "basic"))]), Ok(()));
        assert_eq!(verify_callback(&auth, &[]), Err(WebhookError::MissingSignature));
        for wrong in [
            format!("Basic {}", BASE64.encode("kaleyra:pa:sS")),
            format!("Basic {}", BASE64.encode("kaleyra")),
            format!("Bearer {}", BASE64.encode("kaleyra:pa:ss")),
            "Basic !!!".to_owned(),
            "Basic".to_owned(),
            String::new(),
        ] {
            assert_eq!(
                verify_callback(&auth, &[h("authorization", &wrong)]),
                Err(WebhookError::BadSignature),
                "{wrong}"
            );
        }
        let empty = CallbackAuth::Basic { user: String::new(), password: String::new() };
        let colon = format!("Basic {}", BASE64.encode(":"));
        assert_eq!(verify_callback(&empty, &[h("authorization", &colon)]), Err(WebhookError::BadSignature));
        assert!(!format!("{auth:?}").contains("pa:ss"));
    }

    // -- inbound -----------------------------------------------------------------------

    fn single_message(body: &[u8]) -> InboundMessage {
        let batch = parse(body).expect("parses");
        assert!(batch.statuses.is_empty());
        assert_eq!(batch.messages.len(), 1);
        batch.messages.into_iter().next().expect("one")
    }

    #[test]
    fn parses_inbound_text_fixture() {
        let msg = single_message(&fixture("kaleyra_inbound_text.json"));
        let expected_id = derived_message_id(&[
            "+15557654321",
            "+15551234567",
            "1767607200",
            "text",
            "Hi, I need help with order 4711",
            "",
        ]);
        assert_eq!(
            msg,
            InboundMessage {
                provider_message_id: expected_id,
                from: "+15551234567".into(),
                to_phone_number_id: "+15557654321".into(),
                profile_name: Some("Jane Doe".into()),
                timestamp: ts(1_767_607_200),
                body: InboundBody::Text("Hi, I need help with order 4711".into()),
            }
        );
        assert!(msg.provider_message_id.starts_with("kaleyra:"));
        assert_eq!(msg.provider_message_id.len(), "kaleyra:".len() + 64);
    }

    #[test]
    fn parses_inbound_media_fixture() {
        let msg = single_message(&fixture("kaleyra_inbound_media.json"));
        assert_eq!(
            msg.body,
            InboundBody::Unsupported { kind: "image".into(), summary: "damaged box".into() }
        );
        assert_eq!(msg.timestamp, ts(1_767_607_260));
        assert_eq!(msg.from, "+15551234567");
        assert_eq!(msg.to_phone_number_id, "+15557654321");
    }

    #[test]
    fn derived_ids_are_stable_and_distinguish_messages() {
        let text = fixture_json("kaleyra_inbound_text.json");
        let id = |v: &Value| single_message(&serde_json::to_vec(v).expect("ser")).provider_message_id;
        let base = id(&text);
        // Redelivery, even re-serialised or at another time, keeps the id.
        assert_eq!(
            parse_webhook(&fixture("kaleyra_inbound_text.json"), ts(0)).expect("ok").messages[0]
                .provider_message_id,
            base
        );
        assert_eq!(id(&text), base);
        for (key, value) in [
            ("body", "other"),
            ("created_at", "1767607201"),
            ("from", "15550000000"),
            ("wanumber", "15550000001"),
        ] {
            let mut v = text.clone();
            v[key] = value.into();
            assert_ne!(id(&v), base, "{key}");
        }
        // A provider id in the template wins.
        let mut v = text.clone();
        v["message_id"] = "wamid.IN1".into();
        assert_eq!(id(&v), "wamid.IN1");
        // Length prefixes: moving a byte between fields changes the id.
        assert_ne!(derived_message_id(&["ab", "c"]), derived_message_id(&["a", "bc"]));
    }

    #[test]
    fn inbound_timestamps_and_fallbacks() {
        let text = fixture_json("kaleyra_inbound_text.json");
        for (created_at, expected) in [
            (json!(1_767_607_200), ts(1_767_607_200)),
            (json!("1767607200000"), ts(1_767_607_200)),
            (json!("2026-01-05T10:00:00Z"), ts(1_767_607_200)),
            (json!("2026-01-05 10:00:00"), ts(1_767_607_200)),
            (json!("yesterday"), received()),
            (json!(""), received()),
            (Value::Null, received()),
        ] {
            let mut v = text.clone();
            v["created_at"] = created_at.clone();
            assert_eq!(
                single_message(&serde_json::to_vec(&v).expect("ser")).timestamp,
                expected,
                "{created_at}"
            );
        }
    }

    #[test]
    fn inbound_other_types_and_malformed() {
        let text = fixture_json("kaleyra_inbound_text.json");
        let body_of = |patch: &dyn Fn(&mut Value)| {
            let mut v = text.clone();
            patch(&mut v);
            parse_value(&v).map(|mut b| b.messages.remove(0).body)
        };
        let unsupported =
            |k: &str, s: &str| Ok(InboundBody::Unsupported { kind: k.into(), summary: s.into() });
        assert_eq!(
            body_of(&|v| {
                v["type"] = "location".into();
                v["body"] = "".into();
                v["location"] = json!({"latitude": "37.4422", "longitude": -122.1616});
            }),
            unsupported("location", "[location] 37.4422,-122.1616")
        );
        assert_eq!(
            body_of(&|v| {
                v["type"] = "location".into();
                v["location"] = "37.5, -122.25".into();
            }),
            unsupported("location", "[location] 37.5,-122.25")
        );
        assert_eq!(
            body_of(&|v| {
                v["type"] = "document".into();
                v["body"] = "".into();
            }),
            unsupported("document", "[document]")
        );
        assert_eq!(
            body_of(&|v| v["type"] = "".into()),
            Ok(InboundBody::Text("Hi, I need help with order 4711".into()))
        );
        // mobile stands in for from; the profile name is optional.
        let mut v = text.clone();
        v["from"] = "".into();
        v["name"] = "".into();
        let msg = parse_value(&v).expect("ok").messages.remove(0);
        assert_eq!((msg.from.as_str(), msg.profile_name), ("+15551234567", None));
        for key in ["wanumber", "from"] {
            let mut v = text.clone();
            if let Value::Object(m) = &mut v {
                m.remove(key);
                m.remove("mobile");
            }
            assert!(matches!(parse_value(&v), Err(WebhookError::Malformed(_))), "{key}");
        }
    }

    #[test]
    fn meta_style_inbound_is_read() {
        let body = json!({"contacts": [{"profile": {"name": "Jane"}, "wa_id": "15551234567"}],
            "messages": [{"from": "15551234567", "id": "wamid.IN1", "timestamp": "1767607200",
                "type": "text", "text": {"body": "hi"}}],
            "wanumber": "15557654321"});
        let msg = single_message(&serde_json::to_vec(&body).expect("ser"));
        assert_eq!(msg.provider_message_id, "wamid.IN1");
        assert_eq!(msg.to_phone_number_id, "+15557654321");
        assert_eq!(msg.profile_name.as_deref(), Some("Jane"));
        assert_eq!(msg.body, InboundBody::Text("hi".into()));
        let v2 = json!({"meta_object": {"value": {"metadata": {"display_phone_number": "15557654321"},
            "messages": [{"from": "15551234567", "id": "wamid.IN2", "timestamp": "1767607200",
                "type": "image", "image": {"caption": "pic"}}]}}});
        let msg = single_message(&serde_json::to_vec(&v2).expect("ser"));
        assert_eq!(msg.body, InboundBody::Unsupported { kind: "image".into(), summary: "pic".into() });
        // Without a business number the message cannot be routed.
        let orphan = json!({"messages": [{"from": "1", "id": "x", "type": "text", "text": {"body": "hi"}}]});
        assert!(matches!(parse_value(&orphan), Err(WebhookError::Malformed(_))));
    }

    // -- statuses ----------------------------------------------------------------------

    fn single_status(name: &str) -> StatusUpdate {
        let batch = parse(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(batch.messages.is_empty(), "{name}");
        assert_eq!(batch.statuses.len(), 1, "{name}");
        batch.statuses.into_iter().next().expect("one")
    }

    #[test]
    fn parses_status_fixtures() {
        for (name, status) in [
            ("kaleyra_status.json", DeliveryStatus::Sent),
            ("kaleyra_status_delivered.json", DeliveryStatus::Delivered),
        ] {
            assert_eq!(
                single_status(name),
                StatusUpdate {
                    provider_message_id: "wamid.FAKEOUT0001".into(),
                    status,
                    timestamp: ts(1_767_607_700),
                    recipient: "+15551234567".into(),
                    error: None,
                },
                "{name}"
            );
        }
        let failed = single_status("kaleyra_status_failed.json");
        assert_eq!(failed.status, DeliveryStatus::Failed);
        assert_eq!(
            failed.error,
            Some(ProviderError {
                code: "131047".into(),
                title: "Re-engagement message".into(),
                detail: Some(
                    "Message failed to send because more than 24 hours have passed since the customer \
                     last replied to this number."
                        .into()
                ),
            })
        );
    }

    #[test]
    fn status_variants() {
        let base = fixture_json("kaleyra_status.json");
        let with = |f: &dyn Fn(&mut Value)| {
            let mut v = base.clone();
            f(&mut v);
            parse_value(&v)
        };
        let status_of = |s: &str| {
            with(&|v| v["meta_object"]["value"]["statuses"][0]["status"] = s.into())
                .map(|b| b.statuses.first().map(|s| s.status))
        };
        assert_eq!(status_of("READ"), Ok(Some(DeliveryStatus::Read)));
        assert_eq!(status_of("Delivered"), Ok(Some(DeliveryStatus::Delivered)));
        assert_eq!(status_of("deleted"), Ok(None));
        let not_sent =
            with(&|v| v["meta_object"]["value"]["statuses"][0]["status"] = "NOT-SENT".into()).expect("ok");
        assert_eq!(not_sent.statuses[0].status, DeliveryStatus::Failed);
        assert_eq!(not_sent.statuses[0].error.as_ref().map(|e| e.code.as_str()), Some("not_sent"));
        // NOT-SENT without a Meta status (Kaleyra never reached Meta): top-level fields.
        let bare = json!({
            "meta_object": {}, "status": "not-sent", "message_id": "kal-123", "error": "bad template"
        });
        let batch = parse_value(&bare).expect("ok");
        assert_eq!(batch.statuses[0].provider_message_id, "kal-123");
        assert_eq!(batch.statuses[0].timestamp, received());
        assert_eq!(batch.statuses[0].error.as_ref().and_then(|e| e.detail.as_deref()), Some("bad template"));
        let bare =
            json!({"meta_object": null, "status": "delivered", "extra_info": {"message_id": "wamid.X"}});
        assert_eq!(parse_value(&bare).expect("ok").statuses[0].status, DeliveryStatus::Delivered);
        assert!(matches!(
            parse_value(&json!({"meta_object": {}, "status": "sent"})),
            Err(WebhookError::Malformed(_))
        ));
        assert_eq!(parse_value(&json!({"meta_object": {}})), Ok(WebhookBatch::default()));
        // Missing timestamp: arrival time; missing id: malformed.
        let b = with(&|v| v["meta_object"]["value"]["statuses"][0]["timestamp"] = Value::Null).expect("ok");
        assert_eq!(b.statuses[0].timestamp, received());
        assert!(matches!(
            with(&|v| v["meta_object"]["value"]["statuses"][0]["id"] = Value::Null),
            Err(WebhookError::Malformed(_))
        ));
    }

    #[test]
    fn malformed_bodies() {
        for body in [&b""[..], b"[]", b"null", b"{", b"\"x\"", b"\xff", b"{}"] {
            assert!(
                matches!(parse(body), Err(WebhookError::Malformed(_))),
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
        let err = parse(br#"["secret customer text"]"#).expect_err("malformed");
        assert!(!err.to_string().contains("secret"), "{err}");
    }

    // -- outbound ----------------------------------------------------------------------

    fn client() -> KaleyraClient {
        KaleyraClient::new(
            reqwest::Client::builder().timeout(Duration::from_secs(5)).build().expect("client"),
        )
    }

    async fn respond_with(template: ResponseTemplate) -> SendOutcome {
        let server = MockServer::start().await;
        Mock::given(method("POST")).respond_with(template).mount(&server).await;
        client().send_text(&server.uri(), SID, KEY, "+15557654321", "+15551234567", "hi", None).await
    }

    #[tokio::test]
    async fn send_text_matches_fixture() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path(format!("/v2/{SID}/whatsapp/15557654321/messages")))
            .and(header("api-key", KEY))
            .and(body_json(fixture_json("kaleyra_outbound_text_v2.json")))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(json!({"messages": [{"id": "wamid.OUT1"}]})),
            )
            .expect(1)
            .mount(&server)
            .await;
        let base = format!("{}/", server.uri());
        let outcome = client()
            .send_text(
                &base,
                SID,
                KEY,
                "+15557654321",
                "15551234567",
                "Hello Jane, agent Sam here.",
                Some("ticket-123"),
            )
            .await;
        assert_eq!(outcome, SendOutcome::Accepted { provider_message_id: "wamid.OUT1".into() });
    }

    #[tokio::test]
    async fn response_id_shapes() {
        for (body, id) in [
            (json!({"id": "req-1"}), "req-1"),
            (json!({"data": {"message_id": "m-2"}}), "m-2"),
            (json!({"id": "req-3", "data": [{"message_id": "m-3", "recipient": "+1555"}]}), "m-3"),
            (json!({"id": "req-4", "messages": [{"id": "wamid.4"}]}), "wamid.4"),
        ] {
            let outcome = respond_with(ResponseTemplate::new(202).set_body_json(body.clone())).await;
            assert_eq!(outcome, SendOutcome::Accepted { provider_message_id: id.into() }, "{body}");
        }
        for body in ["{}", "not json", ""] {
            let outcome = respond_with(ResponseTemplate::new(200).set_body_string(body)).await;
            assert!(
                matches!(&outcome, SendOutcome::Rejected { http_status: 200, error }
                    if error.code == "invalid_response"),
                "{outcome:?}"
            );
        }
    }

    #[tokio::test]
    async fn error_shapes_are_rejected() {
        let cases = [
            (json!({"error": {"code": "E413", "message": "Invalid number"}}), "E413", "Invalid number"),
            (json!({"error": "Invalid api key"}), "http_401", "Invalid api key"),
            (json!({"code": 131047, "message": "window closed"}), "131047", "window closed"),
            (json!({}), "http_401", "HTTP 401"),
        ];
        for (body, code, title) in cases {
            match respond_with(ResponseTemplate::new(401).set_body_json(body.clone())).await {
                SendOutcome::Rejected { http_status: 401, error } => {
                    assert_eq!((error.code.as_str(), error.title.as_str()), (code, title), "{body}")
                }
                other => panic!("{body}: {other:?}"),
            }
        }
        match respond_with(ResponseTemplate::new(400).set_body_string("<html>bad</html>")).await {
            SendOutcome::Rejected { http_status: 400, error } => {
                assert_eq!(error.code, "http_400");
                assert_eq!(error.detail.as_deref(), Some("<html>bad</html>"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn retryable_and_transport_errors() {
        let outcome = respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "9")).await;
        assert_eq!(
            outcome,
            SendOutcome::Retryable { reason: "HTTP 429".into(), retry_after: Some(Duration::from_secs(9)) }
        );
        let outcome = respond_with(
            ResponseTemplate::new(500).set_body_json(json!({"error": {"code": "E500", "message": "down"}})),
        )
        .await;
        assert!(
            matches!(&outcome, SendOutcome::Retryable { reason, retry_after: None }
                if reason.contains("E500")),
            "{outcome:?}"
        );
        let outcome = respond_with(ResponseTemplate::new(503)).await;
        assert!(matches!(outcome, SendOutcome::Retryable { .. }));

        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({"id": "x"}))
                    .set_delay(Duration::from_secs(3)),
            )
            .mount(&server)
            .await;
        let http = reqwest::Client::builder().timeout(Duration::from_millis(300)).build().expect("client");
        match KaleyraClient::new(http).send_text(&server.uri(), SID, KEY, "1555", "+1555", "hi", None).await {
            SendOutcome::Retryable { reason, retry_after: None } => {
                assert!(reason.starts_with("timeout"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        drop(listener);
        let outcome =
            client().send_text(&format!("http://{addr}"), SID, KEY, "1555", "+1555", "hi", None).await;
        assert!(matches!(outcome, SendOutcome::Retryable { retry_after: None, .. }), "{outcome:?}");
        let outcome = client().send_text("not a url", SID, KEY, "1555", "+1555", "hi", None).await;
        assert!(matches!(outcome, SendOutcome::Rejected { http_status: 0, .. }), "{outcome:?}");
        let outcome = client().send_text(&server.uri(), SID, "bad\nkey", "1555", "+1555", "hi", None).await;
        assert!(matches!(outcome, SendOutcome::Rejected { http_status: 0, .. }), "{outcome:?}");
    }

    // -- robustness --------------------------------------------------------------------

    /// Deterministic xorshift64* so failures reproduce.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn below(&mut self, n: usize) -> usize {
            if n == 0 { 0 } else { (self.next() % n as u64) as usize }
        }

        fn bytes(&mut self, max_len: usize, alphabet: Option<&[u8]>) -> Vec<u8> {
            let len = self.below(max_len + 1);
            (0..len)
                .map(|_| match alphabet {
                    Some(a) => a[self.below(a.len())],
                    None => self.next() as u8,
                })
                .collect()
        }
    }

    fn mutate_value(v: &mut Value, rng: &mut Rng) {
        let replacement = match rng.below(9) {
            0 => Value::Null,
            1 => Value::Bool(rng.below(2) == 0),
            2 => json!(rng.next() as i64),
            3 => json!(-1.5e300),
            4 => Value::String(String::new()),
            5 => Value::String("99999999999999999999".into()),
            6 => Value::Array(vec![]),
            7 => Value::String("{\"latitude\": 1e999}".into()),
            _ => Value::Object(Map::new()),
        };
        let mut node = v;
        loop {
            let children = match node {
                Value::Array(a) => a.len(),
                Value::Object(o) => o.len(),
                _ => 0,
            };
            if children == 0 || rng.below(4) == 0 {
                *node = replacement;
                return;
            }
            let pick = rng.below(children);
            node = match node {
                Value::Array(a) => &mut a[pick],
                Value::Object(o) => match o.values_mut().nth(pick) {
                    Some(child) => child,
                    None => return,
                },
                _ => return,
            };
        }
    }

    #[test]
    fn random_and_mutated_inputs_never_panic() {
        let mut rng = Rng(0x2545_F491_4F6C_DD1D);
        let json_alphabet = br#"{}[]":,.-+0123456789eEabcdefghijklmnopqrstuvwxyz_ \n\\"#;
        let auths = [
            CallbackAuth::SharedHeader { name: "x-token".into(), value: "s".into() },
            CallbackAuth::Basic { user: "u".into(), password: "p".into() },
        ];
        let check = |body: &[u8], rng: &mut Rng| {
            let _ = parse_webhook(body, received());
            let name = if rng.below(2) == 0 { "authorization".to_owned() } else { "x-token".to_owned() };
            let value = String::from_utf8_lossy(&rng.bytes(40, None)).into_owned();
            for auth in &auths {
                let _ = verify_callback(
                    auth,
                    &[(name.clone(), value.clone()), (name.clone(), format!("Basic {value}"))],
                );
            }
        };
        for i in 0..3000 {
            let alphabet = if i % 2 == 0 { None } else { Some(&json_alphabet[..]) };
            let body = rng.bytes(512, alphabet);
            check(&body, &mut rng);
        }
        let mut names: Vec<String> = std::fs::read_dir(FIXTURES)
            .expect("fixtures dir")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.starts_with("kaleyra_") && n.ends_with(".json"))
            .collect();
        names.sort();
        assert!(names.len() >= 7, "{names:?}");
        for name in names {
            let original = fixture(&name);
            for _ in 0..200 {
                let mut body = original.clone();
                let i = rng.below(body.len());
                match rng.below(4) {
                    0 => body.truncate(i),
                    1 => body[i] ^= 1 << rng.below(8),
                    2 => body.insert(i, json_alphabet[rng.below(json_alphabet.len())]),
                    _ => {
                        body.remove(i);
                    }
                }
                check(&body, &mut rng);
            }
            let value: Value = serde_json::from_slice(&original).expect("fixture is JSON");
            for _ in 0..200 {
                let mut v = value.clone();
                for _ in 0..=rng.below(3) {
                    mutate_value(&mut v, &mut rng);
                }
                check(&serde_json::to_vec(&v).expect("ser"), &mut rng);
            }
        }
    }
}
