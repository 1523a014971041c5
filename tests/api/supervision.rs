//! Supervision through the HTTP API and websockets, on SQLite and PostgreSQL: internal notes
//! (who may write and read them, their `note` frames, never sent to the customer), spying on a
//! live interaction from `/ws/supervisor` (the thread so far, then every new frame, without
//! an event recorded or a frame sent to the agent), and the realtime figures (a scripted
//! scenario with the server's clock, realtime equal to the historical query, pushed on
//! change, agents refused).

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::helpers::*;

type Stream = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A websocket that can also send, and see every frame.
struct Socket(Stream);

/// Opens `path` with `token`; the HTTP status when the upgrade is refused.
async fn socket(app: &TestApp, path: &str, token: &str) -> Result<Socket, u16> {
    let mut request = format!("ws://127.0.0.1:{}{path}", app.port).into_client_request().expect("request");
    request.headers_mut().insert("Authorization", format!("Bearer {token}").parse().expect("header"));
    match tokio_tungstenite::connect_async(request).await {
        Ok((stream, _)) => Ok(Socket(stream)),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => Err(response.status().as_u16()),
        Err(e) => panic!("websocket: {e}"),
    }
}

impl Socket {
    async fn send(&mut self, frame: Value) {
        self.0.send(Message::Text(frame.to_string().into())).await.expect("send");
    }

    async fn send_text(&mut self, text: &str) {
        self.0.send(Message::Text(text.to_owned().into())).await.expect("send");
    }

    /// The next JSON frame within `within`, if any.
    async fn next(&mut self, within: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let Ok(frame) = tokio::time::timeout_at(deadline, self.0.next()).await else { return None };
            match frame {
                Some(Ok(Message::Text(text))) => {
                    return Some(serde_json::from_str(&text).expect("json frame"));
                }
                Some(Ok(_)) => continue,
                other => panic!("websocket closed: {other:?}"),
            }
        }
    }

    /// The next frame of type `kind` satisfying `check` (others skipped), within 10 s.
    async fn next_where(&mut self, kind: &str, check: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let frame =
                self.next(left).await.unwrap_or_else(|| panic!("no matching `{kind}` frame within 10 s"));
            if frame["type"] == kind && check(&frame) {
                return frame;
            }
        }
    }

    async fn next_of(&mut self, kind: &str) -> Value {
        self.next_where(kind, |_| true).await
    }

    /// Frames of other types than `realtime` arriving within `within`.
    async fn others_within(&mut self, within: Duration) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + within;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await {
                Some(frame) if frame["type"] != "realtime" => seen.push(frame),
                Some(_) => {}
                None => return seen,
            }
        }
    }
}

async fn token(app: &TestApp, role: &str, label: &str) -> String {
    let r = app.post(&app.admin_token, "/api/tokens", json!({"role": role, "label": label})).await;
    assert_eq!(r.status(), 201);
    r.json::<Value>().await.expect("json")["token"].as_str().expect("token").to_owned()
}

/// A customer writes; the (ready, connected) agent accepts. Returns the interaction id.
async fn assigned_conversation(app: &TestApp, s: &Setup, ws: &mut Ws, wamid: &str) -> String {
    let r = app.webhook(&s.account_id, &meta_text(wamid, "15551234567", "Jane", "my order is late")).await;
    assert_eq!(r.status(), 200);
    let offer = ws.next_of("offer").await;
    let id = offer["interaction_id"].as_str().expect("id").to_owned();
    let r = app.post(&s.agent_token, &format!("/api/interactions/{id}/accept"), json!({})).await;
    assert_eq!(r.status(), 204);
    assert_eq!(ws.next_of("interaction").await["status"], "assigned");
    id
}

async fn note(app: &TestApp, token: &str, id: &str, body: Value) -> reqwest::Response {
    app.post(token, &format!("/api/interactions/{id}/notes"), body).await
}

