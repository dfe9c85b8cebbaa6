//! Finding bay's programs, built by `cargo build --workspace --bins`.
//!
//! Tests run the real binaries rather than calling library functions, so
//! that argument parsing, file handling and output are covered too.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

/// The workspace root (the parent of this crate).
pub fn workspace_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent().unwrap_or(here).to_path_buf()
}

/// The directory cargo puts debug binaries in: `$CARGO_TARGET_DIR/debug`
/// or `<workspace>/target/debug`.
pub fn target_debug_dir() -> PathBuf {
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                workspace_root().join(dir)
            }
        }
        None => workspace_root().join("target"),
    };
    target.join("debug")
}

/// The path of bay binary `name`, or an error saying how to build it.
pub fn bay_binary(name: &str) -> Result<PathBuf> {
    let path = target_debug_dir().join(name);
    if !path.is_file() {
        bail!(
            "{} does not exist: build the binaries first with \
             `cargo build --workspace --bins` (the test command is \
             `cargo build --workspace --bins && \
             cargo test --workspace --all-features`)",
            path.display()
        );
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_binary_says_how_to_build_it() {
        let err = bay_binary("no-such-bay-program").unwrap_err().to_string();
        assert!(err.contains("cargo build --workspace --bins"), "{err}");
        assert!(err.contains("no-such-bay-program"), "{err}");
    }
}
