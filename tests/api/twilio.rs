//! The whole conversation through Twilio: form-encoded, `X-Twilio-Signature`-signed webhooks
//! (signed over the public URL), sends through a mock Messages API with Basic auth, status
//! callbacks folded forward-only.

use serde_json::{Value, json};
use switchboard::providers::twilio;
use wiremock::matchers::{body_string_contains, header_exists, method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::*;

const AUTH_TOKEN: &str = "test_auth_token_0123456789abcdef";
const ACCOUNT_SID: &str = "AC00000000000000000000000000000001";

async fn twilio_account(app: &TestApp) -> String {
    let r = app
        .post(
            &app.admin_token,
            "/api/accounts",
            json!({"name": "Twilio line", "key": "TWL", "provider": {"type": "twilio",
                   "account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN, "business_number": "+15557654321",
                   "api_base_url": app.graph.uri()}}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["provider"], "twilio");
    assert!(!body.to_string().contains(AUTH_TOKEN), "the auth token is never returned");
    body["account_id"].as_str().expect("id").to_owned()
}

async fn post_form(
    app: &TestApp,
    account_id: &str,
    body: &[u8],
    signature: Option<String>,
) -> reqwest::Response {
    let mut request = app
        .client
        .post(app.url(&format!("/webhooks/whatsapp/{account_id}")))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(body.to_vec());
    if let Some(signature) = signature {
        request = request.header("X-Twilio-Signature", signature);
    }
    request.send().await.expect("request")
}

/// Signs like Twilio: over the URL it called and the decoded form pairs.
fn sign(app: &TestApp, account_id: &str, body: &[u8]) -> String {
    let params = twilio::parse_form(body).expect("form");
    twilio::expected_signature(AUTH_TOKEN, &app.url(&format!("/webhooks/whatsapp/{account_id}")), &params)
}

#[actix_web::test]
async fn a_whole_conversation_through_twilio() {
    let app = spawn_app(Backend::Sqlite).await;
    let account_id = twilio_account(&app).await;
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
        .and(path(format!("/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json")))
        .and(header_exists("Authorization"))
        .and(body_string_contains("To=whatsapp%3A%2B15551234567"))
        .and(body_string_contains("From=whatsapp%3A%2B15557654321"))
        .and(body_string_contains("StatusCallback="))
        .respond_with(ResponseTemplate::new(201).set_body_bytes(fixture("twilio_send_response.json")))
        .expect(1)
        .mount(&app.graph)
        .await;
    app.agent_ready(&agent_token).await;
    let mut ws = app.connect_ws(&agent_token).await;

    // Unsigned and wrongly signed deliveries are refused and append nothing.
    let inbound = fixture("twilio_inbound_text.form");
    app.settle().await;
    let before = app.count_events(None).await;
    let r = post_form(&app, &account_id, &inbound, None).await;
    assert_eq!(r.status(), 401);
    let r = post_form(&app, &account_id, &inbound, Some("AAAAAAAAAAAAAAAAAAAAAAAAAAA=".into())).await;
    assert_eq!(r.status(), 401);
    assert_eq!(app.count_events(None).await, before);

    // The customer writes; a redelivery appends nothing.
    let signature = sign(&app, &account_id, &inbound);
    assert_eq!(post_form(&app, &account_id, &inbound, Some(signature.clone())).await.status(), 200);
    assert_eq!(post_form(&app, &account_id, &inbound, Some(signature)).await.status(), 200);
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
    assert_eq!(accepted["status"], "accepted");
    assert_eq!(accepted["provider_message_id"], "SMc3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3");

    // Status callbacks: delivered, read, then a late "sent" that changes nothing.
    for (name, expected) in [
        ("twilio_status_delivered.form", Some("delivered")),
        ("twilio_status_read.form", Some("read")),
        ("twilio_status_sent.form", None),
    ] {
        let body = fixture(name);
        let r = post_form(&app, &account_id, &body, Some(sign(&app, &account_id, &body))).await;
        assert_eq!(r.status(), 200, "{name}");
        if let Some(expected) = expected {
            assert_eq!(ws.next_of("message_status").await["status"], expected);
        }
    }
    let detail =
        app.eventually(&format!("/api/interactions/{id}"), |v| v["messages"][1]["status"] == "read").await;
    assert_eq!(detail["customer"], "+15551234567");
    assert_eq!(detail["messages"][0]["body"], "Hi, I need help with order 4711");
    app.stop().await;
}

#[actix_web::test]
async fn twilio_accounts_have_no_meta_handshake_and_need_valid_credentials() {
    let app = spawn_app(Backend::Sqlite).await;
    let account_id = twilio_account(&app).await;
    let r = app
        .client
        .get(app.url(&format!(
            "/webhooks/whatsapp/{account_id}?hub.mode=subscribe&hub.challenge=1&hub.verify_token=x"
        )))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.expect("json")["error"]["code"], "no_handshake");
    let r = app
        .post(
            &app.admin_token,
            "/api/accounts",
            json!({"name": "T", "key": "T2", "provider": {"type": "twilio",
              "account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN, "business_number": "15557654321"}}),
        )
        .await;
    assert_eq!(r.status(), 422);
    assert_eq!(r.json::<Value>().await.expect("json")["error"]["code"], "invalid_phone_number");
    app.stop().await;
}

/// An account behind its own public domain (the seed's "Proxy or Motion Domain"): its
/// receive URL is under that domain, and Twilio's signature, made over the URL Twilio called,
/// verifies against it, not against the server's own URL.
#[actix_web::test]
async fn an_account_behind_its_own_public_domain_verifies_twilio_signatures_over_it() {
    let app = spawn_app(Backend::Sqlite).await;
    let account_id = twilio_account(&app).await;
    let domain = "https://wa.example.com/switchboard";
    let r = app
        .client
        .patch(app.url(&format!("/api/accounts/{account_id}")))
        .bearer_auth(&app.admin_token)
        .json(&json!({"public_domain": domain}))
        .send()
        .await
        .expect("patch");
    assert_eq!(r.status(), 200);
    let account: Value = r.json().await.expect("json");
    let receive_url = format!("{domain}/webhooks/whatsapp/{account_id}");
    assert_eq!(account["receive_url"], receive_url.as_str());

    let inbound = fixture("twilio_inbound_text.form");
    let params = twilio::parse_form(&inbound).expect("form");
    let over_server = sign(&app, &account_id, &inbound);
    let r = post_form(&app, &account_id, &inbound, Some(over_server)).await;
    assert_eq!(r.status(), 401, "signed over the server's URL: not the URL Twilio was given");
    let over_domain = twilio::expected_signature(AUTH_TOKEN, &receive_url, &params);
    assert_eq!(post_form(&app, &account_id, &inbound, Some(over_domain)).await.status(), 200);
    app.settle().await;
    assert_eq!(app.count_events(Some("CustomerMessageReceived")).await, 1);
    app.stop().await;
}
