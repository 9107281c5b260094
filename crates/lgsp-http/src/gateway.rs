//! The HTTP gateway: `POST /api/v1/messages/{routing_key}` lets a sector application
//! publish an XML or JSON message with its API key, with the guarantees of AMQP: the
//! answer `202 {"message_id"}` comes only after the broker confirmed the publish to
//! `<prefix>.in`. `app_id` is the key's application, never what the request says.
//!
//! Checks, in order, each answered with `{code, message, hint}` and nothing published:
//! 401 no or unknown key, 429 the application's rate limit, 400 a routing key that is
//! not one, 403 a routing key the application may not publish, 404 a routing key no
//! route binds, 415 a content type other than XML or JSON, 413 a body over
//! `limits.max_message_bytes` (refused from `Content-Length`, or while streaming once
//! the limit is passed, never buffered whole), 400 a body that is not well-formed (the
//! decoder's error with line:column), 422 an `Idempotency-Key` reused for another body,
//! 503 the broker or store unreachable (the client may retry).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::header::{AUTHORIZATION, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use lgsp_amqp::broker::{Broker, Reconnect};
use lgsp_amqp::lapin::BasicProperties;
use lgsp_amqp::lapin::types::{AMQPValue, FieldTable};
use lgsp_amqp::publish::{PublishError, Publisher};
use lgsp_amqp::{TransportError, headers};
use lgsp_core::apps::{App, Apps};
use lgsp_core::tracking::{Event, kind};
use lgsp_mapping::decode::{self, Format, Limits};
use lgsp_store::Store;
use lgsp_store::idempotency::Claim;
use serde::Serialize;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::{ApiCode, ApiError, ApiPath, AppState};

/// What the gateway needs.
pub struct Gateway {
    pub apps: Apps,
    /// `<prefix>.in`.
    pub exchange: String,
    /// The binding key of every route: a routing key none matches is refused (404).
    pub bindings: Vec<String>,
    pub limits: Limits,
    /// The confirmed publisher while the broker is connected.
    pub publisher: watch::Receiver<Option<Publisher>>,
    /// Where idempotency keys are kept (`None`: a request with one is refused, 503).
    pub store: Option<Arc<Store>>,
    pub idempotency_window: Duration,
    pub confirm_timeout: Duration,
    /// Where an accepted message's first event goes.
    pub tracker: lgsp_core::tracking::Tracker,
    limiter: RateLimiter,
}

impl Gateway {
    pub fn new(
        config: &lgsp_core::config::Config,
        publisher: watch::Receiver<Option<Publisher>>,
        store: Option<Arc<Store>>,
    ) -> Gateway {
        Gateway {
            apps: Apps::from_config(&config.apps),
            exchange: lgsp_amqp::names::Names::new(&config.broker.prefix).input(),
            bindings: config
                .routes
                .iter()
                .map(|r| r.from.binding.clone())
                .collect(),
            limits: Limits {
                max_bytes: usize::try_from(config.limits.max_message_bytes.bytes())
                    .unwrap_or(usize::MAX),
                max_depth: config.limits.max_depth as usize,
            },
            publisher,
            store,
            idempotency_window: config.gateway.idempotency_window.get(),
            confirm_timeout: config.gateway.confirm_timeout.get(),
            tracker: lgsp_core::tracking::Tracker::off(),
            limiter: RateLimiter::default(),
        }
    }
}

/// Keep a confirmed publisher on the broker for the gateway, reconnecting (failover
/// over `broker.urls`) until `shutdown`; `tx` holds `None` while disconnected.
pub async fn keep_publisher(
    broker: Broker,
    window: u32,
    tx: watch::Sender<Option<Publisher>>,
    shutdown: CancellationToken,
) {
    let ended = broker
        .keep_connected("lgsp gateway", Reconnect::WAIT, &shutdown, |conn| {
            let (tx, shutdown) = (&tx, shutdown.clone());
            async move {
                let publisher = Publisher::open(&conn, window).await?;
                tx.send_replace(Some(publisher.clone()));
                let lost = loop {
                    tokio::select! {
                        _ = shutdown.cancelled() => break false,
                        _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                    }
                    if !publisher.is_connected() || !conn.status().connected() {
                        break true;
                    }
                };
                tx.send_replace(None);
                publisher.close().await;
                if lost {
                    return Err(TransportError::Cancelled {
                        queue: "the gateway's publishing channel".into(),
                    });
                }
                Ok::<(), TransportError>(())
            }
        })
        .await;
    tx.send_replace(None);
    if let Err(e) = ended {
        warn!("the HTTP gateway stopped publishing: {e}");
    }
}

