//! `GET /api/v1/openapi.json`: the gateway described as it behaves, derived from the
//! handler (not hand-written), served without a broker.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::body::Body;
use axum::http::Request;
use lgsp_http::{AppState, router};
use serde_json::Value;
use tower::ServiceExt;

#[tokio::test]
async fn the_gateway_is_described_with_every_status_and_both_key_schemes() {
    let resp = router(AppState::default())
        .oneshot(
            Request::get("/api/v1/openapi.json")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    let doc: Value = serde_json::from_slice(&bytes).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{doc}");
    let op = &doc["paths"]["/api/v1/messages/{routing_key}"]["post"];
    let statuses: Vec<&str> = op["responses"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for s in [
        "202", "400", "401", "403", "404", "409", "413", "415", "422", "429", "503",
    ] {
        assert!(statuses.contains(&s), "status {s} missing: {statuses:?}");
    }
    let body = op["requestBody"]["content"].as_object().unwrap();
    assert!(body.contains_key("application/xml") && body.contains_key("application/json"));
    assert!(
        op["responses"]["429"]["headers"]
            .get("Retry-After")
            .is_some()
    );
    let params: Vec<&str> = op["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for p in [
        "routing_key",
        "Idempotency-Key",
        "X-Correlation-Id",
        "X-Message-Type",
    ] {
        assert!(params.contains(&p), "parameter {p}: {params:?}");
    }
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!(schemes["api_key"]["name"], "X-API-Key");
    let error = &doc["components"]["schemas"]["ApiError"]["properties"];
    for f in ["code", "message", "hint"] {
        assert!(error.get(f).is_some(), "ApiError.{f}: {error}");
    }
    assert!(
        error.get("status").is_none(),
        "the status is the HTTP status, not a field"
    );
}
