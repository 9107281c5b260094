//! The bus under faults, counted: each case sends thousands of messages with unique ids
//! (a fiftieth of them deliberately bad), breaks something mid-stream, and checks per
//! target that every good id arrived (none lost; duplicates counted and printed), that
//! no queue is left holding or unacknowledging anything, and that the failed store holds
//! exactly the bad messages, once each.
//!
//! Brokers and PostgreSQL servers are the tests' own (`RabbitNode`, `PgNode`), never the
//! machine's. Serial phase (`--run-ignored only`): each case loads the whole machine.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{
    OPERATOR, assert_failed_exactly, drain_target, ids, kill, queue_holds, settle, start, stored,
    stored_when,
};
use lapin::BasicProperties;
use lapin::options::BasicPublishOptions;
use lgsp_testkit::node::{NodeConfig, RabbitNode};
use lgsp_testkit::pgnode::PgNode;
use lgsp_testkit::{Amqp, Lgsp, PgSchema, http, lgsp_bin, repo};
use serde_json::Value;

const KEY: &str = "bizreg.enterprise.registered";

/// The default flow's targets of an enterprise registration (config/lgsp.yaml): the
/// canonical event on `lgsp.out` (read through a test queue), and the tax and finance
/// applications' queues.
const TARGETS: [&str; 3] = ["test.canonical", "lgsp.app.tax", "lgsp.app.finance"];

/// Every `BAD_EVERY`th message of a stream is deliberately bad.
const BAD_EVERY: usize = 50;

/// A stream's ids, split into (good, bad): every `BAD_EVERY`th is bad.
fn stream(prefix: &str, n: usize) -> (Vec<String>, Vec<String>) {
    let (mut good, mut bad) = (Vec::new(), Vec::new());
    for (i, id) in ids(prefix, n).into_iter().enumerate() {
        if i % BAD_EVERY == BAD_EVERY - 1 {
            bad.push(id);
        } else {
            good.push(id);
        }
    }
    (good, bad)
}

/// Publish `good` with `body` and `bad` with `bad_body` to `lgsp.in`, interleaved as
/// their numbers say, confirms pipelined.
async fn publish_stream(
    amqp: &Amqp,
    key: &str,
    good: &[String],
    body: &[u8],
    bad: &[String],
    bad_body: &[u8],
) {
    let mut all: Vec<(&String, &[u8])> = good
        .iter()
        .map(|id| (id, body))
        .chain(bad.iter().map(|id| (id, bad_body)))
        .collect();
    let number = |id: &str| -> usize { id.rsplit('-').next().unwrap().parse().unwrap() };
    all.sort_by_key(|(id, _)| number(id));
    let mut pending = Vec::with_capacity(all.len());
    for (id, payload) in all {
        let props = BasicProperties::default()
            .with_message_id(id.as_str().into())
            .with_type(key.into())
            .with_delivery_mode(2);
        pending.push(
            amqp.channel
                .basic_publish(
                    "lgsp.in".into(),
                    key.into(),
                    BasicPublishOptions::default(),
                    payload,
                    props,
                )
                .await
                .unwrap(),
        );
    }
    for p in pending {
        assert!(p.await.unwrap().is_ack());
    }
}

/// The shipped configuration (real default-flow routes) on a RabbitMQ node and an
/// SQLite store of the case's own.
struct Flow {
    // Fields drop in this order: the node stops before its folder goes.
    node: RabbitNode,
    dir: tempfile::TempDir,
    good: Vec<String>,
    bad: Vec<String>,
}

