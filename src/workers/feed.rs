//! The agents' live feed: follows the event log and pushes what each agent needs to see to
//! their websocket sessions (offers with deadlines and their rendered notification, customer
//! messages, delivery statuses, interaction changes, account membership changes).
//!
//! It reads the same global log as the projectors, starting at the head when the server
//! starts, so events committed by any node reach the agent connected to this one. Delivery is
//! best effort: a client that reconnects reloads its state through the HTTP API. Agents also
//! hear about their own presence changes (e.g. paused after a missed offer, unreachable after
//! their socket dropped).
//!
//! Frames about an interaction go to its owner, which the feed tracks from the stream
//! (`AgentAssigned`, including a transfer's new owner, and `TransferReturned`), asking the
//! aggregate only the first time it sees an interaction. While nobody is connected the feed
//! skips ahead and forgets what it knew, since it no longer sees every change.
//!
//! Visibility: a frame about an interaction reaches an agent only while they are a member of
//! its account. Membership is primed from the account aggregate and then followed in the
//! stream, so an `AgentRemovedFromAccount` cuts the agent off from every later event of that
//! account (they get an `account_removed` frame telling them to drop what they show of it).
//! When membership cannot be learned, nothing about the interaction is sent (closed, not open).
//!
//! Offer notifications: every `offer` frame carries `notification: {text, sound, shake}`,
//! rendered from the account's template (or the built-in default) with the facts the view
//! keeps: account name/key/phone and membership (account aggregate, cached until an account
//! event other than membership or notification changes arrives), queue names (queue aggregate,
//! cached until a queue event), the contact and last customer text (from the stream, primed
//! from the interaction aggregate and its list row on first sight). No query per offer.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use sqlx::Row;
use switchboard_domain::account::{Account, AccountEvent, NotificationSettings};
use switchboard_domain::agent::{AgentEvent, Presence};
use switchboard_domain::interaction::{DeliveryStatus, InboundContent, Interaction, InteractionEvent};
use switchboard_domain::notify::Template;
use switchboard_domain::routing::Target;
use switchboard_domain::{AccountId, AgentId, InteractionId, QueueId};
use switchboard_projections::{Checkpoint, DomainEventPayload, log};
use tokio::sync::{mpsc, watch};

use crate::core::Core;

/// Connected sessions: agents (by agent id) and supervisors (by session, each with the
/// interactions they spy on).
#[derive(Clone, Default)]
pub struct Hub {
    sessions: Arc<Mutex<HashMap<AgentId, Vec<mpsc::UnboundedSender<String>>>>>,
    supervisors: Arc<Mutex<HashMap<u64, Watcher>>>,
    next_supervisor: Arc<AtomicU64>,
}

/// A supervisor's socket.
struct Watcher {
    tx: mpsc::UnboundedSender<String>,
    spying: HashSet<InteractionId>,
}

/// A supervisor session's handle in the [`Hub`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SupervisorSession(u64);

impl Hub {
    /// Registers a session for `agent_id`; frames for the agent arrive on the receiver.
    pub fn connect(&self, agent_id: AgentId) -> mpsc::UnboundedReceiver<String> {
        let (tx, rx) = mpsc::unbounded_channel();
        if let Ok(mut sessions) = self.sessions.lock() {
            sessions.entry(agent_id).or_default().push(tx);
        }
        rx
    }

    /// How many sessions the feed has to follow the log for: agents, and supervisors spying
    /// on something (the others only get `realtime` frames, which the feed does not make).
    pub fn session_count(&self) -> usize {
        let agents = self.sessions.lock().map(|s| s.values().map(Vec::len).sum()).unwrap_or(0);
        let spies =
            self.supervisors.lock().map(|s| s.values().filter(|w| !w.spying.is_empty()).count()).unwrap_or(0);
        agents + spies
    }

    fn push(&self, agent_id: AgentId, frame: &str) {
        if let Ok(mut sessions) = self.sessions.lock()
            && let Some(list) = sessions.get_mut(&agent_id)
        {
            // Closed sessions are dropped as they are found.
            list.retain(|tx| tx.send(frame.to_owned()).is_ok());
            if list.is_empty() {
                sessions.remove(&agent_id);
            }
        }
    }

    /// Registers a supervisor's socket; its frames arrive on the receiver.
    pub fn connect_supervisor(&self) -> (SupervisorSession, mpsc::UnboundedReceiver<String>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let id = self.next_supervisor.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut supervisors) = self.supervisors.lock() {
            supervisors.insert(id, Watcher { tx, spying: HashSet::new() });
        }
        (SupervisorSession(id), rx)
    }

    /// Forgets a supervisor's socket (and what it spied on).
    pub fn disconnect_supervisor(&self, session: SupervisorSession) {
        if let Ok(mut supervisors) = self.supervisors.lock() {
            supervisors.remove(&session.0);
        }
    }

    /// Starts following `interaction_id` for `session`: every later frame about it is copied
    /// to the supervisor. Changes nothing for anyone else.
    pub fn spy(&self, session: SupervisorSession, interaction_id: InteractionId) {
        if let Ok(mut supervisors) = self.supervisors.lock()
            && let Some(w) = supervisors.get_mut(&session.0)
        {
            w.spying.insert(interaction_id);
        }
    }

    /// Stops following `interaction_id`; whether it was followed.
    pub fn unspy(&self, session: SupervisorSession, interaction_id: InteractionId) -> bool {
        self.supervisors
            .lock()
            .ok()
            .and_then(|mut s| s.get_mut(&session.0).map(|w| w.spying.remove(&interaction_id)))
            .unwrap_or(false)
    }

    /// How many supervisor sockets are open.
    pub fn supervisor_count(&self) -> usize {
        self.supervisors.lock().map(|s| s.len()).unwrap_or(0)
    }

    /// Sends `frame` to every supervisor.
    pub fn broadcast_supervisors(&self, frame: &str) {
        if let Ok(mut supervisors) = self.supervisors.lock() {
            supervisors.retain(|_, w| w.tx.send(frame.to_owned()).is_ok());
        }
    }

    /// Sends frames about `interaction_id` to the supervisors spying on it.
    fn push_spies(&self, interaction_id: InteractionId, frames: &[String]) {
        if let Ok(mut supervisors) = self.supervisors.lock() {
            supervisors.retain(|_, w| {
                !w.spying.contains(&interaction_id) || frames.iter().all(|f| w.tx.send(f.clone()).is_ok())
            });
        }
    }
}

fn status_name(s: DeliveryStatus) -> String {
    serde_json::to_value(s).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

fn presence_name(p: Presence) -> &'static str {
    match p {
        Presence::Offline => "offline",
        Presence::Ready => "ready",
        Presence::Paused => "paused",
    }
}

/// The notification settings in force: the account's own, or the built-in default (sound
/// on, shake off, the seed's example template).
pub fn effective_notification(settings: Option<&NotificationSettings>) -> NotificationSettings {
    settings.cloned().unwrap_or_else(|| NotificationSettings {
        sound: true,
        shake: false,
        template: Template::default_notification(),
    })
}

