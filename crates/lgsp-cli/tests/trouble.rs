//! The bus on its bad days, each test in its own vhost: targets that refuse, payloads
//! that crash the process, connections closed under it, shutdown mid-stream, a broker
//! that contradicts the configuration. Tests that restart the whole broker are ignored
//! here and run in the serial phase of CI (`--run-ignored only`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use lgsp_testkit::{Amqp, Lgsp, Received, Vhost};

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_lgsp"))
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn branch() -> Vec<u8> {
    std::fs::read(repo().join("adapters/bizreg/samples/branch-registered.xml")).unwrap()
}

fn config(dir: &Path, routes: &str, extra: &str) -> PathBuf {
    let text = format!(
        "adapter_dir: \"{0}/adapters\"\nschema_dir: \"{0}/schemas\"\nreference_dir: \"{0}/reference\"\nadapters: [bizreg]\n{extra}routes:\n{routes}",
        repo().display()
    );
    let path = dir.join("lgsp.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

const SIMPLE: &str = "  - name: bizreg\n    from: { binding: \"bizreg.#\" }\n    map: bizreg\n    to:\n      - exchange: lgsp.out\n";

fn start(vhost: &Vhost, cfg: &Path, env: &[(&str, String)]) -> Lgsp {
    let mut all = vec![("LGSP_BROKER__URL", vhost.url())];
    all.extend(env.iter().cloned());
    let mut l = Lgsp::spawn(&bin(), cfg, &all);
    l.wait_ready();
    l
}

fn ids(n: usize, prefix: &str) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

fn tally(received: &[Received]) -> (usize, usize) {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for r in received {
        *seen
            .entry(r.message_id.as_deref().unwrap_or(""))
            .or_default() += 1;
    }
    (seen.len(), seen.values().map(|c| c - 1).sum())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusing_target_is_retried_until_it_recovers() {
    let vhost = Vhost::new("retry-ok");
    let dir = tempfile::tempdir().unwrap();
    let amqp = Amqp::connect(&vhost.url()).await;
    amqp.bounded_target("ext", "ext.q", 1).await;
    amqp.publish("ext", "filler", "filler", b"x").await; // ext.q is now full
    let routes = "  - name: r\n    from: { binding: \"bizreg.#\" }\n    map: bizreg\n    to:\n      - exchange: ext\n    retry: { attempts: 20, delays: [200ms] }\n";
    let cfg = config(dir.path(), routes, "");
    let bus = start(&vhost, &cfg, &[]);
    // The bus's own ingestor consumes lgsp.failed: watch a copy.
    amqp.bind_queue("test.failed", "lgsp.failed", "").await;
    amqp.publish("lgsp.in", "bizreg.branch.registered", "m-retry", &branch())
        .await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    // The target recovers: take the filler out.
    let filler = amqp.drain("ext.q", 1, Duration::from_secs(2)).await;
    assert_eq!(filler[0].message_id.as_deref(), Some("filler"));
    let got = amqp.drain("ext.q", 1, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 1, "{}", bus.log());
    assert_eq!(got[0].message_id.as_deref(), Some("m-retry"));
    let attempt: u32 = got[0].headers["lgsp-attempt"].parse().unwrap();
    assert!(
        attempt >= 2,
        "delivered on attempt {attempt}: it should have been retried"
    );
    assert_eq!(amqp.count("test.failed").await, 0);
}

/// A retry comes back to the input queue through the default exchange, with the
/// queue's name as its routing key: a message published without a `type` is still
/// mapped by the routing key it was published with (it used to fail on its retry,
/// mapped as type `lgsp.route.r`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_message_without_a_type_keeps_its_routing_key() {
    let vhost = Vhost::new("retry-untyped");
    let dir = tempfile::tempdir().unwrap();
    let amqp = Amqp::connect(&vhost.url()).await;
    amqp.bounded_target("ext", "ext.q", 1).await;
    amqp.publish("ext", "filler", "filler", b"x").await;
    let routes = "  - name: r\n    from: { binding: \"bizreg.#\" }\n    map: bizreg\n    to:\n      - exchange: ext\n    retry: { attempts: 20, delays: [200ms] }\n";
    let cfg = config(dir.path(), routes, "");
    let bus = start(&vhost, &cfg, &[]);
    amqp.bind_queue("test.failed", "lgsp.failed", "").await;
    let untyped = lapin::BasicProperties::default()
        .with_message_id("m-untyped".into())
        .with_delivery_mode(2);
    amqp.publish_with("lgsp.in", "bizreg.branch.registered", untyped, &branch())
        .await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let filler = amqp.drain("ext.q", 1, Duration::from_secs(2)).await;
    assert_eq!(filler[0].message_id.as_deref(), Some("filler"));
    let got = amqp.drain("ext.q", 1, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 1, "{}", bus.log());
    assert_eq!(got[0].message_id.as_deref(), Some("m-untyped"));
    assert!(got[0].headers["lgsp-attempt"].parse::<u32>().unwrap() >= 2);
    assert_eq!(amqp.count("test.failed").await, 0, "{}", bus.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_that_never_recovers_fails_after_exactly_the_attempts_and_only_it_is_retried() {
    let vhost = Vhost::new("retry-never");
    let dir = tempfile::tempdir().unwrap();
    let amqp = Amqp::connect(&vhost.url()).await;
    amqp.bounded_target("never", "never.q", 0).await;
    let routes = "  - name: r\n    from: { binding: \"bizreg.#\" }\n    map: bizreg\n    to:\n      - exchange: lgsp.out\n      - exchange: never\n    retry: { attempts: 3, delays: [100ms, 200ms] }\n";
    let cfg = config(dir.path(), routes, "");
    let _bus = start(&vhost, &cfg, &[]);
    amqp.bind_queue("test.out", "lgsp.out", "#").await;
    amqp.bind_queue("test.failed", "lgsp.failed", "").await;
    amqp.publish("lgsp.in", "bizreg.branch.registered", "m-never", &branch())
        .await;
    let failed = amqp.drain("test.failed", 1, Duration::from_secs(10)).await;
    assert_eq!(failed.len(), 1);
    let h = &failed[0].headers;
    assert_eq!(h["lgsp-error-kind"], "delivery");
    assert_eq!(
        h["lgsp-targets"], "r/exchange:never",
        "only the failing target remains"
    );
    assert_eq!(h["lgsp-attempt"], "2", "three tries: attempts 0, 1 and 2");
    assert!(
        h["lgsp-error"].contains("after 3 attempts"),
        "{}",
        h["lgsp-error"]
    );
    let out = amqp.drain("test.out", 5, Duration::from_secs(2)).await;
    assert_eq!(
        out.len(),
        1,
        "the healthy target got the message once, not once per retry"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_that_crashes_the_process_ends_in_failed_as_poison() {
    let vhost = Vhost::new("poison");
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        SIMPLE,
        "broker: { delivery_limit: 2, prefetch: 1 }\n",
    );
    let mut first = start(&vhost, &cfg, &[]);
    let amqp = Amqp::connect(&vhost.url()).await;
    amqp.bind_queue("test.out", "lgsp.out", "#").await;
    amqp.bind_queue("test.failed", "lgsp.failed", "").await;
    first.terminate();
    first.wait_exit(Duration::from_secs(20));

    let good = ids(30, "good");
    amqp.publish("lgsp.in", "bizreg.branch.registered", "m-poison", &branch())
        .await;
    amqp.publish_many("lgsp.in", "bizreg.branch.registered", &good, &branch())
        .await;
    let env = [("FAILPOINTS", "abort_on_message_id=m-poison".to_owned())];
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut restarts = 0;
    while amqp.count("test.failed").await == 0 && Instant::now() < deadline {
        let mut l = Lgsp::spawn(
            &bin(),
            &cfg,
            &[("LGSP_BROKER__URL", vhost.url()), env[0].clone()],
        );
        l.wait_exit(Duration::from_secs(5));
        restarts += 1;
    }
    let _bus = start(&vhost, &cfg, &env);
    let failed = amqp.drain("test.failed", 1, Duration::from_secs(10)).await;
    assert_eq!(failed.len(), 1, "after {restarts} restarts");
    assert_eq!(failed[0].message_id.as_deref(), Some("m-poison"));
    assert!(
        failed[0].headers.contains_key("x-death"),
        "dead-lettered by the broker: {:?}",
        failed[0].headers
    );
    assert!(
        !failed[0].headers.contains_key("lgsp-error-kind"),
        "no lgsp failure headers: it is poison"
    );
    let out = amqp.drain("test.out", 200, Duration::from_secs(5)).await;
    let (unique, _) = tally(&out);
    assert_eq!(unique, 30, "the bus keeps routing the others");
}

/// A panic in a mapping fails that input (to the failed path, with the panic's message)
/// whether it was mapped on the receiving worker (small) or on the blocking pool
/// (over 32 KiB); the bus keeps routing the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_a_mapping_fails_that_input_only() {
    let vhost = Vhost::new("panic");
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), SIMPLE, "");
    let env = [(
        "FAILPOINTS",
        "panic_on_message_id=m-panic-small,panic_on_message_id=m-panic-large".to_owned(),
    )];
    let _bus = start(&vhost, &cfg, &env);
    let amqp = Amqp::connect(&vhost.url()).await;
    amqp.bind_queue("test.out", "lgsp.out", "#").await;
    amqp.bind_queue("test.failed", "lgsp.failed", "").await;

    let small = branch();
    let large = lgsp_testkit::padded(&small, 40 * 1024);
    let key = "bizreg.branch.registered";
    amqp.publish("lgsp.in", key, "m-panic-small", &small).await;
    amqp.publish("lgsp.in", key, "m-panic-large", &large).await;
    amqp.publish("lgsp.in", key, "m-fine", &small).await;

    let failed = amqp.drain("test.failed", 2, Duration::from_secs(20)).await;
    let mut ids: Vec<_> = failed
        .iter()
        .map(|f| f.message_id.clone().unwrap_or_default())
        .collect();
    ids.sort();
    assert_eq!(ids, ["m-panic-large", "m-panic-small"]);
    for f in &failed {
        assert_eq!(
            f.headers.get("lgsp-error-code").map(String::as_str),
            Some("mapping.panic"),
            "{:?}",
            f.headers
        );
        let error = f.headers.get("lgsp-error").cloned().unwrap_or_default();
        assert!(
            error.contains("failpoint panic_on_message_id"),
            "the panic's message is kept: {error}"
        );
    }
    let out = amqp.drain("test.out", 1, Duration::from_secs(20)).await;
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].message_id.as_deref(), Some("m-fine"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_closed_mid_stream_lose_nothing() {
    let vhost = Vhost::new("close-conns");
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), SIMPLE, "");
    let mut first = start(&vhost, &cfg, &[]);
    let amqp = Amqp::connect(&vhost.url()).await;
    amqp.bind_queue("test.out", "lgsp.out", "#").await;
    first.terminate();
    first.wait_exit(Duration::from_secs(20));
    let sent = ids(10_000, "c");
    amqp.publish_many("lgsp.in", "bizreg.branch.registered", &sent, &branch())
        .await;
    drop(amqp);

    let bus = start(&vhost, &cfg, &[]);
    let watcher = Amqp::connect(&vhost.url()).await;
    while watcher.count("test.out").await < 2_000 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(watcher);
    let status = std::process::Command::new("rabbitmqctl")
        .args([
            "close_all_connections",
            "-p",
            &vhost.name,
            "closed by a test",
        ])
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let amqp = Amqp::connect(&vhost.url()).await;
    let got = amqp
        .drain("test.out", 20_000, Duration::from_secs(15))
        .await;
    let (unique, dups) = tally(&got);
    eprintln!(
        "close_all_connections: sent 10000, delivered {unique}, duplicated {dups}, lost {}",
        10_000 - unique
    );
    assert_eq!(unique, 10_000, "{}", bus.log());
    assert!(
        bus.log().contains("reconnecting"),
        "the bus reconnected: {}",
        bus.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_stream_exits_cleanly_and_loses_nothing() {
    let vhost = Vhost::new("sigterm");
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), SIMPLE, "");
    let mut first = start(&vhost, &cfg, &[]);
    let amqp = Amqp::connect(&vhost.url()).await;
    amqp.bind_queue("test.out", "lgsp.out", "#").await;
    first.terminate();
    first.wait_exit(Duration::from_secs(20));
    let sent = ids(5_000, "t");
    amqp.publish_many("lgsp.in", "bizreg.branch.registered", &sent, &branch())
        .await;

    let mut bus = start(&vhost, &cfg, &[]);
    while amqp.count("test.out").await < 500 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bus.terminate();
    let started = Instant::now();
    let code = bus.wait_exit(Duration::from_secs(30));
    let took = started.elapsed();
    eprintln!("sigterm: exited with {code:?} after {took:?}");
    assert_eq!(code, Some(0), "{}", bus.log());
    assert!(
        bus.log().contains("router stopped"),
        "counts are logged: {}",
        bus.log()
    );
    let _again = start(&vhost, &cfg, &[]);
    let got = amqp
        .drain("test.out", 20_000, Duration::from_secs(10))
        .await;
    let (unique, dups) = tally(&got);
    eprintln!(
        "sigterm: sent 5000, delivered {unique}, duplicated {dups}, lost {}",
        5_000 - unique
    );
    assert_eq!(unique, 5_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_that_contradicts_the_input_queues_refuses_the_start() {
    let vhost = Vhost::new("policy");
    let dir = tempfile::tempdir().unwrap();
    let (s, b) = lgsp_testkit::management(
        "PUT",
        &format!("/api/policies/{}/cap", vhost.name),
        r#"{"pattern":"^lgsp\\.in\\.","definition":{"max-length":10},"apply-to":"queues"}"#,
    )
    .unwrap();
    assert!((200..300).contains(&s), "{s} {b}");
    let cfg = config(
        dir.path(),
        SIMPLE,
        "broker: { management_url: \"http://guest:guest@127.0.0.1:15672\" }\n",
    );
    let mut l = Lgsp::spawn(&bin(), &cfg, &[("LGSP_BROKER__URL", vhost.url())]);
    assert_eq!(l.wait_exit(Duration::from_secs(20)), Some(2));
    let log = l.log();
    assert!(
        log.contains("policy `cap`") && log.contains("max-length"),
        "{log}"
    );
}

/// An upgrade from a version that read one queue per route: messages still waiting in
/// such a queue would never be read again; the start is refused and says what to do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_left_in_a_per_route_queue_of_an_earlier_version_refuse_the_start() {
    let vhost = Vhost::new("legacy");
    let dir = tempfile::tempdir().unwrap();
    let amqp = Amqp::connect(&vhost.url()).await;
    amqp.bind_queue("lgsp.route.old", "amq.topic", "old").await;
    amqp.publish("amq.topic", "old", "m-old", b"{}").await;
    let cfg = config(
        dir.path(),
        SIMPLE,
        "broker: { management_url: \"http://guest:guest@127.0.0.1:15672\" }\n",
    );
    // The management API, which the start-up check reads, counts a message a few
    // seconds after it arrived.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (_, q) = lgsp_testkit::management(
            "GET",
            &format!("/api/queues/{}/lgsp.route.old", vhost.name),
            "",
        )
        .unwrap();
        let v: serde_json::Value = serde_json::from_str(&q).unwrap_or_default();
        if v["messages"].as_u64() == Some(1) || std::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let mut l = Lgsp::spawn(&bin(), &cfg, &[("LGSP_BROKER__URL", vhost.url())]);
    assert_eq!(l.wait_exit(Duration::from_secs(30)), Some(2), "{}", l.log());
    let log = l.log();
    assert!(
        log.contains("queue lgsp.route.old still holds 1 messages of an earlier lgsp"),
        "{log}"
    );
    assert_eq!(amqp.count("lgsp.route.old").await, 1, "the message stays");
}

/// Serial phase: stops and starts the broker application, which every test shares.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "serial: restarts the broker"]
async fn serial_broker_restart_and_sigkills_lose_nothing() {
    let vhost = Vhost::new("restart");
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), SIMPLE, "");
    let mut first = start(&vhost, &cfg, &[]);
    let amqp = Amqp::connect(&vhost.url()).await;
    amqp.bind_queue("test.out", "lgsp.out", "#").await;
    first.terminate();
    first.wait_exit(Duration::from_secs(20));
    let sent = ids(10_000, "s");
    amqp.publish_many("lgsp.in", "bizreg.branch.registered", &sent, &branch())
        .await;
    drop(amqp);

    // SIGKILL three times mid-stream.
    for round in 1..=3 {
        let mut bus = start(&vhost, &cfg, &[]);
        let probe = Amqp::connect(&vhost.url()).await;
        while probe.count("test.out").await < 1_500 * round {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bus.child.kill().unwrap();
        let _ = bus.child.wait();
    }
    // The broker stopped and started mid-stream.
    let bus = start(&vhost, &cfg, &[]);
    let probe = Amqp::connect(&vhost.url()).await;
    while probe.count("test.out").await < 6_000 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(probe);
    let run = |args: &[&str]| {
        let o = std::process::Command::new("rabbitmqctl")
            .args(args)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    run(&["stop_app"]);
    std::thread::sleep(Duration::from_secs(2));
    run(&["start_app"]);
    run(&["await_startup"]);
    let amqp = Amqp::connect(&vhost.url()).await;
    let got = amqp
        .drain("test.out", 30_000, Duration::from_secs(20))
        .await;
    let (unique, dups) = tally(&got);
    eprintln!(
        "serial: sent 10000, delivered {unique}, duplicated {dups}, lost {}",
        10_000 - unique
    );
    assert_eq!(unique, 10_000, "{}", bus.log());
}

/// `lgsp <args>` with a deadline: (exit code, stdout, stderr).
fn lgsp(args: &[&str], env: &[(&str, &str)], deadline: Duration) -> (i32, String, String) {
    lgsp_testkit::run_to_exit(&bin(), args, env, deadline)
}

/// `broker.urls` lists the nodes of a cluster and replaces `broker.url`: with a dead
/// `url` and a dead first node, every broker client reaches the live node — the router
/// (a message is delivered), the failed-message ingestor (a failure is stored), replay
/// (the failure is replayed), `lgsp publish`, `lgsp watch` and `lgsp bench`. Before,
/// only the router read `urls`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_broker_client_honours_broker_urls() {
    let vhost = Vhost::new("urls");
    let dir = tempfile::tempdir().unwrap();
    let dead = "amqp://guest:guest@127.0.0.1:1/%2f";
    let extra = format!(
        "broker: {{ url: \"{dead}\", urls: [\"{dead}\", \"{}\"] }}\n",
        vhost.url()
    );
    let cfg = config(dir.path(), SIMPLE, &extra);
    let cfg_s = cfg.display().to_string();
    let token = "urls-operator-token";
    let mut bus = Lgsp::spawn(
        &bin(),
        &cfg,
        &[("LGSP_ADMIN__OPERATOR_TOKEN", token.to_owned())],
    );
    bus.wait_ready();
    let api = format!("http://{}", bus.addr);
    let ctl = [("LGSPCTL_URL", api.as_str()), ("LGSPCTL_TOKEN", token)];

    // watch (in the background) and publish.
    let watch = {
        let cfg_s = cfg_s.clone();
        std::thread::spawn(move || {
            lgsp(
                &["watch", "--config", &cfg_s, "--count", "1"],
                &[],
                Duration::from_secs(30),
            )
        })
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    let publish = |id: &str, file: &Path| {
        lgsp(
            &[
                "publish",
                "--config",
                &cfg_s,
                "--routing-key",
                "bizreg.branch.registered",
                "--message-id",
                id,
                &file.display().to_string(),
            ],
            &[],
            Duration::from_secs(30),
        )
    };
    let sample = repo().join("adapters/bizreg/samples/branch-registered.xml");
    let (code, out, err) = publish("m-urls", &sample);
    assert_eq!((code, out.trim()), (0, "m-urls"), "publish: {err}");
    let (code, out, err) = watch.join().unwrap();
    assert_eq!(code, 0, "watch: {err}");
    assert!(
        out.contains("m-urls"),
        "watch saw the routed message: {out}"
    );

    // A failure is stored by the ingestor, then replayed.
    let bad = dir.path().join("bad.xml");
    std::fs::write(&bad, "<DangKyDonViPhuThuoc><x></DangKyDonViPhuThuoc>").unwrap();
    let (code, _, err) = publish("m-bad", &bad);
    assert_eq!(code, 0, "{err}");
    let listed = |want: usize| -> Vec<serde_json::Value> {
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            let (code, out, err) = lgsp(
                &["failed", "list", "--json", "--all"],
                &ctl,
                Duration::from_secs(30),
            );
            assert_eq!(code, 0, "{err}");
            let items: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
            if items.len() >= want || Instant::now() > until {
                assert_eq!(items.len(), want, "{out}\n{}", bus.log());
                return items;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    let items = listed(1);
    let id = items[0]["id"].to_string();
    let (code, out, err) = lgsp(&["failed", "replay", &id], &ctl, Duration::from_secs(30));
    assert_eq!(code, 0, "replay: {out}{err}");
    // Replayed unchanged, it fails again: a second record.
    listed(2);

    // The bench: its pass-through and its child router both reach the live node.
    let (code, out, err) = lgsp(
        &[
            "bench",
            "--config",
            &cfg_s,
            "--payload",
            &sample.display().to_string(),
            "--type",
            "bizreg.branch.registered",
            "--count",
            "50",
            "--pairs",
            "1",
        ],
        &[],
        Duration::from_secs(120),
    );
    assert_eq!(code, 0, "bench: {out}{err}");
    assert!(
        out.lines().last().unwrap_or("").starts_with("ratio "),
        "{out}"
    );
    bus.stop_cleanly();
}
