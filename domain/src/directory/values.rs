//! The contact manager's value objects: emails, custom fields, tag sets, list descriptions.
//! Each is built valid or not at all; the error names the field it is about, so the API can
//! say which part of a request (or which CSV column) was wrong.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{Tag, ValueError};

/// Most custom fields one contact may carry.
pub const MAX_CUSTOM_FIELDS: usize = 50;
/// Longest custom field name, in characters.
pub const MAX_FIELD_NAME_CHARS: usize = 50;
/// Longest custom field value, in characters.
pub const MAX_FIELD_VALUE_CHARS: usize = 500;
/// Most tags one contact may carry.
pub const MAX_CONTACT_TAGS: usize = 20;
/// Longest list description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 500;
/// Longest email address (RFC 5321's path limit).
pub const MAX_EMAIL_CHARS: usize = 254;
/// Names a custom field may not take: the card's own fields (and the CSV columns for them).
pub const RESERVED_FIELD_NAMES: [&str; 4] = ["phone", "name", "email", "tags"];

/// Why a contact-manager value was refused. `field()` names the request field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContactValueError {
    /// A shared value type (phone, name, tag, text) was refused for `field`.
    #[error("`{field}`: {error}")]
    Invalid {
        /// The request field.
        field: String,
        /// Why.
        error: ValueError,
    },
    /// Not an email address.
    #[error("`email`: `{0}` is not an email address")]
    InvalidEmail(String),
    /// A custom field name that is empty, too long, has other characters than letters,
    /// digits, `_` and `-`, or is reserved.
    #[error(
        "custom field name `{0}` must be 1 to 50 letters, digits, `_` or `-`, and not phone, name, email or tags"
    )]
    InvalidFieldName(String),
    /// A custom field value over the limit.
    #[error("custom field `{0}` must be at most 500 characters")]
    FieldValueTooLong(String),
    /// Too many custom fields.
    #[error("`fields`: at most 50 custom fields")]
    TooManyFields,
    /// Too many tags.
    #[error("`tags`: at most 20 tags")]
    TooManyTags,
    /// A list description over the limit.
    #[error("`description` must be at most 500 characters")]
    DescriptionTooLong,
}

impl ContactValueError {
    /// The request field the error is about (`fields.<name>` for a custom field).
    pub fn field(&self) -> String {
        match self {
            Self::Invalid { field, .. } => field.clone(),
            Self::InvalidEmail(_) => "email".into(),
            Self::InvalidFieldName(name) | Self::FieldValueTooLong(name) => format!("fields.{name}"),
            Self::TooManyFields => "fields".into(),
            Self::TooManyTags => "tags".into(),
            Self::DescriptionTooLong => "description".into(),
        }
    }

    /// Wraps a shared value error with the field it was found in.
    pub fn at(field: impl Into<String>, error: ValueError) -> Self {
        Self::Invalid { field: field.into(), error }
    }
}

/// An email address: trimmed, lower-cased domain, one `@` with a non-empty local part and a
/// dotted domain, no spaces, at most 254 characters. (Deliverability is not our business;
/// this catches typos and column mix-ups in imports.)
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl Email {
    /// Parses an address.
    pub fn parse(s: &str) -> Result<Self, ContactValueError> {
        let v = s.trim();
        let bad = || ContactValueError::InvalidEmail(s.to_owned());
        if v.is_empty() || v.chars().count() > MAX_EMAIL_CHARS || v.chars().any(|c| c.is_whitespace()) {
            return Err(bad());
        }
        let (local, domain) = v.split_once('@').ok_or_else(bad)?;
        let domain_ok = !domain.contains('@')
            && domain.contains('.')
            && domain.split('.').all(|label| !label.is_empty() && !label.starts_with('-'));
        if local.is_empty() || !domain_ok {
            return Err(bad());
        }
        Ok(Self(format!("{local}@{}", domain.to_ascii_lowercase())))
    }
}

