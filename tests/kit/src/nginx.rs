//! nginx on loopback for tests that need a real, independent HTTP server:
//! redirects across origins, ranges, chunked bodies, access logs that show
//! what a client really sent.
//!
//! A test prepares a scratch folder ([`NginxRoot`]), writes the files it
//! serves there, and starts nginx with its own `server { ... }` blocks (and
//! any `log_format` they use) as the body of the `http` block. nginx runs
//! in the foreground as one process, with every path it writes (pid, logs,
//! temp folders) inside the scratch folder, so it needs no root and leaves
//! nothing behind; it stops when its handle drops.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use tempfile::TempDir;

use crate::error::{HarnessError, Result};
use crate::process::Daemon;

/// How long nginx gets to listen on every address.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A scratch folder for an nginx not started yet.
#[derive(Debug)]
pub struct NginxRoot {
    dir: TempDir,
}

/// A running nginx; stopped on drop, its folder removed with it.
#[derive(Debug)]
pub struct Nginx {
    daemon: Daemon,
    dir: TempDir,
}

impl NginxRoot {
    /// An empty scratch folder.
    pub fn new() -> Result<NginxRoot> {
        let dir = crate::process::temp_dir("bay-nginx-")?;
        Ok(NginxRoot { dir })
    }

    /// The folder: paths in the configuration are built from it.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `data` to `relative` under the folder, making its parents.
    pub fn write(&self, relative: &str, data: &[u8]) -> Result<PathBuf> {
        write_under(self.dir.path(), relative, data)
    }

    /// Starts nginx with `http_body` inside its `http { }` block and waits
    /// until every address in `listen` accepts connections.
    pub fn start(self, http_body: &str, listen: &[SocketAddr]) -> Result<Nginx> {
        let root = self.dir.path();
        let r = root.display();
        let conf = format!(
            "daemon off;\nmaster_process off;\nworker_processes 1;\npid {r}/nginx.pid;\n\
             error_log {r}/error.log info;\nevents {{ worker_connections 64; }}\n\
             http {{\n    client_body_temp_path {r}/body;\n    proxy_temp_path {r}/proxy;\n\
             fastcgi_temp_path {r}/fastcgi;\n    uwsgi_temp_path {r}/uwsgi;\n\
             scgi_temp_path {r}/scgi;\n    default_type application/octet-stream;\n\
             {http_body}\n}}\n"
        );
        let conf_path = root.join("nginx.conf");
        std::fs::write(&conf_path, conf).map_err(|e| HarnessError::io("write", &conf_path, e))?;
        let mut cmd = Command::new(program());
        // `-e` keeps the log of start-up itself out of /var/log, which a
        // test run may not write.
        cmd.arg("-p")
            .arg(root)
            .arg("-e")
            .arg(root.join("error.log"))
            .arg("-c")
            .arg(&conf_path);
        let mut daemon = Daemon::spawn("nginx", cmd, root)?;
        for addr in listen {
            daemon.wait_for_port(*addr, START_TIMEOUT)?;
        }
        Ok(Nginx {
            daemon,
            dir: self.dir,
        })
    }
}

impl Nginx {
    /// The scratch folder.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `data` to `relative` under the folder while nginx runs.
    pub fn write(&self, relative: &str, data: &[u8]) -> Result<PathBuf> {
        write_under(self.dir.path(), relative, data)
    }

    /// The path of log `name` (as the configuration named it) in the folder.
    pub fn log_path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The text of log `name` so far; empty before nginx first writes it.
    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.log_path(name)).unwrap_or_default()
    }

    /// nginx's error log.
    pub fn error_log(&self) -> PathBuf {
        self.log_path("error.log")
    }

    /// Fails if nginx has exited.
    pub fn check_running(&mut self) -> Result<()> {
        self.daemon.check_running()
    }
}

/// Debian installs nginx in /usr/sbin, which a user's PATH may lack.
fn program() -> &'static str {
    if Path::new("/usr/sbin/nginx").exists() {
        "/usr/sbin/nginx"
    } else {
        "nginx"
    }
}

fn write_under(root: &Path, relative: &str, data: &[u8]) -> Result<PathBuf> {
    let path = root.join(relative);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| HarnessError::io("create dir", parent, e))?;
    }
    std::fs::write(&path, data).map_err(|e| HarnessError::io("write", &path, e))?;
    Ok(path)
}
