//! Failed messages end to end on the real RabbitMQ, each test in its own vhost and with
//! its own store (SQLite in a temporary folder, or a PostgreSQL schema): a mapping
//! failure listed, fixed and replayed; a store outage during a burst; poison and
//! unrouted messages; tokens through the CLI.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use futures_lite::StreamExt;
use lapin::options::{BasicConsumeOptions, BasicNackOptions, BasicQosOptions};
use lapin::types::FieldTable;
use lgsp_core::config::SecretUrl;
use lgsp_store::{Filter, Store};
use lgsp_testkit::{Amqp, Lgsp, PgSchema, Vhost};
use serde_json::Value;

const OPERATOR: &str = "operator-secret-token";
const VIEWER: &str = "viewer-secret-token";
const VIEWER_SHA256: &str = "a72bf14466a555a28f46b4fdba9d825359a9f1e5ebc9fa627fd113365cf67542";

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_lgsp"))
}

/// Where a test keeps its failed messages.
enum Backend {
    Sqlite(tempfile::TempDir),
    Postgres(PgSchema),
}

impl Backend {
    async fn new(pg: bool, label: &str) -> Backend {
        if pg {
            Backend::Postgres(PgSchema::new(label).await)
        } else {
            Backend::Sqlite(tempfile::tempdir().unwrap())
        }
    }
    fn url(&self) -> String {
        match self {
            Backend::Sqlite(d) => format!("sqlite://{}/data/lgsp.db", d.path().display()),
            Backend::Postgres(s) => s.url(),
        }
    }
    /// The same store, opened by the test.
    async fn open(&self) -> Store {
        let s = Store::open(&SecretUrl::new(self.url())).unwrap();
        s.migrate().await.unwrap();
        s
    }
}

const DEMO_ROUTE: &str = "  - name: demo\n    from: { binding: \"demo.#\" }\n    map: demo\n    to:\n      - exchange: lgsp.out\n";

/// A configuration with one adapter, `demo`, whose mapping needs `$.thing.<field>`.
fn setup(dir: &Path, field: &str, extra: &str) -> PathBuf {
    setup_routes(dir, field, extra, DEMO_ROUTE)
}

/// As [`setup`], with other routes (YAML list items under `routes:`).
fn setup_routes(dir: &Path, field: &str, extra: &str, routes: &str) -> PathBuf {
    lgsp_testkit::demo_adapter(dir, field);
    let cfg = dir.join("config/lgsp.yaml");
    std::fs::write(
        &cfg,
        format!("adapter_dir: ../adapters\nadapters: [demo]\nadmin: {{ viewer_token_sha256: [\"{VIEWER_SHA256}\"] }}\n{extra}routes:\n{routes}"),
    )
    .unwrap();
    cfg
}

fn start(vhost: &Vhost, cfg: &Path, store: &Backend, failpoints: Option<&str>) -> Lgsp {
    let mut env = vec![
        ("LGSP_BROKER__URL", vhost.url()),
        ("LGSP_STORE__URL", store.url()),
        ("LGSP_ADMIN__OPERATOR_TOKEN", OPERATOR.to_owned()),
    ];
    if let Some(f) = failpoints {
        env.push(("FAILPOINTS", f.to_owned()));
    }
    let mut l = Lgsp::spawn(&bin(), cfg, &env);
    l.wait_ready();
    l
}

