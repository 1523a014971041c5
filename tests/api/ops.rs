//! Operations: health, metrics, the OpenAPI description and the offline docs page; and the
//! README's commands: the binary serves with no configuration at all, and prints an admin
//! token non-interactively.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::helpers::*;

#[actix_web::test]
async fn health_metrics_openapi_and_offline_docs_are_served() {
    let app = spawn_app(Backend::Sqlite).await;
    let health = app.client.get(app.url("/healthz")).send().await.expect("get");
    assert_eq!(health.status(), 200);

    let spec: serde_json::Value =
        app.client.get(app.url("/openapi.json")).send().await.expect("get").json().await.expect("json");
    assert!(spec["openapi"].as_str().is_some_and(|v| v.starts_with("3.1")));
    for path in [
        "/api/accounts",
        "/webhooks/whatsapp/{account_id}",
        "/api/interactions/{interaction_id}/events",
        "/ws",
    ] {
        assert!(spec["paths"][path].is_object(), "{path} is documented");
    }
    assert!(spec["components"]["securitySchemes"]["bearer"].is_object());

    let docs = app.client.get(app.url("/docs/")).send().await.expect("get");
    assert_eq!(docs.status(), 200);
    let page = docs.text().await.expect("text");
    assert!(!page.contains("https://"), "the docs page loads nothing from the internet");
    let bundle = app.client.get(app.url("/docs/swagger-ui-bundle.js")).send().await.expect("get");
    assert_eq!(bundle.status(), 200);

    // A request shows up in the metrics under its route pattern, not its raw path.
    let _ = app.webhook(&uuid::Uuid::now_v7().to_string(), b"{}").await;
    let metrics = app.client.get(app.url("/metrics")).send().await.expect("get").text().await.expect("text");
    assert!(metrics.contains("switchboard_http_requests_total"));
    assert!(metrics.contains("route=\"/webhooks/whatsapp/{account_id}\""));
    assert!(
        metrics.contains("switchboard_webhooks_total{outcome=\"unknown_account\",provider=\"unknown\"} 1")
    );
    assert!(metrics.contains("switchboard_live_actors"));
    app.stop().await;
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

#[actix_web::test]
async fn the_binary_serves_on_embedded_sqlite_with_no_configuration() {
    let (dir, _cleanup) = scratch("sb_bin");
    // The first admin token, non-interactively.
    let token = admin_token(&dir);
    assert!(token.starts_with("sb_"));

    // `serve` with defaults except the port (8080 may be taken on a shared machine); it
    // answers /healthz with 200 (`Server::start` waits for that).
    let server = Server::start(&dir, &[]).await;
    // The token printed earlier works against the served database.
    let authorised = server
        .client
        .get(server.url("/api/queues/status"))
        .bearer_auth(&token)
        .send()
        .await
        .map(|r| r.status());
    server.kill_9();
    assert_eq!(authorised.ok().map(|s| s.as_u16()), Some(200));
    assert!(dir.join("data/switchboard.db").exists());
    assert!(dir.join("data/master.key").exists());
}

/// A scratch directory for a spawned binary, removed when the guard drops.
fn scratch(prefix: &str) -> (std::path::PathBuf, TempDir) {
    let dir = std::env::temp_dir().join(format!("{prefix}_{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("dir");
    (dir.clone(), TempDir(dir))
}

/// An admin token, printed by the binary's `create-token` in `dir`.
fn admin_token(dir: &std::path::Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("create-token")
        .current_dir(dir)
        .env_clear()
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf8").trim().to_owned()
}

/// The real binary, serving on a free loopback port.
struct Server {
    child: std::process::Child,
    port: u16,
    client: reqwest::Client,
}

impl Server {
    /// Started with only these environment variables, and healthy.
    async fn start(dir: &std::path::Path, env: &[(&str, &str)]) -> Self {
        let port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
            .current_dir(dir)
            .env_clear()
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawns");
        let server = Self { child, port, client: reqwest::Client::new() };
        for _ in 0..200 {
            if server.client.get(server.url("/healthz")).send().await.is_ok_and(|r| r.status() == 200) {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the server never became healthy");
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: serde_json::Value,
    ) -> reqwest::Response {
        self.client
            .request(method, self.url(path))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .expect("request")
    }

    async fn post(&self, path: &str, token: &str, body: serde_json::Value) -> reqwest::Response {
        self.send(reqwest::Method::POST, path, token, body).await
    }

    async fn get_json(&self, path: &str, token: &str) -> serde_json::Value {
        let r = self.client.get(self.url(path)).bearer_auth(token).send().await.expect("get");
        r.json().await.expect("json")
    }

    /// A Meta account whose Graph API is `graph`; its id.
    async fn create_meta_account(&self, token: &str, graph: &str) -> String {
        let body = serde_json::json!({"name": "Support", "key": "SUP", "provider": {
            "type": "meta", "business_account_id": "1", "app_id": "1", "phone_number_id": "100000000000002",
            "access_token": ACCESS_TOKEN, "app_secret": APP_SECRET, "verify_token": VERIFY_TOKEN,
            "api_base_url": graph}});
        let account: serde_json::Value =
            self.post("/api/accounts", token, body).await.json().await.expect("json");
        account["account_id"].as_str().expect("id").to_owned()
    }

    /// `meta_inbound_text.json`, signed, to the account's webhook; the answer's status.
    async fn customer_writes(&self, account_id: &str) -> u16 {
        let body = fixture("meta_inbound_text.json");
        let signature = switchboard::providers::meta::sign(APP_SECRET.as_bytes(), &body);
        let ack = self
            .client
            .post(self.url(&format!("/webhooks/whatsapp/{account_id}")))
            .header("Content-Type", "application/json")
            .header("X-Hub-Signature-256", signature)
            .body(body)
            .send()
            .await
            .expect("webhook");
        ack.status().as_u16()
    }

    /// SIGKILL: no graceful shutdown, nothing flushed beyond what was committed.
    fn kill_9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[actix_web::test]
async fn a_server_killed_with_sigkill_loses_no_committed_message_and_no_pending_timer() {
    use serde_json::{Value, json};
    let (dir, _cleanup) = scratch("sb_kill");
    let token = admin_token(&dir);
    let graph = wiremock::MockServer::start().await;

    let server = Server::start(&dir, &[]).await;
    let account_id = server.create_meta_account(&token, &graph.uri()).await;
    // A one-second offer timeout: the timer is due soon after the restart.
    let queue: Value = server
        .post("/api/queues", &token, json!({"name": "Q", "offer_timeout_secs": 1}))
        .await
        .json()
        .await
        .expect("json");
    let queue_id = queue["id"].as_str().expect("id").to_owned();
    let agent: Value =
        server.post("/api/agents", &token, json!({"name": "Sam"})).await.json().await.expect("json");
    let (agent_id, agent_token) =
        (agent["agent_id"].as_str().expect("id"), agent["token"].as_str().expect("token"));
    for (path, body) in [
        (format!("/api/accounts/{account_id}/agents"), json!({"agent_id": agent_id})),
        (format!("/api/queues/{queue_id}/agents"), json!({"agent_id": agent_id})),
    ] {
        assert_eq!(server.post(&path, &token, body).await.status(), 204);
    }
    let routing = format!("/api/accounts/{account_id}/routing");
    let r = server.send(reqwest::Method::PUT, &routing, &token, json!({"queue_id": queue_id})).await;
    assert_eq!(r.status(), 204);
    for path in ["/api/me/login", "/api/me/ready"] {
        assert_eq!(server.post(path, agent_token, json!({})).await.status(), 204);
    }

    // The message is acknowledged (so it is committed), then the server dies hard.
    assert_eq!(server.customer_writes(&account_id).await, 200);
    server.kill_9();

    // After the restart the message is there, and the offer's timer fires exactly once.
    let server = Server::start(&dir, &[]).await;
    let mut timed_out = Value::Null;
    for _ in 0..200 {
        let board = server.get_json("/api/queues/status", &token).await;
        if board[0]["timed_out_total"] == 1 {
            timed_out = board;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(timed_out[0]["timed_out_total"], 1, "the pending offer timed out after the restart");
    let list = server.get_json("/api/interactions", &token).await;
    assert_eq!(list.as_array().map(Vec::len), Some(1));
    assert_eq!(list[0]["message_count"], 1);
    assert_eq!(list[0]["customer"], "+15551234567");
    server.kill_9();
}

/// A stopped server's SQLite log, read only.
async fn open_log(dir: &std::path::Path) -> sqlx::SqliteConnection {
    use sqlx::ConnectOptions;
    sqlx::sqlite::SqliteConnectOptions::new()
        .filename(dir.join("data/switchboard.db"))
        .read_only(true)
        .connect()
        .await
        .expect("opens")
}

/// A stopped server's log, one `type (caused_by)` line per event, for failure messages.
async fn log_of(dir: &std::path::Path) -> String {
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT event_type, metadata FROM events ORDER BY rowid")
            .fetch_all(&mut open_log(dir).await)
            .await
            .expect("log");
    rows.into_iter().map(|(t, m)| format!("{t} {m}")).collect::<Vec<_>>().join("\n")
}

/// Counts the events of each type in a stopped server's SQLite log.
async fn count_in_log(dir: &std::path::Path, types: &[&str]) -> Vec<i64> {
    let mut conn = open_log(dir).await;
    let mut counts = Vec::new();
    for t in types {
        let row: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM events WHERE event_type = ?")
            .bind(*t)
            .fetch_one(&mut conn)
            .await
            .expect("count");
        counts.push(row.0);
    }
    counts
}

/// Every kind of routing timer survives SIGKILL: an offer's deadline, a plan step's timeout
/// and a dropped websocket's grace period are pending when the server dies; all are overdue
/// when it restarts, and each takes effect exactly once (the offer times out, the plan moves
/// on to its `close` step, the agent becomes unreachable).
#[actix_web::test]
async fn every_routing_timer_pending_at_sigkill_fires_exactly_once_after_restart() {
    use serde_json::{Value, json};
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let (dir, _cleanup) = scratch("sb_timers");
    let token = admin_token(&dir);
    let graph = wiremock::MockServer::start().await;
    // The grace period is a real setting; a few seconds keep the test short while leaving a
    // loaded machine room to set everything up before the first deadline.
    let env = [("SWITCHBOARD_WS_GRACE_SECS", "5")];
    let server = Server::start(&dir, &env).await;
    let account_id = server.create_meta_account(&token, &graph.uri()).await;
    let queue: Value = server
        .post("/api/queues", &token, json!({"name": "Q", "offer_timeout_secs": 5}))
        .await
        .json()
        .await
        .expect("json");
    let queue_id = queue["id"].as_str().expect("id").to_owned();
    let mut agents = Vec::new();
    for name in ["Sam", "Ana"] {
        let agent: Value =
            server.post("/api/agents", &token, json!({"name": name})).await.json().await.expect("json");
        let id = agent["agent_id"].as_str().expect("id").to_owned();
        let agent_token = agent["token"].as_str().expect("token").to_owned();
        let r =
            server.post(&format!("/api/accounts/{account_id}/agents"), &token, json!({"agent_id": id})).await;
        assert_eq!(r.status(), 204);
        for path in ["/api/me/login", "/api/me/ready"] {
            assert_eq!(server.post(path, &agent_token, json!({})).await.status(), 204);
        }
        agents.push((id, agent_token));
    }
    let sam = agents[0].0.clone();
    let ana_token = agents[1].1.clone();
    // Only Sam is in the queue; Ana is the one whose websocket drops.
    let r = server.post(&format!("/api/queues/{queue_id}/agents"), &token, json!({"agent_id": sam})).await;
    assert_eq!(r.status(), 204);
    let plan = json!({"time_zone": "UTC", "steps": [
        {"action": {"type": "queue", "queue_id": queue_id, "timeout_secs": 6}},
        {"action": {"type": "close", "disposition": "Nobody answered"}}]});
    let path = format!("/api/accounts/{account_id}/routing-plan");
    assert_eq!(server.send(reqwest::Method::PUT, &path, &token, plan).await.status(), 204);

    let mut request = format!("ws://127.0.0.1:{}/ws", server.port).into_client_request().expect("request");
    request.headers_mut().insert("Authorization", format!("Bearer {ana_token}").parse().expect("header"));
    let (ws, _) = tokio_tungstenite::connect_async(request).await.expect("websocket connects");

    assert_eq!(server.customer_writes(&account_id).await, 200);
    // Sam holds the offer (its five-second deadline and the step's six seconds are pending).
    // Polls the agents' board (bounded) until one agent row matches.
    let board_shows = |check: fn(&Value) -> bool| {
        let (server, token) = (&server, &token);
        async move {
            for _ in 0..200 {
                let board = server.get_json("/api/agents/status", token).await;
                if board.as_array().into_iter().flatten().any(check) {
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            false
        }
    };
    assert!(board_shows(|a| a["name"] == "Sam" && a["offers"] == 1).await, "Sam was offered the interaction");
    // Ana's websocket drops: her grace timer is pending too. Then the server dies hard.
    drop(ws);
    assert!(
        board_shows(|a| a["name"] == "Ana" && a["reconnect_by"].is_string()).await,
        "the server recorded Ana's disconnect and its grace deadline"
    );
    server.kill_9();
    let before = count_in_log(&dir, &["OfferTimedOut", "RoutingTargetExpired", "AgentUnreachable"]).await;
    assert_eq!(before, vec![0, 0, 0], "nothing fired before the kill");

    // Down past every deadline: all three are overdue when the server comes back.
    tokio::time::sleep(Duration::from_secs(7)).await;
    let server = Server::start(&dir, &env).await;
    let mut closed = false;
    let mut last = Value::Null;
    for _ in 0..400 {
        let list = server.get_json("/api/interactions", &token).await;
        let agents = server.get_json("/api/agents/status", &token).await;
        let ana_unreachable =
            agents.as_array().into_iter().flatten().any(|a| a["name"] == "Ana" && a["reachable"] == false);
        last = json!({"list": list, "agents": agents});
        if list[0]["closed_at"].is_string() && ana_unreachable {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(closed, "the plan's close step ran and Ana became unreachable after the restart: {last:#}");
    // Give a duplicate firing every chance to show, then count in the log itself.
    tokio::time::sleep(Duration::from_millis(500)).await;
    server.kill_9();
    let after = count_in_log(
        &dir,
        &["OfferTimedOut", "RoutingTargetExpired", "AgentUnreachable", "InteractionClosedBySystem"],
    )
    .await;
    assert_eq!(after, vec![1, 1, 1, 1], "each timer took effect exactly once: {}", log_of(&dir).await);
}
