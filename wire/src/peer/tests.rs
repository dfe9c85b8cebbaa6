//! Tests of the message codec and the incremental decoder: hand-written
//! frames from the BEPs, every truncation, hostile lengths, and property
//! round-trips through the encoder and a chunked decoder.

#![allow(clippy::unwrap_used)]

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;

use super::*;

/// A v2 pieces root that is not all one byte, to catch field swaps.
fn root() -> [u8; 32] {
    std::array::from_fn(|i| i as u8)
}

/// Every message kind with hand-written wire bytes, from BEP 3, 5, 6, 10
/// and 52.
fn spec_cases() -> Vec<(Message, Vec<u8>)> {
    let mut hash_req = root().to_vec();
    hash_req.extend_from_slice(&[0, 0, 0, 2, 0, 0, 0, 8, 0, 0, 0, 4, 0, 0, 0, 5]);
    let request = HashRequest {
        pieces_root: root(),
        base_layer: 2,
        index: 8,
        length: 4,
        proof_layers: 5,
    };
    // BEP 52 omits the first log2(4) - 1 = 1 of the 5 proof layers, so 4
    // uncles follow the 4 base hashes.
    let hashes: Vec<u8> = (0..8u8).flat_map(|i| [i; 32]).collect();
    let with = |prefix: &[u8], tail: &[u8]| [prefix, tail].concat();
    vec![
        (Message::KeepAlive, vec![0, 0, 0, 0]),
        (Message::Choke, vec![0, 0, 0, 1, 0]),
        (Message::Unchoke, vec![0, 0, 0, 1, 1]),
        (Message::Interested, vec![0, 0, 0, 1, 2]),
        (Message::NotInterested, vec![0, 0, 0, 1, 3]),
        (
            Message::Have { piece: 0x0102_0304 },
            vec![0, 0, 0, 5, 4, 1, 2, 3, 4],
        ),
        (
            Message::Bitfield(Bytes::from_static(&[0b1010_0000, 0xff])),
            vec![0, 0, 0, 3, 5, 0b1010_0000, 0xff],
        ),
        (
            Message::Request(BlockRequest {
                piece: 1,
                begin: 0x4000,
                length: 0x4000,
            }),
            vec![0, 0, 0, 13, 6, 0, 0, 0, 1, 0, 0, 0x40, 0, 0, 0, 0x40, 0],
        ),
        (
            Message::Piece(Piece {
                piece: 2,
                begin: 0x8000,
                block: Bytes::from_static(b"abc"),
            }),
            vec![0, 0, 0, 12, 7, 0, 0, 0, 2, 0, 0, 0x80, 0, b'a', b'b', b'c'],
        ),
        (
            Message::Cancel(BlockRequest {
                piece: 3,
                begin: 0,
                length: 100,
            }),
            vec![0, 0, 0, 13, 8, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 100],
        ),
        (Message::Port(6881), vec![0, 0, 0, 3, 9, 0x1a, 0xe1]),
        (
            Message::Suggest { piece: 7 },
            vec![0, 0, 0, 5, 13, 0, 0, 0, 7],
        ),
        (Message::HaveAll, vec![0, 0, 0, 1, 14]),
        (Message::HaveNone, vec![0, 0, 0, 1, 15]),
        (
            Message::Reject(BlockRequest {
                piece: 9,
                begin: 16384,
                length: 16384,
            }),
            vec![0, 0, 0, 13, 16, 0, 0, 0, 9, 0, 0, 0x40, 0, 0, 0, 0x40, 0],
        ),
        (
            Message::AllowedFast { piece: 0xffff_ffff },
            vec![0, 0, 0, 5, 17, 0xff, 0xff, 0xff, 0xff],
        ),
        (
            Message::Extended {
                id: 0,
                payload: Bytes::from_static(b"d1:pi6881ee"),
            },
            with(&[0, 0, 0, 13, 20, 0], b"d1:pi6881ee"),
        ),
        (
            Message::Extended {
                id: 3,
                payload: Bytes::new(),
            },
            vec![0, 0, 0, 2, 20, 3],
        ),
        (
            Message::HashRequest(request),
            with(&[0, 0, 0, 49, 21], &hash_req),
        ),
        (
            Message::Hashes(Hashes {
                request,
                hashes: Bytes::from(hashes.clone()),
            }),
            with(&with(&[0, 0, 1, 49, 22], &hash_req), &hashes),
        ),
        (
            Message::HashReject(request),
            with(&[0, 0, 0, 49, 23], &hash_req),
        ),
    ]
}

