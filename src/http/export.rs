//! Exports over HTTP: the interaction list as CSV (filtered by the list's query string, or
//! the selected rows posted as criteria) and one interaction's transcript as a zip.
//!
//! Who may export: the CSV is for supervisors and administrators only (agents get 403
//! `forbidden`: a bulk file of customers' numbers leaves the system's access control once
//! downloaded, and agents work one conversation at a time). A transcript follows the
//! interaction detail's rule: agents may download those of the accounts they belong to,
//! and get the same 404 as for a missing interaction otherwise. The work itself lives in
//! [`crate::services::export`]; these handlers authorise, parse and stream.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use switchboard_domain::{AccountId, InteractionId};
use utoipa::{IntoParams, OpenApi};

use super::search::invalid_search;
use super::{ApiError, AppState, Auth, parse_id};
use crate::auth::Role;
use crate::services::export::{self, CSV_PAGE_ROWS, MAX_TRANSCRIPT_ATTACHMENT_BYTES};
use crate::services::search::{Criteria, ListQuery, Viewer, compile};

/// This module's part of the API description (merged in `openapi`).
#[derive(OpenApi)]
#[openapi(paths(export_csv, export_selected_csv, transcript_zip))]
pub struct ApiDoc;

/// Routes. Registered before the interaction reads, so `export.csv` is never taken for an
/// interaction id.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/interactions/export.csv", web::get().to(export_csv))
        .route("/api/interactions/export.csv", web::post().to(export_selected_csv))
        .route("/api/interactions/{interaction_id}/transcript.zip", web::get().to(transcript_zip));
}

/// Streams the CSV of what `criteria` covers (supervisors and admins only).
fn csv_response(state: &AppState, auth: &Auth, criteria: &Criteria) -> Result<HttpResponse, ApiError> {
    auth.require(&[Role::Admin, Role::Supervisor])?;
    // Refused before the response starts: a bad criterion is a 400, not a broken download.
    compile(criteria, state.core.db.backend, Viewer::Everyone).map_err(invalid_search)?;
    let date = state.core.clock.now().format("%Y-%m-%d");
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header(("Content-Disposition", format!("attachment; filename=\"interactions-{date}.csv\"")))
        .insert_header(("Cache-Control", "no-store"))
        .streaming(export::csv_stream(
            state.core.db.any.clone(),
            state.core.db.backend,
            criteria.clone(),
            CSV_PAGE_ROWS,
        )))
}

/// The interactions the list's filters cover, as CSV (newest first, streamed).
#[utoipa::path(get, path = "/api/interactions/export.csv", params(ListQuery),
    responses((status = 200, content_type = "text/csv", description = "header row, then one row per interaction"),
              (status = 400, body = super::errors::ErrorBody), (status = 403, body = super::errors::ErrorBody)),
    security(("bearer" = [])), tag = "supervisor")]
pub async fn export_csv(
    state: web::Data<AppState>,
    auth: Auth,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    auth.require(&[Role::Admin, Role::Supervisor])?;
    let criteria = query.criteria().map_err(invalid_search)?;
    csv_response(&state, &auth, &criteria)
}

/// The interactions the posted criteria cover (`{"ids": [...]}` for the selected rows), as
/// CSV (newest first, streamed).
#[utoipa::path(post, path = "/api/interactions/export.csv", request_body = Criteria,
    responses((status = 200, content_type = "text/csv", description = "header row, then one row per interaction"),
              (status = 400, body = super::errors::ErrorBody), (status = 403, body = super::errors::ErrorBody)),
    security(("bearer" = [])), tag = "supervisor")]
pub async fn export_selected_csv(
    state: web::Data<AppState>,
    auth: Auth,
    body: web::Json<Criteria>,
) -> Result<HttpResponse, ApiError> {
    csv_response(&state, &auth, &body)
}

/// The transcript's options.
#[derive(Debug, Deserialize, IntoParams)]
pub struct TranscriptQuery {
    /// `true` to include the stored media files (default `false`).
    pub attachments: Option<String>,
    /// `true` to include the internal notes, in their own section (default `false`: a
    /// transcript is often handed to the customer, who must never see them).
    pub notes: Option<String>,
}

/// `true`/`false` (absent: `false`); anything else is refused rather than guessed.
fn flag(name: &str, value: Option<&str>) -> Result<bool, ApiError> {
    match value {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => {
            Err(ApiError::invalid_request(format!("{name} must be `true` or `false`, not `{other}`")))
        }
    }
}

/// One interaction's transcript: a zip with `transcript.txt`, `transcript.json` and, with
/// `attachments=true`, `attachments/<message_id>-<file name>` for every stored media file.
/// Internal notes are included only with `notes=true` (for whoever may read them).
#[utoipa::path(get, path = "/api/interactions/{interaction_id}/transcript.zip", params(TranscriptQuery),
    responses((status = 200, content_type = "application/zip", description = "the zip"),
              (status = 400, body = super::errors::ErrorBody), (status = 404, body = super::errors::ErrorBody),
              (status = 413, body = super::errors::ErrorBody)),
    security(("bearer" = [])), tag = "supervisor")]
pub async fn transcript_zip(
    state: web::Data<AppState>,
    auth: Auth,
    path: web::Path<String>,
    query: web::Query<TranscriptQuery>,
) -> Result<HttpResponse, ApiError> {
    let attachments = flag("attachments", query.attachments.as_deref())?;
    let notes = flag("notes", query.notes.as_deref())?;
    let interaction_id: InteractionId = parse_id(&path, "interaction_not_found")?;
    let mut transcript = export::load_transcript(&state.core.db.any, &interaction_id.to_string())
        .await?
        .ok_or_else(ApiError::interaction_not_found)?;
    let account_id: AccountId =
        transcript.interaction.account_id.parse().map_err(|_| ApiError::interaction_not_found())?;
    // Agents get the same 404 for another account's interaction: existence is not leaked.
    if !auth.may_see_account(&state.core, account_id).await? {
        return Err(ApiError::interaction_not_found());
    }
    if notes {
        export::load_notes(&state.core.db.any, &mut transcript).await?;
    }
    let mut files = Vec::new();
    if attachments {
        if transcript.stored_media_bytes() > MAX_TRANSCRIPT_ATTACHMENT_BYTES {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "transcript_too_large",
                format!(
                    "the attachments exceed {} MiB; download them one by one or export without attachments",
                    MAX_TRANSCRIPT_ATTACHMENT_BYTES / (1024 * 1024)
                ),
            ));
        }
        let mut included = BTreeMap::new();
        for (index, sha) in transcript.stored_media() {
            // A blob missing from the store is listed in the transcript without a file.
            let Some(bytes) = state.core.blobs.get(&sha).await.map_err(ApiError::internal)? else { continue };
            let Some(path) = transcript.attachment_path(index) else { continue };
            included.insert(index, path.clone());
            files.push((path, bytes));
        }
        export::mark_included(&mut transcript, &included);
    }
    let name = format!("transcript-{}.zip", transcript.interaction.interaction_id);
    let zip = web::block(move || export::build_zip(&transcript, &files))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    Ok(HttpResponse::Ok()
        .content_type("application/zip")
        .insert_header(("Content-Disposition", format!("attachment; filename=\"{name}\"")))
        .insert_header(("Cache-Control", "no-store"))
        .body(zip))
}
