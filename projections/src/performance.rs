//! The facts behind the supervisors' figures, realtime and historical alike.
//!
//! Owns `agent_interaction_facts` (one row per assignment: when it began, the agent's first
//! response after it, when and how it ended) and `offer_facts` (one row per offer and its
//! outcome). Both figures are computed by the same queries over these rows (see
//! `switchboard::services::realtime`), the realtime one for a window ending now: they come
//! from the same log through the same code, so they can never disagree.
//!
//! Definitions (ADR 0019): an assignment ends when the interaction closes in the agent's
//! hands (`closed`: one handled interaction, handling time = close − assignment) or when
//! another agent is assigned (`transferred`); the first response is the agent's first text,
//! media or template after the assignment; a missed offer is one that timed out.

use sqlx::AnyConnection;
use switchboard_domain::interaction::InteractionEvent;

use crate::runtime::{Projection, ms};
use crate::{DomainEventPayload, StoredEvent};

/// The projection.
pub struct Performance;

#[async_trait::async_trait]
impl Projection for Performance {
    fn name(&self) -> &'static str {
        "performance"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["agent_interaction_facts", "offer_facts"]
    }

    async fn apply(
        &self,
        conn: &mut AnyConnection,
        event: &StoredEvent,
        payload: &DomainEventPayload,
    ) -> Result<(), sqlx::Error> {
        let DomainEventPayload::Interaction(e) = payload else { return Ok(()) };
        let id = event.aggregate_id.as_str();
        use InteractionEvent as E;
        match e {
            E::AgentAssigned { agent_id, at } => {
                let agent = agent_id.to_string();
                // A takeover ends the previous owner's assignment; the same owner assigned
                // again (a sticky wait's queue offer they accepted) keeps theirs.
                let open: Option<(String,)> = sqlx::query_as(
                    "SELECT agent_id FROM agent_interaction_facts WHERE interaction_id = $1 AND ended_at IS NULL",
                )
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?;
                if open.as_ref().is_some_and(|(owner,)| *owner == agent) {
                    return Ok(());
                }
                sqlx::query(
                    "UPDATE agent_interaction_facts SET ended_at = $2, outcome = 'transferred'
                      WHERE interaction_id = $1 AND ended_at IS NULL",
                )
                .bind(id)
                .bind(ms(*at))
                .execute(&mut *conn)
                .await?;
                sqlx::query(
                    "INSERT INTO agent_interaction_facts (interaction_id, agent_id, assigned_at) VALUES ($1, $2, $3)
                     ON CONFLICT (interaction_id, assigned_at, agent_id) DO NOTHING",
                )
                .bind(id)
                .bind(agent)
                .bind(ms(*at))
                .execute(&mut *conn)
                .await?;
            }
            E::AgentMessageSent { agent_id, at, .. }
            | E::AgentMediaSent { agent_id, at, .. }
            | E::AgentTemplateSent { agent_id, at, .. } => {
                sqlx::query(
                    "UPDATE agent_interaction_facts SET first_response_at = $3
                      WHERE interaction_id = $1 AND agent_id = $2 AND ended_at IS NULL AND first_response_at IS NULL",
                )
                .bind(id)
                .bind(agent_id.to_string())
                .bind(ms(*at))
                .execute(&mut *conn)
                .await?;
            }
            E::InteractionClosed { at, .. } | E::InteractionClosedBySystem { at, .. } => {
                sqlx::query(
                    "UPDATE agent_interaction_facts SET ended_at = $2, outcome = 'closed'
                      WHERE interaction_id = $1 AND ended_at IS NULL",
                )
                .bind(id)
                .bind(ms(*at))
                .execute(&mut *conn)
                .await?;
            }
            E::OfferMade { agent_id, attempt, at, .. } => {
                sqlx::query(
                    "INSERT INTO offer_facts (interaction_id, agent_id, attempt, offered_at) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (interaction_id, agent_id, attempt) DO NOTHING",
                )
                .bind(id)
                .bind(agent_id.to_string())
                .bind(i64::from(*attempt))
                .bind(ms(*at))
                .execute(&mut *conn)
                .await?;
            }
            E::OfferAccepted { agent_id, attempt, at }
            | E::OfferRejected { agent_id, attempt, at }
            | E::OfferTimedOut { agent_id, attempt, at }
            | E::OfferWithdrawn { agent_id, attempt, at, .. } => {
                let outcome = match e {
                    E::OfferAccepted { .. } => "accepted",
                    E::OfferRejected { .. } => "rejected",
                    E::OfferTimedOut { .. } => "timed_out",
                    _ => "withdrawn",
                };
                sqlx::query(
                    "UPDATE offer_facts SET outcome = $4, decided_at = $5
                      WHERE interaction_id = $1 AND agent_id = $2 AND attempt = $3 AND outcome IS NULL",
                )
                .bind(id)
                .bind(agent_id.to_string())
                .bind(i64::from(*attempt))
                .bind(outcome)
                .bind(ms(*at))
                .execute(&mut *conn)
                .await?;
            }
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use switchboard_domain::interaction::{Closer, InteractionEvent as E};
    use switchboard_domain::routing::Target;
    use switchboard_domain::{AgentId, InteractionId, QueueId};

    use super::Performance;
    use crate::testing::{Db, agent_text, offer, t};

    async fn facts(db: &mut Db, i: &str) -> Vec<String> {
        db.rows(&format!(
            "SELECT agent_id || '|' || CAST(assigned_at AS TEXT) || '|' || COALESCE(CAST(first_response_at AS TEXT), '-')
                    || '|' || COALESCE(CAST(ended_at AS TEXT), '-') || '|' || COALESCE(outcome, '-')
               FROM agent_interaction_facts WHERE interaction_id = '{i}' ORDER BY assigned_at"
        ))
        .await
    }

    #[tokio::test]
    async fn an_assignment_records_first_response_transfer_and_close() {
        let mut db = Db::new(vec![Arc::new(Performance)]).await;
        let (i, a, b) = (InteractionId::new().to_string(), AgentId::new(), AgentId::new());
        let ms = |s: i64| t(s).timestamp_millis();
        db.interaction(&i, E::AgentAssigned { agent_id: a, at: t(10) }).await;
        db.interaction(&i, E::AgentAssigned { agent_id: a, at: t(11) }).await;
        db.interaction(&i, agent_text(a, t(15))).await;
        db.interaction(&i, agent_text(a, t(17))).await;
        db.interaction(&i, E::AgentAssigned { agent_id: b, at: t(20) }).await;
        db.interaction(&i, agent_text(a, t(21))).await;
        db.interaction(&i, E::InteractionClosed { by: Closer::Agent(b), at: t(50) }).await;
        assert_eq!(
            facts(&mut db, &i).await,
            [
                format!("{a}|{}|{}|{}|transferred", ms(10), ms(15), ms(20)),
                format!("{b}|{}|-|{}|closed", ms(20), ms(50)),
            ]
        );
    }

    #[tokio::test]
    async fn offers_record_their_outcome_once() {
        let mut db = Db::new(vec![Arc::new(Performance)]).await;
        let (i, a, b) = (InteractionId::new().to_string(), AgentId::new(), AgentId::new());
        let q = Target::Queue(QueueId::new());
        db.interaction(&i, offer(a, 1, q, t(30))).await;
        db.interaction(&i, offer(b, 2, q, t(30))).await;
        db.interaction(&i, E::OfferTimedOut { agent_id: a, attempt: 1, at: t(30) }).await;
        db.interaction(&i, E::OfferRejected { agent_id: b, attempt: 2, at: t(5) }).await;
        db.interaction(&i, E::OfferAccepted { agent_id: b, attempt: 2, at: t(6) }).await;
        let rows = db
            .rows(&format!(
                "SELECT agent_id || '|' || outcome || '|' || CAST(decided_at AS TEXT) FROM offer_facts
                  WHERE interaction_id = '{i}' ORDER BY attempt"
            ))
            .await;
        assert_eq!(
            rows,
            [
                format!("{a}|timed_out|{}", t(30).timestamp_millis()),
                format!("{b}|rejected|{}", t(5).timestamp_millis())
            ]
        );
    }
}
