//! Account administration over HTTP: CRUD with every seed field, unique keys, the proxy
//! token, deletion refused with open interactions, agents added and removed (visibility),
//! the change history, key rotation, and that plaintext credentials appear in no table, no
//! event, no API response and no log line.

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use switchboard::crypto::Sealer;

use crate::helpers::{
    ACCESS_TOKEN, APP_SECRET, Backend, TempDir, TestApp, VERIFY_TOKEN, error_of, fixture,
    settings_tweak_none, spawn_app, spawn_on,
};

const TWILIO_TOKEN: &str = "twilio-plaintext-auth-token-7f3a";
const SINCH_KEY_SECRET: &str = "sinch-plaintext-key-secret-91bc";
const SINCH_WEBHOOK_SECRET: &str = "sinch-plaintext-webhook-secret-2d4e";
const KALEYRA_KEY: &str = "kaleyra-plaintext-api-key-55aa";
const KALEYRA_PASSWORD: &str = "kaleyra-plaintext-callback-pw-66bb";
const NEW_ACCESS_TOKEN: &str = "EAAG-replaced-plaintext-token-0c0c";

fn meta(app: &TestApp) -> Value {
    json!({"type": "meta", "business_account_id": "100000000000001", "app_id": "4242",
        "phone_number_id": "100000000000002", "access_token": ACCESS_TOKEN, "app_secret": APP_SECRET,
        "verify_token": VERIFY_TOKEN, "api_base_url": app.graph.uri(), "api_version": "v23.0"})
}

fn every_secret() -> Vec<&'static str> {
    vec![
        ACCESS_TOKEN,
        APP_SECRET,
        VERIFY_TOKEN,
        TWILIO_TOKEN,
        SINCH_KEY_SECRET,
        SINCH_WEBHOOK_SECRET,
        KALEYRA_KEY,
        KALEYRA_PASSWORD,
        NEW_ACCESS_TOKEN,
    ]
}

async fn create(app: &TestApp, body: Value) -> Value {
    let r = app.post(&app.admin_token, "/api/accounts", body).await;
    assert_eq!(r.status(), 201);
    r.json().await.expect("json")
}

async fn patch(app: &TestApp, id: &str, body: Value) -> reqwest::Response {
    app.client
        .patch(app.url(&format!("/api/accounts/{id}")))
        .bearer_auth(&app.admin_token)
        .json(&body)
        .send()
        .await
        .expect("request")
}

/// Asserts a refusal: status, code, the field named (in `details.field` or the message) and
/// that nothing was appended to the log.
async fn refused(
    app: &TestApp,
    response: reqwest::Response,
    status: u16,
    code: &str,
    field: &str,
    before: i64,
) {
    let got = response.status().as_u16();
    let body: Value = response.json().await.expect("json error");
    assert_eq!((got, body["error"]["code"].as_str().unwrap_or_default()), (status, code), "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        body["error"]["details"]["field"] == field || message.contains(field),
        "the error names `{field}`: {body}"
    );
    assert_eq!(app.count_events(None).await, before, "a refused request stored nothing: {body}");
}

