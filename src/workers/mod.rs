//! Background work, each a loop woken by the commit signal with polling as the fallback:
//! projectors, the router (reacts to events with commands), the timer poller, the outbox
//! sender, the media fetcher and the websocket feed.

pub mod checkpoint;
pub mod feed;
pub mod media;
pub mod outbox;
pub mod ratelimit;
pub mod router;
pub mod timers;
