//! The store's contract, run on both backends: SQLite in a temporary folder and
//! PostgreSQL in a schema of its own per test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use lgsp_core::config::SecretUrl;
use lgsp_core::failure::FailureKind;
use lgsp_store::Store;
use lgsp_store::audit::NewAudit;
use lgsp_store::ops::group_key;
use lgsp_store::record::{Filter, NewFailure, Replay, Status};
use serde_json::json;

fn failure(n: u32, kind: &str, route: Option<&str>) -> NewFailure {
    NewFailure {
        failure_id: format!("f-{n}"),
        message_id: format!("m-{n}"),
        route: route.map(str::to_owned),
        targets: vec!["exchange:lgsp.out".into(), "app:tax".into()],
        original_exchange: "lgsp.in".into(),
        original_routing_key: "bizreg.enterprise.registered".into(),
        source_queue: "lgsp.failed".into(),
        properties: json!({"message_id": format!("m-{n}"), "type": "bizreg.enterprise.registered"}),
        headers: json!({"lgsp-failure-id": format!("f-{n}"), "x": 1}),
        body: vec![0xff, 0x00, b'<', n as u8],
        content_type: Some("application/xml".into()),
        error_kind: kind.parse().unwrap(),
        error_code: format!("{kind}.code"),
        error: format!("Field X: something {n} went wrong"),
        attempts: 1,
        failed_at: 1_700_000_000_000 + i64::from(n) * 1000,
    }
}

async fn same_failure_twice_is_stored_once_byte_for_byte(s: Store, _url: String) {
    let f = failure(1, "mapping", Some("bizreg"));
    assert_eq!(s.insert(std::slice::from_ref(&f)).await.unwrap(), [true]);
    assert_eq!(
        s.insert(&[f.clone(), failure(2, "decode", Some("bizreg"))])
            .await
            .unwrap(),
        [false, true]
    );
    assert_eq!(s.count().await.unwrap(), 2);
    let page = s.list(&Filter::default(), None, 10).await.unwrap();
    let id = page
        .items
        .iter()
        .find(|x| x.failure_id == "f-1")
        .unwrap()
        .id;
    let got = s.get(id).await.unwrap().unwrap();
    assert_eq!(got.body, f.body);
    assert_eq!(got.format_version, 1);
    assert_eq!(got.headers, f.headers);
    assert_eq!(got.properties, f.properties);
    assert_eq!(got.targets, f.targets);
    assert_eq!(got.summary.status, Status::Failed);
    assert_eq!(got.summary.last_failed_at, "2023-11-14T22:13:21.000Z");
    assert!(s.get(id + 1000).await.unwrap().is_none());
}

/// An input redelivered after its failure was published but before it was acknowledged
/// (a lost connection, a killed process) fails again under a new failure id: while the
/// first record is open, that is the same failure, not a second one. Another body, code,
/// attempt or a replay is a new failure; so is the same one after a discard.
async fn a_redelivered_input_failing_the_same_way_again_is_one_record(s: Store, _url: String) {
    let f = failure(3, "decode", Some("bizreg"));
    let variant = |id: &str, change: &dyn Fn(&mut NewFailure)| {
        let mut v = f.clone();
        v.failure_id = id.into();
        v.headers = json!({"lgsp-failure-id": id});
        v.failed_at += 5;
        change(&mut v);
        v
    };
    let redelivered = variant("f-3-redelivered", &|_| {});
    assert_eq!(
        s.insert(&[f.clone(), redelivered.clone()]).await.unwrap(),
        [true, false]
    );
    assert_eq!(s.insert(&[redelivered]).await.unwrap(), [false]);
    let others = [
        variant("f-3-body", &|v| v.body = b"<other/>".to_vec()),
        variant("f-3-code", &|v| v.error_code = "decode.other".into()),
        variant("f-3-attempt", &|v| v.attempts = 2),
        variant(
            "f-3-replay",
            &|v| v.headers = json!({"lgsp-failure-id": "f-3-replay", "lgsp-replay-of": "f-3"}),
        ),
    ];
    assert_eq!(s.insert(&others).await.unwrap(), [true; 4]);
    let first = s
        .list(&Filter::default(), None, 10)
        .await
        .unwrap()
        .items
        .iter()
        .find(|x| x.failure_id == "f-3")
        .unwrap()
        .id;
    s.discard(&[first], "operator", "a test", "").await.unwrap();
    assert_eq!(
        s.insert(&[variant("f-3-after-discard", &|_| {})])
            .await
            .unwrap(),
        [true]
    );
    assert_eq!(s.count().await.unwrap(), 6);
}