/// A token bucket per application.
#[derive(Default)]
struct RateLimiter {
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimiter {
    /// Take one token for `app`; `Err(seconds until one is there)` when none is left.
    fn take(&self, app: &App) -> Result<(), u64> {
        let rate = f64::from(app.rate_limit.per_second.max(1));
        let burst = f64::from(app.rate_limit.burst.max(1));
        let now = Instant::now();
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (tokens, last) = buckets.entry(app.id.clone()).or_insert((burst, now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * rate).min(burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) / rate).ceil().max(1.0) as u64)
        }
    }
}

/// The answer to an accepted message: the broker confirmed it.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct Accepted {
    /// The message id lgsp gave the message (or the client's `Idempotency-Key` answer).
    message_id: String,
    /// The application the key belongs to.
    app: String,
    routing_key: String,
    /// The answer repeats an earlier request with the same `Idempotency-Key`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    idempotent_replay: bool,
}

fn error(code: ApiCode, message: String, hint: &str) -> ApiError {
    ApiError::new(code, message).with_hint(hint)
}

fn unauthorized(message: &str) -> ApiError {
    error(
        ApiCode::Unauthorized,
        message.into(),
        "send the application's key as `Authorization: Bearer KEY` or `X-API-Key: KEY`; an administrator creates one with `lgsp apps keygen APP`",
    )
}

fn broker_down(what: &str) -> ApiError {
    error(
        ApiCode::BrokerUnavailable,
        format!("the message was not accepted: {what}"),
        "nothing was published; retry later (with the same Idempotency-Key, if you sent one)",
    )
}

/// `GET /api/v1/catalog`: every event type the routes carry, its schema, publishers and
/// receivers, and per receiver the fields its agreements allow; for any application key.
pub async fn catalog(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<lgsp_mapping::catalog::Catalog>, ApiError> {
    let (Some(gw), Some(catalog)) = (state.gateway.clone(), state.catalog.clone()) else {
        return Err(error(
            ApiCode::GatewayDisabled,
            "the catalogue is served by the lgsp run process".into(),
            "ask the lgsp run process, or run `lgsp catalog`",
        ));
    };
    let key = api_key(&headers).ok_or_else(|| unauthorized("an API key is required"))?;
    gw.apps
        .identify(key)
        .ok_or_else(|| unauthorized("the API key is not known"))?;
    Ok(Json(catalog.as_ref().clone()))
}

/// The application's key from `Authorization: Bearer` or `X-API-Key`.
fn api_key(headers: &HeaderMap) -> Option<&str> {
    let bearer = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    bearer
        .or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()))
        .map(str::trim)
        .filter(|k| !k.is_empty())
}

/// A header that must be printable ASCII of at most 255 bytes when present.
fn short_header<'h>(headers: &'h HeaderMap, name: &str) -> Result<Option<&'h str>, ApiError> {
    let Some(v) = headers.get(name) else {
        return Ok(None);
    };
    match v.to_str() {
        Ok(s) if !s.trim().is_empty() && s.len() <= 255 => Ok(Some(s.trim())),
        _ => Err(error(
            ApiCode::BadHeader,
            format!("header {name} is empty, longer than 255 bytes or not printable ASCII"),
            "send a short printable value, e.g. a UUID",
        )),
    }
}

fn check_routing_key(key: &str) -> Result<(), ApiError> {
    let bad = key.is_empty()
        || key.len() > 255
        || key
            .split('.')
            .any(|w| w.is_empty() || w.contains(['*', '#']))
        || key.chars().any(|c| c.is_control() || c.is_whitespace());
    if bad {
        return Err(error(
            ApiCode::BadRoutingKey,
            format!("`{key}` is not a routing key"),
            "use dot-separated words without `*`, `#` or blanks, e.g. bizreg.enterprise.registered",
        ));
    }
    Ok(())
}

