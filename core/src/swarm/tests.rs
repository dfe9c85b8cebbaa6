//! Whole swarms over in-memory links with a virtual clock. Every message
//! crosses the real wire encoder and decoder, so these runs exercise the
//! protocol as peers on sockets would, minus the sockets.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use bay_wire::merkle;
use bay_wire::peer::{Decoder, Frame, Limits, Piece, Status};
use bytes::BytesMut;

use super::*;

const PIECE: u32 = 32 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Behaviour {
    Honest,
    /// Flips a byte in every block it uploads.
    Corrupt,
    /// Takes requests and never answers them.
    Silent,
}

struct Node {
    swarm: Swarm,
    data: Vec<u8>,
    behaviour: Behaviour,
    hashes: Vec<merkle::Hash>,
    disconnects: Vec<(PeerKey, DisconnectReason)>,
}

struct Net {
    nodes: Vec<Node>,
    links: BTreeSet<(usize, usize)>,
    inflight: VecDeque<(usize, usize, Message)>,
    /// What each (from, to) link has yet to carry, in order.
    backlog: BTreeMap<(usize, usize), VecDeque<Transmit>>,
    /// Blocks a node can upload per step, over all its links.
    upload_per_step: usize,
    now: Instant,
    truth: Vec<u8>,
}

fn truth(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 1000) as u8).collect()
}

fn peer_id(i: usize) -> [u8; 20] {
    let mut id = [b'-'; 20];
    id[..8].copy_from_slice(format!("-BY{i:04}-").as_bytes());
    id
}

impl Net {
    fn new(len: usize, seeds: &[Behaviour], leechers: usize) -> Net {
        let truth = truth(len);
        let geometry = Geometry {
            total_len: len as u64,
            piece_len: PIECE,
        };
        let hashes: Vec<merkle::Hash> = truth
            .chunks(PIECE as usize)
            .map(|p| merkle::piece_hash(p, u64::from(PIECE), len as u64).unwrap())
            .collect();
        let now = Instant::now();
        let pieces = hashes.len() as u32;
        let mut nodes = Vec::new();
        for (i, b) in seeds.iter().enumerate() {
            nodes.push(Node {
                swarm: Swarm::new(
                    SwarmConfig::default(),
                    geometry,
                    [9; 20],
                    peer_id(i),
                    &Bitfield::full(pieces),
                    now,
                ),
                data: truth.clone(),
                behaviour: *b,
                hashes: hashes.clone(),
                disconnects: Vec::new(),
            });
        }
        for i in seeds.len()..seeds.len() + leechers {
            nodes.push(Node {
                swarm: Swarm::new(
                    SwarmConfig::default(),
                    geometry,
                    [9; 20],
                    peer_id(i),
                    &Bitfield::new(pieces),
                    now,
                ),
                data: vec![0; len],
                behaviour: Behaviour::Honest,
                hashes: hashes.clone(),
                disconnects: Vec::new(),
            });
        }
        Net {
            nodes,
            links: BTreeSet::new(),
            inflight: VecDeque::new(),
            backlog: BTreeMap::new(),
            upload_per_step: usize::MAX,
            now,
            truth,
        }
    }

    fn connect_all(&mut self) {
        let n = self.nodes.len();
        for a in 0..n {
            for b in a + 1..n {
                self.connect(a, b);
            }
        }
    }

    fn connect(&mut self, a: usize, b: usize) {
        let ha = self.nodes[a].swarm.handshake();
        let hb = self.nodes[b].swarm.handshake();
        let now = self.now;
        self.nodes[a]
            .swarm
            .peer_connected(b as PeerKey, &hb, true, now)
            .unwrap();
        self.nodes[b]
            .swarm
            .peer_connected(a as PeerKey, &ha, false, now)
            .unwrap();
        self.links.insert((a.min(b), a.max(b)));
    }

    fn linked(&self, a: usize, b: usize) -> bool {
        self.links.contains(&(a.min(b), a.max(b)))
    }

    fn cut(&mut self, a: usize, b: usize) {
        if self.links.remove(&(a.min(b), a.max(b))) {
            self.backlog.remove(&(a, b));
            self.backlog.remove(&(b, a));
            self.nodes[a].swarm.peer_disconnected(b as PeerKey);
            self.nodes[b].swarm.peer_disconnected(a as PeerKey);
        }
    }

