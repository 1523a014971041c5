//! Offer notifications and websocket visibility through the HTTP API and real websockets:
//! the settings endpoints refuse every bad input (naming the field, recording nothing), every
//! offer carries the rendered notification (the seed's example, with and without a queue; a
//! custom template with its flags), and an agent removed from an account hears nothing more
//! of it, at once. SQLite and PostgreSQL.

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Value, json};
use switchboard::auth::Role;
use switchboard::core::Cause;
use switchboard_domain::account::AccountCommand;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::helpers::*;

const SEED_TEMPLATE: &str =
    "Account: {{account.name}} {{#queue}}Queue: {{queue.name}} {{/queue}}From : {{contact.mobile}}";

/// A Meta text webhook from `from` (digits), profile name Jane.
fn text(wamid: &str, from: &str, body: &str) -> Vec<u8> {
    meta_text(wamid, from, "Jane", body)
}

/// A websocket that keeps every frame (the shared helper skips other types; visibility
/// tests need to see that a frame never came).
struct Socket {
    stream: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
}

impl Socket {
    async fn connect(app: &TestApp, token: &str) -> Self {
        let mut request = format!("ws://127.0.0.1:{}/ws", app.port).into_client_request().expect("request");
        request.headers_mut().insert("Authorization", format!("Bearer {token}").parse().expect("header"));
        let (stream, _) = tokio_tungstenite::connect_async(request).await.expect("websocket connects");
        Self { stream }
    }

    /// Every JSON frame up to and including the first of type `kind` (within 10 s).
    async fn until(&mut self, kind: &str) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let mut seen = vec![];
        loop {
            let frame = tokio::time::timeout_at(deadline, self.stream.next())
                .await
                .unwrap_or_else(|_| panic!("no `{kind}` frame within 10 s; saw {seen:#?}"));
            let Some(Ok(message)) = frame else { panic!("websocket closed while waiting for `{kind}`") };
            if let tokio_tungstenite::tungstenite::Message::Text(text) = message {
                let value: Value = serde_json::from_str(&text).expect("json frame");
                let done = value["type"] == kind;
                seen.push(value);
                if done {
                    return seen;
                }
            }
        }
    }

    async fn next_of(&mut self, kind: &str) -> Value {
        self.until(kind).await.pop().expect("the frame")
    }
}

async fn notification_of(app: &TestApp, account_id: &str) -> Value {
    app.get_json(&app.admin_token, &format!("/api/accounts/{account_id}/notification")).await
}