/// Two stores on one database (two replicas) claiming the same records at once: each
/// record goes to one of them; a released claim, or one whose lease passed, can be taken
/// again; a replayed record cannot.
async fn two_replays_at_once_claim_each_record_once(s: Store, url: String) {
    let all: Vec<NewFailure> = (0..40)
        .map(|n| failure(100 + n, "mapping", Some("r")))
        .collect();
    s.insert(&all).await.unwrap();
    let other = Store::open(&lgsp_core::config::SecretUrl::new(url)).unwrap();
    let lease = std::time::Duration::from_secs(60);
    let f = Filter::default();
    let (mut a, mut b) = (Vec::new(), Vec::new());
    loop {
        let (x, y) = tokio::join!(
            s.claim_failed(&f, 7, lease),
            other.claim_failed(&f, 7, lease)
        );
        let (x, y) = (x.unwrap(), y.unwrap());
        if x.is_empty() && y.is_empty() {
            break;
        }
        a.extend(x.iter().map(|r| r.id));
        b.extend(y.iter().map(|r| r.id));
    }
    let mut both: Vec<i64> = a.iter().chain(&b).copied().collect();
    both.sort_unstable();
    both.dedup();
    assert_eq!(a.len() + b.len(), 40, "each claimed once: {a:?} {b:?}");
    assert_eq!(both.len(), 40);
    assert!(!s.claim_one(a[0], lease).await.unwrap(), "still claimed");
    s.release(&a[..1]).await.unwrap();
    assert!(other.claim_one(a[0], lease).await.unwrap(), "released");
    // A lease of zero has passed by the next claim.
    s.release(&b[..1]).await.unwrap();
    assert!(s.claim_one(b[0], std::time::Duration::ZERO).await.unwrap());
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    assert!(other.claim_one(b[0], lease).await.unwrap(), "lease passed");
    let replay = Replay {
        actor: "operator".into(),
        routing_key: "lgsp.route.r".into(),
        ..Replay::default()
    };
    s.release(&a[1..2]).await.unwrap();
    s.record_replay(a[1], &replay).await.unwrap();
    assert!(!other.claim_one(a[1], lease).await.unwrap(), "replayed");
}

