//! containerd: one `hosts.toml` per registry in the folder its CRI plugin
//! reads (`config_path`), naming bay-proxy as the first host to pull and
//! resolve from, and the registry itself as `server`, which containerd
//! falls back to when the proxy fails.
//!
//! config.toml is edited with toml_edit so the operator's comments,
//! order and formatting stay as they were; only `config_path` is added
//! when it is missing. An existing `config_path` is never changed: the
//! hosts files go where it points.

use toml_edit::{Array, DocumentMut, Item, Table};

use super::Problem;

/// containerd's configuration file.
pub const CONFIG: &str = "/etc/containerd/config.toml";
/// The hosts folder bay names when config.toml names none.
pub const DEFAULT_CERTS_DIR: &str = "/etc/containerd/certs.d";

/// The CRI plugin's registry table for each config.toml version.
fn registry_table(version: i64) -> &'static [&'static str] {
    match version {
        1 => &["plugins", "cri", "registry"],
        2 => &["plugins", "io.containerd.grpc.v1.cri", "registry"],
        _ => &["plugins", "io.containerd.cri.v1.images", "registry"],
    }
}

/// What config.toml says about the hosts folder, and the file with
/// `config_path` added when it was missing.
#[derive(Debug, PartialEq, Eq)]
pub struct ConfigMerge {
    /// The folder of the hosts files (the first of a `:`-separated list).
    pub certs_dir: String,
    /// The new file, when it must change (containerd then needs a restart).
    pub new_text: Option<String>,
}

fn parse(text: &str) -> Result<DocumentMut, Problem> {
    text.parse::<DocumentMut>()
        .map_err(|e| Problem::Malformed("TOML", e.to_string()))
}

/// The version of a config.toml (1 when it names none, as containerd 1.x
/// reads it).
fn version(doc: &DocumentMut) -> Result<i64, Problem> {
    match doc.get("version") {
        None => Ok(1),
        Some(v) => v
            .as_integer()
            .ok_or_else(|| Problem::Malformed("TOML", "`version` is not a number".into())),
    }
}

/// The registry table of the CRI plugin, if the file has one.
fn find_registry<'a>(doc: &'a DocumentMut, path: &[&str]) -> Option<&'a dyn toml_edit::TableLike> {
    let mut item: &Item = doc.as_item();
    for key in path {
        item = item.as_table_like()?.get(key)?;
    }
    item.as_table_like()
}

/// The hosts folder config.toml names, if any.
pub fn certs_dir(text: &str) -> Result<Option<String>, Problem> {
    let doc = parse(text)?;
    let path = registry_table(version(&doc)?);
    Ok(find_registry(&doc, path)
        .and_then(|t| t.get("config_path"))
        .and_then(Item::as_str)
        .and_then(|p| p.split(':').find(|d| !d.is_empty()))
        .map(str::to_owned))
}

/// Adds `config_path = DEFAULT_CERTS_DIR` to config.toml unless it names a
/// hosts folder already. A missing file becomes a version 2 file with
/// that one setting (containerd's defaults stand for everything else).
pub fn merge_config(old: Option<&str>) -> Result<ConfigMerge, Problem> {
    let Some(old) = old else {
        return Ok(ConfigMerge {
            certs_dir: DEFAULT_CERTS_DIR.into(),
            new_text: Some(format!(
                "version = 2\n\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  \
                 config_path = \"{DEFAULT_CERTS_DIR}\"\n"
            )),
        });
    };
    if let Some(dir) = certs_dir(old)? {
        return Ok(ConfigMerge {
            certs_dir: dir,
            new_text: None,
        });
    }
    let mut doc = parse(old)?;
    let path = registry_table(version(&doc)?);
    if let Some(registry) = find_registry(&doc, path) {
        for legacy in ["mirrors", "configs"] {
            if registry
                .get(legacy)
                .is_some_and(|t| !t.as_table_like().is_some_and(|t| t.is_empty()))
            {
                return Err(Problem::Conflict(format!(
                    "the CRI plugin's registry.{legacy} is set, and containerd refuses it \
                     together with config_path: move those settings into hosts.toml files \
                     under {DEFAULT_CERTS_DIR}, remove registry.{legacy}, and run setup again"
                )));
            }
        }
    }
    let mut item = doc.as_item_mut();
    for key in path {
        let table = item.as_table_like_mut().ok_or_else(|| {
            Problem::Malformed("TOML", format!("`{key}`'s parent is not a table"))
        })?;
        if table.get(key).is_none() {
            let mut t = Table::new();
            t.set_implicit(true);
            table.insert(key, Item::Table(t));
        }
        item = table
            .get_mut(key)
            .ok_or_else(|| Problem::Malformed("TOML", format!("no `{key}`")))?;
    }
    let registry = item.as_table_like_mut().ok_or_else(|| {
        Problem::Malformed("TOML", "the CRI plugin's `registry` is not a table".into())
    })?;
    registry.insert("config_path", toml_edit::value(DEFAULT_CERTS_DIR));
    Ok(ConfigMerge {
        certs_dir: DEFAULT_CERTS_DIR.into(),
        new_text: Some(doc.to_string()),
    })
}

