//! Offer notification settings (seed: "Notification"): the sound and shake flags and the
//! Mustache template rendered into every offer pushed to an agent's websocket.
//!
//! `PUT /api/accounts/{id}/notification` (admins) replaces the settings; the template is
//! parsed there and a template that does not parse is refused with where the error is
//! (nothing is recorded). `GET` (admins, supervisors) reads the settings in force: the
//! built-in default until set. `POST …/notification/preview` renders a template (the body's,
//! else the stored one) with a sample or given context, so an editor can show the result.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use switchboard_domain::AccountId;
use switchboard_domain::account::{Account, AccountCommand, NotificationSettings};
use switchboard_domain::notify::Template;
use utoipa::{OpenApi, ToSchema};

use super::{ApiError, AppState, Auth, parse_id};
use crate::auth::Role;
use crate::workers::feed::{NotificationContext, effective_notification, render_notification};

/// This module's part of the API description (merged in `openapi`).
#[derive(OpenApi)]
#[openapi(
    paths(set_notification, get_notification, preview_notification),
    components(schemas(NotificationBody, NotificationView, PreviewBody, RenderedNotification))
)]
pub struct ApiDoc;

/// Routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/accounts/{account_id}/notification", web::put().to(set_notification))
        .route("/api/accounts/{account_id}/notification", web::get().to(get_notification))
        .route("/api/accounts/{account_id}/notification/preview", web::post().to(preview_notification));
}

/// `PUT /api/accounts/{id}/notification`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NotificationBody {
    /// Mustache text, at most 4096 bytes (see `docs/api.md` for the variables).
    pub template: String,
    /// Play a sound (default `true`).
    pub sound: Option<bool>,
    /// Shake the notification (default `false`).
    pub shake: Option<bool>,
}

/// The notification settings in force.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct NotificationView {
    /// Play a sound.
    pub sound: bool,
    /// Shake the notification.
    pub shake: bool,
    /// The template's source.
    pub template: String,
    /// `true` while the account has never set its own (the built-in default is in force).
    pub default: bool,
}

/// `POST /api/accounts/{id}/notification/preview`: every field optional.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PreviewBody {
    /// A template to try (default: the account's, or the built-in one).
    pub template: Option<String>,
    /// The context to render with (default: a sample offer of this account from a queue).
    #[schema(value_type = Option<Object>)]
    pub context: Option<Value>,
}

/// A rendered notification, as offers carry it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RenderedNotification {
    /// The text.
    pub text: String,
    /// Play a sound.
    pub sound: bool,
    /// Shake.
    pub shake: bool,
}

/// Reads a flag that may be absent (then `default`) but must be a boolean when present.
fn flag(body: &Map<String, Value>, field: &str, default: bool) -> Result<bool, ApiError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(ApiError::invalid_notification(field, format!("`{field}` must be true or false"))),
    }
}

/// Parses the body field by field (not with serde's derive) so every refusal names its field.
fn parse_settings(body: &Value) -> Result<NotificationSettings, ApiError> {
    let Value::Object(body) = body else {
        return Err(ApiError::invalid_request("the body must be a JSON object"));
    };
    if let Some(unknown) = body.keys().find(|k| !["template", "sound", "shake"].contains(&k.as_str())) {
        return Err(ApiError::invalid_notification(
            unknown,
            format!("unknown field `{unknown}` (expected `template`, `sound`, `shake`)"),
        ));
    }
    let source = match body.get("template") {
        Some(Value::String(s)) => s,
        Some(_) => return Err(ApiError::invalid_notification("template", "`template` must be a string")),
        None => return Err(ApiError::invalid_notification("template", "`template` is required")),
    };
    let template = Template::parse(source)?;
    Ok(NotificationSettings {
        sound: flag(body, "sound", true)?,
        shake: flag(body, "shake", false)?,
        template,
    })
}

async fn existing_account(state: &AppState, account_id: AccountId) -> Result<Account, ApiError> {
    let account = state.core.accounts.state(&account_id.to_string()).await?.state;
    if !account.created || account.deleted {
        return Err(ApiError::not_found("account_not_found", "no such account"));
    }
    Ok(account)
}

