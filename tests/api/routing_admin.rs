//! The routing endpoints' front door: authentication, roles, malformed bodies and the
//! refusals the HTTP layer and the aggregates' own rules give, with the stable error codes.
//! How routing then behaves (offers, transfers, wrap-up) is tested in `routing.rs`.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;

/// A supervisor token.
async fn supervisor(app: &TestApp) -> String {
    let r = app.post(&app.admin_token, "/api/tokens", json!({"role": "supervisor", "label": "Sue"})).await;
    assert_eq!(r.status(), 201);
    r.json::<Value>().await.expect("json")["token"].as_str().expect("token").to_owned()
}

/// A customer writes: an interaction of the setup's account exists.
async fn an_interaction(app: &TestApp, s: &Setup) -> String {
    assert_eq!(app.webhook(&s.account_id, &fixture("meta_inbound_text.json")).await.status(), 200);
    let list = app.eventually("/api/interactions", |v| v.as_array().map(Vec::len) == Some(1)).await;
    list[0]["interaction_id"].as_str().expect("id").to_owned()
}

fn plan(queue_id: &str) -> Value {
    json!({"time_zone": "Europe/Rome", "steps": [
        {"when": {"weekly": [{"days": ["mon", "tue", "wed", "thu", "fri"], "from": "09:00:00", "to": "18:00:00"}]},
         "action": {"type": "queue", "queue_id": queue_id, "timeout_secs": 60}},
        {"action": {"type": "go_to", "condition": {"type": "text_contains", "text": "refund"}, "step": 0}},
        {"action": {"type": "auto_reply", "text": "We are closed; we will write back tomorrow."}},
        {"action": {"type": "set_tags", "tags": ["after-hours"]}},
        {"action": {"type": "close", "disposition": "Out of hours"}}
    ]})
}

fn rules() -> Value {
    json!({"wait_for_agent_secs": 30, "wait_for_queue_secs": 60, "inactivity_minutes": 15,
           "transfer_timeout_secs": 45, "mandatory_disposition": {"pause_reason": "Wrap-up"}})
}

/// Every new endpoint with a body of the right shape (so only the caller can be wrong).
fn calls(account: &str, queue: &str, agent: &str, interaction: &str) -> Vec<(Method, String, Value)> {
    vec![
        (Method::PUT, format!("/api/accounts/{account}/routing-plan"), plan(queue)),
        (Method::GET, format!("/api/accounts/{account}/routing-plan"), Value::Null),
        (Method::PUT, format!("/api/accounts/{account}/channel-rules"), rules()),
        (Method::GET, format!("/api/accounts/{account}/channel-rules"), Value::Null),
        (
            Method::PUT,
            format!("/api/queues/{queue}"),
            json!({"offer_timeout_secs": 10, "strategy": "ring_all", "weight": 5}),
        ),
        (Method::DELETE, format!("/api/queues/{queue}/agents/{agent}"), Value::Null),
        (Method::PUT, format!("/api/agents/{agent}/capacity"), json!({"capacity": 3})),
        (Method::POST, format!("/api/interactions/{interaction}/transfer"), json!({"queue_id": queue})),
        (Method::POST, format!("/api/interactions/{interaction}/wrap-up"), Value::Null),
        (Method::POST, format!("/api/interactions/{interaction}/tags"), json!({"tags": ["vip"]})),
        (Method::POST, format!("/api/interactions/{interaction}/close"), json!({"disposition": "Resolved"})),
    ]
}

fn body_of(body: &Value) -> String {
    if body.is_null() { String::new() } else { body.to_string() }
}

