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
//! - Routing: a new interaction runs its account's plan (copied into `RoutingStarted`) up to
//!   the first waiting step; a target's timer moves it on (next step, sticky queue, plan
//!   restart, transfer returned). Offers are only made for the current target, one number
//!   at a time, so a board deciding on a stale state wastes a command but never doubles an
//!   effect; timer and board commands that no longer apply record nothing.
//! - Accepting assigns in the same commit and takes back the other offers; closing, any
//!   way, takes back every live offer.
//! - Channel rules copied at the start decide sticky waits, transfers, the inactivity close
//!   and whether an agent's close needs a disposition.

mod commands;
mod content;
mod events;
#[cfg(test)]
mod tests;

pub use commands::{InteractionCommand, RoutingSetup, Screening};
pub use content::{
    ContentError, MAX_CAPTION_CHARS, MAX_TEMPLATE_PARAMETERS, MEDIA_KINDS, MediaBlob, OutboundMedia,
    TemplateMessage, parse_content_type,
};
pub use events::InteractionEvent;

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::routing::{
    ChannelRules, Condition, RoutingPlan, StepAction, Target, TargetReason, WithdrawReason,
};
use crate::{
    AccountId, AgentId, ContactListId, Decider, DispositionCode, MessageId, MessageText, NoteId, PhoneNumber,
    QueueId, Tag,
};

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

/// Who wrote an internal note. The label of a supervisor or administrator is their token's
/// label (they have no agent id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum NoteAuthor {
    /// The interaction's assigned agent.
    Agent {
        /// Who.
        agent_id: AgentId,
    },
    /// A supervisor (or administrator) following the interaction.
    Supervisor {
        /// Their token's label.
        label: String,
    },
}

/// The system disposition of an interaction closed for inactivity (seed); it cannot be deleted.
pub const CLOSED_FOR_INACTIVITY: &str = "Closed for inactivity";

/// The system disposition of an interaction closed because its number is not whitelisted.
pub const NOT_WHITELISTED: &str = "Not whitelisted";

/// Why the system closed an interaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SystemClose {
    /// The agent's last message went unanswered for the account's inactivity minutes.
    Inactivity {
        /// The time of that last agent message.
        idle_since: DateTime<Utc>,
    },
    /// A close step of the routing plan.
    PlanStep {
        /// The step (0-based).
        step: usize,
    },
    /// The account's whitelist is on and the number was in none of its lists.
    NotWhitelisted,
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
    /// The agent was never offered this interaction (or the offer is not theirs).
    #[error("there is no offer of this interaction to this agent")]
    NotOffered,
    /// The offer lapsed before the answer.
    #[error("the offer has expired")]
    OfferExpired,
    /// The offer was taken back (another agent accepted, the agent became unavailable, the
    /// interaction moved on).
    #[error("the offer was withdrawn")]
    OfferWithdrawn,
    /// The account does not allow transfers.
    #[error("transfers are disabled for this account")]
    TransferDisabled,
    /// A transfer to the agent who has it.
    #[error("cannot transfer to oneself")]
    TransferToSelf,
    /// A transfer is already pending.
    #[error("a transfer is already pending")]
    TransferPending,
    /// Closing needs a disposition (the account's disposition is mandatory).
    #[error("a disposition is required to close this interaction")]
    DispositionRequired,
    /// No tags given.
    #[error("no tags given")]
    NoTags,
    /// Only a closed interaction can be deleted.
    #[error("the interaction is still open")]
    StillOpen,
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

/// The plan, rules and contact lists an interaction follows, copied from the account when
/// routing started (so a later change of the account only affects new interactions).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Routing {
    /// The plan.
    pub plan: RoutingPlan,
    /// The channel rules.
    pub rules: ChannelRules,
    /// The lists the customer was in.
    pub contact_lists: BTreeSet<ContactListId>,
}

/// Where the interaction waits to be accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CurrentTarget {
    /// The queue or agent it is offered to.
    pub target: Target,
    /// Why it is there.
    pub reason: TargetReason,
    /// Its sequence number (timers and offers name it).
    pub seq: u32,
    /// When the wait ends; `None`: never.
    pub until: Option<DateTime<Utc>>,
}

/// What became of an offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OfferStatus {
    /// Waiting for the agent's answer.
    Live,
    /// The agent took it.
    Accepted,
    /// The agent declined it.
    Rejected,
    /// It lapsed unanswered.
    TimedOut,
    /// It was taken back.
    Withdrawn,
}

