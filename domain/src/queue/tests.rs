//! Given/when/then tests for the Queue's settings and their refusals.

use chrono::{DateTime, TimeZone, Utc};
use cqrs_es::test::TestFramework;

use super::*;

type Given = TestFramework<Queue>;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 5, 10, 0, 0).single().expect("valid date")
}

fn name() -> DisplayName {
    DisplayName::parse("Sales").expect("valid")
}

fn created() -> QueueEvent {
    QueueEvent::QueueCreated {
        name: name(),
        offer_timeout_secs: 10,
        strategy: Strategy::RoundRobin,
        weight: DEFAULT_WEIGHT,
        at: t0(),
    }
}

#[test]
fn a_queue_is_created_once_with_its_strategy_and_weight() {
    Given::with(())
        .given_no_previous_events()
        .when(QueueCommand::Create {
            name: name(),
            offer_timeout_secs: 10,
            strategy: Strategy::RoundRobin,
            weight: DEFAULT_WEIGHT,
            at: t0(),
        })
        .then_expect_events(vec![created()]);
    Given::with(())
        .given(vec![created()])
        .when(QueueCommand::Create {
            name: name(),
            offer_timeout_secs: 10,
            strategy: Strategy::RingAll,
            weight: 1,
            at: t0(),
        })
        .then_expect_error(QueueError::AlreadyExists);
}

#[test]
fn timeouts_and_weights_are_bounded() {
    for (timeout, weight, error) in [
        (0, 5, QueueError::InvalidOfferTimeout),
        (3601, 5, QueueError::InvalidOfferTimeout),
        (10, 11, QueueError::InvalidWeight),
    ] {
        Given::with(())
            .given_no_previous_events()
            .when(QueueCommand::Create {
                name: name(),
                offer_timeout_secs: timeout,
                strategy: Strategy::LeastRecent,
                weight,
                at: t0(),
            })
            .then_expect_error(error.clone());
        Given::with(())
            .given(vec![created()])
            .when(QueueCommand::Configure {
                offer_timeout_secs: timeout,
                strategy: Strategy::LeastRecent,
                weight,
                at: t0(),
            })
            .then_expect_error(error);
    }
}

#[test]
fn configuring_records_only_a_change() {
    Given::with(())
        .given(vec![created()])
        .when(QueueCommand::Configure {
            offer_timeout_secs: 30,
            strategy: Strategy::FewestOpen,
            weight: 9,
            at: t0(),
        })
        .then_expect_events(vec![QueueEvent::QueueConfigured {
            offer_timeout_secs: 30,
            strategy: Strategy::FewestOpen,
            weight: 9,
            at: t0(),
        }]);
    Given::with(())
        .given(vec![created()])
        .when(QueueCommand::Configure {
            offer_timeout_secs: 10,
            strategy: Strategy::RoundRobin,
            weight: DEFAULT_WEIGHT,
            at: t0(),
        })
        .then_expect_events(vec![]);
    Given::with(())
        .given_no_previous_events()
        .when(QueueCommand::Configure {
            offer_timeout_secs: 10,
            strategy: Strategy::RoundRobin,
            weight: 1,
            at: t0(),
        })
        .then_expect_error(QueueError::NotFound);
}

#[test]
fn queues_stored_before_strategies_existed_read_as_round_robin_weight_five() {
    let old = r#"{"QueueCreated":{"name":"Sales","offer_timeout_secs":10,"at":"2026-01-05T10:00:00Z"}}"#;
    let event: QueueEvent = serde_json::from_str(old).expect("old shape still reads");
    assert_eq!(event, created());
}
