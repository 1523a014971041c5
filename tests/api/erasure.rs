//! Crypto-shredding, contact erasure and interaction deletion (issue 6, ADR 0020), on SQLite
//! and PostgreSQL.
//!
//! The central test erases a contact and then looks for its number, profile name and message
//! bodies in EVERY column of EVERY table of the database (the schema is queried, so a table
//! added later is scanned too), the event log included: before erasure the log holds them only
//! sealed, after it nowhere at all. The rest of the history still replays and reads normally,
//! the erased aggregates still load after a restart, a rebuild gives the same read models,
//! and the same number writing again opens a new, readable interaction.

use std::sync::Arc;

use serde_json::{Value, json};
use sqlx::{AnyPool, Row};
use switchboard_projections::Projector;

use crate::helpers::*;

const ERASED: &str = "15551234567";
const KEPT: &str = "15557654000";
/// What must vanish with the erased contact (number, profile name, both sides' texts).
const ERASED_NEEDLES: [&str; 5] = [ERASED, "Zelda", "XYZZY", "PLUGH", "zelda@example"];

async fn supervisor(app: &TestApp) -> String {
    let r = app.post(&app.admin_token, "/api/tokens", json!({"role": "supervisor", "label": "Sue"})).await;
    assert_eq!(r.status(), 201);
    r.json::<Value>().await.expect("json")["token"].as_str().expect("token").to_owned()
}

/// Every (table, column) of the database.
async fn all_columns(pool: &AnyPool, backend: Backend) -> Vec<(String, String)> {
    let sql = match backend {
        Backend::Postgres => {
            "SELECT CAST(table_name AS TEXT) AS t, CAST(column_name AS TEXT) AS c FROM information_schema.columns
              WHERE table_schema = current_schema() ORDER BY 1, 2"
        }
        Backend::Sqlite => {
            "SELECT m.name AS t, p.name AS c FROM sqlite_master m JOIN pragma_table_info(m.name) p
              WHERE m.type = 'table' ORDER BY 1, 2"
        }
    };
    sqlx::query(sql)
        .fetch_all(pool)
        .await
        .expect("schema")
        .iter()
        .map(|r| (r.get::<String, _>("t"), r.get::<String, _>("c")))
        .collect()
}

/// Where (table.column) any needle occurs, as text, in the whole database.
async fn find_anywhere(app: &TestApp, backend: Backend, needles: &[&str]) -> Vec<String> {
    let pool = &app.core.db.any;
    let mut hits = Vec::new();
    for (table, column) in all_columns(pool, backend).await {
        for needle in needles {
            let sql = format!(
                "SELECT COUNT(*) AS n FROM \"{table}\" WHERE CAST(\"{column}\" AS TEXT) LIKE '%' || $1 || '%'"
            );
            let n: i64 = sqlx::query(&sql).bind(*needle).fetch_one(pool).await.expect("scan").get("n");
            if n > 0 {
                hits.push(format!("{table}.{column} has {needle}"));
            }
        }
    }
    hits
}

/// The rows of the read models a rebuild must reproduce, as sorted text.
async fn dump(app: &TestApp, backend: Backend) -> Vec<String> {
    let tables =
        ["interaction_list", "interaction_messages", "interaction_tags", "queue_waiting", "contact_cards"];
    let columns = all_columns(&app.core.db.any, backend).await;
    let mut out = Vec::new();
    for table in tables {
        let cols: Vec<String> = columns
            .iter()
            .filter(|(t, _)| t == table)
            .map(|(_, c)| format!("COALESCE(CAST(\"{c}\" AS TEXT), '-')"))
            .collect();
        let sql = format!("SELECT {} AS row FROM {table}", cols.join(" || '|' || "));
        let mut rows: Vec<String> = sqlx::query(&sql)
            .fetch_all(&app.core.db.any)
            .await
            .expect("dump")
            .iter()
            .map(|r| format!("{table}: {}", r.get::<String, _>("row")))
            .collect();
        rows.sort();
        out.extend(rows);
    }
    out
}

