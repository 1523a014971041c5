//! The HTTP layer: routes, authentication, and the shared state handlers see.
//!
//! Handlers are thin: authenticate and authorise (the [`Auth`] extractor and its `require`
//! helpers), parse input into domain types, call one registry or service, map the result.
//! Errors become responses in one place ([`errors`]).

pub mod accounts;
pub mod admin;
pub mod agent;
pub mod audit;
pub mod catalog;
pub mod directory;
pub mod erasure;
pub mod errors;
pub mod export;
pub mod media;
pub mod metrics;
pub mod notes;
pub mod notify;
pub mod openapi;
pub mod ops;
pub mod reads;
pub mod realtime;
pub mod search;
pub mod webhooks;
pub mod ws;

use std::future::Future;
use std::pin::Pin;

use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use switchboard_domain::{AccountId, AgentId};

use crate::auth::{self, Principal, Role};
use crate::core::{Cause, Core};
use crate::workers::feed::Hub;
pub use errors::ApiError;

/// State shared by all handlers.
#[derive(Clone)]
pub struct AppState {
    /// The application core.
    pub core: Core,
    /// Websocket sessions.
    pub hub: Hub,
    /// Prometheus metrics.
    pub metrics: metrics::Metrics,
    /// Public base URL (for receive URLs).
    pub public_url: String,
}

impl AppState {
    /// Runs one command on an account on the caller's behalf (cause and the request's
    /// correlation id in the events' metadata).
    pub async fn account_command(
        &self,
        auth: &Auth,
        req: &HttpRequest,
        account_id: AccountId,
        command: switchboard_domain::account::AccountCommand,
    ) -> Result<(), ApiError> {
        let metadata = self.core.metadata(&auth.cause(), &correlation_id(req));
        self.core.accounts.execute(&account_id.to_string(), command, metadata).await?;
        Ok(())
    }
}

/// An authenticated caller, extracted from `Authorization: Bearer <token>`, or, on the
/// websocket only (browsers cannot set headers there), the `access_token` query parameter.
#[derive(Debug, Clone)]
pub struct Auth(pub Principal);

fn bearer(req: &HttpRequest) -> Option<String> {
    if let Some(value) = req.headers().get("Authorization").and_then(|v| v.to_str().ok()) {
        return value.strip_prefix("Bearer ").map(|t| t.trim().to_owned());
    }
    if req.path() != "/ws" && req.path() != "/ws/supervisor" {
        return None;
    }
    web::Query::<std::collections::HashMap<String, String>>::from_query(req.query_string())
        .ok()
        .and_then(|q| q.get("access_token").cloned())
}

impl FromRequest for Auth {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let token = bearer(req);
        Box::pin(async move {
            let state = state.ok_or_else(|| ApiError::internal("state missing"))?;
            let token = token.ok_or_else(ApiError::unauthorized)?;
            match auth::authenticate(&state.core.db.any, &token).await? {
                Some(principal) => Ok(Auth(principal)),
                None => Err(ApiError::unauthorized()),
            }
        })
    }
}

impl Auth {
    /// Allows only these roles.
    pub fn require(&self, roles: &[Role]) -> Result<(), ApiError> {
        if roles.contains(&self.0.role) { Ok(()) } else { Err(ApiError::forbidden()) }
    }

    /// The calling agent's id (agents only).
    pub fn agent(&self) -> Result<AgentId, ApiError> {
        match (self.0.role, self.0.agent_id) {
            (Role::Agent, Some(id)) => Ok(id),
            _ => Err(ApiError::forbidden()),
        }
    }

    /// Who to record as the cause of events.
    pub fn cause(&self) -> Cause {
        Cause::User {
            role: self.0.role.as_str().to_owned(),
            id: self.0.agent_id.map(|a| a.to_string()).unwrap_or_else(|| self.0.label.clone()),
        }
    }

    /// Whether the caller may see an account's interactions: admins and supervisors see
    /// all; agents only the accounts they were added to.
    pub async fn may_see_account(&self, core: &Core, account_id: AccountId) -> Result<bool, ApiError> {
        match self.0.role {
            Role::Admin | Role::Supervisor => Ok(true),
            // The aggregate, not the read model: adding or removing an agent takes effect at
            // once, with no projection lag.
            Role::Agent => {
                let agent = self.agent()?;
                Ok(core.accounts.state(&account_id.to_string()).await?.state.agents.contains(&agent))
            }
        }
    }
}

/// A correlation id for the request's events: the caller's `X-Request-Id`, or a fresh one.
pub fn correlation_id(req: &HttpRequest) -> String {
    req.headers()
        .get("X-Request-Id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128)
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string())
}

/// Parses an id from a path segment, answering 404 with `code` when it is not one.
pub fn parse_id<T: std::str::FromStr>(raw: &str, code: &'static str) -> Result<T, ApiError> {
    raw.parse().map_err(|_| ApiError::not_found(code, format!("`{raw}` is not a valid id")))
}

/// The client's message id (a UUID, so a retried send records nothing new), or a fresh one.
pub fn message_id_or_new(raw: Option<&str>) -> Result<switchboard_domain::MessageId, ApiError> {
    match raw {
        Some(raw) => raw.parse().map_err(|_| ApiError::invalid_request("message_id must be a UUID")),
        None => Ok(switchboard_domain::MessageId::new()),
    }
}

/// An optional JSON body: empty (or only whitespace) is `None`; anything else must parse
/// (400 `invalid_request` otherwise). Unlike `Option<web::Json<T>>`, which silently turns a
/// malformed body into `None`, a client's typo is never taken for "no body".
pub fn optional_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<Option<T>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice(body)
        .map(Some)
        .map_err(|e| ApiError::invalid_request(format!("Json deserialize error: {e}")))
}

/// Maps a JSON body that could not be read to our error format.
fn json_error(err: actix_web::error::JsonPayloadError) -> ApiError {
    use actix_web::error::JsonPayloadError as E;
    use actix_web::http::StatusCode;
    match err {
        E::OverflowKnownLength { .. } | E::Overflow { .. } => {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", err.to_string())
        }
        E::ContentType => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send Content-Type: application/json",
        ),
        _ => ApiError::invalid_request(err.to_string()),
    }
}

/// Routes every endpoint.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::JsonConfig::default().limit(64 * 1024).error_handler(|err, _| json_error(err).into()))
        .app_data(
            web::QueryConfig::default()
                .error_handler(|err, _| ApiError::invalid_request(err.to_string()).into()),
        )
        .configure(ops::routes)
        .configure(audit::routes)
        .configure(admin::routes)
        .configure(accounts::routes)
        .configure(directory::routes)
        .configure(catalog::routes)
        .configure(erasure::routes)
        .configure(notify::routes)
        .configure(agent::routes)
        .configure(media::routes)
        // Before `reads`: `/api/interactions/export.csv` is not an interaction id.
        .configure(export::routes)
        // Before `reads` too: `/api/interactions/search` is not an interaction id.
        .configure(search::routes)
        .configure(reads::routes)
        .configure(notes::routes)
        .configure(realtime::routes)
        .configure(webhooks::routes)
        .configure(ws::routes)
        .configure(openapi::routes);
}
