//! WhatsApp provider adapters and the provider-neutral types they produce.
//!
//! Each adapter turns one provider's wire format into these types, so the domain, the
//! webhook handlers and the outbox never see a provider payload:
//! - inbound webhooks become a [`WebhookBatch`] of [`InboundMessage`]s and [`StatusUpdate`]s;
//! - a send attempt becomes a [`SendOutcome`], already classified for the outbox's retry
//!   policy (accepted, rejected for good, or worth retrying).
//!
//! Adapters are pure functions plus a thin HTTP client; they hold no state and do no I/O
//! beyond the one request they are asked to make.

pub(crate) mod http;
pub mod kaleyra;
pub mod meta;
pub mod sinch;
pub mod twilio;

#[cfg(test)]
mod test_support;

/// A normalized inbound customer message.
#[derive(Debug, Clone, PartialEq)]
pub struct InboundMessage {
    /// The provider's id for the message (a `wamid.…` for Meta). Providers redeliver
    /// webhooks, so this is the dedup key.
    pub provider_message_id: String,
    /// Customer number in E.164 with a leading '+', e.g. "+15551234567".
    pub from: String,
    /// The business number's provider id (Meta `metadata.phone_number_id`); selects the
    /// account the message belongs to.
    pub to_phone_number_id: String,
    /// The customer's WhatsApp profile name, when the provider sent one.
    pub profile_name: Option<String>,
    /// When the customer sent the message, per the provider (second precision). Webhooks
    /// arrive concurrently and out of order, so order by this, not by arrival.
    pub timestamp: chrono::DateTime<chrono::Utc>,
    pub body: InboundBody,
}

/// What the customer sent.
#[derive(Debug, Clone, PartialEq)]
pub enum InboundBody {
    Text(String),
    /// An image, audio, video, document or sticker. The bytes are not in the webhook: the
    /// media fetcher downloads them from `source` into the blob store soon after.
    Media(InboundMedia),
    /// Everything that is neither text nor media (location, button and list replies,
    /// reactions ...). `kind` is the provider's type name (Meta `type`); `summary` is a
    /// one-line text an agent can read: the tapped button's title, `"[location] lat,lon"`,
    /// or `"[type]"` when there is nothing better.
    Unsupported {
        kind: String,
        summary: String,
    },
}

/// The kinds of media WhatsApp carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaKind {
    Image,
    Audio,
    Video,
    Document,
    Sticker,
}

impl MediaKind {
    /// The name Meta (and this API) use: `image`, `audio`, `video`, `document`, `sticker`.
    pub fn as_str(self) -> &'static str {
        match self {
            MediaKind::Image => "image",
            MediaKind::Audio => "audio",
            MediaKind::Video => "video",
            MediaKind::Document => "document",
            MediaKind::Sticker => "sticker",
        }
    }

    /// Parses [`MediaKind::as_str`]'s names.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "image" => MediaKind::Image,
            "audio" => MediaKind::Audio,
            "video" => MediaKind::Video,
            "document" => MediaKind::Document,
            "sticker" => MediaKind::Sticker,
            _ => return None,
        })
    }

    /// The kind WhatsApp would file a MIME type under: `image/webp` is a sticker only when
    /// the sender says so, so it maps to image here; unknown types travel as documents.
    pub fn from_content_type(content_type: &str) -> Self {
        let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        match essence.split('/').next().unwrap_or("") {
            "image" => MediaKind::Image,
            "audio" => MediaKind::Audio,
            "video" => MediaKind::Video,
            _ => MediaKind::Document,
        }
    }
}

/// An inbound media item, as the webhook described it.
#[derive(Debug, Clone, PartialEq)]
pub struct InboundMedia {
    pub kind: MediaKind,
    /// Where the bytes can be fetched.
    pub source: MediaSource,
    /// MIME type, when the webhook says (`image/jpeg`); the download's own header wins.
    pub content_type: Option<String>,
    /// The customer's caption.
    pub caption: Option<String>,
    /// The document's file name.
    pub filename: Option<String>,
}

/// Where an inbound media item's bytes live at the provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaSource {
    /// A Meta media id (also what Kaleyra v2 forwards from Meta): `GET /{version}/{id}` with
    /// the bearer token answers a download URL valid for 5 minutes, fetched with the token.
    MetaMediaId(String),
    /// A URL to GET. Twilio's need the account's Basic auth; Sinch's and Kaleyra's are
    /// pre-signed links.
    Url(String),
}

impl MediaSource {
    /// The stored form: `meta:<id>` or the URL itself.
    pub fn to_reference(&self) -> String {
        match self {
            MediaSource::MetaMediaId(id) => format!("meta:{id}"),
            MediaSource::Url(url) => url.clone(),
        }
    }

    /// Parses [`MediaSource::to_reference`].
    pub fn from_reference(reference: &str) -> Self {
        match reference.strip_prefix("meta:") {
            Some(id) => MediaSource::MetaMediaId(id.to_owned()),
            None => MediaSource::Url(reference.to_owned()),
        }
    }
}

/// Downloaded media bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct FetchedMedia {
    pub bytes: Vec<u8>,
    /// The `Content-Type` the provider answered (or reported), if any.
    pub content_type: Option<String>,
}

/// Why a media download failed, classified for the media fetcher's retry policy.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FetchError {
    /// Timeouts, connection errors, 5xx, 429: try again later.
    #[error("retryable: {0}")]
    Retryable(String),
    /// 4xx (gone, forbidden) or a malformed answer: retrying cannot help.
    #[error("permanent: {0}")]
    Permanent(String),
    /// Bigger than the configured limit; nothing beyond the limit was read.
    #[error("the media is larger than the {limit}-byte limit")]
    TooLarge { limit: u64 },
}

