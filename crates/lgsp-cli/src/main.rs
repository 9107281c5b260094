//! The `lgsp` binary: a thin shell that parses arguments, calls the library crates and
//! maps the outcome to an exit code (0 ok, 1 the data or operation failed, 2 usage or
//! configuration error, 3 a dependency is unreachable).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod apps;
mod bench;
mod bench_gateway;
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
mod trace;
mod watch;

/// Exit codes shared by every command (`docs/contracts.md`).
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
    /// The service catalogue: every event the routes carry, its schema, publishers and
    /// receivers, and the fields each receiver's agreements allow.
    Catalog {
        #[command(flatten)]
        config: ConfigArg,
        /// Print it as JSON (what `GET /api/v1/catalog` answers).
        #[arg(long)]
        json: bool,
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
    /// Measure the HTTP gateway against the broker's raw publish-with-confirm rate.
    BenchGateway(bench_gateway::BenchGatewayArgs),
    /// Failed messages: list, show, groups, replay, discard, approve, audit, export-test
    /// (through the admin API).
    #[command(subcommand)]
    Failed(failed::FailedCommand),
    /// Where a message went: received, delivered, retried, failed, replayed, with times
    /// (through the admin API).
    Trace(trace::TraceArgs),
    /// Sector applications: new API keys, RabbitMQ users and permissions.
    #[command(subcommand)]
    Apps(apps::AppsCommand),
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
        Command::Catalog { config, json } => check::catalog(&config.config, json),
        Command::Map(args) => map::run(&args),
        Command::Test(args) => test::run(&args),
        Command::Apps(cmd) => apps::run(&cmd),
        // The one runtime of the process, for the commands that talk to the network.
        command => match tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt.block_on(async {
                match command {
                    Command::Run(args) => run::run(&args).await,
                    Command::Publish(args) => publish::run(&args).await,
                    Command::Watch(args) => watch::run(&args).await,
                    Command::Bench(args) => bench::run(&args).await,
                    Command::BenchGateway(args) => bench_gateway::run(&args).await,
                    Command::Failed(cmd) => failed::run(&cmd).await,
                    Command::Trace(args) => trace::run(&args).await,
                    Command::Check { .. }
                    | Command::Catalog { .. }
                    | Command::Map(_)
                    | Command::Test(_)
                    | Command::Apps(_) => exit::USAGE,
                }
            }),
            Err(e) => {
                eprintln!("error: cannot start the async runtime: {e}");
                exit::FAILED
            }
        },
    };
    ExitCode::from(code)
}

/// Connect to the configured broker (`broker.urls`, or `broker.url`) for a command; on
/// failure print why and give the exit code: 3 unreachable, 2 refused (credentials,
/// vhost: a configuration problem).
pub(crate) async fn connect(
    broker: &lgsp_core::config::BrokerConfig,
    name: &str,
) -> Result<lapin::Connection, u8> {
    match lgsp_amqp::broker::Broker::from_config(broker)
        .connect(name)
        .await
    {
        Ok(c) => Ok(c),
        Err(e) => {
            eprintln!("error: {e}");
            Err(match e.recovery() {
                lgsp_amqp::reconnect::Recovery::Retry => exit::UNREACHABLE,
                lgsp_amqp::reconnect::Recovery::Fatal => exit::USAGE,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::Cli;

    /// `--kind` takes only the closed set of error kinds: a typo is a usage error that
    /// names the kinds, not a list that is silently empty.
    #[test]
    fn a_mistyped_kind_is_a_usage_error_naming_the_kinds() {
        for cmd in ["list", "groups"] {
            let e = Cli::try_parse_from(["lgsp", "failed", cmd, "--kind", "mapings"])
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(
                e.contains("unknown error kind `mapings`") && e.contains("unroutable, poison"),
                "{cmd}: {e}"
            );
            assert!(Cli::try_parse_from(["lgsp", "failed", cmd, "--kind", "poison"]).is_ok());
        }
    }
}
