//! Catalogues an administrator keeps, general or per account: dispositions (up to three
//! levels, category > subcategory > detail) and canned answers.
//!
//! One aggregate per catalogue and kind: its id is `general` or the account's id
//! ([`Scope::aggregate_id`]). Keeping each catalogue in one aggregate is what makes its rules
//! (sibling names unique, depth, children) checkable in one pure `decide`: catalogues are
//! small (bounded by [`MAX_ENTRIES`]) and edited rarely, so one stream per catalogue never
//! becomes a hot spot. Agents see the general catalogue blended with their account's, each
//! entry marked with its [`Origin`].

mod canned;
mod dispositions;
#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

use crate::AccountId;

pub use canned::{
    BlendedAnswer, CannedAnswer, CannedCatalog, CannedCatalogCommand, CannedCatalogError, CannedCatalogEvent,
    CannedText, CannedTextError, blend_answers,
};
pub use dispositions::{
    Disposition, DispositionCatalog, DispositionCatalogCommand, DispositionCatalogError,
    DispositionCatalogEvent, DispositionChoice, DispositionChoiceError, DispositionNode, LABEL_SEPARATOR,
    MAX_DEPTH, blend_dispositions, choose, closed_for_inactivity_id, system_disposition,
};

/// The most entries one catalogue holds: enough for any real wrap-up tree or answer book,
/// and a bound on what one command has to check and one agent list has to carry.
pub const MAX_ENTRIES: usize = 1000;

/// Which catalogue: the general one (every account) or one account's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "scope", content = "account_id", rename_all = "snake_case")]
pub enum Scope {
    /// Shared by every account.
    General,
    /// One account's own.
    Account(AccountId),
}

impl Scope {
    /// The aggregate id of this catalogue (`general` or the account id).
    pub fn aggregate_id(&self) -> String {
        match self {
            Scope::General => GENERAL.to_owned(),
            Scope::Account(account_id) => account_id.to_string(),
        }
    }

    /// Where an entry of this catalogue comes from, as agents see it.
    pub fn origin(&self) -> Origin {
        match self {
            Scope::General => Origin::General,
            Scope::Account(_) => Origin::Account,
        }
    }
}

/// The aggregate id of the general catalogues.
pub const GENERAL: &str = "general";

/// Where an entry an agent sees comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// The interaction's account's own catalogue.
    Account,
    /// The general catalogue.
    General,
}

/// Case-insensitive comparison key for names (sibling names and titles are unique ignoring
/// case: "Sale" and "sale" would read the same in a report).
pub(crate) fn fold_case(s: &str) -> String {
    s.to_lowercase()
}
