//! What an agent (or an administrator, for registration) can ask of an agent.

use chrono::{DateTime, Utc};

use crate::{DisplayName, InteractionId, PauseReason, QueueId};

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
        reason: Option<PauseReason>,
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
    /// Leave a queue.
    LeaveQueue {
        /// The queue.
        queue_id: QueueId,
        /// When.
        at: DateTime<Utc>,
    },
    /// Set how many interactions the agent handles at once (1 to `MAX_CAPACITY`).
    SetCapacity {
        /// The capacity.
        capacity: u32,
        /// When.
        at: DateTime<Utc>,
    },
    /// A websocket of the agent connected.
    Connect {
        /// The connection's id (one per websocket).
        connection_id: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// The agent's websocket dropped; they stay reachable until `reconnect_by`.
    Disconnect {
        /// The connection's id.
        connection_id: String,
        /// The end of the grace period.
        reconnect_by: DateTime<Utc>,
        /// When.
        at: DateTime<Utc>,
    },
    /// The grace timer of a dropped connection fired: unreachable unless reconnected since.
    ExpireConnectionGrace {
        /// The connection that dropped.
        connection_id: String,
        /// When (never before the grace period's end).
        at: DateTime<Utc>,
    },
    /// The agent opened an interaction's disposition dialog: pause them with `reason`.
    StartWrapUp {
        /// The interaction.
        interaction_id: InteractionId,
        /// The pause applied meanwhile (none: presence unchanged).
        reason: Option<PauseReason>,
        /// When.
        at: DateTime<Utc>,
    },
    /// The interaction was disposed (or closed otherwise): lift the wrap-up pause, restoring
    /// readiness if the agent was ready when it began and has not changed presence since.
    EndWrapUp {
        /// The interaction.
        interaction_id: InteractionId,
        /// When.
        at: DateTime<Utc>,
    },
}
