//! TLS end to end, with certificates generated per test: `lgsp run` and `lgsp publish`
//! reach a RabbitMQ node of the test's own over `amqps://` (its CA in `broker.tls.ca`, a
//! client certificate the node requires), and refuse a broker whose certificate another
//! CA signed with an error that says what to check; lgsp's HTTP server speaks HTTPS with
//! `http.tls`, and a client that does not trust its CA gets nowhere.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use lgsp_testkit::node::{NodeConfig, RabbitNode};
use lgsp_testkit::pki::Pki;
use lgsp_testkit::{Amqp, Lgsp, Vhost, repo, run_to_exit, write_config};

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_lgsp"))
}

const ROUTE: &str = "routes:\n  - name: bizreg\n    from: { binding: \"bizreg.#\" }\n    map: bizreg\n    to:\n      - exchange: lgsp.out\n";

fn config(dir: &Path, extra: &str) -> PathBuf {
    let store = format!(
        "store: {{ url: \"sqlite://{}/store.db\" }}\n",
        dir.display()
    );
    write_config(dir, &format!("{store}{extra}{ROUTE}"))
}

fn broker_tls(url: &str, ca: &Path, client: Option<&Pki>) -> String {
    let client = client.map_or(String::new(), |p| {
        format!(
            ", cert: \"{}\", key: \"{}\"",
            p.client_cert.display(),
            p.client_key.display()
        )
    });
    format!(
        "broker: {{ url: \"{url}\", tls: {{ ca: \"{}\"{client} }} }}\n",
        ca.display()
    )
}

const PASSWORD: &str = "Tls-broker-pw-5f1c";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amqps_with_the_brokers_ca_and_a_client_certificate_and_nothing_less() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::generate(&dir.path().join("pki"));
    std::fs::create_dir_all(dir.path().join("node")).unwrap();
    let node = RabbitNode::start(
        &dir.path().join("node"),
        NodeConfig {
            tls: Some((
                pki.server_cert.clone(),
                pki.server_key.clone(),
                pki.ca.clone(),
            )),
            require_client_cert: true,
            ..Default::default()
        },
    );
    for args in [
        &["add_user", "lgsp", PASSWORD][..],
        &["set_permissions", "-p", "/", "lgsp", ".*", ".*", ".*"],
    ] {
        let out = node.ctl(args);
        assert!(out.status.success(), "{args:?}: {out:?}");
    }
    let url = format!(
        "amqps://lgsp:{PASSWORD}@localhost:{}/%2f",
        node.tls_port.unwrap()
    );
    let run = |cfg: &Path| {
        run_to_exit(
            &bin(),
            &["run", "--config", &cfg.display().to_string()],
            &[("LGSP_HTTP__LISTEN", "127.0.0.1:0")],
            Duration::from_secs(60),
        )
    };

    // A CA that did not sign the broker's certificate: refused at once, and said so.
    let wrong = tempfile::tempdir().unwrap();
    let cfg = config(wrong.path(), &broker_tls(&url, &pki.wrong_ca, Some(&pki)));
    let (code, _, err) = run(&cfg);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("TLS with RabbitMQ at amqps://lgsp:***@localhost")
            && err.contains("UnknownIssuer")
            && err.contains("broker.tls.ca"),
        "{err}"
    );
    assert!(!err.contains(PASSWORD), "the password is in the log: {err}");

    // The right CA but no client certificate: the broker refuses; the error says
    // to give one.
    let nocert = tempfile::tempdir().unwrap();
    let cfg = config(nocert.path(), &broker_tls(&url, &pki.ca, None));
    let (code, _, err) = run(&cfg);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("TLS with RabbitMQ") && err.contains("broker.tls.cert/key"),
        "{err}"
    );

    // Everything right: the bus routes over TLS, and lgsp publish goes the same way.
    let good = tempfile::tempdir().unwrap();
    let cfg = config(good.path(), &broker_tls(&url, &pki.ca, Some(&pki)));
    let mut bus = Lgsp::spawn(&bin(), &cfg, &[]);
    bus.wait_ready();
    let amqp = Amqp::connect(&node.url()).await;
    amqp.bind_queue("test.out", "lgsp.out", "#").await;
    let sample = repo().join("adapters/bizreg/samples/branch-registered.xml");
    let (code, out, err) = run_to_exit(
        &bin(),
        &[
            "publish",
            "--config",
            &cfg.display().to_string(),
            "--routing-key",
            "bizreg.branch.registered",
            "--message-id",
            "m-tls",
            &sample.display().to_string(),
        ],
        &[],
        Duration::from_secs(30),
    );
    assert_eq!(
        (code, out.trim()),
        (0, "m-tls"),
        "publish over amqps: {err}"
    );
    let got = amqp.drain("test.out", 1, Duration::from_secs(10)).await;
    assert_eq!(
        got.first().and_then(|r| r.message_id.as_deref()),
        Some("m-tls"),
        "{}",
        bus.log()
    );
    // The broker's side: lgsp run's connection is TLS.
    let conns = node.ctl(&["list_connections", "client_properties", "ssl", "--quiet"]);
    let listing = String::from_utf8_lossy(&conns.stdout);
    let line = listing
        .lines()
        .find(|l| l.contains("lgsp run"))
        .unwrap_or_else(|| panic!("no connection of lgsp run: {listing}"));
    assert!(line.trim_end().ends_with("true"), "not TLS: {line}");
    let log = bus.stop_cleanly();
    assert!(!log.contains(PASSWORD), "the password is in the log: {log}");
}

