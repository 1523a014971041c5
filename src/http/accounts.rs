//! Account administration beyond create and read (which are in `admin`): list, partial
//! update, delete, the change history, and the agents of an account.
//!
//! Secrets never leave: reads mask them (`********`), the list is built from a read model
//! that never holds them, the history masks both sides of a change.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Deserializer, Serialize};
use sqlx::Row;
use switchboard_domain::account::{Account, AccountDescription, DetailsPatch, PublicDomain};
use switchboard_domain::{AccountId, AccountKey, AgentId, DisplayName, PhoneNumber};
use utoipa::{IntoParams, OpenApi, ToSchema};

use super::admin::{
    AccountView, ProviderRequest, field_error, invalid_field, list_id, optional_detail, provider_settings,
    view,
};
use super::{ApiError, AppState, Auth, correlation_id, parse_id};
use crate::auth::Role;
use crate::services::accounts::{self as service, AccountUpdate};
use crate::services::history::{self, FieldChange, HistoryEntry};

/// This module's part of the API description (merged in `openapi`).
#[derive(OpenApi)]
#[openapi(
    paths(
        list_accounts,
        update_account,
        delete_account,
        account_history,
        list_account_agents,
        remove_account_agent
    ),
    components(schemas(AccountSummary, UpdateAccount, HistoryEntry, FieldChange, AccountAgent))
)]
pub struct ApiDoc;

/// Routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/accounts", web::get().to(list_accounts))
        .route("/api/accounts/{account_id}", web::patch().to(update_account))
        .route("/api/accounts/{account_id}", web::delete().to(delete_account))
        .route("/api/accounts/{account_id}/history", web::get().to(account_history))
        .route("/api/accounts/{account_id}/agents", web::get().to(list_account_agents))
        .route("/api/accounts/{account_id}/agents/{agent_id}", web::delete().to(remove_account_agent));
}

/// An account in the list (public settings only).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AccountSummary {
    /// Id.
    pub account_id: String,
    /// Name.
    pub name: String,
    /// Key.
    pub key: String,
    /// Provider type.
    pub provider: String,
    /// The business identifier webhooks are matched against.
    pub phone_number_id: Option<String>,
    /// The solution provider's phone number.
    pub phone: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Default contact list.
    pub default_list: Option<String>,
    /// Base URL of the receive URL (`null`: the server's public URL).
    pub public_domain: Option<String>,
    /// Where the provider sends webhooks.
    pub receive_url: String,
    /// The proxy token.
    pub proxy_token: Option<String>,
}

/// `GET /api/accounts` filters.
#[derive(Debug, Deserialize, IntoParams)]
pub struct ListQuery {
    /// Name or key contains this text (case-insensitive).
    pub q: Option<String>,
    /// At most this many, 1 to 500 (default 200), by name.
    pub limit: Option<i64>,
}

/// Lists accounts by name: admins and supervisors see all, agents the ones they were added to.
#[utoipa::path(get, path = "/api/accounts", params(ListQuery),
    responses((status = 200, body = [AccountSummary]), (status = 400, body = super::errors::ErrorBody)),
    security(("bearer" = [])), tag = "admin")]
