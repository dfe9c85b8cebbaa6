//! monoio has two drivers, epoll ("legacy") and io_uring, with different
//! code paths for every socket and file operation; a test that passed on
//! one says little about the other. [`on_both_drivers`] runs the same test
//! future on a fresh runtime of each, built here with monoio's own
//! `RuntimeBuilder` so the kit needs no bay crate.
//!
//! Where the kernel (or a seccomp filter) refuses io_uring, the io_uring run
//! is skipped with a note on stderr rather than failed: the epoll run still
//! checks the code, and the machine, not the code, lacks the driver.

use std::fmt;
use std::future::Future;
use std::io;
use std::time::{Duration, Instant};

use crate::error::{HarnessError, Result};

/// How often [`eventually`] checks again; the runtime serves other tasks
/// meanwhile.
const POLL_INTERVAL: Duration = Duration::from_millis(5);

/// One of monoio's drivers, for runtimes and assert messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Driver {
    /// The epoll driver (monoio's `LegacyDriver`).
    Epoll,
    /// The io_uring driver.
    IoUring,
}

impl fmt::Display for Driver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Driver::Epoll => "epoll",
            Driver::IoUring => "io_uring",
        })
    }
}

impl Driver {
    /// Builds a runtime of this driver (timers on) on this thread and runs
    /// `fut` to completion on it.
    pub fn block_on<F: Future>(self, fut: F) -> io::Result<F::Output> {
        Ok(match self {
            Driver::Epoll => monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
                .enable_timer()
                .build()?
                .block_on(fut),
            Driver::IoUring => monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
                .enable_timer()
                .build()?
                .block_on(fut),
        })
    }
}

/// The drivers this machine can run: epoll always, io_uring where the
/// kernel offers the operations monoio needs.
pub fn available() -> Vec<Driver> {
    let mut all = vec![Driver::Epoll];
    if monoio::utils::detect_uring() {
        all.push(Driver::IoUring);
    } else {
        eprintln!("io_uring unavailable here: testing the epoll driver only");
    }
    all
}

/// [`available`] as another crate's driver setting, parsed from the names
/// "epoll" and "io_uring": for code that picks its runtime itself (a
/// server's or an engine's configuration), since the kit names no bay type.
pub fn available_as<T>() -> Result<Vec<T>>
where
    T: std::str::FromStr,
    T::Err: fmt::Display,
{
    available()
        .into_iter()
        .map(|d| {
            d.to_string()
                .parse()
                .map_err(|e: T::Err| HarnessError::parse("a driver name", e.to_string()))
        })
        .collect()
}

/// Runs `test` on a fresh epoll runtime, then on a fresh io_uring one.
///
/// # Panics
///
/// When a runtime of an available driver cannot be built: the test cannot
/// run at all, and its failure should say so.
pub fn on_both_drivers<F, Fut>(test: F)
where
    F: Fn(Driver) -> Fut,
    Fut: Future<Output = ()>,
{
    for driver in available() {
        if let Err(e) = driver.block_on(test(driver)) {
            panic!("cannot build a monoio runtime on the {driver} driver: {e}");
        }
    }
}

/// Polls `check` on the running monoio runtime until it holds, failing
/// after `timeout`: the async form of [`crate::process::wait_until`], for
/// conditions that tasks on the same runtime bring about.
pub async fn eventually(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> bool,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    while !check() {
        if Instant::now() >= deadline {
            return Err(HarnessError::Timeout {
                what: what.to_owned(),
                after: timeout,
                tail: String::new(),
            });
        }
        monoio::time::sleep(POLL_INTERVAL).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_once_per_available_driver_with_timers() {
        let runs = std::cell::RefCell::new(Vec::new());
        on_both_drivers(|driver| {
            let runs = &runs;
            async move {
                monoio::time::sleep(std::time::Duration::from_millis(1)).await;
                runs.borrow_mut().push(driver);
            }
        });
        assert_eq!(runs.into_inner(), available());
    }

    #[test]
    fn eventually_waits_for_a_task_and_times_out_otherwise() {
        on_both_drivers(|driver| async move {
            let flag = std::rc::Rc::new(std::cell::Cell::new(false));
            let set = flag.clone();
            monoio::spawn(async move {
                monoio::time::sleep(Duration::from_millis(20)).await;
                set.set(true);
            });
            eventually("the flag", Duration::from_secs(10), || flag.get())
                .await
                .unwrap_or_else(|e| panic!("{driver}: {e}"));
            let err = eventually("never", Duration::from_millis(30), || false)
                .await
                .expect_err("times out");
            assert!(err.to_string().contains("never"), "{driver}: {err}");
        });
    }

    #[test]
    fn displays_as_the_driver_names() {
        assert_eq!(Driver::Epoll.to_string(), "epoll");
        assert_eq!(Driver::IoUring.to_string(), "io_uring");
    }
}
