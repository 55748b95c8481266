//! `alertctx`: parse arguments, run one command.

use alertctx::cli::{self, Cli, Command};

/// mimalloc instead of the system allocator: the core allocates many small strings and maps
/// per record, and glibc's malloc/free were a fifth of its instructions (see
/// benches/OPTIMISATIONS.md). Called through [`alertctx::alloc`], which uses its plain
/// functions where they are aligned enough. Built without transparent huge pages (`no_thp`
/// in Cargo.toml): they made the heap resident in 2 MiB steps.
#[global_allocator]
static ALLOC: alertctx::alloc::MiMalloc = alertctx::alloc::MiMalloc;
use clap::Parser;

fn main() {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Process(args) => cli::process(args).map(|_| ()),
        Command::Run(args) => cli::run(args),
        Command::Demo(args) => alertctx::demo::run(args),
        Command::Generate(args) => cli::generate(args),
        Command::Produce(args) => alertctx::produce::run(args),
        Command::Explain(args) => alertctx::explain::run(args),
        Command::Validate(args) => {
            let problems = cli::validate_config(&args.config);
            for p in &problems {
                eprintln!("{p}");
            }
            if problems.is_empty() {
                eprintln!("{}: ok", args.config.display());
                Ok(())
            } else {
                std::process::exit(1);
            }
        }
    };
    if let Err(e) = result {
        eprintln!("alertctx: {e:#}");
        std::process::exit(1);
    }
}
