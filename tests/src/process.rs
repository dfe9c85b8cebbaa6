//! Running a program to completion under a deadline.
//!
//! The child is waited for on a helper thread and the result handed back
//! over a channel, so the caller blocks on `recv_timeout` — a deadline, not
//! a sleep. A child that overruns is killed by its process id.

use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use anyhow::{bail, Context, Result};

/// Runs `cmd` with piped output and returns its output once it exits,
/// failing if it has not exited within `timeout`.
pub fn run_with_deadline(cmd: &mut Command, timeout: Duration) -> Result<Output> {
    let described = format!("{cmd:?}");
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {described}"))?;
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(timeout) {
        Ok(output) => output.with_context(|| format!("waiting for {described}")),
        Err(_) => {
            // Ends only the child started above, by its id.
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
            bail!("{described} did not finish within {timeout:?}")
        }
    }
}

/// Like [`run_with_deadline`], and fails unless the program exits 0;
/// returns its stdout as text.
pub fn run_ok(cmd: &mut Command, timeout: Duration) -> Result<String> {
    let described = format!("{cmd:?}");
    let output = run_with_deadline(cmd, timeout)?;
    if !output.status.success() {
        bail!(
            "{described} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    String::from_utf8(output.stdout).with_context(|| format!("{described} printed non-UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_output_of_a_quick_program() {
        let out = run_ok(Command::new("echo").arg("hi"), Duration::from_secs(10)).unwrap();
        assert_eq!(out, "hi\n");
        let err = run_ok(&mut Command::new("false"), Duration::from_secs(10)).unwrap_err();
        assert!(err.to_string().contains("failed"), "{err}");
    }

    #[test]
    fn stops_a_program_that_overruns_its_deadline() {
        let started = std::time::Instant::now();
        let err = run_with_deadline(Command::new("sleep").arg("30"), Duration::from_millis(200))
            .unwrap_err();
        assert!(err.to_string().contains("did not finish"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(10));
    }
}