/// `POST /api/v1/messages/{routing_key}`.
#[utoipa::path(
    post,
    path = "/api/v1/messages/{routing_key}",
    tag = "gateway",
    summary = "Publish one message of a sector application",
    description = "Publishes the body (XML or JSON) to the bus under the routing key, with \
        the application of the key as its app_id, and answers 202 only after the broker \
        confirmed it. Every refusal publishes nothing.",
    params(
        ("routing_key" = String, Path, description = "The message type, e.g. bizreg.enterprise.registered; the application must be allowed to publish it"),
        ("Idempotency-Key" = Option<String>, Header, description = "The same key from the same application within gateway.idempotency_window publishes once and answers the first message id again"),
        ("X-Correlation-Id" = Option<String>, Header, description = "Carried as the message's correlation id"),
        ("X-Message-Type" = Option<String>, Header, description = "The message type when it differs from the routing key"),
    ),
    request_body(
        description = "The sector system's own payload, at most limits.max_message_bytes",
        content(
            (String = "application/xml"),
            (String = "application/json"),
        ),
    ),
    responses(
        (status = 202, description = "Published and confirmed by the broker", body = Accepted),
        (status = 400, description = "Not well-formed: the decoder's error with line:column", body = ApiError),
        (status = 401, description = "No key, or a key of no application", body = ApiError),
        (status = 403, description = "The application may not publish this routing key", body = ApiError),
        (status = 404, description = "No route binds the routing key", body = ApiError),
        (status = 413, description = "Over limits.max_message_bytes (refused while reading)", body = ApiError),
        (status = 415, description = "A content type other than XML or JSON", body = ApiError),
        (status = 409, description = "The first request with this Idempotency-Key still waits for its confirm", body = ApiError),
        (status = 422, description = "The Idempotency-Key was used by this application for another body", body = ApiError),
        (status = 429, description = "Over the application's rate limit", body = ApiError,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "The broker is down or did not confirm: retry", body = ApiError),
    ),
    security(("bearer" = []), ("api_key" = [])),
)]
pub(crate) async fn publish(
    State(state): State<AppState>,
    ApiPath(routing_key): ApiPath<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let mut refusal = match accept(&state, &routing_key, &headers, body).await {
        Ok(a) => return (StatusCode::ACCEPTED, Json(a)).into_response(),
        Err(Refused::Limited(e, secs)) => {
            let mut r = e.into_response();
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                r.headers_mut().insert(RETRY_AFTER, v);
            }
            r
        }
        Err(Refused::Api(e)) => e.into_response(),
    };
    // Most refusals come before the body was read. The server then drops the
    // connection instead of reading the rest, so a client that kept it for its next
    // request would see that request fail: say so.
    refusal
        .headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("close"));
    refusal
}

enum Refused {
    Api(ApiError),
    Limited(ApiError, u64),
}

impl From<ApiError> for Refused {
    fn from(e: ApiError) -> Self {
        Refused::Api(e)
    }
}