async fn notes_flow(backend: Backend) {
    let app = spawn_app(backend).await;
    accept_meta_sends(&app).await;
    let s = app.setup(30).await;
    let supervisor = token(&app, "supervisor", "Sue").await;
    app.agent_ready(&s.agent_token).await;
    let mut ws = app.connect_ws(&s.agent_token).await;
    let id = assigned_conversation(&app, &s, &mut ws, "wamid.N1").await;
    // Another agent of the account (not the owner), and an agent of no account.
    let (colleague, colleague_token) = app.create_agent("Cleo").await;
    app.enrol(&s.account_id, &s.queue_id, &colleague).await;
    let (_, outsider_token) = app.create_agent("Otto").await;

    // The owner writes one: 201, and it reaches their socket as a `note` frame.
    let r = note(&app, &s.agent_token, &id, json!({"text": "customer is angry, SECRET-1"})).await;
    assert_eq!(r.status(), 201);
    let mine: Value = r.json().await.expect("json");
    assert_eq!(
        (&mine["author_kind"], &mine["author_agent_id"], &mine["text"]),
        (&json!("agent"), &json!(s.agent_id), &json!("customer is angry, SECRET-1"))
    );
    let frame = ws.next_of("note").await;
    assert_eq!((&frame["interaction_id"], &frame["note_id"]), (&json!(id), &mine["note_id"]));
    assert_eq!(frame["author"], json!({"kind": "agent", "agent_id": s.agent_id}));

    // A supervisor writes one, with their own id; the agent sees it live.
    let note_id = uuid::Uuid::now_v7().to_string();
    let r =
        note(&app, &supervisor, &id, json!({"text": "offer a refund SECRET-2", "note_id": note_id})).await;
    assert_eq!(r.status(), 201);
    let theirs: Value = r.json().await.expect("json");
    assert_eq!(
        (&theirs["note_id"], &theirs["author_kind"], &theirs["author_label"]),
        (&json!(note_id), &json!("supervisor"), &json!("Sue"))
    );
    let frame = ws.next_of("note").await;
    assert_eq!(
        (&frame["author"], &frame["text"]),
        (&json!({"kind": "supervisor", "label": "Sue"}), &json!("offer a refund SECRET-2"))
    );

    // Refusals: a colleague who does not own it, an outsider, bad text, bad ids.
    let (status, code, _) = error_of(note(&app, &colleague_token, &id, json!({"text": "x"})).await).await;
    assert_eq!((status, code.as_str()), (403, "not_assigned_to_agent"));
    let (status, code, _) = error_of(note(&app, &outsider_token, &id, json!({"text": "x"})).await).await;
    assert_eq!((status, code.as_str()), (404, "interaction_not_found"));
    let (status, code, _) =
        error_of(app.get(&outsider_token, &format!("/api/interactions/{id}/notes")).await).await;
    assert_eq!((status, code.as_str()), (404, "interaction_not_found"));
    for text in [String::new(), "a".repeat(4097)] {
        let (status, code, _) = error_of(note(&app, &supervisor, &id, json!({"text": text})).await).await;
        assert_eq!((status, code.as_str()), (422, "invalid_text"), "{} chars", text.len());
    }
    let (status, code, _) =
        error_of(note(&app, &supervisor, &id, json!({"text": "x", "note_id": "nope"})).await).await;
    assert_eq!((status, code.as_str()), (400, "invalid_request"));
    let (status, code, _) = error_of(note(&app, &supervisor, &id, json!({"txt": "x"})).await).await;
    assert_eq!((status, code.as_str()), (400, "invalid_request"));
    let unknown = uuid::Uuid::now_v7().to_string();
    for bad in [unknown.as_str(), "not-an-id"] {
        let (status, code, _) = error_of(note(&app, &supervisor, bad, json!({"text": "x"})).await).await;
        assert_eq!((status, code.as_str()), (404, "interaction_not_found"), "{bad}");
        let (status, code, _) =
            error_of(app.get(&supervisor, &format!("/api/interactions/{bad}/notes")).await).await;
        assert_eq!((status, code.as_str()), (404, "interaction_not_found"), "{bad}");
    }
    assert_eq!(app.count_events(Some("NoteAdded")).await, 2, "refusals record nothing");

    // Supervisors may still write once it is closed; the owner no longer owns it.
    let r = app.post(&s.agent_token, &format!("/api/interactions/{id}/close"), json!({})).await;
    assert_eq!(r.status(), 204);
    assert_eq!(note(&app, &supervisor, &id, json!({"text": "reviewed SECRET-3"})).await.status(), 201);

    // Both the owner and supervisors read them, oldest first.
    for reader in [&s.agent_token, &supervisor] {
        let notes = notes_eventually(&app, reader, &id, 3).await;
        let texts: Vec<&str> =
            notes.as_array().expect("array").iter().map(|n| n["text"].as_str().unwrap_or("")).collect();
        assert_eq!(texts, ["customer is angry, SECRET-1", "offer a refund SECRET-2", "reviewed SECRET-3"]);
    }

    // Never sent: no request to the provider and no message row carries a note's text.
    let sent = app.graph.received_requests().await.unwrap_or_default();
    assert!(sent.iter().all(|r| !String::from_utf8_lossy(&r.body).contains("SECRET")), "a note was sent");
    let (in_messages,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM interaction_messages WHERE body LIKE '%SECRET%'")
            .fetch_one(&app.core.db.any)
            .await
            .expect("count");
    assert_eq!(in_messages, 0);
    app.stop().await;
}

/// The interaction's notes once there are `n` (projections are asynchronous).
async fn notes_eventually(app: &TestApp, token: &str, id: &str, n: usize) -> Value {
    let mut last = Value::Null;
    for _ in 0..200 {
        last = app.get_json(token, &format!("/api/interactions/{id}/notes")).await;
        if last.as_array().is_some_and(|a| a.len() == n) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("never {n} notes: {last:#}");
}

#[actix_web::test]
async fn notes_are_written_by_owner_and_supervisors_seen_live_and_never_sent_sqlite() {
    notes_flow(Backend::Sqlite).await;
}

#[actix_web::test]
async fn notes_are_written_by_owner_and_supervisors_seen_live_and_never_sent_postgres() {
    notes_flow(Backend::Postgres).await;
}

async fn spy_flow(backend: Backend) {
    let app = spawn_app(backend).await;
    accept_meta_sends(&app).await;
    let s = app.setup(30).await;
    let supervisor = token(&app, "supervisor", "Sue").await;
    app.agent_ready(&s.agent_token).await;
    let mut ws = app.connect_ws(&s.agent_token).await;
    let id = assigned_conversation(&app, &s, &mut ws, "wamid.S1").await;
    let r = app
        .post(&s.agent_token, &format!("/api/interactions/{id}/messages"), json!({"text": "Looking into it"}))
        .await;
    assert_eq!(r.status(), 202);
    assert_eq!(ws.next_of("message_status").await["status"], "accepted");
    // The agent's own socket, frame by frame from here on.
    let mut agent = socket(&app, "/ws", &s.agent_token).await.expect("agent socket");
    // Its own connection is news to the agent (a presence frame): let it pass.
    app.settle().await;
    agent.others_within(Duration::from_millis(300)).await;

    // Agents may not open the supervisors' socket.
    assert_eq!(socket(&app, "/ws/supervisor", &s.agent_token).await.err(), Some(403));
    assert_eq!(socket(&app, "/ws/supervisor", "bogus").await.err(), Some(401));

    // Browsers pass the token in the query string.
    let url = format!("ws://127.0.0.1:{}/ws/supervisor?access_token={supervisor}", app.port);
    let (browser, _) = tokio_tungstenite::connect_async(url).await.expect("query-string token accepted");
    Socket(browser).next_of("realtime").await;
    let mut sup = socket(&app, "/ws/supervisor", &supervisor).await.expect("supervisor socket");
    let first = sup.next(Duration::from_secs(10)).await.expect("first frame");
    assert_eq!(first["type"], "realtime", "the snapshot comes first: {first}");
    app.settle().await;
    let events_before = app.count_events(None).await;

    // Spying shows the thread so far.
    sup.send(json!({"type": "spy", "interaction_id": id})).await;
    let started = sup.next_of("spy_started").await;
    assert_eq!((&started["interaction_id"], &started["account_id"]), (&json!(id), &json!(s.account_id)));
    let thread: Vec<(&str, &str)> = started["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| (m["direction"].as_str().unwrap_or(""), m["body"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(thread, [("in", "my order is late"), ("out", "Looking into it")]);
    assert_eq!(started["notes"], json!([]));

    // It records nothing and tells the agent nothing.
    app.settle().await;
    assert_eq!(app.count_events(None).await, events_before, "spying appended events");
    assert_eq!(agent.others_within(Duration::from_millis(400)).await, Vec::<Value>::new());

    // New traffic reaches both; the agent's first frame is the customer's message.
    let r = app.webhook(&s.account_id, &meta_text("wamid.S2", "15551234567", "Jane", "any news?")).await;
    assert_eq!(r.status(), 200);
    let live = sup.next_of("message").await;
    assert_eq!((&live["interaction_id"], &live["content"]["body"]), (&json!(id), &json!("any news?")));
    let seen = agent.next(Duration::from_secs(10)).await.expect("agent frame");
    assert_eq!((&seen["type"], &seen["content"]["body"]), (&json!("message"), &json!("any news?")));
    // The agent's reply and its delivery status; a supervisor's note.
    let r = app
        .post(&s.agent_token, &format!("/api/interactions/{id}/messages"), json!({"text": "Tomorrow"}))
        .await;
    assert_eq!(r.status(), 202);
    assert_eq!(sup.next_of("message").await["content"]["body"], "Tomorrow");
    assert_eq!(sup.next_of("message_status").await["status"], "accepted");
    assert_eq!(note(&app, &supervisor, &id, json!({"text": "good answer"})).await.status(), 201);
    assert_eq!(sup.next_of("note").await["text"], "good answer");
    assert_eq!(agent.next_where("note", |_| true).await["text"], "good answer", "the owner sees notes");

    // Bad requests answer an error frame and the socket stays usable.
    let unknown = uuid::Uuid::now_v7().to_string();
    for (request, code) in [
        (json!({"type": "spy", "interaction_id": unknown}).to_string(), "interaction_not_found"),
        (json!({"type": "spy", "interaction_id": "nope"}).to_string(), "interaction_not_found"),
        (json!({"type": "unspy", "interaction_id": unknown}).to_string(), "not_spying"),
        (json!({"type": "dance"}).to_string(), "invalid_request"),
        ("{not json".to_owned(), "invalid_request"),
    ] {
        sup.send_text(&request).await;
        let error = sup.next_of("error").await;
        assert_eq!(error["code"], code, "{request}");
        assert!(error["message"].is_string());
    }
    sup.send(json!({"type": "realtime"})).await;
    assert!(sup.next_of("realtime").await["as_of"].is_string());

    // Unspying stops the copies.
    sup.send(json!({"type": "unspy", "interaction_id": id})).await;
    assert_eq!(sup.next_of("spy_stopped").await["interaction_id"], json!(id));
    let r = app.webhook(&s.account_id, &meta_text("wamid.S3", "15551234567", "Jane", "hello?")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(agent.next_where("message", |_| true).await["content"]["body"], "hello?");
    assert_eq!(sup.others_within(Duration::from_millis(500)).await, Vec::<Value>::new());
    app.stop().await;
}

#[actix_web::test]
async fn a_supervisor_spies_on_a_live_interaction_without_changing_it_sqlite() {
    spy_flow(Backend::Sqlite).await;
}

#[actix_web::test]
async fn a_supervisor_spies_on_a_live_interaction_without_changing_it_postgres() {
    spy_flow(Backend::Postgres).await;
}

/// `at` of each event of the interaction with this type, in order (epoch ms).
async fn event_times(app: &TestApp, id: &str, event_type: &str) -> Vec<i64> {
    let events = app.get_json(&app.admin_token, &format!("/api/interactions/{id}/events")).await;
    events
        .as_array()
        .expect("array")
        .iter()
        .filter(|e| e["event_type"] == event_type)
        .map(|e| {
            let payload = &e["payload"];
            let at =
                payload.get("at").or_else(|| payload.as_object().and_then(|o| o.values().next()?.get("at")));
            let at = at.and_then(Value::as_str).unwrap_or_else(|| panic!("no `at` in {e}"));
            chrono::DateTime::parse_from_rfc3339(at).expect("time").timestamp_millis()
        })
        .collect()
}

fn encode(t: &str) -> String {
    t.replace('+', "%2B").replace(':', "%3A")
}

async fn realtime_flow(backend: Backend) {
    let app = spawn_app(backend).await;
    accept_meta_sends(&app).await;
    let s = app.setup(10).await;
    let supervisor = token(&app, "supervisor", "Sue").await;
    // The performance window: from an hour ago (not "today": the test may run at midnight).
    let since = (chrono::Utc::now() - chrono::Duration::hours(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let mut sup = socket(&app, "/ws/supervisor", &supervisor).await.expect("supervisor socket");
    let first = sup.next_of("realtime").await;
    assert_eq!((&first["active"]["open"], &first["performance"]), (&json!(0), &json!([])));

    app.agent_ready(&s.agent_token).await;
    let mut ws = app.connect_ws(&s.agent_token).await;
    let r = app.webhook(&s.account_id, &meta_text("wamid.R1", "15551234567", "Jane", "hi")).await;
    assert_eq!(r.status(), 200);
    let offer = ws.next_of("offer").await;
    let id = offer["interaction_id"].as_str().expect("id").to_owned();
    // Pushed as it changes: one open interaction, offered.
    sup.next_where("realtime", |f| f["active"]["by_status"]["offered"] == 1 && f["active"]["open"] == 1)
        .await;

    // The agent misses the offer; the interaction waits in the queue.
    app.core.clock.advance(Duration::from_secs(11));
    assert_eq!(ws.next_of("offer_closed").await["reason"], "timed_out");
    let now = sup
        .next_where("realtime", |f| {
            f["queues"][0]["waiting"] == 1 && f["performance"][0]["missed_offers"] == 1
        })
        .await;
    assert_eq!(now["queues"][0]["queue_id"], json!(s.queue_id));
    assert!(now["queues"][0]["oldest_waiting_since"].is_string());
    assert!(now["queues"][0]["longest_wait_secs"].as_i64().is_some());

    // A colleague comes: offered it, accepts, answers after 5 s, closes 20 s later.
    let (ana, ana_token) = app.create_agent("Ana").await;
    app.enrol(&s.account_id, &s.queue_id, &ana).await;
    // Socket first: the interaction is already waiting, so the offer follows "ready" at once
    // and would reach nobody if the socket opened after it.
    let mut ws = app.connect_ws(&ana_token).await;
    app.agent_ready(&ana_token).await;
    let again = ws.next_of("offer").await;
    assert_eq!(again["interaction_id"], json!(id));
    let r = app.post(&ana_token, &format!("/api/interactions/{id}/accept"), json!({})).await;
    assert_eq!(r.status(), 204);
    assert_eq!(ws.next_of("interaction").await["status"], "assigned");
    let busy = sup
        .next_where("realtime", |f| f["agents"].as_array().is_some_and(|a| a.iter().any(|x| x["load"] == 1)))
        .await;
    assert_eq!(busy["active"]["by_status"]["assigned"], 1);
    app.core.clock.advance(Duration::from_secs(5));
    let r = app.post(&ana_token, &format!("/api/interactions/{id}/messages"), json!({"text": "hello"})).await;
    assert_eq!(r.status(), 202);
    app.core.clock.advance(Duration::from_secs(20));
    assert_eq!(app.post(&ana_token, &format!("/api/interactions/{id}/close"), json!({})).await.status(), 204);
    app.settle().await;

    // The figures, checked against the events' own times.
    let assigned = event_times(&app, &id, "AgentAssigned").await[0];
    let answered = event_times(&app, &id, "AgentMessageSent").await[0];
    let closed = event_times(&app, &id, "InteractionClosed").await[0];
    let live = app.get_json(&supervisor, &format!("/api/realtime?since={}", encode(&since))).await;
    let sam = json!({
        "agent_id": s.agent_id, "handled": 0, "avg_handling_ms": null, "responded": 0,
        "avg_first_response_ms": null, "offers_accepted": 0, "offers_rejected": 0, "missed_offers": 1,
    });
    let ana_figures = json!({
        "agent_id": ana, "handled": 1, "avg_handling_ms": closed - assigned,
        "responded": 1, "avg_first_response_ms": answered - assigned,
        "offers_accepted": 1, "offers_rejected": 0, "missed_offers": 0,
    });
    let expected = if s.agent_id < ana { json!([sam, ana_figures]) } else { json!([ana_figures, sam]) };
    assert_eq!(live["performance"], expected);
    assert!(answered - assigned >= 5000 && closed - assigned >= 25000, "the clock moved: {live}");
    assert_eq!((&live["active"]["open"], &live["queues"][0]["waiting"]), (&json!(0), &json!(0)));
    assert!(live["agents"].as_array().expect("agents").iter().all(|a| a["load"] == 0), "{live}");

    // Realtime equals the historical query over the same window; an earlier window is empty.
    let as_of = live["as_of"].as_str().expect("as_of");
    let path = format!("/api/stats/agents?from={}&to={}", encode(&since), encode(as_of));
    assert_eq!(app.get_json(&supervisor, &path).await, live["performance"]);
    let before = chrono::DateTime::parse_from_rfc3339(&since).expect("since") + chrono::Duration::minutes(1);
    let path = format!("/api/stats/agents?from={}&to={}", encode(&since), encode(&before.to_rfc3339()));
    assert_eq!(app.get_json(&supervisor, &path).await, json!([]));
    // And it was pushed.
    sup.next_where("realtime", |f| f["performance"] == expected).await;

    // Refusals: agents, bad times, empty windows, unknown parameters.
    for path in ["/api/realtime", "/api/stats/agents"] {
        let (status, code, _) = error_of(app.get(&s.agent_token, path).await).await;
        assert_eq!((status, code.as_str()), (403, "forbidden"), "{path}");
    }
    let future = encode(&(chrono::Utc::now() + chrono::Duration::days(2)).to_rfc3339());
    for path in [
        "/api/realtime?since=yesterday".to_owned(),
        format!("/api/realtime?since={future}"),
        "/api/realtime?window=1".to_owned(),
        "/api/stats/agents?from=2026-13-01T00:00:00Z".to_owned(),
        "/api/stats/agents?to=soon".to_owned(),
        format!("/api/stats/agents?from={}&to={}", encode(as_of), encode(&since)),
        format!("/api/stats/agents?from={0}&to={0}", encode(&since)),
    ] {
        let (status, code, _) = error_of(app.get(&supervisor, &path).await).await;
        assert_eq!((status, code.as_str()), (400, "invalid_request"), "{path}");
    }
    app.stop().await;
}

#[actix_web::test]
async fn realtime_figures_follow_a_scripted_shift_and_equal_the_historical_ones_sqlite() {
    realtime_flow(Backend::Sqlite).await;
}

#[actix_web::test]
async fn realtime_figures_follow_a_scripted_shift_and_equal_the_historical_ones_postgres() {
    realtime_flow(Backend::Postgres).await;
}

#[actix_web::test]
async fn the_supervision_endpoints_are_in_the_openapi_description() {
    let app = spawn_app(Backend::Sqlite).await;
    let spec = app.get_json(&app.admin_token, "/openapi.json").await;
    for (path, method) in [
        ("/api/interactions/{interaction_id}/notes", "post"),
        ("/api/interactions/{interaction_id}/notes", "get"),
        ("/api/realtime", "get"),
        ("/api/stats/agents", "get"),
        ("/ws/supervisor", "get"),
    ] {
        assert!(spec["paths"][path][method].is_object(), "{method} {path} is documented");
    }
    app.stop().await;
}
