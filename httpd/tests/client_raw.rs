//! The client against a scripted raw TCP server: framings and failures that
//! real servers produce rarely or never on demand (chunk extensions and
//! trailers split across writes, close-delimited bodies, 1xx, truncation,
//! stalls, a pooled connection closed under the client). Every test runs on
//! both monoio drivers.

// A test that unwraps fails loudly, which is what a test should do.
#![allow(clippy::unwrap_used)]

mod client_common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::pin::Pin;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bay_httpd::chunked::{ChunkedDecoder, Decoded};
use bay_httpd::client::head::HeadError;
use bay_httpd::client::{
    Body, BodySource, Client, ClientConfig, Error, Framing, Phase, PlainHttp, Request, Url,
};
use bay_testkit::drivers::on_both_drivers;
use bytes::Bytes;
use client_common::{plain_client, raw_server, read_body, read_head, wait_for_close};

fn url(addr: SocketAddr, path: &str) -> Url {
    Url::parse(&format!("http://{addr}{path}")).unwrap()
}

fn quick_client(header: Duration, idle: Duration) -> Client {
    Client::new(ClientConfig {
        plain_http: PlainHttp::Any,
        header_timeout: header,
        idle_timeout: idle,
        ..ClientConfig::default()
    })
    .unwrap()
}

#[test]
fn chunked_with_extensions_and_trailers_in_split_writes_then_reuse() {
    on_both_drivers(|driver| async move {
        let addr = raw_server(1, |_, s| {
            for _ in 0..2 {
                read_head(s);
                for part in [
                    &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"[..],
                    b"5;name=val",
                    b"ue\r\nhel",
                    b"lo\r\n6\r\n world\r",
                    b"\n0\r\nX-Checksum: abc\r\n",
                    b"\r\n",
                ] {
                    s.write_all(part).unwrap();
                    s.flush().unwrap();
                }
            }
            wait_for_close(s);
        });
        let client = plain_client();
        for round in 0..2 {
            let mut r = client.send(Request::get(url(addr, "/c"))).await.unwrap();
            assert_eq!(r.framing(), Framing::Chunked, "{driver}");
            assert_eq!(r.connection_reused(), round == 1, "{driver}");
            assert_eq!(read_body(&mut r).await, b"hello world", "{driver}");
        }
        let origin = url(addr, "/").origin().clone();
        assert_eq!(client.idle_connections(&origin), 1, "{driver}");
    });
}

#[test]
fn close_delimited_body_is_read_to_eof_and_not_pooled() {
    on_both_drivers(|driver| async move {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let expected = data.clone();
        let addr = raw_server(1, move |_, s| {
            read_head(s);
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: x/y\r\n\r\n")
                .unwrap();
            for piece in data.chunks(7000) {
                s.write_all(piece).unwrap();
            }
        });
        let client = plain_client();
        let mut r = client.send(Request::get(url(addr, "/"))).await.unwrap();
        assert_eq!(r.framing(), Framing::UntilClose);
        assert_eq!(read_body(&mut r).await, expected, "{driver}");
        assert_eq!(client.idle_connections(r.url().origin()), 0, "{driver}");
    });
}

#[test]
fn interim_responses_are_skipped() {
    on_both_drivers(|driver| async move {
        let addr = raw_server(1, |_, s| {
            read_head(s);
            s.write_all(
                b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n\
                  HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
            )
            .unwrap();
            wait_for_close(s);
        });
        let r = plain_client()
            .send(Request::get(url(addr, "/")))
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{driver}");
        assert_eq!(&r.bytes(100).await.unwrap()[..], b"ok", "{driver}");
    });
}

#[test]
fn head_and_no_content_have_no_body_and_keep_the_connection() {
    on_both_drivers(|driver| async move {
        let addr = raw_server(1, |_, s| {
            read_head(s);
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
                .unwrap();
            read_head(s);
            s.write_all(b"HTTP/1.1 204 No Content\r\n\r\n").unwrap();
            read_head(s);
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nend")
                .unwrap();
            wait_for_close(s);
        });
        let client = plain_client();
        let mut r = client.send(Request::head(url(addr, "/"))).await.unwrap();
        assert_eq!(r.content_length(), Some(0), "{driver}");
        assert_eq!(r.header("content-length").unwrap(), "1000");
        assert!(r.chunk().await.unwrap().is_none());
        let mut r = client.send(Request::get(url(addr, "/"))).await.unwrap();
        assert_eq!((r.status(), r.connection_reused()), (204, true), "{driver}");
        assert!(r.chunk().await.unwrap().is_none());
        let r = client.send(Request::get(url(addr, "/"))).await.unwrap();
        assert!(r.connection_reused(), "{driver}");
        assert_eq!(&r.bytes(10).await.unwrap()[..], b"end");
    });
}

