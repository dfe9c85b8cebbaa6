//! Every real client pulls straight from the real registry and ends up with
//! the digests that were pushed: containerd (ctr, with and without a
//! hosts.toml mirror), podman (vfs storage) and dockerd (vfs, no bridge, no
//! iptables, also through an /etc/hosts name).

use bay_tests::clients::containerd::{write_hosts_toml, Containerd, MirrorHost};
use bay_tests::clients::docker::{Dockerd, DockerdOptions, HostsEntry};
use bay_tests::clients::podman::Podman;
use bay_tests::clients::Access;
use bay_tests::image::{ImageSpec, TestImage};
use bay_tests::process::closed_port;
use bay_tests::registry::{Credentials, Registry, RegistryOptions};

fn registry_with_image(options: RegistryOptions, seed: u64, repo: &str) -> (Registry, TestImage) {
    let registry = Registry::start(options).expect("registry");
    let image = TestImage::build(&ImageSpec::small(seed)).expect("image");
    image.push(&registry, repo).expect("push");
    (registry, image)
}

#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs docker-registry, podman, containerd and dockerd: scripts/test.sh runs it"
)]
fn containerd_pulls_from_the_registry() {
    let (registry, image) = registry_with_image(RegistryOptions::plain(), 10, "harness/ctr");
    let containerd = Containerd::start().expect("containerd");
    let reference = image.reference(&registry, "harness/ctr");
    let pulled = containerd
        .pull(&reference, &Access::to_registry(&registry), None)
        .expect("ctr pull");
    image.check(&pulled).expect("digests");

    // After removal the content is collected, so a second pull fetches
    // every layer again.
    containerd.remove(&reference).expect("ctr images rm");
    containerd
        .pull(&reference, &Access::to_registry(&registry), None)
        .expect("second ctr pull");
    let gets = registry.blob_gets().expect("log");
    for layer in &image.layers {
        assert_eq!(gets.get(&layer.digest), Some(&2), "{gets:?}");
    }
}

#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs docker-registry, podman, containerd and dockerd: scripts/test.sh runs it"
)]
fn containerd_pulls_with_tls_and_credentials() {
    let creds = Credentials::new("bob", "pw-for-ctr");
    let options = RegistryOptions::tls(&[]).with_auth(creds);
    let (registry, image) = registry_with_image(options, 11, "harness/ctr-private");
    let containerd = Containerd::start().expect("containerd");
    let reference = image.reference(&registry, "harness/ctr-private");
    let pulled = containerd
        .pull(&reference, &Access::to_registry(&registry), None)
        .expect("ctr pull");
    image.check(&pulled).expect("digests");

    // After removal the content is collected, so a second pull fetches
    // every layer again.
    containerd.remove(&reference).expect("ctr images rm");
    containerd
        .pull(&reference, &Access::to_registry(&registry), None)
        .expect("second ctr pull");
    let gets = registry.blob_gets().expect("log");
    for layer in &image.layers {
        assert_eq!(gets.get(&layer.digest), Some(&2), "{gets:?}");
    }
}

#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs docker-registry, podman, containerd and dockerd: scripts/test.sh runs it"
)]
fn containerd_pulls_through_a_hosts_toml_mirror() {
    let (registry, image) = registry_with_image(RegistryOptions::plain(), 12, "harness/mirror");
    let containerd = Containerd::start().expect("containerd");
    // The image is named after an upstream that does not answer, so only
    // the mirror entry (the registry itself) can serve the pull.
    let upstream = format!("127.0.0.1:{}", closed_port().expect("port"));
    let hosts = containerd.scratch_dir("hosts.d").expect("dir");
    write_hosts_toml(
        &hosts,
        &upstream,
        &format!("http://{upstream}"),
        &[MirrorHost::pull_resolve(&registry.url())],
    )
    .expect("hosts.toml");
    let reference = format!("{upstream}/harness/mirror:{}", image.tag);
    let access = Access {
        plain_http: true,
        ..Access::default()
    };
    let pulled = containerd
        .pull(&reference, &access, Some(&hosts))
        .expect("ctr pull via mirror");
    image.check(&pulled).expect("digests");

    let requests = registry.requests().expect("log");
    let blob_gets: Vec<_> = requests
        .iter()
        .filter(|r| r.method == "GET" && r.blob_digest().is_some())
        .collect();
    assert!(!blob_gets.is_empty());
    let ns = [
        format!("ns={upstream}"),
        format!("ns={}", upstream.replace(':', "%3A")),
    ];
    assert!(
        blob_gets
            .iter()
            .all(|r| ns.iter().any(|ns| r.uri.contains(ns.as_str()))),
        "containerd names the upstream with ?ns= on mirror requests: {blob_gets:?}"
    );
}

