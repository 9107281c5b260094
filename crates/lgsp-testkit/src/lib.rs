//! Test support for lgsp against the real RabbitMQ of the machine:
//!
//! - [`Vhost`]: a uniquely named vhost per test, created and deleted through the
//!   management API, so tests run in parallel and leave nothing behind;
//! - [`Lgsp`]: a spawned `lgsp run` on a configuration, its bound HTTP address read from
//!   its output, readiness awaited, killed on drop;
//! - [`Amqp`]: publish, drain and count messages in a vhost;
//! - [`padded`]: an XML document made larger without changing what it maps to;
//! - [`node::RabbitNode`]: a RabbitMQ node of a test's own (TLS listeners, a broker
//!   that stops), [`pgnode::PgNode`]: a PostgreSQL server of a test's own (a store that
//!   stops), and [`pki::Pki`]: certificates generated for a test.
//!
//! The broker is found at `TEST_AMQP_URL` (default `amqp://guest:guest@127.0.0.1:5672`),
//! its management API on port 15672 of the same host with the same credentials.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod node;
pub mod pgnode;
pub mod pki;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use futures_lite::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, ConfirmSelectOptions,
    ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};

const MGMT: &str = "127.0.0.1:15672";
const AUTH: &str = "Z3Vlc3Q6Z3Vlc3Q="; // guest:guest

fn base_url() -> String {
    std::env::var("TEST_AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672".into())
}

/// The repository's root (adapters, config, schemas).
///
/// Found from the running test's `CARGO_MANIFEST_DIR` (cargo and nextest set it): the
/// path compiled into this crate is the checkout that first built it, which is another
/// checkout when several share one target folder.
pub fn repo() -> PathBuf {
    let runtime = std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from);
    runtime
        .iter()
        .flat_map(|d| d.ancestors())
        .find(|d| d.join("Cargo.lock").is_file() && d.join("adapters").is_dir())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
}

/// The `lgsp` binary of the workspace's build, for tests of packages other than
/// lgsp-cli (which have no `CARGO_BIN_EXE_lgsp`): next to the running test's `deps`
/// folder, where a workspace build (`cargo nextest run --workspace`) puts it.
pub fn lgsp_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("the running test's path");
    let bin = exe
        .ancestors()
        .find(|d| d.file_name().is_some_and(|n| n == "deps"))
        .and_then(Path::parent)
        .map(|d| d.join("lgsp"))
        .unwrap_or_else(|| PathBuf::from("lgsp"));
    assert!(
        bin.is_file(),
        "{} is missing: build it with `cargo build -p lgsp-cli` (a workspace test run does)",
        bin.display()
    );
    bin
}

/// A sample payload of an adapter: `adapters/<adapter>/samples/<file>`.
pub fn sample(adapter: &str, file: &str) -> Vec<u8> {
    let path = repo()
        .join("adapters")
        .join(adapter)
        .join("samples")
        .join(file);
    std::fs::read(&path).unwrap_or_else(|e| panic!("sample {}: {e}", path.display()))
}

/// The message ids of what was received, sorted.
pub fn received_ids(got: &[Received]) -> Vec<String> {
    let mut v: Vec<String> = got.iter().filter_map(|r| r.message_id.clone()).collect();
    v.sort();
    v
}

/// A minimal HTTP/1.1 request to the management API: `(status, body)`.
pub fn management(method: &str, path: &str, body: &str) -> std::io::Result<(u16, String)> {
    http(MGMT, method, path, body, Some(AUTH))
}

