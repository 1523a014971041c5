//! Account administration services: creation with a unique key, updates, deletion.
//!
//! SKELETON: filled in by its owner.