async fn crud_with_every_field(backend: Backend) {
    let app = spawn_app(backend).await;
    let account = create(
        &app,
        json!({"name": "Support", "key": "sup", "provider": meta(&app), "description": "Main line",
            "phone": "+15550001111", "public_domain": "https://chat.example.com/"}),
    )
    .await;
    let id = account["account_id"].as_str().expect("id").to_owned();
    assert_eq!(account["key"], "SUP");
    assert_eq!(account["description"], "Main line");
    assert_eq!(account["phone"], "+15550001111");
    assert_eq!(account["public_domain"], "https://chat.example.com");
    assert_eq!(account["receive_url"], format!("https://chat.example.com/webhooks/whatsapp/{id}"));
    assert_eq!(account["default_list"], Value::Null);
    let token = account["proxy_token"].as_str().expect("a proxy token").to_owned();
    assert_eq!(token.len(), 32);
    // Credentials come back masked: identifiers shown, secrets not even in part.
    assert_eq!(account["credentials"]["type"], "meta");
    assert_eq!(account["credentials"]["phone_number_id"], "100000000000002");
    for field in ["access_token", "app_secret", "verify_token"] {
        assert_eq!(account["credentials"][field], "********", "{field}");
    }
    let read = app.get_json(&app.admin_token, &format!("/api/accounts/{id}")).await;
    assert_eq!(read, account);

    // Listed (the list is a read model: wait for it).
    let list = app.eventually("/api/accounts", |v| v.as_array().map(Vec::len) == Some(1)).await;
    assert_eq!(list[0]["account_id"], id);
    assert_eq!(list[0]["key"], "SUP");
    assert_eq!(list[0]["receive_url"], account["receive_url"]);
    assert_eq!(list[0]["proxy_token"], token.as_str());

    // Update any subset; `null` clears; the proxy token never changes.
    let r =
        patch(&app, &id, json!({"name": "Sales", "key": "SAL", "description": null, "public_domain": null}))
            .await;
    assert_eq!(r.status(), 200);
    let updated: Value = r.json().await.expect("json");
    assert_eq!((updated["name"].as_str(), updated["key"].as_str()), (Some("Sales"), Some("SAL")));
    assert_eq!(updated["description"], Value::Null);
    assert_eq!(updated["phone"], "+15550001111", "absent fields stay");
    assert_eq!(updated["receive_url"], app.url(&format!("/webhooks/whatsapp/{id}")));
    assert_eq!(updated["proxy_token"], token.as_str());
    let before = app.count_events(None).await;
    let r = patch(&app, &id, json!({"proxy_token": "mine"})).await;
    refused(&app, r, 422, "proxy_token_immutable", "proxy_token", before).await;
    // Credentials replaced as a whole, same type.
    let mut provider = meta(&app);
    provider["access_token"] = json!(NEW_ACCESS_TOKEN);
    assert_eq!(patch(&app, &id, json!({"provider": provider})).await.status(), 200);

    // The history: who, what, from and to (from computed by replay), secrets masked.
    let history = app.get_json(&app.admin_token, &format!("/api/accounts/{id}/history")).await;
    let types: Vec<&str> =
        history.as_array().expect("array").iter().filter_map(|e| e["event_type"].as_str()).collect();
    assert_eq!(
        types,
        [
            "AccountCreated",
            "AccountKeyChanged",
            "AccountRenamed",
            "AccountDetailsChanged",
            "ProviderCredentialsReplaced"
        ]
    );
    let change = |entry: &Value, field: &str| {
        entry["changes"].as_array().expect("changes").iter().find(|c| c["field"] == field).cloned()
    };
    assert_eq!(history[0]["caused_by"], "admin:test");
    assert_eq!(change(&history[1], "key").expect("key"), json!({"field": "key", "from": "SUP", "to": "SAL"}));
    assert_eq!(change(&history[2], "name").expect("name")["from"], "Support");
    assert_eq!(
        change(&history[3], "details.description").expect("d"),
        json!({"field": "details.description", "from": "Main line", "to": null})
    );
    assert_eq!(
        change(&history[4], "provider.access_token").expect("token"),
        json!({"field": "provider.access_token", "from": "********", "to": "********", "redacted": true})
    );
    assert!(change(&history[4], "provider.app_id").is_none(), "unchanged fields are not listed");
    // Replaced credentials are sealed anew as a whole, so every secret reads as changed.
    assert_eq!(change(&history[4], "provider.app_secret").expect("secret")["redacted"], true);

    // Delete: gone from reads, lists and webhooks; its key is free again.
    assert_eq!(app.delete(&app.admin_token, &format!("/api/accounts/{id}")).await.status(), 204);
    let (status, code, _) = error_of(app.get(&app.admin_token, &format!("/api/accounts/{id}")).await).await;
    assert_eq!((status, code.as_str()), (404, "account_not_found"));
    let (status, code, _) =
        error_of(app.delete(&app.admin_token, &format!("/api/accounts/{id}")).await).await;
    assert_eq!((status, code.as_str()), (404, "account_not_found"));
    let (status, code, _) = error_of(patch(&app, &id, json!({"name": "X"})).await).await;
    assert_eq!((status, code.as_str()), (404, "account_not_found"));
    let r = app.webhook(&id, &fixture("meta_inbound_text.json")).await;
    assert_eq!(r.status(), 404);
    app.eventually("/api/accounts", |v| v.as_array().map(Vec::len) == Some(0)).await;
    let history = app.get_json(&app.admin_token, &format!("/api/accounts/{id}/history")).await;
    assert_eq!(
        history.as_array().and_then(|h| h.last()).map(|e| e["event_type"].clone()),
        Some(json!("AccountDeleted"))
    );
    create(&app, json!({"name": "Again", "key": "SAL", "provider": meta(&app)})).await;
    app.stop().await;
}

#[actix_web::test]
async fn accounts_are_created_read_listed_updated_and_deleted_on_sqlite() {
    crud_with_every_field(Backend::Sqlite).await;
}

#[actix_web::test]
async fn accounts_are_created_read_listed_updated_and_deleted_on_postgres() {
    crud_with_every_field(Backend::Postgres).await;
}

