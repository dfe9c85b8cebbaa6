//! podman, CRI-O, skopeo and buildah (containers-registries.conf): a
//! drop-in in `registries.conf.d` with a `[[registry]]` per registry whose
//! first mirror is the proxy; the registry itself stays the location,
//! used when the mirror fails.
//!
//! A later drop-in replaces an earlier entry with the same prefix whole,
//! so an entry the operator wrote for that registry elsewhere is carried
//! into the drop-in (location, insecure, blocked, their mirrors after the
//! proxy) rather than lost.

use toml::{Table, Value};

use super::Problem;

/// The main configuration file.
pub const MAIN: &str = "/etc/containers/registries.conf";
/// The drop-in folder.
pub const DROP_IN_DIR: &str = "/etc/containers/registries.conf.d";
/// setup's drop-in; the name sorts late, so it wins over the distribution's.
pub const DROP_IN: &str = "/etc/containers/registries.conf.d/50-bay-proxy.conf";

const HEADER: &str = "# Pulls of each registry below try bay-proxy first (the mirror), then the\n\
                      # registry itself. Written by bay-proxy setup podman; undo with\n\
                      # bay-proxy setup podman --undo.\n";

fn parse(text: &str) -> Result<Table, Problem> {
    toml::from_str(text).map_err(|e| Problem::Malformed("TOML", e.to_string()))
}

/// The `[[registry]]` entries of a file.
fn entries(table: &Table) -> Result<Vec<Table>, Problem> {
    if table.contains_key("registries") {
        return Err(Problem::Conflict(
            "the file uses the version 1 format ([registries.search]), which podman \
             does not mix with drop-ins: rewrite it with [[registry]] tables \
             (man containers-registries.conf) and run setup again"
                .into(),
        ));
    }
    match table.get("registry") {
        None => Ok(Vec::new()),
        Some(Value::Array(list)) => list
            .iter()
            .map(|v| {
                v.as_table().cloned().ok_or_else(|| {
                    Problem::Malformed("TOML", "`registry` is not a list of tables".into())
                })
            })
            .collect(),
        Some(_) => Err(Problem::Malformed(
            "TOML",
            "`registry` is not a list of [[registry]] tables".into(),
        )),
    }
}

/// The prefix an entry applies to (its location when it names none).
fn prefix_of(entry: &Table) -> Option<&str> {
    entry
        .get("prefix")
        .or_else(|| entry.get("location"))
        .and_then(Value::as_str)
}

