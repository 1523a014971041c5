//! Catalogues: dispositions (general and per account, up to three levels) and canned
//! answers (general and per account), plus the agent's blended views of both for one
//! interaction.
//!
//! Administrators write; everyone reads the general catalogues; an account's catalogues are
//! read by administrators, supervisors and the agents added to the account (others get the
//! same 404 as for a missing account, so existence is not leaked). Reads come from the
//! catalogue aggregates (cached in their actors), not from a read model: a change is visible
//! at once and catalogues are small.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::json;
use switchboard_domain::catalog::{
    BlendedAnswer, CannedCatalogCommand, CannedText, DispositionCatalogCommand, DispositionNode, Origin,
    Scope, blend_answers, blend_dispositions,
};
use switchboard_domain::{AccountId, CannedAnswerId, DisplayName, DispositionId, InteractionId};
use utoipa::{IntoParams, OpenApi, ToSchema};

use super::{ApiError, AppState, Auth, correlation_id, parse_id};
use crate::auth::Role;

/// This module's part of the API description (merged in `openapi`).
#[derive(OpenApi)]
#[openapi(
    paths(
        list_general_dispositions,
        add_general_disposition,
        rename_general_disposition,
        remove_general_disposition,
        list_account_dispositions,
        add_account_disposition,
        rename_account_disposition,
        remove_account_disposition,
        list_general_canned,
        add_general_canned,
        edit_general_canned,
        remove_general_canned,
        list_account_canned,
        add_account_canned,
        edit_account_canned,
        remove_account_canned,
        interaction_dispositions,
        interaction_canned_answers,
    ),
    components(schemas(
        AddDisposition,
        RenameDisposition,
        DispositionView,
        AddCannedAnswer,
        EditCannedAnswer,
        CannedAnswerView,
        AgentCannedAnswer
    ))
)]
pub struct ApiDoc;

/// Routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/dispositions", web::get().to(list_general_dispositions))
        .route("/api/dispositions", web::post().to(add_general_disposition))
        .route("/api/dispositions/{disposition_id}", web::patch().to(rename_general_disposition))
        .route("/api/dispositions/{disposition_id}", web::delete().to(remove_general_disposition))
        .route("/api/accounts/{account_id}/dispositions", web::get().to(list_account_dispositions))
        .route("/api/accounts/{account_id}/dispositions", web::post().to(add_account_disposition))
        .route(
            "/api/accounts/{account_id}/dispositions/{disposition_id}",
            web::patch().to(rename_account_disposition),
        )
        .route(
            "/api/accounts/{account_id}/dispositions/{disposition_id}",
            web::delete().to(remove_account_disposition),
        )
        .route("/api/canned-answers", web::get().to(list_general_canned))
        .route("/api/canned-answers", web::post().to(add_general_canned))
        .route("/api/canned-answers/{answer_id}", web::patch().to(edit_general_canned))
        .route("/api/canned-answers/{answer_id}", web::delete().to(remove_general_canned))
        .route("/api/accounts/{account_id}/canned-answers", web::get().to(list_account_canned))
        .route("/api/accounts/{account_id}/canned-answers", web::post().to(add_account_canned))
        .route("/api/accounts/{account_id}/canned-answers/{answer_id}", web::patch().to(edit_account_canned))
        .route(
            "/api/accounts/{account_id}/canned-answers/{answer_id}",
            web::delete().to(remove_account_canned),
        )
        .route("/api/interactions/{interaction_id}/dispositions", web::get().to(interaction_dispositions))
        .route(
            "/api/interactions/{interaction_id}/canned-answers",
            web::get().to(interaction_canned_answers),
        );
}

// ---- scopes and access ----

fn account_not_found() -> ApiError {
    ApiError::not_found("account_not_found", "no such account")
}

/// The catalogue a request addresses: `general`, or the `{account_id}` of its path once the
/// account is known to exist and the caller may see it.
async fn scope(state: &AppState, auth: &Auth, req: &HttpRequest) -> Result<Scope, ApiError> {
    let Some(raw) = req.match_info().get("account_id") else { return Ok(Scope::General) };
    let account_id: AccountId = parse_id(raw, "account_not_found")?;
    let account = state.core.accounts.state(&account_id.to_string()).await?.state;
    if !account.created || account.deleted {
        return Err(account_not_found());
    }
    if !auth.may_see_account(&state.core, account_id).await? {
        return Err(account_not_found());
    }
    Ok(Scope::Account(account_id))
}

