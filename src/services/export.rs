//! Exports of the interaction list: a CSV of the interactions some criteria cover, streamed
//! page by page, and one interaction's transcript as a zip (text, JSON, optionally its
//! attachments).
//!
//! Why it is built this way:
//! - The CSV covers exactly what [`search::compile`] selects (the list's filters, or the
//!   rows a supervisor selected by id), so "export what I see" cannot drift from the list.
//! - It is read in keyset pages of [`CSV_PAGE_ROWS`] over `(opened_at, interaction_id)`, each
//!   page its own short query: memory stays constant whatever the row count, no
//!   transaction or connection is held for the minutes a million rows take to download,
//!   and rows inserted meanwhile never shift a page boundary (no duplicates, no gaps).
//! - Cells are RFC 4180 (the `csv` crate: quotes, commas, CR LF, UTF-8) and free text that a
//!   spreadsheet would run as a formula is neutralised ([`neutralise`]).
//! - A transcript is built in memory (one interaction is small), its attachments capped at
//!   [`MAX_TRANSCRIPT_ATTACHMENT_BYTES`]. It is the customer's conversation: internal notes
//!   (their own table, not `interaction_messages`) join it only when asked for
//!   ([`load_notes`]), in a section of their own (ADR 0017).

use std::collections::BTreeMap;
use std::io::Write;

use actix_web::web::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use futures_util::{Stream, StreamExt};
use serde::Serialize;
use sqlx::{AnyPool, Row};
use switchboard_projections::Backend;
use switchboard_projections::runtime::time_of;

use crate::services::search::{self, Criteria, InteractionRow, PageError, PageRequest, SortKey, Viewer};

/// Rows per keyset page of the CSV (one query, one chunk of the response body).
pub const CSV_PAGE_ROWS: i64 = 500;

/// The most attachment bytes one transcript zip may carry (it is built in memory).
pub const MAX_TRANSCRIPT_ATTACHMENT_BYTES: i64 = 200 * 1024 * 1024;

/// The CSV's columns, in order (the header row).
pub const CSV_COLUMNS: [&str; 17] = [
    "interaction_id",
    "account_id",
    "status",
    "customer",
    "customer_name",
    "queue_id",
    "agent_id",
    "opened_at",
    "assigned_at",
    "closed_at",
    "disposed_at",
    "disposition",
    "tags",
    "message_count",
    "unread_count",
    "last_message_at",
    "last_message_preview",
];

/// Makes a cell safe to open in a spreadsheet: text starting with `=`, `+`, `-`, `@`, a tab
/// or a carriage return would be run as a formula (CSV injection), so it gets a leading `'`.
/// A plain signed integer (an E.164 number such as `+15551234567`) is left alone: a
/// spreadsheet reads it as a number, never as a formula, and the customer column stays exact.
pub fn neutralise(cell: &str) -> std::borrow::Cow<'_, str> {
    let risky = cell.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let signed_integer =
        cell.len() > 1 && cell.starts_with(['+', '-']) && cell[1..].bytes().all(|b| b.is_ascii_digit());
    if risky && !signed_integer { format!("'{cell}").into() } else { cell.into() }
}

/// A CSV writer with the export's dialect: RFC 4180 (CR LF, quotes only where needed).
fn csv_writer() -> csv::Writer<Vec<u8>> {
    csv::WriterBuilder::new().terminator(csv::Terminator::CRLF).from_writer(Vec::with_capacity(64 * 1024))
}

/// The header row, encoded.
pub fn csv_header() -> Bytes {
    let mut w = csv_writer();
    // Writing to a Vec cannot fail.
    let _ = w.write_record(CSV_COLUMNS);
    Bytes::from(w.into_inner().unwrap_or_default())
}

