//! Route pipelines: consume each adapter's input queue, decode and map each message once
//! with that adapter, publish every output to every target of every route that wants
//! it, with publisher confirms, and ack the input only after all of them are confirmed,
//! or after what is left was confirmed into the retry or failed path. See `design.md`
//! beside this file for the acknowledgement rules.
//!
//! - [`Router::build`]: resolve routes and targets against the adapters (no I/O).
//! - [`Router::run`]: declare the topology, consume, process concurrently up to prefetch,
//!   drain on shutdown.
//! - `decide`: what to do with an input once its targets answered (a pure function).
//! - [`webhook`]: the deliverer of webhook targets (one consumer per target, POST,
//!   retry or failure record), and the signature receivers check.
//! - [`failpoint`]: crash points for at-least-once tests.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod decide;
pub mod failpoint;
mod message;
mod pipeline;
mod settle;
pub mod webhook;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use futures_lite::StreamExt;
use lgsp_amqp::TransportError;
use lgsp_amqp::inbound::Inbound;
use lgsp_amqp::names::Names;
use lgsp_amqp::publish::Publisher;
use lgsp_amqp::routes::{RouteTable, qualify};
use lgsp_amqp::topology::{self, TopologySpec};
use lgsp_core::agreement::Agreements;
use lgsp_core::apps::{Apps, Denied};
use lgsp_core::config::Config;
use lgsp_core::metrics::Metrics;
use lgsp_core::tracking::Tracker;
use lgsp_mapping::decode::Limits;
use lgsp_mapping::dsl::Adapters;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

/// A target resolved at build time.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// Stable id used in `lgsp-targets`, qualified by the route:
    /// `<route>/exchange:<name>[/<key>]` or `<route>/app:<app>`.
    pub id: String,
    pub exchange: String,
    /// Fixed routing key; `None`: the output's canonical event, else the input's key.
    pub routing_key: Option<String>,
    /// Outbound mapping `(adapter, mapping)`.
    pub map: Option<(String, String)>,
    /// Only outputs where this path selects a value go to this target.
    pub when: Option<lgsp_mapping::dsl::path::CompiledPath>,
    /// The application or webhook receiving it, whose agreements decide which fields
    /// it gets; `None` for an exchange.
    pub receiver: Option<String>,
    /// For a webhook target, its endpoint (the target publishes to its queue).
    pub webhook: Option<Arc<webhook::Endpoint>>,
}

#[derive(Debug, Clone)]
pub(crate) struct Route {
    pub name: String,
    pub binding: String,
    pub targets: Vec<Target>,
    /// Tries in all (first delivery included) before the failed path.
    pub attempts: u32,
    /// Waits between tries; the last one repeats.
    pub delays: Vec<Duration>,
    /// Canonical schema every output must satisfy (`lgsp.enterprise/1`).
    pub validate: Option<String>,
    /// A former administrative code is an error, not a warning.
    pub strict_admin_codes: bool,
}

/// The routes of one adapter, fed by its input queue: one consumer, one decode and one
/// canonical mapping per input, whatever number of its routes want the input.
#[derive(Debug, Clone)]
pub(crate) struct Pipeline {
    pub adapter: String,
    pub queue: String,
    pub routes: Vec<Route>,
}

/// What one consumer feeds: a route pipeline, or a webhook target's deliveries.
enum Work {
    Route(Arc<Pipeline>),
    Webhook(Arc<webhook::Endpoint>, reqwest::Client),
}

/// Why the router could not be built or run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RouterError {
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("route {route}: {message}")]
    Route { route: String, message: String },
    #[error("the broker connection was lost: {0}")]
    ConnectionLost(String),
}

impl lgsp_amqp::broker::Recover for RouterError {
    fn recovery(&self) -> lgsp_amqp::reconnect::Recovery {
        use lgsp_amqp::reconnect::Recovery;
        match self {
            RouterError::Transport(t) => t.recovery(),
            RouterError::Route { .. } => Recovery::Fatal,
            RouterError::ConnectionLost(_) => Recovery::Retry,
        }
    }
}

