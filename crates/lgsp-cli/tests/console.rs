//! The administrator's console end to end, on the real RabbitMQ and on both stores:
//! groups of 1,000 failures, a bulk replay killed halfway and run again, approval by a
//! second operator, two processes appending to one audit chain, retention inside
//! `lgsp run`, and a failure exported as a regression test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lgsp_core::config::SecretUrl;
use lgsp_store::{Filter, Status, Store};
use lgsp_testkit::{Amqp, Lgsp, PgSchema, Vhost};
use serde_json::Value;

const OPERATOR: &str = "operator-secret-token";
const LAN: &str = "lan-operator-secret-token";
const VIEWER: &str = "viewer-secret-token";
const VIEWER_SHA256: &str = "a72bf14466a555a28f46b4fdba9d825359a9f1e5ebc9fa627fd113365cf67542";

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_lgsp"))
}

fn sha256_hex(t: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(t.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

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
    async fn open(&self) -> Store {
        let s = Store::open(&SecretUrl::new(self.url())).unwrap();
        s.migrate().await.unwrap();
        s
    }
    /// Run SQL behind the store's back (tampering).
    async fn raw(&self, sql: &str) {
        let url = self.url();
        if url.starts_with("sqlite:") {
            let p = sqlx::SqlitePool::connect(&url).await.unwrap();
            sqlx::query(sql).execute(&p).await.unwrap();
            p.close().await;
        } else {
            let p = sqlx::PgPool::connect(&url).await.unwrap();
            sqlx::query(sql).execute(&p).await.unwrap();
            p.close().await;
        }
    }
}

/// One adapter, `demo`, whose mapping needs `$.thing.<field>`; `extra` is more root YAML.
fn setup(dir: &Path, field: &str, extra: &str) -> PathBuf {
    lgsp_testkit::demo_adapter(dir, field);
    let cfg = dir.join("config/lgsp.yaml");
    let lan = sha256_hex(LAN);
    std::fs::write(
        &cfg,
        format!("adapter_dir: ../adapters\nadapters: [demo]\nadmin:\n  viewer_token_sha256: [\"{VIEWER_SHA256}\"]\n  tokens:\n    - {{ name: lan, sha256: \"{lan}\", role: operator }}\n{extra}routes:\n  - name: demo\n    from: {{ binding: \"demo.#\" }}\n    map: demo\n    to:\n      - exchange: lgsp.out\n"),
    )
    .unwrap();
    cfg
}

fn start(vhost: &Vhost, cfg: &Path, store: &Backend) -> Lgsp {
    let env = vec![
        ("LGSP_BROKER__URL", vhost.url()),
        ("LGSP_STORE__URL", store.url()),
        ("LGSP_ADMIN__OPERATOR_TOKEN", OPERATOR.to_owned()),
    ];
    let mut l = Lgsp::spawn(&bin(), cfg, &env);
    l.wait_ready();
    l
}

fn failed_cmd(bus: &Lgsp, token: Option<&str>, args: &[&str]) -> Command {
    let mut cmd = Command::new(bin());
    cmd.arg("failed")
        .args(args)
        .env("LGSPCTL_URL", format!("http://{}", bus.addr))
        .env_remove("LGSPCTL_TOKEN");
    if let Some(t) = token {
        cmd.env("LGSPCTL_TOKEN", t);
    }
    cmd
}

/// `lgsp failed ARGS`: (exit code, stdout, stderr).
fn failed(bus: &Lgsp, token: Option<&str>, args: &[&str]) -> (i32, String, String) {
    let out = failed_cmd(bus, token, args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn json_of(bus: &Lgsp, token: &str, args: &[&str]) -> Value {
    let (code, out, err) = failed(bus, Some(token), args);
    assert_eq!(code, 0, "{args:?}: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"))
}

async fn wait_count(s: &Store, n: i64, bus: &Lgsp) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while s.count().await.unwrap() < n {
        assert!(
            Instant::now() < deadline,
            "{} of {n} stored: {}",
            s.count().await.unwrap(),
            bus.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn groups_bulk_replay_killed_and_rerun(pg: bool) {
    let vhost = Vhost::new("bulk");
    let dir = tempfile::tempdir().unwrap();
    let store = Backend::new(pg, "bulk").await;
    let cfg = setup(dir.path(), "name", "");
    let mut bus = start(&vhost, &cfg, &store);
    let amqp = Amqp::connect(&vhost.url()).await;
    // Three causes: a required field missing, a message type the adapter does not map,
    // a body that is not JSON.
    let a: Vec<String> = (0..400).map(|i| format!("a-{i}")).collect();
    let b: Vec<String> = (0..350).map(|i| format!("b-{i}")).collect();
    let c: Vec<String> = (0..250).map(|i| format!("c-{i}")).collect();
    amqp.publish_many(
        "lgsp.in",
        "demo.thing.created",
        &a,
        br#"{"thing": {"label": "x"}}"#,
    )
    .await;
    amqp.publish_many(
        "lgsp.in",
        "demo.thing.deleted",
        &b,
        br#"{"thing": {"name": "x"}}"#,
    )
    .await;
    amqp.publish_many("lgsp.in", "demo.thing.created", &c, br#"{"thing": "#)
        .await;
    let s = store.open().await;
    wait_count(&s, 1000, &bus).await;

    let t0 = Instant::now();
    let groups = json_of(&bus, VIEWER, &["groups", "--json"]);
    eprintln!(
        "groups ({}): `lgsp failed groups --json` over 1,000 failures in {:.0} ms",
        s.backend(),
        t0.elapsed().as_secs_f64() * 1000.0
    );
    let groups = groups.as_array().unwrap().clone();
    let counts: Vec<i64> = groups
        .iter()
        .map(|g| g["count"].as_i64().unwrap())
        .collect();
    assert_eq!(counts, [400, 350, 250], "{groups:?}");
    for g in &groups {
        for k in [
            "route",
            "error_kind",
            "error_code",
            "count",
            "first_seen",
            "last_seen",
            "key",
        ] {
            assert!(!g[k].is_null(), "{k} in {g}");
        }
        assert_eq!(g["route"], "demo");
    }
    let key = groups[0]["key"].as_str().unwrap().to_owned();
    let (code, table, _) = failed(&bus, Some(VIEWER), &["groups"]);
    assert_eq!(code, 0);
    assert!(
        table.starts_with("GROUP") && table.contains(&key),
        "{table}"
    );

    // Fix the mapping (the field is `label`), restart, replay group A at 100 msg/s.
    bus.stop_cleanly();
    setup(dir.path(), "label", "");
    let bus = start(&vhost, &cfg, &store);
    amqp.bind_queue("test.out", "lgsp.out", "#").await;
    let mut child = failed_cmd(
        &bus,
        Some(OPERATOR),
        &[
            "replay",
            "--group",
            &key,
            "--rate",
            "100",
            "--batch-size",
            "20",
        ],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while amqp.count("test.out").await < 60 {
        assert!(Instant::now() < deadline, "{}", bus.log());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().unwrap(); // SIGKILL
    let _ = child.wait();
    let replayed_before = s
        .list(
            &Filter {
                status: Some(Status::Replayed),
                ..Filter::default()
            },
            None,
            1000,
        )
        .await
        .unwrap()
        .items
        .len();
    assert!(
        (1..400).contains(&replayed_before),
        "killed halfway: {replayed_before} replayed"
    );

    let t0 = Instant::now();
    let (code, out, err) = failed(
        &bus,
        Some(OPERATOR),
        &[
            "replay",
            "--group",
            &key,
            "--rate",
            "1000",
            "--batch-size",
            "100",
            "--json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    // The batch the killed client had asked for may still have finished on the server
    // (it runs in a task of its own): the rerun replays the rest.
    let rerun = v["replayed"].as_u64().unwrap() as usize;
    assert!(
        (400 - replayed_before - 20..=400 - replayed_before).contains(&rerun),
        "{v}"
    );
    assert_eq!(v["remaining"], 0);
    assert!(err.contains("left"), "progress on stderr: {err}");
    eprintln!(
        "bulk replay ({}): {} messages in {:.2}s at --rate 1000 --batch-size 100",
        s.backend(),
        v["replayed"],
        t0.elapsed().as_secs_f64()
    );

    let replayed = s
        .list(
            &Filter {
                status: Some(Status::Replayed),
                ..Filter::default()
            },
            None,
            1000,
        )
        .await
        .unwrap()
        .items;
    assert_eq!(replayed.len(), 400);
    let got = amqp.drain("test.out", 1000, Duration::from_secs(5)).await;
    let ids: Vec<String> = got.iter().map(|m| m.message_id.clone().unwrap()).collect();
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(
        ids.len(),
        400,
        "exactly the group's messages, nothing twice"
    );
    assert_eq!(unique.len(), 400);
    let want: HashSet<&String> = a.iter().collect();
    assert_eq!(unique, want, "none of the other groups' messages");
    let left = json_of(&bus, VIEWER, &["groups", "--json"]);
    let counts: Vec<i64> = left
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["count"].as_i64().unwrap())
        .collect();
    assert_eq!(counts, [350, 250]);
    // The batches are in the audit log, in the operator's name.
    let log = json_of(&bus, VIEWER, &["audit", "--json"]);
    let bulk: Vec<&Value> = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "bulk_replay")
        .collect();
    let audited: usize = bulk
        .iter()
        .map(|e| e["message_ids"].as_array().unwrap().len())
        .sum();
    assert_eq!(audited, 400);
    assert!(bulk.iter().all(|e| e["actor"] == "operator"));
    let (code, _, err) = failed(&bus, Some(VIEWER), &["audit", "--verify"]);
    assert_eq!(code, 0, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_causes_make_three_groups_and_a_killed_bulk_replay_resumes_sqlite() {
    groups_bulk_replay_killed_and_rerun(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_causes_make_three_groups_and_a_killed_bulk_replay_resumes_postgres() {
    groups_bulk_replay_killed_and_rerun(true).await;
}

async fn approval_by_a_second_operator(pg: bool) {
    let vhost = Vhost::new("approval");
    let dir = tempfile::tempdir().unwrap();
    let store = Backend::new(pg, "approval").await;
    let cfg = setup(dir.path(), "label", "replay: { require_approval: true }\n");
    let bus = start(&vhost, &cfg, &store);
    let amqp = Amqp::connect(&vhost.url()).await;
    amqp.bind_queue("test.out", "lgsp.out", "#").await;
    // Unmappable for now: another message type (stored as a failure).
    for id in ["m-1", "m-2"] {
        amqp.publish(
            "lgsp.in",
            "demo.thing.deleted",
            id,
            br#"{"thing": {"label": "x"}}"#,
        )
        .await;
    }
    let s = store.open().await;
    wait_count(&s, 2, &bus).await;
    let ids: Vec<String> = s
        .list(&Filter::default(), None, 10)
        .await
        .unwrap()
        .items
        .iter()
        .map(|x| x.id.to_string())
        .collect();

    // A replay is a request; nothing moves until another operator approves.
    let v = json_of(&bus, OPERATOR, &["replay", &ids[0], "--json"]);
    let req = v["request_id"].to_string();
    assert_eq!(v["status"], "pending");
    let (code, out, _) = failed(&bus, Some(OPERATOR), &["replay", &ids[1]]);
    assert_eq!(code, 0);
    assert!(out.contains("awaits another operator's approval"), "{out}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        s.get(ids[0].parse().unwrap())
            .await
            .unwrap()
            .unwrap()
            .summary
            .status,
        Status::Failed
    );
    assert_eq!(
        s.count().await.unwrap(),
        2,
        "nothing replayed, nothing failed again"
    );

    let (code, _, err) = failed(&bus, Some(OPERATOR), &["approve", &req]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("403") && err.contains("self_approval"),
        "{err}"
    );
    let (code, _, err) = failed(&bus, Some(VIEWER), &["approve", &req]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(
        s.get(ids[0].parse().unwrap())
            .await
            .unwrap()
            .unwrap()
            .summary
            .status,
        Status::Failed
    );

    let v = json_of(&bus, LAN, &["approve", &req, "--json"]);
    assert_eq!(v["request"]["status"], "executed", "{v}");
    assert_eq!(v["request"]["decided_by"], "lan");
    assert_eq!(
        s.get(ids[0].parse().unwrap())
            .await
            .unwrap()
            .unwrap()
            .summary
            .status,
        Status::Replayed
    );
    let (code, _, err) = failed(&bus, Some(LAN), &["approve", &req]);
    assert_eq!(code, 1, "approved once: {err}");

    // A discard: reason mandatory, then a request, approved by the other operator.
    let (code, _, err) = failed(&bus, Some(LAN), &["discard", &ids[1], "--reason", " "]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("reason_required"), "{err}");
    let v = json_of(
        &bus,
        LAN,
        &["discard", &ids[1], "--reason", "sent by mistake", "--json"],
    );
    let req2 = v["request_id"].to_string();
    let pending = json_of(&bus, VIEWER, &["requests", "--status", "pending", "--json"]);
    assert_eq!(pending.as_array().unwrap().len(), 2, "{pending}");
    let (code, _, _) = failed(&bus, Some(LAN), &["approve", &req2]);
    assert_eq!(code, 1);
    let (code, out, err) = failed(&bus, Some(OPERATOR), &["approve", &req2]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("approved request"), "{out}");
    let rec = s.get(ids[1].parse().unwrap()).await.unwrap().unwrap();
    assert_eq!(rec.summary.status, Status::Discarded);
    assert_eq!(rec.discard_reason.as_deref(), Some("sent by mistake"));

    let log = json_of(&bus, VIEWER, &["audit", "--json"]);
    let pairs: Vec<(String, String)> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["actor"].as_str().unwrap().to_owned(),
                e["action"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let pairs: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    assert_eq!(
        pairs,
        [
            ("operator", "request"),
            ("operator", "request"),
            ("lan", "approve"),
            ("operator", "replay"),
            ("lan", "request"),
            ("operator", "approve"),
            ("lan", "discard"),
        ]
    );
    assert!(!log.to_string().contains(OPERATOR) && !log.to_string().contains(LAN));
    let _ = amqp;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_approval_a_request_waits_for_a_second_operator_and_self_approval_is_refused_sqlite() {
    approval_by_a_second_operator(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_approval_a_request_waits_for_a_second_operator_and_self_approval_is_refused_postgres()
{
    approval_by_a_second_operator(true).await;
}

async fn two_processes_append_to_one_chain(pg: bool) {
    let dir = tempfile::tempdir().unwrap();
    let store = Backend::new(pg, "audit2").await;
    let cfg = setup(dir.path(), "name", "");
    let (v1, v2) = (Vhost::new("audit-a"), Vhost::new("audit-b"));
    let buses = [start(&v1, &cfg, &store), start(&v2, &cfg, &store)];
    let t0 = Instant::now();
    std::thread::scope(|sc| {
        for (b, bus) in buses.iter().enumerate() {
            for t in 0..4 {
                let addr = bus.addr.clone();
                sc.spawn(move || {
                    for i in 0..125 {
                        let body = format!(r#"{{"note": "process {b} thread {t} note {i}"}}"#);
                        let (status, resp) =
                            http_bearer(&addr, "/admin/v1/audit/notes", &body, OPERATOR);
                        assert_eq!(status, 200, "{resp}");
                    }
                });
            }
        }
    });
    eprintln!(
        "audit ({}): 1,000 appends from two lgsp processes in {:.2}s",
        if pg { "postgres" } else { "sqlite" },
        t0.elapsed().as_secs_f64()
    );
    let bus = &buses[0];
    let (code, out, err) = failed(bus, Some(VIEWER), &["audit", "--verify"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("1000 entries"), "{out}");
    let head = json_of(bus, VIEWER, &["audit", "--head", "--json"]);
    assert_eq!(head["seq"], 1000);
    let saved = head["hash"].as_str().unwrap().to_owned();
    let (code, _, err) = failed(bus, Some(VIEWER), &["audit", "--verify", "--head", &saved]);
    assert_eq!(code, 0, "{err}");

    // The last row deleted and the head row made to match: only the saved head tells.
    store.raw("DELETE FROM audit_log WHERE seq = 1000").await;
    let (code, _, err) = failed(bus, Some(VIEWER), &["audit", "--verify"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("entry 1000"), "{err}");
    store
        .raw("UPDATE audit_head SET seq = 999, hash = (SELECT hash FROM audit_log WHERE seq = 999) WHERE id = 1")
        .await;
    let (code, _, err) = failed(bus, Some(VIEWER), &["audit", "--verify", "--head", &saved]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("saved head"), "{err}");

    // One row altered: verification names it.
    store
        .raw("UPDATE audit_log SET actor = 'someone else' WHERE seq = 500")
        .await;
    let (code, _, err) = failed(bus, Some(VIEWER), &["audit", "--verify"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("entry 500"), "{err}");
}

/// A POST with a bearer token: (status, body).
fn http_bearer(addr: &str, path: &str, body: &str, token: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let status = raw
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, raw)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_appending_500_audit_entries_each_leave_a_chain_that_verifies_sqlite() {
    two_processes_append_to_one_chain(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_appending_500_audit_entries_each_leave_a_chain_that_verifies_postgres() {
    two_processes_append_to_one_chain(true).await;
}

async fn retention_inside_lgsp_run(pg: bool) {
    let vhost = Vhost::new("retention");
    let dir = tempfile::tempdir().unwrap();
    let store = Backend::new(pg, "retention").await;
    let cfg = setup(dir.path(), "name", "store: { retention: 1s }\n");
    let bus = start(&vhost, &cfg, &store);
    let amqp = Amqp::connect(&vhost.url()).await;
    amqp.publish("lgsp.in", "demo.thing.created", "m-1", br#"{"thing": {}}"#)
        .await;
    amqp.publish("lgsp.in", "demo.thing.created", "m-2", br#"{"thing": {}}"#)
        .await;
    let s = store.open().await;
    wait_count(&s, 2, &bus).await;
    let id = s.list(&Filter::default(), None, 1).await.unwrap().items[0].id;
    let (code, _, err) = failed(
        &bus,
        Some(OPERATOR),
        &["discard", &id.to_string(), "--reason", "noise"],
    );
    assert_eq!(code, 0, "{err}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while s.count().await.unwrap() != 1 {
        assert!(Instant::now() < deadline, "not purged: {}", bus.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        s.get(id).await.unwrap().is_none(),
        "the discarded one went, the failed one stays"
    );
    let log = s.audit_entries(0, 100).await.unwrap();
    assert!(
        log.iter()
            .any(|e| e.action == "purge" && e.actor == "lgsp (retention)"),
        "{log:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lgsp_run_purges_discarded_records_after_the_retention_sqlite() {
    retention_inside_lgsp_run(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lgsp_run_purges_discarded_records_after_the_retention_postgres() {
    retention_inside_lgsp_run(true).await;
}

async fn export_test_fails_with_todays_error(pg: bool) {
    let vhost = Vhost::new("export");
    let dir = tempfile::tempdir().unwrap();
    let store = Backend::new(pg, "export").await;
    let cfg = setup(dir.path(), "name", "");
    let bus = start(&vhost, &cfg, &store);
    let amqp = Amqp::connect(&vhost.url()).await;
    amqp.publish(
        "lgsp.in",
        "demo.thing.created",
        "m-1",
        br#"{"thing": {"label": "first"}}"#,
    )
    .await;
    let s = store.open().await;
    wait_count(&s, 1, &bus).await;
    let id = s.list(&Filter::default(), None, 1).await.unwrap().items[0]
        .id
        .to_string();
    // A viewer sees the body masked: exporting it is refused, nothing is written.
    let (code, _, err) = failed(
        &bus,
        Some(VIEWER),
        &["export-test", &id, "--config", cfg.to_str().unwrap()],
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("use an operator token"), "{err}");
    assert!(!dir.path().join("adapters/demo/tests").exists());
    let v = json_of(
        &bus,
        OPERATOR,
        &[
            "export-test",
            &id,
            "--config",
            cfg.to_str().unwrap(),
            "--json",
        ],
    );
    let case_file = PathBuf::from(v["case_file"].as_str().unwrap());
    let input = PathBuf::from(v["input_file"].as_str().unwrap());
    assert_eq!(
        std::fs::read(&input).unwrap(),
        br#"{"thing": {"label": "first"}}"#
    );
    assert_eq!(
        case_file.canonicalize().unwrap().parent().unwrap(),
        dir.path()
            .join("adapters/demo/tests")
            .canonicalize()
            .unwrap()
    );
    let case = std::fs::read_to_string(&case_file).unwrap();
    assert!(
        case.contains("required value missing at $.thing.name"),
        "{case}"
    );
    // Exporting twice is refused rather than overwriting.
    let (code, _, err) = failed(
        &bus,
        Some(OPERATOR),
        &["export-test", &id, "--config", cfg.to_str().unwrap()],
    );
    assert_eq!(code, 1, "{err}");

    let out = Command::new(bin())
        .args(["test", "--config", cfg.to_str().unwrap(), "demo"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains(&format!("FAIL demo: failed_{id}")),
        "{stdout}"
    );
    assert!(
        stdout.contains("required value missing at $.thing.name"),
        "today's error: {stdout}"
    );

    // Fixed: the case runs the mapping and asks for its golden file.
    setup(dir.path(), "label", "");
    let out = Command::new(bin())
        .args([
            "test",
            "--config",
            cfg.to_str().unwrap(),
            "--update",
            "demo",
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exported_failure_fails_under_lgsp_test_with_todays_error_sqlite() {
    export_test_fails_with_todays_error(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exported_failure_fails_under_lgsp_test_with_todays_error_postgres() {
    export_test_fails_with_todays_error(true).await;
}

async fn bus_killed_between_confirm_and_commit(pg: bool) {
    let vhost = Vhost::new("crash");
    let dir = tempfile::tempdir().unwrap();
    let store = Backend::new(pg, "crash").await;
    let cfg = setup(dir.path(), "name", "");
    let mut bus = start(&vhost, &cfg, &store);
    let amqp = Amqp::connect(&vhost.url()).await;
    let ids: Vec<String> = (0..50).map(|i| format!("k-{i}")).collect();
    amqp.publish_many(
        "lgsp.in",
        "demo.thing.created",
        &ids,
        br#"{"thing": {"label": "x"}}"#,
    )
    .await;
    let s = store.open().await;
    wait_count(&s, 50, &bus).await;
    bus.stop_cleanly();
    setup(dir.path(), "label", "");
    amqp.bind_queue("test.out", "lgsp.out", "#").await;

    // The bus dies (as with kill -9) after the first batch's confirms, before its commit.
    let env = vec![
        ("LGSP_BROKER__URL", vhost.url()),
        ("LGSP_STORE__URL", store.url()),
        ("LGSP_ADMIN__OPERATOR_TOKEN", OPERATOR.to_owned()),
        ("FAILPOINTS", "crash=bulk_before_commit".to_owned()),
    ];
    let mut crashing = Lgsp::spawn(&bin(), &cfg, &env);
    crashing.wait_ready();
    let (code, _, err) = failed(
        &crashing,
        Some(OPERATOR),
        &["replay", "--filter", "route=demo", "--batch-size", "20"],
    );
    assert_eq!(code, 3, "the API went away: {err}");
    assert!(crashing.wait_exit(Duration::from_secs(10)).is_some());
    assert!(
        crashing
            .log()
            .contains("failpoint crash=bulk_before_commit"),
        "{}",
        crashing.log()
    );
    let still = s.failed_ids(&Filter::default(), None).await.unwrap();
    assert_eq!(still.len(), 50, "delivered, not recorded");
    // The batch in flight: the 20 oldest records.
    let mut first_batch = HashSet::new();
    for id in &still[..20] {
        first_batch.insert(s.get(*id).await.unwrap().unwrap().summary.message_id);
    }

    let bus = start(&vhost, &cfg, &store);
    let (code, _, err) = failed(
        &bus,
        Some(OPERATOR),
        &["replay", "--filter", "route=demo", "--batch-size", "20"],
    );
    assert_eq!(code, 0, "{err}");
    let got = amqp.drain("test.out", 1000, Duration::from_secs(5)).await;
    let mut seen: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for m in &got {
        *seen.entry(m.message_id.clone().unwrap()).or_default() += 1;
    }
    let twice: Vec<&String> = seen
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(k, _)| k)
        .collect();
    assert_eq!(seen.len(), 50, "every message delivered");
    // Only that batch comes again: once from the replay that was not recorded, and
    // possibly once more from the router of the killed bus, which had not acked it.
    assert!(
        twice.iter().all(|m| first_batch.contains(*m)),
        "only the batch in flight twice: {twice:?}"
    );
    eprintln!(
        "killed between confirm and commit: {} delivered twice",
        twice.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bus_killed_between_confirms_and_commit_delivers_at_most_that_batch_twice_sqlite() {
    bus_killed_between_confirm_and_commit(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bus_killed_between_confirms_and_commit_delivers_at_most_that_batch_twice_postgres() {
    bus_killed_between_confirm_and_commit(true).await;
}
