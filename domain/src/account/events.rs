//! What happened to an account. Names and shapes are stable: they are stored forever.

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use super::ProviderSettings;
use crate::{AccountKey, AgentId, DisplayName, QueueId};

/// Events of the Account aggregate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
// Accounts are created rarely; boxing the provider settings would only complicate matching.
#[allow(clippy::large_enum_variant)]
pub enum AccountEvent {
    /// A business number was connected.
    AccountCreated {
        /// Display name.
        name: DisplayName,
        /// Short key.
        key: AccountKey,
        /// Provider settings, secrets sealed.
        provider: ProviderSettings,
        /// When.
        at: DateTime<Utc>,
    },
    /// An agent may now work this account.
    AgentAddedToAccount {
        /// The agent.
        agent_id: AgentId,
        /// When.
        at: DateTime<Utc>,
    },
    /// An agent may no longer work this account.
    AgentRemovedFromAccount {
        /// The agent.
        agent_id: AgentId,
        /// When.
        at: DateTime<Utc>,
    },
    /// New interactions now go to this queue.
    RoutingQueueSet {
        /// The queue.
        queue_id: QueueId,
        /// When.
        at: DateTime<Utc>,
    },
    /// The recontact template changed (`None`: cleared).
    RecontactTemplateSet {
        /// The template.
        template: Option<crate::interaction::TemplateMessage>,
        /// When.
        at: DateTime<Utc>,
    },
    /// The routing plan changed.
    RoutingPlanSet {
        /// The new plan.
        plan: crate::routing::RoutingPlan,
        /// When.
        at: DateTime<Utc>,
    },
    /// The channel rules changed.
    ChannelRulesSet {
        /// The new rules.
        rules: crate::routing::ChannelRules,
        /// When.
        at: DateTime<Utc>,
    },
    /// The whitelist changed.
    WhitelistSet {
        /// The new whitelist.
        whitelist: super::Whitelist,
        /// When.
        at: DateTime<Utc>,
    },
    /// The offer notification settings changed.
    NotificationSet {
        /// The new settings.
        notification: super::NotificationSettings,
        /// When.
        at: DateTime<Utc>,
    },
}

impl DomainEvent for AccountEvent {
    fn event_type(&self) -> String {
        match self {
            Self::AccountCreated { .. } => "AccountCreated",
            Self::AgentAddedToAccount { .. } => "AgentAddedToAccount",
            Self::AgentRemovedFromAccount { .. } => "AgentRemovedFromAccount",
            Self::RoutingQueueSet { .. } => "RoutingQueueSet",
            Self::RecontactTemplateSet { .. } => "RecontactTemplateSet",
            Self::RoutingPlanSet { .. } => "RoutingPlanSet",
            Self::ChannelRulesSet { .. } => "ChannelRulesSet",
            Self::WhitelistSet { .. } => "WhitelistSet",
            Self::NotificationSet { .. } => "NotificationSet",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1.0".to_owned()
    }
}
