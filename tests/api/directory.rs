//! The contact manager through the HTTP API: lists and contacts (CRUD, search, roles), every
//! validation rule with a bad value (clear code naming the field, nothing stored), the CSV
//! import's per-row report, the whitelist (turned-away numbers get the automatic reply and
//! are closed, never offered) and routing's `in_contact_list` condition, on SQLite and
//! PostgreSQL where storage is involved.

use serde_json::{Value, json};

use crate::helpers::*;

/// A Meta text webhook from `from` (digits) with its own message id.
fn text(wamid: &str, from: &str, body: &str) -> Vec<u8> {
    meta_text(wamid, from, "Jane Customer", body)
}

async fn accept_sends(app: &TestApp) {
    accept_meta_sends(app).await
}

async fn create_list(app: &TestApp, name: &str) -> String {
    let r = app.post(&app.admin_token, "/api/contact-lists", json!({"name": name})).await;
    assert_eq!(r.status(), 201);
    r.json::<Value>().await.expect("json")["list_id"].as_str().expect("id").to_owned()
}

async fn add_contact(app: &TestApp, list: &str, body: Value) -> Value {
    let r = app.post(&app.admin_token, &format!("/api/contact-lists/{list}/contacts"), body).await;
    assert_eq!(r.status(), 201);
    r.json().await.expect("json")
}

/// The status, code and `details.field` of an error answer.
async fn refusal(r: reqwest::Response) -> (u16, String, String) {
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap_or(Value::Null);
    let s = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    (status, s(&body["error"]["code"]), s(&body["error"]["details"]["field"]))
}

async fn patch(app: &TestApp, path: &str, body: Value) -> reqwest::Response {
    app.client.patch(app.url(path)).bearer_auth(&app.admin_token).json(&body).send().await.expect("request")
}

async fn import(app: &TestApp, list: &str, content_type: &str, csv: &str) -> reqwest::Response {
    app.client
        .post(app.url(&format!("/api/contact-lists/{list}/import")))
        .bearer_auth(&app.admin_token)
        .header("Content-Type", content_type)
        .body(csv.to_owned())
        .send()
        .await
        .expect("request")
}

/// Waits until the list's read model shows `n` contacts.
async fn contacts_total(app: &TestApp, list: &str, n: i64) -> Value {
    app.eventually(&format!("/api/contact-lists/{list}/contacts"), |v| v["total"] == n).await
}

#[actix_web::test]
async fn lists_and_contacts_are_managed_searched_and_deleted() {
    let app = spawn_app(Backend::Sqlite).await;
    let list = create_list(&app, "VIP").await;
    let r =
        patch(&app, &format!("/api/contact-lists/{list}"), json!({"description": "Best customers"})).await;
    assert_eq!(r.status(), 200);
    let jane = add_contact(
        &app,
        &list,
        json!({"phone": "+15551234567", "name": "Jane Doe", "email": "jane@example.com",
               "tags": ["gold"], "fields": {"city": "Rome"}}),
    )
    .await;
    assert_eq!(jane["created_by"], "api");
    add_contact(&app, &list, json!({"phone": "+15551234568", "name": "Bob"})).await;
    let (status, code, _) = refusal(
        app.post(
            &app.admin_token,
            &format!("/api/contact-lists/{list}/contacts"),
            json!({"phone": "+15551234567"}),
        )
        .await,
    )
    .await;
    assert_eq!((status, code.as_str()), (409, "contact_exists"), "a phone is unique within its list");

    contacts_total(&app, &list, 2).await;
    let found = app.get_json(&app.admin_token, &format!("/api/contact-lists/{list}/contacts?q=JANE")).await;
    assert_eq!(found["total"], 1);
    assert_eq!(found["contacts"][0]["fields"]["city"], "Rome");
    let found = app.get_json(&app.admin_token, &format!("/api/contact-lists/{list}/contacts?tag=gold")).await;
    assert_eq!(found["contacts"][0]["phone"], "+15551234567");
    let page =
        app.get_json(&app.admin_token, &format!("/api/contact-lists/{list}/contacts?limit=1&offset=1")).await;
    assert_eq!((page["total"].as_i64(), page["contacts"].as_array().map(Vec::len)), (Some(2), Some(1)));
    let lists = app.get_json(&app.admin_token, "/api/contact-lists").await;
    assert_eq!(lists[0]["description"], "Best customers");
    assert_eq!(lists[0]["contacts"], 2);

    let id = jane["contact_id"].as_str().expect("id");
    let r =
        patch(&app, &format!("/api/contacts/{id}"), json!({"email": null, "tags": ["gold", "vip"]})).await;
    assert_eq!(r.status(), 200);
    let jane = app.get_json(&app.admin_token, &format!("/api/contacts/{id}")).await;
    assert_eq!((jane["email"].clone(), jane["tags"].clone()), (Value::Null, json!(["gold", "vip"])));
    assert_eq!(app.delete(&app.admin_token, &format!("/api/contacts/{id}")).await.status(), 204);
    assert_eq!(app.get(&app.admin_token, &format!("/api/contacts/{id}")).await.status(), 404);

    // Deleting the list takes its contacts with it.
    assert_eq!(app.delete(&app.admin_token, &format!("/api/contact-lists/{list}")).await.status(), 204);
    assert_eq!(
        refusal(app.get(&app.admin_token, &format!("/api/contact-lists/{list}")).await).await.1,
        "contact_list_not_found"
    );
    app.settle().await;
    assert_eq!(app.get_json(&app.admin_token, "/api/contact-lists").await, json!([]));
    app.stop().await;
}