#[actix_web::test]
async fn every_routing_endpoint_needs_a_token() {
    let app = spawn_app(Backend::Sqlite).await;
    let id = uuid::Uuid::now_v7().to_string();
    for (method, path, body) in calls(&id, &id, &id, &id) {
        let r = app
            .client
            .request(method.clone(), app.url(&path))
            .header("Content-Type", "application/json")
            .body(body_of(&body))
            .send()
            .await
            .expect("request");
        let (status, code, _) = error_of(r).await;
        assert_eq!((status, code.as_str()), (401, "unauthorized"), "{method} {path}");
        let r = app.send_raw(method.clone(), "sb_not_a_token", &path, &body_of(&body)).await;
        let (status, code, _) = error_of(r).await;
        assert_eq!((status, code.as_str()), (401, "unauthorized"), "{method} {path}");
    }
    app.stop().await;
}

async fn assert_forbidden(app: &TestApp, token: &str, (method, path, body): &(Method, String, Value)) {
    let r = app.send_raw(method.clone(), token, path, &body_of(body)).await;
    let (status, code, _) = error_of(r).await;
    assert_eq!((status, code.as_str()), (403, "forbidden"), "{method} {path}");
}

#[actix_web::test]
async fn each_routing_endpoint_admits_only_its_roles() {
    let app = spawn_app(Backend::Sqlite).await;
    let s = app.setup(10).await;
    let interaction = an_interaction(&app, &s).await;
    let sup = supervisor(&app).await;
    app.settle().await;
    let before = app.count_events(None).await;
    let all = calls(&s.account_id, &s.queue_id, &s.agent_id, &interaction);
    let call = |path_end: &str, method: Method| {
        all.iter().find(|(m, p, _)| *m == method && p.ends_with(path_end)).cloned().expect("a call")
    };
    // Configuration is the admin's; supervisors also read plans and rules and set capacities.
    let admin_only = [
        call("/routing-plan", Method::PUT),
        call("/channel-rules", Method::PUT),
        call(&s.queue_id, Method::PUT),
        call(&format!("/agents/{}", s.agent_id), Method::DELETE),
    ];
    let admin_or_supervisor = [
        call("/routing-plan", Method::GET),
        call("/channel-rules", Method::GET),
        call("/capacity", Method::PUT),
    ];
    // Agents act on their own interactions; nobody else transfers, tags or wraps up, and only
    // agents close with a disposition.
    let agent_only =
        [call("/transfer", Method::POST), call("/tags", Method::POST), call("/wrap-up", Method::POST)];
    for c in &admin_only {
        assert_forbidden(&app, &sup, c).await;
        assert_forbidden(&app, &s.agent_token, c).await;
    }
    for c in &admin_or_supervisor {
        assert_forbidden(&app, &s.agent_token, c).await;
    }
    for c in agent_only.iter().chain([&call("/close", Method::POST)]) {
        assert_forbidden(&app, &app.admin_token, c).await;
        assert_forbidden(&app, &sup, c).await;
    }
    assert_eq!(app.count_events(None).await, before, "refused requests appended nothing");
    app.stop().await;
}

