//! The supervisors' figures: what is happening now (active interactions, queues, agents) and
//! how agents performed over a window (handled, average first response, average handling,
//! offers missed, rejected and accepted).
//!
//! Performance comes from the facts the `performance` projection stores, through ONE
//! function, [`performance`]: the realtime view calls it for "today so far" (or since a given
//! time), the historical endpoint for any window. Same rows, same SQL, so the two never
//! disagree. Every figure is counted at the instant it became known (a handled interaction
//! at its close, a first response when it was sent, an offer when it was answered or timed
//! out) and the window is half-open, `[from, to)`: adjacent windows add up.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{AnyPool, Row};
use switchboard_projections::runtime::time_of;
use utoipa::ToSchema;

use crate::core::Core;

/// One agent's performance over a window.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AgentPerformance {
    /// The agent.
    pub agent_id: String,
    /// Interactions that closed while this agent owned them.
    pub handled: i64,
    /// Their average handling time (assignment to close), ms; `null` when none.
    pub avg_handling_ms: Option<i64>,
    /// Assignments the agent answered (first text, media or template after the assignment).
    pub responded: i64,
    /// Average first response time (assignment to that first message), ms; `null` when none.
    pub avg_first_response_ms: Option<i64>,
    /// Offers accepted.
    pub offers_accepted: i64,
    /// Offers rejected.
    pub offers_rejected: i64,
    /// Offers that timed out (missed).
    pub missed_offers: i64,
}

/// Per-agent performance in `[from, to)` (epoch ms), by agent id; agents with nothing in the
/// window are absent. Three indexed aggregate queries over the facts.
pub async fn performance(db: &AnyPool, from: i64, to: i64) -> Result<Vec<AgentPerformance>, sqlx::Error> {
    let mut by_agent: BTreeMap<String, AgentPerformance> = BTreeMap::new();
    // SUMs are cast: PostgreSQL sums bigints as numeric, which the Any driver cannot read.
    let handled = sqlx::query(
        "SELECT agent_id, COUNT(*) AS n, CAST(SUM(ended_at - assigned_at) AS BIGINT) AS total
           FROM agent_interaction_facts
          WHERE outcome = 'closed' AND ended_at >= $1 AND ended_at < $2 GROUP BY agent_id",
    )
    .bind(from)
    .bind(to)
    .fetch_all(db)
    .await?;
    for r in &handled {
        let (n, total): (i64, i64) = (r.try_get("n")?, r.try_get("total")?);
        let e = entry(&mut by_agent, r.try_get("agent_id")?);
        e.handled = n;
        e.avg_handling_ms = (n > 0).then(|| total / n);
    }
    let responded = sqlx::query(
        "SELECT agent_id, COUNT(*) AS n, CAST(SUM(first_response_at - assigned_at) AS BIGINT) AS total
           FROM agent_interaction_facts
          WHERE first_response_at >= $1 AND first_response_at < $2 GROUP BY agent_id",
    )
    .bind(from)
    .bind(to)
    .fetch_all(db)
    .await?;
    for r in &responded {
        let (n, total): (i64, i64) = (r.try_get("n")?, r.try_get("total")?);
        let e = entry(&mut by_agent, r.try_get("agent_id")?);
        e.responded = n;
        e.avg_first_response_ms = (n > 0).then(|| total / n);
    }
    let offers = sqlx::query(
        "SELECT agent_id, outcome, COUNT(*) AS n FROM offer_facts
          WHERE decided_at >= $1 AND decided_at < $2 GROUP BY agent_id, outcome",
    )
    .bind(from)
    .bind(to)
    .fetch_all(db)
    .await?;
    for r in &offers {
        let outcome: Option<String> = r.try_get("outcome")?;
        let n: i64 = r.try_get("n")?;
        let e = entry(&mut by_agent, r.try_get("agent_id")?);
        match outcome.as_deref() {
            Some("accepted") => e.offers_accepted = n,
            Some("rejected") => e.offers_rejected = n,
            Some("timed_out") => e.missed_offers = n,
            _ => {}
        }
    }
    Ok(by_agent.into_values().collect())
}

