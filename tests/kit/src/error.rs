//! The one error type of the harness: every helper that starts, drives or
//! inspects a real program says which program and what went wrong, with the
//! tail of its output when there is one, so a failing test explains itself.

use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

/// Result of a harness helper.
pub type Result<T, E = HarnessError> = std::result::Result<T, E>;

/// What went wrong while running a real program for a test.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HarnessError {
    /// The program could not be started at all (missing binary, bad path).
    #[error("cannot start {program}: {source}")]
    Spawn {
        /// Program name as given to the command.
        program: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The program ran and exited unsuccessfully.
    #[error("{program} failed ({status}): {output}")]
    Failed {
        /// The command line, for the reader of the test output.
        program: String,
        /// Its exit status.
        status: ExitStatus,
        /// The tail of its standard error and output.
        output: String,
    },
    /// Something did not happen before its deadline.
    #[error("timed out after {after:?} waiting for {what}{}", tail_suffix(.tail))]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long it was awaited.
        after: Duration,
        /// The tail of the relevant log, if any.
        tail: String,
    },
    /// A daemon exited while it was expected to run.
    #[error("{program} exited early ({status}){}", tail_suffix(.tail))]
    Exited {
        /// Program name.
        program: String,
        /// Its exit status.
        status: ExitStatus,
        /// The tail of its log.
        tail: String,
    },
    /// File system trouble under a harness directory.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A program printed something the harness could not understand.
    #[error("cannot parse {what}: {detail}")]
    Parse {
        /// What was being parsed.
        what: String,
        /// Why it did not parse.
        detail: String,
    },
    /// A test key or certificate could not be made.
    #[error("cannot make {what}: {detail}")]
    Certificate {
        /// What was being made.
        what: String,
        /// Why it failed.
        detail: String,
    },
    /// A pulled image differs from the image that was pushed.
    #[error("pulled image mismatch: {0}")]
    Mismatch(String),
}

fn tail_suffix(tail: &str) -> String {
    if tail.is_empty() {
        String::new()
    } else {
        format!("; log tail:\n{tail}")
    }
}

impl HarnessError {
    /// An I/O error on `path` while doing `action`.
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        HarnessError::Io {
            action,
            path: path.into(),
            source,
        }
    }

    /// A parse error about `what`.
    pub fn parse(what: impl Into<String>, detail: impl Into<String>) -> Self {
        HarnessError::Parse {
            what: what.into(),
            detail: detail.into(),
        }
    }
}
