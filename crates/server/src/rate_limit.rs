//! Keyed token buckets: a burst of `capacity` attempts, refilled evenly over
//! `period`. A leaf: keys are plain strings and time is passed in, so it
//! knows nothing of HTTP, rooms or who is asking. Used for sign-in attempts
//! (per client address and per account), chat messages per peer and
//! signalling events per connection.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Keys tracked at most; past this, buckets that have refilled are dropped
/// (they carry no information) and, if still too many, new keys are refused
/// rather than letting an attacker grow memory without bound.
const MAX_KEYS: usize = 100_000;

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

#[derive(Debug)]
pub struct RateLimiter {
    capacity: f64,
    refill_per_sec: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    pub fn new(capacity: u32, period: Duration) -> Self {
        let capacity = f64::from(capacity.max(1));
        RateLimiter {
            capacity,
            refill_per_sec: capacity / period.as_secs_f64().max(0.001),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one attempt for `key`; when none is left, the error is the number
    /// of whole seconds until one is.
    pub fn check(&self, key: &str, now: Instant) -> Result<(), u64> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= MAX_KEYS && !buckets.contains_key(key) {
            let (capacity, rate) = (self.capacity, self.refill_per_sec);
            buckets.retain(|_, b| {
                b.tokens + now.duration_since(b.updated).as_secs_f64() * rate < capacity
            });
            if buckets.len() >= MAX_KEYS {
                return Err(1);
            }
        }
        let bucket = buckets.entry(key.to_string()).or_insert(Bucket {
            tokens: self.capacity,
            updated: now,
        });
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.refill_per_sec).min(self.capacity);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - bucket.tokens) / self.refill_per_sec;
            Err(wait.ceil().max(1.0) as u64)
        }
    }
}

impl RateLimiter {
    /// Gives back the attempt `check` took for `key`: sign-ins take one
    /// before the password is checked (so parallel guesses cannot all pass
    /// a check that only counts finished failures) and give it back when
    /// the password was right, so only failures use the budget up — forty
    /// students behind one school NAT can all sign in while a guesser at
    /// the same address is still stopped.
    pub fn refund(&self, key: &str) {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(bucket) = buckets.get_mut(key) {
            bucket.tokens = (bucket.tokens + 1.0).min(self.capacity);
        }
    }
}

impl RateLimiter {
    /// Whether `key` has its whole budget (it has not spent any lately).
    pub fn is_full(&self, key: &str, now: Instant) -> bool {
        let buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        buckets.get(key).is_none_or(|b| {
            let elapsed = now.saturating_duration_since(b.updated).as_secs_f64();
            b.tokens + elapsed * self.refill_per_sec >= self.capacity
        })
    }

    /// Spends all of `key`'s budget: its next attempt waits for a refill.
    pub fn drain(&self, key: &str, now: Instant) {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(bucket) = buckets.get_mut(key) {
            bucket.tokens = 0.0;
            bucket.updated = now;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_then_refills() {
        let limiter = RateLimiter::new(3, Duration::from_secs(30));
        let t0 = Instant::now();
        for _ in 0..3 {
            limiter.check("ip", t0).unwrap();
        }
        assert_eq!(limiter.check("ip", t0), Err(10), "one token per 10 s");
        limiter.check("other", t0).unwrap();
        assert!(limiter.check("ip", t0 + Duration::from_secs(9)).is_err());
        limiter.check("ip", t0 + Duration::from_secs(10)).unwrap();
    }

    #[test]
    fn refunds_give_attempts_back_up_to_capacity() {
        let limiter = RateLimiter::new(2, Duration::from_secs(60));
        let t0 = Instant::now();
        for _ in 0..10 {
            limiter.check("nat", t0).unwrap();
            limiter.refund("nat");
        }
        limiter.check("nat", t0).unwrap();
        limiter.check("nat", t0).unwrap();
        assert!(limiter.check("nat", t0).is_err(), "failures still count");
        limiter.refund("nat");
        limiter.refund("nat");
        limiter.refund("nat");
        limiter.check("nat", t0).unwrap();
        limiter.check("nat", t0).unwrap();
        assert!(limiter.check("nat", t0).is_err(), "never above capacity");
        limiter.refund("unknown");
    }

    #[test]
    fn full_until_spent_and_drained_until_refilled() {
        let limiter = RateLimiter::new(2, Duration::from_secs(20));
        let t0 = Instant::now();
        assert!(limiter.is_full("a", t0), "an unknown key is full");
        limiter.check("a", t0).unwrap();
        assert!(!limiter.is_full("a", t0));
        assert!(limiter.is_full("a", t0 + Duration::from_secs(10)));
        limiter.drain("a", t0);
        assert!(limiter.check("a", t0 + Duration::from_secs(9)).is_err());
        limiter.check("a", t0 + Duration::from_secs(10)).unwrap();
    }
}