#[test]
fn truncated_and_malformed_bodies_are_typed_errors() {
    on_both_drivers(|driver| async move {
        let addr = raw_server(2, |i, s| {
            read_head(s);
            if i == 0 {
                s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
                    .unwrap();
            } else {
                s.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
                    .unwrap();
                wait_for_close(s);
            }
        });
        let client = plain_client();
        let mut r = client.send(Request::get(url(addr, "/"))).await.unwrap();
        assert_eq!(r.chunk().await.unwrap().unwrap(), "abc");
        let err = r.chunk().await.unwrap_err();
        assert!(
            matches!(err, Error::Truncated { missing: 7, .. }),
            "{driver}: {err}"
        );
        assert!(err.to_string().contains("7 bytes short"), "{err}");
        let mut r = client.send(Request::get(url(addr, "/"))).await.unwrap();
        let err = r.chunk().await.unwrap_err();
        assert!(matches!(err, Error::Chunked { .. }), "{driver}: {err}");
        // The failed connection is not pooled.
        assert_eq!(client.idle_connections(r.url().origin()), 0);
    });
}

#[test]
fn oversized_head_is_refused() {
    on_both_drivers(|driver| async move {
        let addr = raw_server(1, |_, s| {
            read_head(s);
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\n");
            let line = format!("X-Big: {}\r\n", "a".repeat(1000));
            for _ in 0..100 {
                if s.write_all(line.as_bytes()).is_err() {
                    return;
                }
            }
        });
        let err = plain_client()
            .send(Request::get(url(addr, "/")))
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::Head {
                    source: HeadError::TooLarge { .. },
                    ..
                }
            ),
            "{driver}: {err}"
        );
    });
}

#[test]
fn header_timeout_names_the_step_and_origin() {
    on_both_drivers(|driver| async move {
        let addr = raw_server(1, |_, s| {
            read_head(s);
            wait_for_close(s);
        });
        let client = quick_client(Duration::from_millis(300), Duration::from_secs(10));
        let started = Instant::now();
        let err = client.send(Request::get(url(addr, "/"))).await.unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(5), "{driver}");
        assert!(
            matches!(
                err,
                Error::Timeout {
                    phase: Phase::ReadHead,
                    ..
                }
            ),
            "{driver}: {err}"
        );
        let text = err.to_string();
        assert!(text.contains("reading the response head"), "{text}");
        assert!(text.contains(&addr.to_string()), "{text}");
    });
}

#[test]
fn idle_timeout_between_body_reads() {
    on_both_drivers(|driver| async move {
        let addr = raw_server(1, |_, s| {
            read_head(s);
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
                .unwrap();
            wait_for_close(s);
        });
        let client = quick_client(Duration::from_secs(10), Duration::from_millis(300));
        let mut r = client.send(Request::get(url(addr, "/"))).await.unwrap();
        assert_eq!(r.chunk().await.unwrap().unwrap(), "abc");
        let err = r.chunk().await.unwrap_err();
        assert!(
            matches!(
                err,
                Error::Timeout {
                    phase: Phase::ReadBody,
                    ..
                }
            ),
            "{driver}: {err}"
        );
    });
}

#[test]
fn pooled_connection_closed_by_server_is_retried_on_a_fresh_one() {
    on_both_drivers(|driver| async move {
        let (closed_tx, closed_rx) = mpsc::channel();
        let addr = raw_server(2, move |i, s| {
            read_head(s);
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n1")
                .unwrap();
            if i == 0 {
                // Close while the client holds it idle.
                s.shutdown(std::net::Shutdown::Both).unwrap();
                closed_tx.send(()).unwrap();
            } else {
                wait_for_close(s);
            }
        });
        let client = plain_client();
        let r = client.send(Request::get(url(addr, "/"))).await.unwrap();
        assert_eq!(&r.bytes(10).await.unwrap()[..], b"1");
        closed_rx.recv_timeout(Duration::from_secs(10)).unwrap();
        let r = client.send(Request::get(url(addr, "/"))).await.unwrap();
        assert!(
            !r.connection_reused(),
            "{driver}: retried on a new connection"
        );
        assert_eq!(&r.bytes(10).await.unwrap()[..], b"1");
    });
}

/// Gives the pieces of a body one at a time.
struct Pieces(Vec<Bytes>);

