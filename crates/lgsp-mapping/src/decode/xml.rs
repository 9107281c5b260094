//! XML payloads into the mapping tree.

use std::borrow::Cow;

use quick_xml::XmlVersion;
use quick_xml::errors::{Error as XmlError, IllFormedError};
use quick_xml::escape::EscapeError;
use quick_xml::events::{BytesDecl, BytesStart, Event};
use quick_xml::reader::Reader;
use serde_json::map::Entry;
use serde_json::{Map, Value};

use super::projection::{DOCUMENT, NodeId, Projection};
use super::{
    DecodeError, Format, Limits, UTF8_BOM, line_col, nfc_borrowed, nfc_cow, nfc_str, nfc_string,
};

const TEXT_KEY: &str = "#text";

pub(super) fn decode(body: &[u8], limits: &Limits) -> Result<Value, DecodeError> {
    decode_projected(body, limits, None)
}

/// Decode, building only what `projection` keeps (everything without one).
pub(super) fn decode_projected(
    body: &[u8],
    limits: &Limits,
    projection: Option<&Projection>,
) -> Result<Value, DecodeError> {
    if body.len() > limits.max_bytes {
        return Err(DecodeError::TooLarge {
            size: body.len(),
            limit: limits.max_bytes,
        });
    }
    if let Some(encoding) = utf16_marker(body) {
        return Err(DecodeError::XmlEncoding {
            encoding: encoding.to_owned(),
        });
    }
    let body = body.strip_prefix(UTF8_BOM).unwrap_or(body);
    let text = match std::str::from_utf8(body) {
        Ok(text) => text,
        Err(err) => {
            let valid = &body[..err.valid_up_to()];
            // A document declaring another encoding is better told so than told about a
            // byte it could not know was wrong.
            let declared = std::str::from_utf8(valid)
                .ok()
                .and_then(declared_encoding)
                .filter(|encoding| !is_utf8_name(encoding));
            if let Some(encoding) = declared {
                return Err(DecodeError::XmlEncoding { encoding });
            }
            let (line, column) = line_col(body, err.valid_up_to());
            return Err(DecodeError::InvalidUtf8 {
                format: Format::Xml,
                line,
                column,
            });
        }
    };
    check_raw_chars(body)?;
    if text.bytes().all(is_xml_space) {
        return Err(DecodeError::Empty {
            format: Format::Xml,
        });
    }
    Builder::new(text, limits, projection).run()
}

/// The local name of the first element, if the document gets that far without trouble.
pub(super) fn root_name(body: &[u8]) -> Option<String> {
    let body = body.strip_prefix(UTF8_BOM).unwrap_or(body);
    let mut reader = Reader::from_reader(body);
    loop {
        match reader.read_event() {
            Ok(Event::Start(start) | Event::Empty(start)) => {
                return Some(nfc_str(local_name(start.name().0)));
            }
            Ok(Event::Decl(_) | Event::Comment(_) | Event::PI(_)) => {}
            Ok(Event::Text(text)) if text.bytes().all(is_xml_space) => {}
            _ => return None,
        }
    }
}

/// Byte order marks (or the first bytes of `<?` / `<x`) of UTF-16 and UTF-32.
fn utf16_marker(body: &[u8]) -> Option<&'static str> {
    match body {
        [0x00, 0x00, 0xFE, 0xFF, ..] | [0xFF, 0xFE, 0x00, 0x00, ..] => {
            Some("UTF-32 (byte order mark)")
        }
        [0xFE, 0xFF, ..] => Some("UTF-16BE (byte order mark)"),
        [0xFF, 0xFE, ..] => Some("UTF-16LE (byte order mark)"),
        [0x00, b'<', ..] => Some("UTF-16BE"),
        [b'<', 0x00, ..] => Some("UTF-16LE"),
        _ => None,
    }
}

fn is_utf8_name(encoding: &str) -> bool {
    encoding.eq_ignore_ascii_case("utf-8") || encoding.eq_ignore_ascii_case("utf8")
}

/// The `encoding` of the XML declaration at the start of `text`, if there is one.
fn declared_encoding(text: &str) -> Option<String> {
    let mut reader = Reader::from_str(text);
    match reader.read_event() {
        Ok(Event::Decl(decl)) => encoding_of(&decl),
        _ => None,
    }
}

fn encoding_of(decl: &BytesDecl<'_>) -> Option<String> {
    match decl.encoding() {
        Some(Ok(encoding)) => Some(encoding.into_owned()),
        // An unparsable encoding attribute is not UTF-8 either; show what was written.
        Some(Err(_)) => Some("(unreadable)".to_owned()),
        None => None,
    }
}

