//! JSONPath in mappings: compiled once at load, evaluated per message.
//!
//! Every path is parsed by jsonpath-rust (RFC 9535) at compile time, so a bad path is a
//! configuration error with its position. Paths made of names, indexes, wildcards and
//! filters (nearly all of them) are then evaluated by a direct walk that allocates
//! nothing; filter conditions are `eval.rs`'s, with literal regexes compiled once.
//! Descendants, unions and slices go to `eval.rs` whole; only function extensions are
//! left to jsonpath-rust's evaluator. Tests compare all of it with jsonpath-rust on every
//! shipped path and on generated trees.

use jsonpath_rust::parser::model::{
    Comparable, FilterAtom, FnArg, JpQuery, Segment, Selector, SingularQuery, SingularQuerySegment,
    Test, TestFunction,
};
use jsonpath_rust::parser::parse_json_path;
use jsonpath_rust::query::js_path_process;
use serde_json::{Map, Value};

use crate::decode::projection::{NodeId, ProjectionBuilder};

/// A compiled JSONPath.
#[derive(Debug, Clone)]
pub struct CompiledPath {
    /// As written in the mapping.
    pub source: String,
    query: Box<JpQuery>,
    eval: Eval,
}

#[derive(Debug, Clone)]
enum Eval {
    Walk(Vec<Step>),
    /// Descendants, unions, slices, nested filters, `length`/`count`/`value`: the
    /// crate's RFC 9535 evaluator (`eval.rs`).
    Query(Box<super::eval::Query>),
    /// What neither takes (function extensions): jsonpath-rust's evaluator.
    Full,
}

#[derive(Debug, Clone)]
enum Step {
    Name(String),
    Index(i64),
    Wildcard,
    Filter(Box<super::eval::Condition>),
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
        let eval = match walk_steps(&query) {
            Some(steps) => Eval::Walk(steps),
            None => match super::eval::Query::from_parsed(&query) {
                Some(q) => Eval::Query(Box::new(q)),
                None => Eval::Full,
            },
        };
        Ok(CompiledPath {
            source: source.to_owned(),
            query: Box::new(query),
            eval,
        })
    }

    /// The nodes this path selects in `root`, in document order.
    pub fn select<'a>(&self, root: &'a Value, out: &mut Vec<&'a Value>) {
        match &self.eval {
            Eval::Walk(steps) => walk(root, root, steps, out),
            Eval::Query(q) => q.select(root, out),
            Eval::Full => out.extend(self.select_reference(root)),
        }
    }

    /// The nodes jsonpath-rust's own evaluator selects (the fallback, and the reference
    /// tests compare the crate's evaluation with).
    #[doc(hidden)]
    pub fn select_reference<'a>(&self, root: &'a Value) -> Vec<&'a Value> {
        js_path_process(&self.query, root)
            .map(|found| found.into_iter().map(|r| r.val).collect())
            .unwrap_or_default()
    }

    /// Does this path fall back to jsonpath-rust's evaluator per message?
    pub fn uses_reference_evaluator(&self) -> bool {
        matches!(self.eval, Eval::Full)
    }

    /// For a plain chain of names, which selects one node or none: that node unless
    /// `skip` refuses it. `None` for every other path (use [`CompiledPath::select`]).
    pub(crate) fn select_one<'a>(
        &self,
        root: &'a Value,
        skip: fn(&Value) -> bool,
    ) -> Option<&'a Value> {
        match &self.eval {
            Eval::Walk(steps) if steps.iter().all(|s| matches!(s, Step::Name(_))) => {
                let mut node = root;
                for step in steps {
                    let Step::Name(n) = step else { return None };
                    node = member(node.as_object()?, n)?;
                }
                (!skip(node)).then_some(node)
            }
            _ => None,
        }
    }

    /// Is this a plain chain of names (`select_one` answers for it)?
    pub(crate) fn is_names(&self) -> bool {
        matches!(&self.eval, Eval::Walk(steps) if steps.iter().all(|s| matches!(s, Step::Name(_))))
    }

    /// What this path reads, step by step, when it is a walk of names, indexes,
    /// wildcards and filters (an index, a wildcard or a filter reads any item or
    /// member); `None` for other paths (descendants, unions, functions).
    pub fn read_steps(&self) -> Option<Vec<lgsp_core::agreement::Read>> {
        use lgsp_core::agreement::Read;
        let Eval::Walk(steps) = &self.eval else {
            return None;
        };
        Some(
            steps
                .iter()
                .map(|s| match s {
                    Step::Name(n) => Read::Name(n.clone()),
                    Step::Index(_) | Step::Wildcard | Step::Filter(_) => Read::Any,
                })
                .collect(),
        )
    }

    /// Is this the direct walk (no jsonpath-rust evaluation per message)?
    pub fn is_simple(&self) -> bool {
        matches!(self.eval, Eval::Walk(_))
    }
}

