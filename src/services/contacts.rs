//! The contact manager's services: the lookup ingest makes when a message opens a new
//! interaction (which lists hold the number, the whitelist's verdict, saving an unknown
//! number to the account's default list) and the CSV import.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use switchboard_domain::account::{Account, Whitelist};
use switchboard_domain::directory::{
    self, ContactCardCommand, ContactCardError, ContactDetails, ContactTags, ContactValueError, CreatedBy,
    CustomFields, Email,
};
use switchboard_domain::interaction::Screening;
use switchboard_domain::routing::{Condition, RoutingPlan, StepAction};
use switchboard_domain::{ContactListId, DisplayName, PhoneNumber};

use crate::core::{Cause, Core};
use crate::runtime::CommandError;

/// The lists holding `phone`: one query on the `(phone, list_id)` index.
pub async fn lists_holding(core: &Core, phone: &PhoneNumber) -> Result<BTreeSet<ContactListId>, sqlx::Error> {
    let rows: Vec<(String,)> = sqlx::query_as("SELECT list_id FROM contact_cards WHERE phone = $1")
        .bind(phone.as_ref())
        .fetch_all(&core.db.any)
        .await?;
    Ok(rows.into_iter().filter_map(|(id,)| id.parse().ok()).collect())
}

/// The whitelist's verdict on a number in `lists` (the lists it was in BEFORE this message,
/// so a card saved from the message never whitelists itself).
pub fn screen(whitelist: &Whitelist, lists: &BTreeSet<ContactListId>) -> Screening {
    if !whitelist.enabled || whitelist.lists.iter().any(|l| lists.contains(l)) {
        Screening::Admitted
    } else {
        Screening::NotWhitelisted { reply: whitelist.reply.clone() }
    }
}

/// Whether the plan has an `in_contact_list` jump (only then does routing need the lists).
fn plan_asks_lists(plan: &RoutingPlan) -> bool {
    plan.steps
        .iter()
        .any(|s| matches!(&s.action, StepAction::GoTo { condition: Condition::InContactList { .. }, .. }))
}

/// What ingest needs to open a new interaction.
#[derive(Debug, Default)]
pub struct NewContact {
    /// The lists the number is in (for `in_contact_list` conditions).
    pub lists: BTreeSet<ContactListId>,
    /// The whitelist's verdict.
    pub screening: Screening,
    /// The list to save the number to (its default list, when the number is not there).
    pub save_to: Option<ContactListId>,
}

/// Looks the number up for a message that opens a new interaction. Makes no query at all
/// when the account has no whitelist, no default list and no plan that asks for lists.
pub async fn on_new_interaction(
    core: &Core,
    account: &Account,
    phone: &PhoneNumber,
) -> Result<NewContact, sqlx::Error> {
    let default_list = account.details.default_list;
    let asks = account.routing_plan.as_ref().is_some_and(plan_asks_lists);
    if !account.whitelist.enabled && default_list.is_none() && !asks {
        return Ok(NewContact::default());
    }
    let lists = lists_holding(core, phone).await?;
    let screening = screen(&account.whitelist, &lists);
    // Saving a turned-away number into a whitelisted default list would let it through
    // from its next message on: not saved then (ADR 0013).
    let turned_away = matches!(screening, Screening::NotWhitelisted { .. });
    let save_to = default_list
        .filter(|d| !lists.contains(d))
        .filter(|d| !(turned_away && account.whitelist.lists.contains(d)));
    Ok(NewContact { lists, screening, save_to })
}

