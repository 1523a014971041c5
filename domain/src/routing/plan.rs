//! An account's routing plan ("Actions"): ordered steps, each optionally gated by an interval.
//!
//! Waiting steps (queue, agent) hold the interaction until accepted or until their timeout,
//! then the plan falls through to the next step. Instant steps (automatic reply, tags, jump)
//! run and move on at once; a close step ends the interaction. Gated steps whose interval does
//! not contain the current instant are skipped. When the steps run out the interaction waits,
//! without deadline, in the last queue it visited (or unrouted if it visited none).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::{Interval, MAX_WAIT_SECS, TimeZoneName};
use crate::{AgentId, ContactListId, DispositionCode, MessageText, QueueId, Tag};

/// The most steps a plan may have.
pub const MAX_PLAN_STEPS: usize = 50;

/// Why a plan was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// Not an IANA time zone.
    #[error("`{0}` is not a known time zone")]
    UnknownTimeZone(String),
    /// No steps, or more than `MAX_PLAN_STEPS`.
    #[error("a plan has 1 to {MAX_PLAN_STEPS} steps")]
    StepCount,
    /// A jump to a step that does not exist.
    #[error("step {step} jumps to step {target}, which does not exist")]
    JumpOutOfRange {
        /// The jumping step.
        step: usize,
        /// Where it jumps.
        target: usize,
    },
    /// A timeout outside 1..=2147483 seconds.
    #[error("step {step}: the timeout must be 1 to 2147483 seconds")]
    InvalidTimeout {
        /// The step.
        step: usize,
    },
    /// A malformed interval.
    #[error("step {step}: {reason}")]
    InvalidInterval {
        /// The step (the gate or the condition of this step).
        step: usize,
        /// What is wrong.
        reason: String,
    },
    /// A text condition with empty text, or tags step with no tags.
    #[error("step {step}: {reason}")]
    InvalidStep {
        /// The step.
        step: usize,
        /// What is wrong.
        reason: String,
    },
}

/// What a jump step tests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Condition {
    /// The contact is in this list.
    InContactList {
        /// The list.
        list_id: ContactListId,
    },
    /// The customer's latest text contains this (case-insensitive).
    TextContains {
        /// The text to look for.
        text: String,
    },
    /// Now is inside this interval.
    Within {
        /// The interval.
        interval: Interval,
    },
}

/// What a step does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StepAction {
    /// Offer to the queue's members; fall through after `timeout_secs` (never, if absent).
    Queue {
        /// The queue.
        queue_id: QueueId,
        /// Seconds to wait for an accept.
        #[serde(default)]
        timeout_secs: Option<u32>,
    },
    /// Offer to one agent; fall through after `timeout_secs`.
    Agent {
        /// The agent.
        agent_id: AgentId,
        /// Seconds to wait for an accept.
        timeout_secs: u32,
    },
    /// Send this text to the customer, then go on.
    AutoReply {
        /// The text.
        text: MessageText,
    },
    /// Tag the interaction, then go on.
    SetTags {
        /// The tags.
        tags: BTreeSet<Tag>,
    },
    /// Close the interaction with this disposition.
    Close {
        /// The disposition recorded.
        disposition: DispositionCode,
    },
    /// Jump to `step` if the condition holds, otherwise go on.
    GoTo {
        /// What to test.
        condition: Condition,
        /// Where to jump (0-based).
        step: usize,
    },
}

/// One step: an action, run only when the gate (if any) contains the current instant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanStep {
    /// The working-hours gate; `None` runs always.
    #[serde(default)]
    pub when: Option<Interval>,
    /// What the step does.
    pub action: StepAction,
}

/// An account's routing plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoutingPlan {
    /// The account's time zone, for gates and time conditions.
    pub time_zone: TimeZoneName,
    /// The steps, in order.
    pub steps: Vec<PlanStep>,
}

