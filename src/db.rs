//! Database wiring: which event store (SQLite by default, PostgreSQL for a `postgres://`
//! URL), its pools, and the migrations applied at start-up.
//!
//! The event store uses the backend's own pool (postgres-es and sqlite-es require it); read
//! models, timers, outbox and tokens use an `AnyPool` on the same database, so their SQL is
//! written once for both backends.
//!
//! Appends go through this module on both backends, and every appended event is chained
//! (`prev_hash`, `hash`: see `crate::audit::chain`). On PostgreSQL a trigger computes the hash
//! inside the one-statement append; SQLite has no SHA-256 in SQL, so `sqlite_append` reads the
//! predecessor's hash and computes the chain in Rust, in a `BEGIN IMMEDIATE` transaction (the
//! write lock is taken before the read, so no concurrent append can slip in between).

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use cqrs_es::Aggregate;
use cqrs_es::persist::{
    PersistedEventRepository, PersistenceError, ReplayStream, SerializedEvent, SerializedSnapshot,
};
use postgres_es::PostgresEventRepository;
use serde_json::Value;
use sqlite_es::SqliteEventRepository;
use sqlx::any::AnyPoolOptions;
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{AnyPool, PgPool, SqlitePool};
pub use switchboard_projections::Backend;

/// The event repository, whichever backend holds it.
#[derive(Clone)]
pub enum EventRepository {
    /// postgres-es (its pool kept for the single-statement append below).
    Postgres(std::sync::Arc<PostgresEventRepository>, PgPool),
    /// sqlite-es for reads (its pool kept for the chained append below).
    Sqlite(std::sync::Arc<SqliteEventRepository>, SqlitePool),
}

macro_rules! delegate {
    ($self:ident, $r:ident => $call:expr) => {
        match $self {
            EventRepository::Postgres($r, _) => $call.await,
            EventRepository::Sqlite($r, _) => $call.await,
        }
    };
}

/// Appends events in one autocommit `INSERT`: atomic like postgres-es's
/// `BEGIN; INSERT...; COMMIT` but one round trip instead of 2 + n. A unique violation (the
/// sequence key, or the provider-message index) is an optimistic-lock error, as in postgres-es.
async fn pg_append<A: Aggregate>(pool: &PgPool, events: &[SerializedEvent]) -> Result<(), PersistenceError> {
    if events.is_empty() {
        return Ok(());
    }
    let mut insert = sqlx::QueryBuilder::<sqlx::Postgres>::new(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) ",
    );
    insert.push_values(events, |mut row, e| {
        row.push_bind(A::TYPE)
            .push_bind(e.aggregate_id.as_str())
            .push_bind(e.sequence as i64)
            .push_bind(e.event_type.as_str())
            .push_bind(e.event_version.as_str())
            .push_bind(&e.payload)
            .push_bind(&e.metadata);
    });
    match insert.build().execute(pool).await {
        Ok(_) => Ok(()),
        Err(sqlx::Error::Database(db)) if db.code().as_deref() == Some("23505") => {
            // Keep the index name in view: the actor tells a provider-message duplicate from
            // a sequence conflict by reloading, and logs carry the constraint.
            tracing::debug!(constraint = ?db.constraint(), "append refused by a unique index");
            Err(PersistenceError::OptimisticLockError)
        }
        Err(e @ (sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::PoolTimedOut)) => {
            Err(PersistenceError::ConnectionError(Box::new(e)))
        }
        Err(e) => Err(PersistenceError::UnknownError(Box::new(e))),
    }
}

