//! `lgsp bench-gateway`: the HTTP gateway against the broker it publishes to. In one run,
//! alternating A B A B: (A) the same number of concurrent publishers as clients, each
//! publishing the payload with a confirm and waiting for it before the next (the raw
//! publish-with-confirm rate, on one channel as the gateway uses, through a topic
//! exchange with the properties the gateway sets), and (B) that many HTTP
//! clients posting the payload to `POST /api/v1/messages/{routing_key}` of a gateway served
//! by this process (keep-alive connections), each waiting for its answer. Each run lasts
//! the same time under its own scratch prefix, removed afterwards. Printed: requests/s,
//! p50/p99 latency, B/A, and a count check: every 202 is a message in the route's queue
//! (the route's router is not started, so the queue keeps them).
//!
//! The clients run in this process: they take CPU from the gateway and the broker as an
//! external load generator on the same machine would.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use lapin::options::{ExchangeDeleteOptions, QueueDeclareOptions, QueueDeleteOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection};
use lgsp_amqp::names::Names;
use lgsp_amqp::publish::Publisher;
use lgsp_core::config::{AppConfig, RateLimitConfig, Secret};
use tokio_util::sync::CancellationToken;

use crate::exit;
use crate::load::load;

#[derive(Debug, clap::Args)]
pub struct BenchGatewayArgs {
    #[command(flatten)]
    config: crate::ConfigArg,
    /// The payload every request carries (e.g. a corpus sample).
    #[arg(long)]
    payload: std::path::PathBuf,
    /// The routing key posted to; a route of the configuration must bind it.
    #[arg(long)]
    routing_key: String,
    /// Concurrent clients (and, in A, concurrent publishers).
    #[arg(long, default_value_t = 32)]
    clients: usize,
    /// Seconds each run lasts.
    #[arg(long, default_value_t = 30)]
    seconds: u64,
    /// A/B pairs.
    #[arg(long, default_value_t = 3)]
    pairs: u32,
}

type BenchResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// The application the bench posts as: allowed the routing key, not rate limited.
const APP: &str = "lgsp-bench";

/// The longest a close may take.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

struct Figures {
    per_s: f64,
    p50: Duration,
    p99: Duration,
    /// Requests answered otherwise than 202 (B), or publishes not confirmed (A).
    refused: u64,
    total: u64,
    /// CPU of this process (the clients and, in B, the gateway) and of the broker, per
    /// request, microseconds.
    own_cpu_us: f64,
    broker_cpu_us: Option<f64>,
}

