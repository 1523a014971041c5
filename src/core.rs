//! The application core shared by the HTTP layer and the background workers: the database,
//! one actor registry per aggregate type, the clock, the secret sealer and the commit signal.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use actix::{Arbiter, ArbiterHandle};
use cqrs_es::persist::PersistedEventStore;
use switchboard_domain::account::{Account, AccountKeyClaim};
use switchboard_domain::agent::Agent;
use switchboard_domain::catalog::{CannedCatalog, DispositionCatalog};
use switchboard_domain::contact::Contact;
use switchboard_domain::directory::{ContactCard, ContactList};
use switchboard_domain::interaction::Interaction;
use switchboard_domain::queue::Queue;
use tokio::sync::watch;

use crate::clock::Clock;
use crate::crypto::Sealer;
use crate::db::Database;
use crate::runtime::{Metadata, Registry};

/// How often, at most, commits wake the projectors and workers.
pub const COMMIT_WAKE_INTERVAL: Duration = Duration::from_millis(10);

/// Media directory when none is configured.
pub const DEFAULT_MEDIA_DIR: &str = "data/media";
/// 16 MiB: WhatsApp's limit for audio and video, above its 5 MB for images. Documents may be
/// up to 100 MB on WhatsApp; raise `SWITCHBOARD_MAX_MEDIA_BYTES` to carry them.
pub const DEFAULT_MAX_MEDIA_BYTES: u64 = 16 * 1024 * 1024;

/// Seconds a dropped websocket has to come back before its agent counts as unreachable: long
/// enough for a page reload or a brief network change, short enough not to strand offers.
pub const DEFAULT_WS_GRACE_SECS: u64 = 30;

/// Who caused an event; recorded in every event's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cause {
    /// An authenticated API caller.
    User {
        /// `admin`, `supervisor` or `agent`.
        role: String,
        /// The agent id for agents, the token label otherwise.
        id: String,
    },
    /// A provider's webhook.
    Provider(&'static str),
    /// A background worker (router, timer, outbox).
    System(&'static str),
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Cause::User { role, id } => write!(f, "{role}:{id}"),
            Cause::Provider(p) => write!(f, "provider:{p}"),
            Cause::System(w) => write!(f, "system:{w}"),
        }
    }
}

/// The shared core.
#[derive(Clone)]
pub struct Core {
    /// Database pools and event repository.
    pub db: Database,
    /// "Now".
    pub clock: Clock,
    /// Encrypts provider credentials.
    pub sealer: Sealer,
    /// Seals and opens personal data in events; destroys it on erasure.
    pub pii: Arc<crate::pii::Pii>,
    /// Account actors.
    pub accounts: Registry<Account>,
    /// Agent actors.
    pub agents: Registry<Agent>,
    /// Queue actors.
    pub queues: Registry<Queue>,
    /// Interaction actors.
    pub interactions: Registry<Interaction>,
    /// Contact actors.
    pub contacts: Registry<Contact>,
    /// Account key claims (keys are unique across accounts).
    pub account_keys: Registry<AccountKeyClaim>,
    /// Contact lists.
    pub contact_lists: Registry<ContactList>,
    /// Contact cards.
    pub contact_cards: Registry<ContactCard>,
    /// Disposition catalogues (`general` and one per account).
    pub dispositions: Registry<DispositionCatalog>,
    /// Canned-answer catalogues (`general` and one per account).
    pub canned_answers: Registry<CannedCatalog>,
    /// Bumped after every commit: wakes projectors, workers and the websocket feed.
    pub commits: Arc<watch::Sender<u64>>,
    /// HTTP client for provider APIs.
    pub http: reqwest::Client,
    /// Sinch client, shared so its OAuth2 tokens are cached across sends.
    pub sinch: Arc<crate::providers::sinch::SinchClient>,
    /// The public base URL providers call (status callbacks are addressed to it); empty when
    /// unknown, e.g. in tools that never send.
    pub public_url: String,
    /// Where media bytes are stored.
    pub blobs: Arc<dyn crate::blobs::BlobStore>,
    /// Largest media accepted from agents or downloaded from providers, in bytes.
    pub max_media_bytes: u64,
    /// Send pacing per business number and recipient.
    pub rate: Arc<crate::workers::ratelimit::RateLimiter>,
    /// How long an agent whose websocket dropped stays reachable (`reconnect_by = now + grace`).
    pub ws_grace: Duration,
    /// Signs audit checkpoints (set at start-up from the master key or `SWITCHBOARD_AUDIT_KEY`).
    pub audit_signer: Option<Arc<crate::audit::checkpoint::Signer>>,
    _arbiters: Arc<Vec<Arbiter>>,
}