/// Every bad input is refused with a code naming the field, and records nothing.
async fn settings_validation(backend: Backend) {
    let app = spawn_app(backend).await;
    let s = app.setup(30).await;
    let path = format!("/api/accounts/{}/notification", s.account_id);
    let supervisor = switchboard::auth::issue(&app.core.db.any, Role::Supervisor, None, "sup", 0)
        .await
        .expect("supervisor token");

    // The default until set.
    let initial = notification_of(&app, &s.account_id).await;
    assert_eq!(initial, json!({"sound": true, "shake": false, "template": SEED_TEMPLATE, "default": true}));

    let cases = [
        // (body, status, code, field, (position, line, column))
        (
            json!({"template": "Hi\n{{#queue}}Queue: {{queue.name}}"}),
            422,
            "invalid_template",
            "template",
            Some((3, 2, 1)),
        ),
        (json!({"template": "{{#a}}x{{/b}}"}), 422, "invalid_template", "template", Some((7, 1, 8))),
        (json!({"template": "ab{{/queue}}"}), 422, "invalid_template", "template", Some((2, 1, 3))),
        (json!({"template": "From {{contact.mobile"}), 422, "invalid_template", "template", Some((5, 1, 6))),
        (json!({"template": "x {{ }}"}), 422, "invalid_template", "template", Some((2, 1, 3))),
        (json!({"template": "{{> partial}}"}), 422, "invalid_template", "template", Some((0, 1, 1))),
        (json!({"template": "a".repeat(4097)}), 422, "invalid_template", "template", Some((4096, 1, 4097))),
        (json!({"template": 5}), 422, "invalid_notification", "template", None),
        (json!({"sound": true}), 422, "invalid_notification", "template", None),
        (json!({"template": "ok", "sound": "yes"}), 422, "invalid_notification", "sound", None),
        (json!({"template": "ok", "shake": 1}), 422, "invalid_notification", "shake", None),
        (json!({"template": "ok", "shaek": true}), 422, "invalid_notification", "shaek", None),
    ];
    for (body, status, code, field, at) in cases {
        let r = app.put(&app.admin_token, &path, body.clone()).await;
        assert_eq!(r.status().as_u16(), status, "{body}");
        let error: Value = r.json().await.expect("json");
        assert_eq!(error["error"]["code"], code, "{body}: {error}");
        assert_eq!(error["error"]["details"]["field"], field, "{body}: {error}");
        assert!(error["error"]["message"].as_str().unwrap_or_default().contains(field), "{error}");
        if let Some((position, line, column)) = at {
            let details = &error["error"]["details"];
            assert_eq!(
                (&details["position"], &details["line"], &details["column"]),
                (&json!(position), &json!(line), &json!(column)),
                "{body}: {error}"
            );
        }
    }
    // Not JSON, not an object, wrong roles, unknown account.
    let r = app.send_raw(reqwest::Method::PUT, &app.admin_token, &path, "{\"template\": ").await;
    assert_eq!(error_of(r).await.0, 400);
    assert_eq!(error_of(app.put(&app.admin_token, &path, json!(["x"])).await).await.1, "invalid_request");
    let valid = json!({"template": "ok"});
    assert_eq!(error_of(app.put(&supervisor, &path, valid.clone()).await).await.1, "forbidden");
    assert_eq!(error_of(app.put(&s.agent_token, &path, valid.clone()).await).await.1, "forbidden");
    assert_eq!(error_of(app.get(&s.agent_token, &path).await).await.1, "forbidden");
    let nowhere = format!("/api/accounts/{}/notification", uuid::Uuid::now_v7());
    assert_eq!(error_of(app.put(&app.admin_token, &nowhere, valid.clone()).await).await.0, 404);
    assert_eq!(error_of(app.get(&app.admin_token, &nowhere).await).await.1, "account_not_found");
    assert_eq!(
        error_of(app.get(&app.admin_token, "/api/accounts/nope/notification").await).await.1,
        "account_not_found"
    );

    // Nothing was recorded.
    assert_eq!(app.count_events(Some("NotificationSet")).await, 0);
    assert_eq!(notification_of(&app, &s.account_id).await, initial);

    // A valid one is stored, read back by supervisors too, and repeating it records nothing.
    let custom = json!({"template": "{{contact.name}}: {{message.text}}", "sound": false, "shake": true});
    assert_eq!(app.put(&app.admin_token, &path, custom.clone()).await.status(), 204);
    assert_eq!(app.put(&app.admin_token, &path, custom).await.status(), 204);
    assert_eq!(app.count_events(Some("NotificationSet")).await, 1);
    let read = app.get(&supervisor, &path).await.json::<Value>().await.expect("json");
    assert_eq!(
        read,
        json!({"sound": false, "shake": true, "template": "{{contact.name}}: {{message.text}}", "default": false})
    );

    // Preview: the stored template with a sample, or a given template and context.
    let preview = format!("{path}/preview");
    let r = app.post(&supervisor, &preview, json!({})).await;
    assert_eq!(r.status(), 200);
    let shown: Value = r.json().await.expect("json");
    assert_eq!(shown["text"], "Jane Doe: Hello, I need help with my order");
    let r = app
        .post(
            &app.admin_token,
            &preview,
            json!({"template": SEED_TEMPLATE, "context": {"account": {"name": "A&B"}, "contact": {"mobile": "+1"}}}),
        )
        .await;
    assert_eq!(r.json::<Value>().await.expect("json")["text"], "Account: A&B From : +1");
    let (status, code, _) =
        error_of(app.post(&app.admin_token, &preview, json!({"template": "{{#x}}"})).await).await;
    assert_eq!((status, code.as_str()), (422, "invalid_template"));
    assert_eq!(error_of(app.post(&s.agent_token, &preview, json!({})).await).await.1, "forbidden");
    app.stop().await;
}

#[actix_web::test]
async fn notification_settings_refuse_bad_input_and_store_nothing_sqlite() {
    settings_validation(Backend::Sqlite).await;
}

#[actix_web::test]
async fn notification_settings_refuse_bad_input_and_store_nothing_postgres() {
    settings_validation(Backend::Postgres).await;
}

