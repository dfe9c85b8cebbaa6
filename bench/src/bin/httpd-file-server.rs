//! Serves one file at every path through bay-httpd, for comparison runs
//! against nginx: `httpd-file-server --listen ADDR --file PATH
//! [--threads N] [--driver auto|uring|legacy]`. Range requests work.

use std::fs::File;
use std::rc::Rc;

use anyhow::{bail, Context};
use bay_httpd::{Body, Driver, FileBody, Request, RequestBody, Response, ServerConfig, Shutdown};

struct Args {
    listen: std::net::SocketAddr,
    file: std::path::PathBuf,
    threads: usize,
    driver: Driver,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut listen = None;
    let mut file = None;
    let mut threads = 0;
    let mut driver = Driver::Auto;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--listen" => listen = Some(value.parse().context("--listen")?),
            "--file" => file = Some(value.into()),
            "--threads" => threads = value.parse().context("--threads")?,
            "--driver" => driver = value.parse().map_err(anyhow::Error::msg)?,
            other => bail!("unknown flag {other}"),
        }
    }
    Ok(Args {
        listen: listen.context("--listen ADDR is required")?,
        file: file.context("--file PATH is required")?,
        threads,
        driver,
    })
}

fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    // Fail early on a missing file rather than in every worker.
    File::open(&args.file).with_context(|| format!("opening {}", args.file.display()))?;
    let path = args.file.clone();
    let factory = move || {
        let file = File::open(&path).map(Rc::new).ok();
        move |_req: Request, _body: RequestBody| {
            let file = file.clone();
            async move {
                match file.map(FileBody::whole) {
                    Some(Ok(body)) => Response::new(200)
                        .header("Content-Type", "application/octet-stream")
                        .body(Body::File(body)),
                    _ => Response::text(500, "file unavailable\n"),
                }
            }
        }
    };
    let config = ServerConfig {
        threads: args.threads,
        driver: args.driver,
        ..ServerConfig::default()
    };
    let shutdown = Shutdown::on_signals().context("installing signal handlers")?;
    let server = bay_httpd::serve(args.listen, factory, config, shutdown)?;
    println!(
        "listening on {} with {} ({} workers)",
        server.local_addr(),
        server.driver(),
        server.workers()
    );
    server.join();
    Ok(())
}
