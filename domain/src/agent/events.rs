//! What happened to an agent. Names and shapes are stable: they are stored forever.

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use crate::{DisplayName, InteractionId, PauseReason, QueueId};

/// Events of the Agent aggregate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AgentEvent {
    /// The agent was created.
    AgentRegistered {
        /// Display name.
        name: DisplayName,
        /// When.
        at: DateTime<Utc>,
    },
    /// The agent came online (paused).
    AgentLoggedIn {
        /// When.
        at: DateTime<Utc>,
    },
    /// The agent accepts offers.
    AgentBecameReady {
        /// When.
        at: DateTime<Utc>,
    },
    /// The agent stopped accepting offers.
    AgentPaused {
        /// Optional reason.
        reason: Option<PauseReason>,
        /// When.
        at: DateTime<Utc>,
    },
    /// The agent went offline.
    AgentLoggedOut {
        /// When.
        at: DateTime<Utc>,
    },
    /// The agent became a member of a queue.
    AgentJoinedQueue {
        /// The queue.
        queue_id: QueueId,
        /// When.
        at: DateTime<Utc>,
    },
    /// The agent left a queue.
    AgentLeftQueue {
        /// The queue.
        queue_id: QueueId,
        /// When.
        at: DateTime<Utc>,
    },
    /// The agent's capacity changed.
    AgentCapacitySet {
        /// Concurrent interactions.
        capacity: u32,
        /// When.
        at: DateTime<Utc>,
    },
    /// A websocket of the agent connected (the agent is reachable).
    AgentConnected {
        /// The connection.
        connection_id: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// The agent's latest websocket dropped; a grace period runs.
    AgentDisconnected {
        /// The connection.
        connection_id: String,
        /// The end of the grace period.
        reconnect_by: DateTime<Utc>,
        /// When.
        at: DateTime<Utc>,
    },
    /// The grace period passed without a reconnect: no offers until they come back.
    AgentUnreachable {
        /// The connection that dropped.
        connection_id: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// The agent began disposing an interaction (mandatory disposition).
    AgentWrapUpStarted {
        /// The interaction.
        interaction_id: InteractionId,
        /// Whether the agent was ready (and so is made ready again afterwards).
        was_ready: bool,
        /// When.
        at: DateTime<Utc>,
    },
    /// The agent finished disposing.
    AgentWrapUpEnded {
        /// The interaction.
        interaction_id: InteractionId,
        /// When.
        at: DateTime<Utc>,
    },
}

impl DomainEvent for AgentEvent {
    fn event_type(&self) -> String {
        match self {
            Self::AgentRegistered { .. } => "AgentRegistered",
            Self::AgentLoggedIn { .. } => "AgentLoggedIn",
            Self::AgentBecameReady { .. } => "AgentBecameReady",
            Self::AgentPaused { .. } => "AgentPaused",
            Self::AgentLoggedOut { .. } => "AgentLoggedOut",
            Self::AgentJoinedQueue { .. } => "AgentJoinedQueue",
            Self::AgentLeftQueue { .. } => "AgentLeftQueue",
            Self::AgentCapacitySet { .. } => "AgentCapacitySet",
            Self::AgentConnected { .. } => "AgentConnected",
            Self::AgentDisconnected { .. } => "AgentDisconnected",
            Self::AgentUnreachable { .. } => "AgentUnreachable",
            Self::AgentWrapUpStarted { .. } => "AgentWrapUpStarted",
            Self::AgentWrapUpEnded { .. } => "AgentWrapUpEnded",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1.0".to_owned()
    }
}
