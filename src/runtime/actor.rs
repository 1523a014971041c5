//! One actix actor per live aggregate instance.
//!
//! The actor keeps the aggregate's state and sequence in memory and commits new events
//! straight to the event store, so a command costs one append and no reload. Commands to one
//! aggregate are serialised by `AtomicResponse` (the mailbox is not polled while a command
//! awaits the database). After any error the cached state is dropped and the next command
//! reloads it. A conflict (another node appended first) reloads and retries, a bounded
//! number of times. Idle actors stop and are replayed from the log on demand.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use cqrs_es::persist::PersistedEventStore;
use cqrs_es::{AggregateError, EventEnvelope, EventStore};
use switchboard_domain::Decider;

use crate::pii::repo::PiiRepository;

/// The event store for one aggregate type (event-store mode only: cqrs-es 0.5.0's snapshot
/// modes apply events twice), with personal fields sealed at rest.
pub type Store<A> = PersistedEventStore<PiiRepository, A>;

/// How many times a command is retried after a concurrency conflict.
pub const MAX_CONFLICT_RETRIES: usize = 3;

/// How long a read (`GetState`) trusts the cached state. Commands never need this (a stale
/// cache makes the commit conflict, which reloads), but reads would otherwise not see what
/// another node appended for as long as this actor stays busy.
pub const STATE_TTL: Duration = Duration::from_secs(5);

/// Metadata stored with every event: when, who, and which request caused it.
pub type Metadata = HashMap<String, String>;

/// Why a command did not produce committed events.
#[derive(Debug, thiserror::Error)]
pub enum CommandError<E: std::error::Error> {
    /// The aggregate refused it (a business rule).
    #[error(transparent)]
    Rejected(E),
    /// Other writers kept winning the race, even after retries.
    #[error("concurrent modification; retry")]
    Conflict,
    /// A unique key other than the sequence was violated: the provider message id is
    /// already in the log (a redelivery routed to another interaction).
    #[error("duplicate provider message id")]
    DuplicateProviderMessage,
    /// The store failed.
    #[error("event store error: {0}")]
    Store(String),
    /// The actor could not be reached.
    #[error("aggregate actor unavailable")]
    Unavailable,
}

/// Run a command against the aggregate.
pub struct Execute<A: Decider> {
    /// The command.
    pub command: A::Command,
    /// Metadata for the events.
    pub metadata: Metadata,
}

impl<A: Decider + 'static> Message for Execute<A> {
    type Result = Result<Vec<EventEnvelope<A>>, CommandError<A::Error>>;
}

/// Read the current state.
pub struct GetState<A>(std::marker::PhantomData<fn() -> A>);

impl<A> Default for GetState<A> {
    fn default() -> Self {
        Self(std::marker::PhantomData)
    }
}

/// The aggregate's state and its last sequence number.
pub struct Snapshot<A> {
    /// The folded state.
    pub state: A,
    /// Sequence of its last event (0: no events).
    pub sequence: usize,
}

impl<A: Decider + 'static> Message for GetState<A> {
    type Result = Result<Snapshot<A>, CommandError<A::Error>>;
}

/// The actor.
pub struct AggregateActor<A: Decider> {
    id: String,
    store: Arc<Store<A>>,
    cached: Option<(A, usize)>,
    /// When `cached` was last known to match the store (loaded, or committed on top of).
    fresh_at: Instant,
    last_active: Instant,
    idle_after: Duration,
    on_stop: Box<dyn Fn() + Send>,
    on_commit: Arc<dyn Fn() + Send + Sync>,
}

impl<A: Decider> AggregateActor<A> {
    /// An actor for aggregate `id`. `on_stop` lets the registry forget it; `on_commit` wakes
    /// projectors.
    pub fn new(
        id: String,
        store: Arc<Store<A>>,
        idle_after: Duration,
        on_stop: Box<dyn Fn() + Send>,
        on_commit: Arc<dyn Fn() + Send + Sync>,
    ) -> Self {
        Self {
            id,
            store,
            cached: None,
            fresh_at: Instant::now(),
            last_active: Instant::now(),
            idle_after,
            on_stop,
            on_commit,
        }
    }
}

impl<A: Decider + Unpin + 'static> Actor for AggregateActor<A> {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let check = (self.idle_after / 2).max(Duration::from_millis(50));
        ctx.run_interval(check, |act, ctx| {
            if act.last_active.elapsed() >= act.idle_after {
                ctx.stop();
            }
        });
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        (self.on_stop)();
    }
}

async fn load<A: Decider>(store: &Store<A>, id: &str) -> Result<(A, usize), String> {
    let ctx = store.load_aggregate(id).await.map_err(|e| e.to_string())?;
    Ok((ctx.aggregate, ctx.current_sequence))
}

/// Is this store error a unique violation of the provider-message index (not the sequence)?
fn is_provider_key_violation<E: std::error::Error>(err: &AggregateError<E>) -> bool {
    let text = match err {
        AggregateError::UnexpectedError(e) | AggregateError::DatabaseConnectionError(e) => e.to_string(),
        _ => return false,
    };
    text.contains("provider_key")
}

