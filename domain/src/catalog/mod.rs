//! Catalogues an administrator keeps, general or per account: dispositions (up to three
//! levels) and canned answers. One aggregate per catalogue: its id is `general` or the
//! account's id.
//!
//! SKELETON: the variants below are placeholders to be replaced by the catalogue's owner.

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use crate::{Decider, DisplayName};

/// Commands on a disposition catalogue.
#[derive(Debug, Clone, PartialEq)]
pub enum DispositionCatalogCommand {
    /// Create the list.
    Create {
        /// Name.
        name: DisplayName,
        /// When.
        at: DateTime<Utc>,
    },
}

/// Events of a disposition catalogue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum DispositionCatalogEvent {
    /// The list was created.
    DispositionCatalogCreated {
        /// Name.
        name: DisplayName,
        /// When.
        at: DateTime<Utc>,
    },
}

impl DomainEvent for DispositionCatalogEvent {
    fn event_type(&self) -> String {
        match self {
            Self::DispositionCatalogCreated { .. } => "DispositionCatalogCreated",
        }
        .to_owned()
    }
    fn event_version(&self) -> String {
        "1.0".to_owned()
    }
}

/// Why a disposition-catalogue command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DispositionCatalogError {
    /// Create on a list that exists.
    #[error("the catalogue already exists")]
    AlreadyExists,
}

/// A disposition catalogue's state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DispositionCatalog {
    /// Name, once created.
    pub name: Option<DisplayName>,
}

impl DispositionCatalog {
    fn fold(&mut self, event: DispositionCatalogEvent) {
        match event {
            DispositionCatalogEvent::DispositionCatalogCreated { name, .. } => self.name = Some(name),
        }
    }
}

impl Decider for DispositionCatalog {
    fn decide(
        &self,
        command: DispositionCatalogCommand,
    ) -> Result<Vec<DispositionCatalogEvent>, DispositionCatalogError> {
        match command {
            DispositionCatalogCommand::Create { name, at } => {
                if self.name.is_some() {
                    return Err(DispositionCatalogError::AlreadyExists);
                }
                Ok(vec![DispositionCatalogEvent::DispositionCatalogCreated { name, at }])
            }
        }
    }
}

crate::impl_aggregate!(
    DispositionCatalog,
    "DispositionCatalog",
    DispositionCatalogCommand,
    DispositionCatalogEvent,
    DispositionCatalogError
);

/// Commands on a canned-answer catalogue.
#[derive(Debug, Clone, PartialEq)]
pub enum CannedCatalogCommand {
    /// Create the card.
    Create {
        /// When.
        at: DateTime<Utc>,
    },
}

/// Events of a canned-answer catalogue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CannedCatalogEvent {
    /// The card was created.
    CannedCatalogCreated {
        /// When.
        at: DateTime<Utc>,
    },
}

impl DomainEvent for CannedCatalogEvent {
    fn event_type(&self) -> String {
        match self {
            Self::CannedCatalogCreated { .. } => "CannedCatalogCreated",
        }
        .to_owned()
    }
    fn event_version(&self) -> String {
        "1.0".to_owned()
    }
}

/// Why a canned-catalogue command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CannedCatalogError {
    /// Create on a card that exists.
    #[error("the catalogue already exists")]
    AlreadyExists,
}

/// A canned-answer catalogue's state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CannedCatalog {
    /// Whether it exists.
    pub created: bool,
}

impl CannedCatalog {
    fn fold(&mut self, event: CannedCatalogEvent) {
        match event {
            CannedCatalogEvent::CannedCatalogCreated { .. } => self.created = true,
        }
    }
}

impl Decider for CannedCatalog {
    fn decide(&self, command: CannedCatalogCommand) -> Result<Vec<CannedCatalogEvent>, CannedCatalogError> {
        match command {
            CannedCatalogCommand::Create { at } => {
                if self.created {
                    return Err(CannedCatalogError::AlreadyExists);
                }
                Ok(vec![CannedCatalogEvent::CannedCatalogCreated { at }])
            }
        }
    }
}

crate::impl_aggregate!(
    CannedCatalog,
    "CannedCatalog",
    CannedCatalogCommand,
    CannedCatalogEvent,
    CannedCatalogError
);
