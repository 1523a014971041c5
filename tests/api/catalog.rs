//! Catalogues through the HTTP API: dispositions (general and per account, three levels, the
//! system disposition) and canned answers (blended for agents, searchable, placeholders
//! filled), every validation rule with a bad value (clear code naming the field, nothing
//! stored), who may see what, and the close/dispose flow on SQLite and PostgreSQL.

use reqwest::Method;
use serde_json::{Value, json};
use switchboard_domain::catalog::closed_for_inactivity_id;

use crate::helpers::*;

/// A Meta text webhook from `from` (digits) with profile name Jane.
fn text(wamid: &str, from: &str, body: &str) -> Vec<u8> {
    meta_text(wamid, from, "Jane", body)
}

async fn patch(app: &TestApp, token: &str, path: &str, body: Value) -> reqwest::Response {
    app.client.patch(app.url(path)).bearer_auth(token).json(&body).send().await.expect("request")
}

/// Status, code and `details.field` of an error answer.
async fn refusal(response: reqwest::Response) -> (u16, String, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    (status, text(&body["error"]["code"]), text(&body["error"]["details"]["field"]))
}

async fn supervisor(app: &TestApp) -> String {
    let r = app.post(&app.admin_token, "/api/tokens", json!({"role": "supervisor", "label": "Sue"})).await;
    assert_eq!(r.status(), 201);
    r.json::<Value>().await.expect("json")["token"].as_str().expect("token").to_owned()
}

/// Adds a disposition and returns its id.
async fn add_disposition(app: &TestApp, path: &str, name: &str, parent: Option<&str>) -> String {
    let r = app.post(&app.admin_token, path, json!({"name": name, "parent_id": parent})).await;
    assert_eq!(r.status(), 201, "{name}");
    r.json::<Value>().await.expect("json")["id"].as_str().expect("id").to_owned()
}

async fn catalogue_events(app: &TestApp) -> i64 {
    let mut n = 0;
    for t in [
        "DispositionAdded",
        "DispositionRenamed",
        "DispositionRemoved",
        "CannedAnswerAdded",
        "CannedAnswerEdited",
        "CannedAnswerRemoved",
    ] {
        n += app.count_events(Some(t)).await;
    }
    n
}