#[actix_web::test]
async fn only_admins_and_supervisors_manage_contacts_and_only_admins_set_whitelists() {
    let app = spawn_app(Backend::Sqlite).await;
    let account_id = app.create_account().await;
    let list = create_list(&app, "VIP").await;
    let (_, agent) = app.create_agent("Sam").await;
    let supervisor =
        switchboard::auth::issue(&app.core.db.any, switchboard::auth::Role::Supervisor, None, "sup", 0)
            .await
            .expect("token");
    assert_eq!(app.get(&agent, "/api/contact-lists").await.status(), 403);
    assert_eq!(app.post(&agent, "/api/contact-lists", json!({"name": "X"})).await.status(), 403);
    assert_eq!(app.get(&agent, &format!("/api/contact-lists/{list}/contacts")).await.status(), 403);
    assert_eq!(app.post(&supervisor, "/api/contact-lists", json!({"name": "Y"})).await.status(), 201);
    let body = json!({"enabled": true, "lists": [list]});
    assert_eq!(
        app.put(&supervisor, &format!("/api/accounts/{account_id}/whitelist"), body).await.status(),
        403
    );
    assert_eq!(app.get(&supervisor, &format!("/api/accounts/{account_id}/whitelist")).await.status(), 200);
    assert_eq!(app.get("not-a-token", "/api/contact-lists").await.status(), 401);
    app.stop().await;
}

