//! A size-limited tmpfs for fault tests: a cache root that fills up, so a
//! test can prove a full disk never leaves a corrupt entry behind. Mounted
//! on a fresh temporary folder and unmounted (lazily, if busy) on drop.

use std::path::Path;
use std::process::Command;

use tempfile::TempDir;

use crate::error::Result;
use crate::process::run;

/// A mounted tmpfs; unmounted and its mount point removed on drop.
#[derive(Debug)]
pub struct Tmpfs {
    dir: Option<TempDir>,
    mounted: bool,
}

impl Tmpfs {
    /// Mounts a tmpfs of `bytes` bytes (rounded up to pages by the kernel).
    pub fn mount(bytes: u64) -> Result<Tmpfs> {
        let dir = crate::process::temp_dir("bay-tmpfs-")?;
        let mut fs = Tmpfs {
            dir: Some(dir),
            mounted: false,
        };
        run(Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={bytes},mode=0755"),
                "tmpfs",
            ])
            .arg(fs.path()))?;
        fs.mounted = true;
        Ok(fs)
    }

    /// The mount point.
    pub fn path(&self) -> &Path {
        self.dir
            .as_ref()
            .map_or(Path::new("/nonexistent"), |d| d.path())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        if self.mounted {
            let path = self.path().to_owned();
            if run(Command::new("umount").arg(&path)).is_err() {
                // Something still has a file open: detach now, free later.
                let _ = run(Command::new("umount").arg("-l").arg(&path));
            }
        }
        // The folder is empty once unmounted; TempDir removes it.
        drop(self.dir.take());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg_attr(
        not(feature = "external"),
        ignore = "needs root and mount: scripts/test.sh runs it"
    )]
    fn tmpfs_fills_up_and_goes_away() {
        let fs = Tmpfs::mount(64 * 1024).expect("mount tmpfs");
        let path = fs.path().to_owned();
        let big = vec![7u8; 256 * 1024];
        let err = std::fs::write(path.join("big"), &big).expect_err("tmpfs must be full");
        assert_eq!(err.raw_os_error(), Some(libc::ENOSPC), "{err}");
        drop(fs);
        assert!(!path.exists(), "mount point left behind");
        let mounts = std::fs::read_to_string("/proc/mounts").expect("mounts");
        assert!(
            !mounts.contains(&path.display().to_string()),
            "still mounted"
        );
    }
}
