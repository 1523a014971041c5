//! Audit endpoints (ADR 0018): chain verification and signed checkpoints (admins), the event
//! history of any aggregate and its state at an instant (admins and supervisors; agents 403).
//!
//! Handlers are thin: the work is in `crate::audit`. Verification outcomes are results, not
//! errors: a broken chain or a failed checkpoint answers 200 with `ok: false`.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use switchboard_projections::runtime::time_of;
use utoipa::{IntoParams, OpenApi, ToSchema};

use super::{ApiError, AppState, Auth};
use crate::audit::chain::{Break, BreakKind, VerifyReport};
use crate::audit::checkpoint::{self, Checkpoint, CheckpointReport, Head, HeadProblem, HeadProblemKind};
use crate::audit::events::{self, RawEvent, Upto};
use crate::audit::replay::Kind;
use crate::auth::Role;

/// Largest checkpoint accepted for verification (one head per aggregate: ~200 bytes each).
const MAX_CHECKPOINT_BYTES: usize = 512 * 1024 * 1024;

/// This module's part of the API description (merged in `openapi`).
#[derive(OpenApi)]
#[openapi(
    paths(verify, create_checkpoint, verify_checkpoint, aggregate_events, aggregate_state),
    components(schemas(
        VerifyReport,
        Break,
        BreakKind,
        Checkpoint,
        Head,
        CheckpointReport,
        HeadProblem,
        HeadProblemKind,
        AuditEvent,
        StateAt
    ))
)]
pub struct ApiDoc;

/// Routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/audit/verify", web::get().to(verify))
        .route("/api/audit/checkpoints", web::post().to(create_checkpoint))
        .service(
            web::resource("/api/audit/checkpoints/verify")
                .app_data(web::PayloadConfig::new(MAX_CHECKPOINT_BYTES))
                .route(web::post().to(verify_checkpoint)),
        )
        .route("/api/audit/{kind}/{id}/events", web::get().to(aggregate_events))
        .route("/api/audit/{kind}/{id}/state", web::get().to(aggregate_state));
}

/// Recomputes every aggregate's hash chain and reports the first broken link of each
/// (`hash_mismatch`, `broken_link`, `sequence_gap`, `missing_hash`). Admins only.
#[utoipa::path(get, path = "/api/audit/verify",
    responses((status = 200, body = VerifyReport), (status = 403, body = super::errors::ErrorBody)),
    security(("bearer" = [])), tag = "audit")]
pub async fn verify(state: web::Data<AppState>, auth: Auth) -> Result<HttpResponse, ApiError> {
    auth.require(&[Role::Admin])?;
    Ok(HttpResponse::Ok().json(crate::audit::chain::verify(&state.core.db).await?))
}

fn signer(state: &AppState) -> Result<&checkpoint::Signer, ApiError> {
    state.core.audit_signer.as_deref().ok_or_else(|| {
        ApiError::new(
            actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
            "audit_key_unavailable",
            "this server has no checkpoint signing key",
        )
    })
}

/// A signed checkpoint of every aggregate's chain head, to be kept off the machine.
/// Admins only.
#[utoipa::path(post, path = "/api/audit/checkpoints",
    responses((status = 200, body = Checkpoint), (status = 403, body = super::errors::ErrorBody)),
    security(("bearer" = [])), tag = "audit")]
pub async fn create_checkpoint(state: web::Data<AppState>, auth: Auth) -> Result<HttpResponse, ApiError> {
    auth.require(&[Role::Admin])?;
    let signer = signer(&state)?;
    let checkpoint = checkpoint::create(&state.core.db, signer, state.core.clock.now()).await?;
    Ok(HttpResponse::Ok().json(checkpoint))
}

/// Which key to trust when verifying a checkpoint.
#[derive(Debug, Deserialize, IntoParams)]
pub struct TrustedKey {
    /// Base64 Ed25519 public key to trust (default: this server's own checkpoint key).
    pub public_key: Option<String>,
}