/// Saves an unknown number to `list` (created_by `auto`, named after the WhatsApp profile).
/// A card already there is fine; a list that no longer exists saves nothing.
pub async fn save_unknown(
    core: &Core,
    list: ContactListId,
    phone: &PhoneNumber,
    profile_name: Option<&str>,
    correlation: &str,
) -> Result<(), String> {
    let exists = core.contact_lists.state(&list.to_string()).await.map_err(|e| e.to_string())?.state.exists();
    if !exists {
        return Ok(());
    }
    let details =
        ContactDetails { name: profile_name.and_then(|n| DisplayName::parse(n).ok()), ..Default::default() };
    let cmd = ContactCardCommand::Create {
        list_id: list,
        phone: phone.clone(),
        details,
        created_by: CreatedBy::Auto,
        at: core.clock.now(),
    };
    let id = directory::card_id(list, phone).to_string();
    match core.contact_cards.execute(&id, cmd, core.metadata(&Cause::System("ingest"), correlation)).await {
        Ok(_) | Err(CommandError::Rejected(ContactCardError::AlreadyExists)) => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

// ---------------------------------------------------------------------------------------
// CSV import
// ---------------------------------------------------------------------------------------

/// Largest CSV body accepted, in bytes.
pub const MAX_IMPORT_BYTES: usize = 2 * 1024 * 1024;
/// Most data rows per import.
pub const MAX_IMPORT_ROWS: usize = 10_000;

/// One row that was not imported.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct RowError {
    /// The row's line number in the file (the header is row 1).
    pub row: usize,
    /// The column at fault.
    pub field: String,
    /// Stable code.
    pub code: String,
    /// Explanation.
    pub message: String,
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct ImportReport {
    /// New contacts.
    pub imported: usize,
    /// Existing contacts the row changed.
    pub updated: usize,
    /// Existing contacts the row did not change.
    pub unchanged: usize,
    /// Rows not imported, with why.
    pub failed: Vec<RowError>,
}

/// Why a whole file was refused (nothing imported).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    /// Not CSV we can read (unbalanced quote, not UTF-8, no header).
    #[error("{0}")]
    Malformed(String),
    /// The header has no `phone` column, repeats a column or names an invalid custom field.
    #[error("header: {0}")]
    BadHeader(String),
    /// Too many rows.
    #[error("at most {MAX_IMPORT_ROWS} rows per import")]
    TooManyRows,
}

/// Splits CSV text (RFC 4180: `,` separated, `"` quoted with `""` escapes, CRLF or LF) into
/// records. Blank lines are skipped; each record keeps its starting line number.
pub fn parse_csv(text: &str) -> Result<Vec<(usize, Vec<String>)>, ImportError> {
    let mut records = Vec::new();
    let mut record: Vec<String> = Vec::new();
    let mut field = String::new();
    let mut in_quotes = false;
    let mut line = 1;
    let mut start_line = 1;
    let mut chars = text.trim_start_matches('\u{feff}').chars().peekable();
    let mut touched = false;
    while let Some(c) = chars.next() {
        if in_quotes {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => in_quotes = false,
                '\n' => {
                    line += 1;
                    field.push(c);
                }
                _ => field.push(c),
            }
            continue;
        }
        match c {
            '"' if field.is_empty() => {
                in_quotes = true;
                touched = true;
            }
            ',' => {
                record.push(std::mem::take(&mut field));
                touched = true;
            }
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                if touched || !field.is_empty() {
                    record.push(std::mem::take(&mut field));
                    records.push((start_line, std::mem::take(&mut record)));
                }
                touched = false;
                line += 1;
                start_line = line;
            }
            _ => {
                field.push(c);
                touched = true;
            }
        }
    }
    if in_quotes {
        return Err(ImportError::Malformed(format!(
            "unclosed quote in the record starting on line {start_line}"
        )));
    }
    if touched || !field.is_empty() {
        record.push(field);
        records.push((start_line, record));
    }
    Ok(records)
}

/// A checked header: where `phone` and the known columns are, and the custom fields.
struct Header {
    phone: usize,
    name: Option<usize>,
    email: Option<usize>,
    tags: Option<usize>,
    custom: Vec<(usize, String)>,
}

fn header(cols: &[String]) -> Result<Header, ImportError> {
    let mut seen = HashSet::new();
    let (mut phone, mut name, mut email, mut tags, mut custom) = (None, None, None, None, Vec::new());
    for (i, raw) in cols.iter().enumerate() {
        let col = raw.trim();
        if !seen.insert(col.to_lowercase()) {
            return Err(ImportError::BadHeader(format!("column `{col}` appears twice")));
        }
        match col.to_lowercase().as_str() {
            "phone" => phone = Some(i),
            "name" => name = Some(i),
            "email" => email = Some(i),
            "tags" => tags = Some(i),
            _ => {
                CustomFields::check_name(col).map_err(|e| ImportError::BadHeader(e.to_string()))?;
                custom.push((i, col.to_owned()));
            }
        }
    }
    let phone = phone.ok_or_else(|| ImportError::BadHeader("a `phone` column is required".into()))?;
    Ok(Header { phone, name, email, tags, custom })
}