fn is_xml_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

fn is_xml_char(c: char) -> bool {
    matches!(c,
        '\t' | '\n' | '\r'
        | '\u{20}'..='\u{D7FF}'
        | '\u{E000}'..='\u{FFFD}'
        | '\u{10000}'..='\u{10FFFF}')
}

/// Refuse raw characters XML 1.0 forbids: C0 controls other than tab, LF and CR, and
/// U+FFFE / U+FFFF. (Surrogates cannot occur in valid UTF-8.)
fn check_raw_chars(body: &[u8]) -> Result<(), DecodeError> {
    // Fast path: a branch-free test per 64-byte block (which the compiler vectorises);
    // only a block that might hold a suspect byte is looked at closely.
    const BLOCK: usize = 64;
    for (n, block) in body.chunks(BLOCK).enumerate() {
        let suspect = block.iter().fold(false, |acc, &b| {
            acc | ((b < 0x20) & (b != b'\t') & (b != b'\n') & (b != b'\r')) | (b == 0xEF)
        });
        if suspect {
            let start = n * BLOCK;
            // A 0xEF at the end of the block is matched against the bytes after it.
            check_raw_chars_slow(body, start, (start + BLOCK).min(body.len()))?;
        }
    }
    Ok(())
}

fn check_raw_chars_slow(body: &[u8], from: usize, to: usize) -> Result<(), DecodeError> {
    for (i, &b) in body.iter().enumerate().take(to).skip(from) {
        let codepoint = if b < 0x20 {
            if matches!(b, b'\t' | b'\n' | b'\r') {
                continue;
            }
            u32::from(b)
        } else if b == 0xEF {
            match body.get(i + 1..i + 3) {
                Some([0xBF, 0xBE]) => 0xFFFE,
                Some([0xBF, 0xBF]) => 0xFFFF,
                _ => continue,
            }
        } else {
            continue;
        };
        let (line, column) = line_col(body, i);
        return Err(DecodeError::XmlChar {
            codepoint,
            line,
            column,
        });
    }
    Ok(())
}

fn syntax(text: &str, offset: usize, message: String) -> DecodeError {
    let (line, column) = line_col(text.as_bytes(), offset);
    DecodeError::XmlSyntax {
        message,
        line,
        column,
    }
}

fn from_parser(text: &str, offset: usize, err: XmlError) -> DecodeError {
    let (line, column) = line_col(text.as_bytes(), offset);
    match err {
        XmlError::IllFormed(IllFormedError::MismatchedEndTag { expected, found }) => syntax(
            text,
            offset,
            format!("closing tag </{found}> does not match <{expected}>"),
        ),
        XmlError::IllFormed(IllFormedError::UnmatchedEndTag(tag)) => syntax(
            text,
            offset,
            format!("closing tag </{tag}> has no matching opening tag"),
        ),
        XmlError::Escape(EscapeError::UnrecognizedEntity(_, name)) => {
            DecodeError::XmlEntity { name, line, column }
        }
        XmlError::IllFormed(IllFormedError::UnclosedReference) => syntax(
            text,
            offset,
            "`&` does not start a complete reference: write a literal & as &amp;".to_owned(),
        ),
        XmlError::IllFormed(err) => syntax(text, offset, err.to_string()),
        XmlError::Syntax(err) => syntax(text, offset, err.to_string()),
        other => syntax(text, offset, other.to_string()),
    }
}

/// An element being built.
struct Frame<'a> {
    /// Local name, NFC.
    key: String,
    /// Byte offset of its start tag.
    start: usize,
    /// Where its attributes and children start in [`Builder::entries`].
    first_entry: usize,
    /// Its text and CDATA so far, concatenated; borrowed from the input while it is a
    /// single piece. Once it has child elements, whitespace-only pieces are not kept.
    text: Cow<'a, str>,
    has_children: bool,
    /// Which of its children to build: `None` for all of them, whole.
    keep: Option<NodeId>,
}

/// An element without a node of its own in the projection: attributes and text, no
/// children.
const SKELETON: NodeId = NodeId::MAX;

struct Builder<'a> {
    text: &'a str,
    reader: Reader<&'a [u8]>,
    max_depth: usize,
    /// What to build; `None` builds everything.
    projection: Option<&'a Projection>,
    stack: Vec<Frame<'a>>,
    /// Start offsets of the open elements inside a skipped one (itself included),
    /// innermost last. Skipped elements are checked but not built.
    skipped: Vec<usize>,
    /// Attributes and children of all open elements, in document order. An element's
    /// object is built when it closes, sized exactly, instead of growing as it is read.
    entries: Vec<(String, Value)>,
    root: Option<(String, Value)>,
}

