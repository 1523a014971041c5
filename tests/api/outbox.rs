//! The outbox: provider refusals are recorded with the provider's code and shown to the
//! agent; transient failures are retried with back-off until accepted.

use std::time::Duration;

use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::*;

async fn assigned(app: &TestApp, s: &Setup) -> (Ws, String) {
    app.agent_ready(&s.agent_token).await;
    let mut ws = app.connect_ws(&s.agent_token).await;
    assert_eq!(app.webhook(&s.account_id, &fixture("meta_inbound_text.json")).await.status(), 200);
    let offer = ws.next_of("offer").await;
    let id = offer["interaction_id"].as_str().expect("id").to_owned();
    assert_eq!(
        app.post(&s.agent_token, &format!("/api/interactions/{id}/accept"), json!({})).await.status(),
        204
    );
    (ws, id)
}

#[actix_web::test]
async fn a_permanent_provider_refusal_is_recorded_with_its_code_and_never_retried() {
    let app = spawn_app(Backend::Sqlite).await;
    let s = app.setup(10).await;
    let refusal = json!({"error": {"message": "(#131047) Re-engagement message", "type": "OAuthException",
                                    "code": 131047, "error_data": {"messaging_product": "whatsapp",
                                    "details": "More than 24 hours have passed"}, "fbtrace_id": "X"}});
    Mock::given(method("POST"))
        .and(path("/v23.0/100000000000002/messages"))
        .respond_with(ResponseTemplate::new(400).set_body_json(refusal))
        .expect(1)
        .mount(&app.graph)
        .await;
    let (mut ws, id) = assigned(&app, &s).await;
    let r =
        app.post(&s.agent_token, &format!("/api/interactions/{id}/messages"), json!({"text": "hi"})).await;
    assert_eq!(r.status(), 202);
    let failed = ws.next_of("message_status").await;
    assert_eq!(failed["status"], "failed");
    // Every provider's "window closed" arrives as one code; the provider's stays in the reason.
    assert_eq!(failed["error_code"], "window_closed");
    assert!(failed["error_reason"].as_str().is_some_and(|r| r.contains("131047")));
    app.core.clock.advance(Duration::from_secs(600));
    app.settle().await;
    let detail = app.get_json(&app.admin_token, &format!("/api/interactions/{id}")).await;
    assert_eq!(detail["messages"][1]["status"], "failed");
    assert_eq!(detail["messages"][1]["error_code"], "window_closed");
    app.stop().await; // wiremock verifies exactly one call
}