/// Only administrators change catalogues.
async fn writable_scope(state: &AppState, auth: &Auth, req: &HttpRequest) -> Result<Scope, ApiError> {
    auth.require(&[Role::Admin])?;
    scope(state, auth, req).await
}

fn name_field(raw: &str) -> Result<DisplayName, ApiError> {
    DisplayName::parse(raw).map_err(|_| {
        ApiError::invalid_field(
            "invalid_name",
            "name",
            format!("`name` must be 1 to {} characters", DisplayName::MAX_CHARS),
        )
    })
}

fn title_field(raw: &str) -> Result<DisplayName, ApiError> {
    DisplayName::parse(raw).map_err(|_| {
        ApiError::invalid_field(
            "invalid_title",
            "title",
            format!("`title` must be 1 to {} characters", DisplayName::MAX_CHARS),
        )
    })
}

fn path_param<T: std::str::FromStr>(
    req: &HttpRequest,
    name: &str,
    code: &'static str,
) -> Result<T, ApiError> {
    parse_id(req.match_info().get(name).unwrap_or_default(), code)
}

// ---- dispositions ----

/// `POST …/dispositions`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddDisposition {
    /// 1 to 100 characters, no `>`, unique among its siblings ignoring case; the full label
    /// (`Category > Subcategory > Detail`) at most 64 characters.
    pub name: String,
    /// The disposition it refines (a category or a subcategory of the same catalogue).
    pub parent_id: Option<String>,
}

/// `PATCH …/dispositions/{id}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RenameDisposition {
    /// The new name (same rules as when adding).
    pub name: String,
}

/// A disposition and its children.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DispositionView {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// The label an interaction records when it is chosen.
    pub label: String,
    /// `general` or `account`.
    pub origin: String,
    /// The system disposition "Closed for inactivity": cannot be changed; not for agents.
    pub system: bool,
    /// Its children.
    #[schema(no_recursion)]
    pub children: Vec<DispositionView>,
}

fn origin_name(origin: Origin) -> String {
    match origin {
        Origin::General => "general",
        Origin::Account => "account",
    }
    .to_owned()
}

fn disposition_view(node: DispositionNode) -> DispositionView {
    DispositionView {
        id: node.id.to_string(),
        name: node.name,
        label: node.label,
        origin: origin_name(node.origin),
        system: node.system,
        children: node.children.into_iter().map(disposition_view).collect(),
    }
}

fn find_node(nodes: &[DispositionNode], id: DispositionId) -> Option<&DispositionNode> {
    nodes.iter().find_map(|n| if n.id == id { Some(n) } else { find_node(&n.children, id) })
}

async fn disposition_tree(state: &AppState, scope: Scope) -> Result<Vec<DispositionNode>, ApiError> {
    let catalogue =
        state.core.dispositions.state(&scope.aggregate_id()).await.map_err(ApiError::from_catalog)?;
    Ok(catalogue.state.tree(scope))
}

async fn list_dispositions(
    state: &AppState,
    auth: &Auth,
    req: &HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let scope = scope(state, auth, req).await?;
    let tree = disposition_tree(state, scope).await?;
    Ok(HttpResponse::Ok().json(tree.into_iter().map(disposition_view).collect::<Vec<_>>()))
}

async fn add_disposition(
    state: &AppState,
    auth: &Auth,
    req: &HttpRequest,
    body: AddDisposition,
) -> Result<HttpResponse, ApiError> {
    let scope = writable_scope(state, auth, req).await?;
    let name = name_field(&body.name)?;
    let parent = body
        .parent_id
        .as_deref()
        .map(|raw| raw.parse::<DispositionId>())
        .transpose()
        .map_err(|_| ApiError::invalid_id("parent_id").with_details(json!({"field": "parent_id"})))?;
    let core = &state.core;
    let id = DispositionId::new();
    let cmd = DispositionCatalogCommand::Add { id, parent, name, at: core.clock.now() };
    core.dispositions
        .execute(&scope.aggregate_id(), cmd, core.metadata(&auth.cause(), &correlation_id(req)))
        .await
        .map_err(ApiError::from_catalog)?;
    let tree = disposition_tree(state, scope).await?;
    let node =
        find_node(&tree, id).cloned().ok_or_else(|| ApiError::internal("added disposition missing"))?;
    Ok(HttpResponse::Created().json(disposition_view(node)))
}

