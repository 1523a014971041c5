//! The agents' live feed: follows the event log and pushes what each agent needs to see to
//! their websocket sessions (offers with deadlines, customer messages, delivery statuses,
//! interaction changes).
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

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use switchboard_domain::agent::{AgentEvent, Presence};
use switchboard_domain::interaction::{DeliveryStatus, InteractionEvent};
use switchboard_domain::routing::Target;
use switchboard_domain::{AgentId, InteractionId};
use switchboard_projections::{Checkpoint, DomainEventPayload, log};
use tokio::sync::{mpsc, watch};

use crate::core::Core;

/// Connected agent sessions.
#[derive(Clone, Default)]
pub struct Hub {
    sessions: Arc<Mutex<HashMap<AgentId, Vec<mpsc::UnboundedSender<String>>>>>,
}

impl Hub {
    /// Registers a session for `agent_id`; frames for the agent arrive on the receiver.
    pub fn connect(&self, agent_id: AgentId) -> mpsc::UnboundedReceiver<String> {
        let (tx, rx) = mpsc::unbounded_channel();
        if let Ok(mut sessions) = self.sessions.lock() {
            sessions.entry(agent_id).or_default().push(tx);
        }
        rx
    }

    /// How many sessions are open.
    pub fn session_count(&self) -> usize {
        self.sessions.lock().map(|s| s.values().map(Vec::len).sum()).unwrap_or(0)
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
}

impl View {
    /// Forgets everything (the feed skipped events, so what it knew may be stale).
    fn clear(&mut self) {
        self.owners.clear();
        self.agents.clear();
    }

    /// Whether `payload` needs a fact the view lacks: the interaction's owner (unless the event
    /// names the owner itself) or, for reachability changes, the agent's presence.
    fn needs(&self, aggregate_id: &str, payload: &DomainEventPayload) -> Option<Missing> {
        match payload {
            DomainEventPayload::Interaction(
                InteractionEvent::AgentAssigned { .. } | InteractionEvent::TransferReturned { .. },
            ) => None,
            DomainEventPayload::Interaction(_) => {
                let id = aggregate_id.parse().ok()?;
                (!self.owners.contains_key(&id)).then_some(Missing::Owner(id))
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
    fn frames(&mut self, aggregate_id: &str, payload: &DomainEventPayload) -> Vec<(AgentId, String)> {
        match payload {
            DomainEventPayload::Interaction(e) => match aggregate_id.parse() {
                Ok(interaction_id) => self.interaction_frames(interaction_id, e),
                Err(_) => vec![],
            },
            DomainEventPayload::Agent(e) => match aggregate_id.parse() {
                Ok(agent_id) => self.presence_frames(agent_id, e),
                Err(_) => vec![],
            },
            _ => vec![],
        }
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
    ) -> Vec<(AgentId, String)> {
        let id = interaction_id;
        let owner = self.owners.get(&id).copied().flatten();
        let to = |agent: Option<AgentId>, frame: serde_json::Value| -> Vec<(AgentId, String)> {
            agent.map(|a| (a, frame.to_string())).into_iter().collect()
        };
        match e {
            InteractionEvent::OfferMade { agent_id, attempt, target_seq, expires_at, explanation, at } => {
                let (queue_id, agent) = match explanation.target {
                    Target::Queue(q) => (Some(q), None),
                    Target::Agent(a) => (None, Some(a)),
                };
                to(
                    Some(*agent_id),
                    json!({"type": "offer", "interaction_id": id, "queue_id": queue_id, "direct": agent.is_some(),
                           "attempt": attempt, "target_seq": target_seq, "expires_at": expires_at, "at": at}),
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
            InteractionEvent::CustomerMessageReceived { message_id, content, sent_at, at, .. } => to(
                owner,
                json!({"type": "message", "interaction_id": id, "message_id": message_id, "direction": "in",
                       "content": content, "sent_at": sent_at, "at": at}),
            ),
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
                let mut frames = vec![(*agent_id, frame.clone())];
                if let Some(previous) = owner.filter(|p| p != agent_id) {
                    frames.push((previous, frame));
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
            InteractionEvent::InteractionClosed { by, at } => to(
                owner,
                json!({"type": "interaction", "interaction_id": id, "status": "closed", "closed_by": by, "at": at}),
            ),
            // Nothing more happens to a disposed interaction: forget its owner.
            InteractionEvent::InteractionDisposed { disposition, at, .. } => {
                self.owners.remove(&id);
                to(
                    owner,
                    json!({"type": "interaction", "interaction_id": id, "status": "disposed",
                           "disposition": disposition, "at": at}),
                )
            }
            InteractionEvent::InteractionClosedBySystem { reason, disposition, at } => {
                self.owners.remove(&id);
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

/// A fact the view must learn from an aggregate before an event can be addressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Missing {
    Owner(InteractionId),
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

async fn step(core: &Core, hub: &Hub, position: &mut Checkpoint, view: &mut View) -> anyhow::Result<usize> {
    let mut conn = core.db.any.acquire().await?;
    if hub.session_count() == 0 {
        // Nobody to tell: skip ahead without reading payloads. What the view knew may change
        // in the skipped events, so it starts over.
        *position = log::head(&mut conn, core.db.backend).await?;
        view.clear();
        return Ok(0);
    }
    let events = log::read_after(&mut conn, core.db.backend, position, 500).await?;
    drop(conn);
    for event in &events {
        *position = event.checkpoint.clone();
        let Ok(Some(payload)) = DomainEventPayload::decode(event) else { continue };
        match view.needs(&event.aggregate_id, &payload) {
            // Nobody is connected: no need to know (keeps the feed cheap under load).
            Some(_) if hub.session_count() == 0 => {}
            // First sight since start-up: ask the aggregate. Later changes are in the stream,
            // so the answer (even "nobody") can be kept.
            Some(Missing::Owner(id)) => {
                let state = core.interactions.state(&event.aggregate_id).await;
                view.owners.insert(id, state.ok().and_then(|s| s.state.agent_id));
            }
            Some(Missing::Presence(id)) => {
                if let Ok(agent) = core.agents.state(&event.aggregate_id).await {
                    let presence = agent.state.presence;
                    view.agents.insert(id, AgentView { presence, reason: None, reachable: true });
                }
            }
            None => {}
        }
        for (agent_id, frame) in view.frames(&event.aggregate_id, &payload) {
            hub.push(agent_id, &frame);
        }
    }
    Ok(events.len())
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};
    use serde_json::Value;
    use switchboard_domain::interaction::{Closer, InboundContent, SystemClose};
    use switchboard_domain::routing::{OfferExplanation, WithdrawReason};
    use switchboard_domain::{AccountId, DispositionCode, MessageId, PauseReason};

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
}
