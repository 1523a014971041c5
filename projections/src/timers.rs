//! Durable timers derived from the log: offers, routing targets, inactivity and dropped
//! websockets schedule their deadline; the events that make a deadline moot cancel it.
//!
//! Owns `timers` and `interaction_timing` (the inactivity minutes each routed interaction
//! copied from its channel rules). Because the tables are derived from events, a restart
//! loses no timer and a rebuild recreates exactly the live ones. Pollers (in the server)
//! claim due rows with `FOR UPDATE SKIP LOCKED` and send the matching command; every timer
//! command is idempotent, so a timer that fires twice (crash after firing, two nodes) has
//! one effect, and a timer left scheduled by mistake is only a wasted, refused command.
//!
//! Ids (stable, so scheduling is idempotent): `offer:{interaction}:{agent}:{attempt}`,
//! `target:{interaction}:{seq}`, `inactivity:{interaction}:{since_ms}`,
//! `grace:{agent}:{connection}`.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use sqlx::AnyConnection;
use switchboard_domain::AgentId;
use switchboard_domain::agent::AgentEvent;
use switchboard_domain::interaction::InteractionEvent;

use crate::runtime::{Projection, ms};
use crate::{DomainEventPayload, StoredEvent};

/// The timers projection.
pub struct Timers;

/// The kind of timer and what it carries, stored as JSON in `timers.payload`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TimerPayload {
    /// An offer lapses unless answered (`InteractionCommand::ExpireOffer`).
    OfferTimeout {
        /// The agent offered.
        agent_id: AgentId,
        /// Which offer.
        attempt: u32,
    },
    /// A routing target (plan step, sticky wait, transfer) lapses (`ExpireTarget`).
    TargetTimeout {
        /// Which target.
        seq: u32,
    },
    /// The agent's last message went unanswered (`CloseForInactivity`).
    Inactivity {
        /// The time of that message.
        since: DateTime<Utc>,
    },
    /// A dropped websocket's grace period ends (`AgentCommand::ExpireConnectionGrace`).
    ConnectionGrace {
        /// The connection.
        connection_id: String,
    },
}

impl TimerPayload {
    /// The value of `timers.kind` (the payload's own tag), used to cancel by kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::OfferTimeout { .. } => OFFER,
            Self::TargetTimeout { .. } => TARGET,
            Self::Inactivity { .. } => INACTIVITY,
            Self::ConnectionGrace { .. } => GRACE,
        }
    }
}

const OFFER: &str = "offer_timeout";
const TARGET: &str = "target_timeout";
const INACTIVITY: &str = "inactivity";
const GRACE: &str = "connection_grace";

/// The id of an offer's timer.
pub fn offer_timer_id(interaction: &str, agent: AgentId, attempt: u32) -> String {
    format!("offer:{interaction}:{agent}:{attempt}")
}

/// The id of a routing target's timer.
pub fn target_timer_id(interaction: &str, seq: u32) -> String {
    format!("target:{interaction}:{seq}")
}

/// The id of an inactivity timer: one per agent message, named by its time.
pub fn inactivity_timer_id(interaction: &str, since: DateTime<Utc>) -> String {
    format!("inactivity:{interaction}:{}", ms(since))
}

/// The id of a dropped connection's grace timer.
pub fn grace_timer_id(agent: &str, connection: &str) -> String {
    format!("grace:{agent}:{connection}")
}

#[async_trait::async_trait]
impl Projection for Timers {
    fn name(&self) -> &'static str {
        "timers"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["timers", "interaction_timing"]
    }

    async fn apply(
        &self,
        conn: &mut AnyConnection,
        event: &StoredEvent,
        payload: &DomainEventPayload,
    ) -> Result<(), sqlx::Error> {
        let id = event.aggregate_id.as_str();
        match payload {
            DomainEventPayload::Interaction(e) => apply_interaction(conn, id, e).await,
            DomainEventPayload::Agent(e) => apply_agent(conn, id, e).await,
            _ => Ok(()),
        }
    }
}

