//! dockerd: Docker Hub through `registry-mirrors` in daemon.json (the
//! only registry dockerd mirrors), every other registry through the
//! `p2p-` host prefix: a line in /etc/hosts that sends `p2p-REG` to the
//! proxy, which strips the prefix to find REG.
//!
//! daemon.json keeps its keys in their order and every value the operator
//! set; the proxy's URL goes first in `registry-mirrors`, since dockerd
//! tries mirrors in order before Docker Hub itself.

use std::net::IpAddr;

use serde::de::{MapAccess, Visitor};
use serde_json::Value;

use super::Problem;

/// dockerd's configuration file.
pub const DAEMON_JSON: &str = "/etc/docker/daemon.json";
/// The host name table.
pub const HOSTS: &str = "/etc/hosts";
/// What marks the lines setup adds to /etc/hosts.
const MARK: &str = "# bay-proxy setup";

/// daemon.json's top level, in the order of the file.
struct Ordered(Vec<(String, Value)>);

impl<'de> serde::Deserialize<'de> for Ordered {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Pairs;
        impl<'de> Visitor<'de> for Pairs {
            type Value = Ordered;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Ordered, A::Error> {
                let mut pairs = Vec::new();
                while let Some(pair) = map.next_entry::<String, Value>()? {
                    pairs.push(pair);
                }
                Ok(Ordered(pairs))
            }
        }
        d.deserialize_map(Pairs)
    }
}

fn parse(text: &str) -> Result<Vec<(String, Value)>, Problem> {
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    serde_json::from_str::<Ordered>(text)
        .map(|o| o.0)
        .map_err(|e| Problem::Malformed("JSON", e.to_string()))
}

fn mirrors(pairs: &[(String, Value)]) -> Result<Vec<String>, Problem> {
    match pairs.iter().find(|(k, _)| k == "registry-mirrors") {
        None => Ok(Vec::new()),
        Some((_, Value::Array(list))) => list
            .iter()
            .map(|v| {
                v.as_str().map(str::to_owned).ok_or_else(|| {
                    Problem::Malformed("JSON", "registry-mirrors holds a non-string".into())
                })
            })
            .collect(),
        Some(_) => Err(Problem::Malformed(
            "JSON",
            "registry-mirrors is not a list".into(),
        )),
    }
}

fn same_url(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

/// Whether daemon.json lists `proxy_url` among its registry mirrors.
pub fn mirrors_point_at(text: &str, proxy_url: &str) -> Result<bool, Problem> {
    Ok(mirrors(&parse(text)?)?
        .iter()
        .any(|m| same_url(m, proxy_url)))
}

/// daemon.json with `proxy_url` first in `registry-mirrors`.
pub fn merge_daemon_json(old: Option<&str>, proxy_url: &str) -> Result<String, Problem> {
    let mut pairs = parse(old.unwrap_or(""))?;
    let list = mirrors(&pairs)?;
    if list.iter().any(|m| same_url(m, proxy_url)) {
        if let Some(old) = old {
            return Ok(old.to_owned());
        }
    }
    let mut new: Vec<Value> = vec![Value::String(proxy_url.to_owned())];
    new.extend(list.into_iter().map(Value::String));
    match pairs.iter_mut().find(|(k, _)| k == "registry-mirrors") {
        Some((_, v)) => *v = Value::Array(new),
        None => pairs.push(("registry-mirrors".into(), Value::Array(new))),
    }
    let mut out = String::from("{\n");
    for (i, (k, v)) in pairs.iter().enumerate() {
        let value = serde_json::to_string_pretty(v)
            .map_err(|e| Problem::Malformed("JSON", e.to_string()))?
            .replace('\n', "\n  ");
        let key = Value::String(k.clone());
        let comma = if i + 1 < pairs.len() { "," } else { "" };
        out.push_str(&format!("  {key}: {value}{comma}\n"));
    }
    out.push_str("}\n");
    Ok(out)
}

/// The name dockerd pulls `registry` by through the proxy.
pub fn p2p_name(registry: &str) -> String {
    let host = registry.rsplit_once(':').map_or(registry, |(h, p)| {
        if p.chars().all(|c| c.is_ascii_digit()) {
            h
        } else {
            registry
        }
    });
    format!("{}{host}", crate::route::HOST_PREFIX)
}

/// The address /etc/hosts gives `name`, if any line names it.
pub fn hosts_address(text: &str, name: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let line = line.split('#').next().unwrap_or("");
        let mut fields = line.split_whitespace();
        let addr = fields.next()?;
        fields
            .any(|f| f.eq_ignore_ascii_case(name))
            .then(|| addr.to_owned())
    })
}

