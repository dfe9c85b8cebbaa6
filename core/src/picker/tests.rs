//! The picker's rules, one at a time.

use super::*;

const PIECE: u32 = 2 * BLOCK_LEN;

fn picker(pieces: u32) -> Picker {
    Picker::new(u64::from(pieces) * u64::from(PIECE), PIECE, 7)
}

fn pick(p: &mut Picker, peer: PeerKey, has: PeerHas<'_>, want: usize) -> Vec<Block> {
    let mut out = Vec::new();
    p.pick(peer, has, want, true, &mut out);
    out
}

fn deliver(p: &mut Picker, peer: PeerKey, blocks: &[Block]) -> Vec<Received> {
    blocks.iter().map(|b| p.block_received(peer, *b)).collect()
}

#[test]
fn rarest_piece_first() {
    let mut p = picker(4);
    let mut common = Bitfield::full(4);
    common.clear(2);
    p.peer_joined(PeerHas::Some(&common));
    p.peer_joined(PeerHas::Some(&common));
    let blocks = pick(&mut p, 1, PeerHas::All, 2);
    assert!(blocks.iter().all(|b| b.piece == 2), "{blocks:?}");
}

#[test]
fn started_pieces_are_finished_before_new_ones() {
    let mut p = picker(8);
    let first = pick(&mut p, 1, PeerHas::All, 1);
    let next = pick(&mut p, 2, PeerHas::All, 1);
    assert_eq!(first[0].piece, next[0].piece);
    assert_ne!(first[0].offset, next[0].offset);
}

#[test]
fn readers_get_the_pieces_just_ahead_of_them() {
    let mut p = picker(64);
    p.set_reader(9, u64::from(PIECE) * 40 + 5);
    let blocks = pick(&mut p, 1, PeerHas::All, 4);
    let pieces: Vec<u32> = blocks.iter().map(|b| b.piece).collect();
    assert_eq!(pieces, vec![40, 40, 41, 41]);
}

#[test]
fn only_pieces_the_peer_has_and_whose_hash_is_known() {
    let mut p = picker(4);
    p.set_hashes_unknown([1, 2, 3]);
    let mut peer_has = Bitfield::new(4);
    peer_has.set(1);
    assert!(pick(&mut p, 1, PeerHas::Some(&peer_has), 8).is_empty());
    assert!(!p.is_interesting(PeerHas::Some(&peer_has)));
    p.hash_known(1);
    assert!(p.is_interesting(PeerHas::Some(&peer_has)));
    let blocks = pick(&mut p, 1, PeerHas::Some(&peer_has), 8);
    assert_eq!(blocks.len(), 2);
    assert!(blocks.iter().all(|b| b.piece == 1));
}

#[test]
fn piece_completes_verifies_and_is_had() {
    let mut p = picker(1);
    let blocks = pick(&mut p, 1, PeerHas::All, 8);
    assert_eq!(blocks.len(), 2);
    let r = deliver(&mut p, 1, &blocks);
    assert!(!r[0].piece_complete);
    assert!(r[1].piece_complete);
    p.piece_verified(0);
    assert!(p.is_complete());
    assert!(pick(&mut p, 1, PeerHas::All, 8).is_empty());
}

#[test]
fn failed_piece_names_its_senders_and_is_picked_again() {
    let mut p = picker(1);
    let a = pick(&mut p, 1, PeerHas::All, 1);
    let b = pick(&mut p, 2, PeerHas::All, 1);
    deliver(&mut p, 1, &a);
    assert!(deliver(&mut p, 2, &b)[0].piece_complete);
    assert_eq!(p.piece_failed(0), vec![1, 2]);
    assert_eq!(pick(&mut p, 3, PeerHas::All, 8).len(), 2);
}

#[test]
fn a_piece_that_failed_with_several_senders_goes_to_one_peer() {
    let mut p = picker(1);
    let a = pick(&mut p, 1, PeerHas::All, 1);
    let b = pick(&mut p, 2, PeerHas::All, 1);
    deliver(&mut p, 1, &a);
    deliver(&mut p, 2, &b);
    assert_eq!(p.piece_failed(0), vec![1, 2]);
    assert_eq!(pick(&mut p, 1, PeerHas::All, 1).len(), 1);
    assert!(
        pick(&mut p, 2, PeerHas::All, 8).is_empty(),
        "owned by peer 1"
    );
    assert_eq!(pick(&mut p, 1, PeerHas::All, 8).len(), 1);
    p.peer_left(1, PeerHas::All);
    assert_eq!(pick(&mut p, 2, PeerHas::All, 8).len(), 2, "free again");
}

