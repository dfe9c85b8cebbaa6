//! The libtorrent side of the cross-checks: `tests/py/lt_driver.py` run
//! with Debian's `/usr/bin/python3` and its `python3-libtorrent` module.
//!
//! Each call runs the driver once and parses the one JSON object it
//! prints. The driver's subcommands are documented in the script.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::bins::workspace_root;
use crate::process::run_ok;

/// The python that has the libtorrent module (the first python3 on PATH
/// may be another build without it).
pub const PYTHON: &str = "/usr/bin/python3";

/// How long one driver call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(120);

fn driver_script() -> PathBuf {
    workspace_root().join("tests/py/lt_driver.py")
}

fn call(args: &[&std::ffi::OsStr]) -> Result<Value> {
    if !Path::new(PYTHON).exists() {
        bail!(
            "{PYTHON} is missing: install python3-libtorrent (apt-get install python3-libtorrent)"
        );
    }
    let mut cmd = Command::new(PYTHON);
    cmd.arg(driver_script()).args(args);
    let stdout = run_ok(&mut cmd, CALL_TIMEOUT)
        .context("libtorrent driver failed (is python3-libtorrent installed?)")?;
    serde_json::from_str(stdout.trim()).with_context(|| format!("driver printed {stdout:?}"))
}

/// What libtorrent reads from a torrent (see `info` in the driver).
pub fn info(torrent: &Path) -> Result<Value> {
    call(&["info".as_ref(), torrent.as_os_str()])
}

/// Makes a v2-only torrent of `file` with libtorrent; `piece_length` 0
/// lets libtorrent choose.
pub fn make(file: &Path, out: &Path, piece_length: u64) -> Result<Value> {
    let pl = piece_length.to_string();
    call(&[
        "make".as_ref(),
        file.as_os_str(),
        out.as_os_str(),
        pl.as_ref(),
    ])
}

/// Has libtorrent hash the data in `save_dir` against `torrent`; returns
/// its report (`have`, `num_pieces`, `is_seeding`, `missing`).
pub fn check(torrent: &Path, save_dir: &Path) -> Result<Value> {
    call(&[
        "check".as_ref(),
        torrent.as_os_str(),
        save_dir.as_os_str(),
        "60".as_ref(),
    ])
}

/// The hex strings of a JSON array, or an error naming `what`.
pub fn hex_list(value: &Value, what: &str) -> Result<Vec<String>> {
    value
        .as_array()
        .with_context(|| format!("{what} is not a list: {value}"))?
        .iter()
        .map(|v| {
            v.as_str()
                .map(str::to_owned)
                .with_context(|| format!("{what} holds a non-string: {v}"))
        })
        .collect()
}
