//! Administration: accounts (with their provider credentials), routing plans and channel
//! rules, queues and their settings, agents (membership, capacity) and API tokens. Admins
//! only, except the reads supervisors also need and agent capacity, which supervisors set.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use switchboard_domain::account::{
    Account, AccountCommand, KaleyraCallbackAuth, KaleyraSettings, MetaSettings, ProviderSettings,
    SinchSettings, TwilioSettings,
};
use switchboard_domain::agent::AgentCommand;
use switchboard_domain::queue::{DEFAULT_OFFER_TIMEOUT_SECS, DEFAULT_WEIGHT, QueueCommand};
use switchboard_domain::routing::{ChannelRules, RoutingPlan, Strategy};
use switchboard_domain::{AccountId, AccountKey, AgentId, DisplayName, PhoneNumber, QueueId};

// Account CRUD beyond create/read (list, update, delete, history, members) is in `accounts`.
use utoipa::ToSchema;

use super::{ApiError, AppState, Auth, correlation_id, parse_id};
use crate::auth::{self, Role};

/// Routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/accounts", web::post().to(create_account))
        .route("/api/accounts/{account_id}", web::get().to(get_account))
        .route("/api/accounts/{account_id}/agents", web::post().to(add_account_agent))
        .route("/api/accounts/{account_id}/routing", web::put().to(set_routing))
        .route("/api/accounts/{account_id}/recontact-template", web::put().to(set_recontact_template))
        .route("/api/accounts/{account_id}/routing-plan", web::put().to(set_routing_plan))
        .route("/api/accounts/{account_id}/routing-plan", web::get().to(get_routing_plan))
        .route("/api/accounts/{account_id}/channel-rules", web::put().to(set_channel_rules))
        .route("/api/accounts/{account_id}/channel-rules", web::get().to(get_channel_rules))
        .route("/api/queues", web::post().to(create_queue))
        .route("/api/queues/{queue_id}", web::put().to(configure_queue))
        .route("/api/queues/{queue_id}/agents", web::post().to(add_queue_agent))
        .route("/api/queues/{queue_id}/agents/{agent_id}", web::delete().to(remove_queue_agent))
        .route("/api/agents", web::post().to(create_agent))
        .route("/api/agents/{agent_id}/capacity", web::put().to(set_capacity))
        .route("/api/tokens", web::post().to(create_token));
}

/// Meta Cloud API credentials. Secrets are encrypted before they are stored and never
/// returned.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MetaCredentials {
    /// WhatsApp Business Account id.
    pub business_account_id: String,
    /// Meta app id.
    pub app_id: String,
    /// Phone number id of the business number.
    pub phone_number_id: String,
    /// System-user access token.
    pub access_token: String,
    /// App secret (verifies webhook signatures).
    pub app_secret: String,
    /// Verify token for the GET handshake.
    pub verify_token: String,
    /// Graph API base URL (default `https://graph.facebook.com`).
    pub api_base_url: Option<String>,
    /// Graph API version (default `v23.0`).
    pub api_version: Option<String>,
}

/// Twilio credentials. The auth token is encrypted before it is stored and never returned.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TwilioCredentials {
    /// Account SID (`AC...`).
    pub account_sid: String,
    /// Auth token (authenticates sends, signs webhooks).
    pub auth_token: String,
    /// The WhatsApp sender number, E.164.
    pub business_number: String,
    /// API base URL (default `https://api.twilio.com`).
    pub api_base_url: Option<String>,
}

/// Sinch Conversation API credentials. Secrets are encrypted and never returned.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SinchCredentials {
    /// Project id.
    pub project_id: String,
    /// Conversation API app id.
    pub app_id: String,
    /// Access key id.
    pub key_id: String,
    /// Access key secret.
    pub key_secret: String,
    /// Secret configured on the app's webhook (signs callbacks).
    pub webhook_secret: String,
    /// Regional API base URL (default `https://us.conversation.api.sinch.com`).
    pub api_base_url: Option<String>,
    /// OAuth2 base URL (default `https://auth.sinch.com`).
    pub auth_base_url: Option<String>,
}

/// How Kaleyra's callback profile authenticates its calls.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum KaleyraCallbackAuthRequest {
    /// A custom header with a shared secret.
    SharedHeader {
        /// Header name.
        name: String,
        /// Secret value.
        value: String,
    },
    /// HTTP Basic auth.
    Basic {
        /// User.
        user: String,
        /// Password.
        password: String,
    },
}

