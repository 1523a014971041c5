//! The queue of customer media to download, derived from the log.
//!
//! Owns `media_fetch`. A `CustomerMessageReceived` carrying media enqueues a row exactly
//! once (row and checkpoint commit together); the outcome event (`InboundMediaStored` or
//! `InboundMediaUnavailable`) marks it done. The fetcher in the server claims due rows with
//! a lease, so a node dying mid-download only delays the row until the lease lapses.

use sqlx::AnyConnection;
use switchboard_domain::interaction::{InboundContent, InteractionEvent};

use crate::runtime::{Projection, ms};
use crate::{DomainEventPayload, StoredEvent};

/// The media fetch queue projection.
pub struct MediaFetch;

#[async_trait::async_trait]
impl Projection for MediaFetch {
    fn name(&self) -> &'static str {
        "media_fetch"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["media_fetch"]
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
            E::CustomerMessageReceived {
                account_id,
                message_id,
                content: InboundContent::Media { source, content_type, .. },
                at,
                ..
            } => {
                sqlx::query(
                    "INSERT INTO media_fetch
                       (message_id, interaction_id, account_id, source, content_type, next_attempt_at, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $6)
                     ON CONFLICT (message_id) DO NOTHING",
                )
                .bind(message_id.to_string())
                .bind(event.aggregate_id.as_str())
                .bind(account_id.to_string())
                .bind(source.as_str())
                .bind(content_type.clone())
                .bind(ms(*at))
                .execute(&mut *conn)
                .await?;
            }
            E::InboundMediaStored { message_id, .. } | E::InboundMediaUnavailable { message_id, .. } => {
                sqlx::query(
                    "UPDATE media_fetch SET status = 'done', locked_until = NULL WHERE message_id = $1",
                )
                .bind(message_id.to_string())
                .execute(&mut *conn)
                .await?;
            }
            _ => {}
        }
        Ok(())
    }
}
