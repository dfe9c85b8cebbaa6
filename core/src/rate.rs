//! Per-direction bandwidth limits as a token bucket.
//!
//! Sans-IO: time comes in as an [`Instant`] argument, so tests drive it
//! without waiting. The bucket holds at most `burst` bytes of credit and
//! refills at `rate` bytes a second; a transfer asks for credit first and is
//! told either how much it may send now or how long to wait.

use std::time::{Duration, Instant};

/// A token bucket; `None` rate means unlimited.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: Option<u64>,
    burst: u64,
    tokens: u64,
    last: Instant,
}

/// The answer to a request for credit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    /// Send this many bytes now (at least 1, at most what was asked).
    Now(u64),
    /// Nothing may be sent before this much time has passed.
    Wait(Duration),
}

impl TokenBucket {
    /// A bucket limiting to `rate` bytes/s with `burst` bytes of credit
    /// (clamped to at least one 16 KiB block so a piece message fits).
    pub fn new(rate: Option<u64>, burst: u64, now: Instant) -> TokenBucket {
        let burst = burst.max(16 * 1024);
        TokenBucket {
            rate,
            burst,
            tokens: burst,
            last: now,
        }
    }

    pub fn unlimited(now: Instant) -> TokenBucket {
        TokenBucket::new(None, 0, now)
    }

    /// Asks for up to `want` bytes at time `now`; a granted amount is taken.
    pub fn take(&mut self, want: u64, now: Instant) -> Grant {
        let Some(rate) = self.rate else {
            return Grant::Now(want);
        };
        self.refill(rate, now);
        // Wait until the whole request (up to a burst) can go at once: fewer,
        // larger writes instead of a wake-up per trickle of credit.
        let needed = want.min(self.burst).max(1);
        if self.tokens < needed || rate == 0 {
            return Grant::Wait(wait_for(needed - self.tokens.min(needed), rate));
        }
        let granted = want.min(self.tokens);
        self.tokens -= granted;
        Grant::Now(granted)
    }

    /// Returns credit that was taken but not used (a short write).
    pub fn give_back(&mut self, unused: u64) {
        self.tokens = (self.tokens + unused).min(self.burst);
    }

    fn refill(&mut self, rate: u64, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last);
        let earned = (elapsed.as_nanos() * u128::from(rate) / 1_000_000_000) as u64;
        if earned > 0 {
            self.tokens = self.tokens.saturating_add(earned).min(self.burst);
            // Advance by the time that earned whole bytes, rounded up so
            // that rounding can only ever slow the bucket, never speed it.
            let used = Duration::from_nanos(
                (u128::from(earned) * 1_000_000_000).div_ceil(u128::from(rate)) as u64,
            );
            self.last += used;
            if self.tokens == self.burst {
                self.last = now;
            }
        }
    }
}

fn wait_for(bytes: u64, rate: u64) -> Duration {
    if rate == 0 {
        return Duration::from_secs(1);
    }
    Duration::from_nanos((u128::from(bytes) * 1_000_000_000).div_ceil(u128::from(rate)) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unlimited_grants_everything() {
        let t0 = Instant::now();
        let mut b = TokenBucket::unlimited(t0);
        assert_eq!(b.take(1 << 40, t0), Grant::Now(1 << 40));
    }

    #[test]
    fn burst_then_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(Some(1_000_000), 100_000, t0);
        assert_eq!(b.take(250_000, t0), Grant::Now(100_000));
        assert_eq!(b.take(1000, t0), Grant::Wait(Duration::from_millis(1)));
        let later = t0 + Duration::from_millis(50);
        assert_eq!(b.take(50_000, later), Grant::Now(50_000));
    }

    #[test]
    fn long_run_average_matches_rate() {
        let t0 = Instant::now();
        let rate = 3_000_000u64;
        let mut b = TokenBucket::new(Some(rate), 16 * 1024, t0);
        let mut now = t0;
        let mut sent = 0u64;
        while now < t0 + Duration::from_secs(10) {
            match b.take(16 * 1024, now) {
                Grant::Now(n) => sent += n,
                Grant::Wait(d) => now += d,
            }
        }
        let expected = rate * 10 + 16 * 1024;
        assert!(sent <= expected, "{sent} > {expected}");
        assert!(sent >= rate * 10 - 16 * 1024, "{sent} too low");
    }

    #[test]
    fn unused_credit_returns_up_to_burst() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(Some(1), 16 * 1024, t0);
        assert_eq!(b.take(16 * 1024, t0), Grant::Now(16 * 1024));
        b.give_back(1 << 30);
        assert_eq!(b.take(1 << 30, t0), Grant::Now(16 * 1024));
    }
}
