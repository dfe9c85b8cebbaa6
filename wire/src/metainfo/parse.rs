//! Reading and validating a `.torrent`.
//!
//! Order matters: BEP 52 asks that the meta version be checked before
//! anything else, so that a newer torrent is reported as such rather than
//! as malformed. Piece layers are checked against the pieces roots here,
//! once, so that nothing later has to trust them blindly.

use std::collections::BTreeMap;

use super::{
    display_path, FileEntry, Info, InfoHashV2, Metainfo, MetainfoError, MAX_FILES, MAX_NAME_LEN,
    MAX_PATH_DEPTH, MAX_PIECES, MAX_TORRENT_SIZE,
};
use crate::bencode::{self, Node};
use crate::hex;
use crate::merkle::{self, Hash};

type Result<T> = std::result::Result<T, MetainfoError>;

pub(super) fn metainfo(input: &[u8]) -> Result<Metainfo> {
    if input.len() > MAX_TORRENT_SIZE {
        return Err(MetainfoError::TooLarge {
            size: input.len(),
            max: MAX_TORRENT_SIZE,
        });
    }
    let root = bencode::decode(input)?;
    if root.as_dict().is_none() {
        return Err(MetainfoError::WrongType {
            key: "torrent",
            expected: "a dictionary",
        });
    }
    let info_node = root
        .get(b"info")
        .ok_or(MetainfoError::MissingKey { key: "info" })?;
    let (info, hybrid) = info(info_node)?;
    let piece_layers = piece_layers(root.get(b"piece layers"), &info)?;
    Ok(Metainfo {
        info_bytes: info_node.raw.to_vec(),
        info_hash: InfoHashV2::of(info_node.raw),
        info,
        piece_layers,
        hybrid,
        announce: optional_str(&root, "announce")?,
        announce_list: announce_list(root.get(b"announce-list"))?,
        url_list: url_list(root.get(b"url-list"))?,
        creation_date: optional_int(&root, "creation date")?,
        created_by: optional_str(&root, "created by")?,
        comment: optional_str(&root, "comment")?,
    })
}

fn info(node: &Node<'_>) -> Result<(Info, bool)> {
    if node.as_dict().is_none() {
        return Err(MetainfoError::WrongType {
            key: "info",
            expected: "a dictionary",
        });
    }
    match node.get(b"meta version") {
        None if node.get(b"pieces").is_some() => return Err(MetainfoError::V1Only),
        None => {
            return Err(MetainfoError::MissingKey {
                key: "meta version",
            })
        }
        Some(version) => match version.as_int() {
            Some(2) => {}
            Some(other) => return Err(MetainfoError::UnsupportedMetaVersion(other)),
            None => {
                return Err(MetainfoError::WrongType {
                    key: "meta version",
                    expected: "an integer",
                })
            }
        },
    }
    let piece_length = node
        .get(b"piece length")
        .ok_or(MetainfoError::MissingKey {
            key: "piece length",
        })?
        .as_int()
        .and_then(|n| u64::try_from(n).ok())
        .ok_or(MetainfoError::WrongType {
            key: "piece length",
            expected: "a positive integer",
        })?;
    merkle::piece_layer_level(piece_length).map_err(MetainfoError::PieceLength)?;
    let name = node
        .get(b"name")
        .ok_or(MetainfoError::MissingKey { key: "name" })?
        .as_str()
        .filter(|n| n.len() <= MAX_NAME_LEN)
        .ok_or(MetainfoError::WrongType {
            key: "name",
            expected: "UTF-8 text of at most 1024 bytes",
        })?;
    let private = match node.get(b"private").map(Node::as_int) {
        None | Some(Some(0)) => false,
        Some(Some(1)) => true,
        Some(_) => {
            return Err(MetainfoError::WrongType {
                key: "private",
                expected: "0 or 1",
            })
        }
    };
    let tree = node
        .get(b"file tree")
        .ok_or(MetainfoError::MissingKey { key: "file tree" })?;
    let files = file_tree(tree, piece_length)?;
    let hybrid = node.get(b"pieces").is_some();
    let info = Info {
        name: name.to_owned(),
        piece_length,
        private,
        files,
    };
    Ok((info, hybrid))
}

