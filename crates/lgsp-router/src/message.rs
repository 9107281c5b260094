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
    // The publisher's user as the bus knows it, never as a publisher wrote the header.
    match &input.envelope.user_id {
        Some(u) => headers::set(&mut h, headers::ORIGINAL_USER_ID, u.as_str()),
        None => headers::remove(&mut h, headers::ORIGINAL_USER_ID),
    }
    h
}

/// The failed-path copy of the input: original body and properties (the `user_id` in
/// `lgsp-original-user-id`) plus the failure headers of `docs/contracts.md`; `lgsp-route`
/// lists every route the failure cost.
pub fn failure_properties(input: &Inbound, f: &Failure) -> BasicProperties {
    let mut h = onward(input, &f.routes, input.attempt, &f.targets);
    headers::set(
        &mut h,
        headers::FAILURE_ID,
        uuid::Uuid::now_v7().to_string(),
    );
    headers::set(&mut h, headers::ERROR_KIND, f.kind.as_str());
    headers::set(&mut h, headers::ERROR_CODE, f.code.as_str());
    headers::set(&mut h, headers::ERROR, truncate(&f.message, 4000));
    headers::set(
        &mut h,
        headers::FAILED_AT,
        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    );
    headers::without_user_id(&input.properties)
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
    headers::without_user_id(&input.properties)
        .with_message_id(input.envelope.message_id.as_str().into())
        .with_headers(h)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn input(props: BasicProperties, exchange: &str) -> Inbound {
        Inbound::read("lgsp.in", exchange, "bizreg.x", props, b"<a/>".to_vec())
    }

    /// RabbitMQ closes the channel of a publish whose user_id is not its connection's
    /// user: what lgsp republishes of an input must not carry the publisher's.
    #[test]
    fn a_republished_input_carries_its_publishers_user_in_a_header_only() {
        let i = input(
            BasicProperties::default()
                .with_message_id("m-1".into())
                .with_user_id("dkkd".into())
                .with_app_id("dkkd".into()),
            "lgsp.in",
        );
        let f = Failure {
            kind: lgsp_core::failure::FailureKind::Mapping,
            code: "x".into(),
            message: "bad".into(),
            targets: vec![],
            routes: vec!["r".into()],
        };
        let r = Retry {
            targets: vec!["r/app:tax".into()],
            routes: vec!["r".into()],
            delay: Duration::from_secs(1),
            reason: "x".into(),
        };
        for p in [failure_properties(&i, &f), retry_properties(&i, &r)] {
            assert!(p.user_id().is_none());
            assert_eq!(p.app_id().as_ref().map(|a| a.as_str()), Some("dkkd"));
            let h = p.headers().as_ref();
            assert_eq!(
                headers::text(h, headers::ORIGINAL_USER_ID).as_deref(),
                Some("dkkd")
            );
        }
        // The retry, read back from the default exchange, knows its publisher.
        let again = input(retry_properties(&i, &r), "");
        assert_eq!(again.envelope.user_id.as_deref(), Some("dkkd"));
    }

    #[test]
    fn a_publisher_cannot_claim_a_user_in_the_header() {
        let mut h = FieldTable::default();
        headers::set(&mut h, headers::ORIGINAL_USER_ID, "thue");
        let i = input(
            BasicProperties::default()
                .with_message_id("m-1".into())
                .with_headers(h),
            "lgsp.in",
        );
        assert_eq!(i.envelope.user_id, None, "a fresh input: the property only");
        let r = Retry {
            targets: vec!["r/app:tax".into()],
            routes: vec!["r".into()],
            delay: Duration::from_secs(1),
            reason: "x".into(),
        };
        let p = retry_properties(&i, &r);
        assert_eq!(
            headers::text(p.headers().as_ref(), headers::ORIGINAL_USER_ID),
            None
        );
    }
}
