//! Projections: rebuilding from zero equals the live tables; a projector that dies between
//! batches, or in the middle of one, resumes without loss or double counting.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::json;
use sqlx::AnyConnection;
use switchboard_projections::interaction_list::InteractionList;
use switchboard_projections::{DomainEventPayload, Projection, Projector, StoredEvent};

use crate::helpers::*;

/// Every row of the projection's tables as text, in a stable order.
async fn dump(pool: &sqlx::AnyPool) -> Vec<String> {
    let mut out = Vec::new();
    let list: Vec<(String,)> = sqlx::query_as(
        "SELECT interaction_id || '|' || account_id || '|' || COALESCE(queue_id, '') || '|' || COALESCE(agent_id, '')
            || '|' || COALESCE(offered_to, '') || '|' || customer || '|' || status || '|'
            || COALESCE(CAST(last_message_at AS TEXT), '') || '|' || COALESCE(last_message_preview, '') || '|'
            || CAST(unread_count AS TEXT) || '|' || CAST(message_count AS TEXT) || '|' || CAST(opened_at AS TEXT)
            || '|' || COALESCE(CAST(closed_at AS TEXT), '') || '|' || COALESCE(disposition, '')
           FROM interaction_list ORDER BY interaction_id",
    )
    .fetch_all(pool)
    .await
    .expect("dump list");
    out.extend(list.into_iter().map(|r| r.0));
    let messages: Vec<(String,)> = sqlx::query_as(
        "SELECT message_id || '|' || interaction_id || '|' || direction || '|' || body || '|' || status || '|'
            || COALESCE(provider_message_id, '') || '|' || CAST(seq AS TEXT)
           FROM interaction_messages ORDER BY message_id",
    )
    .fetch_all(pool)
    .await
    .expect("dump messages");
    out.extend(messages.into_iter().map(|r| r.0));
    out
}

/// The boards' rows as text, in a stable order.
async fn dump_boards(pool: &sqlx::AnyPool) -> Vec<String> {
    let queries = [
        "SELECT agent_id || '|' || name || '|' || presence || '|' || COALESCE(reason, '') || '|' || CAST(updated_at AS TEXT) FROM agent_status ORDER BY agent_id",
        "SELECT account_id || '|' || agent_id FROM account_members ORDER BY account_id, agent_id",
        "SELECT queue_id || '|' || name || '|' || CAST(accepted_total AS TEXT) || '|' || CAST(rejected_total AS TEXT) || '|' || CAST(timed_out_total AS TEXT) FROM queue_status ORDER BY queue_id",
        "SELECT queue_id || '|' || agent_id || '|' || CAST(available AS TEXT) FROM queue_members ORDER BY queue_id, agent_id",
        "SELECT queue_id || '|' || interaction_id || '|' || COALESCE(offered_to, '') FROM queue_waiting ORDER BY queue_id, interaction_id",
    ];
    let mut out = Vec::new();
    for q in queries {
        let rows: Vec<(String,)> = sqlx::query_as(q).fetch_all(pool).await.expect("dump boards");
        out.extend(rows.into_iter().map(|r| r.0));
    }
    out
}

/// Generates a varied history: several customers, messages, an accepted offer, a reply, a
/// close.
async fn traffic(app: &TestApp) -> Setup {
    let s = app.setup(10).await;
    // One interaction at a time, so exactly one of the customers' interactions is on offer.
    let r = app
        .put(&app.admin_token, &format!("/api/agents/{}/capacity", s.agent_id), json!({"capacity": 1}))
        .await;
    assert_eq!(r.status(), 204);
    app.agent_ready(&s.agent_token).await;
    for i in 0..12 {
        let body = String::from_utf8(fixture("meta_inbound_text.json"))
            .expect("utf8")
            .replace("wamid.FAKEIN0001", &format!("wamid.P{i}"))
            .replace("\"from\": \"15551234567\"", &format!("\"from\": \"1555123{:04}\"", i % 4));
        assert_eq!(app.webhook(&s.account_id, body.as_bytes()).await.status(), 200);
    }
    let list =
        app.eventually("/api/interactions?status=offered", |v| v.as_array().map(Vec::len) == Some(1)).await;
    let id = list[0]["interaction_id"].as_str().expect("id").to_owned();
    assert_eq!(
        app.post(&s.agent_token, &format!("/api/interactions/{id}/accept"), json!({})).await.status(),
        204
    );
    assert_eq!(
        app.post(&s.agent_token, &format!("/api/interactions/{id}/close"), json!({})).await.status(),
        204
    );
    app.settle().await;
    s
}

