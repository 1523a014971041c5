//! Provider webhooks: `POST /webhooks/whatsapp/{account_id}` for messages and statuses, and
//! `GET` on the same path for Meta's verification handshake.
//!
//! Order of checks, each answering with its own code and appending nothing: body size
//! (413 `payload_too_large`), account (404 `unknown_account`), the provider's proof of
//! authenticity (401 `missing_signature` / `invalid_signature` / `stale_timestamp`: Meta and
//! Sinch sign the raw bytes; Twilio signs the public URL and the decoded form pairs, so its
//! form is decoded first (400 `malformed_payload`); Kaleyra sends a configured header or Basic
//! auth), payload shape (400 `malformed_payload`), every message's fields (400, before any is
//! recorded). Then each message and status is
//! recorded and the answer is 200 only once all are durably committed, so a provider retry
//! covers a crash. Redeliveries append nothing and still get 200.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt;
use serde::Deserialize;
use switchboard_domain::AccountId;
use switchboard_domain::account::{Account, KaleyraCallbackAuth, ProviderSettings};

use super::{ApiError, AppState};
use crate::providers::{WebhookBatch, WebhookError, kaleyra, meta, sinch, twilio};
use crate::services::ingest::{self, StatusOutcome};

/// How far a Sinch callback's signed timestamp may be from now: older (or future) callbacks are
/// refused as replays.
const SINCH_MAX_SKEW: std::time::Duration = std::time::Duration::from_secs(300);

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

async fn account(state: &AppState, raw_id: &str) -> Result<(AccountId, Account, ProviderSettings), ApiError> {
    let unknown = || ApiError::not_found("unknown_account", "no account receives webhooks here");
    let account_id: AccountId = raw_id.parse().map_err(|_| unknown())?;
    let account = state.core.accounts.state(&account_id.to_string()).await?.state;
    let provider = account.provider.clone().ok_or_else(unknown)?;
    Ok((account_id, account, provider))
}

fn count(state: &AppState, provider: &str, outcome: &str) {
    state.metrics.webhooks.with_label_values(&[provider, outcome]).inc();
}

fn signature_error(e: WebhookError, header: &str) -> ApiError {
    match e {
        WebhookError::MissingSignature => {
            ApiError::new(StatusCode::UNAUTHORIZED, "missing_signature", format!("{header} is required"))
        }
        _ => ApiError::new(StatusCode::UNAUTHORIZED, "invalid_signature", "the signature does not match"),
    }
}

fn malformed(e: WebhookError) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "malformed_payload", e.to_string())
}

/// Receives messages and statuses.
#[utoipa::path(post, path = "/webhooks/whatsapp/{account_id}",
    request_body(content = String, description = "the provider's raw webhook body: JSON (Meta, Sinch, Kaleyra) or form-encoded (Twilio)"),
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
    let mut provider = "unknown";
    let result = receive_inner(&state, &req, &path, payload, &mut provider).await;
    match &result {
        Ok(_) => count(&state, provider, "ok"),
        Err(e) => count(&state, provider, e.code),
    }
    result
}

