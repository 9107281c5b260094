//! The failed-message side of `lgsp run`: open the store, start the ingestor, and hand
//! the admin API what it needs. Kept apart from the router's code on purpose: the
//! ingestor has its own broker connection and its own retries.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use lgsp_amqp::names::Names;
use lgsp_core::config::Config;
use lgsp_http::admin::{Admin, Tokens};
use lgsp_store::Store;
use lgsp_store::ingest::{IngestStats, Ingestor};
use lgsp_store::replay::Replayer;
use tokio_util::sync::CancellationToken;

/// The running failed-message side.
pub struct FailedStore {
    pub admin: Arc<Admin>,
    pub store_ok: Arc<AtomicBool>,
    pub ingestor: tokio::task::JoinHandle<()>,
}

/// Open the store (connections are made on demand) and spawn the ingestor; a bad store
/// URL or token hash is a configuration error.
pub fn start(
    config: &Config,
    config_path: &Path,
    shutdown: CancellationToken,
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
        broker_url: config.broker.url.clone(),
        prefetch: config.broker.prefetch,
        stats: stats.clone(),
    };
    let ingestor = tokio::spawn(ingestor.run(shutdown));
    let store_ok = stats.store_ok.clone();
    let admin = Arc::new(Admin {
        store,
        replayer: Arc::new(Replayer::new(config.broker.url.clone(), names)),
        tokens,
    });
    Ok(FailedStore {
        admin,
        store_ok,
        ingestor,
    })
}
