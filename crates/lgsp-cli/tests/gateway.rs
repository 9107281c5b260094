//! The HTTP gateway of `lgsp run` on the real RabbitMQ, over real HTTP: sector
//! applications publish with their API keys; every refusal has its status and publishes
//! nothing; one idempotency key publishes once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use lgsp_testkit::{Amqp, Lgsp, Vhost, received_ids as ids, repo, sample};

const BIZREG_KEY: &str = "bizreg-test-key-0123456789abcdef";
const TAX_KEY: &str = "tax-test-key-0123456789abcdef";
const FINANCE_KEY: &str = "finance-test-key-0123456789abcdef";
const EMIS_KEY: &str = "emis-test-key-0123456789abcdef";

fn content_type(file: &str) -> &'static str {
    if file.ends_with(".json") {
        "application/json"
    } else {
        "application/xml"
    }
}

fn keys() -> Vec<(&'static str, String)> {
    vec![
        ("LGSP_APPS__BIZREG__API_KEY", BIZREG_KEY.into()),
        ("LGSP_APPS__TAX__API_KEY", TAX_KEY.into()),
        ("LGSP_APPS__FINANCE__API_KEY", FINANCE_KEY.into()),
        ("LGSP_APPS__EMIS__API_KEY", EMIS_KEY.into()),
    ]
}

struct Answer {
    status: u16,
    body: serde_json::Value,
    retry_after: Option<String>,
    connection: Option<String>,
}