    /// Runs the engine's duties for one node: events, then transmits.
    fn drive(&mut self, i: usize) {
        let now = self.now;
        while let Some(event) = self.nodes[i].swarm.poll_event() {
            let node = &mut self.nodes[i];
            match event {
                Event::StoreBlock { piece, begin, data } => {
                    let at = (piece * PIECE + begin) as usize;
                    node.data[at..at + data.len()].copy_from_slice(&data);
                }
                Event::VerifyPiece { piece } => {
                    let start = (piece * PIECE) as usize;
                    let end = (start + PIECE as usize).min(node.data.len());
                    let ok = merkle::verify_piece(
                        &node.hashes[piece as usize],
                        &node.data[start..end],
                        u64::from(PIECE),
                        node.data.len() as u64,
                    )
                    .is_ok();
                    if ok {
                        node.swarm.piece_verified(piece, now);
                    } else {
                        node.swarm.piece_failed(piece, now);
                    }
                }
                Event::Disconnect { peer, reason } => {
                    node.disconnects.push((peer, reason));
                    self.cut(i, peer as usize);
                }
                Event::Complete => {}
            }
        }
        let peers: Vec<usize> = (0..self.nodes.len())
            .filter(|&j| j != i && self.linked(i, j))
            .collect();
        for &j in &peers {
            let mut out = Vec::new();
            self.nodes[i].swarm.poll_transmit(j as PeerKey, &mut out);
            self.backlog.entry((i, j)).or_default().extend(out);
        }
        // Share the node's upload between its links, a block at a time.
        let mut budget = self.upload_per_step;
        let mut progress = true;
        while progress {
            progress = false;
            for &j in &peers {
                loop {
                    let queue = self.backlog.entry((i, j)).or_default();
                    let Some(t) = queue.front() else { break };
                    let is_block = matches!(t, Transmit::Block(_));
                    if is_block && budget == 0 {
                        break;
                    }
                    let t = queue.pop_front().unwrap();
                    if let Some(m) = self.to_message(i, t) {
                        self.inflight.push_back((i, j, m));
                    }
                    progress = true;
                    if is_block {
                        budget -= 1;
                        break;
                    }
                }
            }
        }
    }

    /// What would go over the wire for a transmit, through the real codec.
    fn to_message(&self, from: usize, t: Transmit) -> Option<Message> {
        let node = &self.nodes[from];
        let message = match t {
            Transmit::Message(m) => m,
            Transmit::Block(r) => {
                if node.behaviour == Behaviour::Silent {
                    return None;
                }
                let at = (r.piece * PIECE + r.begin) as usize;
                let mut block = node.data[at..at + r.length as usize].to_vec();
                if node.behaviour == Behaviour::Corrupt {
                    block[0] ^= 0x55;
                }
                Message::Piece(Piece {
                    piece: r.piece,
                    begin: r.begin,
                    block: block.into(),
                })
            }
        };
        let mut wire = BytesMut::new();
        message.encode(&mut wire).unwrap();
        let mut decoder = Decoder::after_handshake(Limits::default());
        match decoder.decode(&mut wire).unwrap() {
            Status::Complete(Frame::Message(m), _) => Some(m),
            other => panic!("codec lost a message: {other:?}"),
        }
    }

    fn step(&mut self) {
        for i in 0..self.nodes.len() {
            self.drive(i);
        }
        while let Some((from, to, m)) = self.inflight.pop_front() {
            if self.linked(from, to) {
                let now = self.now;
                self.nodes[to].swarm.handle_message(from as PeerKey, m, now);
            }
        }
        self.now += Duration::from_millis(10);
        let now = self.now;
        for node in &mut self.nodes {
            if now >= node.swarm.poll_timeout() {
                node.swarm.handle_timeout(now);
            }
        }
    }

    /// Steps until every listed node is complete; returns virtual seconds.
    fn run_until_complete(&mut self, nodes: std::ops::Range<usize>, max_steps: usize) -> f64 {
        let start = self.now;
        for _ in 0..max_steps {
            if nodes.clone().all(|i| self.nodes[i].swarm.is_complete()) {
                return self.now.duration_since(start).as_secs_f64();
            }
            self.step();
        }
        let state: BTreeMap<usize, u32> = nodes
            .map(|i| (i, self.nodes[i].swarm.have().count()))
            .collect();
        panic!("not complete after {max_steps} steps: {state:?}");
    }
}

