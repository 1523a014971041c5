//! Given/when/then tests of the routing board: events folded in by hand, `decide` asked, the
//! decisions checked. `World` builds the usual facts (an account, ready agents, queues,
//! waiting interactions); each test states the rest.

use chrono::{DateTime, Duration, TimeZone, Utc};

use super::*;
use crate::account::{AccountEvent, MetaSettings, ProviderSettings, SealedSecret};
use crate::agent::AgentEvent;
use crate::interaction::{Closer, InboundContent, InteractionEvent};
use crate::queue::QueueEvent;
use crate::{AccountId, AccountKey, AgentId, DisplayName, InteractionId, MessageId, PhoneNumber, QueueId};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 5, 10, 0, 0).single().expect("valid date")
}

fn t(secs: i64) -> DateTime<Utc> {
    t0() + Duration::seconds(secs)
}

fn meta() -> ProviderSettings {
    ProviderSettings::Meta(MetaSettings {
        business_account_id: "100000000000001".into(),
        app_id: "42".into(),
        phone_number_id: "100000000000002".into(),
        api_base_url: "http://127.0.0.1:1".into(),
        api_version: "v23.0".into(),
        access_token: SealedSecret("sealed-token".into()),
        app_secret: SealedSecret("sealed-secret".into()),
        verify_token: SealedSecret("sealed-verify".into()),
    })
}

/// An offer decision reduced to what most tests check.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Made {
    interaction: InteractionId,
    agent: AgentId,
    attempt: u32,
    exclusive: bool,
}

fn offers(decisions: &[Decision]) -> Vec<Made> {
    decisions
        .iter()
        .filter_map(|d| match d {
            Decision::Offer { interaction_id, agent_id, attempt, exclusive, .. } => Some(Made {
                interaction: *interaction_id,
                agent: *agent_id,
                attempt: *attempt,
                exclusive: *exclusive,
            }),
            _ => None,
        })
        .collect()
}

fn offered_agents(decisions: &[Decision]) -> Vec<AgentId> {
    offers(decisions).iter().map(|m| m.agent).collect()
}

fn explanation(decision: &Decision) -> &OfferExplanation {
    match decision {
        Decision::Offer { explanation, .. } => explanation,
        other => panic!("not an offer: {other:?}"),
    }
}

struct World {
    board: Board,
    account: AccountId,
}

impl World {
    fn new() -> Self {
        let mut board = Board::new();
        let account = AccountId::new();
        board.apply_account(
            account,
            &AccountEvent::AccountCreated {
                name: DisplayName::parse("Support").expect("valid"),
                key: AccountKey::parse("SUP").expect("valid"),
                provider: meta(),
                details: Default::default(),
                proxy_token: None,
                at: t0(),
            },
        );
        Self { board, account }
    }

    /// A registered, logged-in agent, not on the account, not ready.
    fn stranger(&mut self) -> AgentId {
        let id = AgentId::new();
        self.agent_event(
            id,
            AgentEvent::AgentRegistered { name: DisplayName::parse("Sam").expect("ok"), at: t0() },
        );
        self.agent_event(id, AgentEvent::AgentLoggedIn { at: t0() });
        id
    }

    /// A ready agent on the account.
    fn agent(&mut self) -> AgentId {
        let id = self.stranger();
        self.board.apply_account(self.account, &AccountEvent::AgentAddedToAccount { agent_id: id, at: t0() });
        self.agent_event(id, AgentEvent::AgentBecameReady { at: t0() });
        id
    }

    fn agent_with_capacity(&mut self, capacity: u32) -> AgentId {
        let id = self.agent();
        self.agent_event(id, AgentEvent::AgentCapacitySet { capacity, at: t0() });
        id
    }

    fn queue(&mut self, strategy: Strategy, weight: u8) -> QueueId {
        let id = QueueId::new();
        self.board.apply_queue(
            id,
            &QueueEvent::QueueCreated {
                name: DisplayName::parse("Sales").expect("valid"),
                offer_timeout_secs: 20,
                strategy,
                weight,
                at: t0(),
            },
        );
        id
    }

    fn join(&mut self, agent: AgentId, queue: QueueId) {
        self.agent_event(agent, AgentEvent::AgentJoinedQueue { queue_id: queue, at: t0() });
    }

    fn agent_event(&mut self, id: AgentId, event: AgentEvent) {
        self.board.apply_agent(id, &event);
    }

    fn ix_event(&mut self, id: InteractionId, event: InteractionEvent) {
        self.board.apply_interaction(id, &event);
    }

    /// An interaction opened at `since`, routed by plan step 0 to `target` (seq 1).
    fn waiting_for(
        &mut self,
        target: Target,
        since: DateTime<Utc>,
        until: Option<DateTime<Utc>>,
    ) -> InteractionId {
        let id = InteractionId::new();
        self.ix_event(
            id,
            InteractionEvent::InteractionOpened {
                account_id: self.account,
                customer: PhoneNumber::parse("+15551234567").expect("valid"),
                customer_name: None,
                queue_id: None,
                at: since,
            },
        );
        self.ix_event(
            id,
            InteractionEvent::RoutingTargetSet {
                target,
                reason: TargetReason::Plan { step: 0 },
                seq: 1,
                until,
                at: since,
            },
        );
        id
    }

    fn waiting(&mut self, queue: QueueId, since: DateTime<Utc>) -> InteractionId {
        self.waiting_for(Target::Queue(queue), since, None)
    }

