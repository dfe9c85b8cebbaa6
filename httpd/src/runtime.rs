//! The runtime set-up every bay program uses: one monoio runtime per
//! worker thread, each with its own SO_REUSEPORT listener on the shared
//! address, and a shutdown that stops accepting and lets requests in
//! flight finish within a grace period.
//!
//! The driver is chosen once for the process: io_uring when the kernel
//! (and a container's seccomp profile) allow it, epoll otherwise or when
//! `MONOIO_FORCE_LEGACY_DRIVER=1`; [`Driver`] can force either.

use std::future::Future;
use std::io;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::Duration;

use monoio::time::TimeDriver;
use monoio::{IoUringDriver, LegacyDriver, RuntimeBuilder};

use crate::config::{Driver, RunningDriver, ServerConfig};
use crate::conn::serve_connection;
use crate::handler::Handler;
use crate::shutdown::{Drain, Shutdown};

/// A monoio runtime of either driver, with timers enabled.
pub type Runtime = monoio::FusionRuntime<TimeDriver<IoUringDriver>, TimeDriver<LegacyDriver>>;

/// Where a server listens.
#[derive(Debug)]
pub enum Listen {
    /// Bind this address, one SO_REUSEPORT socket per worker (port 0
    /// picks one port for all).
    Addr(SocketAddr),
    /// Accept on this already-bound listener from every worker.
    Std(StdListener),
}

impl From<SocketAddr> for Listen {
    fn from(a: SocketAddr) -> Self {
        Self::Addr(a)
    }
}

impl From<StdListener> for Listen {
    fn from(l: StdListener) -> Self {
        Self::Std(l)
    }
}

/// Picks the driver the process will run.
pub fn resolve_driver(driver: Driver) -> io::Result<RunningDriver> {
    let uring = monoio::utils::detect_uring();
    match driver {
        Driver::Auto if uring => Ok(RunningDriver::Uring),
        Driver::Auto | Driver::Legacy => Ok(RunningDriver::Legacy),
        Driver::Uring if uring => Ok(RunningDriver::Uring),
        Driver::Uring => Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "io_uring is not available (kernel, seccomp, or MONOIO_FORCE_LEGACY_DRIVER)",
        )),
    }
}

/// Builds a runtime (timers on) of the given driver on this thread.
pub fn build_runtime(driver: RunningDriver) -> io::Result<Runtime> {
    Ok(match driver {
        RunningDriver::Uring => RuntimeBuilder::<IoUringDriver>::new()
            .enable_timer()
            .build()?
            .into(),
        RunningDriver::Legacy => RuntimeBuilder::<LegacyDriver>::new()
            .enable_timer()
            .build()?
            .into(),
    })
}

/// Runs `fut` to completion on a fresh runtime of the given driver.
pub fn block_on<F: Future>(driver: RunningDriver, fut: F) -> io::Result<F::Output> {
    Ok(build_runtime(driver)?.block_on(fut))
}

/// A running server.
#[derive(Debug)]
pub struct ServerHandle {
    addr: SocketAddr,
    driver: RunningDriver,
    shutdown: Shutdown,
    workers: Vec<JoinHandle<()>>,
}

impl ServerHandle {
    /// The address the server accepts on (the real port when bound to 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The driver the workers run.
    pub fn driver(&self) -> RunningDriver {
        self.driver
    }

    /// Number of worker threads.
    pub fn workers(&self) -> usize {
        self.workers.len()
    }

    /// Starts a graceful shutdown (same as SIGTERM with
    /// [`Shutdown::on_signals`]).
    pub fn shutdown(&self) {
        self.shutdown.trigger();
    }

    /// Waits for every worker to stop; call after a shutdown.
    pub fn join(self) {
        for w in self.workers {
            if w.join().is_err() {
                tracing::error!("an HTTP worker thread panicked");
            }
        }
    }
}