/// One interaction as the CSV's cells (already neutralised).
fn csv_cells(r: &InteractionRow) -> Vec<String> {
    let text = |v: Option<&str>| neutralise(v.unwrap_or_default()).into_owned();
    // RFC 3339 in UTC with milliseconds (`2026-01-05T10:00:00.000Z`).
    let time = |t: Option<DateTime<Utc>>| {
        t.map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true)).unwrap_or_default()
    };
    vec![
        text(Some(&r.interaction_id)),
        text(Some(&r.account_id)),
        text(Some(&r.status)),
        text(Some(&r.customer)),
        text(r.customer_name.as_deref()),
        text(r.queue_id.as_deref()),
        text(r.agent_id.as_deref()),
        time(r.opened_at),
        time(r.assigned_at),
        time(r.closed_at),
        time(r.disposed_at),
        text(r.disposition.as_deref()),
        text(Some(&r.tags.join(";"))),
        r.message_count.to_string(),
        r.unread_count.to_string(),
        time(r.last_message_at),
        text(r.last_message_preview.as_deref()),
    ]
}

/// Rows encoded as CSV records.
fn csv_records(rows: &[InteractionRow]) -> Result<Bytes, sqlx::Error> {
    let mut w = csv_writer();
    for r in rows {
        w.write_record(csv_cells(r)).map_err(|e| sqlx::Error::Protocol(e.to_string()))?;
    }
    Ok(Bytes::from(w.into_inner().map_err(|e| sqlx::Error::Protocol(e.to_string()))?))
}

/// The CSV of every interaction `criteria` covers, newest first: the header, then one chunk
/// per keyset page of the list's own paging (`search::page`, by `(opened_at,
/// interaction_id)`), so memory is one page and rows inserted meanwhile are neither repeated
/// nor hidden. A database error ends the stream with that error, which aborts the response
/// mid-body (the client sees a truncated download, never a silently short file that looks
/// complete: chunked encoding is not terminated).
pub fn csv_stream(
    db: AnyPool,
    backend: Backend,
    criteria: Criteria,
    page_rows: i64,
) -> impl Stream<Item = Result<Bytes, sqlx::Error>> + 'static {
    let first = PageRequest { sort: SortKey::OpenedAt, descending: true, limit: page_rows, after: None };
    let pages = futures_util::stream::try_unfold(Some(first), move |request| {
        let (db, criteria) = (db.clone(), criteria.clone());
        async move {
            let Some(request) = request else { return Ok(None) };
            let page =
                search::page(&db, backend, &criteria, Viewer::Everyone, &request).await.map_err(|e| {
                    tracing::error!(error = %e, "CSV export failed mid-stream; the response is aborted");
                    match e {
                        PageError::Db(e) => e,
                        other => sqlx::Error::Protocol(other.to_string()),
                    }
                })?;
            let next = page.next.map(|after| PageRequest { after: Some(after), ..request });
            Ok(Some((csv_records(&page.rows)?, next)))
        }
    });
    futures_util::stream::once(async { Ok::<_, sqlx::Error>(csv_header()) }).chain(pages)
}

/// The transcript's header: the interaction as the list shows it.
#[derive(Debug, Clone, Serialize)]
pub struct TranscriptHeader {
    /// Id.
    pub interaction_id: String,
    /// Account.
    pub account_id: String,
    /// Customer number.
    pub customer: String,
    /// Customer profile name.
    pub customer_name: Option<String>,
    /// Status.
    pub status: String,
    /// Queue.
    pub queue_id: Option<String>,
    /// Owning agent.
    pub agent_id: Option<String>,
    /// Owning agent's name.
    pub agent_name: Option<String>,
    /// Opened.
    pub opened_at: Option<DateTime<Utc>>,
    /// Closed.
    pub closed_at: Option<DateTime<Utc>>,
    /// Disposition.
    pub disposition: Option<String>,
    /// Tags, sorted.
    pub tags: Vec<String>,
}

