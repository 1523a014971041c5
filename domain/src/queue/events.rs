//! What happened to a queue's configuration. Names and shapes are stable: they are stored
//! forever.

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use super::DEFAULT_WEIGHT;
use crate::DisplayName;
use crate::routing::Strategy;

fn default_weight() -> u8 {
    DEFAULT_WEIGHT
}

/// Events of the Queue aggregate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum QueueEvent {
    /// The queue was created.
    QueueCreated {
        /// Display name.
        name: DisplayName,
        /// Offer timeout in seconds.
        offer_timeout_secs: u32,
        /// How members are chosen.
        #[serde(default)]
        strategy: Strategy,
        /// Priority against the agent's other queues (0 to 10, higher first).
        #[serde(default = "default_weight")]
        weight: u8,
        /// When.
        at: DateTime<Utc>,
    },
    /// The queue's routing settings changed.
    QueueConfigured {
        /// Offer timeout in seconds.
        offer_timeout_secs: u32,
        /// How members are chosen.
        strategy: Strategy,
        /// Priority against the agent's other queues.
        weight: u8,
        /// When.
        at: DateTime<Utc>,
    },
}

impl DomainEvent for QueueEvent {
    fn event_type(&self) -> String {
        match self {
            Self::QueueCreated { .. } => "QueueCreated",
            Self::QueueConfigured { .. } => "QueueConfigured",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1.0".to_owned()
    }
}