fn decode_one(bytes: &[u8]) -> Result<Status<Frame>, PeerError> {
    let mut buf = BytesMut::from(bytes);
    Decoder::after_handshake(Limits::default()).decode(&mut buf)
}

#[test]
fn every_message_encodes_to_its_spec_bytes() {
    for (message, bytes) in spec_cases() {
        assert_eq!(message.to_vec().unwrap(), bytes, "{message:?}");
        assert_eq!(message.encoded_len(), bytes.len(), "{message:?}");
    }
}

#[test]
fn every_message_decodes_from_its_spec_bytes_both_ways() {
    for (message, bytes) in spec_cases() {
        let expected = Status::Complete(Frame::Message(message.clone()), bytes.len());
        assert_eq!(decode_one(&bytes), Ok(expected.clone()), "{message:?}");
        let mut decoder = Decoder::after_handshake(Limits::default());
        assert_eq!(decoder.decode_slice(&bytes), Ok(expected), "{message:?}");
    }
}

#[test]
fn every_truncation_is_partial_and_leaves_the_buffer_alone() {
    for (message, bytes) in spec_cases() {
        for cut in 0..bytes.len() {
            let mut buf = BytesMut::from(&bytes[..cut]);
            let got = Decoder::after_handshake(Limits::default()).decode(&mut buf);
            let Ok(Status::Partial { needed }) = got else {
                panic!("{message:?} cut at {cut}: {got:?}");
            };
            // The hint never asks for more than the frame still lacks, and
            // the length prefix makes it exact once the id byte is in.
            assert!(
                needed >= 1 && needed <= bytes.len() - cut,
                "{message:?} cut {cut}"
            );
            if cut >= 5 {
                assert_eq!(needed, bytes.len() - cut, "{message:?} cut {cut}");
            }
            assert_eq!(&buf[..], &bytes[..cut]);
        }
    }
}

#[test]
fn a_stream_split_at_every_point_decodes_the_same() {
    let mut stream = Handshake::new([7; 20], [9; 20]).to_bytes().to_vec();
    let cases = spec_cases();
    for (_, bytes) in &cases {
        stream.extend_from_slice(bytes);
    }
    for split in 0..=stream.len() {
        let got = decode_chunks(&stream, &[split, stream.len() - split], Limits::default());
        let messages: Vec<Message> = got.unwrap();
        assert_eq!(messages.len(), cases.len(), "split at {split}");
        for ((want, _), got) in cases.iter().zip(&messages) {
            assert_eq!(want, got, "split at {split}");
        }
    }
}

/// Feeds `stream` in chunks of the given sizes (the last chunk takes the
/// rest) through a fresh decoder, checking the handshake comes first.
fn decode_chunks(
    stream: &[u8],
    chunks: &[usize],
    limits: Limits,
) -> Result<Vec<Message>, PeerError> {
    let mut decoder = Decoder::new(limits);
    let mut buf = BytesMut::new();
    let mut rest = stream;
    let mut out = Vec::new();
    let mut sizes = chunks.iter().copied().chain(std::iter::repeat(usize::MAX));
    while !rest.is_empty() || !buf.is_empty() {
        let n = sizes.next().unwrap_or(usize::MAX).min(rest.len());
        let (chunk, tail) = rest.split_at(n);
        buf.extend_from_slice(chunk);
        rest = tail;
        loop {
            match decoder.decode(&mut buf)? {
                Status::Complete(Frame::Handshake(_), _) => {
                    assert!(out.is_empty(), "handshake after messages");
                }
                Status::Complete(Frame::Message(m), _) => {
                    assert!(decoder.handshake_done());
                    out.push(m);
                }
                Status::Partial { .. } => break,
            }
        }
        if rest.is_empty() {
            break;
        }
    }
    assert!(buf.is_empty(), "{} bytes left undecoded", buf.len());
    Ok(out)
}