    /// The aggregate recorded the offers the board decided (what the router reads back).
    fn made(&mut self, decisions: &[Decision], at: DateTime<Utc>) {
        for decision in decisions {
            if let Decision::Offer {
                interaction_id,
                agent_id,
                target_seq,
                attempt,
                expires_at,
                explanation,
                ..
            } = decision
            {
                self.ix_event(
                    *interaction_id,
                    InteractionEvent::OfferMade {
                        agent_id: *agent_id,
                        attempt: *attempt,
                        target_seq: *target_seq,
                        expires_at: *expires_at,
                        explanation: explanation.clone(),
                        at,
                    },
                );
            }
        }
    }

    /// `agent` accepted offer `attempt` of `ix` (the aggregate assigns in the same commit).
    fn accepted(&mut self, ix: InteractionId, agent: AgentId, attempt: u32, at: DateTime<Utc>) {
        self.ix_event(ix, InteractionEvent::OfferAccepted { agent_id: agent, attempt, at });
        self.ix_event(ix, InteractionEvent::AgentAssigned { agent_id: agent, at });
    }

    /// `ix` assigned to `agent` through an accepted offer made at t(1).
    fn assigned(&mut self, queue: QueueId, agent: AgentId) -> InteractionId {
        self.assigned_at(queue, agent, t(1))
    }

    fn assigned_at(&mut self, queue: QueueId, agent: AgentId, at: DateTime<Utc>) -> InteractionId {
        let ix = self.waiting(queue, t0());
        let decisions = self.board.decide(at);
        let attempt = offers(&decisions)
            .iter()
            .find(|m| m.interaction == ix && m.agent == agent)
            .map(|m| m.attempt)
            .expect("offered to the agent");
        self.made(&decisions, at);
        self.accepted(ix, agent, attempt, at);
        ix
    }

    fn customer_wrote(&mut self, ix: InteractionId, at: DateTime<Utc>) {
        let event = InteractionEvent::CustomerMessageReceived {
            account_id: self.account,
            message_id: MessageId::new(),
            provider_message_id: format!("wamid.{}", MessageId::new()),
            content: InboundContent::Text { body: "hello?".into() },
            sent_at: at,
            at,
        };
        self.ix_event(ix, event);
    }
}

// --- strategies -------------------------------------------------------------------------

#[test]
fn ring_all_offers_every_eligible_member_at_once() {
    let mut w = World::new();
    let queue = w.queue(Strategy::RingAll, 5);
    let (a, b, paused) = (w.agent(), w.agent(), w.agent());
    w.agent_event(paused, AgentEvent::AgentPaused { reason: None, at: t0() });
    for agent in [a, b, paused] {
        w.join(agent, queue);
    }
    let ix = w.waiting(queue, t0());

    let decisions = w.board.decide(t(1));

    assert_eq!(
        offers(&decisions),
        vec![
            Made { interaction: ix, agent: a, attempt: 1, exclusive: false },
            Made { interaction: ix, agent: b, attempt: 2, exclusive: false },
        ]
    );
    let why = explanation(&decisions[0]);
    assert_eq!(why.strategy, Some(Strategy::RingAll));
    assert_eq!(why.candidates.len(), 3);
    assert_eq!(why.candidates[2].excluded, Some(Exclusion::NotAvailable));

    // Read back, nobody new to ring: nothing more. A member who becomes ready is rung too.
    w.made(&decisions, t(1));
    assert!(w.board.decide(t(2)).is_empty());
    w.agent_event(paused, AgentEvent::AgentBecameReady { at: t(2) });
    assert_eq!(
        offers(&w.board.decide(t(3))),
        vec![Made { interaction: ix, agent: paused, attempt: 3, exclusive: false }]
    );
}

#[test]
fn round_robin_takes_the_next_member_after_the_last_one_offered() {
    let mut w = World::new();
    let queue = w.queue(Strategy::RoundRobin, 5);
    let (a, b, c) = (w.agent(), w.agent(), w.agent());
    for agent in [a, b, c] {
        w.join(agent, queue);
    }
    let first = w.waiting(queue, t0());
    let second = w.waiting(queue, t(1));

    let decisions = w.board.decide(t(2));
    assert_eq!(
        offers(&decisions),
        vec![
            Made { interaction: first, agent: a, attempt: 1, exclusive: true },
            Made { interaction: second, agent: b, attempt: 1, exclusive: true },
        ]
    );
    w.made(&decisions, t(2));

    // One offer at a time: both hold a live offer, so nothing happens.
    assert!(w.board.decide(t(3)).is_empty());

    // The queue remembers it last offered to b: the next one goes to c, then a.
    let third = w.waiting(queue, t(3));
    let decisions = w.board.decide(t(4));
    assert_eq!(offers(&decisions), vec![Made { interaction: third, agent: c, attempt: 1, exclusive: true }]);
    w.made(&decisions, t(4));
    w.ix_event(first, InteractionEvent::OfferRejected { agent_id: a, attempt: 1, at: t(5) });
    assert_eq!(offered_agents(&w.board.decide(t(6))), vec![b]);
}

