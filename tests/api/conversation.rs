//! The whole conversation, end to end: a customer writes through Meta, the agent gets the
//! offer on the websocket, accepts, replies (sent to a mock Graph API), the phone reports
//! delivered and read, the agent closes and disposes; then the event history and the
//! projections are checked. On SQLite and on PostgreSQL.

use serde_json::{Value, json};
use wiremock::matchers::{body_partial_json, header, method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::*;

async fn whole_conversation(backend: Backend) {
    // Arrange
    let app = spawn_app(backend).await;
    let s = app.setup(10).await;
    Mock::given(method("POST"))
        .and(path("/v23.0/100000000000002/messages"))
        .and(header("Authorization", format!("Bearer {ACCESS_TOKEN}").as_str()))
        .and(body_partial_json(json!({"messaging_product": "whatsapp", "to": "+15551234567", "type": "text",
                                        "text": {"body": "Hello Jane, agent Sam here. How can I help?"}})))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(fixture("meta_send_response.json")))
        .expect(1)
        .mount(&app.graph)
        .await;
    app.agent_ready(&s.agent_token).await;
    let mut ws = app.connect_ws(&s.agent_token).await;

    // A customer writes.
    let r = app.webhook(&s.account_id, &fixture("meta_inbound_text.json")).await;
    assert_eq!(r.status(), 200);

    // The agent is offered it, with a deadline, and accepts.
    let offer = ws.next_of("offer").await;
    let interaction_id = offer["interaction_id"].as_str().expect("interaction id").to_owned();
    assert_eq!(offer["queue_id"], s.queue_id.as_str());
    assert!(offer["expires_at"].is_string());
    let r = app.post(&s.agent_token, &format!("/api/interactions/{interaction_id}/accept"), json!({})).await;
    assert_eq!(r.status(), 204);
    assert_eq!(ws.next_of("interaction").await["status"], "assigned");

    // The agent replies; the outbox sends it to the Graph API and the acceptance is pushed.
    let r = app
        .post(
            &s.agent_token,
            &format!("/api/interactions/{interaction_id}/messages"),
            json!({"text": "Hello Jane, agent Sam here. How can I help?"}),
        )
        .await;
    assert_eq!(r.status(), 202);
    let message_id = r.json::<Value>().await.expect("json")["message_id"].as_str().expect("id").to_owned();
    let accepted = ws.next_of("message_status").await;
    assert_eq!(
        (accepted["message_id"].as_str(), accepted["status"].as_str()),
        (Some(message_id.as_str()), Some("accepted"))
    );
    assert_eq!(accepted["provider_message_id"], "wamid.FAKEOUT0001");

    // The phone reports delivered then read; a late "sent" changes nothing.
    for (fixture_name, expected) in
        [("meta_status_delivered.json", "delivered"), ("meta_status_read.json", "read")]
    {
        assert_eq!(app.webhook(&s.account_id, &fixture(fixture_name)).await.status(), 200);
        assert_eq!(ws.next_of("message_status").await["status"], expected);
    }
    assert_eq!(app.webhook(&s.account_id, &fixture("meta_status_sent.json")).await.status(), 200);

    // Close and dispose.
    assert_eq!(
        app.post(&s.agent_token, &format!("/api/interactions/{interaction_id}/close"), json!({}))
            .await
            .status(),
        204
    );
    let r = app
        .post(
            &s.agent_token,
            &format!("/api/interactions/{interaction_id}/dispose"),
            json!({"disposition": "resolved"}),
        )
        .await;
    assert_eq!(r.status(), 204);

    // The event history tells the whole story, with who and when on every event.
    let events = app.get_json(&app.admin_token, &format!("/api/interactions/{interaction_id}/events")).await;
    let types: Vec<&str> =
        events.as_array().expect("array").iter().map(|e| e["event_type"].as_str().unwrap_or("")).collect();
    assert_eq!(
        types,
        [
            "InteractionOpened",
            "CustomerMessageReceived",
            "RoutingStarted",
            "RoutingTargetSet",
            "OfferMade",
            "OfferAccepted",
            "AgentAssigned",
            "AgentMessageSent",
            "OutboundMessageAccepted",
            "OutboundStatusChanged",
            "OutboundStatusChanged",
            "InteractionClosed",
            "InteractionDisposed"
        ]
    );
    for event in events.as_array().expect("array") {
        assert!(event["metadata"]["occurred_at"].is_string(), "{event}");
        assert!(event["metadata"]["caused_by"].is_string(), "{event}");
        assert!(event["recorded_at"].is_string(), "{event}");
    }
    assert_eq!(events[0]["metadata"]["caused_by"], "provider:meta");
    // The routing plan ran in the webhook's commit; the board made the offer; the agent took it.
    assert_eq!(events[2]["metadata"]["caused_by"], "provider:meta");
    assert_eq!(events[4]["metadata"]["caused_by"], "system:router");
    assert_eq!(events[5]["metadata"]["caused_by"], format!("agent:{}", s.agent_id));
    assert_eq!(events[11]["metadata"]["caused_by"], format!("agent:{}", s.agent_id));

    // The projections agree.
    let detail =
        app.eventually(&format!("/api/interactions/{interaction_id}"), |v| v["status"] == "disposed").await;
    assert_eq!(detail["agent_id"], s.agent_id.as_str());
    assert_eq!(detail["customer"], "+15551234567");
    assert_eq!(detail["customer_name"], "Jane Doe");
    assert_eq!(detail["disposition"], "resolved");
    assert_eq!(detail["message_count"], 2);
    assert_eq!(detail["unread_count"], 0);
    let messages = detail["messages"].as_array().expect("messages");
    assert_eq!(messages[0]["direction"], "in");
    assert_eq!(messages[0]["body"], "Hi, I need help with order 4711");
    assert_eq!(messages[1]["direction"], "out");
    assert_eq!(messages[1]["status"], "read");
    assert_eq!(messages[1]["provider_message_id"], "wamid.FAKEOUT0001");

    let queues = app.eventually("/api/queues/status", |v| v[0]["accepted_total"] == 1).await;
    assert_eq!(queues[0]["waiting"], 0);
    let agents = app.get_json(&app.admin_token, "/api/agents/status").await;
    assert_eq!(agents[0]["presence"], "ready");
    app.stop().await;
}

