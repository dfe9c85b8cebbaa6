//! What an operator sees: the tracker's and the proxies' status pages in
//! a real browser (headless Chromium), their JSON, the access log and the
//! `X-Bay-Source` header, after real pulls through a real registry.
//!
//! Screenshots of both pages are kept under `target/test-artifacts/`.
#![allow(clippy::unwrap_used)] // a panic is a test's failure report

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use bay_tests::bay::{get, metric, BinProcess, Proxy, Tracker, Upstreams};
use bay_tests::clients::skopeo::{copy_command, read_dir_layout};
use bay_tests::clients::Access;
use bay_tests::image::{ImageSpec, TestImage};
use bay_tests::process::{run_with_deadline, wait_until};
use bay_tests::registry::{Registry, RegistryOptions};

fn pull(proxy_addr: std::net::SocketAddr, image: &TestImage, repo: &str) {
    let out = tempfile::tempdir().unwrap();
    let reference = format!("{proxy_addr}/{repo}:{}", image.tag);
    let access = Access {
        plain_http: true,
        ..Access::default()
    };
    let status = copy_command(None, &reference, &access, out.path())
        .status()
        .unwrap();
    assert!(status.success());
    image.check(&read_dir_layout(out.path()).unwrap()).unwrap();
}

/// Where test artifacts (screenshots) go.
fn artifacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Headless Chromium with a fresh profile and no network of its own.
fn chromium(profile: &Path) -> Command {
    let mut cmd = Command::new("chromium");
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
    ])
    .arg(format!("--user-data-dir={}", profile.display()));
    cmd
}

/// The page's DOM after the browser rendered it.
fn rendered_dom(url: &str) -> String {
    let profile = tempfile::tempdir().unwrap();
    let mut cmd = chromium(profile.path());
    cmd.arg("--dump-dom").arg(url);
    let out = run_with_deadline(&mut cmd, Duration::from_secs(60)).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Saves a screenshot of `url` as `name` among the artifacts.
fn screenshot(url: &str, name: &str) -> PathBuf {
    let profile = tempfile::tempdir().unwrap();
    let path = artifacts().join(name);
    let mut cmd = chromium(profile.path());
    cmd.arg(format!("--screenshot={}", path.display()))
        .arg("--window-size=1280,1100")
        .arg(url);
    let out = run_with_deadline(&mut cmd, Duration::from_secs(60)).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    path
}

/// The text of the element with `id`.
fn text_of(dom: &str, id: &str) -> String {
    let marker = format!("id=\"{id}\">");
    let at = dom
        .find(&marker)
        .unwrap_or_else(|| panic!("no #{id} in the page"))
        + marker.len();
    let rest = &dom[at..];
    rest[..rest.find('<').unwrap()].to_string()
}

fn json(url: &str) -> serde_json::Value {
    serde_json::from_slice(&get(url, &[]).unwrap().body).unwrap()
}

#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs docker-registry, skopeo, chromium and bay's binaries: scripts/test.sh runs it"
)]
fn status_pages_show_what_the_fleet_did_in_a_real_browser() {
    let registry = Registry::start(RegistryOptions::plain()).unwrap();
    let image = TestImage::build(&ImageSpec::small(501)).unwrap();
    image.push(&registry, "bay/pages").unwrap();
    let upstreams = Upstreams::fixed(&registry);
    let tracker = Tracker::start(&upstreams).unwrap();
    let a = Proxy::start(&[tracker.url()], &upstreams).unwrap();
    let b = Proxy::start(&[tracker.url()], &upstreams).unwrap();
    pull(a.addr(), &image, "bay/pages");
    pull(b.addr(), &image, "bay/pages");
    pull(a.addr(), &image, "bay/pages");
    let layers: u64 = image.layers.iter().map(|l| l.size).sum();

    // The tracker: the fleet's saving, its swarms, its origin.
    let tracker_url = format!("{}/", tracker.url());
    wait_until(
        "completions to reach the tracker",
        Duration::from_secs(15),
        || {
            json(&format!("{}/status", tracker.url()))["delivered_bytes"].as_u64()
                >= Some(2 * layers)
        },
    )
    .unwrap();
    let status = json(&format!("{}/status", tracker.url()));
    let dom = rendered_dom(&tracker_url);
    assert_eq!(
        text_of(&dom, "delivered"),
        bay_core::page::bytes(status["delivered_bytes"].as_u64().unwrap())
    );
    assert_eq!(
        status["registry_bytes"].as_u64(),
        Some(metric(&tracker.url(), "bay_tracker_origin_fetched_bytes_total").unwrap())
    );
    assert_eq!(text_of(&dom, "swarms"), status["swarms_total"].to_string());
    for layer in &image.layers {
        assert!(
            dom.contains(&layer.digest),
            "swarm of {} not on the page",
            layer.digest
        );
    }
    assert!(dom.contains("bay/pages"));
    let shot = screenshot(&tracker_url, "tracker-status.png");

    // A proxy: bytes by source agree with its metrics and its JSON.
    let status = json(&format!("{}/status", a.url()));
    let dom = rendered_dom(&format!("{}/", a.url()));
    for (id, key, source) in [
        ("from-swarm", "bytes_from_swarm", "swarm"),
        ("from-cache", "bytes_from_cache", "cache"),
        ("from-registry", "bytes_from_registry", "registry"),
    ] {
        let n = status[key].as_u64().unwrap();
        assert_eq!(text_of(&dom, id), bay_core::page::bytes(n), "{id}");
        let labelled = format!("bay_proxy_blob_bytes_total{{source=\"{source}\"}}");
        assert_eq!(metric(&a.url(), &labelled).unwrap(), n, "{labelled}");
    }
    assert!(status["bytes_from_cache"].as_u64() >= Some(layers));
    assert!(status["bytes_from_swarm"].as_u64() >= Some(layers));
    assert_eq!(
        text_of(&dom, "blobs-cached"),
        status["blobs_cached"].to_string()
    );
    assert!(
        dom.contains("answering"),
        "the tracker is not shown as answering"
    );
    let shot_proxy = screenshot(&format!("{}/", b.url()), "proxy-status.png");
    // Every metric the Grafana dashboard plots exists.
    let exposed = format!(
        "{}{}",
        String::from_utf8_lossy(
            &get(&format!("{}/metrics", tracker.url()), &[])
                .unwrap()
                .body
        ),
        String::from_utf8_lossy(&get(&format!("{}/metrics", a.url()), &[]).unwrap().body)
    );
    let dashboard = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/grafana/bay.json"),
    )
    .unwrap();
    let parsed: serde_json::Value = serde_json::from_str(&dashboard).unwrap();
    assert!(parsed["panels"].as_array().is_some_and(|p| !p.is_empty()));
    for name in dashboard.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
        if name.starts_with("bay_") {
            assert!(
                exposed.contains(&format!("# TYPE {name} ")),
                "dashboard uses {name}, which nobody exposes"
            );
        }
    }
    for path in [shot, shot_proxy] {
        let size = std::fs::metadata(&path).unwrap().len();
        assert!(size > 10_000, "{} is {size} bytes", path.display());
    }
}