#[actix_web::test]
async fn malformed_bodies_are_400_and_append_nothing() {
    let app = spawn_app(Backend::Sqlite).await;
    let s = app.setup(10).await;
    let interaction = an_interaction(&app, &s).await;
    app.settle().await;
    let before = app.count_events(None).await;
    let (a, q, g, i) = (&s.account_id, &s.queue_id, &s.agent_id, &interaction);
    let admin = app.admin_token.clone();
    let agent = s.agent_token.clone();
    let cases = [
        // Not JSON at all.
        (&admin, Method::PUT, format!("/api/accounts/{a}/routing-plan"), "{\"steps\":".to_owned()),
        (&admin, Method::PUT, format!("/api/accounts/{a}/channel-rules"), "nope".to_owned()),
        (&admin, Method::PUT, format!("/api/queues/{q}"), "{".to_owned()),
        (&admin, Method::PUT, format!("/api/agents/{g}/capacity"), "[".to_owned()),
        (&agent, Method::POST, format!("/api/interactions/{i}/transfer"), "{\"queue_id\"".to_owned()),
        (&agent, Method::POST, format!("/api/interactions/{i}/tags"), "tags".to_owned()),
        (&agent, Method::POST, format!("/api/interactions/{i}/close"), "{\"disposition\":".to_owned()),
        // JSON, but not the shape: an unknown step type, time zone, strategy; a capacity that
        // is not a number; a weight beyond u8; a missing field; a transfer to both or neither.
        (&admin, Method::PUT, format!("/api/accounts/{a}/routing-plan"),
            json!({"time_zone": "UTC", "steps": [{"action": {"type": "dance"}}]}).to_string()),
        (&admin, Method::PUT, format!("/api/accounts/{a}/routing-plan"),
            json!({"time_zone": "Mars/Olympus_Mons", "steps": [{"action": {"type": "queue", "queue_id": q}}]})
                .to_string()),
        (&admin, Method::PUT, format!("/api/accounts/{a}/channel-rules"), json!({"wait_for_agent_secs": 10}).to_string()),
        (&admin, Method::PUT, format!("/api/queues/{q}"),
            json!({"offer_timeout_secs": 10, "strategy": "random", "weight": 5}).to_string()),
        (&admin, Method::PUT, format!("/api/queues/{q}"),
            json!({"offer_timeout_secs": 10, "strategy": "ring_all", "weight": 300}).to_string()),
        (&admin, Method::PUT, format!("/api/queues/{q}"), json!({"strategy": "ring_all"}).to_string()),
        (&admin, Method::PUT, format!("/api/agents/{g}/capacity"), json!({"capacity": "five"}).to_string()),
        (&agent, Method::POST, format!("/api/interactions/{i}/transfer"),
            json!({"queue_id": q, "agent_id": g}).to_string()),
        (&agent, Method::POST, format!("/api/interactions/{i}/transfer"), json!({}).to_string()),
        (&agent, Method::POST, format!("/api/interactions/{i}/tags"), json!({"tags": "vip"}).to_string()),
    ];
    for (token, method, path, body) in cases {
        let r = app.send_raw(method.clone(), token, &path, &body).await;
        let (status, code, _) = error_of(r).await;
        assert_eq!((status, code.as_str()), (400, "invalid_request"), "{method} {path} {body}");
    }
    assert_eq!(app.count_events(None).await, before, "refused requests appended nothing");
    app.stop().await;
}

#[actix_web::test]
async fn queue_settings_out_of_bounds_are_422_and_unknown_queues_404() {
    let app = spawn_app(Backend::Sqlite).await;
    let s = app.setup(10).await;
    app.settle().await;
    let before = app.count_events(None).await;
    let path = format!("/api/queues/{}", s.queue_id);
    let r = app
        .put(&app.admin_token, &path, json!({"offer_timeout_secs": 10, "strategy": "ring_all", "weight": 11}))
        .await;
    assert_eq!(error_of(r).await.1, "invalid_weight");
    let r = app
        .put(&app.admin_token, &path, json!({"offer_timeout_secs": 0, "strategy": "ring_all", "weight": 5}))
        .await;
    let (status, code, _) = error_of(r).await;
    assert_eq!((status, code.as_str()), (422, "invalid_offer_timeout"));
    let r = app
        .put(
            &app.admin_token,
            &format!("/api/queues/{}", uuid::Uuid::now_v7()),
            json!({"offer_timeout_secs": 10, "strategy": "ring_all", "weight": 5}),
        )
        .await;
    let (status, code, _) = error_of(r).await;
    assert_eq!((status, code.as_str()), (404, "queue_not_found"));
    let r = app
        .put(
            &app.admin_token,
            "/api/queues/not-an-id",
            json!({"offer_timeout_secs": 10, "strategy": "ring_all", "weight": 5}),
        )
        .await;
    assert_eq!(error_of(r).await.1, "queue_not_found");
    assert_eq!(app.count_events(None).await, before, "refused requests appended nothing");
    // Valid settings are recorded once; the same settings again record nothing.
    let valid = json!({"offer_timeout_secs": 30, "strategy": "least_recent", "weight": 10});
    assert_eq!(app.put(&app.admin_token, &path, valid.clone()).await.status(), 204);
    assert_eq!(app.put(&app.admin_token, &path, valid).await.status(), 204);
    assert_eq!(app.count_events(Some("QueueConfigured")).await, 1);
    app.stop().await;
}

