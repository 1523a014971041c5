//! Which interactions a list, a search or an export covers: simple filters, advanced
//! conditions and full-text, compiled into one SQL condition over `interaction_list AS il`,
//! and the keyset-paged read of the list itself.
//!
//! The list, the advanced search and the exports all go through [`compile`], so an export
//! of "what I see" covers exactly the rows the list showed, and an agent's visibility rule
//! (members of the interaction's account only) is applied in one place.
//!
//! Every user value reaches the database as a bound parameter; the only SQL text built from
//! input is chosen from whitelists (field → column, operator → comparison, sort → key). LIKE
//! patterns escape `\`, `%` and `_`; full-text input is reduced to words and each is quoted
//! (SQLite FTS5) or handed to `plainto_tsquery` (PostgreSQL), so no query syntax gets through.
//!
//! Paging is keyset over (sort key, interaction_id): the cursor carries the last row's pair,
//! so rows inserted while a client pages never shift, duplicate or hide other rows (offsets
//! would). Nullable keys compare as `COALESCE(key, -1)` (indexed in the search migration).

use base64::Engine;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::Row;
use sqlx::any::AnyRow;
use switchboard_domain::{AgentId, InteractionId};
use switchboard_projections::Backend;
use switchboard_projections::runtime::time_of;
use utoipa::ToSchema;

/// A value bound to a placeholder of the compiled SQL.
#[derive(Debug, Clone, PartialEq)]
pub enum Bind {
    /// Text.
    Text(String),
    /// Integer (epoch milliseconds, counts).
    Int(i64),
}

/// Who is asking: agents are limited to the accounts they belong to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Viewer {
    /// Admins and supervisors see every account.
    Everyone,
    /// An agent sees the interactions of their accounts only.
    Agent(AgentId),
}

/// The six fine statuses of an interaction.
pub const STATUSES: [&str; 6] = ["unrouted", "queued", "offered", "assigned", "closed", "disposed"];
/// `state=open`: not closed yet.
pub const OPEN_STATUSES: [&str; 4] = ["unrouted", "queued", "offered", "assigned"];
/// `state=closed`: closed, with or without a disposition.
pub const CLOSED_STATUSES: [&str; 2] = ["closed", "disposed"];

/// Most conditions one search may carry.
pub const MAX_CONDITIONS: usize = 50;
/// Longest value (characters) of a condition, a filter or the full-text input.
pub const MAX_VALUE_CHARS: usize = 500;
/// Most words the full-text input may hold.
pub const MAX_TEXT_WORDS: usize = 32;

/// What to cover. Every part is optional; all given parts must hold.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Criteria {
    /// Exactly these interactions ("selected" in the list).
    #[serde(default)]
    #[schema(value_type = Option<Vec<String>>)]
    pub ids: Option<Vec<InteractionId>>,
    /// `unrouted`, `queued`, `offered`, `assigned`, `closed` or `disposed`.
    #[serde(default)]
    pub status: Option<String>,
    /// Only this account.
    #[serde(default)]
    pub account_id: Option<String>,
    /// `open` (unrouted, queued, offered, assigned) or `closed` (closed, disposed).
    #[serde(default)]
    pub state: Option<String>,
    /// Only this queue.
    #[serde(default)]
    pub queue_id: Option<String>,
    /// Only this agent's (the owning agent).
    #[serde(default)]
    pub agent_id: Option<String>,
    /// Only this customer (E.164; a leading `+` is added to bare digits).
    #[serde(default)]
    pub customer: Option<String>,
    /// Only this disposition.
    #[serde(default)]
    pub disposition: Option<String>,
    /// Interactions carrying every one of these tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// `unread` (customer messages the agent has not answered, or a returned transfer not
    /// looked at yet) or `read` (neither).
    #[serde(default)]
    pub read: Option<String>,
    /// Opened at or after this instant.
    #[serde(default)]
    pub from: Option<DateTime<Utc>>,
    /// Opened before this instant.
    #[serde(default)]
    pub to: Option<DateTime<Utc>>,
    /// Full text over message bodies: interactions with a message holding every word.
    #[serde(default)]
    pub text: Option<String>,
    /// How `conditions` combine: `all` (default) or `any`.
    #[serde(default, rename = "match")]
    pub match_mode: Option<String>,
    /// Advanced conditions; disabled ones are ignored.
    #[serde(default)]
    pub conditions: Vec<Condition>,
}

/// One advanced-search condition: `field operator value`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    /// Text fields: `interaction_id`, `customer`, `customer_name`, `account_id`, `queue_id`,
    /// `agent_id`, `offered_to`, `status`, `disposition`, `close_reason`,
    /// `last_message_preview`, `tag` (any of its tags), `body` (any of its messages). Time
    /// fields: `opened_at`, `assigned_at`, `closed_at`, `disposed_at`, `last_message_at`.
    /// Number fields: `message_count`, `unread_count`.
    pub field: String,
    /// Text: `equals`, `not_equals`, `contains`, `starts_with`, `ends_with`, `is_empty`,
    /// `is_not_empty`. Time and number: `equals`, `not_equals`, `greater_than`, `less_than`,
    /// `is_empty`, `is_not_empty` (the empty tests only where the field can be empty).
    pub operator: String,
    /// Text, an RFC 3339 time or a number by the field's type; absent for the empty tests.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub value: Value,
    /// A disabled condition is kept (in the client's saved search) but ignored.
    #[serde(default = "enabled_default")]
    pub enabled: bool,
}

fn enabled_default() -> bool {
    true
}

/// Why criteria are refused (400 `invalid_search`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SearchError(pub String);

fn refuse<T>(message: impl Into<String>) -> Result<T, SearchError> {
    Err(SearchError(message.into()))
}

/// A condition over `interaction_list AS il`, with its binds in placeholder order
/// (`$1`, `$2`...).
#[derive(Debug, Clone, PartialEq)]
pub struct Compiled {
    /// `1 = 1` when nothing filters. Never empty.
    pub where_sql: String,
    /// Values for the placeholders, in order.
    pub binds: Vec<Bind>,
}

