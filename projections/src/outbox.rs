//! The outbox of messages (text, media, templates) to send to the provider, derived from
//! the log.
//!
//! Owns `outbox`. An `AgentMessageSent` (or a routing plan's `AutoReplySent`, sent the same
//! way as a text) enqueues a row exactly once (the row and the checkpoint commit together); acceptance or permanent failure marks it done. Senders (in
//! the server) claim pending rows with `FOR UPDATE SKIP LOCKED` and also mark rows the moment
//! the provider answers, so a lagging projection never causes a second send; a rebuild
//! derives the same states from the events.

use sqlx::AnyConnection;
use switchboard_domain::interaction::InteractionEvent;
use switchboard_domain::{AccountId, MessageId, PhoneNumber};

use crate::runtime::{Projection, ms};
use crate::{DomainEventPayload, StoredEvent};

/// The outbox projection.
pub struct Outbox;

#[async_trait::async_trait]
impl Projection for Outbox {
    fn name(&self) -> &'static str {
        "outbox"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["outbox"]
    }

    async fn apply(
        &self,
        conn: &mut AnyConnection,
        event: &StoredEvent,
        payload: &DomainEventPayload,
    ) -> Result<(), sqlx::Error> {
        let DomainEventPayload::Interaction(e) = payload else { return Ok(()) };
        use InteractionEvent as E;
        match e {
            E::AgentMessageSent { account_id, message_id, to, text, at, .. }
            | E::AutoReplySent { account_id, message_id, to, text, at, .. } => {
                enqueue(conn, event, account_id, message_id, to, "text", text.as_ref(), None, *at).await?;
            }
            E::AgentMediaSent { account_id, message_id, to, media, at, .. } => {
                let payload = serde_json::to_string(media).unwrap_or_default();
                let body = media.caption.clone().unwrap_or_default();
                enqueue(conn, event, account_id, message_id, to, "media", &body, Some(&payload), *at).await?;
            }
            E::AgentTemplateSent { account_id, message_id, to, template, at, .. } => {
                let payload = serde_json::to_string(template).unwrap_or_default();
                enqueue(
                    conn,
                    event,
                    account_id,
                    message_id,
                    to,
                    "template",
                    &template.name,
                    Some(&payload),
                    *at,
                )
                .await?;
            }
            E::OutboundMessageAccepted { message_id, provider_message_id, .. } => {
                sqlx::query(
                    "UPDATE outbox SET status = 'sent', provider_message_id = $2, recorded = 1, locked_until = NULL
                      WHERE message_id = $1",
                )
                .bind(message_id.to_string())
                .bind(provider_message_id.as_str())
                .execute(&mut *conn)
                .await?;
            }
            E::OutboundMessageFailed { message_id, failure, .. } => {
                sqlx::query(
                    "UPDATE outbox SET status = 'failed', error_code = $2, error_reason = $3, recorded = 1,
                            locked_until = NULL
                      WHERE message_id = $1",
                )
                .bind(message_id.to_string())
                .bind(failure.code.as_str())
                .bind(failure.reason.as_str())
                .execute(&mut *conn)
                .await?;
            }
            _ => {}
        }
        Ok(())
    }
}

/// One row per outbound message; `ON CONFLICT` makes a replayed event a no-op.
// The row's columns, one argument each, read clearer than a one-use struct.
#[allow(clippy::too_many_arguments)]
async fn enqueue(
    conn: &mut AnyConnection,
    event: &StoredEvent,
    account_id: &AccountId,
    message_id: &MessageId,
    to: &PhoneNumber,
    kind: &str,
    body: &str,
    payload: Option<&str>,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO outbox
           (message_id, interaction_id, account_id, to_phone, body, kind, payload, next_attempt_at, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)
         ON CONFLICT (message_id) DO NOTHING",
    )
    .bind(message_id.to_string())
    .bind(event.aggregate_id.as_str())
    .bind(account_id.to_string())
    .bind(to.to_string())
    .bind(body)
    .bind(kind)
    .bind(payload)
    .bind(ms(at))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use switchboard_domain::interaction::InteractionEvent as E;
    use switchboard_domain::{AccountId, InteractionId, MessageId, MessageText};

    use super::Outbox;
    use crate::testing::{Db, customer, t};

    #[tokio::test]
    async fn an_automatic_reply_is_sent_like_an_agent_text_and_recorded_the_same_way() {
        let mut db = Db::new(vec![Arc::new(Outbox)]).await;
        let (i, account, reply) = (InteractionId::new().to_string(), AccountId::new(), MessageId::new());
        let text = MessageText::parse("We open at 9").expect("text");
        let event = E::AutoReplySent {
            account_id: account,
            message_id: reply,
            to: customer(),
            text,
            step: 1,
            at: t(1),
        };
        db.interaction(&i, event).await;
        let row =
            "SELECT message_id || '|' || interaction_id || '|' || account_id || '|' || to_phone || '|' || body || '|'
                    || kind || '|' || COALESCE(payload, '-') || '|' || status || '|' || CAST(next_attempt_at AS TEXT)
               FROM outbox";
        let due = t(1).timestamp_millis();
        assert_eq!(
            db.rows(row).await,
            vec![format!("{reply}|{i}|{account}|{}|We open at 9|text|-|pending|{due}", customer())]
        );
        db.interaction(
            &i,
            E::OutboundMessageAccepted { message_id: reply, provider_message_id: "wamid.X".into(), at: t(2) },
        )
        .await;
        assert_eq!(
            db.rows(
                "SELECT status || '|' || provider_message_id || '|' || CAST(recorded AS TEXT) FROM outbox"
            )
            .await,
            vec!["sent|wamid.X|1".to_owned()]
        );
    }
}