#[actix_web::test]
async fn removing_a_member_needs_a_known_queue_and_agent() {
    let app = spawn_app(Backend::Sqlite).await;
    let s = app.setup(10).await;
    let unknown = uuid::Uuid::now_v7();
    let r = app.delete(&app.admin_token, &format!("/api/queues/{unknown}/agents/{}", s.agent_id)).await;
    let (status, code, _) = error_of(r).await;
    assert_eq!((status, code.as_str()), (404, "queue_not_found"));
    let r = app.delete(&app.admin_token, &format!("/api/queues/{}/agents/{unknown}", s.queue_id)).await;
    let (status, code, _) = error_of(r).await;
    assert_eq!((status, code.as_str()), (404, "agent_not_found"));
    let r = app.delete(&app.admin_token, &format!("/api/queues/{}/agents/nope", s.queue_id)).await;
    assert_eq!(error_of(r).await.1, "agent_not_found");
    app.stop().await;
}

#[actix_web::test]
async fn capacities_are_1_to_50() {
    let app = spawn_app(Backend::Sqlite).await;
    let s = app.setup(10).await;
    let path = format!("/api/agents/{}/capacity", s.agent_id);
    for bad in [0, 51] {
        let r = app.put(&app.admin_token, &path, json!({"capacity": bad})).await;
        let (status, code, _) = error_of(r).await;
        assert_eq!((status, code.as_str()), (422, "invalid_capacity"), "{bad}");
    }
    let r = app
        .put(
            &app.admin_token,
            &format!("/api/agents/{}/capacity", uuid::Uuid::now_v7()),
            json!({"capacity": 3}),
        )
        .await;
    let (status, code, _) = error_of(r).await;
    assert_eq!((status, code.as_str()), (404, "agent_not_found"));
    // Supervisors set capacities too.
    let sup = supervisor(&app).await;
    assert_eq!(app.put(&sup, &path, json!({"capacity": 8})).await.status(), 204);
    app.stop().await;
}

#[actix_web::test]
async fn plans_and_rules_are_validated_and_the_refusal_names_what_is_wrong() {
    let app = spawn_app(Backend::Sqlite).await;
    let s = app.setup(10).await;
    app.settle().await;
    let before = app.count_events(None).await;
    let plan_path = format!("/api/accounts/{}/routing-plan", s.account_id);
    // A jump past the last step.
    let jump = json!({"time_zone": "UTC", "steps": [
        {"action": {"type": "go_to", "condition": {"type": "text_contains", "text": "refund"}, "step": 5}},
        {"action": {"type": "queue", "queue_id": s.queue_id}}
    ]});
    let (status, code, message) = error_of(app.put(&app.admin_token, &plan_path, jump).await).await;
    assert_eq!((status, code.as_str()), (422, "invalid_routing_plan"));
    assert!(message.contains("step 0") && message.contains('5'), "{message}");
    // No steps.
    let (status, code, _) =
        error_of(app.put(&app.admin_token, &plan_path, json!({"time_zone": "UTC", "steps": []})).await).await;
    assert_eq!((status, code.as_str()), (422, "invalid_routing_plan"));
    // A wait outside 1..=2147483 s names its field.
    let mut bad = rules();
    bad["wait_for_queue_secs"] = json!(0);
    let rules_path = format!("/api/accounts/{}/channel-rules", s.account_id);
    let (status, code, message) = error_of(app.put(&app.admin_token, &rules_path, bad).await).await;
    assert_eq!((status, code.as_str()), (422, "invalid_channel_rules"));
    assert!(message.contains("wait_for_queue_secs"), "{message}");
    let mut bad = rules();
    bad["inactivity_minutes"] = json!(40_000);
    let (status, code, message) = error_of(app.put(&app.admin_token, &rules_path, bad).await).await;
    assert_eq!((status, code.as_str()), (422, "invalid_channel_rules"));
    assert!(message.contains("inactivity_minutes"), "{message}");
    assert_eq!(app.count_events(None).await, before, "refused requests appended nothing");
    app.stop().await;
}

