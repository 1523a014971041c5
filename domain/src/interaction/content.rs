//! What travels in a message besides text: stored media and approved templates.
//!
//! These are parsed on construction (a `MediaBlob` always names a SHA-256 and a MIME type,
//! a `TemplateMessage` always has a usable name), so events holding them are valid forever.

use serde::{Deserialize, Serialize};

/// Why a media or template value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContentError {
    /// Not 64 lowercase hex digits.
    #[error("not a SHA-256 in lowercase hex")]
    BadDigest,
    /// Not `type/subtype`.
    #[error("not a MIME type (type/subtype)")]
    BadContentType,
    /// Unknown media kind.
    #[error("media kind must be image, audio, video, document or sticker")]
    BadKind,
    /// Empty, too long, or with characters a provider will not take.
    #[error("{0}")]
    BadTemplate(&'static str),
    /// A caption or file name over its limit.
    #[error("{0}")]
    TooLong(&'static str),
}

/// Bytes in the blob store, named by their SHA-256 (so storing twice is a no-op and a
/// download can be checked).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaBlob {
    /// Lowercase hex SHA-256 of the bytes: also the blob's name.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// MIME type, e.g. `image/jpeg`.
    pub content_type: String,
}

impl MediaBlob {
    /// Checks the digest and the MIME type.
    pub fn new(sha256: &str, size: u64, content_type: &str) -> Result<Self, ContentError> {
        if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return Err(ContentError::BadDigest);
        }
        Ok(Self { sha256: sha256.to_owned(), size, content_type: parse_content_type(content_type)? })
    }
}

/// A MIME type's essence (`type/subtype`, lower case, parameters dropped), or an error if it
/// is not one.
pub fn parse_content_type(raw: &str) -> Result<String, ContentError> {
    let content_type = raw.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let valid_part =
        |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b));
    match content_type.split_once('/') {
        Some((t, s)) if valid_part(t) && valid_part(s) => Ok(content_type),
        _ => Err(ContentError::BadContentType),
    }
}

/// The kinds of media WhatsApp carries, as stored in events.
pub const MEDIA_KINDS: [&str; 5] = ["image", "audio", "video", "document", "sticker"];

/// Longest caption WhatsApp accepts.
pub const MAX_CAPTION_CHARS: usize = 1024;
/// Longest file name we pass on.
pub const MAX_FILENAME_CHARS: usize = 240;

/// Media an agent sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboundMedia {
    /// `image`, `audio`, `video`, `document` or `sticker`.
    pub kind: String,
    /// The uploaded bytes.
    pub blob: MediaBlob,
    /// Caption (image, video and document only).
    pub caption: Option<String>,
    /// File name shown for documents.
    pub filename: Option<String>,
}

impl OutboundMedia {
    /// Checks the kind and the lengths; a caption on a kind that cannot carry one is
    /// refused rather than silently dropped.
    pub fn new(
        kind: &str,
        blob: MediaBlob,
        caption: Option<String>,
        filename: Option<String>,
    ) -> Result<Self, ContentError> {
        if !MEDIA_KINDS.contains(&kind) {
            return Err(ContentError::BadKind);
        }
        let caption = caption.filter(|c| !c.trim().is_empty());
        if caption.as_ref().is_some_and(|c| c.chars().count() > MAX_CAPTION_CHARS) {
            return Err(ContentError::TooLong("the caption is longer than 1024 characters"));
        }
        if caption.is_some() && matches!(kind, "audio" | "sticker") {
            return Err(ContentError::TooLong("audio and stickers carry no caption"));
        }
        let filename = filename.map(|f| f.trim().to_owned()).filter(|f| !f.is_empty());
        if filename
            .as_ref()
            .is_some_and(|f| f.chars().count() > MAX_FILENAME_CHARS || f.contains(['/', '\\']))
        {
            return Err(ContentError::TooLong("the file name is longer than 240 characters or has a path"));
        }
        Ok(Self { kind: kind.to_owned(), blob, caption, filename })
    }
}

