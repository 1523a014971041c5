//! The contact manager: contact lists and the contact cards in them (name, phone, email,
//! tags, custom fields). Accounts save unknown numbers into their default list; the
//! whitelist and routing conditions ask which lists hold a number.
//!
//! Two aggregates, so that a list with many thousands of contacts never has to load them
//! all to change one:
//! - `ContactList`: name and description; deleting it is allowed at any time (the domain
//!   cannot see which accounts refer to it): accounts naming a deleted list behave as if it
//!   held nobody (see ADR 0013).
//! - `ContactCard`: one phone number in one list. Its id is DERIVED from the list and the
//!   phone (`card_id`), so a phone is unique within a list by construction and two
//!   concurrent creations of the same number conflict in the event store instead of making
//!   duplicates.

#[cfg(test)]
mod tests;
mod values;

pub use values::{
    ContactTags, ContactValueError, CustomFields, Email, ListDescription, MAX_CONTACT_TAGS,
    MAX_CUSTOM_FIELDS, MAX_DESCRIPTION_CHARS, MAX_FIELD_NAME_CHARS, MAX_FIELD_VALUE_CHARS,
    RESERVED_FIELD_NAMES,
};

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use crate::{ContactCardId, ContactListId, Decider, DisplayName, PhoneNumber};

/// The id of the card for `phone` in `list`: UUIDv5 of the E.164 number in the list's
/// namespace. Stable forever (stored events refer to it), so never change the derivation.
pub fn card_id(list: ContactListId, phone: &PhoneNumber) -> ContactCardId {
    ContactCardId::from_uuid(uuid::Uuid::new_v5(&list.as_uuid(), phone.as_ref().as_bytes()))
}

// ---------------------------------------------------------------------------------------
// Contact lists
// ---------------------------------------------------------------------------------------

/// Commands on a contact list.
#[derive(Debug, Clone, PartialEq)]
pub enum ContactListCommand {
    /// Create the list.
    Create {
        /// Name.
        name: DisplayName,
        /// Description.
        description: Option<ListDescription>,
        /// When.
        at: DateTime<Utc>,
    },
    /// Change name and/or description (`None`: keep; `Some(None)`: clear the description).
    Update {
        /// New name.
        name: Option<DisplayName>,
        /// New description.
        description: Option<Option<ListDescription>>,
        /// When.
        at: DateTime<Utc>,
    },
    /// Delete the list (its cards go with it from every read).
    Delete {
        /// When.
        at: DateTime<Utc>,
    },
}

/// Events of a contact list. Names and shapes are stored forever.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ContactListEvent {
    /// The list was created.
    ContactListCreated {
        /// Name.
        name: DisplayName,
        /// Description.
        #[serde(default)]
        description: Option<ListDescription>,
        /// When.
        at: DateTime<Utc>,
    },
    /// Name or description changed (the new values of both).
    ContactListUpdated {
        /// Name.
        name: DisplayName,
        /// Description.
        description: Option<ListDescription>,
        /// When.
        at: DateTime<Utc>,
    },
    /// The list was deleted.
    ContactListDeleted {
        /// When.
        at: DateTime<Utc>,
    },
}

impl DomainEvent for ContactListEvent {
    fn event_type(&self) -> String {
        match self {
            Self::ContactListCreated { .. } => "ContactListCreated",
            Self::ContactListUpdated { .. } => "ContactListUpdated",
            Self::ContactListDeleted { .. } => "ContactListDeleted",
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
    /// Create on a list that exists (or existed: ids are never reused).
    #[error("the list already exists")]
    AlreadyExists,
    /// Any other command on a list that does not exist or was deleted.
    #[error("the contact list does not exist")]
    NotFound,
}

/// A contact list's state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContactList {
    /// Name, once created.
    pub name: Option<DisplayName>,
    /// Description.
    #[serde(default)]
    pub description: Option<ListDescription>,
    /// Whether it was deleted.
    #[serde(default)]
    pub deleted: bool,
    /// When it was created.
    #[serde(default)]
    pub created_at: Option<DateTime<Utc>>,
}

impl ContactList {
    /// Whether the list exists (created and not deleted).
    pub fn exists(&self) -> bool {
        self.name.is_some() && !self.deleted
    }

