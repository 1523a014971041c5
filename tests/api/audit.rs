//! Audit (issue 6, ADR 0018): the hash chain and its verifier against real tampering (an
//! edited payload, a deleted middle event, two events swapped), signed checkpoints against
//! truncation and forgery, the history of every aggregate kind with who caused each event,
//! the state of an interaction at a sequence, a position and a time, and the CLI through the
//! real binary (verify, checkpoint, checkpoint-verify, rebuild-projections --check). Every
//! scenario runs on SQLite and on PostgreSQL.

use std::process::Command;

use serde_json::{Value, json};

use crate::helpers::*;

/// A customer writes, the agent accepts and answers, the customer writes again, the agent
/// closes: events on the interaction, the agent, the queue and the account.
async fn conversation(app: &TestApp) -> (Setup, String) {
    let s = app.setup(30).await;
    accept_meta_sends(app).await;
    app.agent_ready(&s.agent_token).await;
    let mut ws = app.connect_ws(&s.agent_token).await;
    let r = app.webhook(&s.account_id, &meta_text("wamid.AUDIT1", "15551234567", "Jane", "hello")).await;
    assert_eq!(r.status(), 200);
    let offer = ws.next_of("offer").await;
    let id = offer["interaction_id"].as_str().expect("id").to_owned();
    assert_eq!(
        app.post(&s.agent_token, &format!("/api/interactions/{id}/accept"), json!({})).await.status(),
        204
    );
    let r = app
        .post(&s.agent_token, &format!("/api/interactions/{id}/messages"), json!({"text": "Hi Jane"}))
        .await;
    assert_eq!(r.status(), 202);
    let r = app.webhook(&s.account_id, &meta_text("wamid.AUDIT2", "15551234567", "Jane", "thanks")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        app.post(&s.agent_token, &format!("/api/interactions/{id}/close"), json!({})).await.status(),
        204
    );
    app.settle().await;
    (s, id)
}

fn is_pg(app: &TestApp) -> bool {
    app.place.url.starts_with("postgres")
}