impl RoutingPlan {
    /// The plan of an account that only names a routing queue: wait there, without deadline.
    pub fn single_queue(queue_id: QueueId) -> Self {
        Self {
            time_zone: TimeZoneName::default(),
            steps: vec![PlanStep { when: None, action: StepAction::Queue { queue_id, timeout_secs: None } }],
        }
    }

    /// Checks every rule a stored plan must satisfy (step count, jump targets, timeouts,
    /// intervals, non-empty texts and tags).
    pub fn validate(&self) -> Result<(), PlanError> {
        if !(1..=MAX_PLAN_STEPS).contains(&self.steps.len()) {
            return Err(PlanError::StepCount);
        }
        for (step, s) in self.steps.iter().enumerate() {
            if let Some(gate) = &s.when {
                validate_interval(gate, step)?;
            }
            let timeout_ok = |secs: u32| (1..=MAX_WAIT_SECS).contains(&secs);
            match &s.action {
                StepAction::Queue { timeout_secs: Some(secs), .. }
                | StepAction::Agent { timeout_secs: secs, .. }
                    if !timeout_ok(*secs) =>
                {
                    return Err(PlanError::InvalidTimeout { step });
                }
                StepAction::SetTags { tags } if tags.is_empty() => {
                    return Err(PlanError::InvalidStep {
                        step,
                        reason: "a tags step needs at least one tag".into(),
                    });
                }
                StepAction::GoTo { step: target, .. } if *target >= self.steps.len() => {
                    return Err(PlanError::JumpOutOfRange { step, target: *target });
                }
                StepAction::GoTo { condition: Condition::TextContains { text }, .. }
                    if text.trim().is_empty() =>
                {
                    return Err(PlanError::InvalidStep {
                        step,
                        reason: "a text condition needs some text".into(),
                    });
                }
                StepAction::GoTo { condition: Condition::Within { interval }, .. } => {
                    validate_interval(interval, step)?;
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// An interval's error, naming the step it belongs to.
fn validate_interval(interval: &Interval, step: usize) -> Result<(), PlanError> {
    interval.validate().map_err(|e| match e {
        PlanError::InvalidInterval { reason, .. } => PlanError::InvalidInterval { step, reason },
        other => other,
    })
}

#[cfg(test)]
mod tests {
    use chrono::NaiveTime;

    use super::*;
    use crate::routing::{Day, WeeklySlot};

    fn step(action: StepAction) -> PlanStep {
        PlanStep { when: None, action }
    }

    fn plan(steps: Vec<PlanStep>) -> RoutingPlan {
        RoutingPlan { time_zone: TimeZoneName::default(), steps }
    }

    fn queue(timeout_secs: Option<u32>) -> StepAction {
        StepAction::Queue { queue_id: QueueId::new(), timeout_secs }
    }

    fn backwards_interval() -> Interval {
        Interval {
            weekly: vec![WeeklySlot {
                days: [Day::Mon].into(),
                from: NaiveTime::from_hms_opt(18, 0, 0).expect("valid"),
                to: NaiveTime::from_hms_opt(9, 0, 0).expect("valid"),
            }],
            ..Interval::default()
        }
    }

    #[test]
    fn a_plan_has_one_to_fifty_steps() {
        assert_eq!(plan(vec![]).validate(), Err(PlanError::StepCount));
        assert_eq!(plan(vec![step(queue(None)); MAX_PLAN_STEPS]).validate(), Ok(()));
        assert_eq!(plan(vec![step(queue(None)); MAX_PLAN_STEPS + 1]).validate(), Err(PlanError::StepCount));
        assert_eq!(RoutingPlan::single_queue(QueueId::new()).validate(), Ok(()));
    }

    #[test]
    fn a_jump_must_land_on_a_step() {
        let jump = |target| StepAction::GoTo {
            condition: Condition::TextContains { text: "sales".into() },
            step: target,
        };
        assert_eq!(plan(vec![step(jump(1)), step(queue(None))]).validate(), Ok(()));
        assert_eq!(plan(vec![step(jump(0)), step(queue(None))]).validate(), Ok(()));
        assert_eq!(
            plan(vec![step(queue(None)), step(jump(2))]).validate(),
            Err(PlanError::JumpOutOfRange { step: 1, target: 2 })
        );
    }

    #[test]
    fn timeouts_are_one_second_to_the_seed_maximum() {
        for bad in [0, MAX_WAIT_SECS + 1] {
            assert_eq!(
                plan(vec![step(queue(None)), step(queue(Some(bad)))]).validate(),
                Err(PlanError::InvalidTimeout { step: 1 })
            );
            let agent = StepAction::Agent { agent_id: AgentId::new(), timeout_secs: bad };
            assert_eq!(plan(vec![step(agent)]).validate(), Err(PlanError::InvalidTimeout { step: 0 }));
        }
        assert_eq!(MAX_WAIT_SECS + 1, 2_147_484);
        assert_eq!(plan(vec![step(queue(Some(1))), step(queue(Some(MAX_WAIT_SECS)))]).validate(), Ok(()));
    }

    #[test]
    fn bad_intervals_name_their_step() {
        let gated = PlanStep { when: Some(backwards_interval()), action: queue(None) };
        assert!(matches!(
            plan(vec![step(queue(None)), gated]).validate(),
            Err(PlanError::InvalidInterval { step: 1, .. })
        ));
        let empty_gate = PlanStep { when: Some(Interval::default()), action: queue(None) };
        assert!(matches!(plan(vec![empty_gate]).validate(), Err(PlanError::InvalidInterval { step: 0, .. })));
        let condition =
            StepAction::GoTo { condition: Condition::Within { interval: backwards_interval() }, step: 0 };
        assert!(matches!(
            plan(vec![step(queue(None)), step(queue(None)), step(condition)]).validate(),
            Err(PlanError::InvalidInterval { step: 2, .. })
        ));
    }

    #[test]
    fn an_empty_text_condition_or_tags_step_is_refused() {
        let blank = StepAction::GoTo { condition: Condition::TextContains { text: "  ".into() }, step: 0 };
        assert!(matches!(plan(vec![step(blank)]).validate(), Err(PlanError::InvalidStep { step: 0, .. })));
        let no_tags = StepAction::SetTags { tags: BTreeSet::new() };
        assert!(matches!(
            plan(vec![step(queue(None)), step(no_tags)]).validate(),
            Err(PlanError::InvalidStep { step: 1, .. })
        ));
        let tags = StepAction::SetTags { tags: [Tag::parse("vip").expect("valid")].into() };
        let in_list = StepAction::GoTo {
            condition: Condition::InContactList { list_id: ContactListId::new() },
            step: 0,
        };
        let reply = StepAction::AutoReply { text: MessageText::parse("We are closed").expect("valid") };
        let close = StepAction::Close { disposition: DispositionCode::parse("after hours").expect("valid") };
        assert_eq!(plan(vec![step(tags), step(in_list), step(reply), step(close)]).validate(), Ok(()));
    }

    #[test]
    fn a_plan_round_trips_through_json() {
        let json = serde_json::json!({
            "time_zone": "Europe/Rome",
            "steps": [
                {"when": {"weekly": [{"days": ["mon", "fri"], "from": "09:00:00", "to": "18:00:00"}]},
                 "action": {"type": "queue", "queue_id": QueueId::new(), "timeout_secs": 60}},
                {"action": {"type": "auto_reply", "text": "We are closed"}},
                {"action": {"type": "go_to", "condition": {"type": "text_contains", "text": "urgent"}, "step": 0}}
            ]
        });
        let parsed: RoutingPlan = serde_json::from_value(json).expect("a valid plan");
        assert_eq!(parsed.validate(), Ok(()));
        let back: RoutingPlan =
            serde_json::from_value(serde_json::to_value(&parsed).expect("serialises")).expect("round trips");
        assert_eq!(back, parsed);
        let bad_zone = serde_json::json!({"time_zone": "Nowhere", "steps": []});
        assert!(serde_json::from_value::<RoutingPlan>(bad_zone).is_err());
    }
}