#[test]
fn least_recent_prefers_never_offered_then_longest_ago() {
    let mut w = World::new();
    let queue = w.queue(Strategy::LeastRecent, 5);
    let other = w.queue(Strategy::RoundRobin, 5);
    let (a, b, c) = (w.agent(), w.agent(), w.agent());
    for agent in [a, b, c] {
        w.join(agent, queue);
    }
    w.join(b, other);
    w.join(a, other);
    // a was offered something at t(10), b at t(5) (through another queue: any queue counts).
    for (agent, at) in [(a, t(10)), (b, t(5))] {
        let ix = w.waiting(other, t0());
        w.ix_event(
            ix,
            InteractionEvent::OfferMade {
                agent_id: agent,
                attempt: 1,
                target_seq: 1,
                expires_at: at + Duration::seconds(20),
                explanation: OfferExplanation::new(
                    Target::Queue(other),
                    Some(Strategy::RoundRobin),
                    vec![],
                    String::new(),
                ),
                at,
            },
        );
    }

    let ix = w.waiting(queue, t(11));
    let decisions = w.board.decide(t(12));
    assert_eq!(offers(&decisions), vec![Made { interaction: ix, agent: c, attempt: 1, exclusive: true }]);
    let why = explanation(&decisions[0]);
    assert_eq!(why.candidates.iter().map(|c| c.agent_id).collect::<Vec<_>>(), vec![c, b, a]);
    assert_eq!(why.candidates[1].last_offered_at, Some(t(5)));
    assert!(why.reason.contains("never"), "{}", why.reason);

    // c declines: b was offered longest ago.
    w.made(&decisions, t(12));
    w.ix_event(ix, InteractionEvent::OfferRejected { agent_id: c, attempt: 1, at: t(13) });
    assert_eq!(offered_agents(&w.board.decide(t(14))), vec![b]);
}

#[test]
fn fewest_open_prefers_the_least_loaded_then_the_least_recent() {
    let mut w = World::new();
    let feeder = w.queue(Strategy::RoundRobin, 5);
    let queue = w.queue(Strategy::FewestOpen, 5);
    let (a, b, c) = (w.agent(), w.agent(), w.agent());
    w.join(a, feeder);
    // a has two open interactions, b and c one each, c offered more recently than b.
    w.assigned(feeder, a);
    w.assigned(feeder, a);
    w.join(b, feeder);
    w.join(c, feeder);
    w.agent_event(a, AgentEvent::AgentLeftQueue { queue_id: feeder, at: t0() });
    w.assigned_at(feeder, b, t(2));
    w.assigned_at(feeder, c, t(3));
    // c joins before b: join order alone would pick c.
    for agent in [a, c, b] {
        w.join(agent, queue);
    }

    w.waiting(queue, t(5));
    let decisions = w.board.decide(t(6));
    assert_eq!(offered_agents(&decisions), vec![b]);
    let why = explanation(&decisions[0]);
    assert_eq!(
        why.candidates.iter().map(|c| (c.agent_id, c.open)).collect::<Vec<_>>(),
        vec![(b, 1), (c, 1), (a, 2)]
    );
    assert_eq!(why.candidates[1].excluded, Some(Exclusion::NotChosen));
    assert!(why.reason.contains("fewest open"), "{}", why.reason);
}

// --- capacity ---------------------------------------------------------------------------

#[test]
fn an_agent_at_capacity_gets_nothing_until_a_slot_frees() {
    let mut w = World::new();
    let queue = w.queue(Strategy::RoundRobin, 5);
    let a = w.agent_with_capacity(1);
    w.join(a, queue);
    let open = w.assigned(queue, a);
    let waiting = w.waiting(queue, t(3));

    let decisions = w.board.decide(t(4));
    assert!(decisions.is_empty(), "{decisions:?}");
    assert_eq!(w.board.agent_load(a), 1);

    w.ix_event(open, InteractionEvent::InteractionClosed { by: Closer::Agent(a), at: t(5) });
    assert_eq!(w.board.agent_load(a), 0);
    assert_eq!(
        offers(&w.board.decide(t(6))),
        vec![Made { interaction: waiting, agent: a, attempt: 1, exclusive: true }]
    );
}

#[test]
fn capacity_counts_open_interactions_live_offers_and_pending_decisions() {
    let mut w = World::new();
    let queue = w.queue(Strategy::RingAll, 5);
    let a = w.agent_with_capacity(3);
    w.join(a, queue);
    w.assigned(queue, a); // open: 1
    let live = w.waiting(queue, t(3));
    let decisions = w.board.decide(t(4));
    w.made(&decisions, t(4)); // a live offer: 2
    let pending = w.waiting(queue, t(5));
    let decisions = w.board.decide(t(6));
    assert_eq!(offered_agents(&decisions), vec![a]);
    w.board.note_pending(&decisions[0]); // executed, not read back: 3
    let fourth = w.waiting(queue, t(7));

    let decisions = w.board.decide(t(8));
    assert!(decisions.is_empty(), "{decisions:?}");
    assert_eq!(w.board.agent_load(a), 3);

    // Within one round too: two interactions, one free slot, one offer.
    w.board.forget_pending(&Decision::Offer {
        interaction_id: pending,
        agent_id: a,
        target_seq: 1,
        attempt: 1,
        expires_at: t(26),
        exclusive: false,
        explanation: OfferExplanation::new(
            Target::Queue(queue),
            Some(Strategy::RingAll),
            vec![],
            String::new(),
        ),
    });
    let decisions = w.board.decide(t(9));
    assert_eq!(
        offers(&decisions),
        vec![Made { interaction: pending, agent: a, attempt: 1, exclusive: false }]
    );
    let _ = (live, fourth);
}

#[test]
fn an_at_capacity_candidate_is_explained() {
    let mut w = World::new();
    let queue = w.queue(Strategy::RoundRobin, 5);
    let (busy, free) = (w.agent_with_capacity(1), w.agent());
    w.join(busy, queue);
    w.assigned(queue, busy);
    w.join(free, queue);
    w.waiting(queue, t(3));

    let decisions = w.board.decide(t(4));
    assert_eq!(offered_agents(&decisions), vec![free]);
    let busy_candidate =
        explanation(&decisions[0]).candidates.iter().find(|c| c.agent_id == busy).cloned().expect("listed");
    assert_eq!(
        busy_candidate,
        Candidate {
            agent_id: busy,
            state: CandidateState::Ready,
            open: 1,
            offers: 0,
            capacity: 1,
            last_offered_at: Some(t(1)),
            excluded: Some(Exclusion::AtCapacity),
        }
    );
}

