//! Durable timers derived from the log: offers schedule their timeout, answers cancel it.
//!
//! Owns `timers`. Because the table is derived from events, a restart loses no timer and a
//! rebuild recreates exactly the live ones. Pollers (in the server) claim due rows with
//! `FOR UPDATE SKIP LOCKED` and send the matching command; every timer command is
//! idempotent, so a timer that fires twice (crash after firing, two nodes) has one effect.

use serde::{Deserialize, Serialize};
use sqlx::AnyConnection;
use switchboard_domain::InteractionId;
use switchboard_domain::queue::QueueEvent;

use crate::runtime::Projection;
use crate::{DomainEventPayload, StoredEvent};

/// The timers projection.
pub struct Timers;

/// The kind of timer and what it carries, stored as JSON in `timers.payload`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TimerPayload {
    /// An offer lapses unless answered.
    OfferTimeout {
        /// The interaction offered.
        interaction_id: InteractionId,
        /// Which offer.
        attempt: u32,
    },
}

/// The deterministic id of an offer's timer.
pub fn offer_timer_id(queue_id: &str, interaction_id: InteractionId, attempt: u32) -> String {
    format!("offer:{queue_id}:{interaction_id}:{attempt}")
}

#[async_trait::async_trait]
impl Projection for Timers {
    fn name(&self) -> &'static str {
        "timers"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["timers"]
    }

    async fn apply(
        &self,
        conn: &mut AnyConnection,
        event: &StoredEvent,
        payload: &DomainEventPayload,
    ) -> Result<(), sqlx::Error> {
        let DomainEventPayload::Queue(e) = payload else { return Ok(()) };
        let queue = event.aggregate_id.as_str();
        use QueueEvent as E;
        match e {
            E::OfferMade { interaction_id, attempt, expires_at, .. } => {
                let body = TimerPayload::OfferTimeout { interaction_id: *interaction_id, attempt: *attempt };
                sqlx::query(
                    "INSERT INTO timers (timer_id, aggregate_type, aggregate_id, kind, fire_at, payload)
                     VALUES ($1, 'Queue', $2, 'offer_timeout', $3, $4)
                     ON CONFLICT (timer_id) DO NOTHING",
                )
                .bind(offer_timer_id(queue, *interaction_id, *attempt))
                .bind(queue)
                .bind(ceil_ms(*expires_at))
                .bind(serde_json::to_string(&body).unwrap_or_default())
                .execute(&mut *conn)
                .await?;
            }
            E::OfferAccepted { interaction_id, attempt, .. }
            | E::OfferRejected { interaction_id, attempt, .. }
            | E::OfferTimedOut { interaction_id, attempt, .. } => {
                sqlx::query("UPDATE timers SET status = 'done' WHERE timer_id = $1 AND status = 'scheduled'")
                    .bind(offer_timer_id(queue, *interaction_id, *attempt))
                    .execute(&mut *conn)
                    .await?;
            }
            E::InteractionLeftQueue { interaction_id, .. } => {
                sqlx::query(
                    "UPDATE timers SET status = 'done' WHERE timer_id LIKE $1 AND status = 'scheduled'",
                )
                .bind(format!("offer:{queue}:{interaction_id}:%"))
                .execute(&mut *conn)
                .await?;
            }
            _ => {}
        }
        Ok(())
    }
}

/// Epoch milliseconds rounded up: a timer must never be due before its deadline, or the
/// command it sends would arrive a fraction of a millisecond early and do nothing.
pub fn ceil_ms(at: chrono::DateTime<chrono::Utc>) -> i64 {
    let ms = at.timestamp_millis();
    if at.timestamp_subsec_nanos().is_multiple_of(1_000_000) { ms } else { ms + 1 }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::ceil_ms;

    #[test]
    fn timer_deadlines_round_up_to_the_millisecond() {
        let exact = Utc.timestamp_millis_opt(1_767_607_200_123).single().expect("valid");
        assert_eq!(ceil_ms(exact), 1_767_607_200_123);
        let fraction = exact + chrono::Duration::microseconds(1);
        assert_eq!(ceil_ms(fraction), 1_767_607_200_124);
    }
}