/// Appends events with their chain hashes in one `BEGIN IMMEDIATE` transaction. Errors map
/// as sqlite-es maps them: a primary-key violation (code 1555: the sequence is taken) is an
/// optimistic-lock error; anything else, including the provider-message index, is an
/// unknown error whose text names the index (the actor recognises `provider_key`).
async fn sqlite_append<A: Aggregate>(
    pool: &SqlitePool,
    events: &[SerializedEvent],
) -> Result<(), PersistenceError> {
    if events.is_empty() {
        return Ok(());
    }
    let map = |e: sqlx::Error| match &e {
        sqlx::Error::Database(db) if db.code().as_deref() == Some("1555") => {
            PersistenceError::OptimisticLockError
        }
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::PoolTimedOut => {
            PersistenceError::ConnectionError(Box::new(e))
        }
        _ => PersistenceError::UnknownError(Box::new(e)),
    };
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(map)?;
    // Consecutive events of one aggregate chain in memory; the first reads its predecessor.
    let mut prev: Option<(String, usize, String)> = None;
    for e in events {
        let prev_hash = match &prev {
            Some((id, seq, hash)) if *id == e.aggregate_id && *seq + 1 == e.sequence => hash.clone(),
            _ => {
                let stored: Option<(Option<String>,)> = sqlx::query_as(
                    "SELECT hash FROM events WHERE aggregate_type = ? AND aggregate_id = ? AND sequence = ?",
                )
                .bind(A::TYPE)
                .bind(e.aggregate_id.as_str())
                .bind(e.sequence as i64 - 1)
                .fetch_optional(&mut *tx)
                .await
                .map_err(map)?;
                // No predecessor (the first event, or one removed by tampering): zeros, as the
                // PostgreSQL trigger does; the verifier reports a gap.
                stored.and_then(|(h,)| h).unwrap_or_else(|| crate::audit::chain::GENESIS.to_owned())
            }
        };
        let payload =
            serde_json::to_string(&e.payload).map_err(|x| PersistenceError::UnknownError(Box::new(x)))?;
        let metadata =
            serde_json::to_string(&e.metadata).map_err(|x| PersistenceError::UnknownError(Box::new(x)))?;
        let hash = crate::audit::chain::link_hash(
            &prev_hash,
            A::TYPE,
            &e.aggregate_id,
            e.sequence as i64,
            &e.event_type,
            &e.event_version,
            &payload,
            &metadata,
        );
        sqlx::query(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata,
                                 prev_hash, hash)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(A::TYPE)
        .bind(e.aggregate_id.as_str())
        .bind(e.sequence as i64)
        .bind(e.event_type.as_str())
        .bind(e.event_version.as_str())
        .bind(&payload)
        .bind(&metadata)
        .bind(&prev_hash)
        .bind(&hash)
        .execute(&mut *tx)
        .await
        .map_err(map)?;
        prev = Some((e.aggregate_id.clone(), e.sequence, hash));
    }
    tx.commit().await.map_err(map)
}

/// Chains SQLite rows appended before the chain existed, once (`chain_backfill.done`): a
/// later row without a hash is tampering, never legacy, so this never runs again. Rows are
/// read one aggregate at a time.
async fn sqlite_backfill(pool: &SqlitePool) -> anyhow::Result<()> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let (done,): (i64,) =
        sqlx::query_as("SELECT done FROM chain_backfill WHERE id = 1").fetch_one(&mut *tx).await?;
    if done != 0 {
        return Ok(());
    }
    let aggregates: Vec<(String, String)> =
        sqlx::query_as("SELECT DISTINCT aggregate_type, aggregate_id FROM events ORDER BY 1, 2")
            .fetch_all(&mut *tx)
            .await?;
    for (aggregate_type, aggregate_id) in aggregates {
        let rows: Vec<(i64, String, String, String, String)> = sqlx::query_as(
            "SELECT sequence, event_type, event_version, payload, metadata FROM events
              WHERE aggregate_type = ? AND aggregate_id = ? ORDER BY sequence",
        )
        .bind(&aggregate_type)
        .bind(&aggregate_id)
        .fetch_all(&mut *tx)
        .await?;
        let mut prev = crate::audit::chain::GENESIS.to_owned();
        for (sequence, event_type, event_version, payload, metadata) in rows {
            let hash = crate::audit::chain::link_hash(
                &prev,
                &aggregate_type,
                &aggregate_id,
                sequence,
                &event_type,
                &event_version,
                &payload,
                &metadata,
            );
            sqlx::query(
                "UPDATE events SET prev_hash = ?, hash = ? WHERE aggregate_type = ? AND aggregate_id = ? AND sequence = ?",
            )
            .bind(&prev)
            .bind(&hash)
            .bind(&aggregate_type)
            .bind(&aggregate_id)
            .bind(sequence)
            .execute(&mut *tx)
            .await?;
            prev = hash;
        }
    }
    sqlx::query("UPDATE chain_backfill SET done = 1 WHERE id = 1").execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(())
}

