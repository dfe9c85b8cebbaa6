//! The monoio driver of an [`Announcer`] over HTTP(S) trackers.
//!
//! It only moves bytes: it performs each request the announcer asks for
//! with the shared [`Client`], decodes the body with bay-wire, feeds the
//! outcome back, hands learned peers to a callback, and sleeps until the
//! announcer's next deadline or until its owner changes something through
//! [`AnnounceControl`]. UDP trackers (BEP 15) are not driven here: their
//! URLs fail like an unreachable tracker, so the walk moves past them.

use std::cell::{Cell, RefCell};
use std::future::{poll_fn, Future};
use std::net::SocketAddr;
use std::pin::pin;
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use bay_httpd::client::{Client, Request, Url};
use bay_wire::tracker::{AnnounceResponse, Reply};

use super::announcer::{AnnounceRequest, Announcer};
use super::error::AnnounceError;
use super::tiers::origin_of;

/// Largest announce response read: a compact list of a few hundred peers
/// is a few kilobytes.
const MAX_RESPONSE: usize = 256 * 1024;

/// A handle on an announcer shared by its owner and [`run_http`] on one
/// thread. Every change through it wakes the driver.
#[derive(Debug, Clone)]
pub struct AnnounceControl {
    announcer: Rc<RefCell<Announcer>>,
    wake: Rc<Wake>,
    signer: Option<crate::fleet::Signer>,
}

impl AnnounceControl {
    /// Wraps `announcer` for driving.
    pub fn new(announcer: Announcer) -> AnnounceControl {
        AnnounceControl {
            announcer: Rc::new(RefCell::new(announcer)),
            wake: Rc::new(Wake::default()),
            signer: None,
        }
    }

    /// Signs every announce with the fleet key (keyed mode).
    #[must_use]
    pub fn signed_by(mut self, signer: Option<crate::fleet::Signer>) -> AnnounceControl {
        self.signer = signer;
        self
    }

    /// Runs `f` on the announcer, then wakes the driver.
    pub fn with<R>(&self, f: impl FnOnce(&mut Announcer) -> R) -> R {
        let result = f(&mut self.announcer.borrow_mut());
        self.wake.notify();
        result
    }

    /// See [`Announcer::set_progress`].
    pub fn set_progress(&self, uploaded: u64, downloaded: u64, left: u64) {
        self.with(|a| a.set_progress(uploaded, downloaded, left));
    }

    /// See [`Announcer::completed`].
    pub fn completed(&self) {
        self.with(|a| a.completed(Instant::now()));
    }

    /// See [`Announcer::want_peers`].
    pub fn want_peers(&self) {
        self.with(|a| a.want_peers(Instant::now()));
    }

    /// See [`Announcer::stop`]; [`run_http`] returns once `stopped` was
    /// sent (or every tracker failed it).
    pub fn stop(&self) {
        self.with(|a| a.stop(Instant::now()));
    }

    /// See [`Announcer::hand_over`]; [`run_http`] returns at once.
    pub fn hand_over(&self) {
        self.with(Announcer::hand_over);
    }
}

/// Drives the announcer of `control` until it is finished, giving each
/// exchange at most `timeout` and each batch of learned peers to
/// `on_peers`.
pub async fn run_http(
    client: Client,
    control: AnnounceControl,
    timeout: Duration,
    mut on_peers: impl FnMut(Vec<SocketAddr>),
) {
    loop {
        let now = Instant::now();
        let (request, deadline, peers, finished) = {
            let mut a = control.announcer.borrow_mut();
            let request = a.poll_announce(now);
            (request, a.poll_timeout(), a.poll_peers(), a.is_finished())
        };
        if !peers.is_empty() {
            on_peers(peers);
        }
        if finished {
            return;
        }
        match request {
            Some(request) => exchange(&client, &control, request, timeout).await,
            None => wait(&control.wake, deadline).await,
        }
    }
}

/// Performs one announce and reports it, unless the owner abandons it
/// (by stopping) first.
async fn exchange(
    client: &Client,
    control: &AnnounceControl,
    request: AnnounceRequest,
    timeout: Duration,
) {
    let signer = control.signer.as_ref();
    let mut outcome = pin!(monoio::time::timeout(
        timeout,
        perform(client, signer, &request)
    ));
    loop {
        monoio::select! {
            result = &mut outcome => {
                let result = result.unwrap_or(Err(AnnounceError::Timeout { after: timeout }));
                if let Err(error) = &result {
                    tracing::debug!(tracker = %origin_of(&request.tracker), %error, "announce failed");
                }
                control
                    .announcer
                    .borrow_mut()
                    .handle_response(&request, result, Instant::now());
                return;
            }
            () = control.wake.notified() => {
                if !control.announcer.borrow().awaits(&request) {
                    return;
                }
            }
        }
    }
}

async fn perform(
    client: &Client,
    signer: Option<&crate::fleet::Signer>,
    request: &AnnounceRequest,
) -> Result<AnnounceResponse, AnnounceError> {
    let url = Url::parse(&request.url)?;
    let target = url.target().to_owned();
    let get = crate::fleet::maybe_sign(signer, Request::get(url), "GET", &target, b"");
    let response = client.send(get).await?;
    let status = response.status();
    let body = response.bytes(MAX_RESPONSE).await?;
    match AnnounceResponse::decode(&body) {
        Ok(Reply::Success(r)) if status == 200 => Ok(r),
        Ok(Reply::Failure(reason)) => Err(AnnounceError::Refused { reason }),
        Err(e) if status == 200 => Err(AnnounceError::Malformed(e)),
        _ => Err(AnnounceError::Status { status }),
    }
}

async fn wait(wake: &Wake, deadline: Option<Instant>) {
    match deadline {
        Some(at) => {
            let at = monoio::time::Instant::from_std(at);
            monoio::select! {
                () = monoio::time::sleep_until(at) => {}
                () = wake.notified() => {}
            }
        }
        None => wake.notified().await,
    }
}

/// A single-thread notification: `notify` makes the next (or current)
/// `notified` complete.
#[derive(Debug, Default)]
struct Wake {
    pending: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

impl Wake {
    fn notify(&self) {
        self.pending.set(true);
        if let Some(waker) = self.waker.borrow_mut().take() {
            waker.wake();
        }
    }

    fn notified(&self) -> impl Future<Output = ()> + '_ {
        poll_fn(|cx| {
            if self.pending.replace(false) {
                Poll::Ready(())
            } else {
                *self.waker.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            }
        })
    }
}