impl Flow {
    /// Start the node, declare the topology once (a bus started and stopped), bind the
    /// test queue of the canonical target, and publish a stream of `n`.
    async fn new(label: &str, n: usize) -> Flow {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("node")).unwrap();
        let node = RabbitNode::start(&dir.path().join("node"), NodeConfig::default());
        let (good, bad) = stream(label, n);
        let flow = Flow {
            node,
            dir,
            good,
            bad,
        };
        let mut bus = flow.bus();
        let amqp = Amqp::connect(&flow.node.url()).await;
        amqp.bind_queue(TARGETS[0], "lgsp.out", "#").await;
        bus.stop_cleanly();
        let body = std::fs::read(repo().join("adapters/bizreg/samples/enterprise-registered.xml"))
            .unwrap();
        publish_stream(
            &amqp,
            KEY,
            &flow.good,
            &body,
            &flow.bad,
            b"<HoSo><MaHoSo>truncated",
        )
        .await;
        flow
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("LGSP_BROKER__URL", self.node.url()),
            (
                "LGSP_STORE__URL",
                format!("sqlite://{}/store/lgsp.db", self.dir.path().display()),
            ),
        ]
    }

    fn bus(&self) -> Lgsp {
        start(&repo().join("config/lgsp.yaml"), &self.env())
    }

    /// Messages the canonical target holds so far (0 while the node is down).
    async fn delivered(&self) -> u32 {
        match tokio::time::timeout(Duration::from_secs(5), async {
            let amqp = lapin::Connection::connect(&self.node.url(), Default::default()).await?;
            let ch = amqp.create_channel().await?;
            let q = ch
                .queue_declare(
                    TARGETS[0].into(),
                    lapin::options::QueueDeclareOptions {
                        passive: true,
                        ..Default::default()
                    },
                    Default::default(),
                )
                .await?;
            let _ = amqp.close(200, "ok".into()).await;
            Ok::<u32, lapin::Error>(q.message_count())
        })
        .await
        {
            Ok(Ok(n)) => n,
            _ => 0,
        }
    }

    /// Wait until the canonical target holds `n` messages.
    async fn until_delivered(&self, n: usize, bus: &Lgsp) {
        let deadline = Instant::now() + Duration::from_secs(120);
        while (self.delivered().await as usize) < n {
            assert!(
                Instant::now() < deadline,
                "fewer than {n} delivered in 120 s: {}",
                bus.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn ctl(&self, args: &[&str]) {
        let out = self.node.ctl(args);
        assert!(out.status.success(), "rabbitmqctl {args:?}: {out:?}");
    }

    /// The checks every case ends with, on a running bus: per target, each good id
    /// arrived; nothing is left in any queue; the store holds exactly the bad ones.
    async fn verify(&self, case: &str, bus: &Lgsp) {
        let amqp = Amqp::connect(&self.node.url()).await;
        let mut outcomes = Vec::new();
        for target in TARGETS {
            outcomes.push(drain_target(&amqp, target, &self.good).await);
        }
        let records = stored_when(&bus.addr, self.bad.len(), Duration::from_secs(60));
        let left = settle(&self.node);
        println!(
            "chaos {case}: sent {} ({} good, {} bad); failed store {} records",
            self.good.len() + self.bad.len(),
            self.good.len(),
            self.bad.len(),
            records.len()
        );
        for o in &outcomes {
            println!("chaos {case}:   {o}");
        }
        for o in &outcomes {
            o.assert_complete(&bus.log());
        }
        assert_failed_exactly(&records, &self.bad, &bus.log());
        assert!(
            records.iter().all(|r| r["error_kind"] == "decode"),
            "{records:?}"
        );
        assert!(left.is_empty(), "queues not settled: {left:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "serial: a broker restarted under load"]
async fn the_broker_restarted_twice_mid_stream_loses_nothing() {
    let flow = Flow::new("restart", 3000).await;
    let mut bus = flow.bus();
    for round in 1..=2 {
        flow.until_delivered(flow.good.len() * round / 3, &bus)
            .await;
        flow.ctl(&["stop_app"]);
        std::thread::sleep(Duration::from_secs(1));
        flow.ctl(&["start_app"]);
        flow.ctl(&["await_startup"]);
    }
    flow.verify("broker restarted twice", &bus).await;
    assert!(bus.log().contains("reconnecting"), "{}", bus.log());
    bus.stop_cleanly();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "serial: a stream under SIGKILL"]
async fn lgsp_killed_three_times_mid_stream_loses_nothing() {
    let flow = Flow::new("sigkill", 3000).await;
    for round in 1..=3 {
        let mut bus = flow.bus();
        flow.until_delivered(flow.good.len() * round / 4, &bus)
            .await;
        kill(&mut bus);
    }
    let mut bus = flow.bus();
    flow.verify("SIGKILL three times", &bus).await;
    bus.stop_cleanly();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "serial: every connection of a broker closed"]
async fn every_connection_closed_by_the_broker_twice_loses_nothing() {
    let flow = Flow::new("closeall", 3000).await;
    let mut bus = flow.bus();
    for round in 1..=2 {
        flow.until_delivered(flow.good.len() * round / 3, &bus)
            .await;
        flow.ctl(&["close_all_connections", "closed by the chaos suite"]);
    }
    flow.verify("close_all_connections twice", &bus).await;
    assert!(bus.log().contains("reconnecting"), "{}", bus.log());
    bus.stop_cleanly();
}

/// A configuration in `dir/config` with the demo adapter (`{"thing": {...}}`, mapped from
/// `$.thing.<field>`, required) routed to `lgsp.out`.
fn demo(dir: &Path, field: &str, extra: &str) -> PathBuf {
    lgsp_testkit::demo_adapter(dir, field);
    let cfg = dir.join("config/lgsp.yaml");
    std::fs::write(
        &cfg,
        format!(
            "adapter_dir: ../adapters\nadapters: [demo]\n{extra}routes:\n  - name: demo\n    from: {{ binding: \"demo.#\" }}\n    map: demo\n    to:\n      - exchange: lgsp.out\n"
        ),
    )
    .unwrap();
    cfg
}

const DEMO_KEY: &str = "demo.thing.created";
const DEMO_GOOD: &[u8] = br#"{"thing": {"name": "n", "label": "l"}}"#;
/// Fails while the mapping reads `name`; maps once it reads `label`.
const DEMO_BAD: &[u8] = br#"{"thing": {"label": "l"}}"#;

/// Two replicas on the same routes and one PostgreSQL store: one is killed mid-stream;
/// then, the mapping fixed, two operators replay the same group at once, one through
/// each replica, and each failure is replayed once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "serial: two replicas under load"]
async fn two_replicas_on_one_postgres_store_one_killed_then_one_group_replayed_twice_at_once() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("node")).unwrap();
    let node = RabbitNode::start(&dir.path().join("node"), NodeConfig::default());
    let schema = PgSchema::new("replicas").await;
    let cfg = demo(dir.path(), "name", "");
    let env = vec![
        ("LGSP_BROKER__URL", node.url()),
        ("LGSP_STORE__URL", schema.url()),
    ];
    let mut a = start(&cfg, &env);
    let mut b = start(&cfg, &env);
    let amqp = Amqp::connect(&node.url()).await;
    amqp.bind_queue("test.out", "lgsp.out", "#").await;
    let (good, bad) = stream("replica", 4000);
    publish_stream(&amqp, DEMO_KEY, &good, DEMO_GOOD, &bad, DEMO_BAD).await;
    while (amqp.count("test.out").await as usize) < good.len() / 2 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    kill(&mut a);

    let outcome = drain_target(&amqp, "test.out", &good).await;
    let records = stored_when(&b.addr, bad.len(), Duration::from_secs(60));
    println!(
        "chaos two replicas, one killed: sent {} ({} good, {} bad); failed store {} records",
        good.len() + bad.len(),
        good.len(),
        bad.len(),
        records.len()
    );
    println!("chaos two replicas, one killed:   {outcome}");
    outcome.assert_complete(&b.log());
    assert_failed_exactly(&records, &bad, &b.log());
    assert!(records.iter().all(|r| r["error_kind"] == "mapping"));
    let left = settle(&node);
    assert!(left.is_empty(), "queues not settled: {left:?}");

    // The mapping fixed: both replicas restarted on it; the same group replayed from
    // both at once.
    b.stop_cleanly();
    demo(dir.path(), "label", "");
    let a = start(&cfg, &env);
    let b = start(&cfg, &env);
    let (code, out, err) = common::failed(&a.addr, &["groups", "--json"]);
    assert_eq!(code, 0, "{err}");
    let groups: Value = serde_json::from_str(&out).unwrap();
    let key = groups[0]["key"].as_str().unwrap().to_owned();
    let replay = |bus: &Lgsp| {
        Command::new(lgsp_bin())
            .args([
                "failed",
                "replay",
                "--group",
                &key,
                "--batch-size",
                "10",
                "--json",
            ])
            .env("LGSPCTL_URL", format!("http://{}", bus.addr))
            .env("LGSPCTL_TOKEN", OPERATOR)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (one, two) = (replay(&a), replay(&b));
    // Each operator replays what it claims; the one left with nothing may end on
    // "no failed messages in group" (exit 1) once the other took the rest.
    let mut replayed = Vec::new();
    for op in [one, two] {
        let out = op.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let took = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v["replayed"].as_u64());
        replayed.push((out.status.code(), took));
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains("no failed messages in group"), "{err}");
        }
    }
    let again = drain_target(&amqp, "test.out", &bad).await;
    let records = stored(&a.addr);
    let statuses: Vec<&str> = records
        .iter()
        .map(|r| r["status"].as_str().unwrap_or(""))
        .collect();
    println!(
        "chaos two operators replaying one group: {} failures; the operators (exit code, replayed): {replayed:?};   {again}",
        bad.len()
    );
    again.assert_complete(&a.log());
    assert_eq!(again.duplicates, 0, "each failure replayed once");
    assert!(statuses.iter().all(|s| *s == "replayed"), "{statuses:?}");
    let left = settle(&node);
    assert!(left.is_empty(), "queues not settled: {left:?}");
}

/// `/readyz`'s status code.
fn ready(bus: &Lgsp) -> u16 {
    http(&bus.addr, "GET", "/readyz", "", None).map_or(0, |(s, _)| s)
}

fn until_ready(bus: &Lgsp, want: u16, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if ready(bus) == want {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// The store (PostgreSQL, a server of the test's own) stopped during a burst of
/// failures, then started: every failure stored once, every good message delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "serial: a store that stops under load"]
async fn postgres_stopped_during_a_burst_of_failures_then_started_loses_none() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("node")).unwrap();
    std::fs::create_dir_all(dir.path().join("pg")).unwrap();
    let node = RabbitNode::start(&dir.path().join("node"), NodeConfig::default());
    let pg = PgNode::start(&dir.path().join("pg"));
    let cfg = demo(dir.path(), "name", "");
    let env = vec![
        ("LGSP_BROKER__URL", node.url()),
        ("LGSP_STORE__URL", pg.url()),
    ];
    let bus = start(&cfg, &env);
    let amqp = Amqp::connect(&node.url()).await;
    amqp.bind_queue("test.out", "lgsp.out", "#").await;
    // Every other message fails: a burst of 1,000 failures.
    let all = ids("burst", 2000);
    let (good, bad): (Vec<String>, Vec<String>) = (
        all.iter().step_by(2).cloned().collect(),
        all.iter().skip(1).step_by(2).cloned().collect(),
    );
    publish_stream(&amqp, DEMO_KEY, &good, DEMO_GOOD, &bad, DEMO_BAD).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while stored(&bus.addr).len() < 50 {
        assert!(Instant::now() < deadline, "{}", bus.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    pg.stop();
    let down = Instant::now();
    assert!(
        until_ready(&bus, 503, Duration::from_secs(15)),
        "/readyz is not 503 with the store down: {}",
        bus.log()
    );
    std::thread::sleep(Duration::from_secs(3));
    pg.start_again();
    assert!(
        until_ready(&bus, 200, Duration::from_secs(30)),
        "/readyz is not 200 again: {}",
        bus.log()
    );
    let back = down.elapsed();
    let records = stored_when(&bus.addr, bad.len(), Duration::from_secs(60));
    let outcome = drain_target(&amqp, "test.out", &good).await;
    println!(
        "chaos PostgreSQL stopped for {:.1} s during a burst: sent {} ({} good, {} bad); failed store {} records;   {outcome}",
        back.as_secs_f64(),
        all.len(),
        good.len(),
        bad.len(),
        records.len()
    );
    outcome.assert_complete(&bus.log());
    assert_failed_exactly(&records, &bad, &bus.log());
    let left = settle(&node);
    assert!(left.is_empty(), "queues not settled: {left:?}");
}

/// A tmpfs of its own mounted on `path`, unmounted on drop (the test runs as root, as
/// CI does).
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(path: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(path).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "mounting a tmpfs needs root (CI runs as root): {out:?}"
        );
        Tmpfs(path.to_owned())
    }

    fn remount(&self, options: &str) {
        let out = Command::new("mount")
            .args(["-o", &format!("remount,{options}")])
            .arg(&self.0)
            .output()
            .unwrap();
        assert!(out.status.success(), "remount {options}: {out:?}");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// The SQLite store's file system refuses writes (`full`: no space left, mid-run; else
/// read-only when the bus starts, as after the kernel remounted a failing disk): a clear
/// error, `/readyz` 503, the failures stay in `lgsp.failed`; writable again, each is
/// stored once.
async fn sqlite_store_refusing_writes(full: bool) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("node")).unwrap();
    let node = RabbitNode::start(&dir.path().join("node"), NodeConfig::default());
    let fs = Tmpfs::mount(&dir.path().join("store"), "2m");
    let cfg = demo(dir.path(), "name", "");
    let env = vec![
        ("LGSP_BROKER__URL", node.url()),
        (
            "LGSP_STORE__URL",
            format!("sqlite://{}/store/lgsp.db", dir.path().display()),
        ),
        ("LGSP_ADMIN__OPERATOR_TOKEN", OPERATOR.to_owned()),
    ];
    let mut bus = start(&cfg, &env);
    let amqp = Amqp::connect(&node.url()).await;
    amqp.bind_queue("test.out", "lgsp.out", "#").await;
    if !full {
        // The store exists; the bus starts again on a read-only file system.
        bus.stop_cleanly();
        fs.remount("ro");
        bus = Lgsp::spawn(&lgsp_bin(), &cfg, &env);
    }
    let (good, bad) = (ids("fine", 20), ids("doomed", 40));
    // Failures of 100 KB each: 40 fill a 2 MB file system.
    let big_bad = format!(
        r#"{{"thing": {{"label": "l", "padding": "{}"}}}}"#,
        "x".repeat(100_000)
    );
    publish_stream(&amqp, DEMO_KEY, &good, DEMO_GOOD, &bad, big_bad.as_bytes()).await;
    let case = if full { "full" } else { "read-only" };
    assert!(
        until_ready(&bus, 503, Duration::from_secs(30)),
        "/readyz is not 503 with a {case} store: {}",
        bus.log()
    );
    let outcome = drain_target(&amqp, "test.out", &good).await;
    outcome.assert_complete(&bus.log());
    let (_, health) = http(&bus.addr, "GET", "/readyz", "", None).unwrap();
    // Nothing is lost meanwhile: what is not stored waits in lgsp.failed, unacked.
    let (mut held, mut kept) = (0, 0);
    let deadline = Instant::now() + Duration::from_secs(15);
    while held + kept != bad.len() as u64 && Instant::now() < deadline {
        // A store that cannot be opened lists nothing (and holds nothing new).
        kept = common::try_stored(&bus.addr).map_or(0, |r| r.len() as u64);
        held = queue_holds(&node, "lgsp.failed", bad.len() as u64 - kept);
    }
    println!(
        "chaos SQLite store {case}: /readyz 503 ({health}); stored {kept}, waiting in lgsp.failed {held}"
    );
    assert!(
        held > 0 && held + kept == bad.len() as u64,
        "every failure is stored or waits in lgsp.failed: {}",
        bus.log()
    );
    let log = bus.log();
    let wanted = if full { "full" } else { "read" };
    assert!(
        log.to_lowercase().contains(wanted) && log.contains("lgsp.db"),
        "the log says what is wrong and where: {log}"
    );

    fs.remount(if full { "size=64m" } else { "rw,size=64m" });
    assert!(
        until_ready(&bus, 200, Duration::from_secs(30)),
        "/readyz is not 200 again: {}",
        bus.log()
    );
    let records = stored_when(&bus.addr, bad.len(), Duration::from_secs(60));
    println!(
        "chaos SQLite store {case}: sent {} ({} good, {} bad); failed store {} records;   {outcome}",
        good.len() + bad.len(),
        good.len(),
        bad.len(),
        records.len()
    );
    assert_failed_exactly(&records, &bad, &bus.log());
    let left = settle(&node);
    assert!(left.is_empty(), "queues not settled: {left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "serial: mounts a file system"]
async fn a_read_only_sqlite_store_holds_failures_in_the_queue_until_writable() {
    sqlite_store_refusing_writes(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "serial: mounts a file system"]
async fn a_full_disk_under_the_sqlite_store_holds_failures_in_the_queue_until_freed() {
    sqlite_store_refusing_writes(true).await;
}