#[test]
fn one_seed_many_leechers_all_complete_with_exact_bytes() {
    let mut net = Net::new(8_000_000, &[Behaviour::Honest], 4);
    net.upload_per_step = 8;
    net.connect_all();
    let secs = net.run_until_complete(1..5, 100_000);
    for node in &net.nodes[1..] {
        assert!(node.data == net.truth);
        // Only links between two complete peers are closed, as useless.
        assert!(
            node.disconnects
                .iter()
                .all(|(_, r)| *r == DisconnectReason::Finished),
            "{:?}",
            node.disconnects
        );
    }
    // Leechers trade among themselves: the seed uploads well under
    // 4 copies' worth.
    let seed_up = net.nodes[0].swarm.stats().uploaded;
    let total: u64 = net.nodes[1..]
        .iter()
        .map(|n| n.swarm.stats().downloaded)
        .sum();
    assert!(total >= 4 * 8_000_000, "{total}");
    // The seed alone could push one copy in 8e6 / (8 x 16 KiB per 10 ms)
    // = 0.61 s, four copies in 2.4 s; trading gets everyone done sooner.
    assert!(
        seed_up < 2 * 8_000_000,
        "seed uploaded {seed_up} of {total}"
    );
    assert!(secs < 1.5, "{secs} s");
}

#[test]
fn a_corrupt_peer_is_dropped_and_the_download_completes_from_others() {
    let mut net = Net::new(400_000, &[Behaviour::Corrupt, Behaviour::Honest], 1);
    net.connect_all();
    net.run_until_complete(2..3, 50_000);
    assert!(net.nodes[2].data == net.truth);
    assert!(net.nodes[2]
        .disconnects
        .contains(&(0, DisconnectReason::BadPiece)));
    assert!(
        net.nodes[2].disconnects.iter().all(|(peer, _)| *peer == 0),
        "the honest peer was never blamed: {:?}",
        net.nodes[2].disconnects
    );
    assert!(!net.linked(0, 2));
}

#[test]
fn a_silent_peer_times_out_and_others_finish_the_job() {
    let mut net = Net::new(300_000, &[Behaviour::Silent, Behaviour::Honest], 1);
    net.connect_all();
    net.run_until_complete(2..3, 100_000);
    assert!(net.nodes[2].data == net.truth);
}

#[test]
fn requests_to_a_silent_peer_are_taken_back_after_the_timeout() {
    let mut net = Net::new(100_000, &[Behaviour::Silent], 1);
    net.connect_all();
    let timeout = SwarmConfig::default().request_timeout;
    let requests_sent = |net: &Net| net.nodes[1].swarm.stats().downloaded;
    for _ in 0..100 {
        net.step();
    }
    assert_eq!(requests_sent(&net), 0);
    let asked_before = net.nodes[1]
        .swarm
        .peers
        .get(&0)
        .map(|p| p.outstanding.len());
    assert_eq!(asked_before, Some(7), "every block of the 4 pieces asked");
    let first_sent = net.nodes[1].swarm.peers[&0].outstanding[0].1;
    // Nothing arrives from anyone, so how long requests take is unknown:
    // the request timeout applies.
    while net.now < first_sent + timeout - Duration::from_secs(2) {
        net.step();
    }
    assert_eq!(net.nodes[1].swarm.peers[&0].outstanding.len(), 7);
    while net.now < first_sent + timeout + Duration::from_secs(2) {
        net.step();
    }
    let peer = &net.nodes[1].swarm.peers[&0];
    assert!(peer.outstanding.is_empty(), "requests taken back");
    assert!(peer.silent, "and it is asked for nothing more");
}

#[test]
fn a_request_timeout_below_the_silence_floor_still_works() {
    // Slow enough that blocks arrive across many ticks, where the
    // silence limit is measured.
    let mut net = Net::new(2_000_000, &[Behaviour::Honest], 1);
    let config = SwarmConfig {
        request_timeout: Duration::from_secs(1),
        ..SwarmConfig::default()
    };
    let pieces = 2_000_000u64.div_ceil(u64::from(PIECE)) as u32;
    net.restart(1, config, &Bitfield::new(pieces));
    net.upload_per_step = 1;
    net.connect_all();
    net.run_until_complete(1..2, 50_000);
    assert!(net.nodes[1].data == net.truth);
}

