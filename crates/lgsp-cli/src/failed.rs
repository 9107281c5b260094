//! `lgsp failed list|show|groups|replay|discard|requests|approve|audit|note|export-test`:
//! the failed-message store through the admin API of a running `lgsp run`
//! (`--url`/`LGSPCTL_URL`, `--token`/`LGSPCTL_TOKEN`). Text by default, `--json` for
//! scripts. Exit codes: 0 ok, 1 the API refused (4xx) or the operation failed (a bulk
//! replay with refused messages, an audit chain that does not verify), 2 usage, 3 the
//! API (or the store or broker behind it) is unreachable.

use std::path::PathBuf;

use clap::Subcommand;
use lgsp_core::failure::FailureKind;
use lgsp_http::admin::api::{ListQuery, ReplayRequest};
use serde_json::Value;

use crate::exit;

#[derive(Debug, Clone, clap::Args)]
pub struct Api {
    /// Base URL of the admin API (a running `lgsp run`).
    #[arg(long, env = "LGSPCTL_URL", default_value = "http://127.0.0.1:8080")]
    pub(crate) url: String,
    /// Bearer token (viewer or operator).
    #[arg(long, env = "LGSPCTL_TOKEN", hide_env_values = true)]
    pub(crate) token: Option<String>,
    /// PEM file of a CA to trust (besides the public roots) for an https:// URL whose
    /// certificate the province's own CA signed (`http.tls` of `lgsp run`).
    #[arg(long, env = "LGSPCTL_CA")]
    pub(crate) ca: Option<std::path::PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Subcommand)]
pub enum FailedCommand {
    /// List failed messages, newest first.
    List(ListArgs),
    /// Show one failed message: error, envelope, headers, body, replays.
    Show {
        #[command(flatten)]
        api: Api,
        /// The id `list` shows.
        id: i64,
    },
    /// Replay one failed message, a group (`--group`) or a filter (`--filter`) to its
    /// route (operator token). Bulk replays go in batches at a pace, with progress on
    /// stderr; run again after an interruption, it replays only what is still failed.
    Replay(ReplayArgs),
    /// Failures grouped by cause (route, error kind, error code), largest first.
    Groups(GroupsArgs),
    /// Discard one failed message, with a reason (operator token).
    Discard {
        #[command(flatten)]
        api: Api,
        /// The id `list` shows.
        id: i64,
        /// Why it is dropped (mandatory; kept with the record and in the audit log).
        #[arg(long)]
        reason: String,
    },
    /// Approval requests (with `replay.require_approval`), newest first.
    Requests {
        #[command(flatten)]
        api: Api,
        /// Only this status: pending, approved, executed, failed.
        #[arg(long)]
        status: Option<String>,
    },
    /// Approve another operator's request; it is executed at once (operator token).
    Approve {
        #[command(flatten)]
        api: Api,
        /// The request id a replay, discard or bulk replay answered with.
        request: i64,
    },
    /// The audit log: entries; `--head` prints the chain head to save elsewhere;
    /// `--verify [--head HASH]` checks the chain (exit 1 naming the first bad entry).
    Audit(AuditArgs),
    /// Write a note to the audit log, optionally about some records (operator token).
    Note {
        #[command(flatten)]
        api: Api,
        /// The note.
        text: String,
        /// Records it is about.
        #[arg(long = "id")]
        ids: Vec<i64>,
    },
    /// Turn a failure into a regression test of its adapter: the body as an input
    /// file and a case in `<adapter>/tests/`, which fails with today's error until the
    /// cause is fixed.
    ExportTest {
        #[command(flatten)]
        api: Api,
        /// The id `list` shows.
        id: i64,
        /// The root configuration file (to find the route's adapter folder).
        #[arg(long, short = 'c', default_value = "config/lgsp.yaml")]
        config: PathBuf,
    },
}

