//! Supervisor reads: one interaction with its messages, its full event history, and the agent
//! and queue boards (the interaction list and the search are in `search.rs`). Agents may read
//! the interactions of the accounts they were added to; the event history is for supervisors
//! and admins.
//!
//! Everything is read from the projections' tables; derived figures (counts, an agent's
//! load, the longest wait) are computed from their rows at read time so they cannot drift.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;
use switchboard_domain::{AccountId, InteractionId};
use switchboard_projections::runtime::time_of;
use utoipa::ToSchema;

use super::{ApiError, AppState, Auth, parse_id};
use crate::auth::Role;
use crate::services::search::{InteractionRow, ROW_COLUMNS, row};

/// Routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/interactions/{interaction_id}", web::get().to(get_interaction))
        .route("/api/interactions/{interaction_id}/events", web::get().to(interaction_events))
        .route("/api/interactions/{interaction_id}/messages/{message_id}/media", web::get().to(message_media))
        .route("/api/agents/status", web::get().to(agent_board))
        .route("/api/queues/status", web::get().to(queue_board));
}

/// One message of an interaction.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MessageRow {
    /// Our id.
    pub message_id: String,
    /// `in` (customer) or `out` (agent, or an automatic reply).
    pub direction: String,
    /// `text` or the provider's type.
    pub kind: String,
    /// Text or summary.
    pub body: String,
    /// Provider's id.
    pub provider_message_id: Option<String>,
    /// Sending agent.
    pub agent_id: Option<String>,
    /// An automatic reply of the routing plan (outbound, no agent).
    pub auto_reply: bool,
    /// `received`, `pending`, `accepted`, `sent`, `delivered`, `read` or `failed`.
    pub status: String,
    /// Provider error code.
    pub error_code: Option<String>,
    /// Provider error text.
    pub error_reason: Option<String>,
    /// When.
    pub at: Option<DateTime<Utc>>,
    /// The media the message carries, if any.
    pub media: Option<MediaInfo>,
}

/// A message's media.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MediaInfo {
    /// `image`, `audio`, `video`, `document` or `sticker`.
    pub kind: String,
    /// `pending` (customer media still downloading), `stored` or `unavailable`.
    pub state: String,
    /// MIME type.
    pub content_type: Option<String>,
    /// Size in bytes, once stored.
    pub size: Option<i64>,
    /// SHA-256 of the bytes, once stored.
    pub sha256: Option<String>,
    /// File name (documents).
    pub filename: Option<String>,
    /// Why it is unavailable.
    pub error: Option<String>,
    /// Where to download it (with the same bearer token), once stored.
    pub url: Option<String>,
}

/// An interaction with its messages.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct InteractionDetail {
    /// The list row.
    #[serde(flatten)]
    pub interaction: InteractionRow,
    /// Messages, oldest first.
    pub messages: Vec<MessageRow>,
}

/// The list row of an interaction the caller may see (its account's members, supervisors,
/// admins); anything else is 404 `interaction_not_found`, so existence is not leaked. Shared by
/// every per-interaction read (detail, notes, transcript).
pub(super) async fn visible_row(
    state: &AppState,
    auth: &Auth,
    raw_id: &str,
) -> Result<InteractionRow, ApiError> {
    let interaction_id: InteractionId = parse_id(raw_id, "interaction_not_found")?;
    let found =
        sqlx::query(&format!("SELECT {ROW_COLUMNS} FROM interaction_list il WHERE il.interaction_id = $1"))
            .bind(interaction_id.to_string())
            .fetch_optional(&state.core.db.any)
            .await?;
    let not_found = ApiError::interaction_not_found;
    let found = row(&found.ok_or_else(not_found)?)?;
    let account_id: AccountId = found.account_id.parse().map_err(|_| not_found())?;
    // Agents get the same 404 for an interaction of another account: existence is not leaked.
    if !auth.may_see_account(&state.core, account_id).await? {
        return Err(not_found());
    }
    Ok(found)
}

/// One interaction with its messages.
#[utoipa::path(get, path = "/api/interactions/{interaction_id}",
    responses((status = 200, body = InteractionDetail), (status = 404, body = super::errors::ErrorBody)),
    security(("bearer" = [])), tag = "supervisor")]