async fn rename_disposition(
    state: &AppState,
    auth: &Auth,
    req: &HttpRequest,
    body: RenameDisposition,
) -> Result<HttpResponse, ApiError> {
    let scope = writable_scope(state, auth, req).await?;
    let id: DispositionId = path_param(req, "disposition_id", "disposition_not_found")?;
    let name = name_field(&body.name)?;
    let core = &state.core;
    let cmd = DispositionCatalogCommand::Rename { id, name, at: core.clock.now() };
    core.dispositions
        .execute(&scope.aggregate_id(), cmd, core.metadata(&auth.cause(), &correlation_id(req)))
        .await
        .map_err(ApiError::from_catalog)?;
    let tree = disposition_tree(state, scope).await?;
    let node =
        find_node(&tree, id).cloned().ok_or_else(|| ApiError::internal("renamed disposition missing"))?;
    Ok(HttpResponse::Ok().json(disposition_view(node)))
}

async fn remove_disposition(
    state: &AppState,
    auth: &Auth,
    req: &HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let scope = writable_scope(state, auth, req).await?;
    let id: DispositionId = path_param(req, "disposition_id", "disposition_not_found")?;
    let core = &state.core;
    let cmd = DispositionCatalogCommand::Remove { id, at: core.clock.now() };
    core.dispositions
        .execute(&scope.aggregate_id(), cmd, core.metadata(&auth.cause(), &correlation_id(req)))
        .await
        .map_err(ApiError::from_catalog)?;
    Ok(HttpResponse::NoContent().finish())
}

/// The general disposition catalogue as a tree (the system disposition first).
#[utoipa::path(get, path = "/api/dispositions", responses((status = 200, body = [DispositionView])),
    security(("bearer" = [])), tag = "catalog")]
pub async fn list_general_dispositions(
    state: web::Data<AppState>,
    auth: Auth,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    list_dispositions(&state, &auth, &req).await
}

/// Adds a disposition to the general catalogue (admin).
#[utoipa::path(post, path = "/api/dispositions", request_body = AddDisposition,
    responses((status = 201, body = DispositionView), (status = 409, body = super::errors::ErrorBody),
        (status = 422, body = super::errors::ErrorBody)),
    security(("bearer" = [])), tag = "catalog")]
pub async fn add_general_disposition(
    state: web::Data<AppState>,
    auth: Auth,
    req: HttpRequest,
    body: web::Json<AddDisposition>,
) -> Result<HttpResponse, ApiError> {
    add_disposition(&state, &auth, &req, body.into_inner()).await
}

/// Renames a disposition of the general catalogue (admin; not the system one).
#[utoipa::path(patch, path = "/api/dispositions/{disposition_id}", request_body = RenameDisposition,
    responses((status = 200, body = DispositionView), (status = 404, body = super::errors::ErrorBody),
        (status = 409, body = super::errors::ErrorBody), (status = 422, body = super::errors::ErrorBody)),
    security(("bearer" = [])), tag = "catalog")]
pub async fn rename_general_disposition(
    state: web::Data<AppState>,
    auth: Auth,
    req: HttpRequest,
    body: web::Json<RenameDisposition>,
) -> Result<HttpResponse, ApiError> {
    rename_disposition(&state, &auth, &req, body.into_inner()).await
}

/// Removes a childless disposition of the general catalogue (admin; not the system one).
#[utoipa::path(delete, path = "/api/dispositions/{disposition_id}",
    responses((status = 204), (status = 404, body = super::errors::ErrorBody), (status = 409, body = super::errors::ErrorBody)),
    security(("bearer" = [])), tag = "catalog")]
pub async fn remove_general_disposition(
    state: web::Data<AppState>,
    auth: Auth,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    remove_disposition(&state, &auth, &req).await
}

