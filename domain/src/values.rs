//! Value objects that can only be built valid (parse, don't validate).
//!
//! Each type has a private field and a `parse` constructor; serde goes through the same
//! `parse` (`try_from = "String"`), so neither an API request nor an event read back from the
//! store can smuggle in an invalid value.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a value was refused. The variants are stable: the API maps them to error codes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// Not an E.164 number (`+` then 8 to 15 digits, no leading zero).
    #[error("`{0}` is not an E.164 phone number (expected + and 8 to 15 digits)")]
    InvalidPhoneNumber(String),
    /// An account key must be 1 to 5 ASCII letters or digits.
    #[error("`{0}` is not an account key (1 to 5 letters or digits)")]
    InvalidAccountKey(String),
    /// A required text was empty (after trimming) or too long.
    #[error("{field} must be 1 to {max} characters")]
    InvalidText {
        /// Which kind of text.
        field: &'static str,
        /// Its maximum length in characters.
        max: usize,
    },
}

/// A phone number in E.164 form, always with the leading `+`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PhoneNumber(String);

impl PhoneNumber {
    /// Parses `+` followed by 8 to 15 digits whose first digit is not 0.
    ///
    /// Providers that send bare digits (Meta's `wa_id`) are normalised by their adapter before
    /// reaching the domain, so this accepts only one spelling and equality is exact.
    pub fn parse(s: &str) -> Result<Self, ValueError> {
        let digits = s.strip_prefix('+').ok_or_else(|| ValueError::InvalidPhoneNumber(s.to_owned()))?;
        let ok = (8..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0');
        if ok { Ok(Self(s.to_owned())) } else { Err(ValueError::InvalidPhoneNumber(s.to_owned())) }
    }

    /// The digits without the `+` (the form Meta's `wa_id` uses).
    pub fn digits(&self) -> &str {
        &self.0[1..]
    }
}

impl AsRef<str> for PhoneNumber {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for PhoneNumber {
    type Error = ValueError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<PhoneNumber> for String {
    fn from(p: PhoneNumber) -> Self {
        p.0
    }
}

/// The short key (1 to 5 letters or digits) shown on agents' tabs for an account.
///
/// Stored upper-case so `ab1` and `AB1` are the same key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AccountKey(String);

impl AccountKey {
    /// Parses 1 to 5 ASCII alphanumerics.
    pub fn parse(s: &str) -> Result<Self, ValueError> {
        let ok = (1..=5).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric());
        if ok { Ok(Self(s.to_ascii_uppercase())) } else { Err(ValueError::InvalidAccountKey(s.to_owned())) }
    }
}

impl AsRef<str> for AccountKey {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AccountKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for AccountKey {
    type Error = ValueError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<AccountKey> for String {
    fn from(k: AccountKey) -> Self {
        k.0
    }
}

macro_rules! bounded_text {
    ($(#[$doc:meta])* $name:ident, $field:literal, $max:expr, trim = $trim:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// The longest accepted value, in characters.
            pub const MAX_CHARS: usize = $max;

            /// Parses a non-empty text of at most `MAX_CHARS` characters.
            pub fn parse(s: &str) -> Result<Self, ValueError> {
                let v = if $trim { s.trim() } else { s };
                if v.trim().is_empty() || v.chars().count() > Self::MAX_CHARS {
                    return Err(ValueError::InvalidText { field: $field, max: Self::MAX_CHARS });
                }
                Ok(Self(v.to_owned()))
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl TryFrom<String> for $name {
            type Error = ValueError;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                Self::parse(&s)
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> Self {
                v.0
            }
        }
    };
}

bounded_text!(
    /// A human-readable name (account, queue, agent): trimmed, 1 to 100 characters.
    DisplayName,
    "name",
    100,
    trim = true
);
bounded_text!(
    /// A WhatsApp text body: 1 to 4096 characters (WhatsApp's own limit), kept verbatim.
    MessageText,
    "text",
    4096,
    trim = false
);
bounded_text!(
    /// A disposition (wrap-up) code chosen when an interaction is finished: 1 to 64 characters.
    DispositionCode,
    "disposition",
    64,
    trim = true
);

bounded_text!(
    /// Why an agent is paused ("Lunch", "Wrap-up", "missed offer"): 1 to 64 characters.
    PauseReason,
    "pause_reason",
    64,
    trim = true
);
bounded_text!(
    /// A tag on an interaction, set by an agent or a routing step: 1 to 50 characters.
    Tag,
    "tag",
    50,
    trim = true
);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn phone_numbers_must_be_e164() {
        assert!(PhoneNumber::parse("+15551234567").is_ok());
        assert!(PhoneNumber::parse("+4930123456").is_ok());
        for bad in [
            "15551234567",
            "+",
            "+0123456789",
            "+1555123",
            "+1234567890123456",
            "+1555 1234567",
            "",
            "+1555123456a",
        ] {
            assert_eq!(PhoneNumber::parse(bad), Err(ValueError::InvalidPhoneNumber(bad.to_owned())), "{bad}");
        }
    }

    #[test]
    fn phone_numbers_deserialise_only_when_valid() {
        assert!(serde_json::from_str::<PhoneNumber>("\"+15551234567\"").is_ok());
        assert!(serde_json::from_str::<PhoneNumber>("\"555\"").is_err());
    }

    #[test]
    fn account_keys_are_one_to_five_alphanumerics_upper_cased() {
        assert_eq!(AccountKey::parse("ab1").map(String::from), Ok("AB1".to_owned()));
        assert!(AccountKey::parse("ABCDE").is_ok());
        for bad in ["", "ABCDEF", "A-B", "ä", "A B"] {
            assert!(AccountKey::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn texts_are_bounded() {
        assert!(MessageText::parse("hi").is_ok());
        assert!(MessageText::parse("   ").is_err());
        assert!(MessageText::parse(&"x".repeat(4096)).is_ok());
        assert!(MessageText::parse(&"x".repeat(4097)).is_err());
        assert_eq!(DisplayName::parse("  Sales ").map(String::from), Ok("Sales".to_owned()));
        assert!(DispositionCode::parse("").is_err());
    }

    proptest! {
        #[test]
        fn every_plus_and_8_to_15_digits_not_starting_with_0_is_a_phone(d in "[1-9][0-9]{7,14}") {
            let p = PhoneNumber::parse(&format!("+{d}")).expect("valid");
            prop_assert_eq!(p.digits(), d.as_str());
        }

        #[test]
        fn phone_parse_never_panics(s in "\\PC*") {
            let _ = PhoneNumber::parse(&s);
        }
    }
}
