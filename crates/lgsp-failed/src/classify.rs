//! From a message taken off `<p>.failed` or `<p>.unrouted` to a [`NewFailure`].
//!
//! Three shapes arrive:
//! - a failure recorded by the router: `lgsp-failure-id` and the `lgsp-error-*` headers;
//! - a message dead-lettered by the broker (e.g. past the route queue's delivery limit):
//!   no lgsp failure headers, an `x-death` header: kind `poison`;
//! - a message from `<p>.unrouted`: kind `unroutable`.
//!
//! A router failure whose `lgsp-error-kind` is missing or names no kind this version
//! knows (a newer lgsp's, during an upgrade) is kept as [`FailureKind::FALLBACK`]; the
//! text it had is said at the start of the error and stands in for a missing code.
//!
//! The last two have no failure id; one is derived from what identifies that failure
//! (message id, routing key, body hash, and for a dead-letter its queue, reason and
//! time), so that a redelivery of the same message is stored once.

use lapin::BasicProperties;
use lapin::types::{AMQPValue, FieldTable};
use lgsp_amqp::headers;
use lgsp_amqp::names::Names;
use lgsp_amqp::routes::{self, RouteTable};
use lgsp_core::failure::FailureKind;
use sha2::{Digest, Sha256};

use crate::fields;
use lgsp_store::record::{NewFailure, now_ms, parse_time};

/// What the ingestor received.
#[derive(Debug, Clone, Copy)]
pub struct Incoming<'a> {
    /// The queue it was consumed from.
    pub queue: &'a str,
    pub exchange: &'a str,
    pub routing_key: &'a str,
    pub properties: &'a BasicProperties,
    pub body: &'a [u8],
}

/// The record to store for `m`. `routes` says which routes a message dead-lettered from
/// an input queue was meant for.
pub fn classify(names: &Names, routes: &RouteTable, m: Incoming<'_>) -> NewFailure {
    let h = m.properties.headers().as_ref();
    let message_id = match m.properties.message_id() {
        Some(id) if !id.as_str().is_empty() => id.as_str().to_owned(),
        // The same derivation as the router's, so both name the message alike.
        _ => uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, m.body).to_string(),
    };
    let mut f = NewFailure {
        failure_id: String::new(),
        message_id,
        route: None,
        targets: Vec::new(),
        original_exchange: m.exchange.to_owned(),
        original_routing_key: m.routing_key.to_owned(),
        source_queue: m.queue.to_owned(),
        properties: fields::properties_to_json(m.properties),
        headers: h
            .map(fields::table_to_json)
            .unwrap_or_else(|| serde_json::json!({})),
        body: m.body.to_vec(),
        content_type: m
            .properties
            .content_type()
            .as_ref()
            .map(|s| s.as_str().to_owned()),
        error_kind: FailureKind::FALLBACK,
        error_code: String::new(),
        error: String::new(),
        attempts: i64::from(headers::attempt(h)),
        failed_at: now_ms(),
    };
    let text = |name: &str| headers::text(h, name).filter(|s| !s.is_empty());

    if m.queue == names.unrouted() {
        f.error_kind = FailureKind::Unroutable;
        f.error_code = "unroutable.no_binding".into();
        f.error = format!(
            "nothing on exchange `{}` is bound to routing key `{}`; add a route whose binding matches, then replay",
            m.exchange, m.routing_key
        );
        f.failure_id = derive(&f, "unrouted");
        return f;
    }

    f.targets = text(headers::TARGETS)
        .map(|t| routes::list(&t))
        .unwrap_or_default();
    if let Some(id) = text(headers::FAILURE_ID) {
        f.failure_id = id;
        f.route = text(headers::ROUTE);
        if let Some(x) = text(headers::ORIGINAL_EXCHANGE) {
            f.original_exchange = x;
        }
        if let Some(x) = text(headers::ORIGINAL_ROUTING_KEY) {
            f.original_routing_key = x;
        }
        let kind = text(headers::ERROR_KIND);
        let (error_kind, unknown) = kind.as_deref().map_or(
            (FailureKind::FALLBACK, None),
            FailureKind::parse_or_fallback,
        );
        f.error_kind = error_kind;
        f.error_code = text(headers::ERROR_CODE)
            .or(kind)
            .unwrap_or_else(|| error_kind.as_str().to_owned());
        f.error = text(headers::ERROR).unwrap_or_default();
        if let Some(u) = unknown {
            f.error = format!("{}: {}", u.note(), f.error);
        }
        if let Some(t) = text(headers::FAILED_AT).and_then(|t| parse_time(&t)) {
            f.failed_at = t;
        }
        return f;
    }

    f.error_kind = FailureKind::Poison;
    match death(h) {
        Some(d) => {
            // A retry came back through the default exchange: its headers keep where it
            // was first published.
            if let Some(x) = text(headers::ORIGINAL_EXCHANGE).or(d.exchange.clone()) {
                f.original_exchange = x;
            }
            if let Some(x) = text(headers::ORIGINAL_ROUTING_KEY).or(d.routing_key.clone()) {
                f.original_routing_key = x;
            }
            // The routes it was meant for: those of the targets a retry still had to
            // reach, or every route of the queue's adapter that binds its key.
            let mut missed: Vec<String> = f
                .targets
                .iter()
                .filter_map(|t| routes::split(t).0.map(str::to_owned))
                .collect();
            if missed.is_empty() {
                missed = routes.routes_of_queue(names, &d.queue, &f.original_routing_key);
            }
            missed.sort();
            missed.dedup();
            f.route = (!missed.is_empty()).then(|| missed.join(","));
            let deliveries = h
                .and_then(|t| t.inner().get("x-delivery-count"))
                .and_then(headers::value_text)
                .and_then(|s| s.parse::<i64>().ok());
            f.attempts = deliveries.map_or(d.count, |n| n + 1);
            f.error_code = format!("poison.{}", d.reason.replace(' ', "_"));
            f.error = format!(
                "dead-lettered by the broker from queue {} (reason {}{}); the message was never settled by lgsp, e.g. it crashed the process each time",
                d.queue,
                d.reason,
                deliveries.map_or(String::new(), |n| format!(", {} deliveries", n + 1)),
            );
            if let Some(t) = d.time {
                f.failed_at = t.saturating_mul(1000);
            }
            f.failure_id = derive(
                &f,
                &format!(
                    "dead-letter\n{}\n{}\n{}\n{:?}",
                    d.queue, d.reason, d.count, d.time
                ),
            );
        }
        None => {
            f.error_code = "poison.unknown".into();
            f.error = format!(
                "arrived on {} without lgsp failure headers or x-death; something published it there directly",
                m.queue
            );
            f.failure_id = derive(&f, "unknown");
        }
    }
    f
}

