//! The supervisor's interaction list and each interaction's messages.
//!
//! Owns `interaction_list` (one row per interaction: status, account, queue, agent, last
//! message, unread count, timestamps) and `interaction_messages` (both directions, with
//! delivery status). Statuses: `unrouted`, `queued`, `offered`, `assigned`, `closed`,
//! `disposed`. "Unread" counts customer messages since the agent last wrote.

use sqlx::AnyConnection;
use switchboard_domain::interaction::{InboundContent, InteractionEvent, OutboundMedia};
use switchboard_domain::queue::QueueEvent;

use crate::runtime::{Projection, ms};
use crate::{DomainEventPayload, StoredEvent};

/// The interaction list projection.
pub struct InteractionList;

const PREVIEW_CHARS: usize = 120;

fn preview(text: &str) -> String {
    text.chars().take(PREVIEW_CHARS).collect()
}

/// The message's kind and the text an agent reads for it: a media item shows its caption,
/// its file name or `[kind]`.
fn content_parts(content: &InboundContent) -> (&str, String) {
    match content {
        InboundContent::Text { body } => ("text", body.clone()),
        InboundContent::Media { kind, caption, filename, .. } => {
            let text = caption
                .clone()
                .or_else(|| filename.as_ref().map(|f| format!("[{kind}] {f}")))
                .unwrap_or_else(|| format!("[{kind}]"));
            (kind.as_str(), text)
        }
        InboundContent::Other { kind, summary } => (kind.as_str(), summary.clone()),
    }
}

#[async_trait::async_trait]
impl Projection for InteractionList {
    fn name(&self) -> &'static str {
        "interaction_list"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["interaction_list", "interaction_messages"]
    }

    async fn apply(
        &self,
        conn: &mut AnyConnection,
        event: &StoredEvent,
        payload: &DomainEventPayload,
    ) -> Result<(), sqlx::Error> {
        let id = event.aggregate_id.as_str();
        match payload {
            DomainEventPayload::Interaction(e) => apply_interaction(conn, id, event.sequence, e).await,
            DomainEventPayload::Queue(e) => apply_queue(conn, e).await,
            _ => Ok(()),
        }
    }
}

