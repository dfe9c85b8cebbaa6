//! A floor under how fast a client sends a request body (sans-IO).
//!
//! A per-read timeout alone lets a client hold a connection for ever by
//! sending one byte just before each timeout; behind a proxy that also
//! holds an upstream connection. So the time spent waiting for body bytes
//! is cut into windows, and each window must bring at least
//! `min_rate × window` bytes. Only time spent waiting on the client
//! counts: a handler that reads slowly (its upstream is slow to take the
//! bytes) never makes its client look slow.

use std::time::Duration;

/// The floor's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyPace {
    /// Bytes a second, averaged over each window; 0 turns the floor off.
    pub min_rate: u64,
    /// How much waiting time each average is taken over.
    pub window: Duration,
}

impl Default for BodyPace {
    fn default() -> Self {
        BodyPace {
            min_rate: 1024,
            window: Duration::from_secs(30),
        }
    }
}

/// The body came too slowly: the server answers 408 and closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TooSlow;

/// Where one body stands against its floor.
#[derive(Debug, Clone)]
pub(crate) struct PaceMeter {
    pace: BodyPace,
    waited: Duration,
    bytes: u64,
}

impl PaceMeter {
    pub(crate) fn new(pace: BodyPace) -> PaceMeter {
        PaceMeter {
            pace,
            waited: Duration::ZERO,
            bytes: 0,
        }
    }

    /// The floor, in bytes a second.
    pub(crate) fn min_rate(&self) -> u64 {
        self.pace.min_rate
    }

    /// The longest the next wait for bytes may last before the window
    /// closes; `None` when there is no floor.
    pub(crate) fn budget(&self) -> Option<Duration> {
        (self.pace.min_rate > 0).then(|| self.pace.window.saturating_sub(self.waited))
    }

    /// A wait of `waited` brought `bytes`. At the end of a window the
    /// bytes it brought are held against the floor, and a new window
    /// starts.
    pub(crate) fn record(&mut self, waited: Duration, bytes: u64) -> Result<(), TooSlow> {
        if self.pace.min_rate == 0 {
            return Ok(());
        }
        self.waited += waited;
        self.bytes = self.bytes.saturating_add(bytes);
        if self.waited < self.pace.window {
            return Ok(());
        }
        let due = (self.pace.min_rate as f64 * self.pace.window.as_secs_f64()) as u64;
        if self.bytes < due {
            return Err(TooSlow);
        }
        self.waited = Duration::ZERO;
        self.bytes = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meter(rate: u64, window_s: u64) -> PaceMeter {
        PaceMeter::new(BodyPace {
            min_rate: rate,
            window: Duration::from_secs(window_s),
        })
    }

    #[test]
    fn a_byte_a_second_fails_at_the_end_of_the_first_window() {
        let mut m = meter(1024, 30);
        for _ in 0..29 {
            assert_eq!(m.record(Duration::from_secs(1), 1), Ok(()));
        }
        assert_eq!(m.budget(), Some(Duration::from_secs(1)));
        assert_eq!(m.record(Duration::from_secs(1), 1), Err(TooSlow));
    }

    #[test]
    fn enough_bytes_start_a_new_window() {
        let mut m = meter(1024, 10);
        assert_eq!(m.record(Duration::from_secs(10), 10 * 1024), Ok(()));
        assert_eq!(m.budget(), Some(Duration::from_secs(10)));
        assert_eq!(m.record(Duration::from_secs(4), 0), Ok(()));
        assert_eq!(m.budget(), Some(Duration::from_secs(6)));
        assert_eq!(m.record(Duration::from_secs(6), 100), Err(TooSlow));
    }

    #[test]
    fn zero_rate_is_no_floor() {
        let mut m = meter(0, 1);
        assert_eq!(m.budget(), None);
        assert_eq!(m.record(Duration::from_secs(1000), 0), Ok(()));
    }
}
