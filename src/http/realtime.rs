//! Supervisors' figures over HTTP: `GET /api/realtime` (now, with performance since today's
//! start or `since`) and `GET /api/stats/agents?from&to` (performance over any window).
//!
//! Both read the `performance` projection's facts through the same function
//! (`services::realtime::performance`), so for the same window they give the same numbers.
//! The same snapshot is pushed to supervisors' websockets as `realtime` frames
//! (`workers::feed::publish_realtime`). Supervisors and admins only.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::{IntoParams, OpenApi};

use super::{ApiError, AppState, Auth};
use crate::auth::Role;
use crate::services::realtime::{self, ActiveInteractions, AgentNow, AgentPerformance, QueueNow, Snapshot};

/// This module's part of the API description (merged in `openapi`).
#[derive(OpenApi)]
#[openapi(
    paths(realtime_view, agent_stats),
    components(schemas(Snapshot, ActiveInteractions, QueueNow, AgentNow, AgentPerformance))
)]
pub struct ApiDoc;

/// Routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/realtime", web::get().to(realtime_view))
        .route("/api/stats/agents", web::get().to(agent_stats));
}

fn time(name: &str, raw: Option<&str>) -> Result<Option<DateTime<Utc>>, ApiError> {
    crate::services::search::time_param(name, raw).map_err(|e| ApiError::invalid_request(e.0))
}

/// `GET /api/realtime`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct RealtimeQuery {
    /// Start of the performance window (RFC 3339); default today 00:00 UTC. It ends now.
    pub since: Option<String>,
}

/// What is happening now: open interactions, queues, agents, and today's performance.
#[utoipa::path(get, path = "/api/realtime", params(RealtimeQuery),
    responses((status = 200, body = Snapshot), (status = 400, body = super::errors::ErrorBody),
              (status = 403, body = super::errors::ErrorBody)),
    security(("bearer" = [])), tag = "supervisor")]
pub async fn realtime_view(
    state: web::Data<AppState>,
    auth: Auth,
    query: web::Query<RealtimeQuery>,
) -> Result<HttpResponse, ApiError> {
    auth.require(&[Role::Admin, Role::Supervisor])?;
    let since = time("since", query.since.as_deref())?;
    if since.is_some_and(|s| s > state.core.clock.now()) {
        return Err(ApiError::invalid_request("since must not be in the future"));
    }
    Ok(HttpResponse::Ok().json(realtime::snapshot(&state.core, since).await?))
}

/// `GET /api/stats/agents`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct StatsQuery {
    /// Start of the window, included (RFC 3339); default today 00:00 UTC.
    pub from: Option<String>,
    /// End of the window, excluded (RFC 3339); default now.
    pub to: Option<String>,
}

/// Per-agent performance over `[from, to)`: handled, average handling and first response
/// times, offers accepted, rejected and missed. Agents with nothing in the window are absent.
#[utoipa::path(get, path = "/api/stats/agents", params(StatsQuery),
    responses((status = 200, body = [AgentPerformance]), (status = 400, body = super::errors::ErrorBody),
              (status = 403, body = super::errors::ErrorBody)),
    security(("bearer" = [])), tag = "supervisor")]
pub async fn agent_stats(
    state: web::Data<AppState>,
    auth: Auth,
    query: web::Query<StatsQuery>,
) -> Result<HttpResponse, ApiError> {
    auth.require(&[Role::Admin, Role::Supervisor])?;
    let now = state.core.clock.now();
    let to = time("to", query.to.as_deref())?.unwrap_or(now);
    let from = time("from", query.from.as_deref())?.unwrap_or_else(|| realtime::start_of_day(now));
    if from >= to {
        return Err(ApiError::invalid_request("from must be before to"));
    }
    let figures =
        realtime::performance(&state.core.db.any, from.timestamp_millis(), to.timestamp_millis()).await?;
    Ok(HttpResponse::Ok().json(figures))
}