#[test]
fn decoded_payloads_share_the_receive_buffer() {
    let (message, bytes) = spec_cases()
        .into_iter()
        .find(|(m, _)| matches!(m, Message::Piece(_)))
        .unwrap();
    let mut buf = BytesMut::with_capacity(64);
    buf.extend_from_slice(&bytes);
    let start = buf.as_ptr() as usize;
    let Ok(Status::Complete(Frame::Message(Message::Piece(piece)), _)) =
        Decoder::after_handshake(Limits::default()).decode(&mut buf)
    else {
        panic!("{message:?} did not decode");
    };
    assert_eq!(piece.block.as_ptr() as usize, start + 13);
}

#[test]
fn a_second_bitfield_is_just_another_message() {
    let bitfield = Message::Bitfield(Bytes::from_static(&[0x80]));
    let mut stream = Handshake::new([1; 20], [2; 20]).to_bytes().to_vec();
    for m in [&bitfield, &Message::Unchoke, &bitfield] {
        stream.extend_from_slice(&m.to_vec().unwrap());
    }
    let got = decode_chunks(&stream, &[], Limits::default()).unwrap();
    assert_eq!(got, vec![bitfield.clone(), Message::Unchoke, bitfield]);
}

#[test]
fn messages_before_the_handshake_are_refused() {
    let mut decoder = Decoder::new(Limits::default());
    assert_eq!(
        decoder.decode_slice(&[0, 0, 0, 1, 1]),
        Err(PeerError::NotBitTorrent { offset: 0 })
    );
    assert!(!decoder.handshake_done());
}

#[test]
fn an_oversized_prefix_is_refused_from_four_bytes() {
    let err = decode_one(&[0xff, 0xff, 0xff, 0xff]).unwrap_err();
    assert!(matches!(
        err,
        PeerError::Oversized {
            length: u32::MAX,
            ..
        }
    ));
    assert_eq!(err.fault(), Fault::Limit);
}

#[test]
fn a_piece_above_the_block_limit_is_refused_from_its_id() {
    let limits = Limits::default();
    // 16 KiB + 9 is the largest piece prefix; one more is refused before
    // a byte of the block is buffered.
    let ok = 16384 + 9u32;
    assert_eq!(
        decode_one(&[&ok.to_be_bytes()[..], &[7]].concat()),
        Ok(Status::Partial { needed: 16384 + 8 })
    );
    let over = (ok + 1).to_be_bytes();
    assert_eq!(
        decode_one(&[&over[..], &[7]].concat()),
        Err(PeerError::Oversized {
            what: "piece",
            length: ok + 1,
            max: ok
        })
    );
    // Below the overall cap (1 MiB bitfields), so only the id tells.
    assert!(ok + 1 < limits.max_length_prefix());
    assert_eq!(decode_one(&over), Ok(Status::Partial { needed: 1 }));
}

#[test]
fn limits_are_configurable() {
    let limits = Limits {
        max_block: 4,
        max_payload: 2,
    };
    let mut decoder = Decoder::after_handshake(limits);
    let piece = Message::Piece(Piece {
        piece: 0,
        begin: 0,
        block: Bytes::from_static(b"abcde"),
    });
    assert!(matches!(
        decoder.decode_slice(&piece.to_vec().unwrap()),
        Err(PeerError::Oversized { what: "piece", .. })
    ));
    let bitfield = Message::Bitfield(Bytes::from_static(&[1, 2, 3]));
    assert!(matches!(
        decoder.decode_slice(&bitfield.to_vec().unwrap()),
        Err(PeerError::Oversized {
            what: "bitfield",
            length: 4,
            max: 3
        })
    ));
    // Fixed-size messages stay decodable whatever the payload limit.
    let request = Message::HashRequest(HashRequest {
        pieces_root: root(),
        base_layer: 0,
        index: 0,
        length: 1,
        proof_layers: 0,
    });
    assert_eq!(
        decoder.decode_slice(&request.to_vec().unwrap()),
        Ok(Status::Complete(Frame::Message(request), 53))
    );
}

