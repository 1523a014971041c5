//! Which aggregates the audit endpoints cover, and the state of one at an instant: its events
//! up to a sequence, a global position or a recorded time, folded with the aggregate's own
//! `apply` (the same code the actors run), so the answer is what the system believed then.

use cqrs_es::Aggregate;
use serde::Serialize;
use serde_json::Value;
use switchboard_domain::account::Account;
use switchboard_domain::agent::Agent;
use switchboard_domain::directory::{ContactCard, ContactList};
use switchboard_domain::interaction::Interaction;
use switchboard_domain::queue::Queue;

use super::events::RawEvent;

/// An aggregate kind as named in audit paths (`/api/audit/{kind}/{id}/...`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `interactions`
    Interactions,
    /// `agents`
    Agents,
    /// `queues`
    Queues,
    /// `accounts`
    Accounts,
    /// `contact-lists`
    ContactLists,
    /// `contact-cards`
    ContactCards,
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 6] = [
        Kind::Interactions,
        Kind::Agents,
        Kind::Queues,
        Kind::Accounts,
        Kind::ContactLists,
        Kind::ContactCards,
    ];

    /// From its path segment.
    pub fn parse(segment: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.segment() == segment)
    }

    /// Its path segment.
    pub fn segment(self) -> &'static str {
        match self {
            Kind::Interactions => "interactions",
            Kind::Agents => "agents",
            Kind::Queues => "queues",
            Kind::Accounts => "accounts",
            Kind::ContactLists => "contact-lists",
            Kind::ContactCards => "contact-cards",
        }
    }

    /// The stored `aggregate_type`.
    pub fn aggregate_type(self) -> &'static str {
        match self {
            Kind::Interactions => Interaction::TYPE,
            Kind::Agents => Agent::TYPE,
            Kind::Queues => Queue::TYPE,
            Kind::Accounts => Account::TYPE,
            Kind::ContactLists => ContactList::TYPE,
            Kind::ContactCards => ContactCard::TYPE,
        }
    }

    /// The state after folding `events` (in sequence order), as JSON; account secrets are
    /// masked as in the account history.
    pub fn fold(self, events: &[RawEvent]) -> Result<Value, ReplayError> {
        match self {
            Kind::Interactions => fold::<Interaction>(events).map(|s| json(&s)),
            Kind::Agents => fold::<Agent>(events).map(|s| json(&s)),
            Kind::Queues => fold::<Queue>(events).map(|s| json(&s)),
            Kind::Accounts => fold::<Account>(events).map(|mut s| {
                s.provider = s.provider.as_ref().map(|p| p.masked());
                json(&s)
            }),
            Kind::ContactLists => fold::<ContactList>(events).map(|s| json(&s)),
            Kind::ContactCards => fold::<ContactCard>(events).map(|s| json(&s)),
        }
    }
}

/// A stored event that no longer decodes as its aggregate's event.
#[derive(Debug, thiserror::Error)]
#[error("event #{sequence} cannot be decoded: {source}")]
pub struct ReplayError {
    /// Its sequence.
    pub sequence: i64,
    /// Why.
    pub source: serde_json::Error,
}

fn json<T: Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// Folds events into a fresh aggregate with its own `apply`.
pub fn fold<A: Aggregate + Default>(events: &[RawEvent]) -> Result<A, ReplayError> {
    let mut state = A::default();
    for e in events {
        let event: A::Event = serde_json::from_value(e.payload.clone())
            .map_err(|source| ReplayError { sequence: e.sequence, source })?;
        state.apply(event);
    }
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_through_their_segment() {
        for k in Kind::ALL {
            assert_eq!(Kind::parse(k.segment()), Some(k));
        }
        assert_eq!(Kind::parse("contacts"), None);
    }
}
