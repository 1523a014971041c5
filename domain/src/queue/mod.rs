//! The Queue aggregate: the waiting line of interactions and the offers made to member
//! agents.
//!
//! Routing (minimal, round robin): an interaction waits in FIFO order; it is offered to one
//! eligible agent at a time, the next one after the last agent offered anything; an offer
//! lasts the queue's offer timeout. A reject or a timeout offers it to the next agent. See
//! `docs/adr/0004-minimal-routing.md` for the choices (who is eligible, what a timeout does).

mod commands;
mod events;
#[cfg(test)]
mod tests;

pub use commands::QueueCommand;
pub use events::QueueEvent;

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::{AgentId, Decider, DisplayName, InteractionId};

/// The default time an agent has to accept an offer.
pub const DEFAULT_OFFER_TIMEOUT_SECS: u32 = 10;

/// Why a queue command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    /// `Create` on a queue that exists.
    #[error("the queue already exists")]
    AlreadyExists,
    /// Any command but `Create` on a queue that does not exist.
    #[error("the queue does not exist")]
    NotFound,
    /// Offer timeouts must be 1 to 3600 seconds.
    #[error("the offer timeout must be 1 to 3600 seconds")]
    InvalidOfferTimeout,
    /// The agent has no pending offer for that interaction.
    #[error("there is no pending offer of this interaction to this agent")]
    NoSuchOffer,
}

/// A pending offer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Offer {
    /// The agent it was made to.
    pub agent_id: AgentId,
    /// Which offer of this interaction it is (1, 2, ...): timers name it.
    pub attempt: u32,
    /// When it lapses.
    pub expires_at: DateTime<Utc>,
}

/// An interaction waiting in the queue.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Waiting {
    /// The pending offer, if any.
    pub offer: Option<Offer>,
    /// Offers made so far.
    pub attempts: u32,
    /// Agents who rejected it or let it time out: it is not offered to them again.
    pub declined: BTreeSet<AgentId>,
}

/// The state folded from a queue's events.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Queue {
    /// Whether `QueueCreated` has happened.
    pub created: bool,
    /// Display name.
    pub name: Option<DisplayName>,
    /// Offer timeout in seconds.
    pub offer_timeout_secs: u32,
    /// Members in the order they joined: the round-robin order.
    pub members: Vec<AgentId>,
    /// Members currently taking offers.
    pub available: BTreeSet<AgentId>,
    /// Waiting interactions in arrival order.
    pub waiting: Vec<InteractionId>,
    /// Details of each waiting interaction.
    pub waiting_details: BTreeMap<InteractionId, Waiting>,
    /// The last agent offered anything: round robin continues after them.
    pub last_offered: Option<AgentId>,
}

impl Queue {
    fn fold(&mut self, event: QueueEvent) {
        use QueueEvent as E;
        match event {
            E::QueueCreated { name, offer_timeout_secs, .. } => {
                self.created = true;
                self.name = Some(name);
                self.offer_timeout_secs = offer_timeout_secs;
            }
            E::QueueMemberAdded { agent_id, .. } => {
                if !self.members.contains(&agent_id) {
                    self.members.push(agent_id);
                }
            }
            E::QueueAgentAvailabilityChanged { agent_id, available, .. } => {
                if available {
                    self.available.insert(agent_id);
                    // Coming back clears earlier declines: the agent chose to take work again.
                    for w in self.waiting_details.values_mut() {
                        w.declined.remove(&agent_id);
                    }
                } else {
                    self.available.remove(&agent_id);
                }
            }
            E::InteractionQueued { interaction_id, .. } => {
                if !self.waiting_details.contains_key(&interaction_id) {
                    self.waiting.push(interaction_id);
                    self.waiting_details.insert(interaction_id, Waiting::default());
                }
            }
            E::OfferMade { interaction_id, agent_id, attempt, expires_at, .. } => {
                self.last_offered = Some(agent_id);
                if let Some(w) = self.waiting_details.get_mut(&interaction_id) {
                    w.offer = Some(Offer { agent_id, attempt, expires_at });
                    w.attempts = attempt;
                }
            }
            E::OfferAccepted { interaction_id, .. } => self.remove_waiting(interaction_id),
            E::OfferRejected { interaction_id, agent_id, .. } => {
                if let Some(w) = self.waiting_details.get_mut(&interaction_id) {
                    w.offer = None;
                    w.declined.insert(agent_id);
                }
            }
            E::OfferTimedOut { interaction_id, agent_id, .. } => {
                if let Some(w) = self.waiting_details.get_mut(&interaction_id) {
                    w.offer = None;
                    w.declined.insert(agent_id);
                }
            }
            E::InteractionLeftQueue { interaction_id, .. } => self.remove_waiting(interaction_id),
        }
    }

    fn remove_waiting(&mut self, interaction_id: InteractionId) {
        self.waiting.retain(|i| *i != interaction_id);
        self.waiting_details.remove(&interaction_id);
    }

    /// The agent holding a pending offer in this queue, if any.
    fn agent_has_offer(&self, agent_id: AgentId) -> bool {
        self.waiting_details.values().any(|w| w.offer.as_ref().is_some_and(|o| o.agent_id == agent_id))
    }

    /// Members in round-robin order, starting after the last one offered anything.
    fn round_robin_order(&self) -> Vec<AgentId> {
        let start = self
            .last_offered
            .and_then(|last| self.members.iter().position(|a| *a == last))
            .map_or(0, |i| i + 1);
        let n = self.members.len();
        (0..n).map(|k| self.members[(start + k) % n]).collect()
    }

