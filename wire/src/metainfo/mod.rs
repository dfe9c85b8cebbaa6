//! BitTorrent v2 metainfo (BEP 52): the `.torrent` that names a blob.
//!
//! It owns the torrent as bay makes it ([`build`]: one file, v2 only,
//! deterministic bytes) and as bay reads it ([`Metainfo::from_bytes`]: v2
//! or hybrid torrents, of which only the v2 parts are used). Parsing
//! validates everything a peer would later rely on: the meta version, the
//! piece length, the file tree and its paths, and every piece layer
//! against its file's pieces root, so that a [`Metainfo`] in hand can check
//! pieces without further doubt.
//!
//! The info hash is SHA-256 over the info dictionary's bytes exactly as
//! they appear in the file ([`InfoHashV2`]); trackers and the peer
//! handshake use its first 20 bytes.
//!
//! Pieces are numbered over the whole torrent: each non-empty file starts
//! on a piece boundary, in file-tree order, and its last piece may be
//! short. A piece is checked against its file's piece layer, or, for a
//! file of one piece, against the pieces root.
//!
//! Layout: [`build`] makes torrents, `parse` reads them, this module holds
//! the types they share and piece lookup and checking.

mod build;
mod parse;

use std::collections::BTreeMap;
use std::fmt;

use sha2::{Digest, Sha256};

use crate::bencode::{encode_bytes, encode_int, BencodeError};
use crate::hex::{self, HexError};
use crate::merkle::{self, Hash, MerkleError};

pub use build::{build, build_from_piece_hashes, choose_piece_length, BuildOptions};

/// The largest `.torrent` bay reads (64 MiB: the piece layer of a 4 GiB
/// file in 16 KiB pieces is 8 MiB).
pub const MAX_TORRENT_SIZE: usize = 64 << 20;
/// The most files a torrent may list.
pub const MAX_FILES: usize = 100_000;
/// The deepest path a file may have in the file tree.
pub const MAX_PATH_DEPTH: usize = 32;
/// The longest path element or torrent name, in bytes.
pub const MAX_NAME_LEN: usize = 1024;
/// The most pieces a torrent may have (peer messages index them with u32;
/// this keeps bitfields to 256 MiB at worst).
pub const MAX_PIECES: u64 = 1 << 31;

/// The v2 info hash: SHA-256 of the bencoded info dictionary.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InfoHashV2(pub [u8; 32]);

impl InfoHashV2 {
    /// Hashes the info dictionary's exact bytes.
    pub fn of(info_bytes: &[u8]) -> InfoHashV2 {
        InfoHashV2(Sha256::digest(info_bytes).into())
    }

    /// The first 20 bytes, which trackers and the handshake carry.
    pub fn truncated(&self) -> [u8; 20] {
        let mut out = [0; 20];
        out.copy_from_slice(&self.0[..20]);
        out
    }

    /// Lowercase hex of all 32 bytes.
    pub fn to_hex(&self) -> String {
        hex::encode(&self.0)
    }

    /// Parses 64 lowercase hex digits.
    pub fn from_hex(text: &str) -> Result<InfoHashV2, HexError> {
        hex::decode_array(text).map(InfoHashV2)
    }
}

impl fmt::Display for InfoHashV2 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for InfoHashV2 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InfoHashV2({})", self.to_hex())
    }
}

/// One file of the torrent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileEntry {
    /// Path elements under the torrent; a single-file torrent has one,
    /// the file's name. Each is UTF-8, non-empty, not `.` or `..`, without
    /// `/`, `\` or NUL.
    pub path: Vec<String>,
    /// Length in bytes.
    pub length: u64,
    /// Root of the file's merkle tree; None exactly when the file is empty.
    pub pieces_root: Option<Hash>,
    /// Index of the file's first piece in the torrent.
    pub first_piece: u32,
}

impl FileEntry {
    /// Number of pieces the file spans.
    pub fn num_pieces(&self, piece_length: u64) -> u32 {
        // Bounded by MAX_PIECES when the entry was made.
        u32::try_from(merkle::num_pieces(self.length, piece_length)).unwrap_or(u32::MAX)
    }

    /// Whether the file needs a piece layer in the torrent (more than one
    /// piece).
    pub fn has_piece_layer(&self, piece_length: u64) -> bool {
        self.length > piece_length
    }
}

/// The info dictionary, as far as bay uses it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Info {
    /// Display name (and, for a single file, the file's name).
    pub name: String,
    /// Bytes per piece: a power of two, at least 16 KiB.
    pub piece_length: u64,
    /// BEP 27: announce only to the listed trackers, no DHT or PEX.
    pub private: bool,
    /// Files in file-tree order, which is also piece order.
    pub files: Vec<FileEntry>,
}

