//! Canned answers: titled texts an agent drops into a conversation, with placeholders
//! (`{{contact.name}}`, `{{agent.name}}`, …) filled from the interaction.
//!
//! The text is a [`Template`] parsed when it is saved, so a catalogue only ever holds answers
//! that render; rendering itself cannot fail (a missing value renders empty).

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use super::{MAX_ENTRIES, Origin, fold_case};
use crate::notify::{Template, TemplateError};
use crate::{CannedAnswerId, Decider, DisplayName, MessageText};

/// Why a canned answer's text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CannedTextError {
    /// Empty, or longer than a WhatsApp text may be.
    #[error("`text` must be 1 to {max} characters")]
    Length {
        /// The limit.
        max: usize,
    },
    /// The placeholders do not parse.
    #[error("`text`: {0}")]
    Placeholders(TemplateError),
}

/// A canned answer's text: 1 to 4096 characters (WhatsApp's limit) whose placeholders parse.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CannedText {
    template: Template,
}

impl CannedText {
    /// Parses the text and its placeholders.
    pub fn parse(s: &str) -> Result<Self, CannedTextError> {
        MessageText::parse(s).map_err(|_| CannedTextError::Length { max: MessageText::MAX_CHARS })?;
        let template = Template::parse(s).map_err(CannedTextError::Placeholders)?;
        Ok(Self { template })
    }

    /// The text as saved, placeholders unfilled.
    pub fn source(&self) -> &str {
        self.template.source()
    }

    /// The text with placeholders filled from `context` (missing values render empty).
    pub fn render(&self, context: &serde_json::Value) -> String {
        self.template.render(context)
    }
}

impl TryFrom<String> for CannedText {
    type Error = CannedTextError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<CannedText> for String {
    fn from(t: CannedText) -> Self {
        t.template.source().to_owned()
    }
}

/// Commands on a canned-answer catalogue. Ids are chosen by the caller.
#[derive(Debug, Clone, PartialEq)]
pub enum CannedCatalogCommand {
    /// Add an answer.
    Add {
        /// Its new id.
        id: CannedAnswerId,
        /// Its title (unique in the catalogue, ignoring case).
        title: DisplayName,
        /// Its text.
        text: CannedText,
        /// When.
        at: DateTime<Utc>,
    },
    /// Change an answer's title, text or both.
    Edit {
        /// Which.
        id: CannedAnswerId,
        /// The new title, if it changes.
        title: Option<DisplayName>,
        /// The new text, if it changes.
        text: Option<CannedText>,
        /// When.
        at: DateTime<Utc>,
    },
    /// Remove an answer.
    Remove {
        /// Which.
        id: CannedAnswerId,
        /// When.
        at: DateTime<Utc>,
    },
}

/// Events of a canned-answer catalogue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CannedCatalogEvent {
    /// An answer was added.
    CannedAnswerAdded {
        /// Its id.
        id: CannedAnswerId,
        /// Its title.
        title: DisplayName,
        /// Its text.
        text: CannedText,
        /// When.
        at: DateTime<Utc>,
    },
    /// An answer was edited: its title and text as they now are.
    CannedAnswerEdited {
        /// Which.
        id: CannedAnswerId,
        /// The title now.
        title: DisplayName,
        /// The text now.
        text: CannedText,
        /// When.
        at: DateTime<Utc>,
    },
    /// An answer was removed.
    CannedAnswerRemoved {
        /// Which.
        id: CannedAnswerId,
        /// When.
        at: DateTime<Utc>,
    },
}

impl DomainEvent for CannedCatalogEvent {
    fn event_type(&self) -> String {
        match self {
            Self::CannedAnswerAdded { .. } => "CannedAnswerAdded",
            Self::CannedAnswerEdited { .. } => "CannedAnswerEdited",
            Self::CannedAnswerRemoved { .. } => "CannedAnswerRemoved",
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
    /// No answer with that id in this catalogue.
    #[error("no such canned answer in this catalogue")]
    NotFound,
    /// The id is taken by a different answer.
    #[error("a different canned answer already has this id")]
    DuplicateId,
    /// Another answer of the catalogue has this title (ignoring case).
    #[error("`title`: another canned answer of this catalogue has this title")]
    TitleTaken,
    /// The catalogue holds [`MAX_ENTRIES`] answers already.
    #[error("the catalogue is full ({MAX_ENTRIES} canned answers)")]
    CatalogFull,
}

impl CannedCatalogError {
    /// The request field the refusal is about, if any.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            Self::TitleTaken => Some("title"),
            _ => None,
        }
    }
}