#[test]
fn fixed_size_messages_with_another_length_are_peer_errors() {
    for (id, good) in [
        (0u8, 1u32),
        (1, 1),
        (2, 1),
        (3, 1),
        (4, 5),
        (6, 13),
        (8, 13),
        (9, 3),
        (13, 5),
        (14, 1),
        (15, 1),
        (16, 13),
        (17, 5),
        (21, 49),
        (23, 49),
    ] {
        for length in [good - 1, good + 1] {
            if length == 0 {
                continue;
            }
            let mut frame = length.to_be_bytes().to_vec();
            frame.push(id);
            let err = decode_one(&frame).unwrap_err();
            assert!(
                matches!(err, PeerError::BadLength { length: l, .. } if l == length),
                "id {id} length {length}: {err:?}"
            );
            assert!(err.is_peer_fault());
        }
    }
}

#[test]
fn variable_messages_too_short_for_their_fields_are_peer_errors() {
    for (id, length) in [(7u8, 8u32), (20, 1), (22, 48)] {
        let mut frame = length.to_be_bytes().to_vec();
        frame.push(id);
        assert!(
            matches!(decode_one(&frame), Err(PeerError::BadLength { .. })),
            "id {id} length {length}"
        );
    }
}

#[test]
fn unknown_ids_are_refused_with_the_id() {
    for id in [10u8, 11, 12, 18, 19, 24, 255] {
        assert_eq!(
            decode_one(&[0, 0, 0, 1, id]),
            Err(PeerError::UnknownMessageId { id, length: 1 })
        );
    }
}

fn hash_request_frame(id: u8, base: u32, index: u32, length: u32, proof: u32) -> Vec<u8> {
    let mut frame = vec![0, 0, 0, 49, id];
    frame.extend_from_slice(&root());
    for field in [base, index, length, proof] {
        frame.extend_from_slice(&field.to_be_bytes());
    }
    frame
}

#[test]
fn hash_requests_with_bad_fields_are_refused() {
    let cases = [
        (0, 0, 3, 0, HashRequestProblem::LengthNotPowerOfTwo(3)),
        (0, 0, 0, 0, HashRequestProblem::LengthNotPowerOfTwo(0)),
        (0, 0, 16384, 0, HashRequestProblem::LengthTooLarge(16384)),
        (
            0,
            6,
            4,
            0,
            HashRequestProblem::MisalignedIndex {
                index: 6,
                length: 4,
            },
        ),
        (64, 0, 2, 0, HashRequestProblem::LayerTooHigh(64)),
        (
            0,
            0,
            2,
            u32::MAX,
            HashRequestProblem::LayerTooHigh(u32::MAX),
        ),
    ];
    for id in [21u8, 23] {
        for (base, index, length, proof, problem) in cases {
            let frame = hash_request_frame(id, base, index, length, proof);
            let err = decode_one(&frame).unwrap_err();
            assert!(
                matches!(err, PeerError::InvalidHashRequest { problem: p, .. } if p == problem),
                "{err:?}"
            );
        }
    }
}

#[test]
fn libtorrents_single_block_hash_request_is_accepted() {
    // With 16 KiB pieces libtorrent asks for one block hash at a time.
    let frame = hash_request_frame(21, 0, 5, 1, 3);
    assert!(matches!(
        decode_one(&frame),
        Ok(Status::Complete(
            Frame::Message(Message::HashRequest(_)),
            53
        ))
    ));
}

#[test]
fn hashes_with_the_wrong_number_of_hashes_are_refused_whole() {
    // length 2 with 3 proof layers: 2 base hashes and 3 uncles, none of
    // the proof layers being covered by the base.
    let mut frame = hash_request_frame(22, 0, 0, 2, 3);
    for count in [0usize, 4, 6] {
        let mut f = frame.clone();
        f.extend(std::iter::repeat_n(0xab, count * 32));
        let prefix = u32::try_from(f.len() - 4).unwrap();
        f[..4].copy_from_slice(&prefix.to_be_bytes());
        let mut buf = BytesMut::from(&f[..]);
        let got = Decoder::after_handshake(Limits::default()).decode(&mut buf);
        assert_eq!(
            got,
            Err(PeerError::HashCountMismatch {
                expected: 5,
                got: count * 32
            })
        );
        assert_eq!(buf.len(), f.len(), "the frame stays in the buffer");
    }
    frame.extend(std::iter::repeat_n(0xab, 5 * 32 + 1));
    let prefix = u32::try_from(frame.len() - 4).unwrap();
    frame[..4].copy_from_slice(&prefix.to_be_bytes());
    assert!(matches!(
        decode_one(&frame),
        Err(PeerError::HashCountMismatch { .. })
    ));
}

