//! The variant generator: from every sample an adapter's test cases map (`samples/` of
//! each shipped adapter, with their golden outputs), derive the variants a real sender
//! produces of the same data, and check that each maps to the same canonical document as
//! the sample itself. No variant is written by hand: a sample added to an adapter is
//! covered by every kind below.
//!
//! XML: a byte order mark, a default namespace, a namespace prefix on every element,
//! CDATA for every text, decomposed (NFD) text, everything on one line, leaf elements as
//! attributes of their parent, attributes as child elements, a list root holding the
//! document once, the other date spellings (`dd/mm/yyyy` <-> `yyyy-mm-dd`, `dd-mm-yyyy`,
//! `dd/mm/yyyy HH:MM:SS`) and the decimal comma.
//! JSON: a byte order mark, one line and indented, NFD strings, the other key style
//! (camelCase <-> snake_case), PascalCase keys, a list of one, numbers as strings, the
//! other date spellings and the decimal comma in strings.
//!
//! Variants the adapters do not accept are listed in each adapter's README with the reason;
//! none is skipped here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use lgsp_mapping::decode::{Format, Limits};
use lgsp_mapping::dsl::testing::{CaseInput, case_input, load_cases, map_case};
use lgsp_mapping::dsl::{Adapter, Decoding, Mapped, payload_format};
use quick_xml::events::Event;
use serde_json::Value;
use unicode_normalization::UnicodeNormalization;

#[path = "support/shipped.rs"]
mod shipped;

// ---- a small XML tree, enough to rewrite a sample and write it back ----

#[derive(Debug, Clone)]
enum Node {
    Element(Element),
    Text(String),
}

#[derive(Debug, Clone)]
struct Element {
    name: String,
    attrs: Vec<(String, String)>,
    children: Vec<Node>,
}

