//! Read models built from Switchboard's event log, and the runtime that builds them.
//!
//! - [`log`] reads the global log in order, below PostgreSQL's safe horizon.
//! - [`runtime`] runs one checkpointed projector per read model: each batch writes the read
//!   model and the checkpoint in one transaction, so a crash loses nothing and applies
//!   nothing twice; every projection can be rebuilt from position zero with the same code.
//! - One module per read model, each owning its tables: [`interaction_list`],
//!   [`agent_status`], [`queue_status`], and the work tables [`timers`], [`outbox`] and [`media_fetch`].

pub mod agent_status;
pub mod event;
pub mod interaction_list;
pub mod log;
pub mod media_fetch;
pub mod outbox;
pub mod queue_status;
pub mod runtime;
pub mod timers;

pub use event::DomainEventPayload;
pub use log::{Backend, Checkpoint, StoredEvent};
pub use runtime::{Projection, Projector, ProjectorError};

/// Every projection Switchboard runs.
pub fn all() -> Vec<std::sync::Arc<dyn Projection>> {
    vec![
        std::sync::Arc::new(interaction_list::InteractionList),
        std::sync::Arc::new(agent_status::AgentStatus),
        std::sync::Arc::new(queue_status::QueueStatus),
        std::sync::Arc::new(timers::Timers),
        std::sync::Arc::new(outbox::Outbox),
        std::sync::Arc::new(media_fetch::MediaFetch),
    ]
}

/// The name of the checkpoint shared by the projections the server runs together.
pub const READ_MODELS: &str = "read_models";

/// All projections as one: the server reads and decodes each batch of the log once and
/// applies it to every read model in one transaction with one checkpoint, instead of five
/// loops each reading the same events.
pub fn combined() -> std::sync::Arc<dyn Projection> {
    std::sync::Arc::new(runtime::Composite::new(READ_MODELS, all()))
}
