//! What administrators, the router and agents can ask of a queue.

use chrono::{DateTime, Utc};

use crate::{AgentId, DisplayName, InteractionId};

/// Commands on the Queue aggregate.
#[derive(Debug, Clone, PartialEq)]
pub enum QueueCommand {
    /// Create the queue.
    Create {
        /// Display name.
        name: DisplayName,
        /// Seconds an agent has to accept an offer (1 to 3600).
        offer_timeout_secs: u32,
        /// When.
        at: DateTime<Utc>,
    },
    /// Add a member agent, with their current availability.
    AddMember {
        /// The agent.
        agent_id: AgentId,
        /// Whether they take offers now.
        available: bool,
        /// When.
        at: DateTime<Utc>,
    },
    /// A member became ready or stopped being ready.
    SetAgentAvailability {
        /// The agent.
        agent_id: AgentId,
        /// Whether they take offers now.
        available: bool,
        /// When.
        at: DateTime<Utc>,
    },
    /// Put an interaction in line.
    Enqueue {
        /// The interaction.
        interaction_id: InteractionId,
        /// When.
        at: DateTime<Utc>,
    },
    /// The offered agent takes the interaction.
    AcceptOffer {
        /// The interaction.
        interaction_id: InteractionId,
        /// The agent.
        agent_id: AgentId,
        /// When.
        at: DateTime<Utc>,
    },
    /// The offered agent declines it.
    RejectOffer {
        /// The interaction.
        interaction_id: InteractionId,
        /// The agent.
        agent_id: AgentId,
        /// When.
        at: DateTime<Utc>,
    },
    /// An offer's timer fired.
    ExpireOffer {
        /// The interaction.
        interaction_id: InteractionId,
        /// Which offer the timer was for.
        attempt: u32,
        /// When.
        at: DateTime<Utc>,
    },
    /// The interaction no longer needs an agent (e.g. it was closed while waiting).
    Dequeue {
        /// The interaction.
        interaction_id: InteractionId,
        /// When.
        at: DateTime<Utc>,
    },
}
