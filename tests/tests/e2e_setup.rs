//! `bay-proxy setup` and `bay-proxy doctor` against the real runtimes.
//!
//! For each of containerd, podman and dockerd: setup (a second run changes
//! nothing), a pull through bay with the bytes counted at the proxy,
//! doctor with `--image` passing, undo putting every file back byte for
//! byte, doctor then failing, and a pull straight from the registry that
//! the proxy never sees.
//!
//! The runtimes' files are written under each test's own scratch root
//! (`--root-dir`), which the daemons are pointed at; the one real system
//! file, /etc/hosts for dockerd's `p2p-` names, is saved first and put
//! back on drop, also when the test fails.
//!
//! Then doctor against a broken set-up of each kind: no proxy, a dead
//! tracker, an unreachable peer port, a nearly full cache, a runtime not
//! pointed at the proxy, and a mirror on a proxy without a fixed upstream.
#![allow(clippy::unwrap_used)] // a panic is a test's failure report

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use bay_tests::bay::{metric, Cluster, Proxy, Tracker, Upstreams};
use bay_tests::bins::bay_binary;
use bay_tests::clients::containerd::Containerd;
use bay_tests::clients::docker::{Dockerd, DockerdOptions, HostsEntry};
use bay_tests::clients::podman::Podman;
use bay_tests::clients::Access;
use bay_tests::image::{registry_with_image, ImageSpec, TestImage};
use bay_tests::process::closed_port;
use bay_tests::registry::{Registry, RegistryOptions};
use bay_tests::tmpfs::Tmpfs;

/// `bay-proxy ARGS…` with `env`; its output.
fn bay_proxy(args: &[&str], env: &[(&str, PathBuf)]) -> Output {
    let mut cmd = Command::new(bay_binary("bay-proxy").unwrap());
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs setup and checks it succeeded; a second run must change nothing.
fn setup_twice(args: &[&str]) {
    let mut full = vec!["setup"];
    full.extend_from_slice(args);
    let first = bay_proxy(&full, &[]);
    assert!(first.status.success(), "{}", text(&first));
    assert!(text(&first).contains("wrote "), "{}", text(&first));
    let second = bay_proxy(&full, &[]);
    assert!(second.status.success(), "{}", text(&second));
    assert!(
        text(&second).contains("nothing to change"),
        "{}",
        text(&second)
    );
}

fn undo(args: &[&str]) {
    let mut full = vec!["setup"];
    full.extend_from_slice(args);
    full.push("--undo");
    let out = bay_proxy(&full, &[]);
    assert!(out.status.success(), "{}", text(&out));
}

fn put(root: &Path, path: &str, contents: &str) -> PathBuf {
    let p = root.join(path.trim_start_matches('/'));
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, contents).unwrap();
    p
}

fn bytes_to_clients(proxy: &str) -> u64 {
    metric(proxy, "bay_proxy_bytes_to_clients_total").unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs containerd, docker-registry, skopeo and bay's binaries: scripts/test.sh runs it"
)]
fn containerd_set_up_pulls_through_bay_and_after_undo_straight_from_the_registry() {
    let (registry, image) = registry_with_image(80, "bay/setup-ctr").unwrap();
    let cluster = Cluster::start(&Upstreams::routed(&registry), 1, 1).unwrap();
    let proxy = &cluster.proxies[0];
    let root = tempfile::tempdir().unwrap();
    let config = "version = 2\n# the operator's\n[plugins.\"io.containerd.grpc.v1.cri\"]\n  sandbox_image = \"pause:3.9\"\n";
    let config_file = put(root.path(), "/etc/containerd/config.toml", config);
    let addr = proxy.addr().to_string();
    let reg = registry.host();
    let args = [
        "containerd",
        "--root-dir",
        s(root.path()),
        "--proxy",
        &addr,
        "--registry",
        &reg,
    ];
    setup_twice(&args);

    let containerd = Containerd::start().unwrap();
    let hosts = root.path().join("etc/containerd/certs.d");
    let reference = image.reference(&registry, "bay/setup-ctr");
    let plain = Access {
        plain_http: true,
        ..Access::default()
    };
    let pulled = containerd.pull(&reference, &plain, Some(&hosts)).unwrap();
    image.check(&pulled).unwrap();
    let through_bay = bytes_to_clients(&proxy.url());
    assert!(through_bay >= image.layer_bytes(), "{through_bay}");

    // doctor pulls in a namespace of its own; the test's copy goes first
    // so that containerd fetches the layers again.
    containerd.remove(&reference).unwrap();
    let socket = containerd.socket().to_path_buf();
    let doctor = [
        "doctor",
        "--proxy",
        &addr,
        "--runtime",
        "containerd",
        "--root-dir",
        s(root.path()),
        "--containerd-address",
        s(&socket),
        "--image",
        &reference,
    ];
    let out = bay_proxy(&doctor, &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("containerd pulled {reference} through bay-proxy")),
        "{}",
        text(&out)
    );
    assert!(bytes_to_clients(&proxy.url()) >= through_bay + image.layer_bytes());

    undo(&args);
    assert_eq!(std::fs::read_to_string(&config_file).unwrap(), config);
    assert!(!hosts.join(&reg).join("hosts.toml").exists());
    let out = bay_proxy(&doctor, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("sets no config_path"), "{}", text(&out));

    let before = bytes_to_clients(&proxy.url());
    let served = registry.blob_bytes_served().unwrap();
    let pulled = containerd.pull(&reference, &plain, Some(&hosts)).unwrap();
    image.check(&pulled).unwrap();
    assert_eq!(bytes_to_clients(&proxy.url()), before);
    assert!(registry.blob_bytes_served().unwrap() != served);
}