/// Raw SQL on the store, as an attacker with database access would.
async fn exec(app: &TestApp, sql: &str) {
    sqlx::query(sql).execute(&app.core.db.any).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// Replaces `from` by `to` in one stored payload, keeping its hash.
async fn edit_payload(app: &TestApp, aggregate_id: &str, sequence: i64, from: &str, to: &str) {
    let (payload,): (String,) = sqlx::query_as(if is_pg(app) {
        "SELECT payload::text FROM events WHERE aggregate_id = $1 AND sequence = $2"
    } else {
        "SELECT payload FROM events WHERE aggregate_id = $1 AND sequence = $2"
    })
    .bind(aggregate_id)
    .bind(sequence)
    .fetch_one(&app.core.db.any)
    .await
    .expect("payload");
    assert!(payload.contains(from), "{payload} contains {from}");
    sqlx::query(if is_pg(app) {
        "UPDATE events SET payload = CAST($1 AS json) WHERE aggregate_id = $2 AND sequence = $3"
    } else {
        "UPDATE events SET payload = $1 WHERE aggregate_id = $2 AND sequence = $3"
    })
    .bind(payload.replace(from, to))
    .bind(aggregate_id)
    .bind(sequence)
    .execute(&app.core.db.any)
    .await
    .expect("update");
}

async fn count_of(app: &TestApp, aggregate_id: &str) -> i64 {
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM events WHERE aggregate_id = $1")
        .bind(aggregate_id)
        .fetch_one(&app.core.db.any)
        .await
        .expect("count");
    n
}

fn breaks(report: &Value) -> Vec<(String, i64, String)> {
    report["breaks"]
        .as_array()
        .expect("breaks")
        .iter()
        .map(|b| {
            (
                b["aggregate_id"].as_str().expect("id").to_owned(),
                b["sequence"].as_i64().expect("seq"),
                b["kind"].as_str().expect("kind").to_owned(),
            )
        })
        .collect()
}

async fn tampering_is_reported_at_the_first_broken_link(backend: Backend) {
    let app = spawn_app(backend).await;
    let (s, id) = conversation(&app).await;

    // The clean log verifies; every first event chains to zeros.
    // (Background workers may still append: the count is bracketed.)
    let before = app.count_events(None).await;
    let report = app.get_json(&app.admin_token, "/api/audit/verify").await;
    assert_eq!(report["ok"], true, "{report:#}");
    let events = report["events"].as_i64().expect("events");
    assert!(before <= events && events <= app.count_events(None).await, "{report:#}");
    assert!(report["aggregates"].as_i64().expect("n") >= 4);
    let history = app.get_json(&app.admin_token, &format!("/api/audit/interactions/{id}/events")).await;
    assert_eq!(history[0]["prev_hash"], "0".repeat(64));
    assert_eq!(history[1]["prev_hash"], history[0]["hash"]);

    // Only admins verify.
    assert_eq!(error_of(app.get(&s.agent_token, "/api/audit/verify").await).await.0, 403);

    // Edit a payload in place: when the customer's first message was sent (the words
    // themselves are sealed, ADR 0020; any byte changed breaks the hash).
    let first_text = history
        .as_array()
        .expect("events")
        .iter()
        .find(|e| e["event_type"] == "CustomerMessageReceived")
        .expect("a customer message");
    let edited_seq = first_text["sequence"].as_i64().expect("seq");
    edit_payload(&app, &id, edited_seq, "2026-01-05T10:00:00Z", "2026-01-05T11:00:00Z").await;

    // Delete a middle event of the agent.
    assert!(count_of(&app, &s.agent_id).await >= 4);
    exec(&app, &format!("DELETE FROM events WHERE aggregate_id = '{}' AND sequence = 2", s.agent_id)).await;

    // Swap the account's events 2 and 3 (reorder).
    assert!(count_of(&app, &s.account_id).await >= 3);
    let a = &s.account_id;
    for (from, to) in [(2, 1_000_000), (3, 2), (1_000_000, 3)] {
        exec(
            &app,
            &format!("UPDATE events SET sequence = {to} WHERE aggregate_id = '{a}' AND sequence = {from}"),
        )
        .await;
    }

    let report = app.get_json(&app.admin_token, "/api/audit/verify").await;
    assert_eq!(report["ok"], false);
    let mut found = breaks(&report);
    found.sort();
    let mut expected = vec![
        (id.clone(), edited_seq, "hash_mismatch".to_owned()),
        (s.agent_id.clone(), 3, "sequence_gap".to_owned()),
        (s.account_id.clone(), 2, "broken_link".to_owned()),
    ];
    expected.sort();
    assert_eq!(found, expected, "{report:#}");

    // A hash erased is reported too.
    exec(
        &app,
        &format!("UPDATE events SET hash = NULL WHERE aggregate_id = '{}' AND sequence = 1", s.queue_id),
    )
    .await;
    let report = app.get_json(&app.admin_token, "/api/audit/verify").await;
    assert!(breaks(&report).contains(&(s.queue_id.clone(), 1, "missing_hash".to_owned())), "{report:#}");
    app.stop().await;
}

#[actix_web::test]
async fn tampering_is_reported_at_the_first_broken_link_sqlite() {
    tampering_is_reported_at_the_first_broken_link(Backend::Sqlite).await;
}

#[actix_web::test]
async fn tampering_is_reported_at_the_first_broken_link_postgres() {
    tampering_is_reported_at_the_first_broken_link(Backend::Postgres).await;
}

async fn checkpoints_detect_truncation_and_forgery(backend: Backend) {
    let app = spawn_app(backend).await;
    let (s, id) = conversation(&app).await;
    let before = app.count_events(None).await;
    let checkpoint = app.post(&app.admin_token, "/api/audit/checkpoints", json!({})).await;
    assert_eq!(checkpoint.status(), 200);
    let checkpoint: Value = checkpoint.json().await.expect("json");
    assert_eq!(checkpoint["version"], 1);
    let events = checkpoint["events"].as_i64().expect("events");
    assert!(before <= events && events <= app.count_events(None).await, "{checkpoint:#}");
    assert_eq!(
        checkpoint["aggregates"].as_u64(),
        Some(checkpoint["heads"].as_array().expect("heads").len() as u64)
    );
    let verify = |body: Value, query: &'static str| {
        let app = &app;
        async move { app.post(&app.admin_token, &format!("/api/audit/checkpoints/verify{query}"), body).await }
    };

    // Right away, and after more events were appended: fine.
    let r: Value = verify(checkpoint.clone(), "").await.json().await.expect("json");
    assert_eq!((r["ok"].as_bool(), r["signature_valid"].as_bool()), (Some(true), Some(true)), "{r:#}");
    let r = app.webhook(&s.account_id, &meta_text("wamid.AUDIT3", "15551234567", "Jane", "again")).await;
    assert_eq!(r.status(), 200);
    app.settle().await;
    let r: Value = verify(checkpoint.clone(), "").await.json().await.expect("json");
    assert_eq!(r["ok"], true, "{r:#}");

    // Truncate the interaction: its last event goes. The chain that is left still verifies;
    // only the checkpoint shows it.
    let head = checkpoint["heads"]
        .as_array()
        .expect("heads")
        .iter()
        .find(|h| h["aggregate_id"] == id.as_str())
        .expect("the interaction's head")["sequence"]
        .as_i64()
        .expect("sequence");
    exec(&app, &format!("DELETE FROM events WHERE aggregate_id = '{id}' AND sequence >= {head}")).await;
    let r: Value = verify(checkpoint.clone(), "").await.json().await.expect("json");
    assert_eq!(r["ok"], false);
    assert_eq!(r["chain"]["ok"], true, "the chain alone cannot see truncation");
    assert_eq!(r["problems"].as_array().expect("problems").len(), 1, "{r:#}");
    assert_eq!(r["problems"][0]["aggregate_id"], id.as_str());
    assert_eq!(r["problems"][0]["sequence"].as_i64(), Some(head));
    assert_eq!(r["problems"][0]["kind"], "truncated");
    assert_eq!(r["problems"][0]["found"], Value::Null);

    // A head re-hashed after the checkpoint: rewritten.
    let queue_head = checkpoint["heads"]
        .as_array()
        .expect("heads")
        .iter()
        .find(|h| h["aggregate_id"] == s.queue_id.as_str())
        .expect("queue head")["sequence"]
        .as_i64()
        .expect("sequence");
    exec(
        &app,
        &format!(
            "UPDATE events SET hash = 'f00d' WHERE aggregate_id = '{}' AND sequence = {queue_head}",
            s.queue_id
        ),
    )
    .await;
    let r: Value = verify(checkpoint.clone(), "").await.json().await.expect("json");
    let problem = r["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .find(|p| p["aggregate_id"] == s.queue_id.as_str())
        .unwrap_or_else(|| panic!("the queue's head is reported: {r:#}"))
        .clone();
    assert_eq!((problem["kind"].as_str(), problem["found"].as_str()), (Some("rewritten"), Some("f00d")));
    assert_eq!(r["chain"]["ok"], false, "and the chain breaks there");

    // An edited checkpoint (hiding the truncation) fails its signature, and so does one signed
    // by a key other than the trusted one.
    let mut edited = checkpoint.clone();
    let heads = edited["heads"].as_array_mut().expect("heads");
    let ours = heads.iter_mut().find(|h| h["aggregate_id"] == id.as_str()).expect("our head");
    ours["sequence"] = json!(head - 1);
    let r: Value = verify(edited, "").await.json().await.expect("json");
    assert_eq!((r["ok"].as_bool(), r["signature_valid"].as_bool()), (Some(false), Some(false)), "{r:#}");
    let other_key = "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";
    let r: Value = verify(checkpoint.clone(), "?public_key=11qYAYKxCrfVS%2F7TyWQHOg7hcvPapiMlrwIaaPcHURo%3D")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(r["signature_valid"], false, "{other_key}");

    // The server's own public key, given explicitly, is trusted like the default.
    let own = checkpoint["public_key"].as_str().expect("key").to_owned();
    let url = format!("/api/audit/checkpoints/verify?public_key={}", urlencode(&own));
    let r: Value = app.post(&app.admin_token, &url, checkpoint.clone()).await.json().await.expect("json");
    assert_eq!(r["signature_valid"], true);

    // Bad input.
    let (status, code, _) = error_of(verify(json!({"version": 1}), "").await).await;
    assert_eq!((status, code.as_str()), (400, "invalid_request"));
    let (status, code, _) = error_of(verify(checkpoint.clone(), "?public_key=nope").await).await;
    assert_eq!((status, code.as_str()), (400, "invalid_request"));
    let r = app.post(&s.agent_token, "/api/audit/checkpoints", json!({})).await;
    assert_eq!(error_of(r).await.0, 403);
    let r = app.post(&s.agent_token, "/api/audit/checkpoints/verify", checkpoint.clone()).await;
    assert_eq!(error_of(r).await.0, 403);
    app.stop().await;
}

fn urlencode(s: &str) -> String {
    s.replace('+', "%2B").replace('/', "%2F").replace('=', "%3D")
}

#[actix_web::test]
async fn checkpoints_detect_truncation_and_forgery_sqlite() {
    checkpoints_detect_truncation_and_forgery(Backend::Sqlite).await;
}

#[actix_web::test]
async fn checkpoints_detect_truncation_and_forgery_postgres() {
    checkpoints_detect_truncation_and_forgery(Backend::Postgres).await;
}

async fn history_and_state_at_an_instant(backend: Backend) {
    let app = spawn_app(backend).await;
    let (s, id) = conversation(&app).await;

    // The interaction: who caused each event, in order, with positions and times.
    // Read twice until both agree: the outbox may record a send's acceptance between the reads.
    let (mut events, mut stored) = (Vec::new(), -1);
    for _ in 0..50 {
        let read = app.get_json(&app.admin_token, &format!("/api/audit/interactions/{id}/events")).await;
        events = read.as_array().expect("events").clone();
        stored = count_of(&app, &id).await;
        if events.len() as i64 == stored {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(events.len() as i64, stored, "the history holds every stored event");
    assert_eq!(events[0]["event_type"], "InteractionOpened");
    assert_eq!(events[0]["caused_by"], "provider:meta");
    let caused = |t: &str| events.iter().find(|e| e["event_type"] == t).map(|e| e["caused_by"].clone());
    assert_eq!(caused("OfferAccepted"), Some(json!(format!("agent:{}", s.agent_id))));
    assert_eq!(caused("AgentMessageSent"), Some(json!(format!("agent:{}", s.agent_id))));
    for (n, e) in events.iter().enumerate() {
        assert_eq!(e["sequence"].as_i64(), Some(n as i64 + 1));
        assert!(e["at"].is_string() && e["correlation_id"].is_string() && e["hash"].is_string(), "{e:#}");
        assert!(e["payload"].is_object());
    }
    let positions: Vec<i64> = events.iter().map(|e| e["global_position"].as_i64().expect("pos")).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");

    // Every other kind, with who caused it; supervisors may read, agents may not.
    let supervisor = {
        let r =
            app.post(&app.admin_token, "/api/tokens", json!({"role": "supervisor", "label": "sup"})).await;
        assert_eq!(r.status(), 201);
        r.json::<Value>().await.expect("json")["token"].as_str().expect("token").to_owned()
    };
    for (kind, aggregate) in [("agents", &s.agent_id), ("queues", &s.queue_id), ("accounts", &s.account_id)] {
        let events = app.get_json(&supervisor, &format!("/api/audit/{kind}/{aggregate}/events")).await;
        assert!(!events.as_array().expect("events").is_empty(), "{kind}");
        assert_eq!(events[0]["caused_by"], "admin:test", "{kind}: {events:#}");
        let state =
            app.get_json(&supervisor, &format!("/api/audit/{kind}/{aggregate}/state?sequence=1")).await;
        assert_eq!(state["sequence"], 1, "{kind}");
        assert!(state["state"].is_object(), "{kind}");
    }
    let path = format!("/api/audit/interactions/{id}/events");
    assert_eq!(error_of(app.get(&s.agent_token, &path).await).await.0, 403);
    let (status, code, _) = error_of(app.get(&app.admin_token, "/api/audit/contacts/x/events").await).await;
    assert_eq!((status, code.as_str()), (404, "unknown_aggregate_kind"));
    let unknown = uuid::Uuid::now_v7();
    let (status, code, _) =
        error_of(app.get(&app.admin_token, &format!("/api/audit/interactions/{unknown}/events")).await).await;
    assert_eq!((status, code.as_str()), (404, "aggregate_not_found"));

    // The state after the first event, by sequence; after the second, by position; at the
    // end, by time.
    let state = |q: String| {
        let app = &app;
        let id = id.clone();
        async move { app.get(&app.admin_token, &format!("/api/audit/interactions/{id}/state?{q}")).await }
    };
    let first: Value = state("sequence=1".into()).await.json().await.expect("json");
    assert_eq!(
        (first["sequence"].as_i64(), first["event_type"].as_str()),
        (Some(1), Some("InteractionOpened"))
    );
    assert_eq!(first["state"]["agent_id"], Value::Null, "{first:#}");
    let second: Value = state(format!("position={}", positions[1])).await.json().await.expect("json");
    assert_eq!(second["sequence"], 2);
    assert_eq!(second["global_position"].as_i64(), Some(positions[1]));
    let last_at = events.last().expect("last")["at"].as_str().expect("at").to_owned();
    let end: Value = state(format!("at={}", urlencode(&last_at))).await.json().await.expect("json");
    // (A later event stored in the same millisecond would be included too.)
    assert!(end["sequence"].as_i64() >= Some(events.len() as i64), "{end:#}");
    assert_eq!(end["state"]["agent_id"], s.agent_id.as_str(), "{end:#}");
    // The state after everything is the aggregate's own state (retried: the outbox may still
    // record a send between the two reads).
    let mut full = Value::Null;
    for _ in 0..50 {
        let now =
            serde_json::to_value(app.core.interactions.state(&id).await.expect("state").state).expect("json");
        let replayed: Value = state("position=9223372036854775807".into()).await.json().await.expect("json");
        if replayed["state"] == now {
            full = now;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(full.is_object(), "the replayed state never equalled the aggregate's");
    // Between events: the accepted offer is there, the close is not.
    let accepted = events.iter().find(|e| e["event_type"] == "OfferAccepted").expect("accepted");
    let mid: Value = state(format!("sequence={}", accepted["sequence"])).await.json().await.expect("json");
    assert_ne!(mid["state"], full);

    // Bad input.
    for q in ["", "sequence=1&position=1", "sequence=0", "position=-1", "at=yesterday", "sequence=x"] {
        let (status, code, _) = error_of(state(q.into()).await).await;
        assert_eq!((status, code.as_str()), (400, "invalid_request"), "{q}");
    }
    let (status, code, _) = error_of(state("at=2000-01-01T00:00:00Z".into()).await).await;
    assert_eq!((status, code.as_str()), (404, "no_state_at"));
    let (status, code, _) = error_of(
        app.get(&app.admin_token, &format!("/api/audit/interactions/{unknown}/state?sequence=1")).await,
    )
    .await;
    assert_eq!((status, code.as_str()), (404, "aggregate_not_found"));
    app.stop().await;
}

#[actix_web::test]
async fn history_and_state_at_an_instant_sqlite() {
    history_and_state_at_an_instant(Backend::Sqlite).await;
}

#[actix_web::test]
async fn history_and_state_at_an_instant_postgres() {
    history_and_state_at_an_instant(Backend::Postgres).await;
}

/// Runs the real binary in `dir` with only these arguments (and the test database's keys).
fn run(dir: &std::path::Path, place: &DataPlace, args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(args)
        .args(["--database-url", &place.url, "--master-key", &place.master_key])
        .current_dir(dir)
        .env_clear()
        .output()
        .expect("runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

async fn the_audit_commands_work_through_the_binary(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, id) = conversation(&app).await;
    let (place, _graph) = app.stop().await;
    // The test's own connection to the stopped server's database, as an operator's.
    let pool = sqlx::AnyPool::connect(&place.url).await.expect("connects");
    let dir = std::env::temp_dir().join(format!("sb_audit_{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("dir");
    let _cleanup = TempDir(dir.clone());
    let db = &pool;

    let (code, out) = run(&dir, &place, &["verify"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("ok: ") && out.contains("0 broken"), "{out}");

    let file = dir.join("checkpoint.json");
    let (code, out) = run(&dir, &place, &["checkpoint", "--out", file.to_str().expect("path")]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = run(&dir, &place, &["checkpoint-verify", file.to_str().expect("path")]);
    assert_eq!(code, 0, "{out}");

    // The rebuild replays everything and equals the live tables.
    let (code, out) = run(&dir, &place, &["rebuild-projections", "--check"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("equal:"), "{out}");
    assert!(out.contains("replayed "), "plain progress lines without a terminal: {out}");
    // A read-model row tampered with: the check names its table.
    sqlx::query("UPDATE interaction_list SET customer_name = 'Mallory' WHERE interaction_id = $1")
        .bind(&id)
        .execute(db)
        .await
        .expect("tamper");
    let (code, out) = run(&dir, &place, &["rebuild-projections", "--check"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("differs: interaction_list"), "{out}");
    // ...and the rebuild repaired it.
    let (code, out) = run(&dir, &place, &["rebuild-projections", "--check"]);
    assert_eq!(code, 0, "{out}");

    // Truncation: the checkpoint check fails, naming it.
    let (head,): (i64,) = sqlx::query_as("SELECT MAX(sequence) FROM events WHERE aggregate_id = $1")
        .bind(&id)
        .fetch_one(db)
        .await
        .expect("head");
    sqlx::query("DELETE FROM events WHERE aggregate_id = $1 AND sequence = $2")
        .bind(&id)
        .bind(head)
        .execute(db)
        .await
        .expect("truncate");
    let (code, out) = run(&dir, &place, &["checkpoint-verify", file.to_str().expect("path")]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains(&format!("truncated Interaction/{id} at sequence {head}")), "{out}");
    // An edited checkpoint file: bad signature.
    let mut edited: Value =
        serde_json::from_str(&std::fs::read_to_string(&file).expect("read")).expect("json");
    edited["events"] = json!(1);
    std::fs::write(&file, edited.to_string()).expect("write");
    let (code, out) = run(&dir, &place, &["checkpoint-verify", file.to_str().expect("path")]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("bad_signature"), "{out}");

    // An edited event: verify fails, naming it.
    let pg = place.url.starts_with("postgres");
    sqlx::query(if pg {
        "UPDATE events SET metadata = CAST('{}' AS json) WHERE aggregate_id = $1 AND sequence = 1"
    } else {
        "UPDATE events SET metadata = '{}' WHERE aggregate_id = $1 AND sequence = 1"
    })
    .bind(&id)
    .execute(db)
    .await
    .expect("edit");
    let (code, out) = run(&dir, &place, &["verify"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains(&format!("hash_mismatch Interaction/{id} at sequence 1")), "{out}");
    let (code, out) = run(&dir, &place, &["verify", "--json"]);
    assert_eq!(code, 1);
    let report: Value = serde_json::from_str(&out).expect("json report");
    assert_eq!(report["breaks"][0]["kind"], "hash_mismatch");
    pool.close().await;
}

#[actix_web::test]
async fn the_audit_commands_work_through_the_binary_sqlite() {
    the_audit_commands_work_through_the_binary(Backend::Sqlite).await;
}

#[actix_web::test]
async fn the_audit_commands_work_through_the_binary_postgres() {
    the_audit_commands_work_through_the_binary(Backend::Postgres).await;
}

async fn concurrent_appends_chain_cleanly(backend: Backend) {
    let app = spawn_app(backend).await;
    let s = app.setup(30).await;
    accept_meta_sends(&app).await;
    // Twenty customers at once: appends race on the store (and on SQLite's write lock).
    let sends = (0..20).map(|n| {
        let body = meta_text(&format!("wamid.C{n}"), &format!("1555000{n:04}"), "C", "hi");
        let (app, account) = (&app, s.account_id.clone());
        async move { app.webhook(&account, &body).await.status() }
    });
    for status in futures_util::future::join_all(sends).await {
        assert_eq!(status, 200);
    }
    app.settle().await;
    let report = app.get_json(&app.admin_token, "/api/audit/verify").await;
    assert_eq!(report["ok"], true, "{report:#}");
    assert!(report["aggregates"].as_i64().expect("n") >= 20);

    if backend == Backend::Sqlite {
        // Rows from before the chain existed are chained once at the next start, and only
        // while `chain_backfill.done` says it has not run yet.
        let (place, _graph) = app.stop().await;
        let pool = sqlx::AnyPool::connect(&place.url).await.expect("connects");
        sqlx::query("UPDATE events SET hash = NULL, prev_hash = NULL").execute(&pool).await.expect("legacy");
        let db = switchboard::db::connect(&place.url, 2).await.expect("reconnects");
        let report = switchboard::audit::chain::verify(&db).await.expect("verify");
        assert!(!report.ok, "done = 1: no silent re-chaining of rows without a hash");
        sqlx::query("UPDATE chain_backfill SET done = 0").execute(&pool).await.expect("reset");
        let db = switchboard::db::connect(&place.url, 2).await.expect("reconnects");
        let report = switchboard::audit::chain::verify(&db).await.expect("verify");
        assert!(report.ok, "{report:?}");
        assert!(report.events > 20);
        let (done,): (i64,) =
            sqlx::query_as("SELECT done FROM chain_backfill").fetch_one(&pool).await.expect("done");
        assert_eq!(done, 1);
    } else {
        app.stop().await;
    }
}

#[actix_web::test]
async fn concurrent_appends_chain_cleanly_and_legacy_rows_are_chained_once_sqlite() {
    concurrent_appends_chain_cleanly(Backend::Sqlite).await;
}

#[actix_web::test]
async fn concurrent_appends_chain_cleanly_postgres() {
    concurrent_appends_chain_cleanly(Backend::Postgres).await;
}

#[actix_web::test]
async fn the_audit_endpoints_are_documented() {
    let app = spawn_app(Backend::Sqlite).await;
    let spec: Value =
        app.client.get(app.url("/openapi.json")).send().await.expect("get").json().await.expect("json");
    for path in [
        "/api/audit/verify",
        "/api/audit/checkpoints",
        "/api/audit/checkpoints/verify",
        "/api/audit/{kind}/{id}/events",
        "/api/audit/{kind}/{id}/state",
    ] {
        assert!(spec["paths"][path].is_object(), "{path} is documented");
    }
    app.stop().await;
}