#[actix_web::test]
async fn every_bad_value_is_refused_naming_its_field_and_nothing_is_stored() {
    let app = spawn_app(Backend::Sqlite).await;
    let account_id = app.create_account().await;
    let list = create_list(&app, "VIP").await;
    let jane = add_contact(&app, &list, json!({"phone": "+15551234567", "name": "Jane"})).await;
    let jane_id = jane["contact_id"].as_str().expect("id").to_owned();
    let events_before = app.count_events(None).await;

    // Lists.
    for (body, code, field) in [
        (json!({"name": ""}), "invalid_name", "name"),
        (json!({"name": "x".repeat(101)}), "invalid_name", "name"),
        (json!({"name": "Ok", "description": "d".repeat(501)}), "invalid_description", "description"),
    ] {
        let got = refusal(app.post(&app.admin_token, "/api/contact-lists", body.clone()).await).await;
        assert_eq!(got, (422, code.to_owned(), field.to_owned()), "{body}");
        let got = refusal(patch(&app, &format!("/api/contact-lists/{list}"), body.clone()).await).await;
        assert_eq!(got, (422, code.to_owned(), field.to_owned()), "PATCH {body}");
    }
    let r = app.post(&app.admin_token, "/api/contact-lists", json!({"name": "Ok", "colour": "red"})).await;
    assert_eq!(r.status(), 400, "unknown fields are refused, not ignored");

    // Contacts, on create and on update.
    let many_tags: Vec<String> = (0..21).map(|i| format!("t{i}")).collect();
    let many_fields: serde_json::Map<String, Value> =
        (0..51).map(|i| (format!("f{i}"), json!("v"))).collect();
    for (body, code, field) in [
        (json!({"name": "x".repeat(101)}), "invalid_name", "name"),
        (json!({"email": "jane@"}), "invalid_email", "email"),
        (json!({"tags": ["x".repeat(51)]}), "invalid_tag", "tags"),
        (json!({"tags": many_tags}), "too_many_tags", "tags"),
        (json!({"fields": {"phone": "x"}}), "invalid_custom_field", "fields.phone"),
        (json!({"fields": {"bad name": "x"}}), "invalid_custom_field", "fields.bad name"),
        (json!({"fields": {"city": "x".repeat(501)}}), "invalid_custom_field", "fields.city"),
        (json!({"fields": many_fields}), "too_many_custom_fields", "fields"),
    ] {
        let mut create = body.clone();
        create["phone"] = json!("+15550000009");
        let got =
            refusal(app.post(&app.admin_token, &format!("/api/contact-lists/{list}/contacts"), create).await)
                .await;
        assert_eq!(got, (422, code.to_owned(), field.to_owned()), "POST {body}");
        let got = refusal(patch(&app, &format!("/api/contacts/{jane_id}"), body.clone()).await).await;
        assert_eq!(got, (422, code.to_owned(), field.to_owned()), "PATCH {body}");
    }
    for phone in ["15551234567", "+0123", "", "+1555abc4567"] {
        let got = refusal(
            app.post(
                &app.admin_token,
                &format!("/api/contact-lists/{list}/contacts"),
                json!({"phone": phone}),
            )
            .await,
        )
        .await;
        assert_eq!(got, (422, "invalid_phone_number".to_owned(), "phone".to_owned()), "{phone}");
    }
    let r = patch(&app, &format!("/api/contacts/{jane_id}"), json!({"phone": "+15550000001"})).await;
    assert_eq!(r.status(), 400, "the phone is the card's identity: not patchable");
    let got =
        refusal(app.get(&app.admin_token, &format!("/api/contact-lists/{list}/contacts?limit=0")).await)
            .await;
    assert_eq!(got, (422, "invalid_paging".to_owned(), "limit".to_owned()));
    let got =
        refusal(app.get(&app.admin_token, &format!("/api/contact-lists/{list}/contacts?offset=-1")).await)
            .await;
    assert_eq!(got, (422, "invalid_paging".to_owned(), "offset".to_owned()));
    let unknown_list = uuid::Uuid::now_v7();
    let got = refusal(
        app.post(
            &app.admin_token,
            &format!("/api/contact-lists/{unknown_list}/contacts"),
            json!({"phone": "+15550000009"}),
        )
        .await,
    )
    .await;
    assert_eq!((got.0, got.1.as_str()), (404, "contact_list_not_found"));

    // Whitelist.
    let whitelist = format!("/api/accounts/{account_id}/whitelist");
    for (body, code, field) in [
        (json!({"enabled": true, "lists": ["nope"]}), "invalid_id", "lists"),
        (json!({"enabled": true, "lists": [unknown_list.to_string()]}), "unknown_contact_list", "lists"),
        (json!({"enabled": true, "lists": []}), "whitelist_without_lists", "lists"),
        (json!({"enabled": true, "lists": [list], "reply": ""}), "invalid_reply", "reply"),
        (json!({"enabled": true, "lists": [list], "reply": "x".repeat(4097)}), "invalid_reply", "reply"),
    ] {
        let got = refusal(app.put(&app.admin_token, &whitelist, body.clone()).await).await;
        assert_eq!(got, (422, code.to_owned(), field.to_owned()), "{body}");
    }
    let r = app
        .put(&app.admin_token, &format!("/api/accounts/{unknown_list}/whitelist"), json!({"enabled": false}))
        .await;
    assert_eq!(refusal(r).await.1, "account_not_found");

    // Nothing of the above was stored.
    assert_eq!(app.count_events(None).await, events_before);
    assert_eq!(
        app.get_json(&app.admin_token, &whitelist).await,
        json!({"enabled": false, "lists": [], "reply": null})
    );
    let jane = app.get_json(&app.admin_token, &format!("/api/contacts/{jane_id}")).await;
    assert_eq!((jane["name"].clone(), jane["tags"].clone()), (json!("Jane"), json!([])));
    app.stop().await;
}