/// The registry's own address as `server`; Docker Hub's API lives on
/// another host than its name.
fn server_of(registry: &str) -> String {
    if registry == super::DOCKER_HUB {
        "https://registry-1.docker.io".into()
    } else {
        format!("https://{registry}")
    }
}

/// A hosts.toml for `registry` whose first host is the proxy at
/// `proxy_url` (`http://127.0.0.1:5000`). An existing file keeps its
/// server and hosts; the proxy's host goes in front of them, since
/// containerd tries hosts in the order of the file.
pub fn merge_hosts(old: Option<&str>, registry: &str, proxy_url: &str) -> Result<String, Problem> {
    let Some(old) = old else {
        return Ok(format!(
            "# Pulls of {registry} try bay-proxy first, then {registry} itself.\n\
             server = \"{server}\"\n\n\
             [host.\"{proxy_url}\"]\n  capabilities = [\"pull\", \"resolve\"]\n",
            server = server_of(registry)
        ));
    };
    let mut doc = parse(old)?;
    if points_at(&doc, proxy_url) {
        return Ok(old.to_owned());
    }
    let mut ours = Table::new();
    let mut caps = Array::new();
    caps.push("pull");
    caps.push("resolve");
    ours.insert("capabilities", toml_edit::value(caps));
    let existing = doc.remove("host");
    let mut hosts = Table::new();
    hosts.set_implicit(true);
    hosts.insert(proxy_url, Item::Table(ours));
    match existing {
        None => {}
        Some(Item::Table(t)) => {
            hosts.set_position(t.position().unwrap_or(0));
            for (k, v) in t {
                hosts.insert(&k, v);
            }
        }
        Some(_) => {
            return Err(Problem::Malformed(
                "TOML",
                "`host` is not a table of [host.\"URL\"] sections".into(),
            ))
        }
    }
    // Each host section prints at its own position: the proxy's goes
    // just before the first existing one.
    let first = hosts
        .iter()
        .filter_map(|(_, v)| v.as_table().and_then(Table::position))
        .min();
    let mut ordered = Table::new();
    ordered.set_implicit(true);
    for (k, mut v) in hosts {
        if let (Item::Table(t), Some(first)) = (&mut v, first) {
            match t.position() {
                Some(p) => t.set_position(p + 1),
                None => t.set_position(first),
            }
        }
        ordered.insert(&k, v);
    }
    doc.insert("host", Item::Table(ordered));
    Ok(doc.to_string())
}

fn points_at(doc: &DocumentMut, proxy_url: &str) -> bool {
    doc.get("host")
        .and_then(Item::as_table_like)
        .is_some_and(|hosts| {
            hosts
                .iter()
                .any(|(k, _)| k.trim_end_matches('/') == proxy_url.trim_end_matches('/'))
        })
}

