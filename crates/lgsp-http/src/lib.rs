//! The HTTP side of lgsp: one [`router`] shared by the binary and the tests, one table
//! of error codes ([`error`]: every refusal is an [`ApiError`] with the body of
//! `docs/contracts.md`, `{code, message, hint}`, axum's own rejections too), `/healthz`
//! (the process is alive), `/readyz` (broker connected and topology declared, store
//! reachable), the gateway for sector applications at `/api/v1/messages/{routing_key}`
//! ([`gateway`]) and the admin API under `/admin/v1/` ([`admin`]).
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod admin;
pub mod error;
pub mod gateway;
pub mod server;
pub mod ui;

pub use error::{ApiCode, ApiError, ApiPath, ApiQuery};
pub use server::{ServeError, serve};

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;

/// What handlers can see.
#[derive(Clone, Default)]
pub struct AppState {
    /// Broker connected, topology declared, consumers running.
    pub broker_ready: Arc<AtomicBool>,
    /// The failed-message store and replay, when this process has them.
    pub admin: Option<Arc<admin::Admin>>,
    /// The store answered the ingestor's last request (`None`: no store here).
    pub store_ok: Option<Arc<AtomicBool>>,
    /// The HTTP gateway, when this process publishes for applications.
    pub gateway: Option<Arc<gateway::Gateway>>,
    /// The service catalogue (`GET /api/v1/catalog`), built from the configuration.
    pub catalog: Option<Arc<lgsp_mapping::catalog::Catalog>>,
    /// The process's metrics (`GET /metrics`).
    pub metrics: Option<Arc<lgsp_core::metrics::Metrics>>,
    /// How large a request body may be and how long it may take to arrive.
    pub body: BodyLimits,
}

/// Every request's body is read within `timeout` and refused past `max` bytes, before
/// any handler runs (the gateway then applies `limits.max_message_bytes` exactly).
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    pub max: usize,
    pub timeout: std::time::Duration,
}

impl BodyLimits {
    /// From the configuration: room for a message of `limits.max_message_bytes` written
    /// as a JSON string (an edit's body, escaped), and `http.body_timeout`.
    pub fn from_config(c: &lgsp_core::config::Config) -> BodyLimits {
        BodyLimits::new(&c.limits, &c.http)
    }

    pub fn new(
        limits: &lgsp_core::config::LimitsConfig,
        http: &lgsp_core::config::HttpConfig,
    ) -> BodyLimits {
        let max = usize::try_from(limits.max_message_bytes.0).unwrap_or(usize::MAX);
        BodyLimits {
            max: max.saturating_mul(2).saturating_add(64 * 1024),
            timeout: http.body_timeout.get(),
        }
    }
}

impl Default for BodyLimits {
    fn default() -> Self {
        BodyLimits::new(&Default::default(), &Default::default())
    }
}

/// Read the whole body under [`BodyLimits`]: 413 past the size, 408 past the time.
async fn bounded_body(
    State(s): State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    use http_body_util::{BodyExt, LengthLimitError, Limited};
    let max = s.body.max;
    let (parts, body) = req.into_parts();
    if let Some(n) = parts
        .headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && n > max as u64
    {
        return body_too_large(max).into_response();
    }
    let read = tokio::time::timeout(s.body.timeout, Limited::new(body, max).collect()).await;
    let bytes = match read {
        Ok(Ok(c)) => c.to_bytes(),
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => {
            return body_too_large(max).into_response();
        }
        Ok(Err(e)) => {
            return ApiError::new(ApiCode::BadBody, format!("the body could not be read: {e}"))
                .into_response();
        }
        Err(_) => {
            return ApiError::new(
                ApiCode::RequestTimeout,
                format!(
                    "the body did not arrive within http.body_timeout ({}s)",
                    s.body.timeout.as_secs()
                ),
            )
            .into_response();
        }
    };
    next.run(axum::extract::Request::from_parts(parts, bytes.into()))
        .await
}

fn body_too_large(max: usize) -> ApiError {
    ApiError::new(
        ApiCode::PayloadTooLarge,
        format!("the request body is larger than {max} bytes"),
    )
}

#[derive(Serialize)]
struct Ready {
    status: &'static str,
    broker: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    store: Option<&'static str>,
}

