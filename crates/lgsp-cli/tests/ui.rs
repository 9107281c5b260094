//! The administrator's page in a real browser: a bus on the real RabbitMQ holding two
//! failed messages, one with markup in its body, and `tests/ui/ui.mjs` driving Debian's
//! Chromium through it (sign in, the group, the message, edit and replay, the audit log,
//! the language). Needs Chromium and the script's npm package: `.ci/setup-browser`
//! installs both, and `.ci/run` runs this test in its serial phase.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use lgsp_testkit::{Amqp, Lgsp, Vhost};

const OPERATOR: &str = "ui-test-operator-token";
const XSS: &str = r#"{"thing": {"label": "<img src=x onerror=\"window.__xss=1\"><script>window.__xss=2</script>"}}"#;
const FIXED: &str = r#"{"thing": {"name": "fixed in the browser"}}"#;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn setup(dir: &Path) -> PathBuf {
    lgsp_testkit::demo_adapter(dir, "name");
    let cfg = dir.join("lgsp.yaml");
    std::fs::write(
        &cfg,
        "adapter_dir: adapters\nadapters: [demo]\nroutes:\n  - name: demo\n    from: { binding: \"demo.#\" }\n    map: demo\n    to:\n      - exchange: lgsp.out\n",
    )
    .unwrap();
    cfg
}

async fn api(bus: &Lgsp, path: &str) -> serde_json::Value {
    reqwest::Client::new()
        .get(format!("http://{}{path}", bus.addr))
        .bearer_auth(OPERATOR)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "browser: needs Chromium and tests/ui's npm package (.ci/setup-browser); run by .ci/run"]
async fn an_administrator_fixes_a_failed_message_in_the_browser() {
    let script = repo().join("tests/ui");
    assert!(
        script.join("node_modules/playwright-core").is_dir(),
        "tests/ui/node_modules is missing: run .ci/setup-browser (installs Chromium and the script's npm package)"
    );
    let vhost = Vhost::new("ui");
    let dir = tempfile::tempdir().unwrap();
    let cfg = setup(dir.path());
    let env = vec![
        ("LGSP_BROKER__URL", vhost.url()),
        (
            "LGSP_STORE__URL",
            format!("sqlite://{}/data/lgsp.db", dir.path().display()),
        ),
        ("LGSP_ADMIN__OPERATOR_TOKEN", OPERATOR.to_owned()),
    ];
    let mut bus = Lgsp::spawn(Path::new(env!("CARGO_BIN_EXE_lgsp")), &cfg, &env);
    bus.wait_ready();
    let amqp = Amqp::connect(&vhost.url()).await;
    amqp.bind_queue("test.out", "lgsp.out", "#").await;
    amqp.publish("lgsp.in", "demo.thing.created", "m-xss", XSS.as_bytes())
        .await;
    amqp.publish(
        "lgsp.in",
        "demo.thing.created",
        "m-2",
        br#"{"thing": {"label": "second"}}"#,
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while api(&bus, "/admin/v1/failed").await["items"]
        .as_array()
        .map_or(0, Vec::len)
        < 2
    {
        assert!(Instant::now() < deadline, "{}", bus.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ui-screenshots");
    let out = Command::new("node")
        .arg("ui.mjs")
        .current_dir(&script)
        .env("LGSP_UI_URL", format!("http://{}", bus.addr))
        .env("LGSP_UI_TOKEN", OPERATOR)
        .env("LGSP_UI_SHOTS", &shots)
        .env("LGSP_UI_FIXED", FIXED)
        .output()
        .expect("node runs (Debian's nodejs)");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{said}\n{}", bus.log());
    assert!(said.contains("ok: nothing of the body ran"), "{said}");

    // What the browser did happened: the fixed body went out, the record is replayed.
    let got = amqp.drain("test.out", 1, Duration::from_secs(20)).await;
    assert_eq!(got.len(), 1, "{}", bus.log());
    assert_eq!(got[0].message_id.as_deref(), Some("m-xss"));
    assert!(String::from_utf8_lossy(&got[0].body).contains("fixed in the browser"));
    let replayed = api(&bus, "/admin/v1/failed?status=replayed").await;
    assert_eq!(replayed["items"][0]["message_id"], "m-xss", "{replayed}");
    for shot in ["groups.png", "message.png"] {
        let meta = std::fs::metadata(shots.join(shot)).unwrap();
        assert!(meta.len() > 10_000, "{shot} is {} bytes", meta.len());
    }
    bus.stop_cleanly();
}
