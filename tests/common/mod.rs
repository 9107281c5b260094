//! What the system suites share: counted streams of unique ids, how each target fared,
//! the failed store as the admin CLI shows it, the broker's queues as `rabbitmqctl`
//! shows them, and a process's peak memory.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use lgsp_testkit::node::RabbitNode;
use lgsp_testkit::{Amqp, Lgsp, Received, lgsp_bin};
use serde_json::Value;

/// The operator token every suite's bus is started with.
pub const OPERATOR: &str = "system-tests-operator-token";

pub fn ids(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

/// How one target fared against the ids it should have received.
#[derive(Debug)]
pub struct Outcome {
    pub target: String,
    pub expected: usize,
    pub delivered: usize,
    pub duplicates: usize,
    pub lost: Vec<String>,
    /// Ids that arrived but were not expected (e.g. a deliberately bad message).
    pub unexpected: Vec<String>,
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: expected {}, delivered {}, duplicates {}, lost {}, unexpected {}",
            self.target,
            self.expected,
            self.delivered,
            self.duplicates,
            self.lost.len(),
            self.unexpected.len()
        )
    }
}

impl Outcome {
    pub fn of(target: &str, expected: &[String], got: &[Received]) -> Outcome {
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for r in got {
            *seen
                .entry(r.message_id.as_deref().unwrap_or(""))
                .or_default() += 1;
        }
        let want: std::collections::HashSet<&str> = expected.iter().map(String::as_str).collect();
        Outcome {
            target: target.to_owned(),
            expected: expected.len(),
            delivered: want.iter().filter(|id| seen.contains_key(*id)).count(),
            duplicates: seen.values().map(|c| c - 1).sum(),
            lost: expected
                .iter()
                .filter(|id| !seen.contains_key(id.as_str()))
                .cloned()
                .collect(),
            unexpected: seen
                .keys()
                .filter(|id| !want.contains(*id))
                .map(|id| (*id).to_owned())
                .collect(),
        }
    }

    /// Nothing lost, nothing that should not be there.
    pub fn assert_complete(&self, context: &str) {
        assert!(
            self.lost.is_empty() && self.unexpected.is_empty(),
            "{self} (first lost {:?}, first unexpected {:?})\n{context}",
            self.lost.first(),
            self.unexpected.first()
        );
    }
}

/// Drain `queue` until every id of `expected` came (or 15 s passed without a message),
/// then a second more for late duplicates: how the target fared.
pub async fn drain_target(amqp: &Amqp, queue: &str, expected: &[String]) -> Outcome {
    let mut got = Vec::new();
    loop {
        let missing = Outcome::of(queue, expected, &got).lost.len();
        if missing == 0 {
            break;
        }
        let more = amqp.drain(queue, missing, Duration::from_secs(15)).await;
        if more.is_empty() {
            break;
        }
        got.extend(more);
    }
    got.extend(amqp.drain(queue, usize::MAX, Duration::from_secs(1)).await);
    Outcome::of(queue, expected, &got)
}

/// `lgsp failed ARGS` against the bus at `addr` with the operator token.
pub fn failed(addr: &str, args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["failed"];
    all.extend_from_slice(args);
    let url = format!("http://{addr}");
    lgsp_testkit::run_to_exit(
        &lgsp_bin(),
        &all,
        &[("LGSPCTL_URL", &url), ("LGSPCTL_TOKEN", OPERATOR)],
        Duration::from_secs(60),
    )
}

/// Every stored failure (any status), as `lgsp failed list --json --all` prints them.
pub fn stored(addr: &str) -> Vec<Value> {
    try_stored(addr).unwrap_or_else(|err| panic!("lgsp failed list: {err}"))
}

/// [`stored`], or the CLI's error (e.g. the store is unreachable).
pub fn try_stored(addr: &str) -> Result<Vec<Value>, String> {
    let (code, out, err) = failed(addr, &["list", "--json", "--all", "--limit", "1000"]);
    if code != 0 {
        return Err(err);
    }
    serde_json::from_str(&out).map_err(|e| format!("{e}: {out}"))
}

