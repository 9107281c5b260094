//! Replay one stored message: republish it to the input queue of its routes' adapter
//! through the default exchange (routing key = the queue's name), so it reaches exactly
//! those routes and not every queue bound to its routing key. Same `message_id`,
//! `lgsp-replay-of`, attempt count reset, `lgsp-targets` = the targets still to deliver
//! (qualified by their route), `lgsp-original-exchange` and `-routing-key` = where it was
//! first published. The record becomes `replayed` only after the broker confirmed the
//! publish.
//!
//! A webhook delivery's record holds the mapped message that was POSTed: it goes back
//! into its webhook queue (its original exchange and routing key).
//!
//! An unroutable message has no route: it is republished to its original exchange and
//! routing key, where a route added since may now bind it.

use lapin::Connection;
use lgsp_amqp::broker::Broker;
use lgsp_amqp::headers;
use lgsp_amqp::names::Names;
use lgsp_amqp::publish::{PublishError, Publisher};
use lgsp_amqp::routes::{self, RouteTable};
use serde::Serialize;
use tokio::sync::Mutex;
use tracing::info;

use std::time::Duration;

use crate::fields;
use lgsp_store::record::{Failure, Filter, Replay, Status};
use lgsp_store::store::{Store, StoreError};

/// Headers describing a failure or a broker dead-lettering: not carried into a replay.
const DROPPED_HEADERS: &[&str] = &[
    headers::FAILURE_ID,
    headers::ERROR_KIND,
    headers::ERROR_CODE,
    headers::ERROR,
    headers::FAILED_AT,
    headers::ORIGINAL_EXCHANGE,
    headers::ORIGINAL_ROUTING_KEY,
    headers::TARGETS,
    headers::ATTEMPT,
    headers::ROUTE,
    headers::REPLAY_OF,
    "x-death",
    "x-first-death-exchange",
    "x-first-death-queue",
    "x-first-death-reason",
    "x-last-death-exchange",
    "x-last-death-queue",
    "x-last-death-reason",
    "x-delivery-count",
];

/// Why a replay did not happen.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    #[error("no failed message with id {0}")]
    NotFound(i64),
    #[error("failed message {id} is {status}; only failed messages are replayed")]
    NotReplayable { id: i64, status: &'static str },
    #[error("failed message {0} is being replayed by another operator right now")]
    Claimed(i64),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "failed message {id} was meant for route(s) {routes}, none of which is configured any more; add the route back (or a route of the same adapter under that name), or discard the message"
    )]
    RouteGone { id: i64, routes: String },
    #[error("cannot reach RabbitMQ to replay: {0}")]
    Broker(String),
    #[error("the broker did not take the replay: {0}")]
    Refused(PublishError),
    #[error(
        "failed message {id} was replayed (confirmed by the broker) but its status could not be recorded: {source}"
    )]
    NotRecorded {
        id: i64,
        #[source]
        source: StoreError,
    },
}

/// The outcome of a replay.
#[derive(Debug, Clone, Serialize)]
pub struct Replayed {
    pub id: i64,
    pub message_id: String,
    pub replay_of: String,
    pub exchange: String,
    pub routing_key: String,
    pub targets: Vec<String>,
    pub edited: bool,
    pub status: Status,
}

/// How long a replay holds the records it publishes (see [`Store::claim_failed`]): past
/// it, records a replay claimed but never recorded (its process died) can be replayed
/// again.
pub const CLAIM_LEASE: std::time::Duration = std::time::Duration::from_secs(120);

/// Publishes replays; connects to the broker on first use and again after a failure.
pub struct Replayer {
    broker: Broker,
    names: Names,
    routes: RouteTable,
    link: Mutex<Option<(Connection, Publisher)>>,
    /// When the next bulk batch may start (the pace).
    next_slot: Mutex<tokio::time::Instant>,
    /// Held from reading a record's status to recording its replay: two replays in
    /// this process (a bulk batch still running for a client that went away, and the
    /// rerun it started) never pick the same still-`failed` record.
    one_at_a_time: Mutex<()>,
    /// Counts every replayed record (the process's `lgsp_messages_replayed_total`).
    replayed: prometheus_client::metrics::counter::Counter,
}

