//! The projector runtime: one checkpointed loop per read model.
//!
//! A batch is one transaction: lock the projection's checkpoint row, read the next events in
//! global order (below the safe horizon), apply each to the read model, move the checkpoint,
//! commit. A crash anywhere before the commit rolls the whole batch back, so every event is
//! applied exactly once. Rebuilding clears the projection's tables and resets its checkpoint
//! to zero; the same code then replays the log.
//!
//! Personal fields of stored events may be sealed (crypto-shredding, ADR 0020): an [`Opener`]
//! given to the projector opens each event before it is decoded, inside the batch's
//! transaction, so a key destroyed earlier in the same batch already yields placeholders.

use std::sync::Arc;
use std::time::Duration;

use sqlx::{AnyConnection, AnyPool};
use tokio::sync::watch;

use crate::DomainEventPayload;
use crate::log::{self, Backend, Checkpoint, StoredEvent};

/// A read model: a name, the tables it owns and how one event changes them.
#[async_trait::async_trait]
pub trait Projection: Send + Sync {
    /// Unique, stable name (the checkpoint key).
    fn name(&self) -> &'static str;
    /// Tables this projection owns; a rebuild empties them.
    fn tables(&self) -> &'static [&'static str];
    /// Applies one event inside the batch's transaction. Must not have side effects outside
    /// the database: the batch may be rolled back and applied again.
    async fn apply(
        &self,
        conn: &mut AnyConnection,
        event: &StoredEvent,
        payload: &DomainEventPayload,
    ) -> Result<(), sqlx::Error>;
}

/// Opens the sealed personal fields of a stored event in place (placeholders once a key is
/// destroyed). The application provides it; this crate never sees keys.
#[async_trait::async_trait]
pub trait Opener: Send + Sync {
    /// Opens `event.payload`, reading keys through `conn` (the batch's transaction).
    async fn open(&self, conn: &mut AnyConnection, event: &mut StoredEvent) -> Result<(), sqlx::Error>;
}

/// Several projections run as one: each event is applied to every part, in order, in the
/// same transaction, under one checkpoint. A rebuild clears every part's tables.
pub struct Composite {
    name: &'static str,
    parts: Vec<Arc<dyn Projection>>,
    tables: &'static [&'static str],
}

impl Composite {
    /// Groups `parts` under the checkpoint `name`. Built once at start-up (the table list is
    /// leaked to give it the `'static` lifetime the trait asks for).
    pub fn new(name: &'static str, parts: Vec<Arc<dyn Projection>>) -> Self {
        let tables: Vec<&'static str> = parts.iter().flat_map(|p| p.tables().iter().copied()).collect();
        Self { name, parts, tables: Box::leak(tables.into_boxed_slice()) }
    }
}

#[async_trait::async_trait]
impl Projection for Composite {
    fn name(&self) -> &'static str {
        self.name
    }

    fn tables(&self) -> &'static [&'static str] {
        self.tables
    }

    async fn apply(
        &self,
        conn: &mut AnyConnection,
        event: &StoredEvent,
        payload: &DomainEventPayload,
    ) -> Result<(), sqlx::Error> {
        for part in &self.parts {
            part.apply(conn, event, payload).await?;
        }
        Ok(())
    }
}

/// Why a batch failed. The checkpoint did not move, so the batch is retried.
#[derive(Debug, thiserror::Error)]
pub enum ProjectorError {
    /// The database failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A stored event could not be decoded: the projector stops on it rather than skip it.
    #[error("event {aggregate_type}/{aggregate_id}#{sequence} cannot be decoded: {source}")]
    Decode {
        /// Aggregate type.
        aggregate_type: String,
        /// Aggregate id.
        aggregate_id: String,
        /// Sequence.
        sequence: i64,
        /// Why.
        source: serde_json::Error,
    },
}

/// Runs one projection against the log.
#[derive(Clone)]
pub struct Projector {
    pool: AnyPool,
    backend: Backend,
    projection: Arc<dyn Projection>,
    batch_size: i64,
    opener: Option<Arc<dyn Opener>>,
}

impl Projector {
    /// A projector reading `batch_size` events per transaction.
    pub fn new(pool: AnyPool, backend: Backend, projection: Arc<dyn Projection>, batch_size: i64) -> Self {
        Self { pool, backend, projection, batch_size, opener: None }
    }

    /// Opens sealed personal fields with `opener` before decoding each event.
    pub fn with_opener(mut self, opener: Arc<dyn Opener>) -> Self {
        self.opener = Some(opener);
        self
    }