/// A projection that fails on its `fail_at`-th event: a crash in the middle of a batch.
struct Crashing {
    inner: InteractionList,
    seen: AtomicUsize,
    fail_at: usize,
}

#[async_trait::async_trait]
impl Projection for Crashing {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn tables(&self) -> &'static [&'static str] {
        self.inner.tables()
    }
    async fn apply(
        &self,
        conn: &mut AnyConnection,
        e: &StoredEvent,
        p: &DomainEventPayload,
    ) -> Result<(), sqlx::Error> {
        if self.seen.fetch_add(1, Ordering::SeqCst) + 1 == self.fail_at {
            return Err(sqlx::Error::Protocol("injected crash".into()));
        }
        self.inner.apply(conn, e, p).await
    }
}

async fn rebuild_and_resume(backend: Backend) {
    let app = spawn_app(backend).await;
    traffic(&app).await;
    let pool = app.core.db.any.clone();
    let live = dump(&pool).await;
    let live_boards = dump_boards(&pool).await;
    assert!(live.len() > 10, "the history is not trivial");
    assert!(live_boards.len() > 4);
    let (place, _graph) = app.stop().await; // no live projector from here on

    let db = switchboard::db::connect(&place.url, 4).await.expect("db");
    // Personal fields are sealed in the log: projectors open them with the master key.
    let sealer = switchboard::crypto::Sealer::from_base64(&place.master_key).expect("key");
    let pii =
        Arc::new(switchboard::pii::Pii::new(db.any.clone(), sealer, switchboard::clock::Clock::system()));
    let projector = |p: Arc<dyn Projection>, batch| {
        Projector::new(db.any.clone(), db.backend, p, batch).with_opener(pii.clone())
    };

    // Rebuilding every read model the server runs (one combined projector) equals live.
    projector(switchboard_projections::combined(), 7).rebuild().await.expect("rebuild all");
    assert_eq!(dump(&db.any).await, live, "rebuild equals the live interaction list");
    assert_eq!(dump_boards(&db.any).await, live_boards, "rebuild equals the live boards");

    // Rebuild from zero equals live.
    let rebuilt = projector(Arc::new(InteractionList), 500);
    rebuilt.rebuild().await.expect("rebuild");
    assert_eq!(dump(&db.any).await, live, "rebuild equals the live table");

    // Dies between batches: two batches of 5, then a new projector resumes.
    rebuilt.reset().await.expect("reset");
    let first = projector(Arc::new(InteractionList), 5);
    assert_eq!(first.run_batch().await.expect("batch"), 5);
    assert_eq!(first.run_batch().await.expect("batch"), 5);
    drop(first);
    projector(Arc::new(InteractionList), 5).catch_up().await.expect("resume");
    assert_eq!(dump(&db.any).await, live, "resuming lost and doubled nothing");

    // Dies in the middle of a batch: the batch rolls back with its checkpoint.
    rebuilt.reset().await.expect("reset");
    let ok = projector(Arc::new(InteractionList), 5);
    assert_eq!(ok.run_batch().await.expect("batch"), 5);
    let checkpoint = ok.checkpoint().await.expect("checkpoint");
    let crashing =
        projector(Arc::new(Crashing { inner: InteractionList, seen: AtomicUsize::new(0), fail_at: 3 }), 5);
    assert!(crashing.run_batch().await.is_err());
    assert_eq!(crashing.checkpoint().await.expect("checkpoint"), checkpoint, "the checkpoint did not move");
    projector(Arc::new(InteractionList), 5).catch_up().await.expect("resume");
    assert_eq!(dump(&db.any).await, live, "the crashed batch was applied exactly once");
}

#[actix_web::test]
async fn rebuild_equals_live_and_a_dead_projector_resumes_exactly_sqlite() {
    rebuild_and_resume(Backend::Sqlite).await;
}

#[actix_web::test]
async fn rebuild_equals_live_and_a_dead_projector_resumes_exactly_postgres() {
    rebuild_and_resume(Backend::Postgres).await;
}