/// What `x-death` (or the `x-first-death-*` headers) says about a dead-lettering.
#[derive(Debug, Default)]
struct Death {
    queue: String,
    reason: String,
    count: i64,
    time: Option<i64>,
    exchange: Option<String>,
    routing_key: Option<String>,
}

fn death(h: Option<&FieldTable>) -> Option<Death> {
    let h = h?;
    let entry = match h.inner().get("x-death") {
        Some(AMQPValue::FieldArray(a)) => a.as_slice().iter().find_map(|v| match v {
            AMQPValue::FieldTable(t) => Some(t.clone()),
            _ => None,
        }),
        _ => None,
    };
    if let Some(t) = entry {
        let get = |k: &str| t.inner().get(k);
        let txt = |k: &str| get(k).and_then(headers::value_text);
        return Some(Death {
            queue: txt("queue").unwrap_or_default(),
            reason: txt("reason").unwrap_or_else(|| "unknown".into()),
            count: txt("count").and_then(|s| s.parse().ok()).unwrap_or(1),
            time: match get("time") {
                Some(AMQPValue::Timestamp(t)) => i64::try_from(*t).ok(),
                _ => None,
            },
            exchange: txt("exchange"),
            routing_key: match get("routing-keys") {
                Some(AMQPValue::FieldArray(a)) => {
                    a.as_slice().first().and_then(headers::value_text)
                }
                _ => None,
            },
        });
    }
    let reason = headers::text(Some(h), "x-first-death-reason")?;
    Some(Death {
        queue: headers::text(Some(h), "x-first-death-queue").unwrap_or_default(),
        reason,
        count: 1,
        time: None,
        exchange: headers::text(Some(h), "x-first-death-exchange"),
        routing_key: None,
    })
}

fn derive(f: &NewFailure, extra: &str) -> String {
    let body = Sha256::digest(&f.body);
    let mut key = format!(
        "lgsp-failure\n{}\n{}\n{}\n",
        f.message_id, f.original_exchange, f.original_routing_key
    );
    for b in body {
        key.push_str(&format!("{b:02x}"));
    }
    key.push('\n');
    key.push_str(extra);
    uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, key.as_bytes()).to_string()
}