#[actix_web::test]
async fn unknown_accounts_are_404_for_plans_and_rules() {
    let app = spawn_app(Backend::Sqlite).await;
    let s = app.setup(10).await;
    let unknown = uuid::Uuid::now_v7();
    for path in
        [format!("/api/accounts/{unknown}/routing-plan"), format!("/api/accounts/{unknown}/channel-rules")]
    {
        let (status, code, _) = error_of(app.get(&app.admin_token, &path).await).await;
        assert_eq!((status, code.as_str()), (404, "account_not_found"), "{path}");
    }
    let r =
        app.put(&app.admin_token, &format!("/api/accounts/{unknown}/routing-plan"), plan(&s.queue_id)).await;
    assert_eq!(error_of(r).await.1, "account_not_found");
    let r = app.put(&app.admin_token, &format!("/api/accounts/{unknown}/channel-rules"), rules()).await;
    assert_eq!(error_of(r).await.1, "account_not_found");
    app.stop().await;
}

#[actix_web::test]
async fn rules_default_until_set_and_read_back_as_stored() {
    let app = spawn_app(Backend::Sqlite).await;
    let s = app.setup(10).await;
    let sup = supervisor(&app).await;
    let path = format!("/api/accounts/{}/channel-rules", s.account_id);
    let defaults = app.get_json(&sup, &path).await;
    assert_eq!(
        defaults,
        json!({"wait_for_agent_secs": 10, "wait_for_queue_secs": 10, "inactivity_minutes": null,
               "transfer_timeout_secs": null, "mandatory_disposition": null})
    );
    assert_eq!(app.put(&app.admin_token, &path, rules()).await.status(), 204);
    assert_eq!(app.get_json(&sup, &path).await, rules());
    app.stop().await;
}

#[actix_web::test]
async fn a_routing_queue_reads_back_as_a_one_step_plan_and_no_routing_as_not_set() {
    let app = spawn_app(Backend::Sqlite).await;
    let s = app.setup(10).await;
    let plan = app.get_json(&app.admin_token, &format!("/api/accounts/{}/routing-plan", s.account_id)).await;
    assert_eq!(
        plan,
        json!({"time_zone": "UTC", "steps": [
            {"when": null, "action": {"type": "queue", "queue_id": s.queue_id, "timeout_secs": null}}]})
    );
    let bare = app.create_account().await;
    let (status, code, _) =
        error_of(app.get(&app.admin_token, &format!("/api/accounts/{bare}/routing-plan")).await).await;
    assert_eq!((status, code.as_str()), (404, "routing_plan_not_set"));
    app.stop().await;
}

#[actix_web::test]
async fn a_valid_plan_is_stored_and_read_back() {
    let app = spawn_app(Backend::Sqlite).await;
    let s = app.setup(10).await;
    let path = format!("/api/accounts/{}/routing-plan", s.account_id);
    assert_eq!(app.put(&app.admin_token, &path, plan(&s.queue_id)).await.status(), 204);
    let stored = app.get_json(&supervisor(&app).await, &path).await;
    assert_eq!(stored["time_zone"], "Europe/Rome");
    assert_eq!(stored["steps"].as_array().map(Vec::len), Some(5));
    assert_eq!(stored["steps"][1]["action"]["type"], "go_to");
    assert_eq!(stored["steps"][4]["action"]["disposition"], "Out of hours");
    app.stop().await;
}

