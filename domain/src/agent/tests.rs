//! Given/when/then tests for every Agent rule and rejection.

use chrono::{TimeZone, Utc};
use cqrs_es::test::TestFramework;

use super::*;

type Given = TestFramework<Agent>;

fn at() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 5, 10, 0, 0).single().expect("valid date")
}

fn registered() -> AgentEvent {
    AgentEvent::AgentRegistered { name: DisplayName::parse("Sam").expect("valid"), at: at() }
}

#[test]
fn registering_twice_is_refused() {
    Given::with(())
        .given_no_previous_events()
        .when(AgentCommand::Register { name: DisplayName::parse("Sam").expect("valid"), at: at() })
        .then_expect_events(vec![registered()]);
    Given::with(())
        .given(vec![registered()])
        .when(AgentCommand::Register { name: DisplayName::parse("Sam").expect("valid"), at: at() })
        .then_expect_error(AgentError::AlreadyRegistered);
}

#[test]
fn an_unknown_agent_cannot_log_in() {
    Given::with(())
        .given_no_previous_events()
        .when(AgentCommand::LogIn { at: at() })
        .then_expect_error(AgentError::NotFound);
}

#[test]
fn logging_in_lands_paused_and_is_idempotent() {
    Given::with(())
        .given(vec![registered()])
        .when(AgentCommand::LogIn { at: at() })
        .then_expect_events(vec![AgentEvent::AgentLoggedIn { at: at() }]);
    Given::with(())
        .given(vec![registered(), AgentEvent::AgentLoggedIn { at: at() }])
        .when(AgentCommand::LogIn { at: at() })
        .then_expect_events(vec![]);
}

#[test]
fn ready_and_pause_need_a_logged_in_agent() {
    Given::with(())
        .given(vec![registered()])
        .when(AgentCommand::MarkReady { at: at() })
        .then_expect_error(AgentError::NotLoggedIn);
    Given::with(())
        .given(vec![registered()])
        .when(AgentCommand::Pause { reason: None, at: at() })
        .then_expect_error(AgentError::NotLoggedIn);
}

#[test]
fn a_logged_in_agent_becomes_ready_then_pauses() {
    let online = vec![registered(), AgentEvent::AgentLoggedIn { at: at() }];
    Given::with(())
        .given(online.clone())
        .when(AgentCommand::MarkReady { at: at() })
        .then_expect_events(vec![AgentEvent::AgentBecameReady { at: at() }]);
    let mut ready = online.clone();
    ready.push(AgentEvent::AgentBecameReady { at: at() });
    Given::with(())
        .given(ready.clone())
        .when(AgentCommand::MarkReady { at: at() })
        .then_expect_events(vec![]);
    Given::with(())
        .given(ready)
        .when(AgentCommand::Pause { reason: PauseReason::parse("lunch").ok(), at: at() })
        .then_expect_events(vec![AgentEvent::AgentPaused {
            reason: PauseReason::parse("lunch").ok(),
            at: at(),
        }]);
    Given::with(())
        .given(online)
        .when(AgentCommand::Pause { reason: None, at: at() })
        .then_expect_events(vec![]);
}

#[test]
fn logging_out_records_only_when_online() {
    Given::with(())
        .given(vec![registered(), AgentEvent::AgentLoggedIn { at: at() }])
        .when(AgentCommand::LogOut { at: at() })
        .then_expect_events(vec![AgentEvent::AgentLoggedOut { at: at() }]);
    Given::with(())
        .given(vec![registered()])
        .when(AgentCommand::LogOut { at: at() })
        .then_expect_events(vec![]);
}

#[test]
fn joining_a_queue_is_idempotent() {
    let queue_id = QueueId::new();
    Given::with(())
        .given(vec![registered()])
        .when(AgentCommand::JoinQueue { queue_id, at: at() })
        .then_expect_events(vec![AgentEvent::AgentJoinedQueue { queue_id, at: at() }]);
    Given::with(())
        .given(vec![registered(), AgentEvent::AgentJoinedQueue { queue_id, at: at() }])
        .when(AgentCommand::JoinQueue { queue_id, at: at() })
        .then_expect_events(vec![]);
}

