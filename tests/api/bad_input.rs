//! What every malformed, unsigned, oversized, unknown, unauthorised or duplicate input gets:
//! a stable error code and status, and nothing appended to the log.

use serde_json::{Value, json};

use crate::helpers::*;

async fn error_code(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.expect("json error body");
    (status, body["error"]["code"].as_str().unwrap_or_default().to_owned())
}

#[actix_web::test]
async fn bad_webhooks_get_their_error_and_append_nothing() {
    let app = spawn_app(Backend::Sqlite).await;
    let s = app.setup(10).await;
    app.settle().await;
    let before = app.count_events(None).await;
    let good = fixture("meta_inbound_text.json");

    // Missing and wrong signatures.
    let r = app.webhook_signed(&s.account_id, &good, None).await;
    assert_eq!(error_code(r).await, (401, "missing_signature".into()));
    let wrong = switchboard::providers::meta::sign(b"another secret", &good);
    let r = app.webhook_signed(&s.account_id, &good, Some(wrong)).await;
    assert_eq!(error_code(r).await, (401, "invalid_signature".into()));
    let r = app.webhook_signed(&s.account_id, &good, Some("sha256=zz".into())).await;
    assert_eq!(error_code(r).await, (401, "invalid_signature".into()));

    // Malformed bodies, correctly signed.
    for body in [&b"{not json"[..], b"{}", b"[]", b"{\"object\":\"whatsapp_business_account\",\"entry\":7}"] {
        let r = app.webhook(&s.account_id, body).await;
        assert_eq!(
            error_code(r).await,
            (400, "malformed_payload".into()),
            "{}",
            String::from_utf8_lossy(body)
        );
    }

    // A message whose sender is not a phone number: the whole webhook is refused.
    let bad_from = String::from_utf8(good.clone())
        .expect("utf8")
        .replace("\"from\": \"15551234567\"", "\"from\": \"0123\"");
    let r = app.webhook(&s.account_id, bad_from.as_bytes()).await;
    assert_eq!(error_code(r).await, (400, "malformed_payload".into()));

    // Unknown accounts, valid id or not.
    let r = app.webhook(&uuid::Uuid::now_v7().to_string(), &good).await;
    assert_eq!(error_code(r).await, (404, "unknown_account".into()));
    let r = app.webhook("not-an-id", &good).await;
    assert_eq!(error_code(r).await, (404, "unknown_account".into()));

    // Over 1 MiB.
    let huge = vec![b' '; 1024 * 1024 + 1];
    let r = app.webhook(&s.account_id, &huge).await;
    assert_eq!(error_code(r).await, (413, "payload_too_large".into()));

    assert_eq!(app.count_events(None).await, before, "no bad input appended anything");
    app.stop().await;
}

async fn duplicates(backend: Backend) {
    let app = spawn_app(backend).await;
    let s = app.setup(10).await;
    let body = fixture("meta_inbound_text.json");
    assert_eq!(app.webhook(&s.account_id, &body).await.status(), 200);
    // Sequential redelivery.
    assert_eq!(app.webhook(&s.account_id, &body).await.status(), 200);
    // Ten concurrent copies of a new message.
    let second =
        String::from_utf8(body.clone()).expect("utf8").replace("wamid.FAKEIN0001", "wamid.FAKEIN0002");
    let copies = (0..10).map(|_| app.webhook(&s.account_id, second.as_bytes()));
    for response in futures_util::future::join_all(copies).await {
        assert_eq!(response.status(), 200);
    }
    assert_eq!(app.count_events(Some("CustomerMessageReceived")).await, 2);
    assert_eq!(app.count_events(Some("InteractionOpened")).await, 1);

    // After the interaction closed, a redelivery of an old message opens nothing new.
    let list = app.eventually("/api/interactions", |v| v[0]["message_count"] == 2).await;
    let id = list[0]["interaction_id"].as_str().expect("id").to_owned();
    assert_eq!(
        app.post(&app.admin_token, &format!("/api/interactions/{id}/close"), json!({})).await.status(),
        204
    );
    assert_eq!(app.webhook(&s.account_id, &body).await.status(), 200);
    assert_eq!(app.count_events(Some("CustomerMessageReceived")).await, 2);
    assert_eq!(app.count_events(Some("InteractionOpened")).await, 1);
    app.stop().await;
}

#[actix_web::test]
async fn redelivered_and_concurrent_duplicate_webhooks_append_once_sqlite() {
    duplicates(Backend::Sqlite).await;
}