pub async fn list_accounts(
    state: web::Data<AppState>,
    auth: Auth,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = query.limit.unwrap_or(200);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::invalid_request("`limit` must be 1 to 500"));
    }
    let mut sql =
        "SELECT account_id, name, account_key, provider, business_id, phone, description, default_list,
                          public_domain, proxy_token FROM accounts WHERE 1 = 1"
            .to_owned();
    let mut binds: Vec<String> = Vec::new();
    if let Some(q) = query.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
        binds.push(format!("%{}%", q.to_lowercase()));
        sql.push_str(&format!(" AND (LOWER(name) LIKE ${0} OR LOWER(account_key) LIKE ${0})", binds.len()));
    }
    if auth.0.role == Role::Agent {
        binds.push(auth.agent()?.to_string());
        sql.push_str(&format!(
            " AND account_id IN (SELECT account_id FROM account_members WHERE agent_id = ${})",
            binds.len()
        ));
    }
    sql.push_str(&format!(" ORDER BY name, account_id LIMIT {limit}"));
    let mut q = sqlx::query(&sql);
    for b in binds {
        q = q.bind(b);
    }
    let rows = q.fetch_all(&state.core.db.any).await?;
    let mut list = Vec::with_capacity(rows.len());
    for r in rows {
        let account_id: String = r.try_get("account_id")?;
        let Ok(id) = account_id.parse::<AccountId>() else { continue };
        // The read model may lag a removal by a moment; the aggregate decides at once.
        if !auth.may_see_account(&state.core, id).await? {
            continue;
        }
        let public_domain: Option<String> = r.try_get("public_domain")?;
        let base = public_domain.clone().unwrap_or_else(|| state.public_url.clone());
        list.push(AccountSummary {
            receive_url: format!("{}/webhooks/whatsapp/{account_id}", base.trim_end_matches('/')),
            account_id,
            name: r.try_get("name")?,
            key: r.try_get("account_key")?,
            provider: r.try_get("provider")?,
            phone_number_id: r.try_get("business_id")?,
            phone: r.try_get("phone")?,
            description: r.try_get("description")?,
            default_list: r.try_get("default_list")?,
            public_domain,
            proxy_token: r.try_get("proxy_token")?,
        });
    }
    Ok(HttpResponse::Ok().json(list))
}

/// `null` and absent differ: absent leaves the field, `null` clears it.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// `PATCH /api/accounts/{account_id}`: any subset of the fields; absent fields stay, `null`
/// (or a blank string) clears an optional one. Unknown fields are refused (400).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateAccount {
    /// New name.
    pub name: Option<String>,
    /// New key (unique across accounts, ignoring case).
    pub key: Option<String>,
    /// New description (`null` clears).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
    /// New phone (`null` clears).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub phone: Option<Option<String>>,
    /// New default contact list (`null` clears).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub default_list: Option<Option<String>>,
    /// New public domain (`null`: back to the server's public URL).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub public_domain: Option<Option<String>>,
    /// New credentials, as a whole, of the account's provider type.
    pub provider: Option<ProviderRequest>,
    /// Refused: the proxy token never changes (accepted here only to answer clearly).
    #[schema(value_type = Option<String>)]
    pub proxy_token: Option<serde_json::Value>,
}

/// A patch field: `None` (absent) stays; `Some(None)` or blank clears; else parsed.
fn patch_field<T>(
    raw: Option<Option<String>>,
    parse: impl FnOnce(&str) -> Result<T, ApiError>,
) -> Result<Option<Option<T>>, ApiError> {
    match raw {
        None => Ok(None),
        Some(v) => optional_detail(v.as_deref(), parse).map(Some),
    }
}

/// Changes an account's name, key, details or credentials (one event per kind of change).
#[utoipa::path(patch, path = "/api/accounts/{account_id}", request_body = UpdateAccount,
    responses((status = 200, body = AccountView), (status = 400, body = super::errors::ErrorBody),
        (status = 404, body = super::errors::ErrorBody), (status = 409, body = super::errors::ErrorBody),
        (status = 422, body = super::errors::ErrorBody)),
    security(("bearer" = [])), tag = "admin")]
pub async fn update_account(
    state: web::Data<AppState>,
    auth: Auth,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<UpdateAccount>,
) -> Result<HttpResponse, ApiError> {
    auth.require(&[Role::Admin])?;
    let account_id: AccountId = parse_id(&path, "account_not_found")?;
    let body = body.into_inner();
    if body.proxy_token.is_some() {
        return Err(invalid_field(
            "proxy_token_immutable",
            "proxy_token",
            "`proxy_token` is generated once at creation and can never be changed",
        ));
    }
    let update = AccountUpdate {
        name: body.name.as_deref().map(DisplayName::parse).transpose().map_err(|e| field_error("name", e))?,
        key: body.key.as_deref().map(AccountKey::parse).transpose().map_err(|e| field_error("key", e))?,
        details: DetailsPatch {
            description: patch_field(body.description, |v| Ok(AccountDescription::parse(v)?))?,
            phone: patch_field(body.phone, |v| PhoneNumber::parse(v).map_err(|e| field_error("phone", e)))?,
            default_list: patch_field(body.default_list, list_id)?,
            public_domain: patch_field(body.public_domain, |v| Ok(PublicDomain::parse(v)?))?,
        },
        provider: body.provider.map(|p| provider_settings(&state.core.sealer, p)).transpose()?,
    };
    let core = &state.core;
    service::update(core, account_id, update, core.metadata(&auth.cause(), &correlation_id(&req))).await?;
    let account = service::existing(core, account_id).await?;
    Ok(HttpResponse::Ok().json(view(&state, account_id, &account)))
}

