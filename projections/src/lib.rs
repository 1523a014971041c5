//! Read models built from Switchboard's event log, and the runtime that builds them.
//!
//! - [`log`] reads the global log in order, below PostgreSQL's safe horizon.
//! - [`runtime`] runs one checkpointed projector per read model: each batch writes the read
//!   model and the checkpoint in one transaction, so a crash loses nothing and applies
//!   nothing twice; every projection can be rebuilt from position zero with the same code.
//! - One module per read model, each owning its tables: [`interaction_list`],
//!   [`agent_status`], [`queue_status`], and the work tables [`timers`], [`outbox`] and [`media_fetch`].

pub mod accounts;
pub mod agent_status;
pub mod contacts;
pub mod erasure;
pub mod event;
pub mod interaction_list;
pub mod log;
pub mod media_fetch;
pub mod notes;
pub mod outbox;
pub mod performance;
pub mod queue_status;
pub mod runtime;
#[cfg(test)]
mod testing;
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
        std::sync::Arc::new(accounts::Accounts),
        std::sync::Arc::new(contacts::Contacts),
        std::sync::Arc::new(notes::Notes),
        std::sync::Arc::new(performance::Performance),
        // Last: it removes what the parts above wrote for a deleted interaction or an erased
        // contact, in the same transaction.
        std::sync::Arc::new(erasure::Erasure),
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use switchboard_domain::account::AccountEvent;
    use switchboard_domain::agent::AgentEvent as A;
    use switchboard_domain::interaction::{Closer, InteractionEvent as E, NoteAuthor, SystemClose};
    use switchboard_domain::queue::QueueEvent;
    use switchboard_domain::routing::{ChannelRules, RoutingPlan, Strategy, Target, WithdrawReason};
    use switchboard_domain::{
        AccountId, AgentId, DisplayName, DispositionCode, InteractionId, MessageId, MessageText, NoteId,
        QueueId, Tag,
    };

    use crate::testing::{Db, agent_text, customer, customer_text, offer, t, target_set};

    /// Routing traffic touching every read model (notes and a deletion included): rebuilding
    /// from the same events gives the same rows, whatever the tables remembered between events.
    #[tokio::test]
    async fn rebuilding_every_read_model_equals_live() {
        let mut db = Db::new(super::all()).await;
        let (account, q) = (AccountId::new(), QueueId::new());
        let (a, b) = (AgentId::new(), AgentId::new());
        db.queue(
            &q.to_string(),
            QueueEvent::QueueCreated {
                name: DisplayName::parse("Sales").expect("name"),
                offer_timeout_secs: 20,
                strategy: Strategy::RingAll,
                weight: 8,
                at: t(0),
            },
        )
        .await;
        for agent in [a, b] {
            let id = agent.to_string();
            db.agent(&id, A::AgentRegistered { name: DisplayName::parse("X").expect("name"), at: t(0) })
                .await;
            db.account(&account.to_string(), AccountEvent::AgentAddedToAccount { agent_id: agent, at: t(0) })
                .await;
            db.agent(&id, A::AgentJoinedQueue { queue_id: q, at: t(1) }).await;
            db.agent(&id, A::AgentLoggedIn { at: t(2) }).await;
            db.agent(&id, A::AgentBecameReady { at: t(3) }).await;
        }
        db.agent(
            &b.to_string(),
            A::AgentDisconnected { connection_id: "c".into(), reconnect_by: t(40), at: t(10) },
        )
        .await;

        let mut ids = Vec::new();
        for n in 0..3 {
            let i = InteractionId::new().to_string();
            db.interaction(
                &i,
                E::InteractionOpened {
                    account_id: account,
                    customer: customer(),
                    customer_name: Some("Jane".into()),
                    queue_id: None,
                    at: t(n),
                },
            )
            .await;
            db.interaction(&i, customer_text("help", t(n))).await;
            db.interaction(
                &i,
                E::RoutingStarted {
                    plan: RoutingPlan::single_queue(q),
                    rules: ChannelRules { inactivity_minutes: Some(10), ..ChannelRules::default() },
                    contact_lists: BTreeSet::new(),
                    at: t(n),
                },
            )
            .await;
            db.interaction(
                &i,
                E::AutoReplySent {
                    account_id: account,
                    message_id: MessageId::new(),
                    to: customer(),
                    text: MessageText::parse("One moment").expect("text"),
                    step: 0,
                    at: t(n),
                },
            )
            .await;
            db.interaction(
                &i,
                E::TagsAdded { tags: [Tag::parse("web").expect("tag")].into(), by: None, at: t(n) },
            )
            .await;
            db.interaction(&i, target_set(Target::Queue(q), 1, Some(t(100)), t(n))).await;
            db.interaction(&i, offer(a, 1, Target::Queue(q), t(30))).await;
            db.interaction(&i, offer(b, 2, Target::Queue(q), t(30))).await;
            ids.push(i);
        }
        // One accepted and answered, one rejected by both, one closed by its plan.
        db.interaction(&ids[0], E::OfferAccepted { agent_id: a, attempt: 1, at: t(5) }).await;
        db.interaction(
            &ids[0],
            E::OfferWithdrawn { agent_id: b, attempt: 2, reason: WithdrawReason::TakenByAnother, at: t(5) },
        )
        .await;
        db.interaction(&ids[0], E::AgentAssigned { agent_id: a, at: t(5) }).await;
        db.interaction(&ids[0], agent_text(a, t(6))).await;
        for (n, author) in [NoteAuthor::Agent { agent_id: a }, NoteAuthor::Supervisor { label: "Sue".into() }]
            .into_iter()
            .enumerate()
        {
            let text = MessageText::parse(&format!("note {n}")).expect("text");
            db.interaction(&ids[0], E::NoteAdded { note_id: NoteId::new(), author, text, at: t(6) }).await;
        }
        db.interaction(&ids[1], E::OfferRejected { agent_id: a, attempt: 1, at: t(7) }).await;
        db.interaction(&ids[1], E::OfferTimedOut { agent_id: b, attempt: 2, at: t(30) }).await;
        db.interaction(
            &ids[2],
            E::InteractionClosedBySystem {
                reason: SystemClose::PlanStep { step: 0 },
                disposition: DispositionCode::parse("Spam").expect("code"),
                at: t(8),
            },
        )
        .await;
        db.interaction(&ids[0], E::InteractionClosed { by: Closer::Agent(a), at: t(9) }).await;
        db.agent(&b.to_string(), A::AgentUnreachable { connection_id: "c".into(), at: t(40) }).await;
        // A supervisor deletes the interaction closed by its plan: it leaves every read model.
        db.interaction(&ids[2], E::InteractionDeleted { at: t(50) }).await;

        let tables: Vec<&str> = super::all().iter().flat_map(|p| p.tables().iter().copied()).collect();
        let live = db.dump(&tables).await;
        assert!(live.len() > 30, "the history is not trivial: {live:#?}");
        assert_eq!(live.iter().filter(|row| row.starts_with("interaction_notes|")).count(), 2, "{live:#?}");
        // Only the performance facts stay (they name no customer; the work happened, ADR 0019).
        let facts =
            |row: &&String| row.starts_with("offer_facts|") || row.starts_with("agent_interaction_facts|");
        let left: Vec<_> = live.iter().filter(|row| row.contains(&ids[2]) && !facts(row)).collect();
        assert!(left.is_empty(), "the deleted interaction is gone: {left:#?}");
        db.rebuild().await;
        assert_eq!(db.dump(&tables).await, live);
    }
}
