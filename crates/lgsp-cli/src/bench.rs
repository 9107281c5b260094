//! `lgsp bench`: measure the router against the broker it runs on. In one run, alternating
//! A B A B: (A) a raw pass-through (consume with the same prefetch, publish unchanged
//! with the same confirm window, ack after confirm) and (B) the real router on the route
//! of the configuration that binds the message type. Each under its own scratch prefix,
//! removed afterwards; a closed-loop generator and a drain; msgs/s, MB/s, end-to-end
//! latency, peak RSS, and the ratio B/A. With `--ceiling`, each pair also runs (C) the
//! router on a route whose mapping costs nothing but emits B's output for the payload as
//! constants: C/A is as far as a mapping engine that builds the canonical tree (which
//! steps, schema validation and outbound mappings read) could take B/A on this broker.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_lite::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicQosOptions, ExchangeDeleteOptions, QueueBindOptions,
    QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Connection};
use lgsp_amqp::names::Names;
use lgsp_amqp::publish::Publisher;
use lgsp_core::config::Config;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::exit;
use crate::load::load;

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    #[command(flatten)]
    config: crate::ConfigArg,
    /// The payload every message carries (e.g. a corpus sample).
    #[arg(long)]
    payload: PathBuf,
    /// Its message type; the route that binds it is the one measured.
    #[arg(long = "type", value_name = "MESSAGE_TYPE")]
    message_type: String,
    /// Messages per run.
    #[arg(long, default_value_t = 100_000)]
    count: u64,
    /// A/B pairs.
    #[arg(long, default_value_t = 3)]
    pairs: u32,
    /// Run B with every route that binds the type, as the configuration would (each
    /// delivering to the scratch output): what one published message costs the bus.
    /// Messages/s then counts inputs, each drained once per route.
    #[arg(long)]
    all_routes: bool,
    /// Also run C in each pair: the router on a route whose mapping reads nothing and
    /// emits the measured route's output for this payload as constants. C/A is what the
    /// bus reaches on this broker with a mapping that costs nothing: the ceiling of B/A.
    #[arg(long)]
    ceiling: bool,
    /// B delivers to a webhook instead of the scratch output exchange: a receiver in
    /// this process, on 127.0.0.1, answering 204 (the route's outbound mapping kept).
    #[arg(long)]
    webhook: bool,
    /// Run B and C with message tracking off (`tracking.enabled: false`); by default
    /// the configuration's setting (on unless it says otherwise) holds.
    #[arg(long)]
    no_tracking: bool,
}

/// Where a run's outputs are counted: a queue bound to the scratch output exchange, or
/// the ids of the requests a local webhook receiver answered.
enum Sink {
    Queue(String),
    Webhook(tokio::sync::mpsc::UnboundedReceiver<String>),
}

