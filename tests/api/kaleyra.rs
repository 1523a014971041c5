//! The whole conversation through Kaleyra: callbacks authenticated by the shared header the
//! account's callback profile sends (Kaleyra signs nothing), v2 sends with the `api-key`
//! header, status callbacks keyed by the WhatsApp message id.

use serde_json::{Value, json};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::*;

const SECRET: &str = "kaleyra-callback-secret";

async fn post_callback(
    app: &TestApp,
    account_id: &str,
    body: &[u8],
    secret: Option<&str>,
) -> reqwest::Response {
    let mut request = app
        .client
        .post(app.url(&format!("/webhooks/whatsapp/{account_id}")))
        .header("Content-Type", "application/json")
        .body(body.to_vec());
    if let Some(secret) = secret {
        request = request.header("X-Callback-Token", secret);
    }
    request.send().await.expect("request")
}

#[actix_web::test]
async fn a_whole_conversation_through_kaleyra() {
    let app = spawn_app(Backend::Sqlite).await;
    let r = app
        .post(
            &app.admin_token,
            "/api/accounts",
            json!({"name": "Kaleyra line", "key": "KLR", "provider": {"type": "kaleyra",
                   "api_base_url": app.graph.uri(), "waba_id": "100000000000001", "account_sid": "HXIN0001",
                   "api_key": "kaleyra-api-key", "business_number": "+15557654321",
                   "callback_auth": {"kind": "shared_header", "name": "X-Callback-Token", "value": SECRET}}}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let account: Value = r.json().await.expect("json");
    assert!(!account.to_string().contains(SECRET) && !account.to_string().contains("kaleyra-api-key"));
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
        .and(path("/v2/HXIN0001/whatsapp/15557654321/messages"))
        .and(header("api-key", "kaleyra-api-key"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(fixture("meta_send_response.json")))
        .expect(1)
        .mount(&app.graph)
        .await;
    app.agent_ready(&agent_token).await;
    let mut ws = app.connect_ws(&agent_token).await;

    let inbound = fixture("kaleyra_inbound_text.json");
    app.settle().await;
    let before = app.count_events(None).await;
    assert_eq!(post_callback(&app, &account_id, &inbound, None).await.status(), 401);
    assert_eq!(post_callback(&app, &account_id, &inbound, Some("wrong")).await.status(), 401);
    assert_eq!(app.count_events(None).await, before);

    assert_eq!(post_callback(&app, &account_id, &inbound, Some(SECRET)).await.status(), 200);
    // Kaleyra's inbound callbacks carry no message id; the derived one makes a redelivery a no-op.
    assert_eq!(post_callback(&app, &account_id, &inbound, Some(SECRET)).await.status(), 200);
    assert_eq!(app.count_events(Some("CustomerMessageReceived")).await, 1);

    let offer = ws.next_of("offer").await;
    let id = offer["interaction_id"].as_str().expect("id").to_owned();
    assert_eq!(
        app.post(&agent_token, &format!("/api/interactions/{id}/accept"), json!({})).await.status(),
        204
    );
    let r = app
        .post(&agent_token, &format!("/api/interactions/{id}/messages"), json!({"text": "Hello Jane"}))
        .await;
    assert_eq!(r.status(), 202);
    let accepted = ws.next_of("message_status").await;
    assert_eq!(
        (accepted["status"].as_str(), accepted["provider_message_id"].as_str()),
        (Some("accepted"), Some("wamid.FAKEOUT0001"))
    );
    let delivered = fixture("kaleyra_status_delivered.json");
    assert_eq!(post_callback(&app, &account_id, &delivered, Some(SECRET)).await.status(), 200);
    assert_eq!(ws.next_of("message_status").await["status"], "delivered");
    app.stop().await;
}
