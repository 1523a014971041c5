//! Given/when/then tests for every Queue rule and rejection, round robin included.

use chrono::{TimeZone, Utc};
use cqrs_es::test::TestFramework;

use super::*;

type Given = TestFramework<Queue>;

fn t(secs: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 5, 10, 0, 0).single().expect("valid date") + Duration::seconds(secs)
}

fn created() -> QueueEvent {
    QueueEvent::QueueCreated {
        name: DisplayName::parse("Sales").expect("valid"),
        offer_timeout_secs: 10,
        at: t(0),
    }
}

fn member(agent_id: AgentId) -> [QueueEvent; 2] {
    [
        QueueEvent::QueueMemberAdded { agent_id, at: t(0) },
        QueueEvent::QueueAgentAvailabilityChanged { agent_id, available: true, at: t(0) },
    ]
}

fn offer(i: InteractionId, a: AgentId, attempt: u32, at: i64) -> QueueEvent {
    QueueEvent::OfferMade { interaction_id: i, agent_id: a, attempt, expires_at: t(at + 10), at: t(at) }
}

/// A queue with two ready members, `a` then `b`.
fn two_agents() -> (AgentId, AgentId, Vec<QueueEvent>) {
    let (a, b) = (AgentId::new(), AgentId::new());
    let mut events = vec![created()];
    events.extend(member(a));
    events.extend(member(b));
    (a, b, events)
}

#[test]
fn creating_validates_the_offer_timeout_and_refuses_duplicates() {
    let name = DisplayName::parse("Sales").expect("valid");
    Given::with(())
        .given_no_previous_events()
        .when(QueueCommand::Create { name: name.clone(), offer_timeout_secs: 10, at: t(0) })
        .then_expect_events(vec![created()]);
    Given::with(())
        .given_no_previous_events()
        .when(QueueCommand::Create { name: name.clone(), offer_timeout_secs: 0, at: t(0) })
        .then_expect_error(QueueError::InvalidOfferTimeout);
    Given::with(())
        .given(vec![created()])
        .when(QueueCommand::Create { name, offer_timeout_secs: 10, at: t(0) })
        .then_expect_error(QueueError::AlreadyExists);
}

#[test]
fn commands_on_a_missing_queue_are_refused() {
    Given::with(())
        .given_no_previous_events()
        .when(QueueCommand::Enqueue { interaction_id: InteractionId::new(), at: t(0) })
        .then_expect_error(QueueError::NotFound);
}

#[test]
fn an_interaction_with_nobody_ready_waits() {
    let i = InteractionId::new();
    Given::with(())
        .given(vec![created(), QueueEvent::QueueMemberAdded { agent_id: AgentId::new(), at: t(0) }])
        .when(QueueCommand::Enqueue { interaction_id: i, at: t(1) })
        .then_expect_events(vec![QueueEvent::InteractionQueued { interaction_id: i, at: t(1) }]);
}

#[test]
fn an_interaction_is_offered_to_one_ready_agent_with_a_deadline() {
    let (a, _b, given) = two_agents();
    let i = InteractionId::new();
    Given::with(())
        .given(given)
        .when(QueueCommand::Enqueue { interaction_id: i, at: t(1) })
        .then_expect_events(vec![
            QueueEvent::InteractionQueued { interaction_id: i, at: t(1) },
            offer(i, a, 1, 1),
        ]);
}

#[test]
fn offers_go_round_robin_and_an_agent_holds_one_offer_at_a_time() {
    let (a, b, mut given) = two_agents();
    let (i1, i2, i3) = (InteractionId::new(), InteractionId::new(), InteractionId::new());
    given.extend([QueueEvent::InteractionQueued { interaction_id: i1, at: t(1) }, offer(i1, a, 1, 1)]);
    Given::with(())
        .given(given.clone())
        .when(QueueCommand::Enqueue { interaction_id: i2, at: t(2) })
        .then_expect_events(vec![
            QueueEvent::InteractionQueued { interaction_id: i2, at: t(2) },
            offer(i2, b, 1, 2),
        ]);
    given.extend([QueueEvent::InteractionQueued { interaction_id: i2, at: t(2) }, offer(i2, b, 1, 2)]);
    // Both agents hold an offer: the third waits.
    Given::with(())
        .given(given)
        .when(QueueCommand::Enqueue { interaction_id: i3, at: t(3) })
        .then_expect_events(vec![QueueEvent::InteractionQueued { interaction_id: i3, at: t(3) }]);
}

