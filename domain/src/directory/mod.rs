//! The contact manager: contact lists and the contact cards in them (name, phone, email,
//! tags, custom fields). Accounts save unknown numbers into their default list; the
//! whitelist and routing conditions ask which lists hold a number.
//!
//! SKELETON: the variants below are placeholders to be replaced by the directory's owner.

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use crate::{Decider, DisplayName};

/// Commands on a contact list.
#[derive(Debug, Clone, PartialEq)]
pub enum ContactListCommand {
    /// Create the list.
    Create {
        /// Name.
        name: DisplayName,
        /// When.
        at: DateTime<Utc>,
    },
}

/// Events of a contact list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ContactListEvent {
    /// The list was created.
    ContactListCreated {
        /// Name.
        name: DisplayName,
        /// When.
        at: DateTime<Utc>,
    },
}

impl DomainEvent for ContactListEvent {
    fn event_type(&self) -> String {
        match self {
            Self::ContactListCreated { .. } => "ContactListCreated",
        }
        .to_owned()
    }
    fn event_version(&self) -> String {
        "1.0".to_owned()
    }
}

/// Why a contact-list command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContactListError {
    /// Create on a list that exists.
    #[error("the list already exists")]
    AlreadyExists,
}

/// A contact list's state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContactList {
    /// Name, once created.
    pub name: Option<DisplayName>,
}

impl ContactList {
    fn fold(&mut self, event: ContactListEvent) {
        match event {
            ContactListEvent::ContactListCreated { name, .. } => self.name = Some(name),
        }
    }
}

impl Decider for ContactList {
    fn decide(&self, command: ContactListCommand) -> Result<Vec<ContactListEvent>, ContactListError> {
        match command {
            ContactListCommand::Create { name, at } => {
                if self.name.is_some() {
                    return Err(ContactListError::AlreadyExists);
                }
                Ok(vec![ContactListEvent::ContactListCreated { name, at }])
            }
        }
    }
}

crate::impl_aggregate!(ContactList, "ContactList", ContactListCommand, ContactListEvent, ContactListError);

/// Commands on a contact card.
#[derive(Debug, Clone, PartialEq)]
pub enum ContactCardCommand {
    /// Create the card.
    Create {
        /// When.
        at: DateTime<Utc>,
    },
}

/// Events of a contact card.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ContactCardEvent {
    /// The card was created.
    ContactCardCreated {
        /// When.
        at: DateTime<Utc>,
    },
}

impl DomainEvent for ContactCardEvent {
    fn event_type(&self) -> String {
        match self {
            Self::ContactCardCreated { .. } => "ContactCardCreated",
        }
        .to_owned()
    }
    fn event_version(&self) -> String {
        "1.0".to_owned()
    }
}

/// Why a contact-card command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContactCardError {
    /// Create on a card that exists.
    #[error("the contact already exists")]
    AlreadyExists,
}

/// A contact card's state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContactCard {
    /// Whether it exists.
    pub created: bool,
}

impl ContactCard {
    fn fold(&mut self, event: ContactCardEvent) {
        match event {
            ContactCardEvent::ContactCardCreated { .. } => self.created = true,
        }
    }
}

impl Decider for ContactCard {
    fn decide(&self, command: ContactCardCommand) -> Result<Vec<ContactCardEvent>, ContactCardError> {
        match command {
            ContactCardCommand::Create { at } => {
                if self.created {
                    return Err(ContactCardError::AlreadyExists);
                }
                Ok(vec![ContactCardEvent::ContactCardCreated { at }])
            }
        }
    }
}

crate::impl_aggregate!(ContactCard, "ContactCard", ContactCardCommand, ContactCardEvent, ContactCardError);
