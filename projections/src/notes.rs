//! Internal notes on interactions: the read model behind `GET /api/interactions/{id}/notes`
//! and the thread a spying supervisor is shown.
//!
//! Owns `interaction_notes`, one row per `NoteAdded`. Notes are never in `interaction_messages`
//! or the outbox, so nothing here can reach the customer. A deleted interaction's or an erased
//! contact's notes are removed by the erasure part, which runs after this one.

use sqlx::AnyConnection;
use switchboard_domain::interaction::{InteractionEvent, NoteAuthor};

use crate::runtime::{Projection, ms};
use crate::{DomainEventPayload, StoredEvent};

/// The projection.
pub struct Notes;

#[async_trait::async_trait]
impl Projection for Notes {
    fn name(&self) -> &'static str {
        "notes"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["interaction_notes"]
    }

    async fn apply(
        &self,
        conn: &mut AnyConnection,
        event: &StoredEvent,
        payload: &DomainEventPayload,
    ) -> Result<(), sqlx::Error> {
        let DomainEventPayload::Interaction(InteractionEvent::NoteAdded { note_id, author, text, at }) =
            payload
        else {
            return Ok(());
        };
        let (kind, agent_id, label) = match author {
            NoteAuthor::Agent { agent_id } => ("agent", Some(agent_id.to_string()), None),
            NoteAuthor::Supervisor { label } => ("supervisor", None, Some(label.clone())),
        };
        // A note id the client reused is stored once.
        sqlx::query(
            "INSERT INTO interaction_notes (note_id, interaction_id, author_kind, author_agent_id, author_label, text, at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (note_id) DO NOTHING",
        )
        .bind(note_id.to_string())
        .bind(event.aggregate_id.as_str())
        .bind(kind)
        .bind(agent_id)
        .bind(label)
        .bind(text.as_ref())
        .bind(ms(*at))
        .execute(&mut *conn)
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use switchboard_domain::interaction::{InteractionEvent as E, NoteAuthor};
    use switchboard_domain::{AgentId, InteractionId, MessageText, NoteId};

    use super::Notes;
    use crate::testing::{Db, t};

    #[tokio::test]
    async fn notes_are_stored_once_with_their_author() {
        let mut db = Db::new(vec![Arc::new(Notes)]).await;
        let (i, a, n) = (InteractionId::new().to_string(), AgentId::new(), NoteId::new());
        let text = MessageText::parse("call back at 5").expect("text");
        let by_agent = E::NoteAdded { note_id: n, author: NoteAuthor::Agent { agent_id: a }, text, at: t(1) };
        db.interaction(&i, by_agent.clone()).await;
        db.interaction(&i, by_agent).await;
        let text = MessageText::parse("escalate").expect("text");
        let author = NoteAuthor::Supervisor { label: "Sue".into() };
        db.interaction(&i, E::NoteAdded { note_id: NoteId::new(), author, text, at: t(2) }).await;
        let rows = db
            .rows(&format!(
                "SELECT author_kind || '|' || COALESCE(author_agent_id, '-') || '|' || COALESCE(author_label, '-')
                        || '|' || text FROM interaction_notes WHERE interaction_id = '{i}' ORDER BY at"
            ))
            .await;
        assert_eq!(rows, [format!("agent|{a}|-|call back at 5"), "supervisor|-|Sue|escalate".to_owned()]);
    }
}
