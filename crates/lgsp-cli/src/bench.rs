//! `lgsp bench`: measure the router against the broker it runs on. In one run, alternating
//! A B A B: (A) a raw pass-through (consume with the same prefetch, publish unchanged
//! with the same confirm window, ack after confirm) and (B) the real router on the route
//! of the configuration that binds the message type. Each under its own scratch prefix,
//! removed afterwards; a closed-loop generator and a drain; msgs/s, MB/s, end-to-end
//! latency, peak RSS, and the ratio B/A.

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
}

/// The longest a channel or connection close may take: a broker that does not answer
/// must not keep the bench from printing its figures.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

struct Figures {
    /// CPU time of this process per message, microseconds: the generator and the drain,
    /// and in run A the pass-through too.
    own_cpu_us_per_msg: f64,
    msgs_per_s: f64,
    mb_per_s: f64,
    p50: Duration,
    p99: Duration,
}

pub fn run(args: &BenchArgs) -> u8 {
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
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::FAILED;
        }
    };
    rt.block_on(async move {
        let conn = match lgsp_amqp::connect(&config.broker.url, "lgsp bench").await {
            Ok(c) => c,
            Err(e) => {
                eprintln!("error: {e}");
                return exit::UNREACHABLE;
            }
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
        if routes.len() > 1 {
            println!(
                "B delivers {} outputs per input (one per route), A one: B/A is not like for like; \
                 compare router CPU and msgs/s (inputs) between builds",
                routes.len()
            );
        }
        let (mut a_rates, mut b_rates, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        let (mut steady, mut peaks, mut cpus) = (Vec::new(), Vec::new(), Vec::new());
        for pair in 1..=args.pairs {
            let a = match raw_run(
                &conn,
                &config,
                &format!("lgsp-bench-{tag}-a{pair}"),
                &payload,
                args.count,
            )
            .await
            {
                Ok(f) => f,
                Err(e) => {
                    eprintln!("error: pass-through run: {e}");
                    return exit::FAILED;
                }
            };
            report("A pass-through", pair, &a);
            let (b, memory, sharing) = match router_run(
                &conn,
                &loaded.config,
                &routes,
                &format!("lgsp-bench-{tag}-b{pair}"),
                &args.message_type,
                &payload,
                args.count,
            )
            .await
            {
                Ok(f) => f,
                Err(e) => {
                    eprintln!("error: router run: {e}");
                    return exit::FAILED;
                }
            };
            report("B router", pair, &b);
            println!(
                "pair {pair} B router memory: steady RSS {:.1} MB, peak RSS {:.1} MB; CPU {:.0} µs/msg",
                memory.steady_mb, memory.peak_mb, memory.cpu_us_per_msg
            );
            if let Some(sharing) = sharing {
                println!("pair {pair} B router sharing: {sharing}");
            }
            cpus.push(memory.cpu_us_per_msg);
            steady.push(memory.steady_mb);
            peaks.push(memory.peak_mb);
            let ratio = b.msgs_per_s / a.msgs_per_s.max(f64::MIN_POSITIVE);
            println!("pair {pair}: B/A {ratio:.3}");
            a_rates.push(a.msgs_per_s);
            b_rates.push(b.msgs_per_s);
            ratios.push(ratio);
        }
        println!(
            "router RSS: steady median {:.1} MB, peak max {:.1} MB; router CPU median {:.0} µs/msg",
            median(&mut steady),
            peaks.iter().copied().fold(0.0, f64::max),
            median(&mut cpus)
        );
        let _ = tokio::time::timeout(CLOSE_WAIT, conn.close(200, "done".into())).await;
        println!(
            "ratio {:.3} (median A {:.0} msgs/s, median B {:.0} msgs/s)",
            median(&mut ratios),
            median(&mut a_rates),
            median(&mut b_rates)
        );
        exit::OK
    })
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

fn quorum() -> FieldTable {
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
    sink: &str,
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
    let mut consumer = ch
        .basic_consume(
            sink.into(),
            "bench-drain".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?;
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
                let Ok(Some(Ok(d))) =
                    tokio::time::timeout(Duration::from_secs(60), consumer.next()).await
                else {
                    break;
                };
                let index = d
                    .properties
                    .message_id()
                    .as_ref()
                    .and_then(|m| m.as_str().strip_prefix("bench-"))
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
            (lat, consumer)
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
    let (mut lat, consumer) = drain.await?;
    // Close the channel before dropping its consumer: the broker cancels it with the channel.
    let _ = tokio::time::timeout(CLOSE_WAIT, ch.close(200, "done".into())).await;
    drop(consumer);
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
    let result =
        generate_and_drain(conn, "", &input, "bench", &sink, payload, count, 1, window).await;
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

/// The child's configuration: the original file (JSON is YAML) with only the measured
/// routes, the targets of each replaced by one on the scratch output exchange (its first
/// outbound mapping kept), and the folders made absolute. Broker prefix, store and HTTP
/// address come from the environment, so they win over any override the operator has set.
fn child_config(
    loaded: &lgsp_core::config::LoadedConfig,
    measured: &[String],
    output: &str,
) -> BenchResult<serde_json::Value> {
    let text = std::fs::read_to_string(&loaded.path)?;
    let mut doc: serde_json::Value = serde_yaml::from_str(&text)?;
    let obj = doc
        .as_object_mut()
        .ok_or("the configuration is not a mapping")?;
    let routes = obj
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
        let mut target = serde_json::json!({ "exchange": output, "routing_key": "bench" });
        if let Some(m) = map {
            target["map"] = m;
        }
        chosen["to"] = serde_json::json!([target]);
        kept.push(chosen);
    }
    obj.insert("routes".into(), serde_json::Value::Array(kept));
    for (key, dir) in [
        ("adapter_dir", loaded.adapter_dir()),
        ("schema_dir", loaded.schema_dir()),
        ("reference_dir", loaded.reference_dir()),
    ] {
        let abs = std::fs::canonicalize(&dir).unwrap_or(dir);
        obj.insert(key.into(), abs.display().to_string().into());
    }
    Ok(doc)
}

async fn start_child(
    loaded: &lgsp_core::config::LoadedConfig,
    routes: &[String],
    names: &Names,
) -> BenchResult<Child> {
    let dir = std::env::temp_dir().join(format!("{}-router", names.prefix));
    std::fs::create_dir_all(&dir)?;
    let cfg_path = dir.join("lgsp.yaml");
    let cfg = child_config(loaded, routes, &names.output())?;
    std::fs::write(&cfg_path, serde_json::to_vec_pretty(&cfg)?)?;
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
fn cpu_seconds(pid: u32) -> Option<f64> {
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

/// (B) the real router on `routes`: a child `lgsp run` (see [`Child`]).
async fn router_run(
    conn: &Connection,
    loaded: &lgsp_core::config::LoadedConfig,
    routes: &[String],
    prefix: &str,
    message_type: &str,
    payload: &[u8],
    count: u64,
) -> BenchResult<(Figures, Memory, Option<String>)> {
    let config = &loaded.config;
    let names = Names::new(prefix);
    let mut child = start_child(loaded, routes, &names).await?;
    let ch = conn.create_channel().await?;
    let sink = format!("{prefix}.sink");
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
            &sink,
            payload,
            count,
            routes.len() as u64,
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
    let sharing = log
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
                "mapped {} inputs, {} took the mapping another route kept",
                field("mapped="),
                field("mappings_shared=")
            )
        });
    remove_scratch(&ch, &names, &sink, routes, config).await;
    let _ = tokio::time::timeout(CLOSE_WAIT, ch.close(200, "done".into())).await;
    result.map(|(figures, memory)| (figures, memory, sharing))
}

/// Delete every queue and exchange the child declared under the scratch prefix.
async fn remove_scratch(
    ch: &lapin::Channel,
    names: &Names,
    sink: &str,
    routes: &[String],
    config: &Config,
) {
    let delays: Vec<Duration> = config
        .routes
        .iter()
        .filter(|r| routes.contains(&r.name))
        .flat_map(|r| r.retry.delays.iter().map(|d| d.get()))
        .collect();
    let mut queues = vec![sink.to_owned(), names.failed(), names.unrouted()];
    queues.extend(routes.iter().map(|r| names.route_queue(r)));
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