fn entry(by_agent: &mut BTreeMap<String, AgentPerformance>, agent_id: String) -> &mut AgentPerformance {
    by_agent.entry(agent_id.clone()).or_insert_with(|| AgentPerformance { agent_id, ..Default::default() })
}

/// Interactions open now.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ActiveInteractions {
    /// Open interactions (not closed nor disposed).
    pub open: i64,
    /// Of which, by status: `unrouted`, `queued`, `offered`, `assigned`.
    pub by_status: BTreeMap<String, i64>,
}

/// A queue now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct QueueNow {
    /// Id.
    pub queue_id: String,
    /// Name.
    pub name: String,
    /// Interactions waiting (offered or not).
    pub waiting: i64,
    /// Of which currently offered.
    pub offered: i64,
    /// Members taking offers (ready and reachable).
    pub available_agents: i64,
    /// Since when the longest-waiting interaction waits; `null` when none waits.
    pub oldest_waiting_since: Option<DateTime<Utc>>,
    /// How long it has waited at `as_of` (s); `null` when none waits.
    pub longest_wait_secs: Option<i64>,
}

/// An agent now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AgentNow {
    /// Id.
    pub agent_id: String,
    /// Name.
    pub name: String,
    /// `offline`, `ready` or `paused`.
    pub presence: String,
    /// Pause reason.
    pub reason: Option<String>,
    /// Since when.
    pub since: Option<DateTime<Utc>>,
    /// Whether their websocket is connected (or within its reconnect grace).
    pub reachable: bool,
    /// Open interactions they own.
    pub load: i64,
    /// Their capacity.
    pub capacity: i64,
    /// Offers they hold now.
    pub offers: i64,
}

/// The realtime view, as `GET /api/realtime` answers and the supervisors' `realtime` frame
/// carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Snapshot {
    /// When it was computed (the server's clock).
    pub as_of: DateTime<Utc>,
    /// Start of the performance window (default: today, 00:00 UTC); it ends at `as_of`.
    pub since: DateTime<Utc>,
    /// Open interactions.
    pub active: ActiveInteractions,
    /// Queues.
    pub queues: Vec<QueueNow>,
    /// Agents.
    pub agents: Vec<AgentNow>,
    /// Per-agent performance in `[since, as_of)`.
    pub performance: Vec<AgentPerformance>,
}

impl Snapshot {
    /// What decides whether supervisors are told: everything but the figures that only move
    /// with the clock (`as_of`, waits in seconds), so an idle floor pushes nothing.
    pub fn fingerprint(&self) -> String {
        let mut stable = self.clone();
        stable.as_of = self.since;
        for q in &mut stable.queues {
            q.longest_wait_secs = None;
        }
        serde_json::to_string(&stable).unwrap_or_default()
    }
}

/// 00:00 UTC of `now`'s day.
pub fn start_of_day(now: DateTime<Utc>) -> DateTime<Utc> {
    now.date_naive().and_hms_opt(0, 0, 0).map(|d| d.and_utc()).unwrap_or(now)
}