pub async fn run(args: &BenchGatewayArgs) -> u8 {
    crate::logging::init();
    let Some(loaded) = load(&args.config.config) else {
        return exit::USAGE;
    };
    let payload = match std::fs::read(&args.payload) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {}: {e}", args.payload.display());
            return exit::USAGE;
        }
    };
    let mut config = loaded.config.config.clone();
    let Some(route) = config
        .routes
        .iter()
        .find(|r| lgsp_amqp::topic::matches(&r.from.binding, &args.routing_key))
        .cloned()
    else {
        eprintln!(
            "error: no route of {} binds `{}`",
            args.config.config.display(),
            args.routing_key
        );
        return exit::USAGE;
    };
    let conn = match crate::connect(&config.broker, "lgsp bench-gateway").await {
        Ok(c) => c,
        Err(code) => return code,
    };
    let content_type = match lgsp_mapping::decode::sniff(&payload) {
        Some(lgsp_mapping::decode::Format::Json) => "application/json",
        _ => "application/xml",
    };
    println!(
        "gateway POST /api/v1/messages/{} (route {}), payload {} bytes ({content_type}), {} clients, {} s per run, confirm window {}",
        args.routing_key,
        route.name,
        payload.len(),
        args.clients,
        args.seconds,
        config.broker.confirm_window
    );
    let key = uuid::Uuid::new_v4().simple().to_string();
    config.apps.insert(
        APP.to_owned(),
        AppConfig {
            api_key: Some(Secret::new(key.clone())),
            publish: vec![args.routing_key.clone()],
            rate_limit: RateLimitConfig {
                per_second: u32::MAX,
                burst: u32::MAX,
            },
            ..AppConfig::default()
        },
    );
    let tag = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let (mut a, mut b, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    let mut code = exit::OK;
    for pair in 1..=args.pairs {
        let raw_queue = format!("lgsp-bench-{tag}-raw{pair}");
        let raw = raw_run(&conn, &config, &raw_queue, &payload, args).await;
        let names = Names::new(&format!("lgsp-bench-{tag}-gw{pair}"));
        let mut cfg = config.clone();
        cfg.broker.prefix = names.prefix.clone();
        let gw = gateway_run(
            &conn,
            &cfg,
            &loaded,
            &route,
            &names,
            &payload,
            content_type,
            &key,
            args,
        )
        .await;
        // Whatever failed half-way, nothing of the pair stays on the broker.
        cleanup(&conn, &raw_queue, &names, &route).await;
        match (raw, gw) {
            (Ok(x), Ok((y, counted))) => {
                report("A raw publish+confirm", pair, &x);
                report("B gateway", pair, &y);
                let ok = counted == Some(y.answered_202());
                println!(
                    "pair {pair}: B/A {:.3}; 202s {} = messages in the route queue {}: {}",
                    y.per_s / x.per_s,
                    y.answered_202(),
                    counted.map_or_else(|| "?".to_owned(), |c| c.to_string()),
                    if ok { "yes" } else { "NO" }
                );
                if !ok {
                    code = exit::FAILED;
                }
                ratios.push(y.per_s / x.per_s);
                a.push(x);
                b.push(y);
            }
            (Err(e), _) | (_, Err(e)) => {
                eprintln!("error: pair {pair}: {e}");
                code = exit::FAILED;
                break;
            }
        }
    }
    if !a.is_empty() {
        let med = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let mut ap: Vec<f64> = a.iter().map(|f| f.per_s).collect();
        let mut bp: Vec<f64> = b.iter().map(|f| f.per_s).collect();
        let mut b50: Vec<f64> = b.iter().map(|f| f.p50.as_secs_f64() * 1e3).collect();
        let mut b99: Vec<f64> = b.iter().map(|f| f.p99.as_secs_f64() * 1e3).collect();
        println!(
            "median of {} pairs: A {:.0}/s, B {:.0} requests/s, B p50 {:.2} ms, p99 {:.2} ms, B/A {:.3}",
            a.len(),
            med(&mut ap),
            med(&mut bp),
            med(&mut b50),
            med(&mut b99),
            med(&mut ratios)
        );
    }
    let _ = tokio::time::timeout(CLOSE_WAIT, conn.close(200, "done".into())).await;
    code
}

impl Figures {
    fn answered_202(&self) -> u64 {
        self.total - self.refused
    }
}

fn report(what: &str, pair: u32, f: &Figures) {
    println!(
        "pair {pair} {what}: {:.0}/s, p50 {:.2} ms, p99 {:.2} ms, {} of {} refused; CPU per request: this process {:.0} µs, broker {}",
        f.per_s,
        f.p50.as_secs_f64() * 1e3,
        f.p99.as_secs_f64() * 1e3,
        f.refused,
        f.total,
        f.own_cpu_us,
        f.broker_cpu_us
            .map_or_else(|| "?".to_owned(), |b| format!("{b:.0} µs"))
    );
}

/// The pid of the local RabbitMQ node (`beam.smp`), when there is exactly one.
fn broker_pid() -> Option<u32> {
    let mut found = std::fs::read_dir("/proc").ok()?.filter_map(|e| {
        let e = e.ok()?;
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let comm = std::fs::read_to_string(e.path().join("comm")).ok()?;
        (comm.trim() == "beam.smp").then_some(pid)
    });
    let one = found.next();
    if found.next().is_some() { None } else { one }
}

/// CPU seconds of this process and of the broker (either unknown when `/proc` says
/// nothing).
type Cpu = (Option<f64>, Option<f64>);

/// CPU seconds of this process and of the broker, now.
fn cpu_now() -> Cpu {
    (
        crate::bench::cpu_seconds(std::process::id()),
        broker_pid().and_then(crate::bench::cpu_seconds),
    )
}

