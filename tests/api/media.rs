//! Media both ways and templates, through Meta: a customer's image is downloaded promptly
//! (media id → short-lived URL → bytes, both with the bearer token) into the blob store and
//! served to the agent; the agent uploads a file, which Meta fetches through a signed,
//! expiring link; outside the 24 h window a text is refused with the account's recontact
//! template, which the agent then sends. Limits and bad uploads get their codes and append
//! nothing.

use std::time::Duration;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use wiremock::matchers::{body_partial_json, header, method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::*;

const IMAGE: &[u8] = b"\xFF\xD8\xFF\xE0 fake jpeg bytes of a damaged box";

fn sha_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The Graph API's two media steps for media id 900000000000001.
async fn mock_meta_media(app: &TestApp, bytes: &'static [u8], file_size: usize) {
    let download_url = format!("{}/download/900000000000001", app.graph.uri());
    Mock::given(method("GET"))
        .and(path("/v23.0/900000000000001"))
        .and(header("Authorization", format!("Bearer {ACCESS_TOKEN}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "messaging_product": "whatsapp", "url": download_url, "mime_type": "image/jpeg",
            "sha256": "SfInY0gGKTsJlUWbwxC1k+FAD0FZHvzwfpvO0zX0GUI=", "file_size": file_size.to_string(),
            "id": "900000000000001"})))
        .mount(&app.graph)
        .await;
    Mock::given(method("GET"))
        .and(path("/download/900000000000001"))
        .and(header("Authorization", format!("Bearer {ACCESS_TOKEN}").as_str()))
        .respond_with(
            ResponseTemplate::new(200).insert_header("Content-Type", "image/jpeg").set_body_bytes(bytes),
        )
        .mount(&app.graph)
        .await;
}

async fn accept_first_offer(app: &TestApp, s: &Setup, ws: &mut Ws) -> String {
    let offer = ws.next_of("offer").await;
    let id = offer["interaction_id"].as_str().expect("id").to_owned();
    let r = app.post(&s.agent_token, &format!("/api/interactions/{id}/accept"), json!({})).await;
    assert_eq!(r.status(), 204);
    id
}

