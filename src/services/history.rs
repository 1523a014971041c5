//! An aggregate's change history: its events replayed one by one, with what each changed.
//!
//! SKELETON: filled in by its owner.
