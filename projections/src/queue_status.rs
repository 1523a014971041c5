//! The queue board: settings, members and their availability, waiting interactions and who
//! holds their offers, and running totals of offer outcomes.
//!
//! Owns `queue_status`, `queue_members`, `queue_waiting`, and two side tables it needs to
//! follow the log on its own: `queue_agents` (each agent's readiness and reachability, so a
//! member's availability is known when they join) and `queue_offers` (live offers made for a
//! queue target, so an answer counts in that queue's totals). Settings come from queue
//! events, membership and availability from agent events, waiting and offers from
//! interaction events. Counts are computed from the rows when read.

use sqlx::AnyConnection;
use switchboard_domain::agent::AgentEvent;
use switchboard_domain::interaction::InteractionEvent;
use switchboard_domain::queue::QueueEvent;
use switchboard_domain::routing::{Target, TargetReason};

use crate::runtime::{Projection, ms, serde_name};
use crate::{DomainEventPayload, StoredEvent};

/// The queue status projection.
pub struct QueueStatus;

#[async_trait::async_trait]
impl Projection for QueueStatus {
    fn name(&self) -> &'static str {
        "queue_status"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["queue_status", "queue_members", "queue_waiting", "queue_agents", "queue_offers"]
    }

    async fn apply(
        &self,
        conn: &mut AnyConnection,
        event: &StoredEvent,
        payload: &DomainEventPayload,
    ) -> Result<(), sqlx::Error> {
        let id = event.aggregate_id.as_str();
        match payload {
            DomainEventPayload::Queue(e) => apply_queue(conn, id, e).await,
            DomainEventPayload::Agent(e) => apply_agent(conn, id, e).await,
            DomainEventPayload::Interaction(e) => apply_interaction(conn, id, e).await,
            _ => Ok(()),
        }
    }
}

