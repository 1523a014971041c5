//! The contact manager's read model: lists and contact cards, searchable, and which lists hold a number.
//!
//! SKELETON: filled in by its owner.

use sqlx::AnyConnection;

use crate::runtime::Projection;
use crate::{DomainEventPayload, StoredEvent};

/// The contacts projection.
pub struct Contacts;

#[async_trait::async_trait]
impl Projection for Contacts {
    fn name(&self) -> &'static str {
        "contacts"
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