/// A rendered offer notification, as the `offer` frame carries it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Notification {
    /// The template rendered with the offer's context (never HTML-escaped).
    pub text: String,
    /// Play a sound.
    pub sound: bool,
    /// Shake.
    pub shake: bool,
}

/// Renders `settings` with `context`.
pub fn render_notification(settings: &NotificationSettings, context: &serde_json::Value) -> Notification {
    Notification { text: settings.template.render(context), sound: settings.sound, shake: settings.shake }
}

/// What an offer's notification is rendered from. Unknown facts render as nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NotificationContext {
    /// The account.
    pub account_id: Option<AccountId>,
    /// Its display name.
    pub account_name: Option<String>,
    /// Its short key.
    pub account_key: Option<String>,
    /// Its business phone number.
    pub account_phone: Option<String>,
    /// The queue the offer comes from, with its name; `None` for an offer made to the agent
    /// directly (a plan's agent step, a transfer, a sticky return), so `{{#queue}}` is false.
    pub queue: Option<(QueueId, Option<String>)>,
    /// The customer's number (E.164).
    pub contact_mobile: Option<String>,
    /// The customer's WhatsApp profile name.
    pub contact_name: Option<String>,
    /// The interaction offered.
    pub interaction_id: Option<InteractionId>,
    /// The customer's latest text (or media caption).
    pub message_text: Option<String>,
}

impl NotificationContext {
    /// The JSON the template walks: `account.{id,name,key,phone}`, `queue.{id,name}` (only
    /// when offered from a queue), `contact.{mobile,name}`, `interaction.id`, `message.text`.
    pub fn to_json(&self) -> serde_json::Value {
        let mut context = json!({
            "account": {"id": self.account_id, "name": self.account_name, "key": self.account_key,
                        "phone": self.account_phone},
            "contact": {"mobile": self.contact_mobile, "name": self.contact_name},
            "interaction": {"id": self.interaction_id},
            "message": {"text": self.message_text},
        });
        if let Some((id, name)) = &self.queue {
            context["queue"] = json!({"id": id, "name": name});
        }
        context
    }

    /// A made-up offer of `account` from a queue, for previews.
    pub fn sample(account_id: AccountId, account: &Account) -> Self {
        let facts = AccountFacts::of(account);
        Self {
            account_id: Some(account_id),
            account_name: facts.name,
            account_key: facts.key,
            account_phone: facts.phone,
            queue: Some((QueueId::new(), Some("Sales".to_owned()))),
            contact_mobile: Some("+15551234567".to_owned()),
            contact_name: Some("Jane Doe".to_owned()),
            interaction_id: Some(InteractionId::new()),
            message_text: Some("Hello, I need help with my order".to_owned()),
        }
    }
}

/// What the feed keeps of an account: the facts notifications show, who may see it, and how
/// its offers are announced.
#[derive(Debug, Clone, PartialEq, Eq)]
struct AccountFacts {
    name: Option<String>,
    key: Option<String>,
    phone: Option<String>,
    members: BTreeSet<AgentId>,
    notification: NotificationSettings,
}

impl AccountFacts {
    fn of(account: &Account) -> Self {
        let phone = account.details.phone.as_ref().map(|p| p.as_ref().to_owned());
        Self {
            name: account.name.as_ref().map(|n| n.as_ref().to_owned()),
            key: account.key.as_ref().map(|k| k.as_ref().to_owned()),
            phone,
            members: account.agents.clone(),
            notification: effective_notification(account.notification.as_ref()),
        }
    }
}

/// What the feed keeps of an interaction for visibility and notifications.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct InteractionFacts {
    account_id: Option<AccountId>,
    customer: Option<String>,
    customer_name: Option<String>,
    last_text: Option<String>,
}

impl InteractionFacts {
    fn of(interaction: &Interaction) -> Self {
        Self {
            account_id: interaction.account_id,
            customer: interaction.customer.as_ref().map(|c| c.as_ref().to_owned()),
            customer_name: None,
            last_text: interaction.last_customer_text.clone(),
        }
    }
}

/// An agent's presence as the feed last saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct AgentView {
    presence: Presence,
    reason: Option<String>,
    reachable: bool,
}

/// What the feed knows to address frames and fill presence: each interaction's owner and each
/// agent's presence, learned from the stream (and primed from the aggregates on first sight).
#[derive(Debug, Default)]
struct View {
    /// `None`: nobody owns the interaction yet.
    owners: HashMap<InteractionId, Option<AgentId>>,
    agents: HashMap<AgentId, AgentView>,
    interactions: HashMap<InteractionId, InteractionFacts>,
    accounts: HashMap<AccountId, AccountFacts>,
    /// Queue names (`None`: unnamed or unknown).
    queues: HashMap<QueueId, Option<String>>,
}

impl View {
    /// Forgets everything (the feed skipped events, so what it knew may be stale).
    fn clear(&mut self) {
        self.owners.clear();
        self.agents.clear();
        self.interactions.clear();
        self.accounts.clear();
        self.queues.clear();
    }

    /// The account of an interaction event's interaction, if known (or named by the event).
    fn account_of(&self, id: InteractionId, e: &InteractionEvent) -> Option<AccountId> {
        match e {
            InteractionEvent::InteractionOpened { account_id, .. } => Some(*account_id),
            _ => self.interactions.get(&id).and_then(|f| f.account_id),
        }
    }

    /// Whether `payload` needs a fact the view lacks: the interaction's owner (unless the event
    /// names the owner itself), its account and that account's members, an offer's queue
    /// name or, for reachability changes, the agent's presence.
    fn needs(&self, aggregate_id: &str, payload: &DomainEventPayload) -> Option<Missing> {
        match payload {
            DomainEventPayload::Interaction(e) => {
                let id = aggregate_id.parse().ok()?;
                let names_owner = matches!(
                    e,
                    InteractionEvent::AgentAssigned { .. } | InteractionEvent::TransferReturned { .. }
                );
                if !names_owner && !self.owners.contains_key(&id) {
                    return Some(Missing::Owner(id));
                }
                let opened = matches!(e, InteractionEvent::InteractionOpened { .. });
                if !opened && !self.interactions.contains_key(&id) {
                    return Some(Missing::Facts(id));
                }
                if let Some(account_id) = self.account_of(id, e)
                    && !self.accounts.contains_key(&account_id)
                {
                    return Some(Missing::Account(account_id));
                }
                if let InteractionEvent::OfferMade { explanation, .. } = e
                    && let Target::Queue(queue_id) = explanation.target
                    && !self.queues.contains_key(&queue_id)
                {
                    return Some(Missing::Queue(queue_id));
                }
                None
            }
            DomainEventPayload::Agent(
                AgentEvent::AgentConnected { .. } | AgentEvent::AgentUnreachable { .. },
            ) => {
                let id = aggregate_id.parse().ok()?;
                (!self.agents.contains_key(&id)).then_some(Missing::Presence(id))
            }
            _ => None,
        }
    }