async fn lists_filter_and_page(s: Store, _url: String) {
    let mut all = Vec::new();
    for n in 0..25 {
        let kind = if n % 5 == 0 { "decode" } else { "mapping" };
        let route = if n % 2 == 0 { Some("a") } else { Some("b") };
        all.push(failure(n, kind, route));
    }
    all.push(failure(99, "unroutable", None));
    s.insert(&all).await.unwrap();

    // Pages of 10, newest first, no overlap, nothing missed.
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = s.list(&Filter::default(), cursor, 10).await.unwrap();
        assert!(page.items.len() <= 10);
        seen.extend(page.items.iter().map(|x| x.id));
        match page.next_cursor {
            Some(c) => cursor = Some(c.parse().unwrap()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 26);
    assert!(seen.windows(2).all(|w| w[0] > w[1]));

    let count = |f: Filter| {
        let s = &s;
        async move { s.list(&f, None, 1000).await.unwrap().items.len() }
    };
    assert_eq!(
        count(Filter {
            kind: Some(FailureKind::Decode),
            ..Filter::default()
        })
        .await,
        5
    );
    assert_eq!(
        count(Filter {
            route: Some("a".into()),
            ..Filter::default()
        })
        .await,
        13
    );
    assert_eq!(
        count(Filter {
            code: Some("unroutable.code".into()),
            ..Filter::default()
        })
        .await,
        1
    );
    // Text: case-insensitive substring; LIKE wildcards are taken literally.
    assert_eq!(
        count(Filter {
            text: Some("FIELD x: SOMETHING 1".into()),
            ..Filter::default()
        })
        .await,
        11
    );
    assert_eq!(
        count(Filter {
            text: Some("%".into()),
            ..Filter::default()
        })
        .await,
        0
    );
    // Time range on the last failure: [from, to).
    let from = 1_700_000_000_000 + 10_000;
    let to = 1_700_000_000_000 + 20_000;
    assert_eq!(
        count(Filter {
            from: Some(from),
            to: Some(to),
            ..Filter::default()
        })
        .await,
        10
    );
    assert_eq!(
        count(Filter {
            status: Some(Status::Replayed),
            ..Filter::default()
        })
        .await,
        0
    );
}

async fn a_replay_is_recorded_and_a_new_failure_of_the_same_message_keeps_its_first_time(
    s: Store,
    _url: String,
) {
    let f = failure(7, "mapping", Some("bizreg"));
    s.insert(std::slice::from_ref(&f)).await.unwrap();
    let id = s.list(&Filter::default(), None, 1).await.unwrap().items[0].id;
    let replay = Replay {
        actor: "operator".into(),
        routing_key: "lgsp.route.bizreg".into(),
        targets: f.targets.clone(),
        edited_body: Some(b"edited".to_vec()),
        edited: true,
        ..Replay::default()
    };
    s.record_replay(id, &replay).await.unwrap();
    let got = s.get(id).await.unwrap().unwrap();
    assert_eq!(got.summary.status, Status::Replayed);
    assert_eq!(got.replays.len(), 1);
    assert_eq!(got.replays[0].edited_body.as_deref(), Some(&b"edited"[..]));
    assert_eq!(got.body, f.body, "the original body is kept");

    // It fails again after the replay: a new failure id, a new record.
    let mut again = f.clone();
    again.failure_id = "f-7-again".into();
    again.failed_at += 60_000;
    assert_eq!(s.insert(&[again]).await.unwrap(), [true]);
    let newest = &s.list(&Filter::default(), None, 1).await.unwrap().items[0];
    assert_eq!(newest.first_failed_at, got.summary.first_failed_at);
    assert_ne!(newest.last_failed_at, newest.first_failed_at);
    assert_eq!(
        s.list(
            &Filter {
                status: Some(Status::Failed),
                ..Filter::default()
            },
            None,
            10
        )
        .await
        .unwrap()
        .items
        .len(),
        1
    );
}

async fn migrating_twice_changes_nothing(s: Store, _url: String) {
    s.insert(&[failure(1, "mapping", Some("r"))]).await.unwrap();
    s.migrate().await.unwrap();
    assert_eq!(s.count().await.unwrap(), 1);
    s.ping().await.unwrap();
}

/// A kind this version does not know (a newer lgsp's, on a shared PostgreSQL) reads
/// as the fallback kind, saying the text it had, and is found by that kind's filter.
async fn a_stored_unknown_kind_reads_as_the_fallback_and_says_so(s: Store, url: String) {
    s.insert(&[
        failure(1, "decode", Some("r")),
        failure(2, "mapping", Some("r")),
    ])
    .await
    .unwrap();
    raw(
        &url,
        "UPDATE failed_messages SET error_kind = 'quota' WHERE failure_id = 'f-1'",
    )
    .await;
    let page = s.list(&Filter::default(), None, 10).await.unwrap();
    let odd = page.items.iter().find(|i| i.failure_id == "f-1").unwrap();
    assert_eq!(odd.error_kind, FailureKind::FALLBACK);
    assert_eq!(
        odd.error,
        "error kind `quota` is unknown to this version of lgsp, kept as `mapping`: Field X: something 1 went wrong"
    );
    let as_fallback = s
        .list(
            &Filter {
                kind: Some(FailureKind::FALLBACK),
                ..Filter::default()
            },
            None,
            10,
        )
        .await
        .unwrap();
    assert_eq!(as_fallback.items.len(), 2, "{:?}", as_fallback.items);
    let decode = Filter {
        kind: Some(FailureKind::Decode),
        ..Filter::default()
    };
    assert!(s.list(&decode, None, 10).await.unwrap().items.is_empty());
    let groups = s.groups(&Filter::default()).await.unwrap();
    assert_eq!(groups.len(), 2);
    assert!(groups.iter().all(|g| g.error_kind == FailureKind::FALLBACK));
    assert_ne!(groups[0].key, groups[1].key, "still two causes");
}

/// Run `sql` on the store at `url` behind its back (the tampering a test needs).
async fn raw(url: &str, sql: &str) {
    if url.starts_with("sqlite:") {
        let p = sqlx::SqlitePool::connect(url).await.unwrap();
        sqlx::query(sql).execute(&p).await.unwrap();
        p.close().await;
    } else {
        let p = sqlx::PgPool::connect(url).await.unwrap();
        sqlx::query(sql).execute(&p).await.unwrap();
        p.close().await;
    }
}

fn cause(n: u32) -> NewFailure {
    // 400 of one cause, 350 of a second, 250 of a third.
    let (kind, code, route) = match n {
        0..400 => ("mapping", "mapping.required_missing", Some("demo")),
        400..750 => ("decode", "decode.json_syntax", Some("demo")),
        _ => ("mapping", "mapping.no_candidate", Some("demo")),
    };
    let mut f = failure(n, kind, route);
    f.error_code = code.into();
    f
}

async fn a_thousand_failures_of_three_causes_make_three_groups(s: Store, _url: String) {
    let all: Vec<NewFailure> = (0..1000).map(cause).collect();
    s.insert(&all).await.unwrap();
    // Records no longer failed do not count.
    let mut other = failure(5000, "mapping", Some("demo"));
    other.error_code = "mapping.required_missing".into();
    s.insert(&[other]).await.unwrap();
    let last = s.list(&Filter::default(), None, 1).await.unwrap().items[0].id;
    s.discard(&[last], "lan", "duplicate of 4999", "")
        .await
        .unwrap();

    let t0 = Instant::now();
    let groups = s.groups(&Filter::default()).await.unwrap();
    eprintln!(
        "groups ({}): 1,000 failed records in {:.1} ms",
        s.backend(),
        t0.elapsed().as_secs_f64() * 1000.0
    );
    let counts: Vec<(&str, i64)> = groups
        .iter()
        .map(|g| (g.error_code.as_str(), g.count))
        .collect();
    assert_eq!(
        counts,
        [
            ("mapping.required_missing", 400),
            ("decode.json_syntax", 350),
            ("mapping.no_candidate", 250)
        ]
    );
    let g = &groups[0];
    assert_eq!(
        g.key,
        group_key(Some("demo"), "mapping", "mapping.required_missing")
    );
    assert_eq!(g.route.as_deref(), Some("demo"));
    assert_eq!(g.first_seen, "2023-11-14T22:13:20.000Z");
    assert_eq!(g.last_seen, "2023-11-14T22:19:59.000Z");
    assert!(g.sample_error.contains("went wrong"), "{g:?}");
    // The key selects exactly that group's failed records, oldest first.
    let f = s.group_filter(&g.key).await.unwrap().unwrap();
    let ids = s.failed_ids(&f, None).await.unwrap();
    assert_eq!(ids.len(), 400);
    assert!(ids.windows(2).all(|w| w[0] < w[1]));
    let batch = s.select_failed(&f, 50).await.unwrap();
    assert_eq!(batch.len(), 50);
    assert!(
        batch
            .iter()
            .all(|r| r.summary.error_code == "mapping.required_missing")
    );
    assert!(s.group_filter("g000000000000").await.unwrap().is_none());
    // Filters narrow groups; other statuses on request.
    let decode = s
        .groups(&Filter {
            kind: Some(FailureKind::Decode),
            ..Filter::default()
        })
        .await
        .unwrap();
    assert_eq!(decode.len(), 1);
    let discarded = s
        .groups(&Filter {
            status: Some(Status::Discarded),
            ..Filter::default()
        })
        .await
        .unwrap();
    assert_eq!(discarded[0].count, 1);
}

async fn a_discard_needs_a_failed_record_and_is_audited(s: Store, _url: String) {
    s.insert(&[
        failure(1, "mapping", Some("r")),
        failure(2, "mapping", Some("r")),
    ])
    .await
    .unwrap();
    let ids: Vec<i64> = s
        .list(&Filter::default(), None, 10)
        .await
        .unwrap()
        .items
        .iter()
        .map(|x| x.id)
        .collect();
    let done = s
        .discard(&ids[..1], "lan", "test message from the vendor", "")
        .await
        .unwrap();
    assert_eq!(done, ids[..1]);
    let got = s.get(ids[0]).await.unwrap().unwrap();
    assert_eq!(got.summary.status, Status::Discarded);
    assert_eq!(got.discarded_by.as_deref(), Some("lan"));
    assert_eq!(
        got.discard_reason.as_deref(),
        Some("test message from the vendor")
    );
    // Already discarded: nothing happens, nothing is audited.
    assert!(
        s.discard(&ids[..1], "minh", "again", "")
            .await
            .unwrap()
            .is_empty()
    );
    let log = s.audit_entries(0, 100).await.unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].actor, "lan");
    assert_eq!(log[0].action, "discard");
    assert_eq!(log[0].message_ids, json!([ids[0]]));
    assert_eq!(log[0].note, "test message from the vendor");
}