impl CompiledPath {
    /// What this path can read, starting from the nodes `from` of a projection being
    /// built: returns the nodes where it ends (the caller decides whether they are read
    /// whole). Conservative: whatever a filter or function looks at is kept whole, a
    /// descendant segment keeps the subtree it starts from whole, a wildcard, filter,
    /// index or slice may apply to an array of same-named elements (the node itself) or
    /// to any member of an element (its wildcard node).
    pub(crate) fn project(&self, from: &[NodeId], b: &mut ProjectionBuilder) -> Vec<NodeId> {
        project_segments(&self.query.segments, from, from, b)
    }
}

fn project_segments(
    segments: &[Segment],
    start: &[NodeId],
    root: &[NodeId],
    b: &mut ProjectionBuilder,
) -> Vec<NodeId> {
    let mut states = start.to_vec();
    for segment in segments {
        states = match segment {
            Segment::Descendant(_) => {
                for &s in &states {
                    b.whole(s);
                }
                return Vec::new();
            }
            Segment::Selector(selector) => project_selector(selector, &states, root, b),
            Segment::Selectors(selectors) => {
                let mut all = Vec::new();
                for selector in selectors {
                    all.extend(project_selector(selector, &states, root, b));
                }
                all
            }
        };
        states.sort_unstable();
        states.dedup();
    }
    states
}

fn project_selector(
    selector: &Selector,
    states: &[NodeId],
    root: &[NodeId],
    b: &mut ProjectionBuilder,
) -> Vec<NodeId> {
    match selector {
        Selector::Name(n) => states.iter().map(|&s| b.child(s, n)).collect(),
        Selector::Index(_) | Selector::Slice(..) => states.to_vec(),
        Selector::Wildcard => {
            let mut out = states.to_vec();
            out.extend(states.iter().map(|&s| b.any(s)));
            out
        }
        Selector::Filter(f) => {
            let mut out = states.to_vec();
            out.extend(states.iter().map(|&s| b.any(s)));
            for &candidate in &out {
                project_filter(f, candidate, root, b);
            }
            out
        }
    }
}

fn project_filter(
    f: &jsonpath_rust::parser::model::Filter,
    current: NodeId,
    root: &[NodeId],
    b: &mut ProjectionBuilder,
) {
    use jsonpath_rust::parser::model::Filter;
    match f {
        Filter::Or(fs) | Filter::And(fs) => {
            for f in fs {
                project_filter(f, current, root, b);
            }
        }
        Filter::Atom(FilterAtom::Filter { expr, .. }) => project_filter(expr, current, root, b),
        Filter::Atom(FilterAtom::Test { expr, .. }) => project_test(expr, current, root, b),
        Filter::Atom(FilterAtom::Comparison(c)) => {
            let (l, r) = c.vals();
            project_comparable(l, current, root, b);
            project_comparable(r, current, root, b);
        }
    }
}

fn project_test(t: &Test, current: NodeId, root: &[NodeId], b: &mut ProjectionBuilder) {
    let ends = match t {
        Test::RelQuery(segments) => project_segments(segments, &[current], root, b),
        Test::AbsQuery(q) => project_segments(&q.segments, root, root, b),
        Test::Function(tf) => return project_function(tf, current, root, b),
    };
    for e in ends {
        b.whole(e);
    }
}

fn project_function(
    tf: &TestFunction,
    current: NodeId,
    root: &[NodeId],
    b: &mut ProjectionBuilder,
) {
    let arg = |a: &FnArg, b: &mut ProjectionBuilder| match a {
        FnArg::Literal(_) => {}
        FnArg::Test(t) => project_test(t, current, root, b),
        FnArg::Filter(f) => project_filter(f, current, root, b),
    };
    match tf {
        TestFunction::Length(a) => arg(a, b),
        TestFunction::Value(a) | TestFunction::Count(a) => arg(a, b),
        TestFunction::Search(x, y) | TestFunction::Match(x, y) => {
            arg(x, b);
            arg(y, b);
        }
        TestFunction::Custom(_, args) => {
            for a in args {
                arg(a, b);
            }
        }
    }
}

