//! What the two programs' configurations share: reading a TOML file over
//! defaults (unknown keys are the caller's `deny_unknown_fields`), printing
//! the effective configuration, and the log set-up.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;

/// A configuration file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
}

/// Reads a TOML configuration file.
pub fn read_toml<T: DeserializeOwned>(path: &Path) -> Result<T, ConfigFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigFileError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| ConfigFileError::Parse {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// A configuration as TOML, as `--print-config` shows it.
pub fn to_toml<T: Serialize>(config: &T) -> String {
    toml::to_string(config).unwrap_or_default()
}

/// A bandwidth limit as written in a configuration (`100MB`, `1GiB`, a
/// size per second); `None` or empty means unlimited.
pub fn rate_limit(text: Option<&str>) -> Result<Option<u64>, String> {
    match text.map(str::trim) {
        None | Some("") => Ok(None),
        Some(t) => crate::size::parse_size(t)
            .map(Some)
            .map_err(|e| format!("bandwidth limit: {e}")),
    }
}

/// Structured logs on stderr; `RUST_LOG` filters (default `info`), and
/// `BAY_LOG_FORMAT=json` switches to JSON lines.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colour codes only for a terminal: logs sent to a file or a journal
    // stay plain text that grep and log shippers can read.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if std::env::var("BAY_LOG_FORMAT").is_ok_and(|v| v == "json") {
        builder.json().init();
    } else {
        builder.init();
    }
}
