//! One id type per entity, so an agent id can never be passed where a queue id is expected.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh, time-ordered id (UUIDv7), so ids sort roughly by creation time.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }
            /// Wraps an existing UUID.
            pub fn from_uuid(id: Uuid) -> Self {
                Self(id)
            }
            /// The underlying UUID.
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self(Uuid::nil())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

uuid_id!(
    /// A WhatsApp account: one business number connected through one provider.
    AccountId
);
uuid_id!(
    /// A queue that offers interactions to its member agents.
    QueueId
);
uuid_id!(
    /// An agent (a person who handles interactions).
    AgentId
);
uuid_id!(
    /// One interaction: a conversation with a customer from first message to disposition.
    InteractionId
);
uuid_id!(
    /// One message inside an interaction, inbound or outbound (our id, not the provider's).
    MessageId
);
uuid_id!(
    /// A contact list (the whitelist and routing conditions refer to lists).
    ContactListId
);

uuid_id!(
    /// A contact card in the contact manager (name, phone, email, tags, custom fields).
    ContactCardId
);

uuid_id!(
    /// A disposition in a disposition catalogue (general or an account's).
    DispositionId
);

uuid_id!(
    /// A canned answer in a catalogue (general or an account's).
    CannedAnswerId
);

uuid_id!(
    /// An internal note on an interaction (never sent to the customer).
    NoteId
);

impl MessageId {
    /// The `n`th id derived from `seed`: how pure code that must emit several messages (a
    /// routing plan's automatic replies) gets stable ids from the one fresh id its command
    /// carries. The same seed and `n` always give the same id (UUIDv5).
    pub fn derived(seed: uuid::Uuid, n: u32) -> Self {
        Self(Uuid::new_v5(&seed, &n.to_be_bytes()))
    }
}

/// A customer as seen by one account: the account plus the customer's number.
///
/// Its string form `"{account}:{+e164}"` is the Contact aggregate's id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ContactId {
    /// The account the customer wrote to.
    pub account_id: AccountId,
    /// The customer's number.
    pub phone: crate::PhoneNumber,
}

impl fmt::Display for ContactId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.account_id, self.phone)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_their_string_form() {
        let id = AgentId::new();
        assert_eq!(id.to_string().parse::<AgentId>().ok(), Some(id));
        assert!("not-a-uuid".parse::<QueueId>().is_err());
    }

    #[test]
    fn contact_id_string_form_is_account_then_number() {
        let account_id = AccountId::new();
        let phone = crate::PhoneNumber::parse("+15551234567").expect("valid");
        let id = ContactId { account_id, phone };
        assert_eq!(id.to_string(), format!("{account_id}:+15551234567"));
    }
}