#[test]
fn hashes_split_into_base_and_uncles() {
    let (message, _) = spec_cases()
        .into_iter()
        .find(|(m, _)| matches!(m, Message::Hashes(_)))
        .unwrap();
    let Message::Hashes(hashes) = message else {
        unreachable!()
    };
    let base: Vec<u8> = hashes.base().map(|h| h[0]).collect();
    let uncles: Vec<u8> = hashes.uncles().map(|h| h[0]).collect();
    assert_eq!(base, vec![0, 1, 2, 3]);
    assert_eq!(uncles, vec![4, 5, 6, 7]);
}

#[test]
fn uncle_counts_follow_bep52_and_libtorrent() {
    let request = |length, proof_layers| HashRequest {
        pieces_root: root(),
        base_layer: 0,
        index: 0,
        length,
        proof_layers,
    };
    // (length, proof layers, uncles)
    for (length, proof, uncles) in [
        (1, 0, 1),
        (1, 3, 4),
        (2, 0, 0),
        (2, 3, 3),
        (4, 1, 0),
        (4, 5, 4),
        (512, 8, 0),
        (512, 10, 2),
        (8192, 63, 51),
    ] {
        let r = request(length, proof);
        assert_eq!(r.uncle_count(), uncles, "length {length} proof {proof}");
        assert_eq!(r.answer_hash_count(), u64::from(length) + uncles);
    }
}

#[test]
fn garbage_after_the_handshake_fails_without_panicking() {
    let mut decoder = Decoder::after_handshake(Limits::default());
    let err = decoder.decode_slice(b"GET / HTTP/1.1\r\n").unwrap_err();
    assert_eq!(err.fault(), Fault::Limit, "{err:?}");
    let err = decoder
        .decode_slice(&[0, 0, 0, 5, b'G', b'E', b'T'])
        .unwrap_err();
    assert_eq!(
        err,
        PeerError::UnknownMessageId {
            id: b'G',
            length: 5
        }
    );
}

#[test]
fn the_piece_header_matches_an_encoded_piece() {
    let block = Bytes::from(vec![0x5a; 16384]);
    let full = Message::Piece(Piece {
        piece: 77,
        begin: 32768,
        block: block.clone(),
    })
    .to_vec()
    .unwrap();
    let header = piece_header(77, 32768, 16384).unwrap();
    assert_eq!(&full[..PIECE_HEADER_LEN], &header);
    assert_eq!(&full[PIECE_HEADER_LEN..], &block[..]);
    let mut vec = Vec::new();
    encode_piece_header(&mut vec, 77, 32768, 16384).unwrap();
    assert_eq!(vec, header);
    assert!(matches!(
        piece_header(0, 0, u32::MAX),
        Err(PeerError::PayloadTooLong { .. })
    ));
}

#[test]
fn encoding_into_a_full_slice_fails_and_writes_nothing() {
    let mut out = [0xeeu8; 8];
    let mut cursor = &mut out[..];
    let request = Message::Request(BlockRequest {
        piece: 0,
        begin: 0,
        length: 1,
    });
    let err = request.encode(&mut cursor).unwrap_err();
    assert_eq!(
        err,
        PeerError::BufferTooSmall {
            needed: 17,
            available: 8
        }
    );
    assert_eq!(err.fault(), Fault::Local);
    assert_eq!(out, [0xee; 8]);
}

#[test]
fn status_complete_gives_the_value() {
    assert_eq!(Status::Complete(3, 1).complete(), Some(3));
    assert_eq!(Status::<u8>::Partial { needed: 2 }.complete(), None);
}