/// Starts the workers and returns once every one of them listens.
///
/// `factory` makes one handler per worker thread, on that worker's
/// runtime (it may `monoio::spawn` per-worker tasks). `shutdown` stops the
/// server: each worker stops accepting, wakes its idle connections, and
/// gives requests in flight up to `config.shutdown_grace`.
pub fn serve<H, F>(
    listen: impl Into<Listen>,
    factory: F,
    config: ServerConfig,
    shutdown: Shutdown,
) -> io::Result<ServerHandle>
where
    H: Handler,
    F: Fn() -> H + Send + Sync + 'static,
{
    let driver = resolve_driver(config.driver)?;
    let threads = match config.threads {
        0 => std::thread::available_parallelism().map_or(1, usize::from),
        n => n,
    };
    let listeners = bind_listeners(listen.into(), threads, driver)?;
    let addr = listeners
        .first()
        .ok_or_else(|| io::Error::other("no listener"))?
        .local_addr()?;
    let factory = Arc::new(factory);
    let config = Arc::new(config);
    let (ready_tx, ready_rx) = crossbeam_channel::bounded(threads);
    let mut workers = Vec::with_capacity(threads);
    for (i, listener) in listeners.into_iter().enumerate() {
        let (factory, config, stop, ready) = (
            Arc::clone(&factory),
            Arc::clone(&config),
            shutdown.clone(),
            ready_tx.clone(),
        );
        let spawned = std::thread::Builder::new()
            .name(format!("bay-http-{i}"))
            .spawn(move || run_worker(driver, listener, &*factory, &config, stop, &ready));
        match spawned {
            Ok(w) => workers.push(w),
            Err(e) => {
                shutdown.trigger();
                return Err(e);
            }
        }
    }
    drop(ready_tx);
    for _ in 0..workers.len() {
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                shutdown.trigger();
                return Err(e);
            }
            Err(_) => {
                shutdown.trigger();
                return Err(io::Error::other("an HTTP worker died while starting"));
            }
        }
    }
    tracing::info!(%addr, %driver, threads, "HTTP server listening");
    Ok(ServerHandle {
        addr,
        driver,
        shutdown,
        workers,
    })
}

fn bind_listeners(listen: Listen, n: usize, driver: RunningDriver) -> io::Result<Vec<StdListener>> {
    let listeners = match listen {
        Listen::Std(first) => {
            let mut all = Vec::with_capacity(n);
            for _ in 1..n {
                all.push(first.try_clone()?);
            }
            all.push(first);
            all
        }
        Listen::Addr(addr) => {
            let first = bind_reuse_port(addr)?;
            let addr = first.local_addr()?;
            let mut all = vec![first];
            for _ in 1..n {
                all.push(bind_reuse_port(addr)?);
            }
            all
        }
    };
    // epoll needs non-blocking sockets; io_uring accepts on blocking ones.
    for l in &listeners {
        l.set_nonblocking(driver == RunningDriver::Legacy)?;
    }
    Ok(listeners)
}

fn bind_reuse_port(addr: SocketAddr) -> io::Result<StdListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
}

fn run_worker<H: Handler>(
    driver: RunningDriver,
    listener: StdListener,
    factory: &(dyn Fn() -> H + Send + Sync),
    config: &ServerConfig,
    shutdown: Shutdown,
    ready: &crossbeam_channel::Sender<io::Result<()>>,
) {
    let mut rt = match build_runtime(driver) {
        Ok(rt) => rt,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let config = Rc::new(config.clone());
    rt.block_on(async move {
        // Inside the runtime, so that a handler may set up per-worker
        // tasks and sockets as it is made.
        let handler = Rc::new(factory());
        let listener = match monoio::net::TcpListener::from_std(listener) {
            Ok(l) => l,
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        };
        let _ = ready.send(Ok(()));
        accept_loop(listener, handler, config, shutdown).await;
    });
}

async fn accept_loop<H: Handler>(
    listener: monoio::net::TcpListener,
    handler: Rc<H>,
    config: Rc<ServerConfig>,
    shutdown: Shutdown,
) {
    let drain = Drain::new();
    loop {
        monoio::select! {
            _ = shutdown.wait() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let conn = serve_connection(
                        stream,
                        peer,
                        Rc::clone(&handler),
                        Rc::clone(&config),
                        Rc::clone(&drain),
                    );
                    monoio::spawn(ContainPanic {
                        inner: Box::pin(conn),
                        peer,
                    });
                }
                Err(e) => {
                    // Usually out of descriptors: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    monoio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
    drop(listener);
    drain.start();
    if monoio::time::timeout(config.shutdown_grace, drain.all_closed())
        .await
        .is_err()
    {
        tracing::warn!("shutdown grace period over; closing remaining connections");
    }
}

/// Runs a connection task, turning a panic in it (a handler bug) into a
/// closed connection instead of a dead worker and all its connections.
struct ContainPanic<F> {
    inner: Pin<Box<F>>,
    peer: SocketAddr,
}

impl<F: Future<Output = ()>> Future for ContainPanic<F> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        // The task's state is dropped right after a panic, never polled
        // again, so a broken invariant inside it cannot be observed.
        match catch_unwind(AssertUnwindSafe(|| this.inner.as_mut().poll(cx))) {
            Ok(p) => p,
            Err(_) => {
                tracing::error!(peer = %this.peer, "connection task panicked; closing it");
                Poll::Ready(())
            }
        }
    }
}
