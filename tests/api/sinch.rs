//! The whole conversation through the Sinch Conversation API: callbacks signed with a nonce
//! and a timestamp (stale ones refused), sends with an OAuth2 token fetched once and cached,
//! delivery reports folded forward-only.

use serde_json::{Value, json};
use switchboard::providers::sinch;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::*;

const WEBHOOK_SECRET: &str = "test_webhook_secret_0123456789";
const APP_ID: &str = "01HFAKEAPP0000000000000000";
const PROJECT: &str = "project-1";

async fn post_signed(app: &TestApp, account_id: &str, body: &[u8], timestamp: i64) -> reqwest::Response {
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    let ts = timestamp.to_string();
    let signature = sinch::sign(WEBHOOK_SECRET.as_bytes(), body, &nonce, &ts);
    app.client
        .post(app.url(&format!("/webhooks/whatsapp/{account_id}")))
        .header("Content-Type", "application/json")
        .header(sinch::NONCE_HEADER, nonce)
        .header(sinch::TIMESTAMP_HEADER, ts)
        .header(sinch::SIGNATURE_HEADER, signature)
        .body(body.to_vec())
        .send()
        .await
        .expect("request")
}

#[actix_web::test]
async fn a_whole_conversation_through_sinch() {
    let app = spawn_app(Backend::Sqlite).await;
    let r = app
        .post(
            &app.admin_token,
            "/api/accounts",
            json!({"name": "Sinch line", "key": "SNC", "provider": {"type": "sinch", "project_id": PROJECT,
                   "app_id": APP_ID, "key_id": "key-1", "key_secret": "key-secret-1",
                   "webhook_secret": WEBHOOK_SECRET, "api_base_url": app.graph.uri(), "auth_base_url": app.graph.uri()}}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let account: Value = r.json().await.expect("json");
    assert!(!account.to_string().contains("key-secret-1") && !account.to_string().contains(WEBHOOK_SECRET));
    let account_id = account["account_id"].as_str().expect("id").to_owned();
    let queue: Value =
        app.post(&app.admin_token, "/api/queues", json!({"name": "Q"})).await.json().await.expect("json");
    let queue_id = queue["id"].as_str().expect("id").to_owned();
    let (agent_id, agent_token) = app.create_agent("Sam").await;
    app.enrol(&account_id, &queue_id, &agent_id).await;
    let r = app
        .put(&app.admin_token, &format!("/api/accounts/{account_id}/routing"), json!({"queue_id": queue_id}))
        .await;
    assert_eq!(r.status(), 204);
    Mock::given(method("POST"))
        .and(path("/oauth2/token"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(fixture("sinch_oauth_token_response.json")))
        .expect(1)
        .mount(&app.graph)
        .await;
    let token: Value = serde_json::from_slice(&fixture("sinch_oauth_token_response.json")).expect("json");
    let bearer = format!("Bearer {}", token["access_token"].as_str().expect("token"));
    Mock::given(method("POST"))
        .and(path(format!("/v1/projects/{PROJECT}/messages:send")))
        .and(header("Authorization", bearer.as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(fixture("sinch_send_response.json")))
        .expect(2)
        .mount(&app.graph)
        .await;
    app.agent_ready(&agent_token).await;
    let mut ws = app.connect_ws(&agent_token).await;

    let inbound = fixture("sinch_inbound_text.json");
    let now = chrono::Utc::now().timestamp();
    app.settle().await;
    let before = app.count_events(None).await;
    // A stale timestamp (a replay) and an unsigned callback are refused and append nothing.
    let r = post_signed(&app, &account_id, &inbound, now - 3600).await;
    assert_eq!(
        (r.status().as_u16(), r.json::<Value>().await.expect("json")["error"]["code"].clone()),
        (401, json!("stale_timestamp"))
    );
    let r = app.webhook_signed(&account_id, &inbound, None).await;
    assert_eq!(r.status(), 401);
    assert_eq!(app.count_events(None).await, before);

    assert_eq!(post_signed(&app, &account_id, &inbound, now).await.status(), 200);
    let offer = ws.next_of("offer").await;
    let id = offer["interaction_id"].as_str().expect("id").to_owned();
    assert_eq!(
        app.post(&agent_token, &format!("/api/interactions/{id}/accept"), json!({})).await.status(),
        204
    );
    // Two sends, one token.
    for text in ["Hello Jane", "How can I help?"] {
        let r =
            app.post(&agent_token, &format!("/api/interactions/{id}/messages"), json!({"text": text})).await;
        assert_eq!(r.status(), 202);
        assert_eq!(ws.next_of("message_status").await["status"], "accepted");
    }
    // The delivery report names the message Sinch accepted; both sends got the same fixture id,
    // and the first one recorded it.
    assert_eq!(post_signed(&app, &account_id, &fixture("sinch_delivery.json"), now).await.status(), 200);
    assert_eq!(ws.next_of("message_status").await["status"], "delivered");
    app.stop().await;
}