/// Checks a checkpoint: its signature under the trusted key, then that every recorded head
/// still exists with the same hash (`truncated`, `rewritten`) and that the chains verify.
/// 400 `invalid_request` for a body that is not a checkpoint or a malformed key. Admins only.
#[utoipa::path(post, path = "/api/audit/checkpoints/verify", params(TrustedKey), request_body = Checkpoint,
    responses((status = 200, body = CheckpointReport), (status = 400, body = super::errors::ErrorBody),
        (status = 403, body = super::errors::ErrorBody)),
    security(("bearer" = [])), tag = "audit")]
pub async fn verify_checkpoint(
    state: web::Data<AppState>,
    auth: Auth,
    query: web::Query<TrustedKey>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    auth.require(&[Role::Admin])?;
    let checkpoint: Checkpoint = serde_json::from_slice(&body)
        .map_err(|e| ApiError::invalid_request(format!("not a checkpoint: {e}")))?;
    let trusted = match &query.public_key {
        Some(key) => {
            checkpoint::parse_public_key(key).map_err(|e| ApiError::invalid_request(e.to_string()))?
        }
        None => signer(&state)?.verifying_key(),
    };
    Ok(HttpResponse::Ok().json(checkpoint::verify(&state.core.db, &checkpoint, &trusted).await?))
}

/// One event of an aggregate's history.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AuditEvent {
    /// Sequence within the aggregate, from 1.
    pub sequence: i64,
    /// Position in the whole log.
    pub global_position: i64,
    /// Stable event type.
    pub event_type: String,
    /// Event version.
    pub event_version: String,
    /// When it was stored.
    pub at: Option<DateTime<Utc>>,
    /// When it happened, as its metadata says.
    pub occurred_at: Option<String>,
    /// Who caused it (`admin:label`, `agent:id`, `provider:meta`, `system:router`...).
    pub caused_by: Option<String>,
    /// The request or message that caused it.
    pub correlation_id: Option<String>,
    /// The event.
    #[schema(value_type = Object)]
    pub payload: Value,
    /// Chain hash.
    pub hash: Option<String>,
    /// Predecessor's chain hash.
    pub prev_hash: Option<String>,
}

impl From<RawEvent> for AuditEvent {
    fn from(e: RawEvent) -> Self {
        let meta = |k: &str| e.metadata[k].as_str().map(str::to_owned);
        Self {
            sequence: e.sequence,
            global_position: e.global_position,
            at: time_of(Some(e.recorded_at)),
            occurred_at: meta("occurred_at"),
            caused_by: meta("caused_by"),
            correlation_id: meta("correlation_id"),
            event_type: e.event_type,
            event_version: e.event_version,
            payload: e.payload,
            hash: e.hash,
            prev_hash: e.prev_hash,
        }
    }
}

fn kind(segment: &str) -> Result<Kind, ApiError> {
    Kind::parse(segment).ok_or_else(|| {
        ApiError::not_found(
            "unknown_aggregate_kind",
            "kind must be interactions, agents, queues, accounts, contact-lists or contact-cards",
        )
    })
}

fn aggregate_not_found() -> ApiError {
    ApiError::not_found("aggregate_not_found", "no events for this aggregate")
}

/// Every event of an interaction, agent, queue, account, contact list or contact card, with
/// when it was stored, who caused it and its chain hashes. Admins and supervisors.
#[utoipa::path(get, path = "/api/audit/{kind}/{id}/events",
    params(("kind" = String, Path, description = "interactions, agents, queues, accounts, contact-lists or contact-cards"),
        ("id" = String, Path, description = "aggregate id")),
    responses((status = 200, body = [AuditEvent]), (status = 403, body = super::errors::ErrorBody),
        (status = 404, body = super::errors::ErrorBody)),
    security(("bearer" = [])), tag = "audit")]
