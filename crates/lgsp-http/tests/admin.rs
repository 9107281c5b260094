//! The admin API without sockets: `router(state)` driven with `oneshot`, over a SQLite
//! store in a temporary folder.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use lgsp_amqp::names::Names;
use lgsp_core::config::SecretUrl;
use lgsp_failed::replay::Replayer;
use lgsp_http::admin::{Admin, Role, Settings, Tokens};
use lgsp_http::{AppState, router};
use lgsp_store::record::NewFailure;
use lgsp_store::{Status, Store};
use serde_json::{Value, json};
use tower::ServiceExt;

const OPERATOR: &str = "op-token-0123456789abcdef0123456789abcdef";
const VIEWER: &str = "viewer-token-0123456789abcdef0123456789ab";
const OPERATOR2: &str = "op2-token-0123456789abcdef0123456789abcde";

struct Fixture {
    state: AppState,
    store: Arc<Store>,
    _dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    fixture_with(Settings::default()).await
}

async fn fixture_with(settings: Settings) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let url = SecretUrl::new(format!("sqlite://{}/lgsp.db", dir.path().display()));
    let store = Arc::new(Store::open(&url).unwrap());
    store.migrate().await.unwrap();
    let mut records = Vec::new();
    for (n, body) in [
        (1, b"<HoSo>ngay</HoSo>".to_vec()),
        (2, vec![0xff, 0xfe, 0x00]),
    ] {
        records.push(NewFailure {
            failure_id: format!("f-{n}"),
            message_id: format!("m-{n}"),
            route: Some("bizreg".into()),
            targets: vec!["exchange:lgsp.out".into()],
            original_exchange: "lgsp.in".into(),
            original_routing_key: "bizreg.enterprise.registered".into(),
            source_queue: "lgsp.failed".into(),
            properties: json!({"message_id": format!("m-{n}")}),
            headers: json!({}),
            body,
            content_type: Some("application/xml".into()),
            error_kind: if n == 1 {
                lgsp_core::failure::FailureKind::Mapping
            } else {
                lgsp_core::failure::FailureKind::Decode
            },
            error_code: "c".into(),
            error: format!("error {n}"),
            attempts: 0,
            failed_at: 1_700_000_000_000,
        });
    }
    store.insert(&records).await.unwrap();
    // Nothing listens here: a replay that got past the checks would fail loudly.
    let replayer = Replayer::new(
        lgsp_amqp::broker::Broker::new(vec![SecretUrl::new("amqp://guest:guest@127.0.0.1:1/%2f")]),
        Names::new("lgsp"),
        lgsp_amqp::routes::RouteTable::new(vec![lgsp_amqp::routes::RouteEntry {
            name: "bizreg".into(),
            binding: "bizreg.#".into(),
            adapter: "bizreg".into(),
        }]),
    );
    let tokens = Tokens::default()
        .with_name(OPERATOR, Role::Operator, "lan")
        .with_name(VIEWER, Role::Viewer, "minh")
        .with_name(OPERATOR2, Role::Operator, "hoa");
    let state = AppState {
        admin: Some(Arc::new(Admin {
            store: store.clone(),
            replayer: Arc::new(replayer),
            tokens,
            settings,
        })),
        ..AppState::default()
    };
    Fixture {
        state,
        store,
        _dir: dir,
    }
}