/// A message's media in the transcript.
#[derive(Debug, Clone, Serialize)]
pub struct TranscriptMedia {
    /// `image`, `audio`, `video`, `document` or `sticker`.
    pub kind: String,
    /// `pending`, `stored` or `unavailable`.
    pub state: String,
    /// MIME type.
    pub content_type: Option<String>,
    /// Size in bytes, once stored.
    pub size: Option<i64>,
    /// SHA-256 of the bytes, once stored.
    pub sha256: Option<String>,
    /// The file name the sender gave (documents).
    pub filename: Option<String>,
    /// Path of the file inside the zip, when the zip carries it.
    pub file: Option<String>,
}

/// One message of the transcript.
#[derive(Debug, Clone, Serialize)]
pub struct TranscriptMessage {
    /// Our id.
    pub message_id: String,
    /// When.
    pub at: Option<DateTime<Utc>>,
    /// `customer`, `agent` or `auto_reply`.
    pub from: String,
    /// Sending agent.
    pub agent_id: Option<String>,
    /// Sending agent's name.
    pub agent_name: Option<String>,
    /// `text` or the media/provider kind.
    pub kind: String,
    /// Text, caption or summary.
    pub text: String,
    /// Delivery status.
    pub status: String,
    /// Provider error code (failed sends, unavailable media).
    pub error_code: Option<String>,
    /// The media, if any.
    pub media: Option<TranscriptMedia>,
}

/// An internal note in the transcript (only when asked for: notes are never sent to the
/// customer, and a transcript is often handed to one).
#[derive(Debug, Clone, Serialize)]
pub struct TranscriptNote {
    /// When.
    pub at: Option<DateTime<Utc>>,
    /// `agent` or `supervisor`.
    pub author_kind: String,
    /// The agent who wrote it (agents).
    pub author_agent_id: Option<String>,
    /// That agent's name.
    pub author_name: Option<String>,
    /// The token label of who wrote it (supervisors and admins).
    pub author_label: Option<String>,
    /// The text.
    pub text: String,
}

/// A whole transcript (`transcript.json`).
#[derive(Debug, Clone, Serialize)]
pub struct Transcript {
    /// The interaction.
    pub interaction: TranscriptHeader,
    /// Its messages, oldest first.
    pub messages: Vec<TranscriptMessage>,
    /// Its internal notes, oldest first; absent unless the caller asked for them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notes: Option<Vec<TranscriptNote>>,
}

