//! Canonical JSON written as XML, for receivers that speak XML.
//!
//! The JSON value is the content of one root element. In an object, a key `"@x"` is
//! attribute `x` of its element (attributes are written first wherever the key sits),
//! `"#text"` is text content, any other key is a child element: an object becomes an
//! element with its own content, a list one element per item, a string, number (exact
//! text) or bool becomes text, and null is skipped. Names are checked to be XML names
//! with declared prefixes, text is escaped, characters XML 1.0 forbids are refused, and
//! all output is NFC. Errors name the JSON path of the offending key, never a value.
//!
//! Writing is one pass into one pre-sized `String`.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt::Write as _;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::values::nfc;

/// Deepest nesting written; deeper values are refused rather than risking the stack.
const MAX_DEPTH: usize = 256;

/// Widest indent accepted in the options.
const MAX_INDENT: usize = 16;

/// A namespace declared on the root element.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct XmlNamespace {
    /// The prefix; `""` declares the default namespace.
    pub prefix: String,
    /// The namespace name (a URI).
    pub uri: String,
}

/// How a canonical JSON value is written as XML.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct XmlOutOptions {
    /// Name of the root element, possibly prefixed (`edXML:edXML`).
    pub root: String,
    /// Namespaces declared on the root, in this order.
    #[serde(default)]
    pub namespaces: Vec<XmlNamespace>,
    /// When set, every element name without a prefix gets this one; it must be declared.
    #[serde(default)]
    pub prefix: Option<String>,
    /// Whether to start with `<?xml version="1.0" encoding="UTF-8"?>` (default: yes).
    #[serde(default = "yes")]
    pub declaration: bool,
    /// Pretty-print with this many spaces per level; `None` writes compact XML.
    #[serde(default)]
    pub indent: Option<usize>,
}

fn yes() -> bool {
    true
}

impl Default for XmlOutOptions {
    /// No root name yet (set one before use), no namespaces, declaration on, compact.
    fn default() -> Self {
        XmlOutOptions {
            root: String::new(),
            namespaces: Vec::new(),
            prefix: None,
            declaration: true,
            indent: None,
        }
    }
}

/// Why a value cannot be written as XML, or options are unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum XmlOutError {
    /// The options themselves are wrong (found when a mapping is compiled).
    #[error("invalid xml output option {option}: {reason}")]
    InvalidOptions {
        /// `root`, `namespaces`, `prefix` or `indent`.
        option: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A key that is not a valid XML name.
    #[error(
        "invalid XML name at {path}: expected a letter or '_' first, then letters, digits, \
         '.', '-' or '_', optionally after a declared prefix and ':'"
    )]
    InvalidName {
        /// JSON path of the key.
        path: String,
    },
    /// A prefix that is not declared in the options.
    #[error(
        "undeclared namespace prefix {prefix:?} at {path}, expected one declared in namespaces"
    )]
    UndeclaredPrefix {
        /// JSON path of the key.
        path: String,
        /// The prefix used.
        prefix: String,
    },
    /// An `xmlns` attribute in the data.
    #[error("namespace declaration at {path}, expected namespaces to be declared in the options")]
    XmlnsAttribute {
        /// JSON path of the key.
        path: String,
    },
    /// The same attribute twice on one element (after NFC).
    #[error("duplicate attribute at {path}, expected each attribute once per element")]
    DuplicateAttribute {
        /// JSON path of the key.
        path: String,
    },
    /// A character XML 1.0 does not allow (control characters other than tab, LF, CR).
    #[error("character not allowed in XML 1.0 (a control character) at {path}")]
    InvalidChar {
        /// JSON path of the value or key.
        path: String,
    },
    /// An attribute or `#text` whose value is an object or a list.
    #[error("expected a single value for an attribute or #text, found {found} at {path}")]
    NotScalar {
        /// JSON path of the key.
        path: String,
        /// `"an object"` or `"a list"`.
        found: &'static str,
    },
    /// A list directly inside a list: its items would have no element name.
    #[error("list inside a list at {path}, expected objects or single values as list items")]
    NestedList {
        /// JSON path of the inner list.
        path: String,
    },
    /// A list as the content of the root element.
    #[error("the root content is a list, expected an object, a single value or null")]
    RootList,
    /// Nesting deeper than the writer accepts.
    #[error("nesting deeper than {max} levels at {path}")]
    TooDeep {
        /// JSON path where the limit was reached.
        path: String,
        /// The limit.
        max: usize,
    },
}

