//! The server against real clients (curl, wrk) and raw TCP, under both
//! drivers: keep-alive, pipelining, chunked uploads, Range, HEAD, limits,
//! slow clients and graceful shutdown.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;

const LIMIT: Duration = Duration::from_secs(10);

#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs curl: scripts/test.sh runs it"
)]
fn curl_reuses_one_connection_for_several_requests() {
    for driver in drivers() {
        let srv = TestServer::start(driver, |_| {});
        let out = curl(&[
            "-w",
            "%{http_code} %{num_connects}\\n",
            "-o",
            "/dev/null",
            "-o",
            "/dev/null",
            "-o",
            "/dev/null",
            &srv.url("/hello"),
            &srv.url("/file"),
            &srv.url("/hello"),
        ]);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "200 1\n200 0\n200 0\n",
            "{driver:?}"
        );
    }
}

#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs curl: scripts/test.sh runs it"
)]
fn curl_gets_the_whole_file_and_head_matches() {
    for driver in drivers() {
        let srv = TestServer::start(driver, |_| {});
        let body = curl(&[&srv.url("/file")]);
        assert!(body == srv.file, "{driver:?}: body differs from the file");

        let head = String::from_utf8(curl(&["-I", &srv.url("/file")])).unwrap();
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(
            head.contains(&format!("Content-Length: {FILE_LEN}\r\n")),
            "{head}"
        );
        assert!(head.contains("Accept-Ranges: bytes"), "{head}");
    }
}

#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs curl: scripts/test.sh runs it"
)]
fn curl_range_requests() {
    for driver in drivers() {
        let srv = TestServer::start(driver, |_| {});
        let url = srv.url("/file");
        let part = curl(&["-r", "1000-1999", &url]);
        assert_eq!(part, srv.file[1000..2000], "{driver:?}");
        let tail = curl(&["-r", "-100", &url]);
        assert_eq!(tail, srv.file[FILE_LEN - 100..]);
        let from = curl(&["-r", "3000000-", &url]);
        assert_eq!(from, srv.file[3_000_000..]);

        let headers =
            String::from_utf8(curl(&["-D", "-", "-o", "/dev/null", "-r", "10-19", &url])).unwrap();
        assert!(headers.starts_with("HTTP/1.1 206"), "{headers}");
        assert!(
            headers.contains(&format!("Content-Range: bytes 10-19/{FILE_LEN}")),
            "{headers}"
        );

        let unsat = String::from_utf8(curl(&[
            "-D",
            "-",
            "-o",
            "/dev/null",
            "-r",
            "99999999-",
            &url,
        ]))
        .unwrap();
        assert!(unsat.starts_with("HTTP/1.1 416"), "{unsat}");
        assert!(
            unsat.contains(&format!("Content-Range: bytes */{FILE_LEN}")),
            "{unsat}"
        );

        // Several ranges are not supported: the whole file, 200.
        let multi = curl(&[
            "-w",
            "%{http_code}",
            "-o",
            "/dev/null",
            "-r",
            "0-1,5-6",
            &url,
        ]);
        assert_eq!(multi, b"200");
    }
}

#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs curl: scripts/test.sh runs it"
)]
fn curl_chunked_upload_streams_to_the_handler() {
    for driver in drivers() {
        let srv = TestServer::start(driver, |_| {});
        let dir = tempfile::tempdir().unwrap();
        let upload = dir.path().join("up.bin");
        let data = content(700_000);
        std::fs::write(&upload, &data).unwrap();
        let out = curl(&[
            "-H",
            "Transfer-Encoding: chunked",
            "--data-binary",
            &format!("@{}", upload.display()),
            &srv.url("/echo"),
        ]);
        assert!(out == data, "{driver:?}: echoed body differs");
        // The same with Content-Length and Expect: 100-continue.
        let out = curl(&[
            "-H",
            "Expect: 100-continue",
            "--data-binary",
            &format!("@{}", upload.display()),
            &srv.url("/echo"),
        ]);
        assert!(out == data, "{driver:?}: echoed body differs");
    }
}

#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs curl: scripts/test.sh runs it"
)]
fn streamed_response_is_chunked_and_complete() {
    for driver in drivers() {
        let srv = TestServer::start(driver, |_| {});
        let raw = raw_exchange(
            srv.addr,
            b"GET /stream HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
            LIMIT,
        );
        let text = String::from_utf8(raw).unwrap();
        assert!(text.contains("Transfer-Encoding: chunked"), "{text}");
        assert!(text.ends_with("0\r\n\r\n"), "{text}");
        let body = curl(&[&srv.url("/stream")]);
        let expected: String = (0..100).map(|i| format!("{i}\n")).collect();
        assert_eq!(String::from_utf8(body).unwrap(), expected, "{driver:?}");
    }
}

