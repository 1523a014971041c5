//! Account administration: CRUD, key claims, credentials, change history.
//!
//! SKELETON: filled in by its owner.

use actix_web::web;
use utoipa::OpenApi;

/// This module's part of the API description (merged in `openapi`).
#[derive(OpenApi)]
#[openapi()]
pub struct ApiDoc;

/// Routes.
pub fn routes(_cfg: &mut web::ServiceConfig) {}
