//! The queue board: members and their availability, waiting interactions and who holds
//! their offers, and running totals of offer outcomes.
//!
//! Owns `queue_status`, `queue_members` and `queue_waiting`; counts are computed from the
//! rows when read.

use sqlx::AnyConnection;
use switchboard_domain::queue::QueueEvent;

use crate::runtime::{Projection, ms};
use crate::{DomainEventPayload, StoredEvent};

/// The queue status projection.
pub struct QueueStatus;

#[async_trait::async_trait]
impl Projection for QueueStatus {
    fn name(&self) -> &'static str {
        "queue_status"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["queue_status", "queue_members", "queue_waiting"]
    }

    async fn apply(
        &self,
        conn: &mut AnyConnection,
        event: &StoredEvent,
        payload: &DomainEventPayload,
    ) -> Result<(), sqlx::Error> {
        let DomainEventPayload::Queue(e) = payload else { return Ok(()) };
        let q = event.aggregate_id.as_str();
        use QueueEvent as E;
        match e {
            E::QueueCreated { name, offer_timeout_secs, at } => {
                sqlx::query(
                    "INSERT INTO queue_status (queue_id, name, offer_timeout_s, updated_at) VALUES ($1, $2, $3, $4)",
                )
                .bind(q)
                .bind(name.as_ref())
                .bind(i64::from(*offer_timeout_secs))
                .bind(ms(*at))
                .execute(&mut *conn)
                .await?;
            }
            E::QueueMemberAdded { agent_id, .. } => {
                sqlx::query(
                    "INSERT INTO queue_members (queue_id, agent_id, available) VALUES ($1, $2, 0)
                     ON CONFLICT (queue_id, agent_id) DO NOTHING",
                )
                .bind(q)
                .bind(agent_id.to_string())
                .execute(&mut *conn)
                .await?;
            }
            E::QueueAgentAvailabilityChanged { agent_id, available, .. } => {
                sqlx::query("UPDATE queue_members SET available = $3 WHERE queue_id = $1 AND agent_id = $2")
                    .bind(q)
                    .bind(agent_id.to_string())
                    .bind(i64::from(*available))
                    .execute(&mut *conn)
                    .await?;
            }
            E::InteractionQueued { interaction_id, at } => {
                sqlx::query(
                    "INSERT INTO queue_waiting (queue_id, interaction_id, queued_at) VALUES ($1, $2, $3)
                     ON CONFLICT (queue_id, interaction_id) DO NOTHING",
                )
                .bind(q)
                .bind(interaction_id.to_string())
                .bind(ms(*at))
                .execute(&mut *conn)
                .await?;
            }
            E::OfferMade { interaction_id, agent_id, .. } => {
                set_offer(conn, q, &interaction_id.to_string(), Some(agent_id.to_string())).await?;
            }
            E::OfferRejected { interaction_id, at, .. } => {
                set_offer(conn, q, &interaction_id.to_string(), None).await?;
                bump(conn, q, "rejected_total", ms(*at)).await?;
            }
            E::OfferTimedOut { interaction_id, at, .. } => {
                set_offer(conn, q, &interaction_id.to_string(), None).await?;
                bump(conn, q, "timed_out_total", ms(*at)).await?;
            }
            E::OfferAccepted { interaction_id, at, .. } => {
                remove_waiting(conn, q, &interaction_id.to_string()).await?;
                bump(conn, q, "accepted_total", ms(*at)).await?;
            }
            E::InteractionLeftQueue { interaction_id, .. } => {
                remove_waiting(conn, q, &interaction_id.to_string()).await?;
            }
        }
        Ok(())
    }
}

async fn set_offer(
    conn: &mut AnyConnection,
    queue: &str,
    interaction: &str,
    agent: Option<String>,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE queue_waiting SET offered_to = $3 WHERE queue_id = $1 AND interaction_id = $2")
        .bind(queue)
        .bind(interaction)
        .bind(agent)
        .execute(&mut *conn)
        .await
        .map(|_| ())
}

async fn remove_waiting(conn: &mut AnyConnection, queue: &str, interaction: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM queue_waiting WHERE queue_id = $1 AND interaction_id = $2")
        .bind(queue)
        .bind(interaction)
        .execute(&mut *conn)
        .await
        .map(|_| ())
}

/// Adds one to a total column. `column` is always one of this module's literals.
async fn bump(conn: &mut AnyConnection, queue: &str, column: &str, at: i64) -> Result<(), sqlx::Error> {
    sqlx::query(&format!(
        "UPDATE queue_status SET {column} = {column} + 1, updated_at = $2 WHERE queue_id = $1"
    ))
    .bind(queue)
    .bind(at)
    .execute(&mut *conn)
    .await
    .map(|_| ())
}
