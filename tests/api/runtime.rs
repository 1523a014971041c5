//! The actor runtime and the global log: serialised commands per aggregate, two "nodes"
//! writing one aggregate, passivation, and PostgreSQL's safe horizon.
//!
//! The aggregate exercised is an Agent joining fresh queues: every `JoinQueue` with a new
//! queue is exactly one event, so counts of events and of the agent's queues must agree.

use std::time::Duration;

use sqlx::Connection;
use switchboard::clock::Clock;
use switchboard::core::Core;
use switchboard::crypto::Sealer;
use switchboard_domain::agent::{AgentCommand, AgentEvent};
use switchboard_domain::queue::QueueCommand;
use switchboard_domain::routing::Strategy;
use switchboard_domain::{AgentId, DisplayName, QueueId};
use switchboard_projections::{Backend as LogBackend, Checkpoint, log};

use crate::helpers::*;

async fn core_on(place: &DataPlace, idle: Duration) -> Core {
    let db = switchboard::db::connect(&place.url, 8).await.expect("db");
    Core::new(db, Clock::system(), Sealer::from_base64(&place.master_key).expect("key"), 2, idle)
}

async fn agent_sequences(core: &Core, agent: &str) -> Vec<i64> {
    let rows: Vec<(i64,)> = sqlx::query_as(
        "SELECT sequence FROM events WHERE aggregate_type = 'Agent' AND aggregate_id = $1 ORDER BY sequence",
    )
    .bind(agent)
    .fetch_all(&core.db.any)
    .await
    .expect("events");
    rows.into_iter().map(|r| r.0).collect()
}

fn register(at: chrono::DateTime<chrono::Utc>) -> AgentCommand {
    AgentCommand::Register { name: DisplayName::parse("A").expect("name"), at }
}

/// Joining a queue the agent is not in yet: always exactly one event.
fn add(at: chrono::DateTime<chrono::Utc>) -> AgentCommand {
    AgentCommand::JoinQueue { queue_id: QueueId::new(), at }
}

fn create_queue(at: chrono::DateTime<chrono::Utc>) -> QueueCommand {
    QueueCommand::Create {
        name: DisplayName::parse("Q").expect("name"),
        offer_timeout_secs: 10,
        strategy: Strategy::default(),
        weight: 5,
        at,
    }
}

async fn serialised_and_two_nodes(backend: Backend) {
    let place = fresh_place(backend).await;
    let node_a = core_on(&place, Duration::from_secs(60)).await;
    let agent = AgentId::new().to_string();
    let now = chrono::Utc::now();
    node_a.agents.execute(&agent, register(now), Default::default()).await.expect("register");

    // 50 concurrent commands through one actor: no conflicts, contiguous sequences.
    let commands = (0..50).map(|_| node_a.agents.execute(&agent, add(now), Default::default()));
    let results = futures_util::future::join_all(commands).await;
    assert!(results.iter().all(Result::is_ok), "{:?}", results.iter().find(|r| r.is_err()));
    assert_eq!(agent_sequences(&node_a, &agent).await, (1..=51).collect::<Vec<_>>());

    // A second node appends behind node A's back; A's cached state is stale, its next command
    // conflicts, reloads and succeeds.
    let node_b = core_on(&place, Duration::from_secs(60)).await;
    node_b.agents.execute(&agent, add(now), Default::default()).await.expect("node b");
    node_a.agents.execute(&agent, add(now), Default::default()).await.expect("node a retries after reload");
    assert_eq!(agent_sequences(&node_a, &agent).await, (1..=53).collect::<Vec<_>>());
    let a = node_a.agents.state(&agent).await.expect("state");
    let b = node_b.agents.state(&agent).await.expect("state");
    assert_eq!(a.state.queues.len(), 52);
    assert_eq!(b.sequence, 52, "node B's cache is stale until it reloads");

    // Concurrent writers on both nodes: every success is exactly one event.
    let from_a = (0..20).map(|_| node_a.agents.execute(&agent, add(now), Default::default()));
    let from_b = (0..20).map(|_| node_b.agents.execute(&agent, add(now), Default::default()));
    let (ra, rb) = futures_util::future::join(
        futures_util::future::join_all(from_a),
        futures_util::future::join_all(from_b),
    )
    .await;
    let successes = ra.iter().chain(rb.iter()).filter(|r| r.is_ok()).count() as i64;
    let sequences = agent_sequences(&node_a, &agent).await;
    assert_eq!(sequences.len() as i64, 53 + successes);
    assert_eq!(sequences, (1..=sequences.len() as i64).collect::<Vec<_>>());
    // Replay equals what each node holds after reloading.
    let replayed = core_on(&place, Duration::from_secs(60)).await.agents.state(&agent).await.expect("state");
    assert_eq!(replayed.state.queues.len() as i64, 52 + successes);
    node_a.stop();
    node_b.stop();
}

