//! Disposition catalogues: trees of at most [`MAX_DEPTH`] levels (category > subcategory >
//! detail) an agent picks from when closing or disposing an interaction.
//!
//! What an interaction records is the disposition's *label*, its path joined with
//! [`LABEL_SEPARATOR`] (`Sales > Upgrade > Annual`), as a [`DispositionCode`]: past
//! interactions keep what was chosen even after the catalogue changes, and reports group by
//! text. That is why every label must fit a `DispositionCode` and why `>` is refused in names.
//!
//! The system disposition "Closed for inactivity" (what the routing engine records when it
//! closes an idle interaction) belongs to the general catalogue with a well-known id; it is
//! not stored in any stream (so it is there before the first event) and can be neither
//! renamed nor removed.

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{MAX_ENTRIES, Origin, Scope, fold_case};
use crate::interaction::CLOSED_FOR_INACTIVITY;
use crate::{Decider, DisplayName, DispositionCode, DispositionId};

/// Levels a disposition tree may have: category > subcategory > detail.
pub const MAX_DEPTH: usize = 3;

/// What joins the names of a path into the recorded label.
pub const LABEL_SEPARATOR: &str = " > ";

/// The fixed id of the system disposition "Closed for inactivity" (general catalogue).
pub fn closed_for_inactivity_id() -> DispositionId {
    DispositionId::from_uuid(Uuid::from_u128(0x5b9e_1d2a_0c1f_4e5e_9a7d_0000_0000_0001))
}

/// The system disposition as an entry of the general catalogue.
pub fn system_disposition() -> Disposition {
    Disposition {
        id: closed_for_inactivity_id(),
        parent: None,
        name: DisplayName::parse(CLOSED_FOR_INACTIVITY).expect("the constant is a valid name"),
    }
}

/// Commands on a disposition catalogue. Ids are chosen by the caller (a retried add with the
/// same id and content records nothing new).
#[derive(Debug, Clone, PartialEq)]
pub enum DispositionCatalogCommand {
    /// Add a disposition at the top (`parent: None`) or under another one.
    Add {
        /// Its new id.
        id: DispositionId,
        /// The disposition it refines, if any.
        parent: Option<DispositionId>,
        /// Its name (unique among its siblings, ignoring case).
        name: DisplayName,
        /// When.
        at: DateTime<Utc>,
    },
    /// Rename a disposition (its children's labels follow).
    Rename {
        /// Which.
        id: DispositionId,
        /// The new name.
        name: DisplayName,
        /// When.
        at: DateTime<Utc>,
    },
    /// Remove a disposition that has no children.
    Remove {
        /// Which.
        id: DispositionId,
        /// When.
        at: DateTime<Utc>,
    },
}

/// Events of a disposition catalogue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum DispositionCatalogEvent {
    /// A disposition was added.
    DispositionAdded {
        /// Its id.
        id: DispositionId,
        /// The disposition it refines, if any.
        parent: Option<DispositionId>,
        /// Its name.
        name: DisplayName,
        /// When.
        at: DateTime<Utc>,
    },
    /// A disposition was renamed.
    DispositionRenamed {
        /// Which.
        id: DispositionId,
        /// The new name.
        name: DisplayName,
        /// When.
        at: DateTime<Utc>,
    },
    /// A disposition was removed (interactions disposed with it keep their label).
    DispositionRemoved {
        /// Which.
        id: DispositionId,
        /// When.
        at: DateTime<Utc>,
    },
}

impl DomainEvent for DispositionCatalogEvent {
    fn event_type(&self) -> String {
        match self {
            Self::DispositionAdded { .. } => "DispositionAdded",
            Self::DispositionRenamed { .. } => "DispositionRenamed",
            Self::DispositionRemoved { .. } => "DispositionRemoved",
        }
        .to_owned()
    }
    fn event_version(&self) -> String {
        "1.0".to_owned()
    }
}

