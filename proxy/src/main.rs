use bay_proxy::{clientconf, doctor, serve, setup, Cli, Command};

fn main() -> anyhow::Result<()> {
    match Cli::parse_args().command {
        Command::Serve(args) => {
            let config = args.resolve()?;
            if args.print_config {
                print!("{}", config.to_toml());
                return Ok(());
            }
            bay_proxy::init_logging();
            let shutdown = bay_httpd::Shutdown::on_signals()?;
            serve::start(&config, None, shutdown)?.wait();
        }
        Command::PrintConfig {
            client,
            proxy,
            registry,
        } => print!("{}", clientconf::render(client, proxy, &registry)?),
        Command::Setup(args) => setup::run(&args, &mut std::io::stdout().lock())?,
        Command::Doctor(args) => {
            let healthy = doctor::run(&args, &mut std::io::stdout().lock());
            std::process::exit(if healthy { 0 } else { 1 });
        }
    }
    Ok(())
}