    fn fold(&mut self, event: ContactListEvent) {
        match event {
            ContactListEvent::ContactListCreated { name, description, at } => {
                self.name = Some(name);
                self.description = description;
                self.created_at = Some(at);
            }
            ContactListEvent::ContactListUpdated { name, description, .. } => {
                self.name = Some(name);
                self.description = description;
            }
            ContactListEvent::ContactListDeleted { .. } => self.deleted = true,
        }
    }
}

impl Decider for ContactList {
    fn decide(&self, command: ContactListCommand) -> Result<Vec<ContactListEvent>, ContactListError> {
        use ContactListCommand as C;
        use ContactListEvent as E;
        match command {
            C::Create { name, description, at } => {
                if self.name.is_some() {
                    return Err(ContactListError::AlreadyExists);
                }
                Ok(vec![E::ContactListCreated { name, description, at }])
            }
            _ if !self.exists() => Err(ContactListError::NotFound),
            C::Update { name, description, at } => {
                let current = self.name.clone().ok_or(ContactListError::NotFound)?;
                let name = name.unwrap_or(current);
                let description = description.unwrap_or_else(|| self.description.clone());
                // Unchanged values record nothing (a retried PATCH is a no-op).
                if Some(&name) == self.name.as_ref() && description == self.description {
                    return Ok(vec![]);
                }
                Ok(vec![E::ContactListUpdated { name, description, at }])
            }
            C::Delete { at } => Ok(vec![E::ContactListDeleted { at }]),
        }
    }
}

crate::impl_aggregate!(ContactList, "ContactList", ContactListCommand, ContactListEvent, ContactListError);

// ---------------------------------------------------------------------------------------
// Contact cards
// ---------------------------------------------------------------------------------------

/// How a card came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CreatedBy {
    /// Through the API.
    Api,
    /// From a CSV import.
    Import,
    /// From an inbound message of an unknown number (saved to the account's default list).
    Auto,
}

impl CreatedBy {
    /// The name the API and the read model use.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Api => "api",
            Self::Import => "import",
            Self::Auto => "auto",
        }
    }
}

/// What a card says about the contact besides the number.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactDetails {
    /// Name.
    #[serde(default)]
    pub name: Option<DisplayName>,
    /// Email.
    #[serde(default)]
    pub email: Option<Email>,
    /// Tags.
    #[serde(default)]
    pub tags: ContactTags,
    /// Custom fields.
    #[serde(default)]
    pub fields: CustomFields,
}

/// A partial change of a card's details: `None` keeps a value; `Some(None)` clears it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContactPatch {
    /// New name.
    pub name: Option<Option<DisplayName>>,
    /// New email.
    pub email: Option<Option<Email>>,
    /// New tags (replace the old ones).
    pub tags: Option<ContactTags>,
    /// New custom fields (replace the old ones).
    pub fields: Option<CustomFields>,
}

impl ContactPatch {
    /// `details` with this patch applied.
    pub fn applied_to(&self, details: &ContactDetails) -> ContactDetails {
        ContactDetails {
            name: self.name.clone().unwrap_or_else(|| details.name.clone()),
            email: self.email.clone().unwrap_or_else(|| details.email.clone()),
            tags: self.tags.clone().unwrap_or_else(|| details.tags.clone()),
            fields: self.fields.clone().unwrap_or_else(|| details.fields.clone()),
        }
    }
}

/// Commands on a contact card.
#[derive(Debug, Clone, PartialEq)]
pub enum ContactCardCommand {
    /// Create the card (refused if it exists; a deleted card may be created again).
    Create {
        /// The list (the card's id derives from it and the phone).
        list_id: ContactListId,
        /// The number.
        phone: PhoneNumber,
        /// Details.
        details: ContactDetails,
        /// How.
        created_by: CreatedBy,
        /// When.
        at: DateTime<Utc>,
    },
    /// Change details.
    Update {
        /// What changes.
        patch: ContactPatch,
        /// When.
        at: DateTime<Utc>,
    },
    /// One CSV row: creates the card, or merges the row into it (non-empty cells overwrite,
    /// custom fields are added or overwritten, never removed; tags are replaced when the
    /// row has some).
    Import {
        /// The list.
        list_id: ContactListId,
        /// The number.
        phone: PhoneNumber,
        /// The row's values.
        row: ContactDetails,
        /// When.
        at: DateTime<Utc>,
    },
    /// Delete the card.
    Delete {
        /// When.
        at: DateTime<Utc>,
    },
}

