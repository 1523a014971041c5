//! The timer poller: claims due timers and sends their command.
//!
//! Rows are claimed with `FOR UPDATE SKIP LOCKED` (PostgreSQL) and a lease (`locked_until`),
//! so several nodes share the work and a node that dies mid-fire leaves the row to be
//! claimed again once the lease lapses. Timer commands are idempotent (an offer times out
//! only if that very offer is still pending and due), so firing twice has one effect.

use std::time::Duration;

use sqlx::Row;
use switchboard_domain::agent::AgentCommand;
use switchboard_domain::interaction::InteractionCommand;
use switchboard_projections::Backend;
use switchboard_projections::timers::TimerPayload;
use tokio::sync::watch;

use crate::core::{Cause, Core};
use crate::runtime::CommandError;

/// How long a claimed timer stays leased to the node that claimed it.
const LEASE_MS: i64 = 30_000;

/// A claimed, due timer.
#[derive(Debug, Clone, PartialEq)]
pub struct DueTimer {
    /// Its id.
    pub timer_id: String,
    /// The aggregate it targets.
    pub aggregate_id: String,
    /// When it was due (epoch ms).
    pub fire_at: i64,
    /// What to do.
    pub payload: TimerPayload,
}

/// Claims up to `limit` timers due at `now_ms`.
pub async fn claim_due(core: &Core, now_ms: i64, limit: i64) -> Result<Vec<DueTimer>, sqlx::Error> {
    let lock = match core.db.backend {
        Backend::Postgres => "FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "", // one writer at a time: the UPDATE itself is the claim
    };
    let sql = format!(
        "UPDATE timers SET locked_until = $1 + {LEASE_MS}, attempts = attempts + 1
          WHERE timer_id IN (SELECT timer_id FROM timers
                              WHERE status = 'scheduled' AND fire_at <= $1
                                AND (locked_until IS NULL OR locked_until < $1)
                              ORDER BY fire_at LIMIT $2 {lock})
        RETURNING timer_id, aggregate_id, fire_at, payload"
    );
    let rows = sqlx::query(&sql).bind(now_ms).bind(limit).fetch_all(&core.db.any).await?;
    let mut due = Vec::with_capacity(rows.len());
    for row in rows {
        let payload: String = row.try_get("payload")?;
        match serde_json::from_str(&payload) {
            Ok(payload) => due.push(DueTimer {
                timer_id: row.try_get("timer_id")?,
                aggregate_id: row.try_get("aggregate_id")?,
                fire_at: row.try_get("fire_at")?,
                payload,
            }),
            Err(e) => tracing::error!(error = %e, payload, "undecodable timer payload"),
        }
    }
    // `UPDATE … RETURNING` gives rows in no particular order. Timers overdue together (after
    // a restart, or a stalled poller) must still take effect in deadline order: an offer that
    // lapsed before its step's timeout times out (and counts as missed) before the step moves
    // the interaction on.
    due.sort_by(|a, b| (a.fire_at, &a.timer_id).cmp(&(b.fire_at, &b.timer_id)));
    Ok(due)
}

/// Fires one timer; returns whether it is done (true) or must be retried later (false).
pub async fn fire(core: &Core, timer: &DueTimer) -> bool {
    let meta = core.metadata(&Cause::System("timer"), &timer.timer_id);
    // Never earlier than the deadline, whatever the clocks of the nodes say.
    let due = chrono::DateTime::from_timestamp_millis(timer.fire_at).unwrap_or_default();
    let at = core.clock.now().max(due);
    let id = timer.aggregate_id.as_str();
    let result = match &timer.payload {
        TimerPayload::OfferTimeout { agent_id, attempt } => {
            let cmd = InteractionCommand::ExpireOffer { agent_id: *agent_id, attempt: *attempt, at };
            done(core.interactions.execute(id, cmd, meta).await)
        }
        TimerPayload::TargetTimeout { seq } => {
            let cmd = InteractionCommand::ExpireTarget { seq: *seq, seed: uuid::Uuid::now_v7(), at };
            done(core.interactions.execute(id, cmd, meta).await)
        }
        TimerPayload::Inactivity { since } => {
            let cmd = InteractionCommand::CloseForInactivity { since: *since, at };
            done(core.interactions.execute(id, cmd, meta).await)
        }
        TimerPayload::ConnectionGrace { connection_id } => {
            let cmd = AgentCommand::ExpireConnectionGrace { connection_id: connection_id.clone(), at };
            done(core.agents.execute(id, cmd, meta).await)
        }
    };
    match result {
        Ok(()) => {
            let done =
                sqlx::query("UPDATE timers SET status = 'fired', locked_until = NULL WHERE timer_id = $1")
                    .bind(timer.timer_id.as_str())
                    .execute(&core.db.any)
                    .await;
            done.is_ok()
        }
        Err(e) => {
            tracing::warn!(timer = %timer.timer_id, error = %e, "timer command failed; will retry");
            false
        }
    }
}

/// A refused timer command is done too: the thing it guarded has moved on (the offer was
/// answered, the target changed, a newer message arrived). Only infrastructure errors retry.
fn done<T, E: std::error::Error>(result: Result<T, CommandError<E>>) -> Result<(), String> {
    match result {
        Ok(_) | Err(CommandError::Rejected(_)) => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

/// Claims and fires everything due now; returns how many fired.
pub async fn run_once(core: &Core) -> Result<usize, sqlx::Error> {
    let due = claim_due(core, core.clock.now_ms(), 100).await?;
    let mut fired = 0;
    for timer in &due {
        if fire(core, timer).await {
            fired += 1;
        }
    }
    Ok(fired)
}

/// Runs the poller until shutdown.
pub async fn run(core: Core, mut shutdown: watch::Receiver<bool>, poll: Duration) {
    loop {
        if *shutdown.borrow() {
            return;
        }
        if let Err(e) = run_once(&core).await {
            tracing::error!(error = %e, "timer poll failed");
        }
        tokio::select! {
            _ = tokio::time::sleep(poll) => {}
            _ = shutdown.changed() => {}
        }
    }
}