pub async fn get_interaction(
    state: web::Data<AppState>,
    auth: Auth,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let interaction = visible_row(&state, &auth, &path).await?;
    let rows = sqlx::query(
        "SELECT message_id, direction, kind, body, provider_message_id, agent_id, status, error_code, error_reason, at,
                media_kind, media_state, media_content_type, media_size, media_sha256, media_filename, media_error
           FROM interaction_messages WHERE interaction_id = $1 ORDER BY seq",
    )
    .bind(interaction.interaction_id.as_str())
    .fetch_all(&state.core.db.any)
    .await?;
    let messages = rows
        .iter()
        .map(|r| {
            let direction: String = r.try_get("direction")?;
            let agent_id: Option<String> = r.try_get("agent_id")?;
            Ok(MessageRow {
                message_id: r.try_get("message_id")?,
                auto_reply: direction == "out" && agent_id.is_none(),
                direction,
                kind: r.try_get("kind")?,
                body: r.try_get("body")?,
                provider_message_id: r.try_get("provider_message_id")?,
                agent_id,
                status: r.try_get("status")?,
                error_code: r.try_get("error_code")?,
                error_reason: r.try_get("error_reason")?,
                at: time_of(r.try_get("at")?),
                media: media_info(r, &interaction.interaction_id)?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    Ok(HttpResponse::Ok().json(InteractionDetail { interaction, messages }))
}

fn media_info(r: &AnyRow, interaction_id: &str) -> Result<Option<MediaInfo>, sqlx::Error> {
    let Some(kind) = r.try_get::<Option<String>, _>("media_kind")? else { return Ok(None) };
    let state: String = r.try_get::<Option<String>, _>("media_state")?.unwrap_or_else(|| "pending".into());
    let message_id: String = r.try_get("message_id")?;
    Ok(Some(MediaInfo {
        url: (state == "stored")
            .then(|| format!("/api/interactions/{interaction_id}/messages/{message_id}/media")),
        kind,
        state,
        content_type: r.try_get("media_content_type")?,
        size: r.try_get("media_size")?,
        sha256: r.try_get("media_sha256")?,
        filename: r.try_get("media_filename")?,
        error: r.try_get("media_error")?,
    }))
}

/// Downloads a message's media (customer media once fetched, or what an agent sent).
#[utoipa::path(get, path = "/api/interactions/{interaction_id}/messages/{message_id}/media",
    responses((status = 200, description = "the bytes, with their content type"),
              (status = 404, body = super::errors::ErrorBody)),
    security(("bearer" = [])), tag = "agent")]
pub async fn message_media(
    state: web::Data<AppState>,
    auth: Auth,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (raw_interaction, raw_message) = path.into_inner();
    let interaction = visible_row(&state, &auth, &raw_interaction).await?;
    let not_found = || ApiError::not_found("media_not_found", "this message has no stored media");
    let message_id: switchboard_domain::MessageId = raw_message.parse().map_err(|_| not_found())?;
    let found: Option<(Option<String>, Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT media_sha256, media_content_type, media_filename FROM interaction_messages
          WHERE interaction_id = $1 AND message_id = $2 AND media_state = 'stored'",
    )
    .bind(interaction.interaction_id.as_str())
    .bind(message_id.to_string())
    .fetch_optional(&state.core.db.any)
    .await?;
    let Some((Some(sha), content_type, filename)) = found else { return Err(not_found()) };
    let bytes = state.core.blobs.get(&sha).await.map_err(ApiError::internal)?.ok_or_else(not_found)?;
    let mut response = HttpResponse::Ok();
    response
        .content_type(content_type.unwrap_or_else(|| "application/octet-stream".into()))
        // Customer files are never rendered as our own pages.
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header(("Content-Security-Policy", "sandbox"))
        .insert_header(("Cache-Control", "private, max-age=3600"));
    if let Some(name) = filename {
        let safe: String =
            name.chars().filter(|c| c.is_ascii_graphic() || *c == ' ').filter(|c| *c != '"').collect();
        response.insert_header(("Content-Disposition", format!("attachment; filename=\"{safe}\"")));
    }
    Ok(response.body(bytes))
}

/// One stored event.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EventRecord {
    /// Sequence within the interaction, from 1.
    pub sequence: i64,
    /// Stable event name.
    pub event_type: String,
    /// Event schema version.
    pub event_version: String,
    /// The event.
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    /// Who caused it, when, and the correlation id.
    #[schema(value_type = Object)]
    pub metadata: serde_json::Value,
    /// When the database stored it.
    pub recorded_at: Option<DateTime<Utc>>,
}

/// The interaction's full event history, straight from the log (supervisors and admins).
#[utoipa::path(get, path = "/api/interactions/{interaction_id}/events",
    responses((status = 200, body = [EventRecord]), (status = 404, body = super::errors::ErrorBody)),
    security(("bearer" = [])), tag = "supervisor")]