/// Something to send to a customer, whichever provider carries it.
#[derive(Debug, Clone, PartialEq)]
pub enum OutboundContent {
    /// Free-form text (inside the 24 h window only).
    Text(String),
    /// Media (inside the window only), fetched by the provider from a link we serve.
    Media(OutboundMedia),
    /// An approved template: the only thing allowed outside the window.
    Template(OutboundTemplate),
}

/// Outbound media: the provider downloads it from `url` (a signed, expiring link to our
/// blob store under the server's public URL).
#[derive(Debug, Clone, PartialEq)]
pub struct OutboundMedia {
    pub kind: MediaKind,
    pub url: String,
    pub content_type: String,
    pub caption: Option<String>,
    /// Shown to the customer for documents.
    pub filename: Option<String>,
}

/// An approved template with its body parameters, in order (`{{1}}`, `{{2}}` ...).
///
/// `name` is the template's name for Meta, Kaleyra and Sinch, and the Content SID (`HX…`)
/// for Twilio, whose templates are Content resources.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboundTemplate {
    pub name: String,
    /// Language code as approved, e.g. `en_US`. (Twilio ignores it: a Content SID carries
    /// its language.)
    pub language: String,
    pub body_parameters: Vec<String>,
}

/// Delivery state of an outbound message, as reported by the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    Sent,
    Delivered,
    Read,
    Failed,
}

/// A provider report about one outbound message.
///
/// Providers send these out of order and more than once; consumers must never let an
/// earlier status overwrite a later one and should dedupe on (id, status).
#[derive(Debug, Clone, PartialEq)]
pub struct StatusUpdate {
    pub provider_message_id: String,
    pub status: DeliveryStatus,
    pub timestamp: chrono::DateTime<chrono::Utc>,
    /// The customer number in E.164 with '+'.
    pub recipient: String,
    /// Why the message failed; normally only present with [`DeliveryStatus::Failed`].
    pub error: Option<ProviderError>,
}

/// A provider's error, kept as the provider reported it.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderError {
    /// The provider's error code as text (Meta's numeric codes, e.g. "131047"), or one of
    /// our own snake_case codes when the failure is not the provider's (e.g.
    /// "invalid_response").
    pub code: String,
    /// Short human-readable title.
    pub title: String,
    /// Longer explanation, when available.
    pub detail: Option<String>,
}

/// The provider codes that mean "the customer's 24 h service window is closed": Meta 131047,
/// Twilio 63016, Sinch `OUTSIDE_ALLOWED_SENDING_WINDOW`.
const WINDOW_CLOSED_CODES: [&str; 3] = ["131047", "63016", "OUTSIDE_ALLOWED_SENDING_WINDOW"];

impl ProviderError {
    /// Our code for this failure: the same `window_closed` whichever provider reported a
    /// closed window (so clients handle one code), the provider's own code otherwise.
    pub fn normalized_code(&self) -> String {
        if WINDOW_CLOSED_CODES.contains(&self.code.as_str()) {
            "window_closed".to_owned()
        } else {
            self.code.clone()
        }
    }

    /// The human explanation, with the provider's code when it was normalised away.
    pub fn reason(&self) -> String {
        let text = self.detail.clone().unwrap_or_else(|| self.title.clone());
        if self.normalized_code() == self.code {
            text
        } else {
            format!("{text} (provider code {})", self.code)
        }
    }
}

/// Everything one webhook delivery carried. Providers batch, so one POST may hold several
/// messages and statuses, or none (e.g. an event type we ignore).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct WebhookBatch {
    pub messages: Vec<InboundMessage>,
    pub statuses: Vec<StatusUpdate>,
}

/// Outcome of a send attempt, classified for the outbox's retry policy.
#[derive(Debug, Clone, PartialEq)]
pub enum SendOutcome {
    /// The provider took the message. This is not delivery; that arrives as a
    /// [`StatusUpdate`].
    Accepted { provider_message_id: String },
    /// 4xx that must never be retried (bad request, auth, window closed ...)
    Rejected { http_status: u16, error: ProviderError },
    /// timeouts, connection errors, 5xx, 429: retry with back-off; retry_after from the Retry-After header if any
    ///
    /// A timed-out request may still have reached the provider, and the send APIs have
    /// no idempotency key, so a retry can occasionally deliver the message twice.
    Retryable { reason: String, retry_after: Option<std::time::Duration> },
}

/// Why an inbound webhook was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum WebhookError {
    #[error("missing signature header")]
    MissingSignature,
    #[error("signature does not match")]
    BadSignature,
    /// The body is authentic (or unchecked) but not in a shape we understand. The string
    /// is a short reason for logs; it never echoes the payload.
    #[error("malformed payload: {0}")]
    Malformed(String),
}

#[cfg(test)]
mod tests {
    use super::ProviderError;

    fn error(code: &str) -> ProviderError {
        ProviderError { code: code.into(), title: "Re-engagement message".into(), detail: None }
    }

    #[test]
    fn every_providers_window_error_maps_to_window_closed() {
        for code in ["131047", "63016", "OUTSIDE_ALLOWED_SENDING_WINDOW"] {
            assert_eq!(error(code).normalized_code(), "window_closed");
            assert!(error(code).reason().contains(code), "the provider's code stays visible");
        }
        assert_eq!(error("131026").normalized_code(), "131026");
        assert_eq!(error("131026").reason(), "Re-engagement message");
    }
}