impl std::fmt::Debug for Replayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replayer")
            .field("broker", &self.broker)
            .finish()
    }
}

impl Replayer {
    pub fn new(broker: Broker, names: Names, routes: RouteTable) -> Replayer {
        Replayer {
            broker,
            names,
            routes,
            link: Mutex::new(None),
            next_slot: Mutex::new(tokio::time::Instant::now()),
            one_at_a_time: Mutex::new(()),
            replayed: Default::default(),
        }
    }

    /// Count replays into `counter` (a metric of the process).
    pub fn counting_into(mut self, counter: prometheus_client::metrics::counter::Counter) -> Self {
        self.replayed = counter;
        self
    }

    async fn publisher(&self) -> Result<Publisher, ReplayError> {
        let mut link = self.link.lock().await;
        if let Some((c, p)) = link.as_ref()
            && c.status().connected()
            && p.is_connected()
        {
            return Ok(p.clone());
        }
        let conn = self
            .broker
            .connect("lgsp replay")
            .await
            .map_err(|e| ReplayError::Broker(e.to_string()))?;
        let p = Publisher::open(&conn, 1000)
            .await
            .map_err(|e| ReplayError::Broker(e.to_string()))?;
        *link = Some((conn, p.clone()));
        Ok(p)
    }

    /// Where a record goes and with which properties (headers rebuilt as the module
    /// doc says).
    fn prepare(&self, f: &Failure) -> Result<Prepared, ReplayError> {
        let listed = f
            .summary
            .route
            .as_deref()
            .map(routes::list)
            .unwrap_or_default();
        // A webhook delivery's record holds what was POSTed: it goes back into its
        // webhook queue, not through its route's mapping again.
        let webhook = f.original_exchange == self.names.webhook_exchange();
        let (exchange, routing_key) = if listed.is_empty() || webhook {
            (f.original_exchange.clone(), f.original_routing_key.clone())
        } else {
            let adapter = listed
                .iter()
                .find_map(|r| self.routes.get(r))
                .map(|r| r.adapter.clone())
                .ok_or_else(|| ReplayError::RouteGone {
                    id: f.id,
                    routes: listed.join(","),
                })?;
            (String::new(), self.names.input_queue(&adapter))
        };
        // Ids stored before they named their route belong to the record's one route.
        let targets: Vec<String> = f
            .targets
            .iter()
            .map(|t| match (routes::split(t), listed.as_slice()) {
                ((None, target), [route]) => routes::qualify(route, target),
                _ => t.clone(),
            })
            .collect();
        let h = fields::json_to_table(&f.headers);
        let mut kept = lapin::types::FieldTable::default();
        for (k, v) in h.inner() {
            if !DROPPED_HEADERS.contains(&k.as_str()) {
                kept.insert(k.clone(), v.clone());
            }
        }
        headers::set(&mut kept, headers::REPLAY_OF, f.summary.failure_id.as_str());
        headers::set_int(&mut kept, headers::ATTEMPT, 0);
        if !listed.is_empty() {
            headers::set(&mut kept, headers::ROUTE, listed.join(","));
            headers::set(
                &mut kept,
                headers::ORIGINAL_EXCHANGE,
                f.original_exchange.as_str(),
            );
            headers::set(
                &mut kept,
                headers::ORIGINAL_ROUTING_KEY,
                f.original_routing_key.as_str(),
            );
        }
        if !targets.is_empty() {
            headers::set(&mut kept, headers::TARGETS, targets.join(","));
        }
        let props = fields::replay_properties(&f.properties)
            .with_message_id(f.summary.message_id.as_str().into())
            .with_headers(kept);
        Ok(Prepared {
            exchange,
            routing_key,
            targets,
            props,
        })
    }

