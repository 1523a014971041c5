//! Audit (issue 6, ADR 0018): the per-aggregate hash chain and its verifier, signed
//! checkpoints of the chain heads (truncation detection), the event history of any
//! aggregate with who and when, the state of an aggregate at an instant, and the projection
//! rebuild check.
//!
//! Everything here reads the log through [`events`], the one place stored events are read
//! for display (so decryption of personal data can be added in one spot).

pub mod chain;
pub mod checkpoint;
pub mod cli;
pub mod events;
pub mod rebuild;
pub mod replay;