impl Core {
    /// Builds the registries on `arbiter_count` dedicated threads. Must run inside an actix
    /// system (the arbiters are children of it).
    pub fn new(
        db: Database,
        clock: Clock,
        sealer: Sealer,
        arbiter_count: usize,
        idle_after: Duration,
    ) -> Self {
        let arbiters: Vec<Arbiter> = (0..arbiter_count.max(1)).map(|_| Arbiter::new()).collect();
        let handles: Arc<Vec<ArbiterHandle>> = Arc::new(arbiters.iter().map(Arbiter::handle).collect());
        let (commits, _) = watch::channel(0u64);
        let commits = Arc::new(commits);
        // Commits only mark the log dirty; a ticker wakes the background loops at most once per
        // COMMIT_WAKE_INTERVAL. Under load that turns thousands of wake-ups (each a database
        // round trip per loop) into a hundred batches a second, for at most that much latency.
        let dirty = Arc::new(AtomicBool::new(false));
        let mark = dirty.clone();
        let on_commit: Arc<dyn Fn() + Send + Sync> = Arc::new(move || mark.store(true, Ordering::Release));
        let signal = Arc::downgrade(&commits);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(COMMIT_WAKE_INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                // Ends once every Core (and so the sender) is gone.
                let Some(signal) = signal.upgrade() else { return };
                if dirty.swap(false, Ordering::AcqRel) {
                    signal.send_modify(|n| *n = n.wrapping_add(1));
                }
            }
        });
        let pii = Arc::new(crate::pii::Pii::new(db.any.clone(), sealer.clone(), clock.clone()));
        let repo = crate::pii::repo::PiiRepository::new(db.events.clone(), pii.clone());
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .connect_timeout(Duration::from_secs(5))
            .build()
            .unwrap_or_default();
        Self {
            accounts: Registry::new(
                PersistedEventStore::new_event_store(repo.clone()),
                handles.clone(),
                idle_after,
                on_commit.clone(),
            ),
            agents: Registry::new(
                PersistedEventStore::new_event_store(repo.clone()),
                handles.clone(),
                idle_after,
                on_commit.clone(),
            ),
            queues: Registry::new(
                PersistedEventStore::new_event_store(repo.clone()),
                handles.clone(),
                idle_after,
                on_commit.clone(),
            ),
            interactions: Registry::new(
                PersistedEventStore::new_event_store(repo.clone()),
                handles.clone(),
                idle_after,
                on_commit.clone(),
            ),
            contacts: Registry::new(
                PersistedEventStore::new_event_store(repo.clone()),
                handles.clone(),
                idle_after,
                on_commit.clone(),
            ),
            account_keys: Registry::new(
                PersistedEventStore::new_event_store(repo.clone()),
                handles.clone(),
                idle_after,
                on_commit.clone(),
            ),
            contact_lists: Registry::new(
                PersistedEventStore::new_event_store(repo.clone()),
                handles.clone(),
                idle_after,
                on_commit.clone(),
            ),
            contact_cards: Registry::new(
                PersistedEventStore::new_event_store(repo.clone()),
                handles.clone(),
                idle_after,
                on_commit.clone(),
            ),
            dispositions: Registry::new(
                PersistedEventStore::new_event_store(repo.clone()),
                handles.clone(),
                idle_after,
                on_commit.clone(),
            ),
            canned_answers: Registry::new(
                PersistedEventStore::new_event_store(repo),
                handles,
                idle_after,
                on_commit,
            ),
            db,
            clock,
            sealer,
            pii,
            commits,
            sinch: Arc::new(crate::providers::sinch::SinchClient::new(http.clone())),
            http,
            public_url: String::new(),
            blobs: Arc::new(crate::blobs::LocalBlobStore::new(DEFAULT_MEDIA_DIR)),
            max_media_bytes: DEFAULT_MAX_MEDIA_BYTES,
            rate: Arc::default(),
            ws_grace: Duration::from_secs(DEFAULT_WS_GRACE_SECS),
            audit_signer: None,
            _arbiters: Arc::new(arbiters),
        }
    }

    /// Event metadata: when, who, and the request or message that caused it.
    pub fn metadata(&self, cause: &Cause, correlation_id: &str) -> Metadata {
        Metadata::from([
            ("occurred_at".to_owned(), self.clock.now().to_rfc3339()),
            ("caused_by".to_owned(), cause.to_string()),
            ("correlation_id".to_owned(), correlation_id.to_owned()),
        ])
    }

    /// Where a provider posts an account's webhooks: under the account's own public domain
    /// if it has one (the seed's "Proxy or Motion Domain"), else the server's public URL;
    /// `None` if neither is known.
    pub fn receive_url(&self, account_id: &str, public_domain: Option<&str>) -> Option<String> {
        let base = public_domain.unwrap_or(&self.public_url);
        (!base.is_empty()).then(|| format!("{}/webhooks/whatsapp/{account_id}", base.trim_end_matches('/')))
    }

    /// A link the provider can fetch a stored blob from, valid for a day.
    pub fn media_link(
        &self,
        blob: &switchboard_domain::interaction::MediaBlob,
        filename: Option<&str>,
    ) -> String {
        let expires = self.clock.now().timestamp() + crate::blobs::LINK_TTL_SECS;
        let path = self.sealer.links().path(&blob.sha256, &blob.content_type, expires, filename);
        format!("{}{path}", self.public_url.trim_end_matches('/'))
    }

    /// A receiver that changes after every commit in this process.
    pub fn commit_signal(&self) -> watch::Receiver<u64> {
        self.commits.subscribe()
    }
}

impl Core {
    /// Stops the actor threads (after the server and workers stopped).
    pub fn stop(&self) {
        for arbiter in self._arbiters.iter() {
            arbiter.stop();
        }
    }
}
