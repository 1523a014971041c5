//! The interaction list and the advanced search on SQLite and PostgreSQL: every list filter,
//! sorting and keyset paging with rows inserted between pages, every operator with `all`,
//! `any` and disabled conditions, full text over message bodies (words, case, several words,
//! no match, FTS/LIKE syntax in the input, the index following updates and deletes), every
//! bad input with its stable code, and agents never seeing another account's interactions.
//!
//! Most rows are written straight into the read-model tables (`interaction_list`,
//! `interaction_tags`, `interaction_messages`) with known times and values: the filters are
//! about the read model, and exact fixtures make each expectation exact. One message comes
//! through a real webhook to prove the full-text index follows the projection.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::helpers::*;

/// 2026-01-05T10:00:00Z in epoch ms: row `n` opens `n` minutes later.
const T0: i64 = 1_767_607_200_000;
const MIN: i64 = 60_000;

/// RFC 3339 of `T0 + minutes`.
fn at(minutes: i64) -> String {
    chrono::DateTime::from_timestamp_millis(T0 + minutes * MIN).expect("time").to_rfc3339()
}

/// One interaction_list row to seed; `name` identifies it in assertions.
#[derive(Clone)]
struct Seed {
    name: &'static str,
    account: String,
    queue: Option<&'static str>,
    agent: Option<&'static str>,
    customer: &'static str,
    status: &'static str,
    opened: i64,
    closed: Option<i64>,
    last: Option<i64>,
    disposition: Option<&'static str>,
    unread_count: i64,
    unread: bool,
    tags: Vec<&'static str>,
    bodies: Vec<&'static str>,
}

fn seed(name: &'static str, account: &str, opened: i64) -> Seed {
    Seed {
        name,
        account: account.to_owned(),
        queue: None,
        agent: None,
        customer: "+15550000000",
        status: "queued",
        opened,
        closed: None,
        last: None,
        disposition: None,
        unread_count: 0,
        unread: false,
        tags: vec![],
        bodies: vec![],
    }
}

/// Writes the rows (and their tags and messages) into the read model.
async fn insert(app: &TestApp, rows: &[Seed]) {
    let db = &app.core.db.any;
    for r in rows {
        let id = uuid::Uuid::now_v7().to_string();
        let mut tags = r.tags.clone();
        tags.sort();
        sqlx::query(
            "INSERT INTO interaction_list (interaction_id, account_id, queue_id, agent_id, customer, customer_name,
                status, opened_at, closed_at, last_message_at, disposition, unread_count, message_count, unread,
                tags, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $8)",
        )
        .bind(&id)
        .bind(&r.account)
        .bind(r.queue)
        .bind(r.agent)
        .bind(r.customer)
        .bind(r.name)
        .bind(r.status)
        .bind(T0 + r.opened * MIN)
        .bind(r.closed.map(|m| T0 + m * MIN))
        .bind(r.last.map(|m| T0 + m * MIN))
        .bind(r.disposition)
        .bind(r.unread_count)
        .bind(r.bodies.len() as i64)
        .bind(i64::from(r.unread))
        .bind(serde_json::to_string(&tags).expect("json"))
        .execute(db)
        .await
        .expect("insert row");
        for tag in &r.tags {
            sqlx::query("INSERT INTO interaction_tags (interaction_id, tag) VALUES ($1, $2)")
                .bind(&id)
                .bind(*tag)
                .execute(db)
                .await
                .expect("insert tag");
        }
        for (n, body) in r.bodies.iter().enumerate() {
            sqlx::query(
                "INSERT INTO interaction_messages (message_id, interaction_id, direction, kind, body, status, at, seq)
                 VALUES ($1, $2, 'in', 'text', $3, 'received', $4, $5)",
            )
            .bind(uuid::Uuid::now_v7().to_string())
            .bind(&id)
            .bind(*body)
            .bind(T0 + r.opened * MIN + n as i64)
            .bind(n as i64 + 1)
            .execute(db)
            .await
            .expect("insert message");
        }
    }
}

/// The `customer_name`s of a list body, in order.
fn names(list: &Value) -> Vec<String> {
    list.as_array()
        .expect("array")
        .iter()
        .map(|r| r["customer_name"].as_str().unwrap_or_default().to_owned())
        .collect()
}

async fn list(app: &TestApp, token: &str, query: &str) -> Vec<String> {
    names(&app.get_json(token, &format!("/api/interactions?{query}")).await)
}

