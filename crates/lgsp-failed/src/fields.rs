//! AMQP properties and headers as JSON, and back. The store keeps them as JSON so that an
//! administrator can read them and a replay can rebuild them. Integers come back as
//! 64-bit, floats as doubles; byte arrays are kept as `{"$bytes": base64}`, timestamps as
//! `{"$timestamp": seconds}`, decimals as `{"$decimal": [scale, value]}`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use lapin::BasicProperties;
use lapin::types::{AMQPValue, ByteArray, DecimalValue, FieldArray, FieldTable, LongString};
use serde_json::{Map, Value, json};

/// A header table as a JSON object.
pub fn table_to_json(t: &FieldTable) -> Value {
    Value::Object(
        t.inner()
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), value_to_json(v)))
            .collect(),
    )
}

/// One field value as JSON.
pub fn value_to_json(v: &AMQPValue) -> Value {
    match v {
        AMQPValue::Boolean(b) => json!(b),
        AMQPValue::ShortShortInt(n) => json!(n),
        AMQPValue::ShortShortUInt(n) => json!(n),
        AMQPValue::ShortInt(n) => json!(n),
        AMQPValue::ShortUInt(n) => json!(n),
        AMQPValue::LongInt(n) => json!(n),
        AMQPValue::LongUInt(n) => json!(n),
        AMQPValue::LongLongInt(n) => json!(n),
        AMQPValue::Float(f) => json!(f),
        AMQPValue::Double(f) => json!(f),
        AMQPValue::DecimalValue(d) => json!({"$decimal": [d.scale, d.value]}),
        AMQPValue::ShortString(s) => json!(s.as_str()),
        AMQPValue::LongString(s) => match std::str::from_utf8(s.as_bytes()) {
            Ok(t) => json!(t),
            Err(_) => json!({"$bytes": B64.encode(s.as_bytes())}),
        },
        AMQPValue::FieldArray(a) => Value::Array(a.as_slice().iter().map(value_to_json).collect()),
        AMQPValue::Timestamp(t) => json!({"$timestamp": t}),
        AMQPValue::FieldTable(t) => table_to_json(t),
        AMQPValue::ByteArray(b) => json!({"$bytes": B64.encode(b.as_slice())}),
        AMQPValue::Void => Value::Null,
    }
}

/// A JSON object as a header table (see the module doc for the special objects).
pub fn json_to_table(v: &Value) -> FieldTable {
    let mut t = FieldTable::default();
    if let Value::Object(m) = v {
        for (k, v) in m {
            t.insert(k.as_str().into(), json_to_value(v));
        }
    }
    t
}

/// One JSON value as a field value.
pub fn json_to_value(v: &Value) -> AMQPValue {
    match v {
        Value::Null => AMQPValue::Void,
        Value::Bool(b) => AMQPValue::Boolean(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => AMQPValue::LongLongInt(i),
            None => AMQPValue::Double(n.as_f64().unwrap_or_default()),
        },
        Value::String(s) => AMQPValue::LongString(LongString::from(s.as_str())),
        Value::Array(a) => AMQPValue::FieldArray(FieldArray::from(
            a.iter().map(json_to_value).collect::<Vec<_>>(),
        )),
        Value::Object(m) => special(m).unwrap_or_else(|| AMQPValue::FieldTable(json_to_table(v))),
    }
}

fn special(m: &Map<String, Value>) -> Option<AMQPValue> {
    if m.len() != 1 {
        return None;
    }
    let (k, v) = m.iter().next()?;
    match k.as_str() {
        "$bytes" => Some(AMQPValue::ByteArray(ByteArray::from(
            B64.decode(v.as_str()?).ok()?,
        ))),
        "$timestamp" => Some(AMQPValue::Timestamp(v.as_u64()?)),
        "$decimal" => {
            let a = v.as_array()?;
            Some(AMQPValue::DecimalValue(DecimalValue {
                scale: u8::try_from(a.first()?.as_u64()?).ok()?,
                value: u32::try_from(a.get(1)?.as_u64()?).ok()?,
            }))
        }
        _ => None,
    }
}

