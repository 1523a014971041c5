//! HTTP mapping of the typed errors of: The contact manager: lists, contacts, CSV import, whitelist.
//!
//! Validation errors are 422 with a code and `details.field` naming the request field (or
//! CSV column) at fault; a whole-file import refusal says `details.field = "file"` or
//! `"header"`.

use actix_web::http::StatusCode;
use serde_json::json;
use switchboard_domain::directory::{ContactCardError, ContactListError, ContactValueError};

use super::{ApiError, DomainCode};
use crate::services::contacts::{ImportError, value_code};

impl DomainCode for ContactListError {
    fn status_code(&self) -> (StatusCode, &'static str) {
        match self {
            ContactListError::AlreadyExists => (StatusCode::CONFLICT, "contact_list_exists"),
            ContactListError::NotFound => (StatusCode::NOT_FOUND, "contact_list_not_found"),
        }
    }
}

impl DomainCode for ContactCardError {
    fn status_code(&self) -> (StatusCode, &'static str) {
        match self {
            ContactCardError::AlreadyExists => (StatusCode::CONFLICT, "contact_exists"),
            ContactCardError::NotFound => (StatusCode::NOT_FOUND, "contact_not_found"),
            ContactCardError::Invalid(e) => (StatusCode::UNPROCESSABLE_ENTITY, value_code(e)),
        }
    }
}

impl From<ContactValueError> for ApiError {
    fn from(e: ContactValueError) -> Self {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, value_code(&e), e.to_string())
            .with_details(json!({"field": e.field()}))
    }
}

impl From<ImportError> for ApiError {
    fn from(e: ImportError) -> Self {
        let (code, field) = match e {
            ImportError::Malformed(_) => ("invalid_csv", "file"),
            ImportError::BadHeader(_) => ("invalid_csv_header", "header"),
            ImportError::TooManyRows => ("too_many_rows", "file"),
        };
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, e.to_string())
            .with_details(json!({"field": field}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_domain::ValueError;

    #[test]
    fn value_errors_name_their_field() {
        let api: ApiError = ContactValueError::at("phone", ValueError::InvalidPhoneNumber("1".into())).into();
        assert_eq!((api.status, api.code), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_phone_number"));
        assert_eq!(api.details, Some(json!({"field": "phone"})));
        let api: ApiError = ContactValueError::FieldValueTooLong("city".into()).into();
        assert_eq!((api.code, api.details), ("invalid_custom_field", Some(json!({"field": "fields.city"}))));
    }
}
