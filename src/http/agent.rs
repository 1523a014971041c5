//! What agents do: presence (log in, ready, pause, log out), answer offers, write, transfer,
//! tag, wrap up, close and dispose. Every action is taken as the calling agent; supervisors
//! and admins may also close. Whether the caller owns the interaction is the aggregate's rule,
//! not checked here. A disposition is chosen from the catalogues (general and the account's)
//! by id and recorded as its label; free text only while there is no catalogue.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::json;
use switchboard_domain::agent::AgentCommand;
use switchboard_domain::catalog::{self, DispositionChoice, Scope};
use switchboard_domain::interaction::{Closer, InteractionCommand, InteractionEvent};
use switchboard_domain::routing::Target;
use switchboard_domain::{AgentId, DispositionCode, InteractionId, MessageText, PauseReason, Tag};
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
        .route("/api/interactions/{interaction_id}/transfer", web::post().to(transfer))
        .route("/api/interactions/{interaction_id}/tags", web::post().to(add_tags))
        .route("/api/interactions/{interaction_id}/wrap-up", web::post().to(wrap_up))
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
    let reason = body.and_then(|b| b.into_inner().reason).map(|r| PauseReason::parse(&r)).transpose()?;
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

/// `POST /api/interactions/{id}/close` (the body is optional).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CloseRequest {
    /// A disposition of the general or the account's catalogue (`GET
    /// /api/interactions/{id}/dispositions`): closes and disposes in one step, recording its
    /// label. Required when the account's disposition is mandatory; agents only.
    pub disposition_id: Option<String>,
    /// Free-text disposition (1 to 64 characters), accepted only while neither the general
    /// nor the account's catalogue has a disposition; give this or `disposition_id`.
    pub disposition: Option<String>,
}

/// The code an agent's close or dispose records: a catalogue disposition's label, or free
/// text while there is no catalogue to choose from (see ADR 0014). `None` when neither field
/// was given.
async fn chosen_disposition(
    state: &AppState,
    interaction_id: InteractionId,
    disposition_id: Option<&str>,
    free: Option<&str>,
) -> Result<Option<DispositionCode>, ApiError> {
    let choice = match (disposition_id, free) {
        (None, None) => return Ok(None),
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid_field(
                "ambiguous_disposition",
                "disposition_id",
                "give `disposition_id` or `disposition`, not both",
            ));
        }
        (Some(raw), None) => DispositionChoice::Catalogue(raw.parse().map_err(|_| {
            ApiError::invalid_id("disposition_id").with_details(json!({"field": "disposition_id"}))
        })?),
        // `invalid_text`, as before catalogues existed, now with the field in `details`.
        (None, Some(raw)) => DispositionChoice::Free(
            DispositionCode::parse(raw)
                .map_err(|e| ApiError::from(e).with_details(json!({"field": "disposition"})))?,
        ),
    };
    let core = &state.core;
    let interaction = core.interactions.state(&interaction_id.to_string()).await?.state;
    let account_id = interaction.account_id.ok_or_else(ApiError::interaction_not_found)?;
    let general =
        core.dispositions.state(&Scope::General.aggregate_id()).await.map_err(ApiError::from_catalog)?;
    let account = core
        .dispositions
        .state(&Scope::Account(account_id).aggregate_id())
        .await
        .map_err(ApiError::from_catalog)?;
    Ok(Some(catalog::choose(&general.state, &account.state, choice)?))
}

/// Closes the interaction (its agent, or a supervisor or admin), optionally with its
/// disposition.
#[utoipa::path(post, path = "/api/interactions/{interaction_id}/close", request_body = Option<CloseRequest>,
    responses((status = 204), (status = 409, body = super::errors::ErrorBody),
        (status = 422, body = super::errors::ErrorBody)),
    security(("bearer" = [])), tag = "agent")]