/// One canned answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CannedAnswer {
    /// Its id.
    pub id: CannedAnswerId,
    /// Its title.
    pub title: DisplayName,
    /// Its text.
    pub text: CannedText,
}

/// A canned-answer catalogue's state: its answers in the order they were added.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CannedCatalog {
    /// The answers.
    pub entries: Vec<CannedAnswer>,
}

impl CannedCatalog {
    /// An answer.
    pub fn get(&self, id: CannedAnswerId) -> Option<&CannedAnswer> {
        self.entries.iter().find(|a| a.id == id)
    }

    fn title_taken(&self, title: &DisplayName, except: Option<CannedAnswerId>) -> bool {
        let wanted = fold_case(title.as_ref());
        self.entries.iter().any(|a| Some(a.id) != except && fold_case(a.title.as_ref()) == wanted)
    }

    fn fold(&mut self, event: CannedCatalogEvent) {
        use CannedCatalogEvent as E;
        match event {
            E::CannedAnswerAdded { id, title, text, .. } => {
                self.entries.push(CannedAnswer { id, title, text })
            }
            E::CannedAnswerEdited { id, title, text, .. } => {
                if let Some(a) = self.entries.iter_mut().find(|a| a.id == id) {
                    a.title = title;
                    a.text = text;
                }
            }
            E::CannedAnswerRemoved { id, .. } => self.entries.retain(|a| a.id != id),
        }
    }
}

impl Decider for CannedCatalog {
    fn decide(&self, command: CannedCatalogCommand) -> Result<Vec<CannedCatalogEvent>, CannedCatalogError> {
        use CannedCatalogCommand as C;
        use CannedCatalogError as Error;
        use CannedCatalogEvent as E;
        match command {
            C::Add { id, title, text, at } => {
                if let Some(existing) = self.get(id) {
                    // A retried add (same id, same content) records nothing new.
                    return if existing.title == title && existing.text == text {
                        Ok(vec![])
                    } else {
                        Err(Error::DuplicateId)
                    };
                }
                if self.entries.len() >= MAX_ENTRIES {
                    return Err(Error::CatalogFull);
                }
                if self.title_taken(&title, None) {
                    return Err(Error::TitleTaken);
                }
                Ok(vec![E::CannedAnswerAdded { id, title, text, at }])
            }
            C::Edit { id, title, text, at } => {
                let current = self.get(id).ok_or(Error::NotFound)?;
                let title = title.unwrap_or_else(|| current.title.clone());
                let text = text.unwrap_or_else(|| current.text.clone());
                if title == current.title && text == current.text {
                    return Ok(vec![]);
                }
                if self.title_taken(&title, Some(id)) {
                    return Err(Error::TitleTaken);
                }
                Ok(vec![E::CannedAnswerEdited { id, title, text, at }])
            }
            C::Remove { id, at } => {
                if self.get(id).is_none() {
                    return Err(Error::NotFound);
                }
                Ok(vec![E::CannedAnswerRemoved { id, at }])
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

/// A canned answer as an agent sees it: origin marked, placeholders filled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlendedAnswer {
    /// Its id.
    pub id: CannedAnswerId,
    /// Which catalogue it comes from.
    pub origin: Origin,
    /// Its title.
    pub title: String,
    /// The text with the interaction's values filled in: what the agent sends.
    pub text: String,
    /// The text as saved, placeholders unfilled.
    pub source: String,
}

/// The general and the account's answers in one list, sorted by title (ignoring case; the
/// account's first on a tie), keeping those whose title or text (as saved or as filled)
/// contains `query`, ignoring case. A blank query keeps everything.
pub fn blend_answers(
    general: &CannedCatalog,
    account: &CannedCatalog,
    query: Option<&str>,
    context: &serde_json::Value,
) -> Vec<BlendedAnswer> {
    let query = query.map(str::trim).filter(|q| !q.is_empty()).map(fold_case);
    let mut answers: Vec<BlendedAnswer> = [(Origin::General, general), (Origin::Account, account)]
        .into_iter()
        .flat_map(|(origin, catalogue)| {
            catalogue.entries.iter().map(move |a| BlendedAnswer {
                id: a.id,
                origin,
                title: a.title.to_string(),
                text: a.text.render(context),
                source: a.text.source().to_owned(),
            })
        })
        .filter(|a| {
            query.as_ref().is_none_or(|q| {
                [&a.title, &a.text, &a.source].into_iter().any(|field| fold_case(field).contains(q.as_str()))
            })
        })
        .collect();
    answers.sort_by(|a, b| fold_case(&a.title).cmp(&fold_case(&b.title)).then(a.origin.cmp(&b.origin)));
    answers
}
