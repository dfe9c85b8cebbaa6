//! Making a v2-only, single-file torrent from a blob.
//!
//! The output depends only on the blob and the options: no clock is read
//! (a creation date is written only when the caller gives one), so every
//! seeder that builds the torrent of a blob gets the same info hash.

use std::collections::BTreeMap;

use super::parse::check_path_element;
use super::{FileEntry, Info, InfoHashV2, Metainfo, MetainfoError, MAX_PIECES};
use crate::bencode::Owned;
use crate::merkle::{self, MIN_PIECE_LENGTH};

/// What goes into a torrent besides the data.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BuildOptions {
    /// Torrent name, which is also the file's name.
    pub name: String,
    /// Bytes per piece; chosen from the size when None.
    pub piece_length: Option<u64>,
    /// Tracker URLs, tried in this order (each one is its own BEP 12 tier,
    /// so a client falls over from the first to the next).
    pub trackers: Vec<String>,
    /// Web seed URLs (BEP 19). A URL ending in `/` names a directory the
    /// client appends the torrent name to; prefer that form, since
    /// libtorrent 2.0 treats a v2 file whose length is not a multiple of
    /// the piece length as multi-file (it pads the tail) and then reads
    /// every web seed as a directory.
    pub web_seeds: Vec<String>,
    /// Mark the torrent private (BEP 27).
    pub private: bool,
    /// Seconds since the Unix epoch; left out when None.
    pub creation_date: Option<i64>,
    /// Written as `created by` when given.
    pub created_by: Option<String>,
    /// Written as `comment` when given.
    pub comment: Option<String>,
}

/// Number of pieces [`choose_piece_length`] aims at, at most.
const TARGET_PIECES: u64 = 2048;
/// The largest piece length chosen automatically.
const MAX_AUTO_PIECE_LENGTH: u64 = 16 << 20;
/// The smallest piece length chosen automatically. Every piece costs a
/// HAVE to every peer, each in a packet of its own with its ACK, and work
/// in every engine; a piece must be whole before it is passed on, so
/// larger pieces slow the start of a swarm.
const MIN_AUTO_PIECE_LENGTH: u64 = 64 << 10;

/// A piece length for a blob of `size` bytes: the smallest power of two
/// that keeps it to at most 2048 pieces (so between 1025 and 2048 for
/// blobs over 128 MiB), within 64 KiB ..= 16 MiB.
pub fn choose_piece_length(size: u64) -> u64 {
    size.div_ceil(TARGET_PIECES)
        .checked_next_power_of_two()
        .unwrap_or(MAX_AUTO_PIECE_LENGTH)
        .clamp(
            MIN_AUTO_PIECE_LENGTH.max(MIN_PIECE_LENGTH),
            MAX_AUTO_PIECE_LENGTH,
        )
}

/// Builds the torrent of one blob.
pub fn build(blob: &[u8], options: &BuildOptions) -> Result<Metainfo, MetainfoError> {
    let piece_length = checked_piece_length(blob.len() as u64, options)?;
    let hashes = merkle::file_hashes(blob, piece_length).map_err(MetainfoError::PieceLength)?;
    assemble(blob.len() as u64, piece_length, hashes, options)
}

/// Builds the torrent of a blob of `length` bytes from its piece hashes,
/// as [`merkle::piece_hash`] gave them while the blob streamed past (the
/// blob need not be read again). `options.piece_length` must be the one
/// the hashes were made with.
pub fn build_from_piece_hashes(
    length: u64,
    piece_hashes: Vec<merkle::Hash>,
    options: &BuildOptions,
) -> Result<Metainfo, MetainfoError> {
    let piece_length = checked_piece_length(length, options)?;
    if piece_hashes.len() as u64 != merkle::num_pieces(length, piece_length) {
        return Err(MetainfoError::Build("piece hashes do not cover the blob"));
    }
    let level = merkle::piece_layer_level(piece_length).map_err(MetainfoError::PieceLength)?;
    let pieces_root = match piece_hashes.len() {
        0 => None,
        1 => piece_hashes.first().copied(),
        _ => Some(merkle::root_from_layer(&piece_hashes, level)),
    };
    let hashes = merkle::FileHashes {
        pieces_root,
        piece_layer: piece_hashes,
    };
    assemble(length, piece_length, hashes, options)
}

