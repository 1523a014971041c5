//! Integration tests: one binary (faster to link), one module per feature, all driving a
//! spawned server over real HTTP and websockets on loopback, against SQLite and PostgreSQL.

mod accounts;
mod audit;
mod bad_input;
mod catalog;
mod conversation;
mod directory;
mod durability;
mod erasure;
mod export;
mod helpers;
mod kaleyra;
mod media;
mod notify;
mod ops;
mod outbox;
mod projections;
mod provider_media;
mod routing;
mod routing_admin;
mod runtime;
mod search;
mod sinch;
mod supervision;
mod twilio;
