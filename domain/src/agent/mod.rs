//! The Agent aggregate: a person who handles interactions, their presence (offline, ready,
//! paused) and the queues they belong to.

mod commands;
mod events;
#[cfg(test)]
mod tests;

pub use commands::AgentCommand;
pub use events::AgentEvent;

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::{Decider, DisplayName, QueueId};

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
}

/// The state folded from an agent's events.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
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
}

/// The pause reason recorded when an agent lets an offer lapse.
pub const MISSED_OFFER: &str = "missed offer";

impl Agent {
    fn fold(&mut self, event: AgentEvent) {
        match event {
            AgentEvent::AgentRegistered { name, .. } => {
                self.registered = true;
                self.name = Some(name);
            }
            AgentEvent::AgentLoggedIn { .. } | AgentEvent::AgentPaused { .. } => {
                self.presence = Presence::Paused
            }
            AgentEvent::AgentBecameReady { at } => {
                self.presence = Presence::Ready;
                self.ready_since = Some(at);
            }
            AgentEvent::AgentLoggedOut { .. } => self.presence = Presence::Offline,
            AgentEvent::AgentJoinedQueue { queue_id, .. } => {
                self.queues.insert(queue_id);
            }
        }
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
            // are separate decisions, as in every contact-center desktop.
            C::LogIn { at } => Ok(match self.presence {
                Presence::Offline => vec![E::AgentLoggedIn { at }],
                _ => vec![],
            }),
            C::MarkReady { at } => match self.presence {
                Presence::Offline => Err(AgentError::NotLoggedIn),
                Presence::Ready => Ok(vec![]),
                Presence::Paused => Ok(vec![E::AgentBecameReady { at }]),
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
                    vec![E::AgentPaused { reason: Some(MISSED_OFFER.to_owned()), at }]
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
        }
    }
}

crate::impl_aggregate!(Agent, "Agent", AgentCommand, AgentEvent, AgentError);