#[actix_web::test]
async fn a_csv_import_reports_each_bad_row_and_imports_or_merges_the_rest() {
    let app = spawn_app(Backend::Sqlite).await;
    let list = create_list(&app, "Customers").await;
    add_contact(&app, &list, json!({"phone": "+15551234567", "name": "Jane", "fields": {"plan": "gold"}}))
        .await;
    let csv = "phone,name,email,tags,city\n\
               +15551234567,Jane Doe,,,Rome\n\
               +15551234568,\"Smith, Bob\",bob@example.com,vip;new,Milan\n\
               555-1234,Nobody,,,\n\
               +15551234569,Ann,ann@,,\n\
               +15551234568,Bob again,,,\n\
               +15551234570,,,,\n";
    let r = import(&app, &list, "text/csv; charset=utf-8", csv).await;
    assert_eq!(r.status(), 200);
    let report: Value = r.json().await.expect("json");
    assert_eq!((report["imported"].as_i64(), report["updated"].as_i64()), (Some(2), Some(1)), "{report:#}");
    let failed: Vec<(i64, String, String)> = report["failed"]
        .as_array()
        .expect("failed")
        .iter()
        .map(|f| {
            (
                f["row"].as_i64().unwrap_or(0),
                f["field"].as_str().unwrap_or("").into(),
                f["code"].as_str().unwrap_or("").into(),
            )
        })
        .collect();
    assert_eq!(
        failed,
        vec![
            (4, "phone".into(), "invalid_phone_number".into()),
            (5, "email".into(), "invalid_email".into()),
            (6, "phone".into(), "duplicate_in_file".into()),
        ]
    );
    let page = contacts_total(&app, &list, 3).await;
    let jane =
        page["contacts"].as_array().expect("contacts").iter().find(|c| c["phone"] == "+15551234567").cloned();
    let jane = jane.expect("jane");
    assert_eq!(jane["name"], "Jane Doe");
    assert_eq!(jane["fields"], json!({"city": "Rome", "plan": "gold"}), "imports add fields, never remove");
    let bob = app.get_json(&app.admin_token, &format!("/api/contact-lists/{list}/contacts?q=smith")).await;
    assert_eq!(bob["contacts"][0]["tags"], json!(["new", "vip"]));
    assert_eq!(bob["contacts"][0]["created_by"], "import");

    // The same file again creates nothing new.
    let again: Value = import(&app, &list, "text/csv", csv).await.json().await.expect("json");
    assert_eq!(
        (again["imported"].as_i64(), again["updated"].as_i64(), again["unchanged"].as_i64()),
        (Some(0), Some(0), Some(3))
    );

    // Whole-file refusals import nothing.
    let before = app.count_events(None).await;
    let got = refusal(import(&app, &list, "text/csv", "name,email\nJane,j@example.com\n").await).await;
    assert_eq!(got, (422, "invalid_csv_header".to_owned(), "header".to_owned()));
    let got = refusal(import(&app, &list, "text/csv", "phone,\"oops\n+15559999999,x\n").await).await;
    assert_eq!(got, (422, "invalid_csv".to_owned(), "file".to_owned()));
    let got = refusal(import(&app, &list, "application/json", "phone\n+15559999999\n").await).await;
    assert_eq!((got.0, got.1.as_str()), (415, "unsupported_media_type"));
    let big = format!("phone\n{}", "+15559999999\n".repeat(200_000));
    let got = refusal(import(&app, &list, "text/csv", &big).await).await;
    assert_eq!(got, (413, "payload_too_large".to_owned(), "file".to_owned()));
    let many = format!("phone\n{}", (0..10_001).map(|i| format!("+1555{i:07}\n")).collect::<String>());
    let got = refusal(import(&app, &list, "text/csv", &many).await).await;
    assert_eq!(got, (422, "too_many_rows".to_owned(), "file".to_owned()));
    assert_eq!(app.count_events(None).await, before);
    app.stop().await;
}