/// Accumulates SQL fragments and their binds, numbering placeholders as they come.
#[derive(Default)]
struct Sql {
    binds: Vec<Bind>,
}

impl Sql {
    /// Binds `value`, returning its placeholder.
    fn bind(&mut self, value: Bind) -> String {
        self.binds.push(value);
        format!("${}", self.binds.len())
    }
}

/// A field's type: which operators it takes and how its value parses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Time,
    Number,
}

/// Where a field's values live.
#[derive(Debug, Clone, Copy)]
enum Target {
    /// A column of `interaction_list`; `nullable` decides whether the empty tests apply.
    Column { column: &'static str, nullable: bool },
    /// The interaction's tags (any of them).
    Tag,
    /// The interaction's message bodies (any of them).
    Body,
}

/// Every searchable field with its type and where its values live: one table, so the
/// compiler and the error message that lists the fields cannot disagree.
const FIELDS: [(&str, Kind, Target); 20] = {
    use Kind::*;
    const fn col(column: &'static str, nullable: bool) -> Target {
        Target::Column { column, nullable }
    }
    [
        ("interaction_id", Text, col("il.interaction_id", false)),
        ("customer", Text, col("il.customer", false)),
        ("customer_name", Text, col("il.customer_name", true)),
        ("account_id", Text, col("il.account_id", false)),
        ("queue_id", Text, col("il.queue_id", true)),
        ("agent_id", Text, col("il.agent_id", true)),
        ("offered_to", Text, col("il.offered_to", true)),
        ("status", Text, col("il.status", false)),
        ("disposition", Text, col("il.disposition", true)),
        ("close_reason", Text, col("il.close_reason", true)),
        ("last_message_preview", Text, col("il.last_message_preview", true)),
        ("tag", Text, Target::Tag),
        ("body", Text, Target::Body),
        ("opened_at", Time, col("il.opened_at", false)),
        ("assigned_at", Time, col("il.assigned_at", true)),
        ("closed_at", Time, col("il.closed_at", true)),
        ("disposed_at", Time, col("il.disposed_at", true)),
        ("last_message_at", Time, col("il.last_message_at", true)),
        ("message_count", Number, col("il.message_count", false)),
        ("unread_count", Number, col("il.unread_count", false)),
    ]
};

fn field(name: &str) -> Option<(Kind, Target)> {
    FIELDS.iter().find(|(n, _, _)| *n == name).map(|&(_, kind, target)| (kind, target))
}

/// The searchable fields' names, for error messages.
fn field_names() -> String {
    FIELDS.iter().map(|(n, _, _)| *n).collect::<Vec<_>>().join(", ")
}

/// The operators.
pub const OPERATORS: [&str; 8] =
    ["equals", "not_equals", "contains", "starts_with", "ends_with", "greater_than", "less_than", "is_empty"];

/// `value` with `\`, `%` and `_` escaped for `LIKE ... ESCAPE '\'`.
pub fn like_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The words of a full-text input: maximal runs of letters and digits, lower-cased — the
/// tokens both stores index (`simple` / `unicode61`), so what is asked is what is stored.
pub fn text_words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase).collect()
}

fn parse_text(value: &Value, at: &str) -> Result<String, SearchError> {
    let text = match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return refuse(format!("{at}: value must be a string")),
    };
    if text.chars().count() > MAX_VALUE_CHARS {
        return refuse(format!("{at}: value is longer than {MAX_VALUE_CHARS} characters"));
    }
    Ok(text)
}

fn parse_time(value: &Value, at: &str) -> Result<i64, SearchError> {
    match value.as_str().map(DateTime::parse_from_rfc3339) {
        Some(Ok(t)) => Ok(t.timestamp_millis()),
        _ => refuse(format!("{at}: value must be an RFC 3339 time, e.g. 2026-01-05T10:00:00Z")),
    }
}

fn parse_number(value: &Value, at: &str) -> Result<i64, SearchError> {
    let parsed = match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    parsed.ok_or_else(|| SearchError(format!("{at}: value must be a whole number")))
}