/// The seed's example rendered into real offers: from a queue (the queue's part shows), then
/// offered to the agent directly (it does not); then a custom template and its flags.
async fn offers_carry_notifications(backend: Backend) {
    let app = spawn_app(backend).await;
    let s = app.setup(30).await;
    app.agent_ready(&s.agent_token).await;
    let mut ws = app.connect_ws(&s.agent_token).await;

    assert_eq!(app.webhook(&s.account_id, &text("wamid.N1", "15551234567", "hello")).await.status(), 200);
    let offer = ws.next_of("offer").await;
    assert_eq!(offer["queue_id"], s.queue_id.as_str());
    assert_eq!(
        offer["notification"],
        json!({"text": "Account: Support Queue: Sales From : +15551234567", "sound": true, "shake": false})
    );
    let id = offer["interaction_id"].as_str().expect("id");
    assert_eq!(
        app.post(&s.agent_token, &format!("/api/interactions/{id}/accept"), json!({})).await.status(),
        204
    );

    // Offered to the agent directly: no queue in the context.
    let plan = json!({"time_zone": "Europe/Rome", "steps": [{"action": {"type": "agent", "agent_id": s.agent_id, "timeout_secs": 60}}]});
    let r = app.put(&app.admin_token, &format!("/api/accounts/{}/routing-plan", s.account_id), plan).await;
    assert_eq!(r.status(), 204);
    assert_eq!(app.webhook(&s.account_id, &text("wamid.N2", "15557650000", "hi")).await.status(), 200);
    let offer = ws.next_of("offer").await;
    assert_eq!(offer["direct"], true);
    assert_eq!(offer["notification"]["text"], "Account: Support From : +15557650000");
    let id = offer["interaction_id"].as_str().expect("id");
    assert_eq!(
        app.post(&s.agent_token, &format!("/api/interactions/{id}/accept"), json!({})).await.status(),
        204
    );

    // A custom template: the customer's words as written (no HTML escaping), and its flags.
    let custom = json!({"template": "{{contact.name}} ({{contact.mobile}}) on {{account.key}}: {{{message.text}}}",
                        "sound": false, "shake": true});
    let r = app.put(&app.admin_token, &format!("/api/accounts/{}/notification", s.account_id), custom).await;
    assert_eq!(r.status(), 204);
    let body = "<b>Order #12</b> & \"refund\" > 3 days";
    assert_eq!(app.webhook(&s.account_id, &text("wamid.N3", "15550001111", body)).await.status(), 200);
    let offer = ws.next_of("offer").await;
    assert_eq!(
        offer["notification"],
        json!({"text": format!("Jane (+15550001111) on SUP: {body}"), "sound": false, "shake": true})
    );
    app.stop().await;
}

#[actix_web::test]
async fn every_offer_carries_the_rendered_notification_sqlite() {
    offers_carry_notifications(Backend::Sqlite).await;
}

#[actix_web::test]
async fn every_offer_carries_the_rendered_notification_postgres() {
    offers_carry_notifications(Backend::Postgres).await;
}

/// An agent removed from an account is told at once and hears nothing more of it, while the
/// socket stays open for everything else.
async fn removal_cuts_the_feed(backend: Backend) {
    let app = spawn_app(backend).await;
    let s = app.setup(30).await;
    app.agent_ready(&s.agent_token).await;
    let mut ws = Socket::connect(&app, &s.agent_token).await;
    assert_eq!(app.webhook(&s.account_id, &text("wamid.V1", "15551234567", "hello")).await.status(), 200);
    let offer = ws.next_of("offer").await;
    let id = offer["interaction_id"].as_str().expect("id").to_owned();
    assert_eq!(
        app.post(&s.agent_token, &format!("/api/interactions/{id}/accept"), json!({})).await.status(),
        204
    );
    ws.next_of("interaction").await;
    // A member hears the customer.
    assert_eq!(
        app.webhook(&s.account_id, &text("wamid.V2", "15551234567", "still there?")).await.status(),
        200
    );
    assert_eq!(ws.next_of("message").await["interaction_id"], id.as_str());

    // Removed (through the aggregate: the same command the accounts API's removal runs).
    let remove =
        AccountCommand::RemoveAgent { agent_id: s.agent_id.parse().expect("id"), at: app.core.clock.now() };
    app.core
        .accounts
        .execute(&s.account_id, remove, app.core.metadata(&Cause::System("test"), "notify-test"))
        .await
        .expect("removed");
    let removed = ws.next_of("account_removed").await;
    assert_eq!(removed["account_id"], s.account_id.as_str());

    // The customer writes again; then the agent pauses, which they do hear. Everything the
    // socket carried in between is checked: nothing of the account.
    assert_eq!(app.webhook(&s.account_id, &text("wamid.V3", "15551234567", "hello??")).await.status(), 200);
    assert_eq!(app.post(&s.agent_token, "/api/me/pause", json!({})).await.status(), 204);
    let between = ws.until("presence").await;
    assert!(
        between.iter().all(|f| f["interaction_id"] != id.as_str() && f["type"] != "message"),
        "a removed agent got frames of the account: {between:#?}"
    );
    // The HTTP reads agree.
    let (status, _, _) = error_of(app.get(&s.agent_token, &format!("/api/interactions/{id}")).await).await;
    assert!(status == 403 || status == 404, "{status}");
    app.stop().await;
}

#[actix_web::test]
async fn a_removed_agent_stops_hearing_the_account_at_once_sqlite() {
    removal_cuts_the_feed(Backend::Sqlite).await;
}

#[actix_web::test]
async fn a_removed_agent_stops_hearing_the_account_at_once_postgres() {
    removal_cuts_the_feed(Backend::Postgres).await;
}