/// Whitelist: a number in none of the whitelisted lists gets the automatic reply and its
/// interaction is closed by the system (`not_whitelisted`), with no offer to the ready agent;
/// a number in a whitelisted list is routed as usual.
async fn whitelist_path(backend: Backend) {
    let app = spawn_app(backend).await;
    accept_sends(&app).await;
    let s = app.setup(30).await;
    app.agent_ready(&s.agent_token).await;
    let mut ws = app.connect_ws(&s.agent_token).await;
    let vip = create_list(&app, "VIP").await;
    add_contact(&app, &vip, json!({"phone": "+15550000001", "name": "Vera"})).await;
    contacts_total(&app, &vip, 1).await;
    let reply = "This number serves registered customers only.";
    let r = app
        .put(
            &app.admin_token,
            &format!("/api/accounts/{}/whitelist", s.account_id),
            json!({"enabled": true, "lists": [vip], "reply": reply}),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.expect("json")["lists"], json!([vip]));

    assert_eq!(app.webhook(&s.account_id, &text("wamid.W1", "15551234567", "hello")).await.status(), 200);
    let list = app
        .eventually("/api/interactions", |v| {
            v[0]["status"] == "disposed" && v[0]["close_reason"] == "not_whitelisted"
        })
        .await;
    assert_eq!(list[0]["disposition"], "Not whitelisted");
    app.settle().await;
    assert_eq!(app.count_events(Some("AutoReplySent")).await, 1);
    assert_eq!(app.count_events(Some("RoutingStarted")).await, 0, "the plan never starts");
    assert_eq!(app.count_events(Some("OfferMade")).await, 0, "no agent is offered it");
    assert!(
        sent_eventually(&app, "registered customers only").await,
        "the reply went out through the provider"
    );

    // A whitelisted number is offered as usual.
    assert_eq!(app.webhook(&s.account_id, &text("wamid.W2", "15550000001", "hi")).await.status(), 200);
    let offer = ws.next_of("offer").await;
    let id = offer["interaction_id"].as_str().expect("id").to_owned();
    // (The read model may trail the live offer by a moment.)
    app.eventually(&format!("/api/interactions/{id}"), |row| row["customer"] == "+15550000001").await;
    app.settle().await;
    assert_eq!(app.count_events(Some("InteractionClosedBySystem")).await, 1);

    // Switched off, everybody is routed again.
    let off = json!({"enabled": false, "lists": [vip]});
    assert_eq!(
        app.put(&app.admin_token, &format!("/api/accounts/{}/whitelist", s.account_id), off).await.status(),
        200
    );
    assert_eq!(app.webhook(&s.account_id, &text("wamid.W3", "15551234599", "hello")).await.status(), 200);
    app.settle().await;
    assert_eq!(app.count_events(Some("InteractionClosedBySystem")).await, 1);
    assert_eq!(app.count_events(Some("RoutingStarted")).await, 2);
    app.stop().await;
}

#[actix_web::test]
async fn the_whitelist_turns_away_unknown_numbers_with_the_reply_and_no_offer_sqlite() {
    whitelist_path(Backend::Sqlite).await;
}

#[actix_web::test]
async fn the_whitelist_turns_away_unknown_numbers_with_the_reply_and_no_offer_postgres() {
    whitelist_path(Backend::Postgres).await;
}