/// The root element of `xml` (a BOM, the declaration and comments dropped).
fn parse(xml: &str) -> Element {
    let xml = xml.strip_prefix('\u{feff}').unwrap_or(xml);
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut stack: Vec<Element> = Vec::new();
    let mut root = None;
    let open = |s: &quick_xml::events::BytesStart<'_>| Element {
        name: s.name().0.to_owned(),
        attrs: s
            .attributes()
            .map(|a| {
                let a = a.unwrap();
                (
                    a.key.0.to_owned(),
                    a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                        .unwrap()
                        .into_owned(),
                )
            })
            .collect(),
        children: Vec::new(),
    };
    let mut close = |e: Element, stack: &mut Vec<Element>| match stack.last_mut() {
        Some(parent) => parent.children.push(Node::Element(e)),
        None => root = Some(e),
    };
    let push_text = |stack: &mut Vec<Element>, t: &str| {
        if let Some(top) = stack.last_mut() {
            if let Some(Node::Text(prev)) = top.children.last_mut() {
                prev.push_str(t);
            } else {
                top.children.push(Node::Text(t.to_owned()));
            }
        }
    };
    loop {
        match reader.read_event().unwrap() {
            Event::Start(s) => stack.push(open(&s)),
            Event::Empty(s) => {
                let e = open(&s);
                close(e, &mut stack);
            }
            Event::End(_) => {
                let e = stack.pop().unwrap();
                close(e, &mut stack);
            }
            Event::Text(t) => push_text(&mut stack, &t.xml10_content()),
            Event::CData(t) => push_text(&mut stack, &t.xml10_content()),
            Event::GeneralRef(r) => {
                let c = match r.resolve_char_ref().unwrap() {
                    Some(c) => c.to_string(),
                    None => {
                        let name: &str = &r;
                        quick_xml::escape::resolve_predefined_entity(name)
                            .unwrap()
                            .to_owned()
                    }
                };
                push_text(&mut stack, &c);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    root.unwrap()
}

#[derive(Clone, Copy)]
struct Style {
    indent: bool,
    cdata: bool,
}

const ONE_LINE: Style = Style {
    indent: false,
    cdata: false,
};

fn write(root: &Element, style: Style) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
    if style.indent {
        out.push('\n');
    }
    write_element(root, style, 0, &mut out);
    out
}

fn write_element(e: &Element, style: Style, depth: usize, out: &mut String) {
    out.push('<');
    out.push_str(&e.name);
    for (k, v) in &e.attrs {
        out.push_str(&format!(
            " {k}=\"{}\"",
            quick_xml::escape::escape(v.as_str())
        ));
    }
    if e.children.is_empty() {
        out.push_str("/>");
        return;
    }
    out.push('>');
    let has_elements = e.children.iter().any(|c| matches!(c, Node::Element(_)));
    for c in &e.children {
        match c {
            Node::Text(t) if has_elements && t.trim().is_empty() => {}
            Node::Text(t) if style.cdata && !t.contains("]]>") && !t.trim().is_empty() => {
                out.push_str(&format!("<![CDATA[{t}]]>"));
            }
            Node::Text(t) => out.push_str(&quick_xml::escape::escape(t.as_str())),
            Node::Element(child) => {
                if style.indent {
                    out.push('\n');
                    out.push_str(&"  ".repeat(depth + 1));
                }
                write_element(child, style, depth + 1, out);
            }
        }
    }
    if style.indent && has_elements {
        out.push('\n');
        out.push_str(&"  ".repeat(depth));
    }
    out.push_str(&format!("</{}>", e.name));
}

impl Element {
    /// The element's text when it is a leaf: no attributes, no child element.
    fn leaf_text(&self) -> Option<&str> {
        if !self.attrs.is_empty() {
            return None;
        }
        match self.children.as_slice() {
            [Node::Text(t)] => Some(t),
            _ => None,
        }
    }

    fn visit(&mut self, f: &mut impl FnMut(&mut Element)) {
        f(self);
        for c in &mut self.children {
            if let Node::Element(e) = c {
                e.visit(f);
            }
        }
    }

    /// Every text and attribute value through `f`.
    fn map_values(&mut self, f: &impl Fn(&str) -> String) {
        self.visit(&mut |e| {
            for (k, v) in &mut e.attrs {
                if !k.starts_with("xmlns") {
                    *v = f(v);
                }
            }
            for c in &mut e.children {
                if let Node::Text(t) = c
                    && !t.trim().is_empty()
                {
                    *t = f(t);
                }
            }
        });
    }
}

/// Leaf children that are fields, not list items, become attributes of their parent: a
/// child whose name is unique among its siblings, in a parent with at least two child
/// names (a parent of one name is a list, whatever its length) and no text of its own.
fn elements_to_attributes(e: &mut Element) {
    e.visit(&mut |e| {
        let names: Vec<String> = e
            .children
            .iter()
            .filter_map(|c| match c {
                Node::Element(c) => Some(c.name.clone()),
                Node::Text(_) => None,
            })
            .collect();
        let mut distinct = names.clone();
        distinct.sort();
        distinct.dedup();
        if distinct.len() < 2 {
            return;
        }
        let mut moved = Vec::new();
        e.children.retain(|c| {
            let Node::Element(c) = c else { return true };
            let unique = names.iter().filter(|n| **n == c.name).count() == 1;
            match c.leaf_text() {
                Some(t) if unique && !t.trim().is_empty() && !t.contains('\n') => {
                    moved.push((c.name.clone(), t.to_owned()));
                    false
                }
                _ => true,
            }
        });
        for (name, value) in moved {
            if !e.attrs.iter().any(|(k, _)| *k == name) {
                e.attrs.push((name, value));
            }
        }
    });
}

/// Attributes (other than namespace declarations) become leaf child elements, on
/// elements that have no text of their own.
fn attributes_to_elements(e: &mut Element) {
    e.visit(&mut |e| {
        let has_text = e
            .children
            .iter()
            .any(|c| matches!(c, Node::Text(t) if !t.trim().is_empty()));
        if has_text {
            return;
        }
        let (ns, attrs): (Vec<_>, Vec<_>) = std::mem::take(&mut e.attrs)
            .into_iter()
            .partition(|(k, _)| k.starts_with("xmlns") || k.contains(':'));
        e.attrs = ns;
        let prefix = e.name.split_once(':').map(|(p, _)| format!("{p}:"));
        for (i, (k, v)) in attrs.into_iter().enumerate() {
            e.children.insert(
                i,
                Node::Element(Element {
                    name: format!("{}{k}", prefix.as_deref().unwrap_or("")),
                    attrs: Vec::new(),
                    children: vec![Node::Text(v)],
                }),
            );
        }
    });
}

fn prefix_elements(root: &mut Element) {
    let uri = root
        .attrs
        .iter()
        .find(|(k, _)| k == "xmlns")
        .map_or_else(|| "urn:lgsp:variant".to_owned(), |(_, v)| v.clone());
    root.visit(&mut |e| {
        if !e.name.contains(':') {
            e.name = format!("v:{}", e.name);
        }
    });
    root.attrs.push(("xmlns:v".into(), uri));
}

/// The JSON form of an XML document as a JSON sender writes it: an element of text alone
/// is a string, any other element an object whose attributes and children are keys (a
/// repeated child is an array; text beside them is `#text`); prefixes are dropped.
fn xml_to_json(root: &Element) -> Value {
    fn local(name: &str) -> String {
        name.rsplit(':').next().unwrap_or(name).to_owned()
    }
    fn element(e: &Element) -> Value {
        let attrs: Vec<&(String, String)> = e
            .attrs
            .iter()
            .filter(|(k, _)| !k.starts_with("xmlns") && !k.contains(':'))
            .collect();
        let text: String = e
            .children
            .iter()
            .filter_map(|c| match c {
                Node::Text(t) => Some(t.as_str()),
                Node::Element(_) => None,
            })
            .collect();
        let elements: Vec<&Element> = e
            .children
            .iter()
            .filter_map(|c| match c {
                Node::Element(e) => Some(e),
                Node::Text(_) => None,
            })
            .collect();
        if attrs.is_empty() && elements.is_empty() {
            return Value::String(text);
        }
        let mut m = serde_json::Map::new();
        for (k, v) in attrs {
            m.insert(k.clone(), Value::String(v.clone()));
        }
        for child in elements {
            let name = local(&child.name);
            let v = element(child);
            match m.get_mut(&name) {
                Some(Value::Array(a)) => a.push(v),
                Some(prev) => *prev = Value::Array(vec![prev.take(), v]),
                None => {
                    m.insert(name, v);
                }
            }
        }
        if !text.trim().is_empty() {
            m.insert("#text".into(), Value::String(text));
        }
        Value::Object(m)
    }
    let mut top = serde_json::Map::new();
    top.insert(local(&root.name), element(root));
    Value::Object(top)
}

fn is_xml_name(k: &str) -> bool {
    let mut chars = k.chars();
    chars.next().is_some_and(|c| c.is_alphabetic() || c == '_')
        && chars.all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// The XML form of a JSON document: keys are elements, an array is repeated elements,
/// a scalar is text. `None` when a key is no XML name, or an array holds arrays.
fn json_to_xml(doc: &Value) -> Option<String> {
    fn children(v: &Value, name: &str, out: &mut Vec<Node>) -> Option<()> {
        match v {
            Value::Null => {}
            Value::Array(items) => {
                for item in items {
                    if item.is_array() {
                        return None;
                    }
                    children(item, name, out)?;
                }
            }
            other => out.push(Node::Element(element(other, name)?)),
        }
        Some(())
    }
    fn element(v: &Value, name: &str) -> Option<Element> {
        if !is_xml_name(name) {
            return None;
        }
        let mut e = Element {
            name: name.to_owned(),
            attrs: Vec::new(),
            children: Vec::new(),
        };
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    children(v, k, &mut e.children)?;
                }
            }
            Value::String(s) => e.children.push(Node::Text(s.clone())),
            other => e.children.push(Node::Text(other.to_string())),
        }
        Some(e)
    }
    // A document of one key is that element; any other is wrapped in a root element
    // (XML has one root), as a sender writing its JSON as XML does.
    let root = match doc {
        Value::Object(top) if top.len() == 1 => {
            let (name, value) = top.iter().next()?;
            element(value, name)?
        }
        Value::Object(_) => element(doc, "ThongDiep")?,
        _ => return None,
    };
    Some(write(
        &root,
        Style {
            indent: true,
            cdata: false,
        },
    ))
}

