//! Exports through the HTTP API, on SQLite and PostgreSQL: the interaction CSV (header and
//! columns, RFC 4180 escaping of commas, quotes, newlines and non-ASCII, spreadsheet
//! formulas neutralised, the list's filters and the selected ids, empty = header only, a
//! 3,000-row export streamed complete and in order, keyset pages stable under inserts, who
//! may export) and the transcript zip (contents with and without attachments, the bytes
//! equal to the media the provider served, notes never included, visibility, bad input).
//!
//! CSV rows are written straight into `interaction_list` (the read model the export reads):
//! the escaping and paging cases need values and volumes no conversation would produce
//! quickly. The transcript runs a real conversation with media.

use std::io::Read;

use futures_util::StreamExt;
use serde_json::{Value, json};
use switchboard::services::export::{CSV_COLUMNS, csv_stream};
use switchboard::services::search::Criteria;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::*;

const IMAGE: &[u8] = b"\xFF\xD8\xFF\xE0 fake jpeg bytes of a damaged box";
const PDF: &[u8] = b"%PDF-1.7 fake invoice";
/// 2026-01-05T10:00:00Z.
const T0: i64 = 1_767_607_200_000;

/// A row of `interaction_list`, with the values the CSV cases need.
#[derive(Clone, Default)]
struct Row {
    id: String,
    account: String,
    status: &'static str,
    customer: String,
    name: Option<String>,
    opened_at: i64,
    closed_at: Option<i64>,
    disposition: Option<String>,
    tags: Vec<String>,
    preview: Option<String>,
    messages: i64,
}

fn row(account: &str, opened_at: i64) -> Row {
    Row {
        id: uuid::Uuid::new_v4().to_string(),
        account: account.to_owned(),
        status: "assigned",
        customer: "+15551234567".into(),
        opened_at,
        ..Row::default()
    }
}

async fn insert(app: &TestApp, r: &Row) {
    sqlx::query(
        "INSERT INTO interaction_list (interaction_id, account_id, status, customer, customer_name, opened_at,
            closed_at, disposition, tags, last_message_preview, last_message_at, message_count, unread_count,
            updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
    )
    .bind(&r.id)
    .bind(&r.account)
    .bind(r.status)
    .bind(&r.customer)
    .bind(r.name.clone())
    .bind(r.opened_at)
    .bind(r.closed_at)
    .bind(r.disposition.clone())
    .bind(serde_json::to_string(&r.tags).expect("json"))
    .bind(r.preview.clone())
    .bind(r.opened_at + 1000)
    .bind(r.messages)
    .bind(1_i64)
    .bind(r.opened_at)
    .execute(&app.core.db.any)
    .await
    .expect("insert row");
}

async fn token(app: &TestApp, role: &str) -> String {
    let r = app.post(&app.admin_token, "/api/tokens", json!({"role": role, "label": "Sue"})).await;
    assert_eq!(r.status(), 201);
    r.json::<Value>().await.expect("json")["token"].as_str().expect("token").to_owned()
}

/// The raw CSV of a GET export, after checking the response's headers.
async fn get_csv(app: &TestApp, token: &str, query: &str) -> String {
    let r = app.get(token, &format!("/api/interactions/export.csv{query}")).await;
    assert_eq!(r.status(), 200, "export{query}");
    check_headers(app, &r);
    r.text().await.expect("body")
}

async fn post_csv(app: &TestApp, token: &str, body: Value) -> String {
    let r = app.post(token, "/api/interactions/export.csv", body).await;
    assert_eq!(r.status(), 200);
    check_headers(app, &r);
    r.text().await.expect("body")
}

fn check_headers(app: &TestApp, r: &reqwest::Response) {
    assert_eq!(r.headers()["content-type"], "text/csv; charset=utf-8");
    let date = app.core.clock.now().format("%Y-%m-%d");
    assert_eq!(
        r.headers()["content-disposition"].to_str().expect("ascii"),
        format!("attachment; filename=\"interactions-{date}.csv\"")
    );
}

