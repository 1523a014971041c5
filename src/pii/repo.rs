//! The event repository the aggregate actors use: the database's own repository
//! (`crate::db::EventRepository`, left untouched) wrapped so that personal fields are sealed
//! on the way in and opened on the way out.
//!
//! Sealing happens before the append, so whatever the append does (the hash chain hashes the
//! stored text) only ever sees ciphertext. Loading opens with the subject's key, or yields
//! placeholders once it is destroyed, so erased aggregates still replay.

use std::sync::Arc;

use cqrs_es::Aggregate;
use cqrs_es::persist::{
    PersistedEventRepository, PersistenceError, ReplayStream, SerializedEvent, SerializedSnapshot,
};
use serde_json::Value;

use super::{Pii, PiiError};
use crate::db::EventRepository;

/// `EventRepository` with personal data sealed at rest.
#[derive(Clone)]
pub struct PiiRepository {
    inner: EventRepository,
    pii: Arc<Pii>,
}

impl PiiRepository {
    /// Wraps `inner`.
    pub fn new(inner: EventRepository, pii: Arc<Pii>) -> Self {
        Self { inner, pii }
    }

    async fn open(&self, mut events: Vec<SerializedEvent>) -> Result<Vec<SerializedEvent>, PersistenceError> {
        for event in &mut events {
            self.pii.open_payload(&mut event.payload).await.map_err(store_error)?;
        }
        Ok(events)
    }
}

fn store_error(e: PiiError) -> PersistenceError {
    match e {
        PiiError::Database(e) => PersistenceError::ConnectionError(Box::new(e)),
        other => PersistenceError::UnknownError(Box::new(other)),
    }
}

impl PersistedEventRepository for PiiRepository {
    async fn get_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        let events = self.inner.get_events::<A>(aggregate_id).await?;
        self.open(events).await
    }

    async fn get_last_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
        last_sequence: usize,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        let events = self.inner.get_last_events::<A>(aggregate_id, last_sequence).await?;
        self.open(events).await
    }

    async fn get_snapshot<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Option<SerializedSnapshot>, PersistenceError> {
        // Event-store mode: no snapshots are written (they would hold plaintext state).
        self.inner.get_snapshot::<A>(aggregate_id).await
    }

    async fn persist<A: Aggregate>(
        &self,
        events: &[SerializedEvent],
        snapshot_update: Option<(String, Value, usize)>,
    ) -> Result<(), PersistenceError> {
        let mut sealed = events.to_vec();
        for event in &mut sealed {
            self.pii
                .seal_payload(A::TYPE, &event.aggregate_id, &event.event_type, &mut event.payload)
                .await
                .map_err(store_error)?;
        }
        self.inner.persist::<A>(&sealed, snapshot_update).await
    }

    /// Replay streams are not used by Switchboard (projections read the log through
    /// `switchboard_projections::log`); they pass through unopened.
    async fn stream_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<ReplayStream, PersistenceError> {
        self.inner.stream_events::<A>(aggregate_id).await
    }

    async fn stream_all_events<A: Aggregate>(&self) -> Result<ReplayStream, PersistenceError> {
        self.inner.stream_all_events::<A>().await
    }
}