#[test]
fn a_peer_lost_mid_piece_leaves_no_hole() {
    let mut net = Net::new(600_000, &[Behaviour::Honest, Behaviour::Honest], 1);
    net.connect_all();
    for _ in 0..3 {
        net.step();
    }
    assert!(!net.nodes[2].swarm.is_complete());
    net.cut(0, 2);
    net.run_until_complete(2..3, 50_000);
    assert!(net.nodes[2].data == net.truth);
}

#[test]
fn unknown_hashes_hold_requests_until_known() {
    let mut net = Net::new(200_000, &[Behaviour::Honest], 1);
    let pieces = net.nodes[1]
        .swarm
        .geometry()
        .total_len
        .div_ceil(u64::from(PIECE)) as u32;
    net.nodes[1].swarm.set_hashes_unknown(0..pieces);
    net.connect_all();
    for _ in 0..50 {
        net.step();
    }
    assert_eq!(net.nodes[1].swarm.stats().downloaded, 0);
    let now = net.now;
    net.nodes[1].swarm.hash_known(2, now);
    for _ in 0..50 {
        net.step();
    }
    assert_eq!(
        net.nodes[1].swarm.have().iter().collect::<Vec<_>>(),
        vec![2]
    );
    for p in 0..pieces {
        let now = net.now;
        net.nodes[1].swarm.hash_known(p, now);
    }
    net.run_until_complete(1..2, 10_000);
}

#[test]
fn a_reader_gets_its_piece_first() {
    let mut net = Net::new(2_000_000, &[Behaviour::Honest], 1);
    let now = net.now;
    net.nodes[1]
        .swarm
        .set_reader(1, 40 * u64::from(PIECE) + 3, now);
    net.connect_all();
    for _ in 0..200 {
        net.step();
        if net.nodes[1].swarm.have().count() > 0 {
            break;
        }
    }
    assert!(
        net.nodes[1].swarm.have().has(40),
        "{:?}",
        net.nodes[1].swarm.have().iter().collect::<Vec<_>>()
    );
}

#[test]
fn a_held_swarm_fetches_nothing_until_a_reader_comes() {
    let mut net = Net::new(2_000_000, &[Behaviour::Honest], 1);
    net.nodes[1].swarm.hold_until_read();
    net.connect_all();
    for _ in 0..200 {
        net.step();
    }
    assert_eq!(net.nodes[1].swarm.have().count(), 0, "a held swarm fetched");
    assert_eq!(net.nodes[0].swarm.stats().uploaded, 0);
    let now = net.now;
    net.nodes[1].swarm.set_reader(1, 0, now);
    net.run_until_complete(1..2, 10_000);
}

#[test]
fn a_hold_that_comes_after_the_reader_holds_nothing() {
    let mut net = Net::new(2_000_000, &[Behaviour::Honest], 1);
    let now = net.now;
    net.nodes[1].swarm.set_reader(1, 0, now);
    net.nodes[1].swarm.hold_until_read();
    net.connect_all();
    net.run_until_complete(1..2, 10_000);
}

#[test]
fn malformed_peer_messages_disconnect() {
    let mut net = Net::new(100_000, &[Behaviour::Honest], 1);
    net.connect_all();
    let now = net.now;
    net.nodes[0]
        .swarm
        .handle_message(1, Message::Have { piece: 999 }, now);
    assert!(matches!(
        net.nodes[0].swarm.poll_event(),
        Some(Event::Disconnect {
            peer: 1,
            reason: DisconnectReason::Protocol(_)
        })
    ));
    let mut other = Net::new(100_000, &[Behaviour::Honest], 1);
    other.connect_all();
    let bad = BlockRequest {
        piece: 0,
        begin: 0,
        length: 1 << 20,
    };
    other.nodes[0]
        .swarm
        .handle_message(1, Message::Request(bad), now);
    assert!(matches!(
        other.nodes[0].swarm.poll_event(),
        Some(Event::Disconnect { peer: 1, .. })
    ));
}