fn project_comparable(c: &Comparable, current: NodeId, root: &[NodeId], b: &mut ProjectionBuilder) {
    let (segments, start): (&[SingularQuerySegment], Vec<NodeId>) = match c {
        Comparable::Literal(_) => return,
        Comparable::Function(tf) => return project_function(tf, current, root, b),
        Comparable::SingularQuery(SingularQuery::Current(s)) => (s, vec![current]),
        Comparable::SingularQuery(SingularQuery::Root(s)) => (s, root.to_vec()),
    };
    let mut states = start;
    for s in segments {
        if let SingularQuerySegment::Name(n) = s {
            states = states.iter().map(|&x| b.child(x, n)).collect();
        }
    }
    for s in states {
        b.whole(s);
    }
}

fn walk<'a>(node: &'a Value, root: &'a Value, steps: &[Step], out: &mut Vec<&'a Value>) {
    let Some((step, rest)) = steps.split_first() else {
        out.push(node);
        return;
    };
    match (step, node) {
        (Step::Name(n), Value::Object(m)) => {
            if let Some(v) = member(m, n) {
                walk(v, root, rest, out);
            }
        }
        (Step::Index(i), Value::Array(a)) => {
            if let Some(v) = index(a, *i) {
                walk(v, root, rest, out);
            }
        }
        (Step::Wildcard, Value::Array(a)) => a.iter().for_each(|v| walk(v, root, rest, out)),
        (Step::Wildcard, Value::Object(m)) => m.values().for_each(|v| walk(v, root, rest, out)),
        // A condition on `$` alone is answered once for all the candidates.
        (Step::Filter(c), Value::Array(a)) if !c.reads_current() => {
            if let Some(first) = a.first()
                && c.holds(first, root)
            {
                a.iter().for_each(|v| walk(v, root, rest, out));
            }
        }
        (Step::Filter(c), Value::Object(m)) if !c.reads_current() => {
            if let Some(first) = m.values().next()
                && c.holds(first, root)
            {
                m.values().for_each(|v| walk(v, root, rest, out));
            }
        }
        (Step::Filter(c), Value::Array(a)) => {
            for v in a {
                if c.holds(v, root) {
                    walk(v, root, rest, out);
                }
            }
        }
        (Step::Filter(c), Value::Object(m)) => {
            for v in m.values() {
                if c.holds(v, root) {
                    walk(v, root, rest, out);
                }
            }
        }
        _ => {}
    }
}

thread_local! {
    static EXACT_NAMES: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Run `f` with names looked up exactly as RFC 9535 does (no other spelling of a
/// field): what the tests comparing the evaluator with jsonpath-rust need, and what a
/// union of names (`$['Nu','@Nu']`, which names both spellings itself) gets.
pub fn exact_names<T>(f: impl FnOnce() -> T) -> T {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            EXACT_NAMES.set(self.0);
        }
    }
    let _restore = Restore(EXACT_NAMES.replace(true));
    f()
}

/// The member `key` of an object, exactly as named.
pub(crate) fn member_exact<'a>(m: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    if m.len() <= 16 {
        m.iter().find(|(k, _)| k.as_str() == key).map(|(_, v)| v)
    } else {
        m.get(key)
    }
}

/// The member `key` of an object; when it has none, the member that names the same
/// field in another spelling ([`crate::decode::same_field`]: an attribute for an
/// element and the reverse, another key style), so a sender's variant reads as the
/// mapping's own. Elements have few members: comparing the keys in order costs less
/// than hashing one (the map's hasher is SipHash), so small maps are scanned.
pub(crate) fn member<'a>(m: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    member_exact(m, key).or_else(|| {
        // `#text` is the element's own text, never a field.
        if key.starts_with('#') || EXACT_NAMES.get() {
            return None;
        }
        m.iter()
            .find(|(k, _)| !k.starts_with('#') && crate::decode::same_field(key, k))
            .map(|(_, v)| v)
    })
}