#[actix_web::test]
async fn a_whole_conversation_on_sqlite() {
    whole_conversation(Backend::Sqlite).await;
}

#[actix_web::test]
async fn a_whole_conversation_on_postgres() {
    whole_conversation(Backend::Postgres).await;
}

async fn grouping(backend: Backend) {
    let app = spawn_app(backend).await;
    let s = app.setup(10).await;
    let body = |wamid: &str, text: &str| {
        json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages",
            "value": {"messaging_product": "whatsapp",
                      "metadata": {"display_phone_number": "15557654321", "phone_number_id": "100000000000002"},
                      "contacts": [{"profile": {"name": "Jane"}, "wa_id": "15551234567"}],
                      "messages": [{"from": "15551234567", "id": wamid, "timestamp": "1767607200",
                                    "type": "text", "text": {"body": text}}]}}]}]})
        .to_string()
    };
    assert_eq!(app.webhook(&s.account_id, body("wamid.A", "one").as_bytes()).await.status(), 200);
    assert_eq!(app.webhook(&s.account_id, body("wamid.B", "two").as_bytes()).await.status(), 200);
    let list = app.eventually("/api/interactions", |v| v[0]["message_count"] == 2).await;
    assert_eq!(list.as_array().map(Vec::len), Some(1), "the second message joins the open interaction");
    let first = list[0]["interaction_id"].as_str().expect("id").to_owned();

    // Closed: the next message opens a new interaction, never reopens the old one.
    let r = app.post(&app.admin_token, &format!("/api/interactions/{first}/close"), json!({})).await;
    assert_eq!(r.status(), 204);
    assert_eq!(app.webhook(&s.account_id, body("wamid.C", "three").as_bytes()).await.status(), 200);
    let list = app.eventually("/api/interactions", |v| v.as_array().map(Vec::len) == Some(2)).await;
    let newest = &list[0];
    assert_ne!(newest["interaction_id"], first.as_str());
    assert_eq!(newest["message_count"], 1);
    let old = app.get_json(&app.admin_token, &format!("/api/interactions/{first}")).await;
    assert_eq!((old["status"].as_str(), old["message_count"].as_i64()), (Some("closed"), Some(2)));
    app.stop().await;
}

