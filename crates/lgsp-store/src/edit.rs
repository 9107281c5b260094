//! An edited body kept as a diff against the stored one: reconstructable, readable, and
//! small next to the bodies it relates.
//!
//! The diff is line based (the `similar` crate computes it) and stored as JSON:
//! `{"format": "lines/1", "ops": [["=", 3], ["-", 1], ["+", "new line\n"]]}`: keep 3
//! lines of the original, drop 1, insert this text. Line based rather than JSON Patch
//! because bodies are XML as often as JSON; an operator's edit touches a few lines, so
//! the diff stays small. A body that is not UTF-8 (on either side) is kept whole instead.

use serde_json::{Value, json};
use similar::{ChangeTag, TextDiff};

/// The current diff format.
pub const FORMAT: &str = "lines/1";

/// Why a stored diff cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("stored edit diff cannot be applied: {0}")]
pub struct DiffError(String);

/// The diff from `original` to `edited`, or `None` when either is not UTF-8 text.
pub fn diff(original: &[u8], edited: &[u8]) -> Option<Value> {
    let old = std::str::from_utf8(original).ok()?;
    let new = std::str::from_utf8(edited).ok()?;
    let d = TextDiff::from_lines(old, new);
    let mut ops: Vec<Value> = Vec::new();
    let mut push = |tag: ChangeTag, text: &str| {
        let sym = match tag {
            ChangeTag::Equal => "=",
            ChangeTag::Delete => "-",
            ChangeTag::Insert => "+",
        };
        if let Some(last) = ops.last_mut()
            && last[0] == sym
        {
            if sym == "+" {
                let joined = format!("{}{text}", last[1].as_str().unwrap_or_default());
                last[1] = json!(joined);
            } else {
                last[1] = json!(last[1].as_u64().unwrap_or_default() + 1);
            }
            return;
        }
        ops.push(if sym == "+" {
            json!([sym, text])
        } else {
            json!([sym, 1])
        });
    };
    for c in d.iter_all_changes() {
        push(c.tag(), c.value());
    }
    Some(json!({ "format": FORMAT, "ops": ops }))
}

/// The edited body, from the original and a diff made by [`diff`].
pub fn apply(original: &[u8], diff: &Value) -> Result<Vec<u8>, DiffError> {
    let bad = |m: &str| DiffError(m.to_owned());
    if diff.get("format").and_then(Value::as_str) != Some(FORMAT) {
        return Err(bad("unknown format (this lgsp reads lines/1)"));
    }
    let old = std::str::from_utf8(original).map_err(|_| bad("the original is not text"))?;
    let lines: Vec<&str> = old.split_inclusive('\n').collect();
    let mut at = 0usize;
    let mut out = String::with_capacity(old.len());
    for op in diff
        .get("ops")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("no ops"))?
    {
        let n = || {
            op[1]
                .as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(|| bad("a count is not a number"))
        };
        match op[0].as_str() {
            Some("=") => {
                let n = n()?;
                let keep = lines
                    .get(at..at + n)
                    .ok_or_else(|| bad("it keeps more lines than the original has"))?;
                keep.iter().for_each(|l| out.push_str(l));
                at += n;
            }
            Some("-") => {
                at += n()?;
                if at > lines.len() {
                    return Err(bad("it drops more lines than the original has"));
                }
            }
            Some("+") => out.push_str(op[1].as_str().ok_or_else(|| bad("an insert is not text"))?),
            _ => return Err(bad("an op is not =, - or +")),
        }
    }
    if at != lines.len() {
        return Err(bad("it does not cover the whole original"));
    }
    Ok(out.into_bytes())
}

/// A unified diff for people (`show`), from the original to the edited body.
pub fn unified(original: &[u8], edited: &[u8]) -> String {
    let old = String::from_utf8_lossy(original);
    let new = String::from_utf8_lossy(edited);
    TextDiff::from_lines(old.as_ref(), new.as_ref())
        .unified_diff()
        .context_radius(3)
        .header("stored", "edited")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_diff_applied_to_the_original_gives_the_edit_back() {
        let cases: &[(&str, &str)] = &[
            ("a\nb\nc\n", "a\nB\nc\n"),
            (
                "<HoSo>\n  <Ten>x</Ten>\n</HoSo>",
                "<HoSo>\n  <Ten>y</Ten>\n  <Ma>1</Ma>\n</HoSo>\n",
            ),
            ("", "new\n"),
            ("old\n", ""),
            (
                "{\"thing\": {\"label\": \"first\"}}",
                "{\"thing\": {\"name\": \"first\"}}",
            ),
            ("same\n", "same\n"),
        ];
        for (old, new) in cases {
            let d = diff(old.as_bytes(), new.as_bytes()).unwrap();
            assert_eq!(apply(old.as_bytes(), &d).unwrap(), new.as_bytes(), "{d}");
        }
        let d = diff(b"a\nb\nc\n", b"a\nB\nc\n").unwrap();
        assert_eq!(
            d["ops"],
            json!([["=", 1], ["-", 1], ["+", "B\n"], ["=", 1]])
        );
        assert!(diff(&[0xff], b"x").is_none(), "bytes are kept whole");
        assert!(apply(b"a\n", &d).is_err(), "a diff of another original");
        assert!(unified(b"a\nb\n", b"a\nc\n").contains("-b\n+c"));
    }
}
