//! RFC 9535 evaluation of the paths the direct walk cannot take (filters, slices,
//! descendants), over the query jsonpath-rust parsed at load time.
//!
//! jsonpath-rust's own evaluator builds the normalized path string of every node it
//! visits and compiles the regular expression of `match()`/`search()` on every call;
//! in a mapping that runs for every message these dominated the profile. Here nothing
//! is built per node and a literal pattern is compiled once, when the mapping loads.
//!
//! [`Query::from_parsed`] takes only what it knows how to evaluate exactly; anything
//! else (a function extension, a logical expression as a function argument) returns
//! `None` and the path keeps jsonpath-rust's evaluator. A test compares both on every
//! path of every adapter, at every node of every sample.

use std::borrow::Cow;

use jsonpath_rust::parser::model::{
    Comparable, Comparison, Filter, FilterAtom, FnArg, JpQuery, Literal, Segment, Selector,
    SingularQuery, SingularQuerySegment, Test, TestFunction,
};
use regex::Regex;
use serde_json::Value;

use super::path::{member, member_exact};

#[derive(Debug, Clone)]
pub(crate) struct Query {
    segments: Vec<Seg>,
}

#[derive(Debug, Clone)]
enum Seg {
    Child(Vec<Sel>),
    Descendant(Vec<Sel>),
}

#[derive(Debug, Clone)]
enum Sel {
    Name(String),
    Wildcard,
    Index(i64),
    Slice(Option<i64>, Option<i64>, Option<i64>),
    Filter(Box<Logical>),
}

/// A filter's condition, for the walk of `path.rs` (which takes filters directly under
/// names, indexes and wildcards) and for this evaluator.
#[derive(Debug, Clone)]
pub(crate) struct Condition {
    logical: Logical,
    /// Whether it reads `@`: a condition on `$` alone holds for every candidate or for
    /// none, and is evaluated once per filter instead of once per candidate.
    reads_current: bool,
}

impl Condition {
    /// `None` when the filter uses something this evaluator does not take.
    pub(crate) fn from_filter(f: &Filter) -> Option<Condition> {
        filter(f).map(|logical| Condition {
            reads_current: logical_reads_current(&logical),
            logical,
        })
    }

    /// Does the filter hold for `current` (`@`) in the document `root` (`$`)?
    pub(crate) fn holds(&self, current: &Value, root: &Value) -> bool {
        logical(&self.logical, current, root)
    }

    /// Whether the condition reads `@` (else its answer is the same for every candidate).
    pub(crate) fn reads_current(&self) -> bool {
        self.reads_current
    }
}

/// Does `l` read `@` at its own level? Queries rooted at `$` do not, whatever filters
/// they hold inside (an inner `@` is the inner filter's candidate).
fn logical_reads_current(l: &Logical) -> bool {
    match l {
        Logical::Or(list) | Logical::And(list) => list.iter().any(logical_reads_current),
        Logical::Not(x) => logical_reads_current(x),
        Logical::Exists(q) => !q.root,
        Logical::ExistsOne(o) => operand_reads_current(o),
        Logical::Regex(t) => {
            operand_reads_current(&t.subject)
                || matches!(&t.pattern, Pattern::Dynamic(o) if operand_reads_current(o))
        }
        Logical::Compare(_, a, b) => operand_reads_current(a) || operand_reads_current(b),
    }
}

fn operand_reads_current(o: &Operand) -> bool {
    match o {
        Operand::Literal(_) => false,
        Operand::Single { root, .. } => !root,
        Operand::Length(inner) => operand_reads_current(inner),
        Operand::Count(q) | Operand::Value(q) | Operand::Nodes(q) => !q.root,
    }
}

#[derive(Debug, Clone)]
enum Logical {
    Or(Vec<Logical>),
    And(Vec<Logical>),
    Not(Box<Logical>),
    /// A query that selects at least one node.
    Exists(NodesQuery),
    /// The same for a singular query (names and indexes): no node list is built.
    ExistsOne(Operand),
    /// `match()` / `search()` in test position.
    Regex(Box<RegexTest>),
    Compare(Op, Operand, Operand),
}

#[derive(Debug, Clone, Copy)]
enum Op {
    Eq,
    Ne,
    Lt,
    Lte,
    Gt,
    Gte,
}

