//! The routing board: a pure fold over accounts, agents, queues and interactions that decides
//! which offers to make or take back now, and explains each offer.
//!
//! It is a read model of the log held by the router (one node at a time decides). Decisions
//! become commands on the Interaction aggregate, which refuses stale ones (the target moved
//! on, the offer number is taken), so a board that lags the log can waste a command but never
//! double an effect. Decisions executed but not yet read back from the log are kept as
//! *pending* so the next round does not repeat them or overload an agent.
//!
//! Cost: the router decides after every batch of events, so `decide` must be cheap when
//! nothing can happen. Waiting interactions are kept in offer order (queue weight, then
//! longest waiting) and a round stops as soon as no agent has a free slot; an interaction
//! whose queue has no free member is skipped without looking at the members.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};

use super::{
    Candidate, CandidateState, Exclusion, OfferExplanation, Strategy, Target, TargetReason, WithdrawReason,
};
use crate::account::AccountEvent;
use crate::agent::{AgentEvent, DEFAULT_CAPACITY, Presence};
use crate::interaction::InteractionEvent;
use crate::queue::{DEFAULT_OFFER_TIMEOUT_SECS, DEFAULT_WEIGHT, MAX_WEIGHT, QueueEvent};
use crate::{AccountId, AgentId, InteractionId, QueueId};

/// How long an offer to one agent lasts when the target has no deadline.
const AGENT_OFFER_SECS: i64 = 30;

/// What the board wants done.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Offer an interaction to an agent (`InteractionCommand::Offer`).
    Offer {
        /// The interaction.
        interaction_id: InteractionId,
        /// The agent.
        agent_id: AgentId,
        /// The interaction's current target.
        target_seq: u32,
        /// The next offer number of the interaction.
        attempt: u32,
        /// When it lapses.
        expires_at: DateTime<Utc>,
        /// Every strategy but ring-all makes one offer at a time.
        exclusive: bool,
        /// Why.
        explanation: OfferExplanation,
    },
    /// Take back an offer whose agent became unavailable (`InteractionCommand::WithdrawOffer`).
    Withdraw {
        /// The interaction.
        interaction_id: InteractionId,
        /// The agent.
        agent_id: AgentId,
        /// Which offer.
        attempt: u32,
        /// Why.
        reason: WithdrawReason,
    },
    /// A customer wrote to an interaction whose assigned agent is unavailable
    /// (`InteractionCommand::StartStickyReturn`).
    StickyReturn {
        /// The interaction.
        interaction_id: InteractionId,
        /// The assigned agent.
        agent_id: AgentId,
    },
}

/// An agent as the board sees it.
#[derive(Debug, Clone)]
struct AgentSlot {
    presence: Presence,
    reachable: bool,
    capacity: u32,
    /// Queues in join order.
    queues: Vec<QueueId>,
    last_offered_at: Option<DateTime<Utc>>,
    /// Interactions assigned to the agent and not waiting again (the load they carry).
    open: BTreeSet<InteractionId>,
    /// Live offers read from the log, by interaction, with their attempt.
    offers: BTreeMap<InteractionId, u32>,
    /// Offers made but not yet read back.
    pending: BTreeMap<InteractionId, u32>,
}

impl Default for AgentSlot {
    fn default() -> Self {
        Self {
            presence: Presence::Offline,
            reachable: true,
            capacity: DEFAULT_CAPACITY,
            queues: Vec::new(),
            last_offered_at: None,
            open: BTreeSet::new(),
            offers: BTreeMap::new(),
            pending: BTreeMap::new(),
        }
    }
}

impl AgentSlot {
    fn available(&self) -> bool {
        self.presence == Presence::Ready && self.reachable
    }

    fn state(&self) -> CandidateState {
        match (self.presence, self.reachable) {
            (Presence::Ready, true) => CandidateState::Ready,
            (Presence::Ready, false) => CandidateState::Unreachable,
            (Presence::Paused, _) => CandidateState::Paused,
            (Presence::Offline, _) => CandidateState::Offline,
        }
    }

    fn offer_count(&self) -> u32 {
        count(self.offers.len() + self.pending.len())
    }