async fn keys_are_unique(backend: Backend) {
    let app = spawn_app(backend).await;
    let first = create(&app, json!({"name": "A", "key": "SUP", "provider": meta(&app)})).await;
    let second = create(&app, json!({"name": "B", "key": "OTH", "provider": meta(&app)})).await;
    let before = app.count_events(None).await;
    // The same key, in any case, is refused with the field named; nothing is stored.
    let r = app
        .post(&app.admin_token, "/api/accounts", json!({"name": "C", "key": "sUp", "provider": meta(&app)}))
        .await;
    refused(&app, r, 409, "account_key_taken", "key", before).await;
    let id2 = second["account_id"].as_str().expect("id");
    refused(
        &app,
        patch(&app, id2, json!({"key": "sup", "name": "Renamed"})).await,
        409,
        "account_key_taken",
        "key",
        before,
    )
    .await;
    assert_eq!(app.get_json(&app.admin_token, &format!("/api/accounts/{id2}")).await["name"], "B");
    // Re-stating its own key (in another case) is no change.
    let id1 = first["account_id"].as_str().expect("id");
    assert_eq!(patch(&app, id1, json!({"key": "sup"})).await.status(), 200);
    assert_eq!(app.count_events(None).await, before);
    // A key given up is free.
    assert_eq!(patch(&app, id1, json!({"key": "NEW"})).await.status(), 200);
    assert_eq!(patch(&app, id2, json!({"key": "SUP"})).await.status(), 200);
    let before = app.count_events(None).await;
    let r = app
        .post(&app.admin_token, "/api/accounts", json!({"name": "D", "key": "new", "provider": meta(&app)}))
        .await;
    refused(&app, r, 409, "account_key_taken", "key", before).await;
    app.stop().await;
}

#[actix_web::test]
async fn keys_are_unique_ignoring_case_on_sqlite() {
    keys_are_unique(Backend::Sqlite).await;
}

#[actix_web::test]
async fn keys_are_unique_ignoring_case_on_postgres() {
    keys_are_unique(Backend::Postgres).await;
}

