//! Per-key rate limits: each API key has its own bucket of `burst` requests, refilled at
//! `per_second`. Written as the generic cell rate algorithm (one instant per key: when its
//! bucket would be empty), which is a token bucket without a float or a timer; a crate for
//! it would bring more than these lines.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A rate every key gets: `per_second` requests a second on average, `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyRate {
    pub per_second: u32,
    pub burst: u32,
}

/// Entries at which full buckets are dropped from the map.
const PRUNE_AT: usize = 4096;

#[derive(Debug)]
pub(crate) struct RateLimiter {
    /// The time one request uses up.
    interval: Duration,
    /// How far ahead of now a key's bucket may be spent (the burst beyond one request).
    tolerance: Duration,
    /// Per key id, the instant its bucket is spent up to.
    spent_until: Mutex<HashMap<i64, Instant>>,
}

impl RateLimiter {
    pub(crate) fn new(rate: KeyRate) -> RateLimiter {
        let interval = Duration::from_secs(1) / rate.per_second.max(1);
        RateLimiter {
            interval,
            tolerance: interval * rate.burst.max(1).saturating_sub(1),
            spent_until: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one request from `key`'s bucket at `now`, or answers how long until one is
    /// there.
    pub(crate) fn take(&self, key: i64, now: Instant) -> Result<(), Duration> {
        let mut spent = self.spent_until.lock().unwrap_or_else(|p| p.into_inner());
        // Keys whose buckets are full again need no entry: the map holds only keys
        // active within their burst's time.
        if spent.len() >= PRUNE_AT {
            spent.retain(|_, until| *until > now);
        }
        let until = spent.get(&key).copied().unwrap_or(now).max(now);
        let ahead = until - now;
        if ahead > self.tolerance {
            return Err(ahead - self.tolerance);
        }
        spent.insert(key, until + self.interval);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_spends_its_burst_then_one_request_per_interval() {
        let limiter = RateLimiter::new(KeyRate {
            per_second: 10,
            burst: 3,
        });
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(limiter.take(1, t0), Ok(()));
        }
        assert_eq!(limiter.take(1, t0), Err(Duration::from_millis(100)));
        // Another key has its own bucket.
        assert_eq!(limiter.take(2, t0), Ok(()));
        // A tenth of a second later, one more request.
        let t1 = t0 + Duration::from_millis(100);
        assert_eq!(limiter.take(1, t1), Ok(()));
        assert!(limiter.take(1, t1).is_err());
        // After a quiet second the whole burst is back, not more.
        let t2 = t1 + Duration::from_secs(1);
        for _ in 0..3 {
            assert_eq!(limiter.take(1, t2), Ok(()));
        }
        assert!(limiter.take(1, t2).is_err());
    }
}
