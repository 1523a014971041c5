//! Media both ways and a template outside the 24 h window, once per provider other than
//! Meta (which `media.rs` covers), on PostgreSQL: the customer's file is fetched from the
//! provider's (mock) media URL into the blob store, the agent's upload goes out as a signed
//! link the provider can fetch, and after 25 h a text is refused with the recontact template
//! while the template itself goes through in the provider's own template format.

use std::time::Duration;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use switchboard::providers::{sinch, twilio};
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::*;

const PHOTO: &[u8] = b"\xFF\xD8\xFF\xE0 the customer's photo";
const TWILIO_TOKEN: &str = "test_auth_token_0123456789abcdef";
const TWILIO_SID: &str = "AC00000000000000000000000000000001";
const SINCH_SECRET: &str = "test_webhook_secret_0123456789";
const SINCH_PROJECT: &str = "project-1";
const KALEYRA_SECRET: &str = "kaleyra-callback-secret";

#[derive(Clone, Copy, Debug)]
enum Provider {
    Twilio,
    Sinch,
    Kaleyra,
}

impl Provider {
    fn account(self, app: &TestApp) -> Value {
        let base = app.graph.uri();
        match self {
            Provider::Twilio => {
                json!({"type": "twilio", "account_sid": TWILIO_SID, "auth_token": TWILIO_TOKEN,
                                       "business_number": "+15557654321", "api_base_url": base})
            }
            Provider::Sinch => json!({"type": "sinch", "project_id": SINCH_PROJECT,
                                      "app_id": "01HFAKEAPP0000000000000000", "key_id": "key-1",
                                      "key_secret": "key-secret-1", "webhook_secret": SINCH_SECRET,
                                      "api_base_url": base, "auth_base_url": base}),
            Provider::Kaleyra => {
                json!({"type": "kaleyra", "api_base_url": base, "waba_id": "100000000000001",
                                        "account_sid": "HXIN0001", "api_key": "kaleyra-api-key",
                                        "business_number": "+15557654321",
                                        "callback_auth": {"kind": "shared_header", "name": "X-Callback-Token",
                                                          "value": KALEYRA_SECRET}})
            }
        }
    }

    /// The provider's inbound-media fixture, its media URL pointed at the mock, and the
    /// path the mock serves the file on.
    fn inbound_media(self, app: &TestApp) -> (Vec<u8>, String) {
        let base = app.graph.uri();
        match self {
            Provider::Twilio => {
                let body = String::from_utf8(fixture("twilio_inbound_media.form")).expect("utf8");
                let encoded_base = base.replace(':', "%3A").replace('/', "%2F");
                let body = body.replace("https%3A%2F%2Fapi.twilio.com", &encoded_base);
                let media_path = format!(
                    "/2010-04-01/Accounts/{TWILIO_SID}/Messages/MMb2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2/Media/MEd4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4"
                );
                (body.into_bytes(), media_path)
            }
            Provider::Sinch => {
                let body = String::from_utf8(fixture("sinch_inbound_media.json")).expect("utf8");
                let body = body.replace("https://example-media.sinch.invalid", &base);
                (body.into_bytes(), "/whatsapp/FAKE-MEDIA-ID.jpg".into())
            }
            Provider::Kaleyra => {
                let body = String::from_utf8(fixture("kaleyra_inbound_media.json")).expect("utf8");
                let body = body.replace("https://example-bucket.s3.amazonaws.com", &base);
                (body.into_bytes(), "/kaleyra/FAKE-MEDIA.jpg".into())
            }
        }
    }

