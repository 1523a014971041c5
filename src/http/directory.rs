//! The contact manager: lists, contacts, CSV import, whitelist.
//!
//! Admins and supervisors manage lists and contacts (they are shared by every account, so
//! an agent, who sees only some accounts, gets none of them); only admins change an
//! account's whitelist. Single reads come from the aggregates (no projection lag right after
//! a write); searches and list pages come from the `contacts` read model.

use std::collections::{BTreeMap, BTreeSet};

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::json;
use switchboard_domain::account::{AccountCommand, Whitelist};
use switchboard_domain::directory::{
    self, ContactCard, ContactCardCommand, ContactDetails, ContactListCommand, ContactPatch, ContactTags,
    ContactValueError, CreatedBy, CustomFields, Email, ListDescription,
};
use switchboard_domain::{AccountId, ContactCardId, ContactListId, DisplayName, MessageText, PhoneNumber};
use utoipa::{IntoParams, OpenApi, ToSchema};

use super::{ApiError, AppState, Auth, correlation_id, parse_id};
use crate::auth::Role;
use crate::services::contacts::{self, ImportReport, MAX_IMPORT_BYTES, RowError};

/// This module's part of the API description (merged in `openapi`).
#[derive(OpenApi)]
#[openapi(
    paths(
        create_list,
        list_lists,
        get_list,
        update_list,
        delete_list,
        create_contact,
        list_contacts,
        get_contact,
        update_contact,
        delete_contact,
        import_contacts,
        put_whitelist,
        get_whitelist
    ),
    components(schemas(
        CreateList,
        UpdateList,
        ListView,
        CreateContact,
        UpdateContact,
        ContactView,
        ContactPage,
        WhitelistBody,
        WhitelistView,
        ImportReport,
        RowError
    ))
)]
pub struct ApiDoc;

/// Routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/contact-lists", web::post().to(create_list))
        .route("/api/contact-lists", web::get().to(list_lists))
        .route("/api/contact-lists/{list_id}", web::get().to(get_list))
        .route("/api/contact-lists/{list_id}", web::patch().to(update_list))
        .route("/api/contact-lists/{list_id}", web::delete().to(delete_list))
        .route("/api/contact-lists/{list_id}/contacts", web::post().to(create_contact))
        .route("/api/contact-lists/{list_id}/contacts", web::get().to(list_contacts))
        .route("/api/contact-lists/{list_id}/import", web::post().to(import_contacts))
        .route("/api/contacts/{contact_id}", web::get().to(get_contact))
        .route("/api/contacts/{contact_id}", web::patch().to(update_contact))
        .route("/api/contacts/{contact_id}", web::delete().to(delete_contact))
        .route("/api/accounts/{account_id}/whitelist", web::put().to(put_whitelist))
        .route("/api/accounts/{account_id}/whitelist", web::get().to(get_whitelist));
}

const MANAGERS: &[Role] = &[Role::Admin, Role::Supervisor];

/// `Some(None)` for an explicit `null`, `Some(Some(v))` for a value, `None` when absent
/// (with `#[serde(default)]`): how a PATCH tells "clear" from "keep".
fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

fn unprocessable(code: &'static str, field: &str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message).with_details(json!({"field": field}))
}

fn list_name(raw: &str) -> Result<DisplayName, ApiError> {
    Ok(DisplayName::parse(raw).map_err(|e| ContactValueError::at("name", e))?)
}

// ---------------------------------------------------------------------------------------
// Lists
// ---------------------------------------------------------------------------------------

/// `POST /api/contact-lists`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateList {
    /// 1 to 100 characters.
    pub name: String,
    /// At most 500 characters.
    #[serde(default)]
    pub description: Option<String>,
}

/// `PATCH /api/contact-lists/{id}`: any subset; `description: null` clears it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateList {
    /// New name.
    #[serde(default)]
    pub name: Option<String>,
    /// New description (`null` clears).
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
}

/// A contact list.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ListView {
    /// Id.
    pub list_id: String,
    /// Name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// How many contacts it holds (from the read model: may lag a write by a moment).
    pub contacts: i64,
}

async fn contact_count(state: &AppState, list: ContactListId) -> Result<i64, ApiError> {
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM contact_cards WHERE list_id = $1")
        .bind(list.to_string())
        .fetch_one(&state.core.db.any)
        .await?;
    Ok(n)
}