impl<'a> Builder<'a> {
    fn new(text: &'a str, limits: &Limits, projection: Option<&'a Projection>) -> Self {
        let mut reader = Reader::from_str(text);
        let config = reader.config_mut();
        config.check_end_names = true;
        config.expand_empty_elements = false;
        config.trim_text(false);
        config.allow_dangling_amp = false;
        config.allow_unmatched_ends = false;
        Builder {
            text,
            reader,
            max_depth: limits.max_depth,
            projection,
            stack: Vec::new(),
            skipped: Vec::new(),
            entries: Vec::new(),
            root: None,
        }
    }

    fn run(mut self) -> Result<Value, DecodeError> {
        loop {
            let pos = usize::try_from(self.reader.buffer_position()).unwrap_or(usize::MAX);
            let event = match self.reader.read_event() {
                Ok(event) => event,
                Err(err) => {
                    let at = usize::try_from(self.reader.error_position()).unwrap_or(usize::MAX);
                    return Err(from_parser(self.text, at, err));
                }
            };
            match event {
                Event::Start(start) => {
                    if self.skipped.is_empty() {
                        match self.open(&start, pos)? {
                            Some(frame) => self.stack.push(frame),
                            None => self.skipped.push(pos),
                        }
                    } else {
                        self.open_skipped(&start, pos)?;
                        self.skipped.push(pos);
                    }
                }
                Event::Empty(start) => {
                    if !self.skipped.is_empty() {
                        self.open_skipped(&start, pos)?;
                    } else if let Some(frame) = self.open(&start, pos)? {
                        let (key, value) = self.finish(frame);
                        self.attach(key, value);
                    }
                }
                Event::End(_) if self.skipped.pop().is_some() => {}
                Event::Text(_) | Event::CData(_) if !self.skipped.is_empty() => {}
                Event::End(_) => {
                    // The reader checks that end tags match their start tags.
                    let Some(frame) = self.stack.pop() else {
                        return Err(syntax(
                            self.text,
                            pos,
                            "closing tag has no matching opening tag".to_owned(),
                        ));
                    };
                    let (key, value) = self.finish(frame);
                    self.attach(key, value);
                }
                Event::Text(text) => match self.stack.last_mut() {
                    Some(frame) => {
                        if !(frame.has_children && text.bytes().all(is_xml_space)) {
                            append(&mut frame.text, text.xml10_content());
                        }
                    }
                    None => {
                        if !text.bytes().all(is_xml_space) {
                            return Err(self.outside_root(pos, "text"));
                        }
                    }
                },
                Event::CData(cdata) => match self.stack.last_mut() {
                    Some(frame) => append(&mut frame.text, cdata.xml10_content()),
                    None => return Err(self.outside_root(pos, "CDATA section")),
                },
                Event::GeneralRef(reference) => {
                    let c = self.resolve(&reference, pos)?;
                    if !self.skipped.is_empty() {
                        continue;
                    }
                    match self.stack.last_mut() {
                        Some(frame) => frame.text.to_mut().push(c),
                        None => return Err(self.outside_root(pos, "reference")),
                    }
                }
                Event::Decl(decl) => {
                    if pos != 0 {
                        return Err(syntax(
                            self.text,
                            pos,
                            "the XML declaration must be the very first thing in the document"
                                .to_owned(),
                        ));
                    }
                    let declared = encoding_of(&decl).filter(|encoding| !is_utf8_name(encoding));
                    if let Some(encoding) = declared {
                        return Err(DecodeError::XmlEncoding { encoding });
                    }
                }
                Event::DocType(_) => {
                    let (line, column) = line_col(self.text.as_bytes(), pos);
                    return Err(DecodeError::XmlDoctype { line, column });
                }
                Event::Comment(_) | Event::PI(_) => {}
                Event::Eof => break,
            }
        }
        if let Some(&start) = self.skipped.last() {
            // The innermost unclosed element was skipped: read its name back.
            let tag = self.text.get(start + 1..).unwrap_or("");
            let end = tag
                .find(|c: char| c == '>' || c.is_ascii_whitespace())
                .unwrap_or(tag.len());
            return Err(syntax(
                self.text,
                start,
                format!(
                    "element <{}> is not closed before the end of the document",
                    nfc_str(local_name(&tag[..end]))
                ),
            ));
        }
        if let Some(frame) = self.stack.last() {
            return Err(syntax(
                self.text,
                frame.start,
                format!(
                    "element <{}> is not closed before the end of the document",
                    frame.key
                ),
            ));
        }
        match self.root {
            Some((key, value)) => {
                let mut map = Map::with_capacity(1);
                map.insert(key, value);
                Ok(Value::Object(map))
            }
            None => Err(syntax(
                self.text,
                self.text.len(),
                "no root element: the document must contain exactly one element".to_owned(),
            )),
        }
    }