/// Counters for logs and tests.
#[derive(Debug, Default)]
pub struct Stats {
    /// Inputs delivered to every target that wanted them.
    pub routed: AtomicU64,
    /// Inputs sent to a retry queue for some of their targets.
    pub retried: AtomicU64,
    /// Failure records published (one per cause of an input's failure).
    pub failed: AtomicU64,
    pub requeued: AtomicU64,
    /// Ack frames sent; one `multiple` ack settles many inputs.
    pub ack_frames: AtomicU64,
    /// Inputs decoded and mapped (successfully or not): once per input, whatever the
    /// number of routes that want it.
    pub mapped: AtomicU64,
    /// Webhook requests answered 2xx.
    pub webhook_delivered: AtomicU64,
}

/// Everything one running router shares between its tasks; `P` publishes (the broker's
/// confirmed publisher, or in tests an in-memory one).
pub(crate) struct Shared<P = Publisher> {
    pub names: Names,
    pub adapters: Arc<Adapters>,
    pub limits: Limits,
    /// Who may publish what, when applications are configured.
    pub access: Option<Access>,
    /// Which fields each receiver may get.
    pub agreements: Arc<Agreements>,
    /// What Prometheus sees.
    pub metrics: Arc<Metrics>,
    /// Where each message's story goes.
    pub tracker: Tracker,
    pub publisher: P,
    /// Mapping is CPU work: at most this many large mappings run at once, off the reactor.
    pub cpu: Semaphore,
    pub stats: Arc<Stats>,
}

/// The applications and the users lgsp connects with: whether the publisher of an input
/// was entitled to its routing key.
#[derive(Clone)]
pub(crate) struct Access {
    apps: Apps,
    bus_users: Vec<String>,
}

impl Access {
    /// Why the publisher of `input` may not publish it, if it may not. Only a fresh input
    /// is checked: a retry or a replay was published by lgsp (an administrator decided).
    pub(crate) fn refuse(&self, input: &Inbound) -> Option<Denied> {
        if input.targets.is_some() || input.attempt > 0 {
            return None;
        }
        let e = &input.envelope;
        self.apps
            .check_amqp(
                e.user_id.as_deref(),
                e.app_id.as_deref(),
                &self.bus_users,
                &input.routing_key,
            )
            .err()
    }
}

/// The routes of a configuration, ready to run.
pub struct Router {
    names: Names,
    table: RouteTable,
    pipelines: Vec<Pipeline>,
    apps: Vec<String>,
    target_exchanges: Vec<(String, String)>,
    webhooks: Vec<Arc<webhook::Endpoint>>,
    adapters: Arc<Adapters>,
    limits: Limits,
    access: Option<Access>,
    agreements: Arc<Agreements>,
    prefetch: u16,
    confirm_window: u32,
    max_length: u64,
    delivery_limit: u32,
    pub stats: Arc<Stats>,
    /// The process's metrics (`/metrics` renders them).
    pub metrics: Arc<Metrics>,
    /// Message tracking (off unless the caller sets one).
    pub tracker: Tracker,
    /// Set once the topology is declared and consumers run (for `/readyz`).
    pub ready: Arc<AtomicBool>,
}