#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    #[command(flatten)]
    pub(crate) api: Api,
    /// The id `list` shows (or use --group / --filter).
    pub(crate) id: Option<i64>,
    /// Send this file's bytes instead of the stored body (the original is kept; the
    /// edit is stored as a diff). One message only.
    #[arg(long, requires = "id")]
    pub(crate) body: Option<PathBuf>,
    /// Replay every failed message of this group (the key `groups` shows).
    #[arg(long, conflicts_with_all = ["id", "filter"])]
    pub(crate) group: Option<String>,
    /// Replay every failed message matching KEY=VALUE (route, kind, code, text, from,
    /// to); repeat to narrow.
    #[arg(long, value_name = "KEY=VALUE", conflicts_with = "id")]
    pub(crate) filter: Vec<String>,
    /// Messages per batch (default: the server's replay.batch_size).
    #[arg(long)]
    pub(crate) batch_size: Option<u32>,
    /// Messages per second (default: the server's replay.rate).
    #[arg(long)]
    pub(crate) rate: Option<u32>,
}

#[derive(Debug, clap::Args)]
pub struct GroupsArgs {
    #[command(flatten)]
    pub(crate) api: Api,
    /// Only this route.
    #[arg(long)]
    pub(crate) route: Option<String>,
    /// Only this error kind.
    #[arg(long)]
    pub(crate) kind: Option<FailureKind>,
    /// Only errors containing this text.
    #[arg(long)]
    pub(crate) text: Option<String>,
    /// Last failure at or after this RFC 3339 time.
    #[arg(long)]
    pub(crate) from: Option<String>,
    /// Last failure before this RFC 3339 time.
    #[arg(long)]
    pub(crate) to: Option<String>,
    /// Status (default failed).
    #[arg(long)]
    pub(crate) status: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    #[command(flatten)]
    pub(crate) api: Api,
    /// Check the whole chain.
    #[arg(long)]
    pub(crate) verify: bool,
    /// Alone: print the chain head (seq and hash). With --verify: a head saved
    /// earlier, which must still be in the chain.
    #[arg(long, num_args = 0..=1, value_name = "HASH")]
    pub(crate) head: Option<Option<String>>,
    /// Entries after this seq.
    #[arg(long, default_value_t = 0)]
    pub(crate) after: i64,
    /// At most this many entries.
    #[arg(long, default_value_t = 1000)]
    pub(crate) limit: u32,
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    #[command(flatten)]
    api: Api,
    /// Only this route.
    #[arg(long)]
    route: Option<String>,
    /// Only this error kind (decode, mapping, validation, delivery, limit, forbidden,
    /// unroutable, poison).
    #[arg(long)]
    kind: Option<FailureKind>,
    /// Only this error code.
    #[arg(long)]
    code: Option<String>,
    /// Only errors containing this text (case-insensitive).
    #[arg(long)]
    text: Option<String>,
    /// Last failure at or after this RFC 3339 time.
    #[arg(long)]
    from: Option<String>,
    /// Last failure before this RFC 3339 time.
    #[arg(long)]
    to: Option<String>,
    /// Only this status: failed, replayed, discarded.
    #[arg(long)]
    status: Option<String>,
    /// Page size (at most 1000).
    #[arg(long, default_value_t = 50)]
    limit: u32,
    /// Start after this cursor (printed at the end of a page).
    #[arg(long)]
    cursor: Option<String>,
    /// Follow the cursor to the end.
    #[arg(long)]
    all: bool,
}

/// An API call that did not succeed: the exit code and what to print.
pub(crate) struct Failure(pub(crate) u8, pub(crate) String);

pub(crate) struct Client {
    pub(crate) http: reqwest::Client,
    pub(crate) base: String,
    token: Option<String>,
}

impl Client {
    pub(crate) fn new(api: &Api) -> Result<Client, Failure> {
        let mut http = reqwest::Client::builder();
        if let Some(ca) = &api.ca {
            let cert = std::fs::read(ca)
                .map_err(|e| e.to_string())
                .and_then(|pem| reqwest::Certificate::from_pem(&pem).map_err(|e| e.to_string()))
                .map_err(|e| {
                    Failure(
                        exit::USAGE,
                        format!(
                            "--ca {}: {e}; give the PEM file of the CA that signed the admin API's certificate",
                            ca.display()
                        ),
                    )
                })?;
            http = http.add_root_certificate(cert);
        }
        let http = http
            .build()
            .map_err(|e| Failure(exit::FAILED, format!("cannot make an HTTP client: {e}")))?;
        Ok(Client {
            http,
            base: api.url.trim_end_matches('/').to_owned(),
            token: api.token.clone(),
        })
    }

