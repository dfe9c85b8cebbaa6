//! SHA-256 merkle trees over 16 KiB blocks, as BEP 52 defines them.
//!
//! Each file has its own tree. Its leaves are the SHA-256 of each 16 KiB
//! block of the file (the last block hashed as it is, shorter). The leaf
//! layer is padded with all-zero hashes up to a power of two, so a node
//! that covers only padding is the root of a subtree of zero leaves: see
//! [`pad_hash`]. The *piece layer* is the layer whose nodes each cover one
//! piece; a torrent carries it so that a whole piece can be checked against
//! one hash. A file of one piece or less has no piece layer of its own: its
//! single piece is checked against the pieces root, which is then the root
//! of a tree padded only to the next power of two of its blocks, not to a
//! full piece.
//!
//! Layers are numbered from the leaves: level 0 holds the block hashes, the
//! root is at level [`MerkleTree::height`]. The same numbering is the
//! "base layer" of BEP 52 hash requests.
//!
//! [`file_hashes`] hashes a whole buffer; [`StreamHasher`] the same bytes
//! as they arrive; [`MerkleTree`] keeps every layer to answer hash
//! requests, whose answers [`verify_hashes`] checks.
//!
//! Hashing is plain `sha2` (which picks SHA-NI or AVX at run time): the
//! leaves are nearly all of the work, so the tree costs about one sequential
//! SHA-256 pass over the data.

use sha2::{Digest, Sha256};

/// Bytes covered by one leaf hash.
pub const BLOCK_SIZE: usize = 16 * 1024;
/// The smallest piece length BEP 52 allows.
pub const MIN_PIECE_LENGTH: u64 = BLOCK_SIZE as u64;
/// The largest piece length bay accepts (1 GiB); a piece is held in memory
/// to be checked, so this bounds what a hostile torrent can make us allocate.
pub const MAX_PIECE_LENGTH: u64 = 1 << 30;
/// The most base-layer hashes one hash request may ask for (the limit
/// libtorrent uses; BEP 52 advises at most 512).
pub const MAX_HASH_REQUEST_LENGTH: u32 = 8192;

/// A SHA-256 digest: a node of the tree.
pub type Hash = [u8; 32];
/// The hash of a padding leaf.
pub const ZERO_HASH: Hash = [0; 32];

/// Why a piece, a layer or a hash request does not fit the tree.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MerkleError {
    #[error("piece length {0} is not a power of two between 16 KiB and 1 GiB")]
    InvalidPieceLength(u64),
    #[error("piece of {actual} bytes, expected {expected}")]
    PieceSize { expected: u64, actual: u64 },
    #[error("piece data does not match its hash")]
    PieceMismatch,
    #[error("invalid hash request: {0}")]
    InvalidRequest(&'static str),
    #[error("expected {expected} hashes in the answer, got {actual}")]
    HashCount { expected: usize, actual: usize },
    #[error("the proof stops at level {level}, below the root at level {height}")]
    ProofTooShort { level: u32, height: u32 },
    #[error("the hashes do not lead to the expected root")]
    ProofMismatch,
}

/// Checks that `piece_length` is a power of two in the range BEP 52 and
/// bay allow, and returns log2 of the number of blocks in a piece (the
/// level of the piece layer).
pub fn piece_layer_level(piece_length: u64) -> Result<u32, MerkleError> {
    if !piece_length.is_power_of_two()
        || !(MIN_PIECE_LENGTH..=MAX_PIECE_LENGTH).contains(&piece_length)
    {
        return Err(MerkleError::InvalidPieceLength(piece_length));
    }
    Ok((piece_length / MIN_PIECE_LENGTH).trailing_zeros())
}

/// Number of 16 KiB blocks (leaves) in a file of `length` bytes.
pub fn num_blocks(length: u64) -> u64 {
    length.div_ceil(BLOCK_SIZE as u64)
}