/// Parses a CSV: its header and its records (each a column → value map's values in order).
fn parse(csv: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let mut reader = csv::ReaderBuilder::new().from_reader(csv.as_bytes());
    let header = reader.headers().expect("header").iter().map(str::to_owned).collect();
    let records = reader
        .records()
        .map(|r| r.expect("well-formed record").iter().map(str::to_owned).collect())
        .collect();
    (header, records)
}

fn col(name: &str) -> usize {
    CSV_COLUMNS.iter().position(|c| *c == name).expect("column")
}

fn ids(records: &[Vec<String>]) -> Vec<String> {
    records.iter().map(|r| r[0].clone()).collect()
}

async fn columns_escaping_and_formulas(backend: Backend) {
    let app = spawn_app(backend).await;
    let account = uuid::Uuid::new_v4().to_string();
    let tricky = Row {
        name: Some("Smith, \"Jo\"\nsecond line".into()),
        preview: Some("Zoë says 日本語 — ok".into()),
        disposition: Some("Sale, \"won\"".into()),
        tags: vec!["vip".into(), "after-hours".into()],
        closed_at: Some(T0 + 60_000),
        status: "closed",
        messages: 7,
        ..row(&account, T0)
    };
    let formulas = Row {
        name: Some("=HYPERLINK(\"http://evil\",\"click\")".into()),
        preview: Some("@SUM(A1:A9)".into()),
        disposition: Some("+cmd|' /C calc'!A0".into()),
        tags: vec!["-1+1".into()],
        ..row(&account, T0 - 1000)
    };
    let tab = Row { name: Some("\tTabbed".into()), preview: Some("\rCR".into()), ..row(&account, T0 - 2000) };
    for r in [&tricky, &formulas, &tab] {
        insert(&app, r).await;
    }

    let raw = get_csv(&app, &app.admin_token, "").await;
    // RFC 4180: CR LF after every record, quotes doubled inside a quoted field.
    assert!(raw.starts_with(&format!("{}\r\n", CSV_COLUMNS.join(","))), "{raw}");
    assert!(raw.contains("\"Smith, \"\"Jo\"\"\nsecond line\""), "{raw}");
    assert_eq!(raw.matches("\r\n").count(), 4, "header and three records: {raw:?}");
    let (header, records) = parse(&raw);
    assert_eq!(header, CSV_COLUMNS);
    assert_eq!(ids(&records), vec![tricky.id.clone(), formulas.id.clone(), tab.id.clone()], "newest first");

    let t = &records[0];
    assert_eq!(t[col("interaction_id")], tricky.id);
    assert_eq!(t[col("account_id")], account);
    assert_eq!(t[col("status")], "closed");
    assert_eq!(t[col("customer")], "+15551234567", "an E.164 number is not a formula");
    assert_eq!(t[col("customer_name")], "Smith, \"Jo\"\nsecond line");
    assert_eq!(t[col("queue_id")], "");
    assert_eq!(t[col("agent_id")], "");
    assert_eq!(t[col("opened_at")], "2026-01-05T10:00:00.000Z");
    assert_eq!(t[col("assigned_at")], "");
    assert_eq!(t[col("closed_at")], "2026-01-05T10:01:00.000Z");
    assert_eq!(t[col("disposed_at")], "");
    assert_eq!(t[col("disposition")], "Sale, \"won\"");
    assert_eq!(t[col("tags")], "vip;after-hours");
    assert_eq!(t[col("message_count")], "7");
    assert_eq!(t[col("unread_count")], "1");
    assert_eq!(t[col("last_message_at")], "2026-01-05T10:00:01.000Z");
    assert_eq!(t[col("last_message_preview")], "Zoë says 日本語 — ok");

    let f = &records[1];
    assert_eq!(f[col("customer_name")], "'=HYPERLINK(\"http://evil\",\"click\")");
    assert_eq!(f[col("last_message_preview")], "'@SUM(A1:A9)");
    assert_eq!(f[col("disposition")], "'+cmd|' /C calc'!A0");
    assert_eq!(f[col("tags")], "'-1+1");
    let c = &records[2];
    assert_eq!(c[col("customer_name")], "'\tTabbed");
    assert_eq!(c[col("last_message_preview")], "'\rCR");
    app.stop().await;
}