// ---- value spellings ----

fn is_digits(s: &str, n: usize) -> bool {
    s.len() == n && s.bytes().all(|b| b.is_ascii_digit())
}

/// `yyyy-mm-dd` as `dd/mm/yyyy` (or with `sep`), `dd/mm/yyyy` as `yyyy-mm-dd`;
/// `yyyy-mm-ddTHH:MM:SS` (no offset) as `dd/mm/yyyy HH:MM:SS`.
fn respell_date(v: &str, sep: &str) -> String {
    let t = v.trim();
    let (date, time) = match t.split_once('T') {
        Some((d, tm)) if tm.len() == 8 && tm.as_bytes()[2] == b':' => (d, Some(tm)),
        _ => (t, None),
    };
    let iso: Vec<&str> = date.split('-').collect();
    if let [y, m, d] = iso.as_slice()
        && is_digits(y, 4)
        && is_digits(m, 2)
        && is_digits(d, 2)
    {
        return match time {
            Some(tm) => format!("{d}/{m}/{y} {tm}"),
            None => format!("{d}{sep}{m}{sep}{y}"),
        };
    }
    let vn: Vec<&str> = t.split('/').collect();
    if let [d, m, y] = vn.as_slice()
        && is_digits(y, 4)
        && is_digits(m, 2)
        && is_digits(d, 2)
    {
        return format!("{y}-{m}-{d}");
    }
    v.to_owned()
}