#[test]
fn a_missed_offer_pauses_an_agent_ready_since_before_it_lapsed_only() {
    let ready_at = at();
    let ready = vec![
        registered(),
        AgentEvent::AgentLoggedIn { at: at() },
        AgentEvent::AgentBecameReady { at: ready_at },
    ];
    let later = ready_at + chrono::Duration::seconds(30);
    Given::with(())
        .given(ready.clone())
        .when(AgentCommand::MissOffer { timed_out_at: later, at: later })
        .then_expect_events(vec![AgentEvent::AgentPaused {
            reason: PauseReason::parse(MISSED_OFFER).ok(),
            at: later,
        }]);
    // Ready again after the timeout: a replayed timeout changes nothing.
    Given::with(())
        .given(ready.clone())
        .when(AgentCommand::MissOffer { timed_out_at: ready_at - chrono::Duration::seconds(1), at: later })
        .then_expect_events(vec![]);
    // Already paused or offline: nothing to do.
    Given::with(())
        .given(vec![registered(), AgentEvent::AgentLoggedIn { at: at() }])
        .when(AgentCommand::MissOffer { timed_out_at: later, at: later })
        .then_expect_events(vec![]);
}

fn ready() -> Vec<AgentEvent> {
    vec![registered(), AgentEvent::AgentLoggedIn { at: at() }, AgentEvent::AgentBecameReady { at: at() }]
}

fn with(mut events: Vec<AgentEvent>, more: impl IntoIterator<Item = AgentEvent>) -> Vec<AgentEvent> {
    events.extend(more);
    events
}

fn later(secs: i64) -> chrono::DateTime<Utc> {
    at() + chrono::Duration::seconds(secs)
}

fn reason(text: &str) -> Option<PauseReason> {
    PauseReason::parse(text).ok()
}

#[test]
fn every_command_on_an_unknown_agent_is_refused() {
    let interaction_id = InteractionId::new();
    for command in [
        AgentCommand::LeaveQueue { queue_id: QueueId::new(), at: at() },
        AgentCommand::SetCapacity { capacity: 3, at: at() },
        AgentCommand::Connect { connection_id: "c1".into(), at: at() },
        AgentCommand::Disconnect { connection_id: "c1".into(), reconnect_by: later(30), at: at() },
        AgentCommand::ExpireConnectionGrace { connection_id: "c1".into(), at: later(30) },
        AgentCommand::StartWrapUp { interaction_id, reason: reason("wrap-up"), at: at() },
        AgentCommand::EndWrapUp { interaction_id, at: at() },
    ] {
        Given::with(()).given_no_previous_events().when(command).then_expect_error(AgentError::NotFound);
    }
}

#[test]
fn leaving_a_queue_records_it_only_for_a_member() {
    let queue_id = QueueId::new();
    Given::with(())
        .given(vec![registered(), AgentEvent::AgentJoinedQueue { queue_id, at: at() }])
        .when(AgentCommand::LeaveQueue { queue_id, at: at() })
        .then_expect_events(vec![AgentEvent::AgentLeftQueue { queue_id, at: at() }]);
    Given::with(())
        .given(vec![
            registered(),
            AgentEvent::AgentJoinedQueue { queue_id, at: at() },
            AgentEvent::AgentLeftQueue { queue_id, at: at() },
        ])
        .when(AgentCommand::LeaveQueue { queue_id, at: at() })
        .then_expect_events(vec![]);
    // Left, the agent can join again.
    Given::with(())
        .given(vec![
            registered(),
            AgentEvent::AgentJoinedQueue { queue_id, at: at() },
            AgentEvent::AgentLeftQueue { queue_id, at: at() },
        ])
        .when(AgentCommand::JoinQueue { queue_id, at: at() })
        .then_expect_events(vec![AgentEvent::AgentJoinedQueue { queue_id, at: at() }]);
}

#[test]
fn capacity_is_one_to_fifty_and_defaults_to_five() {
    assert_eq!(Agent::default().capacity, DEFAULT_CAPACITY);
    for capacity in [0, MAX_CAPACITY + 1] {
        Given::with(())
            .given(vec![registered()])
            .when(AgentCommand::SetCapacity { capacity, at: at() })
            .then_expect_error(AgentError::InvalidCapacity);
    }
    for capacity in [1, MAX_CAPACITY] {
        Given::with(())
            .given(vec![registered()])
            .when(AgentCommand::SetCapacity { capacity, at: at() })
            .then_expect_events(vec![AgentEvent::AgentCapacitySet { capacity, at: at() }]);
    }
    // The same value again (or the default) records nothing.
    Given::with(())
        .given(vec![registered()])
        .when(AgentCommand::SetCapacity { capacity: DEFAULT_CAPACITY, at: at() })
        .then_expect_events(vec![]);
    Given::with(())
        .given(vec![registered(), AgentEvent::AgentCapacitySet { capacity: 8, at: at() }])
        .when(AgentCommand::SetCapacity { capacity: 8, at: at() })
        .then_expect_events(vec![]);
}

