//! Database wiring: which event store (SQLite by default, PostgreSQL for a `postgres://`
//! URL), its pools, and the migrations applied at start-up.
//!
//! The event store uses the backend's own pool (postgres-es and sqlite-es require it); read
//! models, timers, outbox and tokens use an `AnyPool` on the same database, so their SQL is
//! written once for both backends.

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
    /// sqlite-es.
    Sqlite(std::sync::Arc<SqliteEventRepository>),
}

macro_rules! delegate {
    ($self:ident, $r:ident => $call:expr) => {
        match $self {
            EventRepository::Postgres($r, _) => $call.await,
            EventRepository::Sqlite($r) => $call.await,
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
            events: EventRepository::Sqlite(std::sync::Arc::new(SqliteEventRepository::new(sqlite))),
        })
    } else {
        anyhow::bail!("unsupported database URL `{url}`: use sqlite://PATH or postgres://...")
    }
}