#[test]
fn unrequested_or_malformed_blocks_are_unwanted() {
    let mut p = picker(2);
    let blocks = pick(&mut p, 1, PeerHas::All, 1);
    assert!(p.block_received(2, blocks[0]).unwanted);
    let odd = Block {
        len: 5,
        ..blocks[0]
    };
    assert!(p.block_received(1, odd).unwanted);
    let far = Block {
        piece: 99,
        ..blocks[0]
    };
    assert!(p.block_received(1, far).unwanted);
    assert!(!p.block_received(1, blocks[0]).unwanted);
    assert!(p.block_received(1, blocks[0]).unwanted, "second copy");
}

#[test]
fn a_departed_peer_frees_its_requests() {
    let mut p = picker(1);
    assert_eq!(pick(&mut p, 1, PeerHas::All, 8).len(), 2);
    p.peer_left(1, PeerHas::All);
    assert_eq!(pick(&mut p, 2, PeerHas::All, 8).len(), 2);
}

#[test]
fn end_game_doubles_up_then_cancels_the_loser() {
    let mut p = picker(1);
    let slow = pick(&mut p, 1, PeerHas::All, 8);
    let fast = pick(&mut p, 2, PeerHas::All, 8);
    assert_eq!(
        slow, fast,
        "end-game asks the second peer for the same blocks"
    );
    assert!(
        pick(&mut p, 3, PeerHas::All, 8).is_empty(),
        "at most two requesters"
    );
    let r = deliver(&mut p, 2, &fast);
    assert_eq!(r[0].cancel, vec![1]);
    assert!(r[1].piece_complete);
    assert!(p.block_received(1, slow[0]).unwanted);
}

#[test]
fn no_end_game_while_pieces_are_still_to_come() {
    let mut p = picker(4);
    p.set_hashes_unknown([2, 3]);
    let first = pick(&mut p, 1, PeerHas::All, 8);
    assert_eq!(first.len(), 4, "both blocks of pieces 0 and 1");
    assert!(
        pick(&mut p, 2, PeerHas::All, 8).is_empty(),
        "pieces 2 and 3 are not started: no doubling up yet"
    );
    p.hash_known(2);
    p.hash_known(3);
    assert_eq!(pick(&mut p, 1, PeerHas::All, 8).len(), 4);
    let doubled = pick(&mut p, 2, PeerHas::All, 8);
    assert_eq!(
        doubled.len(),
        END_GAME_BATCH,
        "now every piece is in flight: end-game, a few blocks at a time"
    );
    let mut busy = Vec::new();
    p.pick(3, PeerHas::All, 8, false, &mut busy);
    assert!(
        busy.is_empty(),
        "a peer with requests in flight gets no copies"
    );
}

#[test]
fn short_last_piece_has_short_last_block() {
    let total = u64::from(PIECE) + 100;
    let mut p = Picker::new(total, PIECE, 1);
    p.set_reader(1, u64::from(PIECE));
    let blocks = pick(&mut p, 1, PeerHas::All, 1);
    assert_eq!(
        blocks,
        vec![Block {
            piece: 1,
            offset: 0,
            len: 100
        }]
    );
    assert_eq!(p.piece_size(1), 100);
}

proptest::proptest! {
    /// Peers that together hold every piece, some of whose requests are
    /// dropped, always bring the download to completion.
    #[test]
    fn swarm_of_partial_peers_completes(
        pieces in 1u32..40,
        tail in 0u32..PIECE,
        masks in proptest::collection::vec(proptest::collection::vec(proptest::bool::ANY, 40), 1..4),
        drops in proptest::collection::vec(proptest::bool::ANY, 64),
    ) {
        let total = u64::from(pieces) * u64::from(PIECE) - u64::from(tail);
        let total = total.max(1);
        let mut p = Picker::new(total, PIECE, 3);
        let n = p.piece_count();
        let mut fields: Vec<Bitfield> = masks.iter().map(|m| {
            let mut b = Bitfield::new(n);
            for (i, on) in m.iter().enumerate().take(n as usize) {
                if *on { b.set(i as u32); }
            }
            b
        }).collect();
        // The first peer fills the gaps so the swarm as a whole is complete.
        for piece in 0..n {
            if !fields.iter().any(|f| f.has(piece)) {
                fields[0].set(piece);
            }
        }
        for f in &fields {
            p.peer_joined(PeerHas::Some(f));
        }
        let mut round = 0usize;
        while !p.is_complete() {
            proptest::prop_assert!(round < 10_000, "no progress");
            for (key, f) in fields.iter().enumerate() {
                let key = key as PeerKey;
                let blocks = pick(&mut p, key, PeerHas::Some(f), 3);
                for (i, b) in blocks.into_iter().enumerate() {
                    if drops[(round + i) % drops.len()] && round.is_multiple_of(3) {
                        p.request_dropped(key, b);
                        continue;
                    }
                    let r = p.block_received(key, b);
                    if r.piece_complete {
                        p.piece_verified(b.piece);
                    }
                }
            }
            round += 1;
        }
    }
}
