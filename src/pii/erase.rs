//! Erasing a contact (GDPR) and deleting an interaction: the use cases behind
//! `POST /api/accounts/{id}/erasures` and `DELETE /api/interactions/{id}`.
//!
//! Erasure records `ContactErased` on the contact (no number in it), destroys the keys that
//! seal the contact's personal data in the log at once (the erasure projection does it again
//! when it applies the event: other nodes, crashes), and deletes the contact's media files
//! after the event (side effects never run inside a projection). The read models forget the
//! contact when the projector applies the event.

use std::collections::BTreeSet;

use serde::Serialize;
use sqlx::Row;
use switchboard_domain::contact::ContactCommand;
use switchboard_domain::directory::{ContactCardCommand, ContactCardError};
use switchboard_domain::interaction::{InteractionCommand, Stage};
use switchboard_domain::{AccountId, InteractionId, PhoneNumber};
use utoipa::ToSchema;

use super::Pii;
use crate::core::{Cause, Core};
use crate::runtime::CommandError;

/// Why an erasure was refused.
#[derive(Debug, thiserror::Error)]
pub enum EraseError {
    /// No such account.
    #[error("no such account")]
    AccountNotFound,
    /// An interaction of the contact is still open (close it first: erasing under a live
    /// conversation would blank an agent's screen mid-reply).
    #[error("the contact has an open interaction: close it first")]
    OpenInteraction(InteractionId),
    /// The store or database failed.
    #[error("{0}")]
    Unavailable(String),
}

fn unavailable(e: impl std::fmt::Display) -> EraseError {
    EraseError::Unavailable(e.to_string())
}

/// What an erasure removed.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize, ToSchema)]
pub struct ErasureReport {
    /// Whether anything was left to erase (a repeated request erases nothing).
    pub erased: bool,
    /// Interactions whose personal data was erased.
    pub interactions: usize,
    /// Directory cards deleted.
    pub cards: usize,
    /// Keys destroyed.
    pub keys_destroyed: u64,
    /// Media files deleted.
    pub blobs_deleted: usize,
}

/// Erases everything held about `phone` on `account_id`.
pub async fn erase_contact(
    core: &Core,
    cause: &Cause,
    correlation: &str,
    account_id: AccountId,
    phone: &PhoneNumber,
) -> Result<ErasureReport, EraseError> {
    let account = core.accounts.state(&account_id.to_string()).await.map_err(unavailable)?.state;
    if !account.created {
        return Err(EraseError::AccountNotFound);
    }
    let subject =
        core.pii.contact_subject(&account_id.to_string(), phone.as_ref()).await.map_err(unavailable)?;
    let contact = core.contacts.state(&subject).await.map_err(unavailable)?.state;
    for id in &contact.history {
        let interaction = core.interactions.state(&id.to_string()).await.map_err(unavailable)?.state;
        if matches!(interaction.stage, Stage::Waiting | Stage::Assigned) {
            return Err(EraseError::OpenInteraction(*id));
        }
    }
    let cards: Vec<String> =
        sqlx::query("SELECT card_id FROM contact_cards WHERE phone = $1 ORDER BY card_id")
            .bind(phone.as_ref())
            .fetch_all(&core.db.any)
            .await
            .map_err(unavailable)?
            .iter()
            .map(|row| row.try_get("card_id"))
            .collect::<Result<_, _>>()
            .map_err(unavailable)?;
    let ids: Vec<String> = contact.history.iter().map(ToString::to_string).collect();
    let blobs = media_of(core, &ids).await?;
    let metadata = core.metadata(cause, correlation);
    for card in &cards {
        // Deleted first so the card cannot be edited back between the erasure and its key's
        // destruction; a card deleted meanwhile is fine.
        let delete = ContactCardCommand::Delete { at: core.clock.now() };
        match core.contact_cards.execute(card, delete, metadata.clone()).await {
            Ok(_) | Err(CommandError::Rejected(ContactCardError::NotFound)) => {}
            Err(e) => return Err(unavailable(e)),
        }
    }
    let at = core.clock.now();
    let events = core
        .contacts
        .execute(&subject, ContactCommand::Erase { cards: cards.clone(), at }, metadata)
        .await
        .map_err(unavailable)?;
    if events.is_empty() {
        return Ok(ErasureReport::default());
    }
    let mut subjects = vec![subject];
    subjects.extend(cards.iter().map(|c| Pii::card_subject(c)));
    let keys_destroyed = core.pii.destroy(&subjects, at.timestamp_millis()).await.map_err(unavailable)?;
    // Cached aggregates still hold the personal data in the clear: replay them from the log.
    for id in &ids {
        core.interactions.evict(id);
    }
    for card in &cards {
        core.contact_cards.evict(card);
    }
    let blobs_deleted = delete_blobs(core, &blobs, &ids).await;
    Ok(ErasureReport {
        erased: true,
        interactions: ids.len(),
        cards: cards.len(),
        keys_destroyed,
        blobs_deleted,
    })
}