/// Replaces the account's offer notification settings.
#[utoipa::path(put, path = "/api/accounts/{account_id}/notification", request_body = NotificationBody,
    responses((status = 204), (status = 400, body = super::errors::ErrorBody),
        (status = 403, body = super::errors::ErrorBody), (status = 404, body = super::errors::ErrorBody),
        (status = 422, description = "`invalid_template` (details: field, position, line, column, reason) or `invalid_notification` (details: field)",
            body = super::errors::ErrorBody)),
    security(("bearer" = [])), tag = "admin")]
pub async fn set_notification(
    state: web::Data<AppState>,
    auth: Auth,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    auth.require(&[Role::Admin])?;
    let account_id: AccountId = parse_id(&path, "account_not_found")?;
    let notification = parse_settings(&body)?;
    let core = &state.core;
    let cmd = AccountCommand::SetNotification { notification, at: core.clock.now() };
    state.account_command(&auth, &req, account_id, cmd).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Reads the account's offer notification settings (the built-in default until set).
#[utoipa::path(get, path = "/api/accounts/{account_id}/notification",
    responses((status = 200, body = NotificationView), (status = 403, body = super::errors::ErrorBody),
        (status = 404, body = super::errors::ErrorBody)),
    security(("bearer" = [])), tag = "admin")]
pub async fn get_notification(
    state: web::Data<AppState>,
    auth: Auth,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    auth.require(&[Role::Admin, Role::Supervisor])?;
    let account_id: AccountId = parse_id(&path, "account_not_found")?;
    let account = existing_account(&state, account_id).await?;
    let settings = effective_notification(account.notification.as_ref());
    Ok(HttpResponse::Ok().json(NotificationView {
        sound: settings.sound,
        shake: settings.shake,
        template: settings.template.source().to_owned(),
        default: account.notification.is_none(),
    }))
}

/// Renders a template (the body's, else the account's) with a sample offer of this account or
/// the given context. Records nothing.
#[utoipa::path(post, path = "/api/accounts/{account_id}/notification/preview", request_body = PreviewBody,
    responses((status = 200, body = RenderedNotification), (status = 403, body = super::errors::ErrorBody),
        (status = 404, body = super::errors::ErrorBody), (status = 422, body = super::errors::ErrorBody)),
    security(("bearer" = [])), tag = "admin")]
pub async fn preview_notification(
    state: web::Data<AppState>,
    auth: Auth,
    path: web::Path<String>,
    body: web::Json<PreviewBody>,
) -> Result<HttpResponse, ApiError> {
    auth.require(&[Role::Admin, Role::Supervisor])?;
    let account_id: AccountId = parse_id(&path, "account_not_found")?;
    let account = existing_account(&state, account_id).await?;
    let body = body.into_inner();
    let mut settings = effective_notification(account.notification.as_ref());
    if let Some(source) = &body.template {
        settings.template = Template::parse(source)?;
    }
    let context = match body.context {
        Some(context @ Value::Object(_)) => context,
        Some(_) => return Err(ApiError::invalid_notification("context", "`context` must be a JSON object")),
        None => NotificationContext::sample(account_id, &account).to_json(),
    };
    let rendered = render_notification(&settings, &context);
    Ok(HttpResponse::Ok().json(RenderedNotification {
        text: rendered.text,
        sound: rendered.sound,
        shake: rendered.shake,
    }))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn settings_default_their_flags_and_name_what_is_wrong() {
        let settings = parse_settings(&json!({"template": "Hi {{contact.name}}"})).expect("valid");
        assert!(settings.sound && !settings.shake);
        let settings =
            parse_settings(&json!({"template": "x", "sound": false, "shake": true})).expect("valid");
        assert!(!settings.sound && settings.shake);
        for (body, code, field) in [
            (json!({"template": "{{#a}}"}), "invalid_template", "template"),
            (json!({"template": 5}), "invalid_notification", "template"),
            (json!({}), "invalid_notification", "template"),
            (json!({"template": "x", "sound": "yes"}), "invalid_notification", "sound"),
            (json!({"template": "x", "shake": 1}), "invalid_notification", "shake"),
            (json!({"template": "x", "shaek": true}), "invalid_notification", "shaek"),
        ] {
            let e = parse_settings(&body).expect_err("refused");
            assert_eq!(e.code, code, "{body}");
            assert_eq!(e.details.as_ref().map(|d| d["field"].clone()), Some(json!(field)), "{body}");
        }
        assert_eq!(parse_settings(&json!([1])).expect_err("refused").code, "invalid_request");
    }
}