/// The stored failures once `n` are there (or `within` passed), then a moment more so
/// that a late duplicate would show.
pub fn stored_when(addr: &str, n: usize, within: Duration) -> Vec<Value> {
    let deadline = Instant::now() + within;
    while stored(addr).len() < n && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(1));
    stored(addr)
}

/// Stored failures by message id: how many records each has, and their kinds.
pub fn by_message(records: &[Value]) -> HashMap<String, Vec<String>> {
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    for r in records {
        out.entry(r["message_id"].as_str().unwrap_or("").to_owned())
            .or_default()
            .push(r["error_kind"].as_str().unwrap_or("").to_owned());
    }
    out
}

/// The failed store holds exactly one record for each of `bad`, and nothing else.
pub fn assert_failed_exactly(records: &[Value], bad: &[String], context: &str) {
    let found = by_message(records);
    let twice: Vec<_> = found.iter().filter(|(_, k)| k.len() > 1).collect();
    let missing: Vec<_> = bad.iter().filter(|id| !found.contains_key(*id)).collect();
    let extra: Vec<_> = found.keys().filter(|id| !bad.contains(id)).collect();
    assert!(
        twice.is_empty() && missing.is_empty() && extra.is_empty(),
        "failed store: {} records for {} bad messages; twice {:?}, missing {:?}, not bad {:?}\n{context}",
        records.len(),
        bad.len(),
        twice.first(),
        missing.first(),
        extra.first()
    );
}

/// `rabbitmqctl list_queues name messages_ready messages_unacknowledged` of the node:
/// `(name, ready, unacked)` each. The counts of quorum queues come from metrics the
/// broker refreshes every few seconds (5 s by default), not from the queues themselves.
pub fn queue_counts(node: &RabbitNode) -> Vec<(String, u64, u64)> {
    let out = node.ctl(&[
        "list_queues",
        "name",
        "messages_ready",
        "messages_unacknowledged",
        "--quiet",
        "--no-table-headers",
    ]);
    assert!(out.status.success(), "list_queues: {out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            Some((
                w.next()?.to_owned(),
                w.next()?.parse().ok()?,
                w.next()?.parse().ok()?,
            ))
        })
        .collect()
}

/// Wait until the broker's figures show no queue holding a message or an
/// unacknowledged delivery, reading them for at least 6 s (longer than the broker takes
/// to refresh them, so a stale zero cannot pass) and at most 30 s: the queues still
/// holding something, as `name ready unacked`.
pub fn settle(node: &RabbitNode) -> Vec<String> {
    let start = Instant::now();
    loop {
        let counts = queue_counts(node);
        assert!(
            counts.iter().any(|(name, ..)| name.starts_with("lgsp.")),
            "no lgsp queue on the node: {counts:?}"
        );
        let left: Vec<String> = counts
            .iter()
            .filter(|(_, ready, unacked)| ready + unacked > 0)
            .map(|(n, r, u)| format!("{n} {r} {u}"))
            .collect();
        let waited = start.elapsed();
        if (left.is_empty() && waited > Duration::from_secs(6)) || waited > Duration::from_secs(30)
        {
            return left;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Messages in `queue` (ready and unacknowledged) once the broker's figures show `want`,
/// or after 15 s: what they show then.
pub fn queue_holds(node: &RabbitNode, queue: &str, want: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let n = queue_counts(node)
            .into_iter()
            .find(|(name, ..)| name == queue)
            .map_or(0, |(_, r, u)| r + u);
        if n == want || Instant::now() > deadline {
            return n;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// A process's peak resident memory (`VmHWM`), in KiB.
pub fn peak_rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmHWM:")
}

/// A process's resident memory now (`VmRSS`), in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmRSS:")
}

fn status_kib(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Spawn `lgsp run` on `config` with the operator token and `env`, and wait until ready.
pub fn start(config: &Path, env: &[(&str, String)]) -> Lgsp {
    let mut all = vec![("LGSP_ADMIN__OPERATOR_TOKEN", OPERATOR.to_owned())];
    all.extend(env.iter().cloned());
    let mut bus = Lgsp::spawn(&lgsp_bin(), config, &all);
    bus.wait_ready();
    bus
}

/// SIGKILL, and reap.
pub fn kill(bus: &mut Lgsp) {
    let _ = bus.child.kill();
    let _ = bus.child.wait();
}
