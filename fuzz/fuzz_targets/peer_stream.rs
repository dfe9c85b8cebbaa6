//! Feeds arbitrary bytes, in arbitrary chunk sizes, to the peer wire
//! decoder. It must never panic; every decoded frame must re-encode to
//! bytes that decode to the same frame; and how the stream is chunked must
//! not change what it decodes to.
//!
//! Input layout: byte 0 holds flags (bit 0: handshake first, bit 1: small
//! limits), bytes 1-2 seed the chunk sizes, the rest is the stream.
#![no_main]

use bay_wire::peer::{
    BytesMut, Decoder, ExtendedHandshake, Frame, Handshake, Limits, Message, PeerError, Status,
    EXTENDED_HANDSHAKE_ID,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [flags, seed_hi, seed_lo, stream @ ..] = data else {
        return;
    };
    let limits = if flags & 2 != 0 {
        Limits {
            max_block: 64,
            max_payload: 100,
        }
    } else {
        Limits::default()
    };
    let fresh = || {
        if flags & 1 != 0 {
            Decoder::new(limits)
        } else {
            Decoder::after_handshake(limits)
        }
    };
    let seed = u16::from_be_bytes([*seed_hi, *seed_lo]);
    let chunked = decode_chunked(fresh(), stream, seed);
    let whole = decode_whole(fresh(), stream);
    assert_eq!(chunked, whole, "chunking changed the decoded frames");
    for frame in chunked.0 {
        check_round_trip(&frame, limits);
    }
});

/// Frames decoded and the error that ended the stream, if any.
type Outcome = (Vec<Frame>, Option<PeerError>);

fn decode_chunked(mut decoder: Decoder, stream: &[u8], seed: u16) -> Outcome {
    let mut state = u32::from(seed) | 1;
    let mut buf = BytesMut::new();
    let mut rest = stream;
    let mut frames = Vec::new();
    loop {
        // xorshift: cheap, deterministic chunk sizes from 1 to 64 bytes,
        // with the occasional large one.
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let size = if state % 16 == 0 {
            4096
        } else {
            1 + (state % 64) as usize
        };
        let (chunk, tail) = rest.split_at(size.min(rest.len()));
        buf.extend_from_slice(chunk);
        rest = tail;
        loop {
            let before = buf.len();
            match decoder.decode(&mut buf) {
                Ok(Status::Complete(frame, used)) => {
                    assert_eq!(
                        before - buf.len(),
                        used,
                        "used count differs from bytes taken"
                    );
                    frames.push(frame);
                }
                Ok(Status::Partial { needed }) => {
                    assert!(needed > 0, "partial with nothing needed");
                    assert_eq!(before, buf.len(), "partial consumed bytes");
                    break;
                }
                Err(err) => return (frames, Some(err)),
            }
        }
        if rest.is_empty() {
            return (frames, None);
        }
    }
}

fn decode_whole(mut decoder: Decoder, stream: &[u8]) -> Outcome {
    let mut rest = stream;
    let mut frames = Vec::new();
    loop {
        match decoder.decode_slice(rest) {
            Ok(Status::Complete(frame, used)) => {
                assert!(used > 0 && used <= rest.len());
                rest = &rest[used..];
                frames.push(frame);
            }
            Ok(Status::Partial { .. }) => return (frames, None),
            Err(err) => return (frames, Some(err)),
        }
    }
}

fn check_round_trip(frame: &Frame, limits: Limits) {
    match frame {
        Frame::Handshake(handshake) => {
            let bytes = handshake.to_bytes();
            match Handshake::decode(&bytes) {
                Ok(Status::Complete(again, 68)) => assert_eq!(&again, handshake),
                other => panic!("handshake did not round-trip: {other:?}"),
            }
        }
        Frame::Message(message) => {
            if let Message::Extended {
                id: EXTENDED_HANDSHAKE_ID,
                payload,
            } = message
            {
                check_extended_handshake(payload);
            }
            let bytes = message.to_vec().expect("a decoded message re-encodes");
            assert_eq!(bytes.len(), message.encoded_len());
            let mut buf = BytesMut::from(&bytes[..]);
            match Decoder::after_handshake(limits).decode(&mut buf) {
                Ok(Status::Complete(Frame::Message(again), used)) => {
                    assert_eq!(&again, message);
                    assert_eq!(used, bytes.len());
                    assert!(buf.is_empty());
                }
                other => panic!("{message:?} did not round-trip: {other:?}"),
            }
        }
    }
}

/// An extended handshake that decodes re-encodes to one that decodes the
/// same (unknown keys are dropped, so bytes may differ, values may not).
fn check_extended_handshake(payload: &[u8]) {
    if let Ok(handshake) = ExtendedHandshake::decode(payload) {
        let again = ExtendedHandshake::decode(&handshake.to_bytes());
        assert_eq!(
            again.as_ref(),
            Ok(&handshake),
            "extended handshake did not round-trip"
        );
    }
}