    fn load(&self) -> u32 {
        count(self.open.len()) + self.offer_count()
    }
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// A queue's settings and members.
#[derive(Debug, Clone)]
struct QueueSlot {
    strategy: Strategy,
    offer_timeout_secs: u32,
    weight: u8,
    /// Members in join order (the round-robin order).
    members: Vec<AgentId>,
    /// The member last offered anything from this queue (round-robin memory).
    last_offered: Option<AgentId>,
}

impl Default for QueueSlot {
    fn default() -> Self {
        Self {
            strategy: Strategy::default(),
            offer_timeout_secs: DEFAULT_OFFER_TIMEOUT_SECS,
            weight: DEFAULT_WEIGHT,
            members: Vec::new(),
            last_offered: None,
        }
    }
}

/// Where an interaction is offered now.
#[derive(Debug, Clone, Copy, PartialEq)]
struct CurrentTarget {
    target: Target,
    reason: TargetReason,
    seq: u32,
    until: Option<DateTime<Utc>>,
}

/// Offer order: heaviest queue first, then longest waiting, then id (a stable tie-break).
type WaitKey = (Reverse<u8>, DateTime<Utc>, InteractionId);

/// An open interaction as the board sees it.
#[derive(Debug, Clone)]
struct InteractionSlot {
    account_id: AccountId,
    /// Assigned to `owner` and not waiting again (counts toward the owner's load).
    assigned: bool,
    owner: Option<AgentId>,
    target: Option<CurrentTarget>,
    /// Since when the customer waits for an agent.
    waiting_since: Option<DateTime<Utc>>,
    /// Live offers by agent, with their attempt.
    offers: BTreeMap<AgentId, u32>,
    /// Offers made but not yet read back.
    pending: BTreeMap<AgentId, u32>,
    /// Withdrawals made but not yet read back.
    withdrawing: BTreeSet<(AgentId, u32)>,
    /// The highest offer number read back.
    attempts: u32,
    /// Agents who rejected or let lapse an offer for the current target.
    declined: BTreeSet<AgentId>,
    /// Its place in the waiting order, while it has a target.
    key: Option<WaitKey>,
}

impl InteractionSlot {
    fn next_attempt(&self) -> u32 {
        self.pending.values().copied().chain([self.attempts]).max().unwrap_or(0) + 1
    }

    fn has_offer(&self) -> bool {
        !self.offers.is_empty() || !self.pending.is_empty()
    }

    fn offered_to(&self, agent_id: AgentId) -> bool {
        self.offers.contains_key(&agent_id) || self.pending.contains_key(&agent_id)
    }

    fn transferring_agent(&self) -> Option<AgentId> {
        match self.target.map(|t| t.reason) {
            Some(TargetReason::Transfer { from }) => Some(from),
            _ => None,
        }
    }
}

/// The board.
#[derive(Debug, Clone, Default)]
pub struct Board {
    /// Agents allowed on each account.
    accounts: BTreeMap<AccountId, BTreeSet<AgentId>>,
    agents: BTreeMap<AgentId, AgentSlot>,
    queues: BTreeMap<QueueId, QueueSlot>,
    interactions: BTreeMap<InteractionId, InteractionSlot>,
    /// Interactions with a target, in offer order.
    waiting: BTreeSet<WaitKey>,
    /// Assigned interactions whose customer wrote while the owner was unavailable.
    sticky_due: BTreeSet<InteractionId>,
    /// Sticky returns executed but not yet read back.
    sticky_pending: BTreeSet<InteractionId>,
}

/// Per-round bookkeeping: offers decided in this round count like pending ones.
#[derive(Default)]
struct Round {
    /// Extra offers per agent.
    offers: BTreeMap<AgentId, u32>,
    /// Round-robin memory per queue.
    last_offered: BTreeMap<QueueId, AgentId>,
    /// Agents with a free slot who can take offers.
    free: BTreeSet<AgentId>,
    /// Whether a queue has a free member (cleared whenever `free` shrinks).
    queue_has_free: BTreeMap<QueueId, bool>,
}

impl Board {
    /// An empty board.
    pub fn new() -> Self {
        Self::default()
    }