// --- order: weights and waiting time ------------------------------------------------------

#[test]
fn the_heavier_queue_goes_first_even_if_the_lighter_waited_longer() {
    let mut w = World::new();
    let light = w.queue(Strategy::RoundRobin, 2);
    let heavy = w.queue(Strategy::RoundRobin, 9);
    let a = w.agent_with_capacity(1);
    w.join(a, light);
    w.join(a, heavy);
    let old = w.waiting(light, t0());
    let urgent = w.waiting(heavy, t(50));

    assert_eq!(
        offers(&w.board.decide(t(60))),
        vec![Made { interaction: urgent, agent: a, attempt: 1, exclusive: true }]
    );

    // Reweighting the light queue above the heavy one turns the order around.
    w.board.apply_queue(
        light,
        &QueueEvent::QueueConfigured {
            offer_timeout_secs: 20,
            strategy: Strategy::RoundRobin,
            weight: 10,
            at: t(55),
        },
    );
    assert_eq!(offered_agents(&w.board.decide(t(60))), vec![a]);
    assert_eq!(offers(&w.board.decide(t(60)))[0].interaction, old);
}

#[test]
fn the_longest_waiting_interaction_goes_first() {
    let mut w = World::new();
    let queue = w.queue(Strategy::RoundRobin, 5);
    let a = w.agent_with_capacity(1);
    w.join(a, queue);
    let newer = w.waiting(queue, t(30));
    let older = w.waiting(queue, t(10));

    let decisions = w.board.decide(t(40));
    assert_eq!(offers(&decisions), vec![Made { interaction: older, agent: a, attempt: 1, exclusive: true }]);
    assert_eq!(w.board.waiting_count(), 2);
    let _ = newer;
}

#[test]
fn an_agent_target_outranks_queues_below_the_top_weight() {
    let mut w = World::new();
    let queue = w.queue(Strategy::RoundRobin, 9);
    let a = w.agent_with_capacity(1);
    w.join(a, queue);
    let _queued = w.waiting(queue, t0());
    let direct = w.waiting_for(Target::Agent(a), t(20), Some(t(80)));

    let decisions = w.board.decide(t(30));
    assert_eq!(offers(&decisions), vec![Made { interaction: direct, agent: a, attempt: 1, exclusive: true }]);
}

// --- who is eligible ----------------------------------------------------------------------

#[test]
fn an_agent_who_declined_is_skipped_for_that_target_only() {
    let mut w = World::new();
    let queue = w.queue(Strategy::RoundRobin, 5);
    let (a, b) = (w.agent(), w.agent());
    w.join(a, queue);
    w.join(b, queue);
    let ix = w.waiting(queue, t0());
    let decisions = w.board.decide(t(1));
    assert_eq!(offered_agents(&decisions), vec![a]);
    w.made(&decisions, t(1));
    w.ix_event(ix, InteractionEvent::OfferTimedOut { agent_id: a, attempt: 1, at: t(21) });

    let decisions = w.board.decide(t(22));
    assert_eq!(offers(&decisions), vec![Made { interaction: ix, agent: b, attempt: 2, exclusive: true }]);
    let why = explanation(&decisions[0]);
    let a_candidate = why.candidates.iter().find(|c| c.agent_id == a).expect("listed");
    assert_eq!(a_candidate.excluded, Some(Exclusion::Declined));
    w.made(&decisions, t(22));
    w.ix_event(ix, InteractionEvent::OfferRejected { agent_id: b, attempt: 2, at: t(23) });
    assert!(w.board.decide(t(24)).is_empty(), "both declined");

    // The plan moves on to the same queue again: a fresh target, nobody has declined it.
    w.ix_event(ix, InteractionEvent::RoutingTargetExpired { seq: 1, at: t(30) });
    w.ix_event(
        ix,
        InteractionEvent::RoutingTargetSet {
            target: Target::Queue(queue),
            reason: TargetReason::Plan { step: 2 },
            seq: 2,
            until: None,
            at: t(30),
        },
    );
    let decisions = w.board.decide(t(31));
    assert_eq!(offered_agents(&decisions), vec![a]);
    assert!(matches!(decisions[0], Decision::Offer { target_seq: 2, attempt: 3, .. }));
}

#[test]
fn only_agents_added_to_the_account_are_offered() {
    let mut w = World::new();
    let queue = w.queue(Strategy::RingAll, 5);
    let member = w.agent();
    let stranger = w.stranger();
    w.agent_event(stranger, AgentEvent::AgentBecameReady { at: t0() });
    w.join(stranger, queue);
    w.join(member, queue);
    w.waiting(queue, t0());

    let decisions = w.board.decide(t(1));
    assert_eq!(offered_agents(&decisions), vec![member]);
    assert_eq!(explanation(&decisions[0]).candidates[0].excluded, Some(Exclusion::NotOnAccount));

    // Removed from the account: no longer offered.
    w.board.apply_account(w.account, &AccountEvent::AgentRemovedFromAccount { agent_id: member, at: t(2) });
    w.waiting(queue, t(3));
    let decisions = w.board.decide(t(4));
    assert!(offers(&decisions).is_empty(), "{decisions:?}");
}