/// Number of pieces of a file of `length` bytes.
pub fn num_pieces(length: u64, piece_length: u64) -> u64 {
    length.div_ceil(piece_length.max(1))
}

/// Height of the padded tree over `blocks` leaves (0 for a single leaf).
pub fn tree_height(blocks: u64) -> u32 {
    blocks.max(1).next_power_of_two().trailing_zeros()
}

/// SHA-256 of one block of data.
pub fn hash_block(block: &[u8]) -> Hash {
    Sha256::digest(block).into()
}

/// A parent node: SHA-256 of its two children side by side.
pub fn hash_pair(left: &Hash, right: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// The value of a node at `level` that covers only padding: the root of a
/// subtree of `2^level` zero leaves.
pub fn pad_hash(level: u32) -> Hash {
    (0..level).fold(ZERO_HASH, |h, _| hash_pair(&h, &h))
}

/// The leaf hashes of `data`: one per 16 KiB block, the last block shorter.
/// Empty data has no leaves.
pub fn leaf_hashes(data: &[u8]) -> Vec<Hash> {
    data.chunks(BLOCK_SIZE).map(hash_block).collect()
}

/// The layer above `layer`, whose nodes sit at `level`. An odd last node is
/// paired with the padding hash of its level.
pub fn parent_layer(layer: &[Hash], level: u32) -> Vec<Hash> {
    let pad = pad_hash(level);
    layer
        .chunks(2)
        .map(|pair| match pair {
            [left, right] => hash_pair(left, right),
            [left] => hash_pair(left, &pad),
            _ => pad,
        })
        .collect()
}

/// Reduces a layer at `level` in place by `steps` levels, padding each odd
/// end; returns the level reached.
fn reduce(layer: &mut Vec<Hash>, mut level: u32, steps: u32) -> u32 {
    for _ in 0..steps {
        if layer.is_empty() {
            break;
        }
        let pad = pad_hash(level);
        let len = layer.len();
        let parents = len.div_ceil(2);
        for i in 0..parents {
            let left = layer.get(2 * i).copied().unwrap_or(pad);
            let right = layer.get(2 * i + 1).copied().unwrap_or(pad);
            if let Some(slot) = layer.get_mut(i) {
                *slot = hash_pair(&left, &right);
            }
        }
        layer.truncate(parents);
        level += 1;
    }
    level
}

/// The root of the tree above `layer`, whose nodes sit at `level`, padded to
/// a power of two with [`pad_hash`] of that level. An empty layer has no
/// root; [`ZERO_HASH`] stands for it.
pub fn root_from_layer(layer: &[Hash], level: u32) -> Hash {
    if layer.len() <= 1 {
        return layer.first().copied().unwrap_or(ZERO_HASH);
    }
    let mut work = layer.to_vec();
    let steps = tree_height(layer.len() as u64);
    reduce(&mut work, level, steps);
    work.first().copied().unwrap_or(ZERO_HASH)
}

/// The root of the tree over these leaf hashes (a file's pieces root).
pub fn root_from_leaves(leaves: &[Hash]) -> Hash {
    root_from_layer(leaves, 0)
}

/// The pieces root of `data` (None for empty data, which has no tree).
pub fn pieces_root(data: &[u8]) -> Option<Hash> {
    if data.is_empty() {
        return None;
    }
    Some(root_from_leaves(&leaf_hashes(data)))
}

/// The piece layer of a file from its leaf hashes: one hash per piece,
/// nothing for padding past the end of the file. For a file of one piece or
/// less this is its root alone (the hash its only piece is checked against).
pub fn piece_layer(leaves: &[Hash], piece_length: u64) -> Result<Vec<Hash>, MerkleError> {
    let level = piece_layer_level(piece_length)?;
    if leaves.len() as u64 <= piece_length / MIN_PIECE_LENGTH {
        return Ok(if leaves.is_empty() {
            Vec::new()
        } else {
            vec![root_from_leaves(leaves)]
        });
    }
    let mut layer = leaves.to_vec();
    reduce(&mut layer, 0, level);
    Ok(layer)
}

/// Everything a torrent needs about one file's tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileHashes {
    /// The root; None for an empty file.
    pub pieces_root: Option<Hash>,
    /// One hash per piece (see [`piece_layer`]).
    pub piece_layer: Vec<Hash>,
}