#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs curl: scripts/test.sh runs it"
)]
fn streamed_bodies_mix_bytes_and_file_ranges() {
    let (start, len) = STREAM_FILE_RANGE;
    for driver in drivers() {
        let srv = TestServer::start(driver, |_| {});
        let range = &srv.file[start as usize..(start + len) as usize];
        let expected = [&b"head:"[..], range, &b":tail"[..]].concat();
        for path in ["/stream-file", "/stream-file-len"] {
            let body = curl(&[&srv.url(path)]);
            assert!(body == expected, "{driver:?} {path}: {} bytes", body.len());
        }
    }
}

#[test]
fn expect_100_continue_is_sent_when_the_body_is_read() {
    for driver in drivers() {
        let srv = TestServer::start(driver, |_| {});
        let mut s = TcpStream::connect(srv.addr).unwrap();
        s.write_all(b"POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut got = Vec::new();
        let deadline = Instant::now() + LIMIT;
        while !got.ends_with(b"\r\n\r\n") {
            assert!(Instant::now() < deadline, "no 100 Continue: {got:?}");
            let mut b = [0u8; 1];
            s.set_read_timeout(Some(LIMIT)).unwrap();
            std::io::Read::read_exact(&mut s, &mut b).unwrap();
            got.push(b[0]);
        }
        assert_eq!(got, b"HTTP/1.1 100 Continue\r\n\r\n", "{driver:?}");
        s.write_all(b"hello").unwrap();
        let rest = String::from_utf8(read_to_close(&mut s, LIMIT)).unwrap();
        assert!(rest.starts_with("HTTP/1.1 200"), "{rest}");
        assert!(rest.ends_with("5\r\nhello\r\n0\r\n\r\n"), "{rest}");
    }
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    for driver in drivers() {
        let srv = TestServer::start(driver, |_| {});
        let reqs = b"GET /hello HTTP/1.1\r\nHost: t\r\n\r\n\
HEAD /file HTTP/1.1\r\nHost: t\r\n\r\n\
POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc\
GET /file HTTP/1.1\r\nHost: t\r\nRange: bytes=0-3\r\n\r\n\
POST /ignore-body HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\nwxyz\
GET /nope HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
        let raw = raw_exchange(srv.addr, reqs, LIMIT);
        let text = String::from_utf8_lossy(&raw);
        let statuses: Vec<&str> = text
            .match_indices("HTTP/1.1 ")
            .map(|(i, _)| &text[i + 9..i + 12])
            .collect();
        assert_eq!(
            statuses,
            ["200", "200", "200", "206", "200", "404"],
            "{driver:?}: {text}"
        );
        assert!(text.contains("hello\n"));
        assert!(text.contains("3\r\nabc\r\n0\r\n\r\n"), "{text}");
        assert!(text.contains(&format!("Content-Range: bytes 0-3/{FILE_LEN}")));
    }
}

#[test]
fn limits_answer_4xx_and_close() {
    for driver in drivers() {
        let srv = TestServer::start(driver, |_| {});
        let long_uri = format!("GET /{} HTTP/1.1\r\nHost: t\r\n\r\n", "a".repeat(9000));
        let mut many = String::from("GET / HTTP/1.1\r\nHost: t\r\n");
        for i in 0..101 {
            many.push_str(&format!("X-H{i}: v\r\n"));
        }
        many.push_str("\r\n");
        let big_header = format!(
            "GET / HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n",
            "v".repeat(70_000)
        );
        let cases: Vec<(Vec<u8>, u16)> = vec![
            (long_uri.into_bytes(), 414),
            (many.into_bytes(), 431),
            (big_header.into_bytes(), 431),
            (
                b"POST /small HTTP/1.1\r\nHost: t\r\nContent-Length: 2000\r\n\r\n".to_vec(),
                413,
            ),
            (b"\x16\x03\x01 garbage\r\n\r\n".to_vec(), 400),
            (b"GET / HTTP/1.1\r\n\r\n".to_vec(), 400),
            (
                b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec(),
                400,
            ),
            (
                b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n".to_vec(),
                400,
            ),
        ];
        for (input, want) in cases {
            // read_to_close asserts the server closes the connection.
            let raw = raw_exchange(srv.addr, &input, LIMIT);
            assert_eq!(
                status_of(&raw),
                want,
                "{driver:?}: {}",
                String::from_utf8_lossy(&raw)
            );
        }
        // A chunked body over the handler's limit: 413 once it is crossed.
        let mut chunked =
            b"POST /small HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        for _ in 0..3 {
            chunked.extend_from_slice(b"200\r\n");
            chunked.extend_from_slice(&[b'x'; 512]);
            chunked.extend_from_slice(b"\r\n");
        }
        chunked.extend_from_slice(b"0\r\n\r\n");
        let raw = raw_exchange(srv.addr, &chunked, LIMIT);
        assert_eq!(status_of(&raw), 413, "{driver:?}");
    }
}

