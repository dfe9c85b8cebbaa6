//! `bay-cluster-bench`: the cluster comparison run (cold, warm and direct
//! pulls on N namespace hosts with shaped links). Needs root. Prints a
//! table and writes JSON; `bench/scripts/cluster.sh` wraps it and draws
//! the plot.
//!
//!     bay-cluster-bench [--hosts 8] [--rate-mbit 200] [--image-mib 128]
//!         [--layers 4] [--scenarios cold,warm,direct] [--sweep 2,4,8,16]
//!         [--json FILE] [--bin-dir target/release] [--log-dir DIR]
//!         [--rust-log warn] [--pull-timeout-secs 600]

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use bay_tests::bins::workspace_root;
use bay_tests::cluster_bench::{run, table, BenchOptions, Scenario, ScenarioResult};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let parsed = Args::parse(&args)?;
    let mut all: Vec<ScenarioResult> = Vec::new();
    for &hosts in &parsed.host_counts {
        eprintln!(
            "== {hosts} pulling hosts at {} Mbit/s, image {} MiB in {} layers",
            parsed.opts.rate_mbit, parsed.image_mib, parsed.layers
        );
        let opts = BenchOptions {
            hosts,
            ..parsed.opts.clone()
        };
        let (results, _) = run(&opts)?;
        print!("{}", table(&results));
        all.extend(results);
    }
    if parsed.host_counts.len() > 1 {
        println!("\nall runs:");
        print!("{}", table(&all));
    }
    if let Some(path) = &parsed.json {
        let json = serde_json::json!({
            "command": std::iter::once("bay-cluster-bench".to_owned()).chain(args).collect::<Vec<_>>(),
            "image_mib": parsed.image_mib,
            "layers": parsed.layers,
            "results": all.iter().map(ScenarioResult::to_json).collect::<Vec<_>>(),
        });
        let text = serde_json::to_string_pretty(&json)?;
        std::fs::write(path, text).with_context(|| format!("write {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

struct Args {
    opts: BenchOptions,
    host_counts: Vec<usize>,
    image_mib: u64,
    layers: usize,
    json: Option<PathBuf>,
}

impl Args {
    fn parse(args: &[String]) -> Result<Args> {
        let mut hosts = 8usize;
        let mut sweep: Option<Vec<usize>> = None;
        let mut image_mib = 128u64;
        let mut layers = 4usize;
        let mut json = None;
        let mut opts = BenchOptions {
            hosts: 0,
            rate_mbit: 200,
            layer_sizes: Vec::new(),
            scenarios: Scenario::ALL.to_vec(),
            bin_dir: workspace_root().join("target").join("release"),
            log_dir: None,
            rust_log: "warn".into(),
            pull_timeout: Duration::from_secs(600),
            seed: 6000,
        };
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            let mut value = || {
                it.next()
                    .cloned()
                    .with_context(|| format!("{flag} needs a value"))
            };
            match flag.as_str() {
                "--hosts" => hosts = value()?.parse()?,
                "--sweep" => sweep = Some(list(&value()?)?),
                "--rate-mbit" => opts.rate_mbit = value()?.parse()?,
                "--image-mib" => image_mib = value()?.parse()?,
                "--layers" => layers = value()?.parse()?,
                "--scenarios" => {
                    opts.scenarios = value()?
                        .split(',')
                        .map(|s| Scenario::parse(s).with_context(|| format!("no scenario {s}")))
                        .collect::<Result<_>>()?
                }
                "--json" => json = Some(PathBuf::from(value()?)),
                "--bin-dir" => opts.bin_dir = PathBuf::from(value()?),
                "--log-dir" => opts.log_dir = Some(PathBuf::from(value()?)),
                "--rust-log" => opts.rust_log = value()?,
                "--pull-timeout-secs" => opts.pull_timeout = Duration::from_secs(value()?.parse()?),
                "--seed" => opts.seed = value()?.parse()?,
                other => bail!("unknown flag {other} (see the top of bay-cluster-bench.rs)"),
            }
        }
        if layers == 0 || image_mib == 0 {
            bail!("--layers and --image-mib must be positive");
        }
        opts.layer_sizes = BenchOptions::layers_of(image_mib, layers);
        Ok(Args {
            opts,
            host_counts: sweep.unwrap_or_else(|| vec![hosts]),
            image_mib,
            layers,
            json,
        })
    }
}

fn list(text: &str) -> Result<Vec<usize>> {
    text.split(',')
        .map(|n| n.parse().with_context(|| format!("not a host count: {n}")))
        .collect()
}
