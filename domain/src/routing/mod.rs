//! Routing: what an account's plan says, which rules an interaction obeys once routed, and
//! the board that decides who is offered what.
//!
//! - `plan`: the account's ordered steps ("Actions"), each optionally gated by a working-hours
//!   interval, and the conditions a jump step tests. The Interaction aggregate runs the plan.
//! - `schedule`: weekly and dated intervals in the account's time zone.
//! - `rules`: the account's channel rules an interaction copies when it opens (sticky waits,
//!   transfer, inactivity close, mandatory disposition).
//! - `board`: a pure fold over agents, queues and waiting interactions that decides offers
//!   (strategy, capacity, queue weight, longest waiting first) and explains each one.
//!
//! See `docs/adr/0011-routing-engine.md`.

mod board;
mod plan;
mod rules;
mod schedule;
#[cfg(test)]
mod tests;

pub use board::{Board, Decision};
pub use plan::{Condition, MAX_PLAN_STEPS, PlanError, PlanStep, RoutingPlan, StepAction};
pub use rules::{ChannelRules, MAX_WAIT_SECS, MandatoryDisposition, RulesError};
pub use schedule::{DateSlot, Day, Interval, TimeZoneName, WeeklySlot};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{AgentId, QueueId};

/// Where an interaction is being offered: every eligible member of a queue, or one agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Target {
    /// The members of a queue, chosen by the queue's strategy.
    Queue(QueueId),
    /// One agent.
    Agent(AgentId),
}

/// Why an interaction was given a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TargetReason {
    /// A step of the account's routing plan (0-based index).
    Plan {
        /// The step.
        step: usize,
    },
    /// The plan ran out: the interaction waits in the last queue it visited, without deadline.
    PlanEnd,
    /// A new customer message waits for the assigned agent, who is unavailable.
    StickyAgent,
    /// The assigned agent did not take it back in time: it waits in their queue.
    StickyQueue,
    /// An agent transferred it.
    Transfer {
        /// The agent who transferred it (who gets it back, unread, if nobody accepts).
        from: AgentId,
    },
}

/// How a queue picks among its eligible members.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Offer to every eligible member at once; the first to accept wins, the rest are withdrawn.
    RingAll,
    /// One member at a time, the next after the last one offered anything in this queue.
    #[default]
    RoundRobin,
    /// The member offered anything (by any queue) longest ago, or never.
    LeastRecent,
    /// The member with the fewest open interactions; ties go to the least recent.
    FewestOpen,
}

/// An agent's state as the board saw it when deciding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CandidateState {
    /// Ready and connected.
    Ready,
    /// Logged in but paused.
    Paused,
    /// Logged out.
    Offline,
    /// Ready, but their websocket dropped and did not come back within the grace period.
    Unreachable,
}

/// Why a candidate was not offered the interaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Exclusion {
    /// Paused, offline or unreachable.
    NotAvailable,
    /// Open interactions plus pending offers reach their capacity.
    AtCapacity,
    /// Rejected it or let an offer of it lapse.
    Declined,
    /// Already holds an offer of it.
    AlreadyOffered,
    /// Not added to the interaction's account.
    NotOnAccount,
    /// The agent who is transferring it away.
    TransferringAgent,
    /// Eligible, but the strategy chose someone else this time.
    NotChosen,
}

/// One agent the board considered for an offer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candidate {
    /// The agent.
    pub agent_id: AgentId,
    /// Their state.
    pub state: CandidateState,
    /// Open interactions assigned to them.
    pub open: u32,
    /// Offers they hold.
    pub offers: u32,
    /// Their capacity (concurrent interactions).
    pub capacity: u32,
    /// When they were last offered anything.
    pub last_offered_at: Option<DateTime<Utc>>,
    /// `None` if offered; otherwise why not.
    pub excluded: Option<Exclusion>,
}

/// How many candidates an offer's explanation lists by name. A queue of 200 agents would
/// otherwise make every offer event ~40 KB (and ring-all repeats it per agent); the rest are
/// counted by outcome in `not_listed`.
pub const LISTED_CANDIDATES: usize = 10;

/// Why an offer went to whom: recorded with every offer, shown in the interaction's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfferExplanation {
    /// Where the interaction was being offered.
    pub target: Target,
    /// The queue's strategy; `None` for an offer to one agent.
    pub strategy: Option<Strategy>,
    /// The agents considered, in the strategy's order: everyone offered first (up to
    /// [`LISTED_CANDIDATES`]), then the others in order up to that many.
    pub candidates: Vec<Candidate>,
    /// How many agents were considered in all.
    #[serde(default)]
    pub considered: u32,
    /// The considered agents not listed, counted by outcome.
    #[serde(default)]
    pub not_listed: Vec<NotListed>,
    /// One sentence on why the chosen agent won.
    pub reason: String,
}

/// A count of considered agents an explanation does not list by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotListed {
    /// Why they were not offered it; `None`: they were offered it too (ring-all).
    pub excluded: Option<Exclusion>,
    /// How many.
    pub count: u32,
}

impl OfferExplanation {
    /// An explanation of `candidates` (every agent considered, in the strategy's order),
    /// listing at most [`LISTED_CANDIDATES`] of them: those offered first, so the winner is
    /// always named.
    pub fn new(
        target: Target,
        strategy: Option<Strategy>,
        candidates: Vec<Candidate>,
        reason: String,
    ) -> Self {
        let considered = u32::try_from(candidates.len()).unwrap_or(u32::MAX);
        let mut listed: Vec<usize> = (0..candidates.len())
            .filter(|&i| candidates[i].excluded.is_none())
            .take(LISTED_CANDIDATES)
            .collect();
        let room = LISTED_CANDIDATES.saturating_sub(listed.len());
        listed.extend((0..candidates.len()).filter(|&i| candidates[i].excluded.is_some()).take(room));
        listed.sort_unstable();
        let mut not_listed: Vec<NotListed> = Vec::new();
        let mut kept = Vec::with_capacity(listed.len());
        for (i, candidate) in candidates.into_iter().enumerate() {
            if listed.binary_search(&i).is_ok() {
                kept.push(candidate);
            } else if let Some(n) = not_listed.iter_mut().find(|n| n.excluded == candidate.excluded) {
                n.count += 1;
            } else {
                not_listed.push(NotListed { excluded: candidate.excluded, count: 1 });
            }
        }
        Self { target, strategy, candidates: kept, considered, not_listed, reason }
    }
}

/// Why a pending offer was taken back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WithdrawReason {
    /// Another agent accepted it (ring-all).
    TakenByAnother,
    /// The interaction moved on (step timeout, transfer ended, sticky wait over).
    TargetChanged,
    /// The agent paused, logged out or became unreachable.
    AgentUnavailable,
    /// The agent was taken off the interaction's account, or out of the queue offering it.
    AgentRemoved,
    /// The interaction was closed.
    InteractionClosed,
}