/// Latencies of all tasks, into figures over `elapsed`; CPU used from `before` to `after`.
fn figures(
    mut lat: Vec<Duration>,
    refused: u64,
    elapsed: Duration,
    (before, after): (Cpu, Cpu),
) -> Figures {
    let n = lat.len().max(1) as f64;
    let per = |a: Option<f64>, b: Option<f64>| Some((b? - a?) * 1e6 / n);
    lat.sort_unstable();
    let at = |q: f64| {
        lat.get(((lat.len() as f64 * q) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    Figures {
        per_s: (lat.len() as u64 - refused.min(lat.len() as u64)) as f64 / elapsed.as_secs_f64(),
        p50: at(0.50),
        p99: at(0.99),
        refused,
        total: lat.len() as u64,
        own_cpu_us: per(before.0, after.0).unwrap_or(f64::NAN),
        broker_cpu_us: per(before.1, after.1),
    }
}

/// Run `clients` tasks of `one` until `seconds` passed; every call's latency, and how
/// many failed.
async fn closed_loop<F, Fut>(clients: usize, seconds: u64, one: F) -> (Vec<Duration>, u64, Duration)
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let start = Instant::now();
    let end = start + Duration::from_secs(seconds);
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let one = one.clone();
            tokio::spawn(async move {
                let (mut lat, mut failed) = (Vec::new(), 0u64);
                while Instant::now() < end {
                    let t = Instant::now();
                    if !one().await {
                        failed += 1;
                    }
                    lat.push(t.elapsed());
                }
                (lat, failed)
            })
        })
        .collect();
    let (mut all, mut failed) = (Vec::new(), 0);
    for t in tasks {
        if let Ok((lat, f)) = t.await {
            all.extend(lat);
            failed += f;
        }
    }
    (all, failed, start.elapsed())
}