async fn upload(
    app: &TestApp,
    token: &str,
    interaction_id: &str,
    query: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> reqwest::Response {
    let mut request = app
        .client
        .post(app.url(&format!("/api/interactions/{interaction_id}/media{query}")))
        .bearer_auth(token)
        .body(body);
    if let Some(ct) = content_type {
        request = request.header("Content-Type", ct);
    }
    request.send().await.expect("request")
}

async fn error_code(r: reqwest::Response) -> (u16, String) {
    let status = r.status().as_u16();
    let body: Value = r.json().await.expect("json error");
    (status, body["error"]["code"].as_str().unwrap_or_default().to_owned())
}

async fn media_both_ways(backend: Backend) {
    let app = spawn_app(backend).await;
    let s = app.setup(10).await;
    mock_meta_media(&app, IMAGE, IMAGE.len()).await;
    app.agent_ready(&s.agent_token).await;
    let mut ws = app.connect_ws(&s.agent_token).await;

    // The customer sends a photo; the agent gets the message, then the stored media.
    assert_eq!(app.webhook(&s.account_id, &fixture("meta_inbound_image.json")).await.status(), 200);
    let id = accept_first_offer(&app, &s, &mut ws).await;
    // (The download may finish before the accept, when there is nobody to push to yet, so
    // the read model is checked rather than the websocket.)
    let detail = app
        .eventually(&format!("/api/interactions/{id}"), |v| v["messages"][0]["media"]["state"] == "stored")
        .await;
    let message = &detail["messages"][0];
    assert_eq!(message["media"]["sha256"], sha_hex(IMAGE));
    assert_eq!(message["media"]["content_type"], "image/jpeg");
    assert_eq!(message["media"]["size"], IMAGE.len());
    assert_eq!((message["kind"].as_str(), message["body"].as_str()), (Some("image"), Some("damaged box")));
    let url = message["media"]["url"].as_str().expect("download url").to_owned();
    let r = app.get(&s.agent_token, &url).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/jpeg");
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    assert_eq!(r.bytes().await.expect("bytes").as_ref(), IMAGE);
    // Another account's agent cannot fetch it, and nobody can without a token.
    let (_, stranger) = app.create_agent("Eve").await;
    assert_eq!(error_code(app.get(&stranger, &url).await).await, (404, "interaction_not_found".into()));
    assert_eq!(app.client.get(app.url(&url)).send().await.expect("get").status(), 401);

    // The agent sends a PDF: stored, then sent to Meta as a signed link Meta can fetch.
    let pdf = b"%PDF-1.7 fake invoice".to_vec();
    Mock::given(method("POST"))
        .and(path("/v23.0/100000000000002/messages"))
        .and(body_partial_json(json!({"type": "document",
              "document": {"caption": "your invoice", "filename": "invoice-4711.pdf"}})))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(fixture("meta_send_response.json")))
        .expect(1)
        .mount(&app.graph)
        .await;
    let r = upload(
        &app,
        &s.agent_token,
        &id,
        "?caption=your%20invoice&filename=invoice-4711.pdf",
        Some("application/pdf"),
        pdf.clone(),
    )
    .await;
    assert_eq!(r.status(), 202);
    let out = ws.next_of("message").await;
    assert_eq!((out["direction"].as_str(), out["content"]["kind"].as_str()), (Some("out"), Some("document")));
    assert_eq!(ws.next_of("message_status").await["status"], "accepted");
    let sent: Value = app
        .graph
        .received_requests()
        .await
        .expect("recorded")
        .iter()
        .filter(|r| r.url.path() == "/v23.0/100000000000002/messages")
        .map(|r| serde_json::from_slice(&r.body).expect("json"))
        .next_back()
        .expect("a send");
    let link = sent["document"]["link"].as_str().expect("a link").to_owned();
    assert!(link.starts_with(&app.address), "the link points at this server: {link}");
    let fetched = app.client.get(&link).send().await.expect("provider fetch");
    assert_eq!(fetched.status(), 200);
    assert_eq!(fetched.headers()["content-type"], "application/pdf");
    assert_eq!(fetched.bytes().await.expect("bytes").as_ref(), pdf.as_slice());
    // A tampered or expired link is refused.
    let tampered = link.replace("ct=application%2Fpdf", "ct=text%2Fhtml");
    assert_eq!(
        error_code(app.client.get(&tampered).send().await.expect("get")).await,
        (403, "invalid_media_link".into())
    );
    app.core.clock.advance(Duration::from_secs(25 * 3600));
    assert_eq!(
        error_code(app.client.get(&link).send().await.expect("get")).await,
        (403, "invalid_media_link".into())
    );

    // 25 h later the window is closed: text and media are refused with the recontact
    // template, which the agent sends instead.
    let r = app
        .put(
            &app.admin_token,
            &format!("/api/accounts/{}/recontact-template", s.account_id),
            json!({"name": "we_are_back", "language": "en_US", "parameters": ["Jane"]}),
        )
        .await;
    assert_eq!(r.status(), 204);
    app.settle().await;
    let before = app.count_events(None).await;
    let r =
        app.post(&s.agent_token, &format!("/api/interactions/{id}/messages"), json!({"text": "hi"})).await;
    assert_eq!(r.status(), 409);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["error"]["code"], "window_closed");
    assert_eq!(
        body["error"]["details"]["recontact_template"],
        json!({"name": "we_are_back", "language": "en_US", "parameters": ["Jane"]})
    );
    let r = upload(&app, &s.agent_token, &id, "", Some("image/jpeg"), IMAGE.to_vec()).await;
    assert_eq!(error_code(r).await, (409, "window_closed".into()));
    assert_eq!(app.count_events(None).await, before, "refused sends append nothing");
    Mock::given(method("POST"))
        .and(path("/v23.0/100000000000002/messages"))
        .and(body_partial_json(json!({"type": "template", "template": {"name": "we_are_back",
              "language": {"code": "en_US"},
              "components": [{"type": "body", "parameters": [{"type": "text", "text": "Jane"}]}]}})))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(fixture("meta_send_response.json")))
        .expect(1)
        .mount(&app.graph)
        .await;
    let r = app
        .post(
            &s.agent_token,
            &format!("/api/interactions/{id}/templates"),
            json!({"name": "we_are_back", "language": "en_US", "parameters": ["Jane"]}),
        )
        .await;
    assert_eq!(r.status(), 202);
    assert_eq!(ws.next_of("message").await["content"]["type"], "template");
    assert_eq!(ws.next_of("message_status").await["status"], "accepted");
    app.stop().await;
}

#[actix_web::test]
async fn media_both_ways_and_a_template_outside_the_window_on_sqlite() {
    media_both_ways(Backend::Sqlite).await;
}

#[actix_web::test]
async fn media_both_ways_and_a_template_outside_the_window_on_postgres() {
    media_both_ways(Backend::Postgres).await;
}

#[actix_web::test]
async fn customer_media_over_the_limit_or_gone_is_recorded_as_unavailable() {
    let app = spawn_app(Backend::Sqlite).await;
    let s = app.setup(10).await;
    // The test server's limit is 1 MiB; Meta says the file is 20 MB.
    mock_meta_media(&app, IMAGE, 20_000_000).await;
    app.agent_ready(&s.agent_token).await;
    let mut ws = app.connect_ws(&s.agent_token).await;
    assert_eq!(app.webhook(&s.account_id, &fixture("meta_inbound_image.json")).await.status(), 200);
    let id = accept_first_offer(&app, &s, &mut ws).await;
    let detail = app
        .eventually(&format!("/api/interactions/{id}"), |v| {
            v["messages"][0]["media"]["state"] == "unavailable"
        })
        .await;
    assert!(detail["messages"][0]["media"]["url"].is_null());
    assert_eq!(detail["messages"][0]["error_code"], "too_large");

    // A media id Meta no longer knows (404) is not retried.
    let doc = String::from_utf8(fixture("meta_inbound_document.json")).expect("utf8");
    assert_eq!(app.webhook(&s.account_id, doc.as_bytes()).await.status(), 200);
    // The image's frame may come first (if its download finished after the accept).
    let mut frame = ws.next_of("media").await;
    if frame["error_code"] == "too_large" {
        frame = ws.next_of("media").await;
    }
    assert_eq!(
        (frame["state"].as_str(), frame["error_code"].as_str()),
        (Some("unavailable"), Some("download_failed"))
    );
    app.stop().await;
}

