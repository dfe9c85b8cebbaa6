//! Shutdown signalling: a process-wide trigger and a per-worker drain flag.
//!
//! [`Shutdown`] crosses threads (signal handler, tests, every worker);
//! [`Drain`] lives on one worker and wakes its idle connections so that
//! they close instead of waiting out their keep-alive timeout.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::{poll_fn, Future};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Poll, Waker};

/// A cloneable, thread-safe "stop now" trigger.
///
/// Triggering is one-way: every clone sees it, and every pending
/// [`Shutdown::wait`] completes.
#[derive(Clone, Debug, Default)]
pub struct Shutdown {
    inner: Arc<ShutdownInner>,
}

#[derive(Debug, Default)]
struct ShutdownInner {
    triggered: AtomicBool,
    wakers: Mutex<Vec<Waker>>,
    /// Wakes threads blocked in [`Shutdown::wait_blocking`].
    pulled: std::sync::Condvar,
}

impl Shutdown {
    /// A trigger nobody has pulled yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// A trigger that SIGINT and SIGTERM pull.
    ///
    /// The process can hold one such handler: a second call fails.
    pub fn on_signals() -> Result<Self, ctrlc::Error> {
        let shutdown = Self::new();
        let pulled = shutdown.clone();
        ctrlc::set_handler(move || pulled.trigger())?;
        Ok(shutdown)
    }

    /// Pulls the trigger and wakes every waiter.
    pub fn trigger(&self) {
        self.inner.triggered.store(true, Ordering::SeqCst);
        let wakers = std::mem::take(&mut *self.lock());
        self.inner.pulled.notify_all();
        for w in wakers {
            w.wake();
        }
    }

    /// Blocks this thread until the trigger is pulled or `timeout` passes;
    /// returns whether it was pulled. For housekeeping threads.
    pub fn wait_blocking(&self, timeout: std::time::Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        let mut guard = self.lock();
        loop {
            if self.is_triggered() {
                return true;
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return false;
            }
            guard = self
                .inner
                .pulled
                .wait_timeout(guard, left)
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
    }

    /// Whether the trigger was pulled.
    pub fn is_triggered(&self) -> bool {
        self.inner.triggered.load(Ordering::SeqCst)
    }

    /// Completes once the trigger is pulled.
    pub fn wait(&self) -> impl Future<Output = ()> + '_ {
        poll_fn(move |cx| {
            if self.is_triggered() {
                return Poll::Ready(());
            }
            let mut wakers = self.lock();
            if !wakers.iter().any(|w| w.will_wake(cx.waker())) {
                wakers.push(cx.waker().clone());
            }
            drop(wakers);
            // A trigger between the check and the push would be missed.
            if self.is_triggered() {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Waker>> {
        // A panicking waker cannot leave the list inconsistent.
        self.inner
            .wakers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// One worker's draining state: a flag, its waiters, and the count of
/// connections still open.
#[derive(Debug, Default)]
pub(crate) struct Drain {
    draining: Cell<bool>,
    next_id: Cell<u64>,
    waiters: RefCell<HashMap<u64, Waker>>,
    open: Cell<usize>,
    idle_waker: RefCell<Option<Waker>>,
}

impl Drain {
    pub(crate) fn new() -> Rc<Self> {
        Rc::new(Self::default())
    }

    pub(crate) fn is_draining(&self) -> bool {
        self.draining.get()
    }

    /// Starts draining: wakes every connection waiting for a request.
    pub(crate) fn start(&self) {
        self.draining.set(true);
        let waiters = std::mem::take(&mut *self.waiters.borrow_mut());
        for w in waiters.into_values() {
            w.wake();
        }
    }

    /// Completes when draining starts.
    pub(crate) async fn wait(&self) {
        let id = self.next_id.get();
        self.next_id.set(id.wrapping_add(1));
        let _guard = WaiterGuard { drain: self, id };
        poll_fn(|cx| {
            if self.draining.get() {
                Poll::Ready(())
            } else {
                self.waiters.borrow_mut().insert(id, cx.waker().clone());
                Poll::Pending
            }
        })
        .await;
    }

    /// Counts a connection as open until the guard drops.
    pub(crate) fn open_connection(self: &Rc<Self>) -> ConnectionGuard {
        self.open.set(self.open.get() + 1);
        ConnectionGuard {
            drain: Rc::clone(self),
        }
    }

    /// Completes when no connection is open.
    pub(crate) async fn all_closed(&self) {
        poll_fn(|cx| {
            if self.open.get() == 0 {
                Poll::Ready(())
            } else {
                *self.idle_waker.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            }
        })
        .await;
    }
}

struct WaiterGuard<'a> {
    drain: &'a Drain,
    id: u64,
}

impl Drop for WaiterGuard<'_> {
    fn drop(&mut self) {
        self.drain.waiters.borrow_mut().remove(&self.id);
    }
}

/// Keeps a connection counted as open.
#[derive(Debug)]
pub(crate) struct ConnectionGuard {
    drain: Rc<Drain>,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        let open = self.drain.open.get().saturating_sub(1);
        self.drain.open.set(open);
        if open == 0 {
            if let Some(w) = self.drain.idle_waker.borrow_mut().take() {
                w.wake();
            }
        }
    }
}