/// An agent's latest offer of this interaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfferState {
    /// The offer's number in this interaction.
    pub attempt: u32,
    /// The target it was made for.
    pub target_seq: u32,
    /// When it lapses.
    pub expires_at: DateTime<Utc>,
    /// What became of it.
    pub status: OfferStatus,
}

/// Who wrote last (automatic replies do not count), for the inactivity close.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastMessage {
    /// `true` for an agent's message, `false` for the customer's.
    pub by_agent: bool,
    /// When.
    pub at: DateTime<Utc>,
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
    /// The last queue the interaction was routed through (where a sticky return waits and
    /// where it waits when the plan runs out).
    pub queue_id: Option<QueueId>,
    /// The owning agent (kept while a sticky return or a transfer waits for someone else).
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
    /// The plan and rules it follows; `None`: unrouted.
    #[serde(default)]
    pub routing: Option<Routing>,
    /// Where it waits to be accepted; `None` once accepted (or unrouted, or closed).
    #[serde(default)]
    pub target: Option<CurrentTarget>,
    /// The highest target sequence number given so far.
    #[serde(default)]
    pub last_seq: u32,
    /// Each agent's latest offer.
    #[serde(default)]
    pub offers: BTreeMap<AgentId, OfferState>,
    /// How many offers were made.
    #[serde(default)]
    pub attempts: u32,
    /// Agents who declined or let lapse an offer for the current target.
    #[serde(default)]
    pub declined: BTreeSet<AgentId>,
    /// Its tags.
    #[serde(default)]
    pub tags: BTreeSet<Tag>,
    /// Who wrote last.
    #[serde(default)]
    pub last_message: Option<LastMessage>,
    /// The body of the customer's latest text message (for text conditions).
    #[serde(default)]
    pub last_customer_text: Option<String>,
    /// Whether the owner opened the disposition dialog.
    #[serde(default)]
    pub wrap_up_started: bool,
    /// The internal notes written so far (a retried note with the same id records nothing).
    #[serde(default)]
    pub note_ids: BTreeSet<NoteId>,
    /// Deleted by a supervisor: every command now finds nothing.
    #[serde(default)]
    pub deleted: bool,
}

impl Interaction {
    /// Whether the customer's service window is open at `at`.
    pub fn window_open_at(&self, at: DateTime<Utc>) -> bool {
        self.last_customer_message_at.is_some_and(|last| at - last < GROUPING_WINDOW)
    }

    /// The rules in force: the routing's, or the defaults for an unrouted interaction.
    pub fn rules(&self) -> ChannelRules {
        self.routing.as_ref().map(|r| r.rules.clone()).unwrap_or_default()
    }

    /// The live offers as (agent, attempt), oldest first.
    pub fn live_offers(&self) -> Vec<(AgentId, u32)> {
        let mut live: Vec<_> = self
            .offers
            .iter()
            .filter(|(_, o)| o.status == OfferStatus::Live)
            .map(|(agent, o)| (*agent, o.attempt))
            .collect();
        live.sort_by_key(|(_, attempt)| *attempt);
        live
    }

