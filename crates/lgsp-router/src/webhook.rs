//! Webhook delivery: what the router mapped for a webhook target waits in that target's
//! own queue (`<p>.webhook.<route>.<name>`); one consumer per target, with a prefetch of
//! its `concurrency`, POSTs each message and settles it as the input rules say:
//!
//! - 2xx: delivered, acked;
//! - 408, 429, 5xx, a connection error or the timeout: transient, a delayed retry through
//!   `<p>.retry.<delay>` back into the target's queue (`Retry-After` honoured, rounded up
//!   to a configured delay), until the route's attempts are spent;
//! - any other status: permanent, a failure record (kind `delivery`, code
//!   `webhook.status.<status>`) with the status and the first 2 KiB of the answer;
//!   replaying it puts the message back into the target's queue.
//!
//! The retry or the record is confirmed before the message is acked. A hung receiver
//! holds only its own target's `concurrency` deliveries, each for at most `timeout`; the
//! router and every other target go on.
//!
//! Each request carries `Idempotency-Key: <message id>` (the same id the AMQP receivers
//! get), `X-Correlation-Id`, `traceparent` when the input had one, and with a secret
//! `X-LGSP-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "t.message_id.body")>`.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use hmac::{Hmac, Mac};
use lgsp_amqp::headers;
use lgsp_amqp::inbound::Inbound;
use lgsp_amqp::publish::{Confirm, Publish};
use lgsp_core::config::{Secret, SecretUrl};
use lgsp_core::metrics::{RouteLabel, TargetLabels};
use lgsp_core::tracking::{self, Event, kind};
use sha2::Sha256;
use tracing::{debug, warn};

use crate::Shared;
use crate::decide::{Failure, Retry};
use crate::message;
use crate::settle::Ticket;

/// The most of a receiver's answer kept in a failure record.
const EXCERPT_BYTES: usize = 2048;

/// One webhook target, resolved at build time.
#[derive(Debug)]
pub(crate) struct Endpoint {
    /// `<route>/webhook:<name>`: the target id, and the routing key of its queue.
    pub id: String,
    pub route: String,
    pub queue: String,
    pub url: SecretUrl,
    pub timeout: Duration,
    pub headers: Vec<(String, String)>,
    pub secret: Option<Secret>,
    pub concurrency: u16,
    /// The route's retry policy: tries in all, waits between them.
    pub attempts: u32,
    pub delays: Vec<Duration>,
}

/// What the receiver made of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    Delivered,
    /// Worth a later try; `retry_after` as the receiver asked.
    Transient {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// It will refuse it again: a failure record.
    Permanent {
        code: String,
        message: String,
    },
}

/// What to do with the message next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Next {
    Ack,
    Retry { delay: Duration, reason: String },
    Fail { code: String, message: String },
}

/// The signature header's value for a body sent at `t` (unix seconds).
pub fn signature(secret: &[u8], t: u64, message_id: &str, body: &[u8]) -> String {
    // HMAC accepts a key of any length.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(message_id.as_bytes());
    mac.update(b".");
    mac.update(body);
    let bytes = mac.finalize().into_bytes();
    let mut hex = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        hex.push_str(&format!("{b:02x}"));
    }
    format!("t={t},v1={hex}")
}

/// `Retry-After` in seconds or as an HTTP date, from `now`.
pub(crate) fn retry_after(value: &str, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let wait = at.with_timezone(&chrono::Utc) - now;
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

/// What a status means (`excerpt`: the start of the answer's body).
pub(crate) fn classify(
    status: u16,
    retry_after: Option<Duration>,
    url: &str,
    excerpt: &str,
) -> Outcome {
    let answered = || {
        let reason = http_reason(status);
        if excerpt.is_empty() {
            format!("POST {url} answered {status} {reason}")
        } else {
            format!("POST {url} answered {status} {reason}: {excerpt}")
        }
    };
    match status {
        200..=299 => Outcome::Delivered,
        408 | 429 | 500..=599 => Outcome::Transient {
            reason: answered(),
            retry_after,
        },
        _ => Outcome::Permanent {
            code: format!("webhook.status.{status}"),
            message: format!(
                "{}; the receiver refuses this message: fix the receiver or the route's mapping, then replay it",
                answered()
            ),
        },
    }
}

fn http_reason(status: u16) -> &'static str {
    reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("")
}