async fn apply_interaction(
    conn: &mut AnyConnection,
    id: &str,
    seq: i64,
    event: &InteractionEvent,
) -> Result<(), sqlx::Error> {
    use InteractionEvent as E;
    match event {
        E::InteractionOpened { account_id, customer, customer_name, queue_id, at } => {
            sqlx::query(
                "INSERT INTO interaction_list
                   (interaction_id, account_id, queue_id, customer, customer_name, status, opened_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
            )
            .bind(id)
            .bind(account_id.to_string())
            .bind(queue_id.map(|q| q.to_string()))
            .bind(customer.to_string())
            .bind(customer_name.clone())
            .bind(if queue_id.is_some() { "queued" } else { "unrouted" })
            .bind(ms(*at))
            .execute(&mut *conn)
            .await?;
        }
        E::CustomerMessageReceived { message_id, provider_message_id, content, at, .. } => {
            let (kind, body) = content_parts(content);
            let (media_kind, content_type, filename) = match content {
                InboundContent::Media { kind, content_type, filename, .. } => {
                    (Some(kind.as_str()), content_type.as_deref(), filename.as_deref())
                }
                _ => (None, None, None),
            };
            sqlx::query(
                "INSERT INTO interaction_messages
                   (message_id, interaction_id, direction, kind, body, provider_message_id, status, at, seq,
                    media_kind, media_state, media_content_type, media_filename)
                 VALUES ($1, $2, 'in', $3, $4, $5, 'received', $6, $7, $8, $9, $10, $11)",
            )
            .bind(message_id.to_string())
            .bind(id)
            .bind(kind)
            .bind(body.as_str())
            .bind(provider_message_id.as_str())
            .bind(ms(*at))
            .bind(seq)
            .bind(media_kind)
            .bind(media_kind.map(|_| "pending"))
            .bind(content_type)
            .bind(filename)
            .execute(&mut *conn)
            .await?;
            sqlx::query(
                "UPDATE interaction_list SET last_message_at = $2, last_message_preview = $3,
                        last_message_direction = 'in', unread_count = unread_count + 1,
                        message_count = message_count + 1, updated_at = $2
                  WHERE interaction_id = $1",
            )
            .bind(id)
            .bind(ms(*at))
            .bind(preview(&body))
            .execute(&mut *conn)
            .await?;
        }
        E::AgentAssigned { agent_id, at } => {
            sqlx::query(
                "UPDATE interaction_list SET agent_id = $2, assigned_at = $3, offered_to = NULL,
                        status = CASE WHEN status IN ('closed', 'disposed') THEN status ELSE 'assigned' END,
                        updated_at = $3
                  WHERE interaction_id = $1",
            )
            .bind(id)
            .bind(agent_id.to_string())
            .bind(ms(*at))
            .execute(&mut *conn)
            .await?;
        }
        E::AgentMessageSent { message_id, agent_id, text, at, .. } => {
            let out = Outgoing { message_id: *message_id, agent_id: *agent_id, at: *at, seq };
            insert_outgoing(conn, id, &out, "text", text.as_ref(), None).await?;
        }
        E::AgentMediaSent { message_id, agent_id, media, at, .. } => {
            let out = Outgoing { message_id: *message_id, agent_id: *agent_id, at: *at, seq };
            let body = media.caption.clone().unwrap_or_else(|| match &media.filename {
                Some(f) => format!("[{}] {f}", media.kind),
                None => format!("[{}]", media.kind),
            });
            insert_outgoing(conn, id, &out, &media.kind, &body, Some(media)).await?;
        }
        E::AgentTemplateSent { message_id, agent_id, template, at, .. } => {
            let out = Outgoing { message_id: *message_id, agent_id: *agent_id, at: *at, seq };
            let body = if template.parameters.is_empty() {
                format!("[template] {}", template.name)
            } else {
                format!("[template] {}: {}", template.name, template.parameters.join(", "))
            };
            insert_outgoing(conn, id, &out, "template", &body, None).await?;
        }
        E::InboundMediaStored { message_id, blob, .. } => {
            sqlx::query(
                "UPDATE interaction_messages SET media_state = 'stored', media_sha256 = $2,
                        media_content_type = $3, media_size = $4
                  WHERE message_id = $1",
            )
            .bind(message_id.to_string())
            .bind(blob.sha256.as_str())
            .bind(blob.content_type.as_str())
            .bind(blob.size as i64)
            .execute(&mut *conn)
            .await?;
        }
        E::InboundMediaUnavailable { message_id, code, reason, .. } => {
            sqlx::query(
                "UPDATE interaction_messages SET media_state = 'unavailable', error_code = $2, media_error = $3
                  WHERE message_id = $1",
            )
            .bind(message_id.to_string())
            .bind(code.as_str())
            .bind(reason.as_str())
            .execute(&mut *conn)
            .await?;
        }
        E::OutboundMessageAccepted { message_id, provider_message_id, .. } => {
            sqlx::query(
                "UPDATE interaction_messages SET provider_message_id = $2,
                        status = CASE WHEN status = 'pending' THEN 'accepted' ELSE status END
                  WHERE message_id = $1",
            )
            .bind(message_id.to_string())
            .bind(provider_message_id.as_str())
            .execute(&mut *conn)
            .await?;
        }
        E::OutboundMessageFailed { message_id, failure, .. } => {
            sqlx::query(
                "UPDATE interaction_messages SET status = 'failed', error_code = $2, error_reason = $3
                  WHERE message_id = $1",
            )
            .bind(message_id.to_string())
            .bind(failure.code.as_str())
            .bind(failure.reason.as_str())
            .execute(&mut *conn)
            .await?;
        }
        E::OutboundStatusChanged { message_id, status, failure, .. } => {
            let status = serde_json::to_value(status)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            sqlx::query(
                "UPDATE interaction_messages SET status = $2,
                        error_code = COALESCE($3, error_code), error_reason = COALESCE($4, error_reason)
                  WHERE message_id = $1",
            )
            .bind(message_id.to_string())
            .bind(status)
            .bind(failure.as_ref().map(|f| f.code.clone()))
            .bind(failure.as_ref().map(|f| f.reason.clone()))
            .execute(&mut *conn)
            .await?;
        }
        E::InteractionClosed { at, .. } => {
            sqlx::query(
                "UPDATE interaction_list SET status = 'closed', closed_at = $2, offered_to = NULL, updated_at = $2
                  WHERE interaction_id = $1",
            )
            .bind(id)
            .bind(ms(*at))
            .execute(&mut *conn)
            .await?;
        }
        E::InteractionDisposed { disposition, at, .. } => {
            sqlx::query(
                "UPDATE interaction_list SET status = 'disposed', disposition = $2, disposed_at = $3, updated_at = $3
                  WHERE interaction_id = $1",
            )
            .bind(id)
            .bind(disposition.as_ref())
            .bind(ms(*at))
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(())
}

/// An agent's message, whatever it carries.
struct Outgoing {
    message_id: switchboard_domain::MessageId,
    agent_id: switchboard_domain::AgentId,
    at: chrono::DateTime<chrono::Utc>,
    seq: i64,
}

async fn insert_outgoing(
    conn: &mut AnyConnection,
    id: &str,
    out: &Outgoing,
    kind: &str,
    body: &str,
    media: Option<&OutboundMedia>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO interaction_messages
           (message_id, interaction_id, direction, kind, body, agent_id, status, at, seq,
            media_kind, media_state, media_sha256, media_content_type, media_size, media_filename)
         VALUES ($1, $2, 'out', $3, $4, $5, 'pending', $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(out.message_id.to_string())
    .bind(id)
    .bind(kind)
    .bind(body)
    .bind(out.agent_id.to_string())
    .bind(ms(out.at))
    .bind(out.seq)
    .bind(media.map(|m| m.kind.clone()))
    .bind(media.map(|_| "stored"))
    .bind(media.map(|m| m.blob.sha256.clone()))
    .bind(media.map(|m| m.blob.content_type.clone()))
    .bind(media.map(|m| m.blob.size as i64))
    .bind(media.and_then(|m| m.filename.clone()))
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "UPDATE interaction_list SET last_message_at = $2, last_message_preview = $3,
                last_message_direction = 'out', unread_count = 0,
                message_count = message_count + 1, updated_at = $2
          WHERE interaction_id = $1",
    )
    .bind(id)
    .bind(ms(out.at))
    .bind(preview(body))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn apply_queue(conn: &mut AnyConnection, event: &QueueEvent) -> Result<(), sqlx::Error> {
    use QueueEvent as E;
    match event {
        E::OfferMade { interaction_id, agent_id, at, .. } => {
            sqlx::query(
                "UPDATE interaction_list SET offered_to = $2, status = 'offered', updated_at = $3
                  WHERE interaction_id = $1 AND status IN ('queued', 'offered')",
            )
            .bind(interaction_id.to_string())
            .bind(agent_id.to_string())
            .bind(ms(*at))
            .execute(&mut *conn)
            .await?;
        }
        E::OfferRejected { interaction_id, at, .. }
        | E::OfferTimedOut { interaction_id, at, .. }
        | E::InteractionLeftQueue { interaction_id, at } => {
            sqlx::query(
                "UPDATE interaction_list SET offered_to = NULL, status = 'queued', updated_at = $2
                  WHERE interaction_id = $1 AND status = 'offered'",
            )
            .bind(interaction_id.to_string())
            .bind(ms(*at))
            .execute(&mut *conn)
            .await?;
        }
        _ => {}
    }
    Ok(())
}
