//! A mapping's JSON output, written straight from its tree.
//!
//! The bytes are exactly those of `serde_json::to_vec` (compact, members in their order,
//! numbers as their text, the same escapes: `\"`, `\\`, `\b`, `\f`, `\n`, `\r`, `\t`,
//! `\u00XX` with lower-case hex for the other control characters, nothing else escaped).
//! Only the way there is shorter: no serializer dispatch per value, and a string is
//! copied a run at a time between the bytes that need an escape. Encoding was about a
//! tenth of a mapped e-invoice's instructions through serde (BENCHMARKS.md).

use serde_json::Value;

/// The compact JSON text of `value`.
pub fn to_vec(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    write(&mut out, value);
    out
}

/// Append the compact JSON text of `value` to `out`.
pub fn write(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        // Numbers keep the text they were read or made with (arbitrary precision).
        Value::Number(n) => out.extend_from_slice(n.as_str().as_bytes()),
        Value::String(s) => string(out, s),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write(out, item);
            }
            out.push(b']');
        }
        Value::Object(members) => {
            out.push(b'{');
            for (i, (key, item)) in members.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                string(out, key);
                out.push(b':');
                write(out, item);
            }
            out.push(b'}');
        }
    }
}

fn string(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    // Most strings need no escape: one branch-free pass (which the compiler vectorises)
    // and one copy.
    let clean = bytes.iter().fold(true, |acc, &b| {
        acc & (b >= 0x20) & (b != b'"') & (b != b'\\')
    });
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    if clean {
        out.extend_from_slice(bytes);
    } else {
        escaped(out, bytes);
    }
    out.push(b'"');
}

#[cold]
fn escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut run = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let short = match b {
            b'"' => b'"',
            b'\\' => b'\\',
            0x08 => b'b',
            0x0C => b'f',
            b'\n' => b'n',
            b'\r' => b'r',
            b'\t' => b't',
            0x00..=0x1F => 0,
            _ => continue,
        };
        out.extend_from_slice(&bytes[run..i]);
        run = i + 1;
        if short == 0 {
            out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xF)],
            ]);
        } else {
            out.extend_from_slice(&[b'\\', short]);
        }
    }
    out.extend_from_slice(&bytes[run..]);
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn same(v: &Value) {
        assert_eq!(
            String::from_utf8_lossy(&to_vec(v)),
            String::from_utf8_lossy(&serde_json::to_vec(v).unwrap()),
        );
    }

    #[test]
    fn every_character_below_u0080_and_some_above_is_written_as_serde_json_writes_it() {
        let mut all: String = (0u8..0x80).map(char::from).collect();
        all.push_str("Nguyễn Văn Ả ☃ 😀 \u{7F} \u{85} \u{2028}");
        same(&Value::String(all.clone()));
        same(&json!({ all.clone(): all }));
        for c in (0u8..0x80).map(char::from) {
            same(&Value::String(format!("a{c}b")));
            same(&Value::String(c.to_string()));
        }
    }

    #[test]
    fn every_kind_of_value_is_written_as_serde_json_writes_it() {
        same(&json!(null));
        same(&json!([]));
        same(&json!({}));
        same(&json!([true, false, null, "", [[]], [{}], {"a": {"b": []}}]));
        let numbers: Value =
            serde_json::from_str(r#"[0, -0, 1.10, 1E5, -2.5e-7, 12345678901234567890123456]"#)
                .unwrap();
        same(&numbers);
        same(&json!({"z": 1, "a": 2, "m": [1, 2.5, -3]}));
        same(&Value::from(u64::MAX));
        same(&Value::from(-1.5f64));
    }
}