    pub(crate) async fn call(&self, req: reqwest::RequestBuilder) -> Result<Value, Failure> {
        let req = match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        };
        let resp = req.send().await.map_err(|e| {
            Failure(
                exit::UNREACHABLE,
                format!(
                    "cannot reach the admin API at {}: {e}; is `lgsp run` running? (set --url or LGSPCTL_URL)",
                    self.base
                ),
            )
        })?;
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(body);
        }
        let text = |k: &str| body.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
        let msg = format!(
            "{} {}: {}{}",
            status.as_u16(),
            text("code"),
            text("message"),
            match text("hint") {
                h if h.is_empty() => String::new(),
                h => format!(" (hint: {h})"),
            }
        );
        let code = if status.as_u16() == 503 {
            exit::UNREACHABLE
        } else {
            exit::FAILED
        };
        Err(Failure(code, msg))
    }
}

pub async fn run(cmd: &FailedCommand) -> u8 {
    match run_async(cmd).await {
        Ok(()) => exit::OK,
        Err(Failure(code, msg)) => {
            eprintln!("error: {msg}");
            code
        }
    }
}

async fn run_async(cmd: &FailedCommand) -> Result<(), Failure> {
    match cmd {
        FailedCommand::List(a) => list(a).await,
        FailedCommand::Show { api, id } => {
            let c = Client::new(api)?;
            let v = c
                .call(c.http.get(format!("{}/admin/v1/failed/{id}", c.base)))
                .await?;
            if api.json {
                println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            } else {
                print_one(&v);
            }
            Ok(())
        }
        FailedCommand::Replay(a) => replay(a).await,
        FailedCommand::Groups(a) => crate::failed_console::groups(a).await,
        FailedCommand::Discard { api, id, reason } => {
            crate::failed_console::discard(api, *id, reason).await
        }
        FailedCommand::Requests { api, status } => {
            crate::failed_console::requests(api, status.as_deref()).await
        }
        FailedCommand::Approve { api, request } => {
            crate::failed_console::approve(api, *request).await
        }
        FailedCommand::Audit(a) => crate::failed_console::audit(a).await,
        FailedCommand::Note { api, text, ids } => crate::failed_console::note(api, text, ids).await,
        FailedCommand::ExportTest { api, id, config } => {
            crate::export_test::run(api, *id, config).await
        }
    }
}

async fn replay(a: &ReplayArgs) -> Result<(), Failure> {
    let api = &a.api;
    let Some(id) = a.id else {
        return crate::failed_console::bulk(a).await;
    };
    let req = match &a.body {
        Some(path) => {
            let bytes = std::fs::read(path)
                .map_err(|e| Failure(exit::USAGE, format!("{}: {e}", path.display())))?;
            match String::from_utf8(bytes) {
                Ok(t) => ReplayRequest {
                    body: Some(t),
                    body_base64: None,
                },
                Err(e) => {
                    use base64::Engine;
                    ReplayRequest {
                        body: None,
                        body_base64: Some(
                            base64::engine::general_purpose::STANDARD.encode(e.as_bytes()),
                        ),
                    }
                }
            }
        }
        None => ReplayRequest::default(),
    };
    let c = Client::new(api)?;
    let v = c
        .call(
            c.http
                .post(format!("{}/admin/v1/failed/{id}/replay", c.base))
                .json(&req),
        )
        .await?;
    if api.json {
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    } else if let Some(r) = v.get("request_id") {
        println!(
            "request {r}: replay of {id} awaits another operator's approval (lgsp failed approve {r})"
        );
    } else {
        println!(
            "replayed {id}: message {} to {}{}",
            s(&v, "message_id"),
            match s(&v, "exchange") {
                e if e.is_empty() => format!("queue {}", s(&v, "routing_key")),
                e => format!("exchange {e} with key {}", s(&v, "routing_key")),
            },
            if v["edited"] == true {
                " (edited body)"
            } else {
                ""
            }
        );
    }
    Ok(())
}

