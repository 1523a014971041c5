//! What an agent (or an administrator, for registration) can ask of an agent.

use chrono::{DateTime, Utc};

use crate::{DisplayName, QueueId};

/// Commands on the Agent aggregate.
#[derive(Debug, Clone, PartialEq)]
pub enum AgentCommand {
    /// Create the agent.
    Register {
        /// Display name.
        name: DisplayName,
        /// When.
        at: DateTime<Utc>,
    },
    /// Come online (paused).
    LogIn {
        /// When.
        at: DateTime<Utc>,
    },
    /// Start receiving offers.
    MarkReady {
        /// When.
        at: DateTime<Utc>,
    },
    /// Stop receiving offers.
    Pause {
        /// Optional reason shown to supervisors.
        reason: Option<String>,
        /// When.
        at: DateTime<Utc>,
    },
    /// An offer to this agent lapsed unanswered: pause them if they are still ready since
    /// before it lapsed (they are probably away).
    MissOffer {
        /// When the offer timed out.
        timed_out_at: DateTime<Utc>,
        /// When.
        at: DateTime<Utc>,
    },
    /// Go offline.
    LogOut {
        /// When.
        at: DateTime<Utc>,
    },
    /// Become a member of a queue.
    JoinQueue {
        /// The queue.
        queue_id: QueueId,
        /// When.
        at: DateTime<Utc>,
    },
}