/// `21.8531` as `21,8531`: a plain decimal, no grouping, a fraction that is not three
/// digits (`1.500` could be read as a thousands group, so a sender would not write it).
fn decimal_comma(v: &str) -> String {
    let t = v.trim();
    let body = t.strip_prefix('-').unwrap_or(t);
    if let Some((int, frac)) = body.split_once('.')
        && !int.is_empty()
        && int.bytes().all(|b| b.is_ascii_digit())
        && !frac.is_empty()
        && frac.len() != 3
        && frac.bytes().all(|b| b.is_ascii_digit())
    {
        return t.replacen('.', ",", 1);
    }
    v.to_owned()
}

fn nfd(v: &str) -> String {
    v.nfd().collect()
}

fn snake(k: &str) -> String {
    let mut out = String::new();
    let mut prev_lower = false;
    for c in k.chars() {
        if c.is_ascii_uppercase() {
            if prev_lower {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
            prev_lower = false;
        } else {
            prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
            out.push(c);
        }
    }
    out
}

fn camel(k: &str, first_upper: bool) -> String {
    let mut out = String::new();
    let mut upper = first_upper;
    for c in k.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// The other key style: snake_case keys in camelCase, every other key in snake_case.
fn other_style(k: &str) -> String {
    if k.contains('_') {
        camel(k, false)
    } else {
        snake(k)
    }
}

fn map_keys(v: &Value, f: &impl Fn(&str) -> String) -> Value {
    match v {
        Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (f(k), map_keys(v, f))).collect()),
        Value::Array(a) => Value::Array(a.iter().map(|v| map_keys(v, f)).collect()),
        other => other.clone(),
    }
}

fn map_strings(v: &Value, f: &impl Fn(&str) -> String) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), map_strings(v, f)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(|v| map_strings(v, f)).collect()),
        Value::String(s) => Value::String(f(s)),
        other => other.clone(),
    }
}

fn numbers_as_strings(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), numbers_as_strings(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(numbers_as_strings).collect()),
        Value::Number(n) => Value::String(n.to_string()),
        other => other.clone(),
    }
}

// ---- the variants ----

/// A derived payload: its kind, its bytes, and whether it is the list form (the outputs
/// are then batch children of the input: other message ids, the same documents).
struct Variant {
    kind: &'static str,
    body: Vec<u8>,
    list: bool,
}

fn variant(kind: &'static str, body: impl Into<Vec<u8>>) -> Variant {
    Variant {
        kind,
        body: body.into(),
        list: false,
    }
}

