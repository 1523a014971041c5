//! The Account aggregate: one WhatsApp business number, its provider settings, the agents
//! allowed to work it and where its new interactions are routed.

mod commands;
mod details;
mod events;
pub mod key_claim;
#[cfg(test)]
mod tests;

pub use commands::AccountCommand;
pub use details::{
    AccountDescription, AccountDetails, AccountFieldError, DetailsPatch, ProxyToken, PublicDomain,
};
pub use events::AccountEvent;
pub use key_claim::AccountKeyClaim;

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::notify::Template;
use crate::routing::{ChannelRules, PlanError, RoutingPlan, RulesError};
use crate::{AccountKey, AgentId, ContactListId, Decider, DisplayName, MessageText, QueueId};

/// A provider secret, already encrypted by the caller. The domain never sees plaintext
/// credentials, so neither do events, replays or projections.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SealedSecret(pub String);

/// What reads show instead of a secret: not even a suffix of it is revealed.
pub const MASKED_SECRET: &str = "********";

/// Meta Cloud API settings for one business number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetaSettings {
    /// WhatsApp Business Account id.
    pub business_account_id: String,
    /// The Meta app id.
    pub app_id: String,
    /// The business number's phone number id (the path segment of sends).
    pub phone_number_id: String,
    /// Graph API base URL, `https://graph.facebook.com` in production; a mock in tests.
    pub api_base_url: String,
    /// Graph API version path segment, e.g. `v23.0`.
    pub api_version: String,
    /// System-user access token (encrypted).
    pub access_token: SealedSecret,
    /// App secret that signs webhooks (encrypted).
    pub app_secret: SealedSecret,
    /// Token echoed in the GET verification handshake (encrypted).
    pub verify_token: SealedSecret,
}

/// Twilio (Programmable Messaging, WhatsApp sender) settings for one business number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TwilioSettings {
    /// Account SID (`AC...`).
    pub account_sid: String,
    /// The WhatsApp sender number (the `From` of sends, the `To` of inbound webhooks).
    pub business_number: crate::PhoneNumber,
    /// API base URL, `https://api.twilio.com` in production; a mock in tests.
    pub api_base_url: String,
    /// Auth token: authenticates sends and signs webhooks (encrypted).
    pub auth_token: SealedSecret,
}

/// Sinch Conversation API settings for one WhatsApp app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SinchSettings {
    /// Project id.
    pub project_id: String,
    /// Conversation API app id (the business identifier inbound callbacks carry).
    pub app_id: String,
    /// Access key id (OAuth2 client id).
    pub key_id: String,
    /// Access key secret (OAuth2 client secret, encrypted).
    pub key_secret: SealedSecret,
    /// Webhook secret that signs callbacks (encrypted).
    pub webhook_secret: SealedSecret,
    /// Regional API base URL of the app's region (`https://us.…` is the API's default,
    /// `https://eu.conversation.api.sinch.com` for EU apps); a mock in tests.
    pub api_base_url: String,
    /// OAuth2 base URL, `https://auth.sinch.com`; a mock in tests.
    pub auth_base_url: String,
}

/// How Kaleyra proves a callback is genuine (Kaleyra signs nothing; its callback profiles
/// can send a static header or Basic auth, configured to carry a secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum KaleyraCallbackAuth {
    /// A custom header carrying a shared secret.
    SharedHeader {
        /// Header name.
        name: String,
        /// Its secret value (encrypted).
        value: SealedSecret,
    },
    /// HTTP Basic auth.
    Basic {
        /// User name.
        user: String,
        /// Password (encrypted).
        password: SealedSecret,
    },
}

/// Kaleyra WhatsApp settings for one business number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KaleyraSettings {
    /// API base URL of the account's pod, e.g. `https://api.kaleyra.io`; a mock in tests.
    pub api_base_url: String,
    /// WhatsApp Business Account id.
    pub waba_id: String,
    /// Kaleyra account SID (path segment of sends).
    pub account_sid: String,
    /// API key (`api-key` header, encrypted).
    pub api_key: SealedSecret,
    /// The business number.
    pub business_number: crate::PhoneNumber,
    /// How callbacks authenticate.
    pub callback_auth: KaleyraCallbackAuth,
}

