//! Message tracking end to end on the real RabbitMQ: a message retried, failed, edited
//! and replayed tells that whole story, in order, through `lgsp trace` and
//! `GET /admin/v1/messages/{id}`; the story holds no value of the message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use lgsp_testkit::{Amqp, Lgsp, Vhost};
use serde_json::Value;

const OPERATOR: &str = "operator-secret-token";

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_lgsp"))
}

/// Adapter `demo` (JSON `{"thing": {"name": ...}}`) and one route to exchange `ext`,
/// retried once after 200 ms.
fn setup(dir: &Path, extra: &str) -> PathBuf {
    lgsp_testkit::demo_adapter(dir, "name");
    let cfg = dir.join("config/lgsp.yaml");
    std::fs::write(
        &cfg,
        format!("adapter_dir: ../adapters\nadapters: [demo]\n{extra}routes:\n  - name: demo\n    from: {{ binding: \"demo.#\" }}\n    map: demo\n    to:\n      - exchange: ext\n    retry: {{ attempts: 2, delays: [200ms] }}\n"),
    )
    .unwrap();
    cfg
}

fn start(vhost: &Vhost, cfg: &Path, dir: &Path) -> Lgsp {
    let env = vec![
        ("LGSP_BROKER__URL", vhost.url()),
        (
            "LGSP_STORE__URL",
            format!("sqlite://{}/data/lgsp.db", dir.display()),
        ),
        ("LGSP_ADMIN__OPERATOR_TOKEN", OPERATOR.to_owned()),
    ];
    let mut l = Lgsp::spawn(&bin(), cfg, &env);
    l.wait_ready();
    l
}