/// Compiles one enabled condition.
fn condition(sql: &mut Sql, index: usize, c: &Condition) -> Result<String, SearchError> {
    let at = format!("conditions[{index}]");
    let Some((kind, target)) = field(&c.field) else {
        return refuse(format!("{at}: unknown field `{}` (one of {})", c.field, field_names()));
    };
    let op = c.operator.as_str();
    if !OPERATORS.contains(&op) && op != "is_not_empty" {
        return refuse(format!(
            "{at}: unknown operator `{op}` (one of {}, is_not_empty)",
            OPERATORS.join(", ")
        ));
    }
    let allowed: &[&str] = match kind {
        Kind::Text => {
            &["equals", "not_equals", "contains", "starts_with", "ends_with", "is_empty", "is_not_empty"]
        }
        Kind::Time | Kind::Number => {
            &["equals", "not_equals", "greater_than", "less_than", "is_empty", "is_not_empty"]
        }
    };
    if !allowed.contains(&op) {
        let kind_name = match kind {
            Kind::Text => "text",
            Kind::Time => "time",
            Kind::Number => "number",
        };
        return refuse(format!(
            "{at}: operator `{op}` does not apply to the {kind_name} field `{}`",
            c.field
        ));
    }
    if matches!(op, "is_empty" | "is_not_empty") {
        let negate = op == "is_not_empty";
        let sql = match target {
            Target::Column { nullable: false, .. } => {
                return refuse(format!("{at}: `{}` is never empty", c.field));
            }
            Target::Column { column, .. } if kind == Kind::Text => {
                format!("({column} IS NULL OR {column} = '')")
            }
            Target::Column { column, .. } => format!("{column} IS NULL"),
            Target::Tag => {
                "NOT EXISTS (SELECT 1 FROM interaction_tags t WHERE t.interaction_id = il.interaction_id)"
                    .into()
            }
            Target::Body => "NOT EXISTS (SELECT 1 FROM interaction_messages m \
                 WHERE m.interaction_id = il.interaction_id AND m.body <> '')"
                .into(),
        };
        return Ok(if negate { format!("NOT {sql}") } else { sql });
    }
    // A value-taking operator: parse the value by the field's type.
    let bind = match kind {
        Kind::Text => {
            let text = parse_text(&c.value, &at)?;
            match op {
                "contains" => Bind::Text(format!("%{}%", like_escape(&text.to_lowercase()))),
                "starts_with" => Bind::Text(format!("{}%", like_escape(&text.to_lowercase()))),
                "ends_with" => Bind::Text(format!("%{}", like_escape(&text.to_lowercase()))),
                _ => Bind::Text(text),
            }
        }
        Kind::Time => Bind::Int(parse_time(&c.value, &at)?),
        Kind::Number => Bind::Int(parse_number(&c.value, &at)?),
    };
    let p = sql.bind(bind);
    // `value` compared with one expression; LIKE is case-insensitive (LOWER on both sides).
    let compare = |expr: &str| -> String {
        match op {
            "equals" => format!("{expr} = {p}"),
            "not_equals" => format!("{expr} <> {p}"),
            "greater_than" => format!("{expr} > {p}"),
            "less_than" => format!("{expr} < {p}"),
            _ => format!("LOWER({expr}) LIKE {p} ESCAPE '\\'"),
        }
    };
    Ok(match target {
        // `not_equals` also holds where the column is empty: "not Jane" includes no name.
        Target::Column { column, nullable } => {
            let base = compare(column);
            if op == "not_equals" && nullable { format!("({column} IS NULL OR {base})") } else { base }
        }
        Target::Tag if op == "not_equals" => format!(
            "NOT EXISTS (SELECT 1 FROM interaction_tags t WHERE t.interaction_id = il.interaction_id AND t.tag = {p})"
        ),
        Target::Tag => format!(
            "EXISTS (SELECT 1 FROM interaction_tags t WHERE t.interaction_id = il.interaction_id AND {})",
            compare("t.tag")
        ),
        Target::Body if op == "not_equals" => format!(
            "NOT EXISTS (SELECT 1 FROM interaction_messages m WHERE m.interaction_id = il.interaction_id AND m.body = {p})"
        ),
        Target::Body => format!(
            "EXISTS (SELECT 1 FROM interaction_messages m WHERE m.interaction_id = il.interaction_id AND {})",
            compare("m.body")
        ),
    })
}

/// The full-text condition: interactions having one message that holds every word.
fn full_text(sql: &mut Sql, backend: Backend, text: &str) -> Result<String, SearchError> {
    if text.chars().count() > MAX_VALUE_CHARS {
        return refuse(format!("text is longer than {MAX_VALUE_CHARS} characters"));
    }
    let words = text_words(text);
    if words.is_empty() {
        return refuse("text has no words to search for (letters or digits)");
    }
    if words.len() > MAX_TEXT_WORDS {
        return refuse(format!("text has more than {MAX_TEXT_WORDS} words"));
    }
    Ok(match backend {
        Backend::Postgres => {
            // Words only (no operators), so plainto_tsquery ANDs exactly these.
            let p = sql.bind(Bind::Text(words.join(" ")));
            format!(
                "il.interaction_id IN (SELECT m.interaction_id FROM interaction_messages m \
                 WHERE m.body_tsv @@ plainto_tsquery('simple', {p}))"
            )
        }
        Backend::Sqlite => {
            // Each word a quoted FTS5 string (words hold no `"`): no FTS5 syntax can get in.
            let query = words.iter().map(|w| format!("\"{w}\"")).collect::<Vec<_>>().join(" ");
            let p = sql.bind(Bind::Text(query));
            format!(
                "il.interaction_id IN (SELECT m.interaction_id FROM interaction_messages_fts f \
                 JOIN interaction_messages m ON m.fts_id = f.rowid WHERE interaction_messages_fts MATCH {p})"
            )
        }
    })
}

fn check_len(name: &str, value: &str) -> Result<(), SearchError> {
    if value.chars().count() > MAX_VALUE_CHARS {
        return refuse(format!("{name} is longer than {MAX_VALUE_CHARS} characters"));
    }
    Ok(())
}

