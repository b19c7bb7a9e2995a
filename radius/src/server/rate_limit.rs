//! Per-NAS request rate limit: a token bucket refilled continuously, burst of one second.

use std::time::Instant;

use dashmap::DashMap;
use edge_shared::types::NasId;

#[derive(Debug, Default)]
pub(super) struct RateLimiter {
    buckets: DashMap<NasId, Bucket, foldhash::fast::RandomState>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

impl RateLimiter {
    /// Takes one token for `nas` if it has one. `per_second` 0 means unlimited.
    pub(super) fn allow(&self, nas: NasId, per_second: u32, now: Instant) -> bool {
        if per_second == 0 {
            return true;
        }
        let rate = f64::from(per_second);
        let mut b = self.buckets.entry(nas).or_insert(Bucket {
            tokens: rate,
            last: now,
        });
        let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
        b.tokens = (b.tokens + elapsed * rate).min(rate);
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn limits_and_refills() {
        let r = RateLimiter::default();
        let t0 = Instant::now();
        let allowed = (0..20).filter(|_| r.allow(NasId(1), 10, t0)).count();
        assert_eq!(allowed, 10);
        assert!(r.allow(NasId(1), 10, t0 + Duration::from_millis(150)));
        assert!(r.allow(NasId(2), 0, t0));
    }
}