/// One data row checked into a phone and the row's details.
fn row(h: &Header, cells: &[String]) -> Result<(PhoneNumber, ContactDetails), ContactValueError> {
    let cell = |i: Option<usize>| i.and_then(|i| cells.get(i)).map(|s| s.trim()).filter(|s| !s.is_empty());
    let phone = PhoneNumber::parse(cell(Some(h.phone)).unwrap_or_default())
        .map_err(|e| ContactValueError::at("phone", e))?;
    let name =
        cell(h.name).map(DisplayName::parse).transpose().map_err(|e| ContactValueError::at("name", e))?;
    let email = cell(h.email).map(Email::parse).transpose()?;
    // Tags are separated by `;` or `|` in one cell (a `,` would need quoting).
    let tags = match cell(h.tags) {
        Some(raw) => {
            ContactTags::parse_texts(raw.split([';', '|']).map(str::trim).filter(|t| !t.is_empty()))?
        }
        None => ContactTags::default(),
    };
    let fields: BTreeMap<String, String> = h
        .custom
        .iter()
        .filter_map(|(i, name)| cell(Some(*i)).map(|v| (name.clone(), v.to_owned())))
        .collect();
    let fields = CustomFields::parse(fields)?;
    Ok((phone, ContactDetails { name, email, tags, fields }))
}

/// The stable code of a row's value error.
pub fn value_code(e: &ContactValueError) -> &'static str {
    use switchboard_domain::ValueError as V;
    match e {
        ContactValueError::Invalid { error: V::InvalidPhoneNumber(_), .. } => "invalid_phone_number",
        ContactValueError::Invalid { field, .. } if field == "name" => "invalid_name",
        ContactValueError::Invalid { field, .. } if field == "tags" => "invalid_tag",
        ContactValueError::Invalid { .. } => "invalid_text",
        ContactValueError::InvalidEmail(_) => "invalid_email",
        ContactValueError::InvalidFieldName(_) | ContactValueError::FieldValueTooLong(_) => {
            "invalid_custom_field"
        }
        ContactValueError::TooManyFields => "too_many_custom_fields",
        ContactValueError::TooManyTags => "too_many_tags",
        ContactValueError::DescriptionTooLong => "invalid_description",
    }
}

/// A checked file: the rows to import and the rows refused before touching anything.
pub struct CheckedImport {
    rows: Vec<(usize, PhoneNumber, ContactDetails)>,
    failed: Vec<RowError>,
}

/// Checks a whole file (header, every row, duplicates within it) before anything is written.
pub fn check_import(text: &str) -> Result<CheckedImport, ImportError> {
    let mut records = parse_csv(text)?.into_iter();
    let (_, head) = records.next().ok_or_else(|| ImportError::Malformed("the file is empty".into()))?;
    let h = header(&head)?;
    let records: Vec<_> = records.collect();
    if records.len() > MAX_IMPORT_ROWS {
        return Err(ImportError::TooManyRows);
    }
    let mut seen: BTreeMap<PhoneNumber, usize> = BTreeMap::new();
    let (mut rows, mut failed) = (Vec::new(), Vec::new());
    for (line, cells) in records {
        match row(&h, &cells) {
            Ok((phone, details)) => {
                if let Some(first) = seen.get(&phone) {
                    failed.push(RowError {
                        row: line,
                        field: "phone".into(),
                        code: "duplicate_in_file".into(),
                        message: format!("{phone} is already on row {first}"),
                    });
                    continue;
                }
                seen.insert(phone.clone(), line);
                rows.push((line, phone, details));
            }
            Err(e) => failed.push(RowError {
                row: line,
                field: e.field(),
                code: value_code(&e).into(),
                message: e.to_string(),
            }),
        }
    }
    Ok(CheckedImport { rows, failed })
}

