use super::*;
use bay_wire::merkle;

const PIECE: u64 = 32 * 1024;

fn blob(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn digest_of(data: &[u8]) -> Digest {
    Digest::sha256_of(data)
}

fn piece_hashes(data: &[u8]) -> Vec<merkle::Hash> {
    data.chunks(PIECE as usize)
        .map(|p| merkle::piece_hash(p, PIECE, data.len() as u64).unwrap())
        .collect()
}

/// Downloads `data` into the store piece by piece, in the given order.
fn download(store: &Store, data: &[u8], order: impl IntoIterator<Item = u32>) -> PartialBlob {
    let digest = digest_of(data);
    let mut p = store
        .begin_partial(&digest, data.len() as u64, PIECE)
        .unwrap();
    for (i, h) in piece_hashes(data).into_iter().enumerate() {
        p.set_piece_hash(i as u32, h).unwrap();
    }
    for piece in order {
        let chunk = data.chunks(PIECE as usize).nth(piece as usize).unwrap();
        p.write_piece(piece, chunk).unwrap();
    }
    p
}

#[test]
fn partial_download_becomes_a_verified_blob() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), 1 << 30).unwrap();
    let data = blob(100_000, 1);
    let digest = digest_of(&data);
    let p = download(&store, &data, [3, 0, 2, 1]);
    assert!(p.is_complete());
    assert_eq!(p.piece(3).unwrap(), &data[98_304..]);
    assert!(!store.contains(&digest));
    let blob = p.finish().unwrap();
    assert_eq!(&*blob.map().unwrap(), &data[..]);
    assert!(store.contains(&digest));
    assert_eq!(store.stats().used_bytes, 100_000);
    drop(blob);
    let again = store.get(&digest).unwrap().unwrap();
    assert_eq!(again.len(), 100_000);
}

#[test]
fn a_bad_piece_is_never_written() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), 1 << 30).unwrap();
    let data = blob(70_000, 2);
    let mut p = download(&store, &data, []);
    let mut wrong = data[..PIECE as usize].to_vec();
    wrong[5] ^= 1;
    assert!(matches!(
        p.write_piece(0, &wrong),
        Err(PieceError::Mismatch { piece: 0 })
    ));
    assert!(p.piece(0).is_none());
    assert!(matches!(
        p.write_piece(2, &data[..10]),
        Err(PieceError::WrongSize { .. })
    ));
    assert!(matches!(
        p.write_piece(9, &data[..10]),
        Err(PieceError::OutOfRange { .. })
    ));
    assert!(matches!(
        p.finish(),
        Err(StoreError::Incomplete { missing: 3, .. })
    ));
}

#[test]
fn unknown_hashes_refuse_pieces() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), 1 << 30).unwrap();
    let data = blob(70_000, 3);
    let mut p = store
        .begin_partial(&digest_of(&data), data.len() as u64, PIECE)
        .unwrap();
    assert!(matches!(
        p.write_piece(0, &data[..PIECE as usize]),
        Err(PieceError::HashUnknown { piece: 0 })
    ));
}

#[test]
fn pieces_that_match_hashes_but_not_the_digest_are_discarded() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), 1 << 30).unwrap();
    let data = blob(50_000, 4);
    let claimed = digest_of(b"some other blob");
    let mut p = store
        .begin_partial(&claimed, data.len() as u64, PIECE)
        .unwrap();
    for (i, h) in piece_hashes(&data).into_iter().enumerate() {
        p.set_piece_hash(i as u32, h).unwrap();
    }
    for (i, chunk) in data.chunks(PIECE as usize).enumerate() {
        p.write_piece(i as u32, chunk).unwrap();
    }
    assert!(matches!(p.finish(), Err(StoreError::DigestMismatch { .. })));
    assert!(!store.contains(&claimed));
    assert!(!dir
        .path()
        .join("partial")
        .join(claimed.path_component())
        .exists());
    assert_eq!(fs::read_dir(dir.path().join("blobs")).unwrap().count(), 0);
}

#[test]
fn restart_resumes_and_rechecks_marked_pieces() {
    let dir = tempfile::tempdir().unwrap();
    let data = blob(200_000, 5);
    let digest = digest_of(&data);
    {
        let store = Store::open(dir.path(), 1 << 30).unwrap();
        download(&store, &data, [0, 1, 4]);
    }
    // Damage piece 1 on disk, as a crash before writeback might.
    let data_path = dir
        .path()
        .join("partial")
        .join(digest.path_component())
        .join("data");
    let mut on_disk = fs::read(&data_path).unwrap();
    on_disk[PIECE as usize + 7] ^= 0xff;
    fs::write(&data_path, &on_disk).unwrap();

    let store = Store::open(dir.path(), 1 << 30).unwrap();
    assert_eq!(store.stats().partial, 1);
    let p = store
        .begin_partial(&digest, data.len() as u64, PIECE)
        .unwrap();
    assert_eq!(p.have().iter().collect::<Vec<_>>(), vec![0, 4]);
    drop(p);
    let mut p = download(&store, &data, []);
    for piece in [1, 2, 3, 5, 6] {
        let chunk = data.chunks(PIECE as usize).nth(piece).unwrap();
        p.write_piece(piece as u32, chunk).unwrap();
    }
    let blob = p.finish().unwrap();
    assert_eq!(&*blob.map().unwrap(), &data[..]);
}

