//! The `lgsp` binary: a thin shell that parses arguments, calls the library crates and
//! maps the outcome to an exit code (0 ok, 1 the data or operation failed, 2 usage or
//! configuration error, 3 a dependency is unreachable).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bench;
mod check;
mod export_test;
mod failed;
mod failed_console;
mod failed_store;
mod load;
mod logging;
mod map;
mod publish;
mod run;
mod steps;
mod test;
mod watch;

/// Exit codes shared by every command (DESIGN section 8).
pub mod exit {
    pub const OK: u8 = 0;
    pub const FAILED: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const UNREACHABLE: u8 = 3;
}

#[derive(Debug, Parser)]
#[command(name = "lgsp", version, about = "Provincial data integration bus")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Args)]
struct ConfigArg {
    /// The root configuration file.
    #[arg(long, short = 'c', default_value = "config/lgsp.yaml")]
    config: PathBuf,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Load the configuration and every adapter, compile everything, report every problem.
    Check {
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Map one payload exactly as the bus would and print the result.
    Map(map::MapArgs),
    /// Run the adapters' test cases (golden files and expected errors).
    Test(test::TestArgs),
    /// Run the bus: consume every route, map, deliver, keep failures.
    Run(run::RunArgs),
    /// Publish files to the bus (with confirms) and print their message ids.
    Publish(publish::PublishArgs),
    /// Print what the bus publishes on its output exchange.
    Watch(watch::WatchArgs),
    /// Measure the router against a raw pass-through on the configured broker.
    Bench(bench::BenchArgs),
    /// Failed messages: list, show, groups, replay, discard, approve, audit, export-test
    /// (through the admin API).
    #[command(subcommand)]
    Failed(failed::FailedCommand),
}

/// jemalloc instead of the system allocator: a message makes hundreds of small
/// allocations across threads, where glibc's malloc spent a fifth of the router's CPU
/// (consolidating free lists); with jemalloc the router uses about a quarter less CPU
/// per message at a few MB more resident memory (BENCHMARKS.md).
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Check { config } => check::run(&config.config),
        Command::Map(args) => map::run(&args),
        Command::Test(args) => test::run(&args),
        Command::Run(args) => run::run(&args),
        Command::Publish(args) => publish::run(&args),
        Command::Watch(args) => watch::run(&args),
        Command::Bench(args) => bench::run(&args),
        Command::Failed(cmd) => failed::run(&cmd),
    };
    ExitCode::from(code)
}
