//! JSONPath in mappings: compiled once at load, evaluated per message.
//!
//! Every path is parsed by jsonpath-rust (RFC 9535) at compile time, so a bad path is a
//! configuration error with its position. Paths made only of names, indexes and wildcards
//! (nearly all of them) are then evaluated by a direct walk that allocates nothing; the
//! others go through jsonpath-rust's evaluator.

use jsonpath_rust::parser::model::JpQuery;
use jsonpath_rust::parser::parse_json_path;
use jsonpath_rust::query::js_path_process;
use serde_json::Value;

/// A compiled JSONPath.
#[derive(Debug, Clone)]
pub struct CompiledPath {
    /// As written in the mapping.
    pub source: String,
    eval: Eval,
}

#[derive(Debug, Clone)]
enum Eval {
    Simple(Vec<Step>),
    /// Filters, slices, descendants: this crate's evaluator (`eval.rs`).
    Query(Box<super::eval::Query>),
    /// What that evaluator does not take: jsonpath-rust's.
    Full(Box<JpQuery>),
}

#[derive(Debug, Clone, PartialEq)]
enum Step {
    Name(String),
    Index(i64),
    Wildcard,
}

/// A path that did not compile: what and where (1-based column in the path as written).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathError {
    pub column: Option<usize>,
    pub message: String,
}

/// Rewrite the `.@name` and `.#text` sugar into RFC 9535 brackets (`['@name']`).
/// Returns the rewritten path and, per byte of the output, the byte of the input it
/// came from (to report positions in the path as written).
pub fn desugar(path: &str) -> (String, Vec<usize>) {
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len() + 8);
    let mut origin = Vec::with_capacity(path.len() + 8);
    let mut i = 0;
    let mut quote: Option<u8> = None;
    while i < bytes.len() {
        let b = bytes[i];
        if let Some(q) = quote {
            if b == q {
                quote = None;
            }
        } else if b == b'\'' || b == b'"' {
            quote = Some(b);
        } else if b == b'.' && i + 1 < bytes.len() && (bytes[i + 1] == b'@' || bytes[i + 1] == b'#')
        {
            let start = i + 1;
            let mut end = start + 1;
            while end < bytes.len() && is_name_byte(bytes[end]) {
                end += 1;
            }
            if end > start + 1 {
                out.push_str("['");
                origin.extend([i, i]);
                for (k, ch) in path[start..end].char_indices() {
                    out.push(ch);
                    origin.extend(std::iter::repeat_n(start + k, ch.len_utf8()));
                }
                out.push_str("']");
                origin.extend([end - 1, end - 1]);
                i = end;
                continue;
            }
        }
        let ch_len = utf8_len(b);
        out.push_str(&path[i..i + ch_len]);
        origin.extend(std::iter::repeat_n(i, ch_len));
        i += ch_len;
    }
    (out, origin)
}

fn utf8_len(b: u8) -> usize {
    match b {
        0x00..=0x7f => 1,
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        _ => 4,
    }
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b >= 0x80
}

impl CompiledPath {
    /// Compile `source` (the sugar allowed).
    pub fn compile(source: &str) -> Result<CompiledPath, PathError> {
        let (rewritten, origin) = desugar(source);
        let query =
            parse_json_path(&rewritten).map_err(|e| path_error(&e, &origin, source.len()))?;
        let eval = match simple_steps(&rewritten) {
            Some(steps) => Eval::Simple(steps),
            None => match super::eval::Query::from_parsed(&query) {
                Some(q) => Eval::Query(Box::new(q)),
                None => Eval::Full(Box::new(query)),
            },
        };
        Ok(CompiledPath {
            source: source.to_owned(),
            eval,
        })
    }

    /// The nodes this path selects in `root`, in document order.
    pub fn select<'a>(&self, root: &'a Value, out: &mut Vec<&'a Value>) {
        match &self.eval {
            Eval::Simple(steps) => walk(root, steps, out),
            Eval::Query(q) => q.select(root, out),
            Eval::Full(q) => {
                if let Ok(found) = js_path_process(q, root) {
                    out.extend(found.into_iter().map(|r| r.val));
                }
            }
        }
    }

    /// The nodes jsonpath-rust's own evaluator selects (for tests comparing the two).
    #[doc(hidden)]
    pub fn select_reference<'a>(&self, root: &'a Value) -> Vec<&'a Value> {
        let (rewritten, _) = desugar(&self.source);
        parse_json_path(&rewritten)
            .ok()
            .and_then(|q| js_path_process(&q, root).ok())
            .map(|found| found.into_iter().map(|r| r.val).collect())
            .unwrap_or_default()
    }

    /// Does this path fall back to jsonpath-rust's evaluator per message?
    pub fn uses_reference_evaluator(&self) -> bool {
        matches!(self.eval, Eval::Full(_))
    }

    /// Is this the direct walk (no jsonpath-rust evaluation per message)?
    pub fn is_simple(&self) -> bool {
        matches!(self.eval, Eval::Simple(_))
    }
}

fn walk<'a>(node: &'a Value, steps: &[Step], out: &mut Vec<&'a Value>) {
    let Some((step, rest)) = steps.split_first() else {
        out.push(node);
        return;
    };
    match (step, node) {
        (Step::Name(n), Value::Object(m)) => {
            if let Some(v) = m.get(n) {
                walk(v, rest, out);
            }
        }
        (Step::Index(i), Value::Array(a)) => {
            let len = a.len() as i64;
            let idx = if *i < 0 { len + i } else { *i };
            if (0..len).contains(&idx)
                && let Some(v) = a.get(idx as usize)
            {
                walk(v, rest, out);
            }
        }
        (Step::Wildcard, Value::Array(a)) => a.iter().for_each(|v| walk(v, rest, out)),
        (Step::Wildcard, Value::Object(m)) => m.values().for_each(|v| walk(v, rest, out)),
        _ => {}
    }
}