#[derive(Debug, Clone)]
struct NodesQuery {
    /// `$` (else `@`).
    root: bool,
    segments: Vec<Seg>,
}

#[derive(Debug, Clone)]
enum Operand {
    Literal(Value),
    /// A singular query: its one node, or nothing.
    Single {
        root: bool,
        steps: Vec<Step>,
    },
    Length(Box<Operand>),
    Count(NodesQuery),
    Value(NodesQuery),
    /// A query in value position (a function argument): its value when it selects
    /// exactly one node.
    Nodes(NodesQuery),
}

#[derive(Debug, Clone)]
enum Step {
    Name(String),
    Index(i64),
}

#[derive(Debug, Clone)]
struct RegexTest {
    subject: Operand,
    pattern: Pattern,
    /// `search()` (a substring matches) rather than `match()` (the whole string).
    search: bool,
}

#[derive(Debug, Clone)]
enum Pattern {
    /// A literal pattern, compiled once; `None` when it does not compile (never matches).
    Fixed(Option<Regex>),
    /// A pattern read from the document, compiled per evaluation.
    Dynamic(Operand),
}

impl Query {
    /// The evaluable form of a parsed query, or `None` when it uses something this
    /// evaluator does not take.
    pub(crate) fn from_parsed(q: &JpQuery) -> Option<Query> {
        Some(Query {
            segments: segments(&q.segments)?,
        })
    }

    /// The nodes selected from `root`, in document order.
    pub(crate) fn select<'a>(&self, root: &'a Value, out: &mut Vec<&'a Value>) {
        let mut current = vec![root];
        for seg in &self.segments {
            let mut next = Vec::new();
            for node in current {
                apply_segment(seg, node, root, &mut next);
            }
            if next.is_empty() {
                return;
            }
            current = next;
        }
        out.extend(current);
    }
}

fn segments(list: &[Segment]) -> Option<Vec<Seg>> {
    list.iter().map(segment).collect()
}

fn segment(s: &Segment) -> Option<Seg> {
    Some(match s {
        Segment::Selector(sel) => Seg::Child(vec![selector(sel)?]),
        Segment::Selectors(sels) => Seg::Child(sels.iter().map(selector).collect::<Option<_>>()?),
        Segment::Descendant(inner) => match segment(inner)? {
            Seg::Child(sels) => Seg::Descendant(sels),
            Seg::Descendant(_) => return None,
        },
    })
}

fn selector(s: &Selector) -> Option<Sel> {
    Some(match s {
        Selector::Name(n) => Sel::Name(n.clone()),
        Selector::Wildcard => Sel::Wildcard,
        Selector::Index(i) => Sel::Index(*i),
        Selector::Slice(a, b, c) => Sel::Slice(*a, *b, *c),
        Selector::Filter(f) => Sel::Filter(Box::new(filter(f)?)),
    })
}

fn filter(f: &Filter) -> Option<Logical> {
    Some(match f {
        Filter::Or(list) => Logical::Or(list.iter().map(filter).collect::<Option<_>>()?),
        Filter::And(list) => Logical::And(list.iter().map(filter).collect::<Option<_>>()?),
        Filter::Atom(a) => atom(a)?,
    })
}

fn not(l: Logical, negate: bool) -> Logical {
    if negate { Logical::Not(Box::new(l)) } else { l }
}

fn atom(a: &FilterAtom) -> Option<Logical> {
    Some(match a {
        FilterAtom::Filter { expr, not: n } => not(filter(expr)?, *n),
        FilterAtom::Test { expr, not: n } => not(test(expr)?, *n),
        FilterAtom::Comparison(c) => {
            let (op, l, r) = match c.as_ref() {
                Comparison::Eq(l, r) => (Op::Eq, l, r),
                Comparison::Ne(l, r) => (Op::Ne, l, r),
                Comparison::Gt(l, r) => (Op::Gt, l, r),
                Comparison::Gte(l, r) => (Op::Gte, l, r),
                Comparison::Lt(l, r) => (Op::Lt, l, r),
                Comparison::Lte(l, r) => (Op::Lte, l, r),
            };
            Logical::Compare(op, comparable(l)?, comparable(r)?)
        }
    })
}