    /// The offers to make now, in arrival order of the waiting interactions. Pure: the
    /// caller decides with the state the command's own events produce.
    fn plan_offers(&self, at: DateTime<Utc>) -> Vec<QueueEvent> {
        let mut state = self.clone();
        let mut offers = Vec::new();
        for interaction_id in self.waiting.clone() {
            let Some(w) = state.waiting_details.get(&interaction_id) else {
                continue;
            };
            if w.offer.is_some() {
                continue;
            }
            let declined = w.declined.clone();
            let attempt = w.attempts + 1;
            let next = state
                .round_robin_order()
                .into_iter()
                .find(|a| state.available.contains(a) && !declined.contains(a) && !state.agent_has_offer(*a));
            let Some(agent_id) = next else { continue };
            let offer = QueueEvent::OfferMade {
                interaction_id,
                agent_id,
                attempt,
                expires_at: at + Duration::seconds(i64::from(state.offer_timeout_secs)),
                at,
            };
            state.fold(offer.clone());
            offers.push(offer);
        }
        offers
    }

    /// Appends the offers that the state after `events` calls for.
    fn with_offers(&self, mut events: Vec<QueueEvent>, at: DateTime<Utc>) -> Vec<QueueEvent> {
        let mut after = self.clone();
        for e in &events {
            after.fold(e.clone());
        }
        events.extend(after.plan_offers(at));
        events
    }

    fn pending_offer(&self, interaction_id: InteractionId, agent_id: AgentId) -> Result<&Offer, QueueError> {
        self.waiting_details
            .get(&interaction_id)
            .and_then(|w| w.offer.as_ref())
            .filter(|o| o.agent_id == agent_id)
            .ok_or(QueueError::NoSuchOffer)
    }
}

impl Decider for Queue {
    fn decide(&self, command: QueueCommand) -> Result<Vec<QueueEvent>, QueueError> {
        use QueueCommand as C;
        use QueueEvent as E;
        match command {
            C::Create { name, offer_timeout_secs, at } => {
                if self.created {
                    return Err(QueueError::AlreadyExists);
                }
                if !(1..=3600).contains(&offer_timeout_secs) {
                    return Err(QueueError::InvalidOfferTimeout);
                }
                Ok(vec![E::QueueCreated { name, offer_timeout_secs, at }])
            }
            _ if !self.created => Err(QueueError::NotFound),
            C::AddMember { agent_id, available, at } => {
                let mut events = Vec::new();
                if !self.members.contains(&agent_id) {
                    events.push(E::QueueMemberAdded { agent_id, at });
                }
                if available != self.available.contains(&agent_id) {
                    events.push(E::QueueAgentAvailabilityChanged { agent_id, available, at });
                }
                Ok(self.with_offers(events, at))
            }
            C::SetAgentAvailability { agent_id, available, at } => {
                // Availability of non-members is ignored: membership may still be on its way.
                if !self.members.contains(&agent_id) || available == self.available.contains(&agent_id) {
                    return Ok(vec![]);
                }
                Ok(self.with_offers(vec![E::QueueAgentAvailabilityChanged { agent_id, available, at }], at))
            }
            C::Enqueue { interaction_id, at } => {
                if self.waiting_details.contains_key(&interaction_id) {
                    return Ok(vec![]);
                }
                Ok(self.with_offers(vec![E::InteractionQueued { interaction_id, at }], at))
            }
            C::AcceptOffer { interaction_id, agent_id, at } => {
                let offer = self.pending_offer(interaction_id, agent_id)?;
                let accepted = E::OfferAccepted { interaction_id, agent_id, attempt: offer.attempt, at };
                Ok(self.with_offers(vec![accepted], at))
            }
            C::RejectOffer { interaction_id, agent_id, at } => {
                let offer = self.pending_offer(interaction_id, agent_id)?;
                let rejected = E::OfferRejected { interaction_id, agent_id, attempt: offer.attempt, at };
                Ok(self.with_offers(vec![rejected], at))
            }
            C::ExpireOffer { interaction_id, attempt, at } => {
                // Timers fire at least once and possibly late or twice: only the live offer
                // with this attempt number, once due, times out.
                let live = self
                    .waiting_details
                    .get(&interaction_id)
                    .and_then(|w| w.offer.as_ref())
                    .filter(|o| o.attempt == attempt && at >= o.expires_at);
                let Some(offer) = live else { return Ok(vec![]) };
                let agent_id = offer.agent_id;
                let mut events = vec![E::OfferTimedOut { interaction_id, agent_id, attempt, at }];
                // An agent who lets an offer lapse is probably away: stop offering to them
                // until they say they are ready again.
                if self.available.contains(&agent_id) {
                    events.push(E::QueueAgentAvailabilityChanged { agent_id, available: false, at });
                }
                Ok(self.with_offers(events, at))
            }
            C::Dequeue { interaction_id, at } => {
                if !self.waiting_details.contains_key(&interaction_id) {
                    return Ok(vec![]);
                }
                Ok(self.with_offers(vec![E::InteractionLeftQueue { interaction_id, at }], at))
            }
        }
    }
}

crate::impl_aggregate!(Queue, "Queue", QueueCommand, QueueEvent, QueueError);