pub async fn interaction_events(
    state: web::Data<AppState>,
    auth: Auth,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    auth.require(&[Role::Admin, Role::Supervisor])?;
    let interaction_id: InteractionId = parse_id(&path, "interaction_not_found")?;
    let stored = crate::audit::events::read(
        &state.core.db,
        &state.core.pii,
        "Interaction",
        &interaction_id.to_string(),
        crate::audit::events::Upto::All,
    )
    .await?;
    if stored.is_empty() {
        return Err(ApiError::not_found("interaction_not_found", "no such interaction"));
    }
    let events: Vec<EventRecord> = stored
        .into_iter()
        .map(|e| EventRecord {
            sequence: e.sequence,
            event_type: e.event_type,
            event_version: e.event_version,
            payload: e.payload,
            metadata: e.metadata,
            recorded_at: time_of(Some(e.recorded_at)),
        })
        .collect();
    Ok(HttpResponse::Ok().json(events))
}

/// One agent on the board.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AgentRow {
    /// Id.
    pub agent_id: String,
    /// Name.
    pub name: String,
    /// `offline`, `ready` or `paused`.
    pub presence: String,
    /// Pause reason.
    pub reason: Option<String>,
    /// Since when (the presence's last change).
    pub since: Option<DateTime<Utc>>,
    /// Concurrent interactions the agent may hold.
    pub capacity: i64,
    /// Whether offers can reach them (false once a dropped websocket's grace ran out).
    pub reachable: bool,
    /// Their websocket dropped: the end of the grace period to reconnect.
    pub reconnect_by: Option<DateTime<Utc>>,
    /// Open interactions assigned to them.
    pub load: i64,
    /// Offers they hold now.
    pub offers: i64,
    /// Interactions whose mandatory disposition they are entering (wrap-up).
    pub wrap_ups: i64,
    /// Queues they belong to, in join order.
    pub queues: Vec<String>,
}

/// The agent presence board.
#[utoipa::path(get, path = "/api/agents/status", responses((status = 200, body = [AgentRow])),
    security(("bearer" = [])), tag = "supervisor")]
pub async fn agent_board(state: web::Data<AppState>, auth: Auth) -> Result<HttpResponse, ApiError> {
    auth.require(&[Role::Admin, Role::Supervisor])?;
    let rows = sqlx::query(
        "SELECT a.agent_id, a.name, a.presence, a.reason, a.updated_at, a.capacity, a.reachable, a.reconnect_by,
                (SELECT COUNT(*) FROM agent_load l WHERE l.agent_id = a.agent_id AND l.open = 1) AS load,
                (SELECT COUNT(*) FROM interaction_offers o WHERE o.agent_id = a.agent_id) AS offers,
                (SELECT COUNT(*) FROM agent_wrap_ups w WHERE w.agent_id = a.agent_id) AS wrap_ups
           FROM agent_status a ORDER BY a.name, a.agent_id",
    )
    .fetch_all(&state.core.db.any)
    .await?;
    let memberships: Vec<(String, String)> =
        sqlx::query_as("SELECT agent_id, queue_id FROM queue_members ORDER BY joined_at, queue_id")
            .fetch_all(&state.core.db.any)
            .await?;
    let board = rows
        .iter()
        .map(|r| {
            let agent_id: String = r.try_get("agent_id")?;
            let queues = memberships.iter().filter(|(a, _)| *a == agent_id).map(|(_, q)| q.clone()).collect();
            Ok(AgentRow {
                name: r.try_get("name")?,
                presence: r.try_get("presence")?,
                reason: r.try_get("reason")?,
                since: time_of(r.try_get("updated_at")?),
                capacity: r.try_get("capacity")?,
                reachable: r.try_get::<i64, _>("reachable")? != 0,
                reconnect_by: time_of(r.try_get("reconnect_by")?),
                load: r.try_get("load")?,
                offers: r.try_get("offers")?,
                wrap_ups: r.try_get("wrap_ups")?,
                queues,
                agent_id,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    Ok(HttpResponse::Ok().json(board))
}

/// One queue on the board.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct QueueRow {
    /// Id.
    pub queue_id: String,
    /// Name.
    pub name: String,
    /// Offer timeout (s).
    pub offer_timeout_secs: i64,
    /// How members are chosen: `ring_all`, `round_robin`, `least_recent` or `fewest_open`.
    pub strategy: String,
    /// Priority against other queues (0 to 10, higher first).
    pub weight: i64,
    /// Members.
    pub members: i64,
    /// Members taking offers (ready and reachable).
    pub available_agents: i64,
    /// Interactions waiting (offered or not).
    pub waiting: i64,
    /// Of which currently offered.
    pub offered: i64,
    /// How long the longest-waiting interaction has waited (s); `null` when none waits.
    pub longest_wait_secs: Option<i64>,
    /// Offers accepted so far.
    pub accepted_total: i64,
    /// Offers rejected so far.
    pub rejected_total: i64,
    /// Offers timed out so far.
    pub timed_out_total: i64,
    /// The interactions waiting, longest first.
    pub waiting_interactions: Vec<WaitingRow>,
}

/// An interaction waiting in a queue.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WaitingRow {
    /// The interaction.
    pub interaction_id: String,
    /// Since when it waits in this queue.
    pub queued_at: Option<DateTime<Utc>>,
    /// How long it has waited (s).
    pub wait_secs: i64,
    /// When the wait ends (the plan moves on); `null`: no deadline.
    pub until: Option<DateTime<Utc>>,
    /// Why it is here: `plan`, `plan_end`, `sticky_queue` or `transfer`.
    pub reason: Option<String>,
    /// The agent holding the latest offer, if any.
    pub offered_to: Option<String>,
}

/// The queue board.
#[utoipa::path(get, path = "/api/queues/status", responses((status = 200, body = [QueueRow])),
    security(("bearer" = [])), tag = "supervisor")]
