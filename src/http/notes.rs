//! Internal notes: `POST /api/interactions/{id}/notes` writes one, `GET` lists them.
//!
//! A note is an event of the interaction (`NoteAdded`) and nothing else: it is not a message,
//! so the outbox never sees it and the customer never receives it. Agents write on the
//! interactions they own (the aggregate's rule: 403 `not_assigned_to_agent`), supervisors and
//! admins on any, even closed (their author is their token's label). Reading follows the
//! interaction detail: agents only on accounts they belong to (others get the same 404 as an
//! unknown interaction, so existence is not leaked). The owner and spying supervisors also
//! get a `note` frame on their websocket (`workers::feed`).
//!
//! [`thread`] is the conversation so far (messages and notes) from the read models, shown to
//! a supervisor who starts spying.

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{AnyPool, Row};
use switchboard_domain::interaction::{InteractionCommand, NoteAuthor};
use switchboard_domain::{InteractionId, MessageText, NoteId};
use switchboard_projections::runtime::time_of;
use utoipa::{OpenApi, ToSchema};

use super::{ApiError, AppState, Auth, correlation_id, parse_id};
use crate::auth::Role;

/// This module's part of the API description (merged in `openapi`).
#[derive(OpenApi)]
#[openapi(paths(add_note, list_notes), components(schemas(AddNote, NoteView, ThreadMessage)))]
pub struct ApiDoc;

/// Routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/interactions/{interaction_id}/notes", web::post().to(add_note))
        .route("/api/interactions/{interaction_id}/notes", web::get().to(list_notes));
}

/// `POST /api/interactions/{id}/notes`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddNote {
    /// The note (1 to 4096 characters, like a message).
    pub text: String,
    /// Optional client-chosen id (UUID); stored once whatever the retries.
    pub note_id: Option<String>,
}

/// A note as read.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct NoteView {
    /// Its id.
    pub note_id: String,
    /// The interaction.
    pub interaction_id: String,
    /// `agent` or `supervisor`.
    pub author_kind: String,
    /// The agent who wrote it (agents).
    pub author_agent_id: Option<String>,
    /// The token label of who wrote it (supervisors and admins).
    pub author_label: Option<String>,
    /// The text.
    pub text: String,
    /// When.
    pub at: Option<DateTime<Utc>>,
}

/// The interaction as the caller may see it, from its aggregate (no projection lag: a note
/// can follow an assignment at once). Agents outside its account get `interaction_not_found`.
async fn visible(state: &AppState, auth: &Auth, raw_id: &str) -> Result<InteractionId, ApiError> {
    let id: InteractionId = parse_id(raw_id, "interaction_not_found")?;
    let not_found = ApiError::interaction_not_found;
    let interaction = state.core.interactions.state(&id.to_string()).await?.state;
    let account_id = interaction.account_id.ok_or_else(not_found)?;
    if !auth.may_see_account(&state.core, account_id).await? {
        return Err(not_found());
    }
    Ok(id)
}

/// Writes an internal note (never sent to the customer).
#[utoipa::path(post, path = "/api/interactions/{interaction_id}/notes", request_body = AddNote,
    responses((status = 201, body = NoteView), (status = 403, body = super::errors::ErrorBody),
              (status = 404, body = super::errors::ErrorBody), (status = 422, body = super::errors::ErrorBody)),
    security(("bearer" = [])), tag = "supervisor")]
pub async fn add_note(
    state: web::Data<AppState>,
    auth: Auth,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<AddNote>,
) -> Result<HttpResponse, ApiError> {
    let interaction_id = visible(&state, &auth, &path).await?;
    let text = MessageText::parse(&body.text)?;
    let note_id = match body.note_id.as_deref() {
        Some(raw) => raw.parse().map_err(|_| ApiError::invalid_request("note_id must be a UUID"))?,
        None => NoteId::new(),
    };
    let author = match auth.0.role {
        Role::Agent => NoteAuthor::Agent { agent_id: auth.agent()? },
        Role::Supervisor | Role::Admin => NoteAuthor::Supervisor { label: auth.0.label.clone() },
    };
    let core = &state.core;
    let at = core.clock.now();
    let command = InteractionCommand::AddNote { note_id, author: author.clone(), text: text.clone(), at };
    core.interactions
        .execute(&interaction_id.to_string(), command, core.metadata(&auth.cause(), &correlation_id(&req)))
        .await?;
    let (author_kind, author_agent_id, author_label) = match author {
        NoteAuthor::Agent { agent_id } => ("agent", Some(agent_id.to_string()), None),
        NoteAuthor::Supervisor { label } => ("supervisor", None, Some(label)),
    };
    Ok(HttpResponse::Created().json(NoteView {
        note_id: note_id.to_string(),
        interaction_id: interaction_id.to_string(),
        author_kind: author_kind.to_owned(),
        author_agent_id,
        author_label,
        text: text.as_ref().to_owned(),
        at: Some(at),
    }))
}

