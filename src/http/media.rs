//! Media and templates from the agent's chair, and the signed links providers fetch media
//! from.
//!
//! - `POST /api/interactions/{id}/media`: the request body is the file itself (its
//!   `Content-Type` header is the media's type); `kind`, `caption`, `filename` and
//!   `message_id` come in the query. The bytes are stored in the blob store, then the
//!   interaction records the send and the outbox carries it. Limits are WhatsApp's per kind
//!   and the server's `max_media_bytes`, checked before the body is read where the length is
//!   declared, and while reading otherwise.
//! - `POST /api/interactions/{id}/templates`: an approved template, the one kind of message
//!   allowed once the customer's 24 h window has closed.
//! - `GET /media/{sha256}?ct&exp&sig`: no bearer token (providers cannot send one), but a
//!   link is only good for the blob, content type and expiry it was signed for.
//!
//! A send refused with `window_closed` carries the account's recontact template in
//! `error.details.recontact_template`, so the agent can be offered it at once.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt;
use serde::Deserialize;
use switchboard_domain::interaction::{InteractionCommand, MediaBlob, OutboundMedia, TemplateMessage};
use switchboard_domain::{InteractionId, MessageId};
use utoipa::{IntoParams, ToSchema};

use super::agent::MessageAccepted;
use super::{ApiError, AppState, Auth, correlation_id, parse_id};
use crate::core::Core;
use crate::providers::MediaKind;

/// Routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/interactions/{interaction_id}/media", web::post().to(send_media))
        .route("/api/interactions/{interaction_id}/templates", web::post().to(send_template))
        .route("/media/{sha256}", web::get().to(serve_link));
}

/// WhatsApp's size limit per kind: images 5 MB, stickers 500 KB, audio and video 16 MB,
/// documents 100 MB (Meta's media reference; the other providers pass WhatsApp's limits on).
pub fn whatsapp_limit(kind: MediaKind) -> u64 {
    match kind {
        MediaKind::Image => 5 * 1024 * 1024,
        MediaKind::Sticker => 500 * 1024,
        MediaKind::Audio | MediaKind::Video => 16 * 1024 * 1024,
        MediaKind::Document => 100 * 1024 * 1024,
    }
}

/// Replaces a `window_closed` refusal with one that names the account's recontact template
/// (or `null` when the account has none), leaving every other error as it is.
pub async fn offer_recontact(core: &Core, interaction_id: InteractionId, err: ApiError) -> ApiError {
    if err.code != "window_closed" {
        return err;
    }
    let template = async {
        let interaction = core.interactions.state(&interaction_id.to_string()).await.ok()?.state;
        let account = core.accounts.state(&interaction.account_id?.to_string()).await.ok()?.state;
        account.recontact_template
    }
    .await;
    let details = serde_json::json!({ "recontact_template": template });
    err.with_details(details)
}

/// Query of `POST /api/interactions/{id}/media`.
#[derive(Debug, Deserialize, IntoParams)]
pub struct MediaQuery {
    /// `image`, `audio`, `video`, `document` or `sticker`; by default derived from the
    /// content type (anything but image, audio and video travels as a document).
    pub kind: Option<String>,
    /// Caption (image, video, document).
    pub caption: Option<String>,
    /// File name shown for documents.
    pub filename: Option<String>,
    /// Optional client-chosen id (UUID): resending with the same id records nothing new.
    pub message_id: Option<String>,
}

fn too_large(limit: u64, kind: MediaKind) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "media_too_large",
        format!("{} media is limited to {limit} bytes", kind.as_str()),
    )
    .with_details(serde_json::json!({ "limit_bytes": limit }))
}

/// Sends a file to the customer: the body is the file, `Content-Type` its type.
#[utoipa::path(post, path = "/api/interactions/{interaction_id}/media", params(MediaQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "the file"),
    responses((status = 202, body = MessageAccepted), (status = 409, body = super::errors::ErrorBody),
              (status = 413, body = super::errors::ErrorBody), (status = 415, body = super::errors::ErrorBody)),
    security(("bearer" = [])), tag = "agent")]