#[actix_web::test]
async fn redelivered_and_concurrent_duplicate_webhooks_append_once_postgres() {
    duplicates(Backend::Postgres).await;
}

#[actix_web::test]
async fn a_redelivery_routed_to_a_newer_interaction_is_refused_by_the_log_itself() {
    // The message id is unique per account in the events table: even an interaction that has
    // never seen the message cannot record it twice.
    let app = spawn_app(Backend::Postgres).await;
    let s = app.setup(10).await;
    let body = fixture("meta_inbound_text.json");
    assert_eq!(app.webhook(&s.account_id, &body).await.status(), 200);
    let list = app.eventually("/api/interactions", |v| v[0]["message_count"] == 1).await;
    let first = list[0]["interaction_id"].as_str().expect("id").to_owned();
    assert_eq!(
        app.post(&app.admin_token, &format!("/api/interactions/{first}/close"), json!({})).await.status(),
        204
    );
    // A new message opens interaction #2 ...
    let other =
        String::from_utf8(body.clone()).expect("utf8").replace("wamid.FAKEIN0001", "wamid.FAKEIN0009");
    assert_eq!(app.webhook(&s.account_id, other.as_bytes()).await.status(), 200);
    // ... and the old message, redelivered straight at #2, is refused by the index.
    let list = app.eventually("/api/interactions", |v| v.as_array().map(Vec::len) == Some(2)).await;
    let second: switchboard_domain::InteractionId =
        list[0]["interaction_id"].as_str().expect("id").parse().expect("id");
    let account_id: switchboard_domain::AccountId = s.account_id.parse().expect("id");
    let cmd = switchboard_domain::interaction::InteractionCommand::ReceiveCustomerMessage {
        account_id,
        customer: switchboard_domain::PhoneNumber::parse("+15551234567").expect("phone"),
        customer_name: None,
        routing: None,
        screening: Default::default(),
        seed: uuid::Uuid::new_v4(),
        message_id: switchboard_domain::MessageId::new(),
        provider_message_id: "wamid.FAKEIN0001".into(),
        content: switchboard_domain::interaction::InboundContent::Text { body: "again".into() },
        sent_at: chrono::Utc::now(),
        at: chrono::Utc::now(),
    };
    let result = app.core.interactions.execute(&second.to_string(), cmd, Default::default()).await;
    assert!(
        matches!(result, Err(switchboard::runtime::CommandError::DuplicateProviderMessage)),
        "{result:?}"
    );
    assert_eq!(app.count_events(Some("CustomerMessageReceived")).await, 2);
    app.stop().await;
}

