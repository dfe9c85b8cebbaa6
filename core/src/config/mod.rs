//! Configuration both programs share: the node settings (`[node]` in a
//! file, the same flags on both), typed sizes parsed once, reading and
//! printing TOML files, and the error that names the setting at fault.
//!
//! Each program's own struct holds its settings plus a [`NodeConfig`]:
//! defaults, then the file (`--config`), then environment variables and
//! flags, each given one overriding what came before.

mod file;
mod node;
mod size;

use std::path::PathBuf;

pub use file::{parse_toml, read_toml, to_toml};
pub use node::{node_env, parse_node_cli, NodeArgs, NodeConfig, NodeDefaults, NODE_KEYS};
pub use size::{ByteSize, SizeError};

/// Subcommands and arguments of `cmd` (and its subcommands) that have no
/// help text, by their path: every flag of bay's programs must say what
/// it is for.
pub fn undocumented(cmd: &clap::Command) -> Vec<String> {
    fn walk(cmd: &clap::Command, path: &str, out: &mut Vec<String>) {
        let path = format!("{path} {}", cmd.get_name());
        if cmd.get_about().is_none() {
            out.push(path.clone());
        }
        for arg in cmd.get_arguments() {
            let builtin = matches!(arg.get_id().as_str(), "help" | "version");
            if !builtin && arg.get_help().is_none() {
                out.push(format!("{path} {}", arg.get_id()));
            }
        }
        for sub in cmd.get_subcommands() {
            walk(sub, &path, out);
        }
    }
    let mut out = Vec::new();
    walk(cmd, "", &mut out);
    out
}

/// A setting that is on or off, written `on` / `off` in files and flags.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    serde::Serialize,
    serde::Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Switch {
    #[default]
    On,
    Off,
}

impl Switch {
    pub fn is_on(self) -> bool {
        self == Switch::On
    }
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    /// A setting's value cannot be used; `setting` is its name in the file
    /// (`node.cache_size`), which is also its flag with dashes.
    #[error("{setting}: {message}")]
    Invalid {
        setting: &'static str,
        message: String,
    },
}

impl ConfigError {
    pub fn invalid(setting: &'static str, message: impl std::fmt::Display) -> ConfigError {
        ConfigError::Invalid {
            setting,
            message: message.to_string(),
        }
    }
}
