//! The Interaction aggregate: one conversation with a customer, from the first message to
//! the disposition.
//!
//! Rules that live here:
//! - 24 h grouping: a message joins an open interaction only if the customer's previous
//!   message is under 24 h old; a closed interaction never takes another message.
//! - A provider message id is recorded once (redeliveries are no-ops).
//! - Only the assigned agent writes, closes and disposes; free-form text needs the customer's
//!   24 h service window to be open.
//! - Delivery statuses never go backwards (sent < delivered < read); `failed` is always kept.

mod commands;
mod content;
mod events;
#[cfg(test)]
mod tests;

pub use commands::InteractionCommand;
pub use content::{
    ContentError, MAX_CAPTION_CHARS, MAX_TEMPLATE_PARAMETERS, MEDIA_KINDS, MediaBlob, OutboundMedia,
    TemplateMessage, parse_content_type,
};
pub use events::InteractionEvent;

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::{AccountId, AgentId, Decider, MessageId, PhoneNumber, QueueId};

/// How long after the customer's last message a new one still joins the interaction, and
/// how long WhatsApp's customer-service window stays open for free-form replies.
pub const GROUPING_WINDOW: Duration = Duration::hours(24);

/// What a customer sent, reduced to what the agent desktop shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum InboundContent {
    /// A text message.
    Text {
        /// The text.
        body: String,
    },
    /// An image, audio, video, document or sticker. The bytes arrive separately: the media
    /// fetcher downloads them and records `InboundMediaStored` (or `InboundMediaUnavailable`).
    Media {
        /// `image`, `audio`, `video`, `document` or `sticker`.
        kind: String,
        /// Where the provider keeps it: `meta:<media id>` or a URL.
        source: String,
        /// MIME type, when the webhook said.
        content_type: Option<String>,
        /// The customer's caption.
        caption: Option<String>,
        /// A document's file name.
        filename: Option<String>,
    },
    /// Any other type (location, button and list replies...), summarised for the agent.
    Other {
        /// The provider's type name.
        kind: String,
        /// A one-line summary.
        summary: String,
    },
}

/// A message's delivery status as reported by the provider. Its order is `rank`, not the
/// declaration order (`Failed` sits outside the forward-only chain), so it derives no `Ord`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Accepted by us, not yet by the provider.
    Pending,
    /// Accepted by the provider, no status yet.
    Accepted,
    /// Sent to WhatsApp.
    Sent,
    /// On the customer's phone.
    Delivered,
    /// Read by the customer.
    Read,
    /// Not delivered.
    Failed,
}

impl DeliveryStatus {
    /// Position in the forward-only order; `Failed` sits outside it.
    fn rank(self) -> u8 {
        match self {
            Self::Pending => 0,
            Self::Accepted => 1,
            Self::Sent => 2,
            Self::Delivered => 3,
            Self::Read => 4,
            Self::Failed => 0,
        }
    }
}

/// The provider's reason for a failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderFailure {
    /// The provider's error code, as text (e.g. `131047`).
    pub code: String,
    /// The provider's human-readable explanation.
    pub reason: String,
}

/// Who closed an interaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Closer {
    /// The assigned agent.
    Agent(AgentId),
    /// A supervisor or administrator.
    Supervisor,
    /// The system (e.g. inactivity).
    System,
}

/// Why an interaction command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InteractionError {
    /// The interaction was never opened.
    #[error("the interaction does not exist")]
    NotFound,
    /// The message cannot join: the interaction is closed or its last customer message is
    /// 24 h old or more. The caller opens a new interaction instead.
    #[error("the interaction takes no new customer messages")]
    NotJoinable,
    /// The interaction is closed.
    #[error("the interaction is closed")]
    Closed,
    /// It is not closed yet (dispose needs closed).
    #[error("the interaction is not closed yet")]
    NotClosed,
    /// Already disposed.
    #[error("the interaction is already disposed")]
    AlreadyDisposed,
    /// Another agent owns it.
    #[error("the interaction is assigned to another agent")]
    AssignedToAnotherAgent,
    /// The acting agent is not the assigned one (or nobody is assigned).
    #[error("the interaction is not assigned to this agent")]
    NotAssignedToAgent,
    /// Free-form messages need a customer message in the last 24 h.
    #[error("the customer's 24 h service window is closed")]
    WindowClosed,
    /// No outbound message with that id.
    #[error("no such outbound message")]
    UnknownMessage,
    /// No customer media message with that id.
    #[error("no such customer media message")]
    UnknownMedia,
}