#[test]
fn junk_on_disk_is_removed_at_start() {
    let dir = tempfile::tempdir().unwrap();
    drop(Store::open(dir.path(), 1 << 30).unwrap());
    fs::write(dir.path().join("blobs").join("not-a-digest"), b"x").unwrap();
    fs::write(dir.path().join("tmp").join("leftover"), b"x").unwrap();
    let half = dir
        .path()
        .join("partial")
        .join(digest_of(b"x").path_component());
    fs::create_dir_all(&half).unwrap();
    fs::write(half.join("data"), b"no meta").unwrap();
    let store = Store::open(dir.path(), 1 << 30).unwrap();
    assert_eq!(
        store.stats(),
        StoreStats {
            budget_bytes: 1 << 30,
            ..StoreStats::default()
        }
    );
    for sub in ["blobs", "tmp", "partial"] {
        assert_eq!(
            fs::read_dir(dir.path().join(sub)).unwrap().count(),
            0,
            "{sub}"
        );
    }
}

#[test]
fn stream_writer_checks_digest_and_length() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), 1 << 30).unwrap();
    let data = blob(10_000, 6);
    let digest = digest_of(&data);

    let mut w = store.begin_stream(&digest, Some(10_000)).unwrap();
    assert!(matches!(
        store.begin_stream(&digest, None),
        Err(StoreError::Busy { .. })
    ));
    w.write(&data[..5000]).unwrap();
    drop(w); // a failed fetch leaves nothing
    assert!(!store.contains(&digest));
    assert_eq!(store.stats().used_bytes, 0);
    assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);

    let mut w = store.begin_stream(&digest, None).unwrap();
    w.write(b"<html>error page</html>").unwrap();
    assert!(matches!(w.finish(), Err(StoreError::DigestMismatch { .. })));
    assert!(!store.contains(&digest));

    let mut w = store.begin_stream(&digest, Some(9_999)).unwrap();
    assert!(matches!(
        w.write(&data),
        Err(StoreError::LengthMismatch { .. })
    ));
    drop(w);

    let mut w = store.begin_stream(&digest, Some(10_000)).unwrap();
    for chunk in data.chunks(777) {
        w.write(chunk).unwrap();
    }
    let blob = w.finish().unwrap();
    assert_eq!(&*blob.map().unwrap(), &data[..]);
    assert!(matches!(
        store.begin_stream(&digest, None),
        Err(StoreError::Busy { .. })
    ));
}

fn put(store: &Store, data: &[u8]) -> Digest {
    let digest = digest_of(data);
    let mut w = store
        .begin_stream(&digest, Some(data.len() as u64))
        .unwrap();
    w.write(data).unwrap();
    drop(w.finish().unwrap());
    digest
}

#[test]
fn budget_evicts_least_recently_used_but_never_pinned() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), 30_000).unwrap();
    let a = put(&store, &blob(10_000, 10));
    let b = put(&store, &blob(10_000, 11));
    let c = put(&store, &blob(10_000, 12));
    // Touch a, hold b open: c is the least recently used unpinned blob.
    drop(store.get(&a).unwrap());
    let reading_b = store.get(&b).unwrap().unwrap();
    let d = put(&store, &blob(10_000, 13));
    assert!(store.contains(&a) && store.contains(&b) && store.contains(&d));
    assert!(!store.contains(&c));
    assert!(!store.inner.layout.blob(&c).exists());
    assert_eq!(store.stats().used_bytes, 30_000);

    // Everything pinned: no room, and a clear error.
    let _ra = store.get(&a).unwrap().unwrap();
    let _rd = store.get(&d).unwrap().unwrap();
    let e = digest_of(&blob(10_000, 14));
    assert!(matches!(
        store.begin_stream(&e, Some(10_000)),
        Err(StoreError::OverBudget { .. })
    ));
    drop(reading_b);
    assert!(store.begin_stream(&e, Some(10_000)).is_ok());
}