    fn outside_root(&self, pos: usize, what: &str) -> DecodeError {
        let message = if self.root.is_some() {
            format!("{what} after the root element: a document has exactly one root element")
        } else {
            format!("{what} before the root element: put it inside the root element")
        };
        syntax(self.text, pos, message)
    }

    /// Checks depth and root uniqueness, then reads the name and attributes of a start tag;
    /// `None` when the projection skips the element (its attributes are only checked).
    fn open(
        &mut self,
        start: &BytesStart<'_>,
        pos: usize,
    ) -> Result<Option<Frame<'a>>, DecodeError> {
        let qname = start.name().0;
        if self.stack.is_empty() && self.root.is_some() {
            return Err(syntax(
                self.text,
                pos,
                format!("second root element <{qname}>: a document has exactly one root element"),
            ));
        }
        if self.stack.len() >= self.max_depth {
            let (line, column) = line_col(self.text.as_bytes(), pos);
            return Err(DecodeError::TooDeep {
                format: Format::Xml,
                limit: self.max_depth,
                line,
                column,
            });
        }
        if let Some(parent) = self.stack.last_mut().filter(|p| !p.has_children) {
            parent.has_children = true;
            // Indentation before the first child is layout, not content.
            if parent.text.bytes().all(is_xml_space) {
                parent.text = Cow::Borrowed("");
            }
        }
        let element = nfc_borrowed(local_name(qname));
        let keep = match (self.projection, self.stack.last()) {
            (None, _) => None,
            (Some(p), None) => Some(p.child(DOCUMENT, &element).unwrap_or(SKELETON)),
            (Some(_), Some(Frame { keep: None, .. })) => None,
            (Some(p), Some(Frame { keep: Some(k), .. })) => match p.child(*k, &element) {
                Some(child) => Some(child),
                None => {
                    self.check_attributes(start, pos)?;
                    return Ok(None);
                }
            },
        };
        let keep = keep.filter(|&k| self.projection.is_none_or(|p| !p.is_whole(k)));
        let first_entry = self.entries.len();
        for attr in start.attributes() {
            let attr =
                attr.map_err(|err| syntax(self.text, pos, format!("in the tag <{qname}>: {err}")))?;
            let name = attr.key.0;
            if name == "xmlns" || name.starts_with("xmlns:") {
                continue;
            }
            let value = attr
                .normalized_value(XmlVersion::Implicit1_0)
                .map_err(|err| from_parser(self.text, pos, err))?;
            // Raw characters were checked up front; only references can bring bad ones.
            let bad = if attr.value.contains('&') {
                value.chars().find(|&c| !is_xml_char(c))
            } else {
                None
            };
            if let Some(bad) = bad {
                let (line, column) = line_col(self.text.as_bytes(), pos);
                return Err(DecodeError::XmlChar {
                    codepoint: u32::from(bad),
                    line,
                    column,
                });
            }
            let local = local_name(name);
            let mut key = String::with_capacity(1 + local.len());
            key.push('@');
            key.push_str(local);
            self.entries
                .push((nfc_string(key), Value::String(nfc_cow(value))));
        }
        Ok(Some(Frame {
            key: element.into_owned(),
            start: pos,
            first_entry,
            text: Cow::Borrowed(""),
            has_children: false,
            keep,
        }))
    }

    /// A start tag inside a skipped element: the checks of [`Builder::open`], nothing built.
    fn open_skipped(&mut self, start: &BytesStart<'_>, pos: usize) -> Result<(), DecodeError> {
        if self.stack.len() + self.skipped.len() >= self.max_depth {
            let (line, column) = line_col(self.text.as_bytes(), pos);
            return Err(DecodeError::TooDeep {
                format: Format::Xml,
                limit: self.max_depth,
                line,
                column,
            });
        }
        self.check_attributes(start, pos)
    }

    /// The attribute checks of [`Builder::open`] without building anything: syntax,
    /// duplicates, references and the characters they bring.
    fn check_attributes(&self, start: &BytesStart<'_>, pos: usize) -> Result<(), DecodeError> {
        let qname = start.name().0;
        for attr in start.attributes() {
            let attr =
                attr.map_err(|err| syntax(self.text, pos, format!("in the tag <{qname}>: {err}")))?;
            let name = attr.key.0;
            // Only a reference can make normalisation fail or bring a forbidden character.
            if name == "xmlns" || name.starts_with("xmlns:") || !attr.value.contains('&') {
                continue;
            }
            let value = attr
                .normalized_value(XmlVersion::Implicit1_0)
                .map_err(|err| from_parser(self.text, pos, err))?;
            if let Some(bad) = value.chars().find(|&c| !is_xml_char(c)) {
                let (line, column) = line_col(self.text.as_bytes(), pos);
                return Err(DecodeError::XmlChar {
                    codepoint: u32::from(bad),
                    line,
                    column,
                });
            }
        }
        Ok(())
    }

    /// The character a predefined entity or character reference stands for.
    fn resolve(
        &self,
        reference: &quick_xml::events::BytesRef<'_>,
        pos: usize,
    ) -> Result<char, DecodeError> {
        let name: &str = reference;
        let at = || line_col(self.text.as_bytes(), pos);
        if reference.is_char_ref() {
            if let Ok(Some(c)) = reference
                .resolve_char_ref()
                .map(|c| c.filter(|&c| is_xml_char(c)))
            {
                return Ok(c);
            }
            return match parse_char_ref(name) {
                Some(codepoint) => {
                    let (line, column) = at();
                    Err(DecodeError::XmlChar {
                        codepoint,
                        line,
                        column,
                    })
                }
                None => Err(syntax(
                    self.text,
                    pos,
                    format!("invalid character reference &{name};"),
                )),
            };
        }
        match name {
            "lt" => Ok('<'),
            "gt" => Ok('>'),
            "amp" => Ok('&'),
            "apos" => Ok('\''),
            "quot" => Ok('"'),
            _ => {
                let (line, column) = at();
                Err(DecodeError::XmlEntity {
                    name: name.to_owned(),
                    line,
                    column,
                })
            }
        }
    }

    fn attach(&mut self, key: String, value: Value) {
        if self.stack.is_empty() {
            self.root = Some((key, value));
        } else {
            self.entries.push((key, value));
        }
    }

    /// The value of a closed element: a string when it has neither attributes nor
    /// children, an object otherwise.
    fn finish(&mut self, frame: Frame<'_>) -> (String, Value) {
        let Frame {
            key,
            first_entry,
            text,
            has_children,
            ..
        } = frame;
        let first_entry = first_entry.min(self.entries.len());
        // Children the projection skipped still make this an object.
        if first_entry == self.entries.len() && !has_children {
            return (key, Value::String(nfc_cow(text)));
        }
        // Whitespace between child elements is layout, not content.
        let layout_only = has_children && text.bytes().all(is_xml_space);
        let keep_text = !text.is_empty() && !layout_only;
        let count = self.entries.len() - first_entry + usize::from(keep_text);
        let mut map = Map::with_capacity(count);
        for (name, value) in self.entries.drain(first_entry..) {
            insert(&mut map, name, value);
        }
        if keep_text {
            map.insert(TEXT_KEY.to_owned(), Value::String(nfc_cow(text)));
        }
        (key, Value::Object(map))
    }
}