fn xml_variants(xml: &str) -> Vec<Variant> {
    let root = parse(xml);
    let pretty = Style {
        indent: true,
        cdata: false,
    };
    let edited = |f: &dyn Fn(&mut Element)| {
        let mut r = root.clone();
        f(&mut r);
        write(&r, pretty)
    };
    let mut bom = b"\xef\xbb\xbf".to_vec();
    bom.extend(write(&root, pretty).into_bytes());
    let mut out = vec![
        variant("bom", bom),
        variant("single line", write(&root, ONE_LINE)),
        variant(
            "cdata",
            write(
                &root,
                Style {
                    indent: true,
                    cdata: true,
                },
            ),
        ),
        variant("nfd", edited(&|r| r.map_values(&nfd))),
        variant("prefixed", edited(&prefix_elements)),
        variant("elements as attributes", edited(&elements_to_attributes)),
        variant("attributes as elements", edited(&attributes_to_elements)),
        variant(
            "other date spelling",
            edited(&|r| r.map_values(&|v| respell_date(v, "/"))),
        ),
        variant(
            "dd-mm-yyyy dates",
            edited(&|r| r.map_values(&|v| respell_date(v, "-"))),
        ),
        variant("decimal comma", edited(&|r| r.map_values(&decimal_comma))),
    ];
    if !root.attrs.iter().any(|(k, _)| k == "xmlns") && !root.name.contains(':') {
        out.push(variant(
            "default namespace",
            edited(&|r| r.attrs.push(("xmlns".into(), "urn:lgsp:variant".into()))),
        ));
    }
    out.push(variant(
        "JSON form",
        serde_json::to_vec_pretty(&xml_to_json(&root)).unwrap(),
    ));
    let list = Element {
        name: "DanhSach".into(),
        attrs: Vec::new(),
        children: vec![Node::Element(root.clone())],
    };
    out.push(Variant {
        kind: "list of one",
        body: write(&list, pretty).into_bytes(),
        list: true,
    });
    out
}

fn json_variants(json: &Value) -> Vec<Variant> {
    let pretty = |v: &Value| serde_json::to_vec_pretty(v).unwrap();
    let mut bom = b"\xef\xbb\xbf".to_vec();
    bom.extend(pretty(json));
    let mut out = vec![
        variant("bom", bom),
        variant("single line", serde_json::to_vec(json).unwrap()),
        variant("nfd", pretty(&map_strings(json, &nfd))),
        variant("other key style", pretty(&map_keys(json, &other_style))),
        variant(
            "PascalCase keys",
            pretty(&map_keys(json, &|k| camel(k, true))),
        ),
        variant("numbers as strings", pretty(&numbers_as_strings(json))),
        variant(
            "other date spelling",
            pretty(&map_strings(json, &|v| respell_date(v, "/"))),
        ),
        variant(
            "dd-mm-yyyy dates",
            pretty(&map_strings(json, &|v| respell_date(v, "-"))),
        ),
        variant("decimal comma", pretty(&map_strings(json, &decimal_comma))),
        Variant {
            kind: "list of one",
            body: pretty(&Value::Array(vec![json.clone()])),
            list: true,
        },
    ];
    if let Some(xml) = json_to_xml(json) {
        out.push(variant("XML form", xml));
    }
    out
}

/// What must not change between a sample and its variant: each output's document and
/// event; its id and correlation too unless the variant is the list form.
fn same(original: &[Mapped], variant: &[Mapped], list: bool) -> Result<(), String> {
    if original.len() != variant.len() {
        return Err(format!(
            "{} outputs instead of {}",
            variant.len(),
            original.len()
        ));
    }
    for (i, (a, b)) in original.iter().zip(variant).enumerate() {
        if a.value != b.value {
            return Err(format!(
                "output {i} differs:\n  sample:  {}\n  variant: {}",
                a.value, b.value
            ));
        }
        if a.event != b.event {
            return Err(format!("output {i}: event {:?} != {:?}", b.event, a.event));
        }
        if list {
            let parent = lgsp_mapping::dsl::testing::test_envelope().message_id;
            if b.correlation_id.as_deref() != Some(parent.as_str()) || b.index.is_none() {
                return Err(format!(
                    "output {i} of the list form is no batch child of the input"
                ));
            }
        } else if (a.message_id.as_str(), &a.correlation_id)
            != (b.message_id.as_str(), &b.correlation_id)
        {
            return Err(format!("output {i}: other message id or correlation"));
        }
    }
    Ok(())
}