impl XmlOutError {
    /// A stable identifier for this kind of error, e.g. `"xml_out.name"`.
    pub fn code(&self) -> &'static str {
        match self {
            XmlOutError::InvalidOptions { .. } => "xml_out.options",
            XmlOutError::InvalidName { .. } => "xml_out.name",
            XmlOutError::UndeclaredPrefix { .. } => "xml_out.undeclared_prefix",
            XmlOutError::XmlnsAttribute { .. } => "xml_out.xmlns_attribute",
            XmlOutError::DuplicateAttribute { .. } => "xml_out.duplicate_attribute",
            XmlOutError::InvalidChar { .. } => "xml_out.invalid_char",
            XmlOutError::NotScalar { .. } => "xml_out.not_scalar",
            XmlOutError::NestedList { .. } => "xml_out.nested_list",
            XmlOutError::RootList => "xml_out.root_list",
            XmlOutError::TooDeep { .. } => "xml_out.too_deep",
        }
    }
}

impl XmlOutOptions {
    /// Checks the options once, when a mapping is compiled: the root and the prefix are
    /// valid names with declared prefixes, namespaces are well-formed and unique.
    pub fn validate(&self) -> Result<(), XmlOutError> {
        let bad =
            |option: &'static str, reason: String| XmlOutError::InvalidOptions { option, reason };
        let mut seen: Vec<&str> = Vec::with_capacity(self.namespaces.len());
        for ns in &self.namespaces {
            let p = ns.prefix.as_str();
            if !p.is_empty() && !is_ncname(p) {
                return Err(bad(
                    "namespaces",
                    format!("prefix {p:?} is not a valid XML name"),
                ));
            }
            if p == "xml" || p == "xmlns" {
                return Err(bad(
                    "namespaces",
                    format!("prefix {p:?} is reserved by XML"),
                ));
            }
            if seen.contains(&p) {
                return Err(bad("namespaces", format!("prefix {p:?} is declared twice")));
            }
            if !p.is_empty() && ns.uri.is_empty() {
                return Err(bad(
                    "namespaces",
                    format!("prefix {p:?} needs a non-empty uri"),
                ));
            }
            if ns.uri.chars().any(|c| !is_xml_char(c)) {
                return Err(bad(
                    "namespaces",
                    format!("the uri of prefix {p:?} has a character XML 1.0 does not allow"),
                ));
            }
            seen.push(p);
        }
        if let Some(p) = &self.prefix {
            if !is_ncname(p) {
                return Err(bad("prefix", format!("{p:?} is not a valid XML name")));
            }
            if !self.is_declared(p) {
                return Err(bad(
                    "prefix",
                    format!("{p:?} is not declared in namespaces"),
                ));
            }
        }
        match split_qname(&self.root) {
            None => {
                return Err(bad(
                    "root",
                    format!("{:?} is not a valid XML name", self.root),
                ));
            }
            Some((Some(p), _)) if !self.is_declared(p) => {
                return Err(bad(
                    "root",
                    format!("prefix {p:?} is not declared in namespaces"),
                ));
            }
            Some(_) => {}
        }
        if self.indent.is_some_and(|n| n > MAX_INDENT) {
            return Err(bad(
                "indent",
                format!("expected at most {MAX_INDENT} spaces"),
            ));
        }
        Ok(())
    }

    fn is_declared(&self, prefix: &str) -> bool {
        !prefix.is_empty() && self.namespaces.iter().any(|ns| ns.prefix == prefix)
    }
}