/// The numeric value of `#123` / `#x7B` when it fits in a `u32`, for error messages.
fn parse_char_ref(name: &str) -> Option<u32> {
    let digits = name.strip_prefix('#')?;
    match digits.strip_prefix('x') {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => digits.parse().ok(),
    }
}

fn local_name(qname: &str) -> &str {
    // Names are short: a plain scan beats a vectorised search's set-up cost.
    match qname.bytes().rposition(|b| b == b':') {
        Some(i) => qname.get(i + 1..).unwrap_or(qname),
        None => qname,
    }
}

fn append<'a>(buf: &mut Cow<'a, str>, piece: Cow<'a, str>) {
    if buf.is_empty() {
        *buf = piece;
    } else if !piece.is_empty() {
        buf.to_mut().push_str(&piece);
    }
}

/// Insert a child; a repeated name turns the value into an array (at the first
/// occurrence's position).
fn insert(map: &mut Map<String, Value>, key: String, value: Value) {
    match map.entry(key) {
        Entry::Vacant(slot) => {
            slot.insert(value);
        }
        Entry::Occupied(mut slot) => match slot.get_mut() {
            Value::Array(items) => items.push(value),
            existing => {
                let first = std::mem::take(existing);
                *existing = Value::Array(vec![first, value]);
            }
        },
    }
}
