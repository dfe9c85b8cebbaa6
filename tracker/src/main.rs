use bay_tracker::{keygen, mktorrent, serve, Cli, Command};

fn main() -> anyhow::Result<()> {
    match Cli::parse_args().command {
        Command::Keygen(args) => {
            keygen::run(&args, &mut std::io::stdout().lock())?;
        }
        Command::Mktorrent(args) => {
            mktorrent::run(&args, &mut std::io::stdout().lock())?;
        }
        Command::Serve(args) => {
            let config = args.resolve()?;
            if args.print_config {
                print!("{}", config.to_toml());
                return Ok(());
            }
            bay_tracker::init_logging();
            let shutdown = bay_httpd::Shutdown::on_signals()?;
            serve::start(&config, None, shutdown)?.wait();
        }
    }
    Ok(())
}