/// Kaleyra credentials. Secrets are encrypted and never returned.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KaleyraCredentials {
    /// API base URL of the account's pod (default `https://api.kaleyra.io`).
    pub api_base_url: Option<String>,
    /// WhatsApp Business Account id.
    pub waba_id: String,
    /// Account SID.
    pub account_sid: String,
    /// API key.
    pub api_key: String,
    /// The business number, E.164.
    pub business_number: String,
    /// How callbacks authenticate.
    pub callback_auth: KaleyraCallbackAuthRequest,
}

/// Provider and credentials.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ProviderRequest {
    /// Meta Cloud API.
    Meta(MetaCredentials),
    /// Twilio.
    Twilio(TwilioCredentials),
    /// Sinch Conversation API.
    Sinch(SinchCredentials),
    /// Kaleyra.
    Kaleyra(KaleyraCredentials),
}

/// `POST /api/accounts`. Unknown fields are refused (400), so a misspelt optional field is
/// never silently ignored.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAccount {
    /// Display name.
    pub name: String,
    /// 1 to 5 letters or digits shown on agents' tabs, unique across accounts (ignoring case).
    pub key: String,
    /// Provider and credentials: exactly that provider type's fields.
    pub provider: ProviderRequest,
    /// A description, at most 500 characters.
    pub description: Option<String>,
    /// The solution provider's phone number, E.164.
    pub phone: Option<String>,
    /// The contact list new WhatsApp contacts are saved to (must exist).
    pub default_list: Option<String>,
    /// Base URL providers reach the server at (seed: "Proxy or Motion Domain"); the receive
    /// URL is derived from it. Default: the server's public URL.
    pub public_domain: Option<String>,
}

/// An account as the API shows it (no secrets).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AccountView {
    /// Id.
    pub account_id: String,
    /// Name.
    pub name: String,
    /// Key.
    pub key: String,
    /// Provider type.
    pub provider: String,
    /// The business identifier webhooks are matched against: phone number id (Meta), app id
    /// (Sinch) or business number (Twilio, Kaleyra).
    pub phone_number_id: Option<String>,
    /// Provider API base URL.
    pub api_base_url: Option<String>,
    /// Where the provider must send messages and statuses (POST) and Meta's handshake (GET).
    pub receive_url: String,
    /// Routing queue.
    pub routing_queue: Option<String>,
    /// Agents who may work it.
    pub agents: Vec<String>,
    /// The template offered to agents when a customer's 24 h window has closed.
    pub recontact_template: Option<TemplateView>,
    /// Description.
    pub description: Option<String>,
    /// The solution provider's phone number.
    pub phone: Option<String>,
    /// The contact list new WhatsApp contacts are saved to.
    pub default_list: Option<String>,
    /// The base URL the receive URL is derived from (`null`: the server's public URL).
    pub public_domain: Option<String>,
    /// The proxy token, generated at creation; it never changes.
    pub proxy_token: Option<String>,
    /// The provider settings with every secret masked (`********`): identifiers are shown,
    /// secrets never, not even in part.
    #[schema(value_type = Object)]
    pub credentials: Option<serde_json::Value>,
}

/// An approved template: name (Twilio: Content SID), language and body parameters.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TemplateView {
    /// Name (Twilio: Content SID, `HX…`).
    pub name: String,
    /// Language code, e.g. `en_US`.
    pub language: String,
    /// Body parameters in order.
    #[serde(default)]
    pub parameters: Vec<String>,
}

