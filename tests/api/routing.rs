//! The routing engine through the HTTP API and websockets: strategies, plans with gates and
//! timeouts, sticky return, transfer, inactivity close, mandatory disposition and capacity.
//! Time moves with the server's clock (`Clock::advance`), never by sleeping past a deadline.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::*;

/// A Meta text webhook from `from` (digits) with its own message id.
fn text(wamid: &str, from: &str, body: &str) -> Vec<u8> {
    meta_text(wamid, from, "Jane", body)
}

/// Lets the Graph API mock accept every send (auto replies, agent texts).
async fn accept_sends(app: &TestApp) {
    accept_meta_sends(app).await
}

async fn create_queue(app: &TestApp, name: &str, strategy: &str, offer_timeout_secs: u32) -> String {
    let r = app
        .post(
            &app.admin_token,
            "/api/queues",
            json!({"name": name, "strategy": strategy, "offer_timeout_secs": offer_timeout_secs}),
        )
        .await;
    assert_eq!(r.status(), 201);
    r.json::<Value>().await.expect("json")["id"].as_str().expect("id").to_owned()
}

/// A ready agent, on the account and in the queue.
async fn ready_agent(app: &TestApp, account_id: &str, queue_id: &str, name: &str) -> (String, String) {
    let (id, token) = app.create_agent(name).await;
    app.enrol(account_id, queue_id, &id).await;
    app.agent_ready(&token).await;
    (id, token)
}

async fn put_plan(app: &TestApp, account_id: &str, steps: Value) {
    let r = app
        .put(
            &app.admin_token,
            &format!("/api/accounts/{account_id}/routing-plan"),
            json!({"time_zone": "Europe/Rome", "steps": steps}),
        )
        .await;
    assert_eq!(r.status(), 204, "{}", r.text().await.unwrap_or_default());
}

async fn put_rules(app: &TestApp, account_id: &str, rules: Value) {
    let r = app.put(&app.admin_token, &format!("/api/accounts/{account_id}/channel-rules"), rules).await;
    assert_eq!(r.status(), 204, "{}", r.text().await.unwrap_or_default());
}

async fn status(app: &TestApp, token: &str, path: &str, body: Value) -> u16 {
    app.post(token, path, body).await.status().as_u16()
}

async fn error_code(app: &TestApp, token: &str, path: &str, body: Value) -> (u16, String) {
    let r = app.post(token, path, body).await;
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap_or(Value::Null);
    (status, body["error"]["code"].as_str().unwrap_or_default().to_owned())
}

fn events_of<'a>(history: &'a Value, event_type: &str) -> Vec<&'a Value> {
    history.as_array().expect("events").iter().filter(|e| e["event_type"] == event_type).collect()
}

/// Ring-all: both ready agents are offered at once; the first accept wins, the other offer
/// is withdrawn and answering it is refused. The offer explains itself in the history.
async fn ring_all(backend: Backend) {
    let app = spawn_app(backend).await;
    let account_id = app.create_account().await;
    let queue_id = create_queue(&app, "Sales", "ring_all", 30).await;
    let (sam, sam_token) = ready_agent(&app, &account_id, &queue_id, "Sam").await;
    let (_ana, ana_token) = ready_agent(&app, &account_id, &queue_id, "Ana").await;
    put_plan(&app, &account_id, json!([{"action": {"type": "queue", "queue_id": queue_id}}])).await;
    let mut ws_sam = app.connect_ws(&sam_token).await;
    let mut ws_ana = app.connect_ws(&ana_token).await;

    assert_eq!(app.webhook(&account_id, &text("wamid.R1", "15551234567", "hello")).await.status(), 200);
    let offer_sam = ws_sam.next_of("offer").await;
    let offer_ana = ws_ana.next_of("offer").await;
    let id = offer_sam["interaction_id"].as_str().expect("id").to_owned();
    assert_eq!(offer_ana["interaction_id"], id.as_str());
    assert_eq!(offer_sam["queue_id"], queue_id.as_str());

    assert_eq!(status(&app, &sam_token, &format!("/api/interactions/{id}/accept"), json!({})).await, 204);
    let closed = ws_ana.next_of("offer_closed").await;
    assert_eq!(closed["reason"], "withdrawn");
    assert_eq!(
        error_code(&app, &ana_token, &format!("/api/interactions/{id}/accept"), json!({})).await,
        (409, "offer_withdrawn".to_owned())
    );
    app.settle().await;
    let history = app.get_json(&app.admin_token, &format!("/api/interactions/{id}/events")).await;
    let offers = events_of(&history, "OfferMade");
    assert_eq!(offers.len(), 2);
    let explanation = &offers[0]["payload"]["OfferMade"]["explanation"];
    assert_eq!(explanation["strategy"], "ring_all");
    assert_eq!(explanation["candidates"].as_array().map(Vec::len), Some(2), "{explanation:#}");
    assert!(explanation["reason"].as_str().is_some_and(|r| !r.is_empty()));
    let assigned = events_of(&history, "AgentAssigned");
    assert_eq!(assigned[0]["payload"]["AgentAssigned"]["agent_id"], sam.as_str());
    app.stop().await;
}

