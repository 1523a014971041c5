//! The account's descriptive settings (seed: phone, description, default list, "Proxy or
//! Motion Domain") and the proxy token, each a parsed value so the aggregate never holds an
//! invalid one.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{ContactListId, PhoneNumber};

/// Why an account field was refused; each variant names its field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountFieldError {
    /// The description is too long.
    #[error("`description` must be at most {max} characters", max = AccountDescription::MAX_CHARS)]
    Description,
    /// The public domain is not an http(s) base URL.
    #[error(
        "`public_domain` must be an http(s) base URL (scheme, host, optional port and path; no query, \
         fragment or credentials) of at most {max} characters",
        max = PublicDomain::MAX_CHARS
    )]
    PublicDomain,
}

impl AccountFieldError {
    /// The field at fault, as the API spells it.
    pub fn field(&self) -> &'static str {
        match self {
            Self::Description => "description",
            Self::PublicDomain => "public_domain",
        }
    }
}

/// A free description, at most 500 characters (trimmed; an empty one means "none" and is
/// handled by the caller as a clear).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AccountDescription(String);

impl AccountDescription {
    /// The longest accepted description.
    pub const MAX_CHARS: usize = 500;

    /// Parses a trimmed description of 1 to 500 characters.
    pub fn parse(s: &str) -> Result<Self, AccountFieldError> {
        let v = s.trim();
        if v.is_empty() || v.chars().count() > Self::MAX_CHARS {
            return Err(AccountFieldError::Description);
        }
        Ok(Self(v.to_owned()))
    }
}

impl AsRef<str> for AccountDescription {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for AccountDescription {
    type Error = AccountFieldError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<AccountDescription> for String {
    fn from(v: AccountDescription) -> Self {
        v.0
    }
}

/// The base URL providers reach this account at (seed: "Proxy or Motion Domain"): the receive
/// URL is derived from it. `http(s)://host[:port][/path]`, stored without a trailing slash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PublicDomain(String);

impl PublicDomain {
    /// The longest accepted URL.
    pub const MAX_CHARS: usize = 255;

    /// Parses an http(s) base URL.
    pub fn parse(s: &str) -> Result<Self, AccountFieldError> {
        let v = s.trim().trim_end_matches('/');
        let rest = v.strip_prefix("https://").or_else(|| v.strip_prefix("http://"));
        let host = rest.map(|r| r.split('/').next().unwrap_or_default()).unwrap_or_default();
        let ok = rest.is_some()
            && v.len() <= Self::MAX_CHARS
            && !host.is_empty()
            && !host.starts_with(':')
            && host.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
            && v.bytes().all(|b| b.is_ascii_graphic() && !b"?#@\\\"<>`{}|^".contains(&b));
        if ok { Ok(Self(v.to_owned())) } else { Err(AccountFieldError::PublicDomain) }
    }
}

impl AsRef<str> for PublicDomain {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PublicDomain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for PublicDomain {
    type Error = AccountFieldError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<PublicDomain> for String {
    fn from(v: PublicDomain) -> Self {
        v.0
    }
}

/// The token identifying this account to a proxy (seed: "auto generated and impossible to
/// change"): generated once by the caller at creation; no command changes it. It is an
/// identifier, not a provider secret, so reads show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ProxyToken(pub String);

impl fmt::Display for ProxyToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The account's descriptive settings. Every field is optional: accounts recorded before
/// they existed decode with none.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountDetails {
    /// A free description.
    #[serde(default)]
    pub description: Option<AccountDescription>,
    /// The solution provider's phone number (E.164).
    #[serde(default)]
    pub phone: Option<PhoneNumber>,
    /// The list new WhatsApp contacts are saved to (must exist when set; checked by the caller).
    #[serde(default)]
    pub default_list: Option<ContactListId>,
    /// Base URL of the receive URL; `None`: the server's public URL.
    #[serde(default)]
    pub public_domain: Option<PublicDomain>,
}

/// A partial change of the details: `None` leaves a field as it is, `Some(None)` clears it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DetailsPatch {
    /// New description.
    pub description: Option<Option<AccountDescription>>,
    /// New phone.
    pub phone: Option<Option<PhoneNumber>>,
    /// New default list.
    pub default_list: Option<Option<ContactListId>>,
    /// New public domain.
    pub public_domain: Option<Option<PublicDomain>>,
}

impl DetailsPatch {
    /// Whether it changes nothing at all.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// The details with this patch applied.
    pub fn applied_to(&self, details: &AccountDetails) -> AccountDetails {
        AccountDetails {
            description: self.description.clone().unwrap_or_else(|| details.description.clone()),
            phone: self.phone.clone().unwrap_or_else(|| details.phone.clone()),
            default_list: self.default_list.unwrap_or(details.default_list),
            public_domain: self.public_domain.clone().unwrap_or_else(|| details.public_domain.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_are_bounded() {
        assert_eq!(
            AccountDescription::parse("  Main line ").map(String::from).ok().as_deref(),
            Some("Main line")
        );
        assert_eq!(AccountDescription::parse("   "), Err(AccountFieldError::Description));
        assert!(AccountDescription::parse(&"x".repeat(500)).is_ok());
        assert_eq!(AccountDescription::parse(&"x".repeat(501)), Err(AccountFieldError::Description));
    }

    #[test]
    fn public_domains_are_http_base_urls() {
        for ok in ["https://chat.example.com", "http://127.0.0.1:8080/", "https://proxy.example.com:443/sb"] {
            assert!(PublicDomain::parse(ok).is_ok(), "{ok}");
        }
        assert_eq!(
            PublicDomain::parse("https://x.example/").map(String::from).ok().as_deref(),
            Some("https://x.example")
        );
        for bad in [
            "",
            "chat.example.com",
            "ftp://x",
            "https://",
            "https://:443",
            "https://a b",
            "https://x?y=1",
            "https://x#f",
            "https://user:pw@x",
        ] {
            assert_eq!(PublicDomain::parse(bad), Err(AccountFieldError::PublicDomain), "{bad}");
        }
        assert!(PublicDomain::parse(&format!("https://{}", "a".repeat(250))).is_err());
    }

    #[test]
    fn a_patch_changes_only_what_it_names() {
        let before = AccountDetails {
            description: Some(AccountDescription::parse("d").expect("valid")),
            phone: Some(PhoneNumber::parse("+15550001111").expect("valid")),
            ..AccountDetails::default()
        };
        let patch = DetailsPatch { description: Some(None), ..DetailsPatch::default() };
        let after = patch.applied_to(&before);
        assert_eq!(after.description, None);
        assert_eq!(after.phone, before.phone);
        assert!(DetailsPatch::default().is_empty() && !patch.is_empty());
    }
}
