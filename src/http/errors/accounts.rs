//! HTTP mapping of the typed errors of: Account administration: CRUD, key claims, credentials, change history.

use actix_web::http::StatusCode;
use switchboard_domain::account::AccountError;

use super::DomainCode;

impl DomainCode for AccountError {
    fn status_code(&self) -> (StatusCode, &'static str) {
        match self {
            AccountError::AlreadyExists => (StatusCode::CONFLICT, "account_exists"),
            AccountError::NotFound => (StatusCode::NOT_FOUND, "account_not_found"),
            AccountError::InvalidPlan(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_routing_plan"),
            AccountError::InvalidRules(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_channel_rules"),
        }
    }
}