#[actix_web::test]
async fn ring_all_offers_everyone_and_the_first_accept_withdraws_the_rest_sqlite() {
    ring_all(Backend::Sqlite).await;
}

#[actix_web::test]
async fn ring_all_offers_everyone_and_the_first_accept_withdraws_the_rest_postgres() {
    ring_all(Backend::Postgres).await;
}

/// Round robin: one offer at a time; a reject moves on, the wrong agent and a late accept are
/// refused with their own codes.
async fn round_robin_refusals(backend: Backend) {
    let app = spawn_app(backend).await;
    let account_id = app.create_account().await;
    let queue_id = create_queue(&app, "Sales", "round_robin", 10).await;
    let (_sam, sam_token) = ready_agent(&app, &account_id, &queue_id, "Sam").await;
    let (_ana, ana_token) = ready_agent(&app, &account_id, &queue_id, "Ana").await;
    put_plan(&app, &account_id, json!([{"action": {"type": "queue", "queue_id": queue_id}}])).await;
    let mut ws_sam = app.connect_ws(&sam_token).await;
    let mut ws_ana = app.connect_ws(&ana_token).await;

    assert_eq!(app.webhook(&account_id, &text("wamid.RR1", "15551234567", "hi")).await.status(), 200);
    let first = ws_sam.next_of("offer").await;
    let id = first["interaction_id"].as_str().expect("id").to_owned();
    // Ana holds no offer: accepting is refused.
    assert_eq!(
        error_code(&app, &ana_token, &format!("/api/interactions/{id}/accept"), json!({})).await,
        (409, "no_such_offer".to_owned())
    );
    // Sam rejects: Ana is offered it.
    assert_eq!(status(&app, &sam_token, &format!("/api/interactions/{id}/reject"), json!({})).await, 204);
    let second = ws_ana.next_of("offer").await;
    assert_eq!((second["interaction_id"].as_str(), second["attempt"].as_i64()), (Some(id.as_str()), Some(2)));
    // Ana lets it lapse: a late accept is refused as expired.
    app.core.clock.advance(Duration::from_secs(11));
    assert_eq!(ws_ana.next_of("offer_closed").await["reason"], "timed_out");
    assert_eq!(
        error_code(&app, &ana_token, &format!("/api/interactions/{id}/accept"), json!({})).await,
        (409, "offer_expired".to_owned())
    );
    app.stop().await;
}

#[actix_web::test]
async fn round_robin_moves_on_after_a_reject_and_refuses_wrong_and_late_accepts_sqlite() {
    round_robin_refusals(Backend::Sqlite).await;
}

#[actix_web::test]
async fn round_robin_moves_on_after_a_reject_and_refuses_wrong_and_late_accepts_postgres() {
    round_robin_refusals(Backend::Postgres).await;
}