impl PersistedEventRepository for EventRepository {
    async fn get_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        delegate!(self, r => r.get_events::<A>(aggregate_id))
    }

    async fn get_last_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
        last_sequence: usize,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        delegate!(self, r => r.get_last_events::<A>(aggregate_id, last_sequence))
    }

    async fn get_snapshot<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Option<SerializedSnapshot>, PersistenceError> {
        delegate!(self, r => r.get_snapshot::<A>(aggregate_id))
    }

    async fn persist<A: Aggregate>(
        &self,
        events: &[SerializedEvent],
        snapshot_update: Option<(String, Value, usize)>,
    ) -> Result<(), PersistenceError> {
        match self {
            // Event-store mode never sends a snapshot update.
            EventRepository::Postgres(_, pool) if snapshot_update.is_none() => {
                pg_append::<A>(pool, events).await
            }
            EventRepository::Sqlite(_, pool) if snapshot_update.is_none() => {
                sqlite_append::<A>(pool, events).await
            }
            _ => delegate!(self, r => r.persist::<A>(events, snapshot_update.clone())),
        }
    }

    async fn stream_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<ReplayStream, PersistenceError> {
        delegate!(self, r => r.stream_events::<A>(aggregate_id))
    }

    async fn stream_all_events<A: Aggregate>(&self) -> Result<ReplayStream, PersistenceError> {
        delegate!(self, r => r.stream_all_events::<A>())
    }
}

/// The connected database.
#[derive(Clone)]
pub struct Database {
    /// Which backend.
    pub backend: Backend,
    /// Pool for read models, timers, outbox and tokens.
    pub any: AnyPool,
    /// The event repository.
    pub events: EventRepository,
}

/// Connects, creating the SQLite file if needed, and applies the migrations.
pub async fn connect(url: &str, max_connections: u32) -> anyhow::Result<Database> {
    sqlx::any::install_default_drivers();
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let pg: PgPool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await
            .context("connecting to PostgreSQL")?;
        sqlx::migrate!("./migrations/postgres").run(&pg).await.context("migrating PostgreSQL")?;
        let any = AnyPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await
            .context("connecting to PostgreSQL (read models)")?;
        Ok(Database {
            backend: Backend::Postgres,
            any,
            events: EventRepository::Postgres(
                std::sync::Arc::new(PostgresEventRepository::new(pg.clone())),
                pg,
            ),
        })
    } else if url.starts_with("sqlite:") {
        let options = SqliteConnectOptions::from_str(url)
            .context("parsing the SQLite URL")?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a committed interaction survives a power loss, not only a crash.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10));
        let sqlite: SqlitePool = SqlitePoolOptions::new()
            .max_connections(max_connections)
            .connect_with(options.clone())
            .await
            .context("opening the SQLite database")?;
        sqlx::migrate!("./migrations/sqlite").run(&sqlite).await.context("migrating SQLite")?;
        sqlite_backfill(&sqlite).await.context("chaining legacy events")?;
        let any = AnyPoolOptions::new()
            .max_connections(max_connections)
            .after_connect(|conn, _| {
                Box::pin(async move {
                    // The Any driver opens SQLite with defaults; match the event store's settings.
                    sqlx::query("PRAGMA busy_timeout = 10000").execute(&mut *conn).await?;
                    sqlx::query("PRAGMA synchronous = FULL").execute(&mut *conn).await?;
                    Ok(())
                })
            })
            .connect(url)
            .await
            .context("opening the SQLite database (read models)")?;
        Ok(Database {
            backend: Backend::Sqlite,
            any,
            events: EventRepository::Sqlite(
                std::sync::Arc::new(SqliteEventRepository::new(sqlite.clone())),
                sqlite,
            ),
        })
    } else {
        anyhow::bail!("unsupported database URL `{url}`: use sqlite://PATH or postgres://...")
    }
}