/// Which provider connects the number, with that provider's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ProviderSettings {
    /// Meta WhatsApp Cloud API.
    Meta(MetaSettings),
    /// Twilio.
    Twilio(TwilioSettings),
    /// Sinch Conversation API.
    Sinch(SinchSettings),
    /// Kaleyra.
    Kaleyra(KaleyraSettings),
}

impl ProviderSettings {
    /// The same settings with every secret passed through `f` (masking, re-sealing); the
    /// first error stops it. Every secret is a `SealedSecret` field, so none can be missed.
    pub fn try_map_secrets<E>(
        &self,
        mut f: impl FnMut(&SealedSecret) -> Result<SealedSecret, E>,
    ) -> Result<ProviderSettings, E> {
        let mut out = self.clone();
        match &mut out {
            ProviderSettings::Meta(m) => {
                m.access_token = f(&m.access_token)?;
                m.app_secret = f(&m.app_secret)?;
                m.verify_token = f(&m.verify_token)?;
            }
            ProviderSettings::Twilio(t) => t.auth_token = f(&t.auth_token)?,
            ProviderSettings::Sinch(x) => {
                x.key_secret = f(&x.key_secret)?;
                x.webhook_secret = f(&x.webhook_secret)?;
            }
            ProviderSettings::Kaleyra(k) => {
                k.api_key = f(&k.api_key)?;
                match &mut k.callback_auth {
                    KaleyraCallbackAuth::SharedHeader { value, .. } => *value = f(value)?,
                    KaleyraCallbackAuth::Basic { password, .. } => *password = f(password)?,
                }
            }
        }
        Ok(out)
    }

    /// Every secret of these settings.
    pub fn secrets(&self) -> Vec<SealedSecret> {
        let mut all = Vec::new();
        let _ = self.try_map_secrets::<()>(|s| {
            all.push(s.clone());
            Ok(s.clone())
        });
        all
    }

    /// The settings with every secret replaced by [`MASKED_SECRET`], for reads and history.
    pub fn masked(&self) -> ProviderSettings {
        let masked = self.try_map_secrets::<()>(|_| Ok(SealedSecret(MASKED_SECRET.to_owned())));
        masked.unwrap_or_else(|()| self.clone())
    }

    /// The provider's name, as the API and metrics spell it.
    pub fn kind(&self) -> &'static str {
        match self {
            ProviderSettings::Meta(_) => "meta",
            ProviderSettings::Twilio(_) => "twilio",
            ProviderSettings::Sinch(_) => "sinch",
            ProviderSettings::Kaleyra(_) => "kaleyra",
        }
    }
}

/// The whitelist (seed: "Add Whitelist"): when enabled, a message from a number in none of
/// `lists` gets `reply` and its interaction is closed; no agent is offered it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Whitelist {
    /// Whether the whitelist applies.
    pub enabled: bool,
    /// The lists whose contacts may write.
    pub lists: BTreeSet<ContactListId>,
    /// The automatic reply to everyone else (`None`: close without replying).
    #[serde(default)]
    pub reply: Option<MessageText>,
}

/// How agents are notified of a new offer (seed: "Notification"): sound, shake and the
/// text, rendered from `template` for every offer pushed to an agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationSettings {
    /// Play a sound.
    pub sound: bool,
    /// Shake the notification.
    pub shake: bool,
    /// The text's template.
    pub template: Template,
}

/// Why an account command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountError {
    /// `Create` on an account that exists.
    #[error("the account already exists")]
    AlreadyExists,
    /// Any command but `Create` on an account that does not exist.
    #[error("the account does not exist")]
    NotFound,
    /// The routing plan breaks a rule.
    #[error(transparent)]
    InvalidPlan(PlanError),
    /// The channel rules break a rule.
    #[error(transparent)]
    InvalidRules(RulesError),
    /// New credentials of another provider type than the account's.
    #[error("the provider type cannot change (the account uses `{from}`, the credentials are for `{to}`)")]
    ProviderTypeChange {
        /// The account's provider type.
        from: &'static str,
        /// The credentials' provider type.
        to: &'static str,
    },
}