async fn tracking_events_are_written_in_batches_read_in_order_and_purged(s: Store, _url: String) {
    use lgsp_core::tracking::{Event, Tracker, kind};
    // 1,200 events through the writer: more than two batches.
    let s = std::sync::Arc::new(s);
    let (tracker, rx) = Tracker::new(5000, Default::default());
    let writer =
        lgsp_store::tracking::Writer::spawn(s.clone(), rx, tokio::runtime::Handle::current())
            .unwrap();
    for i in 0..1200 {
        let e = Event::at(&format!("m-{}", i % 3), kind::RECEIVED, 1_000 + i)
            .route("r")
            .detail(format!("n {i}"));
        tracker.record(e);
    }
    tracker.record(Event::at("m-0", kind::DELIVERED, 5_000).target("r/app:tax"));
    assert!(writer.finish(std::time::Duration::from_secs(20)).await);
    let m0 = s.events_of("m-0").await.unwrap();
    assert_eq!(m0.len(), 401);
    assert!(m0.windows(2).all(|w| w[0].at_ms <= w[1].at_ms));
    assert_eq!(m0[0].detail, "n 0");
    assert_eq!(m0[400].event, "delivered");
    assert_eq!(m0[400].target, "r/app:tax");
    assert_eq!(m0[400].at, "1970-01-01T00:00:05.000Z");
    assert!(s.events_of("m-9").await.unwrap().is_empty());

    // The store's own steps are tracked in their transactions.
    s.insert(&[failure(7, "mapping", Some("r"))]).await.unwrap();
    let id = s.list(&Filter::default(), None, 1).await.unwrap().items[0].id;
    s.record_replay(
        id,
        &Replay {
            actor: "lan".into(),
            routing_key: "lgsp.route.r".into(),
            edited: true,
            edited_body: Some(b"fixed".to_vec()),
            ..Replay::default()
        },
    )
    .await
    .unwrap();
    let m7: Vec<String> = s
        .events_of("m-7")
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event)
        .collect();
    assert_eq!(m7, ["stored", "edited", "replayed"]);
    assert_eq!(
        s.failures_of("m-7").await.unwrap()[0].status,
        Status::Replayed
    );

    // Purge by age: everything before 1,600 ms goes.
    assert_eq!(s.purge_events(1_600).await.unwrap(), 600);
    assert_eq!(s.events_of("m-0").await.unwrap().len(), 201);
}

