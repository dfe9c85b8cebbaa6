//! Chunked decoder on arbitrary bytes in arbitrary pieces: never panics,
//! never gives more body than input, agrees with itself whatever the piece
//! sizes; and the encoder's output decodes back to its data.
#![no_main]
use bay_httpd::chunked::{encode_chunk, ChunkedDecoder, ChunkedLimits, Decoded, LAST_CHUNK};
use libfuzzer_sys::fuzz_target;

/// Decodes `input` fed in pieces whose sizes cycle through `steps`.
/// Returns the body, whether it ended, and whether it failed.
fn decode(input: &[u8], steps: &[u8]) -> (Vec<u8>, bool, bool) {
    let limits = ChunkedLimits {
        max_size_line: 64,
        max_trailer_bytes: 256,
    };
    let mut dec = ChunkedDecoder::with_limits(limits);
    let mut body = Vec::new();
    let mut pending: Vec<u8> = Vec::new();
    let mut fed = 0;
    let mut step = 0;
    loop {
        match dec.decode(&pending) {
            Err(_) => return (body, false, true),
            Ok(Decoded::Data { data, consumed }) => {
                assert!(!data.is_empty() && data.end <= consumed && consumed <= pending.len());
                body.extend_from_slice(&pending[data]);
                pending.drain(..consumed);
            }
            Ok(Decoded::Partial { consumed }) => {
                assert!(consumed <= pending.len());
                pending.drain(..consumed);
                if fed == input.len() {
                    return (body, false, false);
                }
                let size =
                    usize::from(steps.get(step % steps.len().max(1)).copied().unwrap_or(1)).max(1);
                step += 1;
                let end = (fed + size).min(input.len());
                pending.extend_from_slice(&input[fed..end]);
                fed = end;
            }
            Ok(Decoded::Done { consumed }) => {
                assert!(consumed <= pending.len());
                assert!(dec.is_done());
                return (body, true, false);
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    // First byte: how many step sizes follow; they cut the rest.
    let (n, rest) = data
        .split_first()
        .map_or((0, data), |(n, r)| (usize::from(*n % 8), r));
    let (steps, input) = rest.split_at(n.min(rest.len()));

    let (body, done, failed) = decode(input, steps);
    assert!(body.len() <= input.len());
    let (whole, whole_done, whole_failed) = decode(input, &[255]);
    if !failed && !whole_failed {
        assert_eq!(body, whole);
        assert_eq!(done, whole_done);
    }

    // Round trip: the input cut into chunks by the step sizes.
    let mut wire = Vec::new();
    let mut pos = 0;
    let mut i = 0;
    while pos < input.len() {
        let size = usize::from(steps.get(i % steps.len().max(1)).copied().unwrap_or(7)).max(1);
        let end = (pos + size).min(input.len());
        encode_chunk(&input[pos..end], &mut wire);
        pos = end;
        i += 1;
    }
    wire.extend_from_slice(LAST_CHUNK);
    let (decoded, done, failed) = decode(&wire, steps);
    assert!(!failed && done);
    assert_eq!(decoded, input);
});
