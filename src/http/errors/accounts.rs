//! HTTP mapping of the typed errors of account administration: CRUD, key claims,
//! credentials, change history. Validation errors name their field in the message and in
//! `details.field`.

use actix_web::http::StatusCode;
use serde_json::json;
use switchboard_domain::account::key_claim::AccountKeyClaimError;
use switchboard_domain::account::{AccountError, AccountFieldError};

use super::{ApiError, DomainCode};
use crate::services::accounts::AccountServiceError;
use crate::services::history::HistoryError;

impl DomainCode for AccountError {
    fn status_code(&self) -> (StatusCode, &'static str) {
        match self {
            AccountError::AlreadyExists => (StatusCode::CONFLICT, "account_exists"),
            AccountError::NotFound => (StatusCode::NOT_FOUND, "account_not_found"),
            AccountError::InvalidPlan(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_routing_plan"),
            AccountError::InvalidRules(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_channel_rules"),
            AccountError::ProviderTypeChange { .. } => {
                (StatusCode::UNPROCESSABLE_ENTITY, "provider_type_change")
            }
        }
    }
}

impl DomainCode for AccountKeyClaimError {
    fn status_code(&self) -> (StatusCode, &'static str) {
        match self {
            AccountKeyClaimError::KeyTaken => (StatusCode::CONFLICT, "account_key_taken"),
        }
    }
}

impl From<AccountFieldError> for ApiError {
    fn from(e: AccountFieldError) -> Self {
        let code = match e {
            AccountFieldError::Description => "invalid_description",
            AccountFieldError::PublicDomain => "invalid_public_domain",
        };
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, e.to_string())
            .with_details(json!({"field": e.field()}))
    }
}

impl From<AccountServiceError> for ApiError {
    fn from(e: AccountServiceError) -> Self {
        match e {
            AccountServiceError::KeyTaken(_) => {
                Self::new(StatusCode::CONFLICT, "account_key_taken", e.to_string())
                    .with_details(json!({"field": "key"}))
            }
            AccountServiceError::UnknownList => {
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, "unknown_contact_list", e.to_string())
                    .with_details(json!({"field": "default_list"}))
            }
            AccountServiceError::HasOpenInteractions(n) => {
                Self::new(StatusCode::CONFLICT, "account_has_open_interactions", e.to_string())
                    .with_details(json!({"open_interactions": n}))
            }
            AccountServiceError::Account(e) => {
                let provider_type = matches!(
                    e,
                    crate::runtime::CommandError::Rejected(AccountError::ProviderTypeChange { .. })
                );
                let api: ApiError = e.into();
                if provider_type { api.with_details(json!({"field": "provider.type"})) } else { api }
            }
            AccountServiceError::Claim(e) => e.into(),
            AccountServiceError::Database(e) => e.into(),
            AccountServiceError::Unavailable(cause) => {
                tracing::error!(%cause, "account service dependency unavailable");
                Self::unavailable("temporarily unavailable; retry")
            }
            AccountServiceError::Crypto { .. } => Self::internal(e),
        }
    }
}

impl From<HistoryError> for ApiError {
    fn from(e: HistoryError) -> Self {
        match e {
            HistoryError::Database(e) => e.into(),
            HistoryError::Decode { .. } => Self::internal(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::CommandError;

    #[test]
    fn account_refusals_have_stable_codes_and_name_the_field() {
        let api: ApiError = AccountServiceError::KeyTaken("SUP".into()).into();
        assert_eq!((api.status, api.code), (StatusCode::CONFLICT, "account_key_taken"));
        assert_eq!(api.details, Some(json!({"field": "key"})));
        let api: ApiError = AccountServiceError::HasOpenInteractions(2).into();
        assert_eq!((api.status, api.code), (StatusCode::CONFLICT, "account_has_open_interactions"));
        let api: ApiError =
            AccountServiceError::Account(CommandError::Rejected(AccountError::ProviderTypeChange {
                from: "meta",
                to: "twilio",
            }))
            .into();
        assert_eq!((api.status, api.code), (StatusCode::UNPROCESSABLE_ENTITY, "provider_type_change"));
        assert!(api.message.contains("meta") && api.message.contains("twilio"), "{}", api.message);
        let api: ApiError = AccountFieldError::PublicDomain.into();
        assert_eq!(
            (api.code, api.details),
            ("invalid_public_domain", Some(json!({"field": "public_domain"})))
        );
    }
}