/// Deletes a closed interaction: it leaves every read model (its events stay, sealed).
pub async fn delete_interaction(
    core: &Core,
    cause: &Cause,
    correlation: &str,
    interaction_id: InteractionId,
) -> Result<(), CommandError<switchboard_domain::interaction::InteractionError>> {
    let id = interaction_id.to_string();
    let blobs =
        media_of(core, std::slice::from_ref(&id)).await.map_err(|e| CommandError::Store(e.to_string()))?;
    let command = InteractionCommand::Delete { at: core.clock.now() };
    core.interactions.execute(&id, command, core.metadata(cause, correlation)).await?;
    delete_blobs(core, &blobs, std::slice::from_ref(&id)).await;
    Ok(())
}

/// The media blobs the read model lists for these interactions.
async fn media_of(core: &Core, interactions: &[String]) -> Result<BTreeSet<String>, EraseError> {
    let mut out = BTreeSet::new();
    for id in interactions {
        let rows = sqlx::query(
            "SELECT DISTINCT media_sha256 FROM interaction_messages
              WHERE interaction_id = $1 AND media_sha256 IS NOT NULL",
        )
        .bind(id)
        .fetch_all(&core.db.any)
        .await
        .map_err(unavailable)?;
        for row in rows {
            out.insert(row.try_get::<String, _>("media_sha256").map_err(unavailable)?);
        }
    }
    Ok(out)
}

/// Deletes blobs no other interaction refers to; returns how many files went. Each deletion
/// is first recorded in `blob_deletions` and the row removed once the file is gone, so a
/// failure leaves a trace to retry from.
async fn delete_blobs(core: &Core, blobs: &BTreeSet<String>, erased: &[String]) -> usize {
    let mut deleted = 0;
    for sha in blobs {
        let others: Result<i64, sqlx::Error> = async {
            let rows = sqlx::query("SELECT interaction_id FROM interaction_messages WHERE media_sha256 = $1")
                .bind(sha)
                .fetch_all(&core.db.any)
                .await?;
            let mut n = 0;
            for row in rows {
                let id: String = row.try_get("interaction_id")?;
                if !erased.contains(&id) {
                    n += 1;
                }
            }
            Ok(n)
        }
        .await;
        match others {
            Ok(0) => {}
            Ok(_) => continue, // shared with another interaction: the bytes stay
            Err(e) => {
                tracing::warn!(error = %e, "checking media references failed; blob kept");
                continue;
            }
        }
        let recorded = sqlx::query(
            "INSERT INTO blob_deletions (sha256, requested_at) VALUES ($1, $2) ON CONFLICT (sha256) DO NOTHING",
        )
        .bind(sha)
        .bind(core.clock.now_ms())
        .execute(&core.db.any)
        .await;
        if let Err(e) = recorded {
            tracing::warn!(error = %e, "recording a blob deletion failed");
            continue;
        }
        match core.blobs.delete(sha).await {
            Ok(gone) => {
                deleted += usize::from(gone);
                let _ = sqlx::query("DELETE FROM blob_deletions WHERE sha256 = $1")
                    .bind(sha)
                    .execute(&core.db.any)
                    .await;
            }
            Err(e) => {
                tracing::warn!(error = %e, sha256 = %sha, "deleting a media blob failed; left in blob_deletions")
            }
        }
    }
    deleted
}

/// Retries the blob deletions an erasure or a deletion could not finish (start-up): a blob
/// still referenced by a listed interaction is kept. Returns how many files went.
pub async fn retry_blob_deletions(core: &Core) -> Result<usize, sqlx::Error> {
    let pending: BTreeSet<String> = sqlx::query("SELECT sha256 FROM blob_deletions")
        .fetch_all(&core.db.any)
        .await?
        .iter()
        .map(|row| row.try_get("sha256"))
        .collect::<Result<_, _>>()?;
    let mut deleted = 0;
    for sha in pending {
        let referenced: i64 =
            sqlx::query("SELECT COUNT(*) AS n FROM interaction_messages WHERE media_sha256 = $1")
                .bind(&sha)
                .fetch_one(&core.db.any)
                .await?
                .try_get("n")?;
        if referenced == 0 {
            match core.blobs.delete(&sha).await {
                Ok(gone) => deleted += usize::from(gone),
                Err(e) => {
                    tracing::warn!(error = %e, sha256 = %sha, "deleting a media blob failed again");
                    continue;
                }
            }
        }
        sqlx::query("DELETE FROM blob_deletions WHERE sha256 = $1").bind(&sha).execute(&core.db.any).await?;
    }
    Ok(deleted)
}
