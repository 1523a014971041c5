//! The Queue aggregate: a queue's routing settings (offer timeout, strategy, weight).
//!
//! Membership lives on the Agent (`AgentJoinedQueue`); waiting interactions and their offers
//! live on each Interaction; the routing board (`crate::routing::Board`) folds all three and
//! decides offers. See `docs/adr/0011-routing-engine.md`.

mod commands;
mod events;
#[cfg(test)]
mod tests;

pub use commands::QueueCommand;
pub use events::QueueEvent;

use serde::{Deserialize, Serialize};

use crate::routing::Strategy;
use crate::{Decider, DisplayName};

/// The default time an agent has to accept an offer.
pub const DEFAULT_OFFER_TIMEOUT_SECS: u32 = 10;

/// The default weight of a queue (0 to 10).
pub const DEFAULT_WEIGHT: u8 = 5;

/// The highest weight.
pub const MAX_WEIGHT: u8 = 10;

/// Why a queue command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    /// `Create` on a queue that exists.
    #[error("the queue already exists")]
    AlreadyExists,
    /// Any command but `Create` on a queue that does not exist.
    #[error("the queue does not exist")]
    NotFound,
    /// Offer timeouts must be 1 to 3600 seconds.
    #[error("the offer timeout must be 1 to 3600 seconds")]
    InvalidOfferTimeout,
    /// Weights are 0 to 10.
    #[error("the weight must be 0 to 10")]
    InvalidWeight,
}

/// The state folded from a queue's events.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Queue {
    /// Whether `QueueCreated` has happened.
    pub created: bool,
    /// Display name.
    pub name: Option<DisplayName>,
    /// Offer timeout in seconds.
    pub offer_timeout_secs: u32,
    /// How members are chosen.
    pub strategy: Strategy,
    /// Priority against the agent's other queues.
    pub weight: u8,
}

impl Queue {
    fn fold(&mut self, event: QueueEvent) {
        match event {
            QueueEvent::QueueCreated { name, offer_timeout_secs, strategy, weight, .. } => {
                self.created = true;
                self.name = Some(name);
                self.offer_timeout_secs = offer_timeout_secs;
                self.strategy = strategy;
                self.weight = weight;
            }
            QueueEvent::QueueConfigured { offer_timeout_secs, strategy, weight, .. } => {
                self.offer_timeout_secs = offer_timeout_secs;
                self.strategy = strategy;
                self.weight = weight;
            }
        }
    }
}

fn check(offer_timeout_secs: u32, weight: u8) -> Result<(), QueueError> {
    if !(1..=3600).contains(&offer_timeout_secs) {
        return Err(QueueError::InvalidOfferTimeout);
    }
    if weight > MAX_WEIGHT {
        return Err(QueueError::InvalidWeight);
    }
    Ok(())
}

impl Decider for Queue {
    fn decide(&self, command: QueueCommand) -> Result<Vec<QueueEvent>, QueueError> {
        use QueueCommand as C;
        use QueueEvent as E;
        match command {
            C::Create { name, offer_timeout_secs, strategy, weight, at } => {
                if self.created {
                    return Err(QueueError::AlreadyExists);
                }
                check(offer_timeout_secs, weight)?;
                Ok(vec![E::QueueCreated { name, offer_timeout_secs, strategy, weight, at }])
            }
            _ if !self.created => Err(QueueError::NotFound),
            C::Configure { offer_timeout_secs, strategy, weight, at } => {
                check(offer_timeout_secs, weight)?;
                if (offer_timeout_secs, strategy, weight)
                    == (self.offer_timeout_secs, self.strategy, self.weight)
                {
                    return Ok(vec![]);
                }
                Ok(vec![E::QueueConfigured { offer_timeout_secs, strategy, weight, at }])
            }
        }
    }
}

crate::impl_aggregate!(Queue, "Queue", QueueCommand, QueueEvent, QueueError);