/// Lifecycle stage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Not opened.
    #[default]
    New,
    /// Waiting in a queue (or unrouted).
    Waiting,
    /// An agent owns it.
    Assigned,
    /// Closed, not yet disposed.
    Closed,
    /// Closed and disposed.
    Disposed,
}

/// An outbound message as far as the aggregate tracks it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outbound {
    /// Provider id once accepted.
    pub provider_message_id: Option<String>,
    /// Status so far.
    pub status: DeliveryStatus,
}

/// The state folded from an interaction's events.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Interaction {
    /// Lifecycle stage.
    pub stage: Stage,
    /// The account.
    pub account_id: Option<AccountId>,
    /// The customer.
    pub customer: Option<PhoneNumber>,
    /// The routing queue.
    pub queue_id: Option<QueueId>,
    /// The owning agent.
    pub agent_id: Option<AgentId>,
    /// When the customer last wrote (our receive time).
    pub last_customer_message_at: Option<DateTime<Utc>>,
    /// Provider ids already recorded (deduplication).
    pub seen_provider_ids: BTreeSet<String>,
    /// Outbound messages by our id.
    pub outbound: BTreeMap<MessageId, Outbound>,
    /// Our outbound id by provider id.
    pub outbound_by_provider_id: BTreeMap<String, MessageId>,
    /// Customer media messages: `true` once the download's outcome is recorded.
    #[serde(default)]
    pub media: BTreeMap<MessageId, bool>,
}

impl Interaction {
    /// Whether the customer's service window is open at `at`.
    pub fn window_open_at(&self, at: DateTime<Utc>) -> bool {
        self.last_customer_message_at.is_some_and(|last| at - last < GROUPING_WINDOW)
    }

    fn fold(&mut self, event: InteractionEvent) {
        use InteractionEvent as E;
        match event {
            E::InteractionOpened { account_id, customer, queue_id, .. } => {
                self.stage = Stage::Waiting;
                self.account_id = Some(account_id);
                self.customer = Some(customer);
                self.queue_id = queue_id;
            }
            E::CustomerMessageReceived { provider_message_id, message_id, content, at, .. } => {
                if matches!(content, InboundContent::Media { .. }) {
                    self.media.insert(message_id, false);
                }
                self.seen_provider_ids.insert(provider_message_id);
                self.last_customer_message_at = Some(match self.last_customer_message_at {
                    Some(last) => last.max(at),
                    None => at,
                });
            }
            E::AgentAssigned { agent_id, .. } => {
                self.agent_id = Some(agent_id);
                if self.stage == Stage::Waiting {
                    self.stage = Stage::Assigned;
                }
            }
            E::InboundMediaStored { message_id, .. } | E::InboundMediaUnavailable { message_id, .. } => {
                self.media.insert(message_id, true);
            }
            E::AgentMessageSent { message_id, .. }
            | E::AgentMediaSent { message_id, .. }
            | E::AgentTemplateSent { message_id, .. } => {
                self.outbound.insert(
                    message_id,
                    Outbound { provider_message_id: None, status: DeliveryStatus::Pending },
                );
            }
            E::OutboundMessageAccepted { message_id, provider_message_id, .. } => {
                self.outbound_by_provider_id.insert(provider_message_id.clone(), message_id);
                if let Some(out) = self.outbound.get_mut(&message_id) {
                    out.provider_message_id = Some(provider_message_id);
                    if out.status == DeliveryStatus::Pending {
                        out.status = DeliveryStatus::Accepted;
                    }
                }
            }
            E::OutboundMessageFailed { message_id, .. } => {
                if let Some(out) = self.outbound.get_mut(&message_id) {
                    out.status = DeliveryStatus::Failed;
                }
            }
            E::OutboundStatusChanged { message_id, status, .. } => {
                if let Some(out) = self.outbound.get_mut(&message_id) {
                    out.status = status;
                }
            }
            E::InteractionClosed { .. } => self.stage = Stage::Closed,
            E::InteractionDisposed { .. } => self.stage = Stage::Disposed,
        }
    }