/// How the API shows an account (never a secret).
pub fn view(state: &AppState, account_id: AccountId, account: &Account) -> AccountView {
    let (provider, phone_number_id, api_base_url) = match &account.provider {
        Some(ProviderSettings::Meta(m)) => {
            ("meta".to_owned(), Some(m.phone_number_id.clone()), Some(m.api_base_url.clone()))
        }
        Some(ProviderSettings::Twilio(t)) => {
            ("twilio".to_owned(), Some(t.business_number.to_string()), Some(t.api_base_url.clone()))
        }
        Some(ProviderSettings::Sinch(x)) => {
            ("sinch".to_owned(), Some(x.app_id.clone()), Some(x.api_base_url.clone()))
        }
        Some(ProviderSettings::Kaleyra(k)) => {
            ("kaleyra".to_owned(), Some(k.business_number.to_string()), Some(k.api_base_url.clone()))
        }
        None => (String::new(), None, None),
    };
    AccountView {
        account_id: account_id.to_string(),
        name: account.name.as_ref().map(ToString::to_string).unwrap_or_default(),
        key: account.key.as_ref().map(ToString::to_string).unwrap_or_default(),
        provider,
        phone_number_id,
        api_base_url,
        receive_url: receive_url(state, account_id, account),
        routing_queue: account.routing_queue.map(|q| q.to_string()),
        agents: account.agents.iter().map(ToString::to_string).collect(),
        recontact_template: account.recontact_template.as_ref().map(|t| TemplateView {
            name: t.name.clone(),
            language: t.language.clone(),
            parameters: t.parameters.clone(),
        }),
        description: account.details.description.as_ref().map(|d| d.as_ref().to_owned()),
        phone: account.details.phone.as_ref().map(ToString::to_string),
        default_list: account.details.default_list.map(|l| l.to_string()),
        public_domain: account.details.public_domain.as_ref().map(ToString::to_string),
        proxy_token: account.proxy_token.as_ref().map(ToString::to_string),
        credentials: account.provider.as_ref().and_then(|p| serde_json::to_value(p.masked()).ok()),
    }
}

/// Where the provider must send this account's webhooks: its public domain (or the server's
/// public URL) plus the account's path.
pub fn receive_url(state: &AppState, account_id: AccountId, account: &Account) -> String {
    let base = account.details.public_domain.as_ref().map_or(state.public_url.as_str(), |d| d.as_ref());
    format!("{}/webhooks/whatsapp/{account_id}", base.trim_end_matches('/'))
}

/// A 422 naming the field at fault, in the message and in `details.field`.
pub fn invalid_field(code: &'static str, field: &str, message: impl Into<String>) -> ApiError {
    ApiError::new(actix_web::http::StatusCode::UNPROCESSABLE_ENTITY, code, message)
        .with_details(serde_json::json!({"field": field}))
}

/// A value error (phone, key, text) attributed to a field.
pub fn field_error(field: &str, e: switchboard_domain::ValueError) -> ApiError {
    let api: ApiError = e.into();
    let message = format!("`{field}`: {}", api.message);
    invalid_field(api.code, field, message)
}

fn required(field: &'static str, value: &str) -> Result<String, ApiError> {
    let v = value.trim();
    if v.is_empty() || v.len() > 512 {
        return Err(invalid_field(
            "invalid_credentials",
            &format!("provider.{field}"),
            format!("`provider.{field}` must be 1 to 512 characters"),
        ));
    }
    Ok(v.to_owned())
}

fn base_url(field: &'static str, raw: Option<&str>, default: &str) -> Result<String, ApiError> {
    let url = raw.unwrap_or(default).trim_end_matches('/').to_owned();
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err(invalid_field(
            "invalid_credentials",
            &format!("provider.{field}"),
            format!("`provider.{field}` must be an http(s) URL"),
        ));
    }
    Ok(url)
}

/// An id that goes into a request path (Twilio and Kaleyra account SIDs): letters and digits.
fn path_id(field: &'static str, raw: &str) -> Result<String, ApiError> {
    let id = required(field, raw)?;
    if !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(invalid_field(
            "invalid_credentials",
            &format!("provider.{field}"),
            format!("`provider.{field}` must be letters and digits"),
        ));
    }
    Ok(id)
}

/// A Graph API version path segment such as `v23.0` (it is put into request URLs).
fn api_version(raw: Option<&str>) -> Result<String, ApiError> {
    let v = raw.unwrap_or("v23.0");
    let ok = v.strip_prefix('v').and_then(|rest| rest.split_once('.')).is_some_and(|(major, minor)| {
        !major.is_empty()
            && !minor.is_empty()
            && major.bytes().all(|b| b.is_ascii_digit())
            && minor.bytes().all(|b| b.is_ascii_digit())
    });
    if !ok {
        return Err(invalid_field(
            "invalid_credentials",
            "provider.api_version",
            "`provider.api_version` must look like v23.0",
        ));
    }
    Ok(v.to_owned())
}

