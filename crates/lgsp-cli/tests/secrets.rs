//! No configured secret leaves lgsp in anything it prints or serves: a whole run's log at
//! debug level, `/metrics`, `/readyz`, the admin API's answers (refusals included), the
//! CLI's output and the errors of a start that fails (a broker that refuses the password,
//! a store that cannot be reached).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use lgsp_testkit::{Lgsp, PgSchema, Vhost, repo, run_to_exit, write_config};

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_lgsp"))
}

const STORE_PASSWORD: &str = "Store-pw-8c1f27";
const OPERATOR: &str = "Operator-token-3b9e51";
const API_KEY: &str = "Bizreg-key-6a0d44-0123456789";
const WRONG_BROKER_PASSWORD: &str = "Broker-pw-wrong-91f3";

fn config(dir: &Path) -> PathBuf {
    write_config(
        dir,
        "apps:\n  bizreg: { publish: [\"bizreg.#\"] }\nroutes:\n  - name: bizreg\n    from: { binding: \"bizreg.#\" }\n    map: bizreg\n    to:\n      - exchange: lgsp.out\n",
    )
}

fn assert_clean(what: &str, text: &str) {
    for secret in [STORE_PASSWORD, OPERATOR, API_KEY, WRONG_BROKER_PASSWORD] {
        assert!(!text.contains(secret), "{secret} is in {what}: {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_in_logs_errors_metrics_or_answers() {
    let vhost = Vhost::new("secrets");
    let schema = PgSchema::new("secrets").await;
    // Trust authentication ignores the password: the URL holds one all the same.
    let store_url = schema
        .url()
        .replacen("postgres@", &format!("postgres:{STORE_PASSWORD}@"), 1);
    assert!(store_url.contains(STORE_PASSWORD));
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let cfg_s = cfg.display().to_string();
    let env = [
        ("LGSP_BROKER__URL", vhost.url()),
        ("LGSP_STORE__URL", store_url.clone()),
        ("LGSP_ADMIN__OPERATOR_TOKEN", OPERATOR.to_owned()),
        ("LGSP_APPS__BIZREG__API_KEY", API_KEY.to_owned()),
        ("RUST_LOG", "debug".to_owned()),
    ];

    // `lgsp check` with every secret in its environment.
    let env_ref: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (code, out, err) = run_to_exit(
        &bin(),
        &["check", "--config", &cfg_s],
        &env_ref,
        Duration::from_secs(60),
    );
    assert_eq!(code, 0, "{out}{err}");
    assert_clean("lgsp check's output", &format!("{out}{err}"));

    // A broker that refuses the password: exit 2, the URL shown without it.
    let refused = vhost
        .url()
        .replacen("guest:guest", &format!("guest:{WRONG_BROKER_PASSWORD}"), 1);
    let mut bad_env = env_ref.clone();
    bad_env.retain(|(k, _)| *k != "LGSP_BROKER__URL");
    bad_env.push(("LGSP_BROKER__URL", &refused));
    bad_env.push(("LGSP_HTTP__LISTEN", "127.0.0.1:0"));
    let (code, out, err) = run_to_exit(
        &bin(),
        &["run", "--config", &cfg_s, "--no-wait"],
        &bad_env,
        Duration::from_secs(60),
    );
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("guest:***@"), "{err}");
    assert_clean("a refused start's errors", &format!("{out}{err}"));

    // A store that cannot be reached: the bus runs on, not ready, and its log names
    // the store's URL without the password.
    let mut dead_env = env.to_vec();
    dead_env.retain(|(k, _)| *k != "LGSP_STORE__URL");
    dead_env.push((
        "LGSP_STORE__URL",
        format!("postgres://postgres:{STORE_PASSWORD}@127.0.0.1:1/test"),
    ));
    let dead = Lgsp::spawn(&bin(), &cfg, &dead_env);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !dead.log().contains("postgres:***@127.0.0.1:1") {
        assert!(
            std::time::Instant::now() < deadline,
            "no store error in the log: {}",
            dead.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_clean("an unreachable store's log", &dead.log());
    // A passing test leaves no log of its bus in the temp folder.
    let log_file = dead.stderr_log.clone();
    drop(dead);
    assert!(!log_file.exists(), "{} is left behind", log_file.display());

    // A whole run at debug level, with what an API client and an operator see.
    let mut bus = Lgsp::spawn(&bin(), &cfg, &env);
    bus.wait_ready();
    let api = format!("http://{}", bus.addr);
    let client = reqwest::Client::new();
    let mut seen = String::new();
    let sample =
        std::fs::read(repo().join("adapters/bizreg/samples/branch-registered.xml")).unwrap();
    for (key, body) in [
        (API_KEY, sample.clone()),
        ("not-the-key-0123456789", sample),
    ] {
        let r = client
            .post(format!("{api}/api/v1/messages/bizreg.branch.registered"))
            .bearer_auth(key)
            .header("content-type", "application/xml")
            .body(body)
            .send()
            .await
            .unwrap();
        seen.push_str(&r.text().await.unwrap());
    }
    for (path, token) in [
        ("/metrics", None),
        ("/readyz", None),
        ("/admin/v1/me", Some(OPERATOR)),
        ("/admin/v1/failed", Some(OPERATOR)),
        ("/admin/v1/failed", Some("Operator-token-wrong")),
        ("/admin/v1/audit", Some(OPERATOR)),
    ] {
        let mut req = client.get(format!("{api}{path}"));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let r = req.send().await.unwrap();
        seen.push_str(&r.text().await.unwrap());
    }
    assert!(seen.contains("lgsp_"), "no metrics were read: {seen}");
    assert_clean("the HTTP answers", &seen);
    let (code, out, err) = run_to_exit(
        &bin(),
        &["failed", "list", "--all"],
        &[("LGSPCTL_URL", &api), ("LGSPCTL_TOKEN", OPERATOR)],
        Duration::from_secs(30),
    );
    assert_eq!(code, 0, "{out}{err}");
    assert_clean("lgsp failed list", &format!("{out}{err}"));
    let log = bus.stop_cleanly();
    assert!(log.contains("DEBUG"), "not a debug-level log: {log}");
    assert!(log.contains("postgres:***@"), "{log}");
    assert_clean("the run's log", &log);
}