async fn accept(
    state: &AppState,
    routing_key: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<Accepted, Refused> {
    let gw = state.gateway.clone().ok_or_else(|| {
        error(
            ApiCode::GatewayDisabled,
            "the HTTP gateway does not run in this process".into(),
            "publish to the lgsp run process",
        )
    })?;
    let key = api_key(headers).ok_or_else(|| unauthorized("an API key is required"))?;
    let app = gw
        .apps
        .identify(key)
        .ok_or_else(|| unauthorized("the API key is not known"))?;
    if let Err(secs) = gw.limiter.take(app) {
        return Err(Refused::Limited(
            error(
                ApiCode::RateLimited,
                format!(
                    "application `{}` is over its rate limit ({} requests/s, bursts of {})",
                    app.id, app.rate_limit.per_second, app.rate_limit.burst
                ),
                "wait for the number of seconds in Retry-After, then retry",
            ),
            secs,
        ));
    }
    check_routing_key(routing_key)?;
    if !app.may_publish(routing_key) {
        return Err(error(
            ApiCode::Forbidden,
            format!(
                "application `{}` may not publish `{routing_key}` (it may publish: {})",
                app.id,
                app.publish_list()
            ),
            "ask the bus administrator to add the key to apps.<id>.publish",
        )
        .into());
    }
    if !gw
        .bindings
        .iter()
        .any(|b| lgsp_core::topic::matches(b, routing_key))
    {
        return Err(error(
            ApiCode::NoRoute,
            format!("no route of this bus takes `{routing_key}`"),
            "check the routing key against the bus's routes (lgsp routes, or the service catalogue)",
        )
        .into());
    }
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let format = Format::from_content_type(content_type).ok_or_else(|| {
        error(
            ApiCode::UnsupportedMediaType,
            if content_type.is_empty() {
                "no Content-Type was sent".to_owned()
            } else {
                format!("Content-Type `{content_type}` is neither XML nor JSON")
            },
            "send Content-Type: application/xml or application/json",
        )
    })?;
    let idempotency_key = short_header(headers, "idempotency-key")?;
    let correlation_id = short_header(headers, "x-correlation-id")?;
    let message_type = short_header(headers, "x-message-type")?;
    let traceparent = short_header(headers, "traceparent")?;
    let body = read_limited(headers, body, gw.limits.max_bytes).await?;
    if let Some(decode::DecodeError::ContentTypeMismatch { found, .. }) =
        decode::content_type_mismatch(content_type, &body)
    {
        return Err(error(
            ApiCode::ContentTypeMismatch,
            format!("Content-Type `{content_type}` says {format}, but the body is {found}"),
            "send the Content-Type of the body's format (application/xml or application/json); nothing was published",
        )
        .into());
    }
    if let Err(e) = decode::check(format, &body, &gw.limits) {
        let at = e
            .position()
            .map(|(l, c)| format!(" at line {l}, column {c}"))
            .unwrap_or_default();
        return Err(error(
            ApiCode::NotWellFormed,
            format!("the body is not well-formed {format}{at}: {e}"),
            "fix the document; nothing was published",
        )
        .into());
    }
    let message_id = uuid::Uuid::now_v7().to_string();
    let mut props = BasicProperties::default()
        .with_message_id(message_id.as_str().into())
        .with_app_id(app.id.as_str().into())
        .with_content_type(
            match format {
                Format::Xml => "application/xml",
                Format::Json => "application/json",
            }
            .into(),
        )
        .with_type(message_type.unwrap_or(routing_key).into())
        .with_timestamp(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        );
    if let Some(c) = correlation_id {
        props = props.with_correlation_id(c.into());
    }
    if let Some(t) = traceparent {
        let mut table = FieldTable::default();
        table.insert(
            headers::TRACEPARENT.into(),
            AMQPValue::LongString(t.as_bytes().to_vec().into()),
        );
        props = props.with_headers(table);
    }
    let Some(idem) = idempotency_key else {
        publish_confirmed(&gw, routing_key, &body, props).await?;
        debug!(message_id, app = %app.id, routing_key, "accepted over HTTP");
        return Ok(Accepted {
            message_id,
            app: app.id.clone(),
            routing_key: routing_key.to_owned(),
            idempotent_replay: false,
        });
    };
    let store = gw
        .store
        .clone()
        .filter(|s| s.is_migrated())
        .ok_or_else(|| {
            error(
                ApiCode::StoreUnavailable,
                "idempotency keys are kept in the store, which is not ready".into(),
                "retry later, or send the request without Idempotency-Key",
            )
        })?;
    let body_hash = lgsp_core::apps::hex(&lgsp_core::apps::sha256(&body));
    let window_ms = i64::try_from(gw.idempotency_window.as_millis()).unwrap_or(i64::MAX);
    let deadline = Instant::now() + gw.confirm_timeout + Duration::from_secs(1);
    loop {
        let claim = store
            .claim_idempotency(&app.id, idem, &message_id, &body_hash, window_ms)
            .await
            .map_err(|e| {
                warn!(error = %e, "gateway: cannot keep an idempotency key");
                error(
                    ApiCode::StoreUnavailable,
                    "the store that keeps idempotency keys is unreachable".into(),
                    "nothing was published; retry later with the same Idempotency-Key",
                )
            })?;
        match claim {
            Claim::New => break,
            Claim::Taken {
                same_body: false, ..
            } => {
                return Err(error(
                    ApiCode::IdempotencyKeyReused,
                    format!(
                        "Idempotency-Key `{idem}` was already used by application `{}` for another body",
                        app.id
                    ),
                    "use a new key for a new message",
                )
                .into());
            }
            Claim::Taken {
                message_id: first,
                confirmed: true,
                ..
            } => {
                return Ok(Accepted {
                    message_id: first,
                    app: app.id.clone(),
                    routing_key: routing_key.to_owned(),
                    idempotent_replay: true,
                });
            }
            Claim::Taken { .. } if Instant::now() > deadline => {
                return Err(error(
                    ApiCode::IdempotencyInProgress,
                    format!("a request with Idempotency-Key `{idem}` is still being published"),
                    "retry in a few seconds with the same key",
                )
                .into());
            }
            // Another request holds the key and has not been confirmed yet: wait for it
            // (its confirm, or its release when its publish failed).
            Claim::Taken { .. } => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    if let Err(e) = publish_confirmed(&gw, routing_key, &body, props).await {
        if let Err(se) = store.release_idempotency(&app.id, idem, &message_id).await {
            warn!(error = %se, "gateway: cannot release an idempotency key; it frees itself after the window");
        }
        return Err(e.into());
    }
    if let Err(e) = store.confirm_idempotency(&app.id, idem, &message_id).await {
        // Published and confirmed: the answer is 202 even so; a repeat will wait, then
        // answer 409, until the window ends.
        warn!(error = %e, message_id, "gateway: published, but the idempotency key could not be marked confirmed");
    }
    Ok(Accepted {
        message_id,
        app: app.id.clone(),
        routing_key: routing_key.to_owned(),
        idempotent_replay: false,
    })
}

fn too_large(max: usize) -> ApiError {
    error(
        ApiCode::PayloadTooLarge,
        format!("the body is larger than limits.max_message_bytes ({max} bytes)"),
        "send a smaller document, or split a batch",
    )
}

/// The body, refused as soon as it is known to be over `max` bytes: from
/// `Content-Length` before reading, else while streaming.
async fn read_limited(headers: &HeaderMap, body: Body, max: usize) -> Result<Vec<u8>, ApiError> {
    if let Some(n) = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && n > max as u64
    {
        return Err(too_large(max));
    }
    match Limited::new(body, max).collect().await {
        Ok(c) => Ok(c.to_bytes().to_vec()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(too_large(max)),
        Err(e) => Err(error(
            ApiCode::BadBody,
            format!("the body could not be read: {e}"),
            "send the whole document again",
        )),
    }
}

async fn publish_confirmed(
    gw: &Gateway,
    routing_key: &str,
    body: &[u8],
    props: BasicProperties,
) -> Result<(), ApiError> {
    let publisher = gw
        .publisher
        .borrow()
        .clone()
        .ok_or_else(|| broker_down("the broker is not connected"))?;
    // Taken before the publish: the router may receive it before the confirm comes.
    let accepted = gw.tracker.is_on().then(|| {
        let id = props.message_id().as_ref().map_or("", |s| s.as_str());
        let app = props.app_id().as_ref().map_or("", |s| s.as_str());
        Event::now(id, kind::ACCEPTED)
            .detail(format!("over HTTP from app {app}, key {routing_key}"))
    });
    let confirmed = tokio::time::timeout(gw.confirm_timeout, async {
        publisher
            .publish(&gw.exchange, routing_key, body, props)
            .await?
            .wait()
            .await
    })
    .await;
    match confirmed {
        Ok(Ok(())) => {
            if let Some(e) = accepted {
                gw.tracker.record(e);
            }
            Ok(())
        }
        Ok(Err(e @ PublishError::Nacked { .. })) => Err(broker_down(&e.to_string())),
        Ok(Err(e)) => {
            warn!(error = %e, "gateway: publish failed");
            Err(broker_down(&e.to_string()))
        }
        Err(_) => Err(broker_down(&format!(
            "the broker did not confirm within {:?}",
            gw.confirm_timeout
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routing_keys_with_wildcards_blanks_or_empty_words_are_refused() {
        assert!(check_routing_key("bizreg.enterprise.registered").is_ok());
        for bad in [
            "",
            "a..b",
            ".a",
            "a.",
            "a.*",
            "a.#",
            "a b",
            &"x".repeat(256),
        ] {
            assert_eq!(check_routing_key(bad).unwrap_err().status(), 400, "{bad:?}");
        }
    }

    #[test]
    fn the_rate_limit_is_a_token_bucket_per_app() {
        let mut m = std::collections::BTreeMap::new();
        m.insert(
            "a".to_owned(),
            lgsp_core::config::AppConfig {
                rate_limit: lgsp_core::config::RateLimitConfig {
                    per_second: 1,
                    burst: 3,
                },
                ..Default::default()
            },
        );
        m.insert("b".to_owned(), lgsp_core::config::AppConfig::default());
        let apps = Apps::from_config(&m);
        let (a, b) = (apps.get("a").unwrap(), apps.get("b").unwrap());
        let l = RateLimiter::default();
        for _ in 0..3 {
            assert!(l.take(a).is_ok());
        }
        assert_eq!(l.take(a), Err(1), "the burst is spent");
        assert!(l.take(b).is_ok(), "another app has its own bucket");
    }

    #[test]
    fn a_key_is_read_from_bearer_or_x_api_key() {
        let mut h = HeaderMap::new();
        assert_eq!(api_key(&h), None);
        h.insert("x-api-key", HeaderValue::from_static(" k1 "));
        assert_eq!(api_key(&h), Some("k1"));
        h.insert(AUTHORIZATION, HeaderValue::from_static("Bearer k2"));
        assert_eq!(api_key(&h), Some("k2"));
    }
}