/// The next step for a message tried for the `attempt`-th time (0 = first).
pub(crate) fn plan(ep: &Endpoint, attempt: u32, outcome: Outcome) -> Next {
    match outcome {
        Outcome::Delivered => Next::Ack,
        Outcome::Permanent { code, message } => Next::Fail { code, message },
        Outcome::Transient {
            reason,
            retry_after,
        } if attempt + 1 < ep.attempts => Next::Retry {
            delay: delay(&ep.delays, attempt, retry_after),
            reason,
        },
        Outcome::Transient { reason, .. } => Next::Fail {
            code: "delivery.attempts_exhausted".into(),
            message: format!(
                "webhook {}: {reason} (after {} attempts); replay it once the receiver is back",
                ep.id,
                attempt + 1
            ),
        },
    }
}

/// The route's wait before the next try, or, when the receiver asked for longer, the
/// shortest configured delay that is long enough (the longest one if none is).
fn delay(delays: &[Duration], attempt: u32, asked: Option<Duration>) -> Duration {
    let base = delays
        .get(attempt as usize)
        .or(delays.last())
        .copied()
        .unwrap_or(Duration::from_secs(1));
    match asked {
        Some(a) if a > base => {
            let mut sorted = delays.to_vec();
            sorted.sort();
            sorted
                .iter()
                .copied()
                .find(|d| *d >= a)
                .or(sorted.last().copied())
                .unwrap_or(base)
        }
        _ => base,
    }
}

/// The HTTP client of one endpoint: its timeout for the whole exchange.
pub(crate) fn client(ep: &Endpoint) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .timeout(ep.timeout)
        .connect_timeout(ep.timeout.min(Duration::from_secs(5)))
        .user_agent(concat!("lgsp/", env!("CARGO_PKG_VERSION")))
        .pool_max_idle_per_host(usize::from(ep.concurrency))
        .build()
}

/// POST one message: what it means, and the status (0: no answer).
pub(crate) async fn post(
    client: &reqwest::Client,
    ep: &Endpoint,
    input: &Inbound,
) -> (Outcome, u16) {
    let env = &input.envelope;
    let url = ep.url.redacted();
    let content_type = env.content_type.as_deref().unwrap_or("application/json");
    let mut req = client
        .post(ep.url.expose())
        .header(reqwest::header::CONTENT_TYPE, content_type)
        .header("Idempotency-Key", env.message_id.as_str());
    if let Some(c) = &env.correlation_id {
        req = req.header("X-Correlation-Id", c.as_str());
    }
    if let Some(t) = &env.message_type {
        req = req.header("X-LGSP-Event", t.as_str());
    }
    if let Some(tp) = headers::text(input.properties.headers().as_ref(), headers::TRACEPARENT) {
        req = req.header("traceparent", tp);
    }
    for (k, v) in &ep.headers {
        req = req.header(k.as_str(), v.as_str());
    }
    if let Some(secret) = &ep.secret {
        let t = u64::try_from(chrono::Utc::now().timestamp()).unwrap_or(0);
        req = req.header(
            "X-LGSP-Signature",
            signature(secret.expose().as_bytes(), t, &env.message_id, &input.body),
        );
    }
    let resp = match req.body(input.body.clone()).send().await {
        Ok(r) => r,
        Err(e) => {
            let what = if e.is_timeout() {
                format!("no answer within {:?}", ep.timeout)
            } else if e.is_connect() {
                "cannot connect".to_owned()
            } else {
                "the request failed".to_owned()
            };
            let outcome = Outcome::Transient {
                reason: format!("POST {url}: {what} ({})", without_url(&e)),
                retry_after: None,
            };
            return (outcome, 0);
        }
    };
    let status = resp.status().as_u16();
    let asked = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| retry_after(v, chrono::Utc::now()));
    let excerpt = if resp.status().is_success() {
        String::new()
    } else {
        excerpt(resp).await
    };
    (classify(status, asked, &url, &excerpt), status)
}

/// reqwest's error text without the URL it names (which may carry a token).
fn without_url(e: &reqwest::Error) -> String {
    let mut inner: &dyn std::error::Error = e;
    while let Some(s) = inner.source() {
        inner = s;
    }
    inner.to_string()
}