/// /etc/hosts with `ip p2p-REG` for each of `names`; a name that
/// /etc/hosts sends elsewhere is a conflict, never overwritten.
pub fn merge_hosts(old: &str, ip: IpAddr, names: &[String]) -> Result<String, Problem> {
    let mut text = old.to_owned();
    for name in names {
        match hosts_address(&text, name) {
            Some(addr) if addr.parse::<IpAddr>().ok() == Some(ip) => continue,
            Some(addr) => {
                return Err(Problem::Conflict(format!(
                    "{name} already resolves to {addr}; remove that line or point it at {ip}"
                )))
            }
            None => {}
        }
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&format!("{ip}\t{name}\t{MARK}\n"));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROXY: &str = "http://127.0.0.1:5000";

    #[test]
    fn the_mirror_goes_first_and_other_keys_keep_their_order() {
        let old = "{\"log-driver\": \"journald\", \"registry-mirrors\": [\"https://m.corp\"], \
                   \"data-root\": \"/srv/docker\"}";
        let new = merge_daemon_json(Some(old), PROXY).unwrap();
        assert_eq!(
            new,
            "{\n  \"log-driver\": \"journald\",\n  \"registry-mirrors\": [\n    \
             \"http://127.0.0.1:5000\",\n    \"https://m.corp\"\n  ],\n  \
             \"data-root\": \"/srv/docker\"\n}\n"
        );
        assert!(mirrors_point_at(&new, PROXY).unwrap());
        assert_eq!(merge_daemon_json(Some(&new), PROXY).unwrap(), new);
    }

    #[test]
    fn a_missing_or_empty_daemon_json_gets_the_mirror() {
        for old in [None, Some(""), Some("{}")] {
            let new = merge_daemon_json(old, PROXY).unwrap();
            assert_eq!(
                new,
                "{\n  \"registry-mirrors\": [\n    \"http://127.0.0.1:5000\"\n  ]\n}\n"
            );
        }
    }

    #[test]
    fn a_malformed_daemon_json_is_refused() {
        for bad in [
            "{",
            "[1]",
            "{\"registry-mirrors\": \"x\"}",
            "{\"registry-mirrors\": [1]}",
        ] {
            assert!(
                matches!(
                    merge_daemon_json(Some(bad), PROXY),
                    Err(Problem::Malformed(..))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn hosts_lines_are_added_once_and_never_overwritten() {
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let names = vec![p2p_name("reg.test:5000"), p2p_name("other.test")];
        assert_eq!(names, ["p2p-reg.test", "p2p-other.test"]);
        let old = "127.0.0.1 localhost";
        let new = merge_hosts(old, ip, &names).unwrap();
        assert!(
            new.starts_with("127.0.0.1 localhost\n127.0.0.1\tp2p-reg.test\t"),
            "{new}"
        );
        assert_eq!(
            hosts_address(&new, "p2p-other.test").as_deref(),
            Some("127.0.0.1")
        );
        assert_eq!(merge_hosts(&new, ip, &names).unwrap(), new);
        let taken = "10.0.0.9 p2p-reg.test\n";
        assert!(matches!(
            merge_hosts(taken, ip, &names),
            Err(Problem::Conflict(_))
        ));
        assert_eq!(hosts_address("# 1.2.3.4 p2p-x\n", "p2p-x"), None);
    }
}