#[cfg(test)]
mod tests {
    use lapin::types::{FieldArray, ShortString};

    use super::*;

    use lgsp_amqp::routes::RouteEntry;

    fn table() -> RouteTable {
        let e = |name: &str, binding: &str| RouteEntry {
            name: name.into(),
            binding: binding.into(),
            adapter: "bizreg".into(),
        };
        RouteTable::new(vec![
            e("bizreg-canonical", "bizreg.#"),
            e("bizreg-registered", "bizreg.enterprise.registered"),
        ])
    }

    fn props(h: FieldTable) -> BasicProperties {
        BasicProperties::default()
            .with_message_id("m-1".into())
            .with_headers(h)
    }

    #[test]
    fn a_router_failure_keeps_its_headers() {
        let mut h = FieldTable::default();
        headers::set(&mut h, headers::FAILURE_ID, "f-1");
        headers::set(&mut h, headers::ROUTE, "bizreg");
        headers::set(&mut h, headers::TARGETS, "exchange:lgsp.out,app:tax");
        headers::set(&mut h, headers::ERROR_KIND, "mapping");
        headers::set(&mut h, headers::ERROR_CODE, "mapping.required");
        headers::set(&mut h, headers::ERROR, "field x: required");
        headers::set(&mut h, headers::FAILED_AT, "2025-01-02T03:04:05.006Z");
        headers::set(&mut h, headers::ORIGINAL_EXCHANGE, "lgsp.in");
        headers::set(&mut h, headers::ORIGINAL_ROUTING_KEY, "bizreg.a.b");
        headers::set_int(&mut h, headers::ATTEMPT, 2);
        let p = props(h);
        let f = classify(
            &Names::new("lgsp"),
            &table(),
            Incoming {
                queue: "lgsp.failed",
                exchange: "lgsp.failed",
                routing_key: "bizreg.a.b",
                properties: &p,
                body: b"<x/>",
            },
        );
        assert_eq!(f.failure_id, "f-1");
        assert_eq!(f.route.as_deref(), Some("bizreg"));
        assert_eq!(f.targets, ["exchange:lgsp.out", "app:tax"]);
        assert_eq!(f.error_kind, FailureKind::Mapping);
        assert_eq!(f.error, "field x: required");
        assert_eq!(f.attempts, 2);
        assert_eq!(f.original_exchange, "lgsp.in");
        assert_eq!(f.failed_at, 1_735_787_045_006);
    }

    #[test]
    fn a_broker_dead_letter_is_poison_and_its_id_is_stable() {
        let mut d = FieldTable::default();
        d.insert(
            ShortString::from("queue"),
            AMQPValue::LongString("lgsp.in.bizreg".into()),
        );
        d.insert(
            ShortString::from("reason"),
            AMQPValue::LongString("delivery_limit".into()),
        );
        d.insert(ShortString::from("count"), AMQPValue::LongLongInt(1));
        d.insert(
            ShortString::from("time"),
            AMQPValue::Timestamp(1_700_000_000),
        );
        d.insert(
            ShortString::from("exchange"),
            AMQPValue::LongString("lgsp.in".into()),
        );
        d.insert(
            ShortString::from("routing-keys"),
            AMQPValue::FieldArray(FieldArray::from(vec![AMQPValue::LongString(
                "bizreg.enterprise.registered".into(),
            )])),
        );
        let mut h = FieldTable::default();
        h.insert(
            "x-death".into(),
            AMQPValue::FieldArray(FieldArray::from(vec![AMQPValue::FieldTable(d)])),
        );
        h.insert("x-delivery-count".into(), AMQPValue::LongLongInt(3));
        let p = props(h);
        let m = Incoming {
            queue: "lgsp.failed",
            exchange: "lgsp.failed",
            routing_key: "bizreg.enterprise.registered",
            properties: &p,
            body: b"{}",
        };
        let f = classify(&Names::new("lgsp"), &table(), m);
        assert_eq!(f.error_kind, FailureKind::Poison);
        assert_eq!(f.error_code, "poison.delivery_limit");
        // Every route of the queue's adapter that binds the key missed it.
        assert_eq!(
            f.route.as_deref(),
            Some("bizreg-canonical,bizreg-registered")
        );
        assert_eq!(f.attempts, 4);
        assert_eq!(f.original_routing_key, "bizreg.enterprise.registered");
        assert_eq!(f.failed_at, 1_700_000_000_000);
        assert!(f.error.contains("lgsp.in.bizreg"), "{}", f.error);
        assert_eq!(
            classify(&Names::new("lgsp"), &table(), m).failure_id,
            f.failure_id
        );
    }