    /// The projection's name.
    pub fn name(&self) -> &'static str {
        self.projection.name()
    }

    /// Where the projection got to.
    pub async fn checkpoint(&self) -> Result<Checkpoint, sqlx::Error> {
        let mut conn = self.pool.acquire().await?;
        log::load_checkpoint(&mut conn, self.backend, self.name()).await
    }

    /// Applies the next batch; returns how many events it applied (0: caught up).
    pub async fn run_batch(&self) -> Result<usize, ProjectorError> {
        let name = self.name();
        let mut tx = self.pool.begin().await?;
        // Take the checkpoint row's lock before reading anything: on PostgreSQL it serialises
        // runners of this projection across nodes; on SQLite the first statement being a write
        // takes the write lock up front, so the transaction never has to upgrade a stale read.
        sqlx::query(
            "INSERT INTO projection_checkpoints (projection, last_pos, updated_at) VALUES ($1, 0, 0)
             ON CONFLICT (projection) DO UPDATE SET updated_at = projection_checkpoints.updated_at",
        )
        .bind(name)
        .execute(&mut *tx)
        .await?;
        // The row exists now (upserted above), so this reads the locked checkpoint.
        let from = log::load_checkpoint(&mut tx, self.backend, name).await?;

        let mut events = log::read_after(&mut tx, self.backend, &from, self.batch_size).await?;
        for event in &mut events {
            if let Some(opener) = &self.opener {
                opener.open(&mut tx, event).await?;
            }
            let event = &*event;
            let payload = DomainEventPayload::decode(event).map_err(|source| ProjectorError::Decode {
                aggregate_type: event.aggregate_type.clone(),
                aggregate_id: event.aggregate_id.clone(),
                sequence: event.sequence,
                source,
            })?;
            if let Some(payload) = payload {
                self.projection.apply(&mut tx, event, &payload).await?;
            }
        }
        if let Some(last) = events.last() {
            let update = match self.backend {
                Backend::Postgres => {
                    "UPDATE projection_checkpoints SET last_tx_id = $2::text::xid8, last_pos = $3, updated_at = $4
                      WHERE projection = $1"
                }
                Backend::Sqlite => {
                    "UPDATE projection_checkpoints SET last_tx_id = $2, last_pos = $3, updated_at = $4
                      WHERE projection = $1"
                }
            };
            sqlx::query(update)
                .bind(name)
                .bind(last.checkpoint.tx_id.clone())
                .bind(last.checkpoint.position)
                .bind(last.recorded_at)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(events.len())
    }

    /// Applies batches until the log (below the horizon) is exhausted.
    pub async fn catch_up(&self) -> Result<usize, ProjectorError> {
        let mut total = 0;
        loop {
            let n = self.run_batch().await?;
            if n == 0 {
                return Ok(total);
            }
            total += n;
        }
    }

    /// Empties the projection's tables and resets its checkpoint, in one transaction. The
    /// next batches replay the log from the beginning with the same code.
    pub async fn reset(&self) -> Result<(), sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        for table in self.projection.tables() {
            sqlx::query(&format!("DELETE FROM {table}")).execute(&mut *tx).await?;
        }
        sqlx::query("DELETE FROM projection_checkpoints WHERE projection = $1")
            .bind(self.name())
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }

    /// Rebuilds from position zero and catches up.
    pub async fn rebuild(&self) -> Result<usize, ProjectorError> {
        self.reset().await?;
        self.catch_up().await
    }

    /// Runs until `shutdown` flips to true: applies batches, then waits for a commit signal
    /// or the poll interval (the fallback for commits made by other nodes, and for the
    /// PostgreSQL horizon moving after the wake-up).
    pub async fn run(
        self,
        mut commits: watch::Receiver<u64>,
        mut shutdown: watch::Receiver<bool>,
        poll: Duration,
    ) {
        let mut backoff = Duration::from_millis(100);
        loop {
            if *shutdown.borrow() {
                return;
            }
            match self.run_batch().await {
                Ok(n) if n > 0 => {
                    backoff = Duration::from_millis(100);
                    continue;
                }
                Ok(_) => {
                    tokio::select! {
                        _ = commits.changed() => {}
                        _ = tokio::time::sleep(poll) => {}
                        _ = shutdown.changed() => {}
                    }
                }
                Err(e) => {
                    tracing::error!(projection = self.name(), error = %e, "projection batch failed; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = shutdown.changed() => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
            }
        }
    }
}

/// Epoch milliseconds of a timestamp, the unit every read model stores.
pub fn ms(at: chrono::DateTime<chrono::Utc>) -> i64 {
    at.timestamp_millis()
}

/// The timestamp a read model's epoch milliseconds stand for (`None` for a missing or
/// unrepresentable value): the inverse of [`ms`], used by every reader that shows times.
pub fn time_of(ms: Option<i64>) -> Option<chrono::DateTime<chrono::Utc>> {
    ms.and_then(chrono::DateTime::from_timestamp_millis)
}

/// The name serde gives a unit variant (`round_robin`, `ring_all`...): the one spelling
/// read models store, so the API and the events agree.
pub fn serde_name<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}
