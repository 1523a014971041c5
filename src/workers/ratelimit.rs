//! Per-number and per-recipient send rates, so the outbox paces itself instead of
//! collecting rate-limit errors.
//!
//! WhatsApp limits every business number, whichever provider carries it: 80 messages a
//! second by default, and one message every 6 s to the same user, with bursts of up to 45
//! borrowed from future quota (Meta error 131056 past that). Both are token buckets here:
//! a message that would exceed either waits (its row is deferred to the moment a token is
//! back) and is not counted as a failed attempt. The buckets live in this process: with
//! several nodes sending for the same number, each keeps its own count, so the provider's
//! own 429/131056 answers (retried with back-off) remain the backstop.

use std::collections::HashMap;
use std::sync::Mutex;

/// Messages per second per business number (Meta's default throughput tier).
pub const NUMBER_RATE_PER_SEC: f64 = 80.0;
/// One message to the same user every 6 s ...
pub const PAIR_RATE_PER_SEC: f64 = 1.0 / 6.0;
/// ... with bursts of up to 45.
pub const PAIR_BURST: f64 = 45.0;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at_ms: i64,
}

impl Bucket {
    /// Refills to `now`, then takes a token if there is one; otherwise says how long until
    /// one is back.
    fn take(&mut self, now_ms: i64, rate: f64, burst: f64) -> Result<(), i64> {
        let elapsed = (now_ms - self.at_ms).max(0) as f64 / 1000.0;
        self.tokens = (self.tokens + elapsed * rate).min(burst);
        self.at_ms = now_ms.max(self.at_ms);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err((((1.0 - self.tokens) / rate) * 1000.0).ceil() as i64)
        }
    }

    fn give_back(&mut self) {
        self.tokens += 1.0;
    }
}

/// The buckets of every number and every (number, recipient) pair seen recently.
#[derive(Debug, Default)]
pub struct RateLimiter {
    buckets: Mutex<Buckets>,
}

#[derive(Debug, Default)]
struct Buckets {
    numbers: HashMap<String, Bucket>,
    pairs: HashMap<(String, String), Bucket>,
    last_sweep_ms: i64,
}

impl RateLimiter {
    /// Takes a token for one message from `number` (the account) to `recipient`, or says
    /// how many milliseconds to wait. Both buckets must have a token; if the pair has none,
    /// the number's token is given back so a waiting pair does not slow the others.
    pub fn try_acquire(&self, number: &str, recipient: &str, now_ms: i64) -> Result<(), i64> {
        let mut b = self.buckets.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        b.sweep(now_ms);
        let fresh = |burst: f64| Bucket { tokens: burst, at_ms: now_ms };
        let number_bucket = b.numbers.entry(number.to_owned()).or_insert_with(|| fresh(NUMBER_RATE_PER_SEC));
        number_bucket.take(now_ms, NUMBER_RATE_PER_SEC, NUMBER_RATE_PER_SEC)?;
        let pair =
            b.pairs.entry((number.to_owned(), recipient.to_owned())).or_insert_with(|| fresh(PAIR_BURST));
        if let Err(wait) = pair.take(now_ms, PAIR_RATE_PER_SEC, PAIR_BURST) {
            if let Some(n) = b.numbers.get_mut(number) {
                n.give_back();
            }
            return Err(wait);
        }
        Ok(())
    }
}

impl Buckets {
    /// Forgets buckets that have refilled completely (they behave exactly like new ones), so
    /// memory follows the active conversations, not every customer ever written to.
    fn sweep(&mut self, now_ms: i64) {
        if now_ms - self.last_sweep_ms < 60_000 {
            return;
        }
        self.last_sweep_ms = now_ms;
        let full_after_ms = (PAIR_BURST / PAIR_RATE_PER_SEC * 1000.0) as i64;
        self.pairs.retain(|_, b| now_ms - b.at_ms < full_after_ms);
        self.numbers.retain(|_, b| now_ms - b.at_ms < 1_000);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_number_sends_80_a_second_then_waits() {
        let limiter = RateLimiter::default();
        for i in 0..80 {
            assert!(limiter.try_acquire("acct", &format!("+1555000{i:04}"), 0).is_ok(), "message {i}");
        }
        let wait = limiter.try_acquire("acct", "+15559999999", 0).expect_err("81st waits");
        assert_eq!(wait, 13, "one token comes back every 12.5 ms");
        assert!(limiter.try_acquire("acct", "+15559999999", 13).is_ok());
        assert!(limiter.try_acquire("other", "+15559999999", 0).is_ok(), "numbers are independent");
    }

    #[test]
    fn one_recipient_gets_a_burst_of_45_then_one_every_6_seconds() {
        let limiter = RateLimiter::default();
        let mut now = 0;
        for i in 0..45 {
            now += 20; // under the number's rate
            assert!(limiter.try_acquire("acct", "+15551234567", now).is_ok(), "burst message {i}");
        }
        now += 20;
        let wait = limiter.try_acquire("acct", "+15551234567", now).expect_err("the pair is exhausted");
        assert!((5_000..=6_000).contains(&wait), "waits about 6 s, not {wait} ms");
        assert!(limiter.try_acquire("acct", "+15557654321", now).is_ok(), "another customer is not held up");
        assert!(limiter.try_acquire("acct", "+15551234567", now + wait).is_ok());
    }

    #[test]
    fn a_waiting_pair_does_not_use_up_the_numbers_tokens() {
        let limiter = RateLimiter::default();
        for _ in 0..45 {
            limiter.try_acquire("acct", "+15551234567", 0).expect("burst");
        }
        for _ in 0..100 {
            assert!(limiter.try_acquire("acct", "+15551234567", 0).is_err());
        }
        // 45 of 80 used at t=0: 35 left for everyone else.
        for i in 0..35 {
            assert!(limiter.try_acquire("acct", &format!("+1555000{i:04}"), 0).is_ok(), "{i}");
        }
        assert!(limiter.try_acquire("acct", "+15559999999", 0).is_err());
    }

    #[test]
    fn idle_buckets_are_forgotten() {
        let limiter = RateLimiter::default();
        limiter.try_acquire("acct", "+15551234567", 0).expect("first");
        limiter.try_acquire("acct", "+15551234568", 400_000).expect("much later");
        let b = limiter.buckets.lock().expect("lock");
        assert_eq!(b.pairs.len(), 1, "the refilled pair was swept");
    }
}