/// Hashes a whole file: its root and its piece layer.
pub fn file_hashes(data: &[u8], piece_length: u64) -> Result<FileHashes, MerkleError> {
    let level = piece_layer_level(piece_length)?;
    let leaves = leaf_hashes(data);
    let piece_layer = piece_layer(&leaves, piece_length)?;
    let pieces_root = match piece_layer.len() {
        0 => None,
        1 => piece_layer.first().copied(),
        _ => Some(root_from_layer(&piece_layer, level)),
    };
    Ok(FileHashes {
        pieces_root,
        piece_layer,
    })
}

/// The hash one piece of a file must have: the root of its blocks padded to
/// a full piece, or, when the whole file fits in one piece, the file's
/// pieces root. `piece` must hold the piece's bytes, no more.
pub fn piece_hash(piece: &[u8], piece_length: u64, file_length: u64) -> Result<Hash, MerkleError> {
    let level = piece_layer_level(piece_length)?;
    if piece.len() as u64 > piece_length || piece.is_empty() {
        return Err(MerkleError::PieceSize {
            expected: piece_length.min(file_length),
            actual: piece.len() as u64,
        });
    }
    let mut leaves = leaf_hashes(piece);
    if file_length <= piece_length {
        return Ok(root_from_leaves(&leaves));
    }
    reduce(&mut leaves, 0, level);
    Ok(leaves.first().copied().unwrap_or(ZERO_HASH))
}

/// Checks one piece of a file against its piece-layer hash (or the pieces
/// root, for a file of one piece).
pub fn verify_piece(
    expected: &Hash,
    piece: &[u8],
    piece_length: u64,
    file_length: u64,
) -> Result<(), MerkleError> {
    if piece_hash(piece, piece_length, file_length)? == *expected {
        Ok(())
    } else {
        Err(MerkleError::PieceMismatch)
    }
}

/// Hashes a file as its bytes arrive, in chunks of any size, so that a
/// blob fetched from a registry is hashed on the way in rather than read
/// again afterwards.
///
/// The hash of every complete piece is known as soon as its last byte
/// arrives ([`StreamHasher::piece_hashes`]) and never changes: a full piece
/// needs no padding, whatever the file's final length. The last, short
/// piece and the root wait for [`StreamHasher::finish`].
#[derive(Clone, Debug)]
pub struct StreamHasher {
    piece_length: u64,
    level: u32,
    block: Sha256,
    block_fill: usize,
    leaves: Vec<Hash>,
    pieces: Vec<Hash>,
    length: u64,
}

impl StreamHasher {
    /// A hasher for pieces of `piece_length` bytes.
    pub fn new(piece_length: u64) -> Result<StreamHasher, MerkleError> {
        Ok(StreamHasher {
            piece_length,
            level: piece_layer_level(piece_length)?,
            block: Sha256::new(),
            block_fill: 0,
            leaves: Vec::new(),
            pieces: Vec::new(),
            length: 0,
        })
    }