#[actix_web::test]
async fn csv_columns_escaping_and_formulas_on_sqlite() {
    columns_escaping_and_formulas(Backend::Sqlite).await;
}

#[actix_web::test]
async fn csv_columns_escaping_and_formulas_on_postgres() {
    columns_escaping_and_formulas(Backend::Postgres).await;
}

async fn filters_selection_and_access(backend: Backend) {
    let app = spawn_app(backend).await;
    // Nothing yet: the header only.
    let (header, records) = parse(&get_csv(&app, &app.admin_token, "").await);
    assert_eq!((header.len(), records.len()), (CSV_COLUMNS.len(), 0));

    let (a, b) = (uuid::Uuid::new_v4().to_string(), uuid::Uuid::new_v4().to_string());
    let a_open = row(&a, T0);
    let a_closed = Row { status: "closed", ..row(&a, T0 + 1000) };
    let b_closed = Row { status: "closed", ..row(&b, T0 + 2000) };
    for r in [&a_open, &a_closed, &b_closed] {
        insert(&app, r).await;
    }
    let supervisor = token(&app, "supervisor").await;
    let all = parse(&get_csv(&app, &supervisor, "").await).1;
    assert_eq!(ids(&all), vec![b_closed.id.clone(), a_closed.id.clone(), a_open.id.clone()]);
    let closed = parse(&get_csv(&app, &supervisor, "?status=closed").await).1;
    assert_eq!(ids(&closed), vec![b_closed.id.clone(), a_closed.id.clone()]);
    let of_a = parse(&get_csv(&app, &supervisor, &format!("?account_id={a}")).await).1;
    assert_eq!(ids(&of_a), vec![a_closed.id.clone(), a_open.id.clone()]);
    let both = parse(&get_csv(&app, &supervisor, &format!("?account_id={a}&status=closed")).await).1;
    assert_eq!(ids(&both), vec![a_closed.id.clone()]);

    // The selected rows (in the export's order, whatever the selection's), with criteria.
    let selected = parse(&post_csv(&app, &supervisor, json!({"ids": [a_open.id, b_closed.id]})).await).1;
    assert_eq!(ids(&selected), vec![b_closed.id.clone(), a_open.id.clone()]);
    let selected = parse(
        &post_csv(&app, &app.admin_token, json!({"ids": [a_open.id, b_closed.id], "account_id": a})).await,
    )
    .1;
    assert_eq!(ids(&selected), vec![a_open.id.clone()]);
    let (_, none) = parse(&post_csv(&app, &supervisor, json!({"ids": []})).await);
    assert!(none.is_empty(), "an empty selection is the header only");
    let unknown = uuid::Uuid::new_v4().to_string();
    assert!(parse(&post_csv(&app, &supervisor, json!({"ids": [unknown]})).await).1.is_empty());
    let everything = parse(&post_csv(&app, &supervisor, json!({})).await).1;
    assert_eq!(everything.len(), 3);

    // Bad bodies: a field that is not criteria, an id that is not one, not JSON.
    let path = "/api/interactions/export.csv";
    for body in [r#"{"nope": 1}"#, r#"{"ids": ["not-a-uuid"]}"#, r#"{"ids": "#, r#"{"status": 3}"#] {
        let r = app.send_raw(reqwest::Method::POST, &supervisor, path, body).await;
        assert_eq!(error_of(r).await.0, 400, "{body}");
    }
    let r = app.send_raw(reqwest::Method::POST, &supervisor, path, r#"{"nope": 1}"#).await;
    assert_eq!(error_of(r).await.1, "invalid_request");

    // Agents may not export (even the accounts they belong to); nobody without a token.
    let (agent_id, agent) = app.create_agent("Sam").await;
    let r = app
        .post(
            &app.admin_token,
            &format!("/api/accounts/{}/agents", app.create_account().await),
            json!({"agent_id": agent_id}),
        )
        .await;
    assert_eq!(r.status(), 204);
    assert_eq!(error_of(app.get(&agent, path).await).await.1, "forbidden");
    let r = app.get(&agent, &format!("{path}?status=closed")).await;
    assert_eq!(r.status(), 403);
    let r = app.post(&agent, path, json!({"ids": [a_open.id]})).await;
    assert_eq!(error_of(r).await, (403, "forbidden".into(), "your role does not allow this".into()));
    assert_eq!(app.client.get(app.url(path)).send().await.expect("get").status(), 401);
    assert_eq!(app.client.post(app.url(path)).json(&json!({})).send().await.expect("post").status(), 401);
    app.stop().await;
}

#[actix_web::test]
async fn csv_filters_selection_and_who_may_export_on_sqlite() {
    filters_selection_and_access(Backend::Sqlite).await;
}

#[actix_web::test]
async fn csv_filters_selection_and_who_may_export_on_postgres() {
    filters_selection_and_access(Backend::Postgres).await;
}

async fn big_export(backend: Backend) {
    let app = spawn_app(backend).await;
    let account = uuid::Uuid::new_v4().to_string();
    // 3,000 rows, seven to a millisecond: ties on opened_at straddle every page boundary.
    let mut rows: Vec<(i64, String)> =
        (0..3000).map(|i| (T0 + i / 7, uuid::Uuid::new_v4().to_string())).collect();
    for chunk in rows.chunks(250) {
        let values: Vec<String> = chunk
            .iter()
            .map(|(at, id)| format!("('{id}', '{account}', 'closed', '+15551234567', {at}, {at})"))
            .collect();
        sqlx::query(&format!(
            "INSERT INTO interaction_list (interaction_id, account_id, status, customer, opened_at, updated_at)
             VALUES {}",
            values.join(", ")
        ))
        .execute(&app.core.db.any)
        .await
        .expect("bulk insert");
    }
    rows.sort_by(|x, y| y.cmp(x));
    let expected: Vec<String> = rows.iter().map(|(_, id)| id.clone()).collect();

    let raw = get_csv(&app, &app.admin_token, "").await;
    let (_, records) = parse(&raw);
    assert_eq!(records.len(), 3000, "every row, once");
    assert_eq!(ids(&records), expected, "newest first, ties by id, across pages");
    assert!(raw.ends_with("\r\n"), "the stream ends cleanly after the last record");

    // The stream itself, in pages of 7 (a tie group per page): a row inserted between two
    // pages, newer or older, neither duplicates nor hides another.
    let mut stream =
        Box::pin(csv_stream(app.core.db.any.clone(), app.core.db.backend, Criteria::default(), 7));
    let mut body = Vec::new();
    body.extend_from_slice(&stream.next().await.expect("header").expect("ok"));
    body.extend_from_slice(&stream.next().await.expect("page 1").expect("ok"));
    let newest = row(&account, T0 + 10_000);
    let oldest = row(&account, T0 - 10_000);
    insert(&app, &newest).await;
    insert(&app, &oldest).await;
    while let Some(chunk) = stream.next().await {
        body.extend_from_slice(&chunk.expect("ok"));
    }
    let (_, records) = parse(std::str::from_utf8(&body).expect("utf8"));
    let mut with_oldest = expected.clone();
    with_oldest.push(oldest.id.clone());
    assert_eq!(
        ids(&records),
        with_oldest,
        "the older row shows at its place; the newer one was above page 1"
    );
    app.stop().await;
}

#[actix_web::test]
async fn a_big_export_streams_complete_and_in_order_on_sqlite() {
    big_export(Backend::Sqlite).await;
}

#[actix_web::test]
async fn a_big_export_streams_complete_and_in_order_on_postgres() {
    big_export(Backend::Postgres).await;
}

/// The Graph API's two media steps for the image's media id (the document's id has no
/// mock, so its download fails and the document stays unavailable).
async fn mock_meta_image(app: &TestApp) {
    let download_url = format!("{}/download/900000000000001", app.graph.uri());
    Mock::given(method("GET"))
        .and(path("/v23.0/900000000000001"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "messaging_product": "whatsapp", "url": download_url, "mime_type": "image/jpeg",
            "sha256": "SfInY0gGKTsJlUWbwxC1k+FAD0FZHvzwfpvO0zX0GUI=", "file_size": IMAGE.len().to_string(),
            "id": "900000000000001"})))
        .mount(&app.graph)
        .await;
    Mock::given(method("GET"))
        .and(path("/download/900000000000001"))
        .respond_with(
            ResponseTemplate::new(200).insert_header("Content-Type", "image/jpeg").set_body_bytes(IMAGE),
        )
        .mount(&app.graph)
        .await;
}