    fn fold(&mut self, event: InteractionEvent) {
        use InteractionEvent as E;
        match event {
            E::InteractionOpened { account_id, customer, queue_id, .. } => {
                self.stage = Stage::Waiting;
                self.account_id = Some(account_id);
                self.customer = Some(customer);
                self.queue_id = queue_id;
                // Interactions opened before routing plans named their queue here: they wait
                // there without deadline, as at the end of a plan.
                if let Some(q) = queue_id {
                    self.target = Some(CurrentTarget {
                        target: Target::Queue(q),
                        reason: TargetReason::PlanEnd,
                        seq: 0,
                        until: None,
                    });
                }
            }
            E::CustomerMessageReceived { provider_message_id, message_id, content, at, .. } => {
                match &content {
                    InboundContent::Media { .. } => {
                        self.media.insert(message_id, false);
                    }
                    InboundContent::Text { body } => self.last_customer_text = Some(body.clone()),
                    InboundContent::Other { .. } => {}
                }
                self.seen_provider_ids.insert(provider_message_id);
                self.last_customer_message_at = Some(match self.last_customer_message_at {
                    Some(last) => last.max(at),
                    None => at,
                });
                self.last_message = Some(LastMessage { by_agent: false, at });
            }
            E::AgentAssigned { agent_id, .. } => {
                if self.agent_id != Some(agent_id) {
                    self.wrap_up_started = false;
                }
                self.agent_id = Some(agent_id);
                // Taken through a transfer to a queue: that queue is now theirs.
                if let Some(CurrentTarget { target: Target::Queue(q), .. }) = self.target {
                    self.queue_id = Some(q);
                }
                self.target = None;
                self.declined.clear();
                if self.stage == Stage::Waiting {
                    self.stage = Stage::Assigned;
                }
            }
            E::InboundMediaStored { message_id, .. } | E::InboundMediaUnavailable { message_id, .. } => {
                self.media.insert(message_id, true);
            }
            E::AgentMessageSent { message_id, at, .. }
            | E::AgentMediaSent { message_id, at, .. }
            | E::AgentTemplateSent { message_id, at, .. } => {
                self.outbound.insert(
                    message_id,
                    Outbound { provider_message_id: None, status: DeliveryStatus::Pending },
                );
                self.last_message = Some(LastMessage { by_agent: true, at });
            }
            E::AutoReplySent { message_id, .. } => {
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
            E::InteractionClosed { .. } => {
                self.stage = Stage::Closed;
                self.target = None;
            }
            E::InteractionDisposed { .. } | E::InteractionClosedBySystem { .. } => {
                self.stage = Stage::Disposed;
                self.target = None;
            }
            E::RoutingStarted { plan, rules, contact_lists, .. } => {
                self.routing = Some(Routing { plan, rules, contact_lists });
            }
            E::RoutingStepSkipped { .. } | E::RoutingJumpEvaluated { .. } | E::RoutingPlanEnded { .. } => {}
            E::RoutingTargetSet { target, reason, seq, until, .. } => {
                self.target = Some(CurrentTarget { target, reason, seq, until });
                self.last_seq = self.last_seq.max(seq);
                if let Target::Queue(q) = target {
                    self.queue_id = Some(q);
                }
                self.declined.clear();
                // A sticky return puts an assigned interaction back to waiting; the owner
                // stays recorded until someone accepts.
                if self.stage == Stage::Assigned {
                    self.stage = Stage::Waiting;
                }
            }
            E::RoutingTargetExpired { seq, .. } => {
                if self.target.is_some_and(|t| t.seq == seq) {
                    self.target = None;
                }
            }
            E::TagsAdded { tags, .. } => self.tags.extend(tags),
            E::NoteAdded { note_id, .. } => {
                self.note_ids.insert(note_id);
            }
            E::InteractionDeleted { .. } => self.deleted = true,
            E::OfferMade { agent_id, attempt, target_seq, expires_at, .. } => {
                self.attempts = self.attempts.max(attempt);
                self.offers.insert(
                    agent_id,
                    OfferState { attempt, target_seq, expires_at, status: OfferStatus::Live },
                );
            }
            E::OfferAccepted { agent_id, attempt, .. } => {
                self.set_offer(agent_id, attempt, OfferStatus::Accepted)
            }
            E::OfferRejected { agent_id, attempt, .. } => {
                self.set_offer(agent_id, attempt, OfferStatus::Rejected);
                self.declined.insert(agent_id);
            }
            E::OfferTimedOut { agent_id, attempt, .. } => {
                self.set_offer(agent_id, attempt, OfferStatus::TimedOut);
                self.declined.insert(agent_id);
            }
            E::OfferWithdrawn { agent_id, attempt, .. } => {
                self.set_offer(agent_id, attempt, OfferStatus::Withdrawn);
            }
            E::TransferRequested { from, to, seq, until, .. } => {
                self.target = Some(CurrentTarget {
                    target: to,
                    reason: TargetReason::Transfer { from },
                    seq,
                    until: Some(until),
                });
                self.last_seq = self.last_seq.max(seq);
                self.declined.clear();
            }
            E::TransferReturned { seq, agent_id, .. } => {
                if self.target.is_some_and(|t| t.seq == seq) {
                    self.target = None;
                }
                self.agent_id = Some(agent_id);
                if self.stage == Stage::Waiting {
                    self.stage = Stage::Assigned;
                }
            }
            E::WrapUpStarted { .. } => self.wrap_up_started = true,
        }
    }

    fn set_offer(&mut self, agent_id: AgentId, attempt: u32, status: OfferStatus) {
        if let Some(offer) = self.offers.get_mut(&agent_id).filter(|o| o.attempt == attempt) {
            offer.status = status;
        }
    }

    fn is_open(&self) -> bool {
        matches!(self.stage, Stage::Waiting | Stage::Assigned)
    }

    fn require_open(&self) -> Result<(), InteractionError> {
        if self.deleted {
            return Err(InteractionError::NotFound);
        }
        match self.stage {
            Stage::New => Err(InteractionError::NotFound),
            Stage::Closed | Stage::Disposed => Err(InteractionError::Closed),
            Stage::Waiting | Stage::Assigned => Ok(()),
        }
    }

    /// For commands from timers and the board: a missing interaction is an error, anything
    /// else that no longer applies is a no-op the caller checks for.
    fn require_exists(&self) -> Result<(), InteractionError> {
        if self.stage == Stage::New || self.deleted { Err(InteractionError::NotFound) } else { Ok(()) }
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

    /// Takes back every live offer, oldest first.
    fn withdraw_all(&self, reason: WithdrawReason, at: DateTime<Utc>) -> Vec<InteractionEvent> {
        self.live_offers()
            .into_iter()
            .map(|(agent_id, attempt)| InteractionEvent::OfferWithdrawn { agent_id, attempt, reason, at })
            .collect()
    }

    /// The agent's latest offer, if it can still be answered at `at`.
    fn answerable_offer(&self, agent_id: AgentId, at: DateTime<Utc>) -> Result<OfferState, InteractionError> {
        let offer = self.offers.get(&agent_id).ok_or(InteractionError::NotOffered)?;
        match offer.status {
            OfferStatus::Live if at < offer.expires_at => Ok(*offer),
            OfferStatus::Live | OfferStatus::TimedOut => Err(InteractionError::OfferExpired),
            OfferStatus::Withdrawn => Err(InteractionError::OfferWithdrawn),
            OfferStatus::Accepted | OfferStatus::Rejected => Err(InteractionError::NotOffered),
        }
    }
}

fn seconds(secs: u32) -> Duration {
    Duration::seconds(i64::from(secs))
}

/// Events decided so far in one command, folded into a scratch copy of the state so the plan
/// runner sees its own effects (new tags, the next target number, the routing just started).
struct Emitter {
    state: Interaction,
    events: Vec<InteractionEvent>,
    /// Automatic replies sent so far in this command (their ids derive from the seed and this).
    replies: u32,
}

impl Emitter {
    fn new(state: &Interaction) -> Self {
        Self { state: state.clone(), events: vec![], replies: 0 }
    }

    fn emit(&mut self, event: InteractionEvent) {
        self.state.fold(event.clone());
        self.events.push(event);
    }

    fn next_seq(&self) -> u32 {
        self.state.last_seq + 1
    }

    /// Closes with a disposition on the system's behalf, taking back live offers first.
    fn close_by_system(&mut self, reason: SystemClose, disposition: DispositionCode, at: DateTime<Utc>) {
        for withdrawn in self.state.withdraw_all(WithdrawReason::InteractionClosed, at) {
            self.emit(withdrawn);
        }
        self.emit(InteractionEvent::InteractionClosedBySystem { reason, disposition, at });
    }

    /// The whitelist turned the number away: the automatic reply (if any; sent by the outbox
    /// like a plan's) and a system close with its reason, before any routing.
    fn refuse_not_whitelisted(&mut self, reply: Option<MessageText>, seed: Uuid, at: DateTime<Utc>) {
        if let (Some(text), Some(account_id), Some(to)) =
            (reply, self.state.account_id, self.state.customer.clone())
        {
            let message_id = MessageId::derived(seed, self.replies);
            self.replies += 1;
            // `step` is 0: no plan step sent it; the close that follows in the same commit
            // says why it was sent.
            self.emit(InteractionEvent::AutoReplySent { account_id, message_id, to, text, step: 0, at });
        }
        self.close_by_system(SystemClose::NotWhitelisted, not_whitelisted(), at);
    }

    /// Runs the plan from `from` until a waiting step, a close, or the end of the plan.
    fn run_plan(&mut self, from: usize, seed: Uuid, at: DateTime<Utc>) {
        use InteractionEvent as E;
        let Some(routing) = self.state.routing.clone() else {
            return self.plan_ended(at);
        };
        let plan = &routing.plan;
        // A jump back can loop through instant steps forever; this bounds one command's work.
        let mut budget = 2 * plan.steps.len() + 2;
        let mut step = from;
        while let Some(current) = plan.steps.get(step) {
            if budget == 0 {
                break;
            }
            budget -= 1;
            if let Some(gate) = &current.when
                && !gate.contains(at, &plan.time_zone)
            {
                self.emit(E::RoutingStepSkipped { step, at });
                step += 1;
                continue;
            }
            match &current.action {
                StepAction::Queue { queue_id, timeout_secs } => {
                    let until = timeout_secs.map(|secs| at + seconds(secs));
                    let seq = self.next_seq();
                    let target = Target::Queue(*queue_id);
                    let reason = TargetReason::Plan { step };
                    return self.emit(E::RoutingTargetSet { target, reason, seq, until, at });
                }
                StepAction::Agent { agent_id, timeout_secs } => {
                    let until = Some(at + seconds(*timeout_secs));
                    let seq = self.next_seq();
                    let target = Target::Agent(*agent_id);
                    let reason = TargetReason::Plan { step };
                    return self.emit(E::RoutingTargetSet { target, reason, seq, until, at });
                }
                StepAction::AutoReply { text } => {
                    if let (Some(account_id), Some(to)) = (self.state.account_id, self.state.customer.clone())
                    {
                        let message_id = MessageId::derived(seed, self.replies);
                        self.replies += 1;
                        self.emit(E::AutoReplySent {
                            account_id,
                            message_id,
                            to,
                            text: text.clone(),
                            step,
                            at,
                        });
                    }
                    step += 1;
                }
                StepAction::SetTags { tags } => {
                    let new: BTreeSet<Tag> = tags.difference(&self.state.tags).cloned().collect();
                    if !new.is_empty() {
                        self.emit(E::TagsAdded { tags: new, by: None, at });
                    }
                    step += 1;
                }
                StepAction::Close { disposition } => {
                    return self.close_by_system(SystemClose::PlanStep { step }, disposition.clone(), at);
                }
                StepAction::GoTo { condition, step: target } => {
                    let taken = match condition {
                        Condition::InContactList { list_id } => routing.contact_lists.contains(list_id),
                        Condition::TextContains { text } => self
                            .state
                            .last_customer_text
                            .as_ref()
                            .is_some_and(|body| body.to_lowercase().contains(&text.to_lowercase())),
                        Condition::Within { interval } => interval.contains(at, &plan.time_zone),
                    };
                    let next = if taken { *target } else { step + 1 };
                    self.emit(E::RoutingJumpEvaluated { step, taken, next, at });
                    step = next;
                }
            }
        }
        self.plan_ended(at);
    }

    /// The plan ran out: wait in the last queue visited, without deadline, or stay unrouted.
    fn plan_ended(&mut self, at: DateTime<Utc>) {
        self.emit(InteractionEvent::RoutingPlanEnded { at });
        if let Some(queue_id) = self.state.queue_id {
            let seq = self.next_seq();
            self.emit(InteractionEvent::RoutingTargetSet {
                target: Target::Queue(queue_id),
                reason: TargetReason::PlanEnd,
                seq,
                until: None,
                at,
            });
        }
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
                routing,
                screening,
                seed,
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
                    Stage::New => {
                        let mut em = Emitter::new(self);
                        em.emit(E::InteractionOpened {
                            account_id,
                            customer,
                            customer_name,
                            queue_id: None,
                            at,
                        });
                        em.emit(received);
                        if let Screening::NotWhitelisted { reply } = screening {
                            em.refuse_not_whitelisted(reply, seed, at);
                            return Ok(em.events);
                        }
                        if let Some(RoutingSetup { plan, rules, contact_lists }) = routing {
                            em.emit(E::RoutingStarted { plan, rules, contact_lists, at });
                            em.run_plan(0, seed, at);
                        }
                        Ok(em.events)
                    }
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
            C::Close { by, disposition, at } => {
                self.require_open()?;
                let disposer = match by {
                    Closer::Agent(agent_id) => {
                        self.require_agent(agent_id)?;
                        if self.rules().mandatory_disposition.is_some() && disposition.is_none() {
                            return Err(InteractionError::DispositionRequired);
                        }
                        Some(agent_id)
                    }
                    // Supervisors and the system never need one; one they give is recorded
                    // for the owner, or left for later when nobody owns it.
                    Closer::Supervisor | Closer::System => self.agent_id,
                };
                let mut events = self.withdraw_all(WithdrawReason::InteractionClosed, at);
                events.push(E::InteractionClosed { by, at });
                if let (Some(agent_id), Some(disposition)) = (disposer, disposition) {
                    events.push(E::InteractionDisposed { agent_id, disposition, at });
                }
                Ok(events)
            }
            C::Offer { agent_id, target_seq, attempt, expires_at, exclusive, explanation, at } => {
                self.require_exists()?;
                // Any mismatch means the board decided on an older state: not an error, the
                // next round decides again.
                let live = self.live_offers();
                let stands = self.is_open()
                    && self.target.is_some_and(|t| t.seq == target_seq)
                    && attempt == self.attempts + 1
                    && !self.declined.contains(&agent_id)
                    && !live.iter().any(|(holder, _)| *holder == agent_id)
                    && (!exclusive || live.is_empty());
                Ok(if stands {
                    vec![E::OfferMade { agent_id, attempt, target_seq, expires_at, explanation, at }]
                } else {
                    vec![]
                })
            }
            C::AcceptOffer { agent_id, at } => {
                self.require_open()?;
                // A repeated accept by whoever got it records nothing.
                if self.offers.get(&agent_id).is_some_and(|o| o.status == OfferStatus::Accepted)
                    && self.agent_id == Some(agent_id)
                    && self.target.is_none()
                {
                    return Ok(vec![]);
                }
                let offer = self.answerable_offer(agent_id, at)?;
                let mut events = vec![E::OfferAccepted { agent_id, attempt: offer.attempt, at }];
                events.extend(self.withdraw_all(WithdrawReason::TakenByAnother, at).into_iter().filter(
                    |e| !matches!(e, E::OfferWithdrawn { agent_id: other, .. } if *other == agent_id),
                ));
                events.push(E::AgentAssigned { agent_id, at });
                Ok(events)
            }
            C::RejectOffer { agent_id, at } => {
                self.require_open()?;
                let offer = self.answerable_offer(agent_id, at)?;
                Ok(vec![E::OfferRejected { agent_id, attempt: offer.attempt, at }])
            }
            C::ExpireOffer { agent_id, attempt, at } => {
                self.require_exists()?;
                let due = self.offers.get(&agent_id).is_some_and(|o| {
                    o.attempt == attempt && o.status == OfferStatus::Live && at >= o.expires_at
                });
                Ok(if due { vec![E::OfferTimedOut { agent_id, attempt, at }] } else { vec![] })
            }
            C::WithdrawOffer { agent_id, attempt, reason, at } => {
                self.require_exists()?;
                let live = self
                    .offers
                    .get(&agent_id)
                    .is_some_and(|o| o.attempt == attempt && o.status == OfferStatus::Live);
                Ok(if live { vec![E::OfferWithdrawn { agent_id, attempt, reason, at }] } else { vec![] })
            }
            C::ExpireTarget { seq, seed, at } => {
                self.require_exists()?;
                // Only the current target's own timer, once due; anything else is stale.
                let Some(current) = self.target.filter(|t| t.seq == seq) else { return Ok(vec![]) };
                if !self.is_open() || current.until.is_none_or(|until| at < until) {
                    return Ok(vec![]);
                }
                let mut em = Emitter::new(self);
                em.emit(E::RoutingTargetExpired { seq, at });
                for withdrawn in self.withdraw_all(WithdrawReason::TargetChanged, at) {
                    em.emit(withdrawn);
                }
                match current.reason {
                    TargetReason::Plan { step } => em.run_plan(step + 1, seed, at),
                    // Never has a deadline; nothing follows it.
                    TargetReason::PlanEnd => {}
                    TargetReason::StickyAgent => match self.queue_id {
                        Some(queue_id) => {
                            let seq = em.next_seq();
                            em.emit(E::RoutingTargetSet {
                                target: Target::Queue(queue_id),
                                reason: TargetReason::StickyQueue,
                                seq,
                                until: Some(at + seconds(self.rules().wait_for_queue_secs)),
                                at,
                            });
                        }
                        None => em.run_plan(0, seed, at),
                    },
                    TargetReason::StickyQueue => em.run_plan(0, seed, at),
                    TargetReason::Transfer { from } => {
                        em.emit(E::TransferReturned { seq, agent_id: from, at })
                    }
                }
                Ok(em.events)
            }
            C::StartStickyReturn { agent_id, at } => {
                self.require_exists()?;
                // The board may have seen an older state: only while still theirs and idle.
                if !self.is_open() || self.agent_id != Some(agent_id) || self.target.is_some() {
                    return Ok(vec![]);
                }
                Ok(vec![E::RoutingTargetSet {
                    target: Target::Agent(agent_id),
                    reason: TargetReason::StickyAgent,
                    seq: self.last_seq + 1,
                    until: Some(at + seconds(self.rules().wait_for_agent_secs)),
                    at,
                }])
            }
            C::Transfer { agent_id, to, at } => {
                self.require_open()?;
                let timeout = self.rules().transfer_timeout_secs.ok_or(InteractionError::TransferDisabled)?;
                self.require_agent(agent_id)?;
                if to == Target::Agent(agent_id) {
                    return Err(InteractionError::TransferToSelf);
                }
                if self.target.is_some_and(|t| matches!(t.reason, TargetReason::Transfer { .. })) {
                    return Err(InteractionError::TransferPending);
                }
                // Handing it over ends a sticky wait for the owner: its offers go.
                let mut events = self.withdraw_all(WithdrawReason::TargetChanged, at);
                events.push(E::TransferRequested {
                    from: agent_id,
                    to,
                    seq: self.last_seq + 1,
                    until: at + seconds(timeout),
                    at,
                });
                Ok(events)
            }
            C::AddTags { agent_id, tags, at } => {
                self.require_open()?;
                self.require_agent(agent_id)?;
                if tags.is_empty() {
                    return Err(InteractionError::NoTags);
                }
                let new: BTreeSet<Tag> = tags.difference(&self.tags).cloned().collect();
                Ok(if new.is_empty() {
                    vec![]
                } else {
                    vec![E::TagsAdded { tags: new, by: Some(agent_id), at }]
                })
            }
            C::CloseForInactivity { since, at } => {
                self.require_exists()?;
                let Some(minutes) = self.rules().inactivity_minutes else { return Ok(vec![]) };
                // Timer payloads may keep only milliseconds; no two messages share one.
                let still_idle = self
                    .last_message
                    .is_some_and(|m| m.by_agent && m.at.timestamp_millis() == since.timestamp_millis());
                if !self.is_open() || !still_idle || at < since + Duration::minutes(i64::from(minutes)) {
                    return Ok(vec![]);
                }
                let mut em = Emitter::new(self);
                em.close_by_system(
                    SystemClose::Inactivity { idle_since: since },
                    closed_for_inactivity(),
                    at,
                );
                Ok(em.events)
            }
            C::StartWrapUp { agent_id, at } => {
                self.require_open()?;
                self.require_agent(agent_id)?;
                let Some(mandatory) = self.rules().mandatory_disposition else { return Ok(vec![]) };
                if self.wrap_up_started {
                    return Ok(vec![]);
                }
                Ok(vec![E::WrapUpStarted { agent_id, pause_reason: mandatory.pause_reason, at }])
            }
            C::AddNote { note_id, author, text, at } => {
                self.require_exists()?;
                // An agent writes notes on what they own; supervisors on anything they follow.
                if let NoteAuthor::Agent { agent_id } = &author {
                    self.require_agent(*agent_id)?;
                }
                if self.note_ids.contains(&note_id) {
                    return Ok(vec![]);
                }
                Ok(vec![E::NoteAdded { note_id, author, text, at }])
            }
            C::Delete { at } => {
                self.require_exists()?;
                if self.is_open() {
                    return Err(InteractionError::StillOpen);
                }
                Ok(vec![E::InteractionDeleted { at }])
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

/// The system disposition of an inactivity close.
fn closed_for_inactivity() -> DispositionCode {
    DispositionCode::parse(CLOSED_FOR_INACTIVITY).expect("the constant is a valid disposition")
}

/// The system disposition of a close by the whitelist.
fn not_whitelisted() -> DispositionCode {
    DispositionCode::parse(NOT_WHITELISTED).expect("the constant is a valid disposition")
}

crate::impl_aggregate!(Interaction, "Interaction", InteractionCommand, InteractionEvent, InteractionError);
