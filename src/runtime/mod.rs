//! The actor runtime: aggregate actors and their registries.

pub mod actor;
pub mod registry;

pub use actor::{CommandError, Metadata, Snapshot, Store};
pub use registry::Registry;