async fn apply_queue(conn: &mut AnyConnection, q: &str, event: &QueueEvent) -> Result<(), sqlx::Error> {
    use QueueEvent as E;
    match event {
        E::QueueCreated { name, offer_timeout_secs, strategy, weight, at } => {
            sqlx::query(
                "INSERT INTO queue_status (queue_id, name, offer_timeout_s, strategy, weight, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(q)
            .bind(name.as_ref())
            .bind(i64::from(*offer_timeout_secs))
            .bind(serde_name(strategy))
            .bind(i64::from(*weight))
            .bind(ms(*at))
            .execute(&mut *conn)
            .await?;
        }
        E::QueueConfigured { offer_timeout_secs, strategy, weight, at } => {
            sqlx::query(
                "UPDATE queue_status SET offer_timeout_s = $2, strategy = $3, weight = $4, updated_at = $5
                  WHERE queue_id = $1",
            )
            .bind(q)
            .bind(i64::from(*offer_timeout_secs))
            .bind(serde_name(strategy))
            .bind(i64::from(*weight))
            .bind(ms(*at))
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(())
}

async fn apply_agent(conn: &mut AnyConnection, agent: &str, event: &AgentEvent) -> Result<(), sqlx::Error> {
    use AgentEvent as E;
    // (ready, reachable): `None` leaves the value as it is.
    let (ready, reachable): (Option<i64>, Option<i64>) = match event {
        E::AgentRegistered { .. } => {
            sqlx::query(
                "INSERT INTO queue_agents (agent_id, ready, reachable) VALUES ($1, 0, 1)
                 ON CONFLICT (agent_id) DO NOTHING",
            )
            .bind(agent)
            .execute(&mut *conn)
            .await?;
            return Ok(());
        }
        E::AgentJoinedQueue { queue_id, at } => {
            sqlx::query(
                "INSERT INTO queue_members (queue_id, agent_id, available, joined_at)
                 VALUES ($1, $2, COALESCE((SELECT ready * reachable FROM queue_agents WHERE agent_id = $2), 0), $3)
                 ON CONFLICT (queue_id, agent_id) DO NOTHING",
            )
            .bind(queue_id.to_string())
            .bind(agent)
            .bind(ms(*at))
            .execute(&mut *conn)
            .await?;
            return Ok(());
        }
        E::AgentLeftQueue { queue_id, .. } => {
            sqlx::query("DELETE FROM queue_members WHERE queue_id = $1 AND agent_id = $2")
                .bind(queue_id.to_string())
                .bind(agent)
                .execute(&mut *conn)
                .await?;
            return Ok(());
        }
        // Logging in or marking ready makes an agent reachable again (HTTP clients work).
        E::AgentLoggedIn { .. } => (Some(0), Some(1)),
        E::AgentBecameReady { .. } => (Some(1), Some(1)),
        E::AgentPaused { .. } | E::AgentLoggedOut { .. } => (Some(0), None),
        E::AgentConnected { .. } => (None, Some(1)),
        E::AgentUnreachable { .. } => (None, Some(0)),
        _ => return Ok(()),
    };
    sqlx::query(
        "INSERT INTO queue_agents (agent_id, ready, reachable) VALUES ($1, COALESCE($2, 0), COALESCE($3, 1))
         ON CONFLICT (agent_id) DO UPDATE SET ready = COALESCE($2, queue_agents.ready),
                                              reachable = COALESCE($3, queue_agents.reachable)",
    )
    .bind(agent)
    .bind(ready)
    .bind(reachable)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "UPDATE queue_members SET available = (SELECT ready * reachable FROM queue_agents WHERE agent_id = $1)
          WHERE agent_id = $1",
    )
    .bind(agent)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The `reason` column: the target reason's tag (`plan`, `plan_end`, `sticky_queue`, ...).
fn reason_name(reason: &TargetReason) -> String {
    serde_json::to_value(reason)
        .ok()
        .and_then(|v| v.get("kind").and_then(|k| k.as_str()).map(str::to_owned))
        .unwrap_or_default()
}

async fn apply_interaction(
    conn: &mut AnyConnection,
    i: &str,
    event: &InteractionEvent,
) -> Result<(), sqlx::Error> {
    use InteractionEvent as E;
    match event {
        // The legacy single-queue opening (before routing plans).
        E::InteractionOpened { queue_id: Some(q), at, .. } => {
            wait_in(conn, i, &q.to_string(), 0, None, "plan", ms(*at)).await?;
        }
        E::RoutingTargetSet { target, reason, seq, until, at } => {
            stop_waiting(conn, i).await?;
            if let Target::Queue(q) = target {
                let until = until.map(ms);
                wait_in(conn, i, &q.to_string(), *seq, until, &reason_name(reason), ms(*at)).await?;
            }
        }
        E::TransferRequested { to, seq, until, at, .. } => {
            stop_waiting(conn, i).await?;
            if let Target::Queue(q) = to {
                wait_in(conn, i, &q.to_string(), *seq, Some(ms(*until)), "transfer", ms(*at)).await?;
            }
        }
        E::RoutingTargetExpired { .. } | E::TransferReturned { .. } => stop_waiting(conn, i).await?,
        E::OfferMade { agent_id, attempt, explanation, .. } => {
            if let Target::Queue(q) = explanation.target {
                sqlx::query(
                    "INSERT INTO queue_offers (interaction_id, agent_id, attempt, queue_id) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (interaction_id, agent_id, attempt) DO NOTHING",
                )
                .bind(i)
                .bind(agent_id.to_string())
                .bind(i64::from(*attempt))
                .bind(q.to_string())
                .execute(&mut *conn)
                .await?;
                refresh_offered(conn, i).await?;
            }
        }
        E::OfferAccepted { agent_id, attempt, at } => {
            answer(conn, i, &agent_id.to_string(), *attempt, Some("accepted_total"), ms(*at)).await?;
            stop_waiting(conn, i).await?;
        }
        E::OfferRejected { agent_id, attempt, at } => {
            answer(conn, i, &agent_id.to_string(), *attempt, Some("rejected_total"), ms(*at)).await?;
        }
        E::OfferTimedOut { agent_id, attempt, at } => {
            answer(conn, i, &agent_id.to_string(), *attempt, Some("timed_out_total"), ms(*at)).await?;
        }
        E::OfferWithdrawn { agent_id, attempt, at, .. } => {
            answer(conn, i, &agent_id.to_string(), *attempt, None, ms(*at)).await?;
        }
        E::InteractionClosed { .. } | E::InteractionClosedBySystem { .. } => {
            stop_waiting(conn, i).await?;
            sqlx::query("DELETE FROM queue_offers WHERE interaction_id = $1")
                .bind(i)
                .execute(&mut *conn)
                .await?;
        }
        _ => {}
    }
    Ok(())
}

/// The interaction now waits in `queue` for target `seq`.
async fn wait_in(
    conn: &mut AnyConnection,
    i: &str,
    queue: &str,
    seq: u32,
    until: Option<i64>,
    reason: &str,
    at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO queue_waiting (queue_id, interaction_id, queued_at, target_seq, until_at, reason)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (queue_id, interaction_id) DO UPDATE
            SET queued_at = excluded.queued_at, target_seq = excluded.target_seq,
                until_at = excluded.until_at, reason = excluded.reason",
    )
    .bind(queue)
    .bind(i)
    .bind(at)
    .bind(i64::from(seq))
    .bind(until)
    .bind(reason)
    .execute(&mut *conn)
    .await?;
    refresh_offered(conn, i).await
}

/// The interaction's target ended (accepted, expired, replaced, closed).
async fn stop_waiting(conn: &mut AnyConnection, i: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM queue_waiting WHERE interaction_id = $1").bind(i).execute(&mut *conn).await?;
    Ok(())
}

/// An offer ended: it leaves the live set and, if it was a queue's, counts in `total`.
async fn answer(
    conn: &mut AnyConnection,
    i: &str,
    agent: &str,
    attempt: u32,
    total: Option<&str>,
    at: i64,
) -> Result<(), sqlx::Error> {
    let queue: Option<(String,)> = sqlx::query_as(
        "DELETE FROM queue_offers WHERE interaction_id = $1 AND agent_id = $2 AND attempt = $3 RETURNING queue_id",
    )
    .bind(i)
    .bind(agent)
    .bind(i64::from(attempt))
    .fetch_optional(&mut *conn)
    .await?;
    let Some((queue,)) = queue else { return Ok(()) };
    if let Some(column) = total {
        // `column` is always one of this module's literals.
        sqlx::query(&format!(
            "UPDATE queue_status SET {column} = {column} + 1, updated_at = $2 WHERE queue_id = $1"
        ))
        .bind(queue.as_str())
        .bind(at)
        .execute(&mut *conn)
        .await?;
    }
    refresh_offered(conn, i).await
}

/// `offered_to` is the agent holding the latest live offer of the waiting row's queue.
async fn refresh_offered(conn: &mut AnyConnection, i: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE queue_waiting SET offered_to =
            (SELECT o.agent_id FROM queue_offers o
              WHERE o.interaction_id = queue_waiting.interaction_id AND o.queue_id = queue_waiting.queue_id
              ORDER BY o.attempt DESC LIMIT 1)
          WHERE interaction_id = $1",
    )
    .bind(i)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use switchboard_domain::agent::AgentEvent as A;
    use switchboard_domain::interaction::{Closer, InteractionEvent as E};
    use switchboard_domain::queue::QueueEvent;
    use switchboard_domain::routing::{Strategy, Target, TargetReason, WithdrawReason};
    use switchboard_domain::{AgentId, DisplayName, InteractionId, PauseReason, QueueId};

    use super::QueueStatus;
    use crate::testing::{Db, offer, t, target_set};

    async fn db() -> Db {
        Db::new(vec![Arc::new(QueueStatus)]).await
    }

    fn created(strategy: Strategy, weight: u8) -> QueueEvent {
        QueueEvent::QueueCreated {
            name: DisplayName::parse("Sales").expect("name"),
            offer_timeout_secs: 20,
            strategy,
            weight,
            at: t(0),
        }
    }

    async fn members(db: &mut Db, q: &str) -> Vec<String> {
        db.rows(&format!(
            "SELECT agent_id || '|' || CAST(available AS TEXT) || '|' || CAST(joined_at AS TEXT)
               FROM queue_members WHERE queue_id = '{q}' ORDER BY joined_at, agent_id"
        ))
        .await
    }

    async fn totals(db: &mut Db, q: &QueueId) -> String {
        db.rows(&format!(
            "SELECT CAST(accepted_total AS TEXT) || '/' || CAST(rejected_total AS TEXT) || '/'
                    || CAST(timed_out_total AS TEXT) FROM queue_status WHERE queue_id = '{q}'"
        ))
        .await
        .concat()
    }

    async fn waiting(db: &mut Db) -> Vec<String> {
        db.rows(
            "SELECT queue_id || '|' || interaction_id || '|' || CAST(queued_at AS TEXT) || '|'
                    || CAST(target_seq AS TEXT) || '|' || COALESCE(CAST(until_at AS TEXT), '-') || '|'
                    || reason || '|' || COALESCE(offered_to, '-')
               FROM queue_waiting ORDER BY queue_id, interaction_id",
        )
        .await
    }

    #[tokio::test]
    async fn settings_come_from_creation_and_configuration() {
        let mut db = db().await;
        let q = QueueId::new().to_string();
        db.queue(&q, created(Strategy::RingAll, 7)).await;
        let row = "SELECT name || '|' || CAST(offer_timeout_s AS TEXT) || '|' || strategy || '|' || CAST(weight AS TEXT)
                     FROM queue_status";
        assert_eq!(db.rows(row).await, vec!["Sales|20|ring_all|7".to_owned()]);
        db.queue(
            &q,
            QueueEvent::QueueConfigured {
                offer_timeout_secs: 45,
                strategy: Strategy::FewestOpen,
                weight: 2,
                at: t(5),
            },
        )
        .await;
        assert_eq!(db.rows(row).await, vec!["Sales|45|fewest_open|2".to_owned()]);
    }

    #[tokio::test]
    async fn members_join_in_order_and_are_available_when_ready_and_reachable() {
        let mut db = db().await;
        let q = QueueId::new();
        let qs = q.to_string();
        db.queue(&qs, created(Strategy::RoundRobin, 5)).await;
        let (a, b) = (AgentId::new().to_string(), AgentId::new().to_string());
        for agent in [&a, &b] {
            db.agent(agent, A::AgentRegistered { name: DisplayName::parse("X").expect("name"), at: t(0) })
                .await;
        }
        // `b` is ready before joining; `a` joins offline.
        db.agent(&b, A::AgentLoggedIn { at: t(1) }).await;
        db.agent(&b, A::AgentBecameReady { at: t(2) }).await;
        db.agent(&a, A::AgentJoinedQueue { queue_id: q, at: t(3) }).await;
        db.agent(&b, A::AgentJoinedQueue { queue_id: q, at: t(4) }).await;
        let (t3, t4) = (t(3).timestamp_millis(), t(4).timestamp_millis());
        assert_eq!(members(&mut db, &qs).await, vec![format!("{a}|0|{t3}"), format!("{b}|1|{t4}")]);

        db.agent(&a, A::AgentLoggedIn { at: t(5) }).await;
        assert_eq!(members(&mut db, &qs).await[0], format!("{a}|0|{t3}"), "logged in is paused");
        db.agent(&a, A::AgentBecameReady { at: t(6) }).await;
        assert_eq!(members(&mut db, &qs).await[0], format!("{a}|1|{t3}"));
        db.agent(&a, A::AgentUnreachable { connection_id: "c".into(), at: t(7) }).await;
        assert_eq!(members(&mut db, &qs).await[0], format!("{a}|0|{t3}"), "unreachable");
        db.agent(&a, A::AgentConnected { connection_id: "d".into(), at: t(8) }).await;
        assert_eq!(members(&mut db, &qs).await[0], format!("{a}|1|{t3}"), "reconnected");
        db.agent(&a, A::AgentUnreachable { connection_id: "d".into(), at: t(9) }).await;
        db.agent(&a, A::AgentPaused { reason: PauseReason::parse("Lunch").ok(), at: t(10) }).await;
        db.agent(&a, A::AgentBecameReady { at: t(11) }).await;
        assert_eq!(members(&mut db, &qs).await[0], format!("{a}|1|{t3}"), "ready makes reachable again");
        db.agent(&a, A::AgentLoggedOut { at: t(12) }).await;
        assert_eq!(members(&mut db, &qs).await[0], format!("{a}|0|{t3}"));

        db.agent(&b, A::AgentLeftQueue { queue_id: q, at: t(13) }).await;
        assert_eq!(members(&mut db, &qs).await, vec![format!("{a}|0|{t3}")]);
        db.agent(&b, A::AgentJoinedQueue { queue_id: q, at: t(14) }).await;
        let t14 = t(14).timestamp_millis();
        assert_eq!(members(&mut db, &qs).await[1], format!("{b}|1|{t14}"), "rejoining goes to the end");
    }

    #[tokio::test]
    async fn a_queue_target_waits_until_it_ends_and_offer_outcomes_count_per_queue() {
        let mut db = db().await;
        let (q1, q2) = (QueueId::new(), QueueId::new());
        db.queue(&q1.to_string(), created(Strategy::RoundRobin, 5)).await;
        db.queue(&q2.to_string(), created(Strategy::RingAll, 5)).await;
        let i = InteractionId::new().to_string();
        let (a, b, c, d) = (AgentId::new(), AgentId::new(), AgentId::new(), AgentId::new());

        db.interaction(&i, target_set(Target::Queue(q1), 1, Some(t(60)), t(1))).await;
        let (t1, t60) = (t(1).timestamp_millis(), t(60).timestamp_millis());
        assert_eq!(waiting(&mut db).await, vec![format!("{q1}|{i}|{t1}|1|{t60}|plan|-")]);
        db.interaction(&i, offer(a, 1, Target::Queue(q1), t(20))).await;
        assert_eq!(waiting(&mut db).await, vec![format!("{q1}|{i}|{t1}|1|{t60}|plan|{a}")]);
        db.interaction(&i, E::OfferRejected { agent_id: a, attempt: 1, at: t(2) }).await;
        assert_eq!(waiting(&mut db).await, vec![format!("{q1}|{i}|{t1}|1|{t60}|plan|-")]);
        db.interaction(&i, offer(b, 2, Target::Queue(q1), t(20))).await;
        db.interaction(&i, E::OfferTimedOut { agent_id: b, attempt: 2, at: t(22) }).await;
        db.interaction(&i, offer(c, 3, Target::Queue(q1), t(40))).await;
        assert_eq!(totals(&mut db, &q1).await, "0/1/1");

        // The step times out: the live offer is withdrawn (no total) and the plan moves on.
        db.interaction(&i, E::RoutingTargetExpired { seq: 1, at: t(60) }).await;
        db.interaction(
            &i,
            E::OfferWithdrawn { agent_id: c, attempt: 3, reason: WithdrawReason::TargetChanged, at: t(60) },
        )
        .await;
        assert!(waiting(&mut db).await.is_empty());
        db.interaction(
            &i,
            E::RoutingTargetSet {
                target: Target::Queue(q2),
                reason: TargetReason::PlanEnd,
                seq: 2,
                until: None,
                at: t(60),
            },
        )
        .await;
        assert_eq!(waiting(&mut db).await, vec![format!("{q2}|{i}|{t60}|2|-|plan_end|-")]);
        // Ring-all: two live offers; the latest is shown, the other answer is withdrawn.
        db.interaction(&i, offer(c, 4, Target::Queue(q2), t(80))).await;
        db.interaction(&i, offer(d, 5, Target::Queue(q2), t(80))).await;
        assert!(waiting(&mut db).await[0].ends_with(&format!("|{d}")));
        db.interaction(&i, E::OfferAccepted { agent_id: c, attempt: 4, at: t(61) }).await;
        db.interaction(
            &i,
            E::OfferWithdrawn { agent_id: d, attempt: 5, reason: WithdrawReason::TakenByAnother, at: t(61) },
        )
        .await;
        assert!(waiting(&mut db).await.is_empty(), "accepted: no longer waiting");
        assert_eq!(totals(&mut db, &q1).await, "0/1/1");
        assert_eq!(totals(&mut db, &q2).await, "1/0/0");

        // Offers to one agent belong to no queue.
        db.interaction(&i, target_set(Target::Agent(a), 3, Some(t(90)), t(70))).await;
        db.interaction(&i, offer(a, 6, Target::Agent(a), t(90))).await;
        db.interaction(&i, E::OfferAccepted { agent_id: a, attempt: 6, at: t(71) }).await;
        assert!(waiting(&mut db).await.is_empty());
        assert_eq!(totals(&mut db, &q2).await, "1/0/0");
    }

    #[tokio::test]
    async fn transfers_to_a_queue_wait_there_and_closing_stops_any_wait() {
        let mut db = db().await;
        let q = QueueId::new();
        db.queue(&q.to_string(), created(Strategy::RoundRobin, 5)).await;
        let i = InteractionId::new().to_string();
        let from = AgentId::new();
        db.interaction(
            &i,
            E::TransferRequested { from, to: Target::Queue(q), seq: 4, until: t(30), at: t(10) },
        )
        .await;
        let (t10, t30) = (t(10).timestamp_millis(), t(30).timestamp_millis());
        assert_eq!(waiting(&mut db).await, vec![format!("{q}|{i}|{t10}|4|{t30}|transfer|-")]);
        db.interaction(&i, E::TransferReturned { seq: 4, agent_id: from, at: t(30) }).await;
        assert!(waiting(&mut db).await.is_empty());

        db.interaction(&i, target_set(Target::Queue(q), 5, None, t(40))).await;
        db.interaction(&i, offer(from, 1, Target::Queue(q), t(60))).await;
        db.interaction(&i, E::InteractionClosed { by: Closer::Supervisor, at: t(50) }).await;
        assert!(waiting(&mut db).await.is_empty());
        assert!(db.rows("SELECT interaction_id FROM queue_offers").await.is_empty());
        // The withdrawal that follows the close counts nowhere.
        db.interaction(
            &i,
            E::OfferWithdrawn {
                agent_id: from,
                attempt: 1,
                reason: WithdrawReason::InteractionClosed,
                at: t(50),
            },
        )
        .await;
        assert_eq!(totals(&mut db, &q).await, "0/0/0");
    }
}