pub async fn aggregate_events(
    state: web::Data<AppState>,
    auth: Auth,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    auth.require(&[Role::Admin, Role::Supervisor])?;
    let (segment, id) = path.into_inner();
    let kind = kind(&segment)?;
    let events = events::read(&state.core.db, &state.core.pii, kind.aggregate_type(), &id, Upto::All).await?;
    if events.is_empty() {
        return Err(aggregate_not_found());
    }
    Ok(HttpResponse::Ok().json(events.into_iter().map(AuditEvent::from).collect::<Vec<_>>()))
}

/// The instant to replay to: exactly one of the three.
#[derive(Debug, Deserialize, IntoParams)]
pub struct Instant {
    /// Stored at or before this time (RFC 3339).
    pub at: Option<DateTime<Utc>>,
    /// Up to and including this sequence (from 1).
    pub sequence: Option<i64>,
    /// Up to and including this global log position (from 1).
    pub position: Option<i64>,
}

/// An aggregate's state at an instant.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StateAt {
    /// Aggregate type.
    pub aggregate_type: String,
    /// Aggregate id.
    pub aggregate_id: String,
    /// The last event folded.
    pub sequence: i64,
    /// Its global position.
    pub global_position: i64,
    /// When it was stored.
    pub at: Option<DateTime<Utc>>,
    /// Its type.
    pub event_type: String,
    /// The state, as the aggregate serialises it (account secrets masked).
    #[schema(value_type = Object)]
    pub state: Value,
}

/// The state of an aggregate after its events up to `at`, `sequence` or `position` (exactly
/// one: 400 `invalid_request` otherwise), folded with the aggregate's own apply. 404
/// `aggregate_not_found` for no events at all, `no_state_at` when the instant is before its
/// first event. Admins and supervisors.
#[utoipa::path(get, path = "/api/audit/{kind}/{id}/state",
    params(("kind" = String, Path, description = "interactions, agents, queues, accounts, contact-lists or contact-cards"),
        ("id" = String, Path, description = "aggregate id"), Instant),
    responses((status = 200, body = StateAt), (status = 400, body = super::errors::ErrorBody),
        (status = 403, body = super::errors::ErrorBody), (status = 404, body = super::errors::ErrorBody)),
    security(("bearer" = [])), tag = "audit")]
pub async fn aggregate_state(
    state: web::Data<AppState>,
    auth: Auth,
    path: web::Path<(String, String)>,
    query: web::Query<Instant>,
) -> Result<HttpResponse, ApiError> {
    auth.require(&[Role::Admin, Role::Supervisor])?;
    let (segment, id) = path.into_inner();
    let kind = kind(&segment)?;
    let upto = match (query.at, query.sequence, query.position) {
        (Some(t), None, None) => Upto::RecordedAt(t.timestamp_millis()),
        (None, Some(n), None) if n >= 1 => Upto::Sequence(n),
        (None, None, Some(n)) if n >= 1 => Upto::Position(n),
        (None, Some(_), None) | (None, None, Some(_)) => {
            return Err(ApiError::invalid_request("sequence and position start at 1"));
        }
        _ => return Err(ApiError::invalid_request("give exactly one of `at`, `sequence` or `position`")),
    };
    let db = &state.core.db;
    let events = events::read(db, &state.core.pii, kind.aggregate_type(), &id, upto).await?;
    let Some(last) = events.last() else {
        return Err(
            if events::read(db, &state.core.pii, kind.aggregate_type(), &id, Upto::Sequence(1))
                .await?
                .is_empty()
            {
                aggregate_not_found()
            } else {
                ApiError::not_found("no_state_at", "the aggregate had no events yet at that point")
            },
        );
    };
    let folded = kind.fold(&events).map_err(ApiError::internal)?;
    Ok(HttpResponse::Ok().json(StateAt {
        aggregate_type: last.aggregate_type.clone(),
        aggregate_id: last.aggregate_id.clone(),
        sequence: last.sequence,
        global_position: last.global_position,
        at: time_of(Some(last.recorded_at)),
        event_type: last.event_type.clone(),
        state: folded,
    }))
}