/// Seals a provider request into settings: exactly that type's fields, each checked and
/// named when refused; secrets are encrypted here and never kept in plaintext.
pub fn provider_settings(
    sealer: &crate::crypto::Sealer,
    request: ProviderRequest,
) -> Result<ProviderSettings, ApiError> {
    let phone = |field: &str, raw: &str| {
        PhoneNumber::parse(raw.trim()).map_err(|e| field_error(&format!("provider.{field}"), e))
    };
    Ok(match request {
        ProviderRequest::Meta(m) => ProviderSettings::Meta(MetaSettings {
            business_account_id: required("business_account_id", &m.business_account_id)?,
            app_id: required("app_id", &m.app_id)?,
            phone_number_id: required("phone_number_id", &m.phone_number_id)?,
            api_base_url: base_url("api_base_url", m.api_base_url.as_deref(), "https://graph.facebook.com")?,
            api_version: api_version(m.api_version.as_deref())?,
            access_token: sealer.seal(&required("access_token", &m.access_token)?),
            app_secret: sealer.seal(&required("app_secret", &m.app_secret)?),
            verify_token: sealer.seal(&required("verify_token", &m.verify_token)?),
        }),
        ProviderRequest::Twilio(t) => ProviderSettings::Twilio(TwilioSettings {
            account_sid: path_id("account_sid", &t.account_sid)?,
            business_number: phone("business_number", &t.business_number)?,
            api_base_url: base_url("api_base_url", t.api_base_url.as_deref(), "https://api.twilio.com")?,
            auth_token: sealer.seal(&required("auth_token", &t.auth_token)?),
        }),
        ProviderRequest::Sinch(x) => ProviderSettings::Sinch(SinchSettings {
            project_id: required("project_id", &x.project_id)?,
            app_id: required("app_id", &x.app_id)?,
            key_id: required("key_id", &x.key_id)?,
            key_secret: sealer.seal(&required("key_secret", &x.key_secret)?),
            webhook_secret: sealer.seal(&required("webhook_secret", &x.webhook_secret)?),
            api_base_url: base_url(
                "api_base_url",
                x.api_base_url.as_deref(),
                "https://us.conversation.api.sinch.com",
            )?,
            auth_base_url: base_url("auth_base_url", x.auth_base_url.as_deref(), "https://auth.sinch.com")?,
        }),
        ProviderRequest::Kaleyra(k) => ProviderSettings::Kaleyra(KaleyraSettings {
            api_base_url: base_url("api_base_url", k.api_base_url.as_deref(), "https://api.kaleyra.io")?,
            waba_id: required("waba_id", &k.waba_id)?,
            account_sid: path_id("account_sid", &k.account_sid)?,
            api_key: sealer.seal(&required("api_key", &k.api_key)?),
            business_number: phone("business_number", &k.business_number)?,
            callback_auth: match k.callback_auth {
                KaleyraCallbackAuthRequest::SharedHeader { name, value } => {
                    KaleyraCallbackAuth::SharedHeader {
                        name: required("callback_auth.name", &name)?,
                        value: sealer.seal(&required("callback_auth.value", &value)?),
                    }
                }
                KaleyraCallbackAuthRequest::Basic { user, password } => KaleyraCallbackAuth::Basic {
                    user: required("callback_auth.user", &user)?,
                    password: sealer.seal(&required("callback_auth.password", &password)?),
                },
            },
        }),
    })
}

/// Parses an optional detail: absent or blank is "not set".
pub fn optional_detail<T>(
    raw: Option<&str>,
    parse: impl FnOnce(&str) -> Result<T, ApiError>,
) -> Result<Option<T>, ApiError> {
    match raw.map(str::trim).filter(|v| !v.is_empty()) {
        Some(v) => parse(v).map(Some),
        None => Ok(None),
    }
}

/// Parses a contact list id naming the field.
pub fn list_id(raw: &str) -> Result<switchboard_domain::ContactListId, ApiError> {
    raw.parse().map_err(|_| invalid_field("invalid_id", "default_list", "`default_list` must be a UUID"))
}

/// Connects a WhatsApp business number.
#[utoipa::path(post, path = "/api/accounts", request_body = CreateAccount,
    responses((status = 201, body = AccountView), (status = 400, body = super::errors::ErrorBody),
        (status = 409, body = super::errors::ErrorBody), (status = 422, body = super::errors::ErrorBody)),
    security(("bearer" = [])), tag = "admin")]