fn any_request() -> impl Strategy<Value = BlockRequest> {
    (any::<u32>(), any::<u32>(), any::<u32>()).prop_map(|(piece, begin, length)| BlockRequest {
        piece,
        begin,
        length,
    })
}

fn any_hash_request() -> impl Strategy<Value = HashRequest> {
    (
        any::<[u8; 32]>(),
        0u32..=63,
        any::<u32>(),
        0u32..=13,
        0u32..=63,
    )
        .prop_map(|(pieces_root, base_layer, index, log_len, proof_layers)| {
            let length = 1u32 << log_len;
            HashRequest {
                pieces_root,
                base_layer,
                index: index / length * length,
                length,
                proof_layers,
            }
        })
}

fn any_bytes(max: usize) -> impl Strategy<Value = Bytes> {
    proptest::collection::vec(any::<u8>(), 0..=max).prop_map(Bytes::from)
}

fn any_message() -> impl Strategy<Value = Message> {
    prop_oneof![
        Just(Message::KeepAlive),
        Just(Message::Choke),
        Just(Message::Unchoke),
        Just(Message::Interested),
        Just(Message::NotInterested),
        Just(Message::HaveAll),
        Just(Message::HaveNone),
        any::<u32>().prop_map(|piece| Message::Have { piece }),
        any::<u32>().prop_map(|piece| Message::Suggest { piece }),
        any::<u32>().prop_map(|piece| Message::AllowedFast { piece }),
        any::<u16>().prop_map(Message::Port),
        any_request().prop_map(Message::Request),
        any_request().prop_map(Message::Cancel),
        any_request().prop_map(Message::Reject),
        any_bytes(300).prop_map(Message::Bitfield),
        (any::<u32>(), any::<u32>(), any_bytes(16384)).prop_map(|(piece, begin, block)| {
            Message::Piece(Piece {
                piece,
                begin,
                block,
            })
        }),
        (any::<u8>(), any_bytes(300)).prop_map(|(id, payload)| Message::Extended { id, payload }),
        any_hash_request().prop_map(Message::HashRequest),
        any_hash_request().prop_map(Message::HashReject),
        (any_hash_request(), any::<u8>()).prop_filter_map(
            "answer fits the payload limit",
            |(mut request, fill)| {
                request.length = request.length.min(64);
                request.index = request.index / request.length * request.length;
                let count = usize::try_from(request.answer_hash_count()).ok()?;
                let hashes = Bytes::from(vec![fill; count * HASH_LEN]);
                Some(Message::Hashes(Hashes { request, hashes }))
            }
        ),
    ]
}

proptest! {
    #[test]
    fn every_message_round_trips_through_a_chunked_decoder(
        messages in proptest::collection::vec(any_message(), 1..12),
        chunks in proptest::collection::vec(1usize..2000, 0..64),
        reserved in any::<[u8; 8]>(),
    ) {
        let handshake = Handshake {
            reserved: Reserved(reserved),
            info_hash: [3; 20],
            peer_id: [4; 20],
        };
        let mut stream = handshake.to_bytes().to_vec();
        for m in &messages {
            m.encode(&mut stream).unwrap();
        }
        let got = decode_chunks(&stream, &chunks, Limits::default()).unwrap();
        prop_assert_eq!(got, messages);
    }

    #[test]
    fn the_slice_decoder_agrees_with_the_buffer_decoder(message in any_message()) {
        let bytes = message.to_vec().unwrap();
        let mut decoder = Decoder::after_handshake(Limits::default());
        prop_assert_eq!(
            decoder.decode_slice(&bytes),
            Ok(Status::Complete(Frame::Message(message), bytes.len()))
        );
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_used_counts_stay_in_bounds(
        input in proptest::collection::vec(any::<u8>(), 0..200),
        handshake_first in any::<bool>(),
    ) {
        let limits = Limits::default();
        let mut decoder = if handshake_first {
            Decoder::new(limits)
        } else {
            Decoder::after_handshake(limits)
        };
        let mut rest = &input[..];
        while let Ok(Status::Complete(_, used)) = decoder.decode_slice(rest) {
            prop_assert!(used > 0 && used <= rest.len());
            rest = &rest[used..];
        }
    }
}
