//! The web seed against a real registry (CNCF distribution, Debian's
//! `docker-registry`), under both monoio drivers: a blob is pushed with a
//! monolithic upload, then fetched back range by range through
//! `GET /v2/<name>/blobs/<digest>` and checked against its piece hashes.

use std::future::Future;
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bay_core::webseed::{verify_with_metainfo, PieceLayout, WebSeed, WebSeedError};
use bay_httpd::client::{Body, Client, ClientConfig, PlainHttp, Request, Url};
use bay_httpd::RunningDriver;
use bay_wire::merkle;
use bay_wire::metainfo::{self, BuildOptions};
use bay_wire::oci::Digest;
use bytes::Bytes;

const PIECE: u64 = 64 * 1024;
const NAME: &str = "bay/webseed-test";
const DEADLINE: Duration = Duration::from_secs(30);

/// A registry on 127.0.0.1 with its storage in a temporary folder.
struct Registry {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Registry {
    fn start() -> Registry {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let config = format!(
            "version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: {}
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:{port}
  secret: webseed-test
",
            dir.path().join("data").display()
        );
        let path = dir.path().join("config.yml");
        std::fs::write(&path, config).expect("write config");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry starts");
        let registry = Registry {
            child,
            port,
            _dir: dir,
        };
        let deadline = Instant::now() + DEADLINE;
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "registry never listened");
            std::thread::yield_now();
        }
        registry
    }

    fn url(&self, path: &str) -> Url {
        Url::parse(&format!("http://127.0.0.1:{}{path}", self.port)).expect("url")
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// Runs the test on an epoll runtime, then on an io_uring one.
fn on_both_drivers<F, Fut>(test: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = ()>,
{
    for driver in [RunningDriver::Legacy, RunningDriver::Uring] {
        bay_httpd::block_on(driver, test()).expect("runtime");
    }
}

fn client() -> Client {
    Client::new(ClientConfig {
        plain_http: PlainHttp::Any,
        ..ClientConfig::default()
    })
    .expect("client")
}

/// A blob of `len` bytes that differs with `salt`.
fn blob(len: usize, salt: u32) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_add(salt).wrapping_mul(2_246_822_519) >> 11) as u8)
        .collect()
}

/// Pushes `data` with a monolithic upload: POST for an upload session,
/// then one PUT of the whole blob with its digest.
async fn push(registry: &Registry, client: &Client, data: &[u8]) -> Digest {
    let digest = Digest::sha256_of(data);
    let start = client
        .send(Request::new(
            "POST",
            registry.url(&format!("/v2/{NAME}/blobs/uploads/")),
        ))
        .await
        .expect("start upload");
    assert_eq!(start.status(), 202, "upload session");
    let location = start.header("location").expect("Location").clone();
    let location = std::str::from_utf8(&location).expect("ASCII Location");
    let upload = start.url().join(location).expect("upload URL");
    let separator = if upload.target().contains('?') {
        '&'
    } else {
        '?'
    };
    let put =
        Url::parse(&format!("{upload}{separator}digest={}", digest.as_str())).expect("PUT URL");
    let done = client
        .send(
            Request::new("PUT", put)
                .header("Content-Type", "application/octet-stream")
                .body(Body::Bytes(Bytes::copy_from_slice(data))),
        )
        .await
        .expect("upload");
    assert_eq!(done.status(), 201, "blob accepted");
    digest
}

/// Waits until the registry answers its API root.
async fn ready(registry: &Registry, client: &Client) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Ok(r) = client.send(Request::get(registry.url("/v2/"))).await {
            if r.status() == 200 {
                return;
            }
        }
        assert!(Instant::now() < deadline, "registry never became ready");
        monoio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[test]
fn ranges_of_a_pushed_blob_verify_against_their_piece_hashes() {
    let registry = Registry::start();
    on_both_drivers(|| async {
        let client = client();
        ready(&registry, &client).await;
        // Different bytes per driver run, so each run pushes a new blob.
        let data = blob(20 * PIECE as usize + 777, registry.port.into());
        let digest = push(&registry, &client, &data).await;
        let hashes = merkle::file_hashes(&data, PIECE)
            .expect("piece hashes")
            .piece_layer;
        let layout = PieceLayout {
            piece_length: PIECE,
            file_length: data.len() as u64,
        };
        assert_eq!(layout.pieces(), 21);
        let url = registry.url(&format!("/v2/{NAME}/blobs/{}", digest.as_str()));
        let seed = WebSeed::new(client.clone(), url);
        let body = seed.fetch(0..10).await.expect("fetch");
        assert!(body.is_partial(), "the registry answers Range with 206");
        drop(body);
        for (first, count) in [(0, 1), (9, 1), (19, 1), (20, 1), (4, 6), (15, 6)] {
            let range = layout.range(first, count).expect("range");
            let bytes = seed.read(range.clone()).await.expect("read");
            assert_eq!(bytes.len() as u64, range.end - range.start);
            layout.verify(&hashes, first, &bytes).expect("verified");
        }

        // The same through a torrent made of the blob.
        let options = BuildOptions {
            name: "blob".into(),
            piece_length: Some(PIECE),
            ..BuildOptions::default()
        };
        let torrent = metainfo::build(&data, &options).expect("torrent");
        let range = layout.range(10, 3).expect("range");
        let bytes = seed.read(range).await.expect("read");
        verify_with_metainfo(&torrent, 10, &bytes).expect("verified by the torrent");
        let err = verify_with_metainfo(&torrent, 11, &bytes).expect_err("wrong pieces");
        assert!(
            matches!(err, WebSeedError::PieceMismatch { piece: 11 }),
            "{err:?}"
        );

        let unknown = registry.url(&format!(
            "/v2/{NAME}/blobs/{}",
            Digest::sha256_of(b"never pushed").as_str()
        ));
        let err = WebSeed::new(client.clone(), unknown)
            .read(0..10)
            .await
            .expect_err("unknown blob");
        assert!(
            matches!(err, WebSeedError::Status { status: 404, .. }),
            "{err:?}"
        );
    });
}