#[actix_web::test]
async fn the_meta_handshake_echoes_the_challenge_only_for_the_right_token() {
    let app = spawn_app(Backend::Sqlite).await;
    let account_id = app.create_account().await;
    let url = |q: &str| app.url(&format!("/webhooks/whatsapp/{account_id}?{q}"));
    let r = app
        .client
        .get(url("hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=my-verify-token"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.expect("text"), "1158201444");
    let r = app
        .client
        .get(url("hub.mode=subscribe&hub.challenge=1&hub.verify_token=wrong"))
        .send()
        .await
        .expect("get");
    assert_eq!(error_code(r).await, (403, "invalid_verify_token".into()));
    let r =
        app.client.get(url("hub.mode=subscribe&hub.verify_token=my-verify-token")).send().await.expect("get");
    assert_eq!(error_code(r).await, (400, "invalid_request".into()));
    let r = app
        .client
        .get(app.url(&format!(
            "/webhooks/whatsapp/{}?hub.mode=subscribe&hub.challenge=1&hub.verify_token=x",
            uuid::Uuid::now_v7()
        )))
        .send()
        .await
        .expect("get");
    assert_eq!(error_code(r).await, (404, "unknown_account".into()));
    app.stop().await;
}

#[actix_web::test]
async fn the_api_authenticates_authorises_and_validates() {
    let app = spawn_app(Backend::Sqlite).await;
    let s = app.setup(10).await;
    app.settle().await;
    let before = app.count_events(None).await;

    // No token, an unknown token.
    let r = app.client.post(app.url("/api/queues")).json(&json!({"name": "X"})).send().await.expect("post");
    assert_eq!(error_code(r).await, (401, "unauthorized".into()));
    let r = app.post("sb_not_a_token", "/api/queues", json!({"name": "X"})).await;
    assert_eq!(error_code(r).await, (401, "unauthorized".into()));
    // An agent cannot administer or read the boards; an admin is not an agent.
    let r = app.post(&s.agent_token, "/api/queues", json!({"name": "X"})).await;
    assert_eq!(error_code(r).await, (403, "forbidden".into()));
    let r = app.get(&s.agent_token, "/api/agents/status").await;
    assert_eq!(error_code(r).await, (403, "forbidden".into()));
    let r = app.post(&app.admin_token, "/api/me/ready", json!({})).await;
    assert_eq!(error_code(r).await, (403, "forbidden".into()));
    // Malformed and invalid bodies.
    let r = app
        .client
        .post(app.url("/api/queues"))
        .bearer_auth(&app.admin_token)
        .header("Content-Type", "application/json")
        .body("{\"name\":")
        .send()
        .await
        .expect("post");
    assert_eq!(error_code(r).await, (400, "invalid_request".into()));
    let r = app.post(&app.admin_token, "/api/queues", json!({"name": "   "})).await;
    assert_eq!(error_code(r).await, (422, "invalid_text".into()));
    let r = app.post(&app.admin_token, "/api/queues", json!({"name": "Q", "offer_timeout_secs": 0})).await;
    assert_eq!(error_code(r).await, (422, "invalid_offer_timeout".into()));
    let r = app
        .post(
            &app.admin_token,
            "/api/accounts",
            json!({"name": "A", "key": "TOOLONG", "provider": {"type": "meta",
            "business_account_id": "1", "app_id": "1", "phone_number_id": "1", "access_token": "t",
            "app_secret": "s", "verify_token": "v"}}),
        )
        .await;
    assert_eq!(error_code(r).await, (422, "invalid_account_key".into()));
    let r = app
        .post(
            &app.admin_token,
            &format!("/api/accounts/{}/agents", s.account_id),
            json!({"agent_id": uuid::Uuid::now_v7()}),
        )
        .await;
    assert_eq!(error_code(r).await, (404, "agent_not_found".into()));
    // Agent commands that break a rule.
    let r = app.post(&s.agent_token, "/api/me/ready", json!({})).await;
    assert_eq!(error_code(r).await, (409, "agent_not_logged_in".into()));
    let r = app
        .post(&s.agent_token, &format!("/api/interactions/{}/accept", uuid::Uuid::now_v7()), json!({}))
        .await;
    assert_eq!(error_code(r).await, (404, "interaction_not_found".into()));
    let r = app.post(&s.agent_token, "/api/interactions/nope/messages", json!({"text": "hi"})).await;
    assert_eq!(error_code(r).await, (404, "interaction_not_found".into()));
    assert_eq!(app.count_events(None).await, before, "refused requests appended nothing");

    // Credentials are never returned.
    let account = app
        .get(&app.admin_token, &format!("/api/accounts/{}", s.account_id))
        .await
        .text()
        .await
        .expect("text");
    for secret in [APP_SECRET, ACCESS_TOKEN, VERIFY_TOKEN] {
        assert!(!account.contains(secret), "the API returned a secret");
    }
    // ... nor stored in plaintext in the log.
    let row: (String,) = sqlx::query_as("SELECT payload FROM events WHERE event_type = 'AccountCreated'")
        .fetch_one(&app.core.db.any)
        .await
        .expect("event");
    for secret in [APP_SECRET, ACCESS_TOKEN, VERIFY_TOKEN] {
        assert!(!row.0.contains(secret), "a secret is stored in plaintext");
    }
    app.stop().await;
}

#[actix_web::test]
async fn agents_see_only_the_accounts_they_were_added_to() {
    let app = spawn_app(Backend::Sqlite).await;
    let s = app.setup(10).await;
    let (_outsider, outsider_token) = app.create_agent("Out").await;
    assert_eq!(app.webhook(&s.account_id, &fixture("meta_inbound_text.json")).await.status(), 200);
    app.settle().await; // membership is a projection too
    let list = app.eventually("/api/interactions", |v| v.as_array().map(Vec::len) == Some(1)).await;
    let id = list[0]["interaction_id"].as_str().expect("id").to_owned();
    // The member sees it.
    let mine: Value = app.get(&s.agent_token, "/api/interactions").await.json().await.expect("json");
    assert_eq!(mine.as_array().map(Vec::len), Some(1));
    assert_eq!(app.get(&s.agent_token, &format!("/api/interactions/{id}")).await.status(), 200);
    // The outsider does not, and cannot tell it exists.
    let theirs: Value = app.get(&outsider_token, "/api/interactions").await.json().await.expect("json");
    assert_eq!(theirs.as_array().map(Vec::len), Some(0));
    let r = app.get(&outsider_token, &format!("/api/interactions/{id}")).await;
    assert_eq!(error_code(r).await, (404, "interaction_not_found".into()));
    // The raw history is for supervisors.
    let r = app.get(&s.agent_token, &format!("/api/interactions/{id}/events")).await;
    assert_eq!(error_code(r).await, (403, "forbidden".into()));
    app.stop().await;
}

#[actix_web::test]
async fn an_agent_outside_the_account_cannot_take_its_interactions() {
    let app = spawn_app(Backend::Sqlite).await;
    let s = app.setup(10).await;
    // Ring-all: every eligible member is offered at once, so an offer missing is an exclusion.
    let r = app
        .put(
            &app.admin_token,
            &format!("/api/queues/{}", s.queue_id),
            json!({"offer_timeout_secs": 10, "strategy": "ring_all", "weight": 5}),
        )
        .await;
    assert_eq!(r.status(), 204);
    // Ana is in the queue but was never added to the account.
    let (ana, ana_token) = app.create_agent("Ana").await;
    let r = app
        .post(&app.admin_token, &format!("/api/queues/{}/agents", s.queue_id), json!({"agent_id": ana}))
        .await;
    assert_eq!(r.status(), 204);
    app.agent_ready(&ana_token).await;
    app.agent_ready(&s.agent_token).await;
    app.settle().await;
    let mut ws = app.connect_ws(&s.agent_token).await;
    assert_eq!(app.webhook(&s.account_id, &fixture("meta_inbound_text.json")).await.status(), 200);
    // Only the member is offered it; the board says why Ana was not.
    let offer = ws.next_of("offer").await;
    let id = offer["interaction_id"].as_str().expect("id").to_owned();
    app.settle().await;
    assert_eq!(app.count_events(Some("OfferMade")).await, 1);
    let events = app.get_json(&app.admin_token, &format!("/api/interactions/{id}/events")).await;
    let made = events
        .as_array()
        .expect("array")
        .iter()
        .find(|e| e["event_type"] == "OfferMade")
        .expect("an offer")
        .clone();
    let candidates =
        made["payload"]["OfferMade"]["explanation"]["candidates"].as_array().expect("candidates");
    let ana_considered = candidates.iter().find(|c| c["agent_id"] == ana.as_str()).expect("Ana considered");
    assert_eq!(ana_considered["excluded"], "not_on_account");
    // Nor can she take it by calling accept.
    let r = app.post(&ana_token, &format!("/api/interactions/{id}/accept"), json!({})).await;
    assert_eq!(error_code(r).await, (403, "not_account_member".into()));
    app.stop().await;
}

#[actix_web::test]
async fn messages_for_another_phone_number_are_not_recorded_on_this_account() {
    let app = spawn_app(Backend::Sqlite).await;
    let s = app.setup(10).await;
    app.settle().await;
    let before = app.count_events(None).await;
    let other = String::from_utf8(fixture("meta_inbound_text.json"))
        .expect("utf8")
        .replace("\"phone_number_id\": \"100000000000002\"", "\"phone_number_id\": \"999\"");
    assert_eq!(app.webhook(&s.account_id, other.as_bytes()).await.status(), 200);
    assert_eq!(app.count_events(None).await, before);
    app.stop().await;
}

#[actix_web::test]
async fn tokens_in_query_strings_are_refused_outside_the_websocket() {
    let app = spawn_app(Backend::Sqlite).await;
    let r = app
        .client
        .get(app.url(&format!("/api/queues/status?access_token={}", app.admin_token)))
        .send()
        .await
        .expect("get");
    assert_eq!(error_code(r).await, (401, "unauthorized".into()));
    app.stop().await;
}

#[actix_web::test]
async fn oversized_and_non_json_api_bodies_are_refused() {
    let app = spawn_app(Backend::Sqlite).await;
    let r = app.post(&app.admin_token, "/api/queues", json!({"name": "x".repeat(70 * 1024)})).await;
    assert_eq!(error_code(r).await, (413, "payload_too_large".into()));
    let r = app
        .client
        .post(app.url("/api/queues"))
        .bearer_auth(&app.admin_token)
        .header("Content-Type", "text/plain")
        .body("{\"name\":\"Q\"}")
        .send()
        .await
        .expect("post");
    assert_eq!(error_code(r).await, (415, "unsupported_media_type".into()));
    app.stop().await;
}