async fn search(app: &TestApp, token: &str, body: Value) -> Vec<String> {
    let r = app.post(token, "/api/interactions/search", body.clone()).await;
    assert_eq!(r.status(), 200, "{body}");
    names(&r.json::<Value>().await.expect("json")["items"])
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

async fn supervisor_token(app: &TestApp) -> String {
    let r = app.post(&app.admin_token, "/api/tokens", json!({"role": "supervisor", "label": "Sue"})).await;
    assert_eq!(r.status(), 201);
    r.json::<Value>().await.expect("json")["token"].as_str().expect("token").to_owned()
}

/// Eight rows covering every filter's distinctions.
fn filter_rows() -> Vec<Seed> {
    let mut rows = Vec::new();
    let mut a = seed("a", "acc-1", 0);
    a.queue = Some("q-1");
    a.tags = vec!["vip", "new"];
    a.unread_count = 2;
    a.bodies = vec!["I want a REFUND please", "order 1234"];
    a.last = Some(5);
    rows.push(a);
    let mut b = seed("b", "acc-1", 10);
    b.status = "assigned";
    b.queue = Some("q-1");
    b.agent = Some("g-1");
    b.tags = vec!["vip"];
    b.customer = "+15550000001";
    b.bodies = vec!["hello there"];
    b.last = Some(12);
    rows.push(b);
    let mut c = seed("c", "acc-2", 20);
    c.status = "closed";
    c.queue = Some("q-2");
    c.agent = Some("g-1");
    c.closed = Some(30);
    c.unread = true;
    c.bodies = vec!["refund received, thanks"];
    c.last = Some(25);
    rows.push(c);
    let mut d = seed("d", "acc-2", 30);
    d.status = "disposed";
    d.agent = Some("g-2");
    d.closed = Some(40);
    d.disposition = Some("Sale");
    d.tags = vec!["new"];
    rows.push(d);
    let mut e = seed("e", "acc-1", 40);
    e.status = "offered";
    e.queue = Some("q-2");
    rows.push(e);
    let mut f = seed("f", "acc-1", 50);
    f.status = "unrouted";
    f.customer = "+15550000001";
    rows.push(f);
    let mut g = seed("g", "acc-2", 60);
    g.status = "disposed";
    g.agent = Some("g-2");
    g.closed = Some(61);
    g.disposition = Some("No sale");
    g.tags = vec!["vip", "new", "late"];
    rows.push(g);
    let mut h = seed("h", "acc-1", 70);
    h.status = "closed";
    h.closed = Some(75);
    rows.push(h);
    rows
}

async fn each_list_filter_selects_exactly_its_rows(backend: Backend) {
    let app = spawn_app(backend).await;
    insert(&app, &filter_rows()).await;
    let admin = app.admin_token.clone();
    // Unfiltered: everything, newest first.
    assert_eq!(list(&app, &admin, "").await, ["h", "g", "f", "e", "d", "c", "b", "a"]);
    let cases: Vec<(String, Vec<&str>)> = vec![
        ("status=queued".into(), vec!["a"]),
        ("status=disposed".into(), vec!["g", "d"]),
        ("state=open".into(), vec!["f", "e", "b", "a"]),
        ("state=closed".into(), vec!["h", "g", "d", "c"]),
        ("state=closed&status=closed".into(), vec!["h", "c"]),
        ("account_id=acc-2".into(), vec!["g", "d", "c"]),
        ("queue_id=q-2".into(), vec!["e", "c"]),
        ("agent_id=g-1".into(), vec!["c", "b"]),
        ("tag=vip".into(), vec!["g", "b", "a"]),
        ("tag=vip&tag=new".into(), vec!["g", "a"]),
        ("tag=vip,new,late".into(), vec!["g"]),
        ("tag=nobody".into(), vec![]),
        ("disposition=Sale".into(), vec!["d"]),
        ("disposition=No+sale".into(), vec!["g"]),
        ("customer=%2B15550000001".into(), vec!["f", "b"]),
        ("customer=15550000001".into(), vec!["f", "b"]),
        ("read=unread".into(), vec!["c", "a"]),
        ("read=read".into(), vec!["h", "g", "f", "e", "d", "b"]),
        (format!("from={}", enc(&at(30))), vec!["h", "g", "f", "e", "d"]),
        (format!("to={}", enc(&at(30))), vec!["c", "b", "a"]),
        (format!("from={}&to={}", enc(&at(10)), enc(&at(41))), vec!["e", "d", "c", "b"]),
        ("q=refund".into(), vec!["c", "a"]),
        ("q=refund&account_id=acc-1".into(), vec!["a"]),
        ("state=open&account_id=acc-1&tag=vip&read=unread".into(), vec!["a"]),
    ];
    for (query, expected) in cases {
        assert_eq!(list(&app, &admin, &query).await, expected, "?{query}");
    }
    // Supervisors see the same.
    let sue = supervisor_token(&app).await;
    assert_eq!(list(&app, &sue, "account_id=acc-2").await, ["g", "d", "c"]);
}

fn enc(raw: &str) -> String {
    raw.replace('+', "%2B").replace(':', "%3A")
}

#[actix_web::test]
async fn each_list_filter_selects_exactly_its_rows_on_sqlite() {
    each_list_filter_selects_exactly_its_rows(Backend::Sqlite).await;
}

#[actix_web::test]
async fn each_list_filter_selects_exactly_its_rows_on_postgres() {
    each_list_filter_selects_exactly_its_rows(Backend::Postgres).await;
}

/// Follows the list's pages by `X-Next-Cursor`, running `between` after each page.
async fn pages(app: &TestApp, query: &str, mut between: impl AsyncFnMut(usize)) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    for n in 0..20 {
        let path = match &cursor {
            Some(c) => format!("/api/interactions?{query}&cursor={c}"),
            None => format!("/api/interactions?{query}"),
        };
        let r = app.get(&app.admin_token, &path).await;
        assert_eq!(r.status(), 200, "{path}");
        let next = r.headers().get("X-Next-Cursor").map(|v| v.to_str().expect("ascii").to_owned());
        let link = r.headers().get("Link").map(|v| v.to_str().expect("ascii").to_owned());
        assert_eq!(next.is_some(), link.is_some(), "Link goes with X-Next-Cursor");
        if let (Some(next), Some(link)) = (&next, &link) {
            assert!(link.contains(&format!("cursor={next}")) && link.ends_with("; rel=\"next\""), "{link}");
        }
        out.push(names(&r.json().await.expect("json")));
        between(n).await;
        match next {
            Some(next) => cursor = Some(next),
            None => return out,
        }
    }
    panic!("paging never ended");
}