    /// Folds an account event (which agents may work the account).
    pub fn apply_account(&mut self, id: AccountId, event: &AccountEvent) {
        match event {
            AccountEvent::AccountCreated { .. } => {
                self.accounts.entry(id).or_default();
            }
            AccountEvent::AgentAddedToAccount { agent_id, .. } => {
                self.accounts.entry(id).or_default().insert(*agent_id);
            }
            AccountEvent::AgentRemovedFromAccount { agent_id, .. } => {
                self.accounts.entry(id).or_default().remove(agent_id);
            }
            _ => {}
        }
    }

    /// Folds an agent event (presence, reachability, capacity, queues).
    pub fn apply_agent(&mut self, id: AgentId, event: &AgentEvent) {
        use AgentEvent as E;
        let agent = self.agents.entry(id).or_default();
        let was_available = agent.available();
        match event {
            E::AgentRegistered { .. }
            | E::AgentDisconnected { .. }
            | E::AgentWrapUpStarted { .. }
            | E::AgentWrapUpEnded { .. } => {}
            E::AgentLoggedIn { .. } => {
                agent.presence = Presence::Paused;
                agent.reachable = true;
            }
            E::AgentBecameReady { .. } => {
                agent.presence = Presence::Ready;
                agent.reachable = true;
            }
            E::AgentPaused { .. } => agent.presence = Presence::Paused,
            E::AgentLoggedOut { .. } => agent.presence = Presence::Offline,
            E::AgentCapacitySet { capacity, .. } => agent.capacity = *capacity,
            E::AgentConnected { .. } => agent.reachable = true,
            E::AgentUnreachable { .. } => agent.reachable = false,
            E::AgentJoinedQueue { queue_id, .. } => {
                if !agent.queues.contains(queue_id) {
                    agent.queues.push(*queue_id);
                }
                let members = &mut self.queues.entry(*queue_id).or_default().members;
                if !members.contains(&id) {
                    members.push(id);
                }
            }
            E::AgentLeftQueue { queue_id, .. } => {
                agent.queues.retain(|q| q != queue_id);
                if let Some(queue) = self.queues.get_mut(queue_id) {
                    queue.members.retain(|a| *a != id);
                }
            }
        }
        // The owner is back before anyone acted on the customer's message: nothing to return.
        if !was_available && agent.available() {
            for interaction_id in &agent.open {
                self.sticky_due.remove(interaction_id);
            }
        }
    }

    /// Folds a queue event (strategy, offer timeout, weight).
    pub fn apply_queue(&mut self, id: QueueId, event: &QueueEvent) {
        let (offer_timeout_secs, strategy, weight) = match event {
            QueueEvent::QueueCreated { offer_timeout_secs, strategy, weight, .. }
            | QueueEvent::QueueConfigured { offer_timeout_secs, strategy, weight, .. } => {
                (*offer_timeout_secs, *strategy, *weight)
            }
        };
        let queue = self.queues.entry(id).or_default();
        let reweighted = queue.weight != weight;
        queue.offer_timeout_secs = offer_timeout_secs;
        queue.strategy = strategy;
        queue.weight = weight;
        if reweighted {
            // Rare (an administrator's change): re-place the queue's waiting interactions.
            let ids: Vec<InteractionId> = self
                .interactions
                .iter()
                .filter(|(_, ix)| ix.target.is_some_and(|t| t.target == Target::Queue(id)))
                .map(|(ix_id, _)| *ix_id)
                .collect();
            for ix_id in ids {
                self.unlink(ix_id);
                self.link(ix_id);
            }
        }
    }

    /// Folds an interaction event (targets, offers, assignment, closing).
    pub fn apply_interaction(&mut self, id: InteractionId, event: &InteractionEvent) {
        use InteractionEvent as E;
        if let E::InteractionOpened { account_id, queue_id, at, .. } = event {
            if self.interactions.contains_key(&id) {
                return; // read twice
            }
            // Interactions opened before routing plans named their queue here: they wait there
            // without deadline, as at the end of a plan (target seq 0, as the aggregate folds it).
            let target = queue_id.map(|q| CurrentTarget {
                target: Target::Queue(q),
                reason: TargetReason::PlanEnd,
                seq: 0,
                until: None,
            });
            self.interactions.insert(
                id,
                InteractionSlot {
                    account_id: *account_id,
                    assigned: false,
                    owner: None,
                    target,
                    waiting_since: Some(*at),
                    offers: BTreeMap::new(),
                    pending: BTreeMap::new(),
                    withdrawing: BTreeSet::new(),
                    attempts: 0,
                    declined: BTreeSet::new(),
                    key: None,
                },
            );
            self.link(id);
            return;
        }
        if matches!(event, E::InteractionClosed { .. } | E::InteractionClosedBySystem { .. }) {
            self.close(id);
            return;
        }
        // Closed (and dropped) or opened before this board began: nothing to track.
        if !self.interactions.contains_key(&id) {
            return;
        }
        // Every change below may move the interaction in the waiting order or change whose
        // load it counts toward: take it out of both, change it, put it back.
        self.unlink(id);
        self.fold_interaction(id, event);
        self.link(id);
    }