/// Routing's `in_contact_list` condition sees the lists the number is in.
async fn contact_list_condition(backend: Backend) {
    let app = spawn_app(backend).await;
    accept_sends(&app).await;
    let account_id = app.create_account().await;
    let vip = create_list(&app, "VIP").await;
    add_contact(&app, &vip, json!({"phone": "+15550000001"})).await;
    contacts_total(&app, &vip, 1).await;
    let plan = json!({"time_zone": "Europe/Rome", "steps": [
        {"action": {"type": "go_to", "condition": {"type": "in_contact_list", "list_id": vip}, "step": 2}},
        {"action": {"type": "close", "disposition": "not a VIP"}},
        {"action": {"type": "set_tags", "tags": ["vip"]}}
    ]});
    let r = app.put(&app.admin_token, &format!("/api/accounts/{account_id}/routing-plan"), plan).await;
    assert_eq!(r.status(), 204, "{}", r.text().await.unwrap_or_default());
    assert_eq!(app.webhook(&account_id, &text("wamid.C1", "15550000001", "hi")).await.status(), 200);
    assert_eq!(app.webhook(&account_id, &text("wamid.C2", "15551234567", "hi")).await.status(), 200);
    let list = app.eventually("/api/interactions", |v| v.as_array().map(Vec::len) == Some(2)).await;
    let by_customer = |c: &str| list.as_array().expect("rows").iter().find(|r| r["customer"] == c).cloned();
    let vip_row = by_customer("+15550000001").expect("vip row");
    assert_eq!(vip_row["tags"], json!(["vip"]), "{vip_row:#}");
    let other = by_customer("+15551234567").expect("other row");
    assert_eq!(
        (other["disposition"].clone(), other["close_reason"].clone()),
        (json!("not a VIP"), json!("plan_step"))
    );
    app.stop().await;
}

#[actix_web::test]
async fn the_in_contact_list_condition_routes_by_the_number_s_lists_sqlite() {
    contact_list_condition(Backend::Sqlite).await;
}

#[actix_web::test]
async fn the_in_contact_list_condition_routes_by_the_number_s_lists_postgres() {
    contact_list_condition(Backend::Postgres).await;
}

/// An unknown number is saved to the account's default list (named after its WhatsApp
/// profile, created_by `auto`), once; a whitelist evaluates the lists the number was in
/// before, so the saved card does not let the first message through.
/// The default list is set through `PATCH /api/accounts/{id}` (accounts area).
async fn auto_creation(backend: Backend) {
    let app = spawn_app(backend).await;
    accept_sends(&app).await;
    let s = app.setup(30).await;
    let default = create_list(&app, "Inbound").await;
    let r = patch(&app, &format!("/api/accounts/{}", s.account_id), json!({"default_list": default})).await;
    assert!(r.status().is_success(), "setting the default list: {}", r.status());

    assert_eq!(app.webhook(&s.account_id, &text("wamid.A1", "15551234567", "hello")).await.status(), 200);
    let page = contacts_total(&app, &default, 1).await;
    let card = &page["contacts"][0];
    assert_eq!(
        (card["phone"].clone(), card["name"].clone()),
        (json!("+15551234567"), json!("Jane Customer"))
    );
    assert_eq!(card["created_by"], "auto");
    // A later interaction of the same number does not save it again.
    let first = app.eventually("/api/interactions", |v| v.as_array().map(Vec::len) == Some(1)).await;
    let id = first[0]["interaction_id"].as_str().expect("id").to_owned();
    assert_eq!(
        app.post(&app.admin_token, &format!("/api/interactions/{id}/close"), json!({})).await.status(),
        204
    );
    assert_eq!(app.webhook(&s.account_id, &text("wamid.A2", "15551234567", "again")).await.status(), 200);
    app.settle().await;
    assert_eq!(app.count_events(Some("ContactCardCreated")).await, 1);

    // With a whitelist of another list, the unknown number is turned away AND saved.
    let vip = create_list(&app, "VIP").await;
    add_contact(&app, &vip, json!({"phone": "+15550000001"})).await;
    let body = json!({"enabled": true, "lists": [vip], "reply": "Registered customers only"});
    assert_eq!(
        app.put(&app.admin_token, &format!("/api/accounts/{}/whitelist", s.account_id), body).await.status(),
        200
    );
    assert_eq!(app.webhook(&s.account_id, &text("wamid.A3", "15559876543", "hi")).await.status(), 200);
    contacts_total(&app, &default, 2).await;
    app.settle().await;
    assert_eq!(app.count_events(Some("InteractionClosedBySystem")).await, 1);
    app.stop().await;
}

