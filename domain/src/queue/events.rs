//! What happened in a queue. Names and shapes are stable: they are stored forever.

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use crate::{AgentId, DisplayName, InteractionId};

/// Events of the Queue aggregate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum QueueEvent {
    /// The queue was created.
    QueueCreated {
        /// Display name.
        name: DisplayName,
        /// Offer timeout in seconds.
        offer_timeout_secs: u32,
        /// When.
        at: DateTime<Utc>,
    },
    /// An agent became a member.
    QueueMemberAdded {
        /// The agent.
        agent_id: AgentId,
        /// When.
        at: DateTime<Utc>,
    },
    /// A member started or stopped taking offers.
    QueueAgentAvailabilityChanged {
        /// The agent.
        agent_id: AgentId,
        /// Whether they take offers.
        available: bool,
        /// When.
        at: DateTime<Utc>,
    },
    /// An interaction joined the line.
    InteractionQueued {
        /// The interaction.
        interaction_id: InteractionId,
        /// When.
        at: DateTime<Utc>,
    },
    /// An interaction was offered to an agent.
    OfferMade {
        /// The interaction.
        interaction_id: InteractionId,
        /// The agent.
        agent_id: AgentId,
        /// Which offer of this interaction.
        attempt: u32,
        /// When it lapses.
        expires_at: DateTime<Utc>,
        /// When.
        at: DateTime<Utc>,
    },
    /// The agent took it.
    OfferAccepted {
        /// The interaction.
        interaction_id: InteractionId,
        /// The agent.
        agent_id: AgentId,
        /// Which offer.
        attempt: u32,
        /// When.
        at: DateTime<Utc>,
    },
    /// The agent declined it.
    OfferRejected {
        /// The interaction.
        interaction_id: InteractionId,
        /// The agent.
        agent_id: AgentId,
        /// Which offer.
        attempt: u32,
        /// When.
        at: DateTime<Utc>,
    },
    /// Nobody answered the offer in time.
    OfferTimedOut {
        /// The interaction.
        interaction_id: InteractionId,
        /// The agent.
        agent_id: AgentId,
        /// Which offer.
        attempt: u32,
        /// When.
        at: DateTime<Utc>,
    },
    /// The interaction left the line without being accepted.
    InteractionLeftQueue {
        /// The interaction.
        interaction_id: InteractionId,
        /// When.
        at: DateTime<Utc>,
    },
}

impl DomainEvent for QueueEvent {
    fn event_type(&self) -> String {
        match self {
            Self::QueueCreated { .. } => "QueueCreated",
            Self::QueueMemberAdded { .. } => "QueueMemberAdded",
            Self::QueueAgentAvailabilityChanged { .. } => "QueueAgentAvailabilityChanged",
            Self::InteractionQueued { .. } => "InteractionQueued",
            Self::OfferMade { .. } => "OfferMade",
            Self::OfferAccepted { .. } => "OfferAccepted",
            Self::OfferRejected { .. } => "OfferRejected",
            Self::OfferTimedOut { .. } => "OfferTimedOut",
            Self::InteractionLeftQueue { .. } => "InteractionLeftQueue",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1.0".to_owned()
    }
}
