//! `bay-proxy print-config CLIENT`: the files `bay-proxy setup` would
//! write on a host that has none of them yet, for operators who manage
//! those files with their own tools.

use std::net::SocketAddr;

use crate::setup::{self, Blank, Runtime, SetupError};

/// The files (each under a `# PATH` line) and notes that point `client`
/// at the proxy listening on `proxy` for `registry`.
pub fn render(client: Runtime, proxy: SocketAddr, registry: &str) -> Result<String, SetupError> {
    let registries = setup::registries(client, &[registry.to_owned()])?;
    let plan = setup::plan(client, &registries, proxy, &Blank)?;
    let mut out = String::new();
    for change in &plan.changes {
        out.push_str(&format!("# {}\n{}\n", change.path, change.new));
    }
    for note in &plan.notes {
        out.push_str(&format!("# note: {note}\n"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_client_names_the_proxy() {
        let proxy: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        for kind in Runtime::ALL {
            let text = render(kind, proxy, "reg.test").unwrap();
            assert!(text.contains("127.0.0.1"), "{text}");
        }
        let toml_part = render(Runtime::Containerd, proxy, "reg.test").unwrap();
        assert!(toml_part.contains("server = \"https://reg.test\""));
        assert!(toml_part.contains("# /etc/containerd/certs.d/reg.test/hosts.toml"));
        let hub = render(Runtime::Docker, proxy, "docker.io").unwrap();
        assert!(hub.contains("\"registry-mirrors\""), "{hub}");
    }
}