/// Writes `value` as the content of the root element described by `opts`.
pub fn to_xml(value: &Value, opts: &XmlOutOptions) -> Result<String, XmlOutError> {
    opts.validate()?;
    if value.is_array() {
        return Err(XmlOutError::RootList);
    }
    let capacity = 128 + opts.root.len() * 2 + estimate(value, 0).saturating_mul(5) / 4;
    let mut w = Writer {
        out: String::with_capacity(capacity),
        opts,
        path: Vec::new(),
    };
    if opts.declaration {
        w.out.push_str(r#"<?xml version="1.0" encoding="UTF-8"?>"#);
        if opts.indent.is_some() {
            w.out.push('\n');
        }
    }
    let root = w.qualify(&opts.root);
    w.element(&root, value, 0, opts.indent.is_some(), true)?;
    Ok(w.out)
}

/// One step of the JSON path to a key, for error messages.
#[derive(Debug, Clone, Copy)]
enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

struct Writer<'a> {
    out: String,
    opts: &'a XmlOutOptions,
    path: Vec<Seg<'a>>,
}

impl<'a> Writer<'a> {
    fn path(&self) -> String {
        let mut p = String::from("$");
        for seg in &self.path {
            // Writing into a String cannot fail.
            let _ = match seg {
                Seg::Key(k) => write!(p, ".{k}"),
                Seg::Index(i) => write!(p, "[{i}]"),
            };
        }
        p
    }