pub async fn create_account(
    state: web::Data<AppState>,
    auth: Auth,
    req: HttpRequest,
    body: web::Json<CreateAccount>,
) -> Result<HttpResponse, ApiError> {
    use switchboard_domain::account::{AccountDescription, AccountDetails, PublicDomain};
    auth.require(&[Role::Admin])?;
    let body = body.into_inner();
    let name = DisplayName::parse(&body.name).map_err(|e| field_error("name", e))?;
    let key = AccountKey::parse(&body.key).map_err(|e| field_error("key", e))?;
    let details = AccountDetails {
        description: optional_detail(body.description.as_deref(), |v| Ok(AccountDescription::parse(v)?))?,
        phone: optional_detail(body.phone.as_deref(), |v| {
            PhoneNumber::parse(v).map_err(|e| field_error("phone", e))
        })?,
        default_list: optional_detail(body.default_list.as_deref(), list_id)?,
        public_domain: optional_detail(body.public_domain.as_deref(), |v| Ok(PublicDomain::parse(v)?))?,
    };
    let provider = provider_settings(&state.core.sealer, body.provider)?;
    let core = &state.core;
    let new = crate::services::accounts::NewAccount { name, key, provider, details };
    let account_id =
        crate::services::accounts::create(core, new, core.metadata(&auth.cause(), &correlation_id(&req)))
            .await?;
    let account = core.accounts.state(&account_id.to_string()).await?.state;
    Ok(HttpResponse::Created().json(view(&state, account_id, &account)))
}

/// Reads an account (never its secrets).
#[utoipa::path(get, path = "/api/accounts/{account_id}", responses((status = 200, body = AccountView)),
    security(("bearer" = [])), tag = "admin")]
pub async fn get_account(
    state: web::Data<AppState>,
    auth: Auth,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let account_id: AccountId = parse_id(&path, "account_not_found")?;
    // Agents read the accounts they were added to (same 404 otherwise: existence not leaked).
    let account = state.core.accounts.state(&account_id.to_string()).await?.state;
    if !account.exists() || !auth.may_see_account(&state.core, account_id).await? {
        return Err(ApiError::not_found("account_not_found", "no such account"));
    }
    Ok(HttpResponse::Ok().json(view(&state, account_id, &account)))
}

/// An agent id in a request body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct AgentRef {
    /// The agent.
    pub agent_id: String,
}

/// The agent, if registered (404 `agent_not_found` otherwise).
pub async fn existing_agent(state: &AppState, raw: &str) -> Result<AgentId, ApiError> {
    let agent_id: AgentId = raw.parse().map_err(|_| ApiError::invalid_id("agent_id"))?;
    if !state.core.agents.state(&agent_id.to_string()).await?.state.registered {
        return Err(ApiError::not_found("agent_not_found", "no such agent"));
    }
    Ok(agent_id)
}

/// Lets an agent see and work an account.
#[utoipa::path(post, path = "/api/accounts/{account_id}/agents", request_body = AgentRef,
    responses((status = 204)), security(("bearer" = [])), tag = "admin")]
pub async fn add_account_agent(
    state: web::Data<AppState>,
    auth: Auth,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<AgentRef>,
) -> Result<HttpResponse, ApiError> {
    auth.require(&[Role::Admin])?;
    let account_id: AccountId = parse_id(&path, "account_not_found")?;
    let agent_id = existing_agent(&state, &body.agent_id).await?;
    let core = &state.core;
    let cmd = AccountCommand::AddAgent { agent_id, at: core.clock.now() };
    state.account_command(&auth, &req, account_id, cmd).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A queue id in a request body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct QueueRef {
    /// The queue.
    pub queue_id: String,
}

/// Routes the account's new interactions to a queue.
#[utoipa::path(put, path = "/api/accounts/{account_id}/routing", request_body = QueueRef,
    responses((status = 204)), security(("bearer" = [])), tag = "admin")]
pub async fn set_routing(
    state: web::Data<AppState>,
    auth: Auth,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<QueueRef>,
) -> Result<HttpResponse, ApiError> {
    auth.require(&[Role::Admin])?;
    let account_id: AccountId = parse_id(&path, "account_not_found")?;
    let queue_id: QueueId = body.queue_id.parse().map_err(|_| ApiError::invalid_id("queue_id"))?;
    let core = &state.core;
    if !core.queues.state(&queue_id.to_string()).await?.state.created {
        return Err(ApiError::not_found("queue_not_found", "no such queue"));
    }
    let cmd = AccountCommand::SetRoutingQueue { queue_id, at: core.clock.now() };
    state.account_command(&auth, &req, account_id, cmd).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Sets (or, with `null`, clears) the template agents are offered once a customer's 24 h
/// window has closed.
#[utoipa::path(put, path = "/api/accounts/{account_id}/recontact-template", request_body = Option<TemplateView>,
    responses((status = 204), (status = 422, body = super::errors::ErrorBody)), security(("bearer" = [])), tag = "admin")]
