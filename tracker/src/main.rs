use bay_tracker::{mktorrent, Cli, Command};
use clap::Parser;

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Mktorrent(args) => {
            mktorrent::run(&args, &mut std::io::stdout().lock())?;
        }
    }
    Ok(())
}