/// Events of a contact card. Names and shapes are stored forever.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ContactCardEvent {
    /// The card was created.
    ContactCardCreated {
        /// The list.
        list_id: ContactListId,
        /// The number.
        phone: PhoneNumber,
        /// Details.
        details: ContactDetails,
        /// How.
        created_by: CreatedBy,
        /// When.
        at: DateTime<Utc>,
    },
    /// The details changed (the new values of all of them).
    ContactCardUpdated {
        /// Details.
        details: ContactDetails,
        /// When.
        at: DateTime<Utc>,
    },
    /// The card was deleted.
    ContactCardDeleted {
        /// When.
        at: DateTime<Utc>,
    },
}

impl DomainEvent for ContactCardEvent {
    fn event_type(&self) -> String {
        match self {
            Self::ContactCardCreated { .. } => "ContactCardCreated",
            Self::ContactCardUpdated { .. } => "ContactCardUpdated",
            Self::ContactCardDeleted { .. } => "ContactCardDeleted",
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
    /// Create on a card that exists: the number is already in the list.
    #[error("the number is already in this list")]
    AlreadyExists,
    /// Any other command on a card that does not exist (or was deleted).
    #[error("the contact does not exist")]
    NotFound,
    /// An import row would leave the card invalid (e.g. too many custom fields merged).
    #[error(transparent)]
    Invalid(ContactValueError),
}

/// A contact card's state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContactCard {
    /// Whether it exists (created and not deleted since).
    pub created: bool,
    /// The list.
    #[serde(default)]
    pub list_id: Option<ContactListId>,
    /// The number.
    #[serde(default)]
    pub phone: Option<PhoneNumber>,
    /// Details.
    #[serde(default)]
    pub details: ContactDetails,
    /// How it was (last) created.
    #[serde(default)]
    pub created_by: Option<CreatedBy>,
    /// When it was (last) created.
    #[serde(default)]
    pub created_at: Option<DateTime<Utc>>,
    /// When it last changed.
    #[serde(default)]
    pub updated_at: Option<DateTime<Utc>>,
}

impl ContactCard {
    fn fold(&mut self, event: ContactCardEvent) {
        match event {
            ContactCardEvent::ContactCardCreated { list_id, phone, details, created_by, at } => {
                *self = ContactCard {
                    created: true,
                    list_id: Some(list_id),
                    phone: Some(phone),
                    details,
                    created_by: Some(created_by),
                    created_at: Some(at),
                    updated_at: Some(at),
                };
            }
            ContactCardEvent::ContactCardUpdated { details, at } => {
                self.details = details;
                self.updated_at = Some(at);
            }
            ContactCardEvent::ContactCardDeleted { at } => {
                self.created = false;
                self.updated_at = Some(at);
            }
        }
    }
}

impl Decider for ContactCard {
    fn decide(&self, command: ContactCardCommand) -> Result<Vec<ContactCardEvent>, ContactCardError> {
        use ContactCardCommand as C;
        use ContactCardEvent as E;
        match command {
            C::Create { list_id, phone, details, created_by, at } => {
                if self.created {
                    return Err(ContactCardError::AlreadyExists);
                }
                Ok(vec![E::ContactCardCreated { list_id, phone, details, created_by, at }])
            }
            C::Import { list_id, phone, row, at } => {
                if !self.created {
                    return Ok(vec![E::ContactCardCreated {
                        list_id,
                        phone,
                        details: row,
                        created_by: CreatedBy::Import,
                        at,
                    }]);
                }
                let old = &self.details;
                let details = ContactDetails {
                    name: row.name.or_else(|| old.name.clone()),
                    email: row.email.or_else(|| old.email.clone()),
                    tags: if row.tags.is_empty() { old.tags.clone() } else { row.tags },
                    fields: old.fields.merged(&row.fields).map_err(ContactCardError::Invalid)?,
                };
                Ok(if &details == old { vec![] } else { vec![E::ContactCardUpdated { details, at }] })
            }
            _ if !self.created => Err(ContactCardError::NotFound),
            C::Update { patch, at } => {
                let details = patch.applied_to(&self.details);
                Ok(if details == self.details { vec![] } else { vec![E::ContactCardUpdated { details, at }] })
            }
            C::Delete { at } => Ok(vec![E::ContactCardDeleted { at }]),
        }
    }
}

crate::impl_aggregate!(ContactCard, "ContactCard", ContactCardCommand, ContactCardEvent, ContactCardError);