/// The list's state if it exists (404 `contact_list_not_found` otherwise).
async fn existing_list(
    state: &AppState,
    raw: &str,
) -> Result<(ContactListId, directory::ContactList), ApiError> {
    let not_found = || ApiError::not_found("contact_list_not_found", "no such contact list");
    let id: ContactListId = raw.parse().map_err(|_| not_found())?;
    let list = state.core.contact_lists.state(&id.to_string()).await?.state;
    if !list.exists() {
        return Err(not_found());
    }
    Ok((id, list))
}

fn list_view(id: ContactListId, list: &directory::ContactList, contacts: i64) -> ListView {
    ListView {
        list_id: id.to_string(),
        name: list.name.as_ref().map(ToString::to_string).unwrap_or_default(),
        description: list.description.as_ref().map(|d| d.as_ref().to_owned()),
        contacts,
    }
}

/// Creates a contact list.
#[utoipa::path(post, path = "/api/contact-lists", request_body = CreateList,
    responses((status = 201, body = ListView), (status = 422, body = super::errors::ErrorBody)),
    security(("bearer" = [])), tag = "directory")]
pub async fn create_list(
    state: web::Data<AppState>,
    auth: Auth,
    req: HttpRequest,
    body: web::Json<CreateList>,
) -> Result<HttpResponse, ApiError> {
    auth.require(MANAGERS)?;
    let name = list_name(&body.name)?;
    let description = body.description.as_deref().map(ListDescription::parse).transpose()?.flatten();
    let core = &state.core;
    let id = ContactListId::new();
    let cmd = ContactListCommand::Create { name, description, at: core.clock.now() };
    core.contact_lists
        .execute(&id.to_string(), cmd, core.metadata(&auth.cause(), &correlation_id(&req)))
        .await?;
    let list = core.contact_lists.state(&id.to_string()).await?.state;
    Ok(HttpResponse::Created().json(list_view(id, &list, 0)))
}

/// Lists the contact lists, by name.
#[utoipa::path(get, path = "/api/contact-lists", responses((status = 200, body = [ListView])),
    security(("bearer" = [])), tag = "directory")]
pub async fn list_lists(state: web::Data<AppState>, auth: Auth) -> Result<HttpResponse, ApiError> {
    auth.require(MANAGERS)?;
    let rows: Vec<(String, String, Option<String>, i64)> = sqlx::query_as(
        "SELECT l.list_id, l.name, l.description,
                (SELECT COUNT(*) FROM contact_cards c WHERE c.list_id = l.list_id)
           FROM contact_lists l ORDER BY l.name, l.list_id",
    )
    .fetch_all(&state.core.db.any)
    .await?;
    let lists: Vec<ListView> = rows
        .into_iter()
        .map(|(list_id, name, description, contacts)| ListView { list_id, name, description, contacts })
        .collect();
    Ok(HttpResponse::Ok().json(lists))
}

/// Reads a contact list.
#[utoipa::path(get, path = "/api/contact-lists/{list_id}", responses((status = 200, body = ListView),
    (status = 404, body = super::errors::ErrorBody)), security(("bearer" = [])), tag = "directory")]
pub async fn get_list(
    state: web::Data<AppState>,
    auth: Auth,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    auth.require(MANAGERS)?;
    let (id, list) = existing_list(&state, &path).await?;
    let count = contact_count(&state, id).await?;
    Ok(HttpResponse::Ok().json(list_view(id, &list, count)))
}

/// Renames a list or changes its description.
#[utoipa::path(patch, path = "/api/contact-lists/{list_id}", request_body = UpdateList,
    responses((status = 200, body = ListView), (status = 422, body = super::errors::ErrorBody)),
    security(("bearer" = [])), tag = "directory")]
pub async fn update_list(
    state: web::Data<AppState>,
    auth: Auth,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<UpdateList>,
) -> Result<HttpResponse, ApiError> {
    auth.require(MANAGERS)?;
    let (id, _) = existing_list(&state, &path).await?;
    let name = body.name.as_deref().map(list_name).transpose()?;
    let description = match &body.description {
        None => None,
        Some(None) => Some(None),
        Some(Some(raw)) => Some(ListDescription::parse(raw)?),
    };
    let core = &state.core;
    let cmd = ContactListCommand::Update { name, description, at: core.clock.now() };
    core.contact_lists
        .execute(&id.to_string(), cmd, core.metadata(&auth.cause(), &correlation_id(&req)))
        .await?;
    let list = core.contact_lists.state(&id.to_string()).await?.state;
    let count = contact_count(&state, id).await?;
    Ok(HttpResponse::Ok().json(list_view(id, &list, count)))
}