/// A minimal HTTP/1.1 request: `(status, body)`.
pub fn http(
    addr: &str,
    method: &str,
    path: &str,
    body: &str,
    auth: Option<&str>,
) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let auth = auth
        .map(|a| format!("Authorization: Basic {a}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut raw = String::new();
    s.read_to_string(&mut raw)?;
    let status = raw
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = raw
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

/// A vhost of its own for one test; deleted on drop.
pub struct Vhost {
    pub name: String,
}

impl Vhost {
    pub fn new(label: &str) -> Vhost {
        static N: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!(
            "lgsp-test-{label}-{}-{}-{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        let (s, b) = management("PUT", &format!("/api/vhosts/{name}"), "")
            .expect("management API reachable");
        assert!((200..300).contains(&s), "create vhost {name}: {s} {b}");
        let (s, b) = management(
            "PUT",
            &format!("/api/permissions/{name}/guest"),
            r#"{"configure":".*","write":".*","read":".*"}"#,
        )
        .expect("management API reachable");
        assert!((200..300).contains(&s), "permissions on {name}: {s} {b}");
        Vhost { name }
    }

    /// AMQP URL of this vhost.
    pub fn url(&self) -> String {
        format!("{}/{}", base_url(), self.name)
    }
}

impl Drop for Vhost {
    fn drop(&mut self) {
        let _ = management("DELETE", &format!("/api/vhosts/{}", self.name), "");
    }
}

/// A running `lgsp run`.
pub struct Lgsp {
    pub child: Child,
    pub addr: String,
    pub stderr_log: PathBuf,
}

impl Lgsp {
    /// Spawn `bin run --config config` with `env`, wait until it prints its HTTP address.
    pub fn spawn(bin: &Path, config: &Path, env: &[(&str, String)]) -> Lgsp {
        // In the temporary folder: a test may run the repository's own configuration,
        // whose folder must stay clean.
        let log = std::env::temp_dir().join(format!(
            "lgsp-run-stderr.{}.{}.log",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ));
        let mut cmd = Command::new(bin);
        cmd.arg("run")
            .arg("--config")
            .arg(config)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
            .env("LGSP_HTTP__LISTEN", "127.0.0.1:0")
            .env_remove("FAILPOINTS");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn lgsp run");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("http listening on ") {
                    let _ = tx.send(addr.to_owned());
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| {
                panic!(
                    "lgsp run did not start: {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                )
            });
        Lgsp {
            child,
            addr,
            stderr_log: log,
        }
    }

    /// Wait until `/readyz` answers 200 (topology declared, consumers running).
    pub fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok((200, _)) = http(&self.addr, "GET", "/readyz", "", None) {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("lgsp run exited with {status}: {}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("lgsp run not ready in 30 s: {}", self.log());
    }

    /// Wait for the process to exit by itself.
    pub fn wait_exit(&mut self, within: Duration) -> Option<i32> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Send SIGTERM.
    pub fn terminate(&self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr_log).unwrap_or_default()
    }

    /// SIGTERM, then assert a clean exit (code 0) within 30 s; the log.
    pub fn stop_cleanly(&mut self) -> String {
        self.terminate();
        assert_eq!(
            self.wait_exit(Duration::from_secs(30)),
            Some(0),
            "{}",
            self.log()
        );
        self.log()
    }
}

impl Drop for Lgsp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // A failing test keeps its bus's log to read; a passing one leaves nothing behind
        // (a full suite run used to leave about a thousand of them in the temp folder).
        if !std::thread::panicking() {
            let _ = std::fs::remove_file(&self.stderr_log);
        }
    }
}

/// A received message.
#[derive(Debug, Clone)]
pub struct Received {
    pub routing_key: String,
    pub message_id: Option<String>,
    pub correlation_id: Option<String>,
    pub app_id: Option<String>,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

/// AMQP access to a vhost for tests.
pub struct Amqp {
    pub conn: Connection,
    pub channel: Channel,
}

impl Amqp {
    pub async fn connect(url: &str) -> Amqp {
        let conn = Connection::connect(url, ConnectionProperties::default())
            .await
            .expect("connect");
        let channel = conn.create_channel().await.expect("channel");
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .expect("confirms");
        Amqp { conn, channel }
    }

    /// Publish with confirm; `message_id` and `type` set.
    pub async fn publish(&self, exchange: &str, key: &str, message_id: &str, body: &[u8]) {
        let props = BasicProperties::default()
            .with_message_id(message_id.into())
            .with_type(key.into())
            .with_delivery_mode(2);
        self.publish_with(exchange, key, props, body).await;
    }

    /// Publish with exactly `props` (e.g. without a `type`), confirmed.
    pub async fn publish_with(
        &self,
        exchange: &str,
        key: &str,
        props: BasicProperties,
        body: &[u8],
    ) {
        let confirm = self
            .channel
            .basic_publish(
                exchange.into(),
                key.into(),
                BasicPublishOptions::default(),
                body,
                props,
            )
            .await
            .expect("publish");
        assert!(confirm.await.expect("confirm").is_ack());
    }

    /// Publish many, confirms pipelined.
    pub async fn publish_many(&self, exchange: &str, key: &str, ids: &[String], body: &[u8]) {
        let mut pending = Vec::with_capacity(ids.len());
        for id in ids {
            let props = BasicProperties::default()
                .with_message_id(id.as_str().into())
                .with_type(key.into())
                .with_delivery_mode(2);
            pending.push(
                self.channel
                    .basic_publish(
                        exchange.into(),
                        key.into(),
                        BasicPublishOptions::default(),
                        body,
                        props,
                    )
                    .await
                    .expect("publish"),
            );
        }
        for p in pending {
            assert!(p.await.expect("confirm").is_ack());
        }
    }

    /// A durable queue bound to `exchange` with `key` (declared before the test publishes).
    pub async fn bind_queue(&self, queue: &str, exchange: &str, key: &str) {
        self.channel
            .queue_declare(
                queue.into(),
                QueueDeclareOptions {
                    durable: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .expect("declare");
        self.channel
            .queue_bind(
                queue.into(),
                exchange.into(),
                key.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("bind");
    }

    /// A queue that holds at most `max` messages and refuses publishes past that.
    pub async fn bounded_target(&self, exchange: &str, queue: &str, max: i64) {
        self.channel
            .exchange_declare(
                exchange.into(),
                lapin::ExchangeKind::Topic,
                ExchangeDeclareOptions {
                    durable: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap();
        let mut args = FieldTable::default();
        args.insert(
            ShortString::from("x-max-length"),
            AMQPValue::LongLongInt(max),
        );
        args.insert(
            ShortString::from("x-overflow"),
            AMQPValue::LongString(LongString::from("reject-publish")),
        );
        self.channel
            .queue_declare(
                queue.into(),
                QueueDeclareOptions {
                    durable: true,
                    ..Default::default()
                },
                args,
            )
            .await
            .unwrap();
        self.channel
            .queue_bind(
                queue.into(),
                exchange.into(),
                "#".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
    }

    /// Messages ready in `queue` (passive declare).
    pub async fn count(&self, queue: &str) -> u32 {
        let ch = self.conn.create_channel().await.expect("channel");
        let q = ch
            .queue_declare(
                queue.into(),
                QueueDeclareOptions {
                    passive: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .expect("queue exists");
        let _ = ch.close(200, "ok".into()).await;
        q.message_count()
    }

    /// Consume from `queue` until `n` messages arrived or `idle` passed without one.
    pub async fn drain(&self, queue: &str, n: usize, idle: Duration) -> Vec<Received> {
        let ch = self.conn.create_channel().await.expect("channel");
        ch.basic_qos(500, Default::default()).await.expect("qos");
        let mut consumer = ch
            .basic_consume(
                queue.into(),
                "test-drain".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("consume");
        let mut out = Vec::new();
        while out.len() < n {
            let Ok(Some(Ok(d))) = tokio::time::timeout(idle, consumer.next()).await else {
                break;
            };
            let p = &d.properties;
            let headers = p
                .headers()
                .as_ref()
                .map(|h| {
                    h.inner()
                        .iter()
                        .filter_map(|(k, v)| lgsp_value_text(v).map(|t| (k.as_str().to_owned(), t)))
                        .collect()
                })
                .unwrap_or_default();
            out.push(Received {
                routing_key: d.routing_key.as_str().to_owned(),
                message_id: p.message_id().as_ref().map(|s| s.as_str().to_owned()),
                correlation_id: p.correlation_id().as_ref().map(|s| s.as_str().to_owned()),
                app_id: p.app_id().as_ref().map(|s| s.as_str().to_owned()),
                headers,
                body: d.data.clone(),
            });
            d.acker.ack(BasicAckOptions::default()).await.expect("ack");
        }
        let _ = ch.close(200, "ok".into()).await;
        out
    }
}

fn lgsp_value_text(v: &lapin::types::AMQPValue) -> Option<String> {
    use lapin::types::AMQPValue as V;
    Some(match v {
        V::LongString(s) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
        V::ShortString(s) => s.as_str().to_owned(),
        V::LongLongInt(n) => n.to_string(),
        V::LongInt(n) => n.to_string(),
        V::LongUInt(n) => n.to_string(),
        V::ShortInt(n) => n.to_string(),
        V::ShortShortInt(n) => n.to_string(),
        V::ShortShortUInt(n) => n.to_string(),
        V::ShortUInt(n) => n.to_string(),
        V::FieldArray(a) => format!("{a:?}"),
        V::FieldTable(t) => format!("{t:?}"),
        _ => return None,
    })
}

/// Run `bin args...` with `env` (and without `LGSP_BROKER__URL` from the test's own
/// environment) until it exits or `deadline` passes (then it is killed and the code is
/// -1): its exit code, stdout and stderr.
pub fn run_to_exit(
    bin: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    deadline: Duration,
) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let (out_path, err_path) = (dir.path().join("out"), dir.path().join("err"));
    let mut cmd = Command::new(bin);
    cmd.args(args)
        .env_remove("LGSP_BROKER__URL")
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let until = Instant::now() + deadline;
    let code = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s.code().unwrap_or(-1);
        }
        if Instant::now() > until {
            let _ = child.kill();
            let _ = child.wait();
            break -1;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    (
        code,
        std::fs::read_to_string(out_path).unwrap_or_default(),
        std::fs::read_to_string(err_path).unwrap_or_default(),
    )
}

/// A PostgreSQL schema of its own for one test, in the database of `TEST_PG_URL`
/// (default `postgres://postgres@127.0.0.1:5432/test`); dropped with everything in it
/// on drop.
pub struct PgSchema {
    pub name: String,
    base: String,
}

fn pg_base_url() -> String {
    std::env::var("TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

impl PgSchema {
    pub async fn new(label: &str) -> PgSchema {
        static N: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!(
            "lgsp_test_{}_{}_{}_{nanos}",
            label.replace('-', "_"),
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        let base = pg_base_url();
        let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&base)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at {base}: {e}"));
        sqlx::query(&format!("CREATE SCHEMA \"{name}\""))
            .execute(&mut conn)
            .await
            .expect("create schema");
        let _ = sqlx::Connection::close(conn).await;
        PgSchema { name, base }
    }

    /// A URL whose connections use this schema.
    pub fn url(&self) -> String {
        let sep = if self.base.contains('?') { '&' } else { '?' };
        format!("{}{sep}options=-c%20search_path%3D{}", self.base, self.name)
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let base = self.base.clone();
        let name = self.name.clone();
        // Drop may run inside a runtime: do the async work on a thread of its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                if let Ok(mut c) = <sqlx::PgConnection as sqlx::Connection>::connect(&base).await {
                    let _ = sqlx::query(&format!("DROP SCHEMA \"{name}\" CASCADE"))
                        .execute(&mut c)
                        .await;
                    let _ = sqlx::Connection::close(c).await;
                }
            });
        })
        .join();
    }
}

/// Write adapter `demo` under `root/adapters/demo`: JSON documents `{"thing": {...}}` of
/// type `demo.thing.created`, mapped to `{"name": $.thing.<field>}` (required), so a
/// document without that member fails with `mapping.required`. Creates `root/config` too.
pub fn demo_adapter(root: &Path, field: &str) {
    let a = root.join("adapters/demo/mappings");
    std::fs::create_dir_all(&a).expect("adapter folder");
    std::fs::create_dir_all(root.join("config")).expect("config folder");
    std::fs::write(
        root.join("adapters/demo/adapter.yaml"),
        "description: a test adapter\nmessages:\n  demo.thing.created:\n    - when: { content_type: json, root: thing }\n      mapping: thing\n",
    )
    .expect("adapter.yaml");
    std::fs::write(
        a.join("thing.yaml"),
        format!("mappings:\n  thing:\n    from: json\n    event: thing.created\n    fields:\n      name: {{ path: $.thing.{field}, required: true }}\n"),
    )
    .expect("thing.yaml");
}

/// Publish `key` to `lgsp.in` as the user of `url`, with a confirm: whether the broker
/// took it (a refused permission closes the channel: `false`).
pub async fn broker_takes(url: &str, key: &str) -> bool {
    let conn = Connection::connect(url, ConnectionProperties::default())
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let r = match ch
        .basic_publish(
            "lgsp.in".into(),
            key.into(),
            BasicPublishOptions::default(),
            b"<a/>",
            BasicProperties::default(),
        )
        .await
    {
        Ok(confirm) => confirm.await.is_ok_and(|c| c.is_ack()),
        Err(_) => false,
    };
    let _ = conn.close(0, "".into()).await;
    r
}

/// A root configuration in `dir/lgsp.yaml` with the repository's adapters, schemas and
/// reference data, the bizreg adapter, and `body` (sections, routes).
pub fn write_config(dir: &Path, body: &str) -> PathBuf {
    let text = format!(
        "adapter_dir: \"{0}/adapters\"\nschema_dir: \"{0}/schemas\"\nreference_dir: \"{0}/reference\"\nadapters: [bizreg]\n{body}",
        repo().display()
    );
    let path = dir.join("lgsp.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

/// An entity bomb ("billion laughs": nine levels of ten references each, 10^9 `lol`s
/// expanded) whose DOCTYPE is followed by `element`, which references `&lol9;`.
pub fn entity_bomb(element: &str) -> String {
    let mut doc =
        String::from("<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n <!ENTITY lol \"lol\">\n");
    for i in 1..10 {
        let prev = if i == 1 {
            "lol".to_owned()
        } else {
            format!("lol{}", i - 1)
        };
        doc.push_str(&format!(
            " <!ENTITY lol{i} \"{}\">\n",
            format!("&{prev};").repeat(10)
        ));
    }
    doc.push_str("]>\n");
    doc.push_str(element);
    doc
}

/// `xml` (its declaration dropped) after a comment of `bytes` bytes, which decoding
/// skips: the same document for the mapping, only larger.
pub fn padded(xml: &[u8], bytes: usize) -> Vec<u8> {
    let text = String::from_utf8_lossy(xml);
    let body = match text.strip_prefix("<?xml") {
        Some(rest) => rest.find("?>").map_or(rest, |end| &rest[end + 2..]),
        None => &text,
    };
    let mut out = b"<!-- ".to_vec();
    out.extend(std::iter::repeat_n(b'x', bytes));
    out.extend_from_slice(b" -->\n");
    out.extend_from_slice(body.as_bytes());
    out
}