pub async fn send_media(
    state: web::Data<AppState>,
    auth: Auth,
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<MediaQuery>,
    mut payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let agent_id = auth.agent()?;
    let interaction_id: InteractionId = parse_id(&path, "interaction_not_found")?;
    let core = &state.core;
    let content_type = req
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .filter(|ct| MediaBlob::new(&"0".repeat(64), 0, ct).is_ok())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "invalid_content_type",
                "send the file with its Content-Type, e.g. image/jpeg",
            )
        })?;
    let kind = match &query.kind {
        Some(k) => MediaKind::parse(k).ok_or_else(|| {
            ApiError::invalid_request("kind must be image, audio, video, document or sticker")
        })?,
        None => MediaKind::from_content_type(&content_type),
    };
    let message_id = match &query.message_id {
        Some(raw) => {
            raw.parse::<MessageId>().map_err(|_| ApiError::invalid_request("message_id must be a UUID"))?
        }
        None => MessageId::new(),
    };
    let limit = whatsapp_limit(kind).min(core.max_media_bytes);
    let declared = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large(limit, kind));
    }
    let mut bytes = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::invalid_request(e.to_string()))?;
        if (bytes.len() + chunk.len()) as u64 > limit {
            return Err(too_large(limit, kind));
        }
        bytes.extend_from_slice(&chunk);
    }
    if bytes.is_empty() {
        return Err(
            ApiError::invalid_request("the file is empty").with_details(serde_json::json!({"field": "body"}))
        );
    }
    let sha = core.blobs.put(&bytes).await.map_err(ApiError::internal)?;
    let blob = MediaBlob::new(&sha, bytes.len() as u64, &content_type).map_err(ApiError::internal)?;
    let media = OutboundMedia::new(kind.as_str(), blob, query.caption.clone(), query.filename.clone())
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_media", e.to_string()))?;
    let cmd = InteractionCommand::SendMedia { message_id, agent_id, media, at: core.clock.now() };
    let sent = core
        .interactions
        .execute(&interaction_id.to_string(), cmd, core.metadata(&auth.cause(), &correlation_id(&req)))
        .await;
    if let Err(e) = sent {
        return Err(offer_recontact(core, interaction_id, e.into()).await);
    }
    Ok(HttpResponse::Accepted().json(MessageAccepted { message_id: message_id.to_string() }))
}

/// `POST /api/interactions/{id}/templates`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SendTemplateRequest {
    /// The approved template's name (Twilio: its Content SID, `HX…`).
    pub name: String,
    /// Its language code, e.g. `en_US`.
    pub language: String,
    /// Body parameters in order (`{{1}}`, `{{2}}` ...).
    #[serde(default)]
    pub parameters: Vec<String>,
    /// Optional client-chosen id (UUID): resending with the same id records nothing new.
    pub message_id: Option<String>,
}

/// Sends an approved template (allowed outside the customer's 24 h window).
#[utoipa::path(post, path = "/api/interactions/{interaction_id}/templates", request_body = SendTemplateRequest,
    responses((status = 202, body = MessageAccepted), (status = 409, body = super::errors::ErrorBody),
              (status = 422, body = super::errors::ErrorBody)),
    security(("bearer" = [])), tag = "agent")]
pub async fn send_template(
    state: web::Data<AppState>,
    auth: Auth,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<SendTemplateRequest>,
) -> Result<HttpResponse, ApiError> {
    let agent_id = auth.agent()?;
    let interaction_id: InteractionId = parse_id(&path, "interaction_not_found")?;
    let body = body.into_inner();
    let template = TemplateMessage::new(&body.name, &body.language, body.parameters)
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_template", e.to_string()))?;
    let message_id = match &body.message_id {
        Some(raw) => {
            raw.parse::<MessageId>().map_err(|_| ApiError::invalid_request("message_id must be a UUID"))?
        }
        None => MessageId::new(),
    };
    let core = &state.core;
    let cmd = InteractionCommand::SendTemplate { message_id, agent_id, template, at: core.clock.now() };
    core.interactions
        .execute(&interaction_id.to_string(), cmd, core.metadata(&auth.cause(), &correlation_id(&req)))
        .await?;
    Ok(HttpResponse::Accepted().json(MessageAccepted { message_id: message_id.to_string() }))
}

/// Query of a signed media link.
#[derive(Debug, Deserialize)]
pub struct LinkQuery {
    ct: String,
    exp: i64,
    sig: String,
}

/// Serves a blob to a provider through a signed, expiring link.
pub async fn serve_link(
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: Option<web::Query<LinkQuery>>,
) -> Result<HttpResponse, ApiError> {
    let refused =
        || ApiError::new(StatusCode::FORBIDDEN, "invalid_media_link", "the link is invalid or expired");
    let query = query.ok_or_else(refused)?;
    let core = &state.core;
    let now = core.clock.now().timestamp();
    if !core.sealer.links().verify(&path, &query.ct, query.exp, &query.sig, now) {
        return Err(refused());
    }
    let bytes = core
        .blobs
        .get(&path)
        .await
        .map_err(|_| refused())?
        .ok_or_else(|| ApiError::not_found("media_not_found", "the media is no longer stored"))?;
    Ok(HttpResponse::Ok()
        .content_type(query.ct.clone())
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header(("Cache-Control", "private, max-age=300"))
        .body(bytes))
}