#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs podman, docker-registry, skopeo and bay's binaries: scripts/test.sh runs it"
)]
fn podman_set_up_pulls_through_bay_and_after_undo_straight_from_the_registry() {
    let (registry, image) = registry_with_image(81, "bay/setup-podman").unwrap();
    // podman's mirror requests do not name the registry: a fixed upstream.
    let cluster = Cluster::start(&Upstreams::fixed(&registry), 1, 1).unwrap();
    let proxy = &cluster.proxies[0];
    let reg = registry.host();
    let mut podman = Podman::with_registries_conf(&format!(
        "unqualified-search-registries = []\n\n[[registry]]\nlocation = \"{reg}\"\ninsecure = true\n"
    ))
    .unwrap();
    // setup reads the main file and writes the drop-in under the scratch
    // root; podman reads both there.
    let root = tempfile::tempdir().unwrap();
    let etc = root.path().join("etc/containers");
    std::fs::create_dir_all(etc.join("registries.conf.d")).unwrap();
    std::os::unix::fs::symlink(podman.registries_conf(), etc.join("registries.conf")).unwrap();
    podman.set_drop_in_dir(&etc.join("registries.conf.d"));

    let addr = proxy.addr().to_string();
    let args = [
        "podman",
        "--root-dir",
        s(root.path()),
        "--proxy",
        &addr,
        "--registry",
        &reg,
    ];
    setup_twice(&args);
    let reference = image.reference(&registry, "bay/setup-podman");
    let pulled = podman.pull(&reference, &Access::default()).unwrap();
    image.check(&pulled).unwrap();
    let through_bay = bytes_to_clients(&proxy.url());
    assert!(through_bay >= image.layer_bytes(), "{through_bay}");

    // doctor's own pull reads the drop-ins where podman does.
    let doctor = |podman: &Podman| {
        let mut cmd = podman.in_namespace(&bay_binary("bay-proxy").unwrap());
        cmd.envs(podman.env()).args([
            "doctor",
            "--proxy",
            &addr,
            "--runtime",
            "podman",
            "--root-dir",
            s(root.path()),
            "--image",
            &reference,
        ]);
        cmd.output().unwrap()
    };
    let out = doctor(&podman);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("podman pulled {reference} through bay-proxy")),
        "{}",
        text(&out)
    );

    undo(&args);
    assert!(!etc.join("registries.conf.d/50-bay-proxy.conf").exists());
    let out = doctor(&podman);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("podman sends no registry"),
        "{}",
        text(&out)
    );

    let mut rmi = podman.command();
    rmi.args(["rmi", "--force", &reference]);
    assert!(rmi.status().unwrap().success());
    let before = bytes_to_clients(&proxy.url());
    let pulled = podman.pull(&reference, &Access::default()).unwrap();
    image.check(&pulled).unwrap();
    assert_eq!(bytes_to_clients(&proxy.url()), before);
}

/// /etc/hosts as it was, put back on drop.
struct SavedHosts(String);

impl SavedHosts {
    fn take() -> SavedHosts {
        SavedHosts(std::fs::read_to_string("/etc/hosts").unwrap())
    }
}

impl Drop for SavedHosts {
    fn drop(&mut self) {
        if std::fs::read_to_string("/etc/hosts").ok().as_deref() != Some(&self.0) {
            let _ = std::fs::write("/etc/hosts", &self.0);
        }
    }
}