async fn events_of(app: &TestApp, id: &str) -> Vec<Value> {
    let events = app.get_json(&app.admin_token, &format!("/api/interactions/{id}/events")).await;
    events.as_array().expect("array").clone()
}

fn payload_of<'a>(events: &'a [Value], event_type: &str) -> &'a Value {
    let e = events.iter().find(|e| e["event_type"] == event_type).unwrap_or_else(|| panic!("{event_type}"));
    &e["payload"][event_type]
}

async fn erase(app: &TestApp, token: &str, account_id: &str, phone: &str) -> reqwest::Response {
    app.post(token, &format!("/api/accounts/{account_id}/erasures"), json!({ "phone": phone })).await
}

async fn erasure_leaves_no_personal_data_anywhere_and_history_still_replays(backend: Backend) {
    let app = spawn_app(backend).await;
    accept_meta_sends(&app).await;
    let s = app.setup(30).await;
    // A directory card for the number (erased with it) and one for another number (kept).
    let r = app.post(&app.admin_token, "/api/contact-lists", json!({"name": "VIP"})).await;
    assert_eq!(r.status(), 201);
    let list = r.json::<Value>().await.expect("json")["list_id"].as_str().expect("id").to_owned();
    let cards = format!("/api/contact-lists/{list}/contacts");
    let card = json!({"phone": format!("+{ERASED}"), "name": "Zelda Quux", "email": "zelda@example.com",
                      "fields": {"note": "likes XYZZY"}});
    let r = app.post(&app.admin_token, &cards, card).await;
    assert_eq!(r.status(), 201);
    let card_id = r.json::<Value>().await.expect("json")["contact_id"].as_str().expect("id").to_owned();
    let r =
        app.post(&app.admin_token, &cards, json!({"phone": format!("+{KEPT}"), "name": "Bob Keeper"})).await;
    assert_eq!(r.status(), 201);
    let mut ws = app.connect_ws(&s.agent_token).await;
    app.agent_ready(&s.agent_token).await;

    // The contact to erase: a conversation with both sides' texts, then closed.
    let hook = meta_text("wamid.E1", ERASED, "Zelda Quux", "my plan is XYZZY");
    assert_eq!(app.webhook(&s.account_id, &hook).await.status(), 200);
    let erased_id = ws.next_of("offer").await["interaction_id"].as_str().expect("id").to_owned();
    let r = app.post(&s.agent_token, &format!("/api/interactions/{erased_id}/accept"), json!({})).await;
    assert_eq!(r.status(), 204);
    let send = format!("/api/interactions/{erased_id}/messages");
    assert_eq!(app.post(&s.agent_token, &send, json!({"text": "Noted PLUGH"})).await.status(), 202);
    let close = format!("/api/interactions/{erased_id}/close");
    assert_eq!(app.post(&s.agent_token, &close, json!({})).await.status(), 204);
    // Another contact, left open, must be untouched.
    let hook = meta_text("wamid.K1", KEPT, "Bob Keeper", "keep FROBOZZ");
    assert_eq!(app.webhook(&s.account_id, &hook).await.status(), 200);
    app.eventually("/api/interactions", |v| v.as_array().is_some_and(|l| l.len() == 2)).await;
    app.settle().await;

    // Sealed at rest from the start: the log holds none of it in plaintext (not in payloads,
    // not in aggregate ids), while the read models do (the scan works).
    let log_hits: Vec<String> = find_anywhere(&app, backend, &ERASED_NEEDLES)
        .await
        .into_iter()
        .filter(|h| h.starts_with("events.") || h.starts_with("event_log.") || h.starts_with("pii_"))
        .collect();
    assert!(log_hits.is_empty(), "plaintext personal data in the log: {log_hits:?}");
    let before = find_anywhere(&app, backend, &ERASED_NEEDLES).await;
    assert!(before.iter().any(|h| h.starts_with("interaction_list.customer")), "{before:?}");
    // Readers see plaintext: the events endpoint opens the sealed fields.
    let events = events_of(&app, &erased_id).await;
    assert_eq!(payload_of(&events, "InteractionOpened")["customer"], format!("+{ERASED}"));
    assert_eq!(payload_of(&events, "AgentMessageSent")["text"], "Noted PLUGH");

    // Erase: the open contact is refused, the closed one erased.
    let (status, code, _) =
        error_of(erase(&app, &app.admin_token, &s.account_id, &format!("+{KEPT}")).await).await;
    assert_eq!((status, code.as_str()), (409, "contact_has_open_interaction"));
    let r = erase(&app, &app.admin_token, &s.account_id, &format!("+{ERASED}")).await;
    assert_eq!(r.status(), 200);
    let report: Value = r.json().await.expect("json");
    assert_eq!((report["erased"].as_bool(), report["interactions"].as_u64()), (Some(true), Some(1)));
    assert_eq!(report["cards"].as_u64(), Some(1));
    assert!(report["keys_destroyed"].as_u64() >= Some(2), "{report}");
    assert_eq!(app.count_events(Some("ContactErased")).await, 1);
    // (Waits for the projection itself: on PostgreSQL `settle` may see a horizon that does
    // not include the erasure yet.)
    app.eventually("/api/interactions", |v| v.as_array().is_some_and(|l| l.len() == 1)).await;
    app.settle().await;

    // Nowhere: no table, no column, the log included.
    let after = find_anywhere(&app, backend, &ERASED_NEEDLES).await;
    assert!(after.is_empty(), "personal data left after erasure: {after:?}");
    // The other contact's data is all there.
    let kept = find_anywhere(&app, backend, &[KEPT, "Bob Keeper", "FROBOZZ"]).await;
    assert!(kept.iter().any(|h| h.starts_with("interaction_list.")), "{kept:?}");
    let list = app.get_json(&app.admin_token, "/api/interactions").await;
    assert_eq!(list.as_array().map(Vec::len), Some(1));
    assert_eq!(list[0]["customer"], format!("+{KEPT}"));
    let r = app.get(&app.admin_token, &format!("/api/interactions/{erased_id}")).await;
    assert_eq!(r.status(), 404);
    assert_eq!(app.get(&app.admin_token, &format!("/api/contacts/{card_id}")).await.status(), 404);
    let listed = app.get_json(&app.admin_token, &cards).await;
    assert!(listed.to_string().contains("Bob Keeper") && !listed.to_string().contains(ERASED), "{listed}");

    // The erased history is still there, with placeholders that still parse.
    let events = events_of(&app, &erased_id).await;
    assert!(events.len() >= 4);
    let opened = payload_of(&events, "InteractionOpened");
    assert_eq!(
        (opened["customer"].as_str(), opened["customer_name"].as_str()),
        (Some("+99900000000"), Some("[erased]"))
    );
    assert_eq!(payload_of(&events, "CustomerMessageReceived")["content"]["body"], "[erased]");
    assert_eq!(payload_of(&events, "AgentMessageSent")["text"], "[erased]");
    let kept_id = list[0]["interaction_id"].as_str().expect("id").to_owned();
    let kept_events = events_of(&app, &kept_id).await;
    assert_eq!(payload_of(&kept_events, "CustomerMessageReceived")["content"]["body"], "keep FROBOZZ");

    // A rebuild from zero gives the same read models.
    let live = dump(&app, backend).await;
    let projector = Projector::new(
        app.core.db.any.clone(),
        app.core.db.backend,
        switchboard_projections::combined(),
        100,
    )
    .with_opener(app.core.pii.clone() as Arc<dyn switchboard_projections::runtime::Opener>);
    projector.rebuild().await.expect("rebuild");
    app.settle().await;
    assert_eq!(dump(&app, backend).await, live);
    assert!(find_anywhere(&app, backend, &ERASED_NEEDLES).await.is_empty());

    // A restart replays the erased aggregates (placeholders) and serves the kept one.
    let (place, graph) = app.stop().await;
    let app = spawn_on(place, graph, settings_tweak_none).await;
    let state = app.core.interactions.state(&erased_id).await.expect("erased interaction loads").state;
    assert_eq!(state.customer.as_ref().map(|p| p.to_string()).as_deref(), Some("+99900000000"));
    let state = app.core.interactions.state(&kept_id).await.expect("kept interaction loads").state;
    assert_eq!(state.customer.as_ref().map(|p| p.to_string()), Some(format!("+{KEPT}")));

    // The same number writing again starts afresh: a new interaction, readable.
    let hook = meta_text("wamid.E2", ERASED, "Zelda Quux", "back again");
    assert_eq!(app.webhook(&s.account_id, &hook).await.status(), 200);
    let list = app.eventually("/api/interactions", |v| v.as_array().is_some_and(|l| l.len() == 2)).await;
    let fresh = list
        .as_array()
        .and_then(|l| l.iter().find(|i| i["customer"] == format!("+{ERASED}").as_str()))
        .expect("a new interaction for the erased number");
    let fresh_id = fresh["interaction_id"].as_str().expect("id");
    assert_ne!(fresh_id, erased_id);
    let events = events_of(&app, fresh_id).await;
    assert_eq!(payload_of(&events, "CustomerMessageReceived")["content"]["body"], "back again");
    app.stop().await;
}