/// Computes the realtime view; performance since `since` (default: today).
pub async fn snapshot(core: &Core, since: Option<DateTime<Utc>>) -> Result<Snapshot, sqlx::Error> {
    let db = &core.db.any;
    let as_of = core.clock.now();
    let since = since.unwrap_or_else(|| start_of_day(as_of));
    let now_ms = as_of.timestamp_millis();

    let mut active = ActiveInteractions::default();
    let statuses = sqlx::query(
        "SELECT status, COUNT(*) AS n FROM interaction_list
          WHERE status NOT IN ('closed', 'disposed') GROUP BY status ORDER BY status",
    )
    .fetch_all(db)
    .await?;
    for r in &statuses {
        let n: i64 = r.try_get("n")?;
        active.open += n;
        active.by_status.insert(r.try_get("status")?, n);
    }

    let queues = sqlx::query(
        "SELECT q.queue_id, q.name,
                (SELECT COUNT(*) FROM queue_waiting w WHERE w.queue_id = q.queue_id) AS waiting,
                (SELECT COUNT(*) FROM queue_waiting w WHERE w.queue_id = q.queue_id AND w.offered_to IS NOT NULL) AS offered,
                (SELECT COUNT(*) FROM queue_members m WHERE m.queue_id = q.queue_id AND m.available = 1) AS available,
                (SELECT MIN(w.queued_at) FROM queue_waiting w WHERE w.queue_id = q.queue_id) AS oldest
           FROM queue_status q ORDER BY q.name, q.queue_id",
    )
    .fetch_all(db)
    .await?
    .iter()
    .map(|r| {
        let oldest: Option<i64> = r.try_get("oldest")?;
        Ok(QueueNow {
            queue_id: r.try_get("queue_id")?,
            name: r.try_get("name")?,
            waiting: r.try_get("waiting")?,
            offered: r.try_get("offered")?,
            available_agents: r.try_get("available")?,
            oldest_waiting_since: time_of(oldest),
            longest_wait_secs: oldest.map(|o| (now_ms - o).max(0) / 1000),
        })
    })
    .collect::<Result<Vec<_>, sqlx::Error>>()?;

    let agents = sqlx::query(
        "SELECT a.agent_id, a.name, a.presence, a.reason, a.updated_at, a.capacity, a.reachable,
                (SELECT COUNT(*) FROM agent_load l WHERE l.agent_id = a.agent_id AND l.open = 1) AS load,
                (SELECT COUNT(*) FROM interaction_offers o WHERE o.agent_id = a.agent_id) AS offers
           FROM agent_status a ORDER BY a.name, a.agent_id",
    )
    .fetch_all(db)
    .await?
    .iter()
    .map(|r| {
        Ok(AgentNow {
            agent_id: r.try_get("agent_id")?,
            name: r.try_get("name")?,
            presence: r.try_get("presence")?,
            reason: r.try_get("reason")?,
            since: time_of(r.try_get("updated_at")?),
            reachable: r.try_get::<i64, _>("reachable")? != 0,
            load: r.try_get("load")?,
            capacity: r.try_get("capacity")?,
            offers: r.try_get("offers")?,
        })
    })
    .collect::<Result<Vec<_>, sqlx::Error>>()?;

    let performance = performance(db, since.timestamp_millis(), now_ms).await?;
    Ok(Snapshot { as_of, since, active, queues, agents, performance })
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn the_day_starts_at_midnight_utc() {
        let now = Utc.with_ymd_and_hms(2026, 11, 21, 17, 4, 5).single().expect("time");
        assert_eq!(start_of_day(now), Utc.with_ymd_and_hms(2026, 11, 21, 0, 0, 0).single().expect("time"));
    }

    #[test]
    fn the_fingerprint_ignores_what_only_the_clock_moves() {
        let at = Utc.with_ymd_and_hms(2026, 11, 21, 17, 0, 0).single().expect("time");
        let queue = QueueNow {
            queue_id: "q".into(),
            name: "Sales".into(),
            waiting: 1,
            offered: 0,
            available_agents: 0,
            oldest_waiting_since: Some(at),
            longest_wait_secs: Some(5),
        };
        let a = Snapshot {
            as_of: at,
            since: start_of_day(at),
            active: ActiveInteractions::default(),
            queues: vec![queue],
            agents: vec![],
            performance: vec![],
        };
        let mut b = a.clone();
        b.as_of = at + chrono::Duration::seconds(9);
        b.queues[0].longest_wait_secs = Some(14);
        assert_eq!(a.fingerprint(), b.fingerprint());
        b.queues[0].waiting = 2;
        assert_ne!(a.fingerprint(), b.fingerprint());
    }
}