async fn sorting_and_keyset_paging_survive_inserts(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut rows = Vec::new();
    for (n, name) in ["p0", "p1", "p2", "p3", "p4", "p5", "p6"].into_iter().enumerate() {
        let mut r = seed(name, "acc-1", 100 + n as i64 * 10);
        // last_message_at in the reverse order, p3 without any; closed_at on the even ones.
        r.last = (n != 3).then_some(200 - n as i64);
        r.closed = (n % 2 == 0).then_some(300 + n as i64);
        rows.push(r);
    }
    // Two rows sharing one opened_at: the interaction id breaks the tie, never a page edge.
    let mut twin = seed("p4b", "acc-1", 140);
    twin.last = Some(150);
    rows.push(twin);
    insert(&app, &rows).await;

    // Descending by opened_at, 3 a page; after page 1 a newer row (before the cursor: not
    // shown) and an older one (after it: shown once, in place) are inserted.
    let got = pages(&app, "limit=3", async |n| {
        if n == 0 {
            insert(&app, &[seed("newer", "acc-1", 500), seed("older", "acc-1", 1)]).await;
        }
    })
    .await;
    let flat: Vec<String> = got.iter().flatten().cloned().collect();
    // The twins straddle the first page's edge: one ends page 1, the other starts page 2.
    assert_eq!(got[0][..2], ["p6", "p5"]);
    let twins = set(&[flat[2].as_str(), flat[3].as_str()]);
    assert_eq!(twins, set(&["p4", "p4b"]), "{got:?}");
    assert_eq!(flat.len(), 9, "{got:?}");
    assert_eq!(set(&flat.iter().map(String::as_str).collect::<Vec<_>>()).len(), 9, "no duplicates: {flat:?}");
    assert!(
        !flat.contains(&"newer".to_owned()) && flat.last().map(String::as_str) == Some("older"),
        "{flat:?}"
    );
    assert!(got.iter().all(|p| p.len() <= 3));

    // Ascending: the mirror, with the newer row now after the cursor.
    let got = pages(&app, "limit=4&order=asc", async |n| {
        if n == 0 {
            insert(&app, &[seed("newest", "acc-1", 600), seed("oldest", "acc-1", -5)]).await;
        }
    })
    .await;
    let flat: Vec<String> = got.iter().flatten().cloned().collect();
    assert_eq!(got[0], ["older", "p0", "p1", "p2"]);
    assert_eq!(flat.len(), 11, "{flat:?}");
    assert!(!flat.contains(&"oldest".to_owned()));
    assert_eq!(flat[flat.len() - 2..], ["newer", "newest"]);

    // last_message_at: missing last (descending) or first (ascending), ties by id.
    let desc = pages(&app, "sort=last_message_at&limit=2&account_id=acc-1", async |_| {}).await;
    let flat: Vec<String> = desc.iter().flatten().cloned().collect();
    assert_eq!(&flat[..7], ["p0", "p1", "p2", "p4", "p5", "p6", "p4b"]);
    assert_eq!(
        set(&flat[7..].iter().map(String::as_str).collect::<Vec<_>>()),
        set(&["p3", "newer", "older", "newest", "oldest"])
    );
    let asc = list(&app, &app.admin_token, "sort=last_message_at&order=asc&limit=200").await;
    assert_eq!(&asc[5..], ["p4b", "p6", "p5", "p4", "p2", "p1", "p0"]);

    // closed_at descending: the closed ones by close time, then the open ones.
    let closed = list(&app, &app.admin_token, "sort=closed_at&limit=4").await;
    assert_eq!(closed, ["p6", "p4", "p2", "p0"]);
    // The body of the list stays a bare array; a full page without more has no cursor.
    let r = app.get(&app.admin_token, "/api/interactions?limit=200").await;
    assert!(r.headers().get("X-Next-Cursor").is_none());
    assert_eq!(r.json::<Value>().await.expect("json").as_array().map(Vec::len), Some(12));

    // The search pages the same way, with the cursor in the body.
    let mut seen = Vec::new();
    let mut cursor = Value::Null;
    loop {
        let r = app
            .post(
                &app.admin_token,
                "/api/interactions/search",
                json!({"limit": 5, "order": "asc", "cursor": cursor}),
            )
            .await;
        assert_eq!(r.status(), 200);
        let body: Value = r.json().await.expect("json");
        seen.extend(names(&body["items"]));
        cursor = body["next_cursor"].clone();
        if cursor.is_null() {
            break;
        }
    }
    assert_eq!(seen, list(&app, &app.admin_token, "order=asc&limit=200").await);
}