pub async fn set_recontact_template(
    state: web::Data<AppState>,
    auth: Auth,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<Option<TemplateView>>,
) -> Result<HttpResponse, ApiError> {
    auth.require(&[Role::Admin])?;
    let account_id: AccountId = parse_id(&path, "account_not_found")?;
    let template = match body.into_inner() {
        Some(t) => {
            Some(switchboard_domain::interaction::TemplateMessage::new(&t.name, &t.language, t.parameters)?)
        }
        None => None,
    };
    let core = &state.core;
    let cmd = AccountCommand::SetRecontactTemplate { template, at: core.clock.now() };
    state.account_command(&auth, &req, account_id, cmd).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The account, if it exists (404 `account_not_found` otherwise).
async fn existing_account(state: &AppState, account_id: AccountId) -> Result<Account, ApiError> {
    let account = state.core.accounts.state(&account_id.to_string()).await?.state;
    if !account.exists() {
        return Err(ApiError::not_found("account_not_found", "no such account"));
    }
    Ok(account)
}

/// Replaces the account's routing plan. The body is a `RoutingPlan` (see `docs/api.md`); the
/// account validates it and names the offending step when it refuses.
#[utoipa::path(put, path = "/api/accounts/{account_id}/routing-plan", request_body = Object,
    responses((status = 204), (status = 400, body = super::errors::ErrorBody),
        (status = 404, body = super::errors::ErrorBody), (status = 422, body = super::errors::ErrorBody)),
    security(("bearer" = [])), tag = "admin")]
pub async fn set_routing_plan(
    state: web::Data<AppState>,
    auth: Auth,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<RoutingPlan>,
) -> Result<HttpResponse, ApiError> {
    auth.require(&[Role::Admin])?;
    let account_id: AccountId = parse_id(&path, "account_not_found")?;
    let core = &state.core;
    let cmd = AccountCommand::SetRoutingPlan { plan: body.into_inner(), at: core.clock.now() };
    state.account_command(&auth, &req, account_id, cmd).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Reads the account's routing plan (a one-step plan when only a routing queue is set).
#[utoipa::path(get, path = "/api/accounts/{account_id}/routing-plan",
    responses((status = 200, body = Object), (status = 404, body = super::errors::ErrorBody)),
    security(("bearer" = [])), tag = "admin")]
pub async fn get_routing_plan(
    state: web::Data<AppState>,
    auth: Auth,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    auth.require(&[Role::Admin, Role::Supervisor])?;
    let account_id: AccountId = parse_id(&path, "account_not_found")?;
    match existing_account(&state, account_id).await?.routing_plan {
        Some(plan) => Ok(HttpResponse::Ok().json(plan)),
        None => Err(ApiError::not_found("routing_plan_not_set", "the account has no routing plan")),
    }
}

/// Replaces the account's channel rules (new interactions copy them when they open).
#[utoipa::path(put, path = "/api/accounts/{account_id}/channel-rules", request_body = Object,
    responses((status = 204), (status = 400, body = super::errors::ErrorBody),
        (status = 404, body = super::errors::ErrorBody), (status = 422, body = super::errors::ErrorBody)),
    security(("bearer" = [])), tag = "admin")]
pub async fn set_channel_rules(
    state: web::Data<AppState>,
    auth: Auth,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<ChannelRules>,
) -> Result<HttpResponse, ApiError> {
    auth.require(&[Role::Admin])?;
    let account_id: AccountId = parse_id(&path, "account_not_found")?;
    let core = &state.core;
    let cmd = AccountCommand::SetChannelRules { rules: body.into_inner(), at: core.clock.now() };
    state.account_command(&auth, &req, account_id, cmd).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Reads the account's channel rules (the defaults until set).
#[utoipa::path(get, path = "/api/accounts/{account_id}/channel-rules",
    responses((status = 200, body = Object), (status = 404, body = super::errors::ErrorBody)),
    security(("bearer" = [])), tag = "admin")]
pub async fn get_channel_rules(
    state: web::Data<AppState>,
    auth: Auth,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    auth.require(&[Role::Admin, Role::Supervisor])?;
    let account_id: AccountId = parse_id(&path, "account_not_found")?;
    Ok(HttpResponse::Ok().json(existing_account(&state, account_id).await?.rules))
}