pub(crate) fn s(v: &Value, k: &str) -> String {
    match v.get(k) {
        Some(Value::String(x)) => x.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

async fn list(a: &ListArgs) -> Result<(), Failure> {
    let c = Client::new(&a.api)?;
    let mut items: Vec<Value> = Vec::new();
    let mut cursor = a.cursor.clone();
    let next = loop {
        let q = ListQuery {
            route: a.route.clone(),
            kind: a.kind,
            code: a.code.clone(),
            text: a.text.clone(),
            from: a.from.clone(),
            to: a.to.clone(),
            status: a.status.clone(),
            cursor: cursor.clone(),
            limit: Some(a.limit),
        };
        let page = c
            .call(c.http.get(format!("{}/admin/v1/failed", c.base)).query(&q))
            .await?;
        if let Some(list) = page["items"].as_array() {
            items.extend(list.iter().cloned());
        }
        let next = page["next_cursor"].as_str().map(str::to_owned);
        match next {
            Some(n) if a.all => cursor = Some(n),
            other => break other,
        }
    };
    if a.api.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&items).unwrap_or_default()
        );
    } else {
        print_table(&items);
        if let Some(n) = next {
            eprintln!("more: --cursor {n}");
        }
    }
    Ok(())
}

pub(crate) fn cut(t: &str, max: usize) -> String {
    let one_line = t.replace(['\n', '\r'], " ");
    if one_line.chars().count() <= max {
        return one_line;
    }
    let mut out: String = one_line.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

pub(crate) fn print_rows(header: &[&str], rows: Vec<Vec<String>>) {
    print_grid(header, rows);
}

fn print_table(items: &[Value]) {
    let header = [
        "ID",
        "STATUS",
        "ROUTE",
        "KIND",
        "MESSAGE ID",
        "LAST FAILED",
        "ERROR",
    ];
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|v| {
            vec![
                s(v, "id"),
                s(v, "status"),
                match s(v, "route") {
                    r if r.is_empty() => "-".into(),
                    r => r,
                },
                s(v, "error_kind"),
                cut(&s(v, "message_id"), 36),
                s(v, "last_failed_at"),
                cut(&s(v, "error"), 80),
            ]
        })
        .collect();
    print_grid(&header, rows);
    if items.is_empty() {
        eprintln!("no failed messages match");
    }
}

pub(crate) fn print_grid(header: &[&str], rows: Vec<Vec<String>>) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let n = cells.len();
        cells
            .into_iter()
            .enumerate()
            .map(|(i, c)| {
                if i + 1 == n {
                    c
                } else {
                    format!("{c:<w$}", w = widths[i])
                }
            })
            .collect::<Vec<_>>()
            .join("  ")
    };
    println!("{}", line(header.iter().map(|h| (*h).to_owned()).collect()));
    for r in rows {
        println!("{}", line(r));
    }
}

fn print_one(v: &Value) {
    for (label, key) in [
        ("id", "id"),
        ("status", "status"),
        ("message id", "message_id"),
        ("failure id", "failure_id"),
        ("route", "route"),
        ("error kind", "error_kind"),
        ("error code", "error_code"),
        ("error", "error"),
        ("attempts", "attempts"),
        ("first failed", "first_failed_at"),
        ("last failed", "last_failed_at"),
        ("original exchange", "original_exchange"),
        ("original key", "original_routing_key"),
        ("content type", "content_type"),
    ] {
        println!("{label:<18} {}", s(v, key));
    }
    let targets: Vec<String> = v["targets"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|t| t.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    println!("{:<18} {}", "targets", targets.join(", "));
    if let Some(h) = v["headers"].as_object() {
        println!("headers:");
        for (k, val) in h {
            println!(
                "  {k}: {}",
                match val {
                    Value::String(t) => t.clone(),
                    other => other.to_string(),
                }
            );
        }
    }
    if !s(v, "discard_reason").is_empty() {
        println!(
            "{:<18} by {}: {}",
            "discarded",
            s(v, "discarded_by"),
            s(v, "discard_reason")
        );
    }
    if let Some(r) = v["history"].as_array()
        && !r.is_empty()
    {
        println!("replays (this message, every failure of it):");
        for x in r {
            println!(
                "  {} record {} by {} to {}{}",
                s(x, "at"),
                s(x, "failed_id"),
                s(x, "actor"),
                s(x, "routing_key"),
                if x["edited"] == true {
                    " (edited body)"
                } else {
                    ""
                }
            );
            if let Some(d) = x["diff"].as_str() {
                for l in d.lines() {
                    println!("    {l}");
                }
            }
        }
    }
    println!("body ({}):", s(v, "body_encoding"));
    println!("{}", s(v, "body"));
}