/// An approved template with its body parameters in order (`{{1}}`, `{{2}}` ...). For
/// Twilio the name is the Content SID (`HX…`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateMessage {
    /// Template name (or Twilio Content SID).
    pub name: String,
    /// Language code as approved, e.g. `en_US`.
    pub language: String,
    /// Body parameters.
    pub parameters: Vec<String>,
}

/// Most body parameters a template can have (Meta's limit is far lower in practice).
pub const MAX_TEMPLATE_PARAMETERS: usize = 100;

impl TemplateMessage {
    /// Names are `[A-Za-z0-9_]` up to 512 characters (Meta's rule; Content SIDs fit it),
    /// languages look like `en` or `en_US`, parameters are non-empty and at most 1024
    /// characters (an empty parameter makes Meta refuse the whole send).
    pub fn new(name: &str, language: &str, parameters: Vec<String>) -> Result<Self, ContentError> {
        let name = name.trim();
        if name.is_empty()
            || name.len() > 512
            || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(ContentError::BadTemplate("the template name must be 1-512 letters, digits or _"));
        }
        let language = language.trim();
        let lang_ok = (2..=15).contains(&language.len())
            && language.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !lang_ok {
            return Err(ContentError::BadTemplate("the language must be a code such as en or en_US"));
        }
        if parameters.len() > MAX_TEMPLATE_PARAMETERS {
            return Err(ContentError::BadTemplate("a template takes at most 100 parameters"));
        }
        if parameters.iter().any(|p| p.trim().is_empty() || p.chars().count() > 1024) {
            return Err(ContentError::BadTemplate("every parameter must have 1-1024 characters"));
        }
        Ok(Self { name: name.to_owned(), language: language.to_owned(), parameters })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    #[test]
    fn a_blob_needs_a_sha256_and_a_mime_type() {
        let blob = MediaBlob::new(SHA, 4, "Image/JPEG; charset=binary").expect("valid");
        assert_eq!(blob.content_type, "image/jpeg");
        assert_eq!(MediaBlob::new(&SHA.to_uppercase(), 4, "image/jpeg"), Err(ContentError::BadDigest));
        assert_eq!(MediaBlob::new("../etc/passwd", 4, "image/jpeg"), Err(ContentError::BadDigest));
        for bad in ["", "image", "image/", "/jpeg", "im age/jpeg", "image/jp\"eg"] {
            assert_eq!(MediaBlob::new(SHA, 4, bad), Err(ContentError::BadContentType), "{bad}");
        }
    }

    #[test]
    fn outbound_media_checks_kind_caption_and_file_name() {
        let blob = || MediaBlob::new(SHA, 4, "image/jpeg").expect("valid");
        assert!(OutboundMedia::new("image", blob(), Some("hi".into()), None).is_ok());
        assert_eq!(OutboundMedia::new("gif", blob(), None, None), Err(ContentError::BadKind));
        assert!(OutboundMedia::new("image", blob(), Some("x".repeat(1025)), None).is_err());
        assert!(OutboundMedia::new("audio", blob(), Some("hi".into()), None).is_err());
        assert!(OutboundMedia::new("document", blob(), None, Some("../x.pdf".into())).is_err());
        let blank = OutboundMedia::new("audio", blob(), Some("  ".into()), Some(" ".into())).expect("blank");
        assert_eq!((blank.caption, blank.filename), (None, None));
    }

    #[test]
    fn templates_need_a_name_a_language_and_real_parameters() {
        assert!(TemplateMessage::new("order_update", "en_US", vec!["Jane".into()]).is_ok());
        assert!(TemplateMessage::new("HXb5b62575e6e4ff6129ad7c8efe1f983e", "en", vec![]).is_ok());
        for (name, lang) in [("", "en"), ("has space", "en"), ("ok", ""), ("ok", "e"), ("ok", "en US")] {
            assert!(TemplateMessage::new(name, lang, vec![]).is_err(), "{name:?} {lang:?}");
        }
        assert!(TemplateMessage::new("ok", "en", vec![" ".into()]).is_err());
        assert!(TemplateMessage::new("ok", "en", vec!["p".into(); 101]).is_err());
    }
}
