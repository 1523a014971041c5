//! The contact manager's services: lookups for ingest, CSV import.
//!
//! SKELETON: filled in by its owner.