/// Loads an interaction's transcript from the read models; `None` if there is no such
/// interaction (or it was deleted). Visibility is the caller's business.
pub async fn load_transcript(db: &AnyPool, interaction_id: &str) -> Result<Option<Transcript>, sqlx::Error> {
    let Some(r) = sqlx::query(
        "SELECT il.interaction_id, il.account_id, il.customer, il.customer_name, il.status, il.queue_id,
                il.agent_id, a.name AS agent_name, il.opened_at, il.closed_at, il.disposition, il.tags
           FROM interaction_list AS il LEFT JOIN agent_status AS a ON a.agent_id = il.agent_id
          WHERE il.interaction_id = $1",
    )
    .bind(interaction_id)
    .fetch_optional(db)
    .await?
    else {
        return Ok(None);
    };
    let interaction = TranscriptHeader {
        interaction_id: r.try_get("interaction_id")?,
        account_id: r.try_get("account_id")?,
        customer: r.try_get("customer")?,
        customer_name: r.try_get("customer_name")?,
        status: r.try_get("status")?,
        queue_id: r.try_get("queue_id")?,
        agent_id: r.try_get("agent_id")?,
        agent_name: r.try_get("agent_name")?,
        opened_at: time_of(r.try_get("opened_at")?),
        closed_at: time_of(r.try_get("closed_at")?),
        disposition: r.try_get("disposition")?,
        tags: serde_json::from_str(&r.try_get::<String, _>("tags")?).unwrap_or_default(),
    };
    let rows = sqlx::query(
        "SELECT m.message_id, m.direction, m.kind, m.body, m.agent_id, a.name AS agent_name, m.status,
                m.error_code, m.at, m.media_kind, m.media_state, m.media_content_type, m.media_size,
                m.media_sha256, m.media_filename
           FROM interaction_messages AS m LEFT JOIN agent_status AS a ON a.agent_id = m.agent_id
          WHERE m.interaction_id = $1 ORDER BY m.seq",
    )
    .bind(interaction_id)
    .fetch_all(db)
    .await?;
    let messages = rows
        .iter()
        .map(|r| {
            let direction: String = r.try_get("direction")?;
            let agent_id: Option<String> = r.try_get("agent_id")?;
            let from = match (direction.as_str(), &agent_id) {
                ("in", _) => "customer",
                (_, Some(_)) => "agent",
                _ => "auto_reply",
            };
            let media = match r.try_get::<Option<String>, _>("media_kind")? {
                None => None,
                Some(kind) => Some(TranscriptMedia {
                    kind,
                    state: r.try_get::<Option<String>, _>("media_state")?.unwrap_or_else(|| "pending".into()),
                    content_type: r.try_get("media_content_type")?,
                    size: r.try_get("media_size")?,
                    sha256: r.try_get("media_sha256")?,
                    filename: r.try_get("media_filename")?,
                    file: None,
                }),
            };
            Ok(TranscriptMessage {
                message_id: r.try_get("message_id")?,
                at: time_of(r.try_get("at")?),
                from: from.to_owned(),
                agent_id,
                agent_name: r.try_get("agent_name")?,
                kind: r.try_get("kind")?,
                text: r.try_get("body")?,
                status: r.try_get("status")?,
                error_code: r.try_get("error_code")?,
                media,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    Ok(Some(Transcript { interaction, messages, notes: None }))
}

/// Adds the interaction's internal notes (oldest first) to a loaded transcript.
pub async fn load_notes(db: &AnyPool, transcript: &mut Transcript) -> Result<(), sqlx::Error> {
    let rows = sqlx::query(
        "SELECT n.at, n.author_kind, n.author_agent_id, a.name AS author_name, n.author_label, n.text
           FROM interaction_notes AS n LEFT JOIN agent_status AS a ON a.agent_id = n.author_agent_id
          WHERE n.interaction_id = $1 ORDER BY n.at, n.note_id",
    )
    .bind(&transcript.interaction.interaction_id)
    .fetch_all(db)
    .await?;
    let notes = rows
        .iter()
        .map(|r| {
            Ok(TranscriptNote {
                at: time_of(r.try_get("at")?),
                author_kind: r.try_get("author_kind")?,
                author_agent_id: r.try_get("author_agent_id")?,
                author_name: r.try_get("author_name")?,
                author_label: r.try_get("author_label")?,
                text: r.try_get("text")?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    transcript.notes = Some(notes);
    Ok(())
}

/// A file name safe inside a zip on any system: ASCII letters, digits, `.`, `-` and `_`
/// only (so no `../`, no absolute path, no drive letter), no leading dot, at most 100 bytes.
pub fn safe_filename(name: &str) -> String {
    let mapped: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') { c } else { '_' })
        .collect();
    let trimmed = mapped.trim_start_matches('.');
    let mut out: String = trimmed.chars().take(100).collect();
    if out.is_empty() {
        out.push_str("file");
    }
    out
}

fn extension(content_type: Option<&str>) -> &'static str {
    match content_type.unwrap_or_default().split(';').next().unwrap_or_default().trim() {
        "image/jpeg" => "jpg",
        "image/png" => "png",
        "image/webp" => "webp",
        "image/gif" => "gif",
        "application/pdf" => "pdf",
        "audio/ogg" => "ogg",
        "audio/mpeg" => "mp3",
        "audio/aac" => "aac",
        "video/mp4" => "mp4",
        "text/plain" => "txt",
        _ => "bin",
    }
}

impl Transcript {
    /// The stored media worth fetching: `(message index, sha256)`.
    pub fn stored_media(&self) -> Vec<(usize, String)> {
        self.messages
            .iter()
            .enumerate()
            .filter_map(|(i, m)| {
                let media = m.media.as_ref()?;
                (media.state == "stored").then(|| media.sha256.clone().map(|sha| (i, sha)))?
            })
            .collect()
    }

    /// Total bytes of the stored media, as the read model records them.
    pub fn stored_media_bytes(&self) -> i64 {
        self.messages
            .iter()
            .filter_map(|m| m.media.as_ref())
            .filter(|m| m.state == "stored")
            .map(|m| m.size.unwrap_or(0))
            .sum()
    }

    /// The zip path of message `index`'s attachment: `attachments/<message_id>-<name>`.
    pub fn attachment_path(&self, index: usize) -> Option<String> {
        let m = &self.messages[index];
        let media = m.media.as_ref()?;
        let name = match &media.filename {
            Some(f) => safe_filename(f),
            None => format!("{}.{}", safe_filename(&media.kind), extension(media.content_type.as_deref())),
        };
        Some(format!("attachments/{}-{name}", m.message_id))
    }

    /// `transcript.txt`: a header, then one line per message, times in UTC.
    pub fn render_text(&self) -> String {
        let h = &self.interaction;
        let when = |t: &Option<DateTime<Utc>>| {
            t.map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string()).unwrap_or_else(|| "-".into())
        };
        let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
        let agent = match (&h.agent_id, &h.agent_name) {
            (Some(id), Some(name)) => format!("{name} ({id})"),
            (Some(id), None) => id.clone(),
            _ => "-".into(),
        };
        let mut out = String::new();
        out.push_str(&format!("Interaction: {}\n", h.interaction_id));
        out.push_str(&format!("Account: {}\n", h.account_id));
        match &h.customer_name {
            Some(name) => out.push_str(&format!("Customer: {name} ({})\n", h.customer)),
            None => out.push_str(&format!("Customer: {}\n", h.customer)),
        }
        out.push_str(&format!("Status: {}\n", h.status));
        out.push_str(&format!("Opened: {}\n", when(&h.opened_at)));
        out.push_str(&format!("Closed: {}\n", when(&h.closed_at)));
        out.push_str(&format!("Queue: {}\n", opt(&h.queue_id)));
        out.push_str(&format!("Agent: {agent}\n"));
        out.push_str(&format!("Disposition: {}\n", opt(&h.disposition)));
        out.push_str(&format!("Tags: {}\n", if h.tags.is_empty() { "-".into() } else { h.tags.join(", ") }));
        out.push('\n');
        for m in &self.messages {
            let who = match m.from.as_str() {
                "customer" => format!("Customer ({})", h.customer_name.as_deref().unwrap_or(&h.customer)),
                "agent" => agent_label(&m.agent_name, &m.agent_id),
                _ => "Auto-reply".to_owned(),
            };
            let mut line = String::new();
            if let Some(media) = &m.media {
                let name = media.filename.clone().unwrap_or_default();
                let place = match (&media.file, media.state.as_str()) {
                    (Some(file), _) => file.clone(),
                    (None, "stored") => "not included".into(),
                    (None, state) => state.to_owned(),
                };
                line.push_str(&format!("[{}] ", media.kind));
                if !name.is_empty() {
                    line.push_str(&name);
                    line.push(' ');
                }
                line.push_str(&format!("({place})"));
                // The read model's body repeats `[kind] name` when there is no caption.
                if !m.text.starts_with(&format!("[{}]", media.kind)) && !m.text.is_empty() {
                    line.push(' ');
                    line.push_str(&m.text);
                }
            } else {
                line.push_str(&m.text);
            }
            if m.status == "failed" {
                line.push_str(&format!(" (not delivered: {})", m.error_code.as_deref().unwrap_or("failed")));
            }
            out.push_str(&format!("[{}] {who}: {}\n", when(&m.at), indent_continuations(&line)));
        }
        if let Some(notes) = &self.notes {
            out.push_str("\nInternal notes (never sent to the customer):\n");
            if notes.is_empty() {
                out.push_str("-\n");
            }
            for n in notes {
                let who = match &n.author_label {
                    Some(label) => format!("Supervisor {label}"),
                    None => agent_label(&n.author_name, &n.author_agent_id),
                };
                out.push_str(&format!("[{}] {who}: {}\n", when(&n.at), indent_continuations(&n.text)));
            }
        }
        out
    }
}

/// `Agent Sam (id)`, or `Agent id` when the name is unknown.
fn agent_label(name: &Option<String>, id: &Option<String>) -> String {
    match (name, id) {
        (Some(name), Some(id)) => format!("Agent {name} ({id})"),
        (_, id) => format!("Agent {}", id.as_deref().unwrap_or("-")),
    }
}

/// Continuation lines indented, so each message or note still starts a line of its own.
fn indent_continuations(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\n', "\n    ")
}

/// Builds the zip: `transcript.txt`, `transcript.json` (both deflated) and the given
/// attachment files (stored as they are: media is already compressed). CPU-bound: call it
/// on a blocking thread.
pub fn build_zip(
    transcript: &Transcript,
    files: &[(String, Vec<u8>)],
) -> Result<Vec<u8>, zip::result::ZipError> {
    use zip::CompressionMethod;
    use zip::write::SimpleFileOptions;
    let deflated = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
    let stored = SimpleFileOptions::default().compression_method(CompressionMethod::Stored).large_file(true);
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    zip.start_file("transcript.txt", deflated)?;
    zip.write_all(transcript.render_text().as_bytes())?;
    zip.start_file("transcript.json", deflated)?;
    let json = serde_json::to_vec_pretty(transcript).map_err(std::io::Error::other)?;
    zip.write_all(&json)?;
    for (path, bytes) in files {
        zip.start_file(path.as_str(), stored)?;
        zip.write_all(bytes)?;
    }
    Ok(zip.finish()?.into_inner())
}

/// Marks which attachments the zip carries (sets `media.file`), from `(index, path)`.
pub fn mark_included(transcript: &mut Transcript, included: &BTreeMap<usize, String>) {
    for (i, path) in included {
        if let Some(media) = transcript.messages.get_mut(*i).and_then(|m| m.media.as_mut()) {
            media.file = Some(path.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_neutralised_and_numbers_are_not() {
        for risky in ["=1+2", "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)", "\tx", "\rx", "+", "-"] {
            assert_eq!(neutralise(risky), format!("'{risky}"), "{risky:?}");
        }
        for safe in ["+15551234567", "-42", "hello", "", "a=b", "1+1", "'quoted"] {
            assert_eq!(neutralise(safe), safe, "{safe:?}");
        }
    }

    #[test]
    fn file_names_cannot_escape_the_attachments_folder() {
        assert_eq!(safe_filename("../../etc/passwd"), "_.._etc_passwd");
        assert_eq!(safe_filename("C:\\x.pdf"), "C__x.pdf");
        assert_eq!(safe_filename(".hidden"), "hidden");
        assert_eq!(safe_filename("façade invoice.pdf"), "fa_ade_invoice.pdf");
        assert_eq!(safe_filename(""), "file");
        assert_eq!(safe_filename(&"a".repeat(300)).len(), 100);
    }

    #[test]
    fn the_header_row_is_rfc_4180() {
        let header = csv_header();
        let text = std::str::from_utf8(&header).expect("utf8");
        assert!(text.starts_with("interaction_id,account_id,status,customer,"));
        assert!(text.ends_with("last_message_preview\r\n"));
    }
}
