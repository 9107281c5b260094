//! The ingestor: consume `<p>.failed` and `<p>.unrouted`, store each message, ack it only
//! after the commit. While the store is unreachable it stops taking deliveries (they
//! wait, unacknowledged, on the broker: prefetch bounds how many) and retries the same
//! batch with backoff; it never nacks or requeues. Its own broker connection, with its
//! own reconnection, keeps it apart from the router.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use futures_lite::StreamExt;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions};
use lapin::types::FieldTable;
use lgsp_amqp::names::Names;
use lgsp_core::config::SecretUrl;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::classify::{Incoming, classify};
use crate::store::Store;

/// What the ingestor did, for logs, `/readyz` and tests.
#[derive(Debug, Default)]
pub struct IngestStats {
    /// New records stored.
    pub stored: AtomicU64,
    /// Deliveries whose failure was already stored (acked, nothing written).
    pub duplicates: AtomicU64,
    /// The store answered the last time it was asked (shared with `/readyz`).
    pub store_ok: Arc<AtomicBool>,
}

/// The ingestor of one bus.
pub struct Ingestor {
    pub store: Arc<Store>,
    pub names: Names,
    /// Which routes a message dead-lettered from an input queue was meant for.
    pub routes: lgsp_amqp::routes::RouteTable,
    pub broker_url: SecretUrl,
    pub prefetch: u16,
    pub stats: Arc<IngestStats>,
    /// Set by the router once it has declared the topology. When given, the ingestor
    /// starts consuming only after that: on a fresh broker the failed and unrouted queues
    /// do not exist before, and the broker would refuse the consumer (which the AMQP
    /// client logs as an error).
    pub topology_declared: Option<Arc<AtomicBool>>,
}

/// Backoff between tries: doubles from `start` up to `max`.
#[derive(Debug, Clone, Copy)]
struct Backoff {
    next: Duration,
    start: Duration,
    max: Duration,
}

impl Backoff {
    fn new(start: Duration, max: Duration) -> Backoff {
        Backoff {
            next: start,
            start,
            max,
        }
    }
    fn step(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(self.max);
        d
    }
    fn reset(&mut self) {
        self.next = self.start;
    }
}

/// Sleep `d` unless `shutdown` comes first; `false` if it did.
async fn pause(shutdown: &CancellationToken, d: Duration) -> bool {
    tokio::select! {
        _ = shutdown.cancelled() => false,
        _ = tokio::time::sleep(d) => true,
    }
}

/// Largest batch stored in one transaction.
const MAX_BATCH: usize = 256;