#[actix_web::test]
async fn a_transient_failure_is_retried_with_back_off_until_accepted() {
    let app = spawn_app(Backend::Sqlite).await;
    let s = app.setup(10).await;
    Mock::given(method("POST"))
        .and(path("/v23.0/100000000000002/messages"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .expect(1)
        .mount(&app.graph)
        .await;
    Mock::given(method("POST"))
        .and(path("/v23.0/100000000000002/messages"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(fixture("meta_send_response.json")))
        .expect(1)
        .mount(&app.graph)
        .await;
    let (mut ws, id) = assigned(&app, &s).await;
    let r =
        app.post(&s.agent_token, &format!("/api/interactions/{id}/messages"), json!({"text": "hi"})).await;
    assert_eq!(r.status(), 202);
    // The first attempt fails; the retry is scheduled about 2 s later (with jitter).
    let pending = app
        .eventually(&format!("/api/interactions/{id}"), |v| v["messages"].as_array().map(Vec::len) == Some(2))
        .await;
    assert_eq!(pending["messages"][1]["status"], "pending");
    for _ in 0..100 {
        // The outbox projection may not have enqueued the row yet, and a claimed row counts
        // its attempt before the 503 comes back: wait until the retry is scheduled.
        let row: Option<(i64,)> =
            sqlx::query_as("SELECT attempts FROM outbox WHERE locked_until IS NULL AND next_attempt_at > $1")
                .bind(app.core.clock.now_ms())
                .fetch_optional(&app.core.db.any)
                .await
                .expect("query");
        if row.is_some_and(|r| r.0 == 1) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    app.core.clock.advance(Duration::from_secs(5));
    let accepted = ws.next_of("message_status").await;
    assert_eq!(accepted["status"], "accepted");
    let body: Value = sqlx::query_as::<_, (i64, String)>("SELECT attempts, status FROM outbox")
        .fetch_one(&app.core.db.any)
        .await
        .map(|(a, s)| json!({"attempts": a, "status": s}))
        .expect("row");
    assert_eq!(body, json!({"attempts": 2, "status": "sent"}));
    app.stop().await;
}

#[actix_web::test]
async fn a_text_outside_the_24h_window_is_refused_before_calling_the_provider() {
    let app = spawn_app(Backend::Sqlite).await;
    let s = app.setup(10).await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(200)).expect(0).mount(&app.graph).await;
    let (_ws, id) = assigned(&app, &s).await;
    app.core.clock.advance(Duration::from_secs(24 * 3600));
    let r =
        app.post(&s.agent_token, &format!("/api/interactions/{id}/messages"), json!({"text": "hi"})).await;
    assert_eq!(r.status(), 409);
    assert_eq!(r.json::<Value>().await.expect("json")["error"]["code"], "window_closed");
    app.stop().await;
}

#[actix_web::test]
async fn a_status_that_overtakes_the_recorded_acceptance_is_kept() {
    let app = spawn_app(Backend::Sqlite).await;
    let s = app.setup(10).await;
    // Meta answers slowly: while the sender waits, Meta has in fact accepted the message
    // and its "delivered" status arrives first.
    Mock::given(method("POST"))
        .and(path("/v23.0/100000000000002/messages"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_bytes(fixture("meta_send_response.json"))
                .set_delay(Duration::from_secs(2)),
        )
        .mount(&app.graph)
        .await;
    let (mut ws, id) = assigned(&app, &s).await;
    let r =
        app.post(&s.agent_token, &format!("/api/interactions/{id}/messages"), json!({"text": "hi"})).await;
    assert_eq!(r.status(), 202);
    // Wait for the sender to hold the row, then record what Meta knows (its id) on the row,
    // as a sender on another node that crashed before recording would have left it.
    for _ in 0..200 {
        let row: Option<(i64,)> = sqlx::query_as("SELECT attempts FROM outbox")
            .fetch_optional(&app.core.db.any)
            .await
            .expect("query");
        if row.is_some_and(|r| r.0 == 1) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    sqlx::query("UPDATE outbox SET status = 'sent', provider_message_id = 'wamid.FAKEOUT0001'")
        .execute(&app.core.db.any)
        .await
        .expect("update");
    assert_eq!(app.webhook(&s.account_id, &fixture("meta_status_delivered.json")).await.status(), 200);
    assert_eq!(ws.next_of("message_status").await["status"], "accepted");
    assert_eq!(ws.next_of("message_status").await["status"], "delivered");
    let detail = app
        .eventually(&format!("/api/interactions/{id}"), |v| v["messages"][1]["status"] == "delivered")
        .await;
    assert_eq!(detail["messages"][1]["provider_message_id"], "wamid.FAKEOUT0001");
    app.stop().await;
}

#[actix_web::test]
async fn a_status_for_an_unknown_message_is_acknowledged_and_appends_nothing() {
    let app = spawn_app(Backend::Sqlite).await;
    let s = app.setup(10).await;
    app.settle().await;
    let before = app.count_events(None).await;
    assert_eq!(app.webhook(&s.account_id, &fixture("meta_status_read.json")).await.status(), 200);
    assert_eq!(app.count_events(None).await, before);
    // It waits, parked, in case its message's acceptance is still on its way.
    let parked: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM pending_statuses")
        .fetch_one(&app.core.db.any)
        .await
        .expect("count");
    assert_eq!(parked.0, 1);
    app.stop().await;
}

#[actix_web::test]
async fn a_status_that_arrives_before_the_providers_answer_is_parked_and_replayed() {
    let app = spawn_app(Backend::Sqlite).await;
    let s = app.setup(10).await;
    Mock::given(method("POST"))
        .and(path("/v23.0/100000000000002/messages"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_bytes(fixture("meta_send_response.json"))
                .set_delay(Duration::from_millis(1500)),
        )
        .mount(&app.graph)
        .await;
    let (mut ws, id) = assigned(&app, &s).await;
    let r =
        app.post(&s.agent_token, &format!("/api/interactions/{id}/messages"), json!({"text": "hi"})).await;
    assert_eq!(r.status(), 202);
    // Meta's "delivered" webhook overtakes its own answer to the send.
    for _ in 0..200 {
        let row: Option<(i64,)> = sqlx::query_as("SELECT attempts FROM outbox")
            .fetch_optional(&app.core.db.any)
            .await
            .expect("query");
        if row.is_some_and(|r| r.0 == 1) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(app.webhook(&s.account_id, &fixture("meta_status_delivered.json")).await.status(), 200);
    assert_eq!(ws.next_of("message_status").await["status"], "accepted");
    assert_eq!(ws.next_of("message_status").await["status"], "delivered");
    // The parked row is deleted right after its replay is recorded (the push can come first).
    let mut parked = (1,);
    for _ in 0..500 {
        parked = sqlx::query_as("SELECT COUNT(*) FROM pending_statuses")
            .fetch_one(&app.core.db.any)
            .await
            .expect("count");
        if parked.0 == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(parked.0, 0, "replayed and forgotten");
    app.stop().await;
}

#[actix_web::test]
async fn a_failed_status_after_delivery_is_still_recorded_with_its_code() {
    let app = spawn_app(Backend::Sqlite).await;
    let s = app.setup(10).await;
    Mock::given(method("POST"))
        .and(path("/v23.0/100000000000002/messages"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(fixture("meta_send_response.json")))
        .mount(&app.graph)
        .await;
    let (mut ws, id) = assigned(&app, &s).await;
    let r =
        app.post(&s.agent_token, &format!("/api/interactions/{id}/messages"), json!({"text": "hi"})).await;
    assert_eq!(r.status(), 202);
    assert_eq!(ws.next_of("message_status").await["status"], "accepted");
    assert_eq!(app.webhook(&s.account_id, &fixture("meta_status_delivered.json")).await.status(), 200);
    assert_eq!(ws.next_of("message_status").await["status"], "delivered");
    assert_eq!(app.webhook(&s.account_id, &fixture("meta_status_failed.json")).await.status(), 200);
    let failed = ws.next_of("message_status").await;
    assert_eq!(
        (failed["status"].as_str(), failed["error_code"].as_str()),
        (Some("failed"), Some("window_closed"))
    );
    // Redelivered, it changes nothing.
    assert_eq!(app.webhook(&s.account_id, &fixture("meta_status_failed.json")).await.status(), 200);
    app.settle().await;
    assert_eq!(app.count_events(Some("OutboundStatusChanged")).await, 2);
    app.stop().await;
}

/// WhatsApp's pair rate: after a burst of 45 messages to one customer the next waits about
/// 6 s; it is deferred (not failed, not counted as an attempt) and sent once the clock allows.
///
/// The first message goes out through the worker; the rest of the burst is taken from the same
/// limiter directly, so the test does not depend on 45 round trips fitting in 6 s of real time.
#[actix_web::test]
async fn sends_to_one_customer_are_paced_after_a_burst_of_45() {
    let app = spawn_app(Backend::Sqlite).await;
    let s = app.setup(10).await;
    Mock::given(method("POST"))
        .and(path("/v23.0/100000000000002/messages"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(fixture("meta_send_response.json")))
        .mount(&app.graph)
        .await;
    let (_ws, id) = assigned(&app, &s).await;
    let send = |text: &'static str| {
        let (app, token) = (&app, s.agent_token.clone());
        let path = format!("/api/interactions/{id}/messages");
        async move { assert_eq!(app.post(&token, &path, json!({"text": text})).await.status(), 202) }
    };
    let sent = || async {
        app.graph
            .received_requests()
            .await
            .expect("recorded")
            .iter()
            .filter(|r| r.url.path() == "/v23.0/100000000000002/messages")
            .count()
    };
    send("first").await;
    for _ in 0..500 {
        if sent().await == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(sent().await, 1, "the first message goes out");
    let (to_phone,): (String,) =
        sqlx::query_as("SELECT to_phone FROM outbox").fetch_one(&app.core.db.any).await.expect("row");
    let mut drained = 0;
    while app.core.rate.try_acquire(&s.account_id, &to_phone, app.core.clock.now_ms()).is_ok() {
        drained += 1;
        assert!(drained <= 45, "the pair's bucket holds a burst of 45");
    }
    assert!((44..=45).contains(&drained), "the first send took one of the 45 (drained {drained})");

    send("one too many").await;
    // A claimed row counts an attempt until the worker defers it, so wait for the deferred
    // state itself: unlocked and due later than now.
    let deferred = |app: &TestApp| {
        let db = app.core.db.any.clone();
        let now = app.core.clock.now_ms();
        async move {
            sqlx::query_as::<_, (String, i64)>(
                "SELECT status, attempts FROM outbox
                  WHERE status = 'pending' AND locked_until IS NULL AND next_attempt_at > $1",
            )
            .bind(now)
            .fetch_all(&db)
            .await
            .expect("query")
        }
    };
    for _ in 0..500 {
        if deferred(&app).await.len() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(deferred(&app).await, vec![("pending".to_owned(), 0)], "it waits, no attempt counted");
    assert_eq!(sent().await, 1, "nothing else went out");
    app.core.clock.advance(Duration::from_secs(7));
    for _ in 0..500 {
        if sent().await == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(sent().await, 2, "sent once the pair rate allows");
    app.stop().await;
}