    fn require_open(&self) -> Result<(), InteractionError> {
        match self.stage {
            Stage::New => Err(InteractionError::NotFound),
            Stage::Closed | Stage::Disposed => Err(InteractionError::Closed),
            Stage::Waiting | Stage::Assigned => Ok(()),
        }
    }

    /// The checks every agent send shares. `Ok((None, _))` means the same message id was
    /// already sent (a retried request): record nothing.
    fn outbound_allowed(
        &self,
        message_id: MessageId,
        agent_id: AgentId,
        at: DateTime<Utc>,
        needs_window: bool,
    ) -> Result<(Option<AccountId>, PhoneNumber), InteractionError> {
        self.require_open()?;
        self.require_agent(agent_id)?;
        let to = self.customer.clone().ok_or(InteractionError::NotFound)?;
        if self.outbound.contains_key(&message_id) {
            return Ok((None, to));
        }
        if needs_window && !self.window_open_at(at) {
            return Err(InteractionError::WindowClosed);
        }
        Ok((Some(self.account_id.ok_or(InteractionError::NotFound)?), to))
    }

    fn require_agent(&self, agent_id: AgentId) -> Result<(), InteractionError> {
        if self.agent_id == Some(agent_id) { Ok(()) } else { Err(InteractionError::NotAssignedToAgent) }
    }
}

