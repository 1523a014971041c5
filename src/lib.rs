//! Switchboard: a self-hosted WhatsApp contact-center channel.
//!
//! Layers (see `docs/architecture.md`):
//! - [`runtime`]: one actix actor per live aggregate, committing to the event store.
//! - [`core`]: the shared core (database, registries, clock, sealer, commit signal).
//! - [`services`]: use cases that span aggregates (ingesting a webhook, accepting an offer).
//! - [`workers`]: projectors, the router, timers, the outbox sender, the websocket feed.
//! - [`http`]: the actix-web API, webhooks and the agents' websocket.
//! - [`providers`]: provider adapters (Meta Cloud API).
//! - [`pii`]: personal data sealed in events with per-contact keys (crypto-shredding).

pub mod audit;
pub mod auth;
pub mod blobs;
pub mod clock;
pub mod config;
pub mod core;
pub mod crypto;
pub mod db;
pub mod http;
pub mod pii;
pub mod providers;
pub mod runtime;
pub mod services;
pub mod startup;
pub mod telemetry;
pub mod workers;
