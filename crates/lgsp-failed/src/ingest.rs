//! The ingestor: consume `<p>.failed` and `<p>.unrouted`, store each message, ack it only
//! after the commit. While the store is unreachable it stops taking deliveries (they
//! wait, unacknowledged, on the broker: prefetch bounds how many) and retries the same
//! batch with backoff; it never nacks or requeues. Its own broker connection, with its
//! own reconnection, keeps it apart from the router.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use futures_lite::StreamExt;
use lapin::Connection;
use lapin::message::Delivery;
use lapin::options::BasicAckOptions;
use lgsp_amqp::TransportError;
use lgsp_amqp::broker::{self, Broker, Reconnect, SessionEnd, pause};
use lgsp_amqp::names::Names;
use lgsp_amqp::reconnect::Backoff;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::classify::{Incoming, classify};
use lgsp_store::store::Store;

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
    pub broker: Broker,
    pub prefetch: u16,
    pub stats: Arc<IngestStats>,
    /// Set by the router once it has declared the topology. When given, the ingestor
    /// starts consuming only after that: on a fresh broker the failed and unrouted queues
    /// do not exist before, and the broker would refuse the consumer (which the AMQP
    /// client logs as an error).
    pub topology_declared: Option<Arc<AtomicBool>>,
    /// Observes, per new record, the time from its failure to its commit.
    pub lag: Option<prometheus_client::metrics::histogram::Histogram>,
}

/// Largest batch stored in one transaction.
const MAX_BATCH: usize = 256;

impl Ingestor {
    /// Migrate the store, then consume until `shutdown`, reconnecting as needed. Ends
    /// early only on what reconnecting cannot fix (access refused).
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), SessionEnd<TransportError>> {
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
        loop {
            match self.store.migrate().await {
                Ok(()) => break,
                Err(e) => {
                    self.stats.store_ok.store(false, Ordering::SeqCst);
                    warn!(error = %e, "failed-message store not ready; retrying");
                    if !pause(&shutdown, backoff.next_delay()).await {
                        return Ok(());
                    }
                }
            }
        }
        self.stats.store_ok.store(true, Ordering::SeqCst);
        info!(store = %self.store.url(), backend = self.store.backend(), "failed-message store ready");
        if let Some(declared) = &self.topology_declared {
            while !declared.load(Ordering::SeqCst) {
                if !pause(&shutdown, Duration::from_millis(50)).await {
                    return Ok(());
                }
            }
        }
        let ended = self
            .broker
            .keep_connected("lgsp ingestor", Reconnect::WAIT, &shutdown, |conn| {
                self.session(conn, &shutdown)
            })
            .await;
        info!(
            stored = self.stats.stored.load(Ordering::Relaxed),
            duplicates = self.stats.duplicates.load(Ordering::Relaxed),
            "ingestor stopped"
        );
        ended
    }

    /// One broker connection: consume both queues until shutdown (`Ok`) or a broker
    /// error (`Err`). Unacknowledged deliveries return to their queues when it closes.
    async fn session(
        &self,
        conn: Arc<Connection>,
        shutdown: &CancellationToken,
    ) -> Result<(), TransportError> {
        let ch = broker::consuming_channel(&conn, self.prefetch).await?;
        let mut consumers = Vec::new();
        for queue in [self.names.failed(), self.names.unrouted()] {
            // Until the router has declared the topology the queues may not exist yet
            // (NOT_FOUND: reconnect and try again).
            let c = broker::consume(&ch, &queue, &format!("lgsp-ingest-{queue}")).await?;
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
                (q, Some(Err(e))) => {
                    break Err(TransportError::Broker {
                        what: format!("consume {q}"),
                        source: e,
                    });
                }
                (q, None) => {
                    break Err(TransportError::Cancelled {
                        queue: q.to_owned(),
                    });
                }
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
                    let now = lgsp_store::record::now_ms();
                    for (r, is_new) in records.iter().zip(&new) {
                        if let (Some(h), true) = (&self.lag, *is_new) {
                            h.observe(now.saturating_sub(r.failed_at).max(0) as f64 / 1000.0);
                        }
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
                    if !pause(shutdown, backoff.next_delay()).await {
                        return false;
                    }
                }
            }
        }
    }
}