#[test]
fn enqueueing_twice_records_nothing() {
    let (a, _b, mut given) = two_agents();
    let i = InteractionId::new();
    given.extend([QueueEvent::InteractionQueued { interaction_id: i, at: t(1) }, offer(i, a, 1, 1)]);
    Given::with(())
        .given(given)
        .when(QueueCommand::Enqueue { interaction_id: i, at: t(2) })
        .then_expect_events(vec![]);
}

#[test]
fn accepting_removes_the_interaction_and_frees_the_agent_for_the_next_one() {
    let (a, b, mut given) = two_agents();
    let (i1, i2, i3) = (InteractionId::new(), InteractionId::new(), InteractionId::new());
    given.extend([
        QueueEvent::InteractionQueued { interaction_id: i1, at: t(1) },
        offer(i1, a, 1, 1),
        QueueEvent::InteractionQueued { interaction_id: i2, at: t(2) },
        offer(i2, b, 1, 2),
        QueueEvent::InteractionQueued { interaction_id: i3, at: t(3) },
    ]);
    Given::with(())
        .given(given)
        .when(QueueCommand::AcceptOffer { interaction_id: i1, agent_id: a, at: t(4) })
        .then_expect_events(vec![
            QueueEvent::OfferAccepted { interaction_id: i1, agent_id: a, attempt: 1, at: t(4) },
            offer(i3, a, 1, 4),
        ]);
}

#[test]
fn accepting_or_rejecting_without_a_pending_offer_is_refused() {
    let (a, b, mut given) = two_agents();
    let i = InteractionId::new();
    given.extend([QueueEvent::InteractionQueued { interaction_id: i, at: t(1) }, offer(i, a, 1, 1)]);
    Given::with(())
        .given(given.clone())
        .when(QueueCommand::AcceptOffer { interaction_id: i, agent_id: b, at: t(2) })
        .then_expect_error(QueueError::NoSuchOffer);
    Given::with(())
        .given(given)
        .when(QueueCommand::RejectOffer { interaction_id: InteractionId::new(), agent_id: a, at: t(2) })
        .then_expect_error(QueueError::NoSuchOffer);
}

#[test]
fn a_rejected_offer_goes_to_the_next_agent_and_never_back_to_the_one_who_declined() {
    let (a, b, mut given) = two_agents();
    let i = InteractionId::new();
    given.extend([QueueEvent::InteractionQueued { interaction_id: i, at: t(1) }, offer(i, a, 1, 1)]);
    Given::with(())
        .given(given.clone())
        .when(QueueCommand::RejectOffer { interaction_id: i, agent_id: a, at: t(2) })
        .then_expect_events(vec![
            QueueEvent::OfferRejected { interaction_id: i, agent_id: a, attempt: 1, at: t(2) },
            offer(i, b, 2, 2),
        ]);
    given.extend([
        QueueEvent::OfferRejected { interaction_id: i, agent_id: a, attempt: 1, at: t(2) },
        offer(i, b, 2, 2),
    ]);
    // b declines too: nobody left, it waits.
    Given::with(())
        .given(given)
        .when(QueueCommand::RejectOffer { interaction_id: i, agent_id: b, at: t(3) })
        .then_expect_events(vec![QueueEvent::OfferRejected {
            interaction_id: i,
            agent_id: b,
            attempt: 2,
            at: t(3),
        }]);
}

#[test]
fn a_lapsed_offer_times_out_makes_the_agent_unavailable_and_goes_to_the_next() {
    let (a, b, mut given) = two_agents();
    let i = InteractionId::new();
    given.extend([QueueEvent::InteractionQueued { interaction_id: i, at: t(1) }, offer(i, a, 1, 1)]);
    Given::with(())
        .given(given.clone())
        .when(QueueCommand::ExpireOffer { interaction_id: i, attempt: 1, at: t(11) })
        .then_expect_events(vec![
            QueueEvent::OfferTimedOut { interaction_id: i, agent_id: a, attempt: 1, at: t(11) },
            QueueEvent::QueueAgentAvailabilityChanged { agent_id: a, available: false, at: t(11) },
            offer(i, b, 2, 11),
        ]);
}

