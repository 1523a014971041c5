//! Provider webhooks: `POST /webhooks/whatsapp/{account_id}` for messages and statuses, and
//! `GET` on the same path for Meta's verification handshake.
//!
//! Order of checks, each answering with its own code and appending nothing: body size
//! (413 `payload_too_large`), account (404 `unknown_account`), signature on the raw bytes
//! (401 `missing_signature` / `invalid_signature`), payload shape (400 `malformed_payload`),
//! every message's fields (400, before any is recorded). Then each message and status is
//! recorded and the answer is 200 only once all are durably committed, so a provider retry
//! covers a crash. Redeliveries append nothing and still get 200.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt;
use serde::Deserialize;
use switchboard_domain::AccountId;
use switchboard_domain::account::{Account, MetaSettings, ProviderSettings};

use super::{ApiError, AppState};
use crate::providers::meta;
use crate::services::ingest::{self, StatusOutcome};

/// The largest webhook body accepted.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/webhooks/whatsapp/{account_id}", web::post().to(receive))
        .route("/webhooks/whatsapp/{account_id}", web::get().to(handshake));
}

async fn read_body(req: &HttpRequest, mut payload: web::Payload) -> Result<web::Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "webhook bodies are limited to 1 MiB",
        )
    };
    let declared = req
        .headers()
        .get("Content-Length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES) {
        return Err(too_large());
    }
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::invalid_request(e.to_string()))?;
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

async fn meta_account(
    state: &AppState,
    raw_id: &str,
) -> Result<(AccountId, Account, MetaSettings), ApiError> {
    let unknown = || ApiError::not_found("unknown_account", "no account receives webhooks here");
    let account_id: AccountId = raw_id.parse().map_err(|_| unknown())?;
    let account = state.core.accounts.state(&account_id.to_string()).await?.state;
    match &account.provider {
        Some(ProviderSettings::Meta(settings)) => {
            let settings = settings.clone();
            Ok((account_id, account, settings))
        }
        None => Err(unknown()),
    }
}

fn count(state: &AppState, outcome: &str) {
    state.metrics.webhooks.with_label_values(&["meta", outcome]).inc();
}

/// Receives messages and statuses.
#[utoipa::path(post, path = "/webhooks/whatsapp/{account_id}",
    request_body(content = String, description = "the provider's raw webhook body", content_type = "application/json"),
    responses((status = 200, description = "recorded (or already recorded)"),
              (status = 400, body = super::errors::ErrorBody), (status = 401, body = super::errors::ErrorBody),
              (status = 404, body = super::errors::ErrorBody), (status = 413, body = super::errors::ErrorBody)),
    tag = "webhooks")]
pub async fn receive(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let result = receive_inner(&state, &req, &path, payload).await;
    match &result {
        Ok(_) => count(&state, "ok"),
        Err(e) => count(&state, e.code),
    }
    result
}

async fn receive_inner(
    state: &AppState,
    req: &HttpRequest,
    raw_id: &str,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = read_body(req, payload).await?;
    let (account_id, account, settings) = meta_account(state, raw_id).await?;
    let app_secret = state.core.sealer.open(&settings.app_secret).map_err(ApiError::internal)?;
    let signature = req.headers().get(meta::SIGNATURE_HEADER).and_then(|v| v.to_str().ok());
    meta::verify_signature(app_secret.as_bytes(), &body, signature).map_err(|e| match e {
        crate::providers::WebhookError::MissingSignature => {
            ApiError::new(StatusCode::UNAUTHORIZED, "missing_signature", "X-Hub-Signature-256 is required")
        }
        _ => ApiError::new(StatusCode::UNAUTHORIZED, "invalid_signature", "the signature does not match"),
    })?;
    let batch = meta::parse_webhook(&body)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "malformed_payload", e.to_string()))?;
    // A Meta app may deliver several numbers' traffic to one callback: only this account's
    // number is recorded here (see docs/providers/meta.md for per-number callback URLs).
    let (ours, foreign): (Vec<_>, Vec<_>) =
        batch.messages.into_iter().partition(|m| m.to_phone_number_id == settings.phone_number_id);
    if !foreign.is_empty() {
        tracing::warn!(count = foreign.len(), %account_id, "messages for another phone number id were not recorded");
        count(state, "foreign_number");
    }
    let messages = ingest::validate(ours)?;
    for message in &messages {
        ingest::record_message(&state.core, account_id, &account, message, "meta").await?;
    }
    for status in &batch.statuses {
        if ingest::record_status(&state.core, account_id, status, "meta").await?
            == StatusOutcome::UnknownMessage
        {
            count(state, "unknown_status");
        }
    }
    Ok(HttpResponse::Ok().finish())
}

/// Meta's GET handshake parameters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct Handshake {
    /// Must be `subscribe`.
    #[serde(rename = "hub.mode")]
    pub mode: Option<String>,
    /// The verify token configured in Meta's dashboard.
    #[serde(rename = "hub.verify_token")]
    pub verify_token: Option<String>,
    /// Echoed back on success.
    #[serde(rename = "hub.challenge")]
    pub challenge: Option<String>,
}

/// Meta's verification handshake: echoes `hub.challenge` when the verify token matches.
#[utoipa::path(get, path = "/webhooks/whatsapp/{account_id}", params(Handshake),
    responses((status = 200, body = String), (status = 403, body = super::errors::ErrorBody),
              (status = 404, body = super::errors::ErrorBody)), tag = "webhooks")]
pub async fn handshake(
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<Handshake>,
) -> Result<HttpResponse, ApiError> {
    let (_, _, settings) = meta_account(&state, &path).await?;
    let expected = state.core.sealer.open(&settings.verify_token).map_err(ApiError::internal)?;
    match meta::verify_handshake(
        query.mode.as_deref(),
        query.verify_token.as_deref(),
        query.challenge.as_deref(),
        &expected,
    ) {
        Ok(challenge) => Ok(HttpResponse::Ok().content_type("text/plain").body(challenge)),
        Err(meta::HandshakeError::MissingChallenge) => {
            Err(ApiError::invalid_request("hub.challenge is required"))
        }
        Err(meta::HandshakeError::WrongMode) => Err(ApiError::invalid_request("hub.mode must be subscribe")),
        Err(meta::HandshakeError::WrongToken) => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "invalid_verify_token",
            "the verify token does not match",
        )),
    }
}