    /// Feeds the next bytes of the file.
    pub fn update(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let take = (BLOCK_SIZE - self.block_fill).min(data.len());
            let (head, rest) = data.split_at(take);
            if self.block_fill == 0 && take == BLOCK_SIZE {
                self.push_leaf(hash_block(head));
            } else {
                self.block.update(head);
                self.block_fill += take;
                if self.block_fill == BLOCK_SIZE {
                    let leaf = self.block.finalize_reset().into();
                    self.block_fill = 0;
                    self.push_leaf(leaf);
                }
            }
            self.length += take as u64;
            data = rest;
        }
    }

    fn blocks_per_piece(&self) -> usize {
        1 << self.level
    }

    fn push_leaf(&mut self, leaf: Hash) {
        self.leaves.push(leaf);
        // blocks_per_piece is a power of two: this is `len % per_piece == 0`.
        if self.leaves.len() & (self.blocks_per_piece() - 1) == 0 {
            let start = self.leaves.len() - self.blocks_per_piece();
            let hash = self.subtree_root(start);
            self.pieces.push(hash);
        }
    }

    /// Root of the piece whose leaves start at `start`, padded to a full
    /// piece.
    fn subtree_root(&self, start: usize) -> Hash {
        let mut layer = self.leaves.get(start..).unwrap_or_default().to_vec();
        reduce(&mut layer, 0, self.level);
        layer.first().copied().unwrap_or(ZERO_HASH)
    }

    /// Bytes fed so far.
    pub fn length(&self) -> u64 {
        self.length
    }

    /// Hashes of the complete pieces so far, in order.
    pub fn piece_hashes(&self) -> &[Hash] {
        &self.pieces
    }

    /// Leaf hashes of the complete blocks so far.
    pub fn leaves(&self) -> &[Hash] {
        &self.leaves
    }

    /// Hashes the last partial block and piece and returns the file's root
    /// and piece layer, as [`file_hashes`] would, with its leaf hashes.
    pub fn finish(mut self) -> (FileHashes, Vec<Hash>) {
        if self.block_fill > 0 {
            let leaf = self.block.finalize_reset().into();
            self.push_leaf(leaf);
        }
        let per_piece = self.blocks_per_piece();
        let hashes = if self.leaves.len() <= per_piece {
            let root = (!self.leaves.is_empty()).then(|| root_from_leaves(&self.leaves));
            FileHashes {
                pieces_root: root,
                piece_layer: root.into_iter().collect(),
            }
        } else {
            let mut layer = std::mem::take(&mut self.pieces);
            let tail = self.leaves.len() % per_piece;
            if tail != 0 {
                layer.push(self.subtree_root(self.leaves.len() - tail));
            }
            FileHashes {
                pieces_root: Some(root_from_layer(&layer, self.level)),
                piece_layer: layer,
            }
        };
        (hashes, self.leaves)
    }

    /// The piece length this hasher was made for.
    pub fn piece_length(&self) -> u64 {
        self.piece_length
    }
}

/// The tree part of a BEP 52 hash request: which hashes, and how many
/// uncle layers to prove them with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HashRequest {
    /// Level of the requested hashes (0: leaves).
    pub base_layer: u32,
    /// Index of the first requested hash in that level; a multiple of
    /// `length`.
    pub index: u32,
    /// Number of hashes; a power of two, at least 2.
    pub length: u32,
    /// Number of ancestor layers the proof covers. Those the requested
    /// hashes already determine count but carry no uncle.
    pub proof_layers: u32,
}

impl HashRequest {
    /// Checks the request against a file of `blocks` leaves and returns
    /// how many hashes the answer holds: `length` plus one uncle for each
    /// proof layer above the subtree the requested hashes span.
    pub fn answer_len(&self, blocks: u64) -> Result<usize, MerkleError> {
        self.validate(blocks)?;
        Ok(self.length as usize + self.uncle_levels().count())
    }

    fn validate(&self, blocks: u64) -> Result<(), MerkleError> {
        use MerkleError::InvalidRequest;
        if blocks == 0 {
            return Err(InvalidRequest("the file is empty"));
        }
        let height = tree_height(blocks);
        if self.base_layer >= height {
            return Err(InvalidRequest("base layer at or above the root"));
        }
        let layer_size = 1u64 << (height - self.base_layer);
        if !self.length.is_power_of_two() || self.length < 2 {
            return Err(InvalidRequest("length is not a power of two of at least 2"));
        }
        if self.length > MAX_HASH_REQUEST_LENGTH {
            return Err(InvalidRequest("length is over the limit"));
        }
        // length is a power of two, so this is `index % length`.
        if self.index & (self.length - 1) != 0 {
            return Err(InvalidRequest("index is not a multiple of length"));
        }
        if u64::from(self.index) + u64::from(self.length) > layer_size {
            return Err(InvalidRequest("range runs past the end of the layer"));
        }
        if self.proof_layers >= height - self.base_layer {
            return Err(InvalidRequest("more proof layers than the tree has"));
        }
        Ok(())
    }