#[test]
fn an_early_stale_or_repeated_timer_records_nothing() {
    let (a, _b, mut given) = two_agents();
    let i = InteractionId::new();
    given.extend([QueueEvent::InteractionQueued { interaction_id: i, at: t(1) }, offer(i, a, 1, 1)]);
    // Not yet due.
    Given::with(())
        .given(given.clone())
        .when(QueueCommand::ExpireOffer { interaction_id: i, attempt: 1, at: t(5) })
        .then_expect_events(vec![]);
    // For an older attempt.
    Given::with(())
        .given(given.clone())
        .when(QueueCommand::ExpireOffer { interaction_id: i, attempt: 0, at: t(20) })
        .then_expect_events(vec![]);
    // After the offer was accepted.
    given.push(QueueEvent::OfferAccepted { interaction_id: i, agent_id: a, attempt: 1, at: t(3) });
    Given::with(())
        .given(given)
        .when(QueueCommand::ExpireOffer { interaction_id: i, attempt: 1, at: t(20) })
        .then_expect_events(vec![]);
}

#[test]
fn an_agent_becoming_ready_gets_the_waiting_interaction() {
    let a = AgentId::new();
    let i = InteractionId::new();
    Given::with(())
        .given(vec![
            created(),
            QueueEvent::QueueMemberAdded { agent_id: a, at: t(0) },
            QueueEvent::InteractionQueued { interaction_id: i, at: t(1) },
        ])
        .when(QueueCommand::SetAgentAvailability { agent_id: a, available: true, at: t(2) })
        .then_expect_events(vec![
            QueueEvent::QueueAgentAvailabilityChanged { agent_id: a, available: true, at: t(2) },
            offer(i, a, 1, 2),
        ]);
}

#[test]
fn availability_of_non_members_and_repeated_availability_record_nothing() {
    let (a, _b, given) = two_agents();
    Given::with(())
        .given(given.clone())
        .when(QueueCommand::SetAgentAvailability { agent_id: AgentId::new(), available: true, at: t(1) })
        .then_expect_events(vec![]);
    Given::with(())
        .given(given)
        .when(QueueCommand::SetAgentAvailability { agent_id: a, available: true, at: t(1) })
        .then_expect_events(vec![]);
}

#[test]
fn adding_a_ready_member_offers_waiting_work_and_re_adding_records_nothing() {
    let a = AgentId::new();
    let i = InteractionId::new();
    let given = vec![created(), QueueEvent::InteractionQueued { interaction_id: i, at: t(1) }];
    let mut expected = member(a).to_vec();
    expected.push(offer(i, a, 1, 0));
    Given::with(())
        .given(given)
        .when(QueueCommand::AddMember { agent_id: a, available: true, at: t(0) })
        .then_expect_events(expected);
    let mut with_member = vec![created()];
    with_member.extend(member(a));
    Given::with(())
        .given(with_member)
        .when(QueueCommand::AddMember { agent_id: a, available: true, at: t(0) })
        .then_expect_events(vec![]);
}

#[test]
fn dequeueing_withdraws_the_offer_and_frees_the_agent() {
    let (a, _b, mut given) = two_agents();
    let (i1, i2) = (InteractionId::new(), InteractionId::new());
    given.extend([QueueEvent::InteractionQueued { interaction_id: i1, at: t(1) }, offer(i1, a, 1, 1)]);
    Given::with(())
        .given(given.clone())
        .when(QueueCommand::Dequeue { interaction_id: i1, at: t(2) })
        .then_expect_events(vec![QueueEvent::InteractionLeftQueue { interaction_id: i1, at: t(2) }]);
    Given::with(())
        .given(given)
        .when(QueueCommand::Dequeue { interaction_id: i2, at: t(2) })
        .then_expect_events(vec![]);
}
