//! The properties of what the router publishes for an input: its outputs, its retry and
//! its failure records.

use lapin::BasicProperties;
use lapin::types::FieldTable;
use lgsp_amqp::headers;
use lgsp_amqp::inbound::Inbound;
use lgsp_core::envelope::Envelope;

use crate::decide::{Failure, Retry};

/// Headers carried from the input to what the router publishes.
pub fn carried_headers(input: &Inbound, route: &str) -> FieldTable {
    let h = input.properties.headers().as_ref();
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
    input: &Inbound,
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
    if let Some(t) = input.properties.timestamp() {
        p = p.with_timestamp(*t);
    }
    p
}

/// The input's own properties with the headers of what happens to it next: where it was
/// first published, its routes, its attempt count and the targets still to deliver.
fn onward(input: &Inbound, routes: &[String], attempt: u32, targets: &[String]) -> FieldTable {
    let mut h = input.properties.headers().clone().unwrap_or_default();
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
pub fn failure_properties(input: &Inbound, f: &Failure) -> BasicProperties {
    let mut h = onward(input, &f.routes, input.attempt, &f.targets);
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
    input
        .properties
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
pub fn retry_properties(input: &Inbound, r: &Retry) -> BasicProperties {
    let h = onward(input, &r.routes, input.attempt + 1, &r.targets);
    input
        .properties
        .clone()
        .with_message_id(input.envelope.message_id.as_str().into())
        .with_headers(h)
}