fn test(t: &Test) -> Option<Logical> {
    Some(match t {
        Test::RelQuery(segs) => exists(false, segs)?,
        Test::AbsQuery(q) => exists(true, &q.segments)?,
        Test::Function(f) => match f.as_ref() {
            TestFunction::Match(s, p) => Logical::Regex(Box::new(regex_test(s, p, false)?)),
            TestFunction::Search(s, p) => Logical::Regex(Box::new(regex_test(s, p, true)?)),
            _ => return None,
        },
    })
}

fn exists(root: bool, segs: &[Segment]) -> Option<Logical> {
    Some(match singular_steps(segs) {
        Some(steps) => Logical::ExistsOne(Operand::Single { root, steps }),
        None => Logical::Exists(NodesQuery {
            root,
            segments: segments(segs)?,
        }),
    })
}

/// The steps of a query made only of names and indexes, which selects one node or none.
fn singular_steps(segs: &[Segment]) -> Option<Vec<Step>> {
    segs.iter()
        .map(|s| match s {
            Segment::Selector(Selector::Name(n)) => Some(Step::Name(n.clone())),
            Segment::Selector(Selector::Index(i)) => Some(Step::Index(*i)),
            _ => None,
        })
        .collect()
}

fn regex_test(subject: &FnArg, pattern: &FnArg, search: bool) -> Option<RegexTest> {
    let pattern = match pattern {
        FnArg::Literal(Literal::String(p)) => {
            Pattern::Fixed(super::regexes::compile(&prepare_regex(p, search)).ok())
        }
        other => Pattern::Dynamic(arg(other)?),
    };
    Some(RegexTest {
        subject: arg(subject)?,
        pattern,
        search,
    })
}

fn comparable(c: &Comparable) -> Option<Operand> {
    Some(match c {
        Comparable::Literal(l) => Operand::Literal(literal(l)),
        Comparable::SingularQuery(q) => single(q),
        Comparable::Function(f) => function(f)?,
    })
}

fn single(q: &SingularQuery) -> Operand {
    let (root, segs) = match q {
        SingularQuery::Current(s) => (false, s),
        SingularQuery::Root(s) => (true, s),
    };
    Operand::Single {
        root,
        steps: segs
            .iter()
            .map(|s| match s {
                SingularQuerySegment::Name(n) => Step::Name(n.clone()),
                SingularQuerySegment::Index(i) => Step::Index(*i),
            })
            .collect(),
    }
}

fn function(f: &TestFunction) -> Option<Operand> {
    Some(match f {
        TestFunction::Length(a) => Operand::Length(Box::new(arg(a)?)),
        TestFunction::Count(a) => Operand::Count(nodes_arg(a)?),
        TestFunction::Value(a) => Operand::Value(nodes_arg(a)?),
        _ => return None,
    })
}

fn nodes_arg(a: &FnArg) -> Option<NodesQuery> {
    match a {
        FnArg::Test(t) => match t.as_ref() {
            Test::RelQuery(segs) => Some(NodesQuery {
                root: false,
                segments: segments(segs)?,
            }),
            Test::AbsQuery(q) => Some(NodesQuery {
                root: true,
                segments: segments(&q.segments)?,
            }),
            Test::Function(_) => None,
        },
        _ => None,
    }
}

fn arg(a: &FnArg) -> Option<Operand> {
    match a {
        FnArg::Literal(l) => Some(Operand::Literal(literal(l))),
        FnArg::Test(t) => match t.as_ref() {
            Test::Function(f) => function(f),
            Test::RelQuery(segs) => singular_steps(segs)
                .map(|steps| Operand::Single { root: false, steps })
                .or_else(|| nodes_arg(a).map(Operand::Nodes)),
            Test::AbsQuery(q) => singular_steps(&q.segments)
                .map(|steps| Operand::Single { root: true, steps })
                .or_else(|| nodes_arg(a).map(Operand::Nodes)),
        },
        FnArg::Filter(_) => None,
    }
}

// ---- evaluation ----

fn apply_segment<'a>(seg: &Seg, node: &'a Value, root: &'a Value, out: &mut Vec<&'a Value>) {
    match seg {
        // A union of names names the spellings it wants itself: no fallback, or
        // `$['Nu','@Nu']` would select one node twice.
        Seg::Child(sels) if sels.len() > 1 => {
            for s in sels {
                match (s, node) {
                    (Sel::Name(n), Value::Object(m)) => out.extend(member_exact(m, n)),
                    _ => apply_selector(s, node, root, out),
                }
            }
        }
        Seg::Child(sels) => {
            for s in sels {
                apply_selector(s, node, root, out);
            }
        }
        Seg::Descendant(sels) => descend(sels, node, root, out),
    }
}