#[actix_web::test]
async fn every_disposition_rule_refuses_a_bad_value_naming_the_field_and_stores_nothing() {
    let app = spawn_app(Backend::Sqlite).await;
    let account_id = app.create_account().await;
    let general = "/api/dispositions";
    let sales = add_disposition(&app, general, "Sales", None).await;
    let upgrade = add_disposition(&app, general, "Upgrade", Some(&sales)).await;
    let annual = add_disposition(&app, general, "Annual", Some(&upgrade)).await;
    let before_list = app.get_json(&app.admin_token, general).await;
    let before = catalogue_events(&app).await;
    let long_label = "x".repeat(64 - "Sales > Upgrade > ".len() + 1);
    let cases: Vec<(Value, u16, &str, &str)> = vec![
        (json!({"name": ""}), 422, "invalid_name", "name"),
        (json!({"name": "   "}), 422, "invalid_name", "name"),
        (json!({"name": "x".repeat(101)}), 422, "invalid_name", "name"),
        (json!({"name": "Sales > Lost"}), 422, "invalid_name", "name"),
        (json!({"name": "sales"}), 409, "disposition_name_taken", "name"),
        (json!({"name": "Closed for inactivity"}), 409, "disposition_name_taken", "name"),
        (json!({"name": long_label, "parent_id": upgrade}), 422, "label_too_long", "name"),
        (json!({"name": "Deeper", "parent_id": annual}), 422, "too_deep", "parent_id"),
        (
            json!({"name": "Orphan", "parent_id": uuid::Uuid::now_v7().to_string()}),
            422,
            "unknown_parent",
            "parent_id",
        ),
        (json!({"name": "Orphan", "parent_id": "not-a-uuid"}), 422, "invalid_id", "parent_id"),
        (
            json!({"name": "Sub", "parent_id": closed_for_inactivity_id().to_string()}),
            409,
            "system_disposition",
            "",
        ),
    ];
    for (body, status, code, field) in cases {
        let got = refusal(app.post(&app.admin_token, general, body.clone()).await).await;
        assert_eq!(got, (status, code.to_owned(), field.to_owned()), "{body}");
    }
    // Same rules in an account's catalogue, which has its own names.
    let account = format!("/api/accounts/{account_id}/dispositions");
    let got = refusal(app.post(&app.admin_token, &account, json!({"name": ""})).await).await;
    assert_eq!(got, (422, "invalid_name".to_owned(), "name".to_owned()));
    let got =
        refusal(app.post(&app.admin_token, &account, json!({"name": "Lost", "parent_id": sales})).await)
            .await;
    assert_eq!(got.1, "unknown_parent", "a parent must be in the same catalogue");
    // Unknown fields and malformed JSON are 400.
    let r = app.post(&app.admin_token, general, json!({"name": "Billing", "colour": "red"})).await;
    assert_eq!(r.status(), 400);
    let r = app.send_raw(Method::POST, &app.admin_token, general, "{\"name\":").await;
    assert_eq!(r.status(), 400);
    // Renames follow the same rules.
    let rename = |id: &str| format!("{general}/{id}");
    let got = refusal(patch(&app, &app.admin_token, &rename(&annual), json!({"name": "A>B"})).await).await;
    assert_eq!(got, (422, "invalid_name".to_owned(), "name".to_owned()));
    let support = add_disposition(&app, general, "Support", None).await;
    let before = before + 1;
    let got = refusal(patch(&app, &app.admin_token, &rename(&support), json!({"name": "SALES"})).await).await;
    assert_eq!(got, (409, "disposition_name_taken".to_owned(), "name".to_owned()));
    let got =
        refusal(patch(&app, &app.admin_token, &rename(&sales), json!({"name": "x".repeat(60)})).await).await;
    assert_eq!(got, (422, "label_too_long".to_owned(), "name".to_owned()));
    let got = refusal(patch(&app, &app.admin_token, &rename("nope"), json!({"name": "X"})).await).await;
    assert_eq!(got.1, "disposition_not_found");
    // A parent with children stays.
    let got = refusal(app.delete(&app.admin_token, &rename(&upgrade)).await).await;
    assert_eq!(got, (409, "has_children".to_owned(), String::new()));
    // Nothing of the above was stored.
    assert_eq!(catalogue_events(&app).await, before);
    let after_list = app.get_json(&app.admin_token, general).await;
    assert_eq!(after_list.as_array().map(Vec::len), before_list.as_array().map(|l| l.len() + 1));
    assert_eq!(after_list[1], before_list[1]);
    app.stop().await;
}

#[actix_web::test]
async fn the_system_disposition_is_listed_and_can_be_neither_renamed_nor_deleted() {
    let app = spawn_app(Backend::Sqlite).await;
    let list = app.get_json(&app.admin_token, "/api/dispositions").await;
    let system = closed_for_inactivity_id().to_string();
    assert_eq!(list[0]["id"], system.as_str());
    assert_eq!(
        (list[0]["name"].as_str(), list[0]["system"].as_bool()),
        (Some("Closed for inactivity"), Some(true))
    );
    let path = format!("/api/dispositions/{system}");
    let got = refusal(patch(&app, &app.admin_token, &path, json!({"name": "Idle"})).await).await;
    assert_eq!((got.0, got.1.as_str()), (409, "system_disposition"));
    let got = refusal(app.delete(&app.admin_token, &path).await).await;
    assert_eq!((got.0, got.1.as_str()), (409, "system_disposition"));
    assert_eq!(catalogue_events(&app).await, 0);
    assert_eq!(app.get_json(&app.admin_token, "/api/dispositions").await, list);
    app.stop().await;
}