impl AsRef<str> for Email {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Email {
    type Error = ContactValueError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<Email> for String {
    fn from(e: Email) -> Self {
        e.0
    }
}

/// A contact's custom fields: at most 50, names of 1 to 50 letters, digits, `_` or `-`
/// (not one of the card's own field names), values of 1 to 500 characters (an empty value
/// is no value: it is dropped).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "BTreeMap<String, String>", into = "BTreeMap<String, String>")]
pub struct CustomFields(BTreeMap<String, String>);

impl CustomFields {
    /// Checks a field name.
    pub fn check_name(name: &str) -> Result<(), ContactValueError> {
        let ok = (1..=MAX_FIELD_NAME_CHARS).contains(&name.chars().count())
            && name.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '-')
            && !RESERVED_FIELD_NAMES.contains(&name.to_lowercase().as_str());
        if ok { Ok(()) } else { Err(ContactValueError::InvalidFieldName(name.to_owned())) }
    }

    /// Parses a map of fields.
    pub fn parse(fields: BTreeMap<String, String>) -> Result<Self, ContactValueError> {
        let mut out = BTreeMap::new();
        for (name, value) in fields {
            Self::check_name(&name)?;
            if value.chars().count() > MAX_FIELD_VALUE_CHARS {
                return Err(ContactValueError::FieldValueTooLong(name));
            }
            if !value.trim().is_empty() {
                out.insert(name, value);
            }
        }
        if out.len() > MAX_CUSTOM_FIELDS {
            return Err(ContactValueError::TooManyFields);
        }
        Ok(Self(out))
    }

    /// The fields.
    pub fn as_map(&self) -> &BTreeMap<String, String> {
        &self.0
    }

    /// These fields with `other`'s set over them (an import row adds and overwrites, never
    /// removes).
    pub fn merged(&self, other: &CustomFields) -> Result<Self, ContactValueError> {
        let mut map = self.0.clone();
        map.extend(other.0.iter().map(|(k, v)| (k.clone(), v.clone())));
        Self::parse(map)
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl TryFrom<BTreeMap<String, String>> for CustomFields {
    type Error = ContactValueError;
    fn try_from(map: BTreeMap<String, String>) -> Result<Self, Self::Error> {
        Self::parse(map)
    }
}

impl From<CustomFields> for BTreeMap<String, String> {
    fn from(f: CustomFields) -> Self {
        f.0
    }
}

/// A contact's tags: at most 20.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "BTreeSet<Tag>", into = "BTreeSet<Tag>")]
pub struct ContactTags(BTreeSet<Tag>);

impl ContactTags {
    /// Checks the count.
    pub fn parse(tags: BTreeSet<Tag>) -> Result<Self, ContactValueError> {
        if tags.len() > MAX_CONTACT_TAGS {
            return Err(ContactValueError::TooManyTags);
        }
        Ok(Self(tags))
    }

    /// Parses raw tag texts (each a `Tag`), then checks the count.
    pub fn parse_texts<'a>(raw: impl IntoIterator<Item = &'a str>) -> Result<Self, ContactValueError> {
        let tags = raw
            .into_iter()
            .map(|t| Tag::parse(t).map_err(|e| ContactValueError::at("tags", e)))
            .collect::<Result<BTreeSet<_>, _>>()?;
        Self::parse(tags)
    }

    /// The tags.
    pub fn as_set(&self) -> &BTreeSet<Tag> {
        &self.0
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl TryFrom<BTreeSet<Tag>> for ContactTags {
    type Error = ContactValueError;
    fn try_from(tags: BTreeSet<Tag>) -> Result<Self, Self::Error> {
        Self::parse(tags)
    }
}

impl From<ContactTags> for BTreeSet<Tag> {
    fn from(t: ContactTags) -> Self {
        t.0
    }
}

/// A list's description: trimmed, at most 500 characters (empty means none: use `Option`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ListDescription(String);

impl ListDescription {
    /// Parses a description; an empty text is `None`.
    pub fn parse(s: &str) -> Result<Option<Self>, ContactValueError> {
        let v = s.trim();
        if v.chars().count() > MAX_DESCRIPTION_CHARS {
            return Err(ContactValueError::DescriptionTooLong);
        }
        Ok((!v.is_empty()).then(|| Self(v.to_owned())))
    }
}

impl AsRef<str> for ListDescription {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ListDescription {
    type Error = ContactValueError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)?.ok_or(ContactValueError::DescriptionTooLong)
    }
}

impl From<ListDescription> for String {
    fn from(d: ListDescription) -> Self {
        d.0
    }
}
