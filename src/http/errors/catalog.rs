//! HTTP mapping of the typed errors of the catalogues (dispositions and canned answers) and of
//! an agent's disposition choice. Refusals about one request field carry
//! `details: {"field": …}` besides naming it in the message.

use actix_web::http::StatusCode;
use serde_json::json;
use switchboard_domain::catalog::{
    CannedCatalogError, CannedTextError, DispositionCatalogError, DispositionChoiceError,
};

use super::{ApiError, DomainCode};
use crate::runtime::CommandError;

impl DomainCode for DispositionCatalogError {
    fn status_code(&self) -> (StatusCode, &'static str) {
        use DispositionCatalogError as E;
        match self {
            E::NotFound => (StatusCode::NOT_FOUND, "disposition_not_found"),
            E::DuplicateId => (StatusCode::CONFLICT, "disposition_exists"),
            E::ParentNotFound => (StatusCode::UNPROCESSABLE_ENTITY, "unknown_parent"),
            E::TooDeep => (StatusCode::UNPROCESSABLE_ENTITY, "too_deep"),
            E::NameTaken => (StatusCode::CONFLICT, "disposition_name_taken"),
            E::NameHasSeparator => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_name"),
            E::LabelTooLong => (StatusCode::UNPROCESSABLE_ENTITY, "label_too_long"),
            E::HasChildren => (StatusCode::CONFLICT, "has_children"),
            E::SystemDisposition => (StatusCode::CONFLICT, "system_disposition"),
            E::CatalogFull => (StatusCode::CONFLICT, "catalog_full"),
        }
    }
}

impl DomainCode for CannedCatalogError {
    fn status_code(&self) -> (StatusCode, &'static str) {
        use CannedCatalogError as E;
        match self {
            E::NotFound => (StatusCode::NOT_FOUND, "canned_answer_not_found"),
            E::DuplicateId => (StatusCode::CONFLICT, "canned_answer_exists"),
            E::TitleTaken => (StatusCode::CONFLICT, "title_taken"),
            E::CatalogFull => (StatusCode::CONFLICT, "catalog_full"),
        }
    }
}

/// A catalogue refusal that may be about one request field.
pub trait RuleField {
    /// The field, if the refusal is about one.
    fn rule_field(&self) -> Option<&'static str>;
}

impl RuleField for DispositionCatalogError {
    fn rule_field(&self) -> Option<&'static str> {
        self.field()
    }
}

impl RuleField for CannedCatalogError {
    fn rule_field(&self) -> Option<&'static str> {
        self.field()
    }
}

impl ApiError {
    /// 422 with `code` about request field `field` (named in the message and in `details`).
    pub fn invalid_field(code: &'static str, field: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message).with_details(json!({ "field": field }))
    }

    /// A catalogue command's failure, with `details.field` when the rule is about one field.
    pub fn from_catalog<E>(error: CommandError<E>) -> Self
    where
        E: std::error::Error + DomainCode + RuleField,
    {
        let field = match &error {
            CommandError::Rejected(rule) => rule.rule_field(),
            _ => None,
        };
        let api: Self = error.into();
        match field {
            Some(field) => api.with_details(json!({ "field": field })),
            None => api,
        }
    }
}

impl From<CannedTextError> for ApiError {
    fn from(e: CannedTextError) -> Self {
        match &e {
            CannedTextError::Length { .. } => Self::invalid_field("invalid_text", "text", e.to_string()),
            CannedTextError::Placeholders(t) => {
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_template", e.to_string()).with_details(
                    json!({"field": "text", "position": t.position, "line": t.line, "column": t.column}),
                )
            }
        }
    }
}

impl From<DispositionChoiceError> for ApiError {
    fn from(e: DispositionChoiceError) -> Self {
        let code = match e {
            DispositionChoiceError::Unknown => "unknown_disposition",
            DispositionChoiceError::System => "system_disposition",
            DispositionChoiceError::NotLeaf => "disposition_not_leaf",
            DispositionChoiceError::CatalogueRequired => "disposition_id_required",
        };
        Self::invalid_field(code, "disposition_id", e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_refusals_carry_their_field() {
        let api = ApiError::from_catalog(CommandError::Rejected(DispositionCatalogError::TooDeep));
        assert_eq!((api.status, api.code), (StatusCode::UNPROCESSABLE_ENTITY, "too_deep"));
        assert_eq!(api.details, Some(json!({"field": "parent_id"})));
        let api = ApiError::from_catalog(CommandError::Rejected(DispositionCatalogError::HasChildren));
        assert_eq!((api.status, api.code, api.details), (StatusCode::CONFLICT, "has_children", None));
        let api: ApiError = DispositionChoiceError::NotLeaf.into();
        assert_eq!(api.details, Some(json!({"field": "disposition_id"})));
    }
}