/// An account's own disposition catalogue as a tree.
#[utoipa::path(get, path = "/api/accounts/{account_id}/dispositions",
    responses((status = 200, body = [DispositionView]), (status = 404, body = super::errors::ErrorBody)),
    security(("bearer" = [])), tag = "catalog")]
pub async fn list_account_dispositions(
    state: web::Data<AppState>,
    auth: Auth,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    list_dispositions(&state, &auth, &req).await
}

/// Adds a disposition to an account's catalogue (admin).
#[utoipa::path(post, path = "/api/accounts/{account_id}/dispositions", request_body = AddDisposition,
    responses((status = 201, body = DispositionView), (status = 404, body = super::errors::ErrorBody),
        (status = 409, body = super::errors::ErrorBody), (status = 422, body = super::errors::ErrorBody)),
    security(("bearer" = [])), tag = "catalog")]
pub async fn add_account_disposition(
    state: web::Data<AppState>,
    auth: Auth,
    req: HttpRequest,
    body: web::Json<AddDisposition>,
) -> Result<HttpResponse, ApiError> {
    add_disposition(&state, &auth, &req, body.into_inner()).await
}

/// Renames a disposition of an account's catalogue (admin).
#[utoipa::path(patch, path = "/api/accounts/{account_id}/dispositions/{disposition_id}",
    request_body = RenameDisposition,
    responses((status = 200, body = DispositionView), (status = 404, body = super::errors::ErrorBody),
        (status = 409, body = super::errors::ErrorBody), (status = 422, body = super::errors::ErrorBody)),
    security(("bearer" = [])), tag = "catalog")]
pub async fn rename_account_disposition(
    state: web::Data<AppState>,
    auth: Auth,
    req: HttpRequest,
    body: web::Json<RenameDisposition>,
) -> Result<HttpResponse, ApiError> {
    rename_disposition(&state, &auth, &req, body.into_inner()).await
}

/// Removes a childless disposition of an account's catalogue (admin).
#[utoipa::path(delete, path = "/api/accounts/{account_id}/dispositions/{disposition_id}",
    responses((status = 204), (status = 404, body = super::errors::ErrorBody), (status = 409, body = super::errors::ErrorBody)),
    security(("bearer" = [])), tag = "catalog")]
pub async fn remove_account_disposition(
    state: web::Data<AppState>,
    auth: Auth,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    remove_disposition(&state, &auth, &req).await
}

// ---- canned answers ----

/// `POST …/canned-answers`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddCannedAnswer {
    /// 1 to 100 characters, unique in the catalogue ignoring case.
    pub title: String,
    /// 1 to 4096 characters; placeholders such as `{{contact.name}}` and `{{agent.name}}`.
    pub text: String,
}

/// `PATCH …/canned-answers/{id}`: either or both.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EditCannedAnswer {
    /// The new title.
    pub title: Option<String>,
    /// The new text.
    pub text: Option<String>,
}

/// A canned answer as saved.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CannedAnswerView {
    /// Its id.
    pub id: String,
    /// `general` or `account`.
    pub origin: String,
    /// Its title.
    pub title: String,
    /// Its text, placeholders unfilled.
    pub text: String,
}

async fn canned_list(state: &AppState, scope: Scope) -> Result<Vec<CannedAnswerView>, ApiError> {
    let catalogue =
        state.core.canned_answers.state(&scope.aggregate_id()).await.map_err(ApiError::from_catalog)?;
    let origin = origin_name(scope.origin());
    Ok(catalogue
        .state
        .entries
        .iter()
        .map(|a| CannedAnswerView {
            id: a.id.to_string(),
            origin: origin.clone(),
            title: a.title.to_string(),
            text: a.text.source().to_owned(),
        })
        .collect())
}

async fn canned_one(
    state: &AppState,
    scope: Scope,
    id: CannedAnswerId,
) -> Result<CannedAnswerView, ApiError> {
    canned_list(state, scope)
        .await?
        .into_iter()
        .find(|a| a.id == id.to_string())
        .ok_or_else(|| ApiError::internal("canned answer missing after commit"))
}

async fn list_canned(state: &AppState, auth: &Auth, req: &HttpRequest) -> Result<HttpResponse, ApiError> {
    let scope = scope(state, auth, req).await?;
    Ok(HttpResponse::Ok().json(canned_list(state, scope).await?))
}