#[actix_web::test]
async fn sorting_and_keyset_paging_survive_inserts_on_sqlite() {
    sorting_and_keyset_paging_survive_inserts(Backend::Sqlite).await;
}

#[actix_web::test]
async fn sorting_and_keyset_paging_survive_inserts_on_postgres() {
    sorting_and_keyset_paging_survive_inserts(Backend::Postgres).await;
}

fn c(field: &str, operator: &str, value: Value) -> Value {
    json!({"field": field, "operator": operator, "value": value})
}

async fn every_operator_all_any_and_disabled_conditions(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut rows = filter_rows();
    rows[0].bodies.push("50% off_today");
    rows[1].bodies.push("50 percent off");
    insert(&app, &rows).await;
    let admin = app.admin_token.clone();
    let one = |cond: Value| json!({"conditions": [cond]});
    let cases: Vec<(Value, Vec<&str>)> = vec![
        // Text columns.
        (one(c("customer_name", "equals", json!("c"))), vec!["c"]),
        (one(c("customer", "not_equals", json!("+15550000000"))), vec!["f", "b"]),
        (one(c("agent_id", "not_equals", json!("g-1"))), vec!["h", "g", "f", "e", "d", "a"]),
        (one(c("disposition", "contains", json!("SAL"))), vec!["g", "d"]),
        (one(c("disposition", "starts_with", json!("no "))), vec!["g"]),
        (one(c("disposition", "ends_with", json!("sale"))), vec!["g", "d"]),
        (one(c("queue_id", "is_empty", Value::Null)), vec!["h", "g", "f", "d"]),
        (one(c("queue_id", "is_not_empty", Value::Null)), vec!["e", "c", "b", "a"]),
        (one(c("status", "equals", json!("disposed"))), vec!["g", "d"]),
        // Tags and bodies: any of the interaction's.
        (one(c("tag", "equals", json!("late"))), vec!["g"]),
        (one(c("tag", "not_equals", json!("vip"))), vec!["h", "f", "e", "d", "c"]),
        (one(c("tag", "starts_with", json!("LA"))), vec!["g"]),
        (one(c("tag", "is_empty", Value::Null)), vec!["h", "f", "e", "c"]),
        (one(c("body", "contains", json!("refund"))), vec!["c", "a"]),
        (one(c("body", "equals", json!("hello there"))), vec!["b"]),
        (one(c("body", "is_empty", Value::Null)), vec!["h", "g", "f", "e", "d"]),
        // LIKE wildcards in the value are literal.
        (one(c("body", "contains", json!("50%"))), vec!["a"]),
        (one(c("body", "contains", json!("off_"))), vec!["a"]),
        (one(c("body", "contains", json!("%"))), vec!["a"]),
        // Times.
        (one(c("opened_at", "greater_than", json!(at(50)))), vec!["h", "g"]),
        (one(c("opened_at", "less_than", json!(at(10)))), vec!["a"]),
        (one(c("opened_at", "equals", json!(at(40)))), vec!["e"]),
        (one(c("closed_at", "not_equals", json!(at(30)))), vec!["h", "g", "f", "e", "d", "b", "a"]),
        (one(c("closed_at", "is_empty", Value::Null)), vec!["f", "e", "b", "a"]),
        (one(c("closed_at", "is_not_empty", Value::Null)), vec!["h", "g", "d", "c"]),
        // Numbers (JSON numbers or numeric strings).
        (one(c("message_count", "greater_than", json!(1))), vec!["b", "a"]),
        (one(c("unread_count", "equals", json!("2"))), vec!["a"]),
        (one(c("message_count", "less_than", json!(1))), vec!["h", "g", "f", "e", "d"]),
        (one(c("message_count", "not_equals", json!(0))), vec!["c", "b", "a"]),
        // all / any.
        (
            json!({"match": "all", "conditions": [c("account_id", "equals", json!("acc-2")), c("tag", "equals", json!("new"))]}),
            vec!["g", "d"],
        ),
        (
            json!({"conditions": [c("account_id", "equals", json!("acc-2")), c("tag", "equals", json!("new"))]}),
            vec!["g", "d"],
        ),
        (
            json!({"match": "any", "conditions": [c("account_id", "equals", json!("acc-2")), c("tag", "equals", json!("new"))]}),
            vec!["g", "d", "c", "a"],
        ),
        // A disabled condition is ignored, in both modes.
        (
            json!({"match": "all", "conditions": [c("status", "equals", json!("closed")),
                {"field": "account_id", "operator": "equals", "value": "acc-1", "enabled": false}]}),
            vec!["h", "c"],
        ),
        (
            json!({"match": "any", "conditions": [c("status", "equals", json!("closed")),
                {"field": "account_id", "operator": "equals", "value": "acc-1", "enabled": false}]}),
            vec!["h", "c"],
        ),
        // No enabled condition: everything.
        (
            json!({"match": "any", "conditions": [{"field": "status", "operator": "equals", "value": "x", "enabled": false}]}),
            vec!["h", "g", "f", "e", "d", "c", "b", "a"],
        ),
        (json!({}), vec!["h", "g", "f", "e", "d", "c", "b", "a"]),
        // Conditions and full text together.
        (json!({"text": "refund", "conditions": [c("account_id", "equals", json!("acc-2"))]}), vec!["c"]),
    ];
    for (body, expected) in cases {
        assert_eq!(search(&app, &admin, body.clone()).await, expected, "{body}");
    }
    // The search ignores the list's simple filters: they are not part of its body.
    let r = app.post(&admin, "/api/interactions/search", json!({"status": "closed"})).await;
    assert_eq!(error_of(r).await.1, "invalid_request");
}

