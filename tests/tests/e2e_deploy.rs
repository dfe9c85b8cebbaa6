//! bay installed the ways operators install it, each run for real:
//!
//! - the container image (`deploy/image/build.sh`, FROM scratch out of the
//!   built binaries) runs bay-tracker from flags and environment and
//!   bay-proxy from a mounted TOML file, on the host's network; skopeo
//!   pulls through them with every digest checked, each layer leaves the
//!   registry once, and both stop cleanly on SIGTERM;
//! - the systemd units pass `systemd-analyze verify` (and a broken copy
//!   does not, so the check can fail);
//! - the Kubernetes manifests validate, strictly, against Kubernetes' own
//!   schemas of two releases (kubernetes-validate, which ships them), and a
//!   broken copy does not;
//! - every pod template of the Kubernetes manifests is played with
//!   `podman kube play` from that image (each DaemonSet and StatefulSet
//!   template as a Pod): the proxy's init container writes containerd's
//!   hosts.toml into the node's folder, and containerd pulls through the
//!   played proxy and tracker.
#![allow(clippy::unwrap_used)] // a panic is a test's failure report

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use bay_tests::bay::{get, metric};
use bay_tests::bins::{bay_binary, workspace_root};
use bay_tests::clients::containerd::Containerd;
use bay_tests::clients::podman::Podman;
use bay_tests::clients::{skopeo, Access};
use bay_tests::deploy::{kube_pods, Cleanup, PlaySpec};
use bay_tests::image::registry_with_image;
use bay_tests::process::{free_port, wait_until};

const START: Duration = Duration::from_secs(60);

/// A node's containerd settings, which setup must keep as they are.
const NODE_CONTAINERD: &str = "version = 2\n\n# the node's own settings\n\
    [plugins.\"io.containerd.grpc.v1.cri\"]\n  sandbox_image = \"pause:3.9\"\n";

fn wait_healthy(url: &str, logs: impl Fn() -> String) {
    let probe = format!("{url}/healthz");
    if wait_until(&format!("{url} to answer"), START, || {
        get(&probe, &[]).is_ok_and(|f| f.status == 200)
    })
    .is_err()
    {
        panic!("{url} never answered /healthz:\n{}", logs());
    }
}

#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs podman, docker-registry, skopeo and bay's binaries: scripts/test.sh runs it"
)]
fn the_image_runs_a_tracker_and_a_proxy_that_skopeo_pulls_through() {
    let (registry, image) = registry_with_image(70, "bay/image").unwrap();
    let podman = Podman::new(&[]).unwrap();
    let mut pods = Cleanup::new(&podman);
    let bay = pods.build("bay-image").unwrap();
    let id = std::process::id();
    let reg = registry.host();
    let [tracker_port, tracker_peer, proxy_port, proxy_peer] =
        [(); 4].map(|()| free_port().unwrap());

    // The tracker from flags and the environment.
    let tracker = format!("bay-e2e-tracker-{id}");
    let tracker_listen = format!("127.0.0.1:{tracker_port}");
    let tracker_peer_listen = format!("127.0.0.1:{tracker_peer}");
    pods.run(
        &tracker,
        &bay,
        &["--env".into(), "BAY_TRACKER_CACHE_SIZE=1GiB".into()],
        &[
            "bay-tracker",
            "serve",
            "--listen",
            &tracker_listen,
            "--peer-listen",
            &tracker_peer_listen,
            "--allow-registry",
            &reg,
            "--insecure-registry",
            &reg,
        ],
    )
    .unwrap();
    let tracker_url = format!("http://{tracker_listen}");
    wait_healthy(&tracker_url, || pods.logs(&tracker));

    // The proxy from a mounted settings file.
    let conf = tempfile::tempdir().unwrap();
    std::fs::write(
        conf.path().join("proxy.toml"),
        format!(
            "listen = \"127.0.0.1:{proxy_port}\"\ntracker = [\"{tracker_url}\"]\nupstream = \"{reg}\"\n\
             [node]\npeer_listen = \"127.0.0.1:{proxy_peer}\"\nallow_registry = [\"{reg}\"]\n\
             insecure_registry = [\"{reg}\"]\n"
        ),
    )
    .unwrap();
    let proxy = format!("bay-e2e-proxy-{id}");
    pods.run(
        &proxy,
        &bay,
        &[
            "--volume".into(),
            format!("{}:/etc/bay:ro", conf.path().display()),
        ],
        &["bay-proxy", "serve", "--config", "/etc/bay/proxy.toml"],
    )
    .unwrap();
    let proxy_url = format!("http://127.0.0.1:{proxy_port}");
    wait_healthy(&proxy_url, || pods.logs(&proxy));

    let reference = format!("127.0.0.1:{proxy_port}/bay/image:{}", image.tag);
    let plain = Access {
        plain_http: true,
        ..Access::default()
    };
    let pulled = skopeo::pull(&reference, &plain).unwrap();
    image.check(&pulled).unwrap();
    image.check_served_once(&registry).unwrap();
    let layers = image.layers.len() as u64;
    assert!(metric(&proxy_url, "bay_proxy_swarm_reads_total").unwrap() >= layers);

    // Pulled again: the proxy's cache in the container answers.
    let pulled = skopeo::pull(&reference, &plain).unwrap();
    image.check(&pulled).unwrap();
    image.check_served_once(&registry).unwrap();
    assert!(metric(&proxy_url, "bay_proxy_cache_hits_total").unwrap() >= layers);

    // SIGTERM (podman stop) ends both cleanly, long before the kill.
    assert_eq!(pods.stop(&proxy, 30).unwrap(), 0, "{}", pods.logs(&proxy));
    assert_eq!(
        pods.stop(&tracker, 30).unwrap(),
        0,
        "{}",
        pods.logs(&tracker)
    );
}