/// A plan: an automatic reply, tags, a queue step nobody answers (falls through after its
/// timeout), then a specific agent, who accepts.
async fn plan_fall_through(backend: Backend) {
    let app = spawn_app(backend).await;
    accept_sends(&app).await;
    let account_id = app.create_account().await;
    let empty = create_queue(&app, "Nobody", "round_robin", 10).await;
    let sales = create_queue(&app, "Sales", "round_robin", 10).await;
    let (vip, vip_token) = ready_agent(&app, &account_id, &sales, "Vera").await;
    put_plan(
        &app,
        &account_id,
        json!([
            {"action": {"type": "auto_reply", "text": "Thanks, an agent will be with you shortly."}},
            {"action": {"type": "set_tags", "tags": ["web", "vip"]}},
            {"action": {"type": "queue", "queue_id": empty, "timeout_secs": 30}},
            {"action": {"type": "agent", "agent_id": vip, "timeout_secs": 60}}
        ]),
    )
    .await;
    let mut ws = app.connect_ws(&vip_token).await;
    assert_eq!(app.webhook(&account_id, &text("wamid.P1", "15551234567", "hi")).await.status(), 200);
    app.settle().await;
    assert_eq!(app.count_events(Some("AutoReplySent")).await, 1);
    assert_eq!(app.count_events(Some("OfferMade")).await, 0, "the empty queue offers nobody");

    app.core.clock.advance(Duration::from_secs(31));
    let offer = ws.next_of("offer").await;
    assert_eq!(offer["direct"], true);
    let id = offer["interaction_id"].as_str().expect("id").to_owned();
    assert_eq!(status(&app, &vip_token, &format!("/api/interactions/{id}/accept"), json!({})).await, 204);
    app.settle().await;
    let history = app.get_json(&app.admin_token, &format!("/api/interactions/{id}/events")).await;
    assert_eq!(events_of(&history, "RoutingTargetExpired").len(), 1);
    assert_eq!(events_of(&history, "TagsAdded").len(), 1);
    assert!(
        sent_eventually(&app, "an agent will be with you").await,
        "the automatic reply went out through the provider"
    );
    app.stop().await;
}

#[actix_web::test]
async fn a_plan_replies_tags_and_falls_through_an_unanswered_queue_to_an_agent_sqlite() {
    plan_fall_through(Backend::Sqlite).await;
}

#[actix_web::test]
async fn a_plan_replies_tags_and_falls_through_an_unanswered_queue_to_an_agent_postgres() {
    plan_fall_through(Backend::Postgres).await;
}

/// A gated step outside its interval is skipped: out of hours the plan closes the
/// interaction with a disposition and nobody is offered it.
#[actix_web::test]
async fn out_of_hours_the_gated_queue_is_skipped_and_the_close_step_disposes() {
    let app = spawn_app(Backend::Sqlite).await;
    let account_id = app.create_account().await;
    let queue_id = create_queue(&app, "Sales", "round_robin", 10).await;
    let (_sam, _sam_token) = ready_agent(&app, &account_id, &queue_id, "Sam").await;
    // Open only on a date long past: never now.
    put_plan(
        &app,
        &account_id,
        json!([
            {"when": {"dates": [{"from": "2020-01-01", "to": "2020-01-01"}]},
             "action": {"type": "queue", "queue_id": queue_id}},
            {"action": {"type": "close", "disposition": "After hours"}}
        ]),
    )
    .await;
    assert_eq!(app.webhook(&account_id, &text("wamid.G1", "15551234567", "hi")).await.status(), 200);
    let list = app.eventually("/api/interactions", |v| v[0]["status"] == "disposed").await;
    assert_eq!(list[0]["disposition"], "After hours");
    app.settle().await;
    assert_eq!(app.count_events(Some("RoutingStepSkipped")).await, 1);
    assert_eq!(app.count_events(Some("OfferMade")).await, 0);
    app.stop().await;
}

