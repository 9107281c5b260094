//! `lgsp run`: serve HTTP, connect to RabbitMQ (waiting for it), declare the topology,
//! route until SIGINT/SIGTERM; reconnect when the connection is lost.

use std::sync::Arc;
use std::time::Duration;

use lgsp_amqp::reconnect::{Backoff, Recovery, classify};
use lgsp_http::AppState;
use lgsp_router::Router;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::exit;
use crate::load::load;

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    config: crate::ConfigArg,
    /// Exit with code 3 instead of waiting when RabbitMQ is unreachable.
    #[arg(long)]
    no_wait: bool,
    /// How long in-flight messages may take to settle at shutdown.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    drain: Duration,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    s.parse::<lgsp_core::config::Duration>().map(|d| d.get())
}

pub fn run(args: &RunArgs) -> u8 {
    crate::logging::init();
    let Some(loaded) = load(&args.config.config) else {
        return exit::USAGE;
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            error!(error = %e, "cannot start the async runtime");
            return exit::FAILED;
        }
    };
    rt.block_on(run_async(args, loaded))
}

async fn run_async(args: &RunArgs, loaded: crate::load::Loaded) -> u8 {
    let config_path = loaded.config.path;
    let config = loaded.config.config;
    let adapters = Arc::new(loaded.adapters);
    let router = match Router::build(&config, adapters) {
        Ok(r) => r,
        Err(e) => {
            error!("{e}");
            return exit::USAGE;
        }
    };
    let shutdown = CancellationToken::new();
    spawn_signal_handler(shutdown.clone());
    let failed = match crate::failed_store::start(
        &config,
        &config_path,
        router.ready.clone(),
        shutdown.clone(),
    ) {
        Ok(f) => f,
        Err(e) => {
            error!("{e}");
            return exit::USAGE;
        }
    };
    let state = AppState {
        broker_ready: router.ready.clone(),
        admin: Some(failed.admin.clone()),
        store_ok: Some(failed.store_ok.clone()),
    };
    let (addr, http) = match lgsp_http::serve(&config.http.listen, state, shutdown.clone()).await {
        Ok(x) => x,
        Err(e) => {
            error!(listen = %config.http.listen, error = %e, "cannot listen; change http.listen");
            return exit::USAGE;
        }
    };
    info!(%addr, "http listening");
    println!("http listening on {addr}");

    let urls: Vec<_> = if config.broker.urls.is_empty() {
        vec![config.broker.url.clone()]
    } else {
        config.broker.urls.clone()
    };
    if let Some(m) = &config.broker.management_url
        && let Err(e) = lgsp_amqp::guard::check(m, &urls[0], &router.topology()).await
    {
        error!("{e}");
        return exit::USAGE;
    }
    let mut backoff = Backoff::default();
    let mut told = false;
    let code = loop {
        if shutdown.is_cancelled() {
            break exit::OK;
        }
        let conn = match lgsp_amqp::connect_any(&urls, "lgsp run").await {
            Ok((c, i)) => {
                info!(broker = %urls[i], "connected");
                backoff.reset();
                told = false;
                c
            }
            Err(e) => {
                if args.no_wait {
                    eprintln!("{e}");
                    break exit::UNREACHABLE;
                }
                let wait = backoff.next_delay();
                if told {
                    warn!("broker still unreachable; retrying in {wait:?}");
                } else {
                    warn!(
                        "{e}\nlgsp keeps retrying (pass --no-wait to exit with code 3 instead); retrying in {wait:?}"
                    );
                    told = true;
                }
                tokio::select! {
                    _ = shutdown.cancelled() => break exit::OK,
                    _ = tokio::time::sleep(wait) => {}
                }
                continue;
            }
        };
        let result = router.run(&conn, shutdown.clone(), args.drain).await;
        let _ = conn.close(200, "bye".into()).await;
        match result {
            Ok(()) => break exit::OK,
            Err(e) if classify(&e.to_string()) == Recovery::Fatal => {
                error!("{e}");
                break exit::USAGE;
            }
            Err(e) => {
                let wait = backoff.next_delay();
                warn!("{e}; reconnecting in {wait:?}");
                tokio::select! {
                    _ = shutdown.cancelled() => break exit::OK,
                    _ = tokio::time::sleep(wait) => {}
                }
            }
        }
    };
    shutdown.cancel();
    let _ = http.await;
    let _ = failed.ingestor.await;
    let _ = failed.retention.await;
    code
}

/// First SIGINT/SIGTERM: drain and stop. Second: exit at once.
fn spawn_signal_handler(shutdown: CancellationToken) {
    tokio::spawn(async move {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    warn!(error = %e, "cannot listen for SIGTERM");
                    return;
                }
            };
        for n in 0..2 {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            if n == 0 {
                info!(
                    "stopping: no new messages; settling those in flight (signal again to exit at once)"
                );
                shutdown.cancel();
            } else {
                warn!("second signal: exiting now; unacknowledged messages stay in their queues");
                std::process::exit(130);
            }
        }
    });
}
