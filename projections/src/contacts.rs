//! The contact manager's read model: lists and contact cards, searchable by text, tag and
//! list, and which lists hold a number (the indexed lookup ingest makes when a message opens
//! a new interaction).
//!
//! Owns `contact_lists`, `contact_cards` and `contact_card_tags`. Deleting a list deletes
//! its cards' rows, and a card event for a list that is gone writes nothing, so a number is
//! never "in" a deleted list (whatever order the two aggregates' events interleave in).

use sqlx::AnyConnection;
use switchboard_domain::directory::{ContactCardEvent, ContactDetails, ContactListEvent};

use crate::runtime::{Projection, ms};
use crate::{DomainEventPayload, StoredEvent};

/// The contacts projection.
pub struct Contacts;

#[async_trait::async_trait]
impl Projection for Contacts {
    fn name(&self) -> &'static str {
        "contacts"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["contact_lists", "contact_cards", "contact_card_tags"]
    }

    async fn apply(
        &self,
        conn: &mut AnyConnection,
        event: &StoredEvent,
        payload: &DomainEventPayload,
    ) -> Result<(), sqlx::Error> {
        let id = event.aggregate_id.as_str();
        match payload {
            DomainEventPayload::ContactList(e) => apply_list(conn, id, e).await,
            DomainEventPayload::ContactCard(e) => apply_card(conn, id, e).await,
            _ => Ok(()),
        }
    }
}

async fn apply_list(conn: &mut AnyConnection, id: &str, e: &ContactListEvent) -> Result<(), sqlx::Error> {
    match e {
        ContactListEvent::ContactListCreated { name, description, at } => {
            sqlx::query(
                "INSERT INTO contact_lists (list_id, name, description, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $4)
                 ON CONFLICT (list_id) DO NOTHING",
            )
            .bind(id)
            .bind(name.as_ref())
            .bind(description.as_ref().map(|d| d.as_ref().to_owned()))
            .bind(ms(*at))
            .execute(&mut *conn)
            .await?;
        }
        ContactListEvent::ContactListUpdated { name, description, at } => {
            sqlx::query(
                "UPDATE contact_lists SET name = $2, description = $3, updated_at = $4 WHERE list_id = $1",
            )
            .bind(id)
            .bind(name.as_ref())
            .bind(description.as_ref().map(|d| d.as_ref().to_owned()))
            .bind(ms(*at))
            .execute(&mut *conn)
            .await?;
        }
        ContactListEvent::ContactListDeleted { .. } => {
            sqlx::query(
                "DELETE FROM contact_card_tags
                  WHERE card_id IN (SELECT card_id FROM contact_cards WHERE list_id = $1)",
            )
            .bind(id)
            .execute(&mut *conn)
            .await?;
            sqlx::query("DELETE FROM contact_cards WHERE list_id = $1").bind(id).execute(&mut *conn).await?;
            sqlx::query("DELETE FROM contact_lists WHERE list_id = $1").bind(id).execute(&mut *conn).await?;
        }
    }
    Ok(())
}

/// The lower-cased text the "contains" search matches.
fn search_text(phone: &str, details: &ContactDetails) -> String {
    let name = details.name.as_ref().map(|n| n.as_ref()).unwrap_or_default();
    let email = details.email.as_ref().map(|e| e.as_ref()).unwrap_or_default();
    format!("{name}\n{phone}\n{email}").to_lowercase()
}

async fn write_tags(conn: &mut AnyConnection, id: &str, details: &ContactDetails) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM contact_card_tags WHERE card_id = $1").bind(id).execute(&mut *conn).await?;
    for tag in details.tags.as_set() {
        sqlx::query("INSERT INTO contact_card_tags (card_id, tag) VALUES ($1, $2)")
            .bind(id)
            .bind(tag.as_ref())
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

fn tags_json(details: &ContactDetails) -> String {
    serde_json::to_string(details.tags.as_set()).unwrap_or_else(|_| "[]".into())
}

fn fields_json(details: &ContactDetails) -> String {
    serde_json::to_string(details.fields.as_map()).unwrap_or_else(|_| "{}".into())
}

async fn apply_card(conn: &mut AnyConnection, id: &str, e: &ContactCardEvent) -> Result<(), sqlx::Error> {
    match e {
        ContactCardEvent::ContactCardCreated { list_id, phone, details, created_by, at } => {
            // Only into a list that still exists (see the module header).
            let written = sqlx::query(
                "INSERT INTO contact_cards
                   (card_id, list_id, phone, name, email, tags, fields, created_by, search, created_at, updated_at)
                 SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10
                  WHERE EXISTS (SELECT 1 FROM contact_lists WHERE list_id = $2)
                 ON CONFLICT (card_id) DO UPDATE SET
                   name = excluded.name, email = excluded.email, tags = excluded.tags,
                   fields = excluded.fields, created_by = excluded.created_by, search = excluded.search,
                   created_at = excluded.created_at, updated_at = excluded.updated_at",
            )
            .bind(id)
            .bind(list_id.to_string())
            .bind(phone.as_ref())
            .bind(details.name.as_ref().map(|n| n.as_ref().to_owned()))
            .bind(details.email.as_ref().map(|e| e.as_ref().to_owned()))
            .bind(tags_json(details))
            .bind(fields_json(details))
            .bind(created_by.as_str())
            .bind(search_text(phone.as_ref(), details))
            .bind(ms(*at))
            .execute(&mut *conn)
            .await?
            .rows_affected();
            if written > 0 {
                write_tags(conn, id, details).await?;
            }
        }
        ContactCardEvent::ContactCardUpdated { details, at } => {
            let phone: Option<(String,)> =
                sqlx::query_as("SELECT phone FROM contact_cards WHERE card_id = $1")
                    .bind(id)
                    .fetch_optional(&mut *conn)
                    .await?;
            let Some((phone,)) = phone else { return Ok(()) };
            sqlx::query(
                "UPDATE contact_cards SET name = $2, email = $3, tags = $4, fields = $5, search = $6, updated_at = $7
                  WHERE card_id = $1",
            )
            .bind(id)
            .bind(details.name.as_ref().map(|n| n.as_ref().to_owned()))
            .bind(details.email.as_ref().map(|e| e.as_ref().to_owned()))
            .bind(tags_json(details))
            .bind(fields_json(details))
            .bind(search_text(&phone, details))
            .bind(ms(*at))
            .execute(&mut *conn)
            .await?;
            write_tags(conn, id, details).await?;
        }
        ContactCardEvent::ContactCardDeleted { .. } => {
            sqlx::query("DELETE FROM contact_card_tags WHERE card_id = $1")
                .bind(id)
                .execute(&mut *conn)
                .await?;
            sqlx::query("DELETE FROM contact_cards WHERE card_id = $1").bind(id).execute(&mut *conn).await?;
        }
    }
    Ok(())
}
