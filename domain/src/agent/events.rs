//! What happened to an agent. Names and shapes are stable: they are stored forever.

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use crate::{DisplayName, QueueId};

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
        reason: Option<String>,
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
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1.0".to_owned()
    }
}