#[test]
fn paused_offline_and_unreachable_agents_are_not_offered_and_say_why() {
    let mut w = World::new();
    let queue = w.queue(Strategy::RingAll, 5);
    let (paused, offline, unreachable) = (w.agent(), w.agent(), w.agent());
    w.agent_event(paused, AgentEvent::AgentPaused { reason: None, at: t0() });
    w.agent_event(offline, AgentEvent::AgentLoggedOut { at: t0() });
    w.agent_event(unreachable, AgentEvent::AgentConnected { connection_id: "c1".into(), at: t0() });
    w.agent_event(
        unreachable,
        AgentEvent::AgentDisconnected { connection_id: "c1".into(), reconnect_by: t(30), at: t0() },
    );
    w.agent_event(unreachable, AgentEvent::AgentUnreachable { connection_id: "c1".into(), at: t(30) });
    let ready = w.agent();
    for agent in [paused, offline, unreachable, ready] {
        w.join(agent, queue);
    }
    w.waiting(queue, t(31));

    let decisions = w.board.decide(t(32));
    assert_eq!(offered_agents(&decisions), vec![ready]);
    let states: Vec<_> =
        explanation(&decisions[0]).candidates.iter().map(|c| (c.state, c.excluded)).collect();
    assert_eq!(
        states,
        vec![
            (CandidateState::Paused, Some(Exclusion::NotAvailable)),
            (CandidateState::Offline, Some(Exclusion::NotAvailable)),
            (CandidateState::Unreachable, Some(Exclusion::NotAvailable)),
            (CandidateState::Ready, None),
        ]
    );
}

#[test]
fn a_disconnected_agent_stays_eligible_during_the_grace_and_after_reconnecting() {
    let mut w = World::new();
    let queue = w.queue(Strategy::RingAll, 5);
    let a = w.agent();
    w.join(a, queue);
    w.agent_event(a, AgentEvent::AgentConnected { connection_id: "c1".into(), at: t0() });
    w.agent_event(
        a,
        AgentEvent::AgentDisconnected { connection_id: "c1".into(), reconnect_by: t(30), at: t0() },
    );
    w.waiting(queue, t(1));
    assert_eq!(offered_agents(&w.board.decide(t(2))), vec![a]);

    w.agent_event(a, AgentEvent::AgentUnreachable { connection_id: "c1".into(), at: t(30) });
    assert!(w.board.decide(t(31)).is_empty());
    w.agent_event(a, AgentEvent::AgentConnected { connection_id: "c2".into(), at: t(40) });
    assert_eq!(offered_agents(&w.board.decide(t(41))), vec![a]);
}

// --- withdrawals ---------------------------------------------------------------------------

#[test]
fn offers_of_an_agent_who_becomes_unreachable_or_pauses_are_withdrawn_once() {
    let mut w = World::new();
    let queue = w.queue(Strategy::RingAll, 5);
    let (a, b) = (w.agent(), w.agent());
    w.join(a, queue);
    w.join(b, queue);
    let ix = w.waiting(queue, t0());
    let decisions = w.board.decide(t(1));
    w.made(&decisions, t(1));

    w.agent_event(a, AgentEvent::AgentUnreachable { connection_id: "c1".into(), at: t(2) });
    w.agent_event(b, AgentEvent::AgentPaused { reason: None, at: t(2) });
    let decisions = w.board.decide(t(3));
    let withdraw = |agent_id, attempt| Decision::Withdraw {
        interaction_id: ix,
        agent_id,
        attempt,
        reason: WithdrawReason::AgentUnavailable,
    };
    assert_eq!(decisions, vec![withdraw(a, 1), withdraw(b, 2)]);

    // Executed: not repeated while the events are on their way; refused: asked again.
    w.board.note_pending(&decisions[0]);
    w.board.note_pending(&decisions[1]);
    assert!(w.board.decide(t(4)).is_empty());
    w.board.forget_pending(&decisions[1]);
    assert_eq!(w.board.decide(t(4)), vec![withdraw(b, 2)]);

    // Read back: gone for good.
    w.ix_event(
        ix,
        InteractionEvent::OfferWithdrawn {
            agent_id: a,
            attempt: 1,
            reason: WithdrawReason::AgentUnavailable,
            at: t(5),
        },
    );
    assert_eq!(w.board.decide(t(6)), vec![withdraw(b, 2)]);
    assert_eq!(w.board.agent_load(a), 0);
}

#[test]
fn offers_of_an_agent_taken_off_the_account_or_out_of_the_queue_are_withdrawn() {
    let mut w = World::new();
    let queue = w.queue(Strategy::RingAll, 5);
    let (a, b, c) = (w.agent(), w.agent(), w.agent());
    for agent in [a, b, c] {
        w.join(agent, queue);
    }
    let ix = w.waiting(queue, t0());
    let decisions = w.board.decide(t(1));
    w.made(&decisions, t(1));
    assert_eq!(offered_agents(&decisions), vec![a, b, c]);

    w.board.apply_account(w.account, &AccountEvent::AgentRemovedFromAccount { agent_id: a, at: t(2) });
    w.agent_event(b, AgentEvent::AgentLeftQueue { queue_id: queue, at: t(2) });
    // A lowered capacity limits the next offers; it does not take back the one held.
    w.agent_event(c, AgentEvent::AgentCapacitySet { capacity: 1, at: t(2) });
    let withdraw = |agent_id, attempt| Decision::Withdraw {
        interaction_id: ix,
        agent_id,
        attempt,
        reason: WithdrawReason::AgentRemoved,
    };
    assert_eq!(w.board.decide(t(3)), vec![withdraw(a, 1), withdraw(b, 2)]);
}