    /// Updates the view with an event and returns the frames it produces, and for whom.
    #[cfg(test)]
    fn frames(&mut self, aggregate_id: &str, payload: &DomainEventPayload) -> Vec<(AgentId, String)> {
        self.frames_and_spied(aggregate_id, payload).0
    }

    /// [`View::frames`], plus the frames about the event's interaction for the supervisors
    /// spying on it (every frame the event makes, whoever it is addressed to, once).
    fn frames_and_spied(
        &mut self,
        aggregate_id: &str,
        payload: &DomainEventPayload,
    ) -> (Vec<(AgentId, String)>, Spied) {
        match payload {
            DomainEventPayload::Interaction(e) => match aggregate_id.parse() {
                Ok(interaction_id) => {
                    // Taken before the event updates the view (a disposal forgets the facts).
                    let account_id = self.account_of(interaction_id, e);
                    let all = self.interaction_frames(interaction_id, e);
                    // Only members of the account hear about its interactions; unknown
                    // membership tells nobody.
                    let members = account_id.and_then(|a| self.accounts.get(&a)).map(|a| &a.members);
                    let mut agents = Vec::new();
                    let mut spied: Vec<String> = Vec::new();
                    for (agent, frame) in all {
                        if spied.last() != Some(&frame) {
                            spied.push(frame.clone());
                        }
                        if let Some(agent) = agent
                            && members.is_some_and(|m| m.contains(&agent))
                        {
                            agents.push((agent, frame));
                        }
                    }
                    (agents, Some((interaction_id, spied)))
                }
                Err(_) => (vec![], None),
            },
            other => (self.other_frames(aggregate_id, other), None),
        }
    }

    /// Frames of agents', accounts' and queues' events.
    fn other_frames(&mut self, aggregate_id: &str, payload: &DomainEventPayload) -> Vec<(AgentId, String)> {
        match payload {
            DomainEventPayload::Agent(e) => match aggregate_id.parse() {
                Ok(agent_id) => self.presence_frames(agent_id, e),
                Err(_) => vec![],
            },
            DomainEventPayload::Account(e) => match aggregate_id.parse() {
                Ok(account_id) => self.account_frames(account_id, e),
                Err(_) => vec![],
            },
            // A renamed queue is learned again when next needed.
            DomainEventPayload::Queue(_) => {
                if let Ok(queue_id) = aggregate_id.parse() {
                    self.queues.remove(&queue_id);
                }
                vec![]
            }
            _ => vec![],
        }
    }

    /// Membership changes take effect in the view at once and are told to the agent; the
    /// notification settings are followed; any other change (name, key, phone...) makes the
    /// view learn the account again when next needed.
    fn account_frames(&mut self, account_id: AccountId, e: &AccountEvent) -> Vec<(AgentId, String)> {
        let known = self.accounts.get_mut(&account_id);
        match e {
            AccountEvent::AgentAddedToAccount { agent_id, at } => {
                if let Some(facts) = known {
                    facts.members.insert(*agent_id);
                }
                let frame = json!({"type": "account_added", "account_id": account_id, "at": at});
                vec![(*agent_id, frame.to_string())]
            }
            AccountEvent::AgentRemovedFromAccount { agent_id, at } => {
                if let Some(facts) = known {
                    facts.members.remove(agent_id);
                }
                let frame = json!({"type": "account_removed", "account_id": account_id, "at": at});
                vec![(*agent_id, frame.to_string())]
            }
            AccountEvent::NotificationSet { notification, .. } => {
                if let Some(facts) = known {
                    facts.notification = notification.clone();
                }
                vec![]
            }
            _ => {
                self.accounts.remove(&account_id);
                vec![]
            }
        }
    }

    /// The notification of an offer of interaction `id`, from `queue_id` if not direct.
    fn notification(&self, id: InteractionId, queue_id: Option<QueueId>) -> Notification {
        let facts = self.interactions.get(&id);
        let account_id = facts.and_then(|f| f.account_id);
        let account = account_id.and_then(|a| self.accounts.get(&a));
        let context = NotificationContext {
            account_id,
            account_name: account.and_then(|a| a.name.clone()),
            account_key: account.and_then(|a| a.key.clone()),
            account_phone: account.and_then(|a| a.phone.clone()),
            queue: queue_id.map(|q| (q, self.queues.get(&q).cloned().flatten())),
            contact_mobile: facts.and_then(|f| f.customer.clone()),
            contact_name: facts.and_then(|f| f.customer_name.clone()),
            interaction_id: Some(id),
            message_text: facts.and_then(|f| f.last_text.clone()),
        };
        let default;
        let settings = match account {
            Some(a) => &a.notification,
            None => {
                default = effective_notification(None);
                &default
            }
        };
        render_notification(settings, &context.to_json())
    }

    fn presence_frames(&mut self, agent_id: AgentId, event: &AgentEvent) -> Vec<(AgentId, String)> {
        let known = self.agents.get(&agent_id).cloned();
        // Unknown reachability: assume reachable (a fresh agent is; the receiver has a socket).
        let reachable = known.as_ref().is_none_or(|v| v.reachable);
        let (view, at) = match event {
            AgentEvent::AgentLoggedIn { at } => {
                (AgentView { presence: Presence::Paused, reason: None, reachable: true }, at)
            }
            AgentEvent::AgentBecameReady { at } => {
                (AgentView { presence: Presence::Ready, reason: None, reachable: true }, at)
            }
            AgentEvent::AgentPaused { reason, at } => (
                AgentView {
                    presence: Presence::Paused,
                    reason: reason.as_ref().map(|r| r.as_ref().to_owned()),
                    reachable,
                },
                at,
            ),
            AgentEvent::AgentLoggedOut { at } => {
                (AgentView { presence: Presence::Offline, reason: None, reachable }, at)
            }
            AgentEvent::AgentConnected { at, .. } => match known {
                Some(v) => (AgentView { reachable: true, ..v }, at),
                None => return vec![],
            },
            AgentEvent::AgentUnreachable { at, .. } => match known {
                Some(v) => (AgentView { reachable: false, ..v }, at),
                None => return vec![],
            },
            _ => return vec![],
        };
        let frame = json!({"type": "presence", "presence": presence_name(view.presence), "reason": view.reason,
                           "reachable": view.reachable, "at": at});
        self.agents.insert(agent_id, view);
        vec![(agent_id, frame.to_string())]
    }