    fn span_levels(&self) -> u32 {
        self.length.trailing_zeros()
    }

    /// Levels whose sibling is sent as an uncle: from the top of the
    /// requested subtree up to the last proof layer.
    fn uncle_levels(&self) -> std::ops::Range<u32> {
        let first = self.base_layer + self.span_levels();
        // One past the last proof layer; below `first` nothing is sent.
        let end = self.base_layer + self.proof_layers + 1;
        first..end.max(first)
    }
}

/// A node of a tree, located by level and index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TreeNode {
    pub level: u32,
    pub index: u64,
    pub hash: Hash,
}

/// Computes the highest node an answer to `request` proves: the requested
/// hashes combined, then each uncle in turn. The caller compares it with a
/// node it trusts (the pieces root, or a piece-layer hash).
pub fn proven_node(
    request: &HashRequest,
    blocks: u64,
    hashes: &[Hash],
) -> Result<TreeNode, MerkleError> {
    let expected = request.answer_len(blocks)?;
    if hashes.len() != expected {
        return Err(MerkleError::HashCount {
            expected,
            actual: hashes.len(),
        });
    }
    let (base, uncles) = hashes.split_at(request.length as usize);
    let mut work = base.to_vec();
    let mut level = reduce(&mut work, request.base_layer, request.span_levels());
    let mut hash = work.first().copied().unwrap_or(ZERO_HASH);
    let mut index = u64::from(request.index) >> request.span_levels();
    for uncle in uncles {
        hash = if index & 1 == 0 {
            hash_pair(&hash, uncle)
        } else {
            hash_pair(uncle, &hash)
        };
        index /= 2;
        level += 1;
    }
    Ok(TreeNode { level, index, hash })
}

/// Checks an answer to `request` against the file's pieces root. The proof
/// must reach the root.
pub fn verify_hashes(
    root: &Hash,
    request: &HashRequest,
    blocks: u64,
    hashes: &[Hash],
) -> Result<(), MerkleError> {
    let node = proven_node(request, blocks, hashes)?;
    let height = tree_height(blocks);
    if node.level < height {
        return Err(MerkleError::ProofTooShort {
            level: node.level,
            height,
        });
    }
    if node.hash == *root {
        Ok(())
    } else {
        Err(MerkleError::ProofMismatch)
    }
}

/// A whole tree kept in memory, to answer hash requests from peers.
///
/// Only real nodes are stored; nodes over padding are [`pad_hash`] of
/// their level. A 4 GiB file takes about 16 MiB.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MerkleTree {
    /// `layers[0]` are the leaves; the last layer holds the root alone.
    layers: Vec<Vec<Hash>>,
}

impl MerkleTree {
    /// Builds the tree over a file's leaf hashes.
    pub fn from_leaves(leaves: Vec<Hash>) -> MerkleTree {
        let mut layers = vec![leaves];
        let mut level = 0;
        while let Some(top) = layers.last() {
            if top.len() <= 1 {
                break;
            }
            let next = parent_layer(top, level);
            layers.push(next);
            level += 1;
        }
        MerkleTree { layers }
    }

    /// Builds the tree over `data`.
    pub fn from_data(data: &[u8]) -> MerkleTree {
        MerkleTree::from_leaves(leaf_hashes(data))
    }

    /// Number of leaves that are real blocks.
    pub fn blocks(&self) -> u64 {
        self.layers.first().map_or(0, |l| l.len() as u64)
    }

    /// Level of the root.
    pub fn height(&self) -> u32 {
        tree_height(self.blocks())
    }