#[test]
fn connecting_is_recorded_once_per_connection() {
    let connected = AgentEvent::AgentConnected { connection_id: "c1".into(), at: at() };
    Given::with(())
        .given(vec![registered()])
        .when(AgentCommand::Connect { connection_id: "c1".into(), at: at() })
        .then_expect_events(vec![connected.clone()]);
    Given::with(())
        .given(vec![registered(), connected.clone()])
        .when(AgentCommand::Connect { connection_id: "c1".into(), at: at() })
        .then_expect_events(vec![]);
    // A second tab is the latest connection.
    Given::with(())
        .given(vec![registered(), connected])
        .when(AgentCommand::Connect { connection_id: "c2".into(), at: later(1) })
        .then_expect_events(vec![AgentEvent::AgentConnected { connection_id: "c2".into(), at: later(1) }]);
}

#[test]
fn only_the_latest_connection_dropping_starts_a_grace_period() {
    let c1 = AgentEvent::AgentConnected { connection_id: "c1".into(), at: at() };
    let c2 = AgentEvent::AgentConnected { connection_id: "c2".into(), at: later(1) };
    let drop_c1 =
        || AgentCommand::Disconnect { connection_id: "c1".into(), reconnect_by: later(32), at: later(2) };
    Given::with(()).given(vec![registered(), c1.clone()]).when(drop_c1()).then_expect_events(vec![
        AgentEvent::AgentDisconnected { connection_id: "c1".into(), reconnect_by: later(32), at: later(2) },
    ]);
    // An older tab closing does nothing; so does a repeat or a connection never seen.
    Given::with(()).given(vec![registered(), c1.clone(), c2]).when(drop_c1()).then_expect_events(vec![]);
    let dropped =
        AgentEvent::AgentDisconnected { connection_id: "c1".into(), reconnect_by: later(32), at: later(2) };
    Given::with(()).given(vec![registered(), c1, dropped]).when(drop_c1()).then_expect_events(vec![]);
    Given::with(()).given(vec![registered()]).when(drop_c1()).then_expect_events(vec![]);
}

#[test]
fn the_grace_expiring_makes_the_agent_unreachable_only_if_still_disconnected() {
    let c1 = AgentEvent::AgentConnected { connection_id: "c1".into(), at: at() };
    let dropped =
        AgentEvent::AgentDisconnected { connection_id: "c1".into(), reconnect_by: later(30), at: later(1) };
    let expire = |secs| AgentCommand::ExpireConnectionGrace { connection_id: "c1".into(), at: later(secs) };
    let gone = with(ready(), [c1.clone(), dropped.clone()]);
    Given::with(())
        .given(gone.clone())
        .when(expire(30))
        .then_expect_events(vec![AgentEvent::AgentUnreachable { connection_id: "c1".into(), at: later(30) }]);
    // Too early, already unreachable, reconnected on the same or another connection: nothing.
    Given::with(()).given(gone.clone()).when(expire(29)).then_expect_events(vec![]);
    let unreachable = AgentEvent::AgentUnreachable { connection_id: "c1".into(), at: later(30) };
    Given::with(()).given(with(gone.clone(), [unreachable])).when(expire(31)).then_expect_events(vec![]);
    let back = AgentEvent::AgentConnected { connection_id: "c1".into(), at: later(10) };
    Given::with(()).given(with(gone.clone(), [back])).when(expire(30)).then_expect_events(vec![]);
    let other = AgentEvent::AgentConnected { connection_id: "c2".into(), at: later(10) };
    Given::with(()).given(with(gone, [other])).when(expire(30)).then_expect_events(vec![]);
    // Never connected: nothing to expire.
    Given::with(()).given(ready()).when(expire(30)).then_expect_events(vec![]);
}

