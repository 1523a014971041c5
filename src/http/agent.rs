//! What agents do: presence (log in, ready, pause, log out), answer offers, write, close and
//! dispose. Every action is taken as the calling agent; supervisors may also close.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use switchboard_domain::agent::AgentCommand;
use switchboard_domain::interaction::{Closer, InteractionCommand};
use switchboard_domain::{DispositionCode, InteractionId, MessageText};
use utoipa::ToSchema;

use super::{ApiError, AppState, Auth, correlation_id, parse_id};
use crate::auth::Role;
use crate::services::offers;

/// Routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/me/login", web::post().to(log_in))
        .route("/api/me/ready", web::post().to(ready))
        .route("/api/me/pause", web::post().to(pause))
        .route("/api/me/logout", web::post().to(log_out))
        .route("/api/interactions/{interaction_id}/accept", web::post().to(accept))
        .route("/api/interactions/{interaction_id}/reject", web::post().to(reject))
        .route("/api/interactions/{interaction_id}/messages", web::post().to(send_text))
        .route("/api/interactions/{interaction_id}/close", web::post().to(close))
        .route("/api/interactions/{interaction_id}/dispose", web::post().to(dispose));
}

async fn presence(
    state: web::Data<AppState>,
    auth: Auth,
    req: HttpRequest,
    command: impl FnOnce(chrono::DateTime<chrono::Utc>) -> AgentCommand,
) -> Result<HttpResponse, ApiError> {
    let agent_id = auth.agent()?;
    let core = &state.core;
    core.agents
        .execute(
            &agent_id.to_string(),
            command(core.clock.now()),
            core.metadata(&auth.cause(), &correlation_id(&req)),
        )
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Comes online (paused).
#[utoipa::path(post, path = "/api/me/login", responses((status = 204)), security(("bearer" = [])), tag = "agent")]
pub async fn log_in(
    state: web::Data<AppState>,
    auth: Auth,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    presence(state, auth, req, |at| AgentCommand::LogIn { at }).await
}

/// Starts receiving offers.
#[utoipa::path(post, path = "/api/me/ready", responses((status = 204), (status = 409, body = super::errors::ErrorBody)),
    security(("bearer" = [])), tag = "agent")]
pub async fn ready(
    state: web::Data<AppState>,
    auth: Auth,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    presence(state, auth, req, |at| AgentCommand::MarkReady { at }).await
}

/// `POST /api/me/pause`.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct PauseRequest {
    /// Why (shown to supervisors).
    pub reason: Option<String>,
}

/// Stops receiving offers.
#[utoipa::path(post, path = "/api/me/pause", request_body = PauseRequest, responses((status = 204)),
    security(("bearer" = [])), tag = "agent")]
pub async fn pause(
    state: web::Data<AppState>,
    auth: Auth,
    req: HttpRequest,
    body: Option<web::Json<PauseRequest>>,
) -> Result<HttpResponse, ApiError> {
    let reason = body.and_then(|b| b.into_inner().reason).map(|r| r.chars().take(200).collect());
    presence(state, auth, req, |at| AgentCommand::Pause { reason, at }).await
}

/// Goes offline.
#[utoipa::path(post, path = "/api/me/logout", responses((status = 204)), security(("bearer" = [])), tag = "agent")]
pub async fn log_out(
    state: web::Data<AppState>,
    auth: Auth,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    presence(state, auth, req, |at| AgentCommand::LogOut { at }).await
}

/// Accepts the interaction offered to the caller.
#[utoipa::path(post, path = "/api/interactions/{interaction_id}/accept",
    responses((status = 204), (status = 409, body = super::errors::ErrorBody)), security(("bearer" = [])), tag = "agent")]
pub async fn accept(
    state: web::Data<AppState>,
    auth: Auth,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let agent_id = auth.agent()?;
    let interaction_id: InteractionId = parse_id(&path, "interaction_not_found")?;
    offers::accept(&state.core, agent_id, interaction_id, &auth.cause(), &correlation_id(&req)).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Declines the interaction offered to the caller; it is offered to the next agent.
#[utoipa::path(post, path = "/api/interactions/{interaction_id}/reject",
    responses((status = 204), (status = 409, body = super::errors::ErrorBody)), security(("bearer" = [])), tag = "agent")]