#[actix_web::test]
async fn every_bad_value_is_refused_naming_its_field_and_stores_nothing() {
    let app = spawn_app(Backend::Sqlite).await;
    let existing = create(&app, json!({"name": "Base", "key": "BASE", "provider": meta(&app)})).await;
    let id = existing["account_id"].as_str().expect("id").to_owned();
    let before = app.count_events(None).await;
    let with = |patch: Value| {
        let mut body = json!({"name": "Support", "key": "SUP", "provider": meta(&app)});
        for (k, v) in patch.as_object().expect("object") {
            body[k] = v.clone();
        }
        body
    };
    let provider_with = |k: &str, v: Value| {
        let mut p = meta(&app);
        p[k] = v;
        p
    };
    let cases: Vec<(Value, u16, &str, &str)> = vec![
        (with(json!({"name": "   "})), 422, "invalid_text", "name"),
        (with(json!({"name": "x".repeat(101)})), 422, "invalid_text", "name"),
        (with(json!({"key": "TOOLONG"})), 422, "invalid_account_key", "key"),
        (with(json!({"key": "A-B"})), 422, "invalid_account_key", "key"),
        (with(json!({"key": ""})), 422, "invalid_account_key", "key"),
        (with(json!({"phone": "5550001111"})), 422, "invalid_phone_number", "phone"),
        (with(json!({"phone": "+0123"})), 422, "invalid_phone_number", "phone"),
        (with(json!({"description": "d".repeat(501)})), 422, "invalid_description", "description"),
        (with(json!({"public_domain": "chat.example.com"})), 422, "invalid_public_domain", "public_domain"),
        (
            with(json!({"public_domain": "https://x.example/?a=1"})),
            422,
            "invalid_public_domain",
            "public_domain",
        ),
        (with(json!({"default_list": "not-a-uuid"})), 422, "invalid_id", "default_list"),
        (with(json!({"default_list": uuid::Uuid::now_v7()})), 422, "unknown_contact_list", "default_list"),
        (with(json!({"proxy_token": "mine"})), 400, "invalid_request", "proxy_token"),
        (with(json!({"colour": "red"})), 400, "invalid_request", "colour"),
        (
            with(json!({"provider": provider_with("auth_token", json!("x"))})),
            400,
            "invalid_request",
            "auth_token",
        ),
        (
            with(json!({"provider": provider_with("type", json!("smoke_signals"))})),
            400,
            "invalid_request",
            "smoke_signals",
        ),
        (
            with(json!({"provider": provider_with("access_token", json!(" "))})),
            422,
            "invalid_credentials",
            "provider.access_token",
        ),
        (
            with(json!({"provider": provider_with("app_secret", json!("s".repeat(513)))})),
            422,
            "invalid_credentials",
            "provider.app_secret",
        ),
        (
            with(json!({"provider": provider_with("api_version", json!("23"))})),
            422,
            "invalid_credentials",
            "provider.api_version",
        ),
        (
            with(json!({"provider": provider_with("api_base_url", json!("graph.local"))})),
            422,
            "invalid_credentials",
            "provider.api_base_url",
        ),
        (
            with(
                json!({"provider": {"type": "meta", "app_id": "1", "phone_number_id": "2", "access_token": "t",
                "app_secret": "s", "verify_token": "v"}}),
            ),
            400,
            "invalid_request",
            "business_account_id",
        ),
        (
            with(json!({"provider": {"type": "twilio", "account_sid": "AC1", "auth_token": TWILIO_TOKEN,
                "business_number": "15557654321"}})),
            422,
            "invalid_phone_number",
            "provider.business_number",
        ),
        (
            with(json!({"provider": {"type": "twilio", "account_sid": "AC/../1", "auth_token": TWILIO_TOKEN,
                "business_number": "+15557654321"}})),
            422,
            "invalid_credentials",
            "provider.account_sid",
        ),
        (
            with(json!({"provider": {"type": "twilio", "account_sid": "AC1", "auth_token": TWILIO_TOKEN,
                "business_number": "+15557654321", "app_secret": "meta's"}})),
            400,
            "invalid_request",
            "app_secret",
        ),
        (
            with(json!({"provider": {"type": "sinch", "project_id": "p", "app_id": "a", "key_id": "k",
                "key_secret": SINCH_KEY_SECRET, "webhook_secret": " "}})),
            422,
            "invalid_credentials",
            "provider.webhook_secret",
        ),
        (
            with(
                json!({"provider": {"type": "kaleyra", "waba_id": "w", "account_sid": "s", "api_key": KALEYRA_KEY,
                "business_number": "+15557654321",
                "callback_auth": {"kind": "basic", "user": "u", "password": KALEYRA_PASSWORD, "extra": 1}}}),
            ),
            400,
            "invalid_request",
            "extra",
        ),
    ];
    for (body, status, code, field) in cases {
        let r = app.post(&app.admin_token, "/api/accounts", body.clone()).await;
        refused(&app, r, status, code, field, before).await;
    }

    // The same rules on update, plus the provider type, which cannot change.
    let twilio = json!({"type": "twilio", "account_sid": "AC1", "auth_token": TWILIO_TOKEN,
        "business_number": "+15557654321"});
    let updates: Vec<(Value, u16, &str, &str)> = vec![
        (json!({"name": ""}), 422, "invalid_text", "name"),
        (json!({"key": "TOOLONG"}), 422, "invalid_account_key", "key"),
        (json!({"phone": "12"}), 422, "invalid_phone_number", "phone"),
        (json!({"description": "d".repeat(501)}), 422, "invalid_description", "description"),
        (json!({"public_domain": "ftp://x"}), 422, "invalid_public_domain", "public_domain"),
        (json!({"default_list": uuid::Uuid::now_v7()}), 422, "unknown_contact_list", "default_list"),
        (json!({"provider": twilio}), 422, "provider_type_change", "provider.type"),
        (
            json!({"provider": provider_with("verify_token", json!(""))}),
            422,
            "invalid_credentials",
            "provider.verify_token",
        ),
        (json!({"provider_type": "twilio"}), 400, "invalid_request", "provider_type"),
        // A valid change next to an invalid one: nothing of it is stored either.
        (json!({"name": "Fine", "phone": "nope"}), 422, "invalid_phone_number", "phone"),
    ];
    for (body, status, code, field) in updates {
        refused(&app, patch(&app, &id, body).await, status, code, field, before).await;
    }
    assert_eq!(app.get_json(&app.admin_token, &format!("/api/accounts/{id}")).await["name"], "Base");

    // Roles: only admins change accounts; unknown ids are 404.
    let (_, agent_token) = app.create_agent("Sam").await;
    let r = app.post(&agent_token, "/api/accounts", with(json!({}))).await;
    assert_eq!(error_of(r).await.1, "forbidden");
    let r = app
        .client
        .patch(app.url(&format!("/api/accounts/{id}")))
        .bearer_auth(&agent_token)
        .json(&json!({}))
        .send()
        .await
        .expect("patch");
    assert_eq!(error_of(r).await.1, "forbidden");
    assert_eq!(error_of(app.delete(&agent_token, &format!("/api/accounts/{id}")).await).await.1, "forbidden");
    assert_eq!(
        error_of(app.get(&agent_token, &format!("/api/accounts/{id}/history")).await).await.1,
        "forbidden"
    );
    let r = app.delete(&app.admin_token, &format!("/api/accounts/{}", uuid::Uuid::now_v7())).await;
    assert_eq!(error_of(r).await.1, "account_not_found");
    let r = app.get(&app.admin_token, &format!("/api/accounts/{}/history", uuid::Uuid::now_v7())).await;
    assert_eq!(error_of(r).await.1, "account_not_found");
    let r = app.get(&app.admin_token, "/api/accounts?limit=0").await;
    assert_eq!(error_of(r).await.1, "invalid_request");
    assert_eq!(app.count_events(None).await, before + 1, "only the agent was stored");
    app.stop().await;
}

