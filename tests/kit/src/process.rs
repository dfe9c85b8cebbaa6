//! Child processes for tests, of two kinds. Programs that run to
//! completion ([`run`], [`run_ok`], [`run_with_deadline`]) give back their
//! output or an error carrying its tail. Programs that keep running
//! ([`Daemon`]) write their output to a log file in the test's temporary
//! folder and are stopped (with their process group) when their handle
//! drops, also when the test panics; readiness is polled against a deadline
//! instead of slept for.
//!
//! When a handle drops during a panic its log tail is printed, so a failing
//! test shows what the program said. A child that overruns a deadline is
//! killed by its process id, never by name.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::error::{HarnessError, Result};

/// How often readiness conditions are re-checked.
const POLL_INTERVAL: Duration = Duration::from_millis(25);
/// How long a stopped program gets to exit after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// Lines of log printed when a handle drops during a panic.
const PANIC_TAIL_LINES: usize = 20;

/// A running program owned by a test; stopped on drop.
#[derive(Debug)]
pub struct Daemon {
    name: String,
    child: Child,
    log: PathBuf,
    stopped: bool,
}

impl Daemon {
    /// Starts `cmd` in its own process group with stdout and stderr appended
    /// to `log_dir/<name>.log`.
    pub fn spawn(name: &str, mut cmd: Command, log_dir: &Path) -> Result<Daemon> {
        let log = log_dir.join(format!("{name}.log"));
        let out = File::options()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(|e| HarnessError::io("create log", &log, e))?;
        let err = out
            .try_clone()
            .map_err(|e| HarnessError::io("clone log handle", &log, e))?;
        cmd.stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0);
        let child = cmd.spawn().map_err(|source| HarnessError::Spawn {
            program: program_name(&cmd),
            source,
        })?;
        Ok(Daemon {
            name: name.to_owned(),
            child,
            log,
            stopped: false,
        })
    }

    /// The name the daemon was started under.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Process id of the program.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The file holding the program's output.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The last `lines` lines of the program's output.
    pub fn tail(&self, lines: usize) -> String {
        tail_of_file(&self.log, lines)
    }

    /// Fails with [`HarnessError::Exited`] if the program is no longer running.
    pub fn check_running(&mut self) -> Result<()> {
        match self.child.try_wait() {
            Ok(Some(status)) => Err(HarnessError::Exited {
                program: self.name.clone(),
                status,
                tail: self.tail(PANIC_TAIL_LINES),
            }),
            Ok(None) => Ok(()),
            Err(e) => Err(HarnessError::io("wait for", &self.log, e)),
        }
    }

    /// Waits until `addr` accepts TCP connections, failing early if the
    /// program exits.
    pub fn wait_for_port(&mut self, addr: SocketAddr, timeout: Duration) -> Result<()> {
        self.wait_until(
            &format!("{} to listen on {addr}", self.name),
            timeout,
            || TcpStream::connect_timeout(&addr, POLL_INTERVAL).is_ok(),
        )
    }

    /// Waits until `cond` holds, failing early if the program exits; a
    /// timeout error carries the log tail.
    pub fn wait_until(
        &mut self,
        what: &str,
        timeout: Duration,
        mut cond: impl FnMut() -> bool,
    ) -> Result<()> {
        let log = self.log.clone();
        poll(what, timeout, &log, || {
            self.check_running()?;
            Ok(cond())
        })
    }

    /// Sends `signal` to the program's whole process group.
    pub fn signal(&self, signal: i32) {
        if let Ok(pgid) = i32::try_from(self.child.id()) {
            // SAFETY: kill(2) with a negative pid signals a process group we
            // created; it touches no memory.
            unsafe {
                libc::kill(-pgid, signal);
            }
        }
    }

    /// Kills the program at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        self.signal(libc::SIGKILL);
        let _ = self.child.wait();
        self.stopped = true;
    }

    /// Stops the program: SIGTERM to its group, SIGKILL after a grace period.
    pub fn stop(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        self.signal(libc::SIGTERM);
        let deadline = Instant::now() + STOP_GRACE;
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_)) | Err(_)) {
                // The leader is gone; make sure no straggler of its group is left.
                self.signal(libc::SIGKILL);
                return;
            }
            std::thread::sleep(POLL_INTERVAL);
        }
        self.signal(libc::SIGKILL);
        let _ = self.child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- last lines of {} ({}) ---\n{}",
                self.name,
                self.log.display(),
                self.tail(PANIC_TAIL_LINES)
            );
        }
        self.stop();
    }
}