    fn fold_interaction(&mut self, id: InteractionId, event: &InteractionEvent) {
        use InteractionEvent as E;
        let Some(ix) = self.interactions.get_mut(&id) else { return };
        match event {
            E::CustomerMessageReceived { .. } => {
                let owner_away =
                    ix.owner.is_some_and(|owner| !self.agents.get(&owner).is_some_and(AgentSlot::available));
                if ix.assigned && ix.target.is_none() && owner_away {
                    self.sticky_due.insert(id);
                }
            }
            E::RoutingTargetSet { target, reason, seq, until, at } => {
                ix.target =
                    Some(CurrentTarget { target: *target, reason: *reason, seq: *seq, until: *until });
                ix.declined.clear();
                // A sticky return puts an assigned interaction back to waiting: it no longer
                // weighs on the owner (who may be offered it back) until someone accepts.
                ix.assigned = false;
                ix.waiting_since.get_or_insert(*at);
                self.sticky_due.remove(&id);
                self.sticky_pending.remove(&id);
            }
            E::TransferRequested { from, to, seq, until, at } => {
                ix.target = Some(CurrentTarget {
                    target: *to,
                    reason: TargetReason::Transfer { from: *from },
                    seq: *seq,
                    until: Some(*until),
                });
                ix.declined.clear();
                ix.waiting_since.get_or_insert(*at);
                self.sticky_due.remove(&id);
            }
            E::RoutingTargetExpired { seq, .. } if ix.target.is_some_and(|t| t.seq == *seq) => {
                ix.target = None;
                ix.declined.clear();
            }
            E::TransferReturned { seq, agent_id, .. } => {
                if ix.target.is_some_and(|t| t.seq == *seq) {
                    ix.target = None;
                    ix.declined.clear();
                }
                ix.owner = Some(*agent_id);
                ix.assigned = true;
                ix.waiting_since = None;
            }
            E::AgentAssigned { agent_id, .. } => {
                ix.target = None;
                ix.declined.clear();
                ix.owner = Some(*agent_id);
                ix.assigned = true;
                ix.waiting_since = None;
                self.sticky_due.remove(&id);
                self.sticky_pending.remove(&id);
            }
            E::OfferMade { agent_id, attempt, target_seq, at, .. } => {
                ix.offers.insert(*agent_id, *attempt);
                ix.pending.remove(agent_id);
                ix.attempts = ix.attempts.max(*attempt);
                let queue_target = ix.target.filter(|t| t.seq == *target_seq).and_then(|t| match t.target {
                    Target::Queue(q) => Some(q),
                    Target::Agent(_) => None,
                });
                let agent = self.agents.entry(*agent_id).or_default();
                agent.offers.insert(id, *attempt);
                agent.pending.remove(&id);
                agent.last_offered_at = Some(agent.last_offered_at.map_or(*at, |last| last.max(*at)));
                if let Some(queue_id) = queue_target {
                    self.queues.entry(queue_id).or_default().last_offered = Some(*agent_id);
                }
            }
            E::OfferAccepted { agent_id, attempt, .. } | E::OfferWithdrawn { agent_id, attempt, .. } => {
                Self::end_offer(ix, &mut self.agents, id, *agent_id, *attempt);
            }
            // A rejection or a lapse counts as declining the current target.
            E::OfferRejected { agent_id, attempt, .. } | E::OfferTimedOut { agent_id, attempt, .. }
                if Self::end_offer(ix, &mut self.agents, id, *agent_id, *attempt) =>
            {
                ix.declined.insert(*agent_id);
            }
            _ => {}
        }
    }