async fn call(
    state: &AppState,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (u16, Value) {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let resp = router(state.clone())
        .oneshot(req.body(Body::from(body.to_owned())).unwrap())
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn requests_without_a_known_token_get_401() {
    let f = fixture().await;
    for (method, path) in [
        ("GET", "/admin/v1/failed"),
        ("GET", "/admin/v1/failed/1"),
        ("POST", "/admin/v1/failed/1/replay"),
    ] {
        let (status, body) = call(&f.state, method, path, None, "").await;
        assert_eq!(status, 401, "{method} {path}");
        assert_eq!(body["code"], "unauthorized");
        assert!(!body["hint"].as_str().unwrap().is_empty());
        let (status, _) = call(&f.state, method, path, Some("not-a-token"), "").await;
        assert_eq!(status, 401, "{method} {path} with an unknown token");
    }
}

#[tokio::test]
async fn a_viewers_replay_gets_403_and_changes_nothing() {
    let f = fixture().await;
    let (status, body) = call(
        &f.state,
        "POST",
        "/admin/v1/failed/1/replay",
        Some(VIEWER),
        "{\"body\": \"x\"}",
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["code"], "forbidden");
    let rec = f.store.get(1).await.unwrap().unwrap();
    assert_eq!(rec.summary.status, Status::Failed);
    assert!(rec.replays.is_empty());
    // The viewer can read.
    let (status, _) = call(&f.state, "GET", "/admin/v1/failed", Some(VIEWER), "").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn lists_filter_and_show_text_bodies_as_text_and_others_as_base64() {
    let f = fixture().await;
    let (status, page) = call(
        &f.state,
        "GET",
        "/admin/v1/failed?kind=decode",
        Some(VIEWER),
        "",
    )
    .await;
    assert_eq!(status, 200, "{page}");
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["message_id"], "m-2");
    assert_eq!(items[0]["status"], "failed");

    let (_, page) = call(
        &f.state,
        "GET",
        "/admin/v1/failed?limit=1",
        Some(VIEWER),
        "",
    )
    .await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let (_, next) = call(
        &f.state,
        "GET",
        &format!("/admin/v1/failed?limit=1&cursor={cursor}"),
        Some(VIEWER),
        "",
    )
    .await;
    assert_eq!(next["items"][0]["message_id"], "m-1");
    assert!(next["next_cursor"].is_null());

    let (_, one) = call(&f.state, "GET", "/admin/v1/failed/1", Some(OPERATOR), "").await;
    assert_eq!(one["body_encoding"], "text");
    assert_eq!(one["body"], "<HoSo>ngay</HoSo>");
    assert_eq!(one["format_version"], 1);
    assert_eq!(one["masked"], false);
    let (_, two) = call(&f.state, "GET", "/admin/v1/failed/2", Some(OPERATOR), "").await;
    assert_eq!(two["body_encoding"], "base64");
    assert_eq!(two["body"], "//4A");
    // A viewer sees the shape of a body, never its values.
    let (_, one) = call(&f.state, "GET", "/admin/v1/failed/1", Some(VIEWER), "").await;
    assert_eq!(one["masked"], true);
    assert_eq!(one["body"], "<HoSo>***</HoSo>");
    let (_, two) = call(&f.state, "GET", "/admin/v1/failed/2", Some(VIEWER), "").await;
    assert_eq!(two["body_encoding"], "text");
    assert_eq!(
        two["body"],
        "*** (3 bytes that do not parse, hidden from viewers)"
    );

    let (status, body) = call(
        &f.state,
        "GET",
        "/admin/v1/failed?status=lost",
        Some(VIEWER),
        "",
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["code"], "bad_request");
    let (status, _) = call(&f.state, "GET", "/admin/v1/failed/99", Some(VIEWER), "").await;
    assert_eq!(status, 404);
    let (status, _) = call(
        &f.state,
        "GET",
        "/admin/v1/failed?from=yesterday",
        Some(VIEWER),
        "",
    )
    .await;
    assert_eq!(status, 400);
}

/// The admin CLI sends the API's own request types: what it serializes is what the
/// server reads, and a field it leaves out is not sent at all.
#[tokio::test]
async fn the_request_types_the_cli_sends_are_what_the_server_reads() {
    use lgsp_core::failure::FailureKind;
    use lgsp_http::admin::api::{BulkRequest, ListQuery, Selection};
    let f = fixture().await;
    let q = ListQuery {
        kind: Some(FailureKind::Decode),
        limit: Some(10),
        ..ListQuery::default()
    };
    let qs = serde_urlencoded::to_string(&q).unwrap();
    assert_eq!(qs, "kind=decode&limit=10");
    let (status, page) = call(
        &f.state,
        "GET",
        &format!("/admin/v1/failed?{qs}"),
        Some(VIEWER),
        "",
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert_eq!(page["items"][0]["message_id"], "m-2");

    let groups = Selection {
        kind: Some(FailureKind::Mapping),
        ..Selection::default()
    };
    let qs = serde_urlencoded::to_string(&groups).unwrap();
    let (status, body) = call(
        &f.state,
        "GET",
        &format!("/admin/v1/groups?{qs}"),
        Some(VIEWER),
        "",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body.as_array().unwrap().len(), 1, "{body}");
    assert_eq!(body[0]["error_kind"], "mapping");

    let bulk = BulkRequest {
        kind: Some(FailureKind::Decode),
        ..BulkRequest::default()
    };
    assert_eq!(
        serde_json::to_value(&bulk).unwrap(),
        serde_json::json!({ "kind": "decode" })
    );
    let (status, body) = call(
        &f.state,
        "POST",
        "/admin/v1/bulk-replay",
        Some(VIEWER),
        &serde_json::to_string(&bulk).unwrap(),
    )
    .await;
    assert_eq!(
        status, 403,
        "a viewer's bulk replay is refused, not misread: {body}"
    );
}

/// Every refusal, axum's own included, is the JSON of the error table: a client reads
/// `code` whatever went wrong, never a plain-text body.
#[tokio::test]
async fn malformed_requests_answer_the_error_tables_json() {
    let f = fixture().await;
    let shape = |status: u16, body: &Value, code: &str, what: &str| {
        assert_eq!(body["code"], code, "{what}: {body}");
        let expected = lgsp_http::ApiCode::ALL
            .iter()
            .find(|c| c.as_str() == code)
            .unwrap();
        assert_eq!(status, expected.status(), "{what}: {body}");
        assert!(
            body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{what}"
        );
        assert!(
            body["hint"].as_str().is_some_and(|h| !h.is_empty()),
            "{what}"
        );
        assert_eq!(body.as_object().unwrap().len(), 3, "{what}: {body}");
    };
    for (method, path, body, code) in [
        ("GET", "/admin/v1/failed?limit=many", "", "bad_request"),
        ("GET", "/admin/v1/failed?colour=red", "", "bad_request"),
        ("GET", "/admin/v1/groups?kind=bogus", "", "bad_request"),
        ("GET", "/admin/v1/audit?after=x", "", "bad_request"),
        ("GET", "/admin/v1/failed/%FF", "", "bad_request"),
        ("GET", "/admin/v1/messages/%C3%28", "", "bad_request"),
        (
            "POST",
            "/admin/v1/bulk-replay",
            "{\"group\": ",
            "bad_request",
        ),
        (
            "POST",
            "/admin/v1/failed/1/discard",
            "[1, 2]",
            "bad_request",
        ),
        ("GET", "/admin/v1/nothing-here", "", "not_found"),
        ("DELETE", "/admin/v1/failed/1", "", "method_not_allowed"),
    ] {
        let (status, answer) = call(&f.state, method, path, Some(OPERATOR), body).await;
        shape(status, &answer, code, &format!("{method} {path}"));
    }
    // The caller is checked before the parameters: an unknown caller learns nothing
    // about them.
    let (status, answer) = call(&f.state, "GET", "/admin/v1/failed?limit=many", None, "").await;
    assert_eq!(status, 401, "{answer}");
    assert_eq!(answer["code"], "unauthorized");
}

/// A kind is one of the closed set: a mistyped one is refused, naming the valid ones,
/// instead of listing nothing.
#[tokio::test]
async fn an_unknown_kind_filter_is_a_400_naming_the_kinds() {
    let f = fixture().await;
    let (status, body) = call(
        &f.state,
        "GET",
        "/admin/v1/failed?kind=mapings",
        Some(VIEWER),
        "",
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["code"], "bad_request");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("unknown error kind `mapings`")
            && message.contains("decode, mapping, validation"),
        "{message}"
    );
    let (status, body) = call(
        &f.state,
        "POST",
        "/admin/v1/bulk-replay",
        Some(OPERATOR),
        r#"{"kind": "Decode"}"#,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("unknown error kind `Decode`"),
        "{body}"
    );
}

#[tokio::test]
async fn an_operators_replay_with_the_broker_down_is_503_and_changes_nothing() {
    let f = fixture().await;
    let (status, body) = call(
        &f.state,
        "POST",
        "/admin/v1/failed/1/replay",
        Some(OPERATOR),
        "",
    )
    .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["code"], "broker_unavailable");
    assert_eq!(
        f.store.get(1).await.unwrap().unwrap().summary.status,
        Status::Failed
    );
}

#[test]
fn hashes_in_the_config_must_be_sha256_hex() {
    let c = lgsp_core::config::AdminConfig {
        viewer_token_sha256: vec!["abc".into()],
        ..Default::default()
    };
    let e = Tokens::from_config(&c).unwrap_err();
    assert!(e.contains("admin.viewer_token_sha256[0]"), "{e}");
}

#[test]
fn older_token_keys_get_fixed_names_and_names_are_unique() {
    let hash = "a72bf14466a555a28f46b4fdba9d825359a9f1e5ebc9fa627fd113365cf67542";
    let c = lgsp_core::config::AdminConfig {
        viewer_token_sha256: vec![hash.into()],
        tokens: vec![lgsp_core::config::TokenConfig {
            name: "viewer-1".into(),
            sha256: hash.into(),
            role: lgsp_core::config::TokenRole::Operator,
        }],
        ..Default::default()
    };
    let e = Tokens::from_config(&c).unwrap_err();
    assert!(
        e.contains("admin.tokens[0].name") && e.contains("viewer-1"),
        "{e}"
    );
}

#[tokio::test]
async fn a_discard_needs_a_reason_and_the_operator_role() {
    let f = fixture().await;
    let (status, body) = call(
        &f.state,
        "POST",
        "/admin/v1/failed/1/discard",
        Some(OPERATOR),
        "",
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["code"], "reason_required");
    assert!(body["hint"].as_str().unwrap().contains("--reason"));
    let (status, _) = call(
        &f.state,
        "POST",
        "/admin/v1/failed/1/discard",
        Some(OPERATOR),
        r#"{"reason": "  "}"#,
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = call(
        &f.state,
        "POST",
        "/admin/v1/failed/1/discard",
        Some(VIEWER),
        r#"{"reason": "noise"}"#,
    )
    .await;
    assert_eq!(status, 403);
    let (status, body) = call(
        &f.state,
        "POST",
        "/admin/v1/failed/1/discard",
        Some(OPERATOR),
        r#"{"reason": "a vendor's test message"}"#,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let rec = f.store.get(1).await.unwrap().unwrap();
    assert_eq!(rec.summary.status, Status::Discarded);
    assert_eq!(rec.discarded_by.as_deref(), Some("lan"));
    let (status, body) = call(
        &f.state,
        "POST",
        "/admin/v1/failed/1/discard",
        Some(OPERATOR),
        r#"{"reason": "again"}"#,
    )
    .await;
    assert_eq!(status, 409, "{body}");
    // The audit log names the token's name, never the token.
    let (_, log) = call(&f.state, "GET", "/admin/v1/audit", Some(VIEWER), "").await;
    assert_eq!(log[0]["actor"], "lan");
    assert_eq!(log[0]["action"], "discard");
    assert!(!log.to_string().contains(OPERATOR));
}

#[tokio::test]
async fn groups_show_counts_and_a_key_and_bulk_replay_needs_a_selection() {
    let f = fixture().await;
    let (status, groups) = call(&f.state, "GET", "/admin/v1/groups", Some(VIEWER), "").await;
    assert_eq!(status, 200, "{groups}");
    let groups = groups.as_array().unwrap();
    assert_eq!(groups.len(), 2);
    for g in groups {
        for k in [
            "key",
            "route",
            "error_kind",
            "error_code",
            "count",
            "first_seen",
            "last_seen",
            "sample_id",
        ] {
            assert!(!g[k].is_null(), "{k} in {g}");
        }
        assert_eq!(g["count"], 1);
    }
    let (status, body) = call(
        &f.state,
        "POST",
        "/admin/v1/bulk-replay",
        Some(OPERATOR),
        "{}",
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = call(
        &f.state,
        "POST",
        "/admin/v1/bulk-replay",
        Some(OPERATOR),
        r#"{"group": "g000000000000"}"#,
    )
    .await;
    assert_eq!(status, 404, "{body}");
    let (status, _) = call(
        &f.state,
        "POST",
        "/admin/v1/bulk-replay",
        Some(VIEWER),
        r#"{"kind": "decode"}"#,
    )
    .await;
    assert_eq!(status, 403);
    // The broker is down: a batch replays nothing and says so.
    let key = groups[0]["key"].as_str().unwrap();
    let (status, body) = call(
        &f.state,
        "POST",
        "/admin/v1/bulk-replay",
        Some(OPERATOR),
        &format!(r#"{{"group": "{key}"}}"#),
    )
    .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(
        f.store.get(1).await.unwrap().unwrap().summary.status,
        Status::Failed
    );
}

#[tokio::test]
async fn with_approval_a_request_waits_for_another_operator() {
    let f = fixture_with(Settings {
        require_approval: true,
        ..Settings::default()
    })
    .await;
    let (status, body) = call(
        &f.state,
        "POST",
        "/admin/v1/failed/1/discard",
        Some(OPERATOR),
        r#"{"reason": "noise"}"#,
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let req = body["request_id"].as_i64().unwrap();
    assert_eq!(
        f.store.get(1).await.unwrap().unwrap().summary.status,
        Status::Failed,
        "not yet"
    );
    // A replay becomes a request too (nothing reaches the broker, which is down here).
    let (status, body) = call(
        &f.state,
        "POST",
        "/admin/v1/failed/2/replay",
        Some(OPERATOR),
        "",
    )
    .await;
    assert_eq!(status, 202, "{body}");

    let path = format!("/admin/v1/requests/{req}/approve");
    let (status, body) = call(&f.state, "POST", &path, Some(OPERATOR), "").await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["code"], "self_approval");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("another operator")
    );
    let (status, _) = call(&f.state, "POST", &path, Some(VIEWER), "").await;
    assert_eq!(status, 403);
    assert_eq!(
        f.store.get(1).await.unwrap().unwrap().summary.status,
        Status::Failed
    );

    let (status, body) = call(&f.state, "POST", &path, Some(OPERATOR2), "").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["request"]["status"], "executed");
    let rec = f.store.get(1).await.unwrap().unwrap();
    assert_eq!(rec.summary.status, Status::Discarded);
    assert_eq!(
        rec.discarded_by.as_deref(),
        Some("lan"),
        "done in the requester's name"
    );
    let (status, _) = call(&f.state, "POST", &path, Some(OPERATOR2), "").await;
    assert_eq!(status, 409, "approved once");

    let (_, pending) = call(
        &f.state,
        "GET",
        "/admin/v1/requests?status=pending",
        Some(VIEWER),
        "",
    )
    .await;
    assert_eq!(pending.as_array().unwrap().len(), 1);
    let (_, log) = call(&f.state, "GET", "/admin/v1/audit", Some(VIEWER), "").await;
    let actions: Vec<(String, String)> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["actor"].as_str().unwrap().into(),
                e["action"].as_str().unwrap().into(),
            )
        })
        .collect();
    let pairs: Vec<(&str, &str)> = actions
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    assert_eq!(
        pairs,
        [
            ("lan", "request"),
            ("lan", "request"),
            ("hoa", "approve"),
            ("lan", "discard")
        ]
    );
    let (_, v) = call(&f.state, "GET", "/admin/v1/audit/verify", Some(VIEWER), "").await;
    assert_eq!(v["ok"], true, "{v}");
    let (status, _) = call(
        &f.state,
        "GET",
        "/admin/v1/audit/verify?head=xyz",
        Some(VIEWER),
        "",
    )
    .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn me_names_the_token_and_its_role() {
    let f = fixture().await;
    let (status, me) = call(&f.state, "GET", "/admin/v1/me", Some(VIEWER), "").await;
    assert_eq!(status, 200);
    assert_eq!(me, json!({"name": "minh", "role": "viewer"}));
    let (_, me) = call(&f.state, "GET", "/admin/v1/me", Some(OPERATOR), "").await;
    assert_eq!(me["role"], "operator");
    let (status, _) = call(&f.state, "GET", "/admin/v1/me", None, "").await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn the_page_and_its_assets_are_served_with_a_strict_policy() {
    let f = fixture().await;
    for (path, ct) in [
        ("/ui/", "text/html"),
        ("/ui/app.js", "text/javascript"),
        ("/ui/app.css", "text/css"),
    ] {
        let resp = router(f.state.clone())
            .oneshot(Request::builder().uri(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        let h = resp.headers();
        assert!(
            h["content-type"].to_str().unwrap().starts_with(ct),
            "{path}"
        );
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("default-src 'none'")
                && csp.contains("script-src 'self'")
                && csp.contains("frame-ancestors 'none'")
                && !csp.contains("unsafe"),
            "{csp}"
        );
        assert_eq!(h["x-content-type-options"], "nosniff");
    }
    let resp = router(f.state.clone())
        .oneshot(Request::builder().uri("/ui").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), 308);
    assert_eq!(resp.headers()["location"], "/ui/");
}

/// An admin request body may be as large as an edited message of
/// `limits.max_message_bytes` written as a JSON string (axum's own 2 MB cap refused a
/// 3 MB edit before); past that, 413 with the API's error body.
#[tokio::test]
async fn an_admin_body_may_hold_an_edited_message_of_the_size_limit() {
    let f = fixture().await;
    let note = "x".repeat(3 << 20);
    let body = format!("{{\"note\": \"{note}\"}}");
    let (status, v) = call(
        &f.state,
        "POST",
        "/admin/v1/audit/notes",
        Some(OPERATOR),
        &body,
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let too_big = "x".repeat(f.state.body.max + 1);
    let (status, v) = call(
        &f.state,
        "POST",
        "/admin/v1/audit/notes",
        Some(OPERATOR),
        &too_big,
    )
    .await;
    assert_eq!(
        (status, v["code"].as_str()),
        (413, Some("payload_too_large"))
    );
}
