//! Live peers for the swarm tests: libtorrent through
//! `tests/py/lt_peer.py`, `bay-peer` as a child process, and v2 torrents
//! of test files made with bay's own metainfo builder.
//!
//! Long-running peers announce themselves with one line on stdout; a
//! reader thread hands lines over a channel so that the test waits for
//! them with a deadline. Children are ended by their own process id.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bay_wire::metainfo::{build, BuildOptions, Metainfo};
use bay_wire::oci::Digest;
use serde_json::Value;

use crate::bins::{bay_binary, workspace_root};
use crate::libtorrent::PYTHON;
use crate::process::run_ok;

/// A v2 torrent of `data`, named `name`, written to `dir/name.torrent`.
pub fn write_torrent(
    dir: &Path,
    name: &str,
    data: &[u8],
    piece_length: u64,
) -> Result<(PathBuf, Metainfo)> {
    let metainfo = build(
        data,
        &BuildOptions {
            name: name.into(),
            piece_length: Some(piece_length),
            ..BuildOptions::default()
        },
    )
    .context("building a torrent")?;
    let path = dir.join(format!("{name}.torrent"));
    std::fs::write(&path, metainfo.to_bytes())?;
    Ok((path, metainfo))
}

/// The OCI digest of `data`.
pub fn digest_of(data: &[u8]) -> Digest {
    Digest::sha256_of(data)
}

/// A child whose stdout lines arrive over a channel; killed (by its id)
/// when dropped if still running.
#[derive(Debug)]
pub struct Running {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    what: String,
}

impl Running {
    /// Starts `cmd` with piped stdin and stdout (stderr is inherited, so
    /// a failing test shows the peer's log).
    pub fn spawn(cmd: &mut Command) -> Result<Running> {
        let what = format!("{cmd:?}");
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {what}"))?;
        let stdout = child.stdout.take().context("no stdout")?;
        let stdin = child.stdin.take();
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Running {
            child,
            stdin,
            lines,
            what,
        })
    }

    /// The next line it prints, within `timeout`.
    pub fn next_line(&mut self, timeout: Duration) -> Result<String> {
        match self.lines.recv_timeout(timeout) {
            Ok(line) => Ok(line),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                bail!("{} printed nothing within {timeout:?}", self.what)
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = self.child.wait()?;
                bail!("{} ended ({status}) before printing", self.what)
            }
        }
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Closes its stdin (the driver's signal to stop) and waits up to
    /// `timeout` for it to exit.
    pub fn close_stdin_and_wait(&mut self, timeout: Duration) -> Result<()> {
        self.stdin = None;
        self.wait(timeout)
    }

    /// Sends SIGINT (bay-peer's signal to stop) and waits for the exit.
    pub fn interrupt_and_wait(&mut self, timeout: Duration) -> Result<()> {
        Command::new("kill")
            .arg("-INT")
            .arg(self.id().to_string())
            .status()?;
        self.wait(timeout)
    }

    /// Waits for the exit, polling with a deadline.
    pub fn wait(&mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                if !status.success() {
                    bail!("{} exited with {status}", self.what);
                }
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!("{} did not exit within {timeout:?}", self.what);
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Whether it has exited.
    pub fn has_exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Ends it with SIGKILL and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if !self.has_exited() {
            self.kill();
        }
    }
}

fn lt_peer_script() -> PathBuf {
    workspace_root().join("tests/py/lt_peer.py")
}