/// Compiles `criteria` for `backend` as seen by `viewer`.
pub fn compile(criteria: &Criteria, backend: Backend, viewer: Viewer) -> Result<Compiled, SearchError> {
    let mut sql = Sql::default();
    let mut conditions: Vec<String> = Vec::new();
    if let Some(status) = &criteria.status {
        if !STATUSES.contains(&status.as_str()) {
            return refuse(format!("status must be one of {}", STATUSES.join(", ")));
        }
        conditions.push(format!("il.status = {}", sql.bind(Bind::Text(status.clone()))));
    }
    if let Some(state) = &criteria.state {
        let statuses: &[&str] = match state.as_str() {
            "open" => &OPEN_STATUSES,
            "closed" => &CLOSED_STATUSES,
            _ => return refuse("state must be `open` or `closed`"),
        };
        let list: Vec<String> = statuses.iter().map(|s| format!("'{s}'")).collect();
        conditions.push(format!("il.status IN ({})", list.join(", ")));
    }
    for (name, column, value) in [
        ("account_id", "il.account_id", &criteria.account_id),
        ("queue_id", "il.queue_id", &criteria.queue_id),
        ("agent_id", "il.agent_id", &criteria.agent_id),
        ("disposition", "il.disposition", &criteria.disposition),
    ] {
        if let Some(value) = value {
            check_len(name, value)?;
            conditions.push(format!("{column} = {}", sql.bind(Bind::Text(value.clone()))));
        }
    }
    if let Some(customer) = &criteria.customer {
        check_len("customer", customer)?;
        let customer = customer.trim();
        let customer = if customer.chars().all(|c| c.is_ascii_digit()) && !customer.is_empty() {
            format!("+{customer}")
        } else {
            customer.to_owned()
        };
        conditions.push(format!("il.customer = {}", sql.bind(Bind::Text(customer))));
    }
    for tag in &criteria.tags {
        check_len("tag", tag)?;
        let p = sql.bind(Bind::Text(tag.clone()));
        conditions.push(format!(
            "EXISTS (SELECT 1 FROM interaction_tags t WHERE t.interaction_id = il.interaction_id AND t.tag = {p})"
        ));
    }
    if let Some(read) = &criteria.read {
        let unread = "(il.unread_count > 0 OR il.unread <> 0)";
        conditions.push(match read.as_str() {
            "unread" => unread.to_owned(),
            "read" => format!("NOT {unread}"),
            _ => return refuse("read must be `read` or `unread`"),
        });
    }
    if let (Some(from), Some(to)) = (criteria.from, criteria.to)
        && from >= to
    {
        return refuse("from must be before to");
    }
    if let Some(from) = criteria.from {
        conditions.push(format!("il.opened_at >= {}", sql.bind(Bind::Int(from.timestamp_millis()))));
    }
    if let Some(to) = criteria.to {
        conditions.push(format!("il.opened_at < {}", sql.bind(Bind::Int(to.timestamp_millis()))));
    }
    if let Some(text) = &criteria.text {
        conditions.push(full_text(&mut sql, backend, text)?);
    }
    let any = match criteria.match_mode.as_deref() {
        None | Some("all") => false,
        Some("any") => true,
        Some(other) => return refuse(format!("match must be `all` or `any`, not `{other}`")),
    };
    if criteria.conditions.len() > MAX_CONDITIONS {
        return refuse(format!("at most {MAX_CONDITIONS} conditions"));
    }
    let mut advanced = Vec::new();
    for (index, c) in criteria.conditions.iter().enumerate() {
        if c.enabled {
            advanced.push(condition(&mut sql, index, c)?);
        }
    }
    // No enabled condition: everything (for `any` as for `all`).
    if !advanced.is_empty() {
        let joiner = if any { " OR " } else { " AND " };
        let parts: Vec<String> = advanced.iter().map(|a| format!("({a})")).collect();
        conditions.push(format!("({})", parts.join(joiner)));
    }
    if let Some(ids) = &criteria.ids {
        if ids.is_empty() {
            conditions.push("1 = 0".into());
        } else {
            let placeholders: Vec<String> =
                ids.iter().map(|id| sql.bind(Bind::Text(id.to_string()))).collect();
            conditions.push(format!("il.interaction_id IN ({})", placeholders.join(", ")));
        }
    }
    if let Viewer::Agent(agent) = viewer {
        let p = sql.bind(Bind::Text(agent.to_string()));
        conditions
            .push(format!("il.account_id IN (SELECT account_id FROM account_members WHERE agent_id = {p})"));
    }
    let where_sql = if conditions.is_empty() { "1 = 1".to_owned() } else { conditions.join(" AND ") };
    Ok(Compiled { where_sql, binds: sql.binds })
}

/// Binds `binds` to `query` in order.
pub fn bind_all<'q>(
    mut query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    binds: &'q [Bind],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    for b in binds {
        query = match b {
            Bind::Text(s) => query.bind(s.as_str()),
            Bind::Int(i) => query.bind(*i),
        };
    }
    query
}

// ---------------------------------------------------------------------------------------
// The list's query string.

/// A time query parameter (RFC 3339, any offset, kept in UTC); `None` when absent.
pub fn time_param(name: &str, raw: Option<&str>) -> Result<Option<DateTime<Utc>>, SearchError> {
    raw.map(|r| {
        DateTime::parse_from_rfc3339(r)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| SearchError(format!("{name} must be an RFC 3339 time, e.g. 2026-01-05T10:00:00Z")))
    })
    .transpose()
}

/// The list's query string (`GET /api/interactions`, `GET /api/interactions/export.csv`).
///
/// Parsed from the raw pairs (see [`ListQuery::from_pairs`]) so `tag` may repeat; unknown
/// parameters are refused rather than silently ignored (a typo would widen the list).
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[serde(try_from = "Vec<(String, String)>")]
pub struct ListQuery {
    /// `unrouted`, `queued`, `offered`, `assigned`, `closed` or `disposed`.
    pub status: Option<String>,
    /// Only this account.
    pub account_id: Option<String>,
    /// `open` (unrouted, queued, offered, assigned) or `closed` (closed, disposed).
    pub state: Option<String>,
    /// Only this queue.
    pub queue_id: Option<String>,
    /// Only this (owning) agent's.
    pub agent_id: Option<String>,
    /// Only this customer (E.164).
    pub customer: Option<String>,
    /// Only this disposition.
    pub disposition: Option<String>,
    /// Tags the interaction must all carry: repeat the parameter or separate with commas.
    #[param(value_type = Option<String>)]
    pub tag: Vec<String>,
    /// `read` or `unread`.
    pub read: Option<String>,
    /// Opened at or after (RFC 3339).
    pub from: Option<String>,
    /// Opened before (RFC 3339).
    pub to: Option<String>,
    /// Full text over message bodies: every word must be in one message.
    pub q: Option<String>,
    /// `opened_at` (default), `last_message_at` or `closed_at`.
    pub sort: Option<String>,
    /// `desc` (default) or `asc`.
    pub order: Option<String>,
    /// Page size, 1 to 200 (default 50).
    pub limit: Option<String>,
    /// The `X-Next-Cursor` of the previous page.
    pub cursor: Option<String>,
}

impl TryFrom<Vec<(String, String)>> for ListQuery {
    type Error = SearchError;

    fn try_from(pairs: Vec<(String, String)>) -> Result<Self, SearchError> {
        ListQuery::from_pairs(pairs)
    }
}

