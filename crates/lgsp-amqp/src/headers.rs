//! The `lgsp-` headers (`docs/contracts.md`) and conversions between AMQP field values and
//! plain Rust values.

use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};

pub const SENDER: &str = "lgsp-sender";
pub const ROUTE: &str = "lgsp-route";
pub const ATTEMPT: &str = "lgsp-attempt";
pub const TARGETS: &str = "lgsp-targets";
pub const PARENT_ID: &str = "lgsp-parent-id";
pub const ORIGINAL_EXCHANGE: &str = "lgsp-original-exchange";
pub const ORIGINAL_ROUTING_KEY: &str = "lgsp-original-routing-key";
pub const FAILURE_ID: &str = "lgsp-failure-id";
pub const ERROR_KIND: &str = "lgsp-error-kind";
pub const ERROR_CODE: &str = "lgsp-error-code";
pub const ERROR: &str = "lgsp-error";
pub const FAILED_AT: &str = "lgsp-failed-at";
pub const REPLAY_OF: &str = "lgsp-replay-of";
pub const TRACEPARENT: &str = "traceparent";
/// The broker-checked `user_id` of the original publisher, on what lgsp republishes of
/// an input (a retry, a failure record): the property itself cannot be carried, since
/// RabbitMQ refuses a `user_id` other than the publishing connection's user.
pub const ORIGINAL_USER_ID: &str = "lgsp-original-user-id";

/// `p` without its `user_id`, to republish what someone else published.
pub fn without_user_id(p: &lapin::BasicProperties) -> lapin::BasicProperties {
    let mut out = lapin::BasicProperties::default();
    if let Some(x) = p.content_type() {
        out = out.with_content_type(x.clone());
    }
    if let Some(x) = p.content_encoding() {
        out = out.with_content_encoding(x.clone());
    }
    if let Some(x) = p.headers() {
        out = out.with_headers(x.clone());
    }
    if let Some(x) = p.delivery_mode() {
        out = out.with_delivery_mode(*x);
    }
    if let Some(x) = p.priority() {
        out = out.with_priority(*x);
    }
    if let Some(x) = p.correlation_id() {
        out = out.with_correlation_id(x.clone());
    }
    if let Some(x) = p.reply_to() {
        out = out.with_reply_to(x.clone());
    }
    if let Some(x) = p.expiration() {
        out = out.with_expiration(x.clone());
    }
    if let Some(x) = p.message_id() {
        out = out.with_message_id(x.clone());
    }
    if let Some(x) = p.timestamp() {
        out = out.with_timestamp(*x);
    }
    if let Some(x) = p.kind() {
        out = out.with_type(x.clone());
    }
    if let Some(x) = p.app_id() {
        out = out.with_app_id(x.clone());
    }
    if let Some(x) = p.cluster_id() {
        out = out.with_cluster_id(x.clone());
    }
    out
}

/// A header as text, whatever string type the publisher used.
pub fn text(table: Option<&FieldTable>, name: &str) -> Option<String> {
    let v = table?.inner().get(name)?;
    value_text(v)
}

/// Text of a string-like or numeric field value.
pub fn value_text(v: &AMQPValue) -> Option<String> {
    Some(match v {
        AMQPValue::LongString(s) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
        AMQPValue::ShortString(s) => s.as_str().to_owned(),
        AMQPValue::ShortShortInt(n) => n.to_string(),
        AMQPValue::ShortShortUInt(n) => n.to_string(),
        AMQPValue::ShortInt(n) => n.to_string(),
        AMQPValue::ShortUInt(n) => n.to_string(),
        AMQPValue::LongInt(n) => n.to_string(),
        AMQPValue::LongUInt(n) => n.to_string(),
        AMQPValue::LongLongInt(n) => n.to_string(),
        _ => return None,
    })
}

/// `lgsp-attempt` as a count: absent, malformed, negative or huge values count as 0
/// (publishers outside lgsp may send anything).
pub fn attempt(table: Option<&FieldTable>) -> u32 {
    text(table, ATTEMPT)
        .and_then(|s| s.trim().parse::<u32>().ok())
        .filter(|n| *n <= 1_000_000)
        .unwrap_or(0)
}

/// Set a text header.
pub fn remove(table: &mut FieldTable, name: &str) {
    if table.inner().contains_key(name) {
        let mut m = table.inner().clone();
        m.remove(name);
        *table = FieldTable::from(m);
    }
}

pub fn set(table: &mut FieldTable, name: &str, value: impl Into<String>) {
    table.insert(
        ShortString::from(name),
        AMQPValue::LongString(LongString::from(value.into())),
    );
}

/// Set a numeric header.
pub fn set_int(table: &mut FieldTable, name: &str, value: i64) {
    table.insert(ShortString::from(name), AMQPValue::LongLongInt(value));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_attempts_count_as_zero() {
        let mut t = FieldTable::default();
        assert_eq!(attempt(Some(&t)), 0);
        for bad in ["-3", "many", "99999999999999999999", ""] {
            set(&mut t, ATTEMPT, bad);
            assert_eq!(attempt(Some(&t)), 0, "{bad}");
        }
        set_int(&mut t, ATTEMPT, 3);
        assert_eq!(attempt(Some(&t)), 3);
        set_int(&mut t, ATTEMPT, -1);
        assert_eq!(attempt(Some(&t)), 0);
    }
}