/// `lgsp failed ARGS` against the bus: (exit code, stdout, stderr).
fn failed(bus: &Lgsp, token: Option<&str>, args: &[&str]) -> (i32, String, String) {
    let mut cmd = Command::new(bin());
    cmd.arg("failed")
        .args(args)
        .env("LGSPCTL_URL", format!("http://{}", bus.addr))
        .env_remove("LGSPCTL_TOKEN");
    if let Some(t) = token {
        cmd.env("LGSPCTL_TOKEN", t);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `lgsp failed list --json ARGS` until it shows `n` items.
fn list_until(bus: &Lgsp, n: usize, args: &[&str]) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut a = vec!["list", "--json", "--all"];
        a.extend_from_slice(args);
        let (code, out, err) = failed(bus, Some(VIEWER), &a);
        assert_eq!(code, 0, "{err}");
        let items: Vec<Value> = serde_json::from_str(&out).unwrap();
        if items.len() >= n || Instant::now() > deadline {
            assert_eq!(items.len(), n, "{out}\n{}", bus.log());
            return items;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn id_of(items: &[Value], message_id: &str) -> String {
    items
        .iter()
        .find(|v| v["message_id"] == message_id)
        .unwrap_or_else(|| panic!("{message_id} not in {items:?}"))["id"]
        .to_string()
}

async fn listed_fixed_and_replayed(pg: bool) {
    let vhost = Vhost::new("replay");
    let dir = tempfile::tempdir().unwrap();
    let store = Backend::new(pg, "replay").await;
    let cfg = setup(dir.path(), "name", "");
    let mut bus = start(&vhost, &cfg, &store, None);
    let amqp = Amqp::connect(&vhost.url()).await;
    amqp.bind_queue("test.out", "lgsp.out", "#").await;
    let bad = br#"{"thing": {"label": "first"}}"#;
    amqp.publish("lgsp.in", "demo.thing.created", "m-1", bad)
        .await;
    amqp.publish("lgsp.in", "demo.thing.created", "m-2", bad)
        .await;

    let items = list_until(&bus, 2, &[]);
    for it in &items {
        assert_eq!(it["error_kind"], "mapping");
        assert_eq!(it["status"], "failed");
        assert_eq!(it["route"], "demo");
        assert!(
            it["error"]
                .as_str()
                .unwrap()
                .contains("field name: required value missing at $.thing.name"),
            "{it}"
        );
    }
    let (id1, id2) = (id_of(&items, "m-1"), id_of(&items, "m-2"));
    let (code, table, _) = failed(&bus, Some(VIEWER), &["list"]);
    assert_eq!(code, 0);
    assert!(
        table.starts_with("ID")
            && table.contains("m-1")
            && table.contains("required value missing"),
        "{table}"
    );

    // Tokens: none is refused, a viewer cannot replay and changes nothing.
    let (code, _, err) = failed(&bus, None, &["list"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("401"), "{err}");
    let (code, _, err) = failed(&bus, Some(VIEWER), &["replay", &id1]);
    assert_eq!(code, 1);
    assert!(err.contains("403"), "{err}");
    assert_eq!(list_until(&bus, 2, &["--status", "failed"]).len(), 2);

    // Fix the mapping, restart the bus, replay.
    bus.stop_cleanly();
    setup(dir.path(), "label", "");
    let bus = start(&vhost, &cfg, &store, None);
    let (code, out, err) = failed(&bus, Some(OPERATOR), &["replay", &id1]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("replayed") && out.contains("lgsp.in.demo"),
        "{out}"
    );
    let got = amqp.drain("test.out", 1, Duration::from_secs(20)).await;
    assert_eq!(got.len(), 1, "{}", bus.log());
    assert_eq!(got[0].message_id.as_deref(), Some("m-1"));
    assert!(String::from_utf8_lossy(&got[0].body).contains("first"));
    let failure_id = items.iter().find(|v| v["message_id"] == "m-1").unwrap();
    let (_, shown, _) = failed(&bus, Some(VIEWER), &["show", "--json", &id1]);
    let shown: Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(shown["status"], "replayed");
    assert_eq!(
        got[0].headers.get("lgsp-replay-of").map(String::as_str),
        shown["failure_id"].as_str()
    );
    let _ = failure_id;

    // An edited body; the stored original stays.
    let edited = dir.path().join("edited.json");
    std::fs::write(&edited, br#"{"thing": {"label": "edited"}}"#).unwrap();
    let (code, out, err) = failed(
        &bus,
        Some(OPERATOR),
        &["replay", &id2, "--body", edited.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("edited body"), "{out}");
    let got = amqp.drain("test.out", 1, Duration::from_secs(20)).await;
    assert_eq!(got[0].message_id.as_deref(), Some("m-2"));
    assert!(String::from_utf8_lossy(&got[0].body).contains("edited"));
    let (_, shown, _) = failed(&bus, Some(OPERATOR), &["show", "--json", &id2]);
    let shown: Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(shown["body"], String::from_utf8_lossy(bad).as_ref());
    assert_eq!(shown["replays"][0]["edited"], true);
    assert!(
        shown["replays"][0]["diff"]
            .as_str()
            .unwrap()
            .contains("edited")
    );
    // A viewer sees neither the values of the body nor those of the edit.
    let (_, shown, _) = failed(&bus, Some(VIEWER), &["show", "--json", &id2]);
    let shown: Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(shown["masked"], true);
    let body = shown["body"].as_str().unwrap();
    assert!(
        !body.contains("first") && body.contains("\"label\": \"***\""),
        "{body}"
    );
    assert!(shown["replays"][0].get("diff").is_none(), "{shown}");
    assert_eq!(shown["replays"][0]["edited"], true);
    assert_eq!(list_until(&bus, 2, &["--status", "replayed"]).len(), 2);

    // Replaying again is refused (409, exit 1); an unreachable API exits 3.
    let (code, _, err) = failed(&bus, Some(OPERATOR), &["replay", &id1]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("409"), "{err}");
    let out = Command::new(bin())
        .args([
            "failed",
            "list",
            "--url",
            "http://127.0.0.1:1",
            "--token",
            VIEWER,
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(amqp.count("lgsp.failed").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mapping_failure_is_listed_then_replayed_after_the_fix_sqlite() {
    listed_fixed_and_replayed(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mapping_failure_is_listed_then_replayed_after_the_fix_postgres() {
    listed_fixed_and_replayed(true).await;
}

async fn burst_through_an_outage(pg: bool) {
    let vhost = Vhost::new("outage");
    let dir = tempfile::tempdir().unwrap();
    let store = Backend::new(pg, "outage").await;
    let cfg = setup(dir.path(), "name", "");
    let bus = start(&vhost, &cfg, &store, Some("store_outage=100/3"));
    let amqp = Amqp::connect(&vhost.url()).await;
    let ids: Vec<String> = (0..500).map(|i| format!("burst-{i}")).collect();
    let t0 = Instant::now();
    amqp.publish_many("lgsp.in", "demo.thing.created", &ids, br#"{"thing": {}}"#)
        .await;
    let s = store.open().await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while s.count().await.unwrap() < 500 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let took = t0.elapsed();
    // Nothing more arrives later (no duplicates waiting in the queue).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let page = s.list(&Filter::default(), None, 1000).await.unwrap();
    let mut mids: Vec<&str> = page.items.iter().map(|x| x.message_id.as_str()).collect();
    mids.sort_unstable();
    mids.dedup();
    eprintln!(
        "outage ({}): 500 failures stored in {:.2}s including a 3 s store outage",
        s.backend(),
        took.as_secs_f64()
    );
    assert_eq!(page.items.len(), 500, "{}", bus.log());
    assert_eq!(mids.len(), 500, "each message once");
    assert!(
        bus.log().contains("failpoint store_outage reached"),
        "{}",
        bus.log()
    );
    assert!(bus.log().contains("consumption paused"), "{}", bus.log());
    assert_eq!(amqp.count("lgsp.failed").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_failures_during_a_store_outage_are_stored_once_sqlite() {
    burst_through_an_outage(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_failures_during_a_store_outage_are_stored_once_postgres() {
    burst_through_an_outage(true).await;
}

async fn poison_and_unrouted(pg: bool) {
    let vhost = Vhost::new("poison");
    let dir = tempfile::tempdir().unwrap();
    let store = Backend::new(pg, "poison").await;
    let cfg = setup(dir.path(), "name", "broker: { delivery_limit: 1 }\n");
    // Declare the topology, then stop the bus so that a test consumer plays the
    // process that never settles a message.
    let mut bus = start(&vhost, &cfg, &store, None);
    bus.stop_cleanly();
    let amqp = Amqp::connect(&vhost.url()).await;
    amqp.publish(
        "lgsp.in",
        "demo.thing.created",
        "m-poison",
        br#"{"thing": {"name": "x"}}"#,
    )
    .await;
    amqp.publish("lgsp.in", "nobody.binds.this", "m-lost", b"{}")
        .await;
    let ch = amqp.conn.create_channel().await.unwrap();
    ch.basic_qos(1, BasicQosOptions::default()).await.unwrap();
    let mut c = ch
        .basic_consume(
            "lgsp.in.demo".into(),
            "crasher".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(1), c.next()).await {
            Ok(Some(Ok(d))) => {
                d.acker
                    .nack(BasicNackOptions {
                        requeue: true,
                        ..BasicNackOptions::default()
                    })
                    .await
                    .unwrap();
            }
            _ => break,
        }
    }
    let _ = ch.close(200, "ok".into()).await;
    assert_eq!(
        amqp.count("lgsp.in.demo").await,
        0,
        "dead-lettered by the broker"
    );

    let bus = start(&vhost, &cfg, &store, None);
    let items = list_until(&bus, 2, &[]);
    let poison = items
        .iter()
        .find(|v| v["message_id"] == "m-poison")
        .unwrap();
    assert_eq!(poison["error_kind"], "poison", "{poison}");
    assert_eq!(poison["route"], "demo");
    assert_eq!(poison["error_code"], "poison.delivery_limit", "{poison}");
    assert!(
        poison["error"].as_str().unwrap().contains("lgsp.in.demo"),
        "{poison}"
    );
    let lost = items.iter().find(|v| v["message_id"] == "m-lost").unwrap();
    assert_eq!(lost["error_kind"], "unroutable");
    assert!(lost["route"].is_null());
    assert!(
        lost["error"]
            .as_str()
            .unwrap()
            .contains("nobody.binds.this")
    );
    let _ = list_until(&bus, 1, &["--kind", "poison"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_message_and_an_unrouted_one_are_stored_with_their_kinds_sqlite() {
    poison_and_unrouted(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_message_and_an_unrouted_one_are_stored_with_their_kinds_postgres() {
    poison_and_unrouted(true).await;
}

/// One input, one outcome. Two routes bind every `demo` message: an input that fails
/// to map is one record naming both routes, so six failures of two causes are exactly
/// two groups of three; an input that one route delivered and the other could not is
/// one record naming only the missed target, and its replay delivers only there.
async fn one_input_one_outcome(pg: bool) {
    let vhost = Vhost::new("one-outcome");
    let dir = tempfile::tempdir().unwrap();
    let store = Backend::new(pg, "one_outcome").await;
    let routes = format!(
        "{DEMO_ROUTE}  - name: demo-copy\n    from: {{ binding: \"demo.thing.*\" }}\n    map: demo\n    to:\n      - exchange: lgsp.out\n        routing_key: copy.thing\n"
    );
    let cfg = setup_routes(dir.path(), "name", "", &routes);
    let bus = start(&vhost, &cfg, &store, None);
    let amqp = Amqp::connect(&vhost.url()).await;
    // Only the first route's output is bound for now: the copy is unroutable.
    amqp.bind_queue("test.out", "lgsp.out", "thing.#").await;
    for i in 0..3 {
        amqp.publish(
            "lgsp.in",
            "demo.thing.created",
            &format!("m-missing-{i}"),
            br#"{"thing": {"label": "no name"}}"#,
        )
        .await;
        amqp.publish(
            "lgsp.in",
            "demo.thing.created",
            &format!("m-broken-{i}"),
            br#"{"thing": "#,
        )
        .await;
    }
    amqp.publish(
        "lgsp.in",
        "demo.thing.created",
        "m-half",
        br#"{"thing": {"name": "half"}}"#,
    )
    .await;

    let items = list_until(&bus, 7, &[]);
    let both: Vec<&Value> = items
        .iter()
        .filter(|v| v["route"] == "demo,demo-copy")
        .collect();
    assert_eq!(both.len(), 6, "one record per failed input: {items:?}");
    let (code, out, err) = failed(&bus, Some(VIEWER), &["groups", "--json"]);
    assert_eq!(code, 0, "{err}");
    let groups: Vec<Value> = serde_json::from_str(&out).unwrap();
    let mut two: Vec<(String, i64)> = groups
        .iter()
        .filter(|g| g["route"] == "demo,demo-copy")
        .map(|g| {
            (
                g["error_kind"].as_str().unwrap().to_owned(),
                g["count"].as_i64().unwrap(),
            )
        })
        .collect();
    two.sort();
    assert_eq!(
        two,
        [("decode".to_owned(), 3), ("mapping".to_owned(), 3)],
        "{groups:?}"
    );
    // Filtering by one route finds the records that cost it.
    assert_eq!(list_until(&bus, 7, &["--route", "demo-copy"]).len(), 7);
    assert_eq!(list_until(&bus, 6, &["--route", "demo"]).len(), 6);

    // The half-delivered input: delivered once on the first route, one record for the
    // second route's target.
    let out = amqp.drain("test.out", 1, Duration::from_secs(10)).await;
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].message_id.as_deref(), Some("m-half"));
    let half = items.iter().find(|v| v["message_id"] == "m-half").unwrap();
    assert_eq!(half["route"], "demo-copy", "{half}");
    assert_eq!(half["error_kind"], "unroutable", "{half}");
    let id = half["id"].to_string();
    let (_, shown, _) = failed(&bus, Some(VIEWER), &["show", "--json", &id]);
    let shown: Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(
        shown["targets"],
        serde_json::json!(["demo-copy/exchange:lgsp.out/copy.thing"]),
        "{shown}"
    );
    // Bind the copy, replay: only the missed target gets it.
    amqp.bind_queue("test.copy", "lgsp.out", "copy.#").await;
    let (code, out, err) = failed(&bus, Some(OPERATOR), &["replay", &id]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("lgsp.in.demo"), "{out}");
    let copy = amqp.drain("test.copy", 1, Duration::from_secs(10)).await;
    assert_eq!(copy.len(), 1, "{}", bus.log());
    assert_eq!(copy[0].message_id.as_deref(), Some("m-half"));
    assert_eq!(
        amqp.drain("test.out", 1, Duration::from_secs(2))
            .await
            .len(),
        0,
        "the first route's target is not sent it again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_input_bound_by_two_routes_has_one_outcome_sqlite() {
    one_input_one_outcome(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_input_bound_by_two_routes_has_one_outcome_postgres() {
    one_input_one_outcome(true).await;
}
