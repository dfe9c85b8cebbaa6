//! Parses arbitrary bytes as a .torrent. Parsing must never panic; a
//! torrent that parses must survive re-encoding: its info dict re-encodes
//! to the very bytes it was hashed over (the decoder is strict), and the
//! whole torrent written back parses to the same value and info hash.
#![no_main]
use bay_wire::bencode;
use bay_wire::metainfo::{InfoHashV2, Metainfo};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(meta) = Metainfo::from_bytes(data) else {
        return;
    };
    let info = bencode::decode(meta.info_bytes()).expect("info bytes decode again");
    let reencoded = info.to_owned_value().to_bytes();
    assert_eq!(reencoded.as_slice(), meta.info_bytes());
    assert_eq!(InfoHashV2::of(&reencoded), meta.info_hash());

    let again = Metainfo::from_bytes(&meta.to_bytes()).expect("re-encoded torrent parses");
    assert_eq!(again.info_hash(), meta.info_hash());
    assert_eq!(again, meta);

    // Piece lookups and checks stay in bounds for any piece index.
    let pieces = meta.info().num_pieces();
    for piece in [0, 1, pieces.saturating_sub(1), pieces, u32::MAX] {
        let _ = meta.info().piece_size(piece);
        let _ = meta.piece_hash(piece);
        let _ = meta.verify_piece(piece, &data[..data.len().min(64)]);
    }
    for file in 0..meta.info().files.len().min(4) {
        assert!(meta.piece_layer(file).is_some());
    }
});