/// The HTTP routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/v1/messages/{routing_key}", post(gateway::publish))
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/catalog", get(gateway::catalog))
        .route("/ui", get(ui::to_index))
        .route("/ui/", get(ui::index))
        .route("/ui/app.js", get(ui::script))
        .route("/ui/app.css", get(ui::style))
        .route("/admin/v1/me", get(admin::me))
        .route(
            "/admin/v1/messages/{message_id}",
            get(admin::messages::message),
        )
        .route("/admin/v1/failed", get(admin::failed::list))
        .route("/admin/v1/failed/{id}", get(admin::failed::show))
        .route("/admin/v1/failed/{id}/replay", post(admin::failed::replay))
        .route(
            "/admin/v1/failed/{id}/discard",
            post(admin::failed::discard),
        )
        .route("/admin/v1/groups", get(admin::groups::groups))
        .route("/admin/v1/bulk-replay", post(admin::groups::bulk_replay))
        .route("/admin/v1/requests", get(admin::requests::requests))
        .route(
            "/admin/v1/requests/{id}/approve",
            post(admin::requests::approve),
        )
        .route("/admin/v1/audit", get(admin::audit::audit))
        .route("/admin/v1/audit/head", get(admin::audit::audit_head))
        .route("/admin/v1/audit/verify", get(admin::audit::audit_verify))
        .route("/admin/v1/audit/notes", post(admin::audit::note))
        .fallback(error::no_such_path)
        .method_not_allowed_fallback(error::no_such_method)
        .layer(axum::extract::DefaultBodyLimit::disable())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            bounded_body,
        ))
        .with_state(state)
}

/// The OpenAPI 3.1 document of the gateway, derived from its handler and types.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "lgsp gateway",
        description = "Sector applications publish their messages to the lgsp bus over HTTP."
    ),
    paths(gateway::publish),
    components(schemas(gateway::Accepted, ApiError)),
    modifiers(&KeySchemes)
)]
pub struct GatewayApi;

/// The two ways to give an application's key.
struct KeySchemes;

impl utoipa::Modify for KeySchemes {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{
            ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme,
        };
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))),
        );
    }
}

async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(<GatewayApi as utoipa::OpenApi>::openapi())
}

async fn readyz(State(s): State<AppState>) -> Result<Json<Ready>, ApiError> {
    if !s.broker_ready.load(Ordering::SeqCst) {
        return Err(ApiError::not_ready("the broker connection or topology"));
    }
    let store = match &s.store_ok {
        None => None,
        Some(ok) if ok.load(Ordering::SeqCst) => Some("ready"),
        Some(_) => return Err(ApiError::not_ready("the failed-message store")),
    };
    Ok(Json(Ready {
        status: "ready",
        broker: "ready",
        store,
    }))
}

/// `GET /metrics`: every metric in the OpenMetrics text format, the gauges read now
/// (broker, store, records in the store by status).
async fn metrics(State(s): State<AppState>) -> Response {
    let Some(m) = s.metrics.clone() else {
        return (StatusCode::NOT_FOUND, "no metrics in this process\n").into_response();
    };
    m.broker_connected
        .set(i64::from(s.broker_ready.load(Ordering::SeqCst)));
    if let Some(admin) = &s.admin {
        let counted = tokio::time::timeout(
            std::time::Duration::from_secs(2),
            admin.store.count_by_status(),
        )
        .await;
        match counted {
            Ok(Ok(rows)) => {
                m.store_up.set(1);
                for status in ["failed", "replayed", "discarded"] {
                    let n = rows
                        .iter()
                        .find(|(s, _)| s == status)
                        .map_or(0, |(_, n)| *n);
                    m.stored
                        .get_or_create(&lgsp_core::metrics::StatusLabel {
                            status: status.to_owned(),
                        })
                        .set(n);
                }
            }
            _ => {
                m.store_up.set(0);
            }
        }
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        m.render(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    use super::*;

    async fn get_status(state: &AppState, path: &str) -> (u16, String) {
        let resp = router(state.clone())
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let body = axum::body::to_bytes(resp.into_body(), 1 << 16)
            .await
            .unwrap();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn health_and_readiness() {
        let state = AppState::default();
        assert_eq!(get_status(&state, "/healthz").await.0, 200);
        let (status, body) = get_status(&state, "/readyz").await;
        assert_eq!(status, 503);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["code"], "not_ready");
        assert!(v["hint"].as_str().is_some_and(|h| !h.is_empty()));
        state.broker_ready.store(true, Ordering::SeqCst);
        assert_eq!(get_status(&state, "/readyz").await.0, 200);
    }
}