/// Sticky return: the assigned agent paused; the customer writes again; it waits for the
/// agent, then for the queue, where another agent takes it.
async fn sticky(backend: Backend) {
    let app = spawn_app(backend).await;
    let account_id = app.create_account().await;
    let queue_id = create_queue(&app, "Sales", "round_robin", 30).await;
    let (_sam, sam_token) = ready_agent(&app, &account_id, &queue_id, "Sam").await;
    put_plan(&app, &account_id, json!([{"action": {"type": "queue", "queue_id": queue_id}}])).await;
    put_rules(&app, &account_id, json!({"wait_for_agent_secs": 5, "wait_for_queue_secs": 5})).await;
    let mut ws_sam = app.connect_ws(&sam_token).await;
    assert_eq!(app.webhook(&account_id, &text("wamid.S1", "15551234567", "hi")).await.status(), 200);
    let id = ws_sam.next_of("offer").await["interaction_id"].as_str().expect("id").to_owned();
    assert_eq!(status(&app, &sam_token, &format!("/api/interactions/{id}/accept"), json!({})).await, 204);

    // Sam pauses; Ana joins the queue ready; the customer writes again.
    assert_eq!(status(&app, &sam_token, "/api/me/pause", json!({"reason": "Lunch"})).await, 204);
    let (ana, ana_token) = ready_agent(&app, &account_id, &queue_id, "Ana").await;
    let mut ws_ana = app.connect_ws(&ana_token).await;
    app.settle().await;
    assert_eq!(
        app.webhook(&account_id, &text("wamid.S2", "15551234567", "still there?")).await.status(),
        200
    );
    app.settle().await;
    assert_eq!(app.count_events(Some("OfferMade")).await, 1, "Ana is not offered it while it waits for Sam");

    // Sam's wait passes: it goes to Sam's queue, where Ana takes it.
    app.core.clock.advance(Duration::from_secs(6));
    let offer = ws_ana.next_of("offer").await;
    assert_eq!(offer["interaction_id"], id.as_str());
    assert_eq!(status(&app, &ana_token, &format!("/api/interactions/{id}/accept"), json!({})).await, 204);
    app.settle().await;
    let history = app.get_json(&app.admin_token, &format!("/api/interactions/{id}/events")).await;
    let targets: Vec<&str> = events_of(&history, "RoutingTargetSet")
        .iter()
        .filter_map(|e| e["payload"]["RoutingTargetSet"]["reason"]["kind"].as_str())
        .collect();
    assert_eq!(targets, ["plan", "sticky_agent", "sticky_queue"]);
    let last_owner = events_of(&history, "AgentAssigned")
        .last()
        .map(|e| e["payload"]["AgentAssigned"]["agent_id"].clone());
    assert_eq!(last_owner, Some(json!(ana)));
    app.stop().await;
}

#[actix_web::test]
async fn a_message_for_an_unavailable_agent_waits_for_them_then_for_their_queue_sqlite() {
    sticky(Backend::Sqlite).await;
}

#[actix_web::test]
async fn a_message_for_an_unavailable_agent_waits_for_them_then_for_their_queue_postgres() {
    sticky(Backend::Postgres).await;
}