impl ListQuery {
    /// Builds the query from decoded `key=value` pairs: `tag` may repeat (and hold commas),
    /// every other key at most once, unknown keys refused.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (String, String)>) -> Result<Self, SearchError> {
        let mut q = ListQuery::default();
        for (key, value) in pairs {
            let slot = match key.as_str() {
                "tag" => {
                    q.tag
                        .extend(value.split(',').map(str::trim).filter(|t| !t.is_empty()).map(str::to_owned));
                    continue;
                }
                "status" => &mut q.status,
                "account_id" => &mut q.account_id,
                "state" => &mut q.state,
                "queue_id" => &mut q.queue_id,
                "agent_id" => &mut q.agent_id,
                "customer" => &mut q.customer,
                "disposition" => &mut q.disposition,
                "read" => &mut q.read,
                "from" => &mut q.from,
                "to" => &mut q.to,
                "q" => &mut q.q,
                "sort" => &mut q.sort,
                "order" => &mut q.order,
                "limit" => &mut q.limit,
                "cursor" => &mut q.cursor,
                other => return refuse(format!("unknown parameter `{other}`")),
            };
            if slot.replace(value).is_some() {
                return refuse(format!("parameter `{key}` given twice"));
            }
        }
        Ok(q)
    }

    /// Parses a raw query string (percent-decoding `+` and `%XX`).
    pub fn from_query_string(raw: &str) -> Result<Self, SearchError> {
        actix_web::web::Query::<ListQuery>::from_query(raw)
            .map(actix_web::web::Query::into_inner)
            .map_err(|e| SearchError(e.to_string()))
    }

    /// The criteria this query string stands for.
    pub fn criteria(&self) -> Result<Criteria, SearchError> {
        let time = |name: &str, raw: &Option<String>| time_param(name, raw.as_deref());
        let criteria = Criteria {
            ids: None,
            status: self.status.clone(),
            account_id: self.account_id.clone(),
            state: self.state.clone(),
            queue_id: self.queue_id.clone(),
            agent_id: self.agent_id.clone(),
            customer: self.customer.clone(),
            disposition: self.disposition.clone(),
            tags: self.tag.clone(),
            read: self.read.clone(),
            from: time("from", &self.from)?,
            to: time("to", &self.to)?,
            text: self.q.clone(),
            match_mode: None,
            conditions: Vec::new(),
        };
        // Validate now (the backend does not change what is valid).
        compile(&criteria, Backend::Sqlite, Viewer::Everyone)?;
        Ok(criteria)
    }

    /// The page this query string asks for.
    pub fn page(&self) -> Result<PageRequest, PageError> {
        let limit = match &self.limit {
            None => None,
            Some(raw) => Some(
                raw.parse().map_err(|_| PageError::Invalid(SearchError("limit must be 1 to 200".into())))?,
            ),
        };
        PageRequest::new(self.sort.as_deref(), self.order.as_deref(), limit, self.cursor.as_deref())
    }
}

// ---------------------------------------------------------------------------------------
// The advanced search body.

/// `POST /api/interactions/search`: advanced conditions and full text over every
/// interaction the caller may see (the list's simple filters do not apply).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchRequest {
    /// `all` (default: every enabled condition holds) or `any` (at least one does).
    #[serde(default, rename = "match")]
    pub match_mode: Option<String>,
    /// The conditions, in order (errors name their index).
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// Full text over message bodies: one message must hold every word.
    #[serde(default)]
    pub text: Option<String>,
    /// `opened_at` (default), `last_message_at` or `closed_at`.
    #[serde(default)]
    pub sort: Option<String>,
    /// `desc` (default) or `asc`.
    #[serde(default)]
    pub order: Option<String>,
    /// Page size, 1 to 200 (default 50).
    #[serde(default)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    #[serde(default)]
    pub cursor: Option<String>,
}

impl SearchRequest {
    /// The criteria of the search.
    pub fn criteria(&self) -> Criteria {
        Criteria {
            text: self.text.clone(),
            match_mode: self.match_mode.clone(),
            conditions: self.conditions.clone(),
            ..Criteria::default()
        }
    }

    /// The page asked for.
    pub fn page(&self) -> Result<PageRequest, PageError> {
        PageRequest::new(self.sort.as_deref(), self.order.as_deref(), self.limit, self.cursor.as_deref())
    }
}

// ---------------------------------------------------------------------------------------
// Keyset pages.

/// What the list is ordered by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SortKey {
    /// When the interaction opened (never changes: the steadiest paging).
    OpenedAt,
    /// The last message's time (changes as customers write).
    LastMessageAt,
    /// When it closed (open interactions sort as the oldest).
    ClosedAt,
}

impl SortKey {
    fn expr(self) -> &'static str {
        match self {
            SortKey::OpenedAt => "il.opened_at",
            SortKey::LastMessageAt => "COALESCE(il.last_message_at, -1)",
            SortKey::ClosedAt => "COALESCE(il.closed_at, -1)",
        }
    }
}

/// One page asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    /// Sort key.
    pub sort: SortKey,
    /// Newest first (the default).
    pub descending: bool,
    /// Rows per page.
    pub limit: i64,
    /// Continue after this row.
    pub after: Option<Cursor>,
}

/// The position after which the next page starts: the last row's key pair, with the sort it
/// belongs to (a cursor is refused under another sort or order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// Sort key.
    #[serde(rename = "s")]
    pub sort: SortKey,
    /// Descending.
    #[serde(rename = "d")]
    pub descending: bool,
    /// The sort key's value (epoch ms; -1 for none).
    #[serde(rename = "k")]
    pub key: i64,
    /// The interaction id (tie-breaker).
    #[serde(rename = "i")]
    pub id: String,
}