/// `POST /api/queues`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateQueue {
    /// Display name.
    pub name: String,
    /// Seconds an agent has to accept an offer (default 10).
    pub offer_timeout_secs: Option<u32>,
    /// `ring_all`, `round_robin` (default), `least_recent` or `fewest_open`.
    #[schema(value_type = Option<String>)]
    pub strategy: Option<Strategy>,
    /// Priority against an agent's other queues, 0 to 10 (default 5; higher first).
    pub weight: Option<u8>,
}

/// A created resource's id.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Created {
    /// The new id.
    pub id: String,
}

/// Creates a queue.
#[utoipa::path(post, path = "/api/queues", request_body = CreateQueue,
    responses((status = 201, body = Created)), security(("bearer" = [])), tag = "admin")]
pub async fn create_queue(
    state: web::Data<AppState>,
    auth: Auth,
    req: HttpRequest,
    body: web::Json<CreateQueue>,
) -> Result<HttpResponse, ApiError> {
    auth.require(&[Role::Admin])?;
    let name = DisplayName::parse(&body.name)?;
    let queue_id = QueueId::new();
    let core = &state.core;
    let cmd = QueueCommand::Create {
        name,
        offer_timeout_secs: body.offer_timeout_secs.unwrap_or(DEFAULT_OFFER_TIMEOUT_SECS),
        strategy: body.strategy.unwrap_or_default(),
        weight: body.weight.unwrap_or(DEFAULT_WEIGHT),
        at: core.clock.now(),
    };
    core.queues
        .execute(&queue_id.to_string(), cmd, core.metadata(&auth.cause(), &correlation_id(&req)))
        .await?;
    Ok(HttpResponse::Created().json(Created { id: queue_id.to_string() }))
}

/// Adds an agent to a queue.
#[utoipa::path(post, path = "/api/queues/{queue_id}/agents", request_body = AgentRef,
    responses((status = 204)), security(("bearer" = [])), tag = "admin")]
pub async fn add_queue_agent(
    state: web::Data<AppState>,
    auth: Auth,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<AgentRef>,
) -> Result<HttpResponse, ApiError> {
    auth.require(&[Role::Admin])?;
    let queue_id: QueueId = parse_id(&path, "queue_not_found")?;
    let core = &state.core;
    if !core.queues.state(&queue_id.to_string()).await?.state.created {
        return Err(ApiError::not_found("queue_not_found", "no such queue"));
    }
    let agent_id = existing_agent(&state, &body.agent_id).await?;
    // Membership is recorded on the agent; the router adds them to the queue's rotation.
    let cmd = AgentCommand::JoinQueue { queue_id, at: core.clock.now() };
    core.agents
        .execute(&agent_id.to_string(), cmd, core.metadata(&auth.cause(), &correlation_id(&req)))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `PUT /api/queues/{queue_id}`: the queue's routing settings, all three replaced.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ConfigureQueue {
    /// Seconds an agent has to accept an offer (1 to 3600).
    pub offer_timeout_secs: u32,
    /// `ring_all`, `round_robin`, `least_recent` or `fewest_open`.
    #[schema(value_type = String)]
    pub strategy: Strategy,
    /// Priority against an agent's other queues, 0 to 10 (higher first).
    pub weight: u8,
}

/// Changes a queue's offer timeout, strategy and weight.
#[utoipa::path(put, path = "/api/queues/{queue_id}", request_body = ConfigureQueue,
    responses((status = 204), (status = 404, body = super::errors::ErrorBody),
        (status = 422, body = super::errors::ErrorBody)),
    security(("bearer" = [])), tag = "admin")]
pub async fn configure_queue(
    state: web::Data<AppState>,
    auth: Auth,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<ConfigureQueue>,
) -> Result<HttpResponse, ApiError> {
    auth.require(&[Role::Admin])?;
    let queue_id: QueueId = parse_id(&path, "queue_not_found")?;
    let core = &state.core;
    let ConfigureQueue { offer_timeout_secs, strategy, weight } = body.into_inner();
    let cmd = QueueCommand::Configure { offer_timeout_secs, strategy, weight, at: core.clock.now() };
    core.queues
        .execute(&queue_id.to_string(), cmd, core.metadata(&auth.cause(), &correlation_id(&req)))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Removes an agent from a queue (idempotent); their pending offers from it are withdrawn by
/// the router.
#[utoipa::path(delete, path = "/api/queues/{queue_id}/agents/{agent_id}",
    responses((status = 204), (status = 404, body = super::errors::ErrorBody)),
    security(("bearer" = [])), tag = "admin")]