pub async fn reject(
    state: web::Data<AppState>,
    auth: Auth,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let agent_id = auth.agent()?;
    let interaction_id: InteractionId = parse_id(&path, "interaction_not_found")?;
    offers::reject(&state.core, agent_id, interaction_id, &auth.cause(), &correlation_id(&req)).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `POST /api/interactions/{id}/messages`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SendTextRequest {
    /// The text (1 to 4096 characters).
    pub text: String,
    /// Optional client-chosen id (UUID): resending with the same id records nothing new.
    pub message_id: Option<String>,
}

/// The accepted message.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MessageAccepted {
    /// Its id; delivery statuses arrive on the websocket under it.
    pub message_id: String,
}

/// Sends a text to the customer (queued in the outbox; statuses follow on the websocket).
#[utoipa::path(post, path = "/api/interactions/{interaction_id}/messages", request_body = SendTextRequest,
    responses((status = 202, body = MessageAccepted), (status = 409, body = super::errors::ErrorBody)),
    security(("bearer" = [])), tag = "agent")]
pub async fn send_text(
    state: web::Data<AppState>,
    auth: Auth,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<SendTextRequest>,
) -> Result<HttpResponse, ApiError> {
    let agent_id = auth.agent()?;
    let interaction_id: InteractionId = parse_id(&path, "interaction_not_found")?;
    let text = MessageText::parse(&body.text)?;
    let message_id = super::message_id_or_new(body.message_id.as_deref())?;
    let core = &state.core;
    let cmd = InteractionCommand::SendText { message_id, agent_id, text, at: core.clock.now() };
    let sent = core
        .interactions
        .execute(&interaction_id.to_string(), cmd, core.metadata(&auth.cause(), &correlation_id(&req)))
        .await;
    if let Err(e) = sent {
        // Outside the window, the refusal names the template the agent can send instead.
        return Err(super::media::offer_recontact(core, interaction_id, e.into()).await);
    }
    Ok(HttpResponse::Accepted().json(MessageAccepted { message_id: message_id.to_string() }))
}

/// Closes the interaction (its agent, or a supervisor).
#[utoipa::path(post, path = "/api/interactions/{interaction_id}/close",
    responses((status = 204), (status = 409, body = super::errors::ErrorBody)), security(("bearer" = [])), tag = "agent")]
pub async fn close(
    state: web::Data<AppState>,
    auth: Auth,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let interaction_id: InteractionId = parse_id(&path, "interaction_not_found")?;
    let by = match auth.0.role {
        Role::Agent => Closer::Agent(auth.agent()?),
        Role::Supervisor | Role::Admin => Closer::Supervisor,
    };
    let core = &state.core;
    let cmd = InteractionCommand::Close { by, at: core.clock.now() };
    core.interactions
        .execute(&interaction_id.to_string(), cmd, core.metadata(&auth.cause(), &correlation_id(&req)))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `POST /api/interactions/{id}/dispose`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct DisposeRequest {
    /// The disposition (1 to 64 characters).
    pub disposition: String,
}

/// Records the outcome of a closed interaction.
#[utoipa::path(post, path = "/api/interactions/{interaction_id}/dispose", request_body = DisposeRequest,
    responses((status = 204), (status = 409, body = super::errors::ErrorBody)), security(("bearer" = [])), tag = "agent")]
pub async fn dispose(
    state: web::Data<AppState>,
    auth: Auth,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<DisposeRequest>,
) -> Result<HttpResponse, ApiError> {
    let agent_id = auth.agent()?;
    let interaction_id: InteractionId = parse_id(&path, "interaction_not_found")?;
    let disposition = DispositionCode::parse(&body.disposition)?;
    let core = &state.core;
    let cmd = InteractionCommand::Dispose { agent_id, disposition, at: core.clock.now() };
    core.interactions
        .execute(&interaction_id.to_string(), cmd, core.metadata(&auth.cause(), &correlation_id(&req)))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
