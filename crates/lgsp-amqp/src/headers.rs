//! The `lgsp-` headers (DESIGN section 8) and conversions between AMQP field values and
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