/// Transfer: refused when the account disables it; enabled, an unanswered transfer returns
/// to the original agent as unread.
async fn transfer(backend: Backend) {
    let app = spawn_app(backend).await;
    let account_id = app.create_account().await;
    let queue_id = create_queue(&app, "Sales", "round_robin", 30).await;
    let (_sam, sam_token) = ready_agent(&app, &account_id, &queue_id, "Sam").await;
    put_plan(&app, &account_id, json!([{"action": {"type": "queue", "queue_id": queue_id}}])).await;
    let mut ws_sam = app.connect_ws(&sam_token).await;
    assert_eq!(app.webhook(&account_id, &text("wamid.T1", "15551234567", "hi")).await.status(), 200);
    let id = ws_sam.next_of("offer").await["interaction_id"].as_str().expect("id").to_owned();
    assert_eq!(status(&app, &sam_token, &format!("/api/interactions/{id}/accept"), json!({})).await, 204);
    // Ana is in the queue but not ready: the next interaction goes to Sam too.
    let (ana, ana_token) = app.create_agent("Ana").await;
    app.enrol(&account_id, &queue_id, &ana).await;

    let transfer = format!("/api/interactions/{id}/transfer");
    assert_eq!(
        error_code(&app, &sam_token, &transfer, json!({"agent_id": ana})).await,
        (403, "transfer_disabled".to_owned())
    );
    put_rules(
        &app,
        &account_id,
        json!({"wait_for_agent_secs": 10, "wait_for_queue_secs": 10, "transfer_timeout_secs": 20}),
    )
    .await;
    // Rules are copied when an interaction opens, so this one still refuses; a new one allows.
    assert_eq!(status(&app, &sam_token, &format!("/api/interactions/{id}/close"), json!({})).await, 204);
    assert_eq!(app.webhook(&account_id, &text("wamid.T2", "15551234567", "again")).await.status(), 200);
    let offer = ws_sam.next_of("offer").await;
    let id = offer["interaction_id"].as_str().expect("id").to_owned();
    assert_eq!(status(&app, &sam_token, &format!("/api/interactions/{id}/accept"), json!({})).await, 204);
    app.agent_ready(&ana_token).await;
    let mut ws_ana = app.connect_ws(&ana_token).await;
    let transfer = format!("/api/interactions/{id}/transfer");
    assert_eq!(
        error_code(&app, &ana_token, &transfer, json!({"agent_id": ana})).await.0,
        403,
        "only the assigned agent transfers"
    );
    assert_eq!(status(&app, &sam_token, &transfer, json!({"agent_id": ana})).await, 202);
    assert_eq!(
        error_code(&app, &sam_token, &transfer, json!({"queue_id": queue_id})).await,
        (409, "transfer_pending".to_owned())
    );
    let offered = ws_ana.next_of("offer").await;
    assert_eq!(offered["interaction_id"], id.as_str());

    // Ana does not answer: back to Sam, unread.
    app.core.clock.advance(Duration::from_secs(21));
    let back = loop {
        let frame = ws_sam.next_of("interaction").await;
        if frame["status"] == "returned" {
            break frame;
        }
    };
    assert_eq!(back["interaction_id"], id.as_str());
    assert_eq!(back["unread"], true);
    app.settle().await;
    // Sam still owns it: he can write.
    assert_eq!(
        status(&app, &sam_token, &format!("/api/interactions/{id}/messages"), json!({"text": "back"})).await,
        202
    );
    app.stop().await;
}

#[actix_web::test]
async fn an_unanswered_transfer_returns_to_the_agent_as_unread_sqlite() {
    transfer(Backend::Sqlite).await;
}

#[actix_web::test]
async fn an_unanswered_transfer_returns_to_the_agent_as_unread_postgres() {
    transfer(Backend::Postgres).await;
}

/// Inactivity: the agent wrote last and the account's minutes passed: closed and disposed
/// "Closed for inactivity". A customer reply in between would have kept it open.
#[actix_web::test]
async fn an_interaction_whose_last_message_is_the_agents_closes_for_inactivity() {
    let app = spawn_app(Backend::Postgres).await;
    accept_sends(&app).await;
    let account_id = app.create_account().await;
    let queue_id = create_queue(&app, "Sales", "round_robin", 30).await;
    let (_sam, sam_token) = ready_agent(&app, &account_id, &queue_id, "Sam").await;
    put_plan(&app, &account_id, json!([{"action": {"type": "queue", "queue_id": queue_id}}])).await;
    put_rules(
        &app,
        &account_id,
        json!({"wait_for_agent_secs": 10, "wait_for_queue_secs": 10, "inactivity_minutes": 1}),
    )
    .await;
    let mut ws = app.connect_ws(&sam_token).await;
    assert_eq!(app.webhook(&account_id, &text("wamid.I1", "15551234567", "hi")).await.status(), 200);
    let id = ws.next_of("offer").await["interaction_id"].as_str().expect("id").to_owned();
    assert_eq!(status(&app, &sam_token, &format!("/api/interactions/{id}/accept"), json!({})).await, 204);
    let messages = format!("/api/interactions/{id}/messages");
    assert_eq!(status(&app, &sam_token, &messages, json!({"text": "Anything else?"})).await, 202);
    app.settle().await;
    // The customer answers after 50 s: the clock restarts from the agent's next message.
    app.core.clock.advance(Duration::from_secs(50));
    assert_eq!(
        app.webhook(&account_id, &text("wamid.I2", "15551234567", "one more thing")).await.status(),
        200
    );
    app.settle().await;
    app.core.clock.advance(Duration::from_secs(20));
    app.settle().await;
    assert_eq!(app.count_events(Some("InteractionClosedBySystem")).await, 0);
    assert_eq!(status(&app, &sam_token, &messages, json!({"text": "Sure, done."})).await, 202);
    app.settle().await;
    app.core.clock.advance(Duration::from_secs(61));
    let list = app.eventually("/api/interactions", |v| v[0]["status"] == "disposed").await;
    assert_eq!(list[0]["disposition"], "Closed for inactivity");
    app.settle().await;
    assert_eq!(app.count_events(Some("InteractionClosedBySystem")).await, 1);
    app.stop().await;
}

