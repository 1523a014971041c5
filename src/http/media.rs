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
//! - `GET /media/{sha256}/{name}?ct&exp&sig`: no bearer token (providers cannot send one), but a
//!   link is only good for the blob, content type and expiry it was signed for.
//!
//! A send refused with `window_closed` carries the account's recontact template in
//! `error.details.recontact_template`, so the agent can be offered it at once.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt;
use serde::Deserialize;
use switchboard_domain::InteractionId;
use switchboard_domain::interaction::{
    InteractionCommand, MediaBlob, OutboundMedia, TemplateMessage, parse_content_type,
};
use utoipa::{IntoParams, ToSchema};

use super::agent::MessageAccepted;
use super::{ApiError, AppState, Auth, correlation_id, parse_id};
use crate::core::Core;
use crate::providers::MediaKind;

/// Routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/interactions/{interaction_id}/media", web::post().to(send_media))
        .route("/api/interactions/{interaction_id}/templates", web::post().to(send_template))
        .route("/api/accounts/{account_id}/templates", web::get().to(list_templates))
        .route("/media/{sha256}", web::get().to(serve_link))
        .route("/media/{sha256}/{name}", web::get().to(serve_named_link));
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
        .and_then(|ct| parse_content_type(ct).ok())
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
    let message_id = super::message_id_or_new(query.message_id.as_deref())?;
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
    let media = OutboundMedia::new(kind.as_str(), blob, query.caption.clone(), query.filename.clone())?;
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
    let template = TemplateMessage::new(&body.name, &body.language, body.parameters)?;
    let message_id = super::message_id_or_new(body.message_id.as_deref())?;
    let core = &state.core;
    let cmd = InteractionCommand::SendTemplate { message_id, agent_id, template, at: core.clock.now() };
    core.interactions
        .execute(&interaction_id.to_string(), cmd, core.metadata(&auth.cause(), &correlation_id(&req)))
        .await?;
    Ok(HttpResponse::Accepted().json(MessageAccepted { message_id: message_id.to_string() }))
}

/// Query of `GET /api/accounts/{id}/templates`.
#[derive(Debug, Deserialize, IntoParams)]
pub struct TemplateQuery {
    /// `all` lists every template; by default only `APPROVED` ones (the ones that can be sent).
    pub status: Option<String>,
}

/// The account's message templates, read from the provider (Meta Cloud API accounts).
#[utoipa::path(get, path = "/api/accounts/{account_id}/templates", params(TemplateQuery),
    responses((status = 200, description = "[{name, language, status, category, body, body_parameters}]"),
              (status = 404, body = super::errors::ErrorBody), (status = 501, body = super::errors::ErrorBody),
              (status = 502, body = super::errors::ErrorBody)),
    security(("bearer" = [])), tag = "agent")]
pub async fn list_templates(
    state: web::Data<AppState>,
    auth: Auth,
    path: web::Path<String>,
    query: web::Query<TemplateQuery>,
) -> Result<HttpResponse, ApiError> {
    let not_found = || ApiError::not_found("account_not_found", "no such account");
    let account_id: switchboard_domain::AccountId = parse_id(&path, "account_not_found")?;
    if !auth.may_see_account(&state.core, account_id).await? {
        return Err(not_found());
    }
    let core = &state.core;
    let account = core.accounts.state(&account_id.to_string()).await?.state;
    let Some(switchboard_domain::account::ProviderSettings::Meta(meta)) = &account.provider else {
        return Err(match account.provider {
            None => not_found(),
            Some(other) => ApiError::new(
                StatusCode::NOT_IMPLEMENTED,
                "templates_not_listable",
                format!(
                    "{} templates are managed in the provider's console; send them by name",
                    other.kind()
                ),
            ),
        });
    };
    let token = core.sealer.open(&meta.access_token).map_err(ApiError::internal)?;
    let templates = crate::providers::meta::MetaClient::new(core.http.clone())
        .list_templates(&meta.api_base_url, &meta.api_version, &meta.business_account_id, &token)
        .await
        .map_err(|e| match e {
            crate::providers::FetchError::Retryable(reason) => ApiError::unavailable(reason),
            other => ApiError::new(StatusCode::BAD_GATEWAY, "provider_error", other.to_string()),
        })?;
    let all = query.status.as_deref() == Some("all");
    let templates: Vec<_> = templates.into_iter().filter(|t| all || t.status == "APPROVED").collect();
    Ok(HttpResponse::Ok().json(templates))
}

/// Query of a signed media link.
#[derive(Debug, Deserialize)]
pub struct LinkQuery {
    ct: String,
    exp: i64,
    sig: String,
}

/// `/media/{sha256}/{name}`: the same, with a file name for providers that read one from
/// the URL (the name is not signed and does not select anything).
pub async fn serve_named_link(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    query: Option<web::Query<LinkQuery>>,
) -> Result<HttpResponse, ApiError> {
    let (sha256, _name) = path.into_inner();
    serve(&state, &sha256, query).await
}

/// Serves a blob to a provider through a signed, expiring link.
pub async fn serve_link(
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: Option<web::Query<LinkQuery>>,
) -> Result<HttpResponse, ApiError> {
    serve(&state, &path, query).await
}

async fn serve(
    state: &AppState,
    path: &str,
    query: Option<web::Query<LinkQuery>>,
) -> Result<HttpResponse, ApiError> {
    let refused =
        || ApiError::new(StatusCode::FORBIDDEN, "invalid_media_link", "the link is invalid or expired");
    let query = query.ok_or_else(refused)?;
    let core = &state.core;
    let now = core.clock.now().timestamp();
    if !core.sealer.links().verify(path, &query.ct, query.exp, &query.sig, now) {
        return Err(refused());
    }
    let bytes = core
        .blobs
        .get(path)
        .await
        .map_err(|_| refused())?
        .ok_or_else(|| ApiError::not_found("media_not_found", "the media is no longer stored"))?;
    Ok(HttpResponse::Ok()
        .content_type(query.ct.clone())
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header(("Cache-Control", "private, max-age=300"))
        .body(bytes))
}