    /// The root ([`ZERO_HASH`] for an empty file).
    pub fn root(&self) -> Hash {
        self.layers
            .last()
            .and_then(|l| l.first())
            .copied()
            .unwrap_or(ZERO_HASH)
    }

    /// The real nodes of a level (padding left out).
    pub fn layer(&self, level: u32) -> &[Hash] {
        self.layers
            .get(level as usize)
            .map_or(&[], |l| l.as_slice())
    }

    /// Any node of the padded tree, None outside it.
    pub fn node(&self, level: u32, index: u64) -> Option<Hash> {
        let height = self.height();
        if self.blocks() == 0 || level > height || index >= 1u64 << (height - level) {
            return None;
        }
        let stored = usize::try_from(index)
            .ok()
            .and_then(|i| self.layer(level).get(i));
        Some(stored.copied().unwrap_or_else(|| pad_hash(level)))
    }

    /// The answer to a hash request: the requested hashes, then the uncles
    /// from the lowest to the one closest to the root.
    pub fn hashes(&self, request: &HashRequest) -> Result<Vec<Hash>, MerkleError> {
        let len = request.answer_len(self.blocks())?;
        let mut out = Vec::with_capacity(len);
        let start = u64::from(request.index);
        for i in start..start + u64::from(request.length) {
            out.push(self.node_or_pad(request.base_layer, i));
        }
        for level in request.uncle_levels() {
            let on_path = start >> (level - request.base_layer);
            out.push(self.node_or_pad(level, on_path ^ 1));
        }
        Ok(out)
    }

