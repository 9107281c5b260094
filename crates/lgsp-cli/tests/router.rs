//! The bus on the real RabbitMQ, each test in its own vhost: what arrives at targets,
//! batches, volume, crashes at the worst moments, the failed and unrouted paths, and
//! refusals at start.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use lgsp_core::envelope::{Envelope, child_message_id};
use lgsp_mapping::decode::Limits;
use lgsp_testkit::{Amqp, Lgsp, Vhost, repo, sample};

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_lgsp"))
}

/// The tax office's XML feed names the legal representatives: its agreement.
const TAX_AGREEMENT: &str = "agreements:\n  tax:\n    receiver: tax\n    fields: [$, $.legal_representatives.full_name, $.legal_representatives.citizen_id, $.legal_representatives.birth_date, $.legal_representatives.legacy_id, $.owners.name, $.owners.citizen_id]\n";

/// A config file with the repository's adapters and the given routes.
fn config(dir: &Path, routes: &str, extra: &str) -> PathBuf {
    let agreement = if routes.contains("app: tax") && !extra.contains("agreements:") {
        TAX_AGREEMENT
    } else {
        ""
    };
    let text = format!(
        "adapter_dir: \"{0}/adapters\"\nschema_dir: \"{0}/schemas\"\nreference_dir: \"{0}/reference\"\nadapters: [bizreg, emis]\n{agreement}{extra}routes:\n{routes}",
        repo().display()
    );
    let path = dir.join("lgsp.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

const BIZREG_ROUTES: &str = "  - name: bizreg
    from: { binding: \"bizreg.#\" }
    map: bizreg
    to:
      - exchange: lgsp.out
  - name: bizreg-to-tax
    from: { binding: \"bizreg.branch.registered\" }
    map: bizreg
    to:
      - app: tax
        map: bizreg.enterprise_to_tax_xml
";

/// One route, everything from `bizreg.#` mapped to `lgsp.out`.
const BIZREG_ONLY: &str = "  - name: bizreg\n    from: { binding: \"bizreg.#\" }\n    map: bizreg\n    to:\n      - exchange: lgsp.out\n";

/// A bus in its own vhost on `routes` (and `extra` configuration), with `test.out`
/// bound to `lgsp.out`. Fields drop in this order: the client, the bus, then the vhost.
struct Running {
    amqp: Amqp,
    bus: Lgsp,
    cfg: PathBuf,
    _dir: tempfile::TempDir,
    _vhost: Vhost,
}

async fn running(label: &str, routes: &str, extra: &str) -> Running {
    let vhost = Vhost::new(label);
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), routes, extra);
    let bus = start(&vhost, &cfg, None);
    let amqp = Amqp::connect(&vhost.url()).await;
    amqp.bind_queue("test.out", "lgsp.out", "#").await;
    Running {
        amqp,
        bus,
        cfg,
        _dir: dir,
        _vhost: vhost,
    }
}

/// The `router stopped` line of a bus's log, and a reader of its counters (`routed=`).
fn stop_summary(log: &str) -> (&str, impl Fn(&str) -> u64 + '_) {
    let stopped = log
        .lines()
        .find(|l| l.contains("router stopped"))
        .unwrap_or_else(|| panic!("no shutdown summary: {log}"));
    let field = move |name: &str| -> u64 {
        stopped
            .split_whitespace()
            .find_map(|w| w.strip_prefix(name))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} missing: {stopped}"))
    };
    (stopped, field)
}

/// The adapters of `cfg` as `lgsp map` loads them: the emis and tax adapters name Rust
/// steps, registered as the binary does.
fn adapters(cfg: &Path) -> lgsp_mapping::dsl::Adapters {
    let loaded = lgsp_core::config::load(cfg, lgsp_core::config::EnvOverrides::none()).unwrap();
    let mut steps = lgsp_core::step::StepRegistry::new();
    lgsp_adapter_emis::register(&mut steps).unwrap();
    lgsp_adapter_tax::register(&mut steps).unwrap();
    lgsp_mapping::dsl::Adapters::load_with_steps(&loaded, steps).unwrap()
}

fn start(vhost: &Vhost, cfg: &Path, failpoints: Option<&str>) -> Lgsp {
    let mut env = vec![("LGSP_BROKER__URL", vhost.url())];
    if let Some(f) = failpoints {
        env.push(("FAILPOINTS", f.to_owned()));
    }
    let mut l = Lgsp::spawn(&bin(), cfg, &env);
    l.wait_ready();
    l
}

fn ids(n: usize, prefix: &str) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

/// Unique ids received, and how many arrived more than once.
fn tally(received: &[lgsp_testkit::Received]) -> (usize, usize) {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for r in received {
        *seen
            .entry(r.message_id.as_deref().unwrap_or(""))
            .or_default() += 1;
    }
    let dups = seen.values().map(|c| c - 1).sum();
    (seen.len(), dups)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sample_arrives_at_each_target_as_lgsp_map_prints_it() {
    let Running { amqp, cfg, .. } = &running("sample", BIZREG_ROUTES, "").await;

    let body = sample("bizreg", "branch-registered.xml");
    amqp.publish("lgsp.in", "bizreg.branch.registered", "m-branch-1", &body)
        .await;

    let out = amqp.drain("test.out", 1, Duration::from_secs(20)).await;
    let tax = amqp.drain("lgsp.app.tax", 1, Duration::from_secs(20)).await;
    assert_eq!(out.len(), 1);
    assert_eq!(tax.len(), 1);

    // What lgsp map prints for the same input and envelope.
    let adapters = adapters(cfg);
    let adapter = &adapters.by_name["bizreg"];
    let env = Envelope {
        message_id: "m-branch-1".into(),
        message_type: Some("bizreg.branch.registered".into()),
        ..Envelope::default()
    };
    let expected = adapter
        .map_message(&env, &body, None, &Limits::default())
        .unwrap();
    assert_eq!(out[0].body, expected[0].body);
    assert_eq!(out[0].message_id.as_deref(), Some("m-branch-1"));
    assert_eq!(out[0].routing_key, "branch.registered");
    assert_eq!(
        out[0].headers.get("lgsp-route").map(String::as_str),
        Some("bizreg")
    );

    let program = adapter.program("enterprise_to_tax_xml").unwrap();
    let xml = adapter
        .run(
            program,
            &expected[0].value,
            lgsp_mapping::decode::Format::Json,
            &env,
        )
        .unwrap();
    assert_eq!(tax[0].body, xml[0].body);
    assert_eq!(tax[0].message_id.as_deref(), Some("m-branch-1"));
}

/// A message two routes of one adapter bind is decoded and mapped once, and each of the
/// routes' targets gets what `lgsp map` gives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_routes_binding_one_message_decode_and_map_it_once() {
    let Running { amqp, bus, cfg, .. } = &mut running("share", BIZREG_ROUTES, "").await;
    // Both routes bind branch registrations; only `bizreg` binds changes.
    let branches = ids(300, "b");
    let changes = ids(50, "c");
    let branch = sample("bizreg", "branch-registered.xml");
    let change = sample("bizreg", "enterprise-changed.xml");
    amqp.publish_many("lgsp.in", "bizreg.branch.registered", &branches, &branch)
        .await;
    amqp.publish_many("lgsp.in", "bizreg.enterprise.changed", &changes, &change)
        .await;
    let out = amqp.drain("test.out", 350, Duration::from_secs(30)).await;
    let tax = amqp
        .drain("lgsp.app.tax", 300, Duration::from_secs(30))
        .await;
    assert_eq!((out.len(), tax.len()), (350, 300));

    let adapters = adapters(cfg);
    let adapter = &adapters.by_name["bizreg"];
    let to_tax = adapter.program("enterprise_to_tax_xml").unwrap();
    for (id, ty, body) in branches
        .iter()
        .map(|id| (id, "bizreg.branch.registered", &branch))
        .chain(
            changes
                .iter()
                .map(|id| (id, "bizreg.enterprise.changed", &change)),
        )
    {
        let env = Envelope {
            message_id: id.clone(),
            message_type: Some(ty.into()),
            ..Envelope::default()
        };
        let expected = adapter
            .map_message(&env, body, None, &Limits::default())
            .unwrap();
        let got = out
            .iter()
            .find(|r| r.message_id.as_deref() == Some(id))
            .unwrap_or_else(|| panic!("{id} did not reach lgsp.out"));
        assert_eq!(got.body, expected[0].body, "{id} on lgsp.out");
        if ty == "bizreg.branch.registered" {
            let xml = adapter
                .run(
                    to_tax,
                    &expected[0].value,
                    lgsp_mapping::decode::Format::Json,
                    &env,
                )
                .unwrap();
            let got = tax
                .iter()
                .find(|r| r.message_id.as_deref() == Some(id))
                .unwrap_or_else(|| panic!("{id} did not reach the tax office"));
            assert_eq!(got.body, xml[0].body, "{id} at the tax office");
        }
    }

    let log = bus.stop_cleanly();
    let (stopped, field) = stop_summary(&log);
    // 350 inputs (300 branch registrations both routes bind, 50 changes one binds),
    // each mapped exactly once, and delivered to every target of both routes.
    assert_eq!(field("mapped="), 350, "{stopped}");
    assert_eq!(field("routed="), 350, "{stopped}");
}

/// Small inputs are mapped on the worker that received them, large ones (over 32 KiB)
/// on the blocking pool: both give what `lgsp map` gives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_input_is_mapped_like_a_small_one() {
    let Running { amqp, .. } = &running("large", BIZREG_ROUTES, "").await;

    let small = sample("bizreg", "branch-registered.xml");
    // The same document after a 40 KiB comment, which decoding skips.
    let large = lgsp_testkit::padded(&small, 40 * 1024);
    assert!(large.len() > 32 * 1024 && small.len() < 32 * 1024);

    amqp.publish("lgsp.in", "bizreg.branch.registered", "m-small", &small)
        .await;
    amqp.publish("lgsp.in", "bizreg.branch.registered", "m-large", &large)
        .await;
    let out = amqp.drain("test.out", 2, Duration::from_secs(20)).await;
    assert_eq!(out.len(), 2, "both inputs arrive");
    let by_id = |id: &str| {
        out.iter()
            .find(|r| r.message_id.as_deref() == Some(id))
            .unwrap_or_else(|| panic!("{id} did not arrive"))
    };
    let (s, l) = (by_id("m-small"), by_id("m-large"));
    assert!(!s.body.is_empty());
    assert_eq!(s.body, l.body, "the large input maps to the same output");
}