/// Imports the checked rows into `list` (one `Import` command per row; a retried import
/// creates nothing twice, since card ids derive from list and phone).
pub async fn import(
    core: &Core,
    list: ContactListId,
    checked: CheckedImport,
    cause: &Cause,
    correlation: &str,
) -> Result<ImportReport, CommandError<ContactCardError>> {
    let mut report = ImportReport { failed: checked.failed, ..Default::default() };
    for (line, phone, row) in checked.rows {
        let id = directory::card_id(list, &phone).to_string();
        let cmd = ContactCardCommand::Import { list_id: list, phone, row, at: core.clock.now() };
        match core.contact_cards.execute(&id, cmd, core.metadata(cause, correlation)).await {
            Ok(events) => match events.first().map(|e| &e.payload) {
                Some(directory::ContactCardEvent::ContactCardCreated { .. }) => report.imported += 1,
                Some(_) => report.updated += 1,
                None => report.unchanged += 1,
            },
            Err(CommandError::Rejected(ContactCardError::Invalid(e))) => report.failed.push(RowError {
                row: line,
                field: e.field(),
                code: value_code(&e).into(),
                message: e.to_string(),
            }),
            Err(e) => return Err(e),
        }
    }
    report.failed.sort_by_key(|f| f.row);
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_handles_quotes_escapes_crlf_and_blank_lines() {
        let text = "phone,name\r\n+15551234567,\"Doe, Jane\"\r\n\r\n+15551234568,\"say \"\"hi\"\"\nthere\"\n+15551234569,";
        let records = parse_csv(text).expect("parses");
        assert_eq!(records.len(), 4);
        assert_eq!(records[1], (2, vec!["+15551234567".into(), "Doe, Jane".into()]));
        assert_eq!(records[2], (4, vec!["+15551234568".into(), "say \"hi\"\nthere".into()]));
        assert_eq!(records[3], (6, vec!["+15551234569".into(), String::new()]));
        assert!(matches!(parse_csv("phone\n\"open"), Err(ImportError::Malformed(_))));
    }

    #[test]
    fn a_file_reports_each_bad_row_with_its_line_field_and_code() {
        let text = "phone,name,email,tags,city\n\
                    +15551234567,Jane,jane@example.com,vip;gold,Rome\n\
                    12345,Bob,,,\n\
                    +15551234568,Ann,not-an-email,,\n\
                    +15551234567,Again,,,\n";
        let checked = check_import(text).expect("checked");
        assert_eq!(checked.rows.len(), 1);
        let (_, _, details) = &checked.rows[0];
        assert_eq!(details.tags.as_set().len(), 2);
        assert_eq!(details.fields.as_map().get("city").map(String::as_str), Some("Rome"));
        let failed: Vec<_> =
            checked.failed.iter().map(|f| (f.row, f.field.as_str(), f.code.as_str())).collect();
        assert_eq!(
            failed,
            vec![
                (3, "phone", "invalid_phone_number"),
                (4, "email", "invalid_email"),
                (5, "phone", "duplicate_in_file"),
            ]
        );
    }

    #[test]
    fn a_bad_header_refuses_the_whole_file() {
        assert!(matches!(check_import("name,email\nJane,j@x.io"), Err(ImportError::BadHeader(_))));
        assert!(matches!(
            check_import("phone,phone\n+15551234567,+15551234567"),
            Err(ImportError::BadHeader(_))
        ));
        assert!(matches!(check_import("phone,bad col\n+15551234567,x"), Err(ImportError::BadHeader(_))));
        assert!(matches!(check_import(""), Err(ImportError::Malformed(_))));
    }

    #[test]
    fn the_whitelist_admits_members_of_any_of_its_lists_only_when_enabled() {
        let (a, b) = (ContactListId::new(), ContactListId::new());
        let mut w = Whitelist { enabled: false, lists: [a].into(), reply: None };
        assert_eq!(screen(&w, &BTreeSet::new()), Screening::Admitted);
        w.enabled = true;
        assert_eq!(screen(&w, &[b, a].into()), Screening::Admitted);
        assert_eq!(screen(&w, &[b].into()), Screening::NotWhitelisted { reply: None });
    }
}
