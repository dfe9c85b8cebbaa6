//! Commands from any thread to the engine's thread: a crossbeam channel
//! plus a waker, so the engine's task sleeps until a command arrives.

use std::future::poll_fn;
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};

use crossbeam_channel::{Receiver, Sender, TryRecvError};

#[derive(Debug, Default)]
struct Wake(Mutex<Option<Waker>>);

impl Wake {
    fn slot(&self) -> std::sync::MutexGuard<'_, Option<Waker>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The sending side; clone it freely.
#[derive(Debug)]
pub(super) struct Outbox<T> {
    tx: Sender<T>,
    wake: Arc<Wake>,
}

impl<T> Clone for Outbox<T> {
    fn clone(&self) -> Self {
        Outbox {
            tx: self.tx.clone(),
            wake: self.wake.clone(),
        }
    }
}

/// The receiving side, on the engine's thread.
#[derive(Debug)]
pub(super) struct Inbox<T> {
    rx: Receiver<T>,
    wake: Arc<Wake>,
}

pub(super) fn mailbox<T>() -> (Outbox<T>, Inbox<T>) {
    let (tx, rx) = crossbeam_channel::unbounded();
    let wake = Arc::new(Wake::default());
    (
        Outbox {
            tx,
            wake: wake.clone(),
        },
        Inbox { rx, wake },
    )
}

impl<T> Outbox<T> {
    /// Sends; false if the engine is gone.
    pub(super) fn send(&self, item: T) -> bool {
        let sent = self.tx.send(item).is_ok();
        if let Some(w) = self.wake.slot().take() {
            w.wake();
        }
        sent
    }
}

impl<T> Inbox<T> {
    /// The next item, or `None` once every sender is gone.
    pub(super) async fn recv(&self) -> Option<T> {
        poll_fn(|cx| {
            match self.rx.try_recv() {
                Ok(item) => return Poll::Ready(Some(item)),
                Err(TryRecvError::Disconnected) => return Poll::Ready(None),
                Err(TryRecvError::Empty) => {}
            }
            *self.wake.slot() = Some(cx.waker().clone());
            // A send between the first look and storing the waker would
            // otherwise be missed.
            match self.rx.try_recv() {
                Ok(item) => Poll::Ready(Some(item)),
                Err(TryRecvError::Disconnected) => Poll::Ready(None),
                Err(TryRecvError::Empty) => Poll::Pending,
            }
        })
        .await
    }
}