impl Router {
    /// Resolve every route and target of `config` against `adapters`.
    pub fn build(config: &Config, adapters: Arc<Adapters>) -> Result<Router, RouterError> {
        let names = Names::new(&config.broker.prefix);
        let mut pipelines: Vec<Pipeline> = Vec::new();
        let mut apps: Vec<String> = Vec::new();
        let mut target_exchanges = Vec::new();
        let mut webhooks = Vec::new();
        let agreements =
            Agreements::from_config(&config.agreements).map_err(|p| RouterError::Route {
                route: String::new(),
                message: p
                    .into_iter()
                    .map(|(k, m)| format!("agreements.{k}: {m}"))
                    .collect::<Vec<_>>()
                    .join("; "),
            })?;
        for r in &config.routes {
            let err = |message: String| RouterError::Route {
                route: r.name.clone(),
                message,
            };
            if !adapters.by_name.contains_key(&r.map) {
                return Err(err(format!("adapter `{}` is not loaded", r.map)));
            }
            let mut targets = Vec::new();
            for t in &r.to {
                let when = match &t.when {
                    Some(w) => Some(
                        lgsp_mapping::dsl::path::CompiledPath::compile(w).map_err(|e| {
                            err(format!("bad `when` JSONPath `{w}`: {}", e.message))
                        })?,
                    ),
                    None => None,
                };
                let map = match t.outbound_map() {
                    Some(m) => {
                        adapters.resolve(m).map_err(|e| err(e.to_string()))?;
                        let (a, m) = m.split_once('.').unwrap_or((m, ""));
                        Some((a.to_owned(), m.to_owned()))
                    }
                    None => None,
                };
                let receiver = t.receiver();
                if let Some(w) = &t.webhook {
                    let name = w.receiver_name();
                    let id = qualify(&r.name, &format!("webhook:{name}"));
                    let secret = match &w.secret_env {
                        Some(var) => match std::env::var(var) {
                            Ok(v) if !v.is_empty() => Some(lgsp_core::config::Secret::new(v)),
                            _ => {
                                return Err(err(format!(
                                    "webhook `{name}` signs with the secret in environment variable {var}, which is not set: set it (the receiver checks signatures with the same value)"
                                )));
                            }
                        },
                        None => None,
                    };
                    let ep = Arc::new(webhook::Endpoint {
                        id: id.clone(),
                        route: r.name.clone(),
                        queue: names.webhook_queue(&r.name, &name),
                        url: w.url.clone(),
                        timeout: w.timeout.get(),
                        headers: w
                            .headers
                            .iter()
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect(),
                        secret,
                        concurrency: w.concurrency.max(1),
                        attempts: r.retry.attempts,
                        delays: r.retry.delays.iter().map(|d| d.get()).collect(),
                    });
                    webhooks.push(ep.clone());
                    targets.push(Target {
                        id: id.clone(),
                        exchange: names.webhook_exchange(),
                        routing_key: Some(id),
                        map,
                        when,
                        receiver,
                        webhook: Some(ep),
                    });
                    continue;
                }
                let target = match (&t.exchange, &t.app) {
                    (Some(ex), _) => {
                        if *ex != names.output() {
                            target_exchanges.push((r.name.clone(), ex.clone()));
                        }
                        let id = match &t.routing_key {
                            Some(k) => format!("exchange:{ex}/{k}"),
                            None => format!("exchange:{ex}"),
                        };
                        Target {
                            id: qualify(&r.name, &id),
                            exchange: ex.clone(),
                            routing_key: t.routing_key.clone(),
                            map,
                            when,
                            receiver: None,
                            webhook: None,
                        }
                    }
                    (None, Some(app)) => {
                        if !apps.contains(app) {
                            apps.push(app.clone());
                        }
                        Target {
                            id: qualify(&r.name, &format!("app:{app}")),
                            exchange: names.app_exchange(),
                            routing_key: Some(app.clone()),
                            map,
                            when,
                            receiver,
                            webhook: None,
                        }
                    }
                    (None, None) => {
                        return Err(err("a target has neither exchange, app nor webhook".into()));
                    }
                };
                targets.push(target);
            }
            let route = Route {
                name: r.name.clone(),
                binding: r.from.binding.clone(),
                targets,
                attempts: r.retry.attempts,
                delays: r.retry.delays.iter().map(|d| d.get()).collect(),
                validate: r.validate.clone(),
                strict_admin_codes: r.strict_admin_codes,
            };
            match pipelines.iter_mut().find(|p| p.adapter == r.map) {
                Some(p) => p.routes.push(route),
                None => pipelines.push(Pipeline {
                    adapter: r.map.clone(),
                    queue: names.input_queue(&r.map),
                    routes: vec![route],
                }),
            }
        }
        let limits = Limits {
            max_bytes: usize::try_from(config.limits.max_message_bytes.bytes())
                .unwrap_or(usize::MAX),
            max_depth: config.limits.max_depth as usize,
        };
        Ok(Router {
            names,
            table: RouteTable::from_config(config),
            pipelines,
            apps,
            target_exchanges,
            webhooks,
            adapters,
            limits,
            agreements: Arc::new(agreements),
            access: (!config.apps.is_empty()).then(|| Access {
                apps: Apps::from_config(&config.apps),
                bus_users: config.broker.users(),
            }),
            prefetch: config.broker.prefetch,
            confirm_window: config.broker.confirm_window,
            max_length: config.broker.max_length,
            delivery_limit: config.broker.delivery_limit,
            stats: Arc::new(Stats::default()),
            metrics: Arc::new(Metrics::new()),
            tracker: Tracker::off(),
            ready: Arc::new(AtomicBool::new(false)),
        })
    }

