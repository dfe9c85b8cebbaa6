use super::*;
use crate::bencode::{self, Owned};
use crate::merkle::BLOCK_SIZE;
use proptest::prelude::*;

const KIB: usize = 1024;

fn blob(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

fn options(name: &str) -> BuildOptions {
    BuildOptions {
        name: name.to_owned(),
        ..BuildOptions::default()
    }
}

fn build_with(len: usize, piece_length: u64) -> (Vec<u8>, Metainfo) {
    let data = blob(len, len as u32);
    let opts = BuildOptions {
        piece_length: Some(piece_length),
        ..options("blob")
    };
    let meta = build(&data, &opts).unwrap();
    (data, meta)
}

/// Re-encodes a torrent after `edit` changes its decoded form.
fn edited(torrent: &[u8], edit: impl FnOnce(&mut BTreeMap<Vec<u8>, Owned>)) -> Vec<u8> {
    let mut owned = bencode::decode(torrent).unwrap().to_owned_value();
    let Owned::Dict(map) = &mut owned else {
        panic!("torrent is not a dict")
    };
    edit(map);
    owned.to_bytes()
}

fn info_mut(map: &mut BTreeMap<Vec<u8>, Owned>) -> &mut BTreeMap<Vec<u8>, Owned> {
    match map.get_mut(b"info".as_slice()) {
        Some(Owned::Dict(info)) => info,
        _ => panic!("no info dict"),
    }
}

fn layers_mut(map: &mut BTreeMap<Vec<u8>, Owned>) -> &mut BTreeMap<Vec<u8>, Owned> {
    match map.get_mut(b"piece layers".as_slice()) {
        Some(Owned::Dict(layers)) => layers,
        _ => panic!("no piece layers dict"),
    }
}

#[test]
fn built_torrent_has_bep52_shape() {
    let (_, meta) = build_with(100 * KIB, 32 * KIB as u64);
    let bytes = meta.to_bytes();
    let root = bencode::decode(&bytes).unwrap();
    let info = root.get(b"info").unwrap();
    assert_eq!(info.get(b"meta version").unwrap().as_int(), Some(2));
    assert_eq!(info.get(b"piece length").unwrap().as_int(), Some(32 * 1024));
    assert!(info.get(b"pieces").is_none(), "v2 only");
    assert!(info.get(b"private").is_none());
    let props = info
        .get(b"file tree")
        .unwrap()
        .get(b"blob")
        .unwrap()
        .get(b"")
        .unwrap();
    assert_eq!(props.get(b"length").unwrap().as_int(), Some(100 * 1024));
    let root_hash = props.get(b"pieces root").unwrap().as_bytes().unwrap();
    let layer = root.get(b"piece layers").unwrap().get(root_hash).unwrap();
    assert_eq!(layer.as_bytes().unwrap().len(), 4 * 32);
    assert!(
        root.get(b"creation date").is_none(),
        "no clock unless asked"
    );
    assert_eq!(meta.info_hash(), InfoHashV2::of(info.raw));
}

#[test]
fn build_is_deterministic_and_round_trips() {
    for &(len, pl) in &[
        (1, 16 * KIB),
        (16 * KIB, 16 * KIB),
        (16 * KIB + 1, 16 * KIB),
        (5 * 64 * KIB, 64 * KIB),
        (5 * 64 * KIB + 3, 64 * KIB),
        (3 * KIB, 1024 * KIB),
    ] {
        let (_, a) = build_with(len, pl as u64);
        let (_, b) = build_with(len, pl as u64);
        assert_eq!(a.to_bytes(), b.to_bytes());
        let parsed = Metainfo::from_bytes(&a.to_bytes()).unwrap();
        assert_eq!(parsed, a, "len={len}");
        assert_eq!(parsed.to_bytes(), a.to_bytes());
    }
}

#[test]
fn small_files_carry_no_piece_layer_but_keep_the_key() {
    let (_, meta) = build_with(16 * KIB, 16 * KIB as u64);
    let bytes = meta.to_bytes();
    let root = bencode::decode(&bytes).unwrap();
    assert_eq!(
        root.get(b"piece layers").unwrap().as_dict().unwrap().len(),
        0
    );
}

#[test]
fn empty_blob_has_no_pieces_root() {
    let meta = build(&[], &options("empty")).unwrap();
    assert_eq!(meta.info().files[0].pieces_root, None);
    assert_eq!(meta.info().num_pieces(), 0);
    let parsed = Metainfo::from_bytes(&meta.to_bytes()).unwrap();
    assert_eq!(parsed.info_hash(), meta.info_hash());
    assert!(parsed.verify_piece(0, &[]).is_err());
}

#[test]
fn options_reach_the_torrent() {
    let opts = BuildOptions {
        name: "layer.tar".into(),
        piece_length: None,
        trackers: vec!["http://a/announce".into(), "http://b/announce".into()],
        web_seeds: vec!["http://seed/layer.tar".into()],
        private: true,
        creation_date: Some(1_700_000_000),
        created_by: Some("bay".into()),
        comment: None,
    };
    let meta = build(&blob(1000, 1), &opts).unwrap();
    let parsed = Metainfo::from_bytes(&meta.to_bytes()).unwrap();
    assert!(parsed.info().private);
    assert_eq!(parsed.announce.as_deref(), Some("http://a/announce"));
    assert_eq!(
        parsed.announce_list,
        vec![
            vec!["http://a/announce".to_owned()],
            vec!["http://b/announce".to_owned()]
        ]
    );
    assert_eq!(parsed.url_list, vec!["http://seed/layer.tar".to_owned()]);
    assert_eq!(parsed.creation_date, Some(1_700_000_000));
    assert_eq!(parsed.created_by.as_deref(), Some("bay"));
    // The private flag is inside the info dict, so it changes the hash.
    let public = build(
        &blob(1000, 1),
        &BuildOptions {
            private: false,
            ..opts
        },
    )
    .unwrap();
    assert_ne!(public.info_hash(), meta.info_hash());
}

#[test]
fn piece_length_is_chosen_from_size() {
    assert_eq!(choose_piece_length(0), 64 * 1024);
    assert_eq!(choose_piece_length(1), 64 * 1024);
    assert_eq!(choose_piece_length(128 << 20), 64 * 1024);
    assert_eq!(choose_piece_length((128 << 20) + 1), 128 * 1024);
    assert_eq!(choose_piece_length(1 << 30), 512 * 1024);
    assert_eq!(choose_piece_length(1 << 40), 16 << 20);
    assert_eq!(choose_piece_length(u64::MAX), 16 << 20);
    for size in [200 << 20, 700 << 20, 3 << 30] {
        let pieces = size / choose_piece_length(size);
        assert!((1024..=2048).contains(&pieces), "{size}: {pieces}");
    }
}

#[test]
fn build_rejects_bad_options() {
    for name in ["", ".", "..", "a/b", "a\\b", "nul\0"] {
        assert!(matches!(
            build(b"x", &options(name)),
            Err(MetainfoError::Build(_))
        ));
    }
    let bad_pl = BuildOptions {
        piece_length: Some(20_000),
        ..options("x")
    };
    assert!(matches!(
        build(b"x", &bad_pl),
        Err(MetainfoError::PieceLength(_))
    ));
}

#[test]
fn pieces_verify_and_tampered_pieces_fail() {
    let pl = 32 * KIB;
    let (data, meta) = build_with(7 * pl + 1234, pl as u64);
    assert_eq!(meta.info().num_pieces(), 8);
    for (i, chunk) in data.chunks(pl).enumerate() {
        let i = i as u32;
        meta.verify_piece(i, chunk).unwrap();
        let mut bad = chunk.to_vec();
        bad[0] ^= 1;
        assert_eq!(
            meta.verify_piece(i, &bad),
            Err(MetainfoError::PieceMismatch { piece: i })
        );
    }
    assert!(matches!(
        meta.verify_piece(7, &data[..pl]),
        Err(MetainfoError::PieceSize { .. })
    ));
    assert!(matches!(
        meta.verify_piece(8, &data[..10]),
        Err(MetainfoError::NoSuchPiece { .. })
    ));
    // One-piece file: checked against the root.
    let (small, meta) = build_with(3 * BLOCK_SIZE + 5, 1 << 20);
    meta.verify_piece(0, &small).unwrap();
    assert_eq!(
        meta.piece_layer(0),
        Some(vec![meta.info().files[0].pieces_root.unwrap()])
    );
}

#[test]
fn info_hash_is_over_the_original_bytes() {
    let (_, meta) = build_with(50 * KIB, 16 * KIB as u64);
    // Unknown keys in the info dict are kept and hashed.
    let torrent = edited(&meta.to_bytes(), |m| {
        info_mut(m).insert(b"source".to_vec(), Owned::from("x"));
    });
    let parsed = Metainfo::from_bytes(&torrent).unwrap();
    assert_ne!(parsed.info_hash(), meta.info_hash());
    let info_raw = bencode::decode(&torrent)
        .unwrap()
        .get(b"info")
        .unwrap()
        .raw
        .to_vec();
    assert_eq!(parsed.info_hash(), InfoHashV2::of(&info_raw));
    assert_eq!(parsed.info_bytes(), info_raw.as_slice());
    assert_eq!(parsed.info_hash().truncated(), parsed.info_hash().0[..20]);
}

#[test]
fn rejects_v1_only_and_newer_versions() {
    let (_, meta) = build_with(50 * KIB, 16 * KIB as u64);
    let torrent = meta.to_bytes();
    let v1 = edited(&torrent, |m| {
        let info = info_mut(m);
        info.remove(b"meta version".as_slice());
        info.insert(b"pieces".to_vec(), Owned::from(vec![0u8; 20]));
    });
    assert_eq!(Metainfo::from_bytes(&v1), Err(MetainfoError::V1Only));
    assert!(MetainfoError::V1Only.to_string().contains("v1"));
    let v3 = edited(&torrent, |m| {
        let info = info_mut(m);
        info.insert(b"meta version".to_vec(), Owned::Int(3));
        info.remove(b"file tree".as_slice());
    });
    assert_eq!(
        Metainfo::from_bytes(&v3),
        Err(MetainfoError::UnsupportedMetaVersion(3)),
        "the version is checked before the rest"
    );
}

#[test]
fn reads_hybrid_torrents() {
    let (data, meta) = build_with(50 * KIB, 16 * KIB as u64);
    let hybrid = edited(&meta.to_bytes(), |m| {
        let info = info_mut(m);
        info.insert(b"pieces".to_vec(), Owned::from(vec![0u8; 4 * 20]));
        info.insert(b"length".to_vec(), Owned::Int(50 * 1024));
    });
    let parsed = Metainfo::from_bytes(&hybrid).unwrap();
    assert!(parsed.is_hybrid());
    assert_eq!(parsed.info().files, meta.info().files);
    parsed.verify_piece(1, &data[16 * KIB..32 * KIB]).unwrap();
}

#[test]
fn rejects_bad_piece_layers() {
    let (_, meta) = build_with(50 * KIB, 16 * KIB as u64);
    let torrent = meta.to_bytes();
    let root = meta.info().files[0].pieces_root.unwrap();
    let flipped = edited(&torrent, |m| {
        let layers = layers_mut(m);
        if let Some(Owned::Bytes(b)) = layers.get_mut(root.as_slice()) {
            b[5] ^= 1;
        }
    });
    assert!(matches!(
        Metainfo::from_bytes(&flipped),
        Err(MetainfoError::PieceLayerMismatch { .. })
    ));
    let short = edited(&torrent, |m| {
        let layers = layers_mut(m);
        if let Some(Owned::Bytes(b)) = layers.get_mut(root.as_slice()) {
            b.truncate(64);
        }
    });
    assert!(matches!(
        Metainfo::from_bytes(&short),
        Err(MetainfoError::PieceLayerLength { .. })
    ));
    let missing = edited(&torrent, |m| {
        let layers = layers_mut(m);
        layers.clear();
    });
    assert!(matches!(
        Metainfo::from_bytes(&missing),
        Err(MetainfoError::MissingPieceLayer { .. })
    ));
    let extra = edited(&torrent, |m| {
        let layers = layers_mut(m);
        layers.insert(vec![7; 32], Owned::from(vec![0u8; 32]));
    });
    assert!(matches!(
        Metainfo::from_bytes(&extra),
        Err(MetainfoError::UnexpectedPieceLayer { .. })
    ));
    let absent = edited(&torrent, |m| {
        m.remove(b"piece layers".as_slice());
    });
    assert_eq!(
        Metainfo::from_bytes(&absent),
        Err(MetainfoError::MissingKey {
            key: "piece layers"
        })
    );
}

#[test]
fn rejects_hostile_paths() {
    let (_, meta) = build_with(100, 16 * KIB as u64);
    let torrent = meta.to_bytes();
    for bad in [&b".."[..], b".", b"a/b", b"\xff\xfe"] {
        let t = edited(&torrent, |m| {
            let info = info_mut(m);
            let Some(Owned::Dict(tree)) = info.get_mut(b"file tree".as_slice()) else {
                panic!()
            };
            let file = tree.remove(b"blob".as_slice()).unwrap();
            tree.insert(bad.to_vec(), file);
        });
        assert!(
            matches!(
                Metainfo::from_bytes(&t),
                Err(MetainfoError::FileTree { .. })
            ),
            "{bad:?}"
        );
    }
    // A file at the root of the tree.
    let t = edited(&torrent, |m| {
        let info = info_mut(m);
        let Some(Owned::Dict(tree)) = info.get_mut(b"file tree".as_slice()) else {
            panic!()
        };
        let mut props = Owned::dict();
        props.insert(b"length", 0i64);
        tree.insert(Vec::new(), props);
    });
    assert!(matches!(
        Metainfo::from_bytes(&t),
        Err(MetainfoError::FileTree { .. })
    ));
}

#[test]
fn multi_file_pieces_are_aligned_per_file() {
    // Hand-built tree: dir/a (3 pieces), dir/b (empty), dir/c (1 piece).
    let pl = 16 * KIB;
    let a = blob(2 * pl + 10, 1);
    let c = blob(100, 2);
    let ha = merkle::file_hashes(&a, pl as u64).unwrap();
    let hc = merkle::file_hashes(&c, pl as u64).unwrap();
    let file = |len: usize, root: Option<Hash>| {
        let mut props = Owned::dict();
        props.insert(b"length", len as u64);
        if let Some(r) = root {
            props.insert(b"pieces root", r.as_slice());
        }
        let mut leaf = Owned::dict();
        leaf.insert(b"", props);
        leaf
    };
    let mut dir = Owned::dict();
    dir.insert(b"a", file(a.len(), ha.pieces_root))
        .insert(b"b", file(0, None))
        .insert(b"c", file(c.len(), hc.pieces_root));
    let mut tree = Owned::dict();
    tree.insert(b"dir", dir);
    let mut info = Owned::dict();
    info.insert(b"file tree", tree)
        .insert(b"meta version", 2i64)
        .insert(b"name", "dir")
        .insert(b"piece length", pl as u64);
    let mut layers = Owned::dict();
    layers.insert(&ha.pieces_root.unwrap(), ha.piece_layer.concat());
    let mut torrent = Owned::dict();
    torrent
        .insert(b"info", info)
        .insert(b"piece layers", layers);
    let meta = Metainfo::from_bytes(&torrent.to_bytes()).unwrap();
    let files = &meta.info().files;
    assert_eq!(files.len(), 3);
    assert_eq!(files[1].path, vec!["dir".to_owned(), "b".to_owned()]);
    assert_eq!(
        files.iter().map(|f| f.first_piece).collect::<Vec<_>>(),
        vec![0, 3, 3]
    );
    assert_eq!(meta.info().num_pieces(), 4);
    assert_eq!(meta.info().locate_piece(3), Some((2, 0)));
    assert_eq!(meta.info().piece_size(2), Some(10));
    meta.verify_piece(2, &a[2 * pl..]).unwrap();
    meta.verify_piece(3, &c).unwrap();
    assert_eq!(meta.to_bytes(), torrent.to_bytes());
}

#[test]
fn info_hash_hex_round_trips() {
    let h = InfoHashV2([0xab; 32]);
    assert_eq!(InfoHashV2::from_hex(&h.to_hex()), Ok(h));
    assert_eq!(h.to_string().len(), 64);
    assert!(InfoHashV2::from_hex("abcd").is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn build_parse_round_trip(len in 0usize..300_000, pl_log in 0u32..4, seed: u32, private: bool) {
        let data = blob(len, seed);
        let opts = BuildOptions {
            piece_length: Some((BLOCK_SIZE as u64) << pl_log),
            private,
            ..options("f")
        };
        let meta = build(&data, &opts).unwrap();
        let parsed = Metainfo::from_bytes(&meta.to_bytes()).unwrap();
        prop_assert_eq!(&parsed, &meta);
        for piece in 0..parsed.info().num_pieces() {
            let start = piece as usize * (BLOCK_SIZE << pl_log);
            let size = parsed.info().piece_size(piece).unwrap() as usize;
            prop_assert!(parsed.verify_piece(piece, &data[start..start + size]).is_ok());
        }
    }

    #[test]
    fn never_panics_on_mutated_torrents(pos in 0usize..4096, byte: u8, cut in 0usize..4096) {
        let (_, meta) = build_with(40 * KIB, 16 * KIB as u64);
        let mut t = meta.to_bytes();
        let p = pos % t.len();
        t[p] = byte;
        t.truncate(t.len() - cut % t.len());
        let _ = Metainfo::from_bytes(&t);
    }
}

#[test]
fn a_torrent_from_streamed_piece_hashes_is_the_torrent_of_the_blob() {
    for len in [1usize, 16 * 1024, 100_000, 64 * 1024 * 5, 64 * 1024 * 5 + 3] {
        let blob: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
        let options = BuildOptions {
            name: "blob".into(),
            piece_length: Some(64 * 1024),
            private: true,
            ..BuildOptions::default()
        };
        let whole = build(&blob, &options).unwrap();
        let hashes = blob
            .chunks(64 * 1024)
            .map(|p| merkle::piece_hash(p, 64 * 1024, len as u64).unwrap())
            .collect::<Vec<_>>();
        let streamed = build_from_piece_hashes(len as u64, hashes.clone(), &options).unwrap();
        assert_eq!(streamed.to_bytes(), whole.to_bytes(), "length {len}");
        assert!(
            build_from_piece_hashes(len as u64 + 64 * 1024, hashes, &options).is_err(),
            "hashes that do not cover the blob were taken"
        );
    }
}