    /// Ends a live offer; `false` if it was not the live one (a stale event).
    fn end_offer(
        ix: &mut InteractionSlot,
        agents: &mut BTreeMap<AgentId, AgentSlot>,
        id: InteractionId,
        agent_id: AgentId,
        attempt: u32,
    ) -> bool {
        ix.withdrawing.remove(&(agent_id, attempt));
        if ix.offers.get(&agent_id) != Some(&attempt) {
            return false;
        }
        ix.offers.remove(&agent_id);
        if let Some(agent) = agents.get_mut(&agent_id) {
            agent.offers.remove(&id);
        }
        true
    }

    /// Takes an interaction out of the waiting order and its owner's load.
    fn unlink(&mut self, id: InteractionId) {
        let Some(ix) = self.interactions.get_mut(&id) else { return };
        if let Some(key) = ix.key.take() {
            self.waiting.remove(&key);
        }
        if let Some(agent) = ix.owner.and_then(|owner| self.agents.get_mut(&owner)) {
            agent.open.remove(&id);
        }
    }

    /// Puts an interaction back into the waiting order (if it has a target) and its owner's
    /// load (if assigned).
    fn link(&mut self, id: InteractionId) {
        let Some(ix) = self.interactions.get_mut(&id) else { return };
        if let Some(target) = ix.target {
            let weight = match target.target {
                Target::Queue(q) => self.queues.get(&q).map_or(DEFAULT_WEIGHT, |queue| queue.weight),
                Target::Agent(_) => MAX_WEIGHT,
            };
            let key = (Reverse(weight), ix.waiting_since.unwrap_or(DateTime::<Utc>::MIN_UTC), id);
            self.waiting.insert(key);
            ix.key = Some(key);
        }
        if let (true, Some(owner)) = (ix.assigned, ix.owner) {
            self.agents.entry(owner).or_default().open.insert(id);
        }
    }

    fn close(&mut self, id: InteractionId) {
        self.unlink(id);
        self.sticky_due.remove(&id);
        self.sticky_pending.remove(&id);
        let Some(ix) = self.interactions.remove(&id) else { return };
        for agent_id in ix.offers.keys().chain(ix.pending.keys()) {
            if let Some(agent) = self.agents.get_mut(agent_id) {
                agent.offers.remove(&id);
                agent.pending.remove(&id);
            }
        }
    }

    /// How many interactions wait for an agent (have a target).
    pub fn waiting_count(&self) -> usize {
        self.waiting.len()
    }

    /// How many interactions the board tracks as open.
    pub fn open_count(&self) -> usize {
        self.interactions.len()
    }

    /// An agent's load: open interactions plus offers held (live and pending).
    pub fn agent_load(&self, agent_id: AgentId) -> u32 {
        self.agents.get(&agent_id).map_or(0, AgentSlot::load)
    }

    /// What to do now: withdrawals first, then sticky returns, then offers, interactions in
    /// order of queue weight (highest first) and then longest waiting.
    pub fn decide(&self, now: DateTime<Utc>) -> Vec<Decision> {
        let mut decisions = Vec::new();
        self.withdrawals(&mut decisions);
        self.sticky_returns(&mut decisions);
        self.offers(now, &mut decisions);
        decisions
    }

    fn withdrawals(&self, decisions: &mut Vec<Decision>) {
        for (agent_id, agent) in &self.agents {
            if agent.offers.is_empty() {
                continue;
            }
            for (interaction_id, attempt) in &agent.offers {
                let Some(ix) = self.interactions.get(interaction_id) else { continue };
                if ix.withdrawing.contains(&(*agent_id, *attempt)) {
                    continue;
                }
                let reason = if self.removed(*agent_id, ix) {
                    WithdrawReason::AgentRemoved
                } else if !agent.available() {
                    WithdrawReason::AgentUnavailable
                } else {
                    continue;
                };
                decisions.push(Decision::Withdraw {
                    interaction_id: *interaction_id,
                    agent_id: *agent_id,
                    attempt: *attempt,
                    reason,
                });
            }
        }
    }