#[test]
fn index_survives_restart_in_lru_order() {
    let dir = tempfile::tempdir().unwrap();
    let digests: Vec<Digest> = {
        let store = Store::open(dir.path(), 1 << 30).unwrap();
        (0..3).map(|i| put(&store, &blob(1000, 20 + i))).collect()
    };
    let store = Store::open(dir.path(), 1 << 30).unwrap();
    assert_eq!(store.stats().complete, 3);
    assert_eq!(store.stats().used_bytes, 3000);
    for d in &digests {
        assert_eq!(store.get(d).unwrap().unwrap().len(), 1000);
    }
    assert!(store.remove(&digests[0]).unwrap());
    assert!(!store.contains(&digests[0]));
}

#[test]
fn torrents_are_kept_beside_blobs() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), 1 << 30).unwrap();
    let d = digest_of(b"t");
    assert_eq!(store.torrent(&d).unwrap(), None);
    store.put_torrent(&d, b"d4:infodee").unwrap();
    assert_eq!(store.torrent(&d).unwrap().unwrap(), b"d4:infodee");
}

/// A real full file system: a tiny tmpfs, which needs root to mount.
#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs root and mount: scripts/test.sh runs it"
)]
fn full_disk_is_a_clear_error_and_leaves_no_entry() {
    let dir = bay_testkit::tmpfs::Tmpfs::mount(256 * 1024).unwrap();
    let store = Store::open(dir.path(), 1 << 30).unwrap();
    let big = blob(1 << 20, 30);
    let digest = digest_of(&big);

    let err = store
        .begin_partial(&digest, big.len() as u64, PIECE)
        .unwrap_err();
    assert!(err.is_disk_full(), "{err}");

    let mut w = store.begin_stream(&digest, None).unwrap();
    let err = big
        .chunks(64 * 1024)
        .find_map(|c| w.write(c).err())
        .expect("a 1 MiB write cannot fit in 256 KiB");
    assert!(err.is_disk_full(), "{err}");
    drop(w);
    assert!(!store.contains(&digest));
    assert_eq!(store.stats().used_bytes, 0);

    // The store still works for what fits.
    let small = blob(10_000, 31);
    let d = put(&store, &small);
    assert_eq!(&*store.get(&d).unwrap().unwrap().map().unwrap(), &small[..]);
}

#[test]
fn blocks_written_then_verified_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), 1 << 30).unwrap();
    let data = blob(70_000, 40);
    let mut p = download(&store, &data, []);
    let piece0 = &data[..PIECE as usize];
    p.write_block(0, 16384, &piece0[16384..]).unwrap();
    assert!(p.piece(0).is_none(), "unverified bytes are not readable");
    let mut bad = piece0[..16384].to_vec();
    bad[1] ^= 1;
    p.write_block(0, 0, &bad).unwrap();
    assert!(matches!(
        p.verify_piece(0),
        Err(PieceError::Mismatch { piece: 0 })
    ));
    assert!(!p.have().has(0));
    p.write_block(0, 0, &piece0[..16384]).unwrap();
    p.verify_piece(0).unwrap();
    assert_eq!(p.piece(0).unwrap(), piece0);
    assert!(matches!(
        p.write_block(0, 30000, &[0; 5000]),
        Err(PieceError::WrongSize { .. })
    ));
    assert!(matches!(
        p.write_block(0, u32::MAX, &[0; 5000]),
        Err(PieceError::WrongSize { .. })
    ));
}

#[test]
fn a_piece_checker_marks_only_pieces_that_match() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), 1 << 30).unwrap();
    let data = blob(3 * PIECE as usize + 100, 7);
    let digest = digest_of(&data);
    let mut p = store
        .begin_partial(&digest, data.len() as u64, PIECE)
        .unwrap();
    let hashes = piece_hashes(&data);
    for (i, h) in hashes.iter().enumerate() {
        p.set_piece_hash(i as u32, *h).unwrap();
    }
    let checker = p.checker().unwrap();
    // Piece 0 written right, piece 1 written wrong. (The full pieces
    // of this test blob are alike; the last, short one differs.)
    p.write_block(0, 0, &data[..PIECE as usize]).unwrap();
    let mut bad = data[PIECE as usize..2 * PIECE as usize].to_vec();
    bad[5] ^= 1;
    p.write_block(1, 0, &bad).unwrap();
    let checked =
        std::thread::scope(|s| s.spawn(|| checker.check(0, hashes[0])).join().unwrap()).unwrap();
    assert_eq!(checked.piece(), 0);
    assert!(matches!(
        checker.check(1, hashes[1]),
        Err(PieceError::Mismatch { piece: 1 })
    ));
    // Checked against a hash that is not the piece's: refused.
    let wrong = checker.check(0, hashes[0]).unwrap();
    p.set_piece_hash(0, hashes[3]).unwrap();
    assert!(p.mark_checked(wrong).is_err());
    assert!(!p.have().has(0));
    p.set_piece_hash(0, hashes[0]).unwrap();
    p.mark_checked(checked).unwrap();
    assert!(p.have().has(0));
    assert!(!p.have().has(1));
}