    async fn post_inbound(self, app: &TestApp, account_id: &str, body: &[u8]) -> reqwest::Response {
        let url = app.url(&format!("/webhooks/whatsapp/{account_id}"));
        let request = app.client.post(&url).body(body.to_vec());
        let request = match self {
            Provider::Twilio => {
                let params = twilio::parse_form(body).expect("form");
                request
                    .header("Content-Type", "application/x-www-form-urlencoded")
                    .header("X-Twilio-Signature", twilio::expected_signature(TWILIO_TOKEN, &url, &params))
            }
            Provider::Sinch => {
                let nonce = uuid::Uuid::new_v4().simple().to_string();
                let ts = chrono::Utc::now().timestamp().to_string();
                let signature = sinch::sign(SINCH_SECRET.as_bytes(), body, &nonce, &ts);
                request
                    .header("Content-Type", "application/json")
                    .header(sinch::NONCE_HEADER, nonce)
                    .header(sinch::TIMESTAMP_HEADER, ts)
                    .header(sinch::SIGNATURE_HEADER, signature)
            }
            Provider::Kaleyra => {
                request.header("Content-Type", "application/json").header("X-Callback-Token", KALEYRA_SECRET)
            }
        };
        request.send().await.expect("request")
    }

    /// Mounts the send endpoint (and Sinch's token endpoint); returns the send path.
    async fn mock_sends(self, app: &TestApp) -> String {
        let (send_path, answer) = match self {
            Provider::Twilio => (
                format!("/2010-04-01/Accounts/{TWILIO_SID}/Messages.json"),
                ResponseTemplate::new(201).set_body_bytes(fixture("twilio_send_response.json")),
            ),
            Provider::Sinch => {
                Mock::given(method("POST"))
                    .and(path("/oauth2/token"))
                    .respond_with(
                        ResponseTemplate::new(200).set_body_bytes(fixture("sinch_oauth_token_response.json")),
                    )
                    .mount(&app.graph)
                    .await;
                (
                    format!("/v1/projects/{SINCH_PROJECT}/messages:send"),
                    ResponseTemplate::new(200).set_body_bytes(fixture("sinch_send_response.json")),
                )
            }
            Provider::Kaleyra => (
                "/v2/HXIN0001/whatsapp/15557654321/messages".to_owned(),
                ResponseTemplate::new(200).set_body_bytes(fixture("meta_send_response.json")),
            ),
        };
        Mock::given(method("POST")).and(path(send_path.clone())).respond_with(answer).mount(&app.graph).await;
        send_path
    }

    fn template_name(self) -> &'static str {
        match self {
            Provider::Twilio => "HXb5b62575e6e4ff6129ad7c8efe1f983e",
            _ => "we_are_back",
        }
    }
}

/// Every string in a JSON value, or every value of a form body.
fn strings_in(body: &[u8]) -> Vec<String> {
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::String(s) => out.push(s.clone()),
            Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            Value::Object(o) => o.values().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    match serde_json::from_slice::<Value>(body) {
        Ok(v) => walk(&v, &mut out),
        Err(_) => out.extend(twilio::parse_form(body).unwrap_or_default().into_iter().map(|(_, v)| v)),
    }
    out
}

async fn sends(app: &TestApp, send_path: &str) -> Vec<Vec<u8>> {
    app.graph
        .received_requests()
        .await
        .expect("recorded")
        .into_iter()
        .filter(|r| r.url.path() == send_path)
        .map(|r| r.body)
        .collect()
}