/// Checks the provider's authenticity proof on the raw request and parses it. Returns the
/// batch and the business number id the account expects messages to be addressed to.
fn authenticate_and_parse(
    state: &AppState,
    req: &HttpRequest,
    body: &[u8],
    provider: &ProviderSettings,
    public_domain: Option<&str>,
) -> Result<(WebhookBatch, String), ApiError> {
    let sealer = &state.core.sealer;
    match provider {
        ProviderSettings::Meta(settings) => {
            let app_secret = sealer.open(&settings.app_secret).map_err(ApiError::internal)?;
            let signature = req.headers().get(meta::SIGNATURE_HEADER).and_then(|v| v.to_str().ok());
            meta::verify_signature(app_secret.as_bytes(), body, signature)
                .map_err(|e| signature_error(e, meta::SIGNATURE_HEADER))?;
            Ok((meta::parse_webhook(body).map_err(malformed)?, settings.phone_number_id.clone()))
        }
        ProviderSettings::Twilio(settings) => {
            let auth_token = sealer.open(&settings.auth_token).map_err(ApiError::internal)?;
            // Twilio signs the URL it called plus the decoded form pairs; that base is
            // configured (the account's public domain, else the server's public URL), never
            // taken from the Host header, which a proxy may rewrite.
            let params = twilio::parse_form(body).map_err(malformed)?;
            let path_and_query = req.uri().path_and_query().map(|p| p.as_str()).unwrap_or_else(|| req.path());
            let base = public_domain.unwrap_or(&state.public_url);
            let url = format!("{}{path_and_query}", base.trim_end_matches('/'));
            let signature = req.headers().get(twilio::SIGNATURE_HEADER).and_then(|v| v.to_str().ok());
            twilio::verify_signature(&auth_token, &url, &params, signature)
                .map_err(|e| signature_error(e, twilio::SIGNATURE_HEADER))?;
            let batch = twilio::parse_webhook(&params, state.core.clock.now()).map_err(malformed)?;
            Ok((batch, settings.business_number.to_string()))
        }
        ProviderSettings::Sinch(settings) => {
            let secret = sealer.open(&settings.webhook_secret).map_err(ApiError::internal)?;
            let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
            sinch::verify_signature(
                secret.as_bytes(),
                body,
                header(sinch::NONCE_HEADER),
                header(sinch::TIMESTAMP_HEADER),
                header(sinch::SIGNATURE_HEADER),
                state.core.clock.now(),
                SINCH_MAX_SKEW,
            )
            .map_err(|e| match e {
                sinch::SinchSignatureError::Missing => ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "missing_signature",
                    "the x-sinch-webhook-signature headers are required",
                ),
                sinch::SinchSignatureError::Stale => ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "stale_timestamp",
                    "the signature timestamp is too far from now",
                ),
                sinch::SinchSignatureError::Bad => ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "invalid_signature",
                    "the signature does not match",
                ),
            })?;
            Ok((sinch::parse_webhook(body).map_err(malformed)?, settings.app_id.clone()))
        }
        ProviderSettings::Kaleyra(settings) => {
            let auth = match &settings.callback_auth {
                KaleyraCallbackAuth::SharedHeader { name, value } => kaleyra::CallbackAuth::SharedHeader {
                    name: name.clone(),
                    value: sealer.open(value).map_err(ApiError::internal)?,
                },
                KaleyraCallbackAuth::Basic { user, password } => kaleyra::CallbackAuth::Basic {
                    user: user.clone(),
                    password: sealer.open(password).map_err(ApiError::internal)?,
                },
            };
            let headers: Vec<(String, String)> = req
                .headers()
                .iter()
                .filter_map(|(n, v)| v.to_str().ok().map(|v| (n.as_str().to_owned(), v.to_owned())))
                .collect();
            kaleyra::verify_callback(&auth, &headers)
                .map_err(|e| signature_error(e, "the callback credential"))?;
            let batch = kaleyra::parse_webhook(body, state.core.clock.now()).map_err(malformed)?;
            Ok((batch, settings.business_number.to_string()))
        }
    }
}

async fn receive_inner(
    state: &AppState,
    req: &HttpRequest,
    raw_id: &str,
    payload: web::Payload,
    provider_name: &mut &'static str,
) -> Result<HttpResponse, ApiError> {
    let body = read_body(req, payload).await?;
    let (account_id, account, provider) = account(state, raw_id).await?;
    *provider_name = provider.kind();
    let public_domain = account.details.public_domain.as_ref().map(AsRef::as_ref);
    let (batch, business_id) = authenticate_and_parse(state, req, &body, &provider, public_domain)?;
    // One callback URL may receive several numbers' traffic (a Meta app, a Twilio account):
    // only this account's number is recorded here.
    let (ours, foreign): (Vec<_>, Vec<_>) =
        batch.messages.into_iter().partition(|m| m.to_phone_number_id == business_id);
    if !foreign.is_empty() {
        tracing::warn!(count = foreign.len(), %account_id, "messages for another business number were not recorded");
        count(state, provider_name, "foreign_number");
    }
    let messages = ingest::validate(ours)?;
    for message in &messages {
        ingest::record_message(&state.core, account_id, &account, message, provider_name).await?;
    }
    for status in &batch.statuses {
        match ingest::record_status(&state.core, account_id, status, provider_name).await? {
            StatusOutcome::UnknownMessage => count(state, provider_name, "unknown_status"),
            StatusOutcome::Parked => count(state, provider_name, "parked_status"),
            StatusOutcome::Recorded => {}
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
    let (_, _, provider) = account(&state, &path).await?;
    let ProviderSettings::Meta(settings) = provider else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "no_handshake",
            "this account's provider has no verification handshake",
        ));
    };
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
