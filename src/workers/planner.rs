//! Keeps SQLite's query planner informed: `ANALYZE` of the interaction list at start-up and
//! every hour.
//!
//! Why: without statistics SQLite takes the `(status, opened_at)` index for a list filtered by
//! several statuses (`state=closed`) and sorts every matching row for each page — seconds per
//! page at a million interactions — where the `(opened_at, interaction_id)` index gives the
//! page directly. With statistics it picks the latter (measured: `docs/performance.md`,
//! "Supervision"). A sampled ANALYZE (`analysis_limit`) misjudges the status column, so it is a
//! full one; it takes about half a second per million rows. PostgreSQL keeps its own
//! statistics (autovacuum), so this runs on SQLite only.

use std::time::Duration;

use switchboard_projections::Backend;
use tokio::sync::watch;

use crate::core::Core;

/// How often the statistics are refreshed.
const EVERY: Duration = Duration::from_secs(3600);

/// Refreshes the planner statistics until shutdown.
pub async fn run(core: Core, mut shutdown: watch::Receiver<bool>) {
    if core.db.backend != Backend::Sqlite {
        return;
    }
    loop {
        if let Err(e) = sqlx::query("ANALYZE interaction_list").execute(&core.db.any).await {
            tracing::warn!(error = %e, "ANALYZE interaction_list failed; list queries may plan badly");
        }
        tokio::select! {
            _ = tokio::time::sleep(EVERY) => {}
            _ = shutdown.changed() => return,
        }
    }
}