async fn media_and_template(provider: Provider) {
    let app = spawn_app(Backend::Postgres).await;
    let r = app
        .post(
            &app.admin_token,
            "/api/accounts",
            json!({"name": "Line", "key": "LN", "provider": provider.account(&app)}),
        )
        .await;
    assert_eq!(r.status(), 201, "{provider:?}");
    let account_id = r.json::<Value>().await.expect("json")["account_id"].as_str().expect("id").to_owned();
    let queue: Value =
        app.post(&app.admin_token, "/api/queues", json!({"name": "Q"})).await.json().await.expect("json");
    let queue_id = queue["id"].as_str().expect("id").to_owned();
    let (agent_id, agent_token) = app.create_agent("Sam").await;
    app.enrol(&account_id, &queue_id, &agent_id).await;
    let r = app
        .put(&app.admin_token, &format!("/api/accounts/{account_id}/routing"), json!({"queue_id": queue_id}))
        .await;
    assert_eq!(r.status(), 204);
    let send_path = provider.mock_sends(&app).await;
    let (inbound, media_path) = provider.inbound_media(&app);
    Mock::given(method("GET"))
        .and(path(media_path))
        .respond_with(
            ResponseTemplate::new(200).insert_header("Content-Type", "image/jpeg").set_body_bytes(PHOTO),
        )
        .mount(&app.graph)
        .await;
    app.agent_ready(&agent_token).await;
    let mut ws = app.connect_ws(&agent_token).await;

    // The customer's photo is downloaded and stored; the agent can open it.
    assert_eq!(provider.post_inbound(&app, &account_id, &inbound).await.status(), 200, "{provider:?}");
    let offer = ws.next_of("offer").await;
    let id = offer["interaction_id"].as_str().expect("id").to_owned();
    assert_eq!(
        app.post(&agent_token, &format!("/api/interactions/{id}/accept"), json!({})).await.status(),
        204
    );
    let detail = app
        .eventually(&format!("/api/interactions/{id}"), |v| v["messages"][0]["media"]["state"] == "stored")
        .await;
    assert_eq!(detail["messages"][0]["media"]["sha256"], hex::encode(Sha256::digest(PHOTO)));
    assert_eq!(detail["messages"][0]["kind"], "image");
    let url = detail["messages"][0]["media"]["url"].as_str().expect("url").to_owned();
    let r = app.get(&agent_token, &url).await;
    assert_eq!(r.bytes().await.expect("bytes").as_ref(), PHOTO);

    // The agent sends a picture: the provider gets a link to this server that serves it.
    let reply = b"\x89PNG fake screenshot".to_vec();
    let r = app
        .client
        .post(app.url(&format!("/api/interactions/{id}/media?caption=here%20it%20is")))
        .bearer_auth(&agent_token)
        .header("Content-Type", "image/png")
        .body(reply.clone())
        .send()
        .await
        .expect("upload");
    assert_eq!(r.status(), 202);
    assert_eq!(ws.next_of("message_status").await["status"], "accepted", "{provider:?}");
    let sent = sends(&app, &send_path).await;
    assert_eq!(sent.len(), 1);
    let link = strings_in(&sent[0])
        .into_iter()
        .find(|s| s.starts_with(&format!("{}/media/", app.address)))
        .unwrap_or_else(|| panic!("{provider:?} send carries a link: {}", String::from_utf8_lossy(&sent[0])));
    let fetched = app.client.get(&link).send().await.expect("provider fetch");
    assert_eq!(fetched.headers()["content-type"], "image/png");
    assert_eq!(fetched.bytes().await.expect("bytes").as_ref(), reply.as_slice());

    // 25 h later: a text is refused with the recontact template; the template goes out.
    let template = json!({"name": provider.template_name(), "language": "en_US", "parameters": ["Jane"]});
    let r = app
        .put(&app.admin_token, &format!("/api/accounts/{account_id}/recontact-template"), template.clone())
        .await;
    assert_eq!(r.status(), 204);
    app.core.clock.advance(Duration::from_secs(25 * 3600));
    let r = app.post(&agent_token, &format!("/api/interactions/{id}/messages"), json!({"text": "hi"})).await;
    assert_eq!(r.status(), 409);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["error"]["code"], "window_closed");
    assert_eq!(body["error"]["details"]["recontact_template"], template);
    let r = app.post(&agent_token, &format!("/api/interactions/{id}/templates"), template).await;
    assert_eq!(r.status(), 202);
    assert_eq!(ws.next_of("message_status").await["status"], "accepted", "{provider:?}");
    let sent = sends(&app, &send_path).await;
    assert_eq!(sent.len(), 2);
    let values = strings_in(&sent[1]);
    assert!(
        values.iter().any(|v| v == provider.template_name()),
        "{provider:?} names the template: {values:?}"
    );
    assert!(values.iter().any(|v| v.contains("Jane")), "{provider:?} carries the parameter: {values:?}");
    app.stop().await;
}

#[actix_web::test]
async fn media_both_ways_and_a_template_through_twilio_on_postgres() {
    media_and_template(Provider::Twilio).await;
}

#[actix_web::test]
async fn media_both_ways_and_a_template_through_sinch_on_postgres() {
    media_and_template(Provider::Sinch).await;
}

#[actix_web::test]
async fn media_both_ways_and_a_template_through_kaleyra_on_postgres() {
    media_and_template(Provider::Kaleyra).await;
}