/// The first [`EXCERPT_BYTES`] of an answer, read no further.
async fn excerpt(mut resp: reqwest::Response) -> String {
    let mut buf: Vec<u8> = Vec::new();
    while buf.len() < EXCERPT_BYTES {
        match resp.chunk().await {
            Ok(Some(c)) => buf.extend_from_slice(&c),
            _ => break,
        }
    }
    let cut = buf.len() > EXCERPT_BYTES;
    buf.truncate(EXCERPT_BYTES);
    let mut s = String::from_utf8_lossy(&buf).into_owned();
    // A cut in the middle of a character leaves a replacement character: drop it.
    if cut {
        while s.ends_with('\u{fffd}') {
            s.pop();
        }
        s.push('…');
    }
    s.trim().to_owned()
}

/// Deliver one message of `ep`'s queue and settle it, in its span (`webhook`: message
/// id, target, attempt).
pub(crate) async fn handle<P: Publish, A>(
    shared: Arc<Shared<P>>,
    client: reqwest::Client,
    ep: Arc<Endpoint>,
    ticket: Ticket<A>,
    input: Inbound,
) {
    let span = tracing::info_span!(
        "webhook",
        message_id = %input.envelope.message_id,
        target = %ep.id,
        attempt = input.attempt,
        trace_id = crate::pipeline::trace_id(&input).as_deref().unwrap_or(""),
    );
    tracing::Instrument::instrument(deliver(shared, client, ep, ticket, input), span).await
}

async fn deliver<P: Publish, A>(
    shared: Arc<Shared<P>>,
    client: reqwest::Client,
    ep: Arc<Endpoint>,
    ticket: Ticket<A>,
    input: Inbound,
) {
    let (outcome, status) = post(&client, &ep, &input).await;
    let m = &shared.metrics;
    m.webhook_response(&ep.id, status);
    let id = input.envelope.message_id.as_str();
    let next = plan(&ep, input.attempt, outcome);
    let at = tracking::now_ms();
    let pending = match &next {
        Next::Ack => {
            shared
                .stats
                .webhook_delivered
                .fetch_add(1, Ordering::Relaxed);
            m.delivered
                .get_or_create(&TargetLabels {
                    route: ep.route.clone(),
                    target: ep.id.clone(),
                })
                .inc();
            shared.tracker.with(|| {
                Event::now(id, kind::WEBHOOK_DELIVERED)
                    .route(ep.route.as_str())
                    .target(ep.id.as_str())
                    .detail(format!("HTTP {status}, attempt {}", input.attempt))
            });
            return ticket.ack();
        }
        Next::Retry { delay, reason } => {
            let r = Retry {
                targets: vec![ep.id.clone()],
                routes: vec![ep.route.clone()],
                delay: *delay,
                reason: reason.clone(),
            };
            shared
                .publisher
                .publish(
                    &shared.names.retry(*delay),
                    &ep.queue,
                    &input.body,
                    message::retry_properties(&input, &r),
                )
                .await
        }
        Next::Fail { code, message } => {
            let f = Failure {
                kind: lgsp_core::failure::FailureKind::Delivery,
                code: code.clone(),
                message: message.clone(),
                targets: vec![ep.id.clone()],
                routes: vec![ep.route.clone()],
            };
            shared
                .publisher
                .publish(
                    &shared.names.failed(),
                    &input.routing_key,
                    &input.body,
                    message::failure_properties(&input, &f),
                )
                .await
        }
    };
    let confirmed = match pending {
        Ok(p) => p.wait().await,
        Err(e) => Err(e),
    };
    if let Err(e) = confirmed {
        warn!(message_id = %id, target = %ep.id, error = %e, "could not schedule a retry or record a failure; returning the message to its queue");
        shared.stats.requeued.fetch_add(1, Ordering::Relaxed);
        return ticket.requeue();
    }
    match next {
        Next::Retry { delay, reason } => {
            // Not the reason: it may quote the receiver's answer.
            let _ = reason;
            debug!(message_id = %id, target = %ep.id, attempt = input.attempt + 1, ?delay, status, "webhook retry");
            shared.stats.retried.fetch_add(1, Ordering::Relaxed);
            shared.tracker.with(|| {
                Event::at(id, kind::RETRIED, at)
                    .route(ep.route.as_str())
                    .target(ep.id.as_str())
                    .detail(format!(
                        "{}, attempt {} in {delay:?}",
                        answer(status),
                        input.attempt + 1
                    ))
            });
            m.retried
                .get_or_create(&RouteLabel {
                    route: ep.route.clone(),
                })
                .inc();
        }
        Next::Fail { code, message } => {
            // The receiver's answer may echo the message: it is in the failure record
            // (for administrators), not in the log.
            let _ = message;
            warn!(message_id = %id, target = %ep.id, %code, "webhook delivery failed; the failure record holds the receiver's answer");
            shared.stats.failed.fetch_add(1, Ordering::Relaxed);
            m.failure(
                std::slice::from_ref(&ep.route),
                lgsp_core::failure::FailureKind::Delivery,
                &code,
            );
            shared.tracker.with(|| {
                Event::at(id, kind::FAILED, at)
                    .route(ep.route.as_str())
                    .target(ep.id.as_str())
                    .detail(format!("delivery/{code}, {}", answer(status)))
            });
        }
        Next::Ack => {}
    }
    ticket.ack();
}