#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs curl: scripts/test.sh runs it"
)]
fn slow_header_gets_408_while_the_worker_serves_others() {
    for driver in drivers() {
        let srv = TestServer::start(driver, |c| {
            c.threads = 1;
            c.header_timeout = Duration::from_millis(1500);
        });
        let addr = srv.addr;
        let started = Instant::now();
        let slow = std::thread::spawn(move || {
            let mut s = TcpStream::connect(addr).unwrap();
            s.set_nodelay(true).unwrap();
            let mut sent = 0;
            // One header byte every 100 ms: the pace of the attack, not a
            // synchronisation. The server cuts it off well before the end.
            for b in b"GET /hello HTTP/1.1\r\nHost: slowloris.example\r\nX-Pad: aaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n" {
                if s.write_all(&[*b]).is_err() {
                    break;
                }
                sent += 1;
                std::thread::sleep(Duration::from_millis(100));
            }
            (read_to_close(&mut s, LIMIT), sent)
        });
        // Meanwhile the only worker keeps answering someone else.
        let mut served = 0;
        while !slow.is_finished() {
            let out = curl(&["-w", "%{http_code}", "-o", "/dev/null", &srv.url("/hello")]);
            assert_eq!(out, b"200", "{driver:?}");
            served += 1;
            assert!(started.elapsed() < LIMIT, "slow client never cut off");
        }
        let (raw, sent) = slow.join().unwrap();
        assert_eq!(status_of(&raw), 408, "{driver:?}");
        assert!(sent < 80, "the whole slow head was accepted ({sent} bytes)");
        assert!(served > 0);
    }
}

#[test]
fn idle_keep_alive_connection_is_closed() {
    for driver in drivers() {
        let srv = TestServer::start(driver, |c| c.idle_timeout = Duration::from_millis(300));
        let mut s = TcpStream::connect(srv.addr).unwrap();
        s.write_all(b"GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        let raw = read_to_close(&mut s, LIMIT);
        assert_eq!(status_of(&raw), 200, "{driver:?}");
    }
}

#[test]
fn client_that_never_reads_is_cut_off() {
    for driver in drivers() {
        let mut srv = TestServer::start(driver, |c| {
            c.write_timeout = Duration::from_millis(500);
            c.shutdown_grace = Duration::from_secs(60);
        });
        let mut s = TcpStream::connect(srv.addr).unwrap();
        s.write_all(b"GET /big HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        assert_eq!(srv.started.recv_timeout(LIMIT).unwrap(), "/big");
        // Shutdown waits for open connections up to a minute; it returns
        // early only because the write timeout closes the stuck one.
        let began = Instant::now();
        srv.stop();
        assert!(
            began.elapsed() < LIMIT,
            "{driver:?}: the stuck connection was kept for {:?}",
            began.elapsed()
        );
        let got = read_to_close(&mut s, LIMIT).len() as u64;
        assert!(got < BIG_LEN, "{driver:?}: the whole body went out");
    }
}

#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs wrk: scripts/test.sh runs it"
)]
fn wrk_short_run_has_no_errors() {
    for driver in drivers() {
        let srv = TestServer::start(driver, |_| {});
        for path in ["/hello", "/file"] {
            let out = std::process::Command::new("wrk")
                .args(["-t1", "-c4", "-d1s", "--timeout", "5s", &srv.url(path)])
                .output()
                .expect("wrk runs");
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(out.status.success(), "{text}");
            assert!(!text.contains("Socket errors"), "{driver:?} {path}: {text}");
            assert!(!text.contains("Non-2xx"), "{driver:?} {path}: {text}");
            let requests: u64 = text
                .lines()
                .find(|l| l.contains("requests in"))
                .and_then(|l| l.split_whitespace().next())
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            assert!(requests > 10, "{driver:?} {path}: {text}");
        }
    }
}

