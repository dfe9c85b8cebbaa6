//! Peer wire decode rate: a stream like the one a downloading connection
//! receives (16 KiB piece messages with haves, requests, keep-alives and
//! hash messages between them), decoded from one receive buffer with the
//! incremental decoder. Reported as bytes per second and as messages per
//! second.

use bay_wire::peer::{
    BlockRequest, Bytes, BytesMut, Decoder, Frame, HashRequest, Hashes, Limits, Message, Piece,
    Status, BLOCK_SIZE,
};
use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};

/// Pieces in the stream: 16 MiB of blocks.
const PIECES: u32 = 1024;

fn mixed_stream() -> (Vec<u8>, u64) {
    let block = Bytes::from(vec![0x5a; BLOCK_SIZE as usize]);
    let request = HashRequest {
        pieces_root: [7; 32],
        base_layer: 0,
        index: 0,
        length: 4,
        proof_layers: 4,
    };
    let mut out = Vec::new();
    let mut count = 0u64;
    let mut push = |m: Message, out: &mut Vec<u8>| {
        m.encode(out).expect("a Vec grows");
        count += 1;
    };
    push(Message::Bitfield(Bytes::from(vec![0xff; 128])), &mut out);
    push(Message::Unchoke, &mut out);
    for i in 0..PIECES {
        push(
            Message::Piece(Piece {
                piece: i / 4,
                begin: (i % 4) * BLOCK_SIZE,
                block: block.clone(),
            }),
            &mut out,
        );
        push(Message::Have { piece: i }, &mut out);
        push(
            Message::Request(BlockRequest {
                piece: i,
                begin: 0,
                length: BLOCK_SIZE,
            }),
            &mut out,
        );
        if i % 8 == 0 {
            push(Message::KeepAlive, &mut out);
            push(Message::HashRequest(request), &mut out);
            push(
                Message::Hashes(Hashes {
                    request,
                    hashes: Bytes::from(vec![1; request.answer_hash_count() as usize * 32]),
                }),
                &mut out,
            );
        }
    }
    (out, count)
}

fn decode_all(mut buf: BytesMut) -> u64 {
    let mut decoder = Decoder::after_handshake(Limits::default());
    let mut n = 0;
    while let Ok(Status::Complete(Frame::Message(m), _)) = decoder.decode(&mut buf) {
        black_box(&m);
        n += 1;
    }
    n
}

fn bench(c: &mut Criterion) {
    let (stream, count) = mixed_stream();
    assert_eq!(decode_all(BytesMut::from(&stream[..])), count);
    let mut group = c.benchmark_group("peer_decode");
    for (name, throughput) in [
        ("bytes", Throughput::Bytes(stream.len() as u64)),
        ("messages", Throughput::Elements(count)),
    ] {
        group.throughput(throughput);
        group.bench_function(name, |b| {
            b.iter_batched(
                || BytesMut::from(&stream[..]),
                decode_all,
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