/// The state folded from an account's events.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Account {
    /// Whether `AccountCreated` has happened.
    pub created: bool,
    /// Display name.
    pub name: Option<DisplayName>,
    /// Short key for agents' tabs.
    pub key: Option<AccountKey>,
    /// Provider settings (secrets sealed).
    pub provider: Option<ProviderSettings>,
    /// The queue new interactions go to, if routing is set by queue alone (older API).
    pub routing_queue: Option<QueueId>,
    /// The routing plan new interactions follow (a single-queue plan for `routing_queue`).
    #[serde(default)]
    pub routing_plan: Option<RoutingPlan>,
    /// The channel rules new interactions obey.
    #[serde(default)]
    pub rules: ChannelRules,
    /// Agents allowed to see and work this account.
    pub agents: BTreeSet<AgentId>,
    /// The template agents are offered once a customer's service window has closed.
    #[serde(default)]
    pub recontact_template: Option<crate::interaction::TemplateMessage>,
    /// The whitelist.
    #[serde(default)]
    pub whitelist: Whitelist,
    /// Offer notifications; `None`: the built-in default (see `workers::feed`).
    #[serde(default)]
    pub notification: Option<NotificationSettings>,
    /// Description, phone, default list, public domain.
    #[serde(default)]
    pub details: AccountDetails,
    /// The proxy token (`None` only for accounts created before it existed).
    #[serde(default)]
    pub proxy_token: Option<ProxyToken>,
    /// Whether the account was deleted: it then refuses every command, its provider settings
    /// are dropped (no webhook is accepted, nothing is sent) and reads answer "not found".
    #[serde(default)]
    pub deleted: bool,
}

impl Account {
    /// Whether the account exists now (created and not deleted).
    pub fn exists(&self) -> bool {
        self.created && !self.deleted
    }
}

impl Account {
    fn fold(&mut self, event: AccountEvent) {
        match event {
            AccountEvent::AccountCreated { name, key, provider, details, proxy_token, .. } => {
                self.created = true;
                self.name = Some(name);
                self.key = Some(key);
                self.provider = Some(provider);
                self.details = details;
                self.proxy_token = proxy_token;
            }
            AccountEvent::AccountRenamed { name, .. } => self.name = Some(name),
            AccountEvent::AccountKeyChanged { key, .. } => self.key = Some(key),
            AccountEvent::AccountDetailsChanged { details, .. } => self.details = details,
            AccountEvent::ProviderCredentialsReplaced { provider, .. }
            | AccountEvent::ProviderCredentialsResealed { provider, .. } => self.provider = Some(provider),
            AccountEvent::AccountDeleted { .. } => {
                self.deleted = true;
                self.provider = None;
            }
            AccountEvent::AgentAddedToAccount { agent_id, .. } => {
                self.agents.insert(agent_id);
            }
            AccountEvent::AgentRemovedFromAccount { agent_id, .. } => {
                self.agents.remove(&agent_id);
            }
            AccountEvent::RoutingQueueSet { queue_id, .. } => {
                self.routing_queue = Some(queue_id);
                self.routing_plan = Some(RoutingPlan::single_queue(queue_id));
            }
            AccountEvent::RoutingPlanSet { plan, .. } => {
                self.routing_queue = None;
                self.routing_plan = Some(plan);
            }
            AccountEvent::ChannelRulesSet { rules, .. } => self.rules = rules,
            AccountEvent::RecontactTemplateSet { template, .. } => self.recontact_template = template,
            AccountEvent::WhitelistSet { whitelist, .. } => self.whitelist = whitelist,
            AccountEvent::NotificationSet { notification, .. } => self.notification = Some(notification),
        }
    }
}