async fn apply_interaction(
    conn: &mut AnyConnection,
    id: &str,
    event: &InteractionEvent,
) -> Result<(), sqlx::Error> {
    use InteractionEvent as E;
    match event {
        E::RoutingStarted { rules, .. } => {
            sqlx::query(
                "INSERT INTO interaction_timing (interaction_id, inactivity_minutes) VALUES ($1, $2)
                 ON CONFLICT (interaction_id) DO UPDATE SET inactivity_minutes = excluded.inactivity_minutes",
            )
            .bind(id)
            .bind(rules.inactivity_minutes.map(i64::from))
            .execute(&mut *conn)
            .await?;
        }
        E::OfferMade { agent_id, attempt, expires_at, .. } => {
            let timer = TimerPayload::OfferTimeout { agent_id: *agent_id, attempt: *attempt };
            schedule(conn, &offer_timer_id(id, *agent_id, *attempt), "Interaction", id, *expires_at, &timer)
                .await?;
        }
        E::OfferAccepted { agent_id, attempt, .. } => {
            cancel(conn, &offer_timer_id(id, *agent_id, *attempt)).await?;
            // The accepted offer clears the target: its deadline is moot.
            cancel_kind(conn, id, TARGET).await?;
        }
        E::OfferRejected { agent_id, attempt, .. }
        | E::OfferTimedOut { agent_id, attempt, .. }
        | E::OfferWithdrawn { agent_id, attempt, .. } => {
            cancel(conn, &offer_timer_id(id, *agent_id, *attempt)).await?;
        }
        E::RoutingTargetSet { seq, until, .. } => {
            // A new target replaces the previous one, whose deadline no longer matters.
            cancel_kind(conn, id, TARGET).await?;
            if let Some(until) = until {
                let timer = TimerPayload::TargetTimeout { seq: *seq };
                schedule(conn, &target_timer_id(id, *seq), "Interaction", id, *until, &timer).await?;
            }
        }
        E::TransferRequested { seq, until, .. } => {
            cancel_kind(conn, id, TARGET).await?;
            let timer = TimerPayload::TargetTimeout { seq: *seq };
            schedule(conn, &target_timer_id(id, *seq), "Interaction", id, *until, &timer).await?;
        }
        E::RoutingTargetExpired { seq, .. } | E::TransferReturned { seq, .. } => {
            cancel(conn, &target_timer_id(id, *seq)).await?;
        }
        E::AgentMessageSent { at, .. } | E::AgentMediaSent { at, .. } | E::AgentTemplateSent { at, .. } => {
            // Only the latest agent message can close the interaction: older timers go.
            cancel_kind(conn, id, INACTIVITY).await?;
            let minutes: Option<(Option<i64>,)> =
                sqlx::query_as("SELECT inactivity_minutes FROM interaction_timing WHERE interaction_id = $1")
                    .bind(id)
                    .fetch_optional(&mut *conn)
                    .await?;
            if let Some((Some(minutes),)) = minutes
                && let Some(fire) = Duration::try_minutes(minutes).and_then(|d| at.checked_add_signed(d))
            {
                let timer = TimerPayload::Inactivity { since: *at };
                schedule(conn, &inactivity_timer_id(id, *at), "Interaction", id, fire, &timer).await?;
            }
        }
        E::CustomerMessageReceived { .. } => cancel_kind(conn, id, INACTIVITY).await?,
        E::InteractionClosed { .. } | E::InteractionClosedBySystem { .. } => {
            sqlx::query(
                "UPDATE timers SET status = 'done'
                  WHERE aggregate_type = 'Interaction' AND aggregate_id = $1 AND status = 'scheduled'",
            )
            .bind(id)
            .execute(&mut *conn)
            .await?;
            sqlx::query("DELETE FROM interaction_timing WHERE interaction_id = $1")
                .bind(id)
                .execute(&mut *conn)
                .await?;
        }
        _ => {}
    }
    Ok(())
}

async fn apply_agent(conn: &mut AnyConnection, id: &str, event: &AgentEvent) -> Result<(), sqlx::Error> {
    use AgentEvent as E;
    match event {
        E::AgentDisconnected { connection_id, reconnect_by, .. } => {
            let timer = TimerPayload::ConnectionGrace { connection_id: connection_id.clone() };
            schedule(conn, &grace_timer_id(id, connection_id), "Agent", id, *reconnect_by, &timer).await?;
        }
        // Back within the grace: no grace period of this agent matters any more.
        E::AgentConnected { .. } => cancel_kind(conn, id, GRACE).await?,
        E::AgentUnreachable { connection_id, .. } => cancel(conn, &grace_timer_id(id, connection_id)).await?,
        _ => {}
    }
    Ok(())
}