#[test]
fn an_unreachable_agent_is_reachable_again_after_connecting_logging_in_or_marking_ready() {
    let unreachable = with(
        ready(),
        [
            AgentEvent::AgentConnected { connection_id: "c1".into(), at: at() },
            AgentEvent::AgentDisconnected {
                connection_id: "c1".into(),
                reconnect_by: later(30),
                at: later(1),
            },
            AgentEvent::AgentUnreachable { connection_id: "c1".into(), at: later(30) },
        ],
    );
    let mut agent = Agent::default();
    for event in unreachable.clone() {
        agent.fold(event);
    }
    assert!(!agent.reachable);
    assert!(Agent::default().reachable, "an agent who never opened a websocket is reachable");

    // Marking ready while ready (but unreachable) is recorded: it says "I am here".
    Given::with(())
        .given(unreachable.clone())
        .when(AgentCommand::MarkReady { at: later(40) })
        .then_expect_events(vec![AgentEvent::AgentBecameReady { at: later(40) }]);
    Given::with(())
        .given(unreachable.clone())
        .when(AgentCommand::LogIn { at: later(40) })
        .then_expect_events(vec![AgentEvent::AgentLoggedIn { at: later(40) }]);
    Given::with(())
        .given(unreachable.clone())
        .when(AgentCommand::Connect { connection_id: "c1".into(), at: later(40) })
        .then_expect_events(vec![AgentEvent::AgentConnected { connection_id: "c1".into(), at: later(40) }]);
    for back in [
        AgentEvent::AgentBecameReady { at: later(40) },
        AgentEvent::AgentLoggedIn { at: later(40) },
        AgentEvent::AgentConnected { connection_id: "c2".into(), at: later(40) },
    ] {
        let mut agent = Agent::default();
        for event in with(unreachable.clone(), [back]) {
            agent.fold(event);
        }
        assert!(agent.reachable);
    }
}

#[test]
fn a_wrap_up_pauses_a_ready_agent_with_its_reason_and_ends_ready_again() {
    let interaction_id = InteractionId::new();
    let start = AgentCommand::StartWrapUp { interaction_id, reason: reason("wrap-up"), at: later(1) };
    let started = vec![
        AgentEvent::AgentPaused { reason: reason("wrap-up"), at: later(1) },
        AgentEvent::AgentWrapUpStarted { interaction_id, was_ready: true, at: later(1) },
    ];
    Given::with(()).given(ready()).when(start.clone()).then_expect_events(started.clone());
    // A repeat changes nothing.
    let wrapping = with(ready(), started);
    Given::with(()).given(wrapping.clone()).when(start).then_expect_events(vec![]);
    // Ending it makes them ready again.
    Given::with(())
        .given(wrapping.clone())
        .when(AgentCommand::EndWrapUp { interaction_id, at: later(9) })
        .then_expect_events(vec![
            AgentEvent::AgentWrapUpEnded { interaction_id, at: later(9) },
            AgentEvent::AgentBecameReady { at: later(9) },
        ]);
    // Ending one that never started (or ended already) changes nothing.
    let ended = with(
        wrapping,
        [
            AgentEvent::AgentWrapUpEnded { interaction_id, at: later(9) },
            AgentEvent::AgentBecameReady { at: later(9) },
        ],
    );
    Given::with(())
        .given(ended)
        .when(AgentCommand::EndWrapUp { interaction_id, at: later(10) })
        .then_expect_events(vec![]);
}

#[test]
fn ready_is_refused_while_a_wrap_up_is_pending() {
    let interaction_id = InteractionId::new();
    let wrapping = with(
        ready(),
        [
            AgentEvent::AgentPaused { reason: reason("wrap-up"), at: later(1) },
            AgentEvent::AgentWrapUpStarted { interaction_id, was_ready: true, at: later(1) },
        ],
    );
    Given::with(())
        .given(wrapping.clone())
        .when(AgentCommand::MarkReady { at: later(2) })
        .then_expect_error(AgentError::WrapUpPending);
    Given::with(())
        .given(with(wrapping, [AgentEvent::AgentWrapUpEnded { interaction_id, at: later(3) }]))
        .when(AgentCommand::MarkReady { at: later(4) })
        .then_expect_events(vec![AgentEvent::AgentBecameReady { at: later(4) }]);
}