/// Every property but the headers, as a JSON object (absent ones left out).
pub fn properties_to_json(p: &BasicProperties) -> Value {
    let mut m = Map::new();
    let mut text = |k: &str, v: Option<&str>| {
        if let Some(v) = v {
            m.insert(k.into(), json!(v));
        }
    };
    text(
        "content_type",
        p.content_type().as_ref().map(|s| s.as_str()),
    );
    text(
        "content_encoding",
        p.content_encoding().as_ref().map(|s| s.as_str()),
    );
    text(
        "correlation_id",
        p.correlation_id().as_ref().map(|s| s.as_str()),
    );
    text("reply_to", p.reply_to().as_ref().map(|s| s.as_str()));
    text("expiration", p.expiration().as_ref().map(|s| s.as_str()));
    text("message_id", p.message_id().as_ref().map(|s| s.as_str()));
    text("type", p.kind().as_ref().map(|s| s.as_str()));
    text("user_id", p.user_id().as_ref().map(|s| s.as_str()));
    text("app_id", p.app_id().as_ref().map(|s| s.as_str()));
    text("cluster_id", p.cluster_id().as_ref().map(|s| s.as_str()));
    if let Some(d) = p.delivery_mode() {
        m.insert("delivery_mode".into(), json!(d));
    }
    if let Some(x) = p.priority() {
        m.insert("priority".into(), json!(x));
    }
    if let Some(t) = p.timestamp() {
        m.insert("timestamp".into(), json!(t));
    }
    Value::Object(m)
}

/// Properties for a replay from their stored JSON. `user_id` and `expiration` are
/// left out: the broker refuses a `user_id` other than the publisher's own login, and
/// an old expiration would drop the replay.
pub fn replay_properties(v: &Value) -> BasicProperties {
    let s = |k: &str| v.get(k).and_then(Value::as_str);
    let mut p = BasicProperties::default();
    if let Some(x) = s("content_type") {
        p = p.with_content_type(x.into());
    }
    if let Some(x) = s("content_encoding") {
        p = p.with_content_encoding(x.into());
    }
    if let Some(x) = s("correlation_id") {
        p = p.with_correlation_id(x.into());
    }
    if let Some(x) = s("reply_to") {
        p = p.with_reply_to(x.into());
    }
    if let Some(x) = s("type") {
        p = p.with_type(x.into());
    }
    if let Some(x) = s("app_id") {
        p = p.with_app_id(x.into());
    }
    if let Some(x) = s("cluster_id") {
        p = p.with_cluster_id(x.into());
    }
    if let Some(x) = v
        .get("priority")
        .and_then(Value::as_u64)
        .and_then(|n| u8::try_from(n).ok())
    {
        p = p.with_priority(x);
    }
    if let Some(x) = v.get("timestamp").and_then(Value::as_u64) {
        p = p.with_timestamp(x);
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_survive_a_round_trip_through_json() {
        let mut t = FieldTable::default();
        t.insert("s".into(), AMQPValue::LongString("ngày".into()));
        t.insert("n".into(), AMQPValue::LongLongInt(-3));
        t.insert("b".into(), AMQPValue::Boolean(true));
        t.insert("f".into(), AMQPValue::Double(1.5));
        t.insert(
            "bytes".into(),
            AMQPValue::ByteArray(ByteArray::from(vec![0u8, 255, 7])),
        );
        t.insert("ts".into(), AMQPValue::Timestamp(1_700_000_000));
        let mut inner = FieldTable::default();
        inner.insert("count".into(), AMQPValue::LongLongInt(2));
        t.insert(
            "x-death".into(),
            AMQPValue::FieldArray(FieldArray::from(vec![AMQPValue::FieldTable(inner)])),
        );
        let j = table_to_json(&t);
        let back = json_to_table(&j);
        assert_eq!(table_to_json(&back), j);
        assert_eq!(back.inner().get("bytes"), t.inner().get("bytes"));
        assert_eq!(back.inner().get("s"), t.inner().get("s"));
        assert_eq!(j["x-death"][0]["count"], 2);
    }
}