fn mirror_locations(entry: &Table) -> Vec<String> {
    entry
        .get("mirror")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|m| m.get("location").and_then(Value::as_str).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Registries whose entry in this file has the proxy at `proxy` as a
/// mirror.
pub fn registries_through(text: &str, proxy: &str) -> Result<Vec<String>, Problem> {
    Ok(entries(&parse(text)?)?
        .iter()
        .filter(|e| mirror_locations(e).iter().any(|m| m == proxy))
        .filter_map(|e| prefix_of(e).map(str::to_owned))
        .collect())
}

/// Refuses a file podman could not read together with the drop-in.
pub fn check_other(text: &str) -> Result<(), Problem> {
    entries(&parse(text)?).map(drop)
}

/// The drop-in with the proxy at `proxy` (`127.0.0.1:5000`) as the first
/// mirror of each of `registries`. `ours` is the drop-in as it is now
/// (its other entries stay), `others` the main file and the other
/// drop-ins in the order podman reads them.
pub fn merge_drop_in(
    ours: Option<&str>,
    others: &[&str],
    registries: &[String],
    proxy: &str,
) -> Result<String, Problem> {
    let mut list = match ours {
        Some(text) => entries(&parse(text)?)?,
        None => Vec::new(),
    };
    let mut elsewhere = Vec::new();
    for text in others {
        elsewhere.extend(entries(&parse(text)?)?);
    }
    let mut changed = ours.is_none();
    for registry in registries {
        let at = match list
            .iter()
            .position(|e| prefix_of(e) == Some(registry.as_str()))
        {
            Some(at) => at,
            None => {
                // The last entry for it elsewhere is the one podman uses.
                let mut entry = elsewhere
                    .iter()
                    .rev()
                    .find(|e| prefix_of(e) == Some(registry.as_str()))
                    .cloned()
                    .unwrap_or_default();
                entry.insert("prefix".into(), Value::String(registry.clone()));
                entry
                    .entry("location")
                    .or_insert_with(|| Value::String(registry.clone()));
                list.push(entry);
                changed = true;
                list.len() - 1
            }
        };
        let entry = &mut list[at];
        if mirror_locations(entry).iter().any(|m| m == proxy) {
            continue;
        }
        let mut mirror = Table::new();
        mirror.insert("location".into(), Value::String(proxy.to_owned()));
        mirror.insert("insecure".into(), Value::Boolean(true));
        let mut mirrors = vec![Value::Table(mirror)];
        if let Some(Value::Array(theirs)) = entry.remove("mirror") {
            mirrors.extend(theirs);
        }
        entry.insert("mirror".into(), Value::Array(mirrors));
        changed = true;
    }
    if !changed {
        if let Some(text) = ours {
            return Ok(text.to_owned());
        }
    }
    let mut doc = Table::new();
    doc.insert(
        "registry".into(),
        Value::Array(list.into_iter().map(Value::Table).collect()),
    );
    let body = toml::to_string(&doc).map_err(|e| Problem::Malformed("TOML", e.to_string()))?;
    Ok(format!("{HEADER}\n{body}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROXY: &str = "127.0.0.1:5000";

    #[test]
    fn a_new_drop_in_mirrors_each_registry() {
        let regs = vec!["reg.test".to_string(), "docker.io".to_string()];
        let text = merge_drop_in(None, &[], &regs, PROXY).unwrap();
        assert_eq!(registries_through(&text, PROXY).unwrap(), regs);
        assert!(text.contains("insecure = true"), "{text}");
        assert_eq!(merge_drop_in(Some(&text), &[], &regs, PROXY).unwrap(), text);
    }

    #[test]
    fn an_operators_entry_elsewhere_is_carried_over() {
        let main = "unqualified-search-registries = [\"docker.io\"]\n\
                    [[registry]]\nprefix = \"reg.test\"\nlocation = \"reg.internal:5000\"\ninsecure = true\n\
                    [[registry.mirror]]\nlocation = \"m.corp\"\n";
        let text = merge_drop_in(None, &[main], &["reg.test".into()], PROXY).unwrap();
        let entry = &entries(&parse(&text).unwrap()).unwrap()[0];
        assert_eq!(entry["location"].as_str(), Some("reg.internal:5000"));
        assert_eq!(entry["insecure"].as_bool(), Some(true));
        assert_eq!(mirror_locations(entry), [PROXY, "m.corp"]);
    }

    #[test]
    fn another_registry_is_added_to_our_drop_in() {
        let first = merge_drop_in(None, &[], &["a.test".into()], PROXY).unwrap();
        let second = merge_drop_in(Some(&first), &[], &["b.test".into()], PROXY).unwrap();
        assert_eq!(
            registries_through(&second, PROXY).unwrap(),
            ["a.test", "b.test"]
        );
    }

    #[test]
    fn version_1_files_and_garbage_are_refused() {
        let v1 = "[registries.search]\nregistries = [\"docker.io\"]\n";
        assert!(matches!(
            merge_drop_in(None, &[v1], &["a.test".into()], PROXY),
            Err(Problem::Conflict(_))
        ));
        assert!(matches!(
            merge_drop_in(Some("[[registry]\n"), &[], &["a.test".into()], PROXY),
            Err(Problem::Malformed(..))
        ));
        assert!(matches!(
            check_other("registry = 1\n"),
            Err(Problem::Malformed(..))
        ));
    }
}