#[test]
fn closing_an_interaction_drops_its_offers_from_the_agents_load() {
    let mut w = World::new();
    let queue = w.queue(Strategy::RingAll, 5);
    let a = w.agent();
    w.join(a, queue);
    let ix = w.waiting(queue, t0());
    let decisions = w.board.decide(t(1));
    w.made(&decisions, t(1));
    assert_eq!(w.board.agent_load(a), 1);

    w.ix_event(ix, InteractionEvent::InteractionClosed { by: Closer::Supervisor, at: t(2) });
    w.ix_event(
        ix,
        InteractionEvent::OfferWithdrawn {
            agent_id: a,
            attempt: 1,
            reason: WithdrawReason::InteractionClosed,
            at: t(2),
        },
    );
    assert_eq!(w.board.agent_load(a), 0);
    assert_eq!((w.board.waiting_count(), w.board.open_count()), (0, 0));
    w.agent_event(a, AgentEvent::AgentPaused { reason: None, at: t(3) });
    assert!(w.board.decide(t(4)).is_empty());
}

// --- sticky return -------------------------------------------------------------------------

#[test]
fn a_customer_message_while_the_owner_is_away_asks_for_a_sticky_return_once() {
    let mut w = World::new();
    let queue = w.queue(Strategy::RoundRobin, 5);
    let owner = w.agent();
    w.join(owner, queue);
    let ix = w.assigned(queue, owner);

    // The owner is ready: a message is just a message.
    w.customer_wrote(ix, t(10));
    assert!(w.board.decide(t(11)).is_empty());

    w.agent_event(owner, AgentEvent::AgentPaused { reason: None, at: t(12) });
    assert!(w.board.decide(t(13)).is_empty(), "no message since the pause");
    w.customer_wrote(ix, t(14));
    let decisions = w.board.decide(t(15));
    let sticky = Decision::StickyReturn { interaction_id: ix, agent_id: owner };
    assert_eq!(decisions, vec![sticky.clone()]);
    w.board.note_pending(&sticky);
    assert!(w.board.decide(t(16)).is_empty(), "once per message");

    // Read back: it waits for the owner (no longer counted as their open interaction).
    w.ix_event(
        ix,
        InteractionEvent::RoutingTargetSet {
            target: Target::Agent(owner),
            reason: TargetReason::StickyAgent,
            seq: 2,
            until: Some(t(75)),
            at: t(16),
        },
    );
    assert_eq!(w.board.agent_load(owner), 0);
    assert!(w.board.decide(t(17)).is_empty(), "the owner is paused");

    // The owner comes back: an exclusive offer lasting until the sticky wait ends.
    w.agent_event(owner, AgentEvent::AgentBecameReady { at: t(20) });
    let decisions = w.board.decide(t(21));
    assert_eq!(offers(&decisions), vec![Made { interaction: ix, agent: owner, attempt: 2, exclusive: true }]);
    assert!(matches!(decisions[0], Decision::Offer { expires_at, target_seq: 2, .. } if expires_at == t(75)));
    let why = explanation(&decisions[0]);
    assert_eq!((why.target, why.strategy), (Target::Agent(owner), None));
    assert!(why.reason.contains("customer wrote again"), "{}", why.reason);
}

#[test]
fn a_sticky_return_is_dropped_when_the_owner_comes_back_or_the_command_is_refused() {
    let mut w = World::new();
    let queue = w.queue(Strategy::RoundRobin, 5);
    let owner = w.agent();
    w.join(owner, queue);
    let ix = w.assigned(queue, owner);
    w.agent_event(owner, AgentEvent::AgentUnreachable { connection_id: "c1".into(), at: t(5) });
    w.customer_wrote(ix, t(6));
    assert_eq!(w.board.decide(t(7)), vec![Decision::StickyReturn { interaction_id: ix, agent_id: owner }]);
    w.agent_event(owner, AgentEvent::AgentConnected { connection_id: "c2".into(), at: t(8) });
    assert!(w.board.decide(t(9)).is_empty());

    w.agent_event(owner, AgentEvent::AgentLoggedOut { at: t(10) });
    w.customer_wrote(ix, t(11));
    let sticky = Decision::StickyReturn { interaction_id: ix, agent_id: owner };
    assert_eq!(w.board.decide(t(12)), vec![sticky.clone()]);
    w.board.forget_pending(&sticky);
    assert!(w.board.decide(t(13)).is_empty());
}

// --- transfers and agent targets -----------------------------------------------------------

#[test]
fn a_transfer_to_a_queue_is_never_offered_back_to_the_transferring_agent() {
    let mut w = World::new();
    let queue = w.queue(Strategy::RingAll, 5);
    let (from, other) = (w.agent(), w.agent());
    w.join(from, queue);
    let ix = w.assigned(queue, from);
    w.join(other, queue);
    w.ix_event(
        ix,
        InteractionEvent::TransferRequested {
            from,
            to: Target::Queue(queue),
            seq: 2,
            until: t(100),
            at: t(10),
        },
    );
    assert_eq!(w.board.agent_load(from), 1, "the owner keeps it until someone accepts");

    let decisions = w.board.decide(t(11));
    assert_eq!(
        offers(&decisions),
        vec![Made { interaction: ix, agent: other, attempt: 2, exclusive: false }]
    );
    assert_eq!(explanation(&decisions[0]).candidates[0].excluded, Some(Exclusion::TransferringAgent));

    // Accepted: it moves from one agent's load to the other's.
    w.made(&decisions, t(11));
    w.accepted(ix, other, 2, t(12));
    assert_eq!((w.board.agent_load(from), w.board.agent_load(other)), (0, 1));
}

