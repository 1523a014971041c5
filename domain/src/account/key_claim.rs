//! Account keys are unique across accounts: each key is claimed by one account through its
//! own small aggregate (id: the key, upper-cased), so two admins creating accounts with the
//! same key at once cannot both win (the event store's optimistic concurrency decides).
//!
//! SKELETON: the variants below are placeholders to be replaced by the accounts' owner.

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use crate::{Decider, DisplayName};

/// Commands on a key claim.
#[derive(Debug, Clone, PartialEq)]
pub enum AccountKeyClaimCommand {
    /// Create the list.
    Create {
        /// Name.
        name: DisplayName,
        /// When.
        at: DateTime<Utc>,
    },
}

/// Events of a key claim.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AccountKeyClaimEvent {
    /// The list was created.
    AccountKeyClaimed {
        /// Name.
        name: DisplayName,
        /// When.
        at: DateTime<Utc>,
    },
}

impl DomainEvent for AccountKeyClaimEvent {
    fn event_type(&self) -> String {
        match self {
            Self::AccountKeyClaimed { .. } => "AccountKeyClaimed",
        }
        .to_owned()
    }
    fn event_version(&self) -> String {
        "1.0".to_owned()
    }
}

/// Why a key-claim command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountKeyClaimError {
    /// Create on a list that exists.
    #[error("the key is taken")]
    AlreadyExists,
}

/// A key claim's state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AccountKeyClaim {
    /// Name, once created.
    pub name: Option<DisplayName>,
}

impl AccountKeyClaim {
    fn fold(&mut self, event: AccountKeyClaimEvent) {
        match event {
            AccountKeyClaimEvent::AccountKeyClaimed { name, .. } => self.name = Some(name),
        }
    }
}

impl Decider for AccountKeyClaim {
    fn decide(
        &self,
        command: AccountKeyClaimCommand,
    ) -> Result<Vec<AccountKeyClaimEvent>, AccountKeyClaimError> {
        match command {
            AccountKeyClaimCommand::Create { name, at } => {
                if self.name.is_some() {
                    return Err(AccountKeyClaimError::AlreadyExists);
                }
                Ok(vec![AccountKeyClaimEvent::AccountKeyClaimed { name, at }])
            }
        }
    }
}

crate::impl_aggregate!(
    AccountKeyClaim,
    "AccountKeyClaim",
    AccountKeyClaimCommand,
    AccountKeyClaimEvent,
    AccountKeyClaimError
);