    /// Whether the agent may no longer be offered the interaction: taken off its account, or
    /// out of the queue it is being offered from. (A lowered capacity keeps the offers already
    /// held: it limits the next ones.)
    fn removed(&self, agent_id: AgentId, ix: &InteractionSlot) -> bool {
        let on_account = self.accounts.get(&ix.account_id).is_some_and(|members| members.contains(&agent_id));
        let out_of_queue = match ix.target.map(|t| t.target) {
            Some(Target::Queue(queue_id)) => {
                self.queues.get(&queue_id).is_none_or(|queue| !queue.members.contains(&agent_id))
            }
            _ => false,
        };
        !on_account || out_of_queue
    }

    fn sticky_returns(&self, decisions: &mut Vec<Decision>) {
        for interaction_id in self.sticky_due.difference(&self.sticky_pending) {
            let Some(ix) = self.interactions.get(interaction_id) else { continue };
            let Some(owner) = ix.owner else { continue };
            let away = !self.agents.get(&owner).is_some_and(AgentSlot::available);
            if away && ix.assigned && ix.target.is_none() {
                decisions.push(Decision::StickyReturn { interaction_id: *interaction_id, agent_id: owner });
            }
        }
    }

    fn offers(&self, now: DateTime<Utc>, decisions: &mut Vec<Decision>) {
        let mut round = Round {
            free: self
                .agents
                .iter()
                .filter(|(_, a)| a.available() && a.load() < a.capacity)
                .map(|(id, _)| *id)
                .collect(),
            ..Round::default()
        };
        for (_, _, interaction_id) in &self.waiting {
            if round.free.is_empty() {
                break;
            }
            let Some(ix) = self.interactions.get(interaction_id) else { continue };
            let Some(target) = ix.target else { continue };
            if target.until.is_some_and(|until| until <= now) {
                continue; // its timer is about to move it on
            }
            match target.target {
                Target::Agent(agent_id) => {
                    if ix.has_offer() || !round.free.contains(&agent_id) {
                        continue;
                    }
                    self.offer_to_agent(*interaction_id, ix, target, agent_id, now, &mut round, decisions);
                }
                Target::Queue(queue_id) => {
                    let Some(queue) = self.queues.get(&queue_id) else { continue };
                    if queue.strategy != Strategy::RingAll && ix.has_offer() {
                        continue;
                    }
                    let has_free = *round
                        .queue_has_free
                        .entry(queue_id)
                        .or_insert_with(|| queue.members.iter().any(|a| round.free.contains(a)));
                    if !has_free {
                        continue;
                    }
                    self.offer_from_queue(
                        *interaction_id,
                        ix,
                        target,
                        queue_id,
                        queue,
                        now,
                        &mut round,
                        decisions,
                    );
                }
            }
        }
    }

    /// One candidate as it stands in this round.
    fn candidate(&self, ix: &InteractionSlot, agent_id: AgentId, round: &Round) -> Candidate {
        let agent = self.agents.get(&agent_id);
        let default = AgentSlot::default();
        let agent = agent.unwrap_or(&default);
        let offers = agent.offer_count() + round.offers.get(&agent_id).copied().unwrap_or(0);
        let open = count(agent.open.len());
        let on_account = self.accounts.get(&ix.account_id).is_some_and(|members| members.contains(&agent_id));
        let excluded = if !on_account {
            Some(Exclusion::NotOnAccount)
        } else if ix.transferring_agent() == Some(agent_id) {
            Some(Exclusion::TransferringAgent)
        } else if !agent.available() {
            Some(Exclusion::NotAvailable)
        } else if ix.offered_to(agent_id) {
            Some(Exclusion::AlreadyOffered)
        } else if ix.declined.contains(&agent_id) {
            Some(Exclusion::Declined)
        } else if open + offers >= agent.capacity {
            Some(Exclusion::AtCapacity)
        } else {
            None
        };
        Candidate {
            agent_id,
            state: agent.state(),
            open,
            offers,
            capacity: agent.capacity,
            last_offered_at: agent.last_offered_at,
            excluded,
        }
    }

