//! What administrators can ask of a queue.

use chrono::{DateTime, Utc};

use crate::DisplayName;
use crate::routing::Strategy;

/// Commands on the Queue aggregate.
#[derive(Debug, Clone, PartialEq)]
pub enum QueueCommand {
    /// Create the queue.
    Create {
        /// Display name.
        name: DisplayName,
        /// Seconds an agent has to accept an offer (1 to 3600).
        offer_timeout_secs: u32,
        /// How members are chosen.
        strategy: Strategy,
        /// Priority against the agent's other queues (0 to 10, higher first).
        weight: u8,
        /// When.
        at: DateTime<Utc>,
    },
    /// Change the routing settings.
    Configure {
        /// Seconds an agent has to accept an offer (1 to 3600).
        offer_timeout_secs: u32,
        /// How members are chosen.
        strategy: Strategy,
        /// Priority (0 to 10).
        weight: u8,
        /// When.
        at: DateTime<Utc>,
    },
}