async fn deleting_with_open_interactions(backend: Backend) {
    let app = spawn_app(backend).await;
    let s = app.setup(10).await;
    assert_eq!(app.webhook(&s.account_id, &fixture("meta_inbound_text.json")).await.status(), 200);
    app.settle().await;
    let before = app.count_events(None).await;
    let r = app.delete(&app.admin_token, &format!("/api/accounts/{}", s.account_id)).await;
    let body: Value = {
        assert_eq!(r.status(), 409);
        r.json().await.expect("json")
    };
    assert_eq!(body["error"]["code"], "account_has_open_interactions");
    assert_eq!(body["error"]["details"]["open_interactions"], 1);
    assert_eq!(app.count_events(None).await, before, "nothing stored");
    assert_eq!(app.get(&app.admin_token, &format!("/api/accounts/{}", s.account_id)).await.status(), 200);
    app.stop().await;
}

#[actix_web::test]
async fn deleting_an_account_with_open_interactions_is_refused_on_sqlite() {
    deleting_with_open_interactions(Backend::Sqlite).await;
}

#[actix_web::test]
async fn deleting_an_account_with_open_interactions_is_refused_on_postgres() {
    deleting_with_open_interactions(Backend::Postgres).await;
}

async fn agent_visibility(backend: Backend) {
    let app = spawn_app(backend).await;
    let s = app.setup(10).await;
    assert_eq!(app.webhook(&s.account_id, &fixture("meta_inbound_text.json")).await.status(), 200);
    app.settle().await;
    let list = app.eventually("/api/interactions", |v| v.as_array().map(Vec::len) == Some(1)).await;
    let interaction = list[0]["interaction_id"].as_str().expect("id").to_owned();
    let account_path = format!("/api/accounts/{}", s.account_id);

    // Added: the agent sees the account, its interactions, and can write in them.
    let agents = app.get_json(&app.admin_token, &format!("{account_path}/agents")).await;
    assert_eq!(agents, json!([{"agent_id": s.agent_id, "name": "Sam"}]));
    let mine = app.get_json(&s.agent_token, "/api/interactions").await;
    assert_eq!(mine.as_array().map(Vec::len), Some(1));
    assert_eq!(app.get(&s.agent_token, &format!("/api/interactions/{interaction}")).await.status(), 200);
    assert_eq!(app.get(&s.agent_token, &account_path).await.status(), 200);
    assert_eq!(app.get_json(&s.agent_token, "/api/accounts").await.as_array().map(Vec::len), Some(1));

    // Removed: at once (no waiting for any read model) the account and its interactions are
    // invisible, reads say they do not exist, and writing is refused.
    let r = app.delete(&app.admin_token, &format!("{account_path}/agents/{}", s.agent_id)).await;
    assert_eq!(r.status(), 204);
    let (status, code, _) =
        error_of(app.get(&s.agent_token, &format!("/api/interactions/{interaction}")).await).await;
    assert_eq!((status, code.as_str()), (404, "interaction_not_found"));
    let (status, code, _) = error_of(app.get(&s.agent_token, &account_path).await).await;
    assert_eq!((status, code.as_str()), (404, "account_not_found"));
    assert_eq!(app.get_json(&s.agent_token, "/api/accounts").await, json!([]));
    let r = app
        .post(&s.agent_token, &format!("/api/interactions/{interaction}/messages"), json!({"text": "hi"}))
        .await;
    let (status, _, _) = error_of(r).await;
    assert!(status == 403 || status == 404, "sending refused: {status}");
    // The raw events stay for supervisors only.
    let r = app.get(&s.agent_token, &format!("/api/interactions/{interaction}/events")).await;
    assert_eq!(error_of(r).await.1, "forbidden");
    // The interaction list follows its read model.
    app.settle().await;
    assert_eq!(app.get_json(&s.agent_token, "/api/interactions").await, json!([]));
    assert_eq!(app.get_json(&app.admin_token, &format!("{account_path}/agents")).await, json!([]));

    // Removing again is a no-op; unknown ids are 404.
    let before = app.count_events(None).await;
    assert_eq!(
        app.delete(&app.admin_token, &format!("{account_path}/agents/{}", s.agent_id)).await.status(),
        204
    );
    assert_eq!(app.count_events(None).await, before);
    let r = app.delete(&app.admin_token, &format!("{account_path}/agents/nope")).await;
    assert_eq!(error_of(r).await.1, "agent_not_found");
    let r = app
        .delete(&app.admin_token, &format!("/api/accounts/{}/agents/{}", uuid::Uuid::now_v7(), s.agent_id))
        .await;
    assert_eq!(error_of(r).await.1, "account_not_found");

    // Added back: visible again.
    let r =
        app.post(&app.admin_token, &format!("{account_path}/agents"), json!({"agent_id": s.agent_id})).await;
    assert_eq!(r.status(), 204);
    assert_eq!(app.get(&s.agent_token, &format!("/api/interactions/{interaction}")).await.status(), 200);
    app.stop().await;
}