    /// Whether the agent was offered something not yet in `last_offered_at` (pending or in
    /// this round): for recency they count as just offered.
    fn offered_lately(&self, agent_id: AgentId, round: &Round) -> bool {
        round.offers.contains_key(&agent_id)
            || self.agents.get(&agent_id).is_some_and(|a| !a.pending.is_empty())
    }

    #[allow(clippy::too_many_arguments)]
    fn offer_to_agent(
        &self,
        interaction_id: InteractionId,
        ix: &InteractionSlot,
        target: CurrentTarget,
        agent_id: AgentId,
        now: DateTime<Utc>,
        round: &mut Round,
        decisions: &mut Vec<Decision>,
    ) {
        let candidate = self.candidate(ix, agent_id, round);
        if candidate.excluded.is_some() {
            return;
        }
        let why = match target.reason {
            TargetReason::StickyAgent => "it is assigned to them and the customer wrote again",
            TargetReason::Transfer { .. } => "it was transferred to them",
            _ => "the routing plan sends it to them",
        };
        let reason = format!(
            "Offered to the one agent this interaction waits for ({}/{} busy): {why}.",
            candidate.open + candidate.offers,
            candidate.capacity
        );
        let explanation = OfferExplanation::new(target.target, None, vec![candidate], reason);
        let expires_at = target.until.unwrap_or(now + Duration::seconds(AGENT_OFFER_SECS));
        let offer = Decision::Offer {
            interaction_id,
            agent_id,
            target_seq: target.seq,
            attempt: ix.next_attempt(),
            expires_at,
            exclusive: true,
            explanation,
        };
        self.push_offer(offer, round, decisions);
    }

    #[allow(clippy::too_many_arguments)]
    fn offer_from_queue(
        &self,
        interaction_id: InteractionId,
        ix: &InteractionSlot,
        target: CurrentTarget,
        queue_id: QueueId,
        queue: &QueueSlot,
        now: DateTime<Utc>,
        round: &mut Round,
        decisions: &mut Vec<Decision>,
    ) {
        let order = self.strategy_order(queue_id, queue, round);
        let mut candidates: Vec<Candidate> =
            order.iter().map(|agent_id| self.candidate(ix, *agent_id, round)).collect();
        let ring_all = queue.strategy == Strategy::RingAll;
        let mut chosen = Vec::new();
        for candidate in &mut candidates {
            if candidate.excluded.is_none() {
                if ring_all || chosen.is_empty() {
                    chosen.push(candidate.agent_id);
                } else {
                    candidate.excluded = Some(Exclusion::NotChosen);
                }
            }
        }
        let Some(first) = chosen.first().copied() else { return };
        let Some(winner) = candidates.iter().find(|c| c.agent_id == first) else { return };
        let reason = match queue.strategy {
            Strategy::RingAll => format!(
                "Ring-all: offered to all {} eligible members at once; the first to accept gets it.",
                chosen.len()
            ),
            Strategy::RoundRobin => {
                "Round robin: the next eligible member, in join order, after the last one offered from this queue."
                    .to_owned()
            }
            Strategy::LeastRecent => match winner.last_offered_at {
                None => "Least recent: the eligible member never offered anything yet.".to_owned(),
                Some(at) => format!(
                    "Least recent: the eligible member offered anything longest ago ({}).",
                    at.to_rfc3339()
                ),
            },
            Strategy::FewestOpen => format!(
                "Fewest open: the eligible member with the fewest open interactions ({}), ties to the least recent.",
                winner.open
            ),
        };
        let explanation = OfferExplanation::new(target.target, Some(queue.strategy), candidates, reason);
        let expires_at = now + Duration::seconds(i64::from(queue.offer_timeout_secs));
        for (attempt, agent_id) in (ix.next_attempt()..).zip(chosen) {
            let offer = Decision::Offer {
                interaction_id,
                agent_id,
                target_seq: target.seq,
                attempt,
                expires_at,
                exclusive: !ring_all,
                explanation: explanation.clone(),
            };
            self.push_offer(offer, round, decisions);
        }
        round.last_offered.insert(queue_id, first);
    }

