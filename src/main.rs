//! `alertctx`: parse arguments, run one command.

use alertctx::cli::{self, Cli, Command};
use clap::Parser;

fn main() {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Process(args) => cli::process(args).map(|_| ()),
    };
    if let Err(e) = result {
        eprintln!("alertctx: {e:#}");
        std::process::exit(1);
    }
}
