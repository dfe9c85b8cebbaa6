//! `bay-tracker keygen`: a new fleet key from the OS random source,
//! written to a file only its owner can read (or printed).

use std::io::Write;
use std::path::PathBuf;

use bay_wire::fleet::{FleetKey, KEY_LEN};

/// Options of `keygen`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Write the key here (refused if the file exists; mode 0600) instead
    /// of printing it.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// Why no key was written.
#[derive(Debug, thiserror::Error)]
pub enum KeygenError {
    #[error("no OS random source: {0}")]
    Random(String),
    #[error("cannot write {path}: {source} (keygen never overwrites a key)")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Makes a key and writes it where `args` says.
pub fn run(args: &Args, stdout: &mut impl Write) -> Result<(), KeygenError> {
    let mut bytes = [0u8; KEY_LEN];
    getrandom::getrandom(&mut bytes).map_err(|e| KeygenError::Random(e.to_string()))?;
    let text = format!(
        "# bay fleet key: give this file to every bay-tracker and bay-proxy (fleet_key_file)\n{}\n",
        FleetKey::from_bytes(bytes).to_hex()
    );
    match &args.out {
        None => stdout
            .write_all(text.as_bytes())
            .map_err(|source| KeygenError::Write {
                path: "<stdout>".into(),
                source,
            }),
        Some(path) => write_private(path, &text).map_err(|source| KeygenError::Write {
            path: path.clone(),
            source,
        }),
    }
}

fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn writes_a_readable_private_key_and_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fleet.key");
        let args = Args {
            out: Some(path.clone()),
        };
        run(&args, &mut Vec::new()).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(bay_wire::fleet::FleetKeys::parse(&text).is_ok());
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(run(&args, &mut Vec::new()).is_err());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
    }
}
