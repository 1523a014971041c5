//! The one place errors become HTTP responses.
//!
//! Every error has a stable machine-readable `code` (clients switch on it; the text may
//! change), the right status, and a JSON body `{"error": {"code", "message"}}`. Domain
//! refusals are 4xx; infrastructure trouble is 503 with `Retry-After` so callers (and
//! providers redelivering webhooks) try again; nothing else leaks internals.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use switchboard_domain::ValueError;
use switchboard_domain::agent::AgentError;
use switchboard_domain::contact::ContactError;
use switchboard_domain::interaction::{ContentError, InteractionError};
use switchboard_domain::queue::QueueError;

use crate::runtime::CommandError;

// The mappings of each administration area's typed errors (still this one place: the
// `errors` module), kept in their own files so each area's codes read together.
mod accounts;
mod catalog;
mod directory;
mod notify;
use crate::services::ingest::IngestError;
use crate::services::offers::OfferError;

/// An API error: status, stable code, human message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable code.
    pub code: &'static str,
    /// Explanation for humans.
    pub message: String,
    /// Machine-readable help, e.g. the template to send instead when the window is closed.
    pub details: Option<serde_json::Value>,
}

/// The JSON error body.
#[derive(Debug, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// Code and message.
#[derive(Debug, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code.
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
    /// What the client can do about it (e.g. `recontact_template` with `window_closed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub details: Option<serde_json::Value>,
}

impl ApiError {
    /// Builds an error.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), details: None }
    }

    /// The same error with machine-readable help attached.
    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = Some(details);
        self
    }

    /// 400 `invalid_request`.
    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    /// 401 `unauthorized`.
    pub fn unauthorized() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", "a valid bearer token is required")
    }

    /// 403 `forbidden`.
    pub fn forbidden() -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", "your role does not allow this")
    }

    /// 404 with a specific code.
    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    /// 422 `invalid_id`: a body field that should hold an id does not.
    pub fn invalid_id(field: &str) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_id", format!("`{field}` must be a UUID"))
    }

    /// 404 `interaction_not_found`.
    pub fn interaction_not_found() -> Self {
        Self::not_found("interaction_not_found", "no such interaction")
    }

    /// 403 `not_account_member`: the agent was not added to the interaction's account.
    pub fn not_account_member() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "not_account_member",
            "the agent is not a member of the interaction's account",
        )
    }

    /// 403 `forbidden`: a supervisor or admin closing with a disposition (only the handling
    /// agent records one).
    pub fn disposition_by_agent_only() -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", "only the assigned agent records a disposition")
    }

    /// 503 `unavailable`: try again.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }

    /// 500 `internal`, logged with its cause; the cause is not returned.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(%cause, "internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error")
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response.insert_header(("Retry-After", "1"));
        }
        response.json(ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: self.message.clone(),
                details: self.details.clone(),
            },
        })
    }
}

impl From<ContentError> for ApiError {
    fn from(e: ContentError) -> Self {
        let code = match e {
            ContentError::BadTemplate(_) => "invalid_template",
            ContentError::BadContentType => "invalid_content_type",
            ContentError::BadDigest | ContentError::BadKind | ContentError::TooLong(_) => "invalid_media",
        };
        let status = match e {
            ContentError::BadContentType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            _ => StatusCode::UNPROCESSABLE_ENTITY,
        };
        Self::new(status, code, e.to_string())
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        tracing::error!(error = %e, "database error");
        Self::unavailable("the database is unavailable")
    }
}

impl From<ValueError> for ApiError {
    fn from(e: ValueError) -> Self {
        let code = match e {
            ValueError::InvalidPhoneNumber(_) => "invalid_phone_number",
            ValueError::InvalidAccountKey(_) => "invalid_account_key",
            ValueError::InvalidText { .. } => "invalid_text",
        };
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, e.to_string())
    }
}