/// A: `clients` publishers on one channel, each waiting for its confirm, into a quorum
/// queue (as the route queues are).
async fn raw_run(
    conn: &Connection,
    config: &lgsp_core::config::Config,
    queue: &str,
    payload: &[u8],
    args: &BenchGatewayArgs,
) -> BenchResult<Figures> {
    let ch = conn.create_channel().await?;
    let durable = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    ch.queue_declare(queue.into(), durable, crate::bench::quorum())
        .await?;
    // Through a topic exchange, as the gateway publishes to `<prefix>.in`.
    let exchange = format!("{queue}.x");
    ch.exchange_declare(
        exchange.as_str().into(),
        lapin::ExchangeKind::Topic,
        lapin::options::ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await?;
    ch.queue_bind(
        queue.into(),
        exchange.as_str().into(),
        args.routing_key.as_str().into(),
        lapin::options::QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await?;
    let publisher = Publisher::open(conn, config.broker.confirm_window).await?;
    let body: Arc<[u8]> = payload.into();
    let (p, x) = (publisher.clone(), Arc::<str>::from(exchange.as_str()));
    let key = Arc::<str>::from(args.routing_key.as_str());
    let before = cpu_now();
    let (lat, failed, elapsed) = closed_loop(args.clients, args.seconds, move || {
        let (p, x, key, body) = (p.clone(), x.clone(), key.clone(), body.clone());
        async move {
            // The properties the gateway sets.
            let props = BasicProperties::default()
                .with_message_id(uuid::Uuid::now_v7().to_string().into())
                .with_app_id(APP.into())
                .with_content_type("application/xml".into())
                .with_type(key.as_ref().into())
                .with_timestamp(0);
            match p.publish(&x, &key, &body, props).await {
                Ok(pending) => pending.wait().await.is_ok(),
                Err(_) => false,
            }
        }
    })
    .await;
    let cpu = (before, cpu_now());
    let _ = tokio::time::timeout(CLOSE_WAIT, publisher.close()).await;
    let _ = tokio::time::timeout(CLOSE_WAIT, ch.close(200, "done".into())).await;
    Ok(figures(lat, failed, elapsed, cpu))
}

/// B: the gateway served here on the scratch topology of the route (declared, not
/// consumed), `clients` HTTP clients posting; then the messages in the route queue.
#[allow(clippy::too_many_arguments)]
async fn gateway_run(
    conn: &Connection,
    config: &lgsp_core::config::Config,
    loaded: &crate::load::Loaded,
    route: &lgsp_core::config::RouteConfig,
    names: &Names,
    payload: &[u8],
    content_type: &'static str,
    key: &str,
    args: &BenchGatewayArgs,
) -> BenchResult<(Figures, Option<u64>)> {
    // The route alone, delivering to the scratch output: its router is not started, so
    // only its input queue matters, but the topology checks that targets exist.
    let mut one_route = config.clone();
    let mut route = route.clone();
    route.to = vec![lgsp_core::config::TargetConfig {
        webhook: None,
        exchange: Some(names.output()),
        routing_key: Some("bench".into()),
        app: None,
        map: None,
        when: None,
    }];
    one_route.routes = vec![route.clone()];
    let route = &route;
    let router = lgsp_router::Router::build(&one_route, Arc::new(loaded.adapters.clone()))
        .map_err(|e| e.to_string())?;
    let topology = router.topology();
    lgsp_amqp::topology::declare(conn, &topology).await?;
    let publisher = Publisher::open(conn, config.broker.confirm_window).await?;
    let (_tx, rx) = tokio::sync::watch::channel(Some(publisher.clone()));
    let gateway = Arc::new(lgsp_http::gateway::Gateway::new(&one_route, rx, None));
    let state = lgsp_http::AppState {
        broker_ready: Arc::new(AtomicBool::new(true)),
        gateway: Some(gateway),
        ..Default::default()
    };
    let stop = CancellationToken::new();
    let listen = lgsp_core::config::HttpConfig {
        listen: "127.0.0.1:0".into(),
        ..Default::default()
    };
    let (addr, server) = lgsp_http::serve(&listen, state, stop.clone()).await?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.clients * 2)
        .timeout(Duration::from_secs(30))
        .build()?;
    let url: Arc<str> = format!("http://{addr}/api/v1/messages/{}", args.routing_key).into();
    let body: Arc<[u8]> = payload.into();
    let auth: Arc<str> = format!("Bearer {key}").into();
    let before = cpu_now();
    let (lat, refused, elapsed) = closed_loop(args.clients, args.seconds, move || {
        let (http, url, body, auth) = (http.clone(), url.clone(), body.clone(), auth.clone());
        async move {
            let sent = http
                .post(&*url)
                .header("authorization", &*auth)
                .header("content-type", content_type)
                .body(body.to_vec())
                .send()
                .await;
            match sent {
                Ok(r) => {
                    let accepted = r.status() == reqwest::StatusCode::ACCEPTED;
                    let _ = r.bytes().await;
                    accepted
                }
                Err(_) => false,
            }
        }
    })
    .await;
    let cpu = (before, cpu_now());
    stop.cancel();
    let _ = server.await;
    let _ = tokio::time::timeout(CLOSE_WAIT, publisher.close()).await;
    let ch = conn.create_channel().await?;
    let queue = names.input_queue(&route.map);
    let counted = ch
        .queue_declare(
            queue.as_str().into(),
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .ok()
        .map(|q| u64::from(q.message_count()));
    let _ = tokio::time::timeout(CLOSE_WAIT, ch.close(200, "done".into())).await;
    Ok((figures(lat, refused, elapsed, cpu), counted))
}

/// Delete what a pair declared: A's queue and exchange, B's scratch topology.
async fn cleanup(
    conn: &Connection,
    raw_queue: &str,
    names: &Names,
    route: &lgsp_core::config::RouteConfig,
) {
    let Ok(ch) = conn.create_channel().await else {
        return;
    };
    let _ = ch
        .queue_delete(raw_queue.into(), QueueDeleteOptions::default())
        .await;
    let _ = ch
        .exchange_delete(
            format!("{raw_queue}.x").as_str().into(),
            ExchangeDeleteOptions::default(),
        )
        .await;
    let delays: Vec<Duration> = route.retry.delays.iter().map(|d| d.get()).collect();
    crate::bench::remove_scratch(&ch, names, &[], std::slice::from_ref(&route.map), &delays).await;
    let _ = tokio::time::timeout(CLOSE_WAIT, ch.close(200, "done".into())).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_count_only_accepted_requests_and_take_percentiles_of_all() {
        let lat: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let cpu = ((Some(1.0), Some(10.0)), (Some(1.5), Some(11.0)));
        let f = figures(lat, 10, Duration::from_secs(2), cpu);
        assert_eq!((f.total, f.refused, f.answered_202()), (100, 10, 90));
        assert!((f.per_s - 45.0).abs() < 1e-9, "{}", f.per_s);
        assert_eq!(f.p50, Duration::from_millis(51));
        assert_eq!(f.p99, Duration::from_millis(100));
        assert!((f.own_cpu_us - 5_000.0).abs() < 1e-6);
        assert_eq!(f.broker_cpu_us.map(|b| b.round()), Some(10_000.0));
        let unknown = figures(
            Vec::new(),
            0,
            Duration::from_secs(1),
            ((None, None), (None, None)),
        );
        assert_eq!((unknown.total, unknown.broker_cpu_us), (0, None));
    }
}