async fn erasure_refusals_and_repeats(backend: Backend) {
    let app = spawn_app(backend).await;
    let s = app.setup(30).await;
    let sup = supervisor(&app).await;
    let phone = format!("+{ERASED}");
    for (token, who) in [(&sup, "supervisor"), (&s.agent_token, "agent")] {
        let (status, code, _) = error_of(erase(&app, token, &s.account_id, &phone).await).await;
        assert_eq!((status, code.as_str()), (403, "forbidden"), "{who}");
    }
    let (status, code, _) = error_of(erase(&app, &app.admin_token, &s.account_id, "12345").await).await;
    assert_eq!((status, code.as_str()), (422, "invalid_phone_number"));
    let unknown = uuid::Uuid::now_v7().to_string();
    for account in [unknown.as_str(), "nope"] {
        let (status, code, _) = error_of(erase(&app, &app.admin_token, account, &phone).await).await;
        assert_eq!((status, code.as_str()), (404, "account_not_found"), "{account}");
    }
    let path = format!("/api/accounts/{}/erasures", s.account_id);
    let r = app.post(&app.admin_token, &path, json!({"phone": phone, "extra": 1})).await;
    assert_eq!(r.status(), 400);
    let r = app.send_raw(reqwest::Method::POST, &app.admin_token, &path, "{").await;
    assert_eq!(r.status(), 400);
    // A number never seen: nothing to erase, nothing recorded.
    let before = app.count_events(None).await;
    let r = erase(&app, &app.admin_token, &s.account_id, &phone).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.expect("json")["erased"], false);
    assert_eq!(app.count_events(None).await, before);
    app.stop().await;
}

