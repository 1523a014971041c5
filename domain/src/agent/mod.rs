//! The Agent aggregate: a person who handles interactions, their presence (offline, ready,
//! paused), capacity, the queues they belong to, whether their websocket reaches them, and
//! the wrap-ups (mandatory dispositions) they still owe.

mod commands;
mod events;
#[cfg(test)]
mod tests;

pub use commands::AgentCommand;
pub use events::AgentEvent;

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{Decider, DisplayName, InteractionId, PauseReason, QueueId};

/// An agent's presence.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Presence {
    /// Not logged in: gets nothing.
    #[default]
    Offline,
    /// Logged in and accepting offers.
    Ready,
    /// Logged in but taking no new offers; open interactions continue.
    Paused,
}

/// Why an agent command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AgentError {
    /// `Register` on an agent that exists.
    #[error("the agent already exists")]
    AlreadyRegistered,
    /// Any command but `Register` on an agent that does not exist.
    #[error("the agent does not exist")]
    NotFound,
    /// Ready/pause need a logged-in agent.
    #[error("the agent is not logged in")]
    NotLoggedIn,
    /// Capacity outside 1..=`MAX_CAPACITY`.
    #[error("capacity must be 1 to 50")]
    InvalidCapacity,
    /// Ready while an interaction still waits for its mandatory disposition.
    #[error("an interaction still needs its disposition")]
    WrapUpPending,
}

/// The state folded from an agent's events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Agent {
    /// Whether `AgentRegistered` has happened.
    pub registered: bool,
    /// Display name.
    pub name: Option<DisplayName>,
    /// Current presence.
    pub presence: Presence,
    /// Queues the agent belongs to.
    pub queues: BTreeSet<QueueId>,
    /// When the agent last became ready (to tell a stale missed offer from a fresh one).
    pub ready_since: Option<chrono::DateTime<chrono::Utc>>,
    /// How many interactions the agent handles at once.
    #[serde(default = "default_capacity")]
    pub capacity: u32,
    /// Whether offers can reach the agent. An agent who never opened a websocket is reachable
    /// (HTTP-only clients work); one whose websocket dropped stays reachable for the grace.
    #[serde(default = "reachable_by_default")]
    pub reachable: bool,
    /// The agent's latest websocket: only it counts (an older tab closing changes nothing).
    #[serde(default)]
    pub connection: Option<Connection>,
    /// The pause reason in force, if paused.
    #[serde(default)]
    pub pause_reason: Option<PauseReason>,
    /// Interactions whose disposition is pending, each with whether the agent was ready when
    /// the wrap-up began (and so is made ready again when it ends).
    #[serde(default)]
    pub wrap_ups: BTreeMap<InteractionId, bool>,
    /// Whether the current pause is a wrap-up's (any other presence change clears it), so
    /// ending the wrap-up never overrides a pause the agent chose meanwhile.
    #[serde(default)]
    pub paused_by_wrap_up: bool,
}

/// The agent's latest websocket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connection {
    /// Its id.
    pub id: String,
    /// `None` while open; the end of the grace period once it dropped.
    pub reconnect_by: Option<DateTime<Utc>>,
}

fn default_capacity() -> u32 {
    DEFAULT_CAPACITY
}

fn reachable_by_default() -> bool {
    true
}

impl Default for Agent {
    fn default() -> Self {
        Self {
            registered: false,
            name: None,
            presence: Presence::Offline,
            queues: BTreeSet::new(),
            ready_since: None,
            capacity: DEFAULT_CAPACITY,
            reachable: true,
            connection: None,
            pause_reason: None,
            wrap_ups: BTreeMap::new(),
            paused_by_wrap_up: false,
        }
    }
}

/// The most interactions an agent may handle at once.
pub const MAX_CAPACITY: u32 = 50;

/// The capacity of an agent nobody configured: a sensible WhatsApp load.
pub const DEFAULT_CAPACITY: u32 = 5;

/// The pause reason recorded when an agent lets an offer lapse.
pub const MISSED_OFFER: &str = "missed offer";

