//! Retry delays after failed announces, and the small seeded generator
//! behind their jitter and the tier shuffle.
//!
//! The delay doubles from `min` up to `max` with each round in which every
//! tracker failed, and is cut by up to a quarter at random so that hosts
//! that lost their tracker at the same moment do not come back in step.
//! The generator is seeded by the caller, so tests are deterministic.

use std::time::Duration;

/// SplitMix64: tiny, fast, and good enough for jitter and shuffles (not
/// for anything secret).
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A value in `0..bound` (`bound` > 0); the slight modulo bias does not
    /// matter here.
    pub(crate) fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound.max(1)
    }

    /// Fisher-Yates.
    pub(crate) fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }
}

/// Exponential backoff with jitter.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    min: Duration,
    max: Duration,
    failures: u32,
}

impl Backoff {
    pub(crate) fn new(min: Duration, max: Duration) -> Backoff {
        Backoff {
            min,
            max: max.max(min),
            failures: 0,
        }
    }

    /// Rounds failed in a row.
    pub(crate) fn failures(&self) -> u32 {
        self.failures
    }

    /// Records a failed round and returns how long to wait before the next.
    pub(crate) fn fail(&mut self, rng: &mut Rng) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let doublings = (self.failures - 1).min(32);
        let base = self
            .min
            .checked_mul(1u32 << doublings.min(31))
            .unwrap_or(self.max)
            .min(self.max);
        let cut_millis = rng.below(base.as_millis() as u64 / 4 + 1);
        base.saturating_sub(Duration::from_millis(cut_millis))
    }

    /// A success: the next failure starts from `min` again.
    pub(crate) fn reset(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap_with_at_most_a_quarter_cut() {
        let mut rng = Rng::new(1);
        let mut b = Backoff::new(Duration::from_secs(15), Duration::from_secs(1800));
        let mut expected = 15u64;
        for _ in 0..12 {
            let d = b.fail(&mut rng);
            let full = Duration::from_secs(expected);
            assert!(d <= full, "{d:?} > {full:?}");
            assert!(d >= full * 3 / 4, "{d:?} < 3/4 of {full:?}");
            expected = (expected * 2).min(1800);
        }
        b.reset();
        assert_eq!(b.failures(), 0);
        assert!(b.fail(&mut rng) <= Duration::from_secs(15));
    }

    #[test]
    fn many_failures_do_not_overflow() {
        let mut rng = Rng::new(2);
        let mut b = Backoff::new(Duration::from_secs(15), Duration::from_secs(1800));
        for _ in 0..200 {
            assert!(b.fail(&mut rng) <= Duration::from_secs(1800));
        }
    }

    #[test]
    fn jitter_varies() {
        let mut rng = Rng::new(3);
        let delays: std::collections::HashSet<Duration> = (0..16)
            .map(|_| Backoff::new(Duration::from_secs(60), Duration::from_secs(60)).fail(&mut rng))
            .collect();
        assert!(delays.len() > 1);
    }
}