#[actix_web::test]
async fn dispositions_are_renamed_and_removed_and_their_labels_follow() {
    let app = spawn_app(Backend::Sqlite).await;
    let account_id = app.create_account().await;
    let path = format!("/api/accounts/{account_id}/dispositions");
    let sales = add_disposition(&app, &path, "Sales", None).await;
    let upgrade = add_disposition(&app, &path, "Upgrade", Some(&sales)).await;
    let r = app.post(&app.admin_token, &path, json!({"name": "Annual", "parent_id": upgrade})).await;
    assert_eq!(r.status(), 201);
    let annual: Value = r.json().await.expect("json");
    assert_eq!(
        (annual["label"].as_str(), annual["origin"].as_str()),
        (Some("Sales > Upgrade > Annual"), Some("account"))
    );
    let r = patch(&app, &app.admin_token, &format!("{path}/{sales}"), json!({"name": "Revenue"})).await;
    assert_eq!(r.status(), 200);
    let tree = app.get_json(&app.admin_token, &path).await;
    assert_eq!(tree[0]["children"][0]["children"][0]["label"], "Revenue > Upgrade > Annual");
    let annual_id = annual["id"].as_str().expect("id");
    assert_eq!(app.delete(&app.admin_token, &format!("{path}/{annual_id}")).await.status(), 204);
    let tree = app.get_json(&app.admin_token, &path).await;
    assert_eq!(tree[0]["children"][0]["children"], json!([]));
    // The account's catalogue does not hold the system disposition; the general one does.
    assert_eq!(tree.as_array().map(Vec::len), Some(1));
    app.stop().await;
}

#[actix_web::test]
async fn only_admins_change_catalogues_and_agents_see_only_their_accounts() {
    let app = spawn_app(Backend::Sqlite).await;
    let account_id = app.create_account().await;
    let sup = supervisor(&app).await;
    let (agent_id, agent) = app.create_agent("Sam").await;
    let dispositions = format!("/api/accounts/{account_id}/dispositions");
    let canned = format!("/api/accounts/{account_id}/canned-answers");
    for token in [&sup, &agent] {
        for path in ["/api/dispositions", dispositions.as_str()] {
            assert_eq!(app.post(token, path, json!({"name": "X"})).await.status(), 403, "{path}");
        }
        for path in ["/api/canned-answers", canned.as_str()] {
            assert_eq!(
                app.post(token, path, json!({"title": "X", "text": "Y"})).await.status(),
                403,
                "{path}"
            );
        }
    }
    assert_eq!(app.client.get(app.url("/api/dispositions")).send().await.expect("get").status(), 401);
    // An agent not on the account: the same 404 as for no account at all.
    for path in [&dispositions, &canned] {
        assert_eq!(refusal(app.get(&agent, path).await).await.1, "account_not_found");
    }
    let missing = format!("/api/accounts/{}/dispositions", uuid::Uuid::now_v7());
    assert_eq!(refusal(app.get(&app.admin_token, &missing).await).await.1, "account_not_found");
    assert_eq!(
        refusal(app.post(&app.admin_token, &missing, json!({"name": "X"})).await).await.1,
        "account_not_found"
    );
    // General catalogues are everyone's; once added, the account's too.
    assert_eq!(app.get(&agent, "/api/dispositions").await.status(), 200);
    assert_eq!(app.get(&agent, "/api/canned-answers").await.status(), 200);
    assert_eq!(app.get(&sup, &dispositions).await.status(), 200);
    let r = app
        .post(&app.admin_token, &format!("/api/accounts/{account_id}/agents"), json!({"agent_id": agent_id}))
        .await;
    assert_eq!(r.status(), 204);
    assert_eq!(app.get(&agent, &dispositions).await.status(), 200);
    assert_eq!(app.get(&agent, &canned).await.status(), 200);
    assert_eq!(catalogue_events(&app).await, 0);
    app.stop().await;
}

