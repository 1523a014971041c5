//! Deletion of interactions and erasure of contacts across every read model (ADR 0020).
//!
//! Runs last in the composite projection, in the same transaction as the other parts, so
//! whatever they wrote for a deleted interaction or an erased contact is removed before the
//! batch commits. It owns no table: it removes rows from the others' tables.
//!
//! - `InteractionDeleted`: the interaction leaves every read model (list, messages, tags,
//!   offers, queue and agent work rows, outbox, media fetches, timers, notes).
//! - `ContactErased`: the same for each of the contact's interactions, its directory cards
//!   leave the directory, and the keys sealing its personal data in the log are destroyed
//!   (`pii_keys.sealed_key = NULL`; the server already did so when it recorded the event; this
//!   covers a crash in between and other nodes). Keys created after the erasure (a new
//!   message from the same number) are not touched.
//!
//! Replaying the log gives the same tables: the erased events then open to placeholders,
//! the parts write placeholder rows, and this part removes them again. Performance facts
//! (`agent_interaction_facts`...) hold no personal data and are kept, so historical figures
//! do not change when an interaction is deleted or a contact erased.

use sqlx::{AnyConnection, Row};
use switchboard_domain::contact::ContactEvent;
use switchboard_domain::interaction::InteractionEvent;

use crate::runtime::{Projection, ms};
use crate::{DomainEventPayload, StoredEvent};

/// Read-model tables holding rows of an interaction, and the column naming it (every one is
/// created by the migrations on both backends).
const BY_INTERACTION: &[(&str, &str)] = &[
    ("interaction_list", "interaction_id"),
    ("interaction_messages", "interaction_id"),
    ("interaction_tags", "interaction_id"),
    ("interaction_offers", "interaction_id"),
    ("interaction_notes", "interaction_id"),
    ("queue_waiting", "interaction_id"),
    ("queue_offers", "interaction_id"),
    ("agent_wrap_ups", "interaction_id"),
    ("agent_load", "interaction_id"),
    ("outbox", "interaction_id"),
    ("media_fetch", "interaction_id"),
];

/// Directory tables holding rows of a card.
const BY_CARD: &[&str] = &["contact_card_tags", "contact_cards"];

/// The key subject of a directory card (the contact subject is the Contact aggregate id).
pub fn card_subject(card_id: &str) -> String {
    format!("card:{card_id}")
}

/// The projection.
pub struct Erasure;