/// Why a disposition-catalogue command was refused. Messages name the request field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DispositionCatalogError {
    /// No disposition with that id in this catalogue.
    #[error("no such disposition in this catalogue")]
    NotFound,
    /// The id is taken by a different disposition.
    #[error("a different disposition already has this id")]
    DuplicateId,
    /// The parent is not in this catalogue.
    #[error("`parent_id`: no such disposition in this catalogue")]
    ParentNotFound,
    /// The parent is already at the deepest level.
    #[error("`parent_id`: dispositions have at most {MAX_DEPTH} levels (category > subcategory > detail)")]
    TooDeep,
    /// A sibling already has this name (ignoring case).
    #[error("`name`: a disposition at this level already has this name")]
    NameTaken,
    /// The name contains the label separator `>`.
    #[error("`name` must not contain `>` (it separates the levels of a label)")]
    NameHasSeparator,
    /// The full label (`A > B > C`) would be longer than a recorded disposition may be.
    #[error("`name`: the full label would exceed {} characters", DispositionCode::MAX_CHARS)]
    LabelTooLong,
    /// Removing a disposition that still has children.
    #[error("the disposition has children; remove them first")]
    HasChildren,
    /// The system disposition cannot be changed, removed or refined.
    #[error("\"Closed for inactivity\" is a system disposition: it cannot be renamed, removed or refined")]
    SystemDisposition,
    /// The catalogue holds [`MAX_ENTRIES`] dispositions already.
    #[error("the catalogue is full ({MAX_ENTRIES} dispositions)")]
    CatalogFull,
}

impl DispositionCatalogError {
    /// The request field the refusal is about, if any.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            Self::ParentNotFound | Self::TooDeep => Some("parent_id"),
            Self::NameTaken | Self::NameHasSeparator | Self::LabelTooLong => Some("name"),
            _ => None,
        }
    }
}

/// One disposition of a catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disposition {
    /// Its id.
    pub id: DispositionId,
    /// The disposition it refines, if any.
    pub parent: Option<DispositionId>,
    /// Its name.
    pub name: DisplayName,
}

/// A disposition with its children, as the API shows a catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DispositionNode {
    /// Its id.
    pub id: DispositionId,
    /// Its name.
    pub name: String,
    /// The full label recorded when it is chosen (`Category > Subcategory > Detail`).
    pub label: String,
    /// Which catalogue it is in.
    pub origin: Origin,
    /// Whether it is the system disposition (cannot be changed; not for agents to pick).
    pub system: bool,
    /// Its children, in the order they were added.
    pub children: Vec<DispositionNode>,
}

/// A disposition catalogue's state: its dispositions in the order they were added (the
/// system disposition is implied for the general catalogue, never stored).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DispositionCatalog {
    /// The stored dispositions.
    pub entries: Vec<Disposition>,
}

impl DispositionCatalog {
    /// A stored disposition.
    pub fn get(&self, id: DispositionId) -> Option<&Disposition> {
        self.entries.iter().find(|d| d.id == id)
    }

