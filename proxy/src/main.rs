use bay_proxy::{clientconf, serve, Cli, Command};
use clap::Parser;

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Serve(args) => {
            let config = args.resolve()?;
            if args.print_config {
                print!("{}", config.to_toml());
                return Ok(());
            }
            bay_proxy::init_logging();
            let shutdown = bay_httpd::Shutdown::on_signals()?;
            serve::start(&config, None, shutdown)
                .map_err(anyhow::Error::msg)?
                .wait();
        }
        Command::PrintConfig {
            client,
            proxy,
            registry,
        } => print!("{}", clientconf::render(client, proxy, &registry)),
    }
    Ok(())
}