#[actix_web::test]
async fn every_canned_answer_rule_refuses_a_bad_value_naming_the_field_and_stores_nothing() {
    let app = spawn_app(Backend::Sqlite).await;
    let path = "/api/canned-answers";
    let r = app
        .post(&app.admin_token, path, json!({"title": "Greeting", "text": "Hello {{contact.name}}"}))
        .await;
    assert_eq!(r.status(), 201);
    let greeting: Value = r.json().await.expect("json");
    let before = catalogue_events(&app).await;
    let cases: Vec<(Value, u16, &str, &str)> = vec![
        (json!({"title": "", "text": "Hi"}), 422, "invalid_title", "title"),
        (json!({"title": "x".repeat(101), "text": "Hi"}), 422, "invalid_title", "title"),
        (json!({"title": "Hi", "text": ""}), 422, "invalid_text", "text"),
        (json!({"title": "Hi", "text": "x".repeat(4097)}), 422, "invalid_text", "text"),
        (json!({"title": "Hi", "text": "Hello {{contact.name"}), 422, "invalid_template", "text"),
        (json!({"title": "Hi", "text": "{{#open}}yes"}), 422, "invalid_template", "text"),
        (json!({"title": "GREETING", "text": "Hi"}), 409, "title_taken", "title"),
    ];
    for (body, status, code, field) in cases {
        let got = refusal(app.post(&app.admin_token, path, body.clone()).await).await;
        assert_eq!(got, (status, code.to_owned(), field.to_owned()), "{body}");
    }
    // A placeholder error says where.
    let r = app.post(&app.admin_token, path, json!({"title": "Hi", "text": "Hello {{contact.name"})).await;
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["error"]["details"]["position"], 6);
    assert_eq!(
        (body["error"]["details"]["line"].as_u64(), body["error"]["details"]["column"].as_u64()),
        (Some(1), Some(7))
    );
    // Edits too.
    let id = greeting["id"].as_str().expect("id");
    let one = format!("{path}/{id}");
    let got = refusal(patch(&app, &app.admin_token, &one, json!({"text": "{{/x}}"})).await).await;
    assert_eq!(got, (422, "invalid_template".to_owned(), "text".to_owned()));
    let got = refusal(patch(&app, &app.admin_token, &one, json!({"title": " "})).await).await;
    assert_eq!(got, (422, "invalid_title".to_owned(), "title".to_owned()));
    let missing = format!("{path}/{}", uuid::Uuid::now_v7());
    assert_eq!(
        refusal(patch(&app, &app.admin_token, &missing, json!({"title": "X"})).await).await.1,
        "canned_answer_not_found"
    );
    assert_eq!(refusal(app.delete(&app.admin_token, &missing).await).await.1, "canned_answer_not_found");
    assert_eq!(
        app.post(&app.admin_token, path, json!({"title": "X", "text": "Y", "z": 1})).await.status(),
        400
    );
    assert_eq!(catalogue_events(&app).await, before);
    let list = app.get_json(&app.admin_token, path).await;
    assert_eq!(list, json!([greeting]));
    // A good edit and a removal.
    let r = patch(&app, &app.admin_token, &one, json!({"text": "Hi {{contact.name}}!"})).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.expect("json")["text"], "Hi {{contact.name}}!");
    assert_eq!(app.delete(&app.admin_token, &one).await.status(), 204);
    assert_eq!(app.get_json(&app.admin_token, path).await, json!([]));
    app.stop().await;
}

/// An account with a queue and a ready agent who accepted a customer's interaction. The
/// agent's socket is returned so the caller keeps it open: dropping it would record a
/// disconnect at some later moment, in the middle of the caller's event counts.
async fn accepted_interaction(app: &TestApp, s: &Setup, wamid: &str) -> (String, Ws) {
    let mut ws = app.connect_ws(&s.agent_token).await;
    app.agent_ready(&s.agent_token).await;
    assert_eq!(app.webhook(&s.account_id, &text(wamid, "15551234567", "hi")).await.status(), 200);
    let id = ws.next_of("offer").await["interaction_id"].as_str().expect("id").to_owned();
    let r = app.post(&s.agent_token, &format!("/api/interactions/{id}/accept"), json!({})).await;
    assert_eq!(r.status(), 204);
    (id, ws)
}