    /// Whether the catalogue has any disposition of its own.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn children(&self, parent: Option<DispositionId>) -> impl Iterator<Item = &Disposition> {
        self.entries.iter().filter(move |d| d.parent == parent)
    }

    /// Whether `id` has children.
    pub fn has_children(&self, id: DispositionId) -> bool {
        self.children(Some(id)).next().is_some()
    }

    /// The path from the top to `id` (`None` if unknown). Bounded by the depth rule.
    fn path(&self, id: DispositionId) -> Option<Vec<&Disposition>> {
        let mut path = Vec::with_capacity(MAX_DEPTH);
        let mut next = Some(id);
        while let Some(id) = next {
            let d = self.get(id)?;
            path.push(d);
            next = d.parent;
            if path.len() > MAX_DEPTH {
                return None; // never by the rules; guards against a cycle
            }
        }
        path.reverse();
        Some(path)
    }

    /// The level of `id` (1 for a category), 0 if unknown.
    pub fn depth(&self, id: DispositionId) -> usize {
        self.path(id).map_or(0, |p| p.len())
    }

    /// The label of `id`, with `renamed` (an id and a new name) applied on the way.
    fn label_with(&self, id: DispositionId, renamed: Option<(DispositionId, &str)>) -> Option<String> {
        let names: Vec<&str> = self
            .path(id)?
            .into_iter()
            .map(|d| match renamed {
                Some((rid, name)) if rid == d.id => name,
                _ => d.name.as_ref(),
            })
            .collect();
        Some(names.join(LABEL_SEPARATOR))
    }

    /// The label recorded when `id` is chosen (`Category > Subcategory > Detail`).
    pub fn label(&self, id: DispositionId) -> Option<String> {
        self.label_with(id, None)
    }

    /// The catalogue as a tree, the system disposition first in the general one.
    pub fn tree(&self, scope: Scope) -> Vec<DispositionNode> {
        let origin = scope.origin();
        let mut roots = Vec::new();
        if scope == Scope::General {
            let system = system_disposition();
            roots.push(DispositionNode {
                id: system.id,
                name: system.name.to_string(),
                label: system.name.to_string(),
                origin,
                system: true,
                children: vec![],
            });
        }
        roots.extend(self.subtree(None, "", origin));
        roots
    }

    fn subtree(&self, parent: Option<DispositionId>, prefix: &str, origin: Origin) -> Vec<DispositionNode> {
        self.children(parent)
            .map(|d| {
                let label = if prefix.is_empty() {
                    d.name.to_string()
                } else {
                    format!("{prefix}{LABEL_SEPARATOR}{}", d.name)
                };
                DispositionNode {
                    id: d.id,
                    name: d.name.to_string(),
                    children: self.subtree(Some(d.id), &label, origin),
                    label,
                    origin,
                    system: false,
                }
            })
            .collect()
    }

    /// Whether a sibling of `id` under `parent` is named `name` (ignoring case). At the top
    /// level the system disposition's name counts in every catalogue, so agents never see
    /// two "Closed for inactivity".
    fn sibling_named(
        &self,
        parent: Option<DispositionId>,
        name: &str,
        except: Option<DispositionId>,
    ) -> bool {
        let wanted = fold_case(name);
        if parent.is_none() && wanted == fold_case(CLOSED_FOR_INACTIVITY) {
            return true;
        }
        self.children(parent).any(|d| Some(d.id) != except && fold_case(d.name.as_ref()) == wanted)
    }

    fn fold(&mut self, event: DispositionCatalogEvent) {
        use DispositionCatalogEvent as E;
        match event {
            E::DispositionAdded { id, parent, name, .. } => {
                self.entries.push(Disposition { id, parent, name })
            }
            E::DispositionRenamed { id, name, .. } => {
                if let Some(d) = self.entries.iter_mut().find(|d| d.id == id) {
                    d.name = name;
                }
            }
            E::DispositionRemoved { id, .. } => self.entries.retain(|d| d.id != id),
        }
    }
}

fn check_name(name: &DisplayName) -> Result<(), DispositionCatalogError> {
    if name.as_ref().contains('>') {
        return Err(DispositionCatalogError::NameHasSeparator);
    }
    Ok(())
}

fn check_label(label: &str) -> Result<(), DispositionCatalogError> {
    if label.chars().count() > DispositionCode::MAX_CHARS {
        return Err(DispositionCatalogError::LabelTooLong);
    }
    Ok(())
}