/// Deletes a list and, with it, its contacts. Accounts whose whitelist or default list
/// names it behave as if the list held nobody.
#[utoipa::path(delete, path = "/api/contact-lists/{list_id}", responses((status = 204),
    (status = 404, body = super::errors::ErrorBody)), security(("bearer" = [])), tag = "directory")]
pub async fn delete_list(
    state: web::Data<AppState>,
    auth: Auth,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    auth.require(MANAGERS)?;
    let (id, _) = existing_list(&state, &path).await?;
    let core = &state.core;
    let cmd = ContactListCommand::Delete { at: core.clock.now() };
    core.contact_lists
        .execute(&id.to_string(), cmd, core.metadata(&auth.cause(), &correlation_id(&req)))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

// ---------------------------------------------------------------------------------------
// Contacts
// ---------------------------------------------------------------------------------------

/// `POST /api/contact-lists/{id}/contacts`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateContact {
    /// E.164 number, unique within the list.
    pub phone: String,
    /// 1 to 100 characters.
    #[serde(default)]
    pub name: Option<String>,
    /// Email address.
    #[serde(default)]
    pub email: Option<String>,
    /// At most 20 tags of 1 to 50 characters.
    #[serde(default)]
    pub tags: Vec<String>,
    /// At most 50 custom fields (names: letters, digits, `_`, `-`; values ≤ 500 characters).
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
}

/// `PATCH /api/contacts/{id}`: any subset; `null` clears name or email; `tags` and `fields`
/// replace the old ones. The phone never changes (it is the card's identity in its list).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateContact {
    /// New name (`null` clears).
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub name: Option<Option<String>>,
    /// New email (`null` clears).
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub email: Option<Option<String>>,
    /// New tags.
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    /// New custom fields.
    #[serde(default)]
    pub fields: Option<BTreeMap<String, String>>,
}

/// A contact.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ContactView {
    /// Id (derived from list and phone).
    pub contact_id: String,
    /// Its list.
    pub list_id: String,
    /// Number.
    pub phone: String,
    /// Name.
    pub name: Option<String>,
    /// Email.
    pub email: Option<String>,
    /// Tags.
    pub tags: Vec<String>,
    /// Custom fields.
    pub fields: BTreeMap<String, String>,
    /// `api`, `import` or `auto` (saved from an inbound message).
    pub created_by: String,
}

fn contact_view(id: &str, card: &ContactCard) -> ContactView {
    ContactView {
        contact_id: id.to_owned(),
        list_id: card.list_id.map(|l| l.to_string()).unwrap_or_default(),
        phone: card.phone.as_ref().map(ToString::to_string).unwrap_or_default(),
        name: card.details.name.as_ref().map(ToString::to_string),
        email: card.details.email.as_ref().map(ToString::to_string),
        tags: card.details.tags.as_set().iter().map(ToString::to_string).collect(),
        fields: card.details.fields.as_map().clone(),
        created_by: card.created_by.map(CreatedBy::as_str).unwrap_or("api").to_owned(),
    }
}

fn optional_name(raw: Option<&str>) -> Result<Option<DisplayName>, ContactValueError> {
    raw.map(|n| DisplayName::parse(n).map_err(|e| ContactValueError::at("name", e))).transpose()
}

fn tags(raw: &[String]) -> Result<ContactTags, ContactValueError> {
    ContactTags::parse_texts(raw.iter().map(String::as_str))
}

/// Adds a contact to a list.
#[utoipa::path(post, path = "/api/contact-lists/{list_id}/contacts", request_body = CreateContact,
    responses((status = 201, body = ContactView), (status = 409, body = super::errors::ErrorBody),
    (status = 422, body = super::errors::ErrorBody)), security(("bearer" = [])), tag = "directory")]
