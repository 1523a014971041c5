//! What happened in an interaction. Names and shapes are stable: they are stored forever.

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use super::{
    Closer, DeliveryStatus, InboundContent, MediaBlob, OutboundMedia, ProviderFailure, TemplateMessage,
};
use crate::{AccountId, AgentId, DispositionCode, MessageId, MessageText, PhoneNumber, QueueId};

/// Events of the Interaction aggregate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum InteractionEvent {
    /// A customer's first message opened the interaction.
    InteractionOpened {
        /// The account written to.
        account_id: AccountId,
        /// The customer's number.
        customer: PhoneNumber,
        /// The customer's profile name, if known.
        customer_name: Option<String>,
        /// The queue it is routed to, if the account has routing.
        queue_id: Option<QueueId>,
        /// When.
        at: DateTime<Utc>,
    },
    /// A customer message arrived.
    CustomerMessageReceived {
        /// The account (repeated so the log's provider-id index needs no join).
        account_id: AccountId,
        /// Our id.
        message_id: MessageId,
        /// The provider's id (unique per account in the log).
        provider_message_id: String,
        /// What was sent.
        content: InboundContent,
        /// When the customer sent it.
        sent_at: DateTime<Utc>,
        /// When we received it.
        at: DateTime<Utc>,
    },
    /// An agent now owns the interaction.
    AgentAssigned {
        /// The agent.
        agent_id: AgentId,
        /// When.
        at: DateTime<Utc>,
    },
    /// An agent wrote a text; the outbox sends it.
    AgentMessageSent {
        /// The account that sends it (so the outbox needs no lookup).
        account_id: AccountId,
        /// Our id.
        message_id: MessageId,
        /// The agent.
        agent_id: AgentId,
        /// The recipient.
        to: PhoneNumber,
        /// The text.
        text: MessageText,
        /// When.
        at: DateTime<Utc>,
    },
    /// An agent sent media; the outbox sends it.
    AgentMediaSent {
        /// The account that sends it.
        account_id: AccountId,
        /// Our id.
        message_id: MessageId,
        /// The agent.
        agent_id: AgentId,
        /// The recipient.
        to: PhoneNumber,
        /// What is sent.
        media: OutboundMedia,
        /// When.
        at: DateTime<Utc>,
    },
    /// An agent sent an approved template (allowed outside the service window); the
    /// outbox sends it.
    AgentTemplateSent {
        /// The account that sends it.
        account_id: AccountId,
        /// Our id.
        message_id: MessageId,
        /// The agent.
        agent_id: AgentId,
        /// The recipient.
        to: PhoneNumber,
        /// The template and its parameters.
        template: TemplateMessage,
        /// When.
        at: DateTime<Utc>,
    },
    /// A customer's media was downloaded from the provider into the blob store.
    InboundMediaStored {
        /// The customer message it belongs to.
        message_id: MessageId,
        /// The stored bytes.
        blob: MediaBlob,
        /// When.
        at: DateTime<Utc>,
    },
    /// A customer's media could not be downloaded (gone, refused, too large).
    InboundMediaUnavailable {
        /// The customer message it belongs to.
        message_id: MessageId,
        /// A stable code: `too_large`, `download_failed`, `retries_exhausted`.
        code: String,
        /// Human explanation.
        reason: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// The provider accepted an outbound message.
    OutboundMessageAccepted {
        /// Our id.
        message_id: MessageId,
        /// The provider's id.
        provider_message_id: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// The provider refused an outbound message for good.
    OutboundMessageFailed {
        /// Our id.
        message_id: MessageId,
        /// Why.
        failure: ProviderFailure,
        /// When.
        at: DateTime<Utc>,
    },
    /// An outbound message's delivery status moved forward (or failed).
    OutboundStatusChanged {
        /// Our id.
        message_id: MessageId,
        /// The new status.
        status: DeliveryStatus,
        /// The provider's error, for `failed`.
        failure: Option<ProviderFailure>,
        /// When the provider says it happened.
        at: DateTime<Utc>,
    },
    /// The conversation ended; a later message opens a new interaction.
    InteractionClosed {
        /// Who closed it.
        by: Closer,
        /// When.
        at: DateTime<Utc>,
    },
    /// The outcome was recorded.
    InteractionDisposed {
        /// The agent.
        agent_id: AgentId,
        /// The disposition.
        disposition: DispositionCode,
        /// When.
        at: DateTime<Utc>,
    },
}

impl DomainEvent for InteractionEvent {
    fn event_type(&self) -> String {
        match self {
            Self::InteractionOpened { .. } => "InteractionOpened",
            Self::CustomerMessageReceived { .. } => "CustomerMessageReceived",
            Self::AgentAssigned { .. } => "AgentAssigned",
            Self::AgentMessageSent { .. } => "AgentMessageSent",
            Self::AgentMediaSent { .. } => "AgentMediaSent",
            Self::AgentTemplateSent { .. } => "AgentTemplateSent",
            Self::InboundMediaStored { .. } => "InboundMediaStored",
            Self::InboundMediaUnavailable { .. } => "InboundMediaUnavailable",
            Self::OutboundMessageAccepted { .. } => "OutboundMessageAccepted",
            Self::OutboundMessageFailed { .. } => "OutboundMessageFailed",
            Self::OutboundStatusChanged { .. } => "OutboundStatusChanged",
            Self::InteractionClosed { .. } => "InteractionClosed",
            Self::InteractionDisposed { .. } => "InteractionDisposed",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1.0".to_owned()
    }
}