async fn post(
    client: &reqwest::Client,
    addr: &str,
    key: Option<&str>,
    routing_key: &str,
    content_type: &str,
    body: Vec<u8>,
    extra: &[(&str, &str)],
) -> Answer {
    let mut req = client
        .post(format!("http://{addr}/api/v1/messages/{routing_key}"))
        .header("content-type", content_type)
        .body(body);
    if let Some(k) = key {
        req = req.header("authorization", format!("Bearer {k}"));
    }
    for (h, v) in extra {
        req = req.header(*h, *v);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let connection = resp
        .headers()
        .get("connection")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let text = resp.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
    Answer {
        status,
        body,
        retry_after,
        connection,
    }
}

fn message_id(a: &Answer) -> String {
    assert_eq!(a.status, 202, "{}", a.body);
    a.body["message_id"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn applications_publish_the_default_flows_over_http_and_only_what_they_may() {
    let vhost = Vhost::new("gateway-flows");
    let dir = tempfile::tempdir().unwrap();
    let mut env = keys();
    env.push(("LGSP_BROKER__URL", vhost.url()));
    env.push((
        "LGSP_STORE__URL",
        format!("sqlite://{}/lgsp.db", dir.path().display()),
    ));
    let mut bus = Lgsp::spawn(
        Path::new(env!("CARGO_BIN_EXE_lgsp")),
        &repo().join("config/lgsp.yaml"),
        &env,
    );
    bus.wait_ready();
    let amqp = Amqp::connect(&vhost.url()).await;
    amqp.bind_queue("test.in", "lgsp.in", "#").await;
    amqp.bind_queue("test.out", "lgsp.out", "#").await;
    amqp.bind_queue("test.failed", "lgsp.failed", "").await;
    let client = reqwest::Client::new();

    // An application not entitled to a key: 403, and nothing moves.
    let refused = post(
        &client,
        &bus.addr,
        Some(EMIS_KEY),
        "bizreg.enterprise.registered",
        "application/xml",
        sample("bizreg", "enterprise-registered.xml"),
        &[],
    )
    .await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert_eq!(refused.body["code"], "forbidden");
    assert!(refused.body["message"].as_str().unwrap().contains("emis"));
    assert_eq!(amqp.count("test.in").await, 0);

    let sends: [(&str, &str, &str, &str); 6] = [
        (
            BIZREG_KEY,
            "bizreg",
            "enterprise-registered.xml",
            "bizreg.enterprise.registered",
        ),
        (
            BIZREG_KEY,
            "bizreg",
            "enterprise-changed.xml",
            "bizreg.enterprise.changed",
        ),
        (
            BIZREG_KEY,
            "bizreg",
            "enterprise-suspended.json",
            "bizreg.enterprise.status_changed",
        ),
        (
            TAX_KEY,
            "tax",
            "einvoice-tdiep-public-buyer.xml",
            "tax.einvoice.issued",
        ),
        (
            EMIS_KEY,
            "emis",
            "teacher-roster.json",
            "emis.teacher.listed",
        ),
        (
            FINANCE_KEY,
            "finance",
            "budget-allocation-schools.json",
            "finance.budget.allocated",
        ),
    ];
    let mut got = Vec::new();
    for (key, adapter, file, rk) in sends {
        let a = post(
            &client,
            &bus.addr,
            Some(key),
            rk,
            content_type(file),
            sample(adapter, file),
            &[("x-correlation-id", "corr-1")],
        )
        .await;
        assert_eq!(a.body["routing_key"], rk);
        assert_eq!(a.body["app"], adapter);
        got.push(message_id(&a));
    }
    let (reg, chg, sus, inv, teachers) = (&got[0], &got[1], &got[2], &got[3], &got[4]);

    let tax = amqp.drain("lgsp.app.tax", 50, Duration::from_secs(5)).await;
    let mut want = vec![reg.clone(), chg.clone(), sus.clone()];
    want.sort();
    assert_eq!(
        ids(&tax),
        want,
        "the tax office gets bizreg's events with the gateway's ids"
    );
    assert!(tax.iter().all(|r| r.app_id.as_deref() == Some("bizreg")));
    assert!(
        tax.iter()
            .all(|r| r.correlation_id.as_deref() == Some("corr-1"))
    );

    let finance = amqp
        .drain("lgsp.app.finance", 50, Duration::from_secs(5))
        .await;
    let invoice = lgsp_core::envelope::child_message_id(inv, 0);
    let mut want = vec![reg.clone(), chg.clone(), invoice, teachers.clone()];
    want.sort();
    assert_eq!(ids(&finance), want);

    let emis = amqp
        .drain("lgsp.app.emis", 50, Duration::from_secs(5))
        .await;
    assert!(
        !emis.is_empty(),
        "one document per school of the allocation"
    );
    assert!(emis.iter().all(|r| r.app_id.as_deref() == Some("finance")));

    let copies = amqp.drain("test.in", 50, Duration::from_secs(2)).await;
    assert_eq!(copies.len(), 6, "each 202 is one message on lgsp.in");
    assert_eq!(amqp.count("test.failed").await, 0, "{}", bus.log());

    // Finance has no agreement for registrations: no personal data reaches it.
    let registered = finance
        .iter()
        .find(|r| r.message_id.as_deref() == Some(reg.as_str()))
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&registered.body).unwrap();
    assert!(doc["name"].is_string());
    for r in doc["legal_representatives"].as_array().unwrap() {
        assert!(
            r.get("citizen_id").is_none() && r.get("full_name").is_none(),
            "{r}"
        );
    }

    // The catalogue: for any application key, never without one.
    let url = format!("http://{}/api/v1/catalog", bus.addr);
    let none = client.get(&url).send().await.unwrap();
    assert_eq!(none.status().as_u16(), 401);
    let resp = client
        .get(&url)
        .header("x-api-key", EMIS_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let catalog: serde_json::Value = resp.json().await.unwrap();
    let event = catalog["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event"] == "enterprise.registered")
        .unwrap();
    assert_eq!(event["schemas"][0], "lgsp.enterprise/1");
    assert!(
        event["publishers"]
            .as_array()
            .unwrap()
            .contains(&"bizreg".into())
    );
    let receiver = |name: &str| {
        event["receivers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["kind"] == "app" && r["name"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(
        receiver("tax")["agreements"][0]["name"],
        "tax-enterprise-registration"
    );
    assert!(
        receiver("finance")["withheld_personal"]
            .as_array()
            .unwrap()
            .contains(&"legal_representatives.citizen_id".into())
    );
    bus.terminate();
}

/// A configuration of its own: one route, small limits, a tight rate limit for `tax`.
fn small_config(dir: &Path) -> PathBuf {
    let text = format!(
        r#"
store: {{ url: "sqlite://{db}" }}
limits: {{ max_message_bytes: 64KiB }}
adapter_dir: {adapters}
schema_dir: {schemas}
reference_dir: {reference}
adapters: [bizreg]
routes:
  - name: registered
    from: {{ binding: "bizreg.enterprise.*" }}
    map: bizreg
    to: [{{ app: tax }}]
apps:
  bizreg:
    publish: ["bizreg.#"]
  tax:
    publish: ["tax.#"]
    rate_limit: {{ per_second: 1, burst: 2 }}
"#,
        db = dir.join("lgsp.db").display(),
        adapters = repo().join("adapters").display(),
        schemas = repo().join("schemas").display(),
        reference = repo().join("reference").display(),
    );
    let path = dir.join("lgsp.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

/// `lgsp run` of [`small_config`] with every test key, and a copy of `lgsp.in` in
/// `test.in`: what the gateway published. Bind every field: the vhost and the directory go on drop.
async fn small_bus(label: &str) -> SmallBus {
    let vhost = Vhost::new(label);
    let dir = tempfile::tempdir().unwrap();
    let config = small_config(dir.path());
    let mut env = keys();
    env.push(("LGSP_BROKER__URL", vhost.url()));
    env.push(("LGSP_ADMIN__OPERATOR_TOKEN", ADMIN_TOKEN.into()));
    let mut bus = Lgsp::spawn(Path::new(env!("CARGO_BIN_EXE_lgsp")), &config, &env);
    bus.wait_ready();
    let amqp = Amqp::connect(&vhost.url()).await;
    amqp.bind_queue("test.in", "lgsp.in", "#").await;
    SmallBus {
        _vhost: vhost,
        dir,
        config,
        env,
        bus,
        amqp,
    }
}

struct SmallBus {
    _vhost: Vhost,
    dir: tempfile::TempDir,
    config: PathBuf,
    env: Vec<(&'static str, String)>,
    bus: Lgsp,
    amqp: Amqp,
}

/// Send a chunked body of `chunks` x 16 KiB without Content-Length; the status line.
fn chunked(addr: &str, path: &str, key: &str, chunks: usize) -> u16 {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {key}\r\nContent-Type: application/xml\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    .unwrap();
    let chunk = vec![b'a'; 16 * 1024];
    for _ in 0..chunks {
        if write!(s, "{:x}\r\n", chunk.len()).is_err()
            || s.write_all(&chunk).is_err()
            || s.write_all(b"\r\n").is_err()
        {
            break;
        }
    }
    let _ = s.write_all(b"0\r\n\r\n");
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    String::from_utf8_lossy(&raw)
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_refusal_has_its_status_and_code_and_publishes_nothing() {
    let SmallBus {
        dir,
        config,
        bus,
        amqp,
        _vhost,
        env: _,
    } = small_bus("gateway-errors").await;
    let client = reqwest::Client::new();
    let good = sample("bizreg", "enterprise-registered.xml");
    let rk = "bizreg.enterprise.registered";
    let xml = "application/xml";

    let cases: Vec<(u16, &str, Answer)> = vec![
        (
            401,
            "unauthorized",
            post(&client, &bus.addr, None, rk, xml, good.clone(), &[]).await,
        ),
        (
            401,
            "unauthorized",
            post(
                &client,
                &bus.addr,
                Some("not-a-key-of-anyone"),
                rk,
                xml,
                good.clone(),
                &[],
            )
            .await,
        ),
        (
            403,
            "forbidden",
            post(
                &client,
                &bus.addr,
                Some(BIZREG_KEY),
                "tax.einvoice.issued",
                xml,
                good.clone(),
                &[],
            )
            .await,
        ),
        (
            404,
            "no_route",
            post(
                &client,
                &bus.addr,
                Some(BIZREG_KEY),
                "bizreg.branch.x.y",
                xml,
                good.clone(),
                &[],
            )
            .await,
        ),
        (
            400,
            "bad_routing_key",
            post(
                &client,
                &bus.addr,
                Some(BIZREG_KEY),
                "bizreg..x",
                xml,
                good.clone(),
                &[],
            )
            .await,
        ),
        (
            415,
            "unsupported_media_type",
            post(
                &client,
                &bus.addr,
                Some(BIZREG_KEY),
                rk,
                "text/plain",
                good.clone(),
                &[],
            )
            .await,
        ),
        (
            413,
            "payload_too_large",
            post(
                &client,
                &bus.addr,
                Some(BIZREG_KEY),
                rk,
                xml,
                vec![b' '; 65 * 1024],
                &[],
            )
            .await,
        ),
        (
            400,
            "not_well_formed",
            post(
                &client,
                &bus.addr,
                Some(BIZREG_KEY),
                rk,
                xml,
                b"<a>\n  <b></a>".to_vec(),
                &[],
            )
            .await,
        ),
        // A Content-Type that names the other format than the body plainly is.
        (
            400,
            "content_type_mismatch",
            post(
                &client,
                &bus.addr,
                Some(BIZREG_KEY),
                rk,
                "application/json",
                good.clone(),
                &[],
            )
            .await,
        ),
        (
            400,
            "not_well_formed",
            post(
                &client,
                &bus.addr,
                Some(BIZREG_KEY),
                rk,
                "application/json",
                b"{\"a\": [1,}".to_vec(),
                &[],
            )
            .await,
        ),
    ];
    for (status, code, a) in &cases {
        assert_eq!(a.status, *status, "{code}: {}", a.body);
        assert_eq!(a.body["code"], *code, "{}", a.body);
        // The body may be unread: a client must not send its next request on this
        // connection (each case here does, on the same client, and gets its answer).
        assert_eq!(a.connection.as_deref(), Some("close"), "{code}");
        assert!(
            !a.body["message"].as_str().unwrap_or("").is_empty()
                && !a.body["hint"].as_str().unwrap_or("").is_empty(),
            "{}",
            a.body
        );
    }
    assert!(
        cases[7].2.body["message"]
            .as_str()
            .unwrap()
            .contains("line 2, column"),
        "the decoder's position: {}",
        cases[7].2.body
    );
    // Streamed without Content-Length: refused once past the limit.
    assert_eq!(
        chunked(&bus.addr, &format!("/api/v1/messages/{rk}"), BIZREG_KEY, 8),
        413
    );
    // The rate limit: a burst of 2, then 429 with Retry-After.
    let mut limited = None;
    for _ in 0..4 {
        let a = post(
            &client,
            &bus.addr,
            Some(TAX_KEY),
            "tax.x",
            xml,
            good.clone(),
            &[],
        )
        .await;
        if a.status == 429 {
            limited = Some(a);
            break;
        }
    }
    let limited = limited.expect("the third request within a second is limited");
    assert_eq!(limited.body["code"], "rate_limited");
    assert!(
        limited
            .retry_after
            .is_some_and(|s| s.parse::<u64>().unwrap() >= 1)
    );

    assert_eq!(
        amqp.count("test.in").await,
        0,
        "no refusal published anything"
    );
    let ok = post(
        &client,
        &bus.addr,
        Some(BIZREG_KEY),
        rk,
        xml,
        good.clone(),
        &[],
    )
    .await;
    message_id(&ok);
    assert_eq!(
        amqp.drain("test.in", 5, Duration::from_secs(2)).await.len(),
        1
    );
    bus.terminate();

    // The broker down: 503, the client may retry.
    let down = Lgsp::spawn(
        Path::new(env!("CARGO_BIN_EXE_lgsp")),
        &config,
        &[
            (
                "LGSP_BROKER__URL",
                "amqp://guest:guest@127.0.0.1:1/%2f".to_owned(),
            ),
            ("LGSP_APPS__BIZREG__API_KEY", BIZREG_KEY.to_owned()),
            (
                "LGSP_STORE__URL",
                format!("sqlite://{}/down.db", dir.path().display()),
            ),
        ],
    );
    let a = post(&client, &down.addr, Some(BIZREG_KEY), rk, xml, good, &[]).await;
    assert_eq!(a.status, 503, "{}", a.body);
    assert_eq!(a.body["code"], "broker_unavailable");
    down.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_concurrent_requests_with_one_idempotency_key_publish_once() {
    let SmallBus {
        config,
        env,
        bus,
        amqp,
        _vhost,
        dir: _dir,
    } = small_bus("gateway-idem").await;
    let client = reqwest::Client::new();
    let body = sample("bizreg", "enterprise-registered.xml");
    let rk = "bizreg.enterprise.registered";
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (client, addr, body) = (client.clone(), bus.addr.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            post(
                &client,
                &addr,
                Some(BIZREG_KEY),
                rk,
                "application/xml",
                body,
                &[("idempotency-key", "order-42")],
            )
            .await
        }));
    }
    let mut answered = Vec::new();
    for t in tasks {
        answered.push(message_id(&t.await.unwrap()));
    }
    answered.dedup();
    assert_eq!(
        answered.len(),
        1,
        "every request answers the first message id"
    );
    let copies = amqp.drain("test.in", 30, Duration::from_secs(2)).await;
    assert_eq!(ids(&copies), answered, "published exactly once");
    // Its story starts at the gateway, once, before the router's part.
    let story = story_of(&client, &bus.addr, &answered[0], "delivered").await;
    let events: Vec<&str> = story["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    // A clean first delivery: its delivered event says how it was received.
    assert_eq!(events, ["accepted", "delivered"], "{story:#}");
    assert!(
        story["events"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("from app bizreg, key bizreg.enterprise.registered"),
        "{story:#}"
    );
    assert_eq!(story["events"][1]["target"], "registered/app:tax");
    assert!(
        story["events"][1]["detail"]
            .as_str()
            .unwrap()
            .contains("adapter bizreg, key bizreg.enterprise.registered, attempt 0, app bizreg"),
        "{story:#}"
    );

    // The same key for another body is refused; another key publishes.
    let other = post(
        &client,
        &bus.addr,
        Some(BIZREG_KEY),
        rk,
        "application/xml",
        sample("bizreg", "enterprise-changed.xml"),
        &[("idempotency-key", "order-42")],
    )
    .await;
    assert_eq!(other.status, 422, "{}", other.body);
    assert_eq!(other.body["code"], "idempotency_key_reused");
    bus.terminate();

    // Across a restart, the key still holds.
    let mut again = Lgsp::spawn(Path::new(env!("CARGO_BIN_EXE_lgsp")), &config, &env);
    again.wait_ready();
    let repeat = post(
        &client,
        &again.addr,
        Some(BIZREG_KEY),
        rk,
        "application/xml",
        body,
        &[("idempotency-key", "order-42")],
    )
    .await;
    assert_eq!(message_id(&repeat), answered[0]);
    assert_eq!(repeat.body["idempotent_replay"], true);
    assert_eq!(
        amqp.count("test.in").await,
        0,
        "the repeat published nothing"
    );
    again.terminate();
}

const ADMIN_TOKEN: &str = "gateway-test-operator-token";

/// `GET /admin/v1/messages/{id}` until its last event is `last` (tracking is batched).
async fn story_of(client: &reqwest::Client, addr: &str, id: &str, last: &str) -> serde_json::Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let resp = client
            .get(format!("http://{addr}/admin/v1/messages/{id}"))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        let ok = resp.status() == 200;
        let v: serde_json::Value = resp.json().await.unwrap_or_default();
        if ok
            && v["events"]
                .as_array()
                .and_then(|e| e.last())
                .map(|e| &e["event"])
                == Some(&last.into())
        {
            return v;
        }
        assert!(std::time::Instant::now() < deadline, "{v:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A RabbitMQ user of its own for one test, allowed to write `lgsp.in` of `vhost` and
/// nothing else; deleted on drop.
struct BrokerUser {
    name: String,
    url: String,
}

impl BrokerUser {
    fn new(vhost: &Vhost, label: &str) -> BrokerUser {
        let name = format!("{}-{label}", vhost.name);
        let (s, b) = lgsp_testkit::management(
            "PUT",
            &format!("/api/users/{name}"),
            r#"{"password":"pw","tags":""}"#,
        )
        .unwrap();
        assert!((200..300).contains(&s), "create user {name}: {s} {b}");
        let (s, b) = lgsp_testkit::management(
            "PUT",
            &format!("/api/permissions/{}/{name}", vhost.name),
            r#"{"configure":"^$","write":"^lgsp\\.in$","read":"^$"}"#,
        )
        .unwrap();
        assert!((200..300).contains(&s), "permissions of {name}: {s} {b}");
        let url = format!("amqp://{name}:pw@127.0.0.1:5672/{}", vhost.name);
        BrokerUser { name, url }
    }
}

impl Drop for BrokerUser {
    fn drop(&mut self) {
        let _ = lgsp_testkit::management("DELETE", &format!("/api/users/{}", self.name), "");
    }
}

async fn publish_as(amqp: &Amqp, user: Option<&str>, app: Option<&str>, id: &str, body: &[u8]) {
    let mut props = lapin::BasicProperties::default()
        .with_message_id(id.into())
        .with_delivery_mode(2);
    if let Some(u) = user {
        props = props.with_user_id(u.into());
    }
    if let Some(a) = app {
        props = props.with_app_id(a.into());
    }
    amqp.publish_with("lgsp.in", "bizreg.enterprise.registered", props, body)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_amqp_publisher_not_entitled_to_its_key_is_failed_as_forbidden() {
    const VIEWER: &str = "viewer-secret-token";
    const VIEWER_SHA256: &str = "a72bf14466a555a28f46b4fdba9d825359a9f1e5ebc9fa627fd113365cf67542";
    let vhost = Vhost::new("gateway-amqp");
    // bizreg may publish bizreg.#, tax only tax.#; `stranger` is no application's user.
    let bizreg = BrokerUser::new(&vhost, "bizreg");
    let tax = BrokerUser::new(&vhost, "tax");
    let stranger = BrokerUser::new(&vhost, "stranger");
    let dir = tempfile::tempdir().unwrap();
    let config = small_config(dir.path());
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        "admin: {{ viewer_token_sha256: [\"{VIEWER_SHA256}\"] }}\n"
    ));
    std::fs::write(&config, text).unwrap();
    let env = vec![
        ("LGSP_BROKER__URL", vhost.url()),
        ("LGSP_APPS__BIZREG__AMQP_USER", bizreg.name.clone()),
        ("LGSP_APPS__TAX__AMQP_USER", tax.name.clone()),
    ];
    let mut bus = Lgsp::spawn(Path::new(env!("CARGO_BIN_EXE_lgsp")), &config, &env);
    bus.wait_ready();
    let guest = Amqp::connect(&vhost.url()).await;
    guest.bind_queue("test.failed", "lgsp.failed", "").await;
    let body = sample("bizreg", "enterprise-registered.xml");

    // Entitled: the application's own user; the bus's user without an application.
    let as_bizreg = Amqp::connect(&bizreg.url).await;
    publish_as(&as_bizreg, Some(&bizreg.name), None, "m-bizreg", &body).await;
    publish_as(&guest, None, None, "m-anonymous", &body).await;
    // Not entitled: tax's user on a bizreg key; a user of no application; the bus's user
    // naming tax in app_id (as the gateway does).
    let as_tax = Amqp::connect(&tax.url).await;
    publish_as(&as_tax, Some(&tax.name), None, "m-tax", &body).await;
    let as_stranger = Amqp::connect(&stranger.url).await;
    publish_as(
        &as_stranger,
        Some(&stranger.name),
        None,
        "m-stranger",
        &body,
    )
    .await;
    publish_as(&guest, Some("guest"), Some("tax"), "m-tax-app-id", &body).await;

    let mut failed = amqp_ids(&guest, "test.failed", 3).await;
    failed.sort();
    assert_eq!(failed, ["m-stranger", "m-tax", "m-tax-app-id"]);
    let delivered = ids(&guest.drain("lgsp.app.tax", 5, Duration::from_secs(2)).await);
    assert_eq!(delivered, ["m-anonymous", "m-bizreg"], "only the entitled");

    // In the store, each as kind forbidden, saying who was refused and why.
    let client = reqwest::Client::new();
    let page: serde_json::Value = client
        .get(format!(
            "http://{}/admin/v1/failed?kind=forbidden",
            bus.addr
        ))
        .bearer_auth(VIEWER)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 3, "{page}");
    let error_of = |id: &str| {
        items
            .iter()
            .find(|i| i["message_id"] == id)
            .map(|i| i.to_string())
            .unwrap_or_default()
    };
    assert!(error_of("m-tax").contains("may not publish"), "{page}");
    assert!(error_of("m-stranger").contains(&stranger.name), "{page}");
    bus.terminate();
}

/// The message ids of the first `n` messages of `queue`, with kind `forbidden` asserted.
async fn amqp_ids(amqp: &Amqp, queue: &str, n: usize) -> Vec<String> {
    let got = amqp.drain(queue, n, Duration::from_secs(10)).await;
    for r in &got {
        assert_eq!(
            r.headers.get("lgsp-error-kind").map(String::as_str),
            Some("forbidden"),
            "{:?}",
            r.headers
        );
    }
    got.into_iter().filter_map(|r| r.message_id).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_printed_rabbitmq_definitions_let_each_application_write_only_its_keys() {
    let vhost = Vhost::new("gateway-defs");
    let dir = tempfile::tempdir().unwrap();
    let config = small_config(dir.path());
    let user = format!("{}-bizreg", vhost.name);
    let users = [
        ("LGSP_APPS__BIZREG__AMQP_USER", user.clone()),
        ("LGSP_APPS__TAX__AMQP_USER", format!("{}-tax", vhost.name)),
    ];
    // The bus declares lgsp.in; then the definitions are imported as printed.
    let mut env = vec![("LGSP_BROKER__URL", vhost.url())];
    env.extend(users.iter().cloned());
    let mut bus = Lgsp::spawn(Path::new(env!("CARGO_BIN_EXE_lgsp")), &config, &env);
    bus.wait_ready();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lgsp"))
        .args(["apps", "rabbitmq-definitions", "--config"])
        .arg(&config)
        .args(["--vhost", &vhost.name])
        .envs(users.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let defs = String::from_utf8(out.stdout).unwrap();
    let parsed: serde_json::Value = serde_json::from_str(&defs).unwrap();
    assert_eq!(parsed["users"][0]["name"], user.as_str(), "{defs}");
    let (s, b) = lgsp_testkit::management("POST", "/api/definitions", &defs).unwrap();
    let _cleanup = Users::of(&parsed);
    assert!((200..300).contains(&s), "import: {s} {b}");
    let (s, b) = lgsp_testkit::management(
        "PUT",
        &format!("/api/users/{user}"),
        r#"{"password":"pw","tags":""}"#,
    )
    .unwrap();
    assert!((200..300).contains(&s), "password: {s} {b}");
    let url = format!("amqp://{user}:pw@127.0.0.1:5672/{}", vhost.name);
    assert!(lgsp_testkit::broker_takes(&url, "bizreg.enterprise.registered").await);
    assert!(
        !lgsp_testkit::broker_takes(&url, "tax.einvoice.issued").await,
        "the broker refuses a key outside bizreg's publish patterns"
    );
    bus.terminate();
}

/// Deletes every user a definitions file created, on drop.
struct Users(Vec<String>);

impl Users {
    fn of(defs: &serde_json::Value) -> Users {
        Users(
            defs["users"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|u| u["name"].as_str().map(str::to_owned))
                .collect(),
        )
    }
}

impl Drop for Users {
    fn drop(&mut self) {
        for u in &self.0 {
            let _ = lgsp_testkit::management("DELETE", &format!("/api/users/{u}"), "");
        }
    }
}