/// Whether a hosts.toml names the proxy at `proxy_url` as a host.
pub fn hosts_point_at(text: &str, proxy_url: &str) -> Result<bool, Problem> {
    Ok(points_at(&parse(text)?, proxy_url))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROXY: &str = "http://127.0.0.1:5000";

    #[test]
    fn a_missing_hosts_file_gets_server_and_proxy() {
        let text = merge_hosts(None, "reg.test", PROXY).unwrap();
        assert!(text.contains("server = \"https://reg.test\""), "{text}");
        assert!(text.contains("[host.\"http://127.0.0.1:5000\"]"), "{text}");
        assert!(hosts_point_at(&text, PROXY).unwrap());
        let hub = merge_hosts(None, "docker.io", PROXY).unwrap();
        assert!(
            hub.contains("server = \"https://registry-1.docker.io\""),
            "{hub}"
        );
    }

    #[test]
    fn the_proxy_goes_before_the_operators_hosts_which_stay() {
        let old = "# mine\nserver = \"https://reg.test\"\n\n\
                   [host.\"https://mirror.corp\"]\n  capabilities = [\"pull\"]\n  ca = \"/etc/ca.pem\"\n";
        let new = merge_hosts(Some(old), "reg.test", PROXY).unwrap();
        let proxy_at = new.find("[host.\"http://127.0.0.1:5000\"]").unwrap();
        let mirror_at = new.find("[host.\"https://mirror.corp\"]").unwrap();
        assert!(proxy_at < mirror_at, "{new}");
        assert!(
            new.starts_with("# mine\nserver = \"https://reg.test\"\n"),
            "{new}"
        );
        assert!(new.contains("ca = \"/etc/ca.pem\""), "{new}");
        assert_eq!(merge_hosts(Some(&new), "reg.test", PROXY).unwrap(), new);
    }

    #[test]
    fn a_malformed_hosts_file_is_refused() {
        assert!(matches!(
            merge_hosts(Some("server = \n"), "reg.test", PROXY),
            Err(Problem::Malformed(..))
        ));
        assert!(matches!(
            merge_hosts(Some("host = 3\n"), "reg.test", PROXY),
            Err(Problem::Malformed(..))
        ));
    }

    #[test]
    fn config_path_is_added_keeping_the_rest() {
        let old = "# operator's\nversion = 2\n\n[plugins.\"io.containerd.grpc.v1.cri\"]\n  \
                   sandbox_image = \"pause:3.9\"\n";
        let m = merge_config(Some(old)).unwrap();
        let new = m.new_text.unwrap();
        assert!(new.starts_with(old), "{new}");
        assert_eq!(certs_dir(&new).unwrap().as_deref(), Some(DEFAULT_CERTS_DIR));
        assert_eq!(merge_config(Some(&new)).unwrap().new_text, None);
    }

    #[test]
    fn an_existing_config_path_is_kept_and_used() {
        let old = "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  \
                   config_path = \"/srv/certs.d:/etc/docker/certs.d\"\n";
        let m = merge_config(Some(old)).unwrap();
        assert_eq!(m.certs_dir, "/srv/certs.d");
        assert_eq!(m.new_text, None);
        let v3 =
            "version = 3\n[plugins.'io.containerd.cri.v1.images'.registry]\nconfig_path = '/x'\n";
        assert_eq!(merge_config(Some(v3)).unwrap().certs_dir, "/x");
        let v1 = "[plugins.cri.registry]\nconfig_path = \"/y\"\n";
        assert_eq!(merge_config(Some(v1)).unwrap().certs_dir, "/y");
    }

    #[test]
    fn a_missing_config_becomes_a_minimal_one() {
        let m = merge_config(None).unwrap();
        let text = m.new_text.unwrap();
        assert_eq!(
            certs_dir(&text).unwrap().as_deref(),
            Some(DEFAULT_CERTS_DIR)
        );
    }

    #[test]
    fn legacy_mirrors_are_a_conflict_and_garbage_is_malformed() {
        let old = "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry.mirrors.\"docker.io\"]\n  \
                   endpoint = [\"https://m\"]\n";
        assert!(matches!(merge_config(Some(old)), Err(Problem::Conflict(_))));
        assert!(matches!(
            merge_config(Some("version = [\n")),
            Err(Problem::Malformed(..))
        ));
        assert!(matches!(
            merge_config(Some("version = \"two\"\n")),
            Err(Problem::Malformed(..))
        ));
    }
}