#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs docker-registry, skopeo, chromium and bay's binaries: scripts/test.sh runs it"
)]
fn every_request_is_logged_with_its_source_and_never_a_credential() {
    let registry = Registry::start(RegistryOptions::plain()).unwrap();
    let image = TestImage::build(&ImageSpec::small(502)).unwrap();
    image.push(&registry, "bay/logged").unwrap();
    let upstreams = Upstreams::fixed(&registry);
    let tracker = Tracker::start(&upstreams).unwrap();
    let root = tempfile::tempdir().unwrap();
    let swarm_proxy = BinProcess::proxy(&[tracker.url()], &upstreams, root.path(), &[]).unwrap();
    let lone_root = tempfile::tempdir().unwrap();
    let lone_proxy = BinProcess::proxy(&[], &upstreams, lone_root.path(), &[]).unwrap();
    let secret = "Authorization: Basic c2VjcmV0LXVzZXI6c2VjcmV0LXB3";
    let layer = &image.layers[0];
    let path = format!("/v2/bay/logged/blobs/{}", layer.digest);
    let source_of = |url: &str| {
        let got = get(url, &[secret.to_string()]).unwrap();
        assert_eq!(got.status, 200);
        got.headers
            .lines()
            .find_map(|l| l.strip_prefix("x-bay-source: "))
            .map(|v| v.trim().to_string())
            .unwrap_or_default()
    };
    assert_eq!(source_of(&format!("{}{path}", swarm_proxy.url())), "swarm");
    assert_eq!(source_of(&format!("{}{path}", swarm_proxy.url())), "cache");
    assert_eq!(
        source_of(&format!("{}{path}", lone_proxy.url())),
        "registry"
    );

    let wanted = [
        (&swarm_proxy, "source=swarm"),
        (&swarm_proxy, "source=cache"),
        (&lone_proxy, "source=registry"),
    ];
    for (proxy, source) in wanted {
        wait_until("the access log line", Duration::from_secs(10), || {
            proxy
                .log()
                .lines()
                .any(|l| l.contains("bay::access") && l.contains(&path) && l.contains(source))
        })
        .unwrap();
    }
    let size = format!("bytes={}", layer.size);
    assert!(swarm_proxy
        .log()
        .lines()
        .any(|l| l.contains("bay::access") && l.contains(&size)));
    for log in [swarm_proxy.log(), lone_proxy.log()] {
        for leak in ["c2VjcmV0", "secret-user", "secret-pw"] {
            assert!(!log.contains(leak), "a credential reached the log");
        }
    }
}
