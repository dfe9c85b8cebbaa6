//! The client inside this crate's server: a handler fetches from an
//! upstream with the client and relays the body into its own response, and
//! relays a pushed request body upstream, never holding either whole. This
//! is the proxy's shape in miniature. Runs on both monoio drivers (server
//! and client on the same driver).

// A test that unwraps fails loudly, which is what a test should do.
#![allow(clippy::unwrap_used)]

mod client_common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use bay_httpd::chunked::{ChunkedDecoder, Decoded};
use bay_httpd::client::{self, Client, ClientConfig, PlainHttp, Url};
use bay_httpd::{Body, Driver, RequestBody, Response, ServerConfig, Shutdown};
use bay_testkit::drivers::on_both_drivers;
use client_common::{raw_server, read_body, read_head, wait_for_close};

const BLOB: usize = 3_000_000;

fn blob() -> Vec<u8> {
    (0..BLOB as u32).map(|i| (i % 253) as u8).collect()
}

/// Upstream: GET answers the blob chunked in uneven pieces; PUT answers
/// with the byte count of the chunked body it received.
fn upstream(s: &mut TcpStream) {
    loop {
        let head = read_head(s).to_ascii_lowercase();
        if head.is_empty() {
            return;
        }
        if head.starts_with("get") {
            s.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                .unwrap();
            let data = blob();
            let mut out = Vec::new();
            for piece in data.chunks(77_777) {
                bay_httpd::chunked::encode_chunk(piece, &mut out);
            }
            out.extend_from_slice(bay_httpd::chunked::LAST_CHUNK);
            s.write_all(&out).unwrap();
        } else {
            let mut dec = ChunkedDecoder::new();
            let (mut pending, mut total, mut buf) = (Vec::new(), 0usize, vec![0u8; 65536]);
            loop {
                match dec.decode(&pending).unwrap() {
                    Decoded::Data { data, consumed } => {
                        total += data.len();
                        pending.drain(..consumed);
                    }
                    Decoded::Partial { consumed } => {
                        pending.drain(..consumed);
                        let n = s.read(&mut buf).unwrap();
                        assert!(n > 0);
                        pending.extend_from_slice(&buf[..n]);
                    }
                    Decoded::Done { .. } => break,
                }
            }
            let text = total.to_string();
            let reply = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{text}",
                text.len()
            );
            s.write_all(reply.as_bytes()).unwrap();
        }
    }
}

async fn relay_handler(
    client: Client,
    upstream: SocketAddr,
    req: bay_httpd::Request,
    body: RequestBody,
) -> Response {
    let url = Url::parse(&format!("http://{upstream}{}", req.target)).unwrap();
    let method = req.method.as_str().to_owned();
    let mut request = client::Request::new(method, url);
    if req.header("content-length").is_some() || req.header("transfer-encoding").is_some() {
        request = request.body(client::Body::Stream {
            length: None,
            source: Box::new(body),
        });
    }
    let upstream_response = match client.send(request).await {
        Ok(r) => r,
        Err(e) => return Response::text(502, e.to_string()),
    };
    let status = upstream_response.status();
    let length = upstream_response.content_length();
    let (_, upstream_body) = upstream_response.into_parts();
    let (sender, body) = Body::channel(length);
    monoio::spawn(async move {
        let _ = upstream_body.relay(sender).await;
    });
    Response::new(status).body(body)
}

#[test]
fn server_relays_client_bodies_both_ways() {
    on_both_drivers(|driver| async move {
        let upstream_addr = raw_server(1, |_, s| {
            upstream(s);
            wait_for_close(s);
        });
        let shutdown = Shutdown::new();
        let config = ServerConfig {
            threads: 1,
            // bay-httpd reads the kit's driver names ("epoll", "io_uring").
            driver: driver.to_string().parse::<Driver>().unwrap(),
            ..ServerConfig::default()
        };
        let server = bay_httpd::serve(
            "127.0.0.1:0".parse::<SocketAddr>().unwrap(),
            move || {
                let client = Client::new(ClientConfig {
                    plain_http: PlainHttp::Any,
                    ..ClientConfig::default()
                })
                .unwrap();
                move |req, body| relay_handler(client.clone(), upstream_addr, req, body)
            },
            config,
            shutdown.clone(),
        )
        .unwrap();
        let base = format!("http://{}", server.local_addr());
        let downstream = client_common::plain_client();

        let mut r = downstream
            .send(client::Request::get(
                Url::parse(&format!("{base}/blob")).unwrap(),
            ))
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{driver}");
        assert!(
            read_body(&mut r).await == blob(),
            "{driver}: relayed body differs"
        );

        let push = client::Request::new("PUT", Url::parse(&format!("{base}/push")).unwrap())
            .body(client::Body::Bytes(blob().into()));
        let r = downstream.send(push).await.unwrap();
        assert_eq!(r.status(), 200, "{driver}");
        assert_eq!(
            r.bytes(100).await.unwrap(),
            BLOB.to_string().as_bytes(),
            "{driver}"
        );

        shutdown.trigger();
        server.join();
    });
}