    /// The name as written: the default prefix added when the name has none.
    fn qualify<'n>(&self, name: &'n str) -> Cow<'n, str> {
        match &self.opts.prefix {
            Some(p) if !name.contains(':') => Cow::Owned(format!("{p}:{name}")),
            _ => Cow::Borrowed(name),
        }
    }

    /// An element name from a JSON key: NFC, a valid name, a declared prefix.
    fn element_name(&self, key: &'a str) -> Result<Cow<'a, str>, XmlOutError> {
        let name = nfc(key);
        match split_qname(&name) {
            None => Err(XmlOutError::InvalidName { path: self.path() }),
            Some((Some(p), _)) if !self.opts.is_declared(p) => Err(XmlOutError::UndeclaredPrefix {
                path: self.path(),
                prefix: p.to_owned(),
            }),
            Some(_) => Ok(match name {
                Cow::Borrowed(n) => self.qualify(n),
                Cow::Owned(n) => Cow::Owned(self.qualify(&n).into_owned()),
            }),
        }
    }

    /// An attribute name from a JSON key without its `@`: unprefixed attributes stay
    /// unprefixed (they belong to no namespace); `xml:` is always available.
    fn attribute_name(&self, name: &'a str) -> Result<Cow<'a, str>, XmlOutError> {
        let name = nfc(name);
        match split_qname(&name) {
            None => Err(XmlOutError::InvalidName { path: self.path() }),
            Some((Some("xmlns"), _)) | Some((None, "xmlns")) => {
                Err(XmlOutError::XmlnsAttribute { path: self.path() })
            }
            Some((Some(p), _)) if p != "xml" && !self.opts.is_declared(p) => {
                Err(XmlOutError::UndeclaredPrefix {
                    path: self.path(),
                    prefix: p.to_owned(),
                })
            }
            Some(_) => Ok(name),
        }
    }

    fn newline(&mut self, depth: usize) {
        if let Some(n) = self.opts.indent {
            self.out.push('\n');
            self.out
                .extend(std::iter::repeat_n(' ', n.saturating_mul(depth)));
        }
    }

    /// Writes `<name ...>content</name>` (or `<name .../>` when there is no content).
    fn element(
        &mut self,
        name: &str,
        value: &'a Value,
        depth: usize,
        pretty: bool,
        is_root: bool,
    ) -> Result<(), XmlOutError> {
        if depth > MAX_DEPTH {
            return Err(XmlOutError::TooDeep {
                path: self.path(),
                max: MAX_DEPTH,
            });
        }
        if pretty && !is_root {
            self.newline(depth);
        }
        self.out.push('<');
        self.out.push_str(name);
        if is_root {
            for ns in &self.opts.namespaces {
                self.out.push_str(" xmlns");
                if !ns.prefix.is_empty() {
                    self.out.push(':');
                    self.out.push_str(&ns.prefix);
                }
                self.out.push_str("=\"");
                self.escape(&ns.uri, true)?;
                self.out.push('"');
            }
        }
        if let Value::Object(map) = value {
            self.attributes(map)?;
        }
        let open_end = self.out.len();
        self.out.push('>');
        let wrote_children = match value {
            Value::Object(map) => self.content(map, depth, pretty)?,
            Value::Null => false,
            scalar => {
                self.scalar_text(scalar, false)?;
                false
            }
        };
        if self.out.len() == open_end + 1 {
            // Nothing inside: a self-closing tag.
            self.out.truncate(open_end);
            self.out.push_str("/>");
        } else {
            if wrote_children {
                self.newline(depth);
            }
            self.out.push_str("</");
            self.out.push_str(name);
            self.out.push('>');
        }
        Ok(())
    }

    fn attributes(&mut self, map: &'a Map<String, Value>) -> Result<(), XmlOutError> {
        let mut seen: Option<HashSet<Cow<'a, str>>> = None;
        for (key, v) in map {
            let Some(attr) = key.strip_prefix('@') else {
                continue;
            };
            if v.is_null() {
                continue;
            }
            self.path.push(Seg::Key(key));
            let name = self.attribute_name(attr)?;
            // Keys are unique in a JSON object, so a duplicate can only come from NFC
            // merging two spellings: track names only once that can happen.
            if matches!(name, Cow::Owned(_)) && seen.is_none() {
                seen = Some(
                    map.iter()
                        .filter(|(_, v)| !v.is_null())
                        .filter_map(|(k, _)| k.strip_prefix('@'))
                        .filter(|k| matches!(nfc(k), Cow::Borrowed(_)))
                        .map(Cow::Borrowed)
                        .collect(),
                );
            }
            if let Some(seen) = seen.as_mut()
                && matches!(name, Cow::Owned(_))
                && !seen.insert(name.clone())
            {
                return Err(XmlOutError::DuplicateAttribute { path: self.path() });
            }
            self.out.push(' ');
            self.out.push_str(&name);
            self.out.push_str("=\"");
            match v {
                Value::Object(_) | Value::Array(_) => {
                    return Err(XmlOutError::NotScalar {
                        path: self.path(),
                        found: if v.is_array() { "a list" } else { "an object" },
                    });
                }
                scalar => self.scalar_text(scalar, true)?,
            }
            self.out.push('"');
            self.path.pop();
        }
        Ok(())
    }

    /// Text and child elements of an object, in key order. Returns whether child
    /// elements were written on their own lines (so the closing tag needs one too).
    fn content(
        &mut self,
        map: &'a Map<String, Value>,
        depth: usize,
        pretty: bool,
    ) -> Result<bool, XmlOutError> {
        // Mixed content is written compactly: indentation would change the text.
        let mixed = map.get("#text").is_some_and(|t| !t.is_null());
        let pretty = pretty && !mixed;
        let mut wrote_children = false;
        for (key, v) in map {
            if key.starts_with('@') || v.is_null() {
                continue;
            }
            self.path.push(Seg::Key(key));
            if key == "#text" {
                match v {
                    Value::Object(_) | Value::Array(_) => {
                        return Err(XmlOutError::NotScalar {
                            path: self.path(),
                            found: if v.is_array() { "a list" } else { "an object" },
                        });
                    }
                    scalar => self.scalar_text(scalar, false)?,
                }
            } else {
                let name = self.element_name(key)?;
                match v {
                    Value::Array(items) => {
                        for (i, item) in items.iter().enumerate() {
                            self.path.push(Seg::Index(i));
                            match item {
                                Value::Null => {}
                                Value::Array(_) => {
                                    return Err(XmlOutError::NestedList { path: self.path() });
                                }
                                item => {
                                    self.element(&name, item, depth + 1, pretty, false)?;
                                    wrote_children |= pretty;
                                }
                            }
                            self.path.pop();
                        }
                    }
                    v => {
                        self.element(&name, v, depth + 1, pretty, false)?;
                        wrote_children |= pretty;
                    }
                }
            }
            self.path.pop();
        }
        Ok(wrote_children)
    }

    fn scalar_text(&mut self, v: &Value, attribute: bool) -> Result<(), XmlOutError> {
        match v {
            Value::String(s) => self.escape(s, attribute),
            // Exact source text: digits, sign, '.', exponent; nothing to escape.
            Value::Number(n) => {
                self.out.push_str(n.as_str());
                Ok(())
            }
            Value::Bool(b) => {
                self.out.push_str(if *b { "true" } else { "false" });
                Ok(())
            }
            Value::Null | Value::Object(_) | Value::Array(_) => Ok(()),
        }
    }

    /// Appends NFC `s` escaped for text or for a double-quoted attribute value.
    fn escape(&mut self, s: &str, attribute: bool) -> Result<(), XmlOutError> {
        let s = nfc(s);
        let mut start = 0;
        for (i, c) in s.char_indices() {
            let rep = match c {
                '&' => "&amp;",
                '<' => "&lt;",
                '>' => "&gt;",
                '\r' => "&#13;",
                '"' if attribute => "&quot;",
                '\n' if attribute => "&#10;",
                '\t' if attribute => "&#9;",
                c if !is_xml_char(c) => {
                    return Err(XmlOutError::InvalidChar { path: self.path() });
                }
                _ => continue,
            };
            self.out.push_str(&s[start..i]);
            self.out.push_str(rep);
            start = i + c.len_utf8();
        }
        self.out.push_str(&s[start..]);
        Ok(())
    }
}

/// Rough size of the XML for `v`, to size the output once.
fn estimate(v: &Value, depth: usize) -> usize {
    if depth > MAX_DEPTH {
        return 0;
    }
    match v {
        Value::String(s) => s.len(),
        Value::Number(n) => n.as_str().len(),
        Value::Bool(_) => 5,
        Value::Null => 0,
        Value::Array(items) => items.iter().fold(0usize, |acc, i| {
            acc.saturating_add(estimate(i, depth + 1).saturating_add(8))
        }),
        Value::Object(map) => map.iter().fold(0usize, |acc, (k, v)| {
            acc.saturating_add(k.len().saturating_mul(2).saturating_add(5))
                .saturating_add(estimate(v, depth + 1))
        }),
    }
}

/// Characters XML 1.0 allows: tab, LF, CR, and everything from U+0020 except
/// U+FFFE and U+FFFF (surrogates cannot occur in a Rust string).
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{FFFD}' | '\u{10000}'..)
}

