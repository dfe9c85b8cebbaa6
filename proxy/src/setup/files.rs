//! The files setup touches: read under the host's root, written
//! atomically (a temporary file, fsync, rename, fsync of the folder) with
//! the original's mode and owner, each original kept as a backup with a
//! record of what was written, so that `--undo` can put every file back.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::SetupError;

/// The host's file system as seen from here: `/` on the host, or the
/// folder the host's root is mounted at (a node's `/` in a pod).
#[derive(Debug, Clone)]
pub struct HostFs {
    root: PathBuf,
}

impl HostFs {
    pub fn new(root: &Path) -> HostFs {
        HostFs {
            root: root.to_path_buf(),
        }
    }

    /// Where the host's `path` is from here.
    pub fn real(&self, path: &str) -> PathBuf {
        self.root.join(path.trim_start_matches('/'))
    }

    /// The text of the host's `path`; `None` when there is no such file.
    pub fn read(&self, path: &str) -> Result<Option<String>, SetupError> {
        let real = self.real(path);
        match fs::read(&real) {
            Ok(bytes) => String::from_utf8(bytes)
                .map(Some)
                .map_err(|_| SetupError::Malformed {
                    path: path.into(),
                    format: "UTF-8 text",
                    message: "the file holds bytes that are not text".into(),
                }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(SetupError::Read {
                path: path.into(),
                source,
            }),
        }
    }

    /// The `*.conf` files of the host's folder `dir`, sorted as podman
    /// reads them.
    pub fn conf_files(&self, dir: &str) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(self.real(dir))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| n.ends_with(".conf"))
            .collect();
        names.sort();
        names
            .into_iter()
            .map(|n| format!("{}/{n}", dir.trim_end_matches('/')))
            .collect()
    }

    /// Replaces the host's `path` with `text`, or removes it (`None`).
    pub fn put(&self, path: &str, text: Option<&str>) -> Result<(), SetupError> {
        let real = self.real(path);
        let result = match text {
            Some(text) => write_atomic(&real, text.as_bytes()),
            None => match fs::remove_file(&real) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                other => other,
            },
        };
        result.map_err(|source| SetupError::Write {
            path: path.into(),
            source,
        })
    }
}

/// Writes `bytes` to `path` so that a reader sees the old file or the new
/// one, never a mix, keeping the old file's mode and owner.
fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    fs::create_dir_all(dir)?;
    let old = fs::metadata(path).ok();
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(
        ".{}.bay-{}",
        name.as_deref().unwrap_or("file"),
        std::process::id()
    ));
    let result = (|| {
        let mut file = fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        let mode = old.as_ref().map_or(0o644, |m| m.mode() & 0o7777);
        file.set_permissions(fs::Permissions::from_mode(mode))?;
        if let Some(m) = &old {
            std::os::unix::fs::fchown(&file, Some(m.uid()), Some(m.gid()))?;
        }
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    match result {
        // A file bind-mounted into a container (/etc/hosts) cannot be
        // replaced, only rewritten in place.
        Err(e) if e.kind() == std::io::ErrorKind::ResourceBusy => {
            let _ = fs::remove_file(&tmp);
            let mut file = fs::OpenOptions::new()
                .write(true)
                .truncate(true)
                .open(path)?;
            file.write_all(bytes)?;
            file.sync_all()
        }
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            Err(e)
        }
        Ok(()) => fs::File::open(dir)?.sync_all(),
    }
}

/// The hex SHA-256 of a file's text (absent files hash as nothing).
pub fn fingerprint(text: Option<&str>) -> String {
    match text {
        None => "absent".into(),
        Some(t) => format!("{:x}", Sha256::digest(t.as_bytes())),
    }
}

/// What setup changed for one runtime: each file, its backup, and a
/// fingerprint of what setup wrote.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Record {
    pub files: Vec<Entry>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Entry {
    /// The host's path.
    pub path: String,
    /// The original's copy in the backup folder; `None` when setup
    /// created the file (undo removes it).
    pub backup: Option<String>,
    /// What setup last wrote there.
    pub written: String,
}

/// A runtime's backup folder: the record and the originals.
#[derive(Debug)]
pub struct Backups {
    host: HostFs,
    dir: String,
}