#[actix_web::test]
async fn removing_an_agent_from_an_account_removes_visibility_at_once_on_sqlite() {
    agent_visibility(Backend::Sqlite).await;
}

#[actix_web::test]
async fn removing_an_agent_from_an_account_removes_visibility_at_once_on_postgres() {
    agent_visibility(Backend::Postgres).await;
}

/// Every table of the test database as text (PostgreSQL: each row cast to text; SQLite: the
/// database files' bytes, which hold every page, free ones included).
async fn database_text(app: &TestApp, backend: Backend) -> String {
    match backend {
        Backend::Postgres => {
            let tables: Vec<(String,)> = sqlx::query_as(
                "SELECT CAST(table_name AS TEXT) FROM information_schema.tables
                  WHERE table_schema = 'public' AND table_type = 'BASE TABLE'",
            )
            .fetch_all(&app.core.db.any)
            .await
            .expect("tables");
            assert!(tables.len() > 10, "{tables:?}");
            let mut all = String::new();
            for (table,) in tables {
                let rows: Vec<(String,)> = sqlx::query_as(&format!("SELECT CAST(t AS TEXT) FROM {table} t"))
                    .fetch_all(&app.core.db.any)
                    .await
                    .expect("rows");
                for (row,) in rows {
                    all.push_str(&row);
                    all.push('\n');
                }
            }
            all
        }
        Backend::Sqlite => {
            let path = app.place.url.trim_start_matches("sqlite://").to_owned();
            let mut all = Vec::new();
            for suffix in ["", "-wal", "-journal"] {
                if let Ok(bytes) = std::fs::read(format!("{path}{suffix}")) {
                    all.extend(bytes);
                }
            }
            assert!(all.len() > 10_000);
            String::from_utf8_lossy(&all).into_owned()
        }
    }
}