    #[test]
    fn a_poisoned_retry_names_the_routes_of_its_targets_and_its_first_key() {
        let mut d = FieldTable::default();
        d.insert(
            ShortString::from("queue"),
            AMQPValue::LongString("lgsp.in.bizreg".into()),
        );
        d.insert(
            ShortString::from("reason"),
            AMQPValue::LongString("delivery_limit".into()),
        );
        d.insert(
            ShortString::from("exchange"),
            AMQPValue::LongString("".into()),
        );
        let mut h = FieldTable::default();
        h.insert(
            "x-death".into(),
            AMQPValue::FieldArray(FieldArray::from(vec![AMQPValue::FieldTable(d)])),
        );
        headers::set(&mut h, headers::TARGETS, "bizreg-registered/app:tax");
        headers::set(&mut h, headers::ORIGINAL_EXCHANGE, "lgsp.in");
        headers::set(
            &mut h,
            headers::ORIGINAL_ROUTING_KEY,
            "bizreg.enterprise.registered",
        );
        let p = props(h);
        let f = classify(
            &Names::new("lgsp"),
            &table(),
            Incoming {
                queue: "lgsp.failed",
                exchange: "lgsp.failed",
                routing_key: "lgsp.in.bizreg",
                properties: &p,
                body: b"{}",
            },
        );
        assert_eq!(f.route.as_deref(), Some("bizreg-registered"));
        assert_eq!(f.targets, ["bizreg-registered/app:tax"]);
        assert_eq!(f.original_exchange, "lgsp.in");
        assert_eq!(f.original_routing_key, "bizreg.enterprise.registered");
    }

    #[test]
    fn an_unrouted_message_is_unroutable_and_its_id_depends_on_the_body() {
        let p = BasicProperties::default();
        let m = |body: &'static [u8]| Incoming {
            queue: "lgsp.unrouted",
            exchange: "lgsp.in",
            routing_key: "nobody.binds",
            properties: &p,
            body,
        };
        let n = Names::new("lgsp");
        let t = table();
        let a = classify(&n, &t, m(b"a"));
        assert_eq!(a.error_kind, FailureKind::Unroutable);
        assert_eq!(a.route, None);
        assert_eq!(a.failure_id, classify(&n, &t, m(b"a")).failure_id);
        assert_ne!(a.failure_id, classify(&n, &t, m(b"b")).failure_id);
    }

    fn router_failure(kind: Option<&str>, code: Option<&str>) -> NewFailure {
        let mut h = FieldTable::default();
        headers::set(&mut h, headers::FAILURE_ID, "f-9");
        headers::set(&mut h, headers::ROUTE, "bizreg");
        if let Some(k) = kind {
            headers::set(&mut h, headers::ERROR_KIND, k);
        }
        if let Some(c) = code {
            headers::set(&mut h, headers::ERROR_CODE, c);
        }
        headers::set(&mut h, headers::ERROR, "the quota of tax is used up");
        let p = props(h);
        classify(
            &Names::new("lgsp"),
            &table(),
            Incoming {
                queue: "lgsp.failed",
                exchange: "lgsp.failed",
                routing_key: "bizreg.a.b",
                properties: &p,
                body: b"<x/>",
            },
        )
    }

    /// A newer lgsp may name a kind this one does not know: the record is kept (never a
    /// panic, never a lost message) as the fallback kind, with the text it had.
    #[test]
    fn an_unknown_error_kind_is_kept_as_the_fallback_with_its_text() {
        let f = router_failure(Some("quota"), Some("quota.exceeded"));
        assert_eq!(f.error_kind, FailureKind::FALLBACK);
        assert_eq!(f.error_code, "quota.exceeded");
        assert_eq!(
            f.error,
            "error kind `quota` is unknown to this version of lgsp, kept as `mapping`: the quota of tax is used up"
        );
        // Without a code, the unknown kind's text groups it apart from real mappings.
        assert_eq!(router_failure(Some("quota"), None).error_code, "quota");
    }

    #[test]
    fn a_router_failure_without_a_kind_is_the_fallback_kind() {
        let f = router_failure(None, None);
        assert_eq!(f.error_kind, FailureKind::FALLBACK);
        assert_eq!(f.error_code, "mapping");
        assert_eq!(f.error, "the quota of tax is used up");
    }
}
