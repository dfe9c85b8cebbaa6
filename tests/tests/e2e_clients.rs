//! End to end: every real image client pulls through bay-proxy, each by the
//! road operators configure for it, and ends up with the pushed digests.
//!
//! - containerd: a hosts.toml mirror; the proxy finds the upstream from
//!   containerd's `?ns=`. `server` is a closed port, so containerd's
//!   request-by-request fallback fails instead of hiding a mirror failure.
//! - podman: a registries.conf mirror on a proxy with a fixed upstream; the
//!   registry's own `location` is a closed port for the same reason.
//! - dockerd: `docker login` and `docker pull p2p-<registry>/image` with
//!   both names in /etc/hosts, against a registry with htpasswd; the proxy
//!   listens where `p2p-<registry>` resolves (127.0.0.2) on the registry's
//!   port number.
//!
//! skopeo is covered by `e2e_swarm`.
#![allow(clippy::unwrap_used)] // a panic is a test's failure report

use std::net::{Ipv4Addr, SocketAddr, TcpListener};

use bay_tests::bay::{metric, Cluster, Proxy, Tracker, Upstreams};
use bay_tests::clients::containerd::{write_hosts_toml, Containerd, MirrorHost};
use bay_tests::clients::docker::{Dockerd, DockerdOptions, HostsEntry};
use bay_tests::clients::podman::Podman;
use bay_tests::clients::Access;
use bay_tests::image::{registry_with_image, ImageSpec, TestImage};
use bay_tests::process::closed_port;
use bay_tests::registry::{Credentials, Registry, RegistryOptions};

fn registry_with_image_as(
    options: RegistryOptions,
    seed: u64,
    repo: &str,
) -> (Registry, TestImage) {
    let registry = Registry::start(options).unwrap();
    let image = TestImage::build(&ImageSpec::small(seed)).unwrap();
    image.push(&registry, repo).unwrap();
    (registry, image)
}

#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs docker-registry, skopeo, podman, containerd, dockerd and bay's binaries: scripts/test.sh runs it"
)]
fn containerd_pulls_through_a_hosts_toml_mirror() {
    let (registry, image) = registry_with_image(60, "bay/ctr").unwrap();
    let cluster = Cluster::start(&Upstreams::routed(&registry), 1, 1).unwrap();
    let proxy = &cluster.proxies[0];
    let containerd = Containerd::start().unwrap();
    let hosts = containerd.scratch_dir("hosts.d").unwrap();
    let closed = format!("http://127.0.0.1:{}", closed_port().unwrap());
    write_hosts_toml(
        &hosts,
        &registry.host(),
        &closed,
        &[MirrorHost::pull_resolve(&proxy.url())],
    )
    .unwrap();
    let reference = image.reference(&registry, "bay/ctr");
    let access = Access {
        plain_http: true,
        ..Access::default()
    };

    let pulled = containerd.pull(&reference, &access, Some(&hosts)).unwrap();
    image.check(&pulled).unwrap();
    image.check_served_once(&registry).unwrap();
    assert!(metric(&proxy.url(), "bay_proxy_swarm_reads_total").unwrap() >= 3);

    // Pulled again after removal: the proxy's cache answers, the registry
    // sends no more blob bytes.
    let before = registry.blob_bytes_served().unwrap();
    containerd.remove(&reference).unwrap();
    let pulled = containerd.pull(&reference, &access, Some(&hosts)).unwrap();
    image.check(&pulled).unwrap();
    assert_eq!(registry.blob_bytes_served().unwrap(), before);
    assert!(metric(&proxy.url(), "bay_proxy_cache_hits_total").unwrap() >= 3);
}

#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs docker-registry, skopeo, podman, containerd, dockerd and bay's binaries: scripts/test.sh runs it"
)]
fn podman_pulls_through_a_registries_conf_mirror() {
    let (registry, image) = registry_with_image(61, "bay/podman").unwrap();
    let cluster = Cluster::start(&Upstreams::fixed(&registry), 1, 1).unwrap();
    let proxy = &cluster.proxies[0];
    let closed = format!("127.0.0.1:{}", closed_port().unwrap());
    let conf = format!(
        "unqualified-search-registries = []\n\n\
         [[registry]]\nprefix = \"{upstream}\"\nlocation = \"{closed}\"\ninsecure = true\n\n\
         [[registry.mirror]]\nlocation = \"{mirror}\"\ninsecure = true\n",
        upstream = registry.host(),
        mirror = proxy.addr(),
    );
    let podman = Podman::with_registries_conf(&conf).unwrap();

    let pulled = podman
        .pull(
            &image.reference(&registry, "bay/podman"),
            &Access::default(),
        )
        .unwrap();
    image.check(&pulled).unwrap();
    image.check_served_once(&registry).unwrap();
    assert!(metric(&proxy.url(), "bay_proxy_swarm_reads_total").unwrap() >= 3);
}

#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs docker-registry, skopeo, podman, containerd, dockerd and bay's binaries: scripts/test.sh runs it"
)]
fn dockerd_logs_in_and_pulls_by_the_p2p_host_prefix() {
    let creds = Credentials::new("dora", "pw-for-dockerd-e2e");
    let options = RegistryOptions::plain().with_auth(creds.clone());
    let (registry, image) = registry_with_image_as(options, 62, "bay/docker");
    let name = format!("registry-{}.bay.test", std::process::id());
    let upstream = format!("{name}:{}", registry.port());
    // Go programs cache /etc/hosts for a few seconds: both names go in
    // before dockerd starts.
    let proxy_ip = Ipv4Addr::new(127, 0, 0, 2);
    let _registry_name = HostsEntry::add(&name).unwrap();
    let _proxy_name = HostsEntry::add_ip(proxy_ip, &format!("p2p-{name}")).unwrap();
    let upstreams = Upstreams::named(&upstream, &registry);
    let tracker = Tracker::start(&upstreams).unwrap();
    let listener = TcpListener::bind(SocketAddr::from((proxy_ip, registry.port()))).unwrap();
    let root = tempfile::tempdir().unwrap();
    let proxy = Proxy::start_on(&[tracker.url()], &upstreams, listener, root.path()).unwrap();
    let dockerd = Dockerd::start(&DockerdOptions::default()).unwrap();

    let reference = format!("p2p-{upstream}/bay/docker:{}", image.tag);
    // `docker login p2p-…` goes through the proxy to the registry too.
    let access = Access {
        creds: Some(creds),
        ..Access::default()
    };
    let pulled = dockerd.pull(&reference, &access).unwrap();
    image.check(&pulled).unwrap();
    image.check_served_once(&registry).unwrap();
    assert!(metric(&proxy.url(), "bay_proxy_swarm_reads_total").unwrap() >= 3);
    drop(dockerd);
    drop(proxy);
    tracker.stop();
}