#[test]
fn a_transfer_to_an_agent_is_offered_to_them_alone_until_it_lapses() {
    let mut w = World::new();
    let queue = w.queue(Strategy::RoundRobin, 5);
    let (from, to, bystander) = (w.agent(), w.agent(), w.agent());
    w.join(from, queue);
    let ix = w.assigned(queue, from);
    w.join(bystander, queue);
    w.ix_event(
        ix,
        InteractionEvent::TransferRequested { from, to: Target::Agent(to), seq: 2, until: t(100), at: t(10) },
    );

    let decisions = w.board.decide(t(11));
    assert_eq!(offers(&decisions), vec![Made { interaction: ix, agent: to, attempt: 2, exclusive: true }]);
    assert!(matches!(decisions[0], Decision::Offer { expires_at, .. } if expires_at == t(100)));
    assert!(explanation(&decisions[0]).reason.contains("transferred"));

    // Past the deadline the timer moves it on: the board does not offer meanwhile.
    assert!(w.board.decide(t(100)).is_empty());

    // Returned: it is the transferring agent's again, nothing waits.
    w.ix_event(ix, InteractionEvent::TransferReturned { seq: 2, agent_id: from, at: t(100) });
    assert_eq!(w.board.waiting_count(), 0);
    assert_eq!(w.board.agent_load(from), 1);
}

#[test]
fn a_plan_agent_target_is_offered_exclusively_and_without_deadline_for_thirty_seconds() {
    let mut w = World::new();
    let (a, b) = (w.agent(), w.agent());
    let ix = w.waiting_for(Target::Agent(a), t0(), None);
    let decisions = w.board.decide(t(1));
    assert_eq!(offers(&decisions), vec![Made { interaction: ix, agent: a, attempt: 1, exclusive: true }]);
    assert!(matches!(decisions[0], Decision::Offer { expires_at, .. } if expires_at == t(31)));
    let why = explanation(&decisions[0]);
    assert_eq!(why.candidates.len(), 1);
    assert_eq!(why.candidates[0].agent_id, a);
    let _ = b;

    // The target agent pauses: nobody else is asked.
    w.agent_event(a, AgentEvent::AgentPaused { reason: None, at: t(2) });
    assert!(offers(&w.board.decide(t(3))).is_empty());
}

// --- explanations --------------------------------------------------------------------------

#[test]
fn every_offer_explains_every_candidate_in_the_strategy_order() {
    let mut w = World::new();
    let queue = w.queue(Strategy::RoundRobin, 5);
    let (a, b, c) = (w.agent(), w.agent(), w.agent());
    w.agent_event(b, AgentEvent::AgentPaused { reason: None, at: t0() });
    for agent in [a, b, c] {
        w.join(agent, queue);
    }
    w.waiting(queue, t0());

    let decisions = w.board.decide(t(1));
    let why = explanation(&decisions[0]);
    assert_eq!(why.target, Target::Queue(queue));
    assert_eq!(why.strategy, Some(Strategy::RoundRobin));
    let candidate = |agent_id, state, excluded| Candidate {
        agent_id,
        state,
        open: 0,
        offers: 0,
        capacity: crate::agent::DEFAULT_CAPACITY,
        last_offered_at: None,
        excluded,
    };
    assert_eq!(
        why.candidates,
        vec![
            candidate(a, CandidateState::Ready, None),
            candidate(b, CandidateState::Paused, Some(Exclusion::NotAvailable)),
            candidate(c, CandidateState::Ready, Some(Exclusion::NotChosen)),
        ]
    );
    assert!(why.reason.starts_with("Round robin"), "{}", why.reason);
    assert!(why.reason.ends_with('.'));
}

#[test]
fn a_large_queue_names_ten_candidates_winner_included_and_counts_the_rest() {
    let mut w = World::new();
    let queue = w.queue(Strategy::RoundRobin, 5);
    let agents: Vec<AgentId> = (0..30).map(|_| w.agent()).collect();
    for (i, agent) in agents.iter().enumerate() {
        if i < 25 {
            w.agent_event(*agent, AgentEvent::AgentPaused { reason: None, at: t0() });
        }
        w.join(*agent, queue);
    }
    w.waiting(queue, t0());

    let decisions = w.board.decide(t(1));
    assert_eq!(offered_agents(&decisions), vec![agents[25]]);
    let why = explanation(&decisions[0]);
    assert_eq!(why.considered, 30);
    // The winner is named even though 25 members come before it; the other nine slots go
    // to the first members in the strategy's order.
    let listed: Vec<AgentId> = why.candidates.iter().map(|c| c.agent_id).collect();
    let mut expected: Vec<AgentId> = agents[..9].to_vec();
    expected.push(agents[25]);
    assert_eq!(listed, expected);
    assert_eq!(
        why.not_listed,
        vec![
            NotListed { excluded: Some(Exclusion::NotAvailable), count: 16 },
            NotListed { excluded: Some(Exclusion::NotChosen), count: 4 },
        ]
    );
}

#[test]
fn ring_all_over_a_large_queue_names_ten_of_those_offered() {
    let mut w = World::new();
    let queue = w.queue(Strategy::RingAll, 5);
    let agents: Vec<AgentId> = (0..25).map(|_| w.agent()).collect();
    for agent in &agents {
        w.join(*agent, queue);
    }
    w.waiting(queue, t0());
    let decisions = w.board.decide(t(1));
    assert_eq!(offers(&decisions).len(), 25);
    let why = explanation(&decisions[0]);
    assert_eq!(why.candidates.len(), LISTED_CANDIDATES);
    assert_eq!(why.considered, 25);
    assert_eq!(why.not_listed, vec![NotListed { excluded: None, count: 15 }]);
    // Small enough to be stored with every offer.
    assert!(serde_json::to_vec(why).expect("json").len() < 4_000);
}