/// Parse `$`, `.name`, `['name']`, `["name"]`, `[n]`, `[*]`, `.*` only; `None` otherwise.
fn simple_steps(path: &str) -> Option<Vec<Step>> {
    let b = path.as_bytes();
    if b.first() != Some(&b'$') {
        return None;
    }
    let mut steps = Vec::new();
    let mut i = 1;
    while i < b.len() {
        match b[i] {
            b'.' => {
                if b.get(i + 1) == Some(&b'.') {
                    return None; // descendant segment
                }
                if b.get(i + 1) == Some(&b'*') {
                    steps.push(Step::Wildcard);
                    i += 2;
                    continue;
                }
                let start = i + 1;
                let mut end = start;
                while end < b.len() && is_name_byte(b[end]) && b[end] != b'-' {
                    end += 1;
                }
                if end == start {
                    return None;
                }
                steps.push(Step::Name(path[start..end].to_owned()));
                i = end;
            }
            b'[' => {
                let close = path[i..].find(']')? + i;
                let inner = path[i + 1..close].trim();
                if inner == "*" {
                    steps.push(Step::Wildcard);
                } else if let Some(q) = inner.strip_prefix('\'').and_then(|s| s.strip_suffix('\''))
                {
                    if q.contains(['\\', '\'']) {
                        return None;
                    }
                    steps.push(Step::Name(q.to_owned()));
                } else if let Some(q) = inner.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
                    if q.contains(['\\', '"']) {
                        return None;
                    }
                    steps.push(Step::Name(q.to_owned()));
                } else if let Ok(n) = inner.parse::<i64>() {
                    steps.push(Step::Index(n));
                } else {
                    return None;
                }
                i = close + 1;
            }
            _ => return None,
        }
    }
    Some(steps)
}

fn path_error(
    e: &jsonpath_rust::parser::errors::JsonPathError,
    origin: &[usize],
    source_len: usize,
) -> PathError {
    use jsonpath_rust::parser::errors::JsonPathError as E;
    if let E::PestError(pe) = e {
        let col = match pe.line_col {
            pest::error::LineColLocation::Pos((_, c)) => c,
            pest::error::LineColLocation::Span((_, c), _) => c,
        };
        // pest columns count chars from 1; map through the rewrite to the path as written.
        let byte = col.saturating_sub(1);
        let column = Some(origin.get(byte).map_or(source_len + 1, |b| b + 1));
        let message = match &pe.variant {
            pest::error::ErrorVariant::ParsingError { .. } => {
                "not a valid JSONPath (RFC 9535) here".to_owned()
            }
            pest::error::ErrorVariant::CustomError { message } => message.clone(),
        };
        return PathError { column, message };
    }
    PathError {
        column: None,
        message: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn sel(path: &str, v: &Value) -> Vec<Value> {
        let p = CompiledPath::compile(path).unwrap();
        let mut out = Vec::new();
        p.select(v, &mut out);
        out.into_iter().cloned().collect()
    }

    #[test]
    fn sugar_becomes_brackets() {
        assert_eq!(desugar("$.HDon.DLHDon.@Id").0, "$.HDon.DLHDon['@Id']");
        assert_eq!(desugar("$.MCCQT.#text").0, "$.MCCQT['#text']");
        assert_eq!(desugar("$['a.@b']").0, "$['a.@b']");
    }

    #[test]
    fn simple_paths_walk_directly_and_agree_with_jsonpath() {
        let v = json!({"a": {"b": [{"c": "1", "@d": "x"}, {"c": "2"}], "e": "3"}});
        for path in [
            "$.a.b[*].c",
            "$.a.b[1].c",
            "$.a.b[-1].c",
            "$.a.e",
            "$.a.b[0].@d",
            "$.a.*",
            "$['a']['e']",
        ] {
            let p = CompiledPath::compile(path).unwrap();
            assert!(p.is_simple(), "{path}");
            let (rewritten, _) = desugar(path);
            let q = parse_json_path(&rewritten).unwrap();
            let full: Vec<Value> = js_path_process(&q, &v)
                .unwrap()
                .into_iter()
                .map(|r| r.val.clone())
                .collect();
            assert_eq!(sel(path, &v), full, "{path}");
        }
        assert_eq!(sel("$.a.b[*].c", &v), vec![json!("1"), json!("2")]);
    }

    #[test]
    fn filters_use_jsonpath() {
        let v = json!({"items": [{"k": "a", "v": "1"}, {"k": "b", "v": "2"}]});
        let p = CompiledPath::compile("$.items[?@.k == 'b'].v").unwrap();
        assert!(!p.is_simple());
        assert_eq!(sel("$.items[?@.k == 'b'].v", &v), vec![json!("2")]);
    }

    #[test]
    fn a_bad_path_reports_its_column() {
        let e = CompiledPath::compile("$.HoSo..[").unwrap_err();
        assert!(e.column.is_some(), "{e:?}");
        let e = CompiledPath::compile("$.a.@b[").unwrap_err();
        assert_eq!(e.column, Some(8), "{e:?}");
        let e = CompiledPath::compile("$.a.@b[?@.x ==]").unwrap_err();
        assert_eq!(e.column, Some(15), "{e:?}");
    }
}