/// An administrator reads ERROR as "something is wrong": a start on a fresh broker
/// (the ingestor must not consume queues the router has not declared yet) and a clean
/// stop (no channel left closing behind the connection) log none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_on_a_fresh_broker_and_a_clean_stop_log_no_error() {
    let Running { amqp, bus, .. } = &mut running("quiet", BIZREG_ROUTES, "").await;
    let body = sample("bizreg", "branch-registered.xml");
    amqp.publish("lgsp.in", "bizreg.branch.registered", "m-quiet", &body)
        .await;
    assert_eq!(
        amqp.drain("test.out", 1, Duration::from_secs(20))
            .await
            .len(),
        1
    );
    let log = bus.stop_cleanly();
    assert!(log.contains("router stopped"), "{log}");
    let errors: Vec<&str> = log.lines().filter(|l| l.contains(" ERROR ")).collect();
    assert!(errors.is_empty(), "errors logged:\n{}", errors.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_yields_one_message_per_entity_with_the_contract_ids() {
    let routes = "  - name: emis\n    from: { binding: \"emis.#\" }\n    map: emis\n    to:\n      - exchange: lgsp.out\n";
    let Running { amqp, .. } = &running("batch", routes, "").await;
    amqp.publish(
        "lgsp.in",
        "emis.school.listed",
        "list-1",
        &sample("emis", "school-list.xml"),
    )
    .await;
    let got = amqp.drain("test.out", 10, Duration::from_secs(5)).await;
    assert_eq!(got.len(), 4, "four schools in the list");
    let mut got_ids: Vec<String> = got.iter().filter_map(|r| r.message_id.clone()).collect();
    got_ids.sort();
    let mut want: Vec<String> = (0..4).map(|i| child_message_id("list-1", i)).collect();
    want.sort();
    assert_eq!(got_ids, want);
    for r in &got {
        assert_eq!(r.correlation_id.as_deref(), Some("list-1"));
        assert_eq!(
            r.headers.get("lgsp-parent-id").map(String::as_str),
            Some("list-1")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_messages_all_arrive_and_nothing_is_left() {
    let Running { amqp, bus, .. } =
        &mut running("volume", BIZREG_ONLY, "broker: { prefetch: 64 }\n").await;
    amqp.bind_queue("test.failed", "lgsp.failed", "").await;
    let sent = ids(10_000, "v");
    let body = sample("bizreg", "branch-registered.xml");
    amqp.publish_many("lgsp.in", "bizreg.branch.registered", &sent, &body)
        .await;
    let got = amqp
        .drain("test.out", 10_000, Duration::from_secs(30))
        .await;
    let (unique, dups) = tally(&got);
    eprintln!("volume: sent 10000, delivered {unique}, duplicates {dups}");
    assert_eq!(unique, 10_000, "lost {}", 10_000 - unique);
    assert_eq!(dups, 0);
    assert_eq!(amqp.count("lgsp.in.bizreg").await, 0);
    assert_eq!(amqp.count("test.failed").await, 0, "{}", bus.log());
    assert_eq!(amqp.count("test.out").await, 0);
    // Acks were coalesced: fewer ack frames than inputs (one per input before).
    let log = bus.stop_cleanly();
    let (stopped, field) = stop_summary(&log);
    let (routed, frames) = (field("routed="), field("ack_frames="));
    eprintln!("acks: {routed} inputs in {frames} frames");
    assert_eq!(routed, 10_000, "{stopped}");
    assert!(
        frames > 0 && frames < routed,
        "10 000 inputs acked in {frames} frames: {stopped}"
    );
}

/// Publish `n`, run the bus with a failpoint until it crashes, restart it without, and
/// check that every message arrived.
async fn crash_and_recover(label: &str, failpoint: &str) {
    let vhost = Vhost::new(label);
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), BIZREG_ONLY, "");
    // Declare the topology and our output queue before anything is published.
    let mut bus = start(&vhost, &cfg, None);
    let amqp = Amqp::connect(&vhost.url()).await;
    amqp.bind_queue("test.out", "lgsp.out", "#").await;
    bus.terminate();
    assert_eq!(
        bus.wait_exit(Duration::from_secs(20)),
        Some(0),
        "{}",
        bus.log()
    );

    let sent = ids(500, label);
    amqp.publish_many(
        "lgsp.in",
        "bizreg.branch.registered",
        &sent,
        &sample("bizreg", "branch-registered.xml"),
    )
    .await;
    let mut crashing = Lgsp::spawn(
        &bin(),
        &cfg,
        &[
            ("LGSP_BROKER__URL", vhost.url()),
            ("FAILPOINTS", failpoint.to_owned()),
        ],
    );
    let code = crashing.wait_exit(Duration::from_secs(30));
    assert_eq!(
        code,
        Some(70),
        "the failpoint should end the process: {}",
        crashing.log()
    );
    let _again = start(&vhost, &cfg, None);
    let got = amqp
        .drain("test.out", usize::MAX, Duration::from_secs(5))
        .await;
    let (unique, dups) = tally(&got);
    eprintln!(
        "{label}: sent 500, delivered {unique}, duplicates {dups}, lost {}",
        500 - unique
    );
    assert_eq!(unique, 500, "messages lost");
    assert_eq!(amqp.count("lgsp.in.bizreg").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_publish_and_confirm_loses_nothing() {
    crash_and_recover("crash-confirm", "exit_after_publish_before_confirm=100").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_confirm_and_ack_loses_nothing() {
    crash_and_recover("crash-ack", "exit_after_confirm_before_ack=100").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_payload_lands_once_in_failed_and_an_unbound_key_in_unrouted() {
    let vhost = Vhost::new("failed");
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), BIZREG_ROUTES, "");
    let _bus = start(&vhost, &cfg, None);
    let amqp = Amqp::connect(&vhost.url()).await;
    // The bus's own ingestor consumes lgsp.failed and lgsp.unrouted: watch copies.
    amqp.bind_queue("test.failed", "lgsp.failed", "").await;
    amqp.bind_queue("test.unrouted", "lgsp.unrouted", "").await;
    let bad = b"<HoSo><MaHoSo>x</HoSo>".to_vec();
    amqp.publish("lgsp.in", "bizreg.enterprise.registered", "m-bad", &bad)
        .await;
    amqp.publish("lgsp.in", "nobody.binds.this", "m-lost", b"{}")
        .await;

    let failed = amqp.drain("test.failed", 5, Duration::from_secs(5)).await;
    assert_eq!(failed.len(), 1, "exactly once");
    let f = &failed[0];
    assert_eq!(f.body, bad, "body unchanged");
    assert_eq!(f.message_id.as_deref(), Some("m-bad"));
    let h = |k: &str| f.headers.get(k).cloned().unwrap_or_default();
    assert_eq!(h("lgsp-error-kind"), "decode");
    assert_eq!(h("lgsp-error-code"), "decode.xml.syntax");
    assert!(h("lgsp-error").contains("line 1"), "{}", h("lgsp-error"));
    assert_eq!(h("lgsp-route"), "bizreg");
    assert_eq!(h("lgsp-original-exchange"), "lgsp.in");
    assert_eq!(
        h("lgsp-original-routing-key"),
        "bizreg.enterprise.registered"
    );
    assert_eq!(h("lgsp-targets"), "bizreg/exchange:lgsp.out");
    assert!(!h("lgsp-failure-id").is_empty() && !h("lgsp-failed-at").is_empty());

    let unrouted = amqp.drain("test.unrouted", 5, Duration::from_secs(3)).await;
    assert_eq!(unrouted.len(), 1);
    assert_eq!(unrouted[0].message_id.as_deref(), Some("m-lost"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_target_exchange_or_a_conflicting_queue_refuses_to_start() {
    let vhost = Vhost::new("refuse");
    let dir = tempfile::tempdir().unwrap();
    let routes = "  - name: r1\n    from: { binding: \"bizreg.#\" }\n    map: bizreg\n    to:\n      - exchange: nowhere.exchange\n";
    let cfg = config(dir.path(), routes, "");
    let mut l = Lgsp::spawn(&bin(), &cfg, &[("LGSP_BROKER__URL", vhost.url())]);
    assert_eq!(l.wait_exit(Duration::from_secs(20)), Some(2));
    assert!(
        l.log()
            .contains("route r1: target exchange `nowhere.exchange` does not exist"),
        "{}",
        l.log()
    );

    // A classic queue where a quorum input queue is expected (in a vhost of its own:
    // the first start declared the input queue before it checked the target).
    let vhost = Vhost::new("refuse-queue");
    let amqp = Amqp::connect(&vhost.url()).await;
    amqp.bind_queue("lgsp.in.bizreg", "amq.topic", "x").await;
    let routes = "  - name: r2\n    from: { binding: \"bizreg.#\" }\n    map: bizreg\n    to:\n      - exchange: lgsp.out\n";
    let cfg = config(dir.path(), routes, "");
    let mut l = Lgsp::spawn(&bin(), &cfg, &[("LGSP_BROKER__URL", vhost.url())]);
    assert_eq!(l.wait_exit(Duration::from_secs(20)), Some(2));
    let log = l.log();
    assert!(
        log.contains("queue lgsp.in.bizreg exists with different settings"),
        "{log}"
    );
    assert!(
        log.contains("x-queue-type") || log.contains("inequivalent"),
        "{log}"
    );
}

#[test]
fn publish_prints_the_message_id_and_an_unreachable_broker_exits_3() {
    let vhost = Vhost::new("publish");
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), BIZREG_ROUTES, "");
    // Topology first, so lgsp.in exists.
    let mut bus = Lgsp::spawn(&bin(), &cfg, &[("LGSP_BROKER__URL", vhost.url())]);
    bus.wait_ready();
    let file = repo().join("adapters/bizreg/samples/branch-registered.xml");
    let out = std::process::Command::new(bin())
        .args(["publish", "--config"])
        .arg(&cfg)
        .args([
            "--routing-key",
            "bizreg.branch.registered",
            "--message-id",
            "pub-1",
        ])
        .arg(&file)
        .env("LGSP_BROKER__URL", vhost.url())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "pub-1");

    let out = std::process::Command::new(bin())
        .args(["publish", "--config"])
        .arg(&cfg)
        .args(["--routing-key", "x"])
        .arg(&file)
        .env("LGSP_BROKER__URL", "amqp://guest:secret-pw@127.0.0.1:1/%2f")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("amqp://guest:***@127.0.0.1:1/%2f") && !err.contains("secret-pw"),
        "{err}"
    );
    assert!(err.contains("rabbitmq-server"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_schema_fails_what_does_not_satisfy_it_and_when_filters_targets() {
    let vhost = Vhost::new("validate");
    let dir = tempfile::tempdir().unwrap();
    let routes = "  - name: wrong-schema
    from: { binding: \"bizreg.enterprise.dissolved\" }
    map: bizreg
    validate: lgsp.school/1
    to:
      - exchange: lgsp.out
  - name: branches-only
    from: { binding: \"bizreg.*.registered\" }
    map: bizreg
    validate: lgsp.enterprise/1
    to:
      - app: branches
        when: $.parent_enterprise_code
      - app: everyone
";
    let cfg = config(dir.path(), routes, "");
    let _bus = start(&vhost, &cfg, None);
    let amqp = Amqp::connect(&vhost.url()).await;
    // The bus's own ingestor consumes lgsp.failed: watch a copy.
    amqp.bind_queue("test.failed", "lgsp.failed", "").await;
    amqp.publish(
        "lgsp.in",
        "bizreg.enterprise.dissolved",
        "m-diss",
        &sample("bizreg", "enterprise-dissolved.xml"),
    )
    .await;
    amqp.publish(
        "lgsp.in",
        "bizreg.enterprise.registered",
        "m-ent",
        &sample("bizreg", "enterprise-registered.xml"),
    )
    .await;
    amqp.publish(
        "lgsp.in",
        "bizreg.branch.registered",
        "m-br",
        &sample("bizreg", "branch-registered.xml"),
    )
    .await;

    let failed = amqp.drain("test.failed", 5, Duration::from_secs(5)).await;
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].message_id.as_deref(), Some("m-diss"));
    assert_eq!(failed[0].headers["lgsp-error-kind"], "validation");
    assert!(
        failed[0].headers["lgsp-error"].contains("lgsp.school/1"),
        "{}",
        failed[0].headers["lgsp-error"]
    );

    let everyone = amqp
        .drain("lgsp.app.everyone", 5, Duration::from_secs(3))
        .await;
    let branches = amqp
        .drain("lgsp.app.branches", 5, Duration::from_secs(3))
        .await;
    assert_eq!(everyone.len(), 2);
    assert_eq!(branches.len(), 1, "only the branch has a parent enterprise");
    assert_eq!(branches[0].message_id.as_deref(), Some("m-br"));
}

#[test]
#[ignore = "loads the whole broker: runs in the serial phase (cargo nextest run --run-ignored only)"]
fn bench_prints_the_ratio_and_cleans_up() {
    let vhost = Vhost::new("bench");
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), BIZREG_ROUTES, "");
    // Output to files and a deadline, so that a hang shows what the bench printed.
    let out_path = dir.path().join("bench.out");
    let err_path = dir.path().join("bench.err");
    let mut child = std::process::Command::new(bin())
        .args(["bench", "--config"])
        .arg(&cfg)
        .args([
            "--type",
            "bizreg.branch.registered",
            "--count",
            "300",
            "--pairs",
            "1",
            // Both routes of BIZREG_ROUTES bind branch registrations.
            "--all-routes",
            // And run C: the first route's output as constants, mapping nothing.
            "--ceiling",
            "--payload",
        ])
        .arg(repo().join("adapters/bizreg/samples/branch-registered.xml"))
        .env("LGSP_BROKER__URL", vhost.url())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(150);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let stdout = std::fs::read_to_string(&out_path).unwrap_or_default();
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    let status =
        status.unwrap_or_else(|| panic!("bench still running after 150 s:\n{stdout}{stderr}"));
    assert!(status.success(), "{stdout}{stderr}");
    let last = stdout.lines().last().unwrap();
    assert!(
        last.starts_with("ratio ") && last.contains("median A") && last.contains("median B"),
        "{last}"
    );
    let ratio: f64 = last.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(ratio > 0.0);
    assert!(
        stdout.contains("µs/msg"),
        "CPU per message is printed: {stdout}"
    );
    assert!(
        stdout.starts_with("route bizreg + bizreg-to-tax (bizreg.branch.registered)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("B delivers 2 outputs per input"),
        "{stdout}"
    );
    // 300 inputs both routes bind: each decoded and mapped once.
    let mapped = stdout
        .lines()
        .find_map(|l| l.strip_prefix("pair 1 B router mapping: decoded and mapped "))
        .unwrap_or_else(|| panic!("no mapping count: {stdout}"));
    assert!(mapped.starts_with("300 inputs"), "{mapped}");
    // Run C delivered every message (the drain waits for all) and is summed up before
    // the last line.
    assert!(
        stdout.contains("C: the router on one route that maps nothing and emits bizreg's output"),
        "{stdout}"
    );
    assert!(stdout.contains("pair 1 C ceiling: "), "{stdout}");
    assert!(stdout.contains("pair 1: C/A "), "{stdout}");
    let summary = stdout
        .lines()
        .find_map(|l| l.strip_prefix("ceiling "))
        .unwrap_or_else(|| panic!("no ceiling summary: {stdout}"));
    let ceiling: f64 = summary.split_whitespace().next().unwrap().parse().unwrap();
    assert!(ceiling > 0.0, "{summary}");
    let b_to_c: f64 = summary
        .rsplit_once("B/C ")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or_else(|| panic!("no B/C in {summary}"));
    assert!(b_to_c > 0.0, "{summary}");
    assert!(
        !std::fs::read_dir(std::env::temp_dir())
            .unwrap()
            .filter_map(Result::ok)
            .any(|e| e.file_name().to_string_lossy().ends_with("-ceiling")
                && e.file_name().to_string_lossy().starts_with("lgsp-bench-")),
        "the ceiling adapter's folder is removed"
    );
    assert!(
        !stderr.contains(" ERROR "),
        "a clean bench logs no error:\n{stderr}"
    );
    let (status, queues) =
        lgsp_testkit::management("GET", &format!("/api/queues/{}", vhost.name), "").unwrap();
    assert_eq!(status, 200);
    assert!(
        !queues.contains("lgsp-bench-"),
        "scratch queues removed: {queues}"
    );
}