async fn add_canned(
    state: &AppState,
    auth: &Auth,
    req: &HttpRequest,
    body: AddCannedAnswer,
) -> Result<HttpResponse, ApiError> {
    let scope = writable_scope(state, auth, req).await?;
    let title = title_field(&body.title)?;
    let text = CannedText::parse(&body.text)?;
    let core = &state.core;
    let id = CannedAnswerId::new();
    let cmd = CannedCatalogCommand::Add { id, title, text, at: core.clock.now() };
    core.canned_answers
        .execute(&scope.aggregate_id(), cmd, core.metadata(&auth.cause(), &correlation_id(req)))
        .await
        .map_err(ApiError::from_catalog)?;
    Ok(HttpResponse::Created().json(canned_one(state, scope, id).await?))
}

async fn edit_canned(
    state: &AppState,
    auth: &Auth,
    req: &HttpRequest,
    body: EditCannedAnswer,
) -> Result<HttpResponse, ApiError> {
    let scope = writable_scope(state, auth, req).await?;
    let id: CannedAnswerId = path_param(req, "answer_id", "canned_answer_not_found")?;
    let title = body.title.as_deref().map(title_field).transpose()?;
    let text = body.text.as_deref().map(CannedText::parse).transpose()?;
    let core = &state.core;
    let cmd = CannedCatalogCommand::Edit { id, title, text, at: core.clock.now() };
    core.canned_answers
        .execute(&scope.aggregate_id(), cmd, core.metadata(&auth.cause(), &correlation_id(req)))
        .await
        .map_err(ApiError::from_catalog)?;
    Ok(HttpResponse::Ok().json(canned_one(state, scope, id).await?))
}

async fn remove_canned(state: &AppState, auth: &Auth, req: &HttpRequest) -> Result<HttpResponse, ApiError> {
    let scope = writable_scope(state, auth, req).await?;
    let id: CannedAnswerId = path_param(req, "answer_id", "canned_answer_not_found")?;
    let core = &state.core;
    let cmd = CannedCatalogCommand::Remove { id, at: core.clock.now() };
    core.canned_answers
        .execute(&scope.aggregate_id(), cmd, core.metadata(&auth.cause(), &correlation_id(req)))
        .await
        .map_err(ApiError::from_catalog)?;
    Ok(HttpResponse::NoContent().finish())
}

/// The general canned answers, as saved.
#[utoipa::path(get, path = "/api/canned-answers", responses((status = 200, body = [CannedAnswerView])),
    security(("bearer" = [])), tag = "catalog")]
pub async fn list_general_canned(
    state: web::Data<AppState>,
    auth: Auth,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    list_canned(&state, &auth, &req).await
}

/// Adds a general canned answer (admin).
#[utoipa::path(post, path = "/api/canned-answers", request_body = AddCannedAnswer,
    responses((status = 201, body = CannedAnswerView), (status = 409, body = super::errors::ErrorBody),
        (status = 422, body = super::errors::ErrorBody)),
    security(("bearer" = [])), tag = "catalog")]
pub async fn add_general_canned(
    state: web::Data<AppState>,
    auth: Auth,
    req: HttpRequest,
    body: web::Json<AddCannedAnswer>,
) -> Result<HttpResponse, ApiError> {
    add_canned(&state, &auth, &req, body.into_inner()).await
}

/// Edits a general canned answer (admin).
#[utoipa::path(patch, path = "/api/canned-answers/{answer_id}", request_body = EditCannedAnswer,
    responses((status = 200, body = CannedAnswerView), (status = 404, body = super::errors::ErrorBody),
        (status = 409, body = super::errors::ErrorBody), (status = 422, body = super::errors::ErrorBody)),
    security(("bearer" = [])), tag = "catalog")]
pub async fn edit_general_canned(
    state: web::Data<AppState>,
    auth: Auth,
    req: HttpRequest,
    body: web::Json<EditCannedAnswer>,
) -> Result<HttpResponse, ApiError> {
    edit_canned(&state, &auth, &req, body.into_inner()).await
}

/// Removes a general canned answer (admin).
#[utoipa::path(delete, path = "/api/canned-answers/{answer_id}",
    responses((status = 204), (status = 404, body = super::errors::ErrorBody)),
    security(("bearer" = [])), tag = "catalog")]