async fn retention_purges_only_settled_records_past_the_cutoff(s: Store, url: String) {
    s.insert(&[
        failure(1, "mapping", Some("r")),
        failure(2, "mapping", Some("r")),
        failure(3, "mapping", Some("r")),
        failure(4, "mapping", Some("r")),
    ])
    .await
    .unwrap();
    let mut ids: Vec<i64> = s
        .list(&Filter::default(), None, 10)
        .await
        .unwrap()
        .items
        .iter()
        .map(|x| x.id)
        .collect();
    ids.sort_unstable();
    let replay = Replay {
        actor: "lan".into(),
        routing_key: "lgsp.route.r".into(),
        ..Replay::default()
    };
    s.record_replay(ids[0], &replay).await.unwrap();
    s.discard(&[ids[1]], "lan", "noise", "").await.unwrap();
    s.record_replay(ids[2], &replay).await.unwrap();
    // ids[2] was settled long ago; ids[3] stays failed (and old): never purged.
    raw(
        &url,
        &format!(
            "UPDATE failed_messages SET settled_at = 1000 WHERE id = {}",
            ids[2]
        ),
    )
    .await;
    raw(
        &url,
        &format!(
            "UPDATE failed_messages SET last_failed_at = 1000, stored_at = 1000 WHERE id = {}",
            ids[3]
        ),
    )
    .await;
    let cutoff = lgsp_store::record::now_ms() - 60_000;
    assert_eq!(s.purge(cutoff, "lgsp (retention)").await.unwrap(), 1);
    assert!(s.get(ids[2]).await.unwrap().is_none());
    for id in [ids[0], ids[1], ids[3]] {
        assert!(s.get(id).await.unwrap().is_some(), "{id} kept");
    }
    // Everything settled before now goes; the failed one stays.
    assert_eq!(
        s.purge(lgsp_store::record::now_ms() + 1, "lgsp (retention)")
            .await
            .unwrap(),
        2
    );
    assert_eq!(s.count().await.unwrap(), 1);
    let log = s.audit_entries(0, 100).await.unwrap();
    let purges: Vec<_> = log.iter().filter(|e| e.action == "purge").collect();
    assert_eq!(purges.len(), 2);
    assert_eq!(purges[0].actor, "lgsp (retention)");
    assert_eq!(purges[0].message_ids, json!([ids[2]]));
    assert!(s.audit_verify(None).await.unwrap().ok);
}

