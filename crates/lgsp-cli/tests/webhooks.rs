//! Webhook targets and data-sharing agreements on the real RabbitMQ, against real HTTP
//! receivers started by each test: signed deliveries with the AMQP receivers' message
//! id, retries of 503s, a 400 stored and replayed after the fix, a hung receiver that
//! holds back nobody else, and fields outside an agreement that never leave the bus.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use hmac::{Hmac, Mac};
use lgsp_testkit::{Amqp, Lgsp, Vhost, repo, sample};
use serde_json::Value;
use sha2::Sha256;

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const OPERATOR: &str = "operator-secret-token";
const SECRET: &str = "edu-webhook-secret-0123456789";

/// One request a receiver got.
#[derive(Debug, Clone)]
struct Request {
    headers: HashMap<String, String>,
    body: Vec<u8>,
    /// The status it was answered.
    status: u16,
}

/// Receivers on one local port, one per path: each answers its script (the last entry
/// repeating) and records every request.
#[derive(Default)]
struct Receivers {
    scripts: Mutex<HashMap<String, Vec<u16>>>,
    got: Mutex<HashMap<String, Vec<Request>>>,
}

impl Receivers {
    fn script(&self, path: &str, statuses: &[u16]) {
        self.scripts
            .lock()
            .unwrap()
            .insert(path.to_owned(), statuses.to_vec());
    }
    fn got(&self, path: &str) -> Vec<Request> {
        self.got
            .lock()
            .unwrap()
            .get(path)
            .cloned()
            .unwrap_or_default()
    }
    /// Wait until `path` has answered `n` requests with a 2xx.
    fn wait_delivered(&self, path: &str, n: usize, within: Duration) -> Vec<Request> {
        let deadline = Instant::now() + within;
        loop {
            let ok: Vec<Request> = self
                .got(path)
                .into_iter()
                .filter(|r| (200..300).contains(&r.status))
                .collect();
            if ok.len() >= n || Instant::now() > deadline {
                return ok;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

async fn receive(
    State(r): State<Arc<Receivers>>,
    UrlPath(path): UrlPath<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> (StatusCode, String) {
    let status = {
        let scripts = r.scripts.lock().unwrap();
        let n = r.got.lock().unwrap().get(&path).map_or(0, Vec::len);
        let script = scripts.get(&path).cloned().unwrap_or_else(|| vec![200]);
        script.get(n).or(script.last()).copied().unwrap_or(200)
    };
    if status == 0 {
        // Hang: never answer (the bus's timeout ends it).
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
    r.got
        .lock()
        .unwrap()
        .entry(path)
        .or_default()
        .push(Request {
            headers: headers
                .iter()
                .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
                .collect(),
            body: body.to_vec(),
            status,
        });
    let answer = if status == 400 {
        "{\"error\":\"ma_so_thue missing\"}".to_owned()
    } else {
        String::new()
    };
    (StatusCode::from_u16(status).unwrap(), answer)
}

/// Start the receivers; their base URL.
async fn receivers() -> (Arc<Receivers>, String) {
    let state = Arc::new(Receivers::default());
    let app = Router::new()
        .route("/{path}", post(receive))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (state, format!("http://{addr}"))
}

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_lgsp"))
}

/// A configuration with the repository's adapters, `routes` and `extra` keys; the store
/// in `dir`.
fn config(dir: &Path, routes: &str, extra: &str) -> PathBuf {
    let text = format!(
        "adapter_dir: \"{0}/adapters\"\nschema_dir: \"{0}/schemas\"\nreference_dir: \"{0}/reference\"\nadapters: [bizreg]\nstore: {{ url: \"sqlite://{1}/lgsp.db\" }}\n{extra}routes:\n{routes}",
        repo().display(),
        dir.display()
    );
    let path = dir.join("lgsp.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

fn start(vhost: &Vhost, cfg: &Path) -> Lgsp {
    let env = vec![
        ("LGSP_BROKER__URL", vhost.url()),
        ("LGSP_ADMIN__OPERATOR_TOKEN", OPERATOR.to_owned()),
        ("TEST_EDU_WEBHOOK_SECRET", SECRET.to_owned()),
    ];
    let mut l = Lgsp::spawn(&bin(), cfg, &env);
    l.wait_ready();
    l
}

/// The check a receiver makes (README, "Webhooks"): recompute the HMAC of
/// `t.message_id.body` and compare.
fn signature_ok(header: &str, message_id: &str, body: &[u8], secret: &str) -> bool {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", x)) => t = Some(x),
            Some(("v1", x)) => v1 = Some(x),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.{message_id}.").as_bytes());
    mac.update(body);
    let expected: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    expected == v1
}

/// `lgsp failed ARGS` against the bus: (exit code, stdout, stderr).
fn failed(bus: &Lgsp, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(bin())
        .arg("failed")
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_gets_a_signed_message_with_the_amqp_id_and_only_its_agreed_fields() {
    let (rx, base) = receivers().await;
    let vhost = Vhost::new("webhook-signed");
    let dir = tempfile::tempdir().unwrap();
    let routes = format!(
        "  - name: reg
    from: {{ binding: \"bizreg.enterprise.registered\" }}
    map: bizreg
    validate: lgsp.enterprise/1
    to:
      - app: tax
      - webhook: {{ url: \"{base}/edu\", name: edu, secret_env: TEST_EDU_WEBHOOK_SECRET, headers: {{ X-Api-Version: \"2\" }} }}
"
    );
    let agreements = "agreements:
  edu-enterprises:
    receiver: edu
    basis: test
    fields: [$.enterprise_code, $.name, $.head_office, $.legal_representatives.title]
";
    let cfg = config(dir.path(), &routes, agreements);
    let bus = start(&vhost, &cfg);
    let amqp = Amqp::connect(&vhost.url()).await;
    amqp.publish(
        "lgsp.in",
        "bizreg.enterprise.registered",
        "reg-1",
        &sample("bizreg", "enterprise-registered.xml"),
    )
    .await;

    let got = rx.wait_delivered("edu", 1, Duration::from_secs(20));
    assert_eq!(got.len(), 1, "{}", bus.log());
    let r = &got[0];
    let tax = amqp.drain("lgsp.app.tax", 1, Duration::from_secs(10)).await;
    assert_eq!(tax.len(), 1);
    assert_eq!(tax[0].message_id.as_deref(), Some("reg-1"));
    assert_eq!(
        r.headers["idempotency-key"], "reg-1",
        "the AMQP receivers' id"
    );
    assert_eq!(r.headers["x-api-version"], "2");
    assert_eq!(r.headers["x-lgsp-event"], "enterprise.registered");
    assert!(r.headers["content-type"].starts_with("application/json"));
    let sig = &r.headers["x-lgsp-signature"];
    assert!(signature_ok(sig, "reg-1", &r.body, SECRET), "{sig}");
    assert!(
        !signature_ok(sig, "reg-1", b"{}", SECRET),
        "a changed body fails the check"
    );
    assert!(!signature_ok(sig, "reg-1", &r.body, "another secret"));

    // Only the agreed fields, and no personal data, reach the webhook.
    let doc: Value = serde_json::from_slice(&r.body).unwrap();
    let mut keys: Vec<&str> = doc
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "enterprise_code",
            "head_office",
            "legal_representatives",
            "name",
            "schema"
        ]
    );
    assert_eq!(
        doc["legal_representatives"][0],
        serde_json::json!({ "title": "Giám đốc" })
    );
    let text = String::from_utf8_lossy(&r.body);
    for personal in [
        "020078014563",
        "020072003318",
        "Hoàng Văn Sơn",
        "1978-04-11",
        "3500000000",
    ] {
        assert!(
            !text.contains(personal),
            "{personal} reached the webhook: {text}"
        );
    }
    // Tax has no agreement: everything but personal data.
    let tax_text = String::from_utf8_lossy(&tax[0].body);
    let tax_doc: Value = serde_json::from_slice(&tax[0].body).unwrap();
    assert!(tax_doc["name"].is_string(), "{tax_text}");
    for personal in ["020078014563", "Hoàng Văn Sơn", "1978-04-11"] {
        assert!(
            !tax_text.contains(personal),
            "{personal} reached tax: {tax_text}"
        );
    }
    assert_eq!(
        tax_doc["owners"][1]["capital_vnd"], 1500000000u64,
        "not personal: kept"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_answers_are_retried_and_a_refusal_is_stored_then_replayed() {
    let (rx, base) = receivers().await;
    rx.script("flaky", &[503, 503, 200]);
    rx.script("strict", &[400]);
    let vhost = Vhost::new("webhook-retry");
    let dir = tempfile::tempdir().unwrap();
    let routes = format!(
        "  - name: reg
    from: {{ binding: \"bizreg.enterprise.registered\" }}
    map: bizreg
    to:
      - webhook: {{ url: \"{base}/flaky\", name: flaky }}
      - webhook: {{ url: \"{base}/strict\", name: strict, timeout: 5s }}
    retry: {{ attempts: 5, delays: [1s] }}
"
    );
    let cfg = config(dir.path(), &routes, "");
    let bus = start(&vhost, &cfg);
    let amqp = Amqp::connect(&vhost.url()).await;
    amqp.publish(
        "lgsp.in",
        "bizreg.enterprise.registered",
        "reg-2",
        &sample("bizreg", "enterprise-registered.xml"),
    )
    .await;

    let ok = rx.wait_delivered("flaky", 1, Duration::from_secs(30));
    assert_eq!(ok.len(), 1, "{}", bus.log());
    let all = rx.got("flaky");
    assert_eq!(
        all.iter().map(|r| r.status).collect::<Vec<_>>(),
        [503, 503, 200],
        "delivered once, after two retries"
    );
    assert!(all.iter().all(|r| r.headers["idempotency-key"] == "reg-2"));

    // The refusal is stored with its status and the receiver's answer.
    let deadline = Instant::now() + Duration::from_secs(30);
    let items = loop {
        let (code, out, err) = failed(&bus, &["list", "--json", "--all"]);
        assert_eq!(code, 0, "{err}");
        let items: Vec<Value> = serde_json::from_str(&out).unwrap();
        if !items.is_empty() || Instant::now() > deadline {
            break items;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(items.len(), 1, "{items:?}\n{}", bus.log());
    let item = &items[0];
    assert_eq!(item["error_kind"], "delivery", "{item}");
    assert_eq!(item["error_code"], "webhook.status.400", "{item}");
    let error = item["error"].as_str().unwrap_or_default();
    assert!(error.contains("answered 400 Bad Request"), "{item}");
    assert!(error.contains("ma_so_thue missing"), "{item}");
    assert_eq!(rx.got("strict").len(), 1, "a refusal is not retried");

    // The receiver is fixed; the replay reaches it (and not the flaky one again).
    rx.script("strict", &[400, 200]);
    let id = item["id"].to_string();
    let (code, out, err) = failed(&bus, &["replay", &id]);
    assert_eq!(code, 0, "{out}{err}");
    let ok = rx.wait_delivered("strict", 1, Duration::from_secs(20));
    assert_eq!(ok.len(), 1, "{}", bus.log());
    assert_eq!(ok[0].headers["idempotency-key"], "reg-2");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        rx.got("flaky").len(),
        3,
        "the replay went to the refused target only"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_receiver_holds_back_no_other_route_or_target() {
    let (rx, base) = receivers().await;
    rx.script("hung", &[0]);
    let vhost = Vhost::new("webhook-hung");
    let dir = tempfile::tempdir().unwrap();
    let routes = format!(
        "  - name: to-hung
    from: {{ binding: \"bizreg.enterprise.registered\" }}
    map: bizreg
    to:
      - webhook: {{ url: \"{base}/hung\", name: hung, timeout: 60s, concurrency: 2 }}
      - webhook: {{ url: \"{base}/fine\", name: fine }}
  - name: to-tax
    from: {{ binding: \"bizreg.enterprise.registered\" }}
    map: bizreg
    to: [{{ app: tax }}]
"
    );
    let cfg = config(dir.path(), &routes, "");
    let bus = start(&vhost, &cfg);
    let amqp = Amqp::connect(&vhost.url()).await;
    let ids: Vec<String> = (0..200).map(|i| format!("m-{i}")).collect();
    amqp.publish_many(
        "lgsp.in",
        "bizreg.enterprise.registered",
        &ids,
        &sample("bizreg", "enterprise-registered.xml"),
    )
    .await;

    let tax = amqp
        .drain("lgsp.app.tax", 200, Duration::from_secs(30))
        .await;
    assert_eq!(tax.len(), 200, "{}", bus.log());
    let fine = rx.wait_delivered("fine", 200, Duration::from_secs(30));
    assert_eq!(fine.len(), 200, "{}", bus.log());
    // The hung receiver holds its concurrency, the rest waits in its own queue.
    assert_eq!(rx.got("hung").len(), 0);
    let waiting = amqp.count("lgsp.webhook.to-hung.hung").await;
    assert!(waiting >= 198, "{waiting} waiting for the hung receiver");
}

/// The value of one series (`name{labels}` exactly as rendered) in a `/metrics` text.
fn series(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no series {name} in:\n{text}"))
}

async fn metrics_text(bus: &Lgsp) -> String {
    let resp = reqwest::get(format!("http://{}/metrics", bus.addr))
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    resp.text().await.unwrap()
}

/// Wait until `cond` holds for the metrics text (they move as messages settle).
async fn metrics_when(bus: &Lgsp, cond: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let t = metrics_text(bus).await;
        if cond(&t) || Instant::now() > deadline {
            return t;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_move_by_what_was_routed_retried_failed_and_replayed() {
    let (rx, base) = receivers().await;
    rx.script("flaky", &[503, 200]);
    let vhost = Vhost::new("metrics");
    let dir = tempfile::tempdir().unwrap();
    let routes = format!(
        "  - name: reg
    from: {{ binding: \"bizreg.enterprise.registered\" }}
    map: bizreg
    to:
      - app: tax
      - webhook: {{ url: \"{base}/flaky\", name: flaky }}
    retry: {{ attempts: 5, delays: [1s] }}
"
    );
    let cfg = config(dir.path(), &routes, "");
    let bus = start(&vhost, &cfg);
    let amqp = Amqp::connect(&vhost.url()).await;
    let key = "bizreg.enterprise.registered";
    let good = sample("bizreg", "enterprise-registered.xml");
    for i in 0..3 {
        amqp.publish("lgsp.in", key, &format!("good-{i}"), &good)
            .await;
    }
    for i in 0..2 {
        amqp.publish("lgsp.in", key, &format!("bad-{i}"), b"<HoSo><broken")
            .await;
    }
    let t = metrics_when(&bus, |t| {
        t.contains("lgsp_failed_messages_stored{status=\"failed\"} 2")
            && t.contains("target=\"reg/webhook:flaky\"} 3")
    })
    .await;
    assert_eq!(
        series(&t, "lgsp_messages_received_total{adapter=\"bizreg\"}"),
        5.0
    );
    assert_eq!(
        series(
            &t,
            "lgsp_messages_delivered_total{route=\"reg\",target=\"reg/app:tax\"}"
        ),
        3.0
    );
    assert_eq!(
        series(
            &t,
            "lgsp_messages_delivered_total{route=\"reg\",target=\"reg/webhook:flaky\"}"
        ),
        3.0
    );
    assert_eq!(
        series(&t, "lgsp_messages_retried_total{route=\"reg\"}"),
        1.0
    );
    assert_eq!(
        series(
            &t,
            "lgsp_webhook_responses_total{target=\"reg/webhook:flaky\",class=\"5xx\"}"
        ),
        1.0
    );
    assert_eq!(
        series(
            &t,
            "lgsp_webhook_responses_total{target=\"reg/webhook:flaky\",class=\"2xx\"}"
        ),
        3.0
    );
    let decode_failures: f64 = t
        .lines()
        .filter(|l| l.starts_with("lgsp_messages_failed_total{route=\"reg\",kind=\"decode\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(decode_failures, 2.0, "{t}");
    assert_eq!(
        series(
            &t,
            "lgsp_mapping_duration_seconds_count{adapter=\"bizreg\"}"
        ),
        5.0
    );
    assert_eq!(
        series(&t, "lgsp_publish_confirm_seconds_count"),
        6.0,
        "3 to tax, 3 into the webhook queue"
    );
    assert_eq!(series(&t, "lgsp_messages_in_flight"), 0.0);
    assert_eq!(series(&t, "lgsp_broker_connected"), 1.0);
    assert_eq!(series(&t, "lgsp_store_up"), 1.0);
    assert_eq!(series(&t, "lgsp_messages_replayed_total"), 0.0);

    // A replay counts, and the replayed message (still malformed) counts again.
    let (code, out, err) = failed(&bus, &["list", "--json", "--all"]);
    assert_eq!(code, 0, "{err}");
    let items: Vec<Value> = serde_json::from_str(&out).unwrap();
    let (code, out, err) = failed(&bus, &["replay", &items[0]["id"].to_string()]);
    assert_eq!(code, 0, "{out}{err}");
    let t = metrics_when(&bus, |t| {
        t.contains("lgsp_messages_received_total{adapter=\"bizreg\"} 6")
    })
    .await;
    assert_eq!(series(&t, "lgsp_messages_replayed_total"), 1.0);
    assert_eq!(
        series(&t, "lgsp_messages_received_total{adapter=\"bizreg\"}"),
        6.0
    );
    // No message value is a label: the bodies' values never appear.
    for value in ["020078014563", "Hoàng Văn Sơn", "good-0", "bad-1"] {
        assert!(!t.contains(value), "{value} in the metrics");
    }
}

/// A RabbitMQ user of its own with a password no other text has, allowed on `vhost`;
/// deleted on drop.
struct BrokerUser(String);

impl BrokerUser {
    fn new(vhost: &Vhost, password: &str) -> BrokerUser {
        let name = format!("{}-user", vhost.name);
        let (s, b) = lgsp_testkit::management(
            "PUT",
            &format!("/api/users/{name}"),
            &format!("{{\"password\":\"{password}\",\"tags\":\"\"}}"),
        )
        .unwrap();
        assert!((200..300).contains(&s), "{s} {b}");
        let (s, b) = lgsp_testkit::management(
            "PUT",
            &format!("/api/permissions/{}/{name}", vhost.name),
            r#"{"configure":".*","write":".*","read":".*"}"#,
        )
        .unwrap();
        assert!((200..300).contains(&s), "{s} {b}");
        BrokerUser(name)
    }
}

impl Drop for BrokerUser {
    fn drop(&mut self) {
        let _ = lgsp_testkit::management("DELETE", &format!("/api/users/{}", self.0), "");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_logs_of_a_run_hold_no_secret_and_no_personal_data() {
    const BROKER_PASSWORD: &str = "Br0ker-pw-5f3a9c";
    const API_KEY: &str = "bizreg-api-key-7d1e2b4c9a";
    let (rx, base) = receivers().await;
    // The receiver refuses and echoes part of the message back.
    rx.script("echo", &[503, 400]);
    let vhost = Vhost::new("logs");
    let user = BrokerUser::new(&vhost, BROKER_PASSWORD);
    let dir = tempfile::tempdir().unwrap();
    let routes = format!(
        "  - name: reg
    from: {{ binding: \"bizreg.enterprise.registered\" }}
    map: bizreg
    validate: lgsp.enterprise/1
    to:
      - app: tax
      - webhook: {{ url: \"{base}/echo\", name: echo, secret_env: TEST_EDU_WEBHOOK_SECRET }}
    retry: {{ attempts: 3, delays: [1s] }}
"
    );
    let extra = "log: { format: json }\napps:\n  bizreg: { publish: [\"bizreg.#\"] }\n  tax: { receive: [\"enterprise.*\"] }\n";
    let cfg = config(dir.path(), &routes, extra);
    let url = vhost
        .url()
        .replacen("guest:guest", &format!("{}:{BROKER_PASSWORD}", user.0), 1);
    assert!(url.contains(BROKER_PASSWORD), "{url}");
    let env = vec![
        ("LGSP_BROKER__URL", url),
        ("LGSP_ADMIN__OPERATOR_TOKEN", OPERATOR.to_owned()),
        ("LGSP_APPS__BIZREG__API_KEY", API_KEY.to_owned()),
        ("TEST_EDU_WEBHOOK_SECRET", SECRET.to_owned()),
        ("RUST_LOG", "debug".to_owned()),
    ];
    let mut bus = Lgsp::spawn(&bin(), &cfg, &env);
    bus.wait_ready();
    // Over HTTP: a registration; over AMQP: one that does not decode, with a name in it.
    let client = reqwest::Client::new();
    let body = sample("bizreg", "enterprise-registered.xml");
    for (id, body) in [("log-1", body.clone())] {
        let resp = client
            .post(format!(
                "http://{}/api/v1/messages/bizreg.enterprise.registered",
                bus.addr
            ))
            .header("authorization", format!("Bearer {API_KEY}"))
            .header("content-type", "application/xml")
            .header("idempotency-key", id)
            .header("traceparent", TRACEPARENT)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 202);
    }
    let amqp = Amqp::connect(&vhost.url()).await;
    amqp.publish(
        "lgsp.in",
        "bizreg.enterprise.registered",
        "log-2",
        b"<HoSo><TenDN>Ho\xc3\xa0ng V\xc4\x83n S\xc6\xa1n</TenDN><broken",
    )
    .await;
    let delivered = rx.wait_delivered("echo", 1, Duration::from_secs(1));
    assert!(delivered.is_empty());
    // The refusal (second answer) is stored: wait for it, then stop.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, out, _) = failed(&bus, &["list", "--json", "--all"]);
        let items: Vec<Value> = serde_json::from_str(&out).unwrap_or_default();
        if items.len() >= 2 || Instant::now() > deadline {
            assert_eq!(items.len(), 2, "{out}\n{}", bus.log());
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = bus.stop_cleanly();
    assert!(log.lines().count() > 10, "{log}");
    for line in log.lines() {
        let v: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(v["level"].is_string() && v["fields"].is_object(), "{line}");
    }
    // Each line of a message's handling carries its span.
    assert!(
        log.lines().any(|l| l.contains("\"span\":{")
            && l.contains("\"message_id\":\"log-2\"")
            && l.contains("\"name\":\"message\"")),
        "no line in the span of message log-2: {log}"
    );
    assert!(log.contains("\"name\":\"webhook\""), "{log}");
    // The trace id of the request's traceparent is in the spans of its delivery.
    assert!(
        log.lines().any(|l| l.contains("\"name\":\"webhook\"")
            && l.contains("\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\"")),
        "no line with the trace id: {log}"
    );
    for secret in [BROKER_PASSWORD, API_KEY, OPERATOR, SECRET] {
        assert!(!log.contains(secret), "{secret} is in the log");
    }
    for personal in [
        "020078014563",
        "020072003318",
        "Hoàng Văn Sơn",
        "Mã Văn Lực",
        "1978-04-11",
    ] {
        assert!(!log.contains(personal), "{personal} is in the log");
    }
}