/// The node, then its descendants, in document order.
fn descend<'a>(sels: &[Sel], node: &'a Value, root: &'a Value, out: &mut Vec<&'a Value>) {
    for s in sels {
        apply_selector(s, node, root, out);
    }
    match node {
        Value::Array(a) => a.iter().for_each(|c| descend(sels, c, root, out)),
        Value::Object(m) => m.values().for_each(|c| descend(sels, c, root, out)),
        _ => {}
    }
}

fn index(len: usize, i: i64) -> Option<usize> {
    let len = i64::try_from(len).ok()?;
    let i = if i < 0 { len + i } else { i };
    if (0..len).contains(&i) {
        usize::try_from(i).ok()
    } else {
        None
    }
}

fn apply_selector<'a>(s: &Sel, node: &'a Value, root: &'a Value, out: &mut Vec<&'a Value>) {
    match (s, node) {
        (Sel::Name(n), Value::Object(m)) => out.extend(member(m, n)),
        (Sel::Wildcard, Value::Object(m)) => out.extend(m.values()),
        (Sel::Wildcard, Value::Array(a)) => out.extend(a.iter()),
        (Sel::Index(i), Value::Array(a)) => out.extend(index(a.len(), *i).and_then(|i| a.get(i))),
        (Sel::Slice(start, end, step), Value::Array(a)) => slice(a, *start, *end, *step, out),
        (Sel::Filter(f), Value::Array(a)) => {
            out.extend(a.iter().filter(|c| logical(f, c, root)));
        }
        (Sel::Filter(f), Value::Object(m)) => {
            out.extend(m.values().filter(|c| logical(f, c, root)));
        }
        _ => {}
    }
}

/// RFC 9535 section 2.3.4.2.2.
fn slice<'a>(
    a: &'a [Value],
    start: Option<i64>,
    end: Option<i64>,
    step: Option<i64>,
    out: &mut Vec<&'a Value>,
) {
    let Ok(len) = i64::try_from(a.len()) else {
        return;
    };
    let step = step.unwrap_or(1);
    if step == 0 {
        return;
    }
    let norm = |i: i64| if i >= 0 { i } else { len + i };
    let at = |i: i64| usize::try_from(i).ok().and_then(|i| a.get(i));
    if step > 0 {
        let lower = norm(start.unwrap_or(0)).clamp(0, len);
        let upper = norm(end.unwrap_or(len)).clamp(0, len);
        let mut i = lower;
        while i < upper {
            out.extend(at(i));
            i += step;
        }
    } else {
        let upper = norm(start.unwrap_or(len - 1)).clamp(-1, len - 1);
        let lower = end.map_or(-1, |e| norm(e).clamp(-1, len - 1));
        let mut i = upper;
        while lower < i {
            out.extend(at(i));
            i += step;
        }
    }
}

fn nodes<'a>(q: &NodesQuery, current: &'a Value, root: &'a Value) -> Vec<&'a Value> {
    let mut now = vec![if q.root { root } else { current }];
    for seg in &q.segments {
        let mut next = Vec::new();
        for n in now {
            apply_segment(seg, n, root, &mut next);
        }
        now = next;
        if now.is_empty() {
            break;
        }
    }
    now
}