pub async fn close(
    state: web::Data<AppState>,
    auth: Auth,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let interaction_id: InteractionId = parse_id(&path, "interaction_not_found")?;
    let body: CloseRequest = super::optional_json(&body)?.unwrap_or_default();
    let by = match auth.0.role {
        Role::Agent => Closer::Agent(auth.agent()?),
        // Dispositions are the handling agent's record; a supervisor closing one records none.
        Role::Supervisor | Role::Admin if body.disposition.is_some() || body.disposition_id.is_some() => {
            return Err(ApiError::disposition_by_agent_only());
        }
        Role::Supervisor | Role::Admin => Closer::Supervisor,
    };
    let disposition = chosen_disposition(
        &state,
        interaction_id,
        body.disposition_id.as_deref(),
        body.disposition.as_deref(),
    )
    .await?;
    let core = &state.core;
    let cmd = InteractionCommand::Close { by, disposition, at: core.clock.now() };
    core.interactions
        .execute(&interaction_id.to_string(), cmd, core.metadata(&auth.cause(), &correlation_id(&req)))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `POST /api/interactions/{id}/transfer`: exactly one of `agent_id` and `queue_id`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferRequest {
    /// The agent to hand it to (must be added to the interaction's account).
    pub agent_id: Option<String>,
    /// The queue to hand it to.
    pub queue_id: Option<String>,
}

/// The transfer was requested.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TransferAccepted {
    /// When it returns to the caller, unread, if nobody accepts it.
    pub until: Option<chrono::DateTime<chrono::Utc>>,
}

/// Where a transfer goes, once the target is known to exist and may work the account.
async fn transfer_target(
    state: &AppState,
    interaction_id: InteractionId,
    body: &TransferRequest,
) -> Result<Target, ApiError> {
    let core = &state.core;
    let target = match (&body.agent_id, &body.queue_id) {
        (Some(agent), None) => Target::Agent(agent.parse().map_err(|_| ApiError::invalid_id("agent_id"))?),
        (None, Some(queue)) => Target::Queue(queue.parse().map_err(|_| ApiError::invalid_id("queue_id"))?),
        _ => return Err(ApiError::invalid_request("give exactly one of `agent_id` and `queue_id`")),
    };
    let interaction = core.interactions.state(&interaction_id.to_string()).await?.state;
    let account_id = interaction.account_id.ok_or_else(ApiError::interaction_not_found)?;
    match target {
        Target::Queue(queue_id) => {
            if !core.queues.state(&queue_id.to_string()).await?.state.created {
                return Err(ApiError::not_found("queue_not_found", "no such queue"));
            }
        }
        Target::Agent(agent_id) => {
            if !core.agents.state(&agent_id.to_string()).await?.state.registered {
                return Err(ApiError::not_found("agent_not_found", "no such agent"));
            }
            // Same rule as accepting an offer: only agents added to the account may work it.
            if !core.accounts.state(&account_id.to_string()).await?.state.agents.contains(&agent_id) {
                return Err(ApiError::not_account_member());
            }
        }
    }
    Ok(target)
}

/// Hands the caller's interaction to another agent or a queue. The caller keeps it until
/// someone accepts; if nobody does within the account's transfer timeout it comes back.
#[utoipa::path(post, path = "/api/interactions/{interaction_id}/transfer", request_body = TransferRequest,
    responses((status = 202, body = TransferAccepted), (status = 403, body = super::errors::ErrorBody),
        (status = 404, body = super::errors::ErrorBody), (status = 409, body = super::errors::ErrorBody),
        (status = 422, body = super::errors::ErrorBody)),
    security(("bearer" = [])), tag = "agent")]
pub async fn transfer(
    state: web::Data<AppState>,
    auth: Auth,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<TransferRequest>,
) -> Result<HttpResponse, ApiError> {
    let agent_id: AgentId = auth.agent()?;
    let interaction_id: InteractionId = parse_id(&path, "interaction_not_found")?;
    let to = transfer_target(&state, interaction_id, &body).await?;
    let core = &state.core;
    let cmd = InteractionCommand::Transfer { agent_id, to, at: core.clock.now() };
    let events = core
        .interactions
        .execute(&interaction_id.to_string(), cmd, core.metadata(&auth.cause(), &correlation_id(&req)))
        .await?;
    let until = events.iter().find_map(|e| match &e.payload {
        InteractionEvent::TransferRequested { until, .. } => Some(*until),
        _ => None,
    });
    Ok(HttpResponse::Accepted().json(TransferAccepted { until }))
}