/// Maps a domain rule to its status and code.
pub trait DomainCode {
    /// Status and stable code.
    fn status_code(&self) -> (StatusCode, &'static str);
}

impl DomainCode for AgentError {
    fn status_code(&self) -> (StatusCode, &'static str) {
        match self {
            AgentError::AlreadyRegistered => (StatusCode::CONFLICT, "agent_exists"),
            AgentError::NotFound => (StatusCode::NOT_FOUND, "agent_not_found"),
            AgentError::NotLoggedIn => (StatusCode::CONFLICT, "agent_not_logged_in"),
            AgentError::InvalidCapacity => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_capacity"),
            AgentError::WrapUpPending => (StatusCode::CONFLICT, "wrap_up_pending"),
        }
    }
}

impl DomainCode for QueueError {
    fn status_code(&self) -> (StatusCode, &'static str) {
        match self {
            QueueError::AlreadyExists => (StatusCode::CONFLICT, "queue_exists"),
            QueueError::NotFound => (StatusCode::NOT_FOUND, "queue_not_found"),
            QueueError::InvalidOfferTimeout => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_offer_timeout"),
            QueueError::InvalidWeight => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_weight"),
        }
    }
}

impl DomainCode for InteractionError {
    fn status_code(&self) -> (StatusCode, &'static str) {
        match self {
            InteractionError::NotFound => (StatusCode::NOT_FOUND, "interaction_not_found"),
            InteractionError::NotJoinable => (StatusCode::CONFLICT, "interaction_not_joinable"),
            InteractionError::Closed => (StatusCode::CONFLICT, "interaction_closed"),
            InteractionError::NotClosed => (StatusCode::CONFLICT, "interaction_not_closed"),
            InteractionError::AlreadyDisposed => (StatusCode::CONFLICT, "interaction_already_disposed"),
            InteractionError::AssignedToAnotherAgent => (StatusCode::CONFLICT, "assigned_to_another_agent"),
            InteractionError::NotAssignedToAgent => (StatusCode::FORBIDDEN, "not_assigned_to_agent"),
            InteractionError::WindowClosed => (StatusCode::CONFLICT, "window_closed"),
            InteractionError::UnknownMessage => (StatusCode::NOT_FOUND, "unknown_message"),
            InteractionError::UnknownMedia => (StatusCode::NOT_FOUND, "unknown_media"),
            InteractionError::NotOffered => (StatusCode::CONFLICT, "no_such_offer"),
            InteractionError::OfferExpired => (StatusCode::CONFLICT, "offer_expired"),
            InteractionError::OfferWithdrawn => (StatusCode::CONFLICT, "offer_withdrawn"),
            InteractionError::TransferDisabled => (StatusCode::FORBIDDEN, "transfer_disabled"),
            InteractionError::TransferToSelf => (StatusCode::UNPROCESSABLE_ENTITY, "transfer_to_self"),
            InteractionError::TransferPending => (StatusCode::CONFLICT, "transfer_pending"),
            InteractionError::DispositionRequired => {
                (StatusCode::UNPROCESSABLE_ENTITY, "disposition_required")
            }
            InteractionError::NoTags => (StatusCode::UNPROCESSABLE_ENTITY, "no_tags"),
            InteractionError::StillOpen => (StatusCode::CONFLICT, "interaction_open"),
        }
    }
}

impl DomainCode for ContactError {
    fn status_code(&self) -> (StatusCode, &'static str) {
        (StatusCode::CONFLICT, "contact_changed")
    }
}

impl<E: std::error::Error + DomainCode> From<CommandError<E>> for ApiError {
    fn from(e: CommandError<E>) -> Self {
        match e {
            CommandError::Rejected(rule) => {
                let (status, code) = rule.status_code();
                Self::new(status, code, rule.to_string())
            }
            CommandError::DuplicateProviderMessage => {
                Self::new(StatusCode::CONFLICT, "duplicate", "already recorded")
            }
            CommandError::Conflict => {
                Self::new(StatusCode::SERVICE_UNAVAILABLE, "conflict_retry", "concurrent update; retry")
            }
            CommandError::Store(cause) => {
                tracing::error!(%cause, "event store error");
                Self::unavailable("the event store is unavailable")
            }
            CommandError::Unavailable => Self::unavailable("the aggregate is unavailable"),
        }
    }
}

impl From<OfferError> for ApiError {
    fn from(e: OfferError) -> Self {
        match e {
            OfferError::UnknownInteraction => Self::interaction_not_found(),
            OfferError::NotAccountMember => Self::not_account_member(),
            OfferError::Interaction(e) => e.into(),
        }
    }
}

impl From<IngestError> for ApiError {
    fn from(e: IngestError) -> Self {
        match e {
            IngestError::Invalid { .. } => {
                Self::new(StatusCode::BAD_REQUEST, "malformed_payload", e.to_string())
            }
            IngestError::Unavailable(cause) => {
                tracing::error!(%cause, "webhook ingestion failed");
                Self::unavailable("temporarily unable to record; retry")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::MessageBody;

    #[test]
    fn unavailable_errors_ask_to_retry() {
        let response = ApiError::unavailable("x").error_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers().get("Retry-After").and_then(|v| v.to_str().ok()), Some("1"));
    }

    #[test]
    fn error_bodies_carry_the_stable_code() {
        let api: ApiError = CommandError::Rejected(InteractionError::WindowClosed).into();
        assert_eq!((api.status, api.code), (StatusCode::CONFLICT, "window_closed"));
        let body = api.error_response().into_body().try_into_bytes().unwrap_or_default();
        let parsed: ErrorBody = serde_json::from_slice(&body).expect("json body");
        assert_eq!(parsed.error.code, "window_closed");
    }

    #[test]
    fn content_errors_name_what_was_wrong() {
        let cases = [
            (ContentError::BadTemplate("x"), StatusCode::UNPROCESSABLE_ENTITY, "invalid_template"),
            (ContentError::TooLong("x"), StatusCode::UNPROCESSABLE_ENTITY, "invalid_media"),
            (ContentError::BadKind, StatusCode::UNPROCESSABLE_ENTITY, "invalid_media"),
            (ContentError::BadContentType, StatusCode::UNSUPPORTED_MEDIA_TYPE, "invalid_content_type"),
        ];
        for (error, status, code) in cases {
            let api: ApiError = error.into();
            assert_eq!((api.status, api.code), (status, code));
        }
        let detailed = ApiError::invalid_request("x").with_details(serde_json::json!({"limit_bytes": 5}));
        let body = detailed.error_response().into_body().try_into_bytes().unwrap_or_default();
        let parsed: ErrorBody = serde_json::from_slice(&body).expect("json body");
        assert_eq!(parsed.error.details, Some(serde_json::json!({"limit_bytes": 5})));
    }

    #[test]
    fn refused_plans_and_rules_name_the_step_or_field() {
        use switchboard_domain::account::AccountError;
        use switchboard_domain::routing::{PlanError, RulesError};
        let api: ApiError = CommandError::Rejected(AccountError::InvalidPlan(PlanError::JumpOutOfRange {
            step: 2,
            target: 9,
        }))
        .into();
        assert_eq!((api.status, api.code), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_routing_plan"));
        assert!(api.message.contains("step 2") && api.message.contains("step 9"), "{}", api.message);
        let api: ApiError = CommandError::Rejected(AccountError::InvalidRules(RulesError::InvalidSeconds {
            field: "wait_for_agent_secs",
        }))
        .into();
        assert_eq!((api.status, api.code), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_channel_rules"));
        assert!(api.message.contains("wait_for_agent_secs"), "{}", api.message);
    }

    #[test]
    fn store_trouble_is_503_not_500() {
        let api: ApiError = CommandError::<QueueError>::Store("boom".into()).into();
        assert_eq!(api.status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(!api.message.contains("boom"));
    }
}