/// The unit with its program at `bin` instead of /usr/local/bin.
fn unit_text(name: &str) -> String {
    let text =
        std::fs::read_to_string(workspace_root().join(format!("deploy/systemd/{name}.service")))
            .unwrap();
    let bin = bay_binary(name).unwrap();
    text.replace(
        &format!("/usr/local/bin/{name}"),
        &bin.display().to_string(),
    )
}

fn verify(dir: &Path, file: &str) -> std::process::Output {
    Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(format!("./{file}"))
        .current_dir(dir)
        .output()
        .unwrap()
}

#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs systemd-analyze and bay's binaries: scripts/test.sh runs it"
)]
fn the_systemd_units_pass_systemd_analyze_verify() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["bay-proxy", "bay-tracker"] {
        let text = unit_text(name);
        for needed in [
            "StateDirectory=",
            "EnvironmentFile=",
            "KillSignal=SIGTERM",
            "Restart=on-failure",
            "LimitNOFILE=1048576",
            "NoNewPrivileges=yes",
            "ProtectSystem=strict",
        ] {
            assert!(text.contains(needed), "{name}.service lacks {needed}");
        }
        let file = format!("{name}.service");
        std::fs::write(dir.path().join(&file), &text).unwrap();
        let out = verify(dir.path(), &file);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && err.trim().is_empty(),
            "{file}: {err}"
        );

        // A typo in a hardening option is caught: the check can fail.
        let broken = format!("broken-{name}.service");
        std::fs::write(
            dir.path().join(&broken),
            text.replace("ProtectSystem=strict", "ProtectSystem=strickt"),
        )
        .unwrap();
        let out = verify(dir.path(), &broken);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("strickt"), "{broken}: {err}");
    }
}