#[actix_web::test]
async fn an_unknown_number_is_saved_to_the_default_list_sqlite() {
    auto_creation(Backend::Sqlite).await;
}

#[actix_web::test]
async fn an_unknown_number_is_saved_to_the_default_list_postgres() {
    auto_creation(Backend::Postgres).await;
}

/// The ingest side of auto-creation, driven directly with the account's default list set:
/// an unknown number is to be saved, once; a number the whitelist turns away is not saved
/// into a whitelisted default list.
async fn save_unknown_numbers(backend: Backend) {
    use switchboard::services::contacts;
    use switchboard_domain::PhoneNumber;
    let app = spawn_app(backend).await;
    let account_id = app.create_account().await;
    let inbound = create_list(&app, "Inbound").await;
    let list: switchboard_domain::ContactListId = inbound.parse().expect("id");
    let phone = PhoneNumber::parse("+15551234567").expect("phone");
    let r = app
        .client
        .patch(app.url(&format!("/api/accounts/{account_id}")))
        .bearer_auth(&app.admin_token)
        .json(&json!({"default_list": inbound}))
        .send()
        .await
        .expect("patch");
    assert_eq!(r.status(), 200);
    let account = app.core.accounts.state(&account_id).await.expect("account").state;
    assert_eq!(account.details.default_list, Some(list));

    let found = contacts::on_new_interaction(&app.core, &account, &phone).await.expect("lookup");
    assert!(found.lists.is_empty());
    assert_eq!(found.save_to, Some(list));
    contacts::save_unknown(&app.core, list, &phone, Some("Jane Customer"), "test").await.expect("saved");
    contacts::save_unknown(&app.core, list, &phone, Some("Jane Customer"), "test").await.expect("idempotent");
    let page = contacts_total(&app, &inbound, 1).await;
    assert_eq!(
        (page["contacts"][0]["name"].clone(), page["contacts"][0]["created_by"].clone()),
        (json!("Jane Customer"), json!("auto"))
    );
    let found = contacts::on_new_interaction(&app.core, &account, &phone).await.expect("lookup");
    assert_eq!((found.lists, found.save_to), ([list].into(), None), "known now: one lookup, nothing to save");
    assert_eq!(app.count_events(Some("ContactCardCreated")).await, 1);

    // The default list is whitelisted: a turned-away number is not saved into it (it
    // would be let through from its next message on).
    let body = json!({"enabled": true, "lists": [inbound]});
    assert_eq!(
        app.put(&app.admin_token, &format!("/api/accounts/{account_id}/whitelist"), body).await.status(),
        200
    );
    let account = app.core.accounts.state(&account_id).await.expect("account").state;
    let stranger = PhoneNumber::parse("+15559876543").expect("phone");
    let found = contacts::on_new_interaction(&app.core, &account, &stranger).await.expect("lookup");
    assert!(matches!(
        found.screening,
        switchboard_domain::interaction::Screening::NotWhitelisted { reply: None }
    ));
    assert_eq!(found.save_to, None);
    // A deleted default list saves nothing.
    assert_eq!(app.delete(&app.admin_token, &format!("/api/contact-lists/{inbound}")).await.status(), 204);
    contacts::save_unknown(&app.core, list, &stranger, None, "test").await.expect("no-op");
    assert_eq!(app.count_events(Some("ContactCardCreated")).await, 1);
    app.stop().await;
}

#[actix_web::test]
async fn ingest_saves_an_unknown_number_to_the_given_default_list_once_sqlite() {
    save_unknown_numbers(Backend::Sqlite).await;
}

#[actix_web::test]
async fn ingest_saves_an_unknown_number_to_the_given_default_list_once_postgres() {
    save_unknown_numbers(Backend::Postgres).await;
}
