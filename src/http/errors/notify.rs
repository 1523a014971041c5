//! HTTP mapping of the typed errors of: offer notification settings and templates.
//!
//! A template that does not parse is a 422 `invalid_template` whose details name the field
//! and say where the error is (byte `position`, 1-based `line` and `column`), so an editor
//! can put the cursor on it.

use actix_web::http::StatusCode;
use serde_json::json;
use switchboard_domain::notify::TemplateError;

use super::ApiError;

impl ApiError {
    /// 422 `invalid_template`: `field` holds a template that does not parse.
    pub fn invalid_template(field: &str, e: &TemplateError) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_template",
            format!("`{field}` is not a valid template: line {}, column {}: {}", e.line, e.column, e.message),
        )
        .with_details(json!({
            "field": field,
            "position": e.position,
            "line": e.line,
            "column": e.column,
            "reason": e.message,
        }))
    }

    /// 422 `invalid_notification`: a notification setting other than the template is
    /// malformed (wrong type, unknown field).
    pub fn invalid_notification(field: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_notification", message)
            .with_details(json!({"field": field}))
    }
}

/// A notification template's error, on the `template` field.
impl From<TemplateError> for ApiError {
    fn from(e: TemplateError) -> Self {
        Self::invalid_template("template", &e)
    }
}

#[cfg(test)]
mod tests {
    use switchboard_domain::notify::Template;

    use super::*;

    #[test]
    fn template_errors_name_the_field_and_the_position() {
        let e = Template::parse("Hi\n{{#queue}}").expect_err("unclosed");
        let api = ApiError::invalid_template("text", &e);
        assert_eq!((api.status, api.code), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_template"));
        assert!(
            api.message.contains("`text`") && api.message.contains("line 2, column 1"),
            "{}",
            api.message
        );
        let details = api.details.expect("details");
        assert_eq!(details["field"], "text");
        assert_eq!((details["position"].as_u64(), details["line"].as_u64()), (Some(3), Some(2)));
        let api: ApiError = e.into();
        assert_eq!(api.details.expect("details")["field"], "template");
    }
}