impl BodySource for Pieces {
    fn next_chunk(
        &mut self,
    ) -> Pin<Box<dyn std::future::Future<Output = std::io::Result<Option<Bytes>>> + '_>> {
        let next = if self.0.is_empty() {
            None
        } else {
            Some(self.0.remove(0))
        };
        Box::pin(async move { Ok(next) })
    }
}

/// Reads a request body (chunked or by length) and answers with it.
fn echo_body(s: &mut TcpStream) {
    let head = read_head(s).to_ascii_lowercase();
    let mut body = Vec::new();
    if head.contains("transfer-encoding: chunked") {
        let mut dec = ChunkedDecoder::new();
        let mut pending = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match dec.decode(&pending).unwrap() {
                Decoded::Data { data, consumed } => {
                    body.extend_from_slice(&pending[data]);
                    pending.drain(..consumed);
                }
                Decoded::Partial { consumed } => {
                    pending.drain(..consumed);
                    let n = s.read(&mut buf).unwrap();
                    assert!(n > 0, "client closed mid-body");
                    pending.extend_from_slice(&buf[..n]);
                }
                Decoded::Done { .. } => break,
            }
        }
    } else {
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .map_or(0, |v| v.trim().parse().unwrap());
        body.resize(len, 0);
        s.read_exact(&mut body).unwrap();
    }
    let reply = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
    s.write_all(reply.as_bytes()).unwrap();
    s.write_all(&body).unwrap();
}

#[test]
fn streamed_request_bodies_chunked_and_by_length() {
    on_both_drivers(|driver| async move {
        let addr = raw_server(1, |_, s| {
            echo_body(s);
            echo_body(s);
            wait_for_close(s);
        });
        let big = Bytes::from(vec![7u8; 100_000]);
        let pieces = vec![Bytes::from_static(b"abc"), Bytes::new(), big.clone()];
        let mut expected = b"abc".to_vec();
        expected.extend_from_slice(&big);
        let client = plain_client();
        for length in [None, Some(expected.len() as u64)] {
            let request = Request::new("PUT", url(addr, "/up")).body(Body::Stream {
                length,
                source: Box::new(Pieces(pieces.clone())),
            });
            let r = client.send(request).await.unwrap();
            assert_eq!(
                r.bytes(1 << 20).await.unwrap(),
                expected,
                "{driver} {length:?}"
            );
        }
    });
}

#[test]
fn streamed_body_length_mismatch_is_an_error() {
    on_both_drivers(|driver| async move {
        let addr = raw_server(1, |_, s| {
            read_head(s);
            wait_for_close(s);
        });
        let request = Request::new("PUT", url(addr, "/")).body(Body::Stream {
            length: Some(10),
            source: Box::new(Pieces(vec![Bytes::from_static(b"abc")])),
        });
        let err = plain_client().send(request).await.unwrap_err();
        assert!(
            matches!(
                err,
                Error::BodyLength {
                    declared: 10,
                    given: 3
                }
            ),
            "{driver}: {err}"
        );
    });
}

#[test]
fn connection_refused_says_where() {
    on_both_drivers(|driver| async move {
        let port = bay_testkit::process::closed_port().unwrap();
        let err = plain_client()
            .send(Request::get(
                Url::parse(&format!("http://127.0.0.1:{port}/")).unwrap(),
            ))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Connect { .. }), "{driver}: {err}");
        assert!(err.is_connect());
        let text = err.to_string();
        assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
        assert!(text.to_lowercase().contains("refused"), "{text}");
    });
}

#[test]
fn plain_http_needs_an_opt_in_per_origin() {
    on_both_drivers(|driver| async move {
        let addr = raw_server(1, |_, s| {
            read_head(s);
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                .unwrap();
            wait_for_close(s);
        });
        let refusing = Client::new(ClientConfig::default()).unwrap();
        let err = refusing
            .send(Request::get(url(addr, "/")))
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::PlainHttpRefused { .. }),
            "{driver}: {err}"
        );
        let other = Client::new(ClientConfig {
            plain_http: PlainHttp::Origins(vec!["127.0.0.1:1".into()]),
            ..ClientConfig::default()
        })
        .unwrap();
        assert!(other.send(Request::get(url(addr, "/"))).await.is_err());
        let listed = Client::new(ClientConfig {
            plain_http: PlainHttp::Origins(vec![addr.to_string()]),
            ..ClientConfig::default()
        })
        .unwrap();
        let r = listed.send(Request::get(url(addr, "/"))).await.unwrap();
        assert_eq!(r.status(), 200, "{driver}");
    });
}