async fn deleting_an_interaction(backend: Backend) {
    let app = spawn_app(backend).await;
    accept_meta_sends(&app).await;
    let s = app.setup(30).await;
    let sup = supervisor(&app).await;
    let mut ws = app.connect_ws(&s.agent_token).await;
    app.agent_ready(&s.agent_token).await;
    assert_eq!(
        app.webhook(&s.account_id, &meta_text("wamid.D1", ERASED, "Zelda", "hello")).await.status(),
        200
    );
    let id = ws.next_of("offer").await["interaction_id"].as_str().expect("id").to_owned();
    assert_eq!(
        app.post(&s.agent_token, &format!("/api/interactions/{id}/accept"), json!({})).await.status(),
        204
    );
    let path = format!("/api/interactions/{id}");

    let (status, code, _) = error_of(app.delete(&sup, &path).await).await;
    assert_eq!((status, code.as_str()), (409, "interaction_open"));
    let (status, code, _) = error_of(app.delete(&s.agent_token, &path).await).await;
    assert_eq!((status, code.as_str()), (403, "forbidden"));
    for bad in ["nope".to_owned(), uuid::Uuid::now_v7().to_string()] {
        let (status, code, _) = error_of(app.delete(&sup, &format!("/api/interactions/{bad}")).await).await;
        assert_eq!((status, code.as_str()), (404, "interaction_not_found"), "{bad}");
    }

    assert_eq!(app.post(&s.agent_token, &format!("{path}/close"), json!({})).await.status(), 204);
    assert_eq!(app.delete(&sup, &path).await.status(), 204);
    app.eventually("/api/interactions", |v| v == &json!([])).await;
    app.settle().await;
    assert_eq!(app.get(&app.admin_token, &path).await.status(), 404);
    for table in
        ["interaction_list", "interaction_messages", "interaction_tags", "interaction_offers", "outbox"]
    {
        let n: i64 = sqlx::query(&format!("SELECT COUNT(*) AS n FROM {table} WHERE interaction_id = $1"))
            .bind(&id)
            .fetch_one(&app.core.db.any)
            .await
            .expect("count")
            .get("n");
        assert_eq!(n, 0, "{table}");
    }
    // Gone for commands too; the log keeps the record.
    let (status, code, _) = error_of(app.delete(&sup, &path).await).await;
    assert_eq!((status, code.as_str()), (404, "interaction_not_found"));
    assert_eq!(app.count_events(Some("InteractionDeleted")).await, 1);
    assert!(events_of(&app, &id).await.iter().any(|e| e["event_type"] == "InteractionDeleted"));
    app.stop().await;
}