/// Polls `cond` until it holds or `timeout` passes.
pub fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) -> Result<()> {
    poll(what, timeout, Path::new(""), || Ok(cond()))
}

/// Calls `step` until it says done or fails, or `timeout` passes; a timeout
/// carries the tail of `log` (none for an empty path).
fn poll(
    what: &str,
    timeout: Duration,
    log: &Path,
    mut step: impl FnMut() -> Result<bool>,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if step()? {
            return Ok(());
        }
        if Instant::now() >= deadline {
            let tail = match log.as_os_str().is_empty() {
                true => String::new(),
                false => tail_of_file(log, PANIC_TAIL_LINES),
            };
            return Err(HarnessError::Timeout {
                what: what.to_owned(),
                after: timeout,
                tail,
            });
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// Waits until something accepts TCP connections on `addr`.
pub fn wait_for_port(addr: SocketAddr, timeout: Duration) -> Result<()> {
    wait_until(&format!("a listener on {addr}"), timeout, || {
        TcpStream::connect_timeout(&addr, POLL_INTERVAL).is_ok()
    })
}

/// `PROGRAM` run here, or inside network namespace `netns` through
/// `ip netns exec` (which execs it, so the pid is the program's own).
pub fn command_in(netns: Option<&str>, program: &str) -> Command {
    match netns {
        Some(ns) => {
            let mut cmd = Command::new("ip");
            cmd.args(["netns", "exec", ns, program]);
            cmd
        }
        None => Command::new(program),
    }
}

/// Whether something listens on TCP `port` inside network namespace
/// `netns` (asked of `ss`, so no connection is made to the listener).
pub fn listening_in(netns: &str, port: u16) -> bool {
    let filter = format!("sport = :{port}");
    Command::new("ip")
        .args(["netns", "exec", netns, "ss", "-Htln", &filter])
        .output()
        .map(|o| o.status.success() && !o.stdout.is_empty())
        .unwrap_or(false)
}

/// A fresh folder under the system's temporary folder, named `prefix…`
/// so a leftover says which fixture left it; removed on drop.
pub fn temp_dir(prefix: &str) -> Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .map_err(|e| HarnessError::io("create temp dir", std::env::temp_dir(), e))
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> Result<u16> {
    let listener = TcpListener::bind(("127.0.0.1", 0))
        .map_err(|e| HarnessError::io("bind a free port on", "127.0.0.1", e))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| HarnessError::io("read the port of", "127.0.0.1", e))
}

/// A port on 127.0.0.1 free for both TCP and UDP a moment ago, for
/// programs that listen on both (opentracker).
pub fn free_tcp_and_udp_port() -> Result<u16> {
    loop {
        let port = free_port()?;
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
}

/// A port on 127.0.0.1 where nothing listens (for fallbacks that must fail).
pub fn closed_port() -> Result<u16> {
    free_port()
}

/// Runs `cmd` with piped output and returns its output once it exits,
/// failing if it has not exited within `timeout`.
pub fn run_with_deadline(cmd: &mut Command, timeout: Duration) -> anyhow::Result<Output> {
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
pub fn run_ok(cmd: &mut Command, timeout: Duration) -> anyhow::Result<String> {
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

/// Runs `cmd` to completion; a non-zero exit becomes
/// [`HarnessError::Failed`] with the tail of its output.
pub fn run(cmd: &mut Command) -> Result<Output> {
    let program = command_line(cmd);
    let output = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|source| HarnessError::Spawn {
            program: program_name(cmd),
            source,
        })?;
    if output.status.success() {
        Ok(output)
    } else {
        let mut text = String::from_utf8_lossy(&output.stderr).into_owned();
        text.push_str(&String::from_utf8_lossy(&output.stdout));
        Err(HarnessError::Failed {
            program,
            status: output.status,
            output: last_lines(&text, PANIC_TAIL_LINES),
        })
    }
}

/// Runs every command to completion, all started at the same moment (one
/// thread each, released together), and reports how long each took, in
/// the order given. For "N hosts pull at once" measurements.
pub fn run_all_at_once(cmds: Vec<Command>) -> Vec<Result<(Duration, Output)>> {
    let barrier = std::sync::Barrier::new(cmds.len());
    thread::scope(|s| {
        let handles: Vec<_> = cmds
            .into_iter()
            .map(|mut cmd| {
                let barrier = &barrier;
                s.spawn(move || {
                    barrier.wait();
                    let start = Instant::now();
                    run(&mut cmd).map(|out| (start.elapsed(), out))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(HarnessError::parse("a timed run", "its thread panicked"))
                })
            })
            .collect()
    })
}

/// Runs `cmd` and returns its standard output as text.
pub fn run_stdout(cmd: &mut Command) -> Result<String> {
    run(cmd).map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
}

/// The last `lines` lines of the file at `path` (reads at most its last 64 KiB).
pub fn tail_of_file(path: &Path, lines: usize) -> String {
    let Ok(mut file) = File::open(path) else {
        return String::new();
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(64 * 1024)));
    let mut buf = Vec::new();
    let _ = file.read_to_end(&mut buf);
    last_lines(&String::from_utf8_lossy(&buf), lines)
}

fn last_lines(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn program_name(cmd: &Command) -> String {
    cmd.get_program().to_string_lossy().into_owned()
}

/// The command line for error messages. Arguments following a
/// credentials flag are masked so secrets never reach test output.
fn command_line(cmd: &Command) -> String {
    let mut out = program_name(cmd);
    let mut mask_next = false;
    for arg in cmd.get_args() {
        let arg = arg.to_string_lossy();
        out.push(' ');
        if mask_next {
            out.push_str("***");
            mask_next = false;
        } else if let Some((flag, _)) = arg.split_once('=').filter(|(f, _)| is_secret_flag(f)) {
            out.push_str(flag);
            out.push_str("=***");
        } else {
            mask_next = is_secret_flag(&arg);
            out.push_str(&arg);
        }
    }
    out
}

fn is_secret_flag(flag: &str) -> bool {
    matches!(
        flag,
        "--creds" | "--src-creds" | "--dest-creds" | "--user" | "-u" | "--password" | "-p"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_masks_credentials() {
        let mut cmd = Command::new("skopeo");
        cmd.args([
            "copy",
            "--src-creds",
            "alice:secret",
            "--dest-creds=bob:pw",
            "x",
        ]);
        let line = command_line(&cmd);
        assert!(!line.contains("secret") && !line.contains("pw"), "{line}");
        assert!(line.contains("--src-creds ***"), "{line}");
    }

    #[test]
    fn last_lines_keeps_the_end() {
        assert_eq!(last_lines("a\nb\nc\n", 2), "b\nc");
        assert_eq!(last_lines("a", 5), "a");
    }

    #[test]
    #[cfg_attr(
        not(feature = "external"),
        ignore = "runs echo and false: scripts/test.sh runs it"
    )]
    fn returns_output_of_a_quick_program() {
        let out = run_ok(Command::new("echo").arg("hi"), Duration::from_secs(10)).unwrap();
        assert_eq!(out, "hi\n");
        let err = run_ok(&mut Command::new("false"), Duration::from_secs(10)).unwrap_err();
        assert!(err.to_string().contains("failed"), "{err}");
    }

    #[test]
    #[cfg_attr(
        not(feature = "external"),
        ignore = "runs sleep: scripts/test.sh runs it"
    )]
    fn stops_a_program_that_overruns_its_deadline() {
        let started = std::time::Instant::now();
        let err = run_with_deadline(Command::new("sleep").arg("30"), Duration::from_millis(200))
            .unwrap_err();
        assert!(err.to_string().contains("did not finish"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(10));
    }
}