#[test]
fn shutdown_finishes_requests_in_flight() {
    for driver in drivers() {
        let mut srv = TestServer::start(driver, |_| {});
        let addr = srv.addr;
        let client = std::thread::spawn(move || {
            raw_exchange(addr, b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n", LIMIT)
        });
        // Wait until the handler runs, then stop the server under it.
        let path = srv.started.recv_timeout(LIMIT).unwrap();
        assert_eq!(path, "/slow");
        let began = Instant::now();
        srv.stop();
        assert!(began.elapsed() < Duration::from_secs(5));
        let raw = client.join().unwrap();
        let text = String::from_utf8_lossy(&raw);
        assert!(text.starts_with("HTTP/1.1 200"), "{driver:?}: {text}");
        assert!(text.contains("Connection: close"), "{text}");
        assert!(text.ends_with("slow done\n"), "{text}");
        assert!(
            TcpStream::connect(addr).is_err(),
            "still accepting after shutdown"
        );
    }
}

#[test]
fn streams_with_length_and_aborted_streams() {
    for driver in drivers() {
        let srv = TestServer::start(driver, |_| {});
        let raw = raw_exchange(
            srv.addr,
            b"GET /stream-len HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
            LIMIT,
        );
        let text = String::from_utf8(raw).unwrap();
        assert!(
            text.contains("Content-Length: 1000\r\n"),
            "{driver:?}: {text}"
        );
        assert!(!text.contains("chunked"), "{text}");
        assert!(text.ends_with(&"x".repeat(1000)), "{text}");

        // An aborted stream must not look complete: no last chunk, and
        // the connection closes although the client asked to keep it.
        let raw = raw_exchange(
            srv.addr,
            b"GET /stream-abort HTTP/1.1\r\nHost: t\r\n\r\n",
            LIMIT,
        );
        let text = String::from_utf8(raw).unwrap();
        assert!(text.contains("7\r\npartial\r\n"), "{driver:?}: {text}");
        assert!(!text.ends_with("0\r\n\r\n"), "{text}");
    }
}

#[test]
fn http10_requests_close_unless_kept_alive() {
    for driver in drivers() {
        let srv = TestServer::start(driver, |_| {});
        let raw = raw_exchange(srv.addr, b"GET /hello HTTP/1.0\r\n\r\n", LIMIT);
        let text = String::from_utf8(raw).unwrap();
        assert!(text.starts_with("HTTP/1.1 200"), "{driver:?}: {text}");
        assert!(text.contains("Connection: close"), "{text}");
        // A streamed body of unknown length is close-delimited for 1.0.
        let raw = raw_exchange(
            srv.addr,
            b"GET /stream HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
            LIMIT,
        );
        let text = String::from_utf8(raw).unwrap();
        assert!(!text.contains("chunked"), "{text}");
        assert!(text.ends_with("98\n99\n"), "{text}");
    }
}

#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs curl: scripts/test.sh runs it"
)]
fn a_panicking_handler_closes_its_connection_only() {
    for driver in drivers() {
        let srv = TestServer::start(driver, |c| c.threads = 1);
        let raw = raw_exchange(srv.addr, b"GET /panic HTTP/1.1\r\nHost: t\r\n\r\n", LIMIT);
        assert!(raw.is_empty(), "{driver:?}");
        let out = curl(&["-w", "%{http_code}", "-o", "/dev/null", &srv.url("/hello")]);
        assert_eq!(out, b"200", "{driver:?}: the worker died with the handler");
    }
}

#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs curl: scripts/test.sh runs it"
)]
fn reuse_port_listeners_on_one_address() {
    for driver in drivers() {
        let config = bay_httpd::ServerConfig {
            threads: 3,
            driver,
            ..Default::default()
        };
        let addr: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
        let factory = || {
            // The factory runs on the worker's runtime: it may spawn.
            let ticks = std::rc::Rc::new(std::cell::Cell::new(0u32));
            let counter = std::rc::Rc::clone(&ticks);
            monoio::spawn(async move { counter.set(counter.get() + 1) });
            move |_req: bay_httpd::Request, _body: bay_httpd::RequestBody| {
                let ticks = ticks.get();
                async move { bay_httpd::Response::text(200, format!("{ticks}")) }
            }
        };
        let server = bay_httpd::serve(addr, factory, config, bay_httpd::Shutdown::new()).unwrap();
        assert_eq!(server.workers(), 3);
        assert_ne!(server.local_addr().port(), 0);
        let want = if driver == bay_httpd::Driver::Uring {
            bay_httpd::RunningDriver::Uring
        } else {
            bay_httpd::RunningDriver::Legacy
        };
        assert_eq!(server.driver(), want);
        let url = format!("http://{}/", server.local_addr());
        for _ in 0..20 {
            assert_eq!(
                curl(&[&url]),
                b"1",
                "{driver:?}: the spawned task did not run"
            );
        }
        server.shutdown();
        server.join();
    }
}

#[test]
fn silent_connection_is_closed_after_the_header_timeout() {
    for driver in drivers() {
        let srv = TestServer::start(driver, |c| c.header_timeout = Duration::from_millis(300));
        let mut s = TcpStream::connect(srv.addr).unwrap();
        let began = Instant::now();
        assert!(read_to_close(&mut s, LIMIT).is_empty(), "{driver:?}");
        assert!(began.elapsed() >= Duration::from_millis(250));
    }
}