async fn an_edit_is_kept_as_a_diff_and_survives_a_later_plain_replay(s: Store, url: String) {
    let mut f = failure(1, "mapping", Some("demo"));
    f.body = b"{\n  \"thing\": {\n    \"label\": \"first\"\n  }\n}\n".to_vec();
    s.insert(std::slice::from_ref(&f)).await.unwrap();
    let id = s.list(&Filter::default(), None, 1).await.unwrap().items[0].id;
    let edited = b"{\n  \"thing\": {\n    \"name\": \"first\"\n  }\n}\n".to_vec();
    s.record_replay(
        id,
        &Replay {
            actor: "lan".into(),
            routing_key: "lgsp.route.demo".into(),
            edited: true,
            edited_body: Some(edited.clone()),
            ..Replay::default()
        },
    )
    .await
    .unwrap();
    // Kept as a diff, not a second copy of the body.
    if url.starts_with("sqlite:") {
        let p = sqlx::SqlitePool::connect(&url).await.unwrap();
        let (body, diff): (Option<Vec<u8>>, Option<String>) =
            sqlx::query_as("SELECT edited_body, edit_diff FROM replays")
                .fetch_one(&p)
                .await
                .unwrap();
        assert!(body.is_none());
        assert!(diff.unwrap().contains("\"format\":\"lines/1\""));
    }
    // It fails again (a new record of the same message) and is replayed plainly.
    let mut again = f.clone();
    again.failure_id = "f-1-again".into();
    again.failed_at += 60_000;
    s.insert(&[again]).await.unwrap();
    let id2 = s.list(&Filter::default(), None, 1).await.unwrap().items[0].id;
    s.record_replay(
        id2,
        &Replay {
            actor: "minh".into(),
            routing_key: "lgsp.route.demo".into(),
            ..Replay::default()
        },
    )
    .await
    .unwrap();
    let got = s.get(id2).await.unwrap().unwrap();
    assert_eq!(got.replays.len(), 1);
    assert!(!got.replays[0].edited);
    assert_eq!(got.history.len(), 2, "{:?}", got.history);
    let edit = &got.history[0];
    assert_eq!(edit.failed_id, id);
    assert_eq!(edit.actor, "lan");
    assert_eq!(edit.edited_body.as_deref(), Some(&edited[..]));
    let diff = edit.diff.as_deref().unwrap();
    assert!(
        diff.contains("-    \"label\": \"first\"\n+    \"name\": \"first\""),
        "{diff}"
    );
    let log = s.audit_entries(0, 10).await.unwrap();
    let actions: Vec<&str> = log.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["edit_replay", "replay"]);
}

async fn a_request_is_approved_once_and_never_by_its_requester(s: Store, _url: String) {
    use lgsp_store::approval::ApproveError;
    let payload = json!({"ids": [7], "reason": "noise"});
    let id = s
        .create_request("lan", "discard", &payload, vec![7])
        .await
        .unwrap();
    let pending = s.list_requests(Some("pending")).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].payload, payload);
    match s.approve_request(id, "lan").await {
        Err(ApproveError::SelfApproval { name, .. }) => assert_eq!(name, "lan"),
        other => panic!("self-approval: {other:?}"),
    }
    assert_eq!(s.get_request(id).await.unwrap().unwrap().status, "pending");
    let r = s.approve_request(id, "minh").await.unwrap();
    assert_eq!(r.status, "approved");
    assert_eq!(r.decided_by.as_deref(), Some("minh"));
    assert!(matches!(
        s.approve_request(id, "hoa").await,
        Err(ApproveError::NotPending { .. })
    ));
    assert!(matches!(
        s.approve_request(id + 100, "hoa").await,
        Err(ApproveError::NotFound(_))
    ));
    s.finish_request(id, true, &json!({"discarded": [7]}))
        .await
        .unwrap();
    let done = s.get_request(id).await.unwrap().unwrap();
    assert_eq!(done.status, "executed");
    let log = s.audit_entries(0, 10).await.unwrap();
    let who: Vec<(&str, &str)> = log
        .iter()
        .map(|e| (e.actor.as_str(), e.action.as_str()))
        .collect();
    assert_eq!(who, [("lan", "request"), ("minh", "approve")]);
}