/// Mandatory disposition: closing without one is refused; the wrap-up pauses the agent with
/// the account's reason, and disposing lifts it.
#[actix_web::test]
async fn mandatory_disposition_pauses_the_agent_while_disposing() {
    let app = spawn_app(Backend::Sqlite).await;
    let account_id = app.create_account().await;
    let queue_id = create_queue(&app, "Sales", "round_robin", 30).await;
    let (_sam, sam_token) = ready_agent(&app, &account_id, &queue_id, "Sam").await;
    put_plan(&app, &account_id, json!([{"action": {"type": "queue", "queue_id": queue_id}}])).await;
    put_rules(
        &app,
        &account_id,
        json!({"wait_for_agent_secs": 10, "wait_for_queue_secs": 10,
               "mandatory_disposition": {"pause_reason": "Wrap-up"}}),
    )
    .await;
    let mut ws = app.connect_ws(&sam_token).await;
    assert_eq!(app.webhook(&account_id, &text("wamid.D1", "15551234567", "hi")).await.status(), 200);
    let id = ws.next_of("offer").await["interaction_id"].as_str().expect("id").to_owned();
    assert_eq!(status(&app, &sam_token, &format!("/api/interactions/{id}/accept"), json!({})).await, 204);
    let close = format!("/api/interactions/{id}/close");
    assert_eq!(
        error_code(&app, &sam_token, &close, json!({})).await,
        (422, "disposition_required".to_owned())
    );
    assert_eq!(status(&app, &sam_token, &format!("/api/interactions/{id}/wrap-up"), json!({})).await, 204);
    let paused = ws.next_of("presence").await;
    assert_eq!((paused["presence"].as_str(), paused["reason"].as_str()), (Some("paused"), Some("Wrap-up")));
    assert_eq!(status(&app, &sam_token, &close, json!({"disposition": "Solved"})).await, 204);
    let ready = ws.next_of("presence").await;
    assert_eq!(ready["presence"], "ready");
    let list = app.eventually("/api/interactions", |v| v[0]["status"] == "disposed").await;
    assert_eq!(list[0]["disposition"], "Solved");
    app.stop().await;
}