#[actix_web::test]
async fn transfers_need_an_existing_target_that_may_work_the_account() {
    let app = spawn_app(Backend::Sqlite).await;
    let s = app.setup(10).await;
    let interaction = an_interaction(&app, &s).await;
    let (outsider, _) = app.create_agent("Out").await;
    app.settle().await;
    let before = app.count_events(None).await;
    let path = format!("/api/interactions/{interaction}/transfer");
    let unknown = uuid::Uuid::now_v7();
    let cases = [
        (json!({"queue_id": "nope"}), 422, "invalid_id"),
        (json!({"agent_id": "nope"}), 422, "invalid_id"),
        (json!({"queue_id": unknown}), 404, "queue_not_found"),
        (json!({"agent_id": unknown}), 404, "agent_not_found"),
        (json!({"agent_id": outsider}), 403, "not_account_member"),
    ];
    for (body, status, code) in cases {
        let (got_status, got_code, _) = error_of(app.post(&s.agent_token, &path, body.clone()).await).await;
        assert_eq!((got_status, got_code.as_str()), (status, code), "{body}");
    }
    let r = app
        .post(
            &s.agent_token,
            &format!("/api/interactions/{unknown}/transfer"),
            json!({"queue_id": s.queue_id}),
        )
        .await;
    let (status, code, _) = error_of(r).await;
    assert_eq!((status, code.as_str()), (404, "interaction_not_found"));
    assert_eq!(app.count_events(None).await, before, "refused requests appended nothing");
    app.stop().await;
}

#[actix_web::test]
async fn tags_and_dispositions_are_checked_before_the_interaction_sees_them() {
    let app = spawn_app(Backend::Sqlite).await;
    let s = app.setup(10).await;
    let interaction = an_interaction(&app, &s).await;
    let sup = supervisor(&app).await;
    app.settle().await;
    let before = app.count_events(None).await;
    let tags = format!("/api/interactions/{interaction}/tags");
    let r = app.post(&s.agent_token, &tags, json!({"tags": ["ok", "   "]})).await;
    let (status, code, _) = error_of(r).await;
    assert_eq!((status, code.as_str()), (422, "invalid_text"));
    let r = app.post(&s.agent_token, &tags, json!({"tags": ["x".repeat(51)]})).await;
    assert_eq!(error_of(r).await.1, "invalid_text");
    let close = format!("/api/interactions/{interaction}/close");
    let r = app.post(&s.agent_token, &close, json!({"disposition": ""})).await;
    let (status, code, _) = error_of(r).await;
    assert_eq!((status, code.as_str()), (422, "invalid_text"));
    // Dispositions are the handling agent's: a supervisor closes without one.
    let r = app.post(&sup, &close, json!({"disposition": "Resolved"})).await;
    let (status, code, _) = error_of(r).await;
    assert_eq!((status, code.as_str()), (403, "forbidden"));
    assert_eq!(app.count_events(None).await, before, "refused requests appended nothing");
    // An empty body is no body.
    let r = app.send_raw(Method::POST, &sup, &close, "").await;
    assert_eq!(r.status(), 204);
    assert_eq!(app.count_events(Some("InteractionClosed")).await, 1);
    app.stop().await;
}

#[actix_web::test]
async fn the_routing_endpoints_are_in_the_openapi_description() {
    let app = spawn_app(Backend::Sqlite).await;
    let doc: Value =
        app.client.get(app.url("/openapi.json")).send().await.expect("get").json().await.expect("json");
    for (path, method) in [
        ("/api/accounts/{account_id}/routing-plan", "put"),
        ("/api/accounts/{account_id}/routing-plan", "get"),
        ("/api/accounts/{account_id}/channel-rules", "put"),
        ("/api/accounts/{account_id}/channel-rules", "get"),
        ("/api/queues/{queue_id}", "put"),
        ("/api/queues/{queue_id}/agents/{agent_id}", "delete"),
        ("/api/agents/{agent_id}/capacity", "put"),
        ("/api/interactions/{interaction_id}/transfer", "post"),
        ("/api/interactions/{interaction_id}/tags", "post"),
        ("/api/interactions/{interaction_id}/wrap-up", "post"),
        ("/api/interactions/{interaction_id}/close", "post"),
    ] {
        assert!(doc["paths"][path][method].is_object(), "{method} {path} missing from /openapi.json");
    }
    app.stop().await;
}