    /// Wait for the pace: `n` messages at `rate` per second, shared by every bulk
    /// replay of this process (the broker and the routes are shared too).
    async fn pace(&self, n: usize, rate: u32) {
        let wait = {
            let mut next = self.next_slot.lock().await;
            let now = tokio::time::Instant::now();
            let start = (*next).max(now);
            *next = start + Duration::from_secs_f64(n as f64 / f64::from(rate.max(1)));
            start - now
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }

    /// Replay record `id`, with `body` instead of the original when given (the original
    /// stays in the store). `actor` is recorded in the replay history.
    pub async fn replay(
        &self,
        store: &Store,
        id: i64,
        body: Option<Vec<u8>>,
        actor: &str,
    ) -> Result<Replayed, ReplayError> {
        self.replay_noted(store, id, body, actor, "").await
    }

    /// As [`Replayer::replay`], with a note for the audit entry.
    pub async fn replay_noted(
        &self,
        store: &Store,
        id: i64,
        body: Option<Vec<u8>>,
        actor: &str,
        note: &str,
    ) -> Result<Replayed, ReplayError> {
        let _turn = self.one_at_a_time.lock().await;
        let f = store.get(id).await?.ok_or(ReplayError::NotFound(id))?;
        if f.summary.status != Status::Failed {
            return Err(ReplayError::NotReplayable {
                id,
                status: f.summary.status.as_str(),
            });
        }
        // Another replica may be replaying it right now.
        if !store.claim_one(id, CLAIM_LEASE).await? {
            return Err(ReplayError::Claimed(id));
        }
        let published = async {
            let Prepared {
                exchange,
                routing_key,
                targets,
                props,
            } = self.prepare(&f)?;
            let sent = body.as_deref().unwrap_or(&f.body);
            let publisher = self.publisher().await?;
            if let Err(e) = publisher
                .publish_confirmed(&exchange, &routing_key, sent, props)
                .await
            {
                if matches!(e, PublishError::Broker { .. }) {
                    *self.link.lock().await = None;
                    return Err(ReplayError::Broker(e.to_string()));
                }
                return Err(ReplayError::Refused(e));
            }
            Ok((exchange, routing_key, targets))
        };
        let sent_ms = lgsp_store::record::now_ms();
        let (exchange, routing_key, targets) = match published.await {
            Ok(p) => p,
            Err(e) => {
                // Not published: free for the next try at once.
                let _ = store.release(&[id]).await;
                return Err(e);
            }
        };
        let replay = Replay {
            failed_id: id,
            actor: actor.to_owned(),
            exchange: exchange.clone(),
            routing_key: routing_key.clone(),
            targets: targets.clone(),
            edited: body.is_some(),
            edited_body: body,
            note: note.to_owned(),
            sent_ms,
            ..Replay::default()
        };
        let original = replay.edited.then(|| f.body.clone());
        store
            .record_replays(&[(id, replay.clone(), original)], None)
            .await
            .map_err(|source| ReplayError::NotRecorded { id, source })?;
        self.replayed.inc();
        info!(id, message_id = %f.summary.message_id, failure_id = %f.summary.failure_id, %actor, edited = replay.edited, "replayed");
        Ok(Replayed {
            id,
            message_id: f.summary.message_id,
            replay_of: f.summary.failure_id,
            exchange,
            routing_key,
            targets,
            edited: replay.edited,
            status: Status::Replayed,
        })
    }

    /// One batch of a bulk replay: the next `batch_size` records still `failed` that
    /// match `filter`, paced at `rate` messages/s, published with pipelined confirms,
    /// then recorded (and audited) in one transaction. Call it again until `remaining`
    /// is 0; after an interruption the next call picks up what is still unreplayed.
    ///
    /// Run it in a task of its own when the caller may be cancelled (an HTTP handler
    /// whose client went away): cancelled between the confirms and the commit, the
    /// batch would be delivered but still `failed`, and delivered again by the next run.
    pub async fn replay_batch(
        &self,
        store: &Store,
        filter: &Filter,
        batch_size: u32,
        rate: u32,
        actor: &str,
        note: &str,
    ) -> Result<Batch, ReplayError> {
        let _turn = self.one_at_a_time.lock().await;
        let records = store.claim_failed(filter, batch_size, CLAIM_LEASE).await?;
        if records.is_empty() {
            return Ok(Batch::default());
        }
        self.pace(records.len(), rate).await;
        let publisher = self.publisher().await?;
        let sent_ms = lgsp_store::record::now_ms();
        let mut pending = Vec::with_capacity(records.len());
        let mut broken = None;
        let mut refused = Vec::new();
        for f in &records {
            let Prepared {
                exchange,
                routing_key,
                targets,
                props,
            } = match self.prepare(f) {
                Ok(p) => p,
                Err(e) => {
                    refused.push(Refused {
                        id: f.id,
                        error: e.to_string(),
                    });
                    continue;
                }
            };
            match publisher
                .publish(&exchange, &routing_key, &f.body, props)
                .await
            {
                Ok(p) => pending.push((f, exchange, routing_key, targets, p)),
                Err(e) => {
                    broken = Some(e.to_string());
                    break;
                }
            }
        }
        let mut confirmed = Vec::with_capacity(pending.len());
        for (f, exchange, routing_key, targets, p) in pending {
            match p.wait().await {
                Ok(()) => confirmed.push((
                    f.id,
                    Replay {
                        failed_id: f.id,
                        actor: actor.to_owned(),
                        exchange,
                        routing_key,
                        targets,
                        sent_ms,
                        ..Replay::default()
                    },
                    None,
                )),
                Err(e @ PublishError::Broker { .. }) => broken = Some(e.to_string()),
                Err(e) => refused.push(Refused {
                    id: f.id,
                    error: e.to_string(),
                }),
            }
        }
        // What was not published is free for the next try at once (the rest stays
        // claimed until recorded as replayed).
        let published: std::collections::HashSet<i64> = confirmed.iter().map(|c| c.0).collect();
        let unpublished: Vec<i64> = records
            .iter()
            .map(|f| f.id)
            .filter(|id| !published.contains(id))
            .collect();
        if !unpublished.is_empty() {
            store.release(&unpublished).await?;
        }
        // Failpoint: the process dies after the confirms, before the commit.
        lgsp_store::failpoint::crash_point("bulk_before_commit");
        let replayed = match store.record_replays(&confirmed, Some(note)).await {
            Ok(_) => {
                self.replayed.inc_by(confirmed.len() as u64);
                confirmed.iter().map(|(id, _, _)| *id).collect::<Vec<_>>()
            }
            Err(source) => {
                return Err(ReplayError::NotRecorded {
                    id: confirmed.first().map_or(0, |c| c.0),
                    source,
                });
            }
        };
        if let Some(b) = broken {
            *self.link.lock().await = None;
            if replayed.is_empty() {
                return Err(ReplayError::Broker(b));
            }
        }
        let remaining = store.failed_ids(filter, None).await?.len() as u64;
        info!(%actor, replayed = replayed.len(), refused = refused.len(), remaining, "bulk replay batch");
        Ok(Batch {
            replayed,
            refused,
            remaining,
        })
    }
}

/// Where a replay goes, and as what.
struct Prepared {
    exchange: String,
    routing_key: String,
    targets: Vec<String>,
    props: lapin::BasicProperties,
}

/// A record the broker did not take in a bulk batch (it stays `failed`).
#[derive(Debug, Clone, Serialize)]
pub struct Refused {
    pub id: i64,
    pub error: String,
}

/// The outcome of one bulk batch.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Batch {
    /// Records replayed and recorded in this batch.
    pub replayed: Vec<i64>,
    /// Records the broker refused (unroutable, queue full); still `failed`.
    pub refused: Vec<Refused>,
    /// Records still `failed` that match the selection.
    pub remaining: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bulk_batches_keep_to_the_pace() {
        let r = Replayer::new(
            Broker::new(vec![lgsp_core::config::SecretUrl::new(
                "amqp://guest:guest@127.0.0.1:1/%2f",
            )]),
            Names::new("lgsp"),
            RouteTable::default(),
        );
        let t0 = std::time::Instant::now();
        // 20 messages at 100/s: the first batch at once, each next one 200 ms later.
        for _ in 0..3 {
            r.pace(20, 100).await;
        }
        let took = t0.elapsed();
        assert!(took >= Duration::from_millis(390), "{took:?}");
        assert!(took < Duration::from_millis(1500), "{took:?}");
    }

    /// The store finds replays by this header without knowing the broker's names.
    #[test]
    fn the_store_reads_the_replay_header_the_replayer_writes() {
        assert_eq!(lgsp_store::store::REPLAY_OF_HEADER, headers::REPLAY_OF);
    }
}