impl Ingestor {
    /// Migrate the store, then consume until `shutdown`, reconnecting as needed.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
        loop {
            match self.store.migrate().await {
                Ok(()) => break,
                Err(e) => {
                    self.stats.store_ok.store(false, Ordering::SeqCst);
                    warn!(error = %e, "failed-message store not ready; retrying");
                    if !pause(&shutdown, backoff.step()).await {
                        return;
                    }
                }
            }
        }
        self.stats.store_ok.store(true, Ordering::SeqCst);
        info!(store = %self.store.url(), backend = self.store.backend(), "failed-message store ready");
        backoff.reset();
        if let Some(declared) = &self.topology_declared {
            while !declared.load(Ordering::SeqCst) {
                if !pause(&shutdown, Duration::from_millis(50)).await {
                    return;
                }
            }
        }
        while !shutdown.is_cancelled() {
            match self.session(&shutdown).await {
                Ok(()) => break,
                Err(e) => {
                    warn!(error = %e, "ingestor: broker session ended; reconnecting");
                    if !pause(&shutdown, backoff.step()).await {
                        break;
                    }
                }
            }
        }
        info!(
            stored = self.stats.stored.load(Ordering::Relaxed),
            duplicates = self.stats.duplicates.load(Ordering::Relaxed),
            "ingestor stopped"
        );
    }

    /// One broker connection: consume both queues until shutdown (`Ok`) or a broker
    /// error (`Err`). Unacknowledged deliveries return to their queues when it closes.
    async fn session(&self, shutdown: &CancellationToken) -> Result<(), String> {
        let conn = lgsp_amqp::connect(&self.broker_url, "lgsp ingestor")
            .await
            .map_err(|e| e.to_string())?;
        let ch = conn.create_channel().await.map_err(|e| e.to_string())?;
        ch.basic_qos(self.prefetch.max(1), BasicQosOptions::default())
            .await
            .map_err(|e| e.to_string())?;
        let mut consumers = Vec::new();
        for queue in [self.names.failed(), self.names.unrouted()] {
            // Until the router has declared the topology the queues may not exist yet.
            let c = ch
                .basic_consume(
                    queue.as_str().into(),
                    format!("lgsp-ingest-{queue}").into(),
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                )
                .await
                .map_err(|e| format!("consume {queue}: {e}"))?;
            consumers.push((queue, c));
        }
        let (failed_q, mut failed) = consumers.remove(0);
        let (unrouted_q, mut unrouted) = consumers.remove(0);
        info!(queues = %format!("{failed_q}, {unrouted_q}"), "ingesting");
        let result = loop {
            let first = tokio::select! {
                _ = shutdown.cancelled() => break Ok(()),
                d = failed.next() => (failed_q.as_str(), d),
                d = unrouted.next() => (unrouted_q.as_str(), d),
            };
            let mut batch = match first {
                (q, Some(Ok(d))) => vec![(q, d)],
                (_, Some(Err(e))) => break Err(e.to_string()),
                (q, None) => break Err(format!("the broker cancelled the consumer of {q}")),
            };
            // Take whatever else is already here, without waiting, into the same commit.
            while batch.len() < MAX_BATCH {
                let more = match futures_lite::future::poll_once(failed.next()).await {
                    Some(Some(Ok(d))) => Some((failed_q.as_str(), d)),
                    _ => match futures_lite::future::poll_once(unrouted.next()).await {
                        Some(Some(Ok(d))) => Some((unrouted_q.as_str(), d)),
                        _ => None,
                    },
                };
                match more {
                    Some(x) => batch.push(x),
                    None => break,
                }
            }
            if !self.store_batch(&batch, shutdown).await {
                break Ok(()); // shutdown while the store was away: the batch stays queued
            }
            for (_, d) in batch {
                if let Err(e) = d.acker.ack(BasicAckOptions::default()).await {
                    // Stored but not acked: redelivered later and recognised as a duplicate.
                    debug!(error = %e, "could not ack a stored failure");
                }
            }
        };
        // Consumers first: dropped after the connection closes, they would close their
        // channel in the background and the AMQP client would log a connection error.
        drop((failed, unrouted));
        let _ = ch.close(200, "ingestor stopping".into()).await;
        let _ = conn.close(200, "ingestor stopping".into()).await;
        result
    }

    /// Store a batch, retrying while the store is unreachable; `false` if shutdown came first.
    async fn store_batch(&self, batch: &[(&str, Delivery)], shutdown: &CancellationToken) -> bool {
        let records: Vec<_> = batch
            .iter()
            .map(|(q, d)| {
                classify(
                    &self.names,
                    &self.routes,
                    Incoming {
                        queue: q,
                        exchange: d.exchange.as_str(),
                        routing_key: d.routing_key.as_str(),
                        properties: &d.properties,
                        body: &d.data,
                    },
                )
            })
            .collect();
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        let mut failures = 0u32;
        loop {
            match self.store.insert(&records).await {
                Ok(new) => {
                    if failures > 0 {
                        info!(
                            after_tries = failures + 1,
                            "failed-message store is back; ingesting again"
                        );
                    }
                    self.stats.store_ok.store(true, Ordering::SeqCst);
                    let n = new.iter().filter(|x| **x).count() as u64;
                    self.stats.stored.fetch_add(n, Ordering::Relaxed);
                    self.stats
                        .duplicates
                        .fetch_add(new.len() as u64 - n, Ordering::Relaxed);
                    for (r, is_new) in records.iter().zip(&new) {
                        debug!(message_id = %r.message_id, failure_id = %r.failure_id, kind = %r.error_kind, new = is_new, "stored");
                    }
                    return true;
                }
                Err(e) => {
                    self.stats.store_ok.store(false, Ordering::SeqCst);
                    failures += 1;
                    if failures == 1 || failures.is_power_of_two() {
                        warn!(error = %e, tries = failures, waiting = batch.len(), "cannot store failed messages; consumption paused, nothing is acked until the store is back");
                    }
                    if !pause(shutdown, backoff.step()).await {
                        return false;
                    }
                }
            }
        }
    }
}