#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs dockerd, containerd, docker-registry, skopeo and bay's binaries: scripts/test.sh runs it"
)]
fn dockerd_set_up_pulls_docker_hub_and_p2p_names_through_bay_and_after_undo_directly() {
    let saved = SavedHosts::take();
    let (registry, image) = registry_with_image(82, "bay/setup-docker").unwrap();
    // The Hub image has other layers, or dockerd would hold them already.
    let hub_image = TestImage::build(&ImageSpec::small(83)).unwrap();
    // Docker Hub stands in as this registry, behind a proxy fixed on it.
    let hub_repo = format!("library/bay-hub-{}", std::process::id());
    hub_image.push(&registry, &hub_repo).unwrap();
    let hub_tracker = Tracker::start(&Upstreams::fixed(&registry)).unwrap();
    let hub_proxy = Proxy::start(&[hub_tracker.url()], &Upstreams::fixed(&registry)).unwrap();

    // Another registry by its p2p- name, through a proxy on 127.0.0.2 and
    // the registry's port number.
    let name = format!("registry-setup-{}.bay.test", std::process::id());
    let upstream = format!("{name}:{}", registry.port());
    let _registry_name = HostsEntry::add(&name).unwrap();
    let routed = Upstreams::named(&upstream, &registry);
    let tracker = Tracker::start(&routed).unwrap();
    let proxy_ip = Ipv4Addr::new(127, 0, 0, 2);
    let listener = TcpListener::bind(SocketAddr::from((proxy_ip, registry.port()))).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let p2p_proxy = Proxy::start_on(&[tracker.url()], &routed, listener, cache.path()).unwrap();

    let root = tempfile::tempdir().unwrap();
    let daemon_json = put(
        root.path(),
        "/etc/docker/daemon.json",
        "{\"log-level\": \"warn\"}\n",
    );
    let hub_addr = hub_proxy.addr().to_string();
    let hub_args = ["docker", "--root-dir", s(root.path()), "--proxy", &hub_addr];
    setup_twice(&hub_args);
    // The p2p- line goes into the real /etc/hosts (dockerd resolves with
    // it), its backup into the test's folder; both before dockerd starts,
    // since Go programs cache /etc/hosts.
    let backups = tempfile::tempdir().unwrap();
    let p2p_addr = p2p_proxy.addr().to_string();
    let hosts_args = [
        "docker",
        "--root-dir",
        "/",
        "--backup-dir",
        s(backups.path()),
        "--proxy",
        &p2p_addr,
        "--registry",
        &upstream,
    ];
    setup_twice(&hosts_args);
    let with_line = std::fs::read_to_string("/etc/hosts").unwrap();
    assert!(
        with_line.contains(&format!("127.0.0.2\tp2p-{name}")),
        "{with_line}"
    );

    let dockerd = Dockerd::start(&DockerdOptions {
        config_file: Some(daemon_json.clone()),
        ..DockerdOptions::default()
    })
    .unwrap();
    let hub_ref = format!(
        "{}:{}",
        hub_repo.trim_start_matches("library/"),
        hub_image.tag
    );
    let pulled = dockerd.pull(&hub_ref, &Access::default()).unwrap();
    hub_image.check(&pulled).unwrap();
    assert!(bytes_to_clients(&hub_proxy.url()) >= hub_image.layer_bytes());

    let p2p_ref = format!("p2p-{upstream}/bay/setup-docker:{}", image.tag);
    let pulled = dockerd.pull(&p2p_ref, &Access::default()).unwrap();
    image.check(&pulled).unwrap();
    assert!(bytes_to_clients(&p2p_proxy.url()) >= image.layer_bytes());

    // doctor pulls the Hub image again (removed first so it is fetched).
    let mut rmi = dockerd.docker();
    rmi.args(["rmi", &hub_ref]);
    assert!(rmi.status().unwrap().success());
    let docker_host = format!("unix://{}", dockerd.socket().display());
    let doctor = [
        "doctor",
        "--proxy",
        &hub_addr,
        "--runtime",
        "docker",
        "--root-dir",
        s(root.path()),
        "--docker-host",
        &docker_host,
        "--image",
        &hub_ref,
    ];
    let out = bay_proxy(&doctor, &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("docker pulled {hub_ref} through bay-proxy")),
        "{}",
        text(&out)
    );

    undo(&hub_args);
    undo(&hosts_args);
    assert_eq!(
        std::fs::read_to_string(&daemon_json).unwrap(),
        "{\"log-level\": \"warn\"}\n"
    );
    assert_eq!(
        std::fs::read_to_string("/etc/hosts").unwrap(),
        saved.0.clone() + &format!("127.0.0.1 {name} # bay test\n")
    );
    let out = bay_proxy(&doctor, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));

    // Straight from the registry: the proxy sees nothing.
    let mut rmi = dockerd.docker();
    rmi.args(["rmi", &p2p_ref]);
    assert!(rmi.status().unwrap().success());
    let before = bytes_to_clients(&p2p_proxy.url());
    let direct = format!("{upstream}/bay/setup-docker:{}", image.tag);
    let pulled = dockerd.pull(&direct, &Access::default()).unwrap();
    image.check(&pulled).unwrap();
    assert_eq!(bytes_to_clients(&p2p_proxy.url()), before);
    drop(dockerd);
}