/// A receiver's status for a tracking event (0: no answer).
fn answer(status: u16) -> String {
    match status {
        0 => "no answer".to_owned(),
        s => format!("HTTP {s}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(attempts: u32) -> Endpoint {
        Endpoint {
            id: "r/webhook:tax".into(),
            route: "r".into(),
            queue: "lgsp.webhook.r.tax".into(),
            url: SecretUrl::new("http://127.0.0.1:9/x"),
            timeout: Duration::from_secs(1),
            headers: Vec::new(),
            secret: None,
            concurrency: 1,
            attempts,
            delays: vec![
                Duration::from_secs(1),
                Duration::from_secs(10),
                Duration::from_secs(60),
            ],
        }
    }

    #[test]
    fn statuses_are_delivered_transient_or_permanent() {
        assert_eq!(classify(204, None, "u", ""), Outcome::Delivered);
        for s in [408, 429, 500, 502, 503, 504] {
            assert!(
                matches!(classify(s, None, "u", ""), Outcome::Transient { .. }),
                "{s}"
            );
        }
        for s in [400, 401, 403, 404, 409, 410, 413, 422] {
            match classify(s, None, "http://h/x", "bad tax code") {
                Outcome::Permanent { code, message } => {
                    assert_eq!(code, format!("webhook.status.{s}"));
                    assert!(message.contains(&format!("answered {s}")), "{message}");
                    assert!(message.contains("bad tax code"), "{message}");
                }
                other => panic!("{s}: {other:?}"),
            }
        }
    }

    #[test]
    fn retry_after_is_seconds_or_a_date_and_picks_a_configured_delay() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-12-07T10:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        assert_eq!(retry_after("5", now), Some(Duration::from_secs(5)));
        assert_eq!(
            retry_after("Mon, 07 Dec 2026 10:00:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(retry_after("soon", now), None);
        let e = ep(5);
        let next = |attempt, asked| match plan(
            &e,
            attempt,
            Outcome::Transient {
                reason: "503".into(),
                retry_after: asked,
            },
        ) {
            Next::Retry { delay, .. } => delay,
            other => panic!("{other:?}"),
        };
        assert_eq!(next(0, None), Duration::from_secs(1));
        assert_eq!(next(1, None), Duration::from_secs(10));
        assert_eq!(
            next(0, Some(Duration::from_secs(5))),
            Duration::from_secs(10)
        );
        assert_eq!(
            next(0, Some(Duration::from_secs(3600))),
            Duration::from_secs(60)
        );
        assert_eq!(
            next(2, Some(Duration::from_secs(5))),
            Duration::from_secs(60)
        );
    }

    #[test]
    fn the_last_transient_failure_is_recorded() {
        let e = ep(3);
        let t = || Outcome::Transient {
            reason: "POST u: cannot connect".into(),
            retry_after: None,
        };
        assert!(matches!(plan(&e, 1, t()), Next::Retry { .. }));
        match plan(&e, 2, t()) {
            Next::Fail { code, message } => {
                assert_eq!(code, "delivery.attempts_exhausted");
                assert!(message.contains("after 3 attempts"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }

    /// The documented check (README): HMAC-SHA256 of `t.message_id.body`, hex.
    #[test]
    fn the_signature_is_the_documented_hmac() {
        let s = signature(b"s3cret", 1_700_000_000, "m-1", b"{\"a\":1}");
        let mut mac = Hmac::<Sha256>::new_from_slice(b"s3cret").unwrap();
        mac.update(b"1700000000.m-1.{\"a\":1}");
        let hex: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(s, format!("t=1700000000,v1={hex}"));
    }
}