/// The interaction's notes, oldest first.
#[utoipa::path(get, path = "/api/interactions/{interaction_id}/notes",
    responses((status = 200, body = [NoteView]), (status = 404, body = super::errors::ErrorBody)),
    security(("bearer" = [])), tag = "supervisor")]
pub async fn list_notes(
    state: web::Data<AppState>,
    auth: Auth,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    // The list row, as for the interaction detail (a deleted interaction is gone from it).
    let row = super::reads::visible_row(&state, &auth, &path).await?;
    let id: InteractionId = parse_id(&row.interaction_id, "interaction_not_found")?;
    Ok(HttpResponse::Ok().json(notes(&state.core.db.any, id).await?))
}

/// An interaction's notes, oldest first.
pub async fn notes(db: &AnyPool, id: InteractionId) -> Result<Vec<NoteView>, sqlx::Error> {
    sqlx::query(
        "SELECT note_id, interaction_id, author_kind, author_agent_id, author_label, text, at
           FROM interaction_notes WHERE interaction_id = $1 ORDER BY at, note_id",
    )
    .bind(id.to_string())
    .fetch_all(db)
    .await?
    .iter()
    .map(|r| {
        Ok(NoteView {
            note_id: r.try_get("note_id")?,
            interaction_id: r.try_get("interaction_id")?,
            author_kind: r.try_get("author_kind")?,
            author_agent_id: r.try_get("author_agent_id")?,
            author_label: r.try_get("author_label")?,
            text: r.try_get("text")?,
            at: time_of(Some(r.try_get("at")?)),
        })
    })
    .collect()
}

/// A message of the thread a spying supervisor is shown.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ThreadMessage {
    /// Id.
    pub message_id: String,
    /// `in` (customer) or `out`.
    pub direction: String,
    /// `text`, `media`, `template`...
    pub kind: String,
    /// Text or caption.
    pub body: Option<String>,
    /// The agent who sent it (`null`: the customer, or an automatic reply).
    pub agent_id: Option<String>,
    /// Delivery status (outbound).
    pub status: Option<String>,
    /// Media kind, when media.
    pub media_kind: Option<String>,
    /// Media file name, when known.
    pub media_filename: Option<String>,
    /// When.
    pub at: Option<DateTime<Utc>>,
}

/// The conversation so far: `(account_id, messages, notes)`, or `None` for an interaction the
/// list does not know (unknown or deleted).
pub async fn thread(
    db: &AnyPool,
    id: InteractionId,
) -> Result<Option<(String, Vec<ThreadMessage>, Vec<NoteView>)>, sqlx::Error> {
    let account: Option<(String,)> =
        sqlx::query_as("SELECT account_id FROM interaction_list WHERE interaction_id = $1")
            .bind(id.to_string())
            .fetch_optional(db)
            .await?;
    let Some((account_id,)) = account else { return Ok(None) };
    let messages = sqlx::query(
        "SELECT message_id, direction, kind, body, agent_id, status, media_kind, media_filename, at
           FROM interaction_messages WHERE interaction_id = $1 ORDER BY seq",
    )
    .bind(id.to_string())
    .fetch_all(db)
    .await?
    .iter()
    .map(|r| {
        Ok(ThreadMessage {
            message_id: r.try_get("message_id")?,
            direction: r.try_get("direction")?,
            kind: r.try_get("kind")?,
            body: r.try_get("body")?,
            agent_id: r.try_get("agent_id")?,
            status: r.try_get("status")?,
            media_kind: r.try_get("media_kind")?,
            media_filename: r.try_get("media_filename")?,
            at: time_of(r.try_get("at")?),
        })
    })
    .collect::<Result<Vec<_>, sqlx::Error>>()?;
    Ok(Some((account_id, messages, notes(db, id).await?)))
}
