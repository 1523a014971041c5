//! The account list: every account's public settings (never its secrets) for listing and search.
//!
//! SKELETON: filled in by its owner.

use sqlx::AnyConnection;

use crate::runtime::Projection;
use crate::{DomainEventPayload, StoredEvent};

/// The account list projection.
pub struct Accounts;

#[async_trait::async_trait]
impl Projection for Accounts {
    fn name(&self) -> &'static str {
        "accounts"
    }

    fn tables(&self) -> &'static [&'static str] {
        &[]
    }

    async fn apply(
        &self,
        _conn: &mut AnyConnection,
        _event: &StoredEvent,
        _payload: &DomainEventPayload,
    ) -> Result<(), sqlx::Error> {
        Ok(())
    }
}
