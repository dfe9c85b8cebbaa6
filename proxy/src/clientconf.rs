//! `bay-proxy print-config CLIENT`: the client configuration that points an
//! image client at this proxy.

use std::net::SocketAddr;

/// Which client to configure.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ClientKind {
    Containerd,
    Docker,
    Podman,
}

/// The configuration text for `client`, for `registry` through the proxy
/// listening on `proxy`.
pub fn render(client: ClientKind, proxy: SocketAddr, registry: &str) -> String {
    match client {
        ClientKind::Containerd => format!(
            "# /etc/containerd/certs.d/{registry}/hosts.toml\n\
             server = \"https://{registry}\"\n\n\
             [host.\"http://{proxy}\"]\n  capabilities = [\"pull\", \"resolve\"]\n"
        ),
        ClientKind::Docker => format!(
            "# /etc/docker/daemon.json (registry-mirrors applies to Docker Hub only;\n\
             # start bay-proxy with --upstream registry-1.docker.io for it).\n\
             # For other registries: add `127.0.0.1 p2p-{registry}` to /etc/hosts and\n\
             # pull p2p-{registry}/IMAGE, with bay-proxy listening on port 80.\n\
             {{\n  \"registry-mirrors\": [\"http://{proxy}\"]\n}}\n"
        ),
        ClientKind::Podman => format!(
            "# /etc/containers/registries.conf.d/bay.conf\n\
             [[registry]]\nlocation = \"{registry}\"\n\n\
             [[registry.mirror]]\nlocation = \"{proxy}\"\ninsecure = true\n"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_client_names_the_proxy() {
        let proxy: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        for kind in [
            ClientKind::Containerd,
            ClientKind::Docker,
            ClientKind::Podman,
        ] {
            let text = render(kind, proxy, "reg.test");
            assert!(text.contains("127.0.0.1:5000"), "{text}");
        }
        let toml_part = render(ClientKind::Containerd, proxy, "reg.test");
        assert!(toml_part.contains("server = \"https://reg.test\""));
    }
}