fn index(a: &[Value], i: i64) -> Option<&Value> {
    let len = a.len() as i64;
    let idx = if i < 0 { len + i } else { i };
    if (0..len).contains(&idx) {
        a.get(idx as usize)
    } else {
        None
    }
}

/// The walk for `query`, or `None` when it uses something the walk does not take
/// (descendants, unions, slices, nested filters, `length`/`count`/`value`, function
/// extensions: `eval.rs` evaluates those).
fn walk_steps(query: &JpQuery) -> Option<Vec<Step>> {
    query
        .segments
        .iter()
        .map(|segment| match segment {
            Segment::Selector(Selector::Name(n)) => Some(Step::Name(n.clone())),
            Segment::Selector(Selector::Index(i)) => Some(Step::Index(*i)),
            Segment::Selector(Selector::Wildcard) => Some(Step::Wildcard),
            Segment::Selector(Selector::Filter(f)) => {
                super::eval::Condition::from_filter(f).map(|c| Step::Filter(Box::new(c)))
            }
            _ => None,
        })
        .collect()
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
    fn filters_are_walked_without_jsonpath_rust() {
        let v = json!({"items": [{"k": "a", "v": "1"}, {"k": "b", "v": "2"}]});
        let p = CompiledPath::compile("$.items[?@.k == 'b'].v").unwrap();
        assert!(p.is_simple(), "comparisons of singular queries are walked");
        assert_eq!(sel("$.items[?@.k == 'b'].v", &v), vec![json!("2")]);
        let p = CompiledPath::compile("$.items[?length(@.k) == 1].v").unwrap();
        assert!(
            p.is_simple() && !p.uses_reference_evaluator(),
            "a filter with length() is walked too (its condition is eval.rs's)"
        );
        assert_eq!(
            sel("$.items[?length(@.k) == 1].v", &v),
            vec![json!("1"), json!("2")]
        );
    }

    /// The walk and jsonpath-rust agree on filters, on trees where they match and where
    /// they do not (absent members, numbers against strings, nested arrays).
    #[test]
    fn walked_filters_agree_with_jsonpath() {
        let trees = [
            json!({"a": {"b": [{"c": "1", "d": "KHAC:5"}, {"c": "2", "d": "10%"}], "e": "VND"}}),
            json!({"a": {"b": {"c": 1, "d": "10%"}, "e": "USD"}}),
            json!({"a": {"b": [{"c": 1.0}, {"c": "1"}, {}], "e": ""}}),
            json!({"a": [{"b": [{"c": "x"}]}, {"b": {"c": "y"}}]}),
            json!({"a": "s"}),
        ];
        let paths = [
            "$.a.b[?@.c == '1'].d",
            "$.a.b[?@.c == 1].d",
            "$.a.b[?@.c != '1']",
            "$.a.b[?@.c > 0]",
            "$.a.b[?@.c >= 1]",
            "$.a.b[?@.c < '2']",
            "$.a.b[?@.c <= '1']",
            "$.a.b[?@.d]",
            "$.a.b[?!@.d]",
            "$.a.b[?search(@.d, '^KHAC:')].c",
            "$.a.b[?match(@.d, '1.%')].c",
            "$.a.b[?match(@.d, 'a(')]",
            "$.a.b[?search(@.d, 1)]",
            "$.a[?$.a.e == 'VND' || !$.a.e].b",
            "$.a[?$.a.e && $.a.e != 'VND'].b",
            "$.a[?search($.a.e, '^V')].e",
            "$.a.b[*][?@ == '1']",
            "$.a[*].b[?@.c == 'x'].c",
            "$.a[0].b[?(@.c == 'x' || @.c == 'y')]",
            "$.a.b[?@.c == null]",
            "$.a.b[?@.missing == @.other]",
            "$[?@.b]",
        ];
        for path in paths {
            let p = CompiledPath::compile(path).unwrap();
            assert!(p.is_simple(), "{path} should be walked");
            let q = parse_json_path(&desugar(path).0).unwrap();
            for tree in &trees {
                let full: Vec<Value> = js_path_process(&q, tree)
                    .map(|r| r.into_iter().map(|r| r.val.clone()).collect())
                    .unwrap_or_default();
                assert_eq!(sel(path, tree), full, "{path} on {tree}");
            }
        }
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
