//! `switchboard rebuild-projections [--check]`: replays the whole log into freshly emptied
//! read models, showing progress, and with `--check` proves the rebuild equals what was there.
//!
//! The check digests every projection table before and after: SHA-256 over its rows, each row
//! the `|`-joined text of its columns (NULL as `\N`), rows in sorted order, so the digest
//! depends on the content only. Columns that background workers write rather than events
//! (lease, attempt and error bookkeeping of `outbox`, `timers` and `media_fetch`) are left
//! out: a rebuild resets them by design, and they carry no business state. Everything else,
//! including the outbox `status` (senders record outcomes as events, so replay derives it),
//! must be equal.
//!
//! "Live" means the incremental projection caught up with the whole log: a server stopped
//! with its projector a few events behind is first brought up to date (same code, from its
//! checkpoint), so the check compares incremental against from-scratch, never a lag.
//!
//! Run it against a STOPPED server's database: a live server keeps projecting and working
//! its queues while the tables are digested, which would show as differences.

use std::io::IsTerminal;

use futures_util::TryStreamExt;
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::Row;
use switchboard_projections::{Backend, Projector};

use crate::db::Database;

/// Columns written by workers, not events: excluded from the digest.
pub const WORKER_COLUMNS: &[(&str, &[&str])] = &[
    ("outbox", &["attempts", "next_attempt_at", "locked_until", "last_error"]),
    ("timers", &["locked_until", "attempts"]),
    ("media_fetch", &["attempts", "next_attempt_at", "locked_until", "last_error"]),
];

/// One table's digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableDigest {
    /// Table.
    pub table: String,
    /// Row count.
    pub rows: u64,
    /// Hex SHA-256 of the sorted rows.
    pub sha256: String,
}

/// A table whose rebuild differs from the live table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Difference {
    /// Table.
    pub table: String,
    /// Rows before the rebuild.
    pub live_rows: u64,
    /// Rows after.
    pub rebuilt_rows: u64,
}

/// What a rebuild did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RebuildReport {
    /// The projection rebuilt.
    pub projection: String,
    /// Events replayed.
    pub events: u64,
    /// Events the live projection was behind by (applied before the `--check` digest).
    pub caught_up: u64,
    /// Tables compared (0 without `--check`).
    pub tables_checked: usize,
    /// Tables that differ.
    pub differences: Vec<Difference>,
}

async fn columns(db: &Database, table: &str) -> Result<Vec<String>, sqlx::Error> {
    let sql = match db.backend {
        Backend::Postgres => {
            "SELECT CAST(column_name AS TEXT) FROM information_schema.columns
              WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position"
        }
        Backend::Sqlite => "SELECT name FROM pragma_table_info($1) ORDER BY cid",
    };
    let ignored = WORKER_COLUMNS.iter().find(|(t, _)| *t == table).map(|(_, c)| *c).unwrap_or(&[]);
    let names: Vec<(String,)> = sqlx::query_as(sql).bind(table).fetch_all(&db.any).await?;
    Ok(names.into_iter().map(|(n,)| n).filter(|n| !ignored.contains(&n.as_str())).collect())
}

/// Digests of these tables (streamed: constant memory).
pub async fn digest(db: &Database, tables: &[&str]) -> Result<Vec<TableDigest>, sqlx::Error> {
    let mut out = Vec::with_capacity(tables.len());
    for table in tables {
        let row = columns(db, table)
            .await?
            .iter()
            .map(|c| format!("COALESCE(CAST(\"{c}\" AS TEXT), '\\N')"))
            .collect::<Vec<_>>()
            .join(" || '|' || ");
        let sql = format!("SELECT {row} AS r FROM {table} ORDER BY 1");
        let mut h = Sha256::new();
        let mut rows = 0u64;
        let mut stream = sqlx::query(&sql).fetch(&db.any);
        while let Some(r) = stream.try_next().await? {
            let text: String = r.try_get("r")?;
            h.update(text.as_bytes());
            h.update(b"\n");
            rows += 1;
        }
        out.push(TableDigest { table: (*table).to_owned(), rows, sha256: hex::encode(h.finalize()) });
    }
    Ok(out)
}

/// The tables that differ between two digests of the same tables.
pub fn compare(live: &[TableDigest], rebuilt: &[TableDigest]) -> Vec<Difference> {
    live.iter()
        .zip(rebuilt)
        .filter(|(a, b)| a.sha256 != b.sha256)
        .map(|(a, b)| Difference { table: a.table.clone(), live_rows: a.rows, rebuilt_rows: b.rows })
        .collect()
}

/// Rebuilds every read model, reporting progress to `progress(done, total)` after each batch.
pub async fn rebuild(
    db: &Database,
    pii: std::sync::Arc<crate::pii::Pii>,
    check: bool,
    mut progress: impl FnMut(u64, u64),
) -> anyhow::Result<RebuildReport> {
    let projection = switchboard_projections::combined();
    let tables: Vec<&str> = projection.tables().to_vec();
    // Personal fields are sealed in the log: the projector opens them (ADR 0020).
    let projector = Projector::new(db.any.clone(), db.backend, projection, 1000).with_opener(pii);
    let (live, caught_up) = if check {
        let caught_up = projector.catch_up().await? as u64;
        (Some(digest(db, &tables).await?), caught_up)
    } else {
        (None, 0)
    };
    let (total,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM events").fetch_one(&db.any).await?;
    projector.reset().await?;
    let mut done = 0u64;
    progress(0, total as u64);
    loop {
        let n = projector.run_batch().await?;
        if n == 0 {
            break;
        }
        done += n as u64;
        progress(done, total as u64);
    }
    let differences = match &live {
        Some(live) => compare(live, &digest(db, &tables).await?),
        None => vec![],
    };
    Ok(RebuildReport {
        projection: projector.name().to_owned(),
        events: done,
        caught_up,
        tables_checked: if check { tables.len() } else { 0 },
        differences,
    })
}

/// The CLI: a progress bar on a terminal, a plain line per tenth otherwise; then the outcome.
/// Returns whether the check (if any) found the tables equal.
pub async fn run_cli(
    db: &Database,
    pii: std::sync::Arc<crate::pii::Pii>,
    check: bool,
) -> anyhow::Result<bool> {
    let tty = std::io::stdout().is_terminal();
    let bar = if tty { indicatif::ProgressBar::new(0) } else { indicatif::ProgressBar::hidden() };
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} events ({per_sec}, eta {eta})")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut last_tenth = None;
    let report = rebuild(db, pii, check, |done, total| {
        bar.set_length(total);
        bar.set_position(done);
        let tenth = (done * 10).checked_div(total).unwrap_or(10);
        if !tty && last_tenth != Some(tenth) {
            last_tenth = Some(tenth);
            println!("replayed {done}/{total} events");
        }
    })
    .await?;
    bar.finish_and_clear();
    println!("{}: {} events", report.projection, report.events);
    if check {
        if report.caught_up > 0 {
            println!(
                "the live projection was {} events behind; caught up before comparing",
                report.caught_up
            );
        }
        if report.differences.is_empty() {
            println!("equal: {} tables", report.tables_checked);
        } else {
            for d in &report.differences {
                println!("differs: {} (live {} rows, rebuilt {} rows)", d.table, d.live_rows, d.rebuilt_rows);
            }
        }
    }
    Ok(report.differences.is_empty())
}
