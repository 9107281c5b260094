//! lgsp on a three-node RabbitMQ cluster started by `deploy/cluster/cluster.sh` (nodes
//! of the test's own, never the machine's node): with `broker.urls` listing the nodes,
//! the route's quorum queue has a member on each node, and a counted stream loses
//! nothing when the node holding the queue's leader is stopped mid-stream. Serial phase:
//! three nodes and a stream load the whole machine.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use lgsp_testkit::{Amqp, Lgsp, repo};

struct Cluster {
    dir: tempfile::TempDir,
    base: u16,
}

impl Cluster {
    fn script(&self, args: &[&str]) -> Output {
        Command::new(repo().join("deploy/cluster/cluster.sh"))
            .args(args)
            .env("LGSP_CLUSTER_PORT", self.base.to_string())
            .output()
            .unwrap()
    }

    fn up() -> Cluster {
        // Three AMQP ports and three distribution ports (+20000) free on this machine.
        let free = |p: u16| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok();
        let base = (40000u16..44000)
            .step_by(7)
            .find(|b| (0..3).all(|i| free(b + i) && free(b + i + 20000)))
            .unwrap();
        let c = Cluster {
            dir: tempfile::tempdir().unwrap(),
            base,
        };
        let dir = c.dir.path().display().to_string();
        let out = c.script(&["up", &dir]);
        assert!(out.status.success(), "cluster up: {out:?}");
        c
    }

    fn ctl(&self, node: usize, args: &[&str]) -> String {
        let dir = self.dir.path().display().to_string();
        let n = node.to_string();
        let mut all = vec!["ctl", &dir, &n];
        all.extend_from_slice(args);
        let out = self.script(&all);
        assert!(out.status.success(), "rabbitmqctl {args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn node_name(&self, node: usize) -> String {
        format!("lgsp-c{}@localhost", self.base + node as u16)
    }

    fn url(&self, node: usize) -> String {
        format!(
            "amqp://guest:guest@127.0.0.1:{}/%2f",
            self.base + node as u16
        )
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let dir = self.dir.path().display().to_string();
        let _ = Command::new(repo().join("deploy/cluster/cluster.sh"))
            .args(["down", &dir])
            .env("LGSP_CLUSTER_PORT", self.base.to_string())
            .output();
    }
}

fn config(dir: &Path, urls: &[String]) -> PathBuf {
    let list: Vec<String> = urls.iter().map(|u| format!("\"{u}\"")).collect();
    lgsp_testkit::write_config(
        dir,
        &format!(
            "broker: {{ urls: [{}] }}\nstore: {{ url: \"sqlite://{}/store.db\" }}\nroutes:\n  - name: bizreg\n    from: {{ binding: \"bizreg.#\" }}\n    map: bizreg\n    to:\n      - exchange: lgsp.out\n",
            list.join(", "),
            dir.display()
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "serial: a three-node RabbitMQ cluster"]
async fn a_stream_loses_nothing_when_the_leaders_node_stops() {
    stream_with_a_node_stopped(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "serial: a three-node RabbitMQ cluster"]
async fn a_stream_loses_nothing_when_a_followers_node_stops() {
    stream_with_a_node_stopped(false).await;
}

/// 2,000 messages with unique ids; after a quarter, the node holding the route queue's
/// leader (or a follower's node) stops. Every id must reach lgsp.out.
async fn stream_with_a_node_stopped(the_leaders: bool) {
    const N: usize = 2000;
    let cluster = Cluster::up();
    let dir = tempfile::tempdir().unwrap();
    let urls: Vec<String> = (0..3).map(|i| cluster.url(i)).collect();
    let cfg = config(dir.path(), &urls);
    let mut bus = Lgsp::spawn(&lgsp_testkit::lgsp_bin(), &cfg, &[]);
    bus.wait_ready();

    // The route's queue is a quorum queue with a member on every node.
    let listing = cluster.ctl(
        0,
        &[
            "list_queues",
            "name",
            "type",
            "leader",
            "members",
            "--quiet",
        ],
    );
    let line = listing
        .lines()
        .find(|l| l.contains("quorum") && l.contains("bizreg"))
        .unwrap_or_else(|| panic!("no quorum queue of the route: {listing}"));
    for i in 0..3 {
        assert!(
            line.contains(&cluster.node_name(i)),
            "not on node {i}: {line}"
        );
    }
    let leader = (0..3)
        .find(|i| line.split_whitespace().nth(2) == Some(cluster.node_name(*i).as_str()))
        .unwrap_or_else(|| panic!("no leader in {line}"));
    // Publisher and the copy of lgsp.out stay on `other`; `stopped` goes down.
    let other = (leader + 1) % 3;
    let stopped = if the_leaders {
        leader
    } else {
        (leader + 2) % 3
    };

    let amqp = Amqp::connect(&cluster.url(other)).await;
    amqp.bind_queue("test.out", "lgsp.out", "#").await;
    let sample =
        std::fs::read(repo().join("adapters/bizreg/samples/branch-registered.xml")).unwrap();
    let ids: Vec<String> = (0..N).map(|i| format!("c-{i}")).collect();
    amqp.publish_many(
        "lgsp.in",
        "bizreg.branch.registered",
        &ids[..N / 4],
        &sample,
    )
    .await;
    cluster.ctl(stopped, &["stop_app"]);
    amqp.publish_many(
        "lgsp.in",
        "bizreg.branch.registered",
        &ids[N / 4..],
        &sample,
    )
    .await;

    let got = amqp.drain("test.out", N, Duration::from_secs(30)).await;
    let mut seen: HashMap<String, usize> = HashMap::new();
    for r in &got {
        *seen
            .entry(r.message_id.clone().unwrap_or_default())
            .or_default() += 1;
    }
    let lost: Vec<&String> = ids.iter().filter(|id| !seen.contains_key(*id)).collect();
    let duplicates: usize = seen.values().map(|c| c - 1).sum();
    println!(
        "{} node {stopped} stopped after {} of {N}: delivered {}, duplicates {duplicates}, lost {}",
        if the_leaders {
            "leader's"
        } else {
            "a follower's"
        },
        N / 4,
        seen.len(),
        lost.len()
    );
    assert!(
        lost.is_empty(),
        "lost {} (first {:?}): {}",
        lost.len(),
        lost.first(),
        bus.log()
    );
    bus.stop_cleanly();
}