#[test]
fn refuses_duplicates_self_and_strangers() {
    let net = Net::new(100_000, &[Behaviour::Honest], 1);
    let mut a = Swarm::new(
        SwarmConfig::default(),
        net.nodes[0].swarm.geometry(),
        [9; 20],
        peer_id(0),
        &Bitfield::new(4),
        net.now,
    );
    let me = a.handshake();
    assert_eq!(
        a.peer_connected(1, &me, true, net.now),
        Err(Refused::Myself)
    );
    let other = Handshake::new([9; 20], peer_id(5));
    assert_eq!(a.peer_connected(1, &other, true, net.now), Ok(()));
    assert_eq!(
        a.peer_connected(2, &other, true, net.now),
        Err(Refused::Duplicate)
    );
    let stranger = Handshake::new([1; 20], peer_id(6));
    assert_eq!(
        a.peer_connected(3, &stranger, true, net.now),
        Err(Refused::WrongTorrent)
    );
}

#[test]
fn a_request_into_the_last_pieces_padding_is_served() {
    // 100_000 bytes in 32 KiB pieces: the last piece holds 1_696 bytes.
    let net = Net::new(100_000, &[Behaviour::Honest], 0);
    let mut seed = net.nodes.into_iter().next().unwrap().swarm;
    let now = Instant::now();
    seed.peer_connected(1, &Handshake::new([9; 20], peer_id(7)), false, now)
        .unwrap();
    seed.handle_message(1, Message::Interested, now);
    let padded = BlockRequest {
        piece: 3,
        begin: 0,
        length: BLOCK_SIZE,
    };
    seed.handle_message(1, Message::Request(padded), now);
    let mut out = Vec::new();
    seed.poll_transmit(1, &mut out);
    assert!(out.contains(&Transmit::Block(padded)), "{out:?}");
    assert_eq!(seed.poll_event(), None);
    // Past the padded piece, or starting past the blob: a protocol error.
    for bad in [
        BlockRequest {
            piece: 3,
            begin: PIECE - 100,
            length: BLOCK_SIZE,
        },
        BlockRequest {
            piece: 3,
            begin: 16 * 1024,
            length: 16,
        },
    ] {
        seed.handle_message(1, Message::Request(bad), now);
        assert!(
            matches!(seed.poll_event(), Some(Event::Disconnect { peer: 1, .. })),
            "{bad:?}"
        );
        seed.peer_disconnected(1);
        seed.peer_connected(1, &Handshake::new([9; 20], peer_id(7)), false, now)
            .unwrap();
        seed.handle_message(1, Message::Interested, now);
    }
}

impl Net {
    /// Restarts node `i` (not yet connected) with `config` and `have`.
    fn restart(&mut self, i: usize, config: SwarmConfig, have: &Bitfield) {
        let geometry = self.nodes[i].swarm.geometry();
        self.nodes[i].swarm = Swarm::new(config, geometry, [9; 20], peer_id(i), have, self.now);
    }

    /// The origin receives piece after piece at `per_step` pieces a step,
    /// as it does while fetching from the registry, until every host has
    /// the blob; returns virtual seconds.
    fn run_progressive_origin(&mut self, per_step: u32, max_steps: usize) -> f64 {
        let start = self.now;
        let pieces = self.nodes[0]
            .swarm
            .geometry()
            .total_len
            .div_ceil(u64::from(PIECE)) as u32;
        let mut next = 0;
        for _ in 0..max_steps {
            if (1..self.nodes.len()).all(|i| self.nodes[i].swarm.is_complete()) {
                return self.now.duration_since(start).as_secs_f64();
            }
            for _ in 0..per_step {
                if next < pieces {
                    let now = self.now;
                    self.nodes[0].swarm.piece_verified(next, now);
                    next += 1;
                }
            }
            self.step();
        }
        panic!("not complete after {max_steps} steps");
    }
}

const FLEET_BLOB: usize = 8_000_000;

/// One origin and eight hosts, every uplink 8 blocks a step (12.8 MB/s,
/// one copy of the blob in 0.61 s); returns (seconds until every host is
/// done, bytes the origin uploaded).
fn fleet(super_seed: bool, progressive: bool) -> (f64, u64) {
    let mut net = Net::new(FLEET_BLOB, &[Behaviour::Honest], 8);
    let pieces = FLEET_BLOB.div_ceil(PIECE as usize) as u32;
    let start = if progressive {
        Bitfield::new(pieces)
    } else {
        Bitfield::full(pieces)
    };
    // A window of 4 pieces (of 245): the seed goes on only as the hosts'
    // HAVEs come back.
    let config = SwarmConfig {
        super_seed,
        reveal_window: 4 * u64::from(PIECE),
        ..SwarmConfig::default()
    };
    net.restart(0, config, &start);
    // The origin never downloads: its pieces come from the registry.
    net.nodes[0].swarm.set_hashes_unknown(0..pieces);
    net.upload_per_step = 8;
    net.connect_all();
    let secs = if progressive {
        // The registry delivers at the origin's uplink rate: 4 pieces of
        // 32 KiB a step.
        net.run_progressive_origin(4, 100_000)
    } else {
        net.run_until_complete(1..9, 100_000)
    };
    for node in &net.nodes[1..] {
        assert!(node.data == net.truth);
    }
    (secs, net.nodes[0].swarm.stats().uploaded)
}