/// The Graph API's media steps for the image fixture (from +15551234567, "damaged box").
async fn mock_meta_image(app: &TestApp, bytes: &'static [u8]) {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, ResponseTemplate};
    let download_url = format!("{}/download/900000000000001", app.graph.uri());
    Mock::given(method("GET"))
        .and(path("/v23.0/900000000000001"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "messaging_product": "whatsapp", "url": download_url, "mime_type": "image/jpeg",
            "file_size": bytes.len().to_string(), "id": "900000000000001"})))
        .mount(&app.graph)
        .await;
    Mock::given(method("GET"))
        .and(path("/download/900000000000001"))
        .respond_with(
            ResponseTemplate::new(200).insert_header("Content-Type", "image/jpeg").set_body_bytes(bytes),
        )
        .mount(&app.graph)
        .await;
}

async fn erasure_deletes_the_contacts_media_files(backend: Backend) {
    const IMAGE: &[u8] = b"\xFF\xD8\xFF\xE0 erasable jpeg bytes";
    let app = spawn_app(backend).await;
    let s = app.setup(30).await;
    mock_meta_image(&app, IMAGE).await;
    let mut ws = app.connect_ws(&s.agent_token).await;
    app.agent_ready(&s.agent_token).await;
    assert_eq!(app.webhook(&s.account_id, &fixture("meta_inbound_image.json")).await.status(), 200);
    let id = ws.next_of("offer").await["interaction_id"].as_str().expect("id").to_owned();
    assert_eq!(
        app.post(&s.agent_token, &format!("/api/interactions/{id}/accept"), json!({})).await.status(),
        204
    );
    let detail = app
        .eventually(&format!("/api/interactions/{id}"), |v| v["messages"][0]["media"]["state"] == "stored")
        .await;
    let sha = detail["messages"][0]["media"]["sha256"].as_str().expect("sha").to_owned();
    assert_eq!(app.core.blobs.get(&sha).await.expect("get").as_deref(), Some(IMAGE));
    assert_eq!(
        app.post(&s.agent_token, &format!("/api/interactions/{id}/close"), json!({})).await.status(),
        204
    );
    app.settle().await;

    let r = erase(&app, &app.admin_token, &s.account_id, "+15551234567").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.expect("json")["blobs_deleted"], 1);
    assert_eq!(app.core.blobs.get(&sha).await.expect("get"), None, "the file is gone");
    app.eventually("/api/interactions", |v| v == &json!([])).await;
    app.settle().await;
    let left = find_anywhere(&app, backend, &["15551234567", "Jane Doe", "damaged box"]).await;
    assert!(left.is_empty(), "{left:?}");
    let n: i64 = sqlx::query("SELECT COUNT(*) AS n FROM blob_deletions")
        .fetch_one(&app.core.db.any)
        .await
        .expect("count")
        .get("n");
    assert_eq!(n, 0, "no deletion left to retry");
    app.stop().await;
}