/// `POST /api/interactions/{id}/tags`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct TagsRequest {
    /// Tags to add (1 to 50 characters each); ones already on the interaction are ignored.
    pub tags: Vec<String>,
}

/// Tags the caller's interaction.
#[utoipa::path(post, path = "/api/interactions/{interaction_id}/tags", request_body = TagsRequest,
    responses((status = 204), (status = 403, body = super::errors::ErrorBody),
        (status = 422, body = super::errors::ErrorBody)),
    security(("bearer" = [])), tag = "agent")]
pub async fn add_tags(
    state: web::Data<AppState>,
    auth: Auth,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<TagsRequest>,
) -> Result<HttpResponse, ApiError> {
    let agent_id = auth.agent()?;
    let interaction_id: InteractionId = parse_id(&path, "interaction_not_found")?;
    let tags = body.tags.iter().map(|t| Tag::parse(t)).collect::<Result<_, _>>()?;
    let core = &state.core;
    let cmd = InteractionCommand::AddTags { agent_id, tags, at: core.clock.now() };
    core.interactions
        .execute(&interaction_id.to_string(), cmd, core.metadata(&auth.cause(), &correlation_id(&req)))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The caller opens the disposition dialog of their interaction: under mandatory disposition
/// they are paused (with the account's reason) until it is disposed.
#[utoipa::path(post, path = "/api/interactions/{interaction_id}/wrap-up",
    responses((status = 204), (status = 403, body = super::errors::ErrorBody),
        (status = 409, body = super::errors::ErrorBody)),
    security(("bearer" = [])), tag = "agent")]
pub async fn wrap_up(
    state: web::Data<AppState>,
    auth: Auth,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let agent_id = auth.agent()?;
    let interaction_id: InteractionId = parse_id(&path, "interaction_not_found")?;
    let core = &state.core;
    let cmd = InteractionCommand::StartWrapUp { agent_id, at: core.clock.now() };
    core.interactions
        .execute(&interaction_id.to_string(), cmd, core.metadata(&auth.cause(), &correlation_id(&req)))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `POST /api/interactions/{id}/dispose`: exactly one of the two.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DisposeRequest {
    /// A disposition of the general or the account's catalogue (its label is recorded).
    pub disposition_id: Option<String>,
    /// Free text (1 to 64 characters), accepted only while there is no catalogue.
    pub disposition: Option<String>,
}

/// Records the outcome of a closed interaction.
#[utoipa::path(post, path = "/api/interactions/{interaction_id}/dispose", request_body = DisposeRequest,
    responses((status = 204), (status = 409, body = super::errors::ErrorBody),
        (status = 422, body = super::errors::ErrorBody)),
    security(("bearer" = [])), tag = "agent")]
pub async fn dispose(
    state: web::Data<AppState>,
    auth: Auth,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<DisposeRequest>,
) -> Result<HttpResponse, ApiError> {
    let agent_id = auth.agent()?;
    let interaction_id: InteractionId = parse_id(&path, "interaction_not_found")?;
    let disposition = chosen_disposition(
        &state,
        interaction_id,
        body.disposition_id.as_deref(),
        body.disposition.as_deref(),
    )
    .await?
    .ok_or_else(|| {
        ApiError::invalid_field(
            "disposition_id_required",
            "disposition_id",
            "give `disposition_id` (or, without a catalogue, `disposition`)",
        )
    })?;
    let core = &state.core;
    let cmd = InteractionCommand::Dispose { agent_id, disposition, at: core.clock.now() };
    core.interactions
        .execute(&interaction_id.to_string(), cmd, core.metadata(&auth.cause(), &correlation_id(&req)))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
