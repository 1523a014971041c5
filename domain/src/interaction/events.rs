//! What happened in an interaction. Names and shapes are stable: they are stored forever.

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use std::collections::BTreeSet;

use super::{
    Closer, DeliveryStatus, InboundContent, MediaBlob, NoteAuthor, OutboundMedia, ProviderFailure,
    SystemClose, TemplateMessage,
};
use crate::routing::{ChannelRules, OfferExplanation, RoutingPlan, Target, TargetReason, WithdrawReason};
use crate::{
    AccountId, AgentId, ContactListId, DispositionCode, MessageId, MessageText, NoteId, PauseReason,
    PhoneNumber, QueueId, Tag,
};

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
    /// Routing began: the plan and channel rules this interaction follows, copied from the
    /// account, and the contact lists the customer was in (for jump conditions).
    RoutingStarted {
        /// The account's plan at the time.
        plan: RoutingPlan,
        /// The account's channel rules at the time.
        rules: ChannelRules,
        /// The contact lists the customer belongs to.
        contact_lists: BTreeSet<ContactListId>,
        /// When.
        at: DateTime<Utc>,
    },
    /// A plan step was skipped because its working-hours gate does not contain `at`.
    RoutingStepSkipped {
        /// The step (0-based).
        step: usize,
        /// When.
        at: DateTime<Utc>,
    },
    /// A jump step was evaluated.
    RoutingJumpEvaluated {
        /// The step (0-based).
        step: usize,
        /// Whether the condition held (and the plan jumped).
        taken: bool,
        /// Where the plan goes next.
        next: usize,
        /// When.
        at: DateTime<Utc>,
    },
    /// The interaction is now offered to `target` until `until` (or without deadline).
    RoutingTargetSet {
        /// Where it is offered.
        target: Target,
        /// Why.
        reason: TargetReason,
        /// The target's sequence number in this interaction (timers name it).
        seq: u32,
        /// When the wait ends; `None`: never.
        until: Option<DateTime<Utc>>,
        /// When.
        at: DateTime<Utc>,
    },
    /// Nobody accepted before the target's deadline.
    RoutingTargetExpired {
        /// Which target.
        seq: u32,
        /// When.
        at: DateTime<Utc>,
    },
    /// The plan has no more steps.
    RoutingPlanEnded {
        /// When.
        at: DateTime<Utc>,
    },
    /// A plan step sent an automatic reply.
    AutoReplySent {
        /// The account.
        account_id: AccountId,
        /// Our id.
        message_id: MessageId,
        /// The customer.
        to: PhoneNumber,
        /// The text.
        text: MessageText,
        /// The plan step (0-based).
        step: usize,
        /// When.
        at: DateTime<Utc>,
    },
    /// Tags were added (by a plan step or an agent).
    TagsAdded {
        /// The tags new to this interaction.
        tags: BTreeSet<Tag>,
        /// The agent, if an agent added them; `None` for a plan step.
        by: Option<AgentId>,
        /// When.
        at: DateTime<Utc>,
    },
    /// The interaction was offered to an agent, with the board's reasons.
    OfferMade {
        /// The agent.
        agent_id: AgentId,
        /// Which offer of this interaction (1, 2, ...).
        attempt: u32,
        /// The target it was made for.
        target_seq: u32,
        /// When it lapses.
        expires_at: DateTime<Utc>,
        /// Who was considered and why this agent.
        explanation: OfferExplanation,
        /// When.
        at: DateTime<Utc>,
    },
    /// The agent accepted the offer (the interaction is assigned to them in the same commit).
    OfferAccepted {
        /// The agent.
        agent_id: AgentId,
        /// Which offer.
        attempt: u32,
        /// When.
        at: DateTime<Utc>,
    },
    /// The agent declined the offer.
    OfferRejected {
        /// The agent.
        agent_id: AgentId,
        /// Which offer.
        attempt: u32,
        /// When.
        at: DateTime<Utc>,
    },
    /// The offer lapsed unanswered.
    OfferTimedOut {
        /// The agent.
        agent_id: AgentId,
        /// Which offer.
        attempt: u32,
        /// When.
        at: DateTime<Utc>,
    },
    /// The offer was taken back.
    OfferWithdrawn {
        /// The agent.
        agent_id: AgentId,
        /// Which offer.
        attempt: u32,
        /// Why.
        reason: WithdrawReason,
        /// When.
        at: DateTime<Utc>,
    },
    /// The assigned agent asked to hand the interaction over; they keep it until accepted.
    TransferRequested {
        /// The transferring agent.
        from: AgentId,
        /// Where it goes.
        to: Target,
        /// The target's sequence number.
        seq: u32,
        /// When the transfer lapses.
        until: DateTime<Utc>,
        /// When.
        at: DateTime<Utc>,
    },
    /// Nobody accepted the transfer in time: it is back with the agent who transferred it,
    /// marked unread.
    TransferReturned {
        /// Which transfer target.
        seq: u32,
        /// The agent it returned to.
        agent_id: AgentId,
        /// When.
        at: DateTime<Utc>,
    },
    /// The assigned agent opened the disposition dialog (mandatory disposition).
    WrapUpStarted {
        /// The agent.
        agent_id: AgentId,
        /// The pause applied to the agent meanwhile.
        pause_reason: Option<PauseReason>,
        /// When.
        at: DateTime<Utc>,
    },
    /// The system closed and disposed the interaction (inactivity, a plan's close step).
    InteractionClosedBySystem {
        /// Why.
        reason: SystemClose,
        /// The disposition recorded.
        disposition: DispositionCode,
        /// When.
        at: DateTime<Utc>,
    },
    /// Someone wrote an internal note: agents and supervisors read it, the customer never
    /// receives it.
    NoteAdded {
        /// Its id.
        note_id: NoteId,
        /// Who wrote it.
        author: NoteAuthor,
        /// The text.
        text: MessageText,
        /// When.
        at: DateTime<Utc>,
    },
    /// A supervisor deleted the closed interaction: it leaves every list, search and export;
    /// its events stay in the log for auditors.
    InteractionDeleted {
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
            Self::RoutingStarted { .. } => "RoutingStarted",
            Self::RoutingStepSkipped { .. } => "RoutingStepSkipped",
            Self::RoutingJumpEvaluated { .. } => "RoutingJumpEvaluated",
            Self::RoutingTargetSet { .. } => "RoutingTargetSet",
            Self::RoutingTargetExpired { .. } => "RoutingTargetExpired",
            Self::RoutingPlanEnded { .. } => "RoutingPlanEnded",
            Self::AutoReplySent { .. } => "AutoReplySent",
            Self::TagsAdded { .. } => "TagsAdded",
            Self::OfferMade { .. } => "OfferMade",
            Self::OfferAccepted { .. } => "OfferAccepted",
            Self::OfferRejected { .. } => "OfferRejected",
            Self::OfferTimedOut { .. } => "OfferTimedOut",
            Self::OfferWithdrawn { .. } => "OfferWithdrawn",
            Self::TransferRequested { .. } => "TransferRequested",
            Self::TransferReturned { .. } => "TransferReturned",
            Self::WrapUpStarted { .. } => "WrapUpStarted",
            Self::InteractionClosedBySystem { .. } => "InteractionClosedBySystem",
            Self::NoteAdded { .. } => "NoteAdded",
            Self::InteractionDeleted { .. } => "InteractionDeleted",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1.0".to_owned()
    }
}