impl Info {
    /// Total number of pieces.
    pub fn num_pieces(&self) -> u32 {
        self.files
            .last()
            .map_or(0, |f| f.first_piece + f.num_pieces(self.piece_length))
    }

    /// Total bytes of all files.
    pub fn total_length(&self) -> u64 {
        self.files
            .iter()
            .fold(0u64, |sum, f| sum.saturating_add(f.length))
    }

    /// The file a piece belongs to and the piece's index within it.
    pub fn locate_piece(&self, piece: u32) -> Option<(usize, u32)> {
        // Files are sorted by first piece; empty files own no piece.
        let pos = self.files.partition_point(|f| f.first_piece <= piece);
        let index = pos.checked_sub(1)?;
        let file = self.files.get(index)?;
        let within = piece - file.first_piece;
        (within < file.num_pieces(self.piece_length)).then_some((index, within))
    }

    /// Length of a piece (the last piece of a file may be short).
    pub fn piece_size(&self, piece: u32) -> Option<u64> {
        let (index, within) = self.locate_piece(piece)?;
        let file = self.files.get(index)?;
        let start = u64::from(within) * self.piece_length;
        Some((file.length - start).min(self.piece_length))
    }
}

/// Why a torrent is not acceptable, or could not be made.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MetainfoError {
    #[error("torrent is {size} bytes, more than the {max} allowed")]
    TooLarge { size: usize, max: usize },
    #[error("torrent is not valid bencode: {0}")]
    Bencode(#[from] BencodeError),
    #[error("`{key}` is missing")]
    MissingKey { key: &'static str },
    #[error("`{key}` should be {expected}")]
    WrongType {
        key: &'static str,
        expected: &'static str,
    },
    #[error("this is a BitTorrent v1 torrent (no `meta version`); bay reads v2 and hybrid torrents only")]
    V1Only,
    #[error("torrent has meta version {0}; this version of bay reads meta version 2")]
    UnsupportedMetaVersion(i64),
    #[error("bad piece length: {0}")]
    PieceLength(MerkleError),
    #[error("invalid file tree at `{path}`: {reason}")]
    FileTree { path: String, reason: &'static str },
    #[error("more than {max} files")]
    TooManyFiles { max: usize },
    #[error("more than {max} pieces")]
    TooManyPieces { max: u64 },
    #[error("no piece layer for `{path}`, which spans more than one piece")]
    MissingPieceLayer { path: String },
    #[error("piece layer of `{path}` holds {actual} bytes, expected {expected}")]
    PieceLayerLength {
        path: String,
        expected: u64,
        actual: usize,
    },
    #[error("piece layer of `{path}` does not hash to its pieces root")]
    PieceLayerMismatch { path: String },
    #[error("piece layer {root} belongs to no file of more than one piece")]
    UnexpectedPieceLayer { root: String },
    #[error("piece {piece} does not exist (the torrent has {pieces})")]
    NoSuchPiece { piece: u32, pieces: u32 },
    #[error("piece {piece} is {actual} bytes, expected {expected}")]
    PieceSize {
        piece: u32,
        expected: u64,
        actual: usize,
    },
    #[error("piece {piece} does not match its hash")]
    PieceMismatch { piece: u32 },
    #[error("cannot make a torrent: {0}")]
    Build(&'static str),
}

/// A validated v2 torrent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Metainfo {
    info: Info,
    info_bytes: Vec<u8>,
    info_hash: InfoHashV2,
    /// Piece layers by pieces root, for files of more than one piece.
    piece_layers: BTreeMap<Hash, Vec<Hash>>,
    /// Whether the info dictionary also carries v1 keys.
    hybrid: bool,
    /// Tracker URL (BEP 3); the first tracker when there are several.
    pub announce: Option<String>,
    /// Tracker tiers (BEP 12).
    pub announce_list: Vec<Vec<String>>,
    /// Web seeds (BEP 19).
    pub url_list: Vec<String>,
    /// Seconds since the Unix epoch, when the creator gave one.
    pub creation_date: Option<i64>,
    /// Free text naming the program that made the torrent.
    pub created_by: Option<String>,
    /// Free text.
    pub comment: Option<String>,
}

impl Metainfo {
    /// Parses and validates a `.torrent`.
    pub fn from_bytes(input: &[u8]) -> Result<Metainfo, MetainfoError> {
        parse::metainfo(input)
    }

    /// The info dictionary's fields.
    pub fn info(&self) -> &Info {
        &self.info
    }

    /// The info dictionary's exact bytes (what BEP 9 metadata exchange
    /// sends and what the info hash covers).
    pub fn info_bytes(&self) -> &[u8] {
        &self.info_bytes
    }

    /// SHA-256 of [`Metainfo::info_bytes`].
    pub fn info_hash(&self) -> InfoHashV2 {
        self.info_hash
    }

    /// Whether the info dictionary also has v1 keys (a hybrid torrent).
    pub fn is_hybrid(&self) -> bool {
        self.hybrid
    }

    /// The piece-layer hashes of file `index`: one per piece. A file of one
    /// piece yields its pieces root, an empty file nothing.
    pub fn piece_layer(&self, index: usize) -> Option<Vec<Hash>> {
        let file = self.info.files.get(index)?;
        let root = match file.pieces_root {
            None => return Some(Vec::new()),
            Some(root) => root,
        };
        if file.has_piece_layer(self.info.piece_length) {
            self.piece_layers.get(&root).cloned()
        } else {
            Some(vec![root])
        }
    }

    /// The hash piece `piece` must have.
    pub fn piece_hash(&self, piece: u32) -> Option<Hash> {
        let (index, within) = self.info.locate_piece(piece)?;
        let file = self.info.files.get(index)?;
        let root = file.pieces_root?;
        if !file.has_piece_layer(self.info.piece_length) {
            return Some(root);
        }
        self.piece_layers
            .get(&root)
            .and_then(|layer| layer.get(within as usize))
            .copied()
    }

    /// Checks the data of piece `piece` (exactly the piece's bytes).
    pub fn verify_piece(&self, piece: u32, data: &[u8]) -> Result<(), MetainfoError> {
        let pieces = self.info.num_pieces();
        let no_such = MetainfoError::NoSuchPiece { piece, pieces };
        let (index, _) = self.info.locate_piece(piece).ok_or(no_such.clone())?;
        let file = self.info.files.get(index).ok_or(no_such.clone())?;
        let expected_len = self.info.piece_size(piece).ok_or(no_such.clone())?;
        if data.len() as u64 != expected_len {
            return Err(MetainfoError::PieceSize {
                piece,
                expected: expected_len,
                actual: data.len(),
            });
        }
        let expected = self.piece_hash(piece).ok_or(no_such)?;
        merkle::verify_piece(&expected, data, self.info.piece_length, file.length)
            .map_err(|_| MetainfoError::PieceMismatch { piece })
    }

    /// The `.torrent` bytes: the info dictionary exactly as held, the
    /// fields of this struct encoded canonically around it; other top-level
    /// keys a parsed torrent had are not kept. Always writes `piece layers`,
    /// even empty, as BEP 52 and libtorrent require the key.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut fields: BTreeMap<&[u8], Vec<u8>> = BTreeMap::new();
        if let Some(announce) = &self.announce {
            fields.insert(b"announce", encoded_str(announce));
        }
        if !self.announce_list.is_empty() {
            let mut out = vec![b'l'];
            for tier in &self.announce_list {
                out.push(b'l');
                for url in tier {
                    encode_bytes(&mut out, url.as_bytes());
                }
                out.push(b'e');
            }
            out.push(b'e');
            fields.insert(b"announce-list", out);
        }
        if let Some(comment) = &self.comment {
            fields.insert(b"comment", encoded_str(comment));
        }
        if let Some(created_by) = &self.created_by {
            fields.insert(b"created by", encoded_str(created_by));
        }
        if let Some(date) = self.creation_date {
            let mut out = Vec::new();
            encode_int(&mut out, date);
            fields.insert(b"creation date", out);
        }
        fields.insert(b"info", self.info_bytes.clone());
        let mut layers = vec![b'd'];
        for (root, layer) in &self.piece_layers {
            encode_bytes(&mut layers, root);
            encode_bytes(&mut layers, &layer.concat());
        }
        layers.push(b'e');
        fields.insert(b"piece layers", layers);
        if !self.url_list.is_empty() {
            let mut out = vec![b'l'];
            for url in &self.url_list {
                encode_bytes(&mut out, url.as_bytes());
            }
            out.push(b'e');
            fields.insert(b"url-list", out);
        }
        let mut out = vec![b'd'];
        for (key, value) in fields {
            encode_bytes(&mut out, key);
            out.extend_from_slice(&value);
        }
        out.push(b'e');
        out
    }
}

fn encoded_str(s: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len() + 8);
    encode_bytes(&mut out, s.as_bytes());
    out
}

/// Path of a file for messages: its elements joined with `/`.
fn display_path(path: &[String]) -> String {
    path.join("/")
}

#[cfg(test)]
mod tests;