impl Cursor {
    /// The opaque form handed to clients (URL-safe base64 of a small JSON).
    pub fn encode(&self) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    /// Reads a client's cursor.
    pub fn decode(raw: &str) -> Option<Cursor> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(raw.trim()).ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

/// Why a page request is refused.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    /// Bad criteria or page parameters (400).
    #[error("{0}")]
    Invalid(SearchError),
    /// A cursor that is not one of ours, or belongs to another sort (400 `invalid_cursor`).
    #[error("{0}")]
    Cursor(String),
    /// The store failed.
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

impl From<SearchError> for PageError {
    fn from(e: SearchError) -> Self {
        PageError::Invalid(e)
    }
}

impl PageRequest {
    /// Validates raw page parameters.
    pub fn new(
        sort: Option<&str>,
        order: Option<&str>,
        limit: Option<i64>,
        cursor: Option<&str>,
    ) -> Result<Self, PageError> {
        let invalid = |m: &str| PageError::Invalid(SearchError(m.to_owned()));
        let sort = match sort {
            None | Some("opened_at") => SortKey::OpenedAt,
            Some("last_message_at") => SortKey::LastMessageAt,
            Some("closed_at") => SortKey::ClosedAt,
            Some(_) => return Err(invalid("sort must be opened_at, last_message_at or closed_at")),
        };
        let descending = match order {
            None | Some("desc") => true,
            Some("asc") => false,
            Some(_) => return Err(invalid("order must be asc or desc")),
        };
        let limit = limit.unwrap_or(50);
        if !(1..=200).contains(&limit) {
            return Err(invalid("limit must be 1 to 200"));
        }
        let after = match cursor {
            None => None,
            Some(raw) => {
                let c = Cursor::decode(raw)
                    .ok_or_else(|| PageError::Cursor("cursor is not one we issued".into()))?;
                if c.sort != sort || c.descending != descending {
                    return Err(PageError::Cursor("cursor belongs to another sort or order".into()));
                }
                Some(c)
            }
        };
        Ok(PageRequest { sort, descending, limit, after })
    }
}

// ---------------------------------------------------------------------------------------
// Rows.

/// One row of the interaction list.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct InteractionRow {
    /// Id.
    pub interaction_id: String,
    /// Account.
    pub account_id: String,
    /// Queue.
    pub queue_id: Option<String>,
    /// Owning agent.
    pub agent_id: Option<String>,
    /// Agent currently holding an offer.
    pub offered_to: Option<String>,
    /// Customer number.
    pub customer: String,
    /// Customer profile name.
    pub customer_name: Option<String>,
    /// Status.
    pub status: String,
    /// Last message time.
    pub last_message_at: Option<DateTime<Utc>>,
    /// Last message preview.
    pub last_message_preview: Option<String>,
    /// `in` or `out`.
    pub last_message_direction: Option<String>,
    /// Customer messages since the agent last wrote.
    pub unread_count: i64,
    /// Messages in both directions.
    pub message_count: i64,
    /// Opened.
    pub opened_at: Option<DateTime<Utc>>,
    /// Assigned.
    pub assigned_at: Option<DateTime<Utc>>,
    /// Closed.
    pub closed_at: Option<DateTime<Utc>>,
    /// Disposed.
    pub disposed_at: Option<DateTime<Utc>>,
    /// Disposition.
    pub disposition: Option<String>,
    /// Why the system closed it (`inactivity`, `plan_step`); `null` otherwise.
    pub close_reason: Option<String>,
    /// Tags, sorted.
    pub tags: Vec<String>,
    /// A transfer nobody accepted came back to the agent, who has not looked at it yet.
    pub unread: bool,
}

/// The columns [`row`] reads, for `SELECT ... FROM interaction_list il`.
pub const ROW_COLUMNS: &str = "il.interaction_id, il.account_id, il.queue_id, il.agent_id, il.offered_to,
    il.customer, il.customer_name, il.status, il.last_message_at, il.last_message_preview,
    il.last_message_direction, il.unread_count, il.message_count, il.opened_at, il.assigned_at,
    il.closed_at, il.disposed_at, il.disposition, il.close_reason, il.tags, il.unread";

/// Reads one list row (selected with [`ROW_COLUMNS`]).
pub fn row(r: &AnyRow) -> Result<InteractionRow, sqlx::Error> {
    Ok(InteractionRow {
        interaction_id: r.try_get("interaction_id")?,
        account_id: r.try_get("account_id")?,
        queue_id: r.try_get("queue_id")?,
        agent_id: r.try_get("agent_id")?,
        offered_to: r.try_get("offered_to")?,
        customer: r.try_get("customer")?,
        customer_name: r.try_get("customer_name")?,
        status: r.try_get("status")?,
        last_message_at: time_of(r.try_get("last_message_at")?),
        last_message_preview: r.try_get("last_message_preview")?,
        last_message_direction: r.try_get("last_message_direction")?,
        unread_count: r.try_get("unread_count")?,
        message_count: r.try_get("message_count")?,
        opened_at: time_of(r.try_get("opened_at")?),
        assigned_at: time_of(r.try_get("assigned_at")?),
        closed_at: time_of(r.try_get("closed_at")?),
        disposed_at: time_of(r.try_get("disposed_at")?),
        disposition: r.try_get("disposition")?,
        close_reason: r.try_get("close_reason")?,
        tags: serde_json::from_str(&r.try_get::<String, _>("tags")?).unwrap_or_default(),
        unread: r.try_get::<i64, _>("unread")? != 0,
    })
}

/// One page of rows and the cursor of the next (`None` on the last page).
#[derive(Debug)]
pub struct Page {
    /// The rows, in order.
    pub rows: Vec<InteractionRow>,
    /// Where the next page starts.
    pub next: Option<Cursor>,
}