async fn rotating_the_master_key_reseals_personal_data_keys(backend: Backend) {
    use switchboard::clock::Clock;
    use switchboard::crypto::Sealer;
    use switchboard::pii::Pii;
    let app = spawn_app(backend).await;
    let s = app.setup(30).await;
    assert_eq!(
        app.webhook(&s.account_id, &meta_text("wamid.R1", ERASED, "Zelda", "rotate XYZZY")).await.status(),
        200
    );
    app.settle().await;
    let subject = app.core.pii.contact_subject(&s.account_id, &format!("+{ERASED}")).await.expect("subject");

    let new_key = Sealer::generate_key();
    let any = app.core.db.any.clone();
    let keyring = format!("{new_key},{}", app.place.master_key);
    let rotating = Pii::new(any.clone(), Sealer::from_keyring(&keyring).expect("keyring"), Clock::system());
    assert_eq!(rotating.reseal_all().await.expect("reseal"), 2, "one contact key and the pepper");
    assert_eq!(rotating.reseal_all().await.expect("again"), 0, "nothing left to re-seal");

    // The new key alone now opens the log and yields the same pseudonyms.
    let only_new = Pii::new(any.clone(), Sealer::from_base64(&new_key).expect("key"), Clock::system());
    assert_eq!(
        only_new.contact_subject(&s.account_id, &format!("+{ERASED}")).await.expect("subject"),
        subject
    );
    let sql = match backend {
        Backend::Postgres => {
            "SELECT payload::text AS p FROM events WHERE event_type = 'CustomerMessageReceived'"
        }
        Backend::Sqlite => "SELECT payload AS p FROM events WHERE event_type = 'CustomerMessageReceived'",
    };
    let raw: String = sqlx::query(sql).fetch_one(&any).await.expect("event").get("p");
    assert!(!raw.contains("XYZZY") && raw.contains("pii:v1:"), "{raw}");
    let mut payload: Value = serde_json::from_str(&raw).expect("json");
    only_new.open_payload(&mut payload).await.expect("open");
    assert_eq!(payload["CustomerMessageReceived"]["content"]["body"], "rotate XYZZY");
    app.stop().await;
}

#[actix_web::test]
async fn erasure_deletes_the_contacts_media_files_sqlite() {
    erasure_deletes_the_contacts_media_files(Backend::Sqlite).await;
}

#[actix_web::test]
async fn erasure_deletes_the_contacts_media_files_postgres() {
    erasure_deletes_the_contacts_media_files(Backend::Postgres).await;
}

#[actix_web::test]
async fn rotating_the_master_key_reseals_personal_data_keys_sqlite() {
    rotating_the_master_key_reseals_personal_data_keys(Backend::Sqlite).await;
}

#[actix_web::test]
async fn rotating_the_master_key_reseals_personal_data_keys_postgres() {
    rotating_the_master_key_reseals_personal_data_keys(Backend::Postgres).await;
}

#[actix_web::test]
async fn erasure_leaves_no_personal_data_anywhere_and_history_still_replays_sqlite() {
    erasure_leaves_no_personal_data_anywhere_and_history_still_replays(Backend::Sqlite).await;
}

#[actix_web::test]
async fn erasure_leaves_no_personal_data_anywhere_and_history_still_replays_postgres() {
    erasure_leaves_no_personal_data_anywhere_and_history_still_replays(Backend::Postgres).await;
}

#[actix_web::test]
async fn erasure_refusals_and_repeats_sqlite() {
    erasure_refusals_and_repeats(Backend::Sqlite).await;
}

#[actix_web::test]
async fn erasure_refusals_and_repeats_postgres() {
    erasure_refusals_and_repeats(Backend::Postgres).await;
}

#[actix_web::test]
async fn deleting_an_interaction_sqlite() {
    deleting_an_interaction(Backend::Sqlite).await;
}

#[actix_web::test]
async fn deleting_an_interaction_postgres() {
    deleting_an_interaction(Backend::Postgres).await;
}