/// Query, content type, body, and the expected status and code.
type UploadCase = (&'static str, Option<&'static str>, Vec<u8>, (u16, &'static str));

#[actix_web::test]
async fn bad_uploads_get_their_codes_and_append_nothing() {
    let app = spawn_app(Backend::Sqlite).await;
    let s = app.setup(10).await;
    mock_meta_media(&app, IMAGE, IMAGE.len()).await;
    app.agent_ready(&s.agent_token).await;
    let mut ws = app.connect_ws(&s.agent_token).await;
    assert_eq!(app.webhook(&s.account_id, &fixture("meta_inbound_text.json")).await.status(), 200);
    let id = accept_first_offer(&app, &s, &mut ws).await;
    let (_, other) = app.create_agent("Eve").await;
    app.settle().await;
    let before = app.count_events(None).await;
    let big = vec![0u8; 1024 * 1024 + 1];
    let cases: Vec<UploadCase> = vec![
        ("", Some("image/jpeg"), big.clone(), (413, "media_too_large")),
        // Stickers are limited to 500 KB whatever the server allows.
        ("?kind=sticker", Some("image/webp"), vec![0u8; 600 * 1024], (413, "media_too_large")),
        ("", None, IMAGE.to_vec(), (415, "invalid_content_type")),
        ("", Some("not a type"), IMAGE.to_vec(), (415, "invalid_content_type")),
        ("", Some("image/jpeg"), vec![], (400, "invalid_request")),
        ("?kind=gif", Some("image/gif"), IMAGE.to_vec(), (400, "invalid_request")),
        ("?kind=audio&caption=hello", Some("audio/ogg"), IMAGE.to_vec(), (422, "invalid_media")),
        ("?message_id=nope", Some("image/jpeg"), IMAGE.to_vec(), (400, "invalid_request")),
    ];
    for (query, ct, body, expected) in cases {
        let got = error_code(upload(&app, &s.agent_token, &id, query, ct, body).await).await;
        assert_eq!((got.0, got.1.as_str()), expected, "upload {query} {ct:?}");
    }
    // Templates: a bad name or an empty parameter is refused before anything is stored.
    for body in [
        json!({"name": "has space", "language": "en"}),
        json!({"name": "ok", "language": ""}),
        json!({"name": "ok", "language": "en", "parameters": [""]}),
    ] {
        let r = app.post(&s.agent_token, &format!("/api/interactions/{id}/templates"), body.clone()).await;
        assert_eq!(error_code(r).await, (422, "invalid_template".into()), "{body}");
    }
    let r = app
        .put(
            &app.admin_token,
            &format!("/api/accounts/{}/recontact-template", s.account_id),
            json!({"name": "bad name!", "language": "en"}),
        )
        .await;
    assert_eq!(error_code(r).await, (422, "invalid_template".into()));
    // Another agent cannot send on this interaction.
    let r = upload(&app, &other, &id, "", Some("image/jpeg"), IMAGE.to_vec()).await;
    assert_eq!(error_code(r).await, (403, "not_assigned_to_agent".into()));
    app.settle().await;
    assert_eq!(app.count_events(None).await, before);
    app.stop().await;
}

#[actix_web::test]
async fn agents_list_the_accounts_approved_templates() {
    let app = spawn_app(Backend::Sqlite).await;
    let s = app.setup(10).await;
    let mut listing: Value =
        serde_json::from_slice(&fixture("meta_template_list_response.json")).expect("json");
    listing["data"].as_array_mut().expect("data").push(json!({"name": "draft", "language": "en",
        "status": "PENDING", "category": "MARKETING", "components": [{"type": "BODY", "text": "soon"}]}));
    Mock::given(method("GET"))
        .and(path("/v23.0/100000000000001/message_templates"))
        .and(header("Authorization", format!("Bearer {ACCESS_TOKEN}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(listing))
        .mount(&app.graph)
        .await;
    let path_ = format!("/api/accounts/{}/templates", s.account_id);
    let approved = app.get_json(&s.agent_token, &path_).await;
    assert_eq!(
        approved,
        json!([{"name": "order_update", "language": "en_US", "status": "APPROVED", "category": "UTILITY",
                "body": "Hi {{1}}, your order {{2}} has shipped.", "body_parameters": 2}])
    );
    let all = app.get_json(&app.admin_token, &format!("{path_}?status=all")).await;
    assert_eq!(all.as_array().map(Vec::len), Some(2));
    let (_, stranger) = app.create_agent("Eve").await;
    assert_eq!(error_code(app.get(&stranger, &path_).await).await, (404, "account_not_found".into()));
    app.stop().await;
}