    /// What the topology of this router is.
    pub fn topology(&self) -> TopologySpec {
        TopologySpec {
            names: self.names.clone(),
            inputs: self.table.inputs(),
            apps: self.apps.clone(),
            webhooks: self
                .webhooks
                .iter()
                .map(|w| (w.queue.clone(), w.id.clone()))
                .collect(),
            target_exchanges: self.target_exchanges.clone(),
            max_length: self.max_length,
            delivery_limit: self.delivery_limit,
            retry_delays: {
                let mut d: Vec<Duration> = self
                    .pipelines
                    .iter()
                    .flat_map(|p| &p.routes)
                    .flat_map(|r| r.delays.clone())
                    .collect();
                d.sort();
                d.dedup();
                d
            },
        }
    }

    /// Declare the topology, consume every route until `shutdown`, then stop consuming,
    /// let in-flight messages settle (up to `drain`) and return.
    pub async fn run(
        &self,
        conn: &lapin::Connection,
        shutdown: CancellationToken,
        drain: Duration,
    ) -> Result<(), RouterError> {
        topology::declare(conn, &self.topology()).await?;
        let publisher = Publisher::open(conn, self.confirm_window).await?;
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
        let shared = Arc::new(Shared {
            names: self.names.clone(),
            adapters: self.adapters.clone(),
            limits: self.limits,
            access: self.access.clone(),
            agreements: self.agreements.clone(),
            metrics: self.metrics.clone(),
            tracker: self.tracker.clone(),
            publisher,
            cpu: Semaphore::new(workers),
            stats: self.stats.clone(),
        });
        let tracker = TaskTracker::new();
        let mut consumers = Vec::new();
        for pipeline in &self.pipelines {
            let ch = lgsp_amqp::broker::consuming_channel(conn, self.prefetch).await?;
            let consumer = lgsp_amqp::broker::consume(
                &ch,
                &pipeline.queue,
                &format!("lgsp-{}", pipeline.adapter),
            )
            .await?;
            consumers.push((Work::Route(Arc::new(pipeline.clone())), ch, consumer));
        }
        for ep in &self.webhooks {
            let client = webhook::client(ep).map_err(|e| RouterError::Route {
                route: ep.route.clone(),
                message: format!("webhook {}: cannot make its HTTP client: {e}", ep.id),
            })?;
            // Its concurrency is its prefetch: a hung receiver holds only these.
            let ch = lgsp_amqp::broker::consuming_channel(conn, ep.concurrency).await?;
            let consumer =
                lgsp_amqp::broker::consume(&ch, &ep.queue, &format!("lgsp-{}", ep.id)).await?;
            consumers.push((Work::Webhook(ep.clone(), client), ch, consumer));
        }
        self.ready.store(true, Ordering::SeqCst);
        self.metrics.broker_connected.set(1);
        info!(
            routes = self.table.routes().len(),
            inputs = self.pipelines.len(),
            webhooks = self.webhooks.len(),
            prefetch = self.prefetch,
            "routing"
        );

        let lost = CancellationToken::new();
        let mut loops = Vec::new();
        let mut settlers = Vec::new();
        for (work, ch, mut consumer) in consumers {
            let shared = shared.clone();
            let tracker = tracker.clone();
            let shutdown = shutdown.clone();
            let lost = lost.clone();
            let (input_exchange, queue, prefetch) = match &work {
                Work::Route(p) => (self.names.input(), p.queue.clone(), self.prefetch),
                Work::Webhook(ep, _) => (
                    self.names.webhook_exchange(),
                    ep.queue.clone(),
                    ep.concurrency,
                ),
            };
            let batch = usize::from(prefetch / 4).max(1);
            let (settler, settling) = settle::Settler::spawn(batch, self.stats.clone());
            settlers.push(settling);
            loops.push(tokio::spawn(async move {
                loop {
                    let next = tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = lost.cancelled() => break,
                        next = consumer.next() => next,
                    };
                    match next {
                        Some(Ok(delivery)) => {
                            let (input, tag, acker) =
                                Inbound::from_delivery(&input_exchange, delivery);
                            let ticket = settler.delivered(tag, acker);
                            match &work {
                                Work::Route(pipeline) => tracker.spawn(pipeline::handle(
                                    shared.clone(),
                                    pipeline.clone(),
                                    ticket,
                                    input,
                                )),
                                Work::Webhook(ep, client) => tracker.spawn(webhook::handle(
                                    shared.clone(),
                                    client.clone(),
                                    ep.clone(),
                                    ticket,
                                    input,
                                )),
                            };
                        }
                        Some(Err(e)) => {
                            warn!(%queue, error = %e, "consumer failed");
                            lost.cancel();
                            break;
                        }
                        None => {
                            lost.cancel();
                            break;
                        }
                    }
                }
                ch
            }));
        }
        let mut channels = Vec::new();
        for l in loops {
            if let Ok(ch) = l.await {
                channels.push(ch);
            }
        }
        self.ready.store(false, Ordering::SeqCst);
        self.metrics.broker_connected.set(0);
        tracker.close();
        if tokio::time::timeout(drain, tracker.wait()).await.is_err() {
            warn!(
                in_flight = tracker.len(),
                "drain deadline passed; unacknowledged messages stay in their queues"
            );
        }
        // Closing a channel returns its unacknowledged deliveries to their queues.
        // Every handler has settled (or the deadline passed): send the waiting acks
        // before the channels close, or the broker would deliver those inputs again.
        for s in settlers {
            let _ = tokio::time::timeout(Duration::from_secs(1), s).await;
        }
        for ch in channels {
            let _ = ch.close(200, "shutdown".into()).await;
        }
        // Closed here rather than dropped with the last reference: the caller closes the
        // connection next, and a channel still closing in the background then makes the
        // AMQP client log a connection error.
        let _ = tokio::time::timeout(Duration::from_secs(1), shared.publisher.close()).await;
        info!(
            routed = self.stats.routed.load(Ordering::Relaxed),
            retried = self.stats.retried.load(Ordering::Relaxed),
            failed = self.stats.failed.load(Ordering::Relaxed),
            requeued = self.stats.requeued.load(Ordering::Relaxed),
            ack_frames = self.stats.ack_frames.load(Ordering::Relaxed),
            mapped = self.stats.mapped.load(Ordering::Relaxed),
            "router stopped"
        );
        if lost.is_cancelled() && !shutdown.is_cancelled() {
            return Err(RouterError::ConnectionLost("a consumer stopped".into()));
        }
        Ok(())
    }
}