pub async fn queue_board(state: web::Data<AppState>, auth: Auth) -> Result<HttpResponse, ApiError> {
    auth.require(&[Role::Admin, Role::Supervisor])?;
    let rows = sqlx::query(
        "SELECT q.queue_id, q.name, q.offer_timeout_s, q.strategy, q.weight,
                q.accepted_total, q.rejected_total, q.timed_out_total,
                (SELECT COUNT(*) FROM queue_members m WHERE m.queue_id = q.queue_id) AS members,
                (SELECT COUNT(*) FROM queue_members m WHERE m.queue_id = q.queue_id AND m.available = 1) AS available,
                (SELECT COUNT(*) FROM queue_waiting w WHERE w.queue_id = q.queue_id) AS waiting,
                (SELECT COUNT(*) FROM queue_waiting w WHERE w.queue_id = q.queue_id AND w.offered_to IS NOT NULL) AS offered
           FROM queue_status q ORDER BY q.name, q.queue_id",
    )
    .fetch_all(&state.core.db.any)
    .await?;
    let waiting_rows = sqlx::query(
        "SELECT queue_id, interaction_id, queued_at, until_at, reason, offered_to FROM queue_waiting
          ORDER BY queued_at, interaction_id",
    )
    .fetch_all(&state.core.db.any)
    .await?;
    let now = state.core.clock.now_ms();
    let mut waiting: Vec<(String, WaitingRow)> = Vec::with_capacity(waiting_rows.len());
    for r in &waiting_rows {
        let queued_at: i64 = r.try_get("queued_at")?;
        let row = WaitingRow {
            interaction_id: r.try_get("interaction_id")?,
            queued_at: time_of(Some(queued_at)),
            wait_secs: (now - queued_at).max(0) / 1000,
            until: time_of(r.try_get("until_at")?),
            reason: r.try_get("reason")?,
            offered_to: r.try_get("offered_to")?,
        };
        waiting.push((r.try_get("queue_id")?, row));
    }
    let mut board = Vec::with_capacity(rows.len());
    for r in &rows {
        let queue_id: String = r.try_get("queue_id")?;
        let (mine, rest): (Vec<_>, Vec<_>) = waiting.into_iter().partition(|(q, _)| *q == queue_id);
        waiting = rest;
        let waiting_interactions: Vec<WaitingRow> = mine.into_iter().map(|(_, w)| w).collect();
        board.push(QueueRow {
            name: r.try_get("name")?,
            offer_timeout_secs: r.try_get("offer_timeout_s")?,
            strategy: r.try_get("strategy")?,
            weight: r.try_get("weight")?,
            members: r.try_get("members")?,
            available_agents: r.try_get("available")?,
            waiting: r.try_get("waiting")?,
            offered: r.try_get("offered")?,
            longest_wait_secs: waiting_interactions.first().map(|w| w.wait_secs),
            accepted_total: r.try_get("accepted_total")?,
            rejected_total: r.try_get("rejected_total")?,
            timed_out_total: r.try_get("timed_out_total")?,
            waiting_interactions,
            queue_id,
        });
    }
    Ok(HttpResponse::Ok().json(board))
}