/// The zip's entries, name → bytes, in the zip's order.
fn unzip(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("a zip");
    (0..archive.len())
        .map(|i| {
            let mut file = archive.by_index(i).expect("entry");
            let mut content = Vec::new();
            file.read_to_end(&mut content).expect("read entry");
            (file.name().expect("utf8 name").into_owned(), content)
        })
        .collect()
}

async fn get_zip(app: &TestApp, token: &str, id: &str, query: &str) -> Vec<(String, Vec<u8>)> {
    let r = app.get(token, &format!("/api/interactions/{id}/transcript.zip{query}")).await;
    assert_eq!(r.status(), 200, "transcript{query}");
    assert_eq!(r.headers()["content-type"], "application/zip");
    assert_eq!(
        r.headers()["content-disposition"].to_str().expect("ascii"),
        format!("attachment; filename=\"transcript-{id}.zip\"")
    );
    unzip(&r.bytes().await.expect("bytes"))
}

async fn status_code(r: reqwest::Response) -> (u16, String) {
    let (status, code, _) = error_of(r).await;
    (status, code)
}

fn entry<'a>(entries: &'a [(String, Vec<u8>)], name: &str) -> &'a [u8] {
    &entries.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("no {name} in the zip")).1
}

async fn transcript(backend: Backend) {
    let app = spawn_app(backend).await;
    let s = app.setup(10).await;
    mock_meta_image(&app).await;
    accept_meta_sends(&app).await;
    app.agent_ready(&s.agent_token).await;
    let mut ws = app.connect_ws(&s.agent_token).await;

    // The customer sends a photo; the agent accepts, sends a PDF and a text; the customer
    // sends a document that cannot be downloaded; a supervisor adds an internal note.
    assert_eq!(app.webhook(&s.account_id, &fixture("meta_inbound_image.json")).await.status(), 200);
    let offer = ws.next_of("offer").await;
    let id = offer["interaction_id"].as_str().expect("id").to_owned();
    let r = app.post(&s.agent_token, &format!("/api/interactions/{id}/accept"), json!({})).await;
    assert_eq!(r.status(), 204);
    app.eventually(&format!("/api/interactions/{id}"), |v| v["messages"][0]["media"]["state"] == "stored")
        .await;
    let r =
        app.client
            .post(app.url(&format!(
                "/api/interactions/{id}/media?caption=your%20invoice&filename=invoice-4711.pdf"
            )))
            .bearer_auth(&s.agent_token)
            .header("Content-Type", "application/pdf")
            .body(PDF.to_vec())
            .send()
            .await
            .expect("upload");
    assert_eq!(r.status(), 202);
    let r = app
        .post(
            &s.agent_token,
            &format!("/api/interactions/{id}/messages"),
            json!({"text": "Thanks,\nwe are on it"}),
        )
        .await;
    assert_eq!(r.status(), 202);
    assert_eq!(app.webhook(&s.account_id, &fixture("meta_inbound_document.json")).await.status(), 200);
    let detail = app
        .eventually(&format!("/api/interactions/{id}"), |v| {
            v["messages"].as_array().is_some_and(|m| m.len() == 4)
                && v["messages"][3]["media"]["state"] == "unavailable"
        })
        .await;
    let message_ids: Vec<String> = detail["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["message_id"].as_str().expect("id").to_owned())
        .collect();
    let interaction_id: switchboard_domain::InteractionId = id.parse().expect("id");
    app.core
        .interactions
        .execute(
            &interaction_id.to_string(),
            switchboard_domain::interaction::InteractionCommand::AddNote {
                note_id: switchboard_domain::NoteId::new(),
                author: switchboard_domain::interaction::NoteAuthor::Supervisor { label: "Sue".into() },
                text: switchboard_domain::MessageText::parse("SECRET internal remark").expect("text"),
                at: app.core.clock.now(),
            },
            app.core.metadata(&switchboard::core::Cause::System("test"), "export-test"),
        )
        .await
        .expect("note added");
    let r = app
        .post(
            &s.agent_token,
            &format!("/api/interactions/{id}/notes"),
            json!({"text": "SECRET from Sam\nsecond line"}),
        )
        .await;
    assert_eq!(r.status(), 201);
    app.settle().await;

    // Without attachments (the default, and `false`): the two transcripts only.
    for query in ["", "?attachments=false"] {
        let entries = get_zip(&app, &app.admin_token, &id, query).await;
        let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, vec!["transcript.txt", "transcript.json"], "{query}");
    }
    let entries = get_zip(&app, &app.admin_token, &id, "").await;
    let text = String::from_utf8(entry(&entries, "transcript.txt").to_vec()).expect("utf8");
    assert!(text.starts_with(&format!("Interaction: {id}\nAccount: {}\n", s.account_id)), "{text}");
    assert!(text.contains("Customer: Jane Doe (+15551234567)\n"), "{text}");
    assert!(text.contains(&format!("Agent: Sam ({})\n", s.agent_id)), "{text}");
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("[20")).collect();
    assert_eq!(lines.len(), 4, "one line per message: {text}");
    assert!(
        lines[0].ends_with("UTC] Customer (Jane Doe): [image] (not included) damaged box"),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].ends_with(&format!(
            "] Agent Sam ({}): [document] invoice-4711.pdf (not included) your invoice",
            s.agent_id
        )),
        "{}",
        lines[1]
    );
    assert!(lines[2].ends_with("): Thanks,"), "{}", lines[2]);
    assert!(text.contains("): Thanks,\n    we are on it\n"), "continuation lines are indented: {text}");
    assert!(
        lines[3].ends_with("] Customer (Jane Doe): [document] invoice-4711.pdf (unavailable) my invoice"),
        "{}",
        lines[3]
    );
    assert!(!text.contains("SECRET"), "internal notes are never in a transcript");
    let json: Value = serde_json::from_slice(entry(&entries, "transcript.json")).expect("json");
    assert_eq!(json["interaction"]["interaction_id"], id);
    assert_eq!(json["interaction"]["customer_name"], "Jane Doe");
    let froms: Vec<&str> = json["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["from"].as_str().expect("from"))
        .collect();
    assert_eq!(froms, vec!["customer", "agent", "agent", "customer"]);
    assert_eq!(json["messages"][0]["media"]["state"], "stored");
    assert!(json["messages"][0]["media"]["file"].is_null());
    assert!(!String::from_utf8_lossy(entry(&entries, "transcript.json")).contains("SECRET"));
    assert!(json.get("notes").is_none(), "no notes key unless asked for");

    // With `notes=true`: the notes in a section of their own, after the messages.
    let entries = get_zip(&app, &s.agent_token, &id, "?notes=true").await;
    let text = String::from_utf8(entry(&entries, "transcript.txt").to_vec()).expect("utf8");
    let (messages, notes) =
        text.split_once("\nInternal notes (never sent to the customer):\n").expect("section");
    assert!(!messages.contains("SECRET"), "{text}");
    let notes: Vec<&str> = notes.lines().collect();
    assert_eq!(notes.len(), 3, "{text}");
    assert!(notes[0].ends_with("UTC] Supervisor Sue: SECRET internal remark"), "{}", notes[0]);
    assert!(notes[1].ends_with(&format!("UTC] Agent Sam ({}): SECRET from Sam", s.agent_id)), "{}", notes[1]);
    assert_eq!(notes[2], "    second line");
    let json: Value = serde_json::from_slice(entry(&entries, "transcript.json")).expect("json");
    let kinds: Vec<(&str, &str)> = json["notes"]
        .as_array()
        .expect("notes")
        .iter()
        .map(|n| (n["author_kind"].as_str().expect("kind"), n["text"].as_str().expect("text")))
        .collect();
    assert_eq!(
        kinds,
        vec![("supervisor", "SECRET internal remark"), ("agent", "SECRET from Sam\nsecond line")]
    );
    assert_eq!(json["notes"][1]["author_name"], "Sam");

    // With attachments: the stored files, byte for byte; the unavailable one listed only.
    let entries = get_zip(&app, &app.admin_token, &id, "?attachments=true").await;
    let image_path = format!("attachments/{}-image.jpg", message_ids[0]);
    let pdf_path = format!("attachments/{}-invoice-4711.pdf", message_ids[1]);
    let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, vec!["transcript.txt", "transcript.json", image_path.as_str(), pdf_path.as_str()]);
    assert_eq!(entry(&entries, &image_path), IMAGE, "the bytes the provider served");
    assert_eq!(entry(&entries, &pdf_path), PDF, "the bytes the agent uploaded");
    let text = String::from_utf8(entry(&entries, "transcript.txt").to_vec()).expect("utf8");
    assert!(text.contains(&format!("Customer (Jane Doe): [image] ({image_path}) damaged box\n")), "{text}");
    assert!(text.contains(&format!("[document] invoice-4711.pdf ({pdf_path}) your invoice\n")), "{text}");
    assert!(text.contains("[document] invoice-4711.pdf (unavailable) my invoice\n"), "{text}");
    let json: Value = serde_json::from_slice(entry(&entries, "transcript.json")).expect("json");
    assert_eq!(json["messages"][0]["media"]["file"], image_path.as_str());
    assert_eq!(json["messages"][1]["media"]["file"], pdf_path.as_str());
    assert!(json["messages"][3]["media"]["file"].is_null());

    // The assigned agent (a member of the account) may download it; a supervisor too.
    let names = |e: Vec<(String, Vec<u8>)>| e.len();
    assert_eq!(names(get_zip(&app, &s.agent_token, &id, "?attachments=true").await), 4);
    let supervisor = token(&app, "supervisor").await;
    assert_eq!(names(get_zip(&app, &supervisor, &id, "").await), 2);

    // Another account's agent, an unknown or malformed id: the same 404.
    let (_, stranger) = app.create_agent("Eve").await;
    let zip_path = format!("/api/interactions/{id}/transcript.zip");
    assert_eq!(status_code(app.get(&stranger, &zip_path).await).await, (404, "interaction_not_found".into()));
    let unknown = format!("/api/interactions/{}/transcript.zip", uuid::Uuid::new_v4());
    assert_eq!(
        status_code(app.get(&app.admin_token, &unknown).await).await,
        (404, "interaction_not_found".into())
    );
    let malformed = "/api/interactions/nope/transcript.zip";
    assert_eq!(
        status_code(app.get(&app.admin_token, malformed).await).await,
        (404, "interaction_not_found".into())
    );
    assert_eq!(app.client.get(app.url(&zip_path)).send().await.expect("get").status(), 401);
    // A bad `attachments` value.
    for bad in ["yes", "1", "TRUE", ""] {
        let r = app.get(&app.admin_token, &format!("{zip_path}?attachments={bad}")).await;
        assert_eq!(error_of(r).await.0, 400, "{bad}");
    }
    let r = app.get(&app.admin_token, &format!("{zip_path}?attachments=yes")).await;
    assert_eq!(error_of(r).await.1, "invalid_request");
    let r = app.get(&app.admin_token, &format!("{zip_path}?notes=yes")).await;
    assert_eq!(status_code(r).await, (400, "invalid_request".into()));

    // Attachments over the cap are refused (the read model's sizes decide, before any read);
    // without attachments the transcript still downloads.
    sqlx::query("UPDATE interaction_messages SET media_size = $1 WHERE message_id = $2")
        .bind(201_i64 * 1024 * 1024)
        .bind(&message_ids[0])
        .execute(&app.core.db.any)
        .await
        .expect("update");
    let r = app.get(&app.admin_token, &format!("{zip_path}?attachments=true")).await;
    assert_eq!(error_of(r).await.0, 413);
    let r = app.get(&app.admin_token, &format!("{zip_path}?attachments=true")).await;
    assert_eq!(error_of(r).await.1, "transcript_too_large");
    assert_eq!(names(get_zip(&app, &app.admin_token, &id, "").await), 2);
    app.stop().await;
}