impl Backups {
    pub fn new(host: &HostFs, backup_dir: &str, runtime: &str) -> Backups {
        Backups {
            host: host.clone(),
            dir: format!("{}/{runtime}", backup_dir.trim_end_matches('/')),
        }
    }

    fn record_path(&self) -> String {
        format!("{}/record.json", self.dir)
    }

    /// The folder, as the host names it.
    pub fn dir(&self) -> &str {
        &self.dir
    }

    /// The record of an earlier setup, if any.
    pub fn record(&self) -> Result<Option<Record>, SetupError> {
        let path = self.record_path();
        let Some(text) = self.host.read(&path)? else {
            return Ok(None);
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| SetupError::Malformed {
                path,
                format: "JSON",
                message: e.to_string(),
            })
    }

    fn save(&self, record: &Record) -> Result<(), SetupError> {
        let text = serde_json::to_string_pretty(record).map_err(|e| SetupError::Malformed {
            path: self.record_path(),
            format: "JSON",
            message: e.to_string(),
        })?;
        self.host.put(&self.record_path(), Some(&text))
    }

    /// Keeps the original of every file not backed up yet, then records
    /// what will be written. Runs before any file changes, so that an
    /// interrupted setup can still be undone.
    pub fn prepare(&self, changes: &[(String, Option<String>, String)]) -> Result<(), SetupError> {
        let mut record = self.record()?.unwrap_or_default();
        for (path, old, new) in changes {
            match record.files.iter_mut().find(|e| &e.path == path) {
                Some(entry) => entry.written = fingerprint(Some(new)),
                None => {
                    let backup = match old {
                        Some(text) => {
                            let name = format!("{}.orig", record.files.len());
                            self.host.put(&format!("{}/{name}", self.dir), Some(text))?;
                            Some(name)
                        }
                        None => None,
                    };
                    record.files.push(Entry {
                        path: path.clone(),
                        backup,
                        written: fingerprint(Some(new)),
                    });
                }
            }
        }
        self.save(&record)
    }

    /// The original text of a recorded file (`None`: it did not exist).
    pub fn original(&self, entry: &Entry) -> Result<Option<String>, SetupError> {
        match &entry.backup {
            None => Ok(None),
            Some(name) => {
                let path = format!("{}/{name}", self.dir);
                self.host
                    .read(&path)?
                    .map(Some)
                    .ok_or(SetupError::BackupMissing { path })
            }
        }
    }

    /// Removes the record and the originals once they are restored.
    pub fn clear(&self, record: &Record) -> Result<(), SetupError> {
        for entry in &record.files {
            if let Some(name) = &entry.backup {
                self.host.put(&format!("{}/{name}", self.dir), None)?;
            }
        }
        self.host.put(&self.record_path(), None)?;
        let _ = fs::remove_dir(self.host.real(&self.dir));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_keeps_mode_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let host = HostFs::new(dir.path());
        let real = host.real("/etc/x.conf");
        fs::create_dir_all(real.parent().unwrap()).unwrap();
        fs::write(&real, "old").unwrap();
        fs::set_permissions(&real, fs::Permissions::from_mode(0o600)).unwrap();
        host.put("/etc/x.conf", Some("new")).unwrap();
        assert_eq!(fs::read_to_string(&real).unwrap(), "new");
        assert_eq!(fs::metadata(&real).unwrap().mode() & 0o777, 0o600);
        assert_eq!(fs::read_dir(real.parent().unwrap()).unwrap().count(), 1);
        host.put("/etc/new/y.conf", Some("y")).unwrap();
        assert_eq!(host.read("/etc/new/y.conf").unwrap().as_deref(), Some("y"));
        host.put("/etc/new/y.conf", None).unwrap();
        assert_eq!(host.read("/etc/new/y.conf").unwrap(), None);
    }

    #[test]
    fn text_that_is_not_utf8_is_malformed() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("bin"), [0xff, 0xfe]).unwrap();
        let err = HostFs::new(dir.path()).read("/bin").unwrap_err();
        assert!(matches!(err, SetupError::Malformed { .. }), "{err}");
    }
}