async fn no_plaintext_anywhere(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut responses = Vec::new();
    let providers = vec![
        meta(&app),
        json!({"type": "twilio", "account_sid": "AC1", "auth_token": TWILIO_TOKEN, "business_number": "+15557654321"}),
        json!({"type": "sinch", "project_id": "p", "app_id": "a", "key_id": "k", "key_secret": SINCH_KEY_SECRET,
            "webhook_secret": SINCH_WEBHOOK_SECRET}),
        json!({"type": "kaleyra", "waba_id": "w", "account_sid": "s", "api_key": KALEYRA_KEY,
            "business_number": "+15557654322",
            "callback_auth": {"kind": "basic", "user": "u", "password": KALEYRA_PASSWORD}}),
    ];
    let mut ids = Vec::new();
    for (n, provider) in providers.into_iter().enumerate() {
        let r = app
            .post(
                &app.admin_token,
                "/api/accounts",
                json!({"name": "A", "key": format!("K{n}"), "provider": provider}),
            )
            .await;
        assert_eq!(r.status(), 201);
        let text = r.text().await.expect("text");
        let body: Value = serde_json::from_str(&text).expect("json");
        ids.push(body["account_id"].as_str().expect("id").to_owned());
        responses.push(text);
    }
    let mut replaced = meta(&app);
    replaced["access_token"] = json!(NEW_ACCESS_TOKEN);
    let r = patch(&app, &ids[0], json!({"provider": replaced})).await;
    assert_eq!(r.status(), 200);
    responses.push(r.text().await.expect("text"));
    // A refused request echoing a secret does not echo it back either.
    let r = app
        .post(
            &app.admin_token,
            "/api/accounts",
            json!({"name": "A", "key": "TOOLONG", "provider": meta(&app)}),
        )
        .await;
    responses.push(r.text().await.expect("text"));
    // The webhook still authenticates with the sealed app secret.
    assert_eq!(app.webhook(&ids[0], &fixture("meta_inbound_text.json")).await.status(), 200);
    app.settle().await;
    for id in &ids {
        for path in [format!("/api/accounts/{id}"), format!("/api/accounts/{id}/history")] {
            responses.push(app.get(&app.admin_token, &path).await.text().await.expect("text"));
        }
    }
    responses.push(app.get(&app.admin_token, "/api/accounts").await.text().await.expect("text"));
    responses.push(app.get(&app.admin_token, "/api/interactions").await.text().await.expect("text"));

    let events: Vec<(String, String)> = sqlx::query_as(match backend {
        Backend::Postgres => "SELECT payload::text, metadata::text FROM events",
        Backend::Sqlite => "SELECT payload, metadata FROM events",
    })
    .fetch_all(&app.core.db.any)
    .await
    .expect("events");
    let events: String = events.into_iter().map(|(p, m)| format!("{p}\n{m}\n")).collect();
    assert!(events.contains("v2:"), "secrets are sealed with a key id");
    let tables = database_text(&app, backend).await;
    for secret in every_secret() {
        assert!(!events.contains(secret), "`{secret}` is in an event payload");
        assert!(!tables.contains(secret), "`{secret}` is stored in plaintext");
        for response in &responses {
            assert!(!response.contains(secret), "`{secret}` is in a response: {response}");
        }
    }
    app.stop().await;
}

#[actix_web::test]
async fn plaintext_credentials_are_in_no_table_event_or_response_on_sqlite() {
    no_plaintext_anywhere(Backend::Sqlite).await;
}

#[actix_web::test]
async fn plaintext_credentials_are_in_no_table_event_or_response_on_postgres() {
    no_plaintext_anywhere(Backend::Postgres).await;
}

#[actix_web::test]
async fn rotating_the_master_key_reseals_every_secret_and_old_keys_can_go() {
    let app = spawn_app(Backend::Sqlite).await;
    let id = create(&app, json!({"name": "A", "key": "ROT", "provider": meta(&app)})).await["account_id"]
        .as_str()
        .expect("id")
        .to_owned();
    let (mut place, graph) = app.stop().await;
    let old_key = place.master_key.clone();
    let new_key = Sealer::generate_key();

    // The new key with the old one as previous: old secrets open, rotation re-seals them.
    place.master_key = format!("{new_key},{old_key}");
    let app = spawn_on(place, graph, settings_tweak_none).await;
    assert_eq!(app.webhook(&id, &fixture("meta_inbound_text.json")).await.status(), 200);
    let report = switchboard::services::accounts::rotate_credentials(&app.core).await.expect("rotates");
    assert_eq!((report.accounts, report.secrets), (1, 3));
    assert_eq!(report.key_id, switchboard::crypto::key_id(&base64_decode(&new_key)));
    let again = switchboard::services::accounts::rotate_credentials(&app.core).await.expect("rotates");
    assert_eq!((again.accounts, again.secrets), (0, 0), "a second run has nothing to do");
    let history = app.get_json(&app.admin_token, &format!("/api/accounts/{id}/history")).await;
    let last = history.as_array().and_then(|h| h.last()).cloned().expect("entry");
    assert_eq!(last["event_type"], "ProviderCredentialsResealed");
    assert_eq!(last["caused_by"], "system:rotate-credentials");
    assert!(last["changes"].as_array().expect("changes").iter().all(|c| c["redacted"] == true));
    let (mut place, graph) = app.stop().await;

    // The old key is no longer needed.
    place.master_key = new_key;
    let app = spawn_on(place, graph, settings_tweak_none).await;
    // A redelivery: still 200 only once the signature checked out with the re-sealed secret.
    assert_eq!(app.webhook(&id, &fixture("meta_inbound_text.json")).await.status(), 200);
    let r = app.webhook_signed(&id, &fixture("meta_inbound_text.json"), Some("sha256=00".into())).await;
    assert_eq!(r.status(), 401);
    app.stop().await;
}

fn base64_decode(key: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(key).expect("base64")
}