#[actix_web::test]
async fn transcript_zip_with_and_without_attachments_on_sqlite() {
    transcript(Backend::Sqlite).await;
}

#[actix_web::test]
async fn transcript_zip_with_and_without_attachments_on_postgres() {
    transcript(Backend::Postgres).await;
}

#[actix_web::test]
async fn the_export_endpoints_are_in_the_openapi_description() {
    let app = spawn_app(Backend::Sqlite).await;
    let spec: Value =
        app.client.get(app.url("/openapi.json")).send().await.expect("get").json().await.expect("json");
    let csv = &spec["paths"]["/api/interactions/export.csv"];
    assert!(csv["get"]["responses"]["200"]["content"]["text/csv"].is_object(), "{csv:#}");
    assert!(csv["post"]["requestBody"].is_object(), "{csv:#}");
    assert!(csv["get"]["parameters"].as_array().is_some_and(|p| p.iter().any(|p| p["name"] == "status")));
    let zip = &spec["paths"]["/api/interactions/{interaction_id}/transcript.zip"]["get"];
    assert!(zip["responses"]["200"]["content"]["application/zip"].is_object(), "{zip:#}");
    assert!(zip["responses"]["413"].is_object());
    assert!(zip["parameters"].as_array().is_some_and(|p| p.iter().any(|p| p["name"] == "attachments")));
    app.stop().await;
}