pub async fn remove_queue_agent(
    state: web::Data<AppState>,
    auth: Auth,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    auth.require(&[Role::Admin])?;
    let (raw_queue, raw_agent) = path.into_inner();
    let queue_id: QueueId = parse_id(&raw_queue, "queue_not_found")?;
    let agent_id: AgentId = parse_id(&raw_agent, "agent_not_found")?;
    let core = &state.core;
    if !core.queues.state(&queue_id.to_string()).await?.state.created {
        return Err(ApiError::not_found("queue_not_found", "no such queue"));
    }
    let cmd = AgentCommand::LeaveQueue { queue_id, at: core.clock.now() };
    core.agents
        .execute(&agent_id.to_string(), cmd, core.metadata(&auth.cause(), &correlation_id(&req)))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `PUT /api/agents/{agent_id}/capacity`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SetCapacity {
    /// Interactions the agent handles at once (open ones plus pending offers), 1 to 50.
    pub capacity: u32,
}

/// Sets how many interactions an agent handles at once.
#[utoipa::path(put, path = "/api/agents/{agent_id}/capacity", request_body = SetCapacity,
    responses((status = 204), (status = 404, body = super::errors::ErrorBody),
        (status = 422, body = super::errors::ErrorBody)),
    security(("bearer" = [])), tag = "admin")]
pub async fn set_capacity(
    state: web::Data<AppState>,
    auth: Auth,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<SetCapacity>,
) -> Result<HttpResponse, ApiError> {
    auth.require(&[Role::Admin, Role::Supervisor])?;
    let agent_id: AgentId = parse_id(&path, "agent_not_found")?;
    let core = &state.core;
    let cmd = AgentCommand::SetCapacity { capacity: body.capacity, at: core.clock.now() };
    core.agents
        .execute(&agent_id.to_string(), cmd, core.metadata(&auth.cause(), &correlation_id(&req)))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `POST /api/agents`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateAgent {
    /// Display name.
    pub name: String,
}

/// A new agent and their API token (shown once).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AgentCreated {
    /// The agent's id.
    pub agent_id: String,
    /// Their bearer token.
    pub token: String,
}

/// Creates an agent and their token.
#[utoipa::path(post, path = "/api/agents", request_body = CreateAgent,
    responses((status = 201, body = AgentCreated)), security(("bearer" = [])), tag = "admin")]
pub async fn create_agent(
    state: web::Data<AppState>,
    auth: Auth,
    req: HttpRequest,
    body: web::Json<CreateAgent>,
) -> Result<HttpResponse, ApiError> {
    auth.require(&[Role::Admin])?;
    let name = DisplayName::parse(&body.name)?;
    let agent_id = AgentId::new();
    let core = &state.core;
    // The token first: if registering then fails, an unusable token is left behind, never an
    // agent nobody can log in as.
    let token =
        auth::issue(&core.db.any, Role::Agent, Some(agent_id), name.as_ref(), core.clock.now_ms()).await?;
    let cmd = AgentCommand::Register { name: name.clone(), at: core.clock.now() };
    core.agents
        .execute(&agent_id.to_string(), cmd, core.metadata(&auth.cause(), &correlation_id(&req)))
        .await?;
    Ok(HttpResponse::Created().json(AgentCreated { agent_id: agent_id.to_string(), token }))
}

/// `POST /api/tokens`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateToken {
    /// `admin` or `supervisor`.
    pub role: Role,
    /// A label to recognise it by.
    pub label: String,
}

/// A new token (shown once).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TokenCreated {
    /// The bearer token.
    pub token: String,
}

/// Creates an admin or supervisor token.
#[utoipa::path(post, path = "/api/tokens", request_body = CreateToken,
    responses((status = 201, body = TokenCreated)), security(("bearer" = [])), tag = "admin")]
pub async fn create_token(
    state: web::Data<AppState>,
    auth: Auth,
    body: web::Json<CreateToken>,
) -> Result<HttpResponse, ApiError> {
    auth.require(&[Role::Admin])?;
    if body.role == Role::Agent {
        return Err(ApiError::new(
            actix_web::http::StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_role",
            "agent tokens come with POST /api/agents",
        ));
    }
    let label = DisplayName::parse(&body.label)?;
    let core = &state.core;
    let token = auth::issue(&core.db.any, body.role, None, label.as_ref(), core.clock.now_ms()).await?;
    Ok(HttpResponse::Created().json(TokenCreated { token }))
}
