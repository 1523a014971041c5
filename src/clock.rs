//! Where "now" comes from.
//!
//! Every command carries its time, so the domain never reads a clock. The server reads this
//! one: wall-clock time anchored once, then advanced by tokio's monotonic clock. Under a
//! paused tokio runtime (`tokio::time::pause`) it stands still and moves only when the test
//! advances time, so timeouts are tested without sleeping. Tests that run a whole server
//! (which cannot pause tokio: sqlx and actix need real time) move it with [`Clock::advance`].

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Utc};

/// Wall-clock time that follows tokio's clock. Clones share the same time.
#[derive(Debug, Clone)]
pub struct Clock {
    anchor_utc: DateTime<Utc>,
    anchor: tokio::time::Instant,
    /// Milliseconds added by [`Clock::advance`].
    skew_ms: Arc<AtomicI64>,
}

impl Clock {
    /// Anchored at the current wall-clock time.
    pub fn system() -> Self {
        Self::starting_at(Utc::now())
    }

    /// Anchored at `at` (tests pick a fixed start).
    pub fn starting_at(at: DateTime<Utc>) -> Self {
        Self { anchor_utc: at, anchor: tokio::time::Instant::now(), skew_ms: Arc::default() }
    }

    /// Moves this clock (and its clones) forward, e.g. past an offer's deadline in a test
    /// that drives a real server.
    pub fn advance(&self, by: std::time::Duration) {
        self.skew_ms.fetch_add(by.as_millis() as i64, Ordering::SeqCst);
    }

    /// The current time.
    pub fn now(&self) -> DateTime<Utc> {
        let elapsed = tokio::time::Instant::now().saturating_duration_since(self.anchor);
        self.anchor_utc
            + chrono::Duration::from_std(elapsed).unwrap_or(chrono::Duration::zero())
            + chrono::Duration::milliseconds(self.skew_ms.load(Ordering::SeqCst))
    }

    /// The current time in epoch milliseconds (the read models' unit).
    pub fn now_ms(&self) -> i64 {
        self.now().timestamp_millis()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_clock_moves_only_with_tokio_time() {
        let start = Utc::now();
        let clock = Clock::starting_at(start);
        assert_eq!(clock.now(), start);
        tokio::time::advance(std::time::Duration::from_secs(10)).await;
        assert_eq!(clock.now(), start + chrono::Duration::seconds(10));
    }

    #[tokio::test(start_paused = true)]
    async fn advancing_moves_every_clone() {
        let start = Utc::now();
        let clock = Clock::starting_at(start);
        let clone = clock.clone();
        clock.advance(std::time::Duration::from_secs(11));
        assert_eq!(clone.now(), start + chrono::Duration::seconds(11));
    }
}
