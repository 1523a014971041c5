//! Finds (or starts) the actor of an aggregate instance.
//!
//! Actors are spread over a fixed set of arbiters (one thread each) by a hash of their id,
//! so one busy aggregate never delays another thread's work. A message racing an actor that
//! is stopping (passivation) finds its mailbox closed; the registry then starts a fresh actor,
//! which replays the log, and sends again.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;
use cqrs_es::EventEnvelope;
use switchboard_domain::Decider;

use super::actor::{AggregateActor, CommandError, Execute, GetState, Metadata, Snapshot, Store};

type Slots<A> = Arc<Mutex<HashMap<String, (u64, Addr<AggregateActor<A>>)>>>;

/// The registry for one aggregate type.
pub struct Registry<A: Decider + Clone + Unpin + 'static> {
    slots: Slots<A>,
    arbiters: Arc<Vec<ArbiterHandle>>,
    store: Arc<Store<A>>,
    idle_after: Duration,
    on_commit: Arc<dyn Fn() + Send + Sync>,
    generation: Arc<AtomicU64>,
}

impl<A: Decider + Clone + Unpin + 'static> Clone for Registry<A> {
    fn clone(&self) -> Self {
        Self {
            slots: self.slots.clone(),
            arbiters: self.arbiters.clone(),
            store: self.store.clone(),
            idle_after: self.idle_after,
            on_commit: self.on_commit.clone(),
            generation: self.generation.clone(),
        }
    }
}

impl<A> Registry<A>
where
    A: Decider + Clone + Unpin + 'static,
    A::Command: Clone + Send,
    A::Error: Send,
{
    /// A registry placing actors on `arbiters`.
    pub fn new(
        store: Store<A>,
        arbiters: Arc<Vec<ArbiterHandle>>,
        idle_after: Duration,
        on_commit: Arc<dyn Fn() + Send + Sync>,
    ) -> Self {
        Self {
            slots: Arc::default(),
            arbiters,
            store: Arc::new(store),
            idle_after,
            on_commit,
            generation: Arc::default(),
        }
    }

    /// How many actors are live (for metrics and passivation tests).
    pub fn live(&self) -> usize {
        self.slots.lock().map(|s| s.len()).unwrap_or(0)
    }

    fn addr(&self, id: &str) -> Addr<AggregateActor<A>> {
        let mut slots = self.slots.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((_, addr)) = slots.get(id)
            && addr.connected()
        {
            return addr.clone();
        }
        let generation = self.generation.fetch_add(1, Ordering::Relaxed);
        let mut hasher = DefaultHasher::new();
        id.hash(&mut hasher);
        let arbiter = &self.arbiters[(hasher.finish() % self.arbiters.len() as u64) as usize];
        let store = self.store.clone();
        let idle_after = self.idle_after;
        let on_commit = self.on_commit.clone();
        let key = id.to_owned();
        let weak_slots = Arc::downgrade(&self.slots);
        let actor_id = id.to_owned();
        let addr = AggregateActor::start_in_arbiter(arbiter, move |_| {
            let on_stop = Box::new(move || {
                // Forget this actor, unless a newer one already took its slot.
                if let Some(slots) = weak_slots.upgrade()
                    && let Ok(mut slots) = slots.lock()
                    && slots.get(&key).is_some_and(|(g, _)| *g == generation)
                {
                    slots.remove(&key);
                }
            });
            AggregateActor::new(actor_id, store, idle_after, on_stop, on_commit)
        });
        slots.insert(id.to_owned(), (generation, addr.clone()));
        addr
    }

    /// Drops the cached actor of `id`, so the next command or read replays it from the log.
    /// Used after an erasure: the cached state still holds the personal data in the clear,
    /// and a replay opens it to placeholders. (An actor with no address left stops.)
    pub fn evict(&self, id: &str) {
        self.forget(id);
    }

    fn forget(&self, id: &str) {
        if let Ok(mut slots) = self.slots.lock() {
            slots.remove(id);
        }
    }

    /// Runs a command on aggregate `id` and returns the committed events.
    pub async fn execute(
        &self,
        id: &str,
        command: A::Command,
        metadata: Metadata,
    ) -> Result<Vec<EventEnvelope<A>>, CommandError<A::Error>> {
        for _ in 0..3 {
            let addr = self.addr(id);
            match addr.send(Execute { command: command.clone(), metadata: metadata.clone() }).await {
                Ok(result) => return result,
                Err(MailboxError::Closed) => self.forget(id),
                Err(MailboxError::Timeout) => return Err(CommandError::Unavailable),
            }
        }
        Err(CommandError::Unavailable)
    }

    /// The current state of aggregate `id` (default state if it has no events).
    pub async fn state(&self, id: &str) -> Result<Snapshot<A>, CommandError<A::Error>> {
        for _ in 0..3 {
            match self.addr(id).send(GetState::default()).await {
                Ok(result) => return result,
                Err(MailboxError::Closed) => self.forget(id),
                Err(MailboxError::Timeout) => return Err(CommandError::Unavailable),
            }
        }
        Err(CommandError::Unavailable)
    }
}
