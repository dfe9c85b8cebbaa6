use bay_proxy::{clientconf, serve, setup, Cli, Command};

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
    }
    Ok(())
}