async fn execute<A: Decider + Clone>(
    store: Arc<Store<A>>,
    id: String,
    mut cached: Option<(A, usize)>,
    command: A::Command,
    metadata: Metadata,
) -> (Option<(A, usize)>, bool, Result<Vec<EventEnvelope<A>>, CommandError<A::Error>>)
where
    A::Command: Clone,
{
    // Whether the returned state is known to match the store (it was loaded, or events were
    // committed on top of it); a no-op command on a cached state proves nothing.
    let mut fresh = false;
    for _ in 0..=MAX_CONFLICT_RETRIES {
        let (state, seq) = match cached.take() {
            Some(s) => s,
            None => match load(&store, &id).await {
                Ok(s) => {
                    fresh = true;
                    s
                }
                Err(e) => return (None, false, Err(CommandError::Store(e))),
            },
        };
        let events = match state.decide(command.clone()) {
            Ok(events) => events,
            // decide is pure, so the state is still exact; it is dropped anyway to keep the
            // rule simple: after any error, the next command starts from the log.
            Err(e) => return (None, false, Err(CommandError::Rejected(e))),
        };
        if events.is_empty() {
            return (Some((state, seq)), fresh, Ok(vec![]));
        }
        let context = cqrs_es::persist::EventStoreAggregateContext {
            aggregate_id: id.clone(),
            aggregate: A::default(), // not read in event-store mode
            current_sequence: seq,
            current_snapshot: None,
        };
        match store.commit(events.clone(), context, metadata.clone()).await {
            Ok(committed) => {
                let mut state = state;
                let n = events.len();
                for event in events {
                    state.apply(event);
                }
                return (Some((state, seq + n)), true, Ok(committed));
            }
            Err(AggregateError::AggregateConflict) => {
                // Either another writer took our sequence number (reload and decide again)
                // or, on PostgreSQL where every unique violation reads as a conflict, the
                // provider-message index refused a redelivery. Reloading tells them apart:
                // if nobody appended, the sequence is unchanged and it was the index.
                match load(&store, &id).await {
                    Ok((stored, stored_seq)) if stored_seq == seq => {
                        return (
                            Some((stored, stored_seq)),
                            true,
                            Err(CommandError::DuplicateProviderMessage),
                        );
                    }
                    Ok(reloaded) => {
                        fresh = true;
                        cached = Some(reloaded);
                    }
                    Err(e) => return (None, false, Err(CommandError::Store(e))),
                }
            }
            Err(e) if is_provider_key_violation(&e) => {
                return (None, false, Err(CommandError::DuplicateProviderMessage));
            }
            Err(e) => return (None, false, Err(CommandError::Store(e.to_string()))),
        }
    }
    (None, false, Err(CommandError::Conflict))
}

impl<A> Handler<Execute<A>> for AggregateActor<A>
where
    A: Decider + Clone + Unpin + 'static,
    A::Command: Clone + Send,
{
    type Result = AtomicResponse<Self, Result<Vec<EventEnvelope<A>>, CommandError<A::Error>>>;

    fn handle(&mut self, msg: Execute<A>, _ctx: &mut Self::Context) -> Self::Result {
        self.last_active = Instant::now();
        let fut = execute(self.store.clone(), self.id.clone(), self.cached.take(), msg.command, msg.metadata);
        AtomicResponse::new(Box::pin(fut.into_actor(self).map(|(cached, fresh, result), act, _| {
            act.cached = cached;
            if fresh {
                act.fresh_at = Instant::now();
            }
            act.last_active = Instant::now();
            if matches!(&result, Ok(events) if !events.is_empty()) {
                (act.on_commit)();
            }
            result
        })))
    }
}

impl<A> Handler<GetState<A>> for AggregateActor<A>
where
    A: Decider + Clone + Unpin + 'static,
{
    type Result = AtomicResponse<Self, Result<Snapshot<A>, CommandError<A::Error>>>;

    fn handle(&mut self, _msg: GetState<A>, _ctx: &mut Self::Context) -> Self::Result {
        self.last_active = Instant::now();
        let store = self.store.clone();
        let id = self.id.clone();
        let cached = self.cached.take().filter(|_| self.fresh_at.elapsed() < STATE_TTL);
        let fut = async move {
            match cached {
                Some(s) => Ok((s, false)),
                None => load(&store, &id).await.map(|s| (s, true)),
            }
        };
        AtomicResponse::new(Box::pin(fut.into_actor(self).map(|loaded, act, ctx| match loaded {
            Ok(((state, sequence), reloaded)) => {
                if reloaded {
                    act.fresh_at = Instant::now();
                }
                if sequence == 0 {
                    // Nothing exists under this id (e.g. a webhook for an unknown account):
                    // do not keep an actor around for it.
                    ctx.stop();
                } else {
                    act.cached = Some((state.clone(), sequence));
                }
                Ok(Snapshot { state, sequence })
            }
            Err(e) => Err(CommandError::Store(e)),
        })))
    }
}