/// Reads one keyset page of the interactions `criteria` covers, as `viewer` sees them.
///
/// The caller still applies the live membership check (`Auth::may_see_account`) to agents'
/// rows: the read model's membership can lag a removal by a moment.
pub async fn page(
    db: &sqlx::AnyPool,
    backend: Backend,
    criteria: &Criteria,
    viewer: Viewer,
    request: &PageRequest,
) -> Result<Page, PageError> {
    let compiled = compile(criteria, backend, viewer)?;
    let mut binds = compiled.binds;
    let key = request.sort.expr();
    let (cmp, dir) = if request.descending { ("<", "DESC") } else { (">", "ASC") };
    let mut where_sql = compiled.where_sql;
    if let Some(after) = &request.after {
        binds.push(Bind::Int(after.key));
        let bound = binds.len();
        binds.push(Bind::Int(after.key));
        let k = binds.len();
        binds.push(Bind::Text(after.id.clone()));
        let i = binds.len();
        // A row-value comparison: both stores walk the (key, id) index from the cursor on.
        // The redundant bound on the key alone lets SQLite seek its expression indexes too.
        where_sql = format!(
            "({where_sql}) AND {key} {cmp}= ${bound} AND ({key}, il.interaction_id) {cmp} (${k}, ${i})"
        );
    }
    // One row more than asked says whether a next page exists.
    let sql = format!(
        "SELECT {ROW_COLUMNS}, {key} AS sort_key FROM interaction_list il WHERE {where_sql}
          ORDER BY {key} {dir}, il.interaction_id {dir} LIMIT {}",
        request.limit + 1
    );
    let found = bind_all(sqlx::query(&sql), &binds).fetch_all(db).await?;
    let more = found.len() as i64 > request.limit;
    let mut rows = Vec::with_capacity(found.len());
    let mut next = None;
    for (n, r) in found.iter().enumerate() {
        if n as i64 == request.limit {
            break;
        }
        let item = row(r)?;
        if more && n as i64 == request.limit - 1 {
            next = Some(Cursor {
                sort: request.sort,
                descending: request.descending,
                key: r.try_get("sort_key")?,
                id: item.interaction_id.clone(),
            });
        }
        rows.push(item);
    }
    Ok(Page { rows, next })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn cond(field: &str, operator: &str, value: Value) -> Condition {
        Condition { field: field.into(), operator: operator.into(), value, enabled: true }
    }

    fn with(conditions: Vec<Condition>, any: bool) -> Criteria {
        Criteria {
            match_mode: Some(if any { "any" } else { "all" }.into()),
            conditions,
            ..Criteria::default()
        }
    }

    fn compiled(c: &Criteria) -> Compiled {
        compile(c, Backend::Postgres, Viewer::Everyone).expect("compiles")
    }

    #[test]
    fn nothing_filters_everything() {
        assert_eq!(compiled(&Criteria::default()), Compiled { where_sql: "1 = 1".into(), binds: vec![] });
        // Only disabled conditions: still everything.
        let mut off = cond("customer", "equals", json!("+1"));
        off.enabled = false;
        assert_eq!(compiled(&with(vec![off], true)).where_sql, "1 = 1");
    }

    #[test]
    fn placeholders_follow_binds_in_order_and_agents_are_limited() {
        let agent = AgentId::new();
        let c = Criteria {
            status: Some("queued".into()),
            account_id: Some("acc".into()),
            tags: vec!["vip".into(), "new".into()],
            ..Criteria::default()
        };
        let out = compile(&c, Backend::Sqlite, Viewer::Agent(agent)).expect("compiles");
        assert_eq!(
            out.binds,
            vec![
                Bind::Text("queued".into()),
                Bind::Text("acc".into()),
                Bind::Text("vip".into()),
                Bind::Text("new".into()),
                Bind::Text(agent.to_string())
            ]
        );
        for n in 1..=5 {
            assert!(out.where_sql.contains(&format!("${n}")), "{}", out.where_sql);
        }
        assert!(out.where_sql.ends_with("account_members WHERE agent_id = $5)"));
    }

    #[test]
    fn all_joins_with_and_any_with_or_skipping_disabled() {
        let mut off = cond("customer_name", "equals", json!("x"));
        off.enabled = false;
        let conditions = vec![
            cond("status", "equals", json!("queued")),
            off,
            cond("message_count", "greater_than", json!(2)),
        ];
        let all = compiled(&with(conditions.clone(), false));
        assert_eq!(all.where_sql, "((il.status = $1) AND (il.message_count > $2))");
        assert_eq!(all.binds, vec![Bind::Text("queued".into()), Bind::Int(2)]);
        let any = compiled(&with(conditions, true));
        assert_eq!(any.where_sql, "((il.status = $1) OR (il.message_count > $2))");
    }

    #[test]
    fn like_values_escape_wildcards_and_are_lower_cased() {
        assert_eq!(like_escape(r"50%_off\"), r"50\%\_off\\");
        let out = compiled(&with(vec![cond("customer_name", "contains", json!("A_b%"))], false));
        assert_eq!(out.binds, vec![Bind::Text(r"%a\_b\%%".into())]);
        assert!(out.where_sql.contains("LOWER(il.customer_name) LIKE $1 ESCAPE '\\'"));
        let starts = compiled(&with(vec![cond("tag", "starts_with", json!("vi"))], false));
        assert_eq!(starts.binds, vec![Bind::Text("vi%".into())]);
        let ends = compiled(&with(vec![cond("body", "ends_with", json!("ok"))], false));
        assert_eq!(ends.binds, vec![Bind::Text("%ok".into())]);
    }

    #[test]
    fn values_parse_by_the_fields_type() {
        let t = compiled(&with(vec![cond("opened_at", "less_than", json!("2026-01-05T10:00:00Z"))], false));
        assert_eq!(t.binds, vec![Bind::Int(1_767_607_200_000)]);
        let n = compiled(&with(vec![cond("unread_count", "equals", json!("3"))], false));
        assert_eq!(n.binds, vec![Bind::Int(3)]);
        let e = compiled(&with(vec![cond("closed_at", "is_empty", Value::Null)], false));
        assert_eq!((e.where_sql.as_str(), e.binds.len()), ("((il.closed_at IS NULL))", 0));
        let ne = compiled(&with(vec![cond("disposition", "is_not_empty", Value::Null)], false));
        assert_eq!(ne.where_sql, "((NOT (il.disposition IS NULL OR il.disposition = '')))");
    }

    #[test]
    fn bad_conditions_name_their_index() {
        let cases = [
            (cond("nope", "equals", json!("x")), "unknown field `nope`"),
            (cond("status", "like", json!("x")), "unknown operator `like`"),
            (cond("status", "greater_than", json!("x")), "does not apply to the text field"),
            (cond("opened_at", "contains", json!("x")), "does not apply to the time field"),
            (cond("message_count", "starts_with", json!("1")), "does not apply to the number field"),
            (cond("opened_at", "equals", json!("yesterday")), "RFC 3339"),
            (cond("message_count", "equals", json!("many")), "whole number"),
            (cond("customer", "equals", json!({"a": 1})), "must be a string"),
            (cond("customer", "equals", json!("x".repeat(501))), "longer than 500"),
            (cond("opened_at", "is_empty", Value::Null), "never empty"),
        ];
        for (c, expected) in cases {
            let criteria = with(vec![cond("status", "equals", json!("queued")), c.clone()], false);
            let err = compile(&criteria, Backend::Sqlite, Viewer::Everyone).expect_err("refused");
            assert!(err.0.starts_with("conditions[1]: "), "{err}");
            assert!(err.0.contains(expected), "{c:?}: {err}");
        }
        let mut bad_match = with(vec![], false);
        bad_match.match_mode = Some("some".into());
        assert!(compile(&bad_match, Backend::Sqlite, Viewer::Everyone).is_err());
        let many = with(vec![cond("status", "equals", json!("queued")); MAX_CONDITIONS + 1], false);
        assert!(compile(&many, Backend::Sqlite, Viewer::Everyone).is_err());
    }

    #[test]
    fn full_text_reduces_input_to_quoted_words() {
        assert_eq!(text_words(r#"Refund "now"* OR 50% ça-va"#), ["refund", "now", "or", "50", "ça", "va"]);
        let c = Criteria { text: Some(r#"Refund "now"* OR"#.into()), ..Criteria::default() };
        let sqlite = compile(&c, Backend::Sqlite, Viewer::Everyone).expect("compiles");
        assert_eq!(sqlite.binds, vec![Bind::Text(r#""refund" "now" "or""#.into())]);
        assert!(sqlite.where_sql.contains("interaction_messages_fts MATCH $1"));
        let pg = compile(&c, Backend::Postgres, Viewer::Everyone).expect("compiles");
        assert_eq!(pg.binds, vec![Bind::Text("refund now or".into())]);
        assert!(pg.where_sql.contains("plainto_tsquery('simple', $1)"));
        for nothing in ["", "  ", r#""*%"#] {
            let c = Criteria { text: Some(nothing.into()), ..Criteria::default() };
            assert!(compile(&c, Backend::Sqlite, Viewer::Everyone).is_err(), "{nothing:?}");
        }
    }

    #[test]
    fn simple_filters_validate_their_values() {
        let bad = [
            Criteria { status: Some("open".into()), ..Criteria::default() },
            Criteria { state: Some("gone".into()), ..Criteria::default() },
            Criteria { read: Some("maybe".into()), ..Criteria::default() },
            Criteria {
                from: Some(DateTime::from_timestamp_millis(2).expect("t")),
                to: Some(DateTime::from_timestamp_millis(1).expect("t")),
                ..Criteria::default()
            },
        ];
        for c in bad {
            assert!(compile(&c, Backend::Sqlite, Viewer::Everyone).is_err(), "{c:?}");
        }
        let digits = Criteria { customer: Some("15550001".into()), ..Criteria::default() };
        assert_eq!(compiled(&digits).binds, vec![Bind::Text("+15550001".into())]);
        let none = Criteria { ids: Some(vec![]), ..Criteria::default() };
        assert_eq!(compiled(&none).where_sql, "1 = 0");
    }

    #[test]
    fn the_query_string_allows_repeated_tags_and_refuses_unknown_or_repeated_keys() {
        let q = ListQuery::from_query_string("tag=a&tag=b,c&state=open&q=hello+world").expect("parses");
        assert_eq!(q.tag, ["a", "b", "c"]);
        assert_eq!(q.criteria().expect("valid").text.as_deref(), Some("hello world"));
        assert!(ListQuery::from_query_string("stauts=open").is_err());
        assert!(ListQuery::from_query_string("status=queued&status=closed").is_err());
        assert!(ListQuery::from_query_string("from=yesterday").expect("parses").criteria().is_err());
        assert_eq!(
            ListQuery::from_query_string("q=50%25+off").expect("parses").q.as_deref(),
            Some("50% off")
        );
    }

    #[test]
    fn cursors_round_trip_and_are_bound_to_their_sort() {
        let c = Cursor { sort: SortKey::LastMessageAt, descending: false, key: -1, id: "x".into() };
        assert_eq!(Cursor::decode(&c.encode()), Some(c.clone()));
        assert!(Cursor::decode("not a cursor").is_none());
        let ok = PageRequest::new(Some("last_message_at"), Some("asc"), Some(10), Some(&c.encode()))
            .expect("valid");
        assert_eq!(ok.after, Some(c.clone()));
        assert!(matches!(PageRequest::new(None, None, None, Some(&c.encode())), Err(PageError::Cursor(_))));
        assert!(matches!(PageRequest::new(None, None, None, Some("zz")), Err(PageError::Cursor(_))));
        assert!(matches!(PageRequest::new(None, None, Some(0), None), Err(PageError::Invalid(_))));
        assert!(matches!(PageRequest::new(None, None, Some(201), None), Err(PageError::Invalid(_))));
        assert!(matches!(PageRequest::new(Some("name"), None, None, None), Err(PageError::Invalid(_))));
        assert!(matches!(PageRequest::new(None, Some("up"), None, None), Err(PageError::Invalid(_))));
    }
}