async fn the_audit_chain_names_an_altered_row_and_a_removed_tail(s: Store, url: String) {
    for i in 0..20 {
        s.audit(&NewAudit::new("lan", "note", vec![i], &format!("note {i}")))
            .await
            .unwrap();
    }
    let v = s.audit_verify(None).await.unwrap();
    assert!(v.ok, "{v:?}");
    assert_eq!(v.entries, 20);
    let head = s.audit_head().await.unwrap();
    assert_eq!(head.seq, 20);
    assert!(s.audit_verify(Some(&head.hash)).await.unwrap().ok);
    // An older saved head is still in the chain: appends since then are fine.
    let older = s.audit_entries(9, 1).await.unwrap()[0].hash.clone();
    assert!(s.audit_verify(Some(&older)).await.unwrap().ok);

    // The last row removed: the store's head row gives it away...
    raw(&url, "DELETE FROM audit_log WHERE seq = 20").await;
    let v = s.audit_verify(None).await.unwrap();
    assert!(!v.ok);
    assert_eq!(v.first_bad.as_ref().unwrap().seq, 20, "{v:?}");
    // ...and with the head row rewritten too, the saved head still does.
    let prev = s.audit_entries(18, 1).await.unwrap()[0].hash.clone();
    raw(
        &url,
        &format!("UPDATE audit_head SET seq = 19, hash = '{prev}' WHERE id = 1"),
    )
    .await;
    assert!(
        s.audit_verify(None).await.unwrap().ok,
        "undetectable without a saved head"
    );
    let v = s.audit_verify(Some(&head.hash)).await.unwrap();
    assert!(!v.ok);
    assert!(v.first_bad.unwrap().problem.contains("saved head"));

    // One field of one row altered: that row is named.
    raw(
        &url,
        "UPDATE audit_log SET note = 'nothing to see' WHERE seq = 7",
    )
    .await;
    let v = s.audit_verify(None).await.unwrap();
    assert!(!v.ok);
    let bad = v.first_bad.unwrap();
    assert_eq!(bad.seq, 7);
    assert!(bad.problem.contains("altered"), "{}", bad.problem);
    assert_eq!(v.head.seq, 6, "verified up to the entry before");
}

async fn two_stores_appending_500_entries_each_leave_a_chain_that_verifies(s: Store, url: String) {
    let other = Store::open(&lgsp_core::config::SecretUrl::new(url.clone())).unwrap();
    let t0 = Instant::now();
    async fn write(st: &Store, who: &str) {
        for i in 0..500 {
            st.audit(&NewAudit::new(who, "note", vec![i], "concurrent"))
                .await
                .unwrap();
        }
    }
    tokio::join!(write(&s, "a"), write(&other, "b"));
    eprintln!(
        "audit ({}): 1,000 appends from two pools in {:.2}s",
        s.backend(),
        t0.elapsed().as_secs_f64()
    );
    let v = s.audit_verify(None).await.unwrap();
    assert!(v.ok, "{v:?}");
    assert_eq!(v.entries, 1000);
}

async fn an_idempotency_key_is_claimed_once_per_app_within_its_window(s: Store, _url: String) {
    use lgsp_store::idempotency::Claim;
    let day = 24 * 3600 * 1000;
    assert_eq!(
        s.claim_idempotency("dkkd", "k1", "m1", "h1", day)
            .await
            .unwrap(),
        Claim::New
    );
    // Another app may use the same key.
    assert_eq!(
        s.claim_idempotency("thue", "k1", "m2", "h1", day)
            .await
            .unwrap(),
        Claim::New
    );
    let pending = s
        .claim_idempotency("dkkd", "k1", "m3", "h1", day)
        .await
        .unwrap();
    assert_eq!(
        pending,
        Claim::Taken {
            message_id: "m1".into(),
            confirmed: false,
            same_body: true
        }
    );
    s.confirm_idempotency("dkkd", "k1", "m1").await.unwrap();
    let other_body = s
        .claim_idempotency("dkkd", "k1", "m4", "h2", day)
        .await
        .unwrap();
    assert_eq!(
        other_body,
        Claim::Taken {
            message_id: "m1".into(),
            confirmed: true,
            same_body: false
        }
    );
    // A released claim (its publish failed) frees the key.
    s.release_idempotency("thue", "k1", "m2").await.unwrap();
    assert_eq!(
        s.claim_idempotency("thue", "k1", "m5", "h1", day)
            .await
            .unwrap(),
        Claim::New
    );
    // Past the window the key is new again.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    assert_eq!(
        s.claim_idempotency("dkkd", "k1", "m6", "h1", 1)
            .await
            .unwrap(),
        Claim::New
    );
    let purged = s
        .purge_idempotency(lgsp_store::record::now_ms() + 1)
        .await
        .unwrap();
    assert_eq!(purged, 2);
}

macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let dir = tempfile::tempdir().unwrap();
                    let url = format!("sqlite://{}/a/b/lgsp.db", dir.path().display());
                    let s = lgsp_store::Store::open(&lgsp_core::config::SecretUrl::new(url.clone())).unwrap();
                    s.migrate().await.unwrap();
                    assert!(dir.path().join("a/b/lgsp.db").exists(), "folder and file created");
                    super::$name(s, url).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    let schema = lgsp_testkit::PgSchema::new(stringify!($name)).await;
                    let s = lgsp_store::Store::open(&lgsp_core::config::SecretUrl::new(schema.url())).unwrap();
                    s.migrate().await.unwrap();
                    super::$name(s, schema.url()).await;
                }
            )*
        }
    };
}

on_both!(
    same_failure_twice_is_stored_once_byte_for_byte,
    a_redelivered_input_failing_the_same_way_again_is_one_record,
    two_replays_at_once_claim_each_record_once,
    lists_filter_and_page,
    a_replay_is_recorded_and_a_new_failure_of_the_same_message_keeps_its_first_time,
    migrating_twice_changes_nothing,
    a_stored_unknown_kind_reads_as_the_fallback_and_says_so,
    a_thousand_failures_of_three_causes_make_three_groups,
    a_discard_needs_a_failed_record_and_is_audited,
    retention_purges_only_settled_records_past_the_cutoff,
    an_edit_is_kept_as_a_diff_and_survives_a_later_plain_replay,
    a_request_is_approved_once_and_never_by_its_requester,
    the_audit_chain_names_an_altered_row_and_a_removed_tail,
    two_stores_appending_500_entries_each_leave_a_chain_that_verifies,
    an_idempotency_key_is_claimed_once_per_app_within_its_window,
    tracking_events_are_written_in_batches_read_in_order_and_purged,
);

/// `sslmode` in a PostgreSQL store URL is honoured: `require` makes the server see a TLS
/// connection, `verify-full` against the server's own certificate works, and against a
/// CA that did not sign it the store refuses with an error that names TLS and
/// `sslrootcert`.
#[tokio::test]
async fn postgres_tls_follows_sslmode_and_refuses_a_wrong_ca() {
    let schema = lgsp_testkit::PgSchema::new("tls").await;
    let dir = tempfile::tempdir().unwrap();
    let pki = lgsp_testkit::pki::Pki::generate(dir.path());
    let app = format!("lgsp_tls_{}", std::process::id());

    let url = format!("{}&sslmode=require&application_name={app}", schema.url());
    let s = Store::open(&SecretUrl::new(url.clone())).unwrap();
    s.migrate().await.unwrap();
    s.insert(&[failure(1, "mapping", Some("r"))]).await.unwrap();
    let p = sqlx::PgPool::connect(&schema.url()).await.unwrap();
    let (ssl,): (bool,) = sqlx::query_as(
        "SELECT bool_and(s.ssl) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
         WHERE a.application_name = $1",
    )
    .bind(&app)
    .fetch_one(&p)
    .await
    .unwrap();
    assert!(
        ssl,
        "the store's connections are not TLS with sslmode=require"
    );
    p.close().await;

    // The server's certificate (self-signed, for localhost) as the root: verified.
    let server_cert = "/etc/ssl/certs/ssl-cert-snakeoil.pem";
    let base = schema.url().replace("@127.0.0.1", "@localhost");
    let good = format!("{base}&sslmode=verify-full&sslrootcert={server_cert}");
    let s = Store::open(&SecretUrl::new(good)).unwrap();
    assert_eq!(s.count().await.unwrap(), 1);

    let wrong = format!(
        "{base}&sslmode=verify-full&sslrootcert={}",
        pki.wrong_ca.display()
    );
    let s = Store::open(&SecretUrl::new(wrong)).unwrap();
    let e = s.count().await.unwrap_err().to_string();
    assert!(
        e.contains("TLS with the store") && e.contains("sslrootcert"),
        "{e}"
    );
}