#[actix_web::test]
async fn messages_group_into_the_open_interaction_and_a_closed_one_is_never_reopened_sqlite() {
    grouping(Backend::Sqlite).await;
}

#[actix_web::test]
async fn messages_group_into_the_open_interaction_and_a_closed_one_is_never_reopened_postgres() {
    grouping(Backend::Postgres).await;
}

async fn reject_and_next(backend: Backend) {
    let app = spawn_app(backend).await;
    let s = app.setup(10).await;
    let (second_id, second_token) = app.create_agent("Ana").await;
    app.enrol(&s.account_id, &s.queue_id, &second_id).await;
    app.agent_ready(&s.agent_token).await;
    app.agent_ready(&second_token).await;
    let mut ws1 = app.connect_ws(&s.agent_token).await;
    let mut ws2 = app.connect_ws(&second_token).await;
    assert_eq!(app.webhook(&s.account_id, &fixture("meta_inbound_text.json")).await.status(), 200);
    // Round robin starts with the first member; a reject goes to the next one.
    let offer = ws1.next_of("offer").await;
    let interaction_id = offer["interaction_id"].as_str().expect("id").to_owned();
    let r = app.post(&s.agent_token, &format!("/api/interactions/{interaction_id}/reject"), json!({})).await;
    assert_eq!(r.status(), 204);
    let offer2 = ws2.next_of("offer").await;
    assert_eq!(offer2["interaction_id"], interaction_id.as_str());
    assert_eq!(offer2["attempt"], 2);
    // The first agent can no longer accept it.
    let r = app.post(&s.agent_token, &format!("/api/interactions/{interaction_id}/accept"), json!({})).await;
    assert_eq!(r.status(), 409);
    assert_eq!(r.json::<Value>().await.expect("json")["error"]["code"], "no_such_offer");
    let r = app.post(&second_token, &format!("/api/interactions/{interaction_id}/accept"), json!({})).await;
    assert_eq!(r.status(), 204);
    app.stop().await;
}

#[actix_web::test]
async fn a_rejected_offer_goes_to_the_next_agent_sqlite() {
    reject_and_next(Backend::Sqlite).await;
}

#[actix_web::test]
async fn a_rejected_offer_goes_to_the_next_agent_postgres() {
    reject_and_next(Backend::Postgres).await;
}

#[actix_web::test]
async fn closing_an_offered_interaction_withdraws_the_offer_from_the_agent() {
    let app = spawn_app(Backend::Sqlite).await;
    let s = app.setup(10).await;
    app.agent_ready(&s.agent_token).await;
    let mut ws = app.connect_ws(&s.agent_token).await;
    assert_eq!(app.webhook(&s.account_id, &fixture("meta_inbound_text.json")).await.status(), 200);
    let offer = ws.next_of("offer").await;
    let id = offer["interaction_id"].as_str().expect("id").to_owned();
    // A supervisor closes it while it is still on offer.
    assert_eq!(
        app.post(&app.admin_token, &format!("/api/interactions/{id}/close"), json!({})).await.status(),
        204
    );
    let withdrawn = ws.next_of("offer_closed").await;
    assert_eq!(
        (withdrawn["interaction_id"].as_str(), withdrawn["reason"].as_str()),
        (Some(id.as_str()), Some("withdrawn"))
    );
    let r = app.post(&s.agent_token, &format!("/api/interactions/{id}/accept"), json!({})).await;
    assert_eq!(r.status(), 409);
    app.stop().await;
}