/// The real binary at debug level, its whole output captured: creating, reading, updating
/// and using accounts logs no secret; `rotate-credentials` works from the command line.
#[actix_web::test]
async fn plaintext_credentials_are_in_no_log_line() {
    let dir = std::env::temp_dir().join(format!("sb_logs_{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("dir");
    let _cleanup = TempDir(dir.clone());
    let binary = env!("CARGO_BIN_EXE_switchboard");
    let key = Sealer::generate_key();
    let run = |args: &[&str], envs: &[(&str, &str)]| {
        let out = Command::new(binary)
            .args(args)
            .current_dir(&dir)
            .env_clear()
            .env("SWITCHBOARD_MASTER_KEY", &key)
            .env("RUST_LOG", "debug")
            .envs(envs.iter().copied())
            .output()
            .expect("runs");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        out
    };
    let token = run(&["create-token"], &[]);
    let token = String::from_utf8_lossy(&token.stdout).lines().last().unwrap_or_default().trim().to_owned();
    assert!(token.starts_with("sb_"), "{token}");

    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let log_path = dir.join("serve.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let mut child = Command::new(binary)
        .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
        .current_dir(&dir)
        .env_clear()
        .env("SWITCHBOARD_MASTER_KEY", &key)
        .env("RUST_LOG", "debug")
        .stdout(Stdio::from(log.try_clone().expect("clone")))
        .stderr(Stdio::from(log))
        .spawn()
        .expect("spawns");
    let client = reqwest::Client::new();
    let url = |path: &str| format!("http://127.0.0.1:{port}{path}");
    let mut healthy = false;
    for _ in 0..200 {
        if client.get(url("/healthz")).send().await.is_ok_and(|r| r.status() == 200) {
            healthy = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let graph = wiremock::MockServer::start().await;
    let provider = json!({"type": "meta", "business_account_id": "1", "app_id": "1",
        "phone_number_id": "100000000000002", "access_token": ACCESS_TOKEN, "app_secret": APP_SECRET,
        "verify_token": VERIFY_TOKEN, "api_base_url": graph.uri()});
    let created: Value = client
        .post(url("/api/accounts"))
        .bearer_auth(&token)
        .json(&json!({"name": "Support", "key": "SUP", "provider": provider}))
        .send()
        .await
        .expect("post")
        .json()
        .await
        .expect("json");
    let id = created["account_id"].as_str().unwrap_or_default().to_owned();
    let _ = client
        .post(url("/api/accounts"))
        .bearer_auth(&token)
        .json(&json!({"name": "Bad", "key": "TOOLONG", "provider": {"type": "twilio", "account_sid": "AC1",
            "auth_token": TWILIO_TOKEN, "business_number": "+15557654321", "oops": 1}}))
        .send()
        .await;
    let mut replaced = provider.clone();
    replaced["access_token"] = json!(NEW_ACCESS_TOKEN);
    let patched = client
        .patch(url(&format!("/api/accounts/{id}")))
        .bearer_auth(&token)
        .json(&json!({"provider": replaced}))
        .send()
        .await
        .map(|r| r.status().as_u16());
    let body = fixture("meta_inbound_text.json");
    let webhook = client
        .post(url(&format!("/webhooks/whatsapp/{id}")))
        .header("Content-Type", "application/json")
        .header("X-Hub-Signature-256", switchboard::providers::meta::sign(APP_SECRET.as_bytes(), &body))
        .body(body)
        .send()
        .await
        .map(|r| r.status().as_u16());
    let handshake = client
        .get(url(&format!(
            "/webhooks/whatsapp/{id}?hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=42"
        )))
        .send()
        .await
        .map(|r| r.status().as_u16());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _ = child.kill();
    let _ = child.wait();
    assert!(healthy);
    assert_eq!((patched.ok(), webhook.ok(), handshake.ok()), (Some(200), Some(200), Some(200)));

    // Rotation from the command line, with the old key as previous.
    let new_key = Sealer::generate_key();
    let rotated = Command::new(binary)
        .arg("rotate-credentials")
        .current_dir(&dir)
        .env_clear()
        .env("SWITCHBOARD_MASTER_KEY", &new_key)
        .env("SWITCHBOARD_MASTER_KEY_PREVIOUS", &key)
        .env("RUST_LOG", "debug")
        .output()
        .expect("runs");
    assert!(rotated.status.success(), "{}", String::from_utf8_lossy(&rotated.stderr));
    let summary = String::from_utf8_lossy(&rotated.stdout).into_owned();
    assert!(summary.contains("re-sealed 3 secrets of 1 accounts"), "{summary}");

    let logs = std::fs::read_to_string(&log_path).expect("log")
        + &String::from_utf8_lossy(&rotated.stderr)
        + &summary;
    assert!(logs.contains("DEBUG") || logs.contains("INFO"), "logging was on: {logs}");
    for secret in every_secret() {
        assert!(!logs.contains(secret), "`{secret}` appears in the logs");
    }
}
