//! Background work, each a loop woken by the commit signal with polling as the fallback:
//! projectors, the router (reacts to events with commands), the timer poller, the outbox
//! sender, the media fetcher and the websocket feed; and SQLite's planner statistics.

pub mod checkpoint;
pub mod feed;
pub mod media;
pub mod outbox;
pub mod planner;
pub mod ratelimit;
pub mod router;
pub mod timers;