pub async fn remove_general_canned(
    state: web::Data<AppState>,
    auth: Auth,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    remove_canned(&state, &auth, &req).await
}

/// An account's own canned answers, as saved.
#[utoipa::path(get, path = "/api/accounts/{account_id}/canned-answers",
    responses((status = 200, body = [CannedAnswerView]), (status = 404, body = super::errors::ErrorBody)),
    security(("bearer" = [])), tag = "catalog")]
pub async fn list_account_canned(
    state: web::Data<AppState>,
    auth: Auth,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    list_canned(&state, &auth, &req).await
}

/// Adds a canned answer to an account's catalogue (admin).
#[utoipa::path(post, path = "/api/accounts/{account_id}/canned-answers", request_body = AddCannedAnswer,
    responses((status = 201, body = CannedAnswerView), (status = 404, body = super::errors::ErrorBody),
        (status = 409, body = super::errors::ErrorBody), (status = 422, body = super::errors::ErrorBody)),
    security(("bearer" = [])), tag = "catalog")]
pub async fn add_account_canned(
    state: web::Data<AppState>,
    auth: Auth,
    req: HttpRequest,
    body: web::Json<AddCannedAnswer>,
) -> Result<HttpResponse, ApiError> {
    add_canned(&state, &auth, &req, body.into_inner()).await
}

/// Edits a canned answer of an account's catalogue (admin).
#[utoipa::path(patch, path = "/api/accounts/{account_id}/canned-answers/{answer_id}", request_body = EditCannedAnswer,
    responses((status = 200, body = CannedAnswerView), (status = 404, body = super::errors::ErrorBody),
        (status = 409, body = super::errors::ErrorBody), (status = 422, body = super::errors::ErrorBody)),
    security(("bearer" = [])), tag = "catalog")]
pub async fn edit_account_canned(
    state: web::Data<AppState>,
    auth: Auth,
    req: HttpRequest,
    body: web::Json<EditCannedAnswer>,
) -> Result<HttpResponse, ApiError> {
    edit_canned(&state, &auth, &req, body.into_inner()).await
}

/// Removes a canned answer of an account's catalogue (admin).
#[utoipa::path(delete, path = "/api/accounts/{account_id}/canned-answers/{answer_id}",
    responses((status = 204), (status = 404, body = super::errors::ErrorBody)),
    security(("bearer" = [])), tag = "catalog")]
pub async fn remove_account_canned(
    state: web::Data<AppState>,
    auth: Auth,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    remove_canned(&state, &auth, &req).await
}

// ---- the agent's views of one interaction ----

/// An interaction the caller may see, with its account (404 `interaction_not_found`
/// otherwise, also for an agent not on its account: existence is not leaked).
async fn visible_interaction(
    state: &AppState,
    auth: &Auth,
    raw: &str,
) -> Result<(InteractionId, switchboard_domain::interaction::Interaction, AccountId), ApiError> {
    let interaction_id: InteractionId = parse_id(raw, "interaction_not_found")?;
    let interaction = state.core.interactions.state(&interaction_id.to_string()).await?.state;
    let account_id = interaction.account_id.ok_or_else(ApiError::interaction_not_found)?;
    if !auth.may_see_account(&state.core, account_id).await? {
        return Err(ApiError::interaction_not_found());
    }
    Ok((interaction_id, interaction, account_id))
}

/// What an agent may choose when closing or disposing this interaction: the general
/// catalogue (without the system disposition) then the account's, each marked with its
/// origin. Only leaves (entries without children) can be chosen.
#[utoipa::path(get, path = "/api/interactions/{interaction_id}/dispositions",
    responses((status = 200, body = [DispositionView]), (status = 404, body = super::errors::ErrorBody)),
    security(("bearer" = [])), tag = "agent")]
pub async fn interaction_dispositions(
    state: web::Data<AppState>,
    auth: Auth,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (_, _, account_id) = visible_interaction(&state, &auth, &path).await?;
    let core = &state.core;
    let general =
        core.dispositions.state(&Scope::General.aggregate_id()).await.map_err(ApiError::from_catalog)?;
    let account = core
        .dispositions
        .state(&Scope::Account(account_id).aggregate_id())
        .await
        .map_err(ApiError::from_catalog)?;
    let nodes = blend_dispositions(&general.state, &account.state);
    Ok(HttpResponse::Ok().json(nodes.into_iter().map(disposition_view).collect::<Vec<_>>()))
}

