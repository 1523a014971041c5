//! The interaction list and the advanced search: thin handlers over
//! [`crate::services::search`], which compiles the filters and reads keyset pages.
//!
//! `GET /api/interactions` keeps its historical body (a JSON array of rows) so existing
//! clients keep working; the next page's cursor travels in the `X-Next-Cursor` header and a
//! `Link: <...>; rel="next"` (absent on the last page). `POST /api/interactions/search`
//! answers `{items, next_cursor}`: a body endpoint can say it in the body.
//!
//! Visibility: agents get `Viewer::Agent` (the read model's account membership, inside the
//! SQL, so pages are not emptied by filtering) plus the live check on the Account aggregate
//! (`Auth::may_see_account`), so a removal takes effect before the projection catches up.

use std::collections::{BTreeSet, HashMap};

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use switchboard_domain::AccountId;
use utoipa::{OpenApi, ToSchema};

use super::{ApiError, AppState, Auth};
use crate::auth::Role;
use crate::services::search::{
    self, Condition, Criteria, InteractionRow, ListQuery, Page, PageError, PageRequest, SearchError,
    SearchRequest, Viewer,
};

/// This module's part of the OpenAPI description.
#[derive(OpenApi)]
#[openapi(
    paths(list_interactions, search_interactions),
    components(schemas(InteractionRow, SearchRequest, SearchResults, Condition, Criteria))
)]
pub struct ApiDoc;

/// Routes (registered before `reads`, whose `/api/interactions/{id}` would take `search`).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/interactions", web::get().to(list_interactions))
        .route("/api/interactions/search", web::post().to(search_interactions));
}

/// A page of advanced-search results.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SearchResults {
    /// The rows, in the asked order.
    pub items: Vec<InteractionRow>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// 400 `invalid_search` for criteria the search refuses (the list, the search, the exports).
pub(super) fn invalid_search(e: SearchError) -> ApiError {
    ApiError::new(actix_web::http::StatusCode::BAD_REQUEST, "invalid_search", e.0)
}

fn page_error(e: PageError, criteria_code: fn(SearchError) -> ApiError) -> ApiError {
    match e {
        PageError::Invalid(e) => criteria_code(e),
        PageError::Cursor(m) => ApiError::new(actix_web::http::StatusCode::BAD_REQUEST, "invalid_cursor", m),
        PageError::Db(e) => e.into(),
    }
}

fn viewer(auth: &Auth) -> Result<Viewer, ApiError> {
    Ok(match auth.0.role {
        Role::Agent => Viewer::Agent(auth.agent()?),
        Role::Admin | Role::Supervisor => Viewer::Everyone,
    })
}

/// Reads a page and drops, for agents, rows of accounts the Account aggregate no longer
/// lets them see (one cached actor read per account on the page).
async fn visible_page(
    state: &AppState,
    auth: &Auth,
    criteria: &Criteria,
    request: &PageRequest,
    criteria_code: fn(SearchError) -> ApiError,
) -> Result<Page, ApiError> {
    let core = &state.core;
    let mut page = search::page(&core.db.any, core.db.backend, criteria, viewer(auth)?, request)
        .await
        .map_err(|e| page_error(e, criteria_code))?;
    if auth.0.role == Role::Agent {
        let mut visible = HashMap::new();
        for account in page.rows.iter().map(|r| r.account_id.clone()).collect::<BTreeSet<_>>() {
            let may = match account.parse::<AccountId>() {
                Ok(id) => auth.may_see_account(core, id).await?,
                Err(_) => false,
            };
            visible.insert(account, may);
        }
        page.rows.retain(|r| visible.get(&r.account_id).copied().unwrap_or(false));
    }
    Ok(page)
}

/// Lists interactions with filters, sorted and paged by keyset (newest first by default).
/// The next page's cursor is in `X-Next-Cursor` (and `Link: <...>; rel="next"`).
#[utoipa::path(get, path = "/api/interactions", params(ListQuery),
    responses((status = 200, body = [InteractionRow],
               headers(("X-Next-Cursor" = String, description = "cursor of the next page; absent on the last"))),
              (status = 400, description = "`invalid_request` (a bad filter) or `invalid_cursor`",
               body = super::errors::ErrorBody)),
    security(("bearer" = [])), tag = "supervisor")]
pub async fn list_interactions(
    state: web::Data<AppState>,
    auth: Auth,
    req: HttpRequest,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let criteria = query.criteria().map_err(|e| ApiError::invalid_request(e.0))?;
    let request = query.page().map_err(|e| page_error(e, |e| ApiError::invalid_request(e.0)))?;
    let page = visible_page(&state, &auth, &criteria, &request, |e| ApiError::invalid_request(e.0)).await?;
    let mut response = HttpResponse::Ok();
    if let Some(next) = &page.next {
        let cursor = next.encode();
        // The same query with the cursor replaced: the client follows it as is.
        let mut pairs: Vec<(String, String)> =
            web::Query::<Vec<(String, String)>>::from_query(req.query_string())
                .map(web::Query::into_inner)
                .unwrap_or_default();
        pairs.retain(|(k, _)| k != "cursor");
        pairs.push(("cursor".into(), cursor.clone()));
        let encoded: Vec<String> =
            pairs.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect();
        response.insert_header(("X-Next-Cursor", cursor));
        response.insert_header(("Link", format!("</api/interactions?{}>; rel=\"next\"", encoded.join("&"))));
    }
    Ok(response.json(page.rows))
}

/// Percent-encodes a query component (unreserved characters kept).
fn encode(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for b in raw.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Advanced search over every interaction the caller may see: conditions (field, operator,
/// value; combined with `all` or `any`; disabled ones ignored) and full text over message
/// bodies. The list's simple filters do not apply.
#[utoipa::path(post, path = "/api/interactions/search", request_body = SearchRequest,
    responses((status = 200, body = SearchResults),
              (status = 400, description = "`invalid_search` (naming the condition), `invalid_cursor` or \
                                            `invalid_request` (malformed body, unknown key)",
               body = super::errors::ErrorBody)),
    security(("bearer" = [])), tag = "supervisor")]
pub async fn search_interactions(
    state: web::Data<AppState>,
    auth: Auth,
    body: web::Json<SearchRequest>,
) -> Result<HttpResponse, ApiError> {
    let request = body.page().map_err(|e| page_error(e, invalid_search))?;
    let page = visible_page(&state, &auth, &body.criteria(), &request, invalid_search).await?;
    Ok(HttpResponse::Ok().json(SearchResults {
        items: page.rows,
        next_cursor: page.next.as_ref().map(search::Cursor::encode),
    }))
}
