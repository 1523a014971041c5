//! Account keys are unique across accounts: each key is claimed by one account through its
//! own small aggregate (id: the key, upper-cased, see [`claim_id`]), so two admins creating
//! accounts with the same key at once cannot both win (the event store's optimistic
//! concurrency decides). Keys are compared case-insensitively because the id is upper-cased.

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use crate::{AccountId, AccountKey, Decider};

/// The claim aggregate's id for a key: the key upper-cased (`AccountKey` already is; this
/// keeps the rule in one place).
pub fn claim_id(key: &AccountKey) -> String {
    key.as_ref().to_ascii_uppercase()
}

/// Commands on a key claim.
#[derive(Debug, Clone, PartialEq)]
pub enum AccountKeyClaimCommand {
    /// Reserve the key for an account (idempotent for the holder).
    Claim {
        /// The claiming account.
        account_id: AccountId,
        /// When.
        at: DateTime<Utc>,
    },
    /// Give the key up (only the holder's release records anything).
    Release {
        /// The releasing account.
        account_id: AccountId,
        /// When.
        at: DateTime<Utc>,
    },
}

/// Events of a key claim.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AccountKeyClaimEvent {
    /// The key now belongs to this account.
    AccountKeyClaimed {
        /// The holder.
        account_id: AccountId,
        /// When.
        at: DateTime<Utc>,
    },
    /// The key is free again.
    AccountKeyReleased {
        /// The former holder.
        account_id: AccountId,
        /// When.
        at: DateTime<Utc>,
    },
}

impl DomainEvent for AccountKeyClaimEvent {
    fn event_type(&self) -> String {
        match self {
            Self::AccountKeyClaimed { .. } => "AccountKeyClaimed",
            Self::AccountKeyReleased { .. } => "AccountKeyReleased",
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
    /// Another account holds the key.
    #[error("the key is already used by another account")]
    KeyTaken,
}

/// A key claim's state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AccountKeyClaim {
    /// The account holding the key, if any.
    pub holder: Option<AccountId>,
}

impl AccountKeyClaim {
    fn fold(&mut self, event: AccountKeyClaimEvent) {
        match event {
            AccountKeyClaimEvent::AccountKeyClaimed { account_id, .. } => self.holder = Some(account_id),
            AccountKeyClaimEvent::AccountKeyReleased { .. } => self.holder = None,
        }
    }
}

impl Decider for AccountKeyClaim {
    fn decide(
        &self,
        command: AccountKeyClaimCommand,
    ) -> Result<Vec<AccountKeyClaimEvent>, AccountKeyClaimError> {
        match command {
            AccountKeyClaimCommand::Claim { account_id, at } => match self.holder {
                Some(holder) if holder == account_id => Ok(vec![]),
                Some(_) => Err(AccountKeyClaimError::KeyTaken),
                None => Ok(vec![AccountKeyClaimEvent::AccountKeyClaimed { account_id, at }]),
            },
            AccountKeyClaimCommand::Release { account_id, at } => Ok(if self.holder == Some(account_id) {
                vec![AccountKeyClaimEvent::AccountKeyReleased { account_id, at }]
            } else {
                vec![]
            }),
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

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use cqrs_es::test::TestFramework;

    use super::*;

    type Given = TestFramework<AccountKeyClaim>;

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 5, 10, 0, 0).single().expect("valid date")
    }

    #[test]
    fn a_free_key_is_claimed_and_a_held_one_refused_to_others() {
        let (a, b) = (AccountId::new(), AccountId::new());
        let claimed = AccountKeyClaimEvent::AccountKeyClaimed { account_id: a, at: at() };
        Given::with(())
            .given_no_previous_events()
            .when(AccountKeyClaimCommand::Claim { account_id: a, at: at() })
            .then_expect_events(vec![claimed.clone()]);
        Given::with(())
            .given(vec![claimed.clone()])
            .when(AccountKeyClaimCommand::Claim { account_id: b, at: at() })
            .then_expect_error(AccountKeyClaimError::KeyTaken);
        Given::with(())
            .given(vec![claimed])
            .when(AccountKeyClaimCommand::Claim { account_id: a, at: at() })
            .then_expect_events(vec![]);
    }

    #[test]
    fn only_the_holder_releases_and_a_released_key_is_free() {
        let (a, b) = (AccountId::new(), AccountId::new());
        let claimed = AccountKeyClaimEvent::AccountKeyClaimed { account_id: a, at: at() };
        let released = AccountKeyClaimEvent::AccountKeyReleased { account_id: a, at: at() };
        Given::with(())
            .given(vec![claimed.clone()])
            .when(AccountKeyClaimCommand::Release { account_id: b, at: at() })
            .then_expect_events(vec![]);
        Given::with(())
            .given(vec![claimed.clone()])
            .when(AccountKeyClaimCommand::Release { account_id: a, at: at() })
            .then_expect_events(vec![released.clone()]);
        Given::with(())
            .given(vec![claimed, released])
            .when(AccountKeyClaimCommand::Claim { account_id: b, at: at() })
            .then_expect_events(vec![AccountKeyClaimEvent::AccountKeyClaimed { account_id: b, at: at() }]);
    }

    #[test]
    fn claim_ids_ignore_case() {
        let lower = AccountKey::parse("sup").expect("valid");
        let upper = AccountKey::parse("SUP").expect("valid");
        assert_eq!(claim_id(&lower), claim_id(&upper));
    }
}