    fn node_or_pad(&self, level: u32, index: u64) -> Hash {
        self.node(level, index).unwrap_or_else(|| pad_hash(level))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const KIB: usize = 1024;

    fn data(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 9) as u8)
            .collect()
    }

    /// The tree written out the way BEP 52's reference creator builds it:
    /// per-piece roots (padded to a full piece, or to the next power of two
    /// for a file of one piece), then the piece layer padded with the root
    /// of an all-zero piece.
    fn reference(data: &[u8], piece_length: usize) -> (Hash, Vec<Hash>) {
        fn root(mut hashes: Vec<Hash>) -> Hash {
            assert!(hashes.len().is_power_of_two());
            while hashes.len() > 1 {
                hashes = hashes.chunks(2).map(|p| hash_pair(&p[0], &p[1])).collect();
            }
            hashes[0]
        }
        let per_piece = piece_length / BLOCK_SIZE;
        let mut pieces = Vec::new();
        for chunk in data.chunks(piece_length) {
            let mut blocks: Vec<Hash> = chunk.chunks(BLOCK_SIZE).map(hash_block).collect();
            let want = if pieces.is_empty() && blocks.len() < per_piece {
                blocks.len().next_power_of_two()
            } else {
                per_piece
            };
            blocks.resize(want, ZERO_HASH);
            pieces.push(root(blocks));
        }
        let layer = pieces.clone();
        if pieces.len() > 1 {
            let pad = root(vec![ZERO_HASH; per_piece]);
            pieces.resize(pieces.len().next_power_of_two(), pad);
        }
        (root(pieces), layer)
    }

    #[test]
    fn pad_hash_is_root_of_zero_leaves() {
        assert_eq!(pad_hash(0), ZERO_HASH);
        assert_eq!(pad_hash(1), hash_pair(&ZERO_HASH, &ZERO_HASH));
        assert_eq!(pad_hash(3), root_from_leaves(&[ZERO_HASH; 8]));
    }

    #[test]
    fn one_block_root_is_its_hash() {
        let d = data(100, 1);
        assert_eq!(pieces_root(&d), Some(hash_block(&d)));
        assert_eq!(pieces_root(&[]), None);
    }

    #[test]
    fn matches_reference_construction() {
        for &(len, pl) in &[
            (1, 16 * KIB),
            (16 * KIB, 16 * KIB),
            (16 * KIB + 1, 16 * KIB),
            (40 * KIB, 64 * KIB),
            (64 * KIB, 64 * KIB),
            (64 * KIB * 3, 64 * KIB),
            (64 * KIB * 5 + 7, 64 * KIB),
            (1000 * KIB + 3, 32 * KIB),
            (48 * KIB + 1, 16 * KIB),
        ] {
            let d = data(len, 7);
            let (root, layer) = reference(&d, pl);
            let got = file_hashes(&d, pl as u64).unwrap();
            assert_eq!(got.pieces_root, Some(root), "root len={len} pl={pl}");
            assert_eq!(got.piece_layer, layer, "layer len={len} pl={pl}");
            let tree = MerkleTree::from_data(&d);
            assert_eq!(tree.root(), root, "tree root len={len}");
        }
    }

    #[test]
    fn pieces_verify_and_altered_pieces_fail() {
        let pl = 32 * KIB;
        let d = data(5 * pl + 100, 3);
        let fh = file_hashes(&d, pl as u64).unwrap();
        for (i, chunk) in d.chunks(pl).enumerate() {
            verify_piece(&fh.piece_layer[i], chunk, pl as u64, d.len() as u64).unwrap();
            let mut bad = chunk.to_vec();
            bad[chunk.len() / 2] ^= 1;
            assert_eq!(
                verify_piece(&fh.piece_layer[i], &bad, pl as u64, d.len() as u64),
                Err(MerkleError::PieceMismatch)
            );
        }
        // A single-piece file is checked against its root.
        let small = data(20 * KIB, 9);
        let root = pieces_root(&small).unwrap();
        verify_piece(&root, &small, 64 * KIB as u64, small.len() as u64).unwrap();
        assert!(verify_piece(&root, &small[1..], 64 * KIB as u64, small.len() as u64).is_err());
    }

    #[test]
    fn rejects_bad_piece_lengths() {
        for pl in [0, 1, 8 * 1024, 48 * 1024, 1 << 31] {
            assert_eq!(
                piece_layer_level(pl),
                Err(MerkleError::InvalidPieceLength(pl))
            );
        }
        assert_eq!(piece_layer_level(16 * 1024), Ok(0));
        assert_eq!(piece_layer_level(4 << 20), Ok(8));
    }

    #[test]
    fn proofs_round_trip_and_detect_tampering() {
        // 11 blocks: 16 leaves, height 4.
        let d = data(11 * BLOCK_SIZE - 5, 5);
        let tree = MerkleTree::from_data(&d);
        assert_eq!(tree.height(), 4);
        let root = tree.root();
        let blocks = tree.blocks();
        for base_layer in 0..4 {
            let layer_size = 16u32 >> base_layer;
            let mut length = 2;
            while length <= layer_size {
                for proof_layers in 0..(4 - base_layer) {
                    for index in (0..layer_size).step_by(length as usize) {
                        let req = HashRequest {
                            base_layer,
                            index,
                            length,
                            proof_layers,
                        };
                        let hashes = tree.hashes(&req).unwrap();
                        let node = proven_node(&req, blocks, &hashes).unwrap();
                        assert_eq!(tree.node(node.level, node.index), Some(node.hash));
                        let reaches_root = node.level == tree.height();
                        assert_eq!(
                            verify_hashes(&root, &req, blocks, &hashes).is_ok(),
                            reaches_root
                        );
                        if reaches_root {
                            for i in 0..hashes.len() {
                                let mut bad = hashes.clone();
                                bad[i][0] ^= 0x80;
                                assert_eq!(
                                    verify_hashes(&root, &req, blocks, &bad),
                                    Err(MerkleError::ProofMismatch)
                                );
                            }
                        }
                    }
                }
                length *= 2;
            }
        }
    }

    #[test]
    fn uncle_count_follows_bep52() {
        // 64 leaves; 4 hashes at the leaves with 5 proof layers: the first
        // log2(4)-1 = 1 proof layer needs no uncle, so 4 uncles follow.
        let req = HashRequest {
            base_layer: 0,
            index: 8,
            length: 4,
            proof_layers: 5,
        };
        assert_eq!(req.answer_len(64), Ok(8));
        let tree = MerkleTree::from_leaves((0..64u8).map(|i| [i; 32]).collect());
        let answer = tree.hashes(&req).unwrap();
        // First uncle: the sibling of the 4-leaf subtree (leaves 12..16).
        assert_eq!(answer[4], tree.node(2, 3).unwrap());
        assert_eq!(answer[7], tree.node(5, 1).unwrap());
    }

    #[test]
    fn rejects_malformed_requests() {
        let r = |base_layer, index, length, proof_layers| HashRequest {
            base_layer,
            index,
            length,
            proof_layers,
        };
        for req in [
            r(4, 0, 2, 0),  // base at the root
            r(0, 0, 3, 0),  // not a power of two
            r(0, 0, 1, 0),  // too short
            r(0, 2, 4, 0),  // misaligned
            r(0, 16, 2, 0), // past the end
            r(0, 0, 2, 4),  // proof above the root
            r(0, 0, 32, 0), // longer than the layer
        ] {
            assert!(req.answer_len(11).is_err(), "{req:?}");
        }
        assert!(r(0, 0, 2, 0).answer_len(0).is_err());
        let tree = MerkleTree::from_leaves(vec![[1; 32]; 11]);
        assert!(proven_node(&r(0, 0, 2, 3), 11, &tree.hashes(&r(0, 0, 2, 2)).unwrap()).is_err());
    }

    #[test]
    fn stream_hasher_publishes_full_pieces_early() {
        let pl = 32 * KIB;
        let d = data(3 * pl + 5000, 4);
        let mut s = StreamHasher::new(pl as u64).unwrap();
        s.update(&d[..pl - 1]);
        assert!(s.piece_hashes().is_empty());
        s.update(&d[pl - 1..2 * pl + 1]);
        let whole = file_hashes(&d, pl as u64).unwrap();
        assert_eq!(s.piece_hashes(), &whole.piece_layer[..2]);
        s.update(&d[2 * pl + 1..]);
        let (got, leaves) = s.finish();
        assert_eq!(got, whole);
        assert_eq!(leaves, leaf_hashes(&d));
        let (empty, _) = StreamHasher::new(pl as u64).unwrap().finish();
        assert_eq!(empty.pieces_root, None);
    }

    proptest! {
        #[test]
        fn tree_and_streaming_roots_agree(len in 1usize..200_000, seed: u8, pl_log in 0u32..4) {
            let pl = (BLOCK_SIZE << pl_log) as u64;
            let d = data(len, seed);
            let fh = file_hashes(&d, pl).unwrap();
            let tree = MerkleTree::from_data(&d);
            prop_assert_eq!(fh.pieces_root, Some(tree.root()));
            prop_assert_eq!(fh.piece_layer.len() as u64, num_pieces(len as u64, pl));
            let (root, layer) = reference(&d, pl as usize);
            prop_assert_eq!(tree.root(), root);
            prop_assert_eq!(&fh.piece_layer, &layer);
        }

        #[test]
        fn stream_hasher_matches_whole_file(
            len in 0usize..150_000,
            seed: u8,
            pl_log in 0u32..3,
            cuts in proptest::collection::vec(0usize..40_000, 0..8),
        ) {
            let pl = (BLOCK_SIZE << pl_log) as u64;
            let d = data(len, seed);
            let mut s = StreamHasher::new(pl).unwrap();
            let mut rest = d.as_slice();
            for cut in cuts {
                let (head, tail) = rest.split_at(cut.min(rest.len()));
                s.update(head);
                rest = tail;
            }
            s.update(rest);
            prop_assert_eq!(s.length(), len as u64);
            let (got, leaves) = s.finish();
            prop_assert_eq!(got, file_hashes(&d, pl).unwrap());
            prop_assert_eq!(leaves, leaf_hashes(&d));
        }
    }
}
