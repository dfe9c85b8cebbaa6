//! The web seed against a real registry (CNCF distribution, Debian's
//! `docker-registry`), under both monoio drivers: a blob is pushed with a
//! monolithic upload, then fetched back range by range through
//! `GET /v2/<name>/blobs/<digest>` and checked against its piece hashes.

use std::time::{Duration, Instant};

use bay_core::webseed::{verify_with_metainfo, PieceLayout, WebSeed, WebSeedError};
use bay_httpd::client::{Body, Client, ClientConfig, PlainHttp, Request, Url};
use bay_testkit::drivers::on_both_drivers;
use bay_testkit::registry::{Registry, RegistryOptions};
use bay_wire::merkle;
use bay_wire::metainfo::{self, BuildOptions};
use bay_wire::oci::Digest;
use bytes::Bytes;

const PIECE: u64 = 64 * 1024;
const NAME: &str = "bay/webseed-test";
const DEADLINE: Duration = Duration::from_secs(30);

fn url(registry: &Registry, path: &str) -> Url {
    Url::parse(&format!("{}{path}", registry.url())).expect("url")
}

fn client() -> Client {
    Client::new(ClientConfig {
        plain_http: PlainHttp::Any,
        ..ClientConfig::default()
    })
    .expect("client")
}

/// Pushes `data` with a monolithic upload: POST for an upload session,
/// then one PUT of the whole blob with its digest.
async fn push(registry: &Registry, client: &Client, data: &[u8]) -> Digest {
    let digest = Digest::sha256_of(data);
    let start = client
        .send(Request::new(
            "POST",
            url(registry, &format!("/v2/{NAME}/blobs/uploads/")),
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
        if let Ok(r) = client.send(Request::get(url(registry, "/v2/"))).await {
            if r.status() == 200 {
                return;
            }
        }
        assert!(Instant::now() < deadline, "registry never became ready");
        monoio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs docker-registry: scripts/test.sh runs it"
)]
fn ranges_of_a_pushed_blob_verify_against_their_piece_hashes() {
    let registry = Registry::start(RegistryOptions::plain()).expect("registry");
    on_both_drivers(|driver| {
        let registry = &registry;
        async move {
            let client = client();
            ready(registry, &client).await;
            // Different bytes per driver run, so each run pushes a new blob.
            let data = bay_testkit::content::bytes(20 * PIECE as usize + 777, driver as u64);
            let digest = push(registry, &client, &data).await;
            let hashes = merkle::file_hashes(&data, PIECE)
                .expect("piece hashes")
                .piece_layer;
            let layout = PieceLayout {
                piece_length: PIECE,
                file_length: data.len() as u64,
            };
            assert_eq!(layout.pieces(), 21);
            let blob_url = url(registry, &format!("/v2/{NAME}/blobs/{}", digest.as_str()));
            let seed = WebSeed::new(client.clone(), blob_url);
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

            let unknown = url(
                registry,
                &format!(
                    "/v2/{NAME}/blobs/{}",
                    Digest::sha256_of(b"never pushed").as_str()
                ),
            );
            let err = WebSeed::new(client.clone(), unknown)
                .read(0..10)
                .await
                .expect_err("unknown blob");
            assert!(
                matches!(err, WebSeedError::Status { status: 404, .. }),
                "{err:?}"
            );
        }
    });
}