impl Agent {
    fn fold(&mut self, event: AgentEvent) {
        use AgentEvent as E;
        match event {
            E::AgentRegistered { name, .. } => {
                self.registered = true;
                self.name = Some(name);
            }
            // Logging in or marking ready is the agent saying "I am here": reachable again.
            E::AgentLoggedIn { .. } => {
                self.presence = Presence::Paused;
                self.pause_reason = None;
                self.paused_by_wrap_up = false;
                self.reachable = true;
            }
            E::AgentPaused { reason, .. } => {
                self.presence = Presence::Paused;
                self.pause_reason = reason;
                self.paused_by_wrap_up = false;
            }
            E::AgentBecameReady { at } => {
                self.presence = Presence::Ready;
                self.ready_since = Some(at);
                self.pause_reason = None;
                self.paused_by_wrap_up = false;
                self.reachable = true;
            }
            E::AgentLoggedOut { .. } => {
                self.presence = Presence::Offline;
                self.pause_reason = None;
                self.paused_by_wrap_up = false;
            }
            E::AgentJoinedQueue { queue_id, .. } => {
                self.queues.insert(queue_id);
            }
            E::AgentLeftQueue { queue_id, .. } => {
                self.queues.remove(&queue_id);
            }
            E::AgentCapacitySet { capacity, .. } => self.capacity = capacity,
            E::AgentConnected { connection_id, .. } => {
                self.connection = Some(Connection { id: connection_id, reconnect_by: None });
                self.reachable = true;
            }
            E::AgentDisconnected { connection_id, reconnect_by, .. } => {
                if let Some(connection) = self.connection.as_mut().filter(|c| c.id == connection_id) {
                    connection.reconnect_by = Some(reconnect_by);
                }
            }
            E::AgentUnreachable { .. } => self.reachable = false,
            E::AgentWrapUpStarted { interaction_id, was_ready, .. } => {
                self.wrap_ups.insert(interaction_id, was_ready);
                // Recorded after the pause it applies (or while an earlier wrap-up's pause
                // holds): the pause in force is the wrap-up's.
                if was_ready && self.presence == Presence::Paused {
                    self.paused_by_wrap_up = true;
                }
            }
            E::AgentWrapUpEnded { interaction_id, .. } => {
                self.wrap_ups.remove(&interaction_id);
                if self.wrap_ups.is_empty() {
                    self.paused_by_wrap_up = false;
                }
            }
        }
    }

    /// Whether the agent's latest connection dropped and its grace period is over at `at`.
    fn grace_over(&self, connection_id: &str, at: DateTime<Utc>) -> bool {
        self.connection
            .as_ref()
            .filter(|c| c.id == connection_id)
            .and_then(|c| c.reconnect_by)
            .is_some_and(|by| at >= by)
    }
}