#[actix_web::test]
async fn every_operator_all_any_and_disabled_conditions_on_sqlite() {
    every_operator_all_any_and_disabled_conditions(Backend::Sqlite).await;
}

#[actix_web::test]
async fn every_operator_all_any_and_disabled_conditions_on_postgres() {
    every_operator_all_any_and_disabled_conditions(Backend::Postgres).await;
}

async fn full_text_over_message_bodies(backend: Backend) {
    let app = spawn_app(backend).await;
    let s = app.setup(30).await;
    accept_meta_sends(&app).await;
    // One message through the real pipeline: the projection's insert reaches the index.
    assert_eq!(
        app.webhook(
            &s.account_id,
            &meta_text("wamid.fts1", "15551234567", "Jane", "Where is my PARCEL, señor?")
        )
        .await
        .status(),
        200
    );
    app.eventually("/api/interactions", |v| v[0]["message_count"] == 1).await;
    let mut rows = vec![seed("x", "acc-1", 0), seed("y", "acc-1", 10), seed("z", "acc-1", 20)];
    rows[0].bodies = vec!["The refund was approved", "thanks OR not"];
    rows[1].bodies = vec!["refund", "approved later"];
    rows[2].bodies = vec!["price: 50% off * \"quoted\" NEAR(a b)"];
    insert(&app, &rows).await;
    let admin = app.admin_token.clone();
    let text = |t: &str| json!({"text": t});
    let jane = |v: Vec<String>| {
        v.into_iter().map(|n| if n == "Jane" { "jane".to_owned() } else { n }).collect::<Vec<_>>()
    };
    let cases: Vec<(&str, Vec<&str>)> = vec![
        ("parcel", vec!["jane"]),
        ("Parcel señor", vec!["jane"]),
        ("SEÑOR", vec!["jane"]),
        ("refund", vec!["y", "x"]),
        ("REFUND approved", vec!["x"]), // both words in ONE message: y has them in two
        ("refunds", vec![]),
        ("nothing here", vec![]),
        // Query syntax is only words: quotes, stars, OR, NEAR, %, SQL quotes.
        ("\"refund", vec!["y", "x"]),
        ("refund*", vec!["y", "x"]),
        ("refund OR parcel", vec![]),
        ("or", vec!["x"]),
        ("50%", vec!["z"]),
        ("near(a", vec!["z"]),
        ("quoted\"", vec!["z"]),
        ("'; DROP TABLE interaction_list; --", vec![]),
    ];
    for (t, expected) in cases {
        assert_eq!(jane(search(&app, &admin, text(t)).await), expected, "text {t:?}");
        let q: String = t.bytes().map(|b| format!("%{b:02X}")).collect();
        assert_eq!(jane(list(&app, &admin, &format!("q={q}")).await), expected, "q {t:?}");
    }
    // The index follows body updates (erasure redacts) and deletes (rebuild, deletion).
    sqlx::query("UPDATE interaction_messages SET body = 'redacted' WHERE body = 'refund'")
        .execute(&app.core.db.any)
        .await
        .expect("update");
    assert_eq!(search(&app, &admin, text("refund")).await, ["x"]);
    assert_eq!(search(&app, &admin, text("redacted")).await, ["y"]);
    sqlx::query("DELETE FROM interaction_messages WHERE body LIKE 'The refund%'")
        .execute(&app.core.db.any)
        .await
        .expect("delete");
    assert_eq!(search(&app, &admin, text("refund")).await, Vec::<String>::new());
    assert_eq!(search(&app, &admin, text("thanks")).await, ["x"]);
    // A rebuild of the read models empties and refills the table: the index follows (on
    // SQLite FTS5's own integrity check compares the index with the table).
    app.settle().await;
    let (place, _graph) = app.stop().await;
    let db = switchboard::db::connect(&place.url, 2).await.expect("db");
    let sealer = switchboard::crypto::Sealer::from_base64(&place.master_key).expect("key");
    let pii = std::sync::Arc::new(switchboard::pii::Pii::new(
        db.any.clone(),
        sealer,
        switchboard::clock::Clock::system(),
    ));
    let projector = switchboard_projections::Projector::new(
        db.any.clone(),
        db.backend,
        switchboard_projections::combined(),
        50,
    )
    .with_opener(pii);
    projector.rebuild().await.expect("rebuild");
    if backend == Backend::Sqlite {
        sqlx::query(
            "INSERT INTO interaction_messages_fts (interaction_messages_fts) VALUES ('integrity-check')",
        )
        .execute(&db.any)
        .await
        .expect("the FTS index matches its table");
    }
    use switchboard::services::search::{Criteria, PageRequest, Viewer, page};
    let found = |text: &str| Criteria { text: Some(text.into()), ..Criteria::default() };
    let request = PageRequest::new(None, None, None, None).expect("page");
    let parcel =
        page(&db.any, db.backend, &found("parcel"), Viewer::Everyone, &request).await.expect("search");
    assert_eq!(parcel.rows.len(), 1);
    let gone = page(&db.any, db.backend, &found("thanks"), Viewer::Everyone, &request).await.expect("search");
    assert!(gone.rows.is_empty());
}