/// `GET /api/interactions/{id}/canned-answers?q=`.
#[derive(Debug, Deserialize, IntoParams)]
pub struct CannedQuery {
    /// Text to look for in titles and texts, ignoring case (at most 100 characters).
    pub q: Option<String>,
}

/// A canned answer ready to send in one interaction.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AgentCannedAnswer {
    /// Its id.
    pub id: String,
    /// `general` or `account`.
    pub origin: String,
    /// Its title.
    pub title: String,
    /// The text with this interaction's values filled in.
    pub text: String,
    /// The text as saved, placeholders unfilled.
    pub source: String,
}

/// The longest search text accepted.
const MAX_QUERY_CHARS: usize = 100;

/// The customer's name as the interaction list knows it (the WhatsApp profile name).
async fn contact_name(state: &AppState, interaction_id: InteractionId) -> Result<Option<String>, ApiError> {
    use sqlx::Row;
    let row = sqlx::query("SELECT customer_name FROM interaction_list WHERE interaction_id = $1")
        .bind(interaction_id.to_string())
        .fetch_optional(&state.core.db.any)
        .await?;
    Ok(row.and_then(|r| r.try_get::<Option<String>, _>("customer_name").ok().flatten()))
}

/// The general and the account's canned answers in one list, sorted by title, origin
/// marked, placeholders filled from the interaction: `contact.name`, `contact.mobile`,
/// `agent.name` (the calling agent, or the interaction's for supervisors), `account.name`,
/// `account.key`, `interaction.id`.
#[utoipa::path(get, path = "/api/interactions/{interaction_id}/canned-answers", params(CannedQuery),
    responses((status = 200, body = [AgentCannedAnswer]), (status = 404, body = super::errors::ErrorBody),
        (status = 422, body = super::errors::ErrorBody)),
    security(("bearer" = [])), tag = "agent")]
pub async fn interaction_canned_answers(
    state: web::Data<AppState>,
    auth: Auth,
    path: web::Path<String>,
    query: web::Query<CannedQuery>,
) -> Result<HttpResponse, ApiError> {
    if query.q.as_deref().is_some_and(|q| q.chars().count() > MAX_QUERY_CHARS) {
        return Err(ApiError::invalid_field(
            "invalid_query",
            "q",
            format!("`q` must be at most {MAX_QUERY_CHARS} characters"),
        ));
    }
    let (interaction_id, interaction, account_id) = visible_interaction(&state, &auth, &path).await?;
    let core = &state.core;
    let account = core.accounts.state(&account_id.to_string()).await?.state;
    let agent_id = match auth.0.role {
        Role::Agent => Some(auth.agent()?),
        Role::Admin | Role::Supervisor => interaction.agent_id,
    };
    let agent_name = match agent_id {
        Some(agent_id) => core.agents.state(&agent_id.to_string()).await?.state.name.map(String::from),
        None => None,
    };
    let context = json!({
        "contact": {
            "name": contact_name(&state, interaction_id).await?,
            "mobile": interaction.customer.as_ref().map(ToString::to_string),
        },
        "agent": {"name": agent_name},
        "account": {
            "name": account.name.as_ref().map(ToString::to_string),
            "key": account.key.as_ref().map(ToString::to_string),
        },
        "interaction": {"id": interaction_id.to_string()},
    });
    let general =
        core.canned_answers.state(&Scope::General.aggregate_id()).await.map_err(ApiError::from_catalog)?;
    let own = core
        .canned_answers
        .state(&Scope::Account(account_id).aggregate_id())
        .await
        .map_err(ApiError::from_catalog)?;
    let answers: Vec<AgentCannedAnswer> =
        blend_answers(&general.state, &own.state, query.q.as_deref(), &context)
            .into_iter()
            .map(|a: BlendedAnswer| AgentCannedAnswer {
                id: a.id.to_string(),
                origin: origin_name(a.origin),
                title: a.title,
                text: a.text,
                source: a.source,
            })
            .collect();
    Ok(HttpResponse::Ok().json(answers))
}