impl Decider for DispositionCatalog {
    fn decide(
        &self,
        command: DispositionCatalogCommand,
    ) -> Result<Vec<DispositionCatalogEvent>, DispositionCatalogError> {
        use DispositionCatalogCommand as C;
        use DispositionCatalogError as Error;
        use DispositionCatalogEvent as E;
        let system = closed_for_inactivity_id();
        match command {
            C::Add { id, parent, name, at } => {
                if id == system || parent == Some(system) {
                    return Err(Error::SystemDisposition);
                }
                if let Some(existing) = self.get(id) {
                    // A retried add (same id, same content) records nothing new.
                    return if existing.parent == parent && existing.name == name {
                        Ok(vec![])
                    } else {
                        Err(Error::DuplicateId)
                    };
                }
                if self.entries.len() >= MAX_ENTRIES {
                    return Err(Error::CatalogFull);
                }
                check_name(&name)?;
                let prefix = match parent {
                    Some(p) => {
                        let depth = self.depth(p);
                        if depth == 0 {
                            return Err(Error::ParentNotFound);
                        }
                        if depth >= MAX_DEPTH {
                            return Err(Error::TooDeep);
                        }
                        self.label(p)
                    }
                    None => None,
                };
                if self.sibling_named(parent, name.as_ref(), None) {
                    return Err(Error::NameTaken);
                }
                let label = match prefix {
                    Some(prefix) => format!("{prefix}{LABEL_SEPARATOR}{name}"),
                    None => name.to_string(),
                };
                check_label(&label)?;
                Ok(vec![E::DispositionAdded { id, parent, name, at }])
            }
            C::Rename { id, name, at } => {
                if id == system {
                    return Err(Error::SystemDisposition);
                }
                let current = self.get(id).ok_or(Error::NotFound)?;
                if current.name == name {
                    return Ok(vec![]);
                }
                check_name(&name)?;
                if self.sibling_named(current.parent, name.as_ref(), Some(id)) {
                    return Err(Error::NameTaken);
                }
                // Every label under the renamed one changes: each must still fit.
                for d in &self.entries {
                    let under = self.path(d.id).is_some_and(|p| p.iter().any(|a| a.id == id));
                    if under && let Some(label) = self.label_with(d.id, Some((id, name.as_ref()))) {
                        check_label(&label)?;
                    }
                }
                Ok(vec![E::DispositionRenamed { id, name, at }])
            }
            C::Remove { id, at } => {
                if id == system {
                    return Err(Error::SystemDisposition);
                }
                if self.get(id).is_none() {
                    return Err(Error::NotFound);
                }
                if self.has_children(id) {
                    return Err(Error::HasChildren);
                }
                Ok(vec![E::DispositionRemoved { id, at }])
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

/// What an agent gave when closing or disposing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DispositionChoice {
    /// A disposition of the general or the account's catalogue.
    Catalogue(DispositionId),
    /// Free text (accepted only while neither catalogue has a disposition of its own).
    Free(DispositionCode),
}

/// Why an agent's disposition was refused. Every variant is about `disposition_id`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DispositionChoiceError {
    /// Not in the general catalogue nor the account's.
    #[error("`disposition_id`: no such disposition in the general or this account's catalogue")]
    Unknown,
    /// The system disposition is recorded by the system only.
    #[error("`disposition_id`: \"Closed for inactivity\" is recorded by the system only")]
    System,
    /// A category or subcategory that has more specific dispositions under it.
    #[error("`disposition_id`: choose the most specific disposition (this one has children)")]
    NotLeaf,
    /// Free text given while a catalogue exists.
    #[error("`disposition_id` is required: this account has a disposition catalogue")]
    CatalogueRequired,
}

/// Turns an agent's choice into the code the interaction records: a catalogue choice becomes
/// its label; free text is accepted only while the account has no catalogue to choose from
/// (neither its own nor the general one has a disposition besides the system one).
pub fn choose(
    general: &DispositionCatalog,
    account: &DispositionCatalog,
    choice: DispositionChoice,
) -> Result<DispositionCode, DispositionChoiceError> {
    match choice {
        DispositionChoice::Free(code) => {
            if general.is_empty() && account.is_empty() {
                Ok(code)
            } else {
                Err(DispositionChoiceError::CatalogueRequired)
            }
        }
        DispositionChoice::Catalogue(id) => {
            if id == closed_for_inactivity_id() {
                return Err(DispositionChoiceError::System);
            }
            // An account's catalogue first: ids are fresh UUIDs, so the order only matters
            // against a forged id present in both.
            let catalogue = [account, general]
                .into_iter()
                .find(|c| c.get(id).is_some())
                .ok_or(DispositionChoiceError::Unknown)?;
            if catalogue.has_children(id) {
                return Err(DispositionChoiceError::NotLeaf);
            }
            let label = catalogue.label(id).ok_or(DispositionChoiceError::Unknown)?;
            // Labels are checked to fit when added or renamed.
            DispositionCode::parse(&label).map_err(|_| DispositionChoiceError::Unknown)
        }
    }
}

/// What agents pick from: the general catalogue (without the system disposition) then the
/// account's, each entry marked with its origin.
pub fn blend_dispositions(
    general: &DispositionCatalog,
    account: &DispositionCatalog,
) -> Vec<DispositionNode> {
    let mut nodes: Vec<DispositionNode> =
        general.tree(Scope::General).into_iter().filter(|n| !n.system).collect();
    nodes.extend(account.subtree(None, "", Origin::Account));
    nodes
}