    fn interaction_frames(
        &mut self,
        interaction_id: InteractionId,
        e: &InteractionEvent,
    ) -> Vec<(Option<AgentId>, String)> {
        let id = interaction_id;
        let owner = self.owners.get(&id).copied().flatten();
        // Every frame is kept, even with nobody to address it to: spying supervisors see the
        // whole thread, also while the interaction waits unassigned.
        let to = |agent: Option<AgentId>, frame: serde_json::Value| -> Vec<(Option<AgentId>, String)> {
            vec![(agent, frame.to_string())]
        };
        match e {
            InteractionEvent::OfferMade { agent_id, attempt, target_seq, expires_at, explanation, at } => {
                let (queue_id, agent) = match explanation.target {
                    Target::Queue(q) => (Some(q), None),
                    Target::Agent(a) => (None, Some(a)),
                };
                let notification = self.notification(id, queue_id);
                to(
                    Some(*agent_id),
                    json!({"type": "offer", "interaction_id": id, "queue_id": queue_id, "direct": agent.is_some(),
                           "attempt": attempt, "target_seq": target_seq, "expires_at": expires_at, "at": at,
                           "notification": notification}),
                )
            }
            InteractionEvent::OfferAccepted { agent_id, attempt, at }
            | InteractionEvent::OfferRejected { agent_id, attempt, at }
            | InteractionEvent::OfferTimedOut { agent_id, attempt, at }
            | InteractionEvent::OfferWithdrawn { agent_id, attempt, at, .. } => {
                let reason = match e {
                    InteractionEvent::OfferAccepted { .. } => "accepted",
                    InteractionEvent::OfferRejected { .. } => "rejected",
                    InteractionEvent::OfferTimedOut { .. } => "timed_out",
                    _ => "withdrawn",
                };
                to(
                    Some(*agent_id),
                    json!({"type": "offer_closed", "interaction_id": id, "attempt": attempt, "reason": reason, "at": at}),
                )
            }
            InteractionEvent::InteractionOpened { account_id, customer, customer_name, .. } => {
                self.interactions.insert(
                    id,
                    InteractionFacts {
                        account_id: Some(*account_id),
                        customer: Some(customer.as_ref().to_owned()),
                        customer_name: customer_name.clone(),
                        last_text: None,
                    },
                );
                vec![]
            }
            InteractionEvent::CustomerMessageReceived { message_id, content, sent_at, at, .. } => {
                let text = match content {
                    InboundContent::Text { body } => Some(body),
                    InboundContent::Media { caption, .. } => caption.as_ref(),
                    _ => None,
                };
                if let Some(text) = text
                    && let Some(facts) = self.interactions.get_mut(&id)
                {
                    facts.last_text = Some(text.clone());
                }
                to(
                    owner,
                    json!({"type": "message", "interaction_id": id, "message_id": message_id, "direction": "in",
                           "content": content, "sent_at": sent_at, "at": at}),
                )
            }
            InteractionEvent::AgentMessageSent { message_id, text, at, .. } => to(
                owner,
                json!({"type": "message", "interaction_id": id, "message_id": message_id, "direction": "out",
                       "content": {"type": "text", "body": text}, "status": "pending", "at": at}),
            ),
            // The plan's automatic replies are part of the conversation the owner sees (a plan
            // run again after a sticky wait may send one to an assigned interaction).
            InteractionEvent::AutoReplySent { message_id, text, at, .. } => to(
                owner,
                json!({"type": "message", "interaction_id": id, "message_id": message_id, "direction": "out",
                       "content": {"type": "text", "body": text}, "status": "pending", "auto": true, "at": at}),
            ),
            InteractionEvent::AgentMediaSent { message_id, media, at, .. } => to(
                owner,
                json!({"type": "message", "interaction_id": id, "message_id": message_id, "direction": "out",
                       "content": {"type": "media", "kind": media.kind, "caption": media.caption,
                                   "filename": media.filename, "content_type": media.blob.content_type,
                                   "size": media.blob.size, "sha256": media.blob.sha256},
                       "status": "pending", "at": at}),
            ),
            InteractionEvent::AgentTemplateSent { message_id, template, at, .. } => to(
                owner,
                json!({"type": "message", "interaction_id": id, "message_id": message_id, "direction": "out",
                       "content": {"type": "template", "name": template.name, "language": template.language,
                                   "parameters": template.parameters},
                       "status": "pending", "at": at}),
            ),
            InteractionEvent::InboundMediaStored { message_id, blob, at } => to(
                owner,
                json!({"type": "media", "interaction_id": id, "message_id": message_id, "state": "stored",
                       "content_type": blob.content_type, "size": blob.size, "sha256": blob.sha256, "at": at}),
            ),
            InteractionEvent::InboundMediaUnavailable { message_id, code, reason, at } => to(
                owner,
                json!({"type": "media", "interaction_id": id, "message_id": message_id, "state": "unavailable",
                       "error_code": code, "error_reason": reason, "at": at}),
            ),
            InteractionEvent::OutboundMessageAccepted { message_id, provider_message_id, at } => to(
                owner,
                json!({"type": "message_status", "interaction_id": id, "message_id": message_id,
                       "status": "accepted", "provider_message_id": provider_message_id, "at": at}),
            ),
            InteractionEvent::OutboundMessageFailed { message_id, failure, at } => to(
                owner,
                json!({"type": "message_status", "interaction_id": id, "message_id": message_id,
                       "status": "failed", "error_code": failure.code, "error_reason": failure.reason, "at": at}),
            ),
            InteractionEvent::OutboundStatusChanged { message_id, status, failure, at } => to(
                owner,
                json!({"type": "message_status", "interaction_id": id, "message_id": message_id,
                       "status": status_name(*status),
                       "error_code": failure.as_ref().map(|f| f.code.clone()),
                       "error_reason": failure.as_ref().map(|f| f.reason.clone()), "at": at}),
            ),
            // A new owner (first assignment, or whoever accepted a transfer or a sticky wait's
            // queue offer). The previous owner hears it too: the interaction left their desk.
            InteractionEvent::AgentAssigned { agent_id, at } => {
                self.owners.insert(id, Some(*agent_id));
                let frame = json!({"type": "interaction", "interaction_id": id, "status": "assigned",
                                   "agent_id": agent_id, "at": at})
                .to_string();
                let mut frames = vec![(Some(*agent_id), frame.clone())];
                if let Some(previous) = owner.filter(|p| p != agent_id) {
                    frames.push((Some(previous), frame));
                }
                frames
            }
            // The owner asked; the target hears through its offer, nobody else at all.
            InteractionEvent::TransferRequested { from, to: target, seq, until, at } => to(
                Some(*from),
                json!({"type": "interaction", "interaction_id": id, "status": "transfer_requested",
                       "to": target, "target_seq": seq, "until": until, "at": at}),
            ),
            InteractionEvent::TransferReturned { seq, agent_id, at } => {
                self.owners.insert(id, Some(*agent_id));
                to(
                    Some(*agent_id),
                    json!({"type": "interaction", "interaction_id": id, "status": "returned", "unread": true,
                           "target_seq": seq, "at": at}),
                )
            }
            InteractionEvent::WrapUpStarted { agent_id, pause_reason, at } => to(
                Some(*agent_id),
                json!({"type": "interaction", "interaction_id": id, "status": "wrap_up",
                       "pause_reason": pause_reason, "at": at}),
            ),
            // Internal notes reach the owner and spying supervisors, never the customer.
            InteractionEvent::NoteAdded { note_id, author, text, at } => to(
                owner,
                json!({"type": "note", "interaction_id": id, "note_id": note_id, "author": author,
                       "text": text, "at": at}),
            ),
            InteractionEvent::InteractionClosed { by, at } => to(
                owner,
                json!({"type": "interaction", "interaction_id": id, "status": "closed", "closed_by": by, "at": at}),
            ),
            // Nothing more happens to a disposed interaction: forget its owner.
            InteractionEvent::InteractionDisposed { disposition, at, .. } => {
                self.owners.remove(&id);
                self.interactions.remove(&id);
                to(
                    owner,
                    json!({"type": "interaction", "interaction_id": id, "status": "disposed",
                           "disposition": disposition, "at": at}),
                )
            }
            InteractionEvent::InteractionClosedBySystem { reason, disposition, at } => {
                self.owners.remove(&id);
                self.interactions.remove(&id);
                to(
                    owner,
                    json!({"type": "interaction", "interaction_id": id, "status": "disposed", "closed_by": "system",
                           "reason": reason, "disposition": disposition, "at": at}),
                )
            }
            _ => vec![],
        }
    }
}

