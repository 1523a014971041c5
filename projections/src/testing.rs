//! Test support: a migrated database and a log that feeds events to projections the way the
//! runtime does (one connection, in order, numbered).
//!
//! The database is an in-memory SQLite one; with `SWITCHBOARD_PROJECTIONS_PG_URL` set (a
//! server URL without database, e.g. `postgres://postgres@127.0.0.1:5432`) every test runs
//! on a fresh PostgreSQL database instead, to check the SQL on the other backend.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use sqlx::AnyPool;
use sqlx::any::AnyPoolOptions;
use switchboard_domain::account::AccountEvent;
use switchboard_domain::agent::AgentEvent;
use switchboard_domain::interaction::InteractionEvent;
use switchboard_domain::queue::QueueEvent;

use switchboard_domain::routing::{OfferExplanation, Target, TargetReason};
use switchboard_domain::{AccountId, AgentId, MessageId, MessageText, PhoneNumber};

use crate::log::Checkpoint;
use crate::runtime::Projection;
use crate::{DomainEventPayload, StoredEvent};

/// A fixed instant plus `secs` seconds.
pub fn t(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_767_607_200 + secs, 0).single().expect("valid instant")
}

/// The customer.
pub fn customer() -> PhoneNumber {
    PhoneNumber::parse("+15551234567").expect("phone")
}

/// An offer to `agent_id` made at 0 s for `target`.
pub fn offer(agent_id: AgentId, attempt: u32, target: Target, expires_at: DateTime<Utc>) -> InteractionEvent {
    InteractionEvent::OfferMade {
        agent_id,
        attempt,
        target_seq: 1,
        expires_at,
        explanation: OfferExplanation::new(target, None, vec![], String::new()),
        at: t(0),
    }
}

/// A routing plan step's target.
pub fn target_set(
    target: Target,
    seq: u32,
    until: Option<DateTime<Utc>>,
    at: DateTime<Utc>,
) -> InteractionEvent {
    InteractionEvent::RoutingTargetSet { target, reason: TargetReason::Plan { step: 0 }, seq, until, at }
}

/// An agent's text.
pub fn agent_text(agent_id: AgentId, at: DateTime<Utc>) -> InteractionEvent {
    InteractionEvent::AgentMessageSent {
        account_id: AccountId::new(),
        message_id: MessageId::new(),
        agent_id,
        to: customer(),
        text: MessageText::parse("hello").expect("text"),
        at,
    }
}

/// A customer's text.
pub fn customer_text(body: &str, at: DateTime<Utc>) -> InteractionEvent {
    InteractionEvent::CustomerMessageReceived {
        account_id: AccountId::new(),
        message_id: MessageId::new(),
        provider_message_id: format!("wamid.{}", MessageId::new()),
        content: switchboard_domain::interaction::InboundContent::Text { body: body.into() },
        sent_at: at,
        at,
    }
}

/// A migrated in-memory database and the events fed to it so far.
pub struct Db {
    _pool: AnyPool,
    conn: sqlx::pool::PoolConnection<sqlx::Any>,
    projections: Vec<Arc<dyn Projection>>,
    sequences: HashMap<String, i64>,
    position: i64,
    log: Vec<(StoredEvent, DomainEventPayload)>,
    postgres: bool,
}

