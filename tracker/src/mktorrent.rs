//! `bay-tracker mktorrent`: writes the BitTorrent v2 torrent of a file.
//!
//! The file is memory-mapped and handed to `bay_wire::metainfo::build`,
//! which does the hashing; this module only deals with the filesystem. The
//! torrent is written to a temporary file beside the target and renamed
//! into place, so a crash never leaves a truncated `.torrent` behind. The
//! last line printed is the v2 info hash in hex, for scripts to take.
//!
//! The torrent carries no creation date or creator, so the same file and
//! options always give the same info hash, whichever seed node makes it.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use bay_wire::metainfo::{self, BuildOptions, Metainfo, MetainfoError};

/// Arguments of `bay-tracker mktorrent`.
#[derive(Clone, Debug, clap::Args)]
pub struct Args {
    /// The file to make a torrent of.
    pub file: PathBuf,
    /// Where to write the torrent (default: FILE.torrent).
    #[arg(long, value_name = "PATH")]
    pub out: Option<PathBuf>,
    /// Bytes per piece: a power of two, at least 16384 (default: chosen
    /// from the size, aiming at 1000 to 2000 pieces).
    #[arg(long, value_name = "BYTES")]
    pub piece_length: Option<u64>,
    /// Tracker announce URL; repeat for fail-over trackers, in order.
    #[arg(long = "announce", value_name = "URL")]
    pub announce: Vec<String>,
    /// Web seed URL (BEP 19); may be repeated. Prefer a directory URL
    /// ending in `/`: clients append the torrent name to it.
    #[arg(long = "web-seed", value_name = "URL")]
    pub web_seeds: Vec<String>,
    /// Mark the torrent private (BEP 27): trackers only, no DHT or PEX.
    #[arg(long)]
    pub private: bool,
    /// Torrent and file name (default: FILE's name).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
}

/// Why no torrent was written. Each variant names the path at fault and
/// carries the underlying error in its message (not as a `source`, so that
/// it is printed once).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("cannot read {path}: {error}")]
    Read { path: PathBuf, error: io::Error },
    #[error("{path} is not a regular file")]
    NotAFile { path: PathBuf },
    #[error("{path} has no UTF-8 file name; give one with --name")]
    NoName { path: PathBuf },
    #[error("cannot make the torrent of {path}: {error}")]
    Build { path: PathBuf, error: MetainfoError },
    #[error("cannot write {path}: {error}")]
    Write { path: PathBuf, error: io::Error },
}

/// What was written.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// Where the torrent is.
    pub path: PathBuf,
    /// The torrent as written.
    pub metainfo: Metainfo,
}

/// Makes and writes the torrent, then prints a summary and, as the last
/// line, the v2 info hash in hex to `stdout`.
pub fn run(args: &Args, stdout: &mut dyn Write) -> Result<Outcome, Error> {
    let out_path = args.out.clone().unwrap_or_else(|| default_out(&args.file));
    let name = match &args.name {
        Some(name) => name.clone(),
        None => file_name(&args.file)?,
    };
    let options = BuildOptions {
        name,
        piece_length: args.piece_length,
        trackers: args.announce.clone(),
        web_seeds: args.web_seeds.clone(),
        private: args.private,
        ..BuildOptions::default()
    };
    let metainfo = build_from_file(&args.file, &options)?;
    write_atomically(&out_path, &metainfo.to_bytes())?;
    let info = metainfo.info();
    let report = format!(
        "wrote {} ({} bytes, {} pieces of {} bytes)\n{}\n",
        out_path.display(),
        info.total_length(),
        info.num_pieces(),
        info.piece_length,
        metainfo.info_hash().to_hex()
    );
    stdout
        .write_all(report.as_bytes())
        .map_err(|error| Error::Write {
            path: PathBuf::from("<stdout>"),
            error,
        })?;
    Ok(Outcome {
        path: out_path,
        metainfo,
    })
}

/// FILE.torrent beside FILE.
fn default_out(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".torrent");
    PathBuf::from(name)
}

fn file_name(file: &Path) -> Result<String, Error> {
    file.file_name()
        .and_then(|n| n.to_str())
        .map(str::to_owned)
        .ok_or_else(|| Error::NoName {
            path: file.to_owned(),
        })
}

