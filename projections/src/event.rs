//! Decoding stored events back into the domain's event types.

use switchboard_domain::account::AccountEvent;
use switchboard_domain::account::key_claim::AccountKeyClaimEvent;
use switchboard_domain::agent::AgentEvent;
use switchboard_domain::catalog::{CannedCatalogEvent, DispositionCatalogEvent};
use switchboard_domain::contact::ContactEvent;
use switchboard_domain::directory::{ContactCardEvent, ContactListEvent};
use switchboard_domain::interaction::InteractionEvent;
use switchboard_domain::queue::QueueEvent;

use crate::StoredEvent;

/// A stored event's payload as the domain type of its aggregate.
#[derive(Debug, Clone, PartialEq)]
pub enum DomainEventPayload {
    /// From an Account.
    Account(AccountEvent),
    /// From an Agent.
    Agent(AgentEvent),
    /// From a Queue.
    Queue(QueueEvent),
    /// From an Interaction.
    Interaction(InteractionEvent),
    /// From a Contact.
    Contact(ContactEvent),
    /// From an account key claim.
    AccountKeyClaim(AccountKeyClaimEvent),
    /// From a contact list.
    ContactList(ContactListEvent),
    /// From a contact card.
    ContactCard(ContactCardEvent),
    /// From a disposition catalogue.
    DispositionCatalog(DispositionCatalogEvent),
    /// From a canned-answer catalogue.
    CannedCatalog(CannedCatalogEvent),
}

impl DomainEventPayload {
    /// Decodes by aggregate type. Unknown aggregate types decode to `None` so a projector
    /// built before a new aggregate existed skips it instead of stopping.
    pub fn decode(event: &StoredEvent) -> Result<Option<Self>, serde_json::Error> {
        let value: serde_json::Value = serde_json::from_str(&event.payload)?;
        Ok(Some(match event.aggregate_type.as_str() {
            "Account" => Self::Account(serde_json::from_value(value)?),
            "Agent" => Self::Agent(serde_json::from_value(value)?),
            "Queue" => Self::Queue(serde_json::from_value(value)?),
            "Interaction" => Self::Interaction(serde_json::from_value(value)?),
            "Contact" => Self::Contact(serde_json::from_value(value)?),
            "AccountKeyClaim" => Self::AccountKeyClaim(serde_json::from_value(value)?),
            "ContactList" => Self::ContactList(serde_json::from_value(value)?),
            "ContactCard" => Self::ContactCard(serde_json::from_value(value)?),
            "DispositionCatalog" => Self::DispositionCatalog(serde_json::from_value(value)?),
            "CannedCatalog" => Self::CannedCatalog(serde_json::from_value(value)?),
            _ => return Ok(None),
        }))
    }
}
