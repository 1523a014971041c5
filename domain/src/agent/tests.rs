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
        .when(AgentCommand::Pause { reason: Some("lunch".into()), at: at() })
        .then_expect_events(vec![AgentEvent::AgentPaused { reason: Some("lunch".into()), at: at() }]);
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
        .then_expect_events(vec![AgentEvent::AgentPaused { reason: Some(MISSED_OFFER.into()), at: later }]);
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