#[actix_web::test]
async fn agents_get_general_and_account_canned_answers_in_one_list_filled_from_the_interaction() {
    let app = spawn_app(Backend::Sqlite).await;
    let s = app.setup(30).await;
    let own = format!("/api/accounts/{}/canned-answers", s.account_id);
    for (path, title, text) in [
        ("/api/canned-answers", "Thanks", "Thank you, {{contact.name}}!"),
        ("/api/canned-answers", "Hours", "We are open 9 to 5."),
        (
            own.as_str(),
            "Greeting",
            "Hi {{contact.name}}, {{agent.name}} from {{account.name}} ({{account.key}}) here.",
        ),
    ] {
        assert_eq!(
            app.post(&app.admin_token, path, json!({"title": title, "text": text})).await.status(),
            201
        );
    }
    let (id, _ws) = accepted_interaction(&app, &s, "wamid.C1").await;
    app.eventually("/api/interactions", |v| v[0]["customer_name"] == "Jane").await;
    let path = format!("/api/interactions/{id}/canned-answers");
    let list = app.get_json(&s.agent_token, &path).await;
    let seen: Vec<(&str, &str, &str)> = list
        .as_array()
        .expect("array")
        .iter()
        .map(|a| {
            (
                a["title"].as_str().unwrap_or(""),
                a["origin"].as_str().unwrap_or(""),
                a["text"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            ("Greeting", "account", "Hi Jane, Sam from Support (SUP) here."),
            ("Hours", "general", "We are open 9 to 5."),
            ("Thanks", "general", "Thank you, Jane!"),
        ]
    );
    assert_eq!(list[2]["source"], "Thank you, {{contact.name}}!");
    let found = app.get_json(&s.agent_token, &format!("{path}?q=OPEN")).await;
    assert_eq!(
        found.as_array().map(|l| l.iter().map(|a| a["title"].clone()).collect::<Vec<_>>()),
        Some(vec![json!("Hours")])
    );
    let found = app.get_json(&s.agent_token, &format!("{path}?q=jane")).await;
    assert_eq!(found.as_array().map(Vec::len), Some(2));
    let got = refusal(app.get(&s.agent_token, &format!("{path}?q={}", "x".repeat(101))).await).await;
    assert_eq!(got, (422, "invalid_query".to_owned(), "q".to_owned()));
    // An agent not on the account sees neither the answers nor that the interaction exists.
    let (_, stranger) = app.create_agent("Stranger").await;
    assert_eq!(refusal(app.get(&stranger, &path).await).await.1, "interaction_not_found");
    assert_eq!(
        refusal(app.get(&stranger, &format!("/api/interactions/{id}/dispositions")).await).await.1,
        "interaction_not_found"
    );
    // A supervisor gets the answers filled with the handling agent's name.
    let sup = supervisor(&app).await;
    let list = app.get_json(&sup, &format!("{path}?q=greeting")).await;
    assert_eq!(list[0]["text"], "Hi Jane, Sam from Support (SUP) here.");
    app.stop().await;
}

/// Close and dispose with catalogue dispositions: the agent's blended tree, every refusal
/// (nothing stored), and the label recorded.
async fn dispose_flow(backend: Backend) {
    let app = spawn_app(backend).await;
    let s = app.setup(30).await;
    let solved = add_disposition(&app, "/api/dispositions", "Solved", None).await;
    let own = format!("/api/accounts/{}/dispositions", s.account_id);
    let sales = add_disposition(&app, &own, "Sales", None).await;
    let upgrade = add_disposition(&app, &own, "Upgrade", Some(&sales)).await;
    let annual = add_disposition(&app, &own, "Annual", Some(&upgrade)).await;
    let (id, _ws) = accepted_interaction(&app, &s, "wamid.D1").await;

    // What the agent picks from: general (without the system one), then the account's.
    let tree = app.get_json(&s.agent_token, &format!("/api/interactions/{id}/dispositions")).await;
    assert_eq!(tree[0]["id"], solved.as_str());
    assert_eq!((tree[0]["origin"].as_str(), tree[1]["origin"].as_str()), (Some("general"), Some("account")));
    assert_eq!(tree[1]["children"][0]["children"][0]["label"], "Sales > Upgrade > Annual");
    assert_eq!(tree.as_array().map(Vec::len), Some(2));

    app.settle().await;
    let before = app.count_events(None).await;
    let close = format!("/api/interactions/{id}/close");
    let system = closed_for_inactivity_id().to_string();
    let other = uuid::Uuid::now_v7().to_string();
    let cases: Vec<(Value, u16, &str, &str)> = vec![
        (json!({"disposition": "Whatever"}), 422, "disposition_id_required", "disposition_id"),
        (json!({"disposition_id": upgrade}), 422, "disposition_not_leaf", "disposition_id"),
        (json!({"disposition_id": other}), 422, "unknown_disposition", "disposition_id"),
        (json!({"disposition_id": system}), 422, "system_disposition", "disposition_id"),
        (json!({"disposition_id": "nope"}), 422, "invalid_id", "disposition_id"),
        (
            json!({"disposition_id": annual, "disposition": "x"}),
            422,
            "ambiguous_disposition",
            "disposition_id",
        ),
    ];
    for (body, status, code, field) in &cases {
        let got = refusal(app.post(&s.agent_token, &close, body.clone()).await).await;
        assert_eq!(got, (*status, code.to_string(), field.to_string()), "close {body}");
    }
    // A supervisor closes without a disposition only.
    let sup = supervisor(&app).await;
    let got = refusal(app.post(&sup, &close, json!({"disposition_id": annual})).await).await;
    assert_eq!((got.0, got.1.as_str()), (403, "forbidden"));
    assert_eq!(app.count_events(None).await, before, "refused closes stored nothing");

    // Close with the account's leaf: the full label is recorded.
    assert_eq!(app.post(&s.agent_token, &close, json!({"disposition_id": annual})).await.status(), 204);
    let list = app.eventually("/api/interactions", |v| v[0]["status"] == "disposed").await;
    assert_eq!(list[0]["disposition"], "Sales > Upgrade > Annual");

    // A second interaction: closed first, disposed after with a general disposition.
    let (second, _ws2) = accepted_interaction(&app, &s, "wamid.D2").await;
    assert_eq!(
        app.post(&s.agent_token, &format!("/api/interactions/{second}/close"), json!({})).await.status(),
        204
    );
    app.settle().await;
    let before = app.count_events(None).await;
    let dispose = format!("/api/interactions/{second}/dispose");
    for (body, status, code, field) in
        cases.iter().chain([&(json!({}), 422, "disposition_id_required", "disposition_id")])
    {
        let got = refusal(app.post(&s.agent_token, &dispose, body.clone()).await).await;
        assert_eq!(got, (*status, code.to_string(), field.to_string()), "dispose {body}");
    }
    assert_eq!(app.count_events(None).await, before, "refused disposals stored nothing");
    assert_eq!(app.post(&s.agent_token, &dispose, json!({"disposition_id": solved})).await.status(), 204);
    let list = app
        .eventually("/api/interactions", |v| {
            v.as_array().is_some_and(|l| {
                l.iter().any(|i| i["interaction_id"] == second.as_str() && i["status"] == "disposed")
            })
        })
        .await;
    let row =
        list.as_array().and_then(|l| l.iter().find(|i| i["interaction_id"] == second.as_str())).cloned();
    assert_eq!(row.map(|r| r["disposition"].clone()), Some(json!("Solved")));

    // Removing a disposition later leaves what was recorded untouched.
    assert_eq!(app.delete(&app.admin_token, &format!("{own}/{annual}")).await.status(), 204);
    app.settle().await;
    let list = app.get_json(&app.admin_token, "/api/interactions").await;
    assert!(
        list.as_array().is_some_and(|l| l.iter().any(|i| i["disposition"] == "Sales > Upgrade > Annual"))
    );
    app.stop().await;
}

#[actix_web::test]
async fn the_dispose_flow_records_catalogue_labels_on_sqlite() {
    dispose_flow(Backend::Sqlite).await;
}

#[actix_web::test]
async fn the_dispose_flow_records_catalogue_labels_on_postgres() {
    dispose_flow(Backend::Postgres).await;
}

/// Free text keeps working while there is no catalogue (the flow before catalogues existed).
#[actix_web::test]
async fn free_text_dispositions_still_work_without_a_catalogue() {
    let app = spawn_app(Backend::Postgres).await;
    let s = app.setup(30).await;
    let (id, _ws) = accepted_interaction(&app, &s, "wamid.F1").await;
    let close = format!("/api/interactions/{id}/close");
    let got = refusal(app.post(&s.agent_token, &close, json!({"disposition": ""})).await).await;
    assert_eq!(got, (422, "invalid_text".to_owned(), "disposition".to_owned()));
    assert_eq!(app.post(&s.agent_token, &close, json!({"disposition": "Resolved"})).await.status(), 204);
    let list = app.eventually("/api/interactions", |v| v[0]["status"] == "disposed").await;
    assert_eq!(list[0]["disposition"], "Resolved");
    app.stop().await;
}

#[actix_web::test]
async fn the_catalogue_endpoints_are_in_the_openapi_description() {
    let app = spawn_app(Backend::Sqlite).await;
    let doc: Value =
        app.client.get(app.url("/openapi.json")).send().await.expect("get").json().await.expect("json");
    for (path, method) in [
        ("/api/dispositions", "get"),
        ("/api/dispositions", "post"),
        ("/api/dispositions/{disposition_id}", "patch"),
        ("/api/dispositions/{disposition_id}", "delete"),
        ("/api/accounts/{account_id}/dispositions", "post"),
        ("/api/accounts/{account_id}/dispositions/{disposition_id}", "delete"),
        ("/api/canned-answers", "post"),
        ("/api/canned-answers/{answer_id}", "patch"),
        ("/api/accounts/{account_id}/canned-answers", "get"),
        ("/api/accounts/{account_id}/canned-answers/{answer_id}", "delete"),
        ("/api/interactions/{interaction_id}/dispositions", "get"),
        ("/api/interactions/{interaction_id}/canned-answers", "get"),
    ] {
        assert!(doc["paths"][path][method].is_object(), "{method} {path} missing from /openapi.json");
    }
    app.stop().await;
}

/// The inactivity close records exactly the system disposition's label, also when the
/// account has a catalogue of its own.
#[actix_web::test]
async fn the_inactivity_close_records_the_system_disposition() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, ResponseTemplate};
    let app = spawn_app(Backend::Sqlite).await;
    Mock::given(method("POST"))
        .and(path("/v23.0/100000000000002/messages"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(fixture("meta_send_response.json")))
        .mount(&app.graph)
        .await;
    let s = app.setup(30).await;
    add_disposition(&app, &format!("/api/accounts/{}/dispositions", s.account_id), "Sales", None).await;
    let r = app
        .put(
            &app.admin_token,
            &format!("/api/accounts/{}/channel-rules", s.account_id),
            json!({"wait_for_agent_secs": 10, "wait_for_queue_secs": 10, "inactivity_minutes": 1}),
        )
        .await;
    assert_eq!(r.status(), 204);
    let (id, _ws) = accepted_interaction(&app, &s, "wamid.I1").await;
    let r = app
        .post(&s.agent_token, &format!("/api/interactions/{id}/messages"), json!({"text": "Anything else?"}))
        .await;
    assert_eq!(r.status(), 202);
    app.settle().await;
    app.core.clock.advance(std::time::Duration::from_secs(61));
    let list = app.eventually("/api/interactions", |v| v[0]["status"] == "disposed").await;
    let system = app.get_json(&app.admin_token, "/api/dispositions").await;
    assert_eq!(system[0]["id"], closed_for_inactivity_id().to_string().as_str());
    assert_eq!(list[0]["disposition"], system[0]["label"]);
    app.stop().await;
}