/// The piece length `options` asks for (or the one chosen for `length`),
/// once checked against the limits.
fn checked_piece_length(length: u64, options: &BuildOptions) -> Result<u64, MetainfoError> {
    check_path_element(&options.name).map_err(MetainfoError::Build)?;
    if options
        .trackers
        .iter()
        .chain(&options.web_seeds)
        .any(String::is_empty)
    {
        return Err(MetainfoError::Build("empty tracker or web seed URL"));
    }
    let piece_length = options
        .piece_length
        .unwrap_or_else(|| choose_piece_length(length));
    merkle::piece_layer_level(piece_length).map_err(MetainfoError::PieceLength)?;
    if merkle::num_pieces(length, piece_length) > MAX_PIECES {
        return Err(MetainfoError::TooManyPieces { max: MAX_PIECES });
    }
    Ok(piece_length)
}

fn assemble(
    length: u64,
    piece_length: u64,
    hashes: merkle::FileHashes,
    options: &BuildOptions,
) -> Result<Metainfo, MetainfoError> {
    let info = Info {
        name: options.name.clone(),
        piece_length,
        private: options.private,
        files: vec![FileEntry {
            path: vec![options.name.clone()],
            length,
            pieces_root: hashes.pieces_root,
            first_piece: 0,
        }],
    };
    let info_bytes = encode_info(&info).to_bytes();
    let mut piece_layers = BTreeMap::new();
    if let (true, Some(root)) = (length > piece_length, hashes.pieces_root) {
        piece_layers.insert(root, hashes.piece_layer);
    }
    let announce_list = if options.trackers.len() > 1 {
        options.trackers.iter().map(|t| vec![t.clone()]).collect()
    } else {
        Vec::new()
    };
    Ok(Metainfo {
        info_hash: InfoHashV2::of(&info_bytes),
        info_bytes,
        info,
        piece_layers,
        hybrid: false,
        announce: options.trackers.first().cloned(),
        announce_list,
        url_list: options.web_seeds.clone(),
        creation_date: options.creation_date,
        created_by: options.created_by.clone(),
        comment: options.comment.clone(),
    })
}

/// The info dictionary of `info`, canonically encoded.
fn encode_info(info: &Info) -> Owned {
    let mut tree = Owned::dict();
    for file in &info.files {
        let mut props = Owned::dict();
        props.insert(b"length", file.length);
        if let Some(root) = file.pieces_root {
            props.insert(b"pieces root", root.as_slice());
        }
        let mut leaf = Owned::dict();
        leaf.insert(b"", props);
        insert_path(&mut tree, &file.path, leaf);
    }
    let mut dict = Owned::dict();
    dict.insert(b"file tree", tree)
        .insert(b"meta version", 2i64)
        .insert(b"name", info.name.as_str())
        .insert(b"piece length", info.piece_length);
    if info.private {
        dict.insert(b"private", 1i64);
    }
    dict
}

/// Puts `leaf` at `path` in a tree of dictionaries, making directories on
/// the way.
fn insert_path(tree: &mut Owned, path: &[String], leaf: Owned) {
    let Owned::Dict(entries) = tree else {
        return;
    };
    match path {
        [] => {}
        [last] => {
            entries.insert(last.as_bytes().to_vec(), leaf);
        }
        [first, rest @ ..] => {
            let dir = entries
                .entry(first.as_bytes().to_vec())
                .or_insert_with(Owned::dict);
            insert_path(dir, rest, leaf);
        }
    }
}