fn tree_error(path: &[String], reason: &'static str) -> MetainfoError {
    MetainfoError::FileTree {
        path: display_path(path),
        reason,
    }
}

fn file_tree(tree: &Node<'_>, piece_length: u64) -> Result<Vec<FileEntry>> {
    let entries = tree.as_dict().ok_or(MetainfoError::WrongType {
        key: "file tree",
        expected: "a dictionary",
    })?;
    if entries.is_empty() {
        return Err(tree_error(&[], "no files"));
    }
    if tree.get(b"").is_some() {
        return Err(tree_error(&[], "the root of the tree is a file"));
    }
    let mut files = Vec::new();
    walk(tree, &mut Vec::new(), &mut files)?;
    let mut next_piece: u64 = 0;
    for file in &mut files {
        file.first_piece = u32::try_from(next_piece)
            .map_err(|_| MetainfoError::TooManyPieces { max: MAX_PIECES })?;
        next_piece += merkle::num_pieces(file.length, piece_length);
        if next_piece > MAX_PIECES {
            return Err(MetainfoError::TooManyPieces { max: MAX_PIECES });
        }
    }
    Ok(files)
}

/// Collects the files under `dir` in key order, which is piece order.
fn walk(dir: &Node<'_>, path: &mut Vec<String>, files: &mut Vec<FileEntry>) -> Result<()> {
    let entries = dir
        .as_dict()
        .ok_or_else(|| tree_error(path, "a directory is not a dictionary"))?;
    if entries.is_empty() {
        return Err(tree_error(path, "empty directory"));
    }
    for (key, child) in entries {
        let element = std::str::from_utf8(key)
            .map_err(|_| tree_error(path, "a path element is not UTF-8"))?;
        if let Err(reason) = check_path_element(element) {
            return Err(tree_error(path, reason));
        }
        path.push(element.to_owned());
        if path.len() > MAX_PATH_DEPTH {
            return Err(tree_error(path, "path is too deep"));
        }
        match child.get(b"") {
            Some(props) => {
                if child.as_dict().map_or(0, <[_]>::len) != 1 {
                    return Err(tree_error(path, "a file has sibling entries"));
                }
                files.push(file(props, path)?);
                if files.len() > MAX_FILES {
                    return Err(MetainfoError::TooManyFiles { max: MAX_FILES });
                }
            }
            None => walk(child, path, files)?,
        }
        path.pop();
    }
    Ok(())
}

/// Refuses path elements that could escape the download directory or
/// mean something else on some filesystem.
pub(super) fn check_path_element(element: &str) -> std::result::Result<(), &'static str> {
    if element.is_empty() {
        return Err("empty path element");
    }
    if element.len() > MAX_NAME_LEN {
        return Err("path element longer than 1024 bytes");
    }
    if element == "." || element == ".." {
        return Err("path element `.` or `..`");
    }
    if element.contains(['/', '\\', '\0']) {
        return Err("path element contains `/`, `\\` or NUL");
    }
    Ok(())
}

fn file(props: &Node<'_>, path: &[String]) -> Result<FileEntry> {
    if props.as_dict().is_none() {
        return Err(tree_error(path, "file properties are not a dictionary"));
    }
    let length = props
        .get(b"length")
        .and_then(Node::as_int)
        .and_then(|n| u64::try_from(n).ok())
        .ok_or_else(|| tree_error(path, "`length` is missing or not a non-negative integer"))?;
    let pieces_root = match props.get(b"pieces root") {
        None => None,
        Some(node) => Some(
            node.as_bytes()
                .and_then(|b| Hash::try_from(b).ok())
                .ok_or_else(|| tree_error(path, "`pieces root` is not 32 bytes"))?,
        ),
    };
    match (length, pieces_root) {
        (0, Some(_)) => Err(tree_error(path, "an empty file has a `pieces root`")),
        (1.., None) => Err(tree_error(path, "`pieces root` is missing")),
        _ => Ok(FileEntry {
            path: path.to_vec(),
            length,
            pieces_root,
            first_piece: 0,
        }),
    }
}

