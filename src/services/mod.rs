//! Use cases that span aggregates. Each is a short sequence of idempotent commands, so a
//! retry after a crash or a redelivery repeats nothing.

pub mod accounts;
pub mod contacts;
pub mod export;
pub mod history;
pub mod ingest;
pub mod offers;
pub mod realtime;
pub mod search;