#[test]
fn an_already_offered_member_is_explained_in_ring_all() {
    let mut w = World::new();
    let queue = w.queue(Strategy::RingAll, 5);
    let a = w.agent();
    w.join(a, queue);
    let ix = w.waiting(queue, t0());
    let decisions = w.board.decide(t(1));
    w.made(&decisions, t(1));
    let late = w.agent();
    w.join(late, queue);

    let decisions = w.board.decide(t(2));
    assert_eq!(offers(&decisions), vec![Made { interaction: ix, agent: late, attempt: 2, exclusive: false }]);
    let why = explanation(&decisions[0]);
    assert_eq!(why.candidates[0].excluded, Some(Exclusion::AlreadyOffered));
    assert_eq!(why.candidates[0].offers, 1);
}

// --- pending overlay -----------------------------------------------------------------------

#[test]
fn a_pending_offer_is_not_repeated_and_a_refused_one_is_retried() {
    let mut w = World::new();
    let queue = w.queue(Strategy::RoundRobin, 5);
    let (a, b) = (w.agent(), w.agent());
    w.join(a, queue);
    w.join(b, queue);
    let ix = w.waiting(queue, t0());
    let decisions = w.board.decide(t(1));
    assert_eq!(offered_agents(&decisions), vec![a]);

    w.board.note_pending(&decisions[0]);
    assert!(w.board.decide(t(2)).is_empty(), "one offer at a time, pending counts");
    assert_eq!(w.board.agent_load(a), 1);

    // Read back: counted once, not twice.
    w.made(&decisions, t(2));
    assert_eq!(w.board.agent_load(a), 1);
    // A late note of an offer already read back changes nothing.
    w.board.note_pending(&decisions[0]);
    assert_eq!(w.board.agent_load(a), 1);

    // A second interaction: its decision is refused (e.g. the target moved on): asked again.
    let second = w.waiting(queue, t(3));
    let decisions = w.board.decide(t(4));
    assert_eq!(offers(&decisions), vec![Made { interaction: second, agent: b, attempt: 1, exclusive: true }]);
    w.board.note_pending(&decisions[0]);
    w.board.forget_pending(&decisions[0]);
    assert_eq!(w.board.agent_load(b), 0);
    assert_eq!(offers(&w.board.decide(t(5))).len(), 1);
    let _ = ix;
}

#[test]
fn a_stale_offer_event_does_not_disturb_the_live_one() {
    let mut w = World::new();
    let queue = w.queue(Strategy::RoundRobin, 5);
    let a = w.agent();
    w.join(a, queue);
    let ix = w.waiting(queue, t0());
    let decisions = w.board.decide(t(1));
    w.made(&decisions, t(1));
    // A timeout of an offer number that is not the live one is ignored.
    w.ix_event(ix, InteractionEvent::OfferTimedOut { agent_id: a, attempt: 7, at: t(2) });
    assert_eq!(w.board.agent_load(a), 1);
    assert!(w.board.decide(t(3)).is_empty());
}

// --- scale ---------------------------------------------------------------------------------

/// 10,000 interactions over 200 agents, accepted as offered and closed in batches: every
/// interaction is routed, nobody ever exceeds capacity, and rounds with no free slot decide
/// nothing.
#[test]
fn ten_thousand_interactions_over_two_hundred_agents() {
    let mut w = World::new();
    let queues = [w.queue(Strategy::RoundRobin, 5), w.queue(Strategy::FewestOpen, 7)];
    let agents: Vec<AgentId> = (0..200).map(|_| w.agent()).collect();
    for (i, agent) in agents.iter().enumerate() {
        w.join(*agent, queues[i % 2]);
        if i % 3 == 0 {
            w.join(*agent, queues[(i + 1) % 2]);
        }
    }
    let interactions: Vec<InteractionId> =
        (0..10_000).map(|i| w.waiting(queues[i % 2], t(i64::try_from(i).unwrap_or(0)))).collect();
    let mut open: Vec<(InteractionId, AgentId)> = Vec::new();
    let mut routed = 0;
    let mut clock = 20_000;
    while routed < interactions.len() {
        clock += 1;
        let decisions = w.board.decide(t(clock));
        if decisions.is_empty() {
            // Everybody is full: close the oldest half of the open interactions.
            assert!(!open.is_empty(), "stuck with {routed} routed");
            let keep = open.split_off(open.len() / 2);
            for (ix, agent) in std::mem::replace(&mut open, keep) {
                w.ix_event(
                    ix,
                    InteractionEvent::InteractionClosed { by: Closer::Agent(agent), at: t(clock) },
                );
            }
            continue;
        }
        w.made(&decisions, t(clock));
        for m in offers(&decisions) {
            w.accepted(m.interaction, m.agent, m.attempt, t(clock));
            open.push((m.interaction, m.agent));
            routed += 1;
        }
        for agent in &agents {
            assert!(w.board.agent_load(*agent) <= crate::agent::DEFAULT_CAPACITY);
        }
    }
    assert_eq!(w.board.waiting_count(), 0);
}

#[test]
fn an_interaction_opened_before_routing_plans_waits_in_its_queue() {
    let mut w = World::new();
    let queue = w.queue(Strategy::RoundRobin, 5);
    let a = w.agent();
    w.join(a, queue);
    let ix = InteractionId::new();
    let opened = InteractionEvent::InteractionOpened {
        account_id: w.account,
        customer: PhoneNumber::parse("+15551234567").expect("valid"),
        customer_name: None,
        queue_id: Some(queue),
        at: t0(),
    };
    w.ix_event(ix, opened.clone());
    w.ix_event(ix, opened); // read twice: still one interaction

    let decisions = w.board.decide(t(1));
    assert_eq!(offers(&decisions), vec![Made { interaction: ix, agent: a, attempt: 1, exclusive: true }]);
    assert!(matches!(decisions[0], Decision::Offer { target_seq: 0, .. }));
    assert_eq!((w.board.waiting_count(), w.board.open_count()), (1, 1));
}