    /// The queue's members in the order its strategy tries them.
    fn strategy_order(&self, queue_id: QueueId, queue: &QueueSlot, round: &Round) -> Vec<AgentId> {
        let members = &queue.members;
        let last_offered_at = |a: &AgentId| self.agents.get(a).and_then(|a| a.last_offered_at);
        let open = |a: &AgentId| self.agents.get(a).map_or(0, |a| a.open.len());
        // Join order is the final tie-break: `sort_by_cached_key` is stable.
        match queue.strategy {
            Strategy::RingAll => members.clone(),
            Strategy::RoundRobin => {
                let last = round.last_offered.get(&queue_id).copied().or(queue.last_offered);
                let start = last.and_then(|l| members.iter().position(|a| *a == l)).map_or(0, |i| i + 1);
                let mut order = members.clone();
                order.rotate_left(start % members.len().max(1));
                order
            }
            Strategy::LeastRecent => {
                let mut order = members.clone();
                order.sort_by_cached_key(|a| (self.offered_lately(*a, round), last_offered_at(a)));
                order
            }
            Strategy::FewestOpen => {
                let mut order = members.clone();
                order.sort_by_cached_key(|a| (open(a), self.offered_lately(*a, round), last_offered_at(a)));
                order
            }
        }
    }

    /// Adds an offer to the round: the agent's slot is taken from now on.
    fn push_offer(&self, offer: Decision, round: &mut Round, decisions: &mut Vec<Decision>) {
        if let Decision::Offer { agent_id, .. } = &offer {
            let extra = round.offers.entry(*agent_id).or_insert(0);
            *extra += 1;
            let full = self.agents.get(agent_id).is_none_or(|agent| agent.load() + *extra >= agent.capacity);
            if full {
                round.free.remove(agent_id);
                round.queue_has_free.clear();
            }
        }
        decisions.push(offer);
    }

    /// Records a decision whose command produced events the board has not read yet.
    pub fn note_pending(&mut self, decision: &Decision) {
        match decision {
            Decision::Offer { interaction_id, agent_id, attempt, target_seq, .. } => {
                let Some(ix) = self.interactions.get_mut(interaction_id) else { return };
                // Already read back (the log can overtake the router's bookkeeping).
                if ix.attempts >= *attempt {
                    return;
                }
                ix.pending.insert(*agent_id, *attempt);
                let queue_target = ix.target.filter(|t| t.seq == *target_seq).and_then(|t| match t.target {
                    Target::Queue(q) => Some(q),
                    Target::Agent(_) => None,
                });
                self.agents.entry(*agent_id).or_default().pending.insert(*interaction_id, *attempt);
                if let Some(queue_id) = queue_target {
                    self.queues.entry(queue_id).or_default().last_offered = Some(*agent_id);
                }
            }
            Decision::Withdraw { interaction_id, agent_id, attempt, .. } => {
                if let Some(ix) = self
                    .interactions
                    .get_mut(interaction_id)
                    .filter(|ix| ix.offers.get(agent_id) == Some(attempt))
                {
                    ix.withdrawing.insert((*agent_id, *attempt));
                }
            }
            Decision::StickyReturn { interaction_id, .. } => {
                if self.sticky_due.contains(interaction_id) {
                    self.sticky_pending.insert(*interaction_id);
                }
            }
        }
    }

    /// Drops a decision whose command was refused (it had no effect).
    pub fn forget_pending(&mut self, decision: &Decision) {
        match decision {
            Decision::Offer { interaction_id, agent_id, attempt, .. } => {
                if let Some(ix) = self
                    .interactions
                    .get_mut(interaction_id)
                    .filter(|ix| ix.pending.get(agent_id) == Some(attempt))
                {
                    ix.pending.remove(agent_id);
                }
                if let Some(agent) =
                    self.agents.get_mut(agent_id).filter(|a| a.pending.get(interaction_id) == Some(attempt))
                {
                    agent.pending.remove(interaction_id);
                }
            }
            Decision::Withdraw { interaction_id, agent_id, attempt, .. } => {
                if let Some(ix) = self.interactions.get_mut(interaction_id) {
                    ix.withdrawing.remove(&(*agent_id, *attempt));
                }
            }
            // Refused: the interaction moved on (reassigned, closed, already waiting), so
            // this message needs no return.
            Decision::StickyReturn { interaction_id, .. } => {
                self.sticky_pending.remove(interaction_id);
                self.sticky_due.remove(interaction_id);
            }
        }
    }
}