#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs docker-registry, podman, containerd and dockerd: scripts/test.sh runs it"
)]
fn podman_pulls_from_the_registry() {
    let (registry, image) = registry_with_image(RegistryOptions::plain(), 20, "harness/podman");
    let podman = Podman::new(&[&registry.host()]).expect("podman");
    let pulled = podman
        .pull(
            &image.reference(&registry, "harness/podman"),
            &Access::to_registry(&registry),
        )
        .expect("podman pull");
    image.check(&pulled).expect("digests");
}

#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs docker-registry, podman, containerd and dockerd: scripts/test.sh runs it"
)]
fn podman_pulls_with_tls_and_credentials() {
    let creds = Credentials::new("carol", "pw-for-podman");
    let options = RegistryOptions::tls(&[]).with_auth(creds);
    let (registry, image) = registry_with_image(options, 21, "harness/podman-private");
    let podman = Podman::new(&[]).expect("podman");
    let pulled = podman
        .pull(
            &image.reference(&registry, "harness/podman-private"),
            &Access::to_registry(&registry),
        )
        .expect("podman pull");
    image.check(&pulled).expect("digests");
}

#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs docker-registry, podman, containerd and dockerd: scripts/test.sh runs it"
)]
fn dockerd_pulls_from_the_registry_directly_and_by_a_hosts_name() {
    let creds = Credentials::new("dave", "pw-for-docker");
    let options = RegistryOptions::plain().with_auth(creds);
    let (registry, image) = registry_with_image(options, 30, "harness/docker");
    // Go programs cache /etc/hosts for a few seconds: add the name before
    // dockerd starts.
    let name = format!("p2p-harness-{}.test", std::process::id());
    let _entry = HostsEntry::add(&name).expect("/etc/hosts entry");
    let dockerd = Dockerd::start(&DockerdOptions::default()).expect("dockerd");
    let access = Access::to_registry(&registry);

    let pulled = dockerd
        .pull(&image.reference(&registry, "harness/docker"), &access)
        .expect("docker pull");
    image.check(&pulled).expect("digests");

    // A name in /etc/hosts that resolves to 127.0.0.1 is plain HTTP to
    // dockerd too: the road `docker pull p2p-<registry>/…` takes.
    let by_name = format!("{name}:{}/harness/docker:{}", registry.port(), image.tag);
    let pulled = dockerd
        .pull(&by_name, &access)
        .expect("docker pull by name");
    image.check(&pulled).expect("digests");
}

#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs docker-registry, podman, containerd and dockerd: scripts/test.sh runs it"
)]
fn podman_pulls_through_a_registries_conf_mirror() {
    let (registry, image) = registry_with_image(RegistryOptions::plain(), 22, "harness/pmirror");
    // Only the mirror answers, so a pull that works went through it.
    let upstream = format!("127.0.0.1:{}", closed_port().expect("port"));
    let podman = Podman::with_mirror(&upstream, &registry.host(), true).expect("podman");
    let reference = format!("{upstream}/harness/pmirror:{}", image.tag);
    let pulled = podman
        .pull(&reference, &Access::default())
        .expect("podman pull via mirror");
    image.check(&pulled).expect("digests");
    assert!(!registry.blob_bytes_served().expect("log").is_empty());
}

#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs docker-registry, podman, containerd and dockerd: scripts/test.sh runs it"
)]
fn dockerd_pulls_docker_hub_names_through_registry_mirrors() {
    let (registry, image) = registry_with_image(RegistryOptions::plain(), 31, "harness/hub");
    let options = DockerdOptions {
        registry_mirrors: vec![registry.url()],
        insecure_registries: vec![registry.host()],
        ..DockerdOptions::default()
    };
    let dockerd = Dockerd::start(&options).expect("dockerd");
    // A Docker Hub name: only the mirror can serve it on this machine.
    let reference = format!("harness/hub:{}", image.tag);
    let pulled = dockerd
        .pull(&reference, &Access::default())
        .expect("docker pull via registry-mirrors");
    image.check(&pulled).expect("digests");
}
