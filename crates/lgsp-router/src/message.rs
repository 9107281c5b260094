//! From an AMQP delivery to the envelope mappings read, and the properties of what the
//! router publishes (outputs and failures).

use lapin::BasicProperties;
use lapin::message::Delivery;
use lapin::types::FieldTable;
use lgsp_amqp::{headers, routes};
use lgsp_core::envelope::Envelope;

use crate::decide::{Failure, Retry};

/// An input, read once from its delivery: where it was first published, how many times
/// it was tried, which targets it still has to reach, and the envelope mappings read.
#[derive(Debug, Clone)]
pub struct Input {
    pub envelope: Envelope,
    /// The exchange and routing key it was published with. A retry or a replay reaches
    /// the input queue through the default exchange, with the queue's name as key; they
    /// carry the original ones in `lgsp-original-exchange` and `-routing-key`.
    pub exchange: String,
    pub routing_key: String,
    pub attempt: u32,
    /// Qualified ids of the targets still to deliver (a retry or a replay); `None`: every
    /// target of every route whose binding matches.
    pub targets: Option<Vec<String>>,
    /// `lgsp-route` of a retry or replay: the route of target ids written before they
    /// were qualified.
    pub route: Option<String>,
}

impl Input {
    pub fn read(input_exchange: &str, d: &Delivery) -> Input {
        let h = d.properties.headers().as_ref();
        let (exchange, routing_key) = if d.exchange.as_str() == input_exchange {
            (
                d.exchange.as_str().to_owned(),
                d.routing_key.as_str().to_owned(),
            )
        } else {
            (
                headers::text(h, headers::ORIGINAL_EXCHANGE)
                    .unwrap_or_else(|| input_exchange.to_owned()),
                headers::text(h, headers::ORIGINAL_ROUTING_KEY)
                    .unwrap_or_else(|| d.routing_key.as_str().to_owned()),
            )
        };
        let targets = headers::text(h, headers::TARGETS)
            .map(|t| routes::list(&t))
            .filter(|t| !t.is_empty());
        Input {
            envelope: envelope(d, &routing_key),
            exchange,
            routing_key,
            attempt: headers::attempt(h),
            targets,
            route: headers::text(h, headers::ROUTE).filter(|r| !r.is_empty()),
        }
    }
}

/// The envelope of an input. A missing `message_id` is derived from the body, so that
/// redeliveries of the same input keep the same id; a missing `type` is the routing key
/// the input was published with.
fn envelope(d: &Delivery, routing_key: &str) -> Envelope {
    let p = &d.properties;
    let h = p.headers().as_ref();
    let message_id = match p.message_id() {
        Some(id) if !id.as_str().is_empty() => id.as_str().to_owned(),
        _ => uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, &d.data).to_string(),
    };
    let message_type = p
        .kind()
        .as_ref()
        .map(|k| k.as_str().to_owned())
        .filter(|k| !k.is_empty())
        .or_else(|| Some(routing_key.to_owned()));
    Envelope {
        message_id,
        correlation_id: p.correlation_id().as_ref().map(|s| s.as_str().to_owned()),
        message_type,
        app_id: p.app_id().as_ref().map(|s| s.as_str().to_owned()),
        sender: headers::text(h, headers::SENDER),
        timestamp: p.timestamp().and_then(|t| {
            let secs = i64::try_from(t).ok()?;
            let local = chrono::FixedOffset::east_opt(7 * 3600)?;
            chrono::DateTime::from_timestamp(secs, 0).map(|dt| {
                dt.with_timezone(&local)
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
            })
        }),
        content_type: p.content_type().as_ref().map(|s| s.as_str().to_owned()),
        user_id: p.user_id().as_ref().map(|s| s.as_str().to_owned()),
    }
}

/// Headers carried from the input to what the router publishes.
pub fn carried_headers(d: &Delivery, input: &Input, route: &str) -> FieldTable {
    let h = d.properties.headers().as_ref();
    let mut out = FieldTable::default();
    for name in [headers::SENDER, headers::TRACEPARENT, headers::REPLAY_OF] {
        if let Some(v) = headers::text(h, name) {
            headers::set(&mut out, name, v);
        }
    }
    headers::set(&mut out, headers::ROUTE, route);
    headers::set_int(&mut out, headers::ATTEMPT, i64::from(input.attempt));
    out
}

/// Properties of an output message.
pub fn output_properties(
    d: &Delivery,
    env: &Envelope,
    message_id: &str,
    correlation_id: Option<&str>,
    content_type: &str,
    kind: Option<&str>,
    headers: FieldTable,
) -> BasicProperties {
    let mut p = BasicProperties::default()
        .with_message_id(message_id.into())
        .with_content_type(content_type.into())
        .with_headers(headers);
    if let Some(c) = correlation_id.or(env.correlation_id.as_deref()) {
        p = p.with_correlation_id(c.into());
    }
    if let Some(k) = kind.or(env.message_type.as_deref()) {
        p = p.with_type(k.into());
    }
    if let Some(a) = &env.app_id {
        p = p.with_app_id(a.as_str().into());
    }
    if let Some(t) = d.properties.timestamp() {
        p = p.with_timestamp(*t);
    }
    p
}

/// The input's own properties with the headers of what happens to it next: where it was
/// first published, its routes, its attempt count and the targets still to deliver.
fn onward(
    d: &Delivery,
    input: &Input,
    routes: &[String],
    attempt: u32,
    targets: &[String],
) -> FieldTable {
    let mut h = d.properties.headers().clone().unwrap_or_default();
    headers::set(&mut h, headers::ROUTE, routes.join(","));
    headers::set(&mut h, headers::ORIGINAL_EXCHANGE, input.exchange.as_str());
    headers::set(
        &mut h,
        headers::ORIGINAL_ROUTING_KEY,
        input.routing_key.as_str(),
    );
    headers::set_int(&mut h, headers::ATTEMPT, i64::from(attempt));
    headers::set(&mut h, headers::TARGETS, targets.join(","));
    h
}

/// The failed-path copy of the input: original body and properties plus the failure
/// headers of DESIGN section 8; `lgsp-route` lists every route the failure cost.
pub fn failure_properties(d: &Delivery, input: &Input, f: &Failure) -> BasicProperties {
    let mut h = onward(d, input, &f.routes, input.attempt, &f.targets);
    headers::set(
        &mut h,
        headers::FAILURE_ID,
        uuid::Uuid::now_v7().to_string(),
    );
    headers::set(&mut h, headers::ERROR_KIND, f.kind);
    headers::set(&mut h, headers::ERROR_CODE, f.code.as_str());
    headers::set(&mut h, headers::ERROR, truncate(&f.message, 4000));
    headers::set(
        &mut h,
        headers::FAILED_AT,
        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    );
    d.properties
        .clone()
        .with_message_id(input.envelope.message_id.as_str().into())
        .with_headers(h)
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// The input again, for a later try of the retry's targets: original body and
/// properties, the attempt count raised.
pub fn retry_properties(d: &Delivery, input: &Input, r: &Retry) -> BasicProperties {
    let h = onward(d, input, &r.routes, input.attempt + 1, &r.targets);
    d.properties
        .clone()
        .with_message_id(input.envelope.message_id.as_str().into())
        .with_headers(h)
}
