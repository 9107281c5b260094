//! `lgsp run`: serve HTTP, connect to RabbitMQ (waiting for it), declare the topology,
//! route until SIGINT/SIGTERM; reconnect when the connection is lost.

use std::sync::Arc;
use std::time::Duration;

use lgsp_amqp::broker::{Reconnect, SessionEnd};
use lgsp_amqp::reconnect::Recovery;
use lgsp_core::tracking::Tracker;
use lgsp_http::AppState;
use lgsp_http::gateway::Gateway;
use lgsp_router::Router;
use lgsp_store::tracking::Writer;
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

pub async fn run(args: &RunArgs) -> u8 {
    let Some(loaded) = load(&args.config.config) else {
        return exit::USAGE;
    };
    crate::logging::init_with(&loaded.config.config.log);
    run_async(args, loaded).await
}

async fn run_async(args: &RunArgs, loaded: crate::load::Loaded) -> u8 {
    let config_path = loaded.config.path;
    let config = loaded.config.config;
    let adapters = Arc::new(loaded.adapters);
    let catalog = Arc::new(lgsp_mapping::catalog::build(&config, &adapters));
    let mut router = match Router::build(&config, adapters) {
        Ok(r) => r,
        Err(e) => {
            error!("{e}");
            return exit::USAGE;
        }
    };
    // Shutdown is ordered: the signal stops intake and the router drains; then the
    // ingestor stops (it stores what the drain sent to the failed path); then HTTP.
    let shutdown = CancellationToken::new();
    let ingest_stop = CancellationToken::new();
    let http_stop = CancellationToken::new();
    spawn_signal_handler(shutdown.clone());
    let failed = match crate::failed_store::start(
        &config,
        &config_path,
        router.ready.clone(),
        ingest_stop.clone(),
        shutdown.clone(),
        &router.metrics,
    ) {
        Ok(f) => f,
        Err(e) => {
            error!("{e}");
            return exit::USAGE;
        }
    };
    // Tracking: the router and the gateway hand events to a writer thread.
    let tracking = if config.tracking.enabled {
        let (tracker, rx) = Tracker::new(
            lgsp_core::tracking::QUEUE,
            router.metrics.tracking_dropped.clone(),
        );
        match Writer::spawn(
            failed.admin.store.clone(),
            rx,
            tokio::runtime::Handle::current(),
        ) {
            Ok(w) => Some((tracker, w)),
            Err(e) => {
                error!(error = %e, "cannot start the tracking writer; set tracking.enabled: false to run without it");
                return exit::USAGE;
            }
        }
    } else {
        None
    };
    let tracker = tracking
        .as_ref()
        .map_or_else(Tracker::off, |(t, _)| t.clone());
    router.tracker = tracker.clone();
    // The gateway publishes on its own connection; it is intake, so it stops with the
    // signal, before the router drains.
    let (publisher_tx, publisher_rx) = tokio::sync::watch::channel(None);
    let mut gateway = Gateway::new(&config, publisher_rx, Some(failed.admin.store.clone()));
    gateway.tracker = tracker;
    let gateway = Arc::new(gateway);
    let gateway_task = (!config.apps.is_empty()).then(|| {
        tokio::spawn(lgsp_http::gateway::keep_publisher(
            lgsp_amqp::broker::Broker::from_config(&config.broker),
            config.broker.confirm_window,
            publisher_tx,
            shutdown.clone(),
        ))
    });
    let state = AppState {
        broker_ready: router.ready.clone(),
        admin: Some(failed.admin.clone()),
        store_ok: Some(failed.store_ok.clone()),
        gateway: Some(gateway),
        catalog: Some(catalog),
        metrics: Some(router.metrics.clone()),
        body: lgsp_http::BodyLimits::from_config(&config),
    };
    let (addr, http) = match lgsp_http::serve(&config.http, state, http_stop.clone()).await {
        Ok(x) => x,
        Err(e) => {
            error!("{e}");
            return exit::USAGE;
        }
    };
    info!(%addr, "http listening");
    println!("http listening on {addr}");

    let broker = lgsp_amqp::broker::Broker::from_config(&config.broker);
    if let (Some(m), Some(first)) = (&config.broker.management_url, broker.first())
        && let Err(e) = lgsp_amqp::guard::check(m, first, &router.topology()).await
    {
        error!("{e}");
        return exit::USAGE;
    }
    let policy = Reconnect {
        give_up_when_unreachable: args.no_wait,
        hint: "lgsp keeps retrying (pass --no-wait to exit with code 3 instead); ",
    };
    let routed = broker
        .keep_connected("lgsp run", policy, &shutdown, |conn| {
            let (router, shutdown) = (&router, shutdown.clone());
            async move { router.run(&conn, shutdown, args.drain).await }
        })
        .await;
    let code = match routed {
        Ok(()) => exit::OK,
        Err(SessionEnd::Unreachable(e)) if e.recovery() == Recovery::Retry => {
            eprintln!("{e}");
            exit::UNREACHABLE
        }
        Err(e) => {
            error!("{e}");
            exit::USAGE
        }
    };
    shutdown.cancel();
    if let Some(g) = gateway_task {
        let _ = g.await;
    }
    ingest_stop.cancel();
    let ingested = failed.ingestor.await.unwrap_or(false);
    if let Some((_, writer)) = tracking
        && !writer.finish(Duration::from_secs(10)).await
    {
        warn!("the tracking writer did not finish within 10 s; the last events are lost");
    }
    let _ = failed.retention.await;
    http_stop.cancel();
    let _ = http.await;
    if code == exit::OK && !ingested {
        return exit::USAGE;
    }
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