/// Capacity: an agent with capacity 1 is offered the second interaction only once the first
/// is closed.
#[actix_web::test]
async fn an_agent_at_capacity_is_offered_nothing_more_until_a_slot_frees() {
    let app = spawn_app(Backend::Postgres).await;
    let account_id = app.create_account().await;
    let queue_id = create_queue(&app, "Sales", "fewest_open", 30).await;
    let (sam, sam_token) = ready_agent(&app, &account_id, &queue_id, "Sam").await;
    let r = app.put(&app.admin_token, &format!("/api/agents/{sam}/capacity"), json!({"capacity": 1})).await;
    assert_eq!(r.status(), 204);
    put_plan(&app, &account_id, json!([{"action": {"type": "queue", "queue_id": queue_id}}])).await;
    let mut ws = app.connect_ws(&sam_token).await;
    assert_eq!(app.webhook(&account_id, &text("wamid.C1", "15551234567", "one")).await.status(), 200);
    let first = ws.next_of("offer").await["interaction_id"].as_str().expect("id").to_owned();
    assert_eq!(status(&app, &sam_token, &format!("/api/interactions/{first}/accept"), json!({})).await, 204);
    assert_eq!(app.webhook(&account_id, &text("wamid.C2", "15550000002", "two")).await.status(), 200);
    app.settle().await;
    assert_eq!(app.count_events(Some("OfferMade")).await, 1, "capacity 1 is taken");
    assert_eq!(status(&app, &sam_token, &format!("/api/interactions/{first}/close"), json!({})).await, 204);
    let second = ws.next_of("offer").await;
    assert_ne!(second["interaction_id"], first.as_str());
    app.stop().await;
}

/// An agent whose websocket dropped is offered nothing once the grace period passes, and is
/// again when they reconnect.
#[actix_web::test]
async fn an_agent_whose_websocket_dropped_past_the_grace_gets_no_offers_until_back() {
    let app = spawn_app(Backend::Sqlite).await;
    let account_id = app.create_account().await;
    let queue_id = create_queue(&app, "Sales", "round_robin", 30).await;
    let (_sam, sam_token) = ready_agent(&app, &account_id, &queue_id, "Sam").await;
    put_plan(&app, &account_id, json!([{"action": {"type": "queue", "queue_id": queue_id}}])).await;
    let ws = app.connect_ws(&sam_token).await;
    app.settle().await;
    drop(ws);
    // The server notices the closed socket on its own time: wait until the disconnect (and
    // its grace deadline) is recorded before moving the clock past that deadline.
    app.eventually("/api/agents/status", |v| v[0]["reconnect_by"].is_string()).await;
    app.settle().await;
    app.core.clock.advance(Duration::from_secs(31));
    app.eventually("/api/agents/status", |v| v[0]["reachable"] == false).await;
    assert_eq!(app.webhook(&account_id, &text("wamid.W1", "15551234567", "hi")).await.status(), 200);
    app.settle().await;
    assert_eq!(app.count_events(Some("OfferMade")).await, 0);
    let mut ws = app.connect_ws(&sam_token).await;
    let offer = ws.next_of("offer").await;
    assert!(offer["interaction_id"].is_string());
    app.stop().await;
}

