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
//!   Media arrives as a pre-signed S3 link in `media_url` and becomes
//!   [`InboundBody::Media`] with [`MediaSource::Url`]; [`KaleyraClient::fetch_media`]
//!   downloads it with a plain GET (no credentials: the link is its own authorisation).
//! - Status callbacks (v2) wrap a Meta status in `meta_object.value.statuses[]` next to
//!   Kaleyra's `extra_info` (`kaleyra_status*`).
//! - Sending is `POST {base}/v2/{sid}/whatsapp/{business_number}/messages` with header
//!   `api-key` and a Meta-shaped `messaging_object` ([`KaleyraClient::send`]): text, media
//!   by `link` and templates with Meta `components`, built by the Meta adapter's
//!   `message_payload` so the two cannot drift apart.
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

use super::http::{classify_transport_error, download, invalid_request, parse_retry_after, truncate};
use super::meta::{RETRYABLE_GRAPH_CODES, is_valid_media_id, message_payload};
use super::{
    DeliveryStatus, FetchError, FetchedMedia, InboundBody, InboundMedia, InboundMessage, MediaKind,
    MediaSource, OutboundContent, ProviderError, SendOutcome, StatusUpdate, WebhookBatch, WebhookError,
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
/// Media (a v1 `media_url`, or a Meta-shaped `image{id}` …) becomes [`InboundBody::Media`];
/// media that cannot be fetched (no http(s) link, no valid id) stays `Unsupported` with its
/// caption as the summary, as every message did before media support.
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
            derived_message_id(&[&business, &from, &created_raw, kind, body_text, without_query(media_url)])
        });
    let body = if let Some(media) = v1_media(root, kind, media_url) {
        InboundBody::Media(media)
    } else if kind == "text" {
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

/// The media of a v1 callback, when it has a fetchable `media_url`.
///
/// The kind is the callback's `type` when that is a media type (image, audio, video,
/// document, sticker, any case); any other type with a media URL (`media`, `file`, an
/// empty or missing type …: the values Kaleyra fills in are UNCONFIRMED) is filed under
/// its `mime_type`. `text` and `location` are never media: their `media_url` placeholder
/// is expected empty, and a stray value must not turn a text into an attachment.
/// A caption comes from `caption` or else `body` (the documented placeholder carries the
/// caption for media); `filename` is read if the account's template has one (there is no
/// documented placeholder for it).
fn v1_media(root: &Map<String, Value>, kind: &str, media_url: &str) -> Option<InboundMedia> {
    let declared = str_at_map(root, "type").map(str::to_ascii_lowercase);
    if matches!(declared.as_deref(), Some("text" | "location")) || !is_http_url(media_url) {
        return None;
    }
    let content_type = str_at_map(root, "mime_type").map(str::to_owned);
    let media_kind = MediaKind::parse(&kind.to_ascii_lowercase())
        .unwrap_or_else(|| MediaKind::from_content_type(content_type.as_deref().unwrap_or("")));
    Some(InboundMedia {
        kind: media_kind,
        source: MediaSource::Url(media_url.to_owned()),
        content_type,
        caption: str_at_map(root, "caption").or_else(|| str_at_map(root, "body")).map(str::to_owned),
        filename: str_at_map(root, "filename").map(str::to_owned),
    })
}

/// `s` parses as an absolute http(s) URL: the only links the media fetcher follows.
fn is_http_url(s: &str) -> bool {
    reqwest::Url::parse(s.trim()).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
}

/// The URL without its query string. Pre-signed S3 links carry their signature and expiry
/// in the query, which may be re-issued on a redelivery (UNCONFIRMED), so the derived id
/// hashes only the object's address.
fn without_query(url: &str) -> &str {
    url.split_once('?').map_or(url, |(before, _)| before)
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
    let media = meta_style_media(kind, payload);
    let body = match (kind, payload.and_then(|p| str_at(p, "body")), media) {
        ("text", Some(text), _) => InboundBody::Text(text.to_owned()),
        (_, _, Some(media)) => InboundBody::Media(media),
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

/// The media of a Meta-shaped message (`image{id, mime_type, caption?, filename?}` …).
///
/// Whether Kaleyra adds a download link next to Meta's id is UNCONFIRMED. A link (`link`,
/// `url` or `media_url`) is preferred when there is one, because [`KaleyraClient::fetch_media`]
/// can follow it; a bare Meta media id can only be fetched from Meta with a Meta token,
/// which a Kaleyra account does not have. No usable link or id: not media (the caller
/// falls back to a summary).
fn meta_style_media(kind: &str, payload: Option<&Value>) -> Option<InboundMedia> {
    let media_kind = MediaKind::parse(kind)?;
    let payload = payload?;
    let link =
        ["link", "url", "media_url"].iter().find_map(|k| str_at(payload, k)).filter(|u| is_http_url(u));
    let source = match link {
        Some(url) => MediaSource::Url(url.to_owned()),
        None => {
            let id = match payload.get("id")? {
                Value::String(s) => s.trim().to_owned(),
                Value::Number(n) if n.is_u64() => n.to_string(),
                _ => return None,
            };
            if !is_valid_media_id(&id) {
                return None;
            }
            MediaSource::MetaMediaId(id)
        }
    };
    Some(InboundMedia {
        kind: media_kind,
        source,
        content_type: str_at(payload, "mime_type").map(str::to_owned),
        caption: str_at(payload, "caption").map(str::to_owned),
        filename: str_at(payload, "filename").map(str::to_owned),
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
    /// Meta's Cloud API message body, verbatim.
    messaging_object: Value,
    extra_info: ExtraInfo<'a>,
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
        let content = OutboundContent::Text(body.to_owned());
        self.send(api_base_url, sid, api_key, business_number, to_e164, &content, reference).await
    }

    /// Sends text, media or a template; arguments as for [`KaleyraClient::send_text`].
    ///
    /// The `messaging_object` is Meta's message body (the Meta adapter's `message_payload`):
    /// media goes by `link` with a caption only for image, video and document and a file name
    /// only for documents; templates carry one `body` component of text parameters
    /// (fixture `kaleyra_outbound_template_v2.json`). Whether v2 accepts media by `link` is
    /// UNCONFIRMED (the docs excerpts show text and templates); the Meta shape is the
    /// documented contract of `messaging_object`. Never panics; every failure is a
    /// [`SendOutcome`].
    #[allow(clippy::too_many_arguments)]
    pub async fn send(
        &self,
        api_base_url: &str,
        sid: &str,
        api_key: &str,
        business_number: &str,
        to_e164: &str,
        content: &OutboundContent,
        reference: Option<&str>,
    ) -> SendOutcome {
        let payload = SendRequest {
            messaging_object: message_payload(to_e164, content, None),
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

    /// Downloads an inbound media item from its `media_url`, holding at most `max_bytes`.
    ///
    /// Kaleyra stores inbound media and hands out pre-signed S3 links, so this is a plain
    /// GET: the API key is deliberately not sent (it would leak the account's key to the
    /// storage host). Anything but an absolute http(s) URL is refused as permanent. 5xx,
    /// 429 and transport failures are retryable; other non-2xx (an expired or revoked
    /// link: 403/404) are permanent; a body over the limit is [`FetchError::TooLarge`].
    pub async fn fetch_media(&self, url: &str, max_bytes: u64) -> Result<FetchedMedia, FetchError> {
        let parsed = reqwest::Url::parse(url.trim())
            .map_err(|_| FetchError::Permanent("the media URL is not a URL".into()))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(FetchError::Permanent("the media URL is not http(s)".into()));
        }
        download(self.http.get(parsed), max_bytes).await
    }
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
    // Kaleyra relays Meta's answer for messages Meta refused; Meta's rate-limit codes mean
    // "later", whatever status Kaleyra wraps them in (UNCONFIRMED that the code is passed
    // through as is). Only the long codes count: a bare `4` could be Kaleyra's own.
    let meta_rate_limited = json
        .as_ref()
        .filter(|j| j.is_object())
        .and_then(|j| provider_error_from(j, code).code.trim().parse::<i64>().ok())
        .is_some_and(|c| c >= 10_000 && RETRYABLE_GRAPH_CODES.contains(&c));
    if code == 429 || code == 408 || status.is_server_error() || meta_rate_limited {
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
    use crate::providers::test_support::{
        Rng, fixture, fixture_json, fixture_names, mutate_bytes, mutate_value,
    };
    use std::time::Duration;

    use chrono::TimeZone;
    use proptest::prelude::*;
    use serde_json::json;

    use crate::providers::{OutboundMedia, OutboundTemplate};
    use wiremock::matchers::{body_json, header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    const SID: &str = "HXAP0000000000";
    const KEY: &str = "Afake-api-key";

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
            InboundBody::Media(InboundMedia {
                kind: MediaKind::Image,
                source: MediaSource::Url(
                    "https://example-bucket.s3.amazonaws.com/kaleyra/FAKE-MEDIA.jpg".into()
                ),
                content_type: Some("image/jpeg".into()),
                caption: Some("damaged box".into()),
                filename: None,
            })
        );
        assert_eq!(
            msg.provider_message_id,
            derived_message_id(&[
                "+15557654321",
                "+15551234567",
                "1767607260",
                "image",
                "damaged box",
                "https://example-bucket.s3.amazonaws.com/kaleyra/FAKE-MEDIA.jpg",
            ])
        );
        assert_eq!(msg.timestamp, ts(1_767_607_260));
        assert_eq!(msg.from, "+15551234567");
        assert_eq!(msg.to_phone_number_id, "+15557654321");
    }

    /// The media fixture with `patch` applied, parsed to its one message's body.
    fn media_body(patch: &dyn Fn(&mut Value)) -> InboundBody {
        let mut v = fixture_json("kaleyra_inbound_media.json");
        patch(&mut v);
        single_message(&serde_json::to_vec(&v).expect("ser")).body
    }

    fn url_media(kind: MediaKind, content_type: &str, caption: Option<&str>) -> InboundBody {
        InboundBody::Media(InboundMedia {
            kind,
            source: MediaSource::Url("https://example-bucket.s3.amazonaws.com/kaleyra/FAKE-MEDIA.jpg".into()),
            content_type: (!content_type.is_empty()).then(|| content_type.to_owned()),
            caption: caption.map(str::to_owned),
            filename: None,
        })
    }

    #[test]
    fn inbound_media_kinds() {
        for (kind, expected) in [
            ("image", MediaKind::Image),
            ("audio", MediaKind::Audio),
            ("video", MediaKind::Video),
            ("document", MediaKind::Document),
            ("sticker", MediaKind::Sticker),
            ("IMAGE", MediaKind::Image),
            ("Sticker", MediaKind::Sticker),
        ] {
            assert_eq!(
                media_body(&|v| v["type"] = kind.into()),
                url_media(expected, "image/jpeg", Some("damaged box")),
                "{kind}"
            );
        }
        // Other types with a media URL are filed under their MIME type.
        for (kind, mime, expected) in [
            ("media", "video/mp4", MediaKind::Video),
            ("file", "application/pdf", MediaKind::Document),
            ("voice", "audio/ogg; codecs=opus", MediaKind::Audio),
            ("", "image/png", MediaKind::Image),
            ("unknown", "", MediaKind::Document),
        ] {
            assert_eq!(
                media_body(&|v| {
                    v["type"] = kind.into();
                    v["mime_type"] = mime.into();
                }),
                url_media(expected, mime, Some("damaged box")),
                "{kind} {mime}"
            );
        }
        // No type at all and no body: still media.
        assert_eq!(
            media_body(&|v| {
                let m = v.as_object_mut().expect("object");
                m.remove("type");
                m.remove("body");
            }),
            url_media(MediaKind::Image, "image/jpeg", None)
        );
        // A `caption` field wins over `body`; a `filename` is kept.
        assert_eq!(
            media_body(&|v| {
                v["type"] = "document".into();
                v["caption"] = "the invoice".into();
                v["filename"] = "invoice.pdf".into();
            }),
            InboundBody::Media(InboundMedia {
                kind: MediaKind::Document,
                source: MediaSource::Url(
                    "https://example-bucket.s3.amazonaws.com/kaleyra/FAKE-MEDIA.jpg".into()
                ),
                content_type: Some("image/jpeg".into()),
                caption: Some("the invoice".into()),
                filename: Some("invoice.pdf".into()),
            })
        );
    }

    #[test]
    fn inbound_media_needs_an_http_url_and_a_media_type() {
        // Text and location are never media, even with a stray media_url.
        assert_eq!(media_body(&|v| v["type"] = "text".into()), InboundBody::Text("damaged box".into()));
        assert!(matches!(
            media_body(&|v| v["type"] = "location".into()),
            InboundBody::Unsupported { kind, .. } if kind == "location"
        ));
        for url in ["", "  ", "not a url", "ftp://example.com/x.jpg", "file:///etc/passwd", "/relative.jpg"] {
            assert_eq!(
                media_body(&|v| v["media_url"] = url.into()),
                InboundBody::Unsupported { kind: "image".into(), summary: "damaged box".into() },
                "{url:?}"
            );
        }
    }

    #[test]
    fn derived_id_ignores_the_media_links_signature() {
        let id = |url: &str| {
            let mut v = fixture_json("kaleyra_inbound_media.json");
            v["media_url"] = url.into();
            single_message(&serde_json::to_vec(&v).expect("ser")).provider_message_id
        };
        let base = "https://example-bucket.s3.amazonaws.com/kaleyra/FAKE-MEDIA.jpg";
        assert_eq!(id(&format!("{base}?X-Amz-Signature=1")), id(&format!("{base}?X-Amz-Signature=2")));
        assert_eq!(id(base), id(&format!("{base}?X-Amz-Signature=2")));
        assert_ne!(id(base), id("https://example-bucket.s3.amazonaws.com/kaleyra/OTHER.jpg"));
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
        assert_eq!(
            msg.body,
            InboundBody::Unsupported { kind: "image".into(), summary: "pic".into() },
            "media without an id or link has nothing to download"
        );
        let with_media = |payload: Value| {
            let v = json!({"meta_object": {"value": {"metadata": {"display_phone_number": "15557654321"},
                "messages": [{"from": "15551234567", "id": "wamid.IN3", "timestamp": "1767607200",
                    "type": "document", "document": payload}]}}});
            single_message(&serde_json::to_vec(&v).expect("ser")).body
        };
        assert_eq!(
            with_media(json!({"id": "900000000000002", "mime_type": "application/pdf",
                "caption": "my invoice", "filename": "invoice-4711.pdf"})),
            InboundBody::Media(InboundMedia {
                kind: MediaKind::Document,
                source: MediaSource::MetaMediaId("900000000000002".into()),
                content_type: Some("application/pdf".into()),
                caption: Some("my invoice".into()),
                filename: Some("invoice-4711.pdf".into()),
            })
        );
        // A link, when there is one, wins: Kaleyra accounts hold no Meta token.
        assert_eq!(
            with_media(json!({"id": "9", "url": "https://s3.example.com/a.pdf"})),
            InboundBody::Media(InboundMedia {
                kind: MediaKind::Document,
                source: MediaSource::Url("https://s3.example.com/a.pdf".into()),
                content_type: None,
                caption: None,
                filename: None,
            })
        );
        assert_eq!(
            with_media(json!({"id": "../x", "caption": "c"})),
            InboundBody::Unsupported { kind: "document".into(), summary: "c".into() }
        );
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

    /// Sends `content` to a mock that answers any POST, and returns the one request's body.
    async fn sent_body(content: &OutboundContent) -> Value {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path(format!("/v2/{SID}/whatsapp/15557654321/messages")))
            .and(header("api-key", KEY))
            .and(header("content-type", "application/json"))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(json!({"messages": [{"id": "wamid.OUT2"}]})),
            )
            .expect(1)
            .mount(&server)
            .await;
        let outcome = client()
            .send(&server.uri(), SID, KEY, "15557654321", "+15551234567", content, Some("ticket-123"))
            .await;
        assert_eq!(outcome, SendOutcome::Accepted { provider_message_id: "wamid.OUT2".into() });
        let requests = server.received_requests().await.expect("recording");
        serde_json::from_slice(&requests[0].body).expect("JSON body")
    }

    #[tokio::test]
    async fn send_text_content_matches_fixture() {
        let body = sent_body(&OutboundContent::Text("Hello Jane, agent Sam here.".into())).await;
        assert_eq!(body, fixture_json("kaleyra_outbound_text_v2.json"));
    }

    #[tokio::test]
    async fn send_template_matches_fixture() {
        let content = OutboundContent::Template(OutboundTemplate {
            name: "order_update".into(),
            language: "en".into(),
            body_parameters: vec!["Jane".into(), "4711".into()],
        });
        let body = sent_body(&content).await;
        let expected = fixture_json("kaleyra_outbound_template_v2.json");
        assert_eq!(body["messaging_object"], expected["messaging_object"]);
        // The fixture's extra_info has only `ref`; ref1/ref2 go empty as on text sends.
        assert_eq!(body["extra_info"], json!({"ref": "ticket-123", "ref1": "", "ref2": ""}));
        let no_params = OutboundContent::Template(OutboundTemplate {
            name: "hello".into(),
            language: "en".into(),
            body_parameters: vec![],
        });
        assert_eq!(
            sent_body(&no_params).await["messaging_object"]["template"],
            json!({"name": "hello", "language": {"code": "en"}})
        );
    }

    /// The v1 form fixtures describe the same sends in Kaleyra's older API. We send v2; this
    /// checks that each v2 request carries every value its v1 twin carries (recipient, type,
    /// text, template name, parameters and language, media link and caption).
    #[tokio::test]
    async fn v2_sends_carry_what_the_v1_fixtures_carry() {
        let v1 = |name: &str| -> std::collections::HashMap<String, String> {
            let text = String::from_utf8(fixture(name)).expect("utf8");
            crate::providers::twilio::parse_form(text.trim_end().as_bytes())
                .expect("form")
                .into_iter()
                .collect()
        };
        let text = v1("kaleyra_outbound_text_v1.form");
        let body = sent_body(&OutboundContent::Text(text["body"].clone())).await;
        let m = &body["messaging_object"];
        assert_eq!((m["to"].as_str(), m["type"].as_str()), (Some(text["to"].as_str()), Some("text")));
        assert_eq!(m["text"]["body"], text["body"]);

        let template = v1("kaleyra_outbound_template_v1.form");
        // v1 `params` is a comma-separated list of quoted values.
        let params: Vec<String> =
            template["params"].split(',').map(|p| p.trim().trim_matches('"').to_owned()).collect();
        let content = OutboundContent::Template(OutboundTemplate {
            name: template["template_name"].clone(),
            language: template["lang_code"].clone(),
            body_parameters: params.clone(),
        });
        let m = sent_body(&content).await["messaging_object"].clone();
        assert_eq!(m["to"], template["to"]);
        assert_eq!(m["template"]["name"], template["template_name"]);
        assert_eq!(m["template"]["language"]["code"], template["lang_code"]);
        let sent: Vec<&str> = m["template"]["components"][0]["parameters"]
            .as_array()
            .expect("parameters")
            .iter()
            .filter_map(|p| p["text"].as_str())
            .collect();
        assert_eq!(sent, params);

        let media = v1("kaleyra_outbound_media_v1.form");
        let content = OutboundContent::Media(OutboundMedia {
            kind: MediaKind::Document,
            url: media["media_url"].clone(),
            content_type: "application/pdf".into(),
            caption: Some(media["caption"].clone()),
            filename: None,
        });
        let m = sent_body(&content).await["messaging_object"].clone();
        assert_eq!(m["to"], media["to"]);
        assert_eq!(m["document"]["link"], media["media_url"]);
        assert_eq!(m["document"]["caption"], media["caption"]);
    }

    #[tokio::test]
    async fn send_media_by_link() {
        let media = |kind, url: &str, caption: Option<&str>, filename: Option<&str>| {
            OutboundContent::Media(OutboundMedia {
                kind,
                url: url.into(),
                content_type: "application/pdf".into(),
                caption: caption.map(str::to_owned),
                filename: filename.map(str::to_owned),
            })
        };
        let doc = media(
            MediaKind::Document,
            "https://cdn.example.com/files/invoice-4711.pdf",
            Some("Invoice 4711"),
            Some("invoice-4711.pdf"),
        );
        let mut expected = fixture_json("meta_outbound_document.json");
        let body = sent_body(&doc).await;
        assert_eq!(body["messaging_object"], expected);
        let image = media(
            MediaKind::Image,
            "https://cdn.example.com/img/label.jpg",
            Some("Your return label"),
            Some("x"),
        );
        expected = fixture_json("meta_outbound_image.json");
        assert_eq!(sent_body(&image).await["messaging_object"], expected);
        let audio = media(MediaKind::Audio, "https://cdn.example.com/a.ogg", Some("c"), Some("a.ogg"));
        assert_eq!(
            sent_body(&audio).await["messaging_object"],
            json!({"messaging_product": "whatsapp", "recipient_type": "individual", "to": "+15551234567",
                "type": "audio", "audio": {"link": "https://cdn.example.com/a.ogg"}})
        );
    }

    #[tokio::test]
    async fn meta_rate_limit_codes_are_retryable() {
        for body in [
            fixture_json("meta_error_response_rate_limit.json"),
            fixture_json("meta_error_response_pair_rate.json"),
            json!({"error": {"code": "131048", "message": "Spam rate limit hit"}}),
            json!({"code": 80007, "message": "WABA rate limit"}),
        ] {
            let outcome = respond_with(ResponseTemplate::new(400).set_body_json(body.clone())).await;
            assert!(matches!(outcome, SendOutcome::Retryable { .. }), "{body}: {outcome:?}");
        }
        // A short code may be Kaleyra's own; media errors stay permanent.
        for body in
            [json!({"code": 4, "message": "x"}), json!({"error": {"code": 131053, "message": "media"}})]
        {
            let outcome = respond_with(ResponseTemplate::new(400).set_body_json(body.clone())).await;
            assert!(matches!(outcome, SendOutcome::Rejected { .. }), "{body}: {outcome:?}");
        }
    }

    // -- media download ------------------------------------------------------------------

    #[tokio::test]
    async fn fetch_media_is_a_plain_get() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/kaleyra/FAKE-MEDIA.jpg"))
            .respond_with(ResponseTemplate::new(200).set_body_raw(b"JPEG".to_vec(), "image/jpeg"))
            .expect(1)
            .mount(&server)
            .await;
        let url = format!("{}/kaleyra/FAKE-MEDIA.jpg?X-Amz-Signature=abc", server.uri());
        let media = client().fetch_media(&url, 1000).await.expect("fetched");
        assert_eq!(media, FetchedMedia { bytes: b"JPEG".to_vec(), content_type: Some("image/jpeg".into()) });
        let requests = server.received_requests().await.expect("recording");
        assert!(requests[0].headers.get("api-key").is_none(), "no credentials go to the storage host");
        assert!(requests[0].headers.get("authorization").is_none());
        assert_eq!(requests[0].url.query(), Some("X-Amz-Signature=abc"));
    }

    #[tokio::test]
    async fn fetch_media_errors() {
        for (status, retryable) in
            [(403, false), (404, false), (410, false), (500, true), (503, true), (429, true)]
        {
            let server = MockServer::start().await;
            Mock::given(method("GET")).respond_with(ResponseTemplate::new(status)).mount(&server).await;
            let result = client().fetch_media(&format!("{}/m.jpg", server.uri()), 1000).await;
            if retryable {
                assert!(matches!(result, Err(FetchError::Retryable(_))), "{status}: {result:?}");
            } else {
                assert!(matches!(result, Err(FetchError::Permanent(_))), "{status}: {result:?}");
            }
        }
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(200).set_body_bytes(vec![0; 11]))
            .mount(&server)
            .await;
        assert_eq!(
            client().fetch_media(&format!("{}/m.jpg", server.uri()), 10).await,
            Err(FetchError::TooLarge { limit: 10 })
        );
        let ok = client().fetch_media(&format!("{}/m.jpg", server.uri()), 11).await.expect("fits exactly");
        assert_eq!((ok.bytes.len(), ok.content_type), (11, None));
        for url in ["", "not a url", "file:///etc/passwd", "ftp://example.com/m.jpg", "/m.jpg", "data:,x"] {
            let result = client().fetch_media(url, 1000).await;
            assert!(matches!(result, Err(FetchError::Permanent(_))), "{url:?}: {result:?}");
        }
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        drop(listener);
        let result = client().fetch_media(&format!("http://{addr}/m.jpg"), 1000).await;
        assert!(matches!(result, Err(FetchError::Retryable(_))), "{result:?}");
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
        let names = fixture_names("kaleyra_", ".json");
        assert!(names.len() >= 7, "{names:?}");
        for name in names {
            let original = fixture(&name);
            for _ in 0..200 {
                let mut body = original.clone();
                mutate_bytes(&mut body, &mut rng, json_alphabet);
                check(&body, &mut rng);
            }
            let value: Value = serde_json::from_slice(&original).expect("fixture is JSON");
            for _ in 0..200 {
                let mut v = value.clone();
                for _ in 0..=rng.below(3) {
                    mutate_value(&mut v, &mut rng, &["99999999999999999999", "{\"latitude\": 1e999}"]);
                }
                check(&serde_json::to_vec(&v).expect("ser"), &mut rng);
            }
        }
    }
    // -- property-based fuzzing ------------------------------------------------------------

    fn arbitrary_field() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            Just(Value::String("https://example-bucket.s3.amazonaws.com/k/m.jpg?sig=1".into())),
            "(https?|ftp|file)://[a-z0-9./?=%#-]{0,20}".prop_map(Value::String),
            "[0-9]{1,20}".prop_map(Value::String),
            any::<String>().prop_map(Value::String),
            any::<i64>().prop_map(|n| json!(n)),
            any::<bool>().prop_map(Value::Bool),
            Just(json!({"nested": [1]})),
        ]
    }

    fn kaleyra_fixtures() -> [Vec<u8>; 5] {
        [
            fixture("kaleyra_inbound_media.json"),
            fixture("kaleyra_inbound_text.json"),
            fixture("kaleyra_status.json"),
            fixture("kaleyra_status_failed.json"),
            fixture("kaleyra_outbound_template_v2.json"),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn proptest_arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = parse_webhook(&bytes, received());
        }

        /// Splices random bytes over a random range of a real fixture.
        #[test]
        fn proptest_spliced_fixtures_never_panic(
            which in 0usize..5,
            start in any::<proptest::sample::Index>(),
            len in 0usize..48,
            replacement in proptest::collection::vec(any::<u8>(), 0..48),
        ) {
            let mut body = kaleyra_fixtures()[which].clone();
            let start = start.index(body.len());
            let end = (start + len).min(body.len());
            body.splice(start..end, replacement);
            let _ = parse_webhook(&body, received());
        }

        /// Any values in the v1 media placeholders: a message always comes out, and it is
        /// media exactly when `media_url` is an http(s) URL and the type is not text/location.
        #[test]
        fn proptest_v1_media_fields(
            kind in prop_oneof![
                Just(json!("image")), Just(json!("document")), Just(json!("text")), Just(json!("location")),
                Just(json!("media")), Just(Value::Null), arbitrary_field()
            ],
            media_url in arbitrary_field(),
            mime_type in arbitrary_field(),
            body in arbitrary_field(),
            caption in arbitrary_field(),
            filename in arbitrary_field(),
        ) {
            let mut v = fixture_json("kaleyra_inbound_media.json");
            v["type"] = kind.clone();
            v["media_url"] = media_url.clone();
            v["mime_type"] = mime_type;
            v["body"] = body;
            v["caption"] = caption;
            v["filename"] = filename;
            let batch = parse_value(&v);
            prop_assert!(batch.is_ok(), "{batch:?}");
            let msg = batch.expect("checked").messages.remove(0);
            let declared = kind.as_str().map(|k| k.trim().to_ascii_lowercase()).filter(|k| !k.is_empty());
            let url = media_url.as_str().filter(|u| is_http_url(u));
            let expect_media = url.is_some() && !matches!(declared.as_deref(), Some("text" | "location"));
            match &msg.body {
                InboundBody::Media(m) => {
                    prop_assert!(expect_media, "{msg:?}");
                    prop_assert_eq!(&m.source, &MediaSource::Url(url.expect("checked").trim().to_owned()));
                }
                other => prop_assert!(!expect_media, "{other:?}"),
            }
        }

        /// Arbitrary header lists never panic and never authenticate without the secret.
        #[test]
        fn proptest_verify_callback(
            headers in proptest::collection::vec((any::<String>(), any::<String>()), 0..6),
            names in proptest::collection::vec(
                prop_oneof![Just("authorization".to_owned()), Just("X-Token".to_owned())], 0..3),
        ) {
            let shared = CallbackAuth::SharedHeader { name: "x-token".into(), value: "s3cret-value".into() };
            let basic = CallbackAuth::Basic { user: "kaleyra".into(), password: "pa55-word".into() };
            let mut headers = headers;
            // Known names with arbitrary values, so the comparison paths run too.
            for (i, name) in names.into_iter().enumerate() {
                let value = headers.get(i).map(|(_, v)| v.clone()).unwrap_or_default();
                headers.push((name, format!("Basic {value}")));
                headers.push(("x-token".into(), value));
            }
            let contains_secret = headers.iter().any(|(_, v)| v.contains("s3cret-value"));
            if !contains_secret {
                prop_assert!(verify_callback(&shared, &headers).is_err());
            }
            let basic_good = BASE64.encode("kaleyra:pa55-word");
            if !headers.iter().any(|(_, v)| v.contains(&basic_good)) {
                prop_assert!(verify_callback(&basic, &headers).is_err());
            }
        }
    }
}