async fn error_mid_stream(backend: Backend) {
    let app = spawn_app(backend).await;
    let account = uuid::Uuid::new_v4().to_string();
    for i in 0..10 {
        insert(&app, &row(&account, T0 + i)).await;
    }
    let mut stream =
        Box::pin(csv_stream(app.core.db.any.clone(), app.core.db.backend, Criteria::default(), 3));
    assert!(stream.next().await.expect("header").is_ok());
    assert!(stream.next().await.expect("page 1").is_ok());
    // The table goes away between two pages: the stream ends with the error (which aborts
    // the HTTP body) rather than ending as if the export were complete.
    sqlx::query("ALTER TABLE interaction_list RENAME TO interaction_list_gone")
        .execute(&app.core.db.any)
        .await
        .expect("rename");
    assert!(stream.next().await.expect("an item").is_err(), "the failure is reported");
    assert!(stream.next().await.is_none(), "and nothing follows it");
    sqlx::query("ALTER TABLE interaction_list_gone RENAME TO interaction_list")
        .execute(&app.core.db.any)
        .await
        .expect("rename back");
    app.stop().await;
}

#[actix_web::test]
async fn a_database_error_mid_stream_ends_the_export_with_an_error_on_sqlite() {
    error_mid_stream(Backend::Sqlite).await;
}

#[actix_web::test]
async fn a_database_error_mid_stream_ends_the_export_with_an_error_on_postgres() {
    error_mid_stream(Backend::Postgres).await;
}