/// The frames an interaction event makes for the supervisors spying on that interaction.
type Spied = Option<(InteractionId, Vec<String>)>;

/// A fact the view must learn from an aggregate before an event can be addressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Missing {
    /// The interaction's owner (and its facts, from the same read).
    Owner(InteractionId),
    /// The interaction's facts only (the event names the owner).
    Facts(InteractionId),
    /// An account's facts and members.
    Account(AccountId),
    /// A queue's name.
    Queue(QueueId),
    Presence(AgentId),
}

/// Follows the log and pushes frames until shutdown.
pub async fn run(core: Core, hub: Hub, mut shutdown: watch::Receiver<bool>, poll: Duration) {
    let mut commits = core.commit_signal();
    let mut position = loop {
        match core.db.any.acquire().await {
            Ok(mut conn) => match log::head(&mut conn, core.db.backend).await {
                Ok(head) => break head,
                Err(e) => tracing::error!(error = %e, "feed cannot read the log head"),
            },
            Err(e) => tracing::error!(error = %e, "feed cannot connect"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    let mut view = View::default();
    loop {
        if *shutdown.borrow() {
            return;
        }
        match step(&core, &hub, &mut position, &mut view).await {
            Ok(n) if n > 0 => continue,
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "feed step failed"),
        }
        tokio::select! {
            _ = commits.changed() => {}
            _ = tokio::time::sleep(poll) => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// Realtime figures are pushed at most this often (a burst of events makes one frame).
pub const REALTIME_DEBOUNCE: Duration = Duration::from_millis(200);

/// The `realtime` frame: the snapshot with its `type`.
pub fn realtime_frame(snapshot: &crate::services::realtime::Snapshot) -> String {
    let mut frame = serde_json::to_value(snapshot).unwrap_or_else(|_| json!({}));
    frame["type"] = json!("realtime");
    frame.to_string()
}

/// Pushes a `realtime` frame to every supervisor when the figures change, until shutdown.
///
/// Wakes on commits (or the poll interval), and recomputes only when the read models'
/// checkpoint moved (the figures are read from them); pushes only when the snapshot differs
/// from the last one pushed, ignoring what moves with the clock alone (see
/// `Snapshot::fingerprint`); then waits [`REALTIME_DEBOUNCE`] before looking again. Nobody
/// connected: nothing is computed (each new socket gets its own snapshot on connect).
pub async fn publish_realtime(core: Core, hub: Hub, mut shutdown: watch::Receiver<bool>, poll: Duration) {
    let mut commits = core.commit_signal();
    let mut seen: Option<Checkpoint> = None;
    let mut pushed = String::new();
    loop {
        if *shutdown.borrow() {
            return;
        }
        if hub.supervisor_count() == 0 {
            seen = None;
            pushed.clear();
        } else {
            match crate::workers::checkpoint::load(
                &core.db.any,
                core.db.backend,
                switchboard_projections::READ_MODELS,
            )
            .await
            {
                Ok(at) if seen.as_ref() != Some(&at) => {
                    match crate::services::realtime::snapshot(&core, None).await {
                        Ok(snapshot) => {
                            seen = Some(at);
                            let fingerprint = snapshot.fingerprint();
                            if fingerprint != pushed {
                                hub.broadcast_supervisors(&realtime_frame(&snapshot));
                                pushed = fingerprint;
                            }
                        }
                        Err(e) => tracing::error!(error = %e, "realtime figures not computed"),
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "realtime publisher cannot read the checkpoint"),
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(REALTIME_DEBOUNCE) => {}
            _ = shutdown.changed() => continue,
        }
        tokio::select! {
            _ = commits.changed() => {}
            _ = tokio::time::sleep(poll) => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// At most this many facts are looked up for one event (owner and facts, account, queue).
const MAX_FACTS_PER_EVENT: usize = 4;

/// First sight since start-up: asks the aggregate. Later changes are in the stream, so the
/// answer (even "nobody") can be kept.
async fn learn(core: &Core, view: &mut View, missing: Missing) {
    match missing {
        Missing::Owner(id) | Missing::Facts(id) => {
            let state = core.interactions.state(&id.to_string()).await.ok().map(|s| s.state);
            if matches!(missing, Missing::Owner(_)) {
                view.owners.insert(id, state.as_ref().and_then(|s| s.agent_id));
            }
            let mut facts = state.as_ref().map(InteractionFacts::of).unwrap_or_default();
            // The profile name is not in the aggregate's state: the list row has it.
            facts.customer_name = customer_name(core, id).await;
            view.interactions.insert(id, facts);
        }
        Missing::Account(account_id) => match core.accounts.state(&account_id.to_string()).await {
            Ok(account) => {
                view.accounts.insert(account_id, AccountFacts::of(&account.state));
            }
            // Not kept: the interaction's frames are withheld until membership is known.
            Err(e) => tracing::warn!(%account_id, error = %e, "feed cannot read the account"),
        },
        Missing::Queue(queue_id) => {
            let name = core.queues.state(&queue_id.to_string()).await.ok().and_then(|q| q.state.name);
            view.queues.insert(queue_id, name.map(|n| n.as_ref().to_owned()));
        }
        Missing::Presence(id) => {
            if let Ok(agent) = core.agents.state(&id.to_string()).await {
                let presence = agent.state.presence;
                view.agents.insert(id, AgentView { presence, reason: None, reachable: true });
            }
        }
    }
}

/// The customer's profile name from the interaction's list row (best effort).
async fn customer_name(core: &Core, id: InteractionId) -> Option<String> {
    let row = sqlx::query("SELECT customer_name FROM interaction_list WHERE interaction_id = $1")
        .bind(id.to_string())
        .fetch_optional(&core.db.any)
        .await
        .ok()??;
    row.try_get::<Option<String>, _>("customer_name").ok().flatten()
}

async fn step(core: &Core, hub: &Hub, position: &mut Checkpoint, view: &mut View) -> anyhow::Result<usize> {
    let mut conn = core.db.any.acquire().await?;
    if hub.session_count() == 0 {
        // Nobody to tell: skip ahead without reading payloads. What the view knew may change
        // in the skipped events, so it starts over.
        *position = log::head(&mut conn, core.db.backend).await?;
        view.clear();
        return Ok(0);
    }
    let mut events = log::read_after(&mut conn, core.db.backend, position, 500).await?;
    // Personal fields are sealed in the log (ADR 0020).
    core.pii.open_stored(&mut conn, &mut events).await?;
    drop(conn);
    for event in &events {
        *position = event.checkpoint.clone();
        let Ok(Some(payload)) = DomainEventPayload::decode(event) else { continue };
        // Each fact learned is kept (even a failed read leaves something, or the next event
        // asks again), so a few rounds always settle what one event needs.
        for _ in 0..MAX_FACTS_PER_EVENT {
            // Nobody is connected: no need to know (keeps the feed cheap under load).
            if hub.session_count() == 0 {
                break;
            }
            let Some(missing) = view.needs(&event.aggregate_id, &payload) else { break };
            learn(core, view, missing).await;
        }
        let (frames, spied) = view.frames_and_spied(&event.aggregate_id, &payload);
        for (agent_id, frame) in frames {
            hub.push(agent_id, &frame);
        }
        if let Some((interaction_id, frames)) = spied
            && !frames.is_empty()
        {
            hub.push_spies(interaction_id, &frames);
        }
    }
    Ok(events.len())
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};
    use serde_json::Value;
    use serde_json::json;
    use switchboard_domain::interaction::{Closer, InboundContent, NoteAuthor, SystemClose};
    use switchboard_domain::routing::{OfferExplanation, WithdrawReason};
    use switchboard_domain::{AccountId, DispositionCode, MessageId, NoteId, PauseReason};

    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_750_000_000 + secs, 0).expect("time")
    }

    /// Feeds an interaction event; returns (recipient, frame) pairs.
    fn on(view: &mut View, id: InteractionId, e: InteractionEvent) -> Vec<(AgentId, Value)> {
        parse(view.frames(&id.to_string(), &DomainEventPayload::Interaction(e)))
    }

    fn on_agent(view: &mut View, id: AgentId, e: AgentEvent) -> Vec<(AgentId, Value)> {
        parse(view.frames(&id.to_string(), &DomainEventPayload::Agent(e)))
    }

    fn parse(frames: Vec<(AgentId, String)>) -> Vec<(AgentId, Value)> {
        frames.into_iter().map(|(a, f)| (a, serde_json::from_str(&f).expect("json"))).collect()
    }

    fn recipients(frames: &[(AgentId, Value)]) -> Vec<AgentId> {
        frames.iter().map(|(a, _)| *a).collect()
    }

    fn message(n: i64) -> InteractionEvent {
        InteractionEvent::CustomerMessageReceived {
            account_id: AccountId::new(),
            message_id: MessageId::new(),
            provider_message_id: format!("wamid.{n}"),
            content: InboundContent::Text { body: "hi".into() },
            sent_at: at(n),
            at: at(n),
        }
    }

    /// Makes `id` an interaction of a known account whose members are `members`.
    fn prime(view: &mut View, id: InteractionId, members: &[AgentId]) -> AccountId {
        let account_id = AccountId::new();
        view.interactions.insert(
            id,
            InteractionFacts {
                account_id: Some(account_id),
                customer: Some("+15551234567".into()),
                ..Default::default()
            },
        );
        view.accounts.insert(
            account_id,
            AccountFacts {
                name: Some("Acme".into()),
                key: Some("ACME".into()),
                phone: None,
                members: members.iter().copied().collect(),
                notification: effective_notification(None),
            },
        );
        account_id
    }

    fn assigned(view: &mut View, id: InteractionId, agent_id: AgentId) {
        on(view, id, InteractionEvent::AgentAssigned { agent_id, at: at(0) });
    }

    #[test]
    fn presence_frames_carry_reason_and_reachability() {
        let mut view = View::default();
        let a = AgentId::new();
        let frames = on_agent(&mut view, a, AgentEvent::AgentLoggedIn { at: at(0) });
        assert_eq!(frames[0].0, a);
        assert_eq!(frames[0].1["type"], "presence");
        assert_eq!(frames[0].1["presence"], "paused");
        assert_eq!(frames[0].1["reachable"], true);
        let reason = PauseReason::parse("lunch").ok();
        let frames = on_agent(&mut view, a, AgentEvent::AgentPaused { reason, at: at(1) });
        assert_eq!(frames[0].1["reason"], "lunch");
        let frames =
            on_agent(&mut view, a, AgentEvent::AgentUnreachable { connection_id: "c1".into(), at: at(2) });
        assert_eq!(
            (&frames[0].1["presence"], &frames[0].1["reason"], &frames[0].1["reachable"]),
            (&Value::from("paused"), &Value::from("lunch"), &Value::from(false)),
            "unreachable keeps the presence it had"
        );
        let frames =
            on_agent(&mut view, a, AgentEvent::AgentConnected { connection_id: "c2".into(), at: at(3) });
        assert_eq!(frames[0].1["reachable"], true);
        let frames = on_agent(&mut view, a, AgentEvent::AgentBecameReady { at: at(4) });
        assert_eq!((&frames[0].1["presence"], &frames[0].1["reason"]), (&Value::from("ready"), &Value::Null));
    }

    #[test]
    fn a_reachability_change_of_an_unknown_agent_waits_for_their_presence() {
        let mut view = View::default();
        let a = AgentId::new();
        let event =
            DomainEventPayload::Agent(AgentEvent::AgentConnected { connection_id: "c".into(), at: at(0) });
        assert_eq!(view.needs(&a.to_string(), &event), Some(Missing::Presence(a)));
        assert!(view.frames(&a.to_string(), &event).is_empty());
        let ready = DomainEventPayload::Agent(AgentEvent::AgentBecameReady { at: at(0) });
        assert_eq!(view.needs(&a.to_string(), &ready), None, "the event says it all");
    }

    #[test]
    fn a_transfer_is_told_to_its_owner_only_and_the_new_owner_gets_the_conversation() {
        let mut view = View::default();
        let (id, a, b) = (InteractionId::new(), AgentId::new(), AgentId::new());
        prime(&mut view, id, &[a, b]);
        assigned(&mut view, id, a);
        let frames = on(
            &mut view,
            id,
            InteractionEvent::TransferRequested {
                from: a,
                to: Target::Agent(b),
                seq: 3,
                until: at(60),
                at: at(1),
            },
        );
        assert_eq!(recipients(&frames), [a]);
        assert_eq!(frames[0].1["status"], "transfer_requested");
        assert_eq!(frames[0].1["to"], serde_json::json!({"kind": "agent", "id": b}));
        assert_eq!(frames[0].1["target_seq"], 3);
        // While pending, the owner keeps it.
        assert_eq!(recipients(&on(&mut view, id, message(2))), [a]);
        let explanation = OfferExplanation::new(Target::Agent(b), None, vec![], "transfer".into());
        let frames = on(
            &mut view,
            id,
            InteractionEvent::OfferMade {
                agent_id: b,
                attempt: 1,
                target_seq: 3,
                expires_at: at(60),
                explanation,
                at: at(2),
            },
        );
        assert_eq!(recipients(&frames), [b]);
        assert_eq!(
            (&frames[0].1["type"], &frames[0].1["direct"]),
            (&Value::from("offer"), &Value::from(true))
        );
        let frames =
            on(&mut view, id, InteractionEvent::OfferAccepted { agent_id: b, attempt: 1, at: at(3) });
        assert_eq!((recipients(&frames), &frames[0].1["reason"]), (vec![b], &Value::from("accepted")));
        let frames = on(&mut view, id, InteractionEvent::AgentAssigned { agent_id: b, at: at(3) });
        assert_eq!(recipients(&frames), [b, a], "the new owner, and the old one loses it");
        assert_eq!(frames[0].1["agent_id"], serde_json::json!(b));
        assert_eq!(recipients(&on(&mut view, id, message(4))), [b]);
    }

    #[test]
    fn a_returned_transfer_is_unread_for_the_agent_who_transferred_it() {
        let mut view = View::default();
        let (id, a) = (InteractionId::new(), AgentId::new());
        prime(&mut view, id, &[a]);
        // The feed started after the assignment: it learns the owner from the return.
        view.owners.insert(id, None);
        let frames = on(&mut view, id, InteractionEvent::TransferReturned { seq: 2, agent_id: a, at: at(5) });
        assert_eq!(recipients(&frames), [a]);
        assert_eq!(
            (&frames[0].1["status"], &frames[0].1["unread"]),
            (&Value::from("returned"), &Value::from(true))
        );
        assert_eq!(recipients(&on(&mut view, id, message(6))), [a]);
    }

    #[test]
    fn wrap_up_and_system_close_reach_the_owner() {
        let mut view = View::default();
        let (id, a) = (InteractionId::new(), AgentId::new());
        prime(&mut view, id, &[a]);
        assigned(&mut view, id, a);
        let frames = on(
            &mut view,
            id,
            InteractionEvent::WrapUpStarted {
                agent_id: a,
                pause_reason: PauseReason::parse("wrap-up").ok(),
                at: at(1),
            },
        );
        assert_eq!(recipients(&frames), [a]);
        assert_eq!(
            (&frames[0].1["status"], &frames[0].1["pause_reason"]),
            (&Value::from("wrap_up"), &Value::from("wrap-up"))
        );
        let frames = on(
            &mut view,
            id,
            InteractionEvent::InteractionClosedBySystem {
                reason: SystemClose::Inactivity { idle_since: at(0) },
                disposition: DispositionCode::parse("Closed for inactivity").expect("code"),
                at: at(2),
            },
        );
        assert_eq!(recipients(&frames), [a]);
        assert_eq!(frames[0].1["status"], "disposed");
        assert_eq!(frames[0].1["reason"]["kind"], "inactivity");
        assert_eq!(frames[0].1["disposition"], "Closed for inactivity");
        let later = DomainEventPayload::Interaction(message(3));
        assert_eq!(view.needs(&id.to_string(), &later), Some(Missing::Owner(id)), "forgotten once disposed");
    }

    #[test]
    fn offers_close_for_their_agent_whoever_owns_the_interaction() {
        let mut view = View::default();
        let (id, a, b) = (InteractionId::new(), AgentId::new(), AgentId::new());
        prime(&mut view, id, &[a, b]);
        assigned(&mut view, id, a);
        let frames = on(
            &mut view,
            id,
            InteractionEvent::OfferWithdrawn {
                agent_id: b,
                attempt: 2,
                reason: WithdrawReason::TakenByAnother,
                at: at(1),
            },
        );
        assert_eq!(recipients(&frames), [b]);
        assert_eq!(
            (&frames[0].1["reason"], &frames[0].1["attempt"]),
            (&Value::from("withdrawn"), &Value::from(2))
        );
        let frames =
            on(&mut view, id, InteractionEvent::InteractionClosed { by: Closer::Supervisor, at: at(2) });
        assert_eq!((recipients(&frames), &frames[0].1["status"]), (vec![a], &Value::from("closed")));
    }

    #[test]
    fn an_unassigned_interaction_tells_nobody() {
        let mut view = View::default();
        let id = InteractionId::new();
        view.owners.insert(id, None);
        assert!(on(&mut view, id, message(1)).is_empty());
        view.clear();
        assert!(view.owners.is_empty());
    }
    fn offer(agent_id: AgentId, target: Target) -> InteractionEvent {
        InteractionEvent::OfferMade {
            agent_id,
            attempt: 1,
            target_seq: 1,
            expires_at: at(30),
            explanation: OfferExplanation::new(target, None, vec![], "test".into()),
            at: at(1),
        }
    }

    fn on_account(view: &mut View, id: AccountId, e: AccountEvent) -> Vec<(AgentId, Value)> {
        parse(view.frames(&id.to_string(), &DomainEventPayload::Account(e)))
    }

    #[test]
    fn offers_carry_the_seed_notification_with_the_queue_only_when_offered_from_one() {
        let mut view = View::default();
        let (id, a) = (InteractionId::new(), AgentId::new());
        let account_id = AccountId::new();
        view.accounts.insert(
            account_id,
            AccountFacts {
                name: Some("Acme".into()),
                key: Some("ACME".into()),
                phone: None,
                members: [a].into(),
                notification: effective_notification(None),
            },
        );
        view.owners.insert(id, None);
        let opened = InteractionEvent::InteractionOpened {
            account_id,
            customer: switchboard_domain::PhoneNumber::parse("+5511999990000").expect("phone"),
            customer_name: Some("Jane".into()),
            queue_id: None,
            at: at(0),
        };
        let payload = DomainEventPayload::Interaction(opened.clone());
        assert_eq!(view.needs(&id.to_string(), &payload), None, "the opening names the account");
        assert!(on(&mut view, id, opened).is_empty());
        let queue_id = QueueId::new();
        let made = DomainEventPayload::Interaction(offer(a, Target::Queue(queue_id)));
        assert_eq!(view.needs(&id.to_string(), &made), Some(Missing::Queue(queue_id)));
        view.queues.insert(queue_id, Some("Sales".into()));
        let frames = on(&mut view, id, offer(a, Target::Queue(queue_id)));
        assert_eq!(recipients(&frames), [a]);
        assert_eq!(
            frames[0].1["notification"],
            json!({"text": "Account: Acme Queue: Sales From : +5511999990000", "sound": true, "shake": false})
        );
        let frames = on(&mut view, id, offer(a, Target::Agent(a)));
        assert_eq!(frames[0].1["notification"]["text"], "Account: Acme From : +5511999990000");
    }

    #[test]
    fn a_new_template_applies_to_the_next_offer_and_text_is_not_escaped() {
        let mut view = View::default();
        let (id, a) = (InteractionId::new(), AgentId::new());
        let account_id = prime(&mut view, id, &[a]);
        view.owners.insert(id, None);
        on(&mut view, id, message(1));
        let notification = NotificationSettings {
            sound: false,
            shake: true,
            template: Template::parse("{{contact.mobile}} says {{message.text}} ({{account.key}})")
                .expect("t"),
        };
        on_account(&mut view, account_id, AccountEvent::NotificationSet { notification, at: at(2) });
        let mut text = message(3);
        if let InteractionEvent::CustomerMessageReceived { content, .. } = &mut text {
            *content = InboundContent::Text { body: "<b>5 > 3 & \"so\"</b>".into() };
        }
        on(&mut view, id, text);
        let frames = on(&mut view, id, offer(a, Target::Agent(a)));
        assert_eq!(
            frames[0].1["notification"],
            json!({"text": "+15551234567 says <b>5 > 3 & \"so\"</b> (ACME)", "sound": false, "shake": true})
        );
    }

    #[test]
    fn a_removed_agent_hears_nothing_more_of_the_account_and_is_told_so() {
        let mut view = View::default();
        let (id, a, b) = (InteractionId::new(), AgentId::new(), AgentId::new());
        let account_id = prime(&mut view, id, &[a, b]);
        assigned(&mut view, id, a);
        assert_eq!(recipients(&on(&mut view, id, message(1))), [a]);
        let frames = on_account(
            &mut view,
            account_id,
            AccountEvent::AgentRemovedFromAccount { agent_id: a, at: at(2) },
        );
        assert_eq!(recipients(&frames), [a]);
        assert_eq!(frames[0].1["type"], "account_removed");
        assert_eq!(frames[0].1["account_id"], json!(account_id));
        assert!(on(&mut view, id, message(3)).is_empty(), "not a member any more");
        assert!(on(&mut view, id, offer(a, Target::Agent(a))).is_empty());
        assert_eq!(recipients(&on(&mut view, id, offer(b, Target::Agent(b)))), [b], "members still hear");
        let frames =
            on_account(&mut view, account_id, AccountEvent::AgentAddedToAccount { agent_id: a, at: at(4) });
        assert_eq!((recipients(&frames), &frames[0].1["type"]), (vec![a], &Value::from("account_added")));
        assert_eq!(recipients(&on(&mut view, id, message(5))), [a]);
    }

    #[test]
    fn unknown_membership_tells_nobody_and_other_account_changes_are_learned_again() {
        let mut view = View::default();
        let (id, a) = (InteractionId::new(), AgentId::new());
        let account_id = prime(&mut view, id, &[a]);
        assigned(&mut view, id, a);
        let event = DomainEventPayload::Interaction(message(1));
        assert_eq!(view.needs(&id.to_string(), &event), None);
        let other = AccountEvent::RoutingQueueSet { queue_id: QueueId::new(), at: at(1) };
        assert!(on_account(&mut view, account_id, other).is_empty());
        assert_eq!(view.needs(&id.to_string(), &event), Some(Missing::Account(account_id)));
        assert!(on(&mut view, id, message(2)).is_empty(), "membership unknown: closed");
        // An interaction first seen through an event naming its owner still learns its account.
        let fresh = InteractionId::new();
        let assigned_event =
            DomainEventPayload::Interaction(InteractionEvent::AgentAssigned { agent_id: a, at: at(3) });
        assert_eq!(view.needs(&fresh.to_string(), &assigned_event), Some(Missing::Facts(fresh)));
    }

    fn spied(view: &mut View, id: InteractionId, e: InteractionEvent) -> (Vec<AgentId>, Vec<Value>) {
        let (agents, spied) = view.frames_and_spied(&id.to_string(), &DomainEventPayload::Interaction(e));
        let (spied_id, frames) = spied.expect("an interaction event is spied");
        assert_eq!(spied_id, id);
        let frames = frames.iter().map(|f| serde_json::from_str(f).expect("json")).collect();
        (agents.into_iter().map(|(a, _)| a).collect(), frames)
    }

    #[test]
    fn spies_see_every_frame_once_even_unaddressed_and_notes_reach_the_owner() {
        let mut view = View::default();
        let (id, a, b) = (InteractionId::new(), AgentId::new(), AgentId::new());
        prime(&mut view, id, &[a, b]);
        view.owners.insert(id, None);
        // Waiting, nobody owns it: no agent hears, a spy does.
        let (agents, frames) = spied(&mut view, id, message(1));
        assert!(agents.is_empty());
        assert_eq!(frames.iter().map(|f| f["type"].clone()).collect::<Vec<_>>(), [json!("message")]);
        assert_eq!(spied(&mut view, id, InteractionEvent::AgentAssigned { agent_id: a, at: at(2) }).0, [a]);
        // A takeover tells two agents the same frame; the spy gets it once.
        let (agents, frames) =
            spied(&mut view, id, InteractionEvent::AgentAssigned { agent_id: b, at: at(3) });
        assert_eq!((agents, frames.len()), (vec![b, a], 1));
        let author = NoteAuthor::Supervisor { label: "Sue".into() };
        let text = switchboard_domain::MessageText::parse("escalate").expect("text");
        let note = InteractionEvent::NoteAdded { note_id: NoteId::new(), author, text, at: at(4) };
        let (agents, frames) = spied(&mut view, id, note);
        assert_eq!(agents, [b]);
        assert_eq!(
            (&frames[0]["type"], &frames[0]["text"], &frames[0]["author"]),
            (&json!("note"), &json!("escalate"), &json!({"kind": "supervisor", "label": "Sue"}))
        );
        // Other aggregates' events are nobody's spying business.
        let other = DomainEventPayload::Agent(AgentEvent::AgentBecameReady { at: at(5) });
        assert!(view.frames_and_spied(&a.to_string(), &other).1.is_none());
    }

    #[test]
    fn spying_follows_a_session_until_it_stops() {
        let hub = Hub::default();
        let id = InteractionId::new();
        let (me, mut rx) = hub.connect_supervisor();
        let (_other, mut other_rx) = hub.connect_supervisor();
        assert_eq!((hub.supervisor_count(), hub.session_count()), (2, 0), "watching only: the feed may skip");
        hub.spy(me, id);
        assert_eq!(hub.session_count(), 1);
        hub.push_spies(id, &["a".to_owned(), "b".to_owned()]);
        hub.push_spies(InteractionId::new(), &["c".to_owned()]);
        assert_eq!(
            (rx.try_recv().ok(), rx.try_recv().ok(), rx.try_recv().ok()),
            (Some("a".into()), Some("b".into()), None)
        );
        assert!(other_rx.try_recv().is_err(), "only the spy");
        hub.broadcast_supervisors("r");
        assert_eq!((rx.try_recv().ok(), other_rx.try_recv().ok()), (Some("r".into()), Some("r".into())));
        assert!(hub.unspy(me, id));
        assert!(!hub.unspy(me, id));
        hub.push_spies(id, &["d".to_owned()]);
        assert!(rx.try_recv().is_err());
        hub.disconnect_supervisor(me);
        assert_eq!(hub.supervisor_count(), 1);
    }

    #[test]
    fn the_sample_context_fills_every_variable_of_the_default() {
        let account = Account::default();
        let context = NotificationContext::sample(AccountId::new(), &account).to_json();
        let text = render_notification(&effective_notification(None), &context).text;
        assert_eq!(text, "Account:  Queue: Sales From : +15551234567");
    }
}
