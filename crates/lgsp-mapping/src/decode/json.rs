//! JSON payloads into the mapping tree.
//!
//! `serde_json` parses; a custom seed builds the [`Value`] so that duplicate keys and depth
//! can be checked on the way, in one pass. `serde_json`'s own recursion guard (128) stays
//! on, so no input can overflow the stack.

use std::cell::Cell;
use std::fmt;
use std::str::FromStr;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::map::Entry;
use serde_json::{Map, Number, Value};

use super::{DecodeError, Format, Limits, UTF8_BOM, line_col, nfc_str, nfc_string};

/// With `arbitrary_precision`, serde_json hands a number to a visitor as a one-entry map
/// under this key, whose value is the number's exact text.
const NUMBER_TOKEN: &str = "$serde_json::private::Number";

pub(super) fn decode(body: &[u8], limits: &Limits) -> Result<Value, DecodeError> {
    if body.len() > limits.max_bytes {
        return Err(DecodeError::TooLarge {
            size: body.len(),
            limit: limits.max_bytes,
        });
    }
    let body = body.strip_prefix(UTF8_BOM).unwrap_or(body);
    let text = std::str::from_utf8(body).map_err(|err| {
        let (line, column) = line_col(body, err.valid_up_to());
        DecodeError::InvalidUtf8 {
            format: Format::Json,
            line,
            column,
        }
    })?;
    if text
        .bytes()
        .all(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
    {
        return Err(DecodeError::Empty {
            format: Format::Json,
        });
    }

    let ctx = Ctx {
        max_depth: limits.max_depth,
        failure: Cell::new(None),
    };
    let mut de = serde_json::Deserializer::from_str(text);
    let result = ValueSeed {
        ctx: &ctx,
        depth: 0,
    }
    .deserialize(&mut de)
    .and_then(|value| de.end().map(|()| value));
    result.map_err(|err| to_error(text, &ctx, &err))
}

/// What a visitor refused, beside the `serde_json::Error` that carries the position.
enum Failure {
    Depth,
    DuplicateKey(String),
}

struct Ctx {
    max_depth: usize,
    failure: Cell<Option<Failure>>,
}

impl Ctx {
    fn fail<E: de::Error>(&self, failure: Failure) -> E {
        self.failure.set(Some(failure));
        E::custom("refused")
    }
}

fn to_error(text: &str, ctx: &Ctx, err: &serde_json::Error) -> DecodeError {
    let (line, column) = position(text, err.line(), err.column());
    match ctx.failure.take() {
        Some(Failure::Depth) => {
            return DecodeError::TooDeep {
                format: Format::Json,
                limit: ctx.max_depth,
                line,
                column,
            };
        }
        Some(Failure::DuplicateKey(key)) => {
            return DecodeError::JsonDuplicateKey { key, line, column };
        }
        None => {}
    }
    let message = err.to_string();
    // serde_json appends " at line L column C"; the position is reported separately.
    let message = match message.rfind(" at line ") {
        Some(i) => &message[..i],
        None => message.as_str(),
    };
    if message.starts_with("recursion limit exceeded") {
        DecodeError::TooDeep {
            format: Format::Json,
            limit: ctx.max_depth.min(127),
            line,
            column,
        }
    } else if message.starts_with("trailing characters") {
        DecodeError::JsonTrailing { line, column }
    } else {
        let hint = if message.starts_with("expected value") {
            " (NaN, Infinity, comments and unquoted text are not JSON)"
        } else {
            ""
        };
        DecodeError::JsonSyntax {
            message: format!("{message}{hint}"),
            line,
            column,
        }
    }
}

/// serde_json's (line, byte column of the offending byte) as (line, character column).
fn position(text: &str, line: usize, column: usize) -> (usize, usize) {
    let bytes = text.as_bytes();
    let mut line_start = 0;
    if line > 1 {
        let mut seen = 1;
        for (i, &b) in bytes.iter().enumerate() {
            if b == b'\n' {
                seen += 1;
                if seen == line {
                    line_start = i + 1;
                    break;
                }
            }
        }
    }
    line_col(bytes, line_start + column.saturating_sub(1))
}

#[derive(Clone, Copy)]
struct ValueSeed<'c> {
    ctx: &'c Ctx,
    /// Containers enclosing the value being read.
    depth: usize,
}

impl ValueSeed<'_> {
    fn nested<E: de::Error>(self) -> Result<Self, E> {
        if self.depth >= self.ctx.max_depth {
            return Err(self.ctx.fail(Failure::Depth));
        }
        Ok(ValueSeed {
            ctx: self.ctx,
            depth: self.depth + 1,
        })
    }
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("number is not finite"))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(nfc_str(v)))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(nfc_string(v)))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let inner = self.nested()?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(inner)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let first = match access.next_key_seed(KeySeed)? {
            Some(Key::Number) => {
                let text: String = access.next_value()?;
                return Number::from_str(&text)
                    .map(Value::Number)
                    .map_err(de::Error::custom);
            }
            Some(Key::Name(key)) => Some(key),
            None => None,
        };
        // Only a real object counts towards the depth (numbers arrive as maps too).
        let inner = self.nested()?;
        let mut map = Map::new();
        let Some(first) = first else {
            return Ok(Value::Object(map));
        };
        let value = access.next_value_seed(inner)?;
        map.insert(first, value);
        while let Some(key) = access.next_key_seed(KeySeed)? {
            let key = match key {
                Key::Name(key) => key,
                Key::Number => NUMBER_TOKEN.to_owned(),
            };
            match map.entry(key) {
                Entry::Occupied(slot) => {
                    return Err(self.ctx.fail(Failure::DuplicateKey(slot.key().clone())));
                }
                Entry::Vacant(slot) => {
                    slot.insert(access.next_value_seed(inner)?);
                }
            }
        }
        Ok(Value::Object(map))
    }
}

enum Key {
    Number,
    Name(String),
}

struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Key;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Key, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string key")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
        Ok(if v == NUMBER_TOKEN {
            Key::Number
        } else {
            Key::Name(nfc_str(v))
        })
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Key, E> {
        Ok(if v == NUMBER_TOKEN {
            Key::Number
        } else {
            Key::Name(nfc_string(v))
        })
    }
}