/// Schedules a timer once: a second schedule of the same id changes nothing.
async fn schedule(
    conn: &mut AnyConnection,
    timer_id: &str,
    aggregate_type: &str,
    aggregate_id: &str,
    fire_at: DateTime<Utc>,
    payload: &TimerPayload,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO timers (timer_id, aggregate_type, aggregate_id, kind, fire_at, payload)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (timer_id) DO NOTHING",
    )
    .bind(timer_id)
    .bind(aggregate_type)
    .bind(aggregate_id)
    .bind(payload.kind())
    .bind(ceil_ms(fire_at))
    .bind(serde_json::to_string(payload).unwrap_or_default())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Cancels one timer if it has not fired.
async fn cancel(conn: &mut AnyConnection, timer_id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE timers SET status = 'done' WHERE timer_id = $1 AND status = 'scheduled'")
        .bind(timer_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Cancels every scheduled timer of one kind on one aggregate.
async fn cancel_kind(conn: &mut AnyConnection, aggregate_id: &str, kind: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE timers SET status = 'done' WHERE aggregate_id = $1 AND kind = $2 AND status = 'scheduled'",
    )
    .bind(aggregate_id)
    .bind(kind)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Epoch milliseconds rounded up: a timer must never be due before its deadline, or the
/// command it sends would arrive a fraction of a millisecond early and do nothing.
pub fn ceil_ms(at: chrono::DateTime<chrono::Utc>) -> i64 {
    let ms = at.timestamp_millis();
    if at.timestamp_subsec_nanos().is_multiple_of(1_000_000) { ms } else { ms + 1 }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::Arc;

    use chrono::{TimeZone, Utc};
    use switchboard_domain::agent::AgentEvent;
    use switchboard_domain::interaction::{Closer, InteractionEvent as E, SystemClose};
    use switchboard_domain::routing::{ChannelRules, RoutingPlan, Target, TargetReason, WithdrawReason};
    use switchboard_domain::{AgentId, DispositionCode, InteractionId, QueueId};

    use super::{Timers, ceil_ms};
    use crate::testing::{Db, agent_text, customer_text, t};

    fn offer(agent_id: AgentId, attempt: u32, expires_at: chrono::DateTime<Utc>) -> E {
        crate::testing::offer(agent_id, attempt, Target::Queue(QueueId::new()), expires_at)
    }

    #[test]
    fn timer_deadlines_round_up_to_the_millisecond() {
        let exact = Utc.timestamp_millis_opt(1_767_607_200_123).single().expect("valid");
        assert_eq!(ceil_ms(exact), 1_767_607_200_123);
        let fraction = exact + chrono::Duration::microseconds(1);
        assert_eq!(ceil_ms(fraction), 1_767_607_200_124);
    }

    async fn db() -> Db {
        Db::new(vec![Arc::new(Timers)]).await
    }

    /// `timer_id|fire_at|status|payload`, by id.
    async fn timers(db: &mut Db) -> Vec<String> {
        db.rows(
            "SELECT timer_id || '|' || CAST(fire_at AS TEXT) || '|' || status || '|' || payload
               FROM timers ORDER BY timer_id",
        )
        .await
    }

    fn started(inactivity_minutes: Option<u32>) -> E {
        E::RoutingStarted {
            plan: RoutingPlan::single_queue(QueueId::new()),
            rules: ChannelRules { inactivity_minutes, ..ChannelRules::default() },
            contact_lists: BTreeSet::new(),
            at: t(0),
        }
    }

    #[tokio::test]
    async fn an_offer_schedules_its_timeout_and_every_answer_cancels_it() {
        let mut db = db().await;
        let i = InteractionId::new().to_string();
        let (a, b, c) = (AgentId::new(), AgentId::new(), AgentId::new());
        let expires = t(30) + chrono::Duration::microseconds(500);
        db.interaction(&i, offer(a, 1, expires)).await;
        db.interaction(&i, offer(b, 2, t(30))).await;
        db.interaction(&i, offer(c, 3, t(30))).await;
        let all = timers(&mut db).await;
        assert_eq!(all.len(), 3);
        let a_row = all.iter().find(|r| r.starts_with(&format!("offer:{i}:{a}:1|"))).expect("a's timer");
        assert!(a_row.contains(&format!("|{}|scheduled|", ceil_ms(expires))), "{a_row}");
        assert!(a_row.contains(&format!("\"agent_id\":\"{a}\"")), "{a_row}");
        assert!(a_row.contains("\"kind\":\"offer_timeout\""), "{a_row}");

        db.interaction(&i, E::OfferRejected { agent_id: a, attempt: 1, at: t(1) }).await;
        db.interaction(&i, E::OfferTimedOut { agent_id: b, attempt: 2, at: t(30) }).await;
        db.interaction(
            &i,
            E::OfferWithdrawn { agent_id: c, attempt: 3, reason: WithdrawReason::TargetChanged, at: t(2) },
        )
        .await;
        let scheduled = db.rows("SELECT timer_id FROM timers WHERE status = 'scheduled'").await;
        assert!(scheduled.is_empty(), "{scheduled:?}");
    }

    #[tokio::test]
    async fn a_target_with_a_deadline_has_a_timer_until_it_ends() {
        let mut db = db().await;
        let i = InteractionId::new().to_string();
        let set = |seq, until| E::RoutingTargetSet {
            target: Target::Queue(QueueId::new()),
            reason: TargetReason::Plan { step: 0 },
            seq,
            until,
            at: t(0),
        };
        db.interaction(&i, set(1, Some(t(60)))).await;
        db.interaction(&i, set(2, Some(t(90)))).await;
        assert_eq!(
            db.rows("SELECT timer_id || '|' || status FROM timers ORDER BY timer_id").await,
            vec![format!("target:{i}:1|done"), format!("target:{i}:2|scheduled")],
            "a new target ends the previous one's timer"
        );
        assert!(timers(&mut db).await[1].contains("\"kind\":\"target_timeout\",\"seq\":2"));
        db.interaction(&i, E::RoutingTargetExpired { seq: 2, at: t(90) }).await;
        db.interaction(&i, set(3, None)).await;
        assert!(db.rows("SELECT timer_id FROM timers WHERE status = 'scheduled'").await.is_empty());

        // A transfer's target, then accepted: the accept ends it.
        let from = AgentId::new();
        db.interaction(
            &i,
            E::TransferRequested {
                from,
                to: Target::Agent(AgentId::new()),
                seq: 4,
                until: t(200),
                at: t(100),
            },
        )
        .await;
        assert_eq!(
            db.rows("SELECT timer_id FROM timers WHERE status = 'scheduled'").await,
            vec![format!("target:{i}:4")]
        );
        db.interaction(&i, E::OfferAccepted { agent_id: AgentId::new(), attempt: 1, at: t(110) }).await;
        assert!(db.rows("SELECT timer_id FROM timers WHERE status = 'scheduled'").await.is_empty());

        // A transfer that returns ends its own timer.
        db.interaction(
            &i,
            E::TransferRequested {
                from,
                to: Target::Agent(AgentId::new()),
                seq: 5,
                until: t(300),
                at: t(200),
            },
        )
        .await;
        db.interaction(&i, E::TransferReturned { seq: 5, agent_id: from, at: t(300) }).await;
        assert!(db.rows("SELECT timer_id FROM timers WHERE status = 'scheduled'").await.is_empty());
    }

    #[tokio::test]
    async fn the_agents_last_message_schedules_inactivity_and_the_customer_cancels_it() {
        let mut db = db().await;
        let i = InteractionId::new().to_string();
        let agent = AgentId::new();
        db.interaction(&i, started(Some(5))).await;
        let first = t(10) + chrono::Duration::microseconds(1);
        db.interaction(&i, agent_text(agent, first)).await;
        db.interaction(&i, agent_text(agent, t(20))).await;
        let rows = timers(&mut db).await;
        assert_eq!(rows.len(), 2);
        let old = format!("inactivity:{i}:{}|{}|done|", first.timestamp_millis(), ceil_ms(first) + 300_000);
        assert!(rows.iter().any(|r| r.starts_with(&old)), "{rows:?}");
        let new = format!("inactivity:{i}:{}|{}|scheduled|", t(20).timestamp_millis(), ceil_ms(t(320)));
        let new_row = rows.iter().find(|r| r.starts_with(&new)).expect("the latest message's timer");
        let payload: super::TimerPayload =
            serde_json::from_str(new_row.rsplit('|').next().expect("payload")).expect("decodes");
        assert_eq!(payload, super::TimerPayload::Inactivity { since: t(20) });

        db.interaction(&i, customer_text("hi", t(30))).await;
        assert!(db.rows("SELECT timer_id FROM timers WHERE status = 'scheduled'").await.is_empty());
    }

    #[tokio::test]
    async fn no_inactivity_timer_without_inactivity_rules() {
        let mut db = db().await;
        let (routed, unrouted) = (InteractionId::new().to_string(), InteractionId::new().to_string());
        db.interaction(&routed, started(None)).await;
        db.interaction(&routed, agent_text(AgentId::new(), t(10))).await;
        db.interaction(&unrouted, agent_text(AgentId::new(), t(10))).await;
        assert!(timers(&mut db).await.is_empty());
    }

    #[tokio::test]
    async fn any_close_cancels_all_the_interactions_timers() {
        for close in [
            E::InteractionClosed { by: Closer::Supervisor, at: t(50) },
            E::InteractionClosedBySystem {
                reason: SystemClose::PlanStep { step: 2 },
                disposition: DispositionCode::parse("spam").expect("code"),
                at: t(50),
            },
        ] {
            let mut db = db().await;
            let (i, other) = (InteractionId::new().to_string(), InteractionId::new().to_string());
            let agent = AgentId::new();
            for id in [&i, &other] {
                db.interaction(id, started(Some(1))).await;
                db.interaction(id, offer(agent, 1, t(40))).await;
                db.interaction(id, agent_text(agent, t(10))).await;
            }
            db.interaction(&i, close).await;
            assert_eq!(
                db.rows(&format!(
                    "SELECT timer_id FROM timers WHERE status = 'scheduled' AND aggregate_id = '{i}'"
                ))
                .await,
                Vec::<String>::new()
            );
            assert_eq!(
                db.rows("SELECT aggregate_id FROM timers WHERE status = 'scheduled'").await,
                vec![other.clone(), other.clone()],
                "other interactions keep theirs"
            );
        }
    }

    #[tokio::test]
    async fn a_dropped_connection_has_a_grace_timer_until_the_agent_reconnects() {
        let mut db = db().await;
        let agent = AgentId::new().to_string();
        let by = t(30) + chrono::Duration::microseconds(10);
        db.agent(
            &agent,
            AgentEvent::AgentDisconnected { connection_id: "c1".into(), reconnect_by: by, at: t(0) },
        )
        .await;
        let rows = timers(&mut db).await;
        assert_eq!(
            rows,
            vec![format!(
                "grace:{agent}:c1|{}|scheduled|{{\"kind\":\"connection_grace\",\"connection_id\":\"c1\"}}",
                ceil_ms(by)
            )]
        );
        let kind = db.rows("SELECT aggregate_type || '/' || kind FROM timers").await;
        assert_eq!(kind, vec!["Agent/connection_grace".to_owned()]);
        db.agent(&agent, AgentEvent::AgentConnected { connection_id: "c2".into(), at: t(5) }).await;
        assert!(db.rows("SELECT timer_id FROM timers WHERE status = 'scheduled'").await.is_empty());

        // Grace that ran out: the unreachable event closes it.
        db.agent(
            &agent,
            AgentEvent::AgentDisconnected { connection_id: "c2".into(), reconnect_by: t(60), at: t(30) },
        )
        .await;
        db.agent(&agent, AgentEvent::AgentUnreachable { connection_id: "c2".into(), at: t(60) }).await;
        assert!(db.rows("SELECT timer_id FROM timers WHERE status = 'scheduled'").await.is_empty());
    }

    #[tokio::test]
    async fn a_rebuild_recreates_the_same_timers() {
        let mut db = db().await;
        let i = InteractionId::new().to_string();
        let agent = AgentId::new();
        db.interaction(&i, started(Some(3))).await;
        db.interaction(&i, offer(agent, 1, t(40))).await;
        db.interaction(&i, agent_text(agent, t(10))).await;
        db.interaction(
            &i,
            E::RoutingTargetSet {
                target: Target::Agent(agent),
                reason: TargetReason::StickyAgent,
                seq: 2,
                until: Some(t(70)),
                at: t(60),
            },
        )
        .await;
        db.agent(
            &agent.to_string(),
            AgentEvent::AgentDisconnected { connection_id: "c".into(), reconnect_by: t(90), at: t(60) },
        )
        .await;
        let live = db.dump(&["timers", "interaction_timing"]).await;
        assert_eq!(live.len(), 5, "{live:?}");
        db.rebuild().await;
        assert_eq!(db.dump(&["timers", "interaction_timing"]).await, live);
    }
}