#[test]
fn a_wrap_up_leaves_presence_alone_without_a_reason_or_when_not_ready() {
    let interaction_id = InteractionId::new();
    // No pause reason configured: presence unchanged, nothing to restore.
    Given::with(())
        .given(ready())
        .when(AgentCommand::StartWrapUp { interaction_id, reason: None, at: later(1) })
        .then_expect_events(vec![AgentEvent::AgentWrapUpStarted {
            interaction_id,
            was_ready: true,
            at: later(1),
        }]);
    Given::with(())
        .given(with(
            ready(),
            [AgentEvent::AgentWrapUpStarted { interaction_id, was_ready: true, at: later(1) }],
        ))
        .when(AgentCommand::EndWrapUp { interaction_id, at: later(2) })
        .then_expect_events(vec![AgentEvent::AgentWrapUpEnded { interaction_id, at: later(2) }]);
    // Paused by choice: stays paused with their own reason afterwards.
    let lunch = vec![
        registered(),
        AgentEvent::AgentLoggedIn { at: at() },
        AgentEvent::AgentBecameReady { at: at() },
        AgentEvent::AgentPaused { reason: reason("lunch"), at: at() },
    ];
    Given::with(())
        .given(lunch.clone())
        .when(AgentCommand::StartWrapUp { interaction_id, reason: reason("wrap-up"), at: later(1) })
        .then_expect_events(vec![AgentEvent::AgentWrapUpStarted {
            interaction_id,
            was_ready: false,
            at: later(1),
        }]);
    Given::with(())
        .given(with(
            lunch,
            [AgentEvent::AgentWrapUpStarted { interaction_id, was_ready: false, at: later(1) }],
        ))
        .when(AgentCommand::EndWrapUp { interaction_id, at: later(2) })
        .then_expect_events(vec![AgentEvent::AgentWrapUpEnded { interaction_id, at: later(2) }]);
}

#[test]
fn a_presence_change_during_the_wrap_up_is_not_overridden() {
    let interaction_id = InteractionId::new();
    let wrapping = with(
        ready(),
        [
            AgentEvent::AgentPaused { reason: reason("wrap-up"), at: later(1) },
            AgentEvent::AgentWrapUpStarted { interaction_id, was_ready: true, at: later(1) },
        ],
    );
    let end = AgentCommand::EndWrapUp { interaction_id, at: later(9) };
    let only_ended = vec![AgentEvent::AgentWrapUpEnded { interaction_id, at: later(9) }];
    // Logged out meanwhile.
    Given::with(())
        .given(with(wrapping.clone(), [AgentEvent::AgentLoggedOut { at: later(2) }]))
        .when(end.clone())
        .then_expect_events(only_ended.clone());
    // Logged out and in again: paused without the wrap-up's reason.
    Given::with(())
        .given(with(
            wrapping,
            [AgentEvent::AgentLoggedOut { at: later(2) }, AgentEvent::AgentLoggedIn { at: later(3) }],
        ))
        .when(end)
        .then_expect_events(only_ended);
}

#[test]
fn with_two_wrap_ups_the_last_to_end_restores_readiness() {
    let (first, second) = (InteractionId::new(), InteractionId::new());
    let both = with(
        ready(),
        [
            AgentEvent::AgentPaused { reason: reason("wrap-up"), at: later(1) },
            AgentEvent::AgentWrapUpStarted { interaction_id: first, was_ready: true, at: later(1) },
        ],
    );
    // The second begins while the first's pause holds: it counts as ready.
    Given::with(())
        .given(both.clone())
        .when(AgentCommand::StartWrapUp { interaction_id: second, reason: reason("wrap-up"), at: later(2) })
        .then_expect_events(vec![AgentEvent::AgentWrapUpStarted {
            interaction_id: second,
            was_ready: true,
            at: later(2),
        }]);
    let both = with(
        both,
        [AgentEvent::AgentWrapUpStarted { interaction_id: second, was_ready: true, at: later(2) }],
    );
    Given::with(())
        .given(both.clone())
        .when(AgentCommand::EndWrapUp { interaction_id: first, at: later(3) })
        .then_expect_events(vec![AgentEvent::AgentWrapUpEnded { interaction_id: first, at: later(3) }]);
    Given::with(())
        .given(with(both, [AgentEvent::AgentWrapUpEnded { interaction_id: first, at: later(3) }]))
        .when(AgentCommand::EndWrapUp { interaction_id: second, at: later(4) })
        .then_expect_events(vec![
            AgentEvent::AgentWrapUpEnded { interaction_id: second, at: later(4) },
            AgentEvent::AgentBecameReady { at: later(4) },
        ]);
}

#[test]
fn the_agent_state_round_trips_and_old_snapshots_get_defaults() {
    let mut agent = Agent::default();
    for event in with(ready(), [AgentEvent::AgentCapacitySet { capacity: 7, at: at() }]) {
        agent.fold(event);
    }
    let json = serde_json::to_value(&agent).expect("serialises");
    assert_eq!(serde_json::from_value::<Agent>(json).ok(), Some(agent));
    let old = serde_json::json!({
        "registered": true, "name": "Sam", "presence": "ready", "queues": [], "ready_since": null
    });
    let agent = serde_json::from_value::<Agent>(old).expect("deserialises");
    assert_eq!((agent.capacity, agent.reachable, agent.wrap_ups.len()), (DEFAULT_CAPACITY, true, 0));
}