#[actix_web::test]
async fn full_text_over_message_bodies_on_sqlite() {
    full_text_over_message_bodies(Backend::Sqlite).await;
}

#[actix_web::test]
async fn full_text_over_message_bodies_on_postgres() {
    full_text_over_message_bodies(Backend::Postgres).await;
}

async fn bad_input_gets_a_stable_code(backend: Backend) {
    let app = spawn_app(backend).await;
    insert(&app, &filter_rows()).await;
    let admin = app.admin_token.clone();
    let other_sort = app.get(&admin, "/api/interactions?limit=1&sort=closed_at").await;
    let closed_cursor = other_sort.headers()["X-Next-Cursor"].to_str().expect("ascii").to_owned();
    let list_cases: Vec<(String, &str, &str)> = vec![
        ("limit=0".into(), "invalid_request", "limit"),
        ("limit=201".into(), "invalid_request", "limit"),
        ("limit=ten".into(), "invalid_request", "limit"),
        ("status=open".into(), "invalid_request", "status"),
        ("state=finished".into(), "invalid_request", "state"),
        ("read=yes".into(), "invalid_request", "read"),
        ("from=yesterday".into(), "invalid_request", "from"),
        ("to=2026-13-01".into(), "invalid_request", "to"),
        (format!("from={}&to={}", enc(&at(5)), enc(&at(5))), "invalid_request", "before"),
        ("sort=name".into(), "invalid_request", "sort"),
        ("order=up".into(), "invalid_request", "order"),
        ("q=%22*%25".into(), "invalid_request", "words"),
        ("stauts=open".into(), "invalid_request", "stauts"),
        ("before=2026-01-01T00:00:00Z".into(), "invalid_request", "before"),
        ("status=queued&status=closed".into(), "invalid_request", "twice"),
        (format!("customer={}", "1".repeat(501)), "invalid_request", "customer"),
        ("cursor=garbage".into(), "invalid_cursor", "cursor"),
        (format!("cursor={closed_cursor}"), "invalid_cursor", "sort"),
        (format!("sort=closed_at&order=asc&cursor={closed_cursor}"), "invalid_cursor", "order"),
    ];
    for (query, code, needle) in list_cases {
        let (status, got, message) =
            error_of(app.get(&admin, &format!("/api/interactions?{query}")).await).await;
        assert_eq!((status, got.as_str()), (400, code), "?{query}: {message}");
        assert!(message.contains(needle), "?{query}: {message}");
    }
    let search_cases: Vec<(Value, &str, &str)> = vec![
        (
            json!({"conditions": [c("status", "equals", json!("x")), c("colour", "equals", json!("red"))]}),
            "invalid_search",
            "conditions[1]: unknown field",
        ),
        (
            json!({"conditions": [c("status", "like", json!("x"))]}),
            "invalid_search",
            "conditions[0]: unknown operator",
        ),
        (
            json!({"conditions": [c("status", "greater_than", json!("x"))]}),
            "invalid_search",
            "conditions[0]: operator",
        ),
        (json!({"conditions": [c("opened_at", "contains", json!("2026"))]}), "invalid_search", "time field"),
        (
            json!({"conditions": [c("opened_at", "greater_than", json!("last week"))]}),
            "invalid_search",
            "RFC 3339",
        ),
        (
            json!({"conditions": [c("message_count", "greater_than", json!("many"))]}),
            "invalid_search",
            "whole number",
        ),
        (json!({"conditions": [c("customer", "equals", json!(["a"]))]}), "invalid_search", "string"),
        (
            json!({"conditions": [c("message_count", "is_empty", Value::Null)]}),
            "invalid_search",
            "never empty",
        ),
        (json!({"match": "some"}), "invalid_search", "match"),
        (json!({"text": "*\"%"}), "invalid_search", "words"),
        (json!({"text": "x".repeat(501)}), "invalid_search", "longer"),
        (json!({"limit": 0}), "invalid_search", "limit"),
        (json!({"sort": "name"}), "invalid_search", "sort"),
        (json!({"cursor": "garbage"}), "invalid_cursor", "cursor"),
        (
            json!({"conditions": [{"field": "status", "operator": "equals", "value": "x", "colour": 1}]}),
            "invalid_request",
            "colour",
        ),
        (json!({"account_id": "acc-1"}), "invalid_request", "account_id"),
        (json!({"conditions": "all"}), "invalid_request", ""),
    ];
    for (body, code, needle) in search_cases {
        let (status, got, message) =
            error_of(app.post(&admin, "/api/interactions/search", body.clone()).await).await;
        assert_eq!((status, got.as_str()), (400, code), "{body}: {message}");
        assert!(message.contains(needle), "{body}: {message}");
    }
    // Unauthenticated.
    assert_eq!(app.client.get(app.url("/api/interactions")).send().await.expect("get").status(), 401);
    assert_eq!(
        app.client
            .post(app.url("/api/interactions/search"))
            .json(&json!({}))
            .send()
            .await
            .expect("post")
            .status(),
        401
    );
    // Both endpoints are described.
    let doc: Value =
        app.client.get(app.url("/openapi.json")).send().await.expect("get").json().await.expect("json");
    assert!(doc["paths"]["/api/interactions"]["get"].is_object());
    assert!(doc["paths"]["/api/interactions/search"]["post"].is_object());
}

