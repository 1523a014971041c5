//! Reading the event log in its global order.
//!
//! PostgreSQL: rows are ordered by `(tx_id, global_position)` and only rows whose writing
//! transaction is older than every running transaction are read
//! (`tx_id < pg_snapshot_xmin(pg_current_snapshot())`). Everything below that horizon has
//! finished, so the prefix read can never change and an event committed late with a
//! smaller position cannot be skipped. SQLite: one writer at a time, so `event_log`'s
//! position is commit order and a plain `position > checkpoint` read is safe.

use sqlx::{AnyConnection, Row};

/// Which database the log lives in (the SQL differs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// PostgreSQL through postgres-es.
    Postgres,
    /// SQLite through sqlite-es.
    Sqlite,
}

/// A position in the global order. `tx_id` is PostgreSQL's xid8 as text ("0" on SQLite).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Writer transaction id of the last event applied.
    pub tx_id: String,
    /// Global position of the last event applied.
    pub position: i64,
}

impl Checkpoint {
    /// Before the first event.
    pub fn zero() -> Self {
        Self { tx_id: "0".to_owned(), position: 0 }
    }

    /// Whether `self` comes before `other` in the global order `(tx_id, position)`. `tx_id` is
    /// a decimal xid8 without leading zeros ("0" everywhere on SQLite), so comparing its length
    /// first orders it like the number.
    pub fn precedes(&self, other: &Checkpoint) -> bool {
        (self.tx_id.len(), self.tx_id.as_str(), self.position)
            < (other.tx_id.len(), other.tx_id.as_str(), other.position)
    }
}

/// One event as stored, with its place in the global order.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    /// Where it sits in the global order.
    pub checkpoint: Checkpoint,
    /// Aggregate type (`Interaction`, `Queue`, ...).
    pub aggregate_type: String,
    /// Aggregate id.
    pub aggregate_id: String,
    /// Sequence within the aggregate, from 1.
    pub sequence: i64,
    /// Stable event name.
    pub event_type: String,
    /// JSON payload.
    pub payload: String,
    /// JSON metadata (who, when, correlation).
    pub metadata: String,
    /// When the database stored it, epoch ms.
    pub recorded_at: i64,
}

const PG_BATCH: &str = "
SELECT e.global_position, e.tx_id::text AS tx_id, e.aggregate_type, e.aggregate_id, e.sequence,
       e.event_type, e.payload::text AS payload, e.metadata::text AS metadata,
       (extract(epoch FROM e.recorded_at) * 1000)::bigint AS recorded_at
  FROM events e
 WHERE (e.tx_id, e.global_position) > ($1::text::xid8, $2)
   AND e.tx_id < pg_snapshot_xmin(pg_current_snapshot())
 ORDER BY e.tx_id, e.global_position
 LIMIT $3";

const SQLITE_BATCH: &str = "
SELECT l.global_position, '0' AS tx_id, e.aggregate_type, e.aggregate_id, e.sequence,
       e.event_type, e.payload, e.metadata, l.recorded_at
  FROM event_log l
  JOIN events e ON e.aggregate_type = l.aggregate_type AND e.aggregate_id = l.aggregate_id
                AND e.sequence = l.sequence
 WHERE l.global_position > $1
 ORDER BY l.global_position
 LIMIT $2";

/// Reads up to `limit` events after `after`, in global order.
pub async fn read_after(
    conn: &mut AnyConnection,
    backend: Backend,
    after: &Checkpoint,
    limit: i64,
) -> Result<Vec<StoredEvent>, sqlx::Error> {
    let rows = match backend {
        Backend::Postgres => {
            sqlx::query(PG_BATCH)
                .bind(after.tx_id.clone())
                .bind(after.position)
                .bind(limit)
                .fetch_all(&mut *conn)
                .await?
        }
        Backend::Sqlite => {
            sqlx::query(SQLITE_BATCH).bind(after.position).bind(limit).fetch_all(&mut *conn).await?
        }
    };
    rows.iter()
        .map(|row| {
            Ok(StoredEvent {
                checkpoint: Checkpoint {
                    tx_id: row.try_get("tx_id")?,
                    position: row.try_get("global_position")?,
                },
                aggregate_type: row.try_get("aggregate_type")?,
                aggregate_id: row.try_get("aggregate_id")?,
                sequence: row.try_get("sequence")?,
                event_type: row.try_get("event_type")?,
                payload: row.try_get("payload")?,
                metadata: row.try_get("metadata")?,
                recorded_at: row.try_get("recorded_at")?,
            })
        })
        .collect()
}

/// The newest settled position (below the horizon on PostgreSQL): where a reader that only
/// wants new events starts.
pub async fn head(conn: &mut AnyConnection, backend: Backend) -> Result<Checkpoint, sqlx::Error> {
    let sql = match backend {
        Backend::Postgres => {
            "SELECT tx_id::text AS tx_id, global_position AS pos FROM events
              WHERE tx_id < pg_snapshot_xmin(pg_current_snapshot())
              ORDER BY tx_id DESC, global_position DESC LIMIT 1"
        }
        Backend::Sqlite => {
            "SELECT '0' AS tx_id, global_position AS pos FROM event_log ORDER BY global_position DESC LIMIT 1"
        }
    };
    match sqlx::query(sql).fetch_optional(&mut *conn).await? {
        Some(row) => Ok(Checkpoint { tx_id: row.try_get("tx_id")?, position: row.try_get("pos")? }),
        None => Ok(Checkpoint::zero()),
    }
}

/// A consumer's saved position (zero if it never ran). `name` is its row in
/// `projection_checkpoints`, shared by projectors and command-issuing consumers (the router).
pub async fn load_checkpoint(
    conn: &mut AnyConnection,
    backend: Backend,
    name: &str,
) -> Result<Checkpoint, sqlx::Error> {
    let sql = match backend {
        Backend::Postgres => {
            "SELECT last_tx_id::text AS tx_id, last_pos FROM projection_checkpoints WHERE projection = $1"
        }
        Backend::Sqlite => {
            "SELECT last_tx_id AS tx_id, last_pos FROM projection_checkpoints WHERE projection = $1"
        }
    };
    match sqlx::query(sql).bind(name).fetch_optional(&mut *conn).await? {
        Some(row) => Ok(Checkpoint { tx_id: row.try_get("tx_id")?, position: row.try_get("last_pos")? }),
        None => Ok(Checkpoint::zero()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoints_order_by_transaction_then_position() {
        let cp = |tx_id: &str, position| Checkpoint { tx_id: tx_id.to_owned(), position };
        assert!(Checkpoint::zero().precedes(&cp("0", 1)));
        assert!(cp("0", 7).precedes(&cp("0", 8)));
        assert!(!cp("0", 8).precedes(&cp("0", 8)));
        // Numerically, not as text: "9" < "10".
        assert!(cp("9", 500).precedes(&cp("10", 3)));
        assert!(!cp("10", 3).precedes(&cp("9", 500)));
        assert!(Checkpoint::zero().precedes(&cp("745", 1)));
    }
}