#[actix_web::test]
async fn one_actor_serialises_commands_and_two_nodes_stay_consistent_sqlite() {
    serialised_and_two_nodes(Backend::Sqlite).await;
}

#[actix_web::test]
async fn one_actor_serialises_commands_and_two_nodes_stay_consistent_postgres() {
    serialised_and_two_nodes(Backend::Postgres).await;
}

#[actix_web::test]
async fn idle_actors_stop_and_come_back_by_replay() {
    let place = fresh_place(Backend::Sqlite).await;
    let core = core_on(&place, Duration::from_millis(200)).await;
    let agent = AgentId::new().to_string();
    let now = chrono::Utc::now();
    core.agents.execute(&agent, register(now), Default::default()).await.expect("register");
    core.agents.execute(&agent, add(now), Default::default()).await.expect("add");
    assert_eq!(core.agents.live(), 1);
    for _ in 0..100 {
        if core.agents.live() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(core.agents.live(), 0, "the idle actor stopped");
    let back = core.agents.state(&agent).await.expect("state");
    assert_eq!((back.sequence, back.state.queues.len()), (2, 1), "replayed to the same state");
    let events = core.agents.execute(&agent, add(now), Default::default()).await.expect("add");
    assert_eq!(events[0].sequence, 3);
    assert!(matches!(events[0].payload, AgentEvent::AgentJoinedQueue { .. }));
    core.stop();
}

#[actix_web::test]
async fn a_rejected_command_appends_nothing_and_the_next_one_sees_the_stored_state() {
    let place = fresh_place(Backend::Sqlite).await;
    let core = core_on(&place, Duration::from_secs(60)).await;
    let agent = AgentId::new().to_string();
    let now = chrono::Utc::now();
    core.agents.execute(&agent, register(now), Default::default()).await.expect("register");
    let refused = core.agents.execute(&agent, register(now), Default::default()).await;
    assert!(matches!(refused, Err(switchboard::runtime::CommandError::Rejected(_))));
    let events = core.agents.execute(&agent, add(now), Default::default()).await.expect("add");
    assert_eq!(events[0].sequence, 2);
    core.stop();
}

#[actix_web::test]
async fn the_log_never_skips_an_event_committed_late_with_a_smaller_position() {
    let place = fresh_place(Backend::Postgres).await;
    let db = switchboard::db::connect(&place.url, 4).await.expect("db");
    let insert = "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
                  VALUES ('Probe', $1, 1, 'Probed', '1.0', '{}', '{}')";
    // A takes a position first but commits last.
    let mut a = sqlx::PgConnection::connect(&place.url).await.expect("conn a");
    let mut tx_a = a.begin().await.expect("begin a");
    sqlx::query(insert).bind("A").execute(&mut *tx_a).await.expect("insert a");
    let mut b = sqlx::PgConnection::connect(&place.url).await.expect("conn b");
    sqlx::query(insert).bind("B").execute(&mut b).await.expect("insert b");

    let mut conn = db.any.acquire().await.expect("conn");
    let seen =
        log::read_after(&mut conn, LogBackend::Postgres, &Checkpoint::zero(), 100).await.expect("read");
    assert!(seen.is_empty(), "B is held back while A is in flight: {seen:?}");

    tx_a.commit().await.expect("commit a");
    let seen = read_when(&mut conn, 2).await;
    let ids: Vec<&str> = seen.iter().map(|e| e.aggregate_id.as_str()).collect();
    assert_eq!(ids, ["A", "B"], "both, in (tx_id, position) order");
    let after_a =
        log::read_after(&mut conn, LogBackend::Postgres, &seen[0].checkpoint, 100).await.expect("read");
    assert_eq!(after_a.len(), 1);
    assert_eq!(after_a[0].aggregate_id, "B");
}

#[actix_web::test]
async fn a_rolled_back_write_does_not_stall_the_log() {
    let place = fresh_place(Backend::Postgres).await;
    let db = switchboard::db::connect(&place.url, 4).await.expect("db");
    let insert = "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
                  VALUES ('Probe', $1, 1, 'Probed', '1.0', '{}', '{}')";
    let mut a = sqlx::PgConnection::connect(&place.url).await.expect("conn");
    let mut tx = a.begin().await.expect("begin");
    sqlx::query(insert).bind("rolled-back").execute(&mut *tx).await.expect("insert");
    tx.rollback().await.expect("rollback");
    sqlx::query(insert).bind("kept").execute(&mut a).await.expect("insert");
    let mut conn = db.any.acquire().await.expect("conn");
    let seen = read_when(&mut conn, 1).await;
    assert_eq!(seen.iter().map(|e| e.aggregate_id.as_str()).collect::<Vec<_>>(), ["kept"]);
}

/// The log from the start once it shows at least `n` events (bounded wait). The safe horizon
/// is cluster-wide: a write transaction of another test, in another database of the same
/// PostgreSQL server, holds it back for a moment. What these tests assert is what is read
/// once the horizon passes (nothing skipped, order kept), not how soon.
async fn read_when(conn: &mut sqlx::AnyConnection, n: usize) -> Vec<switchboard_projections::StoredEvent> {
    let mut seen = Vec::new();
    for _ in 0..200 {
        seen = log::read_after(conn, LogBackend::Postgres, &Checkpoint::zero(), 100).await.expect("read");
        if seen.len() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    seen
}

#[actix_web::test]
async fn only_one_router_runs_at_a_time_on_postgres() {
    let place = fresh_place(Backend::Postgres).await;
    let node = core_on(&place, Duration::from_secs(60)).await;
    // Another node holds the router lock: this node's router does nothing.
    let mut other = sqlx::PgConnection::connect(&place.url).await.expect("conn");
    let mut tx = other.begin().await.expect("begin");
    let (locked,): (bool,) = sqlx::query_as("SELECT pg_try_advisory_xact_lock($1)")
        .bind(0x5357_4252_4f55_5445_i64)
        .fetch_one(&mut *tx)
        .await
        .expect("lock");
    assert!(locked);
    let queue = QueueId::new().to_string();
    node.queues.execute(&queue, create_queue(chrono::Utc::now()), Default::default()).await.expect("create");
    assert_eq!(switchboard::workers::router::run_batch(&node).await.expect("batch"), 0);
    tx.rollback().await.expect("release");
    // Leading now; the queue's event shows once the cluster-wide horizon passes it.
    let mut read = 0;
    for _ in 0..200 {
        read = switchboard::workers::router::run_batch(&node).await.expect("batch");
        if read > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(read, 1);
    node.stop();
}

#[actix_web::test]
async fn sqlite_positions_survive_vacuum() {
    let place = fresh_place(Backend::Sqlite).await;
    let core = core_on(&place, Duration::from_secs(60)).await;
    let now = chrono::Utc::now();
    for _ in 0..5 {
        let agent = AgentId::new().to_string();
        core.agents.execute(&agent, register(now), Default::default()).await.expect("register");
        core.agents.execute(&agent, add(now), Default::default()).await.expect("add");
    }
    let read = |core: Core| async move {
        let mut conn = core.db.any.acquire().await.expect("conn");
        log::read_after(&mut conn, LogBackend::Sqlite, &Checkpoint::zero(), 100)
            .await
            .expect("read")
            .into_iter()
            .map(|e| (e.checkpoint.position, e.aggregate_id, e.sequence))
            .collect::<Vec<_>>()
    };
    let before = read(core.clone()).await;
    sqlx::query("VACUUM").execute(&core.db.any).await.expect("vacuum");
    assert_eq!(read(core.clone()).await, before);
    assert_eq!(before.len(), 10);
    core.stop();
}