#[actix_web::test]
async fn bad_input_gets_a_stable_code_on_sqlite() {
    bad_input_gets_a_stable_code(Backend::Sqlite).await;
}

#[actix_web::test]
async fn bad_input_gets_a_stable_code_on_postgres() {
    bad_input_gets_a_stable_code(Backend::Postgres).await;
}

async fn agents_never_see_another_accounts_interactions(backend: Backend) {
    let app = spawn_app(backend).await;
    let mine = app.create_account().await;
    let theirs = app.create_account().await;
    let (agent_id, agent) = app.create_agent("Ann").await;
    let r = app
        .post(&app.admin_token, &format!("/api/accounts/{mine}/agents"), json!({"agent_id": agent_id}))
        .await;
    assert_eq!(r.status(), 204);
    app.settle().await;
    let mut rows = Vec::new();
    for (n, (name, account)) in
        [("m1", &mine), ("t1", &theirs), ("m2", &mine), ("t2", &theirs)].into_iter().enumerate()
    {
        let mut r = seed(name, account, n as i64);
        r.bodies = vec!["refund please"];
        r.tags = vec!["vip"];
        rows.push(r);
    }
    insert(&app, &rows).await;
    // The admin sees all four; the agent only their account's, by every route.
    assert_eq!(list(&app, &app.admin_token, "").await, ["t2", "m2", "t1", "m1"]);
    let members: Vec<(String, String)> = sqlx::query_as("SELECT account_id, agent_id FROM account_members")
        .fetch_all(&app.core.db.any)
        .await
        .expect("members");
    assert_eq!(
        list(&app, &agent, "").await,
        ["m2", "m1"],
        "members {members:?}, mine {mine}, agent {agent_id}"
    );
    assert_eq!(list(&app, &agent, &format!("account_id={theirs}")).await, Vec::<String>::new());
    assert_eq!(list(&app, &agent, "q=refund").await, ["m2", "m1"]);
    assert_eq!(list(&app, &agent, "tag=vip&state=open").await, ["m2", "m1"]);
    assert_eq!(search(&app, &agent, json!({})).await, ["m2", "m1"]);
    assert_eq!(search(&app, &agent, json!({"text": "refund"})).await, ["m2", "m1"]);
    assert_eq!(
        search(&app, &agent, json!({"conditions": [c("account_id", "equals", json!(theirs))]})).await,
        Vec::<String>::new()
    );
    assert_eq!(
        search(
            &app,
            &agent,
            json!({"match": "any", "conditions": [c("account_id", "equals", json!(theirs)),
            c("body", "contains", json!("refund"))]})
        )
        .await,
        ["m2", "m1"]
    );
    // Paging never leaks either: one row per page, only theirs... only mine.
    let r = app.get(&agent, "/api/interactions?limit=1").await;
    let next = r.headers()["X-Next-Cursor"].to_str().expect("ascii").to_owned();
    assert_eq!(names(&r.json().await.expect("json")), ["m2"]);
    assert_eq!(list(&app, &agent, &format!("limit=1&cursor={next}")).await, ["m1"]);
    // Removed from the account: nothing, at once (the aggregate is checked, not only the
    // read model).
    let r = app.delete(&app.admin_token, &format!("/api/accounts/{mine}/agents/{agent_id}")).await;
    assert!(r.status().is_success(), "{}", r.status());
    assert_eq!(list(&app, &agent, "").await, Vec::<String>::new());
    assert_eq!(search(&app, &agent, json!({"text": "refund"})).await, Vec::<String>::new());
}

#[actix_web::test]
async fn agents_never_see_another_accounts_interactions_on_sqlite() {
    agents_never_see_another_accounts_interactions(Backend::Sqlite).await;
}

#[actix_web::test]
async fn agents_never_see_another_accounts_interactions_on_postgres() {
    agents_never_see_another_accounts_interactions(Backend::Postgres).await;
}
