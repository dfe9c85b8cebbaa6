//! Server settings: thread count, driver choice, limits and timeouts.

use std::time::Duration;

use crate::head::HeadLimits;
use crate::pace::BodyPace;

/// Which monoio driver the workers run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Driver {
    /// io_uring when the kernel (and seccomp) allow it, else epoll;
    /// `MONOIO_FORCE_LEGACY_DRIVER=1` forces epoll.
    #[default]
    Auto,
    /// io_uring, failing to start when unavailable.
    Uring,
    /// epoll.
    Legacy,
}

impl std::str::FromStr for Driver {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(Self::Auto),
            "uring" | "io_uring" => Ok(Self::Uring),
            "legacy" | "epoll" => Ok(Self::Legacy),
            other => Err(format!("unknown driver {other:?} (auto, uring, legacy)")),
        }
    }
}

/// How a running server was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunningDriver {
    /// io_uring.
    Uring,
    /// epoll.
    Legacy,
}

impl std::fmt::Display for RunningDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Uring => "io_uring",
            Self::Legacy => "epoll",
        })
    }
}

/// Everything [`crate::serve`] can be told.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Worker threads; 0 means one per core.
    pub threads: usize,
    /// Driver choice.
    pub driver: Driver,
    /// Request-head limits (414, 431).
    pub limits: HeadLimits,
    /// Default request-body limit in bytes (413); handlers may override.
    pub max_body: u64,
    /// Time a client has to send a whole request head, from its first
    /// byte (and from accept for the first request); then 408.
    pub header_timeout: Duration,
    /// Time a keep-alive connection may sit between requests.
    pub idle_timeout: Duration,
    /// Longest wait for the next bytes of a request body.
    pub body_timeout: Duration,
    /// The slowest a request body may arrive (then 408, connection closed).
    pub body_pace: BodyPace,
    /// Longest wait for the client to take more response bytes.
    pub write_timeout: Duration,
    /// How long in-flight requests may run after shutdown starts.
    pub shutdown_grace: Duration,
    /// One log line per request (target `bay::access`).
    pub access_log: bool,
    /// Serve HTTPS with this configuration (see [`crate::server_tls`]).
    pub tls: Option<std::sync::Arc<rustls::ServerConfig>>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            threads: 0,
            driver: Driver::Auto,
            limits: HeadLimits::default(),
            max_body: 1 << 30,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            body_timeout: Duration::from_secs(30),
            body_pace: BodyPace::default(),
            write_timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(10),
            access_log: true,
            tls: None,
        }
    }
}