/// Administration takes effect on the next decision: a queue switched to ring-all offers
/// everyone, an agent's tag is searchable, and a member removed from the queue is offered
/// nothing more from it.
#[actix_web::test]
async fn queue_settings_tags_and_membership_changes_take_effect() {
    let app = spawn_app(Backend::Postgres).await;
    let account_id = app.create_account().await;
    let queue_id = create_queue(&app, "Sales", "round_robin", 30).await;
    let (_sam, sam_token) = ready_agent(&app, &account_id, &queue_id, "Sam").await;
    let (ana, ana_token) = ready_agent(&app, &account_id, &queue_id, "Ana").await;
    put_plan(&app, &account_id, json!([{"action": {"type": "queue", "queue_id": queue_id}}])).await;
    let r = app
        .put(
            &app.admin_token,
            &format!("/api/queues/{queue_id}"),
            json!({"offer_timeout_secs": 30, "strategy": "ring_all", "weight": 7}),
        )
        .await;
    assert_eq!(r.status(), 204);
    let mut ws_sam = app.connect_ws(&sam_token).await;
    let mut ws_ana = app.connect_ws(&ana_token).await;

    // Ring-all now: both are offered the first interaction.
    assert_eq!(app.webhook(&account_id, &text("wamid.A1", "15551234567", "hi")).await.status(), 200);
    let id = ws_sam.next_of("offer").await["interaction_id"].as_str().expect("id").to_owned();
    assert_eq!(ws_ana.next_of("offer").await["interaction_id"], id.as_str());
    assert_eq!(status(&app, &sam_token, &format!("/api/interactions/{id}/accept"), json!({})).await, 204);

    // Sam tags it; the list finds it by tag, and only it.
    let tags = format!("/api/interactions/{id}/tags");
    assert_eq!(status(&app, &sam_token, &tags, json!({"tags": ["vip"]})).await, 204);
    let tagged = app.eventually("/api/interactions?tag=vip", |v| v.as_array().map(Vec::len) == Some(1)).await;
    assert_eq!(tagged[0]["interaction_id"], id.as_str());
    assert_eq!(app.get_json(&app.admin_token, "/api/interactions?tag=other").await, json!([]));

    // Ana leaves the queue: the next interaction is offered to Sam alone.
    let r = app.delete(&app.admin_token, &format!("/api/queues/{queue_id}/agents/{ana}")).await;
    assert_eq!(r.status(), 204);
    app.settle().await;
    assert_eq!(app.webhook(&account_id, &text("wamid.A2", "15550000002", "hello")).await.status(), 200);
    let second = ws_sam.next_of("offer").await["interaction_id"].as_str().expect("id").to_owned();
    assert_ne!(second, id);
    app.settle().await;
    let history = app.get_json(&app.admin_token, &format!("/api/interactions/{second}/events")).await;
    let offered: Vec<&Value> =
        events_of(&history, "OfferMade").iter().map(|e| &e["payload"]["OfferMade"]["agent_id"]).collect();
    assert_eq!(offered.len(), 1, "only Sam: {offered:?}");
    app.stop().await;
}

/// An agent taken out of the queue while holding its offer loses it at once (not at the
/// offer's timeout): the history says why, the agent is told, and the next member is offered.
#[actix_web::test]
async fn an_offer_is_withdrawn_when_its_agent_leaves_the_queue() {
    let app = spawn_app(Backend::Sqlite).await;
    let account_id = app.create_account().await;
    let queue_id = create_queue(&app, "Sales", "round_robin", 300).await;
    let (sam, sam_token) = ready_agent(&app, &account_id, &queue_id, "Sam").await;
    let (ana, ana_token) = ready_agent(&app, &account_id, &queue_id, "Ana").await;
    put_plan(&app, &account_id, json!([{"action": {"type": "queue", "queue_id": queue_id}}])).await;
    let mut ws_sam = app.connect_ws(&sam_token).await;
    let mut ws_ana = app.connect_ws(&ana_token).await;

    assert_eq!(app.webhook(&account_id, &text("wamid.L1", "15551234567", "hello")).await.status(), 200);
    let offer = ws_sam.next_of("offer").await;
    let id = offer["interaction_id"].as_str().expect("id").to_owned();
    let r = app.delete(&app.admin_token, &format!("/api/queues/{queue_id}/agents/{sam}")).await;
    assert_eq!(r.status(), 204);
    let closed = ws_sam.next_of("offer_closed").await;
    assert_eq!(
        (closed["interaction_id"].as_str(), closed["reason"].as_str()),
        (Some(id.as_str()), Some("withdrawn"))
    );
    assert_eq!(ws_ana.next_of("offer").await["interaction_id"], id.as_str());
    assert_eq!(
        error_code(&app, &sam_token, &format!("/api/interactions/{id}/accept"), json!({})).await,
        (409, "offer_withdrawn".to_owned())
    );
    app.settle().await;
    let history = app.get_json(&app.admin_token, &format!("/api/interactions/{id}/events")).await;
    let withdrawn = events_of(&history, "OfferWithdrawn");
    assert_eq!(withdrawn.len(), 1);
    assert_eq!(withdrawn[0]["payload"]["OfferWithdrawn"]["agent_id"], sam.as_str());
    assert_eq!(withdrawn[0]["payload"]["OfferWithdrawn"]["reason"], "agent_removed");
    let offers = events_of(&history, "OfferMade");
    assert_eq!(offers[1]["payload"]["OfferMade"]["agent_id"], ana.as_str());
    app.stop().await;
}