pub async fn create_contact(
    state: web::Data<AppState>,
    auth: Auth,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<CreateContact>,
) -> Result<HttpResponse, ApiError> {
    auth.require(MANAGERS)?;
    let (list_id, _) = existing_list(&state, &path).await?;
    let body = body.into_inner();
    let phone = PhoneNumber::parse(body.phone.trim()).map_err(|e| ContactValueError::at("phone", e))?;
    let details = ContactDetails {
        name: optional_name(body.name.as_deref())?,
        email: body.email.as_deref().map(Email::parse).transpose()?,
        tags: tags(&body.tags)?,
        fields: CustomFields::parse(body.fields)?,
    };
    let core = &state.core;
    let id = directory::card_id(list_id, &phone).to_string();
    let cmd = ContactCardCommand::Create {
        list_id,
        phone,
        details,
        created_by: CreatedBy::Api,
        at: core.clock.now(),
    };
    core.contact_cards.execute(&id, cmd, core.metadata(&auth.cause(), &correlation_id(&req))).await?;
    let card = core.contact_cards.state(&id).await?.state;
    Ok(HttpResponse::Created().json(contact_view(&id, &card)))
}

/// Search and paging of a list's contacts.
#[derive(Debug, Deserialize, IntoParams)]
pub struct ContactFilter {
    /// Text contained in the name, phone or email (case-insensitive).
    pub q: Option<String>,
    /// Only contacts with this tag.
    pub tag: Option<String>,
    /// Page size, 1 to 200 (default 50).
    pub limit: Option<i64>,
    /// Rows to skip (default 0).
    pub offset: Option<i64>,
}

/// A page of contacts.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ContactPage {
    /// The contacts, oldest first.
    pub contacts: Vec<ContactView>,
    /// How many match in all.
    pub total: i64,
}

type ContactRow = (String, String, String, Option<String>, Option<String>, String, String, String);

fn row_view((contact_id, list_id, phone, name, email, tags, fields, created_by): ContactRow) -> ContactView {
    ContactView {
        contact_id,
        list_id,
        phone,
        name,
        email,
        tags: serde_json::from_str(&tags).unwrap_or_default(),
        fields: serde_json::from_str(&fields).unwrap_or_default(),
        created_by,
    }
}

/// Escapes `%`, `_` and the escape character itself for a LIKE pattern.
fn like_pattern(q: &str) -> String {
    let escaped = q.to_lowercase().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
    format!("%{escaped}%")
}

/// Lists a list's contacts: text search, tag filter, paging (from the read model).
#[utoipa::path(get, path = "/api/contact-lists/{list_id}/contacts", params(ContactFilter),
    responses((status = 200, body = ContactPage)), security(("bearer" = [])), tag = "directory")]
pub async fn list_contacts(
    state: web::Data<AppState>,
    auth: Auth,
    path: web::Path<String>,
    filter: web::Query<ContactFilter>,
) -> Result<HttpResponse, ApiError> {
    auth.require(MANAGERS)?;
    let (list_id, _) = existing_list(&state, &path).await?;
    let limit = filter.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(unprocessable("invalid_paging", "limit", "`limit` must be 1 to 200"));
    }
    let offset = filter.offset.unwrap_or(0);
    if offset < 0 {
        return Err(unprocessable("invalid_paging", "offset", "`offset` must be 0 or more"));
    }
    let q = filter.q.as_deref().map(str::trim).filter(|q| !q.is_empty()).map(like_pattern);
    let tag = filter.tag.as_deref().map(str::trim).filter(|t| !t.is_empty()).map(str::to_owned);
    // Unset filters bind NULL and match everything, so one statement serves every combination.
    let filters = "FROM contact_cards c
         WHERE c.list_id = $1
           AND ($2 IS NULL OR c.search LIKE $2 ESCAPE '\\')
           AND ($3 IS NULL OR EXISTS (SELECT 1 FROM contact_card_tags t WHERE t.card_id = c.card_id AND t.tag = $3))";
    let (total,): (i64,) = sqlx::query_as(&format!("SELECT COUNT(*) {filters}"))
        .bind(list_id.to_string())
        .bind(q.clone())
        .bind(tag.clone())
        .fetch_one(&state.core.db.any)
        .await?;
    let rows: Vec<ContactRow> = sqlx::query_as(&format!(
        "SELECT c.card_id, c.list_id, c.phone, c.name, c.email, c.tags, c.fields, c.created_by {filters}
          ORDER BY c.created_at, c.card_id LIMIT $4 OFFSET $5"
    ))
    .bind(list_id.to_string())
    .bind(q)
    .bind(tag)
    .bind(limit)
    .bind(offset)
    .fetch_all(&state.core.db.any)
    .await?;
    Ok(HttpResponse::Ok().json(ContactPage { contacts: rows.into_iter().map(row_view).collect(), total }))
}