fn logical(l: &Logical, current: &Value, root: &Value) -> bool {
    match l {
        Logical::Or(list) => list.iter().any(|x| logical(x, current, root)),
        Logical::And(list) => list.iter().all(|x| logical(x, current, root)),
        Logical::Not(x) => !logical(x, current, root),
        Logical::Exists(q) => !nodes(q, current, root).is_empty(),
        Logical::ExistsOne(o) => operand(o, current, root).is_some(),
        Logical::Regex(t) => {
            let subject = operand(&t.subject, current, root);
            let Some(text) = subject.as_deref().and_then(Value::as_str) else {
                return false;
            };
            match &t.pattern {
                Pattern::Fixed(re) => re.as_ref().is_some_and(|re| re.is_match(text)),
                Pattern::Dynamic(p) => {
                    let p = operand(p, current, root);
                    p.as_deref()
                        .and_then(Value::as_str)
                        .and_then(|p| Regex::new(&prepare_regex(p, t.search)).ok())
                        .is_some_and(|re| re.is_match(text))
                }
            }
        }
        Logical::Compare(op, l, r) => {
            let (l, r) = (operand(l, current, root), operand(r, current, root));
            let (l, r) = (l.as_deref(), r.as_deref());
            match op {
                Op::Eq => eq(l, r),
                Op::Ne => !eq(l, r),
                Op::Lt => lt(l, r),
                Op::Gt => lt(r, l),
                Op::Lte => lt(l, r) || eq(l, r),
                Op::Gte => lt(r, l) || eq(l, r),
            }
        }
    }
}

fn operand<'a>(o: &'a Operand, current: &'a Value, root: &'a Value) -> Option<Cow<'a, Value>> {
    match o {
        Operand::Literal(v) => Some(Cow::Borrowed(v)),
        Operand::Single { root: r, steps } => {
            let mut n = if *r { root } else { current };
            for s in steps {
                n = match (s, n) {
                    (Step::Name(k), Value::Object(m)) => member(m, k)?,
                    (Step::Index(i), Value::Array(a)) => a.get(index(a.len(), *i)?)?,
                    _ => return None,
                };
            }
            Some(Cow::Borrowed(n))
        }
        Operand::Nodes(q) | Operand::Value(q) => {
            let found = nodes(q, current, root);
            match found.as_slice() {
                [one] => Some(Cow::Borrowed(*one)),
                _ => None,
            }
        }
        Operand::Count(q) => Some(Cow::Owned(Value::from(nodes(q, current, root).len()))),
        Operand::Length(a) => {
            let v = operand(a, current, root)?;
            let n = match v.as_ref() {
                Value::String(s) => s.chars().count(),
                Value::Array(a) => a.len(),
                Value::Object(m) => m.len(),
                _ => return None,
            };
            Some(Cow::Owned(Value::from(n)))
        }
    }
}

/// jsonpath-rust's equality: two absent operands are equal, numbers compare as floats.
fn eq(l: Option<&Value>, r: Option<&Value>) -> bool {
    match (l, r) {
        (None, None) => true,
        (Some(l), Some(r)) => match (as_number(l), as_number(r)) {
            (Some(a), Some(b)) => (a - b).abs() < f64::EPSILON,
            _ => l == r,
        },
        _ => false,
    }
}

/// jsonpath-rust's order: numbers as floats, strings by bytes, nothing else.
fn lt(l: Option<&Value>, r: Option<&Value>) -> bool {
    let (Some(l), Some(r)) = (l, r) else {
        return false;
    };
    match (as_number(l), as_number(r)) {
        (Some(a), Some(b)) => a < b,
        _ => match (l.as_str(), r.as_str()) {
            (Some(a), Some(b)) => a < b,
            _ => false,
        },
    }
}

fn as_number(v: &Value) -> Option<f64> {
    v.as_f64().or_else(|| v.as_i64().map(|i| i as f64))
}

fn literal(l: &Literal) -> Value {
    match l {
        Literal::Int(i) => Value::from(*i),
        Literal::Float(f) => Value::from(*f),
        Literal::String(s) => Value::String(s.clone()),
        Literal::Bool(b) => Value::Bool(*b),
        Literal::Null => Value::Null,
    }
}

/// jsonpath-rust's translation of an I-Regexp (RFC 9485) into the `regex` crate's syntax:
/// `.` outside a class does not match line ends; `match` anchors the whole pattern.
fn prepare_regex(pattern: &str, substring: bool) -> String {
    let mut translated = String::with_capacity(pattern.len());
    let mut chars = pattern.chars();
    let mut in_class = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                translated.push(c);
                if let Some(escaped) = chars.next() {
                    translated.push(escaped);
                }
            }
            '[' if !in_class => {
                in_class = true;
                translated.push(c);
            }
            ']' if in_class => {
                in_class = false;
                translated.push(c);
            }
            '.' if !in_class => translated.push_str(r"[^\n\r]"),
            _ => translated.push(c),
        }
    }
    if substring {
        translated
    } else {
        format!("^(?:{translated})$")
    }
}