/// Deletes an account; refused (409 `account_has_open_interactions`) while any of its
/// interactions is open. Its key becomes free; its webhooks are answered 404.
#[utoipa::path(delete, path = "/api/accounts/{account_id}",
    responses((status = 204), (status = 404, body = super::errors::ErrorBody),
        (status = 409, body = super::errors::ErrorBody)),
    security(("bearer" = [])), tag = "admin")]
pub async fn delete_account(
    state: web::Data<AppState>,
    auth: Auth,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    auth.require(&[Role::Admin])?;
    let account_id: AccountId = parse_id(&path, "account_not_found")?;
    let core = &state.core;
    service::delete(core, account_id, core.metadata(&auth.cause(), &correlation_id(&req))).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The state as the history shows it: secrets masked.
fn shown(account: &Account) -> serde_json::Value {
    let mut masked = account.clone();
    masked.provider = account.provider.as_ref().map(|p| p.masked());
    serde_json::to_value(&masked).unwrap_or(serde_json::Value::Null)
}

/// The account's change history: every event with who caused it and what it changed, field
/// by field, `from` computed by replay (secrets masked on both sides, `redacted: true`).
#[utoipa::path(get, path = "/api/accounts/{account_id}/history",
    responses((status = 200, body = [HistoryEntry]), (status = 404, body = super::errors::ErrorBody)),
    security(("bearer" = [])), tag = "admin")]
pub async fn account_history(
    state: web::Data<AppState>,
    auth: Auth,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    auth.require(&[Role::Admin, Role::Supervisor])?;
    let account_id: AccountId = parse_id(&path, "account_not_found")?;
    let entries =
        history::history::<Account>(&state.core.db, &state.core.pii, &account_id.to_string(), shown).await?;
    if entries.is_empty() {
        return Err(ApiError::not_found("account_not_found", "no such account"));
    }
    Ok(HttpResponse::Ok().json(entries))
}

/// An agent of an account.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AccountAgent {
    /// Id.
    pub agent_id: String,
    /// Name.
    pub name: Option<String>,
}

/// The agents who may see and work the account.
#[utoipa::path(get, path = "/api/accounts/{account_id}/agents",
    responses((status = 200, body = [AccountAgent]), (status = 404, body = super::errors::ErrorBody)),
    security(("bearer" = [])), tag = "admin")]
pub async fn list_account_agents(
    state: web::Data<AppState>,
    auth: Auth,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    auth.require(&[Role::Admin, Role::Supervisor])?;
    let account_id: AccountId = parse_id(&path, "account_not_found")?;
    let account = service::existing(&state.core, account_id).await?;
    let mut agents = Vec::with_capacity(account.agents.len());
    for agent_id in &account.agents {
        let agent = state.core.agents.state(&agent_id.to_string()).await?.state;
        agents.push(AccountAgent { agent_id: agent_id.to_string(), name: agent.name.map(|n| n.to_string()) });
    }
    Ok(HttpResponse::Ok().json(agents))
}

/// Removes an agent from an account (idempotent): from this moment they no longer see its
/// interactions (lists, reads, sends, websocket).
#[utoipa::path(delete, path = "/api/accounts/{account_id}/agents/{agent_id}",
    responses((status = 204), (status = 404, body = super::errors::ErrorBody)),
    security(("bearer" = [])), tag = "admin")]
pub async fn remove_account_agent(
    state: web::Data<AppState>,
    auth: Auth,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    auth.require(&[Role::Admin])?;
    let (raw_account, raw_agent) = path.into_inner();
    let account_id: AccountId = parse_id(&raw_account, "account_not_found")?;
    let agent_id: AgentId = parse_id(&raw_agent, "agent_not_found")?;
    let core = &state.core;
    let cmd = switchboard_domain::account::AccountCommand::RemoveAgent { agent_id, at: core.clock.now() };
    state.account_command(&auth, &req, account_id, cmd).await?;
    Ok(HttpResponse::NoContent().finish())
}
