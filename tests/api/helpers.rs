//! The test harness: spawn a server on `127.0.0.1:0` against a fresh SQLite file or a fresh
//! PostgreSQL database, with a wiremock server standing in for Meta's Graph API, plus typed
//! helpers for the calls the tests make.

use std::path::PathBuf;
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Value, json};
use switchboard::clock::Clock;
use switchboard::config::Settings;
use switchboard::crypto::Sealer;
use switchboard::startup::Application;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use wiremock::MockServer;

pub const APP_SECRET: &str = "test_app_secret_0123456789abcdef";
pub const VERIFY_TOKEN: &str = "my-verify-token";
pub const ACCESS_TOKEN: &str = "EAAG-test-access-token";
pub const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

/// Which event store a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Where a test's data lives; kept so a second server can be started on the same data.
#[derive(Debug, Clone)]
pub struct DataPlace {
    pub url: String,
    pub master_key: String,
    _dir: Option<std::sync::Arc<TempDir>>,
}

#[derive(Debug)]
pub struct TempDir(pub PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The PostgreSQL server the tests create their databases on.
pub fn pg_base_url() -> String {
    std::env::var("SWITCHBOARD_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned())
}

pub async fn fresh_place(backend: Backend) -> DataPlace {
    let master_key = Sealer::generate_key();
    let name = format!("sb_test_{}", uuid::Uuid::new_v4().simple());
    match backend {
        Backend::Sqlite => {
            let dir = std::env::temp_dir().join(&name);
            std::fs::create_dir_all(&dir).expect("temp dir");
            let url = format!("sqlite://{}", dir.join("switchboard.db").display());
            DataPlace { url, master_key, _dir: Some(std::sync::Arc::new(TempDir(dir))) }
        }
        Backend::Postgres => {
            use sqlx::Connection;
            let base = pg_base_url();
            let mut conn = sqlx::PgConnection::connect(&format!("{base}/postgres"))
                .await
                .expect("PostgreSQL on 127.0.0.1:5432 (or SWITCHBOARD_TEST_PG_URL)");
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&mut conn)
                .await
                .expect("create database");
            DataPlace { url: format!("{base}/{name}"), master_key, _dir: None }
        }
    }
}

pub struct TestApp {
    pub address: String,
    pub port: u16,
    pub place: DataPlace,
    pub graph: MockServer,
    pub client: reqwest::Client,
    pub admin_token: String,
    pub handle: actix_web::dev::ServerHandle,
    pub core: switchboard::core::Core,
    join: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    /// Accounts made by `create_account` (keys are unique: `SUP`, then `SUP1`, `SUP2`…).
    accounts_made: std::sync::atomic::AtomicUsize,
}

pub fn settings(place: &DataPlace) -> Settings {
    Settings {
        bind: "127.0.0.1:0".into(),
        public_url: None,
        database_url: place.url.clone(),
        master_key: place.master_key.clone(),
        db_connections: 8,
        http_workers: 2,
        actor_threads: 2,
        actor_idle: Duration::from_secs(60),
        poll_interval: Duration::from_millis(50),
        shutdown_timeout_secs: 1,
        media_dir: std::env::temp_dir().join(format!("sb-media-{}", uuid::Uuid::new_v4())),
        max_media_bytes: 1024 * 1024,
        ws_grace: Duration::from_secs(30),
    }
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    let place = fresh_place(backend).await;
    spawn_on(place, MockServer::start().await, settings_tweak_none).await
}

pub fn settings_tweak_none(_: &mut Settings) {}

pub async fn spawn_on(place: DataPlace, graph: MockServer, tweak: fn(&mut Settings)) -> TestApp {
    switchboard::telemetry::init_for_tests();
    let mut s = settings(&place);
    tweak(&mut s);
    let app = Application::build(s, Clock::system()).await.expect("app builds");
    let port = app.port();
    let handle = app.handle();
    let core = app.core().clone();
    let admin_token = switchboard::auth::issue(&core.db.any, switchboard::auth::Role::Admin, None, "test", 0)
        .await
        .expect("admin token");
    let join = tokio::spawn(app.run_until_stopped());
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        port,
        place,
        graph,
        client: reqwest::Client::new(),
        admin_token,
        handle,
        core,
        join: Some(join),
        accounts_made: std::sync::atomic::AtomicUsize::new(0),
    }
}

