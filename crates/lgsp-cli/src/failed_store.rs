//! The failed-message side of `lgsp run`: open the store, start the ingestor, and hand
//! the admin API what it needs. Kept apart from the router's code on purpose: the
//! ingestor has its own broker connection and its own retries.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use lgsp_amqp::broker::Broker;
use lgsp_amqp::names::Names;
use lgsp_amqp::routes::RouteTable;
use lgsp_core::config::Config;
use lgsp_failed::ingest::{IngestStats, Ingestor};
use lgsp_failed::replay::Replayer;
use lgsp_http::admin::{Admin, Settings, Tokens};
use lgsp_store::Store;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// The running failed-message side.
pub struct FailedStore {
    pub admin: Arc<Admin>,
    pub store_ok: Arc<AtomicBool>,
    /// Ends `false` when the ingestor stopped on what reconnecting cannot fix (it then
    /// stops the whole process: failures could no longer be kept).
    pub ingestor: tokio::task::JoinHandle<bool>,
    pub retention: tokio::task::JoinHandle<()>,
}

/// Open the store (connections are made on demand) and spawn the ingestor; a bad store
/// URL or token hash is a configuration error.
pub fn start(
    config: &Config,
    config_path: &Path,
    topology_declared: Arc<AtomicBool>,
    shutdown: CancellationToken,
    on_fatal: CancellationToken,
    metrics: &lgsp_core::metrics::Metrics,
) -> Result<FailedStore, String> {
    let base = config_path.parent().unwrap_or(Path::new("."));
    let url = lgsp_store::store::resolve_url(&config.store.url, base);
    let store = Arc::new(Store::open(&url).map_err(|e| e.to_string())?);
    let tokens = Tokens::from_config(&config.admin)?;
    let names = Names::new(&config.broker.prefix);
    let stats = Arc::new(IngestStats::default());
    let ingestor = Ingestor {
        store: store.clone(),
        names: names.clone(),
        routes: RouteTable::from_config(config),
        broker: Broker::from_config(&config.broker),
        prefetch: config.broker.prefetch,
        stats: stats.clone(),
        topology_declared: Some(topology_declared),
        lag: Some(metrics.ingest_lag_seconds.clone()),
    };
    let ingestor = {
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let ended = ingestor.run(shutdown).await;
            if let Err(e) = &ended {
                tracing::error!("the failed-message ingestor stopped: {e}");
                on_fatal.cancel();
            }
            ended.is_ok()
        })
    };
    let retention = tokio::spawn(purge_loop(
        store.clone(),
        config.store.retention.get(),
        config
            .tracking
            .enabled
            .then(|| config.tracking.retention.get()),
        shutdown,
    ));
    let store_ok = stats.store_ok.clone();
    let admin = Arc::new(Admin {
        store,
        replayer: Arc::new(
            Replayer::new(
                Broker::from_config(&config.broker),
                names,
                RouteTable::from_config(config),
            )
            .counting_into(metrics.replayed.clone()),
        ),
        tokens,
        settings: Settings::from_config(&config.replay),
    });
    Ok(FailedStore {
        admin,
        store_ok,
        ingestor,
        retention,
    })
}

/// Every so often (an hour, or a retention if shorter, at least a second), purge the
/// replayed and discarded records older than `retention`, and the tracking events older
/// than `tracking` when tracking is on. A store error is logged and tried again next
/// time.
async fn purge_loop(
    store: Arc<Store>,
    retention: Duration,
    tracking: Option<Duration>,
    shutdown: CancellationToken,
) {
    let every = retention
        .min(tracking.unwrap_or(retention))
        .min(Duration::from_secs(3600))
        .max(Duration::from_secs(1));
    let cutoff = |keep: Duration| {
        let keep_ms = i64::try_from(keep.as_millis()).unwrap_or(i64::MAX);
        lgsp_store::record::now_ms().saturating_sub(keep_ms)
    };
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        if !store.is_migrated() {
            continue;
        }
        if let Some(keep) = tracking {
            match store.purge_events(cutoff(keep)).await {
                Ok(0) => {}
                Ok(n) => info!(purged = n, retention = ?keep, "purged old tracking events"),
                Err(e) => warn!(error = %e, "cannot purge old tracking events; trying again later"),
            }
        }
        match store.purge(cutoff(retention), "lgsp (retention)").await {
            Ok(0) => {}
            Ok(n) => {
                info!(purged = n, retention = ?retention, "purged replayed and discarded failed messages")
            }
            Err(e) => warn!(error = %e, "cannot purge old failed messages; trying again later"),
        }
    }
}
