//! The one function that reads an aggregate's stored events for display: audit history,
//! state at an instant, and (at integration) the interaction events endpoint and the change
//! history. Keeping it single means personal-data decryption is added in one place.
//!
//! Times are the database's `recorded_at` (when the event was stored, monotonic with the
//! global position), in epoch milliseconds; the event's own `occurred_at` stays in its
//! metadata.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::Row;
use switchboard_projections::Backend;

use crate::db::Database;
use crate::pii::Pii;

/// Up to which event to read (inclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upto {
    /// Every event.
    All,
    /// Events with this sequence or lower.
    Sequence(i64),
    /// Events at this global position or lower.
    Position(i64),
    /// Events recorded at or before this instant (epoch ms).
    RecordedAt(i64),
}

/// One stored event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RawEvent {
    /// Aggregate type.
    pub aggregate_type: String,
    /// Aggregate id.
    pub aggregate_id: String,
    /// Sequence within the aggregate, from 1.
    pub sequence: i64,
    /// Position in the whole log.
    pub global_position: i64,
    /// Stable event type.
    pub event_type: String,
    /// Event version.
    pub event_version: String,
    /// When the database stored it (epoch ms).
    pub recorded_at: i64,
    /// Payload.
    pub payload: Value,
    /// Metadata (`occurred_at`, `caused_by`, `correlation_id`).
    pub metadata: Value,
    /// Chain hash.
    pub hash: Option<String>,
    /// Predecessor's chain hash.
    pub prev_hash: Option<String>,
}

/// The aggregate's events in sequence order, up to `upto` (empty: unknown aggregate or
/// nothing that early).
pub async fn read(
    db: &Database,
    pii: &Pii,
    aggregate_type: &str,
    aggregate_id: &str,
    upto: Upto,
) -> Result<Vec<RawEvent>, sqlx::Error> {
    let (select, position, recorded) = match db.backend {
        Backend::Postgres => (
            "SELECT e.aggregate_type, e.aggregate_id, e.sequence, e.global_position, e.event_type,
                    e.event_version, e.payload::text AS payload, e.metadata::text AS metadata,
                    (extract(epoch FROM e.recorded_at) * 1000)::bigint AS recorded_at, e.prev_hash, e.hash
               FROM events e WHERE e.aggregate_type = $1 AND e.aggregate_id = $2",
            "e.global_position",
            "(extract(epoch FROM e.recorded_at) * 1000)::bigint",
        ),
        Backend::Sqlite => (
            "SELECT e.aggregate_type, e.aggregate_id, e.sequence, l.global_position, e.event_type,
                    e.event_version, e.payload, e.metadata, l.recorded_at, e.prev_hash, e.hash
               FROM events e JOIN event_log l ON l.aggregate_type = e.aggregate_type
                AND l.aggregate_id = e.aggregate_id AND l.sequence = e.sequence
              WHERE e.aggregate_type = $1 AND e.aggregate_id = $2",
            "l.global_position",
            "l.recorded_at",
        ),
    };
    let (filter, bound) = match upto {
        Upto::All => (String::new(), None),
        Upto::Sequence(n) => (" AND e.sequence <= $3".to_owned(), Some(n)),
        Upto::Position(n) => (format!(" AND {position} <= $3"), Some(n)),
        Upto::RecordedAt(ms) => (format!(" AND {recorded} <= $3"), Some(ms)),
    };
    let sql = format!("{select}{filter} ORDER BY e.sequence");
    let mut query = sqlx::query(&sql).bind(aggregate_type).bind(aggregate_id);
    if let Some(n) = bound {
        query = query.bind(n);
    }
    let rows = query.fetch_all(&db.any).await?;
    let mut events = rows
        .iter()
        .map(|r| {
            let payload: String = r.try_get("payload")?;
            let metadata: String = r.try_get("metadata")?;
            Ok(RawEvent {
                aggregate_type: r.try_get("aggregate_type")?,
                aggregate_id: r.try_get("aggregate_id")?,
                sequence: r.try_get("sequence")?,
                global_position: r.try_get("global_position")?,
                event_type: r.try_get("event_type")?,
                event_version: r.try_get("event_version")?,
                recorded_at: r.try_get("recorded_at")?,
                payload: serde_json::from_str(&payload).unwrap_or(Value::Null),
                metadata: serde_json::from_str(&metadata).unwrap_or(Value::Null),
                hash: r.try_get("hash")?,
                prev_hash: r.try_get("prev_hash")?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    // Personal fields are sealed in the log; erased ones open to placeholders (ADR 0020).
    for event in &mut events {
        pii.open_payload(&mut event.payload).await?;
    }
    Ok(events)
}