/// The webhook receiver of a `--webhook` run: every request's `Idempotency-Key` goes to
/// the drain. Its URL.
async fn webhook_receiver(
    stop: tokio_util::sync::CancellationToken,
) -> BenchResult<(String, tokio::sync::mpsc::UnboundedReceiver<String>)> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let app = axum::Router::new().route(
        "/bench",
        axum::routing::post(move |headers: axum::http::HeaderMap| {
            let tx = tx.clone();
            async move {
                if let Some(id) = headers.get("idempotency-key").and_then(|v| v.to_str().ok()) {
                    let _ = tx.send(id.to_owned());
                }
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await;
    });
    Ok((format!("http://{addr}/bench"), rx))
}

/// The longest a channel or connection close may take: a broker that does not answer
/// must not keep the bench from printing its figures.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// What a router run starts: the child's configuration, and the adapters of its routes
/// and their retry delays (to remove the input and retry queues the child declares).
struct Setup {
    config: serde_json::Value,
    /// Outputs each input makes: one per route.
    routes: usize,
    adapters: Vec<String>,
    delays: Vec<Duration>,
    /// Further queues it declares (webhook queues).
    queues: Vec<String>,
}

struct Figures {
    /// CPU time of this process per message, microseconds: the generator and the drain,
    /// and in run A the pass-through too.
    own_cpu_us_per_msg: f64,
    msgs_per_s: f64,
    mb_per_s: f64,
    p50: Duration,
    p99: Duration,
}

pub async fn run(args: &BenchArgs) -> u8 {
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
    let config = loaded.config.config.clone();
    let binding: Vec<String> = config
        .routes
        .iter()
        .filter(|r| lgsp_amqp::topic::matches(&r.from.binding, &args.message_type))
        .map(|r| r.name.clone())
        .take(if args.all_routes { usize::MAX } else { 1 })
        .collect();
    if binding.is_empty() {
        eprintln!(
            "error: no route of {} binds `{}`",
            args.config.config.display(),
            args.message_type
        );
        return exit::USAGE;
    }
    let routes = binding;
    {
        let conn = match crate::connect(&config.broker, "lgsp bench").await {
            Ok(c) => c,
            Err(code) => return code,
        };
        let tag = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
        println!(
            "route {} ({}), payload {} bytes, {} messages per run, prefetch {}, confirm window {}",
            routes.join(" + "),
            args.message_type,
            payload.len(),
            args.count,
            config.broker.prefetch,
            config.broker.confirm_window
        );
        let ceiling = if args.ceiling {
            let dir = std::env::temp_dir().join(format!("lgsp-bench-{tag}-ceiling"));
            let written =
                write_ceiling_adapter(&loaded, &routes[0], &args.message_type, &payload, &dir);
            if let Err(e) = written {
                let _ = std::fs::remove_dir_all(&dir);
                eprintln!("error: --ceiling: {e}");
                return exit::USAGE;
            }
            println!(
                "C: the router on one route that maps nothing and emits {}'s output as constants",
                routes[0]
            );
            Some(dir)
        } else {
            None
        };
        let code = pairs(
            args,
            &conn,
            &loaded,
            &config,
            &routes,
            ceiling.as_deref(),
            &tag,
            &payload,
        )
        .await;
        if let Some(dir) = ceiling {
            let _ = std::fs::remove_dir_all(dir);
        }
        let _ = tokio::time::timeout(CLOSE_WAIT, conn.close(200, "done".into())).await;
        code
    }
}

/// Print the header, run the pairs and print the figures; the exit code.
#[allow(clippy::too_many_arguments)]
async fn pairs(
    args: &BenchArgs,
    conn: &Connection,
    loaded: &crate::load::Loaded,
    config: &Config,
    routes: &[String],
    ceiling: Option<&std::path::Path>,
    tag: &str,
    payload: &[u8],
) -> u8 {
    if routes.len() > 1 {
        println!(
            "B delivers {} outputs per input (one per route), A one: B/A is not like for like; \
             compare router CPU and msgs/s (inputs) between builds",
            routes.len()
        );
    }
    let (mut a_rates, mut b_rates, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    let (mut steady, mut peaks, mut cpus) = (Vec::new(), Vec::new(), Vec::new());
    let (mut c_rates, mut c_ratios, mut c_cpus) = (Vec::new(), Vec::new(), Vec::new());
    let mut b_to_c = Vec::new();
    let measured: Result<(), String> = async {
        for pair in 1..=args.pairs {
            let a = raw_run(
                conn,
                config,
                &format!("lgsp-bench-{tag}-a{pair}"),
                payload,
                args.count,
            )
            .await
            .map_err(|e| format!("pass-through run: {e}"))?;
            report("A pass-through", pair, &a);
            let (b, memory, mapped) = router_run(
                conn,
                config,
                &format!("lgsp-bench-{tag}-b{pair}"),
                |names, webhook| {
                    measured_setup(&loaded.config, routes, names, webhook)
                        .map(|s| without_tracking(s, args.no_tracking))
                },
                &args.message_type,
                payload,
                args.count,
                args.webhook,
            )
            .await
            .map_err(|e| format!("router run: {e}"))?;
            report("B router", pair, &b);
            println!(
                "pair {pair} B router memory: steady RSS {:.1} MB, peak RSS {:.1} MB; CPU {:.0} µs/msg",
                memory.steady_mb, memory.peak_mb, memory.cpu_us_per_msg
            );
            if let Some(mapped) = mapped {
                println!("pair {pair} B router mapping: {mapped}");
            }
            cpus.push(memory.cpu_us_per_msg);
            steady.push(memory.steady_mb);
            peaks.push(memory.peak_mb);
            let ratio = throughput_ratio(&b, &a);
            println!("pair {pair}: B/A {ratio:.3}");
            a_rates.push(a.msgs_per_s);
            b_rates.push(b.msgs_per_s);
            ratios.push(ratio);
            if let Some(dir) = ceiling {
                let (c, memory, _) = router_run(
                    conn,
                    config,
                    &format!("lgsp-bench-{tag}-c{pair}"),
                    |names, _| {
                        ceiling_setup(&loaded.config, dir, &args.message_type, names)
                            .map(|s| without_tracking(s, args.no_tracking))
                    },
                    &args.message_type,
                    payload,
                    args.count,
                    false,
                )
                .await
                .map_err(|e| format!("ceiling run: {e}"))?;
                report("C ceiling", pair, &c);
                let c_ratio = throughput_ratio(&c, &a);
                println!(
                    "pair {pair} C ceiling router: CPU {:.0} µs/msg",
                    memory.cpu_us_per_msg
                );
                // How close the router comes to its own ceiling: the share of it the mapping
                // leaves.
                let b_c = throughput_ratio(&b, &c);
                println!("pair {pair}: C/A {c_ratio:.3}, B/C {b_c:.3}");
                b_to_c.push(b_c);
                c_rates.push(c.msgs_per_s);
                c_ratios.push(c_ratio);
                c_cpus.push(memory.cpu_us_per_msg);
            }
        }
        Ok(())
    }
    .await;
    if let Err(e) = measured {
        eprintln!("error: {e}");
        return exit::FAILED;
    }
    println!(
        "router RSS: steady median {:.1} MB, peak max {:.1} MB; router CPU median {:.0} µs/msg",
        median(&mut steady),
        peaks.iter().copied().fold(0.0, f64::max),
        median(&mut cpus)
    );
    if ceiling.is_some() {
        println!(
            "ceiling {:.3} (median C {:.0} msgs/s, router CPU median {:.0} µs/msg): \
             B/A with a mapping that costs nothing; B/C {:.3}",
            median(&mut c_ratios),
            median(&mut c_rates),
            median(&mut c_cpus),
            median(&mut b_to_c)
        );
    }
    println!(
        "ratio {:.3} (median A {:.0} msgs/s, median B {:.0} msgs/s)",
        median(&mut ratios),
        median(&mut a_rates),
        median(&mut b_rates)
    );
    exit::OK
}

fn report(what: &str, pair: u32, f: &Figures) {
    println!(
        "pair {pair} {what}: {:.0} msgs/s, {:.1} MB/s, latency p50 {:.1} ms, p99 {:.1} ms; \
         bench process CPU {:.0} µs/msg",
        f.msgs_per_s,
        f.mb_per_s,
        f.p50.as_secs_f64() * 1e3,
        f.p99.as_secs_f64() * 1e3,
        f.own_cpu_us_per_msg
    );
}

/// `x`'s messages/s over `y`'s.
fn throughput_ratio(x: &Figures, y: &Figures) -> f64 {
    x.msgs_per_s / y.msgs_per_s.max(f64::MIN_POSITIVE)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return 0.0;
    }
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

pub(crate) fn quorum() -> FieldTable {
    let mut t = FieldTable::default();
    t.insert(
        ShortString::from("x-queue-type"),
        AMQPValue::LongString(LongString::from("quorum")),
    );
    t
}

type BenchResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

async fn declare_queue(ch: &lapin::Channel, name: &str) -> BenchResult<()> {
    ch.queue_declare(
        name.into(),
        QueueDeclareOptions {
            durable: true,
            ..Default::default()
        },
        quorum(),
    )
    .await?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
/// Publish `count` messages closed-loop (at most `window` not yet drained) to
/// `exchange`/`key`, drain them from `sink`, and measure.
async fn generate_and_drain(
    conn: &Connection,
    exchange: &str,
    key: &str,
    message_type: &str,
    sink: Sink,
    payload: &[u8],
    count: u64,
    per_input: u64,
    window: usize,
) -> BenchResult<Figures> {
    let cpu_before = cpu_seconds(std::process::id()).unwrap_or(0.0);
    let publisher = Publisher::open(conn, 1024).await?;
    let in_system = Arc::new(Semaphore::new(window));
    let drained = Arc::new(AtomicU64::new(0));
    let ch = conn.create_channel().await?;
    ch.basic_qos(1000, BasicQosOptions::default()).await?;
    /// Where the drain reads the id of each output that came through.
    enum Source {
        Amqp(lapin::Consumer),
        Webhook(tokio::sync::mpsc::UnboundedReceiver<String>),
    }
    let mut source = match sink {
        Sink::Queue(queue) => Source::Amqp(
            ch.basic_consume(
                queue.as_str().into(),
                "bench-drain".into(),
                BasicConsumeOptions {
                    no_ack: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await?,
        ),
        Sink::Webhook(ids) => Source::Webhook(ids),
    };
    let origin = Instant::now();
    // Send time per message, by the index in its id: outputs keep the input's id.
    let sent_at: Arc<Vec<AtomicU64>> = Arc::new((0..count).map(|_| AtomicU64::new(0)).collect());
    let drain = {
        let sent_at = sent_at.clone();
        let in_system = in_system.clone();
        let drained = drained.clone();
        tokio::spawn(async move {
            let mut lat = Vec::with_capacity(count as usize);
            let mut outputs = 0u64;
            while drained.load(Ordering::Relaxed) < count {
                let silence = Duration::from_secs(60);
                let id: Option<String> = match &mut source {
                    Source::Amqp(consumer) => {
                        let Ok(Some(Ok(d))) = tokio::time::timeout(silence, consumer.next()).await
                        else {
                            break;
                        };
                        d.properties
                            .message_id()
                            .as_ref()
                            .map(|m| m.as_str().to_owned())
                    }
                    Source::Webhook(ids) => {
                        let Ok(Some(id)) = tokio::time::timeout(silence, ids.recv()).await else {
                            break;
                        };
                        Some(id)
                    }
                };
                let index = id
                    .as_deref()
                    .and_then(|m| m.strip_prefix("bench-"))
                    .and_then(|i| i.parse::<usize>().ok());
                if let Some(sent) = index
                    .and_then(|i| sent_at.get(i))
                    .map(|a| a.load(Ordering::Relaxed))
                {
                    let now = origin.elapsed().as_micros() as u64;
                    lat.push(Duration::from_micros(now.saturating_sub(sent)));
                }
                // An input leaves the system with its last output (one per route).
                outputs += 1;
                if outputs.is_multiple_of(per_input.max(1)) {
                    drained.fetch_add(1, Ordering::Relaxed);
                    in_system.add_permits(1);
                }
            }
            // Done, or a minute of silence: a generator waiting for room must stop too.
            in_system.close();
            (lat, source)
        })
    };
    let started = Instant::now();
    let mut pending = std::collections::VecDeque::new();
    for i in 0..count {
        match in_system.acquire().await {
            Ok(permit) => permit.forget(),
            // The drain gave up: report how many came through.
            Err(_) => break,
        }
        if let Some(slot) = sent_at.get(i as usize) {
            slot.store(origin.elapsed().as_micros() as u64, Ordering::Relaxed);
        }
        let props = BasicProperties::default()
            .with_message_id(format!("bench-{i}").as_str().into())
            .with_type(message_type.into());
        pending.push_back(publisher.publish(exchange, key, payload, props).await?);
        while pending.len() > 512 {
            if let Some(p) = pending.pop_front() {
                p.wait().await?;
            }
        }
    }
    for p in pending {
        p.wait().await?;
    }
    let (mut lat, source) = drain.await?;
    // Close the channel before dropping its consumer: the broker cancels it with the channel.
    let _ = tokio::time::timeout(CLOSE_WAIT, ch.close(200, "done".into())).await;
    drop(source);
    let _ = tokio::time::timeout(CLOSE_WAIT, publisher.close()).await;
    let elapsed = started.elapsed();
    let n = drained.load(Ordering::Relaxed);
    if n < count {
        return Err(
            format!("only {n} of {count} messages came through within 60 s of silence").into(),
        );
    }
    lat.sort();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    let secs = elapsed.as_secs_f64().max(1e-9);
    let cpu = cpu_seconds(std::process::id()).unwrap_or(0.0) - cpu_before;
    Ok(Figures {
        own_cpu_us_per_msg: cpu * 1e6 / n.max(1) as f64,
        msgs_per_s: n as f64 / secs,
        mb_per_s: (n as f64 * payload.len() as f64) / secs / 1e6,
        p50: pct(0.50),
        p99: pct(0.99),
    })
}

/// (A) consume, publish unchanged with confirms, ack after confirm.
async fn raw_run(
    conn: &Connection,
    config: &Config,
    prefix: &str,
    payload: &[u8],
    count: u64,
) -> BenchResult<Figures> {
    let (input, sink) = (format!("{prefix}.in"), format!("{prefix}.sink"));
    let ch = conn.create_channel().await?;
    declare_queue(&ch, &input).await?;
    declare_queue(&ch, &sink).await?;
    let stop = CancellationToken::new();
    let relay = {
        let publisher = Publisher::open(conn, config.broker.confirm_window).await?;
        let cch = conn.create_channel().await?;
        cch.basic_qos(config.broker.prefetch, BasicQosOptions::default())
            .await?;
        let mut consumer = cch
            .basic_consume(
                input.as_str().into(),
                "bench-relay".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        let sink = sink.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            loop {
                let d = tokio::select! {
                    _ = stop.cancelled() => break,
                    d = consumer.next() => d,
                };
                let _ = &cch;
                let Some(Ok(d)) = d else { break };
                let publisher = publisher.clone();
                let sink = sink.clone();
                tokio::spawn(async move {
                    let props = d.properties.clone();
                    if let Ok(p) = publisher.publish("", &sink, &d.data, props).await
                        && p.wait().await.is_ok()
                    {
                        let _ = d.acker.ack(BasicAckOptions::default()).await;
                    }
                });
            }
            let _ = tokio::time::timeout(CLOSE_WAIT, cch.close(200, "done".into())).await;
            drop(consumer);
            let _ = tokio::time::timeout(CLOSE_WAIT, publisher.close()).await;
        })
    };
    let window = usize::from(config.broker.prefetch) * 4;
    let result = generate_and_drain(
        conn,
        "",
        &input,
        "bench",
        Sink::Queue(sink.clone()),
        payload,
        count,
        1,
        window,
    )
    .await;
    stop.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(10), relay).await;
    for q in [&input, &sink] {
        let _ = ch
            .queue_delete(q.as_str().into(), QueueDeleteOptions::default())
            .await;
    }
    let _ = tokio::time::timeout(CLOSE_WAIT, ch.close(200, "done".into())).await;
    result
}

/// The router of run B: a child `lgsp run` on a configuration of one route, under a
/// scratch prefix, with its own SQLite store and HTTP port. A separate process, so its
/// memory is its own.
struct Child {
    process: tokio::process::Child,
    dir: PathBuf,
    log: PathBuf,
}

impl Child {
    fn pid(&self) -> Option<u32> {
        self.process.id()
    }

    /// The last lines the child logged, for an error message.
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    /// SIGTERM, then wait (SIGKILL after 15 s); the scratch folder is removed. Returns
    /// what the child logged.
    async fn stop(mut self) -> String {
        if let Some(pid) = self.pid().and_then(|p| i32::try_from(p).ok()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        if tokio::time::timeout(Duration::from_secs(15), self.process.wait())
            .await
            .is_err()
        {
            let _ = self.process.kill().await;
        }
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let _ = std::fs::remove_dir_all(&self.dir);
        log
    }
}

/// Run B's router: the original configuration file (JSON is YAML) with only the
/// measured routes, the targets of each replaced by one on the scratch output exchange
/// (its first outbound mapping kept), and the folders made absolute. Broker prefix, store
/// and HTTP address come from the environment, so they win over any override the
/// operator has set.
fn measured_setup(
    loaded: &lgsp_core::config::LoadedConfig,
    measured: &[String],
    names: &Names,
    webhook: Option<&str>,
) -> BenchResult<Setup> {
    let mut doc = base_config(loaded)?;
    let routes = doc
        .get("routes")
        .and_then(|r| r.as_array())
        .ok_or("the configuration has no routes")?;
    let mut kept = Vec::with_capacity(measured.len());
    for route in measured {
        let mut chosen = routes
            .iter()
            .find(|r| r.get("name").and_then(|n| n.as_str()) == Some(route.as_str()))
            .cloned()
            .ok_or_else(|| format!("route {route} not found in {}", loaded.path.display()))?;
        let map = chosen
            .get("to")
            .and_then(|t| t.as_array())
            .and_then(|t| t.iter().find_map(|t| t.get("map").cloned()));
        let mut target = match webhook {
            Some(url) => serde_json::json!({
                "webhook": { "url": url, "name": "bench", "concurrency": loaded.config.broker.prefetch }
            }),
            None => serde_json::json!({ "exchange": names.output(), "routing_key": "bench" }),
        };
        if let Some(m) = map {
            target["map"] = m;
        }
        chosen["to"] = serde_json::json!([target]);
        kept.push(chosen);
    }
    doc["routes"] = serde_json::Value::Array(kept);
    let delays = loaded
        .config
        .routes
        .iter()
        .filter(|r| measured.contains(&r.name))
        .flat_map(|r| r.retry.delays.iter().map(|d| d.get()))
        .collect();
    let mut adapters: Vec<String> = loaded
        .config
        .routes
        .iter()
        .filter(|r| measured.contains(&r.name))
        .map(|r| r.map.clone())
        .collect();
    adapters.dedup();
    let queues = match webhook {
        Some(_) => measured
            .iter()
            .map(|r| names.webhook_queue(r, "bench"))
            .collect(),
        None => Vec::new(),
    };
    Ok(Setup {
        config: doc,
        routes: measured.len(),
        adapters,
        delays,
        queues,
    })
}

/// Run C's router: the same configuration with one route, `ceiling`, that maps the
/// message type with the adapter [`write_ceiling_adapter`] wrote into `dir`.
fn ceiling_setup(
    loaded: &lgsp_core::config::LoadedConfig,
    dir: &std::path::Path,
    message_type: &str,
    names: &Names,
) -> BenchResult<Setup> {
    let mut doc = base_config(loaded)?;
    doc["adapter_dir"] = dir.display().to_string().into();
    doc["adapters"] = serde_json::json!([CEILING]);
    doc["routes"] = serde_json::json!([{
        "name": CEILING,
        "from": { "binding": message_type },
        "map": CEILING,
        "to": [{ "exchange": names.output(), "routing_key": "bench" }],
    }]);
    Ok(Setup {
        config: doc,
        routes: 1,
        adapters: vec![CEILING.to_owned()],
        delays: lgsp_core::config::RetryConfig::default()
            .delays
            .iter()
            .map(|d| d.get())
            .collect(),
        queues: Vec::new(),
    })
}

/// The configuration file as JSON, its folders made absolute.
fn base_config(loaded: &lgsp_core::config::LoadedConfig) -> BenchResult<serde_json::Value> {
    let text = std::fs::read_to_string(&loaded.path)?;
    let mut doc: serde_json::Value = serde_yaml::from_str(&text)?;
    let obj = doc
        .as_object_mut()
        .ok_or("the configuration is not a mapping")?;
    for (key, dir) in [
        ("adapter_dir", loaded.adapter_dir()),
        ("schema_dir", loaded.schema_dir()),
        ("reference_dir", loaded.reference_dir()),
    ] {
        let abs = std::fs::canonicalize(&dir).unwrap_or(dir);
        obj.insert(key.into(), abs.display().to_string().into());
    }
    // The measured routes deliver to scratch targets: the configuration's receivers,
    // and so its agreements, are not there (a receiver without one gets what is not
    // personal, as a real receiver without an agreement would).
    obj.remove("agreements");
    Ok(doc)
}

/// `setup` with tracking off when `off`.
fn without_tracking(mut setup: Setup, off: bool) -> Setup {
    if off && let Some(obj) = setup.config.as_object_mut() {
        obj.insert("tracking".into(), serde_json::json!({ "enabled": false }));
    }
    setup
}

/// The name of run C's adapter, mapping and route.
const CEILING: &str = "ceiling";

/// Write into `dir` an adapter `ceiling` whose one mapping takes `message_type`, reads
/// nothing of the payload (its only path names a member no document has, so an XML
/// payload is checked but not built) and emits, as constants, the output `route`
/// delivers for `payload`: the same bytes to encode and publish, with no mapping work.
/// Only a route that delivers one JSON output per message has such a ceiling.
fn write_ceiling_adapter(
    loaded: &crate::load::Loaded,
    route: &str,
    message_type: &str,
    payload: &[u8],
    dir: &std::path::Path,
) -> BenchResult<()> {
    let config = loaded
        .config
        .config
        .routes
        .iter()
        .find(|r| r.name == route)
        .ok_or_else(|| format!("route {route} not found"))?;
    if let Some(map) = config.to.first().and_then(|t| t.map.as_ref()) {
        return Err(format!(
            "route {route} delivers through the outbound mapping {map}; the ceiling is measured \
             on a route that delivers its canonical output"
        )
        .into());
    }
    let adapter = loaded
        .adapters
        .by_name
        .get(&config.map)
        .ok_or_else(|| format!("route {route}: adapter {} is not loaded", config.map))?;
    let envelope = lgsp_core::envelope::Envelope {
        message_id: "lgsp-bench-ceiling".into(),
        message_type: Some(message_type.to_owned()),
        ..Default::default()
    };
    let outputs = adapter
        .map_message(&envelope, payload, None, &loaded.limits())
        .map_err(|e| format!("the payload does not map on route {route}: {e}"))?;
    let [output] = outputs.as_slice() else {
        return Err(format!(
            "route {route} makes {} outputs of this payload; the ceiling needs one",
            outputs.len()
        )
        .into());
    };
    let Some(fields) = output
        .value
        .as_object()
        .filter(|_| output.content_type == "application/json")
    else {
        return Err(format!("route {route} does not make a JSON object of this payload").into());
    };
    let from = match lgsp_mapping::decode::sniff(payload) {
        Some(lgsp_mapping::decode::Format::Xml) => "xml",
        _ => "json",
    };
    let mut constants = serde_json::Map::with_capacity(fields.len() + 1);
    for (name, value) in fields {
        constants.insert(name.clone(), serde_json::json!({ "const": value }));
    }
    constants.insert(
        "lgsp_bench_reads_nothing".into(),
        serde_json::json!({ "path": "$.lgsp_bench_no_such_member" }),
    );
    let adapter_yaml = serde_json::json!({
        "description": format!("lgsp bench --ceiling: {route}'s output for one payload, as constants"),
        "messages": { message_type: [{ "mapping": CEILING }] },
        "mappings": { CEILING: {
            "from": from,
            "event": output.event,
            "fields": constants,
        } },
    });
    let folder = dir.join(CEILING);
    std::fs::create_dir_all(&folder)?;
    std::fs::write(
        folder.join("adapter.yaml"),
        serde_json::to_vec_pretty(&adapter_yaml)?,
    )?;
    Ok(())
}

async fn start_child(config: &serde_json::Value, names: &Names) -> BenchResult<Child> {
    let dir = std::env::temp_dir().join(format!("{}-router", names.prefix));
    std::fs::create_dir_all(&dir)?;
    let cfg_path = dir.join("lgsp.yaml");
    std::fs::write(&cfg_path, serde_json::to_vec_pretty(config)?)?;
    let log = dir.join("router.log");
    let out = std::fs::File::create(&log)?;
    let err = out.try_clone()?;
    let process = tokio::process::Command::new(std::env::current_exe()?)
        .arg("run")
        .arg("--config")
        .arg(&cfg_path)
        .arg("--no-wait")
        .env("LGSP_BROKER__PREFIX", &names.prefix)
        .env(
            "LGSP_STORE__URL",
            format!("sqlite://{}", dir.join("store.db").display()),
        )
        .env("LGSP_HTTP__LISTEN", "127.0.0.1:0")
        .stdin(std::process::Stdio::null())
        .stdout(out)
        .stderr(err)
        .kill_on_drop(true)
        .spawn()?;
    Ok(Child { process, dir, log })
}

/// Wait until the child answers `/readyz` with 200 (broker, store and topology ready,
/// consumers started), at the address it prints when it listens.
async fn wait_ready(child: &mut Child) -> BenchResult<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()?;
    let mut addr: Option<String> = None;
    loop {
        if let Ok(Some(status)) = child.process.try_wait() {
            return Err(format!(
                "the router exited ({status}) before it was ready:\n{}",
                child.log_tail()
            )
            .into());
        }
        if addr.is_none() {
            addr = std::fs::read_to_string(&child.log).ok().and_then(|log| {
                log.lines()
                    .find_map(|l| l.strip_prefix("http listening on "))
                    .map(|a| a.trim().to_owned())
            });
        }
        if let Some(a) = &addr
            && http
                .get(format!("http://{a}/readyz"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "the router was not ready within 60 s:\n{}",
                child.log_tail()
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A process's resident memory in KiB: `VmRSS` now, or `VmHWM` (its peak).
fn rss_kib(pid: u32, field: &str) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// CPU time a process has used (all its threads, user and system), in seconds.
/// `/proc` counts it in USER_HZ ticks, which Linux fixes at 100 per second for userspace.
pub(crate) fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces: count fields after its closing paren.
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let mut fields = rest.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some((user + system) as f64 / 100.0)
}

/// Resident memory and CPU of the router during run B.
#[derive(Debug, Default, Clone, Copy)]
struct Memory {
    /// CPU time per message, microseconds (all the router's threads).
    cpu_us_per_msg: f64,
    /// Median of the samples taken in the second half of the run, MiB.
    steady_mb: f64,
    /// The process's peak, MiB.
    peak_mb: f64,
}

/// A router run (B or C): a child `lgsp run` (see [`Child`]) on the configuration `setup`
/// makes for the run's scratch names.
#[allow(clippy::too_many_arguments)]
async fn router_run(
    conn: &Connection,
    config: &Config,
    prefix: &str,
    setup: impl FnOnce(&Names, Option<&str>) -> BenchResult<Setup>,
    message_type: &str,
    payload: &[u8],
    count: u64,
    webhook: bool,
) -> BenchResult<(Figures, Memory, Option<String>)> {
    let names = Names::new(prefix);
    let stop_receiver = tokio_util::sync::CancellationToken::new();
    let _stop_receiver = stop_receiver.clone().drop_guard();
    let receiver = match webhook {
        true => Some(webhook_receiver(stop_receiver).await?),
        false => None,
    };
    let setup = setup(&names, receiver.as_ref().map(|(url, _)| url.as_str()))?;
    let mut child = start_child(&setup.config, &names).await?;
    let ch = conn.create_channel().await?;
    let sink = format!("{}.sink", names.prefix);
    let result = async {
        wait_ready(&mut child).await?;
        declare_queue(&ch, &sink).await?;
        ch.queue_bind(
            sink.as_str().into(),
            names.output().as_str().into(),
            "#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
        let drain_from = match receiver {
            Some((_, ids)) => Sink::Webhook(ids),
            None => Sink::Queue(sink.clone()),
        };
        let pid = child.pid().ok_or("the router has no process id")?;
        let samples = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sampler = {
            let samples = samples.clone();
            tokio::spawn(async move {
                while let Some(kib) = rss_kib(pid, "VmRSS:") {
                    if let Ok(mut s) = samples.lock() {
                        s.push(kib);
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            })
        };
        let window = usize::from(config.broker.prefetch) * 4;
        let cpu_before = cpu_seconds(pid).unwrap_or(0.0);
        let figures = generate_and_drain(
            conn,
            &names.input(),
            message_type,
            message_type,
            drain_from,
            payload,
            count,
            setup.routes as u64,
            window,
        )
        .await;
        sampler.abort();
        let cpu = cpu_seconds(pid).unwrap_or(0.0) - cpu_before;
        let peak = rss_kib(pid, "VmHWM:").unwrap_or(0);
        let mut late: Vec<f64> = samples
            .lock()
            .map(|s| {
                s[s.len() / 2..]
                    .iter()
                    .map(|k| *k as f64 / 1024.0)
                    .collect()
            })
            .unwrap_or_default();
        let memory = Memory {
            cpu_us_per_msg: cpu * 1e6 / count.max(1) as f64,
            steady_mb: median(&mut late),
            peak_mb: peak as f64 / 1024.0,
        };
        figures
            .map(|f| (f, memory))
            .map_err(|e| format!("{e}\nthe router's last lines:\n{}", child.log_tail()).into())
    }
    .await;
    let log = child.stop().await;
    // The router's own count, from its shutdown summary.
    let mapped = log
        .lines()
        .find(|l| l.contains("router stopped"))
        .map(|line| {
            let field = |name: &str| {
                line.split_whitespace()
                    .find_map(|w| w.strip_prefix(name))
                    .unwrap_or("?")
                    .to_owned()
            };
            format!(
                "decoded and mapped {} inputs (once each, whatever the number of routes)",
                field("mapped=")
            )
        });
    let mut scratch = setup.queues.clone();
    scratch.push(sink);
    remove_scratch(&ch, &names, &scratch, &setup.adapters, &setup.delays).await;
    let _ = tokio::time::timeout(CLOSE_WAIT, ch.close(200, "done".into())).await;
    result.map(|(figures, memory)| (figures, memory, mapped))
}

/// Delete every queue and exchange the child declared under the scratch prefix.
/// Delete what a scratch run declared: `extra` queues, the input queues of `adapters`,
/// the retry queues of `delays`, and the prefix's exchanges.
pub(crate) async fn remove_scratch(
    ch: &lapin::Channel,
    names: &Names,
    extra: &[String],
    adapters: &[String],
    delays: &[Duration],
) {
    let mut queues = extra.to_vec();
    queues.extend([names.failed(), names.unrouted()]);
    queues.extend(adapters.iter().map(|a| names.input_queue(a)));
    queues.extend(delays.iter().map(|d| names.retry(*d)));
    for q in &queues {
        let _ = ch
            .queue_delete(q.as_str().into(), QueueDeleteOptions::default())
            .await;
    }
    let mut exchanges = vec![
        names.input(),
        names.output(),
        names.failed(),
        names.unrouted(),
        names.app_exchange(),
        names.webhook_exchange(),
    ];
    exchanges.extend(delays.iter().map(|d| names.retry(*d)));
    for e in &exchanges {
        let _ = ch
            .exchange_delete(e.as_str().into(), ExchangeDeleteOptions::default())
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped() -> crate::load::Loaded {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        match crate::load::try_load(&root.join("config/lgsp.yaml")) {
            Ok(l) => l,
            Err(problems) => panic!("the shipped configuration loads: {problems:?}"),
        }
    }

    fn sample(path: &str) -> Vec<u8> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        std::fs::read(root.join(path)).expect("the sample is readable")
    }

    /// Run C publishes exactly what run B would, for the samples the performance goal
    /// names, and builds nothing of the payload.
    #[test]
    fn the_ceiling_adapter_emits_the_routes_output_and_reads_nothing() {
        let loaded = shipped();
        let envelope = |ty: &str| lgsp_core::envelope::Envelope {
            message_id: "lgsp-bench-ceiling".into(),
            message_type: Some(ty.to_owned()),
            ..Default::default()
        };
        for (route, ty, file) in [
            (
                "tax-canonical",
                "tax.einvoice.issued",
                "adapters/tax/samples/einvoice-vat-basic.xml",
            ),
            (
                "bizreg-canonical",
                "bizreg.enterprise.registered",
                "adapters/bizreg/samples/enterprise-registered.xml",
            ),
            (
                "emis-canonical",
                "emis.school.updated",
                "adapters/emis/samples/school-profile.json",
            ),
        ] {
            let payload = sample(file);
            let dir = tempfile::tempdir().expect("a scratch folder");
            write_ceiling_adapter(&loaded, route, ty, &payload, dir.path())
                .unwrap_or_else(|e| panic!("{route}: {e}"));
            let ceiling = lgsp_mapping::dsl::Adapter::load(CEILING, &dir.path().join(CEILING))
                .unwrap_or_else(|p| panic!("{route}: the ceiling adapter loads: {p:?}"));
            let adapter = loaded
                .config
                .config
                .routes
                .iter()
                .find(|r| r.name == route)
                .map(|r| &loaded.adapters.by_name[&r.map])
                .expect("the route exists");
            let real = adapter
                .map_message(&envelope(ty), &payload, None, &loaded.limits())
                .expect("the sample maps");
            let (outputs, decoded) = ceiling
                .map_message_using(
                    &envelope(ty),
                    &payload,
                    None,
                    &loaded.limits(),
                    lgsp_mapping::dsl::Decoding::Auto,
                )
                .expect("the ceiling maps");
            assert_eq!(outputs.len(), 1, "{route}");
            // Objects compare as maps: the constants' keys may come out in another order.
            assert_eq!(outputs[0].value, real[0].value, "{route}");
            assert_eq!(outputs[0].body.len(), real[0].body.len(), "{route}");
            assert_eq!(outputs[0].event, real[0].event, "{route}");
            if file.ends_with(".xml") {
                assert_eq!(decoded, lgsp_mapping::dsl::Decoded::Projected, "{route}");
            }
        }
    }

    #[test]
    fn the_ceiling_is_refused_for_routes_without_one_json_output() {
        let loaded = shipped();
        let dir = tempfile::tempdir().expect("a scratch folder");
        let registration = sample("adapters/bizreg/samples/enterprise-registered.xml");
        // Its target delivers the tax office's XML through an outbound mapping.
        let e = write_ceiling_adapter(
            &loaded,
            "bizreg-registered",
            "bizreg.enterprise.registered",
            &registration,
            dir.path(),
        )
        .expect_err("an outbound mapping has no constant ceiling");
        assert!(e.to_string().contains("outbound mapping"), "{e}");
        let e = write_ceiling_adapter(
            &loaded,
            "tax-canonical",
            "tax.einvoice.issued",
            b"<HDon><broken></HDon>",
            dir.path(),
        )
        .expect_err("a payload that does not map");
        assert!(
            e.to_string()
                .contains("does not map on route tax-canonical"),
            "{e}"
        );
        let e = write_ceiling_adapter(&loaded, "no-such-route", "x", b"{}", dir.path())
            .expect_err("an unknown route");
        assert!(e.to_string().contains("no-such-route"), "{e}");
    }

    #[test]
    fn cpu_seconds_counts_this_process() {
        let pid = std::process::id();
        let before = cpu_seconds(pid).expect("this process's /proc/self/stat is readable");
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let mut spins = 0u64;
        let mut after = before;
        while after <= before && std::time::Instant::now() < deadline {
            for i in 0..100_000u64 {
                spins = std::hint::black_box(spins.wrapping_add(i));
            }
            after = cpu_seconds(pid).expect("still readable");
        }
        assert!(after > before, "CPU time did not grow: {before} -> {after}");
        assert_eq!(cpu_seconds(u32::MAX), None, "no such process");
    }

    #[test]
    fn median_of_odd_and_even() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
    }
}
