//! The outbox of messages to send to the provider, derived from the log.
//!
//! Owns `outbox`. An `AgentMessageSent` enqueues a row exactly once (the row and the
//! checkpoint commit together); acceptance or permanent failure marks it done. Senders (in
//! the server) claim pending rows with `FOR UPDATE SKIP LOCKED` and also mark rows the moment
//! the provider answers, so a lagging projection never causes a second send; a rebuild
//! derives the same states from the events.

use sqlx::AnyConnection;
use switchboard_domain::interaction::InteractionEvent;

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
            E::AgentMessageSent { account_id, message_id, to, text, at, .. } => {
                sqlx::query(
                    "INSERT INTO outbox
                       (message_id, interaction_id, account_id, to_phone, body, next_attempt_at, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $6)
                     ON CONFLICT (message_id) DO NOTHING",
                )
                .bind(message_id.to_string())
                .bind(event.aggregate_id.as_str())
                .bind(account_id.to_string())
                .bind(to.to_string())
                .bind(text.as_ref())
                .bind(ms(*at))
                .execute(&mut *conn)
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