pub fn fixture(name: &str) -> Vec<u8> {
    let mut bytes = std::fs::read(format!("{FIXTURES}/{name}")).expect("fixture exists");
    // The signed bytes are the file minus its single trailing newline.
    if bytes.last() == Some(&b'\n') {
        bytes.pop();
    }
    bytes
}

/// An account, a queue, an agent (member of both) with routing set: everything a
/// conversation needs.
pub struct Setup {
    pub account_id: String,
    pub queue_id: String,
    pub agent_id: String,
    pub agent_token: String,
}

impl TestApp {
    pub async fn stop(mut self) -> (DataPlace, MockServer) {
        self.handle.stop(true).await;
        if let Some(join) = self.join.take() {
            let _ = join.await;
        }
        (self.place.clone(), self.graph)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn post(&self, token: &str, path: &str, body: Value) -> reqwest::Response {
        self.client.post(self.url(path)).bearer_auth(token).json(&body).send().await.expect("request")
    }

    pub async fn put(&self, token: &str, path: &str, body: Value) -> reqwest::Response {
        self.client.put(self.url(path)).bearer_auth(token).json(&body).send().await.expect("request")
    }

    pub async fn delete(&self, token: &str, path: &str) -> reqwest::Response {
        self.client.delete(self.url(path)).bearer_auth(token).send().await.expect("request")
    }

    /// Sends `body` verbatim as JSON (for malformed bodies).
    pub async fn send_raw(
        &self,
        method: reqwest::Method,
        token: &str,
        path: &str,
        body: &str,
    ) -> reqwest::Response {
        self.client
            .request(method, self.url(path))
            .bearer_auth(token)
            .header("Content-Type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .expect("request")
    }

    pub async fn get(&self, token: &str, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).bearer_auth(token).send().await.expect("request")
    }

    pub async fn get_json(&self, token: &str, path: &str) -> Value {
        let response = self.get(token, path).await;
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.expect("json")
    }

    /// `SUP` for a test's first account, `SUP1`, `SUP2`… after (keys are unique).
    pub fn next_account_key(&self) -> String {
        match self.accounts_made.fetch_add(1, std::sync::atomic::Ordering::Relaxed) {
            0 => "SUP".to_owned(),
            n => format!("SUP{n}"),
        }
    }

    pub async fn create_account(&self) -> String {
        let response = self
            .post(
                &self.admin_token,
                "/api/accounts",
                json!({"name": "Support", "key": self.next_account_key(), "provider": {
                    "type": "meta", "business_account_id": "100000000000001", "app_id": "4242",
                    "phone_number_id": "100000000000002", "access_token": ACCESS_TOKEN,
                    "app_secret": APP_SECRET, "verify_token": VERIFY_TOKEN,
                    "api_base_url": self.graph.uri(), "api_version": "v23.0"}}),
            )
            .await;
        assert_eq!(response.status(), 201);
        let body: Value = response.json().await.expect("json");
        body["account_id"].as_str().expect("id").to_owned()
    }

    pub async fn setup(&self, offer_timeout_secs: u32) -> Setup {
        let account_id = self.create_account().await;
        let queue: Value = self
            .post(
                &self.admin_token,
                "/api/queues",
                json!({"name": "Sales", "offer_timeout_secs": offer_timeout_secs}),
            )
            .await
            .json()
            .await
            .expect("json");
        let queue_id = queue["id"].as_str().expect("id").to_owned();
        let (agent_id, agent_token) = self.create_agent("Sam").await;
        self.enrol(&account_id, &queue_id, &agent_id).await;
        let r = self
            .put(
                &self.admin_token,
                &format!("/api/accounts/{account_id}/routing"),
                json!({"queue_id": queue_id}),
            )
            .await;
        assert_eq!(r.status(), 204);
        Setup { account_id, queue_id, agent_id, agent_token }
    }

    pub async fn create_agent(&self, name: &str) -> (String, String) {
        let agent: Value = self
            .post(&self.admin_token, "/api/agents", json!({"name": name}))
            .await
            .json()
            .await
            .expect("json");
        (
            agent["agent_id"].as_str().expect("id").to_owned(),
            agent["token"].as_str().expect("token").to_owned(),
        )
    }

    pub async fn enrol(&self, account_id: &str, queue_id: &str, agent_id: &str) {
        let r = self
            .post(
                &self.admin_token,
                &format!("/api/accounts/{account_id}/agents"),
                json!({"agent_id": agent_id}),
            )
            .await;
        assert_eq!(r.status(), 204);
        let r = self
            .post(&self.admin_token, &format!("/api/queues/{queue_id}/agents"), json!({"agent_id": agent_id}))
            .await;
        assert_eq!(r.status(), 204);
    }

    pub async fn agent_ready(&self, token: &str) {
        assert_eq!(self.post(token, "/api/me/login", json!({})).await.status(), 204);
        assert_eq!(self.post(token, "/api/me/ready", json!({})).await.status(), 204);
    }

    /// Posts a webhook body signed with the account's app secret.
    pub async fn webhook(&self, account_id: &str, body: &[u8]) -> reqwest::Response {
        self.webhook_signed(
            account_id,
            body,
            Some(switchboard::providers::meta::sign(APP_SECRET.as_bytes(), body)),
        )
        .await
    }

    pub async fn webhook_signed(
        &self,
        account_id: &str,
        body: &[u8],
        signature: Option<String>,
    ) -> reqwest::Response {
        let mut request = self
            .client
            .post(self.url(&format!("/webhooks/whatsapp/{account_id}")))
            .header("Content-Type", "application/json")
            .body(body.to_vec());
        if let Some(signature) = signature {
            request = request.header("X-Hub-Signature-256", signature);
        }
        request.send().await.expect("request")
    }

    pub async fn connect_ws(&self, token: &str) -> Ws {
        let mut request = format!("ws://127.0.0.1:{}/ws", self.port).into_client_request().expect("request");
        request.headers_mut().insert("Authorization", format!("Bearer {token}").parse().expect("header"));
        let (stream, _) = tokio_tungstenite::connect_async(request).await.expect("websocket connects");
        Ws { stream }
    }

    /// Counts events in the log, optionally of one type.
    pub async fn count_events(&self, event_type: Option<&str>) -> i64 {
        let row: (i64,) = match event_type {
            Some(t) => sqlx::query_as("SELECT COUNT(*) FROM events WHERE event_type = $1")
                .bind(t)
                .fetch_one(&self.core.db.any)
                .await
                .expect("count"),
            None => sqlx::query_as("SELECT COUNT(*) FROM events")
                .fetch_one(&self.core.db.any)
                .await
                .expect("count"),
        };
        row.0
    }

    /// Waits (bounded) until the router and every projection have processed the whole log,
    /// so counts taken afterwards are not racing background work.
    ///
    /// "The whole log" is the newest committed event, not `log::head`: on PostgreSQL the head
    /// stops at the safe horizon, which is cluster-wide, so while another test holds a
    /// transaction open the head and every checkpoint would agree on a point before this
    /// test's own last write and settling would return too early.
    pub async fn settle(&self) {
        let names = ["router", switchboard_projections::READ_MODELS];
        let newest = match self.core.db.backend {
            switchboard_projections::Backend::Postgres => {
                "SELECT tx_id::text, global_position FROM events ORDER BY tx_id DESC, global_position DESC LIMIT 1"
            }
            switchboard_projections::Backend::Sqlite => {
                "SELECT '0', global_position FROM event_log ORDER BY global_position DESC LIMIT 1"
            }
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let mut stable_rounds = 0;
        let mut behind = Vec::new();
        while std::time::Instant::now() < deadline {
            let head = sqlx::query_as::<_, (String, i64)>(newest)
                .fetch_optional(&self.core.db.any)
                .await
                .expect("head")
                .map(|(tx_id, position)| switchboard_projections::Checkpoint { tx_id, position })
                .unwrap_or_else(switchboard_projections::Checkpoint::zero);
            behind.clear();
            for name in names {
                let at =
                    switchboard::workers::checkpoint::load(&self.core.db.any, self.core.db.backend, name)
                        .await
                        .expect("checkpoint");
                if at.precedes(&head) {
                    behind.push(format!("{name} at {at:?}, head {head:?}"));
                }
            }
            stable_rounds = if behind.is_empty() { stable_rounds + 1 } else { 0 };
            // Twice in a row: the router's own commands may have extended the log meanwhile.
            if stable_rounds >= 2 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("background work never caught up with the log: {behind:?}");
    }

    /// Waits (bounded) until `check` holds on the interaction list; projections are
    /// asynchronous.
    pub async fn eventually<F: Fn(&Value) -> bool>(&self, path: &str, check: F) -> Value {
        let mut last = Value::Null;
        for _ in 0..200 {
            let response = self.get(&self.admin_token, path).await;
            if response.status() == 200 {
                last = response.json().await.expect("json");
                if check(&last) {
                    return last;
                }
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("condition never held on {path}; last: {last:#}");
    }
}

/// An error answer's status, `error.code` and `error.message`.
pub async fn error_of(response: reqwest::Response) -> (u16, String, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.expect("json error body");
    let text = |k: &str| body["error"][k].as_str().unwrap_or_default().to_owned();
    (status, text("code"), text("message"))
}

pub struct Ws {
    stream: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
}

impl Ws {
    /// The next JSON frame of this type (skipping others), within 10 s.
    pub async fn next_of(&mut self, kind: &str) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let frame = tokio::time::timeout_at(deadline, self.stream.next())
                .await
                .unwrap_or_else(|_| panic!("no `{kind}` frame within 10 s"));
            let Some(Ok(message)) = frame else {
                panic!("websocket closed while waiting for `{kind}`: {frame:?}")
            };
            if let tokio_tungstenite::tungstenite::Message::Text(text) = message {
                let value: Value = serde_json::from_str(&text).expect("json frame");
                if value["type"] == kind {
                    return value;
                }
            }
        }
    }
}

/// A Meta text webhook from `from` (digits) with its own message id and the sender's
/// WhatsApp profile name.
pub fn meta_text(wamid: &str, from: &str, profile_name: &str, body: &str) -> Vec<u8> {
    json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages",
        "value": {"messaging_product": "whatsapp",
                  "metadata": {"display_phone_number": "15557654321", "phone_number_id": "100000000000002"},
                  "contacts": [{"profile": {"name": profile_name}, "wa_id": from}],
                  "messages": [{"from": from, "id": wamid, "timestamp": "1767607200",
                                "type": "text", "text": {"body": body}}]}}]}]})
    .to_string()
    .into_bytes()
}

/// Lets the Graph API mock accept every send (automatic replies, agents' texts).
pub async fn accept_meta_sends(app: &TestApp) {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, ResponseTemplate};
    Mock::given(method("POST"))
        .and(path("/v23.0/100000000000002/messages"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(fixture("meta_send_response.json")))
        .mount(&app.graph)
        .await;
}

/// Whether the provider mock receives a send containing `needle` (the outbox sends
/// asynchronously; bounded wait).
pub async fn sent_eventually(app: &TestApp, needle: &str) -> bool {
    for _ in 0..200 {
        let sent = app.graph.received_requests().await.unwrap_or_default();
        if sent.iter().any(|r| String::from_utf8_lossy(&r.body).contains(needle)) {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    false
}