/// The card if it exists in a list that exists (404 `contact_not_found` otherwise).
async fn existing_card(state: &AppState, raw: &str) -> Result<(String, ContactCard), ApiError> {
    let id: ContactCardId = parse_id(raw, "contact_not_found")?;
    let id = id.to_string();
    let card = state.core.contact_cards.state(&id).await?.state;
    let in_live_list = match card.list_id {
        Some(list) => state.core.contact_lists.state(&list.to_string()).await?.state.exists(),
        None => false,
    };
    if !card.created || !in_live_list {
        return Err(ApiError::not_found("contact_not_found", "no such contact"));
    }
    Ok((id, card))
}

/// Reads a contact.
#[utoipa::path(get, path = "/api/contacts/{contact_id}", responses((status = 200, body = ContactView),
    (status = 404, body = super::errors::ErrorBody)), security(("bearer" = [])), tag = "directory")]
pub async fn get_contact(
    state: web::Data<AppState>,
    auth: Auth,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    auth.require(MANAGERS)?;
    let (id, card) = existing_card(&state, &path).await?;
    Ok(HttpResponse::Ok().json(contact_view(&id, &card)))
}

/// Changes a contact.
#[utoipa::path(patch, path = "/api/contacts/{contact_id}", request_body = UpdateContact,
    responses((status = 200, body = ContactView), (status = 422, body = super::errors::ErrorBody)),
    security(("bearer" = [])), tag = "directory")]
pub async fn update_contact(
    state: web::Data<AppState>,
    auth: Auth,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<UpdateContact>,
) -> Result<HttpResponse, ApiError> {
    auth.require(MANAGERS)?;
    let (id, _) = existing_card(&state, &path).await?;
    let body = body.into_inner();
    let patch = ContactPatch {
        name: body.name.map(|n| optional_name(n.as_deref())).transpose()?,
        email: body.email.map(|e| e.as_deref().map(Email::parse).transpose()).transpose()?,
        tags: body.tags.as_deref().map(tags).transpose()?,
        fields: body.fields.map(CustomFields::parse).transpose()?,
    };
    let core = &state.core;
    let cmd = ContactCardCommand::Update { patch, at: core.clock.now() };
    core.contact_cards.execute(&id, cmd, core.metadata(&auth.cause(), &correlation_id(&req))).await?;
    let card = core.contact_cards.state(&id).await?.state;
    Ok(HttpResponse::Ok().json(contact_view(&id, &card)))
}

/// Deletes a contact.
#[utoipa::path(delete, path = "/api/contacts/{contact_id}", responses((status = 204),
    (status = 404, body = super::errors::ErrorBody)), security(("bearer" = [])), tag = "directory")]
pub async fn delete_contact(
    state: web::Data<AppState>,
    auth: Auth,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    auth.require(MANAGERS)?;
    let (id, _) = existing_card(&state, &path).await?;
    let core = &state.core;
    let cmd = ContactCardCommand::Delete { at: core.clock.now() };
    core.contact_cards.execute(&id, cmd, core.metadata(&auth.cause(), &correlation_id(&req))).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Reads a request body up to `limit` bytes (413 `payload_too_large` beyond).
async fn read_limited(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<web::Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("imports are limited to {limit} bytes"),
        )
        .with_details(json!({"field": "file", "limit_bytes": limit}))
    };
    let declared = req
        .headers()
        .get("Content-Length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::invalid_request(e.to_string()))?;
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// Imports contacts from CSV (`Content-Type: text/csv`, UTF-8, at most 2 MiB and 10 000
/// rows). The header row names the columns: `phone` (required), `name`, `email`, `tags`
/// (separated by `;` or `|`), any other column is a custom field. Each good row creates a
/// contact or merges into the existing one; each bad row is reported and skipped. A bad
/// header or unreadable file imports nothing.
#[utoipa::path(post, path = "/api/contact-lists/{list_id}/import", request_body(content = String, content_type = "text/csv"),
    responses((status = 200, body = ImportReport), (status = 413, body = super::errors::ErrorBody),
    (status = 415, body = super::errors::ErrorBody), (status = 422, body = super::errors::ErrorBody)),
    security(("bearer" = [])), tag = "directory")]
pub async fn import_contacts(
    state: web::Data<AppState>,
    auth: Auth,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    auth.require(MANAGERS)?;
    let csv = req
        .headers()
        .get("Content-Type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().to_ascii_lowercase().starts_with("text/csv"));
    if !csv {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send Content-Type: text/csv",
        ));
    }
    let (list_id, _) = existing_list(&state, &path).await?;
    let body = read_limited(&req, payload, MAX_IMPORT_BYTES).await?;
    let text = std::str::from_utf8(&body)
        .map_err(|_| unprocessable("invalid_csv", "file", "the file must be UTF-8 text"))?;
    let checked = contacts::check_import(text)?;
    let report =
        contacts::import(&state.core, list_id, checked, &auth.cause(), &correlation_id(&req)).await?;
    Ok(HttpResponse::Ok().json(report))
}