/// doctor's verdict on the proxy at `addr` for containerd set up under
/// `root`.
fn doctor(addr: SocketAddr, root: &Path, runtime: &str) -> (bool, String) {
    let addr = addr.to_string();
    let out = bay_proxy(
        &[
            "doctor",
            "--proxy",
            &addr,
            "--runtime",
            runtime,
            "--root-dir",
            s(root),
        ],
        &[],
    );
    (out.status.success(), text(&out))
}

fn set_up(root: &Path, runtime: &str, proxy: SocketAddr, registry: &str) {
    let addr = proxy.to_string();
    let out = bay_proxy(
        &[
            "setup",
            runtime,
            "--root-dir",
            s(root),
            "--proxy",
            &addr,
            "--registry",
            registry,
        ],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs root (tmpfs), docker-registry and bay's binaries: scripts/test.sh runs it"
)]
fn doctor_names_each_broken_set_up_and_passes_a_sound_one() {
    let registry = Registry::start(RegistryOptions::plain()).unwrap();
    let upstreams = Upstreams::routed(&registry);
    let reg = registry.host();
    let tracker = Tracker::start(&upstreams).unwrap();
    // Room to spare whatever the test machine's disk holds.
    let roomy = Tmpfs::mount(4 << 30).unwrap();
    let sound = Proxy::start_on(
        &[tracker.url()],
        &upstreams,
        TcpListener::bind("127.0.0.1:0").unwrap(),
        roomy.path(),
    )
    .unwrap();
    let root = tempfile::tempdir().unwrap();
    set_up(root.path(), "containerd", sound.addr(), &reg);
    let (ok, out) = doctor(sound.addr(), root.path(), "containerd");
    assert!(ok, "{out}");
    for line in [
        "tracker http",
        "the peer port answers",
        "is writable",
        "runs on",
        "containerd pulls",
    ] {
        assert!(out.contains(line), "{line}: {out}");
    }

    // No proxy at all.
    let nobody = SocketAddr::from(([127, 0, 0, 1], closed_port().unwrap()));
    let (ok, out) = doctor(nobody, root.path(), "containerd");
    assert!(!ok && out.contains("does not answer"), "{out}");

    // The runtime not pointed at this proxy.
    let bare = tempfile::tempdir().unwrap();
    let (ok, out) = doctor(sound.addr(), bare.path(), "containerd");
    assert!(!ok && out.contains("sets no config_path"), "{out}");

    // A podman mirror on a proxy that cannot tell the registry.
    set_up(root.path(), "podman", sound.addr(), &reg);
    let (ok, out) = doctor(sound.addr(), root.path(), "podman");
    assert!(
        !ok && out.contains("mirror requests do not name their registry"),
        "{out}"
    );

    // A tracker that is down.
    let dead = format!("http://127.0.0.1:{}", closed_port().unwrap());
    let lonely = Proxy::start(std::slice::from_ref(&dead), &upstreams).unwrap();
    set_up(root.path(), "containerd", lonely.addr(), &reg);
    let (ok, out) = doctor(lonely.addr(), root.path(), "containerd");
    assert!(
        !ok && out.contains(&format!("tracker {dead} does not answer")),
        "{out}"
    );

    // Peers told an address where nothing listens.
    let unreachable = format!("127.0.0.1:{}", closed_port().unwrap());
    let hidden = Proxy::start_with(&[tracker.url()], &upstreams, |c| {
        c.node.public_addr = unreachable.parse().ok();
    })
    .unwrap();
    set_up(root.path(), "containerd", hidden.addr(), &reg);
    let (ok, out) = doctor(hidden.addr(), root.path(), "containerd");
    assert!(
        !ok && out.contains(&format!("cannot connect to the peer port at {unreachable}")),
        "{out}"
    );

    // A cache on a nearly full disk.
    let small = Tmpfs::mount(64 << 20).unwrap();
    let cramped = Proxy::start_on(
        &[tracker.url()],
        &upstreams,
        TcpListener::bind("127.0.0.1:0").unwrap(),
        small.path(),
    )
    .unwrap();
    set_up(root.path(), "containerd", cramped.addr(), &reg);
    let (ok, out) = doctor(cramped.addr(), root.path(), "containerd");
    assert!(!ok && out.contains("nearly full"), "{out}");
}