/// The HTTP server with `http.tls`: HTTPS for a client that trusts its CA; a client
/// that does not is refused at the handshake, and plain HTTP gets no answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_the_configured_certificate() {
    let vhost = Vhost::new("https");
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::generate(&dir.path().join("pki"));
    let extra = format!(
        "http: {{ tls: {{ cert: \"{}\", key: \"{}\" }} }}\n",
        pki.server_cert.display(),
        pki.server_key.display()
    );
    let cfg = config(dir.path(), &extra);
    let bus = Lgsp::spawn(
        &bin(),
        &cfg,
        &[
            ("LGSP_BROKER__URL", vhost.url()),
            ("LGSP_ADMIN__OPERATOR_TOKEN", "https-operator-token".into()),
        ],
    );
    let port = bus.addr.rsplit(':').next().unwrap().to_owned();
    let base = format!("https://localhost:{port}");
    let ca = reqwest::Certificate::from_pem(&std::fs::read(&pki.ca).unwrap()).unwrap();
    let trusting = reqwest::Client::builder()
        .add_root_certificate(ca)
        .build()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = trusting.get(format!("{base}/readyz")).send().await;
        if r.as_ref().is_ok_and(|r| r.status() == 200) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not ready over HTTPS: {r:?}\n{}",
            bus.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let me = trusting
        .get(format!("{base}/admin/v1/me"))
        .bearer_auth("https-operator-token")
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    // The operator's CLI trusts the province's CA with --ca (LGSPCTL_CA), and only then.
    let ca_s = pki.ca.display().to_string();
    let ctl = |extra: &[&str]| {
        let mut args = vec!["failed", "list", "--url", base.as_str()];
        args.extend_from_slice(extra);
        run_to_exit(
            &bin(),
            &args,
            &[("LGSPCTL_TOKEN", "https-operator-token")],
            Duration::from_secs(30),
        )
    };
    let (code, out, err) = ctl(&["--ca", &ca_s]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, _, err) = ctl(&[]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("cannot reach the admin API"), "{err}");

    let e = reqwest::Client::new()
        .get(format!("{base}/healthz"))
        .send()
        .await
        .unwrap_err();
    let chain = format!("{:?}", e);
    assert!(
        chain.contains("UnknownIssuer") || chain.contains("certificate"),
        "{chain}"
    );
    let plain = reqwest::Client::new()
        .get(format!("http://localhost:{port}/healthz"))
        .send()
        .await;
    assert!(
        plain.as_ref().map_or(true, |r| r.status() != 200),
        "plain HTTP answered: {plain:?}"
    );
}