/// Removes an interaction from every read model.
pub async fn purge_interaction(conn: &mut AnyConnection, interaction_id: &str) -> Result<(), sqlx::Error> {
    for (table, column) in BY_INTERACTION {
        sqlx::query(&format!("DELETE FROM {table} WHERE {column} = $1"))
            .bind(interaction_id)
            .execute(&mut *conn)
            .await?;
    }
    sqlx::query("DELETE FROM timers WHERE aggregate_type = 'Interaction' AND aggregate_id = $1")
        .bind(interaction_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Destroys the live keys of `subjects` created at or before `upto_ms` (epoch ms); returns
/// their ids. The server calls it when it records an erasure, this projection again when it
/// applies it.
pub async fn destroy_keys(
    conn: &mut AnyConnection,
    subjects: &[String],
    upto_ms: i64,
) -> Result<Vec<String>, sqlx::Error> {
    let mut destroyed = Vec::new();
    for subject in subjects {
        let rows = sqlx::query(
            "SELECT kid FROM pii_keys WHERE subject = $1 AND sealed_key IS NOT NULL AND created_at <= $2",
        )
        .bind(subject)
        .bind(upto_ms)
        .fetch_all(&mut *conn)
        .await?;
        for row in rows {
            let kid: String = row.try_get("kid")?;
            sqlx::query("UPDATE pii_keys SET sealed_key = NULL, erased_at = $2 WHERE kid = $1")
                .bind(&kid)
                .bind(upto_ms)
                .execute(&mut *conn)
                .await?;
            destroyed.push(kid);
        }
    }
    Ok(destroyed)
}

#[async_trait::async_trait]
impl Projection for Erasure {
    fn name(&self) -> &'static str {
        "erasure"
    }

    fn tables(&self) -> &'static [&'static str] {
        &[]
    }

    async fn apply(
        &self,
        conn: &mut AnyConnection,
        event: &StoredEvent,
        payload: &DomainEventPayload,
    ) -> Result<(), sqlx::Error> {
        match payload {
            DomainEventPayload::Interaction(InteractionEvent::InteractionDeleted { .. }) => {
                purge_interaction(conn, &event.aggregate_id).await
            }
            DomainEventPayload::Contact(ContactEvent::ContactErased { interactions, cards, at }) => {
                let mut subjects = vec![event.aggregate_id.clone()];
                subjects.extend(cards.iter().map(|c| card_subject(c)));
                destroy_keys(conn, &subjects, ms(*at)).await?;
                for interaction in interactions {
                    purge_interaction(conn, &interaction.to_string()).await?;
                }
                for card in cards {
                    for table in BY_CARD {
                        sqlx::query(&format!("DELETE FROM {table} WHERE card_id = $1"))
                            .bind(card)
                            .execute(&mut *conn)
                            .await?;
                    }
                }
                // SQLite's FTS5 index keeps a deleted row's words in its segments until they
                // are merged: merge them now so the erased words leave the file too (costs a
                // rewrite of the index; erasures are rare). PostgreSQL's dead tuples go with
                // (auto)vacuum, see ADR 0020.
                if !interactions.is_empty() && conn.backend_name().eq_ignore_ascii_case("sqlite") {
                    sqlx::query(
                        "INSERT INTO interaction_messages_fts (interaction_messages_fts) VALUES ('optimize')",
                    )
                    .execute(&mut *conn)
                    .await?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use switchboard_domain::interaction::{Closer, InteractionEvent as E};
    use switchboard_domain::routing::Target;
    use switchboard_domain::{AccountId, AgentId, InteractionId, QueueId, Tag};

    use crate::testing::{Db, agent_text, customer, customer_text, offer, t, target_set};

    async fn conversation(db: &mut Db, id: &str, agent: AgentId, q: QueueId) {
        let opened = E::InteractionOpened {
            account_id: AccountId::new(),
            customer: customer(),
            customer_name: Some("Jane".into()),
            queue_id: None,
            at: t(0),
        };
        db.interaction(id, opened).await;
        db.interaction(id, customer_text("secret", t(1))).await;
        db.interaction(
            id,
            E::TagsAdded { tags: [Tag::parse("vip").expect("tag")].into(), by: None, at: t(1) },
        )
        .await;
        db.interaction(id, target_set(Target::Queue(q), 1, None, t(1))).await;
        db.interaction(id, offer(agent, 1, Target::Queue(q), t(30))).await;
        db.interaction(id, E::OfferAccepted { agent_id: agent, attempt: 1, at: t(2) }).await;
        db.interaction(id, E::AgentAssigned { agent_id: agent, at: t(2) }).await;
        db.interaction(id, agent_text(agent, t(3))).await;
        db.interaction(id, E::InteractionClosed { by: Closer::Agent(agent), at: t(4) }).await;
    }

    /// A deleted interaction leaves every read model (the other one stays), and replaying
    /// the log gives the same tables.
    #[tokio::test]
    async fn a_deleted_interaction_leaves_every_read_model_and_a_rebuild_agrees() {
        let mut db = Db::new(crate::all()).await;
        let (agent, q) = (AgentId::new(), QueueId::new());
        let (gone, kept) = (InteractionId::new().to_string(), InteractionId::new().to_string());
        conversation(&mut db, &gone, agent, q).await;
        conversation(&mut db, &kept, agent, q).await;
        let tables =
            ["interaction_list", "interaction_messages", "interaction_tags", "interaction_offers", "outbox"];
        let count = |id: &str, table: &str| {
            format!("SELECT CAST(COUNT(*) AS TEXT) FROM {table} WHERE interaction_id = '{id}'")
        };
        for table in tables {
            if table != "interaction_offers" {
                assert_ne!(db.rows(&count(&gone, table)).await, ["0"], "{table} has rows before");
            }
        }
        db.interaction(&gone, E::InteractionDeleted { at: t(5) }).await;
        for table in tables {
            assert_eq!(db.rows(&count(&gone, table)).await, ["0"], "{table} forgot it");
        }
        assert_eq!(db.rows(&count(&kept, "interaction_list")).await, ["1"]);
        assert_eq!(db.rows(&count(&kept, "interaction_messages")).await, ["2"]);
        let all: Vec<&str> = crate::all().iter().flat_map(|p| p.tables().iter().copied()).collect();
        let live = db.dump(&all).await;
        db.rebuild().await;
        assert_eq!(db.dump(&all).await, live);
    }
}
