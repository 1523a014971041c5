//! The agents' live feed: follows the event log and pushes what each agent needs to see to
//! their websocket sessions (offers with deadlines, customer messages, delivery statuses,
//! interaction changes).
//!
//! It reads the same global log as the projectors, starting at the head when the server
//! starts, so events committed by any node reach the agent connected to this one. Delivery is
//! best effort: a client that reconnects reloads its state through the HTTP API. Agents also
//! hear about their own presence changes (e.g. paused after a missed offer).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use switchboard_domain::agent::AgentEvent;
use switchboard_domain::interaction::{DeliveryStatus, InteractionEvent};
use switchboard_domain::queue::QueueEvent;
use switchboard_domain::{AgentId, InteractionId};
use switchboard_projections::{Checkpoint, DomainEventPayload, StoredEvent, log};
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

/// The frames an event produces, and for whom. `owner` is the interaction's agent, if any.
fn frames(
    event: &StoredEvent,
    payload: &DomainEventPayload,
    owner: Option<AgentId>,
) -> Vec<(AgentId, String)> {
    let id = &event.aggregate_id;
    let to_owner = |frame: serde_json::Value| owner.map(|a| (a, frame.to_string())).into_iter().collect();
    match payload {
        DomainEventPayload::Queue(QueueEvent::OfferMade {
            interaction_id,
            agent_id,
            attempt,
            expires_at,
            at,
        }) => {
            vec![(
                *agent_id,
                json!({"type": "offer", "interaction_id": interaction_id, "queue_id": id,
                       "attempt": attempt, "expires_at": expires_at, "at": at})
                .to_string(),
            )]
        }
        DomainEventPayload::Queue(
            e @ (QueueEvent::OfferAccepted { .. }
            | QueueEvent::OfferRejected { .. }
            | QueueEvent::OfferTimedOut { .. }),
        ) => {
            let (interaction_id, agent_id, reason, at) = match e {
                QueueEvent::OfferAccepted { interaction_id, agent_id, at, .. } => {
                    (interaction_id, agent_id, "accepted", at)
                }
                QueueEvent::OfferRejected { interaction_id, agent_id, at, .. } => {
                    (interaction_id, agent_id, "rejected", at)
                }
                QueueEvent::OfferTimedOut { interaction_id, agent_id, at, .. } => {
                    (interaction_id, agent_id, "timed_out", at)
                }
                _ => return vec![],
            };
            vec![(
                *agent_id,
                json!({"type": "offer_closed", "interaction_id": interaction_id, "reason": reason, "at": at})
                    .to_string(),
            )]
        }
        DomainEventPayload::Agent(e) => {
            let (presence, reason, at) = match e {
                AgentEvent::AgentLoggedIn { at } => ("paused", None, at),
                AgentEvent::AgentBecameReady { at } => ("ready", None, at),
                AgentEvent::AgentPaused { reason, at } => ("paused", reason.as_deref(), at),
                AgentEvent::AgentLoggedOut { at } => ("offline", None, at),
                _ => return vec![],
            };
            match id.parse::<AgentId>() {
                Ok(agent_id) => vec![(
                    agent_id,
                    json!({"type": "presence", "presence": presence, "reason": reason, "at": at}).to_string(),
                )],
                Err(_) => vec![],
            }
        }
        DomainEventPayload::Interaction(e) => match e {
            InteractionEvent::CustomerMessageReceived { message_id, content, sent_at, at, .. } => to_owner(
                json!({"type": "message", "interaction_id": id, "message_id": message_id, "direction": "in",
                       "content": content, "sent_at": sent_at, "at": at}),
            ),
            InteractionEvent::AgentMessageSent { message_id, text, at, .. } => to_owner(
                json!({"type": "message", "interaction_id": id, "message_id": message_id, "direction": "out",
                       "content": {"type": "text", "body": text}, "status": "pending", "at": at}),
            ),
            InteractionEvent::AgentMediaSent { message_id, media, at, .. } => to_owner(
                json!({"type": "message", "interaction_id": id, "message_id": message_id, "direction": "out",
                       "content": {"type": "media", "kind": media.kind, "caption": media.caption,
                                   "filename": media.filename, "content_type": media.blob.content_type,
                                   "size": media.blob.size, "sha256": media.blob.sha256},
                       "status": "pending", "at": at}),
            ),
            InteractionEvent::AgentTemplateSent { message_id, template, at, .. } => to_owner(
                json!({"type": "message", "interaction_id": id, "message_id": message_id, "direction": "out",
                       "content": {"type": "template", "name": template.name, "language": template.language,
                                   "parameters": template.parameters},
                       "status": "pending", "at": at}),
            ),
            InteractionEvent::InboundMediaStored { message_id, blob, at } => to_owner(
                json!({"type": "media", "interaction_id": id, "message_id": message_id, "state": "stored",
                       "content_type": blob.content_type, "size": blob.size, "sha256": blob.sha256, "at": at}),
            ),
            InteractionEvent::InboundMediaUnavailable { message_id, code, reason, at } => to_owner(
                json!({"type": "media", "interaction_id": id, "message_id": message_id, "state": "unavailable",
                       "error_code": code, "error_reason": reason, "at": at}),
            ),
            InteractionEvent::OutboundMessageAccepted { message_id, provider_message_id, at } => {
                to_owner(json!({"type": "message_status", "interaction_id": id, "message_id": message_id,
                       "status": "accepted", "provider_message_id": provider_message_id, "at": at}))
            }
            InteractionEvent::OutboundMessageFailed { message_id, failure, at } => {
                to_owner(json!({"type": "message_status", "interaction_id": id, "message_id": message_id,
                       "status": "failed", "error_code": failure.code, "error_reason": failure.reason, "at": at}))
            }
            InteractionEvent::OutboundStatusChanged { message_id, status, failure, at } => {
                to_owner(json!({"type": "message_status", "interaction_id": id, "message_id": message_id,
                       "status": status_name(*status),
                       "error_code": failure.as_ref().map(|f| f.code.clone()),
                       "error_reason": failure.as_ref().map(|f| f.reason.clone()), "at": at}))
            }
            InteractionEvent::AgentAssigned { at, .. } => {
                to_owner(json!({"type": "interaction", "interaction_id": id, "status": "assigned", "at": at}))
            }
            InteractionEvent::InteractionClosed { by, at } => to_owner(
                json!({"type": "interaction", "interaction_id": id, "status": "closed", "closed_by": by, "at": at}),
            ),
            InteractionEvent::InteractionDisposed { disposition, at, .. } => {
                to_owner(json!({"type": "interaction", "interaction_id": id, "status": "disposed",
                       "disposition": disposition, "at": at}))
            }
            InteractionEvent::InteractionOpened { .. } => vec![],
        },
        _ => vec![],
    }
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
    let mut owners: HashMap<InteractionId, Option<AgentId>> = HashMap::new();
    let mut offers: HashMap<InteractionId, AgentId> = HashMap::new();
    loop {
        if *shutdown.borrow() {
            return;
        }
        match step(&core, &hub, &mut position, &mut owners, &mut offers).await {
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

async fn step(
    core: &Core,
    hub: &Hub,
    position: &mut Checkpoint,
    owners: &mut HashMap<InteractionId, Option<AgentId>>,
    offers: &mut HashMap<InteractionId, AgentId>,
) -> anyhow::Result<usize> {
    let mut conn = core.db.any.acquire().await?;
    if hub.session_count() == 0 {
        // Nobody to tell: skip ahead without reading payloads.
        *position = log::head(&mut conn, core.db.backend).await?;
        return Ok(0);
    }
    let events = log::read_after(&mut conn, core.db.backend, position, 500).await?;
    drop(conn);
    for event in &events {
        *position = event.checkpoint.clone();
        let Ok(Some(payload)) = DomainEventPayload::decode(event) else { continue };
        let owner = match &payload {
            DomainEventPayload::Interaction(e) => {
                let interaction_id: InteractionId = event.aggregate_id.parse()?;
                if let InteractionEvent::AgentAssigned { agent_id, .. } = e {
                    owners.insert(interaction_id, Some(*agent_id));
                }
                match owners.get(&interaction_id) {
                    Some(owner) => *owner,
                    // Nobody is connected: no need to know (keeps the feed cheap under load).
                    None if hub.session_count() == 0 => None,
                    None => {
                        // First sight since start-up: ask the aggregate. Later assignments are
                        // in the stream, so the answer (even "nobody") can be cached.
                        let state = core.interactions.state(&event.aggregate_id).await;
                        let owner = state.ok().and_then(|s| s.state.agent_id);
                        owners.insert(interaction_id, owner);
                        owner
                    }
                }
            }
            _ => None,
        };
        if matches!(payload, DomainEventPayload::Interaction(InteractionEvent::InteractionDisposed { .. }))
            && let Ok(id) = event.aggregate_id.parse()
        {
            owners.remove(&id);
        }
        for (agent_id, frame) in frames(event, &payload, owner) {
            hub.push(agent_id, &frame);
        }
        // Who holds which offer, so an offer withdrawn because the interaction left the queue
        // (closed while waiting) is taken off that agent's screen.
        match &payload {
            DomainEventPayload::Queue(QueueEvent::OfferMade { interaction_id, agent_id, .. }) => {
                offers.insert(*interaction_id, *agent_id);
            }
            DomainEventPayload::Queue(
                QueueEvent::OfferAccepted { interaction_id, .. }
                | QueueEvent::OfferRejected { interaction_id, .. }
                | QueueEvent::OfferTimedOut { interaction_id, .. },
            ) => {
                offers.remove(interaction_id);
            }
            DomainEventPayload::Queue(QueueEvent::InteractionLeftQueue { interaction_id, at }) => {
                if let Some(agent_id) = offers.remove(interaction_id) {
                    let frame = json!({"type": "offer_closed", "interaction_id": interaction_id,
                                       "reason": "withdrawn", "at": at});
                    hub.push(agent_id, &frame.to_string());
                }
            }
            _ => {}
        }
    }
    Ok(events.len())
}