fn is_name_start_char(c: char) -> bool {
    matches!(c,
        'A'..='Z' | '_' | 'a'..='z'
        | '\u{C0}'..='\u{D6}' | '\u{D8}'..='\u{F6}' | '\u{F8}'..='\u{2FF}'
        | '\u{370}'..='\u{37D}' | '\u{37F}'..='\u{1FFF}' | '\u{200C}'..='\u{200D}'
        | '\u{2070}'..='\u{218F}' | '\u{2C00}'..='\u{2FEF}' | '\u{3001}'..='\u{D7FF}'
        | '\u{F900}'..='\u{FDCF}' | '\u{FDF0}'..='\u{FFFD}' | '\u{10000}'..='\u{EFFFF}')
}

fn is_name_char(c: char) -> bool {
    is_name_start_char(c)
        || matches!(c, '-' | '.' | '0'..='9' | '\u{B7}' | '\u{300}'..='\u{36F}' | '\u{203F}'..='\u{2040}')
}

/// An XML name without colon (namespaces' NCName).
fn is_ncname(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(is_name_start_char) && chars.all(is_name_char)
}

/// `prefix:local` or `local`, both NCNames; None when not a valid qualified name.
fn split_qname(s: &str) -> Option<(Option<&str>, &str)> {
    match s.split_once(':') {
        Some((p, l)) if is_ncname(p) && is_ncname(l) => Some((Some(p), l)),
        Some(_) => None,
        None if is_ncname(s) => Some((None, s)),
        None => None,
    }
}
