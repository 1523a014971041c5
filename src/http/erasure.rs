//! Erasing a contact (GDPR right to erasure) and deleting an interaction.
//!
//! - `POST /api/accounts/{account_id}/erasures` (administrators only: it is irreversible):
//!   destroys the keys sealing the contact's personal data in the event log, records
//!   `ContactErased`, and the read models forget the contact. Refused while one of its
//!   interactions is open (409 `contact_has_open_interaction`).
//! - `DELETE /api/interactions/{id}` (supervisors and administrators): a closed interaction
//!   leaves every read model; its events stay (sealed) for the audit trail.
//!
//! The logic is in `crate::pii::erase`; see ADR 0020.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use switchboard_domain::{AccountId, InteractionId, PhoneNumber};
use utoipa::{OpenApi, ToSchema};

use super::{ApiError, AppState, Auth, correlation_id, parse_id};
use crate::auth::Role;
use crate::pii::erase::{self, EraseError, ErasureReport};

/// This module's part of the API description (merged in `openapi`).
#[derive(OpenApi)]
#[openapi(paths(erase_contact, delete_interaction), components(schemas(EraseContact, ErasureReport)))]
pub struct ApiDoc;

/// Routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/accounts/{account_id}/erasures", web::post().to(erase_contact))
        .route("/api/interactions/{interaction_id}", web::delete().to(delete_interaction));
}

/// `POST /api/accounts/{account_id}/erasures`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EraseContact {
    /// The customer's number, `+` and 8 to 15 digits.
    pub phone: String,
}

impl From<EraseError> for ApiError {
    fn from(e: EraseError) -> Self {
        match e {
            EraseError::AccountNotFound => ApiError::not_found("account_not_found", "no such account"),
            EraseError::OpenInteraction(id) => {
                ApiError::new(StatusCode::CONFLICT, "contact_has_open_interaction", e.to_string())
                    .with_details(serde_json::json!({ "interaction_id": id.to_string() }))
            }
            EraseError::Unavailable(cause) => {
                tracing::error!(%cause, "erasure failed");
                ApiError::unavailable("the erasure could not complete; retry")
            }
        }
    }
}

/// Erases a contact: every interaction it had on the account loses its personal data, in
/// the read models and (by destroying the keys) in the event log; directory cards with the
/// number are deleted. Repeating it erases nothing more (`erased: false`).
#[utoipa::path(post, path = "/api/accounts/{account_id}/erasures", request_body = EraseContact,
    params(("account_id" = String, Path, description = "The account")),
    responses(
        (status = 200, body = ErasureReport),
        (status = 403, body = super::errors::ErrorBody, description = "not an administrator"),
        (status = 404, body = super::errors::ErrorBody, description = "account_not_found"),
        (status = 409, body = super::errors::ErrorBody, description = "contact_has_open_interaction"),
        (status = 422, body = super::errors::ErrorBody, description = "invalid_phone_number")),
    security(("bearer" = [])), tag = "admin")]
pub async fn erase_contact(
    state: web::Data<AppState>,
    auth: Auth,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<EraseContact>,
) -> Result<HttpResponse, ApiError> {
    auth.require(&[Role::Admin])?;
    let account_id: AccountId = parse_id(&path, "account_not_found")?;
    let phone = PhoneNumber::parse(body.phone.trim())?;
    let report =
        erase::erase_contact(&state.core, &auth.cause(), &correlation_id(&req), account_id, &phone).await?;
    Ok(HttpResponse::Ok().json(report))
}

/// Deletes a closed interaction from every read model (list, messages, tags, offers, notes,
/// full-text index). 409 `interaction_open` while open; 404 once deleted.
#[utoipa::path(delete, path = "/api/interactions/{interaction_id}",
    params(("interaction_id" = String, Path, description = "The interaction")),
    responses(
        (status = 204, description = "deleted"),
        (status = 403, body = super::errors::ErrorBody, description = "agents may not delete"),
        (status = 404, body = super::errors::ErrorBody, description = "interaction_not_found"),
        (status = 409, body = super::errors::ErrorBody, description = "interaction_open")),
    security(("bearer" = [])), tag = "supervisor")]
pub async fn delete_interaction(
    state: web::Data<AppState>,
    auth: Auth,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    auth.require(&[Role::Admin, Role::Supervisor])?;
    let interaction_id: InteractionId = parse_id(&path, "interaction_not_found")?;
    erase::delete_interaction(&state.core, &auth.cause(), &correlation_id(&req), interaction_id).await?;
    Ok(HttpResponse::NoContent().finish())
}