/// `lgsp SUBCOMMAND ARGS` against the bus's admin API: (exit code, stdout, stderr).
fn cli(bus: &Lgsp, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(bin())
        .args(args)
        .env("LGSPCTL_URL", format!("http://{}", bus.addr))
        .env("LGSPCTL_TOKEN", OPERATOR)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `lgsp trace --json ID` until its events are `want` (the writer batches: the
/// router's events come up to a fraction of a second after the store's own).
fn story_until(bus: &Lgsp, id: &str, want: &[&str]) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (code, out, err) = cli(bus, &["trace", "--json", id]);
        if code == 0 {
            let v: Value = serde_json::from_str(&out).unwrap();
            if events(&v) == want {
                return v;
            }
            assert!(Instant::now() < deadline, "{v:#}\n{}", bus.log());
        }
        assert!(
            Instant::now() < deadline,
            "trace {id}: {code} {out} {err}\n{}",
            bus.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn events(story: &Value) -> Vec<String> {
    story["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_tells_a_retried_failed_edited_and_replayed_message_in_order() {
    let vhost = Vhost::new("trace");
    let dir = tempfile::tempdir().unwrap();
    let amqp = Amqp::connect(&vhost.url()).await;
    amqp.bounded_target("ext", "ext.q", 1).await;
    amqp.publish("ext", "filler", "filler", b"x").await; // ext.q is now full
    let cfg = setup(dir.path(), "");
    let bus = start(&vhost, &cfg, dir.path());

    let name = "Nguyễn Văn An";
    let body = format!(r#"{{"thing": {{"name": "{name}"}}}}"#);
    amqp.publish("lgsp.in", "demo.thing.created", "m-trace", body.as_bytes())
        .await;
    let story = story_until(
        &bus,
        "m-trace",
        &["received", "retried", "received", "failed", "stored"],
    );
    let ev = story["events"].as_array().unwrap();
    assert!(
        ev[0]["detail"].as_str().unwrap().contains("attempt 0"),
        "{story:#}"
    );
    assert_eq!(ev[1]["route"], "demo");
    assert!(
        ev[1]["detail"]
            .as_str()
            .unwrap()
            .contains("attempt 1 in 200ms"),
        "{story:#}"
    );
    assert!(
        ev[2]["detail"].as_str().unwrap().contains("attempt 1"),
        "{story:#}"
    );
    assert!(
        ev[3]["detail"].as_str().unwrap().starts_with("delivery/"),
        "{story:#}"
    );
    let record = story["failures"][0]["id"].to_string();
    assert_eq!(story["failures"][0]["status"], "failed");

    // The target recovers; an operator edits the body and replays it.
    let filler = amqp.drain("ext.q", 1, Duration::from_secs(2)).await;
    assert_eq!(filler[0].message_id.as_deref(), Some("filler"));
    let edited = dir.path().join("edited.json");
    std::fs::write(&edited, r#"{"thing": {"name": "Trần Thị Bích"}}"#).unwrap();
    let (code, _, err) = cli(
        &bus,
        &[
            "failed",
            "replay",
            &record,
            "--body",
            edited.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{err}");
    let got = amqp.drain("ext.q", 1, Duration::from_secs(20)).await;
    assert_eq!(got[0].message_id.as_deref(), Some("m-trace"));

    let story = story_until(
        &bus,
        "m-trace",
        &[
            "received",
            "retried",
            "received",
            "failed",
            "stored",
            "edited",
            "replayed",
            "received",
            "delivered",
        ],
    );
    let ev = story["events"].as_array().unwrap();
    assert!(
        ev[6]["detail"].as_str().unwrap().contains("by operator"),
        "{story:#}"
    );
    assert_eq!(ev[8]["target"], "demo/exchange:ext", "{story:#}");
    let times: Vec<i64> = ev.iter().map(|e| e["at_ms"].as_i64().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    assert_eq!(story["failures"][0]["status"], "replayed");
    // Metadata only: no value of the message, before or after the edit.
    let all = story.to_string();
    assert!(!all.contains("Nguy") && !all.contains("Bích"), "{all}");

    // The text form, and an id nobody knows.
    let (code, text, err) = cli(&bus, &["trace", "m-trace"]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "message m-trace");
    assert!(
        lines[1].starts_with("AT") && lines[1].contains("EVENT"),
        "{text}"
    );
    assert!(
        lines[2].contains("received") && lines[10].contains("delivered"),
        "{text}"
    );
    assert!(
        text.contains(&format!("failure record {record}: replayed")),
        "{text}"
    );
    let (code, _, err) = cli(&bus, &["trace", "no-such-message"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("404") && err.contains("nothing is known"),
        "{err}"
    );

    // The ingestor's lag was observed once, for the one record.
    let (status, metrics) = lgsp_testkit::http(&bus.addr, "GET", "/metrics", "", None).unwrap();
    assert_eq!(status, 200);
    assert!(
        metrics.contains("lgsp_ingest_lag_seconds_count 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("lgsp_tracking_events_dropped_total 0"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_tracking_off_nothing_is_tracked() {
    let vhost = Vhost::new("trace-off");
    let dir = tempfile::tempdir().unwrap();
    let amqp = Amqp::connect(&vhost.url()).await;
    amqp.channel
        .exchange_declare(
            "ext".into(),
            lapin::ExchangeKind::Topic,
            lapin::options::ExchangeDeclareOptions {
                durable: true,
                ..Default::default()
            },
            lapin::types::FieldTable::default(),
        )
        .await
        .unwrap();
    amqp.bind_queue("ext.q", "ext", "#").await;
    let cfg = setup(dir.path(), "tracking: { enabled: false }\n");
    let bus = start(&vhost, &cfg, dir.path());
    amqp.publish(
        "lgsp.in",
        "demo.thing.created",
        "m-off",
        br#"{"thing": {"name": "x"}}"#,
    )
    .await;
    let got = amqp.drain("ext.q", 1, Duration::from_secs(20)).await;
    assert_eq!(got.len(), 1, "{}", bus.log());
    std::thread::sleep(Duration::from_millis(600));
    let (code, _, err) = cli(&bus, &["trace", "m-off"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("404"), "{err}");
}
