//! What an administrator can ask of an account.

use chrono::{DateTime, Utc};

use super::{AccountDetails, DetailsPatch, ProviderSettings, ProxyToken};
use crate::{AccountKey, AgentId, DisplayName, QueueId};

/// Commands on the Account aggregate.
#[derive(Debug, Clone, PartialEq)]
// Accounts are created rarely; boxing the provider settings would only complicate matching.
#[allow(clippy::large_enum_variant)]
pub enum AccountCommand {
    /// Connect a business number.
    Create {
        /// Display name.
        name: DisplayName,
        /// Short key for agents' tabs.
        key: AccountKey,
        /// Provider and its (sealed) credentials.
        provider: ProviderSettings,
        /// Description, phone, default list, public domain.
        details: AccountDetails,
        /// The proxy token, generated once by the caller; no command changes it.
        proxy_token: ProxyToken,
        /// When.
        at: DateTime<Utc>,
    },
    /// Change the display name.
    Rename {
        /// New name.
        name: DisplayName,
        /// When.
        at: DateTime<Utc>,
    },
    /// Change the key (the caller has claimed the new key first).
    ChangeKey {
        /// New key.
        key: AccountKey,
        /// When.
        at: DateTime<Utc>,
    },
    /// Change some of the details.
    ChangeDetails {
        /// What changes.
        patch: DetailsPatch,
        /// When.
        at: DateTime<Utc>,
    },
    /// Replace the provider credentials as a whole; the provider type cannot change.
    ReplaceProvider {
        /// New settings (secrets sealed).
        provider: ProviderSettings,
        /// When.
        at: DateTime<Utc>,
    },
    /// Store the same credentials sealed with the current key (key rotation).
    ResealProvider {
        /// The re-sealed settings; same type and, once opened, same values.
        provider: ProviderSettings,
        /// When.
        at: DateTime<Utc>,
    },
    /// Delete the account (the caller has checked it has no open interactions).
    Delete {
        /// When.
        at: DateTime<Utc>,
    },
    /// Let an agent see and work this account.
    AddAgent {
        /// The agent.
        agent_id: AgentId,
        /// When.
        at: DateTime<Utc>,
    },
    /// Stop an agent from seeing this account.
    RemoveAgent {
        /// The agent.
        agent_id: AgentId,
        /// When.
        at: DateTime<Utc>,
    },
    /// Route new interactions to this queue.
    SetRoutingQueue {
        /// The queue.
        queue_id: QueueId,
        /// When.
        at: DateTime<Utc>,
    },
    /// Choose the template agents are offered when a customer's service window has closed
    /// (`None` clears it).
    SetRecontactTemplate {
        /// The template.
        template: Option<crate::interaction::TemplateMessage>,
        /// When.
        at: DateTime<Utc>,
    },
    /// Replace the routing plan (validated by the caller with `RoutingPlan::validate`).
    SetRoutingPlan {
        /// The plan.
        plan: crate::routing::RoutingPlan,
        /// When.
        at: DateTime<Utc>,
    },
    /// Replace the channel rules (validated with `ChannelRules::validate`).
    SetChannelRules {
        /// The rules.
        rules: crate::routing::ChannelRules,
        /// When.
        at: DateTime<Utc>,
    },
    /// Replace the whitelist.
    SetWhitelist {
        /// The whitelist.
        whitelist: super::Whitelist,
        /// When.
        at: DateTime<Utc>,
    },
    /// Replace the offer notification settings.
    SetNotification {
        /// The settings.
        notification: super::NotificationSettings,
        /// When.
        at: DateTime<Utc>,
    },
}
