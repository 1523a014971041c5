//! What happened to an account. Names and shapes are stable: they are stored forever.

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use super::{AccountDetails, ProviderSettings, ProxyToken};
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
        /// Description, phone, default list, public domain (absent in accounts created
        /// before they existed).
        #[serde(default)]
        details: AccountDetails,
        /// The proxy token (absent in accounts created before it existed).
        #[serde(default)]
        proxy_token: Option<ProxyToken>,
        /// When.
        at: DateTime<Utc>,
    },
    /// The display name changed.
    AccountRenamed {
        /// New name.
        name: DisplayName,
        /// When.
        at: DateTime<Utc>,
    },
    /// The key changed.
    AccountKeyChanged {
        /// New key.
        key: AccountKey,
        /// When.
        at: DateTime<Utc>,
    },
    /// The details changed (all of them, as they now are).
    AccountDetailsChanged {
        /// New details.
        details: AccountDetails,
        /// When.
        at: DateTime<Utc>,
    },
    /// The provider credentials were replaced (same provider type).
    ProviderCredentialsReplaced {
        /// New settings, secrets sealed.
        provider: ProviderSettings,
        /// When.
        at: DateTime<Utc>,
    },
    /// The same credentials were sealed again with the current key.
    ProviderCredentialsResealed {
        /// The settings, secrets sealed with the current key.
        provider: ProviderSettings,
        /// When.
        at: DateTime<Utc>,
    },
    /// The account was deleted.
    AccountDeleted {
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
            Self::AccountRenamed { .. } => "AccountRenamed",
            Self::AccountKeyChanged { .. } => "AccountKeyChanged",
            Self::AccountDetailsChanged { .. } => "AccountDetailsChanged",
            Self::ProviderCredentialsReplaced { .. } => "ProviderCredentialsReplaced",
            Self::ProviderCredentialsResealed { .. } => "ProviderCredentialsResealed",
            Self::AccountDeleted { .. } => "AccountDeleted",
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