impl Db {
    /// A fresh database that feeds every event to `projections`.
    pub async fn new(projections: Vec<Arc<dyn Projection>>) -> Self {
        sqlx::any::install_default_drivers();
        let pg = std::env::var("SWITCHBOARD_PROJECTIONS_PG_URL").ok();
        let pool = match &pg {
            None => {
                // One connection: every connection to `sqlite::memory:` is its own database.
                let pool = AnyPoolOptions::new()
                    .max_connections(1)
                    .connect("sqlite::memory:")
                    .await
                    .expect("open sqlite");
                sqlx::migrate!("../migrations/sqlite").run(&pool).await.expect("migrate");
                pool
            }
            Some(base) => {
                let name = format!("sb_projections_test_{}", uuid::Uuid::new_v4().simple());
                let admin = AnyPoolOptions::new()
                    .max_connections(1)
                    .connect(&format!("{base}/postgres"))
                    .await
                    .expect("PostgreSQL server");
                sqlx::query(&format!("CREATE DATABASE {name}")).execute(&admin).await.expect("create db");
                let pool = AnyPoolOptions::new()
                    .max_connections(1)
                    .connect(&format!("{base}/{name}"))
                    .await
                    .expect("open postgres");
                sqlx::migrate!("../migrations/postgres").run(&pool).await.expect("migrate");
                pool
            }
        };
        let conn = pool.acquire().await.expect("connection");
        Self {
            _pool: pool,
            conn,
            projections,
            sequences: HashMap::new(),
            position: 0,
            log: Vec::new(),
            postgres: pg.is_some(),
        }
    }

    async fn feed(&mut self, aggregate_type: &str, id: &str, payload: DomainEventPayload) {
        let seq = self.sequences.entry(id.to_owned()).or_insert(0);
        *seq += 1;
        self.position += 1;
        let event = StoredEvent {
            checkpoint: Checkpoint { tx_id: "0".into(), position: self.position },
            aggregate_type: aggregate_type.into(),
            aggregate_id: id.into(),
            sequence: *seq,
            event_type: String::new(),
            payload: String::new(),
            metadata: "{}".into(),
            recorded_at: 0,
        };
        for p in &self.projections {
            p.apply(&mut self.conn, &event, &payload).await.expect("apply");
        }
        self.log.push((event, payload));
    }

    /// Feeds an interaction event.
    pub async fn interaction(&mut self, id: &str, e: InteractionEvent) {
        self.feed("Interaction", id, DomainEventPayload::Interaction(e)).await;
    }

    /// Feeds an agent event.
    pub async fn agent(&mut self, id: &str, e: AgentEvent) {
        self.feed("Agent", id, DomainEventPayload::Agent(e)).await;
    }

    /// Feeds a queue event.
    pub async fn queue(&mut self, id: &str, e: QueueEvent) {
        self.feed("Queue", id, DomainEventPayload::Queue(e)).await;
    }

    /// Feeds an account event.
    pub async fn account(&mut self, id: &str, e: AccountEvent) {
        self.feed("Account", id, DomainEventPayload::Account(e)).await;
    }

    /// Empties the projections' tables and replays everything fed so far.
    pub async fn rebuild(&mut self) {
        for p in &self.projections {
            for table in p.tables() {
                sqlx::query(&format!("DELETE FROM {table}")).execute(&mut *self.conn).await.expect("clear");
            }
        }
        for (event, payload) in &self.log {
            for p in &self.projections {
                p.apply(&mut self.conn, event, payload).await.expect("apply");
            }
        }
    }

    /// Every row of `sql` (one text column), for comparisons.
    pub async fn rows(&mut self, sql: &str) -> Vec<String> {
        let rows: Vec<(String,)> = sqlx::query_as(sql).fetch_all(&mut *self.conn).await.expect("query");
        rows.into_iter().map(|r| r.0).collect()
    }

    /// Dumps the named tables, every column as text, in a stable order.
    pub async fn dump(&mut self, tables: &[&str]) -> Vec<String> {
        let mut out = Vec::new();
        for table in tables {
            let columns = if self.postgres {
                self.rows(&format!(
                    "SELECT CAST(column_name AS TEXT) FROM information_schema.columns
                      WHERE table_schema = 'public' AND table_name = '{table}' ORDER BY ordinal_position"
                ))
                .await
            } else {
                self.rows(&format!("SELECT name FROM pragma_table_info('{table}') ORDER BY cid")).await
            };
            let row = columns
                .iter()
                .map(|c| format!("COALESCE(CAST({c} AS TEXT), '-')"))
                .collect::<Vec<_>>()
                .join(" || '|' || ");
            let rows = self.rows(&format!("SELECT '{table}|' || {row} FROM {table} ORDER BY 1")).await;
            out.extend(rows);
        }
        out
    }
}