#[test]
fn a_super_seed_sends_about_one_copy_and_the_fleet_finishes_sooner() {
    for progressive in [false, true] {
        let (plain_secs, plain_up) = fleet(false, progressive);
        let (secs, up) = fleet(true, progressive);
        let copies = up as f64 / FLEET_BLOB as f64;
        let plain_copies = plain_up as f64 / FLEET_BLOB as f64;
        eprintln!(
            "progressive {progressive}: super-seed {secs:.2} s, {copies:.2} copies; \
             plain {plain_secs:.2} s, {plain_copies:.2} copies"
        );
        assert!(copies < 1.3, "super-seed sent {copies:.2} copies");
        assert!(
            secs < plain_secs,
            "super-seed {secs:.2} s, plain {plain_secs:.2} s"
        );
    }
}

#[test]
fn a_simultaneous_dial_keeps_the_same_connection_on_both_sides() {
    let pieces = 4;
    let geometry = Geometry {
        total_len: u64::from(pieces * PIECE),
        piece_len: PIECE,
    };
    let now = Instant::now();
    let swarm = |i: usize| {
        Swarm::new(
            SwarmConfig::default(),
            geometry,
            [9; 20],
            peer_id(i),
            &Bitfield::new(pieces),
            now,
        )
    };
    let (mut a, mut b) = (swarm(1), swarm(2));
    assert!(a.peer_id < b.peer_id);
    let (ha, hb) = (a.handshake(), b.handshake());
    // Connection 10 is dialled by a, connection 20 by b. Each side sees
    // the other's dial first.
    assert_eq!(a.peer_connected(20, &hb, false, now), Ok(()));
    assert_eq!(a.peer_connected(10, &hb, true, now), Ok(()));
    assert_eq!(b.peer_connected(10, &ha, false, now), Ok(()));
    assert_eq!(
        b.peer_connected(20, &ha, true, now),
        Err(Refused::Duplicate)
    );
    let closed: Vec<Event> = std::iter::from_fn(|| a.poll_event()).collect();
    assert_eq!(
        closed,
        vec![Event::Disconnect {
            peer: 20,
            reason: DisconnectReason::Replaced
        }]
    );
    assert_eq!((a.peer_count(), b.peer_count()), (1, 1));
    // Later, a dial of an existing peer never replaces the connection.
    let later = now + SIMULTANEOUS_DIAL;
    assert_eq!(
        b.peer_connected(30, &ha, false, later),
        Err(Refused::Duplicate)
    );
    assert_eq!(
        a.peer_connected(30, &hb, true, later),
        Err(Refused::Duplicate)
    );
}

#[test]
fn a_block_a_reader_waits_on_goes_to_another_peer_within_seconds() {
    // The silent seed is connected first, so it is asked for the reader's
    // piece; the honest seed must get the request well before the 20 s
    // request timeout, and before end-game (the blob takes the honest
    // seed about 12 s).
    let mut net = Net::new(40_000_000, &[Behaviour::Silent, Behaviour::Honest], 1);
    net.upload_per_step = 2;
    let now = net.now;
    net.nodes[2].swarm.set_reader(1, 0, now);
    net.connect(0, 2);
    for _ in 0..10 {
        net.step();
    }
    assert!(
        net.nodes[2].swarm.peers[&0]
            .outstanding
            .iter()
            .any(|(b, _)| b.piece == 0),
        "the reader's piece was asked of the silent seed"
    );
    net.connect(1, 2);
    let start = net.now;
    while !net.nodes[2].swarm.have().has(0) {
        assert!(
            net.now < start + Duration::from_secs(6),
            "the reader's piece is still missing"
        );
        net.step();
    }
}
