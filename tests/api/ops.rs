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
    assert!(metrics.contains("switchboard_webhooks_total{outcome=\"unknown_account\",provider=\"meta\"} 1"));
    assert!(metrics.contains("switchboard_live_actors"));
    app.stop().await;
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

#[actix_web::test]
async fn the_binary_serves_on_embedded_sqlite_with_no_configuration() {
    let dir = std::env::temp_dir().join(format!("sb_bin_{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("dir");
    let _cleanup = TempDir(dir.clone());
    let binary = env!("CARGO_BIN_EXE_switchboard");

    // The first admin token, non-interactively.
    let token =
        Command::new(binary).arg("create-token").current_dir(&dir).env_clear().output().expect("runs");
    assert!(token.status.success(), "{}", String::from_utf8_lossy(&token.stderr));
    let token = String::from_utf8(token.stdout).expect("utf8").trim().to_owned();
    assert!(token.starts_with("sb_"));

    // `serve` with defaults except the port (8080 may be taken on a shared machine).
    let port = free_port();
    let mut child = Command::new(binary)
        .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
        .current_dir(&dir)
        .env_clear()
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawns");
    let client = reqwest::Client::new();
    let mut healthy = false;
    for _ in 0..100 {
        if let Ok(r) = client.get(format!("http://127.0.0.1:{port}/healthz")).send().await {
            healthy = r.status() == 200;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The token printed earlier works against the served database.
    let authorised = client
        .get(format!("http://127.0.0.1:{port}/api/queues/status"))
        .bearer_auth(&token)
        .send()
        .await
        .map(|r| r.status().as_u16());
    let _ = child.kill();
    let _ = child.wait();
    assert!(healthy, "/healthz answered 200");
    assert_eq!(authorised.ok(), Some(200));
    assert!(dir.join("data/switchboard.db").exists());
    assert!(dir.join("data/master.key").exists());
}