// ---------------------------------------------------------------------------------------
// Whitelist
// ---------------------------------------------------------------------------------------

/// `PUT /api/accounts/{id}/whitelist`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WhitelistBody {
    /// Whether the whitelist applies.
    pub enabled: bool,
    /// The lists whose contacts may write (existing lists; at least one when enabled).
    #[serde(default)]
    pub lists: Vec<String>,
    /// The automatic reply to everyone else (1 to 4096 characters; absent or `null`: close
    /// without replying).
    #[serde(default)]
    pub reply: Option<String>,
}

/// An account's whitelist.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WhitelistView {
    /// Whether it applies.
    pub enabled: bool,
    /// The lists.
    pub lists: Vec<String>,
    /// The automatic reply.
    pub reply: Option<String>,
}

async fn existing_account(
    state: &AppState,
    raw: &str,
) -> Result<(AccountId, switchboard_domain::account::Account), ApiError> {
    let account_id: AccountId = parse_id(raw, "account_not_found")?;
    let account = state.core.accounts.state(&account_id.to_string()).await?.state;
    if !account.created || account.deleted {
        return Err(ApiError::not_found("account_not_found", "no such account"));
    }
    Ok((account_id, account))
}

fn whitelist_view(w: &Whitelist) -> WhitelistView {
    WhitelistView {
        enabled: w.enabled,
        lists: w.lists.iter().map(ToString::to_string).collect(),
        reply: w.reply.as_ref().map(ToString::to_string),
    }
}

/// Sets an account's whitelist.
#[utoipa::path(put, path = "/api/accounts/{account_id}/whitelist", request_body = WhitelistBody,
    responses((status = 200, body = WhitelistView), (status = 422, body = super::errors::ErrorBody)),
    security(("bearer" = [])), tag = "directory")]
pub async fn put_whitelist(
    state: web::Data<AppState>,
    auth: Auth,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<WhitelistBody>,
) -> Result<HttpResponse, ApiError> {
    auth.require(&[Role::Admin])?;
    let (account_id, _) = existing_account(&state, &path).await?;
    let body = body.into_inner();
    let mut lists = BTreeSet::new();
    for raw in &body.lists {
        let id: ContactListId = raw
            .parse()
            .map_err(|_| unprocessable("invalid_id", "lists", format!("`lists`: `{raw}` is not a UUID")))?;
        if !state.core.contact_lists.state(&id.to_string()).await?.state.exists() {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown_contact_list",
                format!("`lists`: no contact list {id}"),
            )
            .with_details(json!({"field": "lists", "list_id": id.to_string()})));
        }
        lists.insert(id);
    }
    if body.enabled && lists.is_empty() {
        return Err(unprocessable(
            "whitelist_without_lists",
            "lists",
            "`lists`: an enabled whitelist needs at least one list (or every number would be turned away)",
        ));
    }
    let reply = body
        .reply
        .as_deref()
        .map(|r| {
            MessageText::parse(r)
                .map_err(|e| unprocessable("invalid_reply", "reply", format!("`reply`: {e}")))
        })
        .transpose()?;
    let whitelist = Whitelist { enabled: body.enabled, lists, reply };
    let core = &state.core;
    let cmd = AccountCommand::SetWhitelist { whitelist, at: core.clock.now() };
    state.account_command(&auth, &req, account_id, cmd).await?;
    let account = core.accounts.state(&account_id.to_string()).await?.state;
    Ok(HttpResponse::Ok().json(whitelist_view(&account.whitelist)))
}

/// Reads an account's whitelist.
#[utoipa::path(get, path = "/api/accounts/{account_id}/whitelist", responses((status = 200, body = WhitelistView),
    (status = 404, body = super::errors::ErrorBody)), security(("bearer" = [])), tag = "directory")]
pub async fn get_whitelist(
    state: web::Data<AppState>,
    auth: Auth,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    auth.require(MANAGERS)?;
    let (_, account) = existing_account(&state, &path).await?;
    Ok(HttpResponse::Ok().json(whitelist_view(&account.whitelist)))
}