impl Decider for Interaction {
    fn decide(&self, command: InteractionCommand) -> Result<Vec<InteractionEvent>, InteractionError> {
        use InteractionCommand as C;
        use InteractionEvent as E;
        match command {
            C::ReceiveCustomerMessage {
                account_id,
                customer,
                customer_name,
                queue_id,
                message_id,
                provider_message_id,
                content,
                sent_at,
                at,
            } => {
                // A redelivery is recognised before any other rule, so it is a no-op even
                // after the interaction closed.
                if self.seen_provider_ids.contains(&provider_message_id) {
                    return Ok(vec![]);
                }
                let received = E::CustomerMessageReceived {
                    account_id,
                    message_id,
                    provider_message_id,
                    content,
                    sent_at,
                    at,
                };
                match self.stage {
                    Stage::New => Ok(vec![
                        E::InteractionOpened { account_id, customer, customer_name, queue_id, at },
                        received,
                    ]),
                    Stage::Closed | Stage::Disposed => Err(InteractionError::NotJoinable),
                    Stage::Waiting | Stage::Assigned if !self.window_open_at(at) => {
                        Err(InteractionError::NotJoinable)
                    }
                    Stage::Waiting | Stage::Assigned => Ok(vec![received]),
                }
            }
            C::AssignAgent { agent_id, at } => {
                self.require_open()?;
                match self.agent_id {
                    Some(current) if current == agent_id => Ok(vec![]),
                    Some(_) => Err(InteractionError::AssignedToAnotherAgent),
                    None => Ok(vec![E::AgentAssigned { agent_id, at }]),
                }
            }
            C::SendText { message_id, agent_id, text, at } => {
                self.require_open()?;
                self.require_agent(agent_id)?;
                if self.outbound.contains_key(&message_id) {
                    return Ok(vec![]); // a retried send with the same id
                }
                if !self.window_open_at(at) {
                    return Err(InteractionError::WindowClosed);
                }
                let to = self.customer.clone().ok_or(InteractionError::NotFound)?;
                let account_id = self.account_id.ok_or(InteractionError::NotFound)?;
                Ok(vec![E::AgentMessageSent { account_id, message_id, agent_id, to, text, at }])
            }
            C::SendMedia { message_id, agent_id, media, at } => {
                let (account_id, to) = self.outbound_allowed(message_id, agent_id, at, true)?;
                Ok(match account_id {
                    None => vec![],
                    Some(account_id) => {
                        vec![E::AgentMediaSent { account_id, message_id, agent_id, to, media, at }]
                    }
                })
            }
            C::SendTemplate { message_id, agent_id, template, at } => {
                // Templates are what reopens a conversation, so the window is not checked.
                let (account_id, to) = self.outbound_allowed(message_id, agent_id, at, false)?;
                Ok(match account_id {
                    None => vec![],
                    Some(account_id) => {
                        vec![E::AgentTemplateSent { account_id, message_id, agent_id, to, template, at }]
                    }
                })
            }
            C::RecordInboundMedia { message_id, outcome, at } => {
                match self.media.get(&message_id) {
                    None if self.stage == Stage::New => return Err(InteractionError::NotFound),
                    None => return Err(InteractionError::UnknownMedia),
                    Some(true) => return Ok(vec![]), // a retried download: recorded already
                    Some(false) => {}
                }
                Ok(vec![match outcome {
                    Ok(blob) => E::InboundMediaStored { message_id, blob, at },
                    Err((code, reason)) => E::InboundMediaUnavailable { message_id, code, reason, at },
                }])
            }
            C::RecordOutboundAccepted { message_id, provider_message_id, at } => {
                let out = self.outbound.get(&message_id).ok_or(InteractionError::UnknownMessage)?;
                if out.provider_message_id.is_some() {
                    return Ok(vec![]);
                }
                Ok(vec![E::OutboundMessageAccepted { message_id, provider_message_id, at }])
            }
            C::RecordOutboundFailed { message_id, failure, at } => {
                let out = self.outbound.get(&message_id).ok_or(InteractionError::UnknownMessage)?;
                if out.status == DeliveryStatus::Failed || out.provider_message_id.is_some() {
                    return Ok(vec![]);
                }
                Ok(vec![E::OutboundMessageFailed { message_id, failure, at }])
            }
            C::RecordDeliveryStatus { provider_message_id, status, failure, at } => {
                let message_id = *self
                    .outbound_by_provider_id
                    .get(&provider_message_id)
                    .ok_or(InteractionError::UnknownMessage)?;
                let current = self.outbound.get(&message_id).map(|o| o.status);
                let advances = match (current, status) {
                    (Some(DeliveryStatus::Failed), _) => false,
                    (_, DeliveryStatus::Failed) => true,
                    (Some(cur), new) => new.rank() > cur.rank(),
                    (None, _) => false,
                };
                Ok(if advances {
                    vec![E::OutboundStatusChanged { message_id, status, failure, at }]
                } else {
                    vec![]
                })
            }
            C::Close { by, at } => {
                self.require_open()?;
                if let Closer::Agent(agent_id) = by {
                    self.require_agent(agent_id)?;
                }
                Ok(vec![E::InteractionClosed { by, at }])
            }
            C::Dispose { agent_id, disposition, at } => match self.stage {
                Stage::New => Err(InteractionError::NotFound),
                Stage::Waiting | Stage::Assigned => Err(InteractionError::NotClosed),
                Stage::Disposed => Err(InteractionError::AlreadyDisposed),
                Stage::Closed => {
                    // Interactions closed before anyone took them are disposed by whoever
                    // wraps them up; otherwise only the owner may.
                    if self.agent_id.is_some() {
                        self.require_agent(agent_id)?;
                    }
                    Ok(vec![E::InteractionDisposed { agent_id, disposition, at }])
                }
            },
        }
    }
}

crate::impl_aggregate!(Interaction, "Interaction", InteractionCommand, InteractionEvent, InteractionError);