fn check_sample(
    adapter: &Adapter,
    case: &lgsp_mapping::dsl::testing::TestCase,
    input: &CaseInput,
    counted: &mut std::collections::BTreeMap<&'static str, usize>,
    failures: &mut Vec<String>,
) {
    let limits = Limits::default();
    let name = format!("{}/{}", adapter.name, case.spec.name);
    let original = match map_case(adapter, case, input, &limits, Decoding::Auto).unwrap() {
        Ok((outputs, _)) => outputs,
        Err(e) => {
            failures.push(format!("{name}: the sample itself does not map: {e}"));
            return;
        }
    };
    let format = payload_format(input.format, &input.envelope, &input.body);
    let text = String::from_utf8(input.body.clone()).unwrap();
    let variants = match format {
        Format::Xml => xml_variants(&text),
        Format::Json => {
            let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
            json_variants(&serde_json::from_str(text).unwrap())
        }
    };
    for v in variants {
        let mut given = input.clone();
        given.body = v.body;
        let result = map_case(adapter, case, &given, &limits, Decoding::Auto).unwrap();
        let verdict = match result {
            Ok((outputs, _)) => same(&original, &outputs, v.list),
            Err(e) => Err(format!("refused: {e}")),
        };
        *counted.entry(v.kind).or_default() += 1;
        if let Err(why) = verdict {
            failures.push(format!(
                "{name} [{}]: {why}\n--- variant ---\n{}",
                v.kind,
                String::from_utf8_lossy(&given.body)
                    .chars()
                    .take(1500)
                    .collect::<String>()
            ));
        }
    }
}

#[test]
fn every_variant_of_every_sample_maps_to_the_same_canonical_document() {
    let adapters = shipped::adapters();
    let mut samples = 0;
    let mut counted = std::collections::BTreeMap::new();
    let mut failures = Vec::new();
    for adapter in adapters.by_name.values() {
        for case in load_cases(&adapter.dir).unwrap() {
            // The samples a sender publishes, mapped by type as the bus dispatches them,
            // with a golden output (a case of an expected error has no canonical form).
            let from_samples = case
                .spec
                .input
                .as_deref()
                .is_some_and(|p| p.starts_with("samples/"));
            if !from_samples || case.spec.message_type.is_none() || case.spec.expect.is_none() {
                continue;
            }
            let input = case_input(adapter, &case).unwrap();
            samples += 1;
            check_sample(adapter, &case, &input, &mut counted, &mut failures);
        }
    }
    let total: usize = counted.values().sum();
    eprintln!(
        "{samples} samples, {total} variants ({counted:?}), {} refused or different",
        failures.len()
    );
    assert!(samples >= 25, "only {samples} samples found");
    // Every kind was derived from several samples (an XML form needs a JSON sample of
    // one root key, the other kinds apply to every sample of their format).
    for kind in [
        "JSON form",
        "XML form",
        "elements as attributes",
        "other key style",
    ] {
        let n = counted.get(kind).copied().unwrap_or(0);
        assert!(n >= 5, "only {n} variants of kind {kind}");
    }
    assert!(
        failures.is_empty(),
        "{} of {total} variants do not map like their sample:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

#[test]
fn the_generator_respells_what_it_claims_to() {
    assert_eq!(respell_date("2025-11-14", "/"), "14/11/2025");
    assert_eq!(respell_date("14/11/2025", "/"), "2025-11-14");
    assert_eq!(respell_date("2025-11-14", "-"), "14-11-2025");
    assert_eq!(
        respell_date("2025-11-14T08:30:00", "/"),
        "14/11/2025 08:30:00"
    );
    assert_eq!(respell_date("C25TNS", "/"), "C25TNS");
    assert_eq!(decimal_comma("21.8531"), "21,8531");
    assert_eq!(decimal_comma("1.500"), "1.500");
    assert_eq!(decimal_comma("2.0.1"), "2.0.1");
    assert_eq!(other_style("maSoThue"), "ma_so_thue");
    assert_eq!(other_style("ma_so_thue"), "maSoThue");
    let mut e = parse("<A><B>1</B><C x=\"2\">t</C><L><I>1</I></L></A>");
    elements_to_attributes(&mut e);
    let xml = write(&e, ONE_LINE);
    assert!(xml.contains("<A B=\"1\">"), "{xml}");
    assert!(
        xml.contains("<L><I>1</I></L>"),
        "a list of one stays: {xml}"
    );
    let mut e = parse("<A><C x=\"2\"/></A>");
    attributes_to_elements(&mut e);
    let xml = write(&e, ONE_LINE);
    assert!(xml.contains("<C><x>2</x></C>"), "{xml}");
}
