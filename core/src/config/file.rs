//! Configuration files: TOML over defaults, unknown keys refused (the
//! programs' structs use `deny_unknown_fields`), printed back as TOML that
//! loads unchanged.
//!
//! The host-level settings both programs share live in a `[node]` table.
//! Files written before that table existed keep working: a node key found
//! at the top level is moved into `[node]`, with a warning that names its
//! new place.

use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::node::NODE_KEYS;
use super::ConfigError;

/// Reads a TOML configuration file.
pub fn read_toml<T: DeserializeOwned>(path: &Path) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_toml(&text).map_err(|message| ConfigError::Parse {
        path: path.to_path_buf(),
        message,
    })
}

/// Parses configuration text, moving top-level node keys into `[node]`.
pub fn parse_toml<T: DeserializeOwned>(text: &str) -> Result<T, String> {
    let mut table: toml::Table = toml::from_str(text).map_err(|e| e.to_string())?;
    move_node_keys(&mut table)?;
    toml::Value::Table(table)
        .try_into()
        .map_err(|e: toml::de::Error| e.to_string())
}

fn move_node_keys(table: &mut toml::Table) -> Result<(), String> {
    let moved: Vec<(String, toml::Value)> = NODE_KEYS
        .iter()
        .filter_map(|k| table.remove(*k).map(|v| ((*k).to_owned(), v)))
        .collect();
    if moved.is_empty() {
        return Ok(());
    }
    let node = table
        .entry("node")
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    let toml::Value::Table(node) = node else {
        return Err("`node` must be a table ([node])".into());
    };
    for (key, value) in moved {
        if node.contains_key(&key) {
            return Err(format!(
                "`{key}` is set both at the top level and in [node]: keep node.{key} only"
            ));
        }
        tracing::warn!("config key `{key}` now belongs in the [node] table; read as node.{key}");
        node.insert(key, value);
    }
    Ok(())
}

/// A configuration as TOML, as `--print-config` shows it.
pub fn to_toml<T: Serialize>(config: &T) -> String {
    toml::to_string(config).unwrap_or_default()
}