/// libtorrent seeding a torrent on loopback.
#[derive(Debug)]
pub struct LtSeed {
    running: Running,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl LtSeed {
    /// Seeds `torrent` from `save_dir` (which holds its file); returns
    /// once libtorrent has checked the data and listens.
    pub fn start(torrent: &Path, save_dir: &Path) -> Result<LtSeed> {
        let mut cmd = Command::new(PYTHON);
        cmd.arg(lt_peer_script())
            .args(["--timeout", "300", "seed"])
            .arg(torrent)
            .arg(save_dir);
        let mut running = Running::spawn(&mut cmd)?;
        let line = running.next_line(Duration::from_secs(60))?;
        let v: Value = serde_json::from_str(&line).with_context(|| format!("seed said {line}"))?;
        let port = v["port"].as_u64().context("no port")?;
        let port = u16::try_from(port)?;
        Ok(LtSeed {
            running,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        })
    }

    /// Stops it; returns the payload bytes it uploaded.
    pub fn stop(mut self) -> Result<u64> {
        self.running.stdin = None;
        let line = self.running.next_line(Duration::from_secs(30))?;
        self.running.wait(Duration::from_secs(30))?;
        let v: Value = serde_json::from_str(&line)?;
        v["uploaded"].as_u64().context("no uploaded count")
    }
}

/// Has libtorrent download `torrent` into `save_dir` from `peers`;
/// returns its report (`bytes`, `seconds`, `downloaded`).
pub fn lt_get(
    torrent: &Path,
    save_dir: &Path,
    peers: &[SocketAddr],
    timeout: Duration,
) -> Result<Value> {
    let mut cmd = Command::new(PYTHON);
    cmd.arg(lt_peer_script())
        .arg("--timeout")
        .arg(timeout.as_secs().to_string())
        .arg("--names")
        .arg("get")
        .arg(torrent)
        .arg(save_dir)
        .args(peers.iter().map(ToString::to_string));
    let out = run_ok(&mut cmd, timeout + Duration::from_secs(30))?;
    serde_json::from_str(out.trim()).with_context(|| format!("lt_peer get printed {out:?}"))
}

/// `bay-peer seed` running as a child.
#[derive(Debug)]
pub struct BaySeed {
    running: Running,
    /// Where it listens.
    pub addr: SocketAddr,
    /// The digest it printed.
    pub digest: String,
}

impl BaySeed {
    /// Starts `bay-peer seed` on an ephemeral loopback port and waits for
    /// its `seeding` line.
    pub fn start(torrent: &Path, file: &Path, root: Option<&Path>) -> Result<BaySeed> {
        let mut cmd = Command::new(bay_binary("bay-peer")?);
        cmd.arg("seed")
            .arg("--torrent")
            .arg(torrent)
            .arg("--file")
            .arg(file)
            .args(["--listen", "127.0.0.1:0"]);
        if let Some(root) = root {
            cmd.arg("--root").arg(root);
        }
        let mut running = Running::spawn(&mut cmd)?;
        let line = running.next_line(Duration::from_secs(60))?;
        let addr = field(&line, "listen")?.parse()?;
        let digest = field(&line, "digest")?.to_owned();
        Ok(BaySeed {
            running,
            addr,
            digest,
        })
    }

    /// Stops it with SIGINT; returns the bytes it uploaded.
    pub fn stop(mut self) -> Result<u64> {
        Command::new("kill")
            .arg("-INT")
            .arg(self.running.id().to_string())
            .status()?;
        let line = self.running.next_line(Duration::from_secs(30))?;
        self.running.wait(Duration::from_secs(30))?;
        Ok(field(&line, "uploaded")?.parse()?)
    }
}

/// The value of `key=value` in a bay-peer output line.
pub fn field<'a>(line: &'a str, key: &str) -> Result<&'a str> {
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
        .with_context(|| format!("no {key}= in {line:?}"))
}

/// Runs `bay-peer get` to completion; returns its `done` line.
pub fn bay_get(
    torrent: &Path,
    digest: &str,
    out: &Path,
    peers: &[SocketAddr],
    root: Option<&Path>,
    timeout: Duration,
) -> Result<String> {
    let mut cmd = bay_get_command(torrent, digest, out, peers, root)?;
    cmd.arg("--timeout").arg(timeout.as_secs().to_string());
    let stdout = run_ok(&mut cmd, timeout + Duration::from_secs(30))?;
    stdout
        .lines()
        .find(|l| l.starts_with("done "))
        .map(str::to_owned)
        .with_context(|| format!("bay-peer get printed {stdout:?}"))
}

/// The `bay-peer get` command line, for callers that run it themselves.
pub fn bay_get_command(
    torrent: &Path,
    digest: &str,
    out: &Path,
    peers: &[SocketAddr],
    root: Option<&Path>,
) -> Result<Command> {
    let mut cmd = Command::new(bay_binary("bay-peer")?);
    cmd.arg("get")
        .arg("--torrent")
        .arg(torrent)
        .arg("--digest")
        .arg(digest)
        .arg("--out")
        .arg(out);
    for p in peers {
        cmd.arg("--peer").arg(p.to_string());
    }
    if let Some(root) = root {
        cmd.arg("--root").arg(root);
    }
    Ok(cmd)
}

/// Fails unless the file at `path` holds exactly `want`.
pub fn assert_file_is(path: &Path, want: &[u8]) -> Result<()> {
    let got = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    if got.len() != want.len() {
        bail!(
            "{} is {} bytes, want {}",
            path.display(),
            got.len(),
            want.len()
        );
    }
    if let Some(at) = got.iter().zip(want).position(|(a, b)| a != b) {
        bail!("{} differs from the original at byte {at}", path.display());
    }
    Ok(())
}