impl Account {
    fn same_provider_type(&self, provider: &ProviderSettings) -> Result<(), AccountError> {
        match &self.provider {
            Some(current) if current.kind() != provider.kind() => {
                Err(AccountError::ProviderTypeChange { from: current.kind(), to: provider.kind() })
            }
            _ => Ok(()),
        }
    }
}

impl Decider for Account {
    fn decide(&self, command: AccountCommand) -> Result<Vec<AccountEvent>, AccountError> {
        use AccountCommand as C;
        use AccountEvent as E;
        match command {
            C::Create { name, key, provider, details, proxy_token, at } => {
                if self.created {
                    return Err(AccountError::AlreadyExists);
                }
                Ok(vec![E::AccountCreated {
                    name,
                    key,
                    provider,
                    details,
                    proxy_token: Some(proxy_token),
                    at,
                }])
            }
            _ if !self.exists() => Err(AccountError::NotFound),
            C::Rename { name, at } => Ok(if self.name.as_ref() == Some(&name) {
                vec![]
            } else {
                vec![E::AccountRenamed { name, at }]
            }),
            C::ChangeKey { key, at } => Ok(if self.key.as_ref() == Some(&key) {
                vec![]
            } else {
                vec![E::AccountKeyChanged { key, at }]
            }),
            C::ChangeDetails { patch, at } => {
                let details = patch.applied_to(&self.details);
                Ok(if details == self.details {
                    vec![]
                } else {
                    vec![E::AccountDetailsChanged { details, at }]
                })
            }
            C::ReplaceProvider { provider, at } => {
                self.same_provider_type(&provider)?;
                Ok(if self.provider.as_ref() == Some(&provider) {
                    vec![]
                } else {
                    vec![E::ProviderCredentialsReplaced { provider, at }]
                })
            }
            C::ResealProvider { provider, at } => {
                self.same_provider_type(&provider)?;
                Ok(if self.provider.as_ref() == Some(&provider) {
                    vec![]
                } else {
                    vec![E::ProviderCredentialsResealed { provider, at }]
                })
            }
            C::Delete { at } => Ok(vec![E::AccountDeleted { at }]),
            // Membership changes are idempotent: repeating one records nothing.
            C::AddAgent { agent_id, at } => Ok(if self.agents.contains(&agent_id) {
                vec![]
            } else {
                vec![E::AgentAddedToAccount { agent_id, at }]
            }),
            C::RemoveAgent { agent_id, at } => Ok(if self.agents.contains(&agent_id) {
                vec![E::AgentRemovedFromAccount { agent_id, at }]
            } else {
                vec![]
            }),
            C::SetRoutingQueue { queue_id, at } => Ok(if self.routing_queue == Some(queue_id) {
                vec![]
            } else {
                vec![E::RoutingQueueSet { queue_id, at }]
            }),
            C::SetRecontactTemplate { template, at } => Ok(if self.recontact_template == template {
                vec![]
            } else {
                vec![E::RecontactTemplateSet { template, at }]
            }),
            // Plans and rules are validated here too: the aggregate never records one that
            // the engine could not run.
            C::SetRoutingPlan { plan, at } => {
                plan.validate().map_err(AccountError::InvalidPlan)?;
                Ok(if self.routing_plan.as_ref() == Some(&plan) {
                    vec![]
                } else {
                    vec![E::RoutingPlanSet { plan, at }]
                })
            }
            C::SetWhitelist { whitelist, at } => {
                Ok(if self.whitelist == whitelist { vec![] } else { vec![E::WhitelistSet { whitelist, at }] })
            }
            C::SetNotification { notification, at } => {
                Ok(if self.notification.as_ref() == Some(&notification) {
                    vec![]
                } else {
                    vec![E::NotificationSet { notification, at }]
                })
            }
            C::SetChannelRules { rules, at } => {
                rules.validate().map_err(AccountError::InvalidRules)?;
                Ok(if self.rules == rules { vec![] } else { vec![E::ChannelRulesSet { rules, at }] })
            }
        }
    }
}

crate::impl_aggregate!(Account, "Account", AccountCommand, AccountEvent, AccountError);