impl Decider for Agent {
    fn decide(&self, command: AgentCommand) -> Result<Vec<AgentEvent>, AgentError> {
        use AgentCommand as C;
        use AgentEvent as E;
        match command {
            C::Register { name, at } => {
                if self.registered {
                    return Err(AgentError::AlreadyRegistered);
                }
                Ok(vec![E::AgentRegistered { name, at }])
            }
            _ if !self.registered => Err(AgentError::NotFound),
            // Logging in lands the agent paused: being online and being ready for offers
            // are separate decisions, as in every contact-center desktop. Logging in again
            // while unreachable is a fresh start (reachable, paused).
            C::LogIn { at } => Ok(match self.presence {
                Presence::Offline => vec![E::AgentLoggedIn { at }],
                _ if !self.reachable => vec![E::AgentLoggedIn { at }],
                _ => vec![],
            }),
            C::MarkReady { at } => match self.presence {
                Presence::Offline => Err(AgentError::NotLoggedIn),
                Presence::Ready if self.reachable => Ok(vec![]),
                _ if !self.wrap_ups.is_empty() => Err(AgentError::WrapUpPending),
                Presence::Ready | Presence::Paused => Ok(vec![E::AgentBecameReady { at }]),
            },
            C::Pause { reason, at } => match self.presence {
                Presence::Offline => Err(AgentError::NotLoggedIn),
                Presence::Paused => Ok(vec![]),
                Presence::Ready => Ok(vec![E::AgentPaused { reason, at }]),
            },
            // Only an agent who has been ready since before the offer lapsed is paused: a
            // replayed or late timeout must not pause someone who came back since.
            C::MissOffer { timed_out_at, at } => Ok(match (self.presence, self.ready_since) {
                (Presence::Ready, Some(since)) if since <= timed_out_at => {
                    vec![E::AgentPaused { reason: PauseReason::parse(MISSED_OFFER).ok(), at }]
                }
                _ => vec![],
            }),
            C::LogOut { at } => Ok(match self.presence {
                Presence::Offline => vec![],
                _ => vec![E::AgentLoggedOut { at }],
            }),
            C::JoinQueue { queue_id, at } => Ok(if self.queues.contains(&queue_id) {
                vec![]
            } else {
                vec![E::AgentJoinedQueue { queue_id, at }]
            }),
            C::LeaveQueue { queue_id, at } => Ok(if self.queues.contains(&queue_id) {
                vec![E::AgentLeftQueue { queue_id, at }]
            } else {
                vec![]
            }),
            C::SetCapacity { capacity, at } => {
                if !(1..=MAX_CAPACITY).contains(&capacity) {
                    return Err(AgentError::InvalidCapacity);
                }
                Ok(if capacity == self.capacity {
                    vec![]
                } else {
                    vec![E::AgentCapacitySet { capacity, at }]
                })
            }
            C::Connect { connection_id, at } => {
                let already = self.reachable
                    && self
                        .connection
                        .as_ref()
                        .is_some_and(|c| c.id == connection_id && c.reconnect_by.is_none());
                Ok(if already { vec![] } else { vec![E::AgentConnected { connection_id, at }] })
            }
            // Only the latest connection counts: a tab closed after another opened is ignored.
            C::Disconnect { connection_id, reconnect_by, at } => {
                let open = self
                    .connection
                    .as_ref()
                    .is_some_and(|c| c.id == connection_id && c.reconnect_by.is_none());
                Ok(if open { vec![E::AgentDisconnected { connection_id, reconnect_by, at }] } else { vec![] })
            }
            // The timer of an older connection, or of one that came back, changes nothing.
            C::ExpireConnectionGrace { connection_id, at } => {
                Ok(if self.reachable && self.grace_over(&connection_id, at) {
                    vec![E::AgentUnreachable { connection_id, at }]
                } else {
                    vec![]
                })
            }
            C::StartWrapUp { interaction_id, reason, at } => {
                if self.wrap_ups.contains_key(&interaction_id) {
                    return Ok(vec![]);
                }
                // Paused by an earlier wrap-up that began while ready counts as ready: whichever
                // wrap-up ends last restores readiness.
                let was_ready = self.presence == Presence::Ready
                    || (self.presence == Presence::Paused && self.paused_by_wrap_up);
                let mut events = Vec::with_capacity(2);
                if self.presence == Presence::Ready && reason.is_some() {
                    events.push(E::AgentPaused { reason, at });
                }
                events.push(E::AgentWrapUpStarted { interaction_id, was_ready, at });
                Ok(events)
            }
            C::EndWrapUp { interaction_id, at } => {
                let Some(&was_ready) = self.wrap_ups.get(&interaction_id) else {
                    return Ok(vec![]);
                };
                let mut events = vec![E::AgentWrapUpEnded { interaction_id, at }];
                let last = self.wrap_ups.len() == 1;
                if was_ready && last && self.presence == Presence::Paused && self.paused_by_wrap_up {
                    events.push(E::AgentBecameReady { at });
                }
                Ok(events)
            }
        }
    }
}

crate::impl_aggregate!(Agent, "Agent", AgentCommand, AgentEvent, AgentError);