fn piece_layers(node: Option<&Node<'_>>, info: &Info) -> Result<BTreeMap<Hash, Vec<Hash>>> {
    let level = merkle::piece_layer_level(info.piece_length).map_err(MetainfoError::PieceLength)?;
    let mut needed: BTreeMap<Hash, &FileEntry> = BTreeMap::new();
    for file in &info.files {
        if let (true, Some(root)) = (file.has_piece_layer(info.piece_length), file.pieces_root) {
            needed.insert(root, file);
        }
    }
    let entries = node
        .ok_or(MetainfoError::MissingKey {
            key: "piece layers",
        })?
        .as_dict()
        .ok_or(MetainfoError::WrongType {
            key: "piece layers",
            expected: "a dictionary",
        })?;
    let mut layers = BTreeMap::new();
    for (key, value) in entries {
        let unexpected = || MetainfoError::UnexpectedPieceLayer {
            root: hex::encode(key),
        };
        let root = Hash::try_from(*key).map_err(|_| unexpected())?;
        let file = needed.get(&root).ok_or_else(unexpected)?;
        let bytes = value.as_bytes().ok_or(MetainfoError::WrongType {
            key: "piece layers",
            expected: "a dictionary of byte strings",
        })?;
        let expected = merkle::num_pieces(file.length, info.piece_length) * 32;
        if bytes.len() as u64 != expected {
            return Err(MetainfoError::PieceLayerLength {
                path: display_path(&file.path),
                expected,
                actual: bytes.len(),
            });
        }
        let layer: Vec<Hash> = bytes
            .chunks_exact(32)
            .filter_map(|c| Hash::try_from(c).ok())
            .collect();
        if merkle::root_from_layer(&layer, level) != root {
            return Err(MetainfoError::PieceLayerMismatch {
                path: display_path(&file.path),
            });
        }
        layers.insert(root, layer);
    }
    if let Some(file) = needed.iter().find(|(root, _)| !layers.contains_key(*root)) {
        return Err(MetainfoError::MissingPieceLayer {
            path: display_path(&file.1.path),
        });
    }
    Ok(layers)
}

fn optional_str(dict: &Node<'_>, key: &'static str) -> Result<Option<String>> {
    dict.get(key.as_bytes())
        .map(|node| {
            node.as_str()
                .map(str::to_owned)
                .ok_or(MetainfoError::WrongType {
                    key,
                    expected: "UTF-8 text",
                })
        })
        .transpose()
}

fn optional_int(dict: &Node<'_>, key: &'static str) -> Result<Option<i64>> {
    dict.get(key.as_bytes())
        .map(|node| {
            node.as_int().ok_or(MetainfoError::WrongType {
                key,
                expected: "an integer",
            })
        })
        .transpose()
}

fn url_strings(list: &[Node<'_>], key: &'static str) -> Result<Vec<String>> {
    list.iter()
        .map(|n| {
            n.as_str()
                .map(str::to_owned)
                .ok_or(MetainfoError::WrongType {
                    key,
                    expected: "a list of UTF-8 URLs",
                })
        })
        .collect()
}

fn announce_list(node: Option<&Node<'_>>) -> Result<Vec<Vec<String>>> {
    const KEY: &str = "announce-list";
    let Some(node) = node else {
        return Ok(Vec::new());
    };
    let wrong = MetainfoError::WrongType {
        key: KEY,
        expected: "a list of lists of URLs",
    };
    let tiers = node.as_list().ok_or(wrong.clone())?;
    tiers
        .iter()
        .map(|tier| url_strings(tier.as_list().ok_or(wrong.clone())?, KEY))
        .collect()
}

/// BEP 19 allows one URL as a string or several as a list.
fn url_list(node: Option<&Node<'_>>) -> Result<Vec<String>> {
    const KEY: &str = "url-list";
    let Some(node) = node else {
        return Ok(Vec::new());
    };
    if let Some(list) = node.as_list() {
        return url_strings(list, KEY);
    }
    let url = node.as_str().ok_or(MetainfoError::WrongType {
        key: KEY,
        expected: "a URL or a list of URLs",
    })?;
    Ok(if url.is_empty() {
        Vec::new()
    } else {
        vec![url.to_owned()]
    })
}