#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs podman, containerd, docker-registry, python3-yaml and bay's binaries: scripts/test.sh runs it"
)]
fn every_pod_template_plays_and_containerd_pulls_through_the_played_proxy() {
    let (registry, image) = registry_with_image(71, "bay/kube").unwrap();
    let podman = Podman::new(&[]).unwrap();
    let mut pods = Cleanup::new(&podman);
    let bay = pods.build("bay-kube").unwrap();
    let id = std::process::id();
    let reg = registry.host();
    let [tracker_port, tracker_peer, proxy_port, proxy_peer] =
        [(); 4].map(|()| free_port().unwrap());
    let node = tempfile::tempdir().unwrap();
    let folder = |name: &str| {
        let p = node.path().join(name);
        std::fs::create_dir_all(&p).unwrap();
        p
    };
    let (proxy_cache, containerd_etc, tracker_cache) = (
        folder("proxy-cache"),
        folder("etc-containerd"),
        folder("tracker-cache"),
    );
    // The tracker runs as the image's user; a cluster's volume would get
    // the pod's fsGroup.
    std::os::unix::fs::chown(&tracker_cache, Some(65532), Some(65532)).unwrap();
    std::fs::write(containerd_etc.join("config.toml"), NODE_CONTAINERD).unwrap();

    let tracker_url = format!("http://127.0.0.1:{tracker_port}");
    let proxy_addr = format!("127.0.0.1:{proxy_port}");
    let suffix = format!("-e2e-{id}");
    let manifests = ["config.yaml", "tracker.yaml", "proxy.yaml"]
        .map(|f| workspace_root().join("deploy/kubernetes").join(f));
    let spec = PlaySpec {
        manifests: manifests.to_vec(),
        image: bay.tag().to_owned(),
        suffix: suffix.clone(),
        config: [
            (
                "tracker.toml".to_owned(),
                format!(
                    "listen = \"127.0.0.1:{tracker_port}\"\n[node]\nroot = \"/var/lib/bay-tracker\"\n\
                     peer_listen = \"127.0.0.1:{tracker_peer}\"\nallow_registry = [\"{reg}\"]\n\
                     insecure_registry = [\"{reg}\"]\n"
                ),
            ),
            (
                "proxy.toml".to_owned(),
                format!(
                    "listen = \"{proxy_addr}\"\ntracker = [\"{tracker_url}\"]\n[node]\n\
                     root = \"/var/lib/bay-proxy\"\npeer_listen = \"127.0.0.1:{proxy_peer}\"\n\
                     allow_registry = [\"{reg}\"]\ninsecure_registry = [\"{reg}\"]\n"
                ),
            ),
        ]
        .into(),
        host_paths: [
            ("/var/lib/bay-proxy".to_owned(), proxy_cache.clone()),
            ("/etc/containerd".to_owned(), containerd_etc.clone()),
        ]
        .into(),
        env: [
            (
                "bay-tracker".to_owned(),
                [(
                    "BAY_TRACKER_PUBLIC_ADDR".to_owned(),
                    format!("127.0.0.1:{tracker_peer}"),
                )]
                .into(),
            ),
            (
                "bay-proxy".to_owned(),
                [(
                    "BAY_PROXY_PUBLIC_ADDR".to_owned(),
                    format!("127.0.0.1:{proxy_peer}"),
                )]
                .into(),
            ),
        ]
        .into(),
        args: [(
            "setup-containerd".to_owned(),
            vec![
                "bay-proxy".into(),
                "setup".into(),
                "containerd".into(),
                "--root-dir=/host".into(),
                format!("--proxy={proxy_addr}"),
                format!("--registry={reg}"),
            ],
        )]
        .into(),
        volumes: [("cache".to_owned(), tracker_cache)].into(),
    };
    let yaml = kube_pods(&spec).unwrap();
    for kind in [
        "kind: ConfigMap",
        "name: bay-tracker-e2e",
        "name: bay-proxy-e2e",
    ] {
        assert!(yaml.contains(kind), "{kind} missing from:\n{yaml}");
    }
    let file = node.path().join("play.yaml");
    std::fs::write(&file, &yaml).unwrap();
    let pod_names = [format!("bay-tracker{suffix}"), format!("bay-proxy{suffix}")];
    pods.play(&file, &pod_names).unwrap();
    let log = |pod: &str, container: &str| pods.logs(&format!("{pod}-{container}"));
    wait_healthy(&tracker_url, || log(&pod_names[0], "bay-tracker"));
    let proxy_url = format!("http://{proxy_addr}");
    wait_healthy(&proxy_url, || log(&pod_names[1], "bay-proxy"));

    // The init container pointed the node's containerd at the proxy.
    let hosts = containerd_etc.join("certs.d");
    let written = std::fs::read_to_string(hosts.join(&reg).join("hosts.toml")).unwrap();
    assert!(
        written.contains(&format!("[host.\"{proxy_url}\"]")),
        "{written}"
    );
    let config = std::fs::read_to_string(containerd_etc.join("config.toml")).unwrap();
    assert!(config.starts_with(NODE_CONTAINERD), "{config}");
    assert!(
        config.contains("config_path = \"/etc/containerd/certs.d\""),
        "{config}"
    );

    let containerd = Containerd::start().unwrap();
    let reference = image.reference(&registry, "bay/kube");
    let plain = Access {
        plain_http: true,
        ..Access::default()
    };
    let pulled = containerd.pull(&reference, &plain, Some(&hosts)).unwrap();
    image.check(&pulled).unwrap();
    image.check_served_once(&registry).unwrap();
    let layers = image.layers.len() as u64;
    assert!(metric(&proxy_url, "bay_proxy_swarm_reads_total").unwrap() >= layers);
}

/// Installed by scripts/install-deps.sh.
const VALIDATOR: &str = "/opt/bay-tools/bin/kubernetes-validate";

#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs kubernetes-validate (scripts/install-deps.sh): scripts/test.sh runs it"
)]
fn the_kubernetes_manifests_validate_against_the_kubernetes_schemas() {
    let dir = workspace_root().join("deploy/kubernetes");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 4, "{files:?}");
    for version in ["1.28.0", "1.37.0"] {
        let out = Command::new(VALIDATOR)
            .args(["--strict", "--kubernetes-version", version])
            .args(&files)
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{version}: {said}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        for kind in [
            "daemonset/bay-proxy",
            "statefulset/bay-tracker",
            "service/bay-tracker",
            "poddisruptionbudget/bay-tracker",
            "configmap/bay-config",
        ] {
            assert!(
                said.contains(&format!("passed for resource {kind}")),
                "{kind}: {said}"
            );
        }
    }
    let broken = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(dir.join("tracker.yaml")).unwrap();
    let file = broken.path().join("tracker.yaml");
    std::fs::write(&file, text.replace("replicas: 2", "replicas: two")).unwrap();
    let out = Command::new(VALIDATOR)
        .arg("--strict")
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