/// Maps the file and builds its torrent.
fn build_from_file(path: &Path, options: &BuildOptions) -> Result<Metainfo, Error> {
    let read_error = |error| Error::Read {
        path: path.to_owned(),
        error,
    };
    let file = File::open(path).map_err(read_error)?;
    let meta = file.metadata().map_err(read_error)?;
    if !meta.is_file() {
        return Err(Error::NotAFile {
            path: path.to_owned(),
        });
    }
    let build_error = |error| Error::Build {
        path: path.to_owned(),
        error,
    };
    // A zero-length file cannot be mapped.
    if meta.len() == 0 {
        return metainfo::build(&[], options).map_err(build_error);
    }
    // SAFETY: the map is only read. If another process truncates the file
    // meanwhile, reads past the new end fault (SIGBUS); if it rewrites the
    // file, the torrent describes a mix of old and new bytes. Both are the
    // caller's to avoid, as with any tool that hashes a file in place.
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(read_error)?;
    metainfo::build(&map, options).map_err(build_error)
}

/// Writes `bytes` to a temporary file beside `path`, then renames it over
/// `path`.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let write_error = |error| Error::Write {
        path: path.to_owned(),
        error,
    };
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(format!(".tmp-{}", std::process::id()));
    let tmp = PathBuf::from(tmp_name);
    let result = File::create(&tmp)
        .and_then(|mut f| f.write_all(bytes).and_then(|()| f.sync_all()))
        .and_then(|()| fs::rename(&tmp, path));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(write_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(file: PathBuf) -> Args {
        Args {
            file,
            out: None,
            piece_length: None,
            announce: Vec::new(),
            web_seeds: Vec::new(),
            private: false,
            name: None,
        }
    }

    #[test]
    fn writes_a_torrent_and_prints_its_hash_last() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("layer.tar");
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7) as u8).collect();
        fs::write(&file, &data).unwrap();
        let mut out = Vec::new();
        let a = Args {
            announce: vec!["http://127.0.0.1:1/announce".into()],
            private: true,
            ..args(file.clone())
        };
        let outcome = run(&a, &mut out).unwrap();
        assert_eq!(outcome.path, dir.path().join("layer.tar.torrent"));
        let written = fs::read(&outcome.path).unwrap();
        let parsed = Metainfo::from_bytes(&written).unwrap();
        assert_eq!(parsed.info().name, "layer.tar");
        assert!(parsed.info().private);
        let text = String::from_utf8(out).unwrap();
        let last = text.lines().last().unwrap();
        assert_eq!(last, parsed.info_hash().to_hex());
        for piece in 0..parsed.info().num_pieces() {
            let start = piece as usize * parsed.info().piece_length as usize;
            let size = parsed.info().piece_size(piece).unwrap() as usize;
            parsed
                .verify_piece(piece, &data[start..start + size])
                .unwrap();
        }
    }

    #[test]
    fn handles_an_empty_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("empty");
        fs::write(&file, b"").unwrap();
        let outcome = run(&args(file), &mut Vec::new()).unwrap();
        assert_eq!(outcome.metainfo.info().total_length(), 0);
    }

    #[test]
    fn reports_missing_file_and_unwritable_output() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let err = run(&args(missing.clone()), &mut Vec::new()).unwrap_err();
        assert!(matches!(err, Error::Read { .. }));
        assert!(err.to_string().contains("nope"), "{err}");

        let err = run(&args(dir.path().to_owned()), &mut Vec::new()).unwrap_err();
        assert!(matches!(err, Error::NotAFile { .. }), "{err}");

        let file = dir.path().join("f");
        fs::write(&file, b"x").unwrap();
        let a = Args {
            out: Some(dir.path().join("no/such/dir/f.torrent")),
            ..args(file.clone())
        };
        let err = run(&a, &mut Vec::new()).unwrap_err();
        assert!(matches!(err, Error::Write { .. }), "{err}");
        assert!(err.to_string().contains("no/such/dir"), "{err}");

        let a = Args {
            piece_length: Some(1000),
            ..args(file)
        };
        let err = run(&a, &mut Vec::new()).unwrap_err();
        assert!(matches!(err, Error::Build { .. }), "{err}");
    }
}
