//! The store's contract, run on both backends: SQLite in a temporary folder and
//! PostgreSQL in a schema of its own per test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use lgsp_store::Store;
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
        error_kind: kind.into(),
        error_code: format!("{kind}.code"),
        error: format!("Field X: something {n} went wrong"),
        attempts: 1,
        failed_at: 1_700_000_000_000 + i64::from(n) * 1000,
    }
}

async fn same_failure_twice_is_stored_once_byte_for_byte(s: Store) {
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

async fn lists_filter_and_page(s: Store) {
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
            kind: Some("decode".into()),
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

async fn a_replay_is_recorded_and_a_new_failure_of_the_same_message_keeps_its_first_time(s: Store) {
    let f = failure(7, "mapping", Some("bizreg"));
    s.insert(std::slice::from_ref(&f)).await.unwrap();
    let id = s.list(&Filter::default(), None, 1).await.unwrap().items[0].id;
    let replay = Replay {
        at: String::new(),
        actor: "operator:abcd".into(),
        exchange: String::new(),
        routing_key: "lgsp.route.bizreg".into(),
        targets: f.targets.clone(),
        edited_body: Some(b"edited".to_vec()),
        edited: true,
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

async fn migrating_twice_changes_nothing(s: Store) {
    s.insert(&[failure(1, "mapping", Some("r"))]).await.unwrap();
    s.migrate().await.unwrap();
    assert_eq!(s.count().await.unwrap(), 1);
    s.ping().await.unwrap();
}

macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let dir = tempfile::tempdir().unwrap();
                    let url = format!("sqlite://{}/a/b/lgsp.db", dir.path().display());
                    let s = lgsp_store::Store::open(&lgsp_core::config::SecretUrl::new(url)).unwrap();
                    s.migrate().await.unwrap();
                    assert!(dir.path().join("a/b/lgsp.db").exists(), "folder and file created");
                    super::$name(s).await;
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
                    super::$name(s).await;
                }
            )*
        }
    };
}

on_both!(
    same_failure_twice_is_stored_once_byte_for_byte,
    lists_filter_and_page,
    a_replay_is_recorded_and_a_new_failure_of_the_same_message_keeps_its_first_time,
    migrating_twice_changes_nothing,
);
