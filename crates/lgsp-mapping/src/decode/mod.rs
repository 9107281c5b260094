//! Decoding payloads into the mapping tree.
//!
//! Sector systems publish XML or JSON. Mappings do not care which: they read a
//! [`serde_json::Value`] tree with JSONPath. This module turns the bytes of a payload into
//! that tree, and refuses anything hostile or ambiguous before a mapping ever sees it.
//!
//! - [`decode_xml`]: elements become keys (local names, namespace prefixes dropped),
//!   repeated siblings become arrays, attributes become `"@name"`, text beside attributes
//!   or children becomes `"#text"`, every leaf is a string. DOCTYPEs, undefined entities,
//!   encodings other than UTF-8 and characters XML 1.0 forbids are refused; nothing is
//!   ever fetched.
//! - [`decode_json`]: numbers keep their exact text, duplicate keys and trailing garbage
//!   are refused.
//! - Both: all strings, keys and names are NFC-normalised, a UTF-8 byte order mark is
//!   accepted, size and nesting depth are bounded by [`Limits`] and exceeding them fails
//!   fast without building deep structures.
//!
//! The rules, and what the tree does not preserve, are described in `docs/decoding.md`.

use std::borrow::Cow;
use std::fmt;

use serde_json::Value;
use unicode_normalization::UnicodeNormalization;

mod json;
pub mod projection;
mod xml;

#[cfg(test)]
mod tests;

/// Do a name a mapping reads and a key of the tree name the same field, in another
/// spelling a sender may use? An attribute and a child element (`@Ten` / `Ten`), and
/// key styles (`maSoThue`, `ma_so_thue`, `MaSoThue`, `ma-so-thue`): a leading `@` is
/// ignored, `_` and `-` are ignored, ASCII letters compare without case. Paths look a
/// name up exactly first; this is the fallback when the exact name is absent.
pub(crate) fn same_field(name: &str, key: &str) -> bool {
    fn folded(s: &str) -> impl Iterator<Item = u8> + '_ {
        s.strip_prefix('@')
            .unwrap_or(s)
            .bytes()
            .filter(|b| *b != b'_' && *b != b'-')
            .map(|b| b.to_ascii_lowercase())
    }
    folded(name).eq(folded(key))
}

/// The two payload formats the bus decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// XML 1.0, UTF-8 encoded.
    Xml,
    /// JSON (RFC 8259), UTF-8 encoded.
    Json,
}

impl Format {
    /// The format named by a MIME content type: `application/xml`, `text/xml` or any
    /// `*/*+xml` for XML; `application/json` or any `*/*+json` for JSON. Parameters such as
    /// `; charset=utf-8` are ignored, case does not matter.
    pub fn from_content_type(ct: &str) -> Option<Format> {
        let essence = ct.split(';').next().unwrap_or("").trim();
        let (kind, subtype) = essence.split_once('/')?;
        let (kind, subtype) = (kind.trim(), subtype.trim());
        if kind.is_empty() || subtype.is_empty() {
            return None;
        }
        let is = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
        let ends_with = |s: &str, suffix: &str| {
            s.len() > suffix.len()
                && s.is_char_boundary(s.len() - suffix.len())
                && is(&s[s.len() - suffix.len()..], suffix)
        };
        if (is(kind, "application") || is(kind, "text")) && is(subtype, "xml")
            || ends_with(subtype, "+xml")
        {
            Some(Format::Xml)
        } else if is(kind, "application") && is(subtype, "json") || ends_with(subtype, "+json") {
            Some(Format::Json)
        } else {
            None
        }
    }

    fn document(self) -> &'static str {
        match self {
            Format::Xml => "an XML document",
            Format::Json => "a JSON document",
        }
    }

    fn lower(self) -> &'static str {
        match self {
            Format::Xml => "xml",
            Format::Json => "json",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Xml => "XML",
            Format::Json => "JSON",
        })
    }
}

/// Bounds on what a payload may cost to decode.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest accepted body, in bytes. Checked before anything is parsed.
    pub max_bytes: usize,
    /// Deepest accepted nesting: XML elements (the root is level 1) or JSON arrays and
    /// objects (the outermost is level 1). For JSON the parser's own recursion guard also
    /// applies, so the effective JSON limit is at most 127.
    pub max_depth: usize,
}

impl Default for Limits {
    /// 8 MiB and 128 levels.
    fn default() -> Self {
        Limits {
            max_bytes: 8 * 1024 * 1024,
            max_depth: 128,
        }
    }
}

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Guess the format from the first non-whitespace byte after an optional UTF-8 BOM:
/// `<` is XML, `{` or `[` is JSON, anything else is unknown.
pub fn sniff(body: &[u8]) -> Option<Format> {
    let body = body.strip_prefix(UTF8_BOM).unwrap_or(body);
    match body
        .iter()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
    {
        Some(b'<') => Some(Format::Xml),
        Some(b'{' | b'[') => Some(Format::Json),
        _ => None,
    }
}

/// A declared content type that names one format while the body plainly is the other
/// (`application/json` on `<HoSo>...`): the error to refuse it with. `None` when they
/// agree, or when either says nothing.
pub fn content_type_mismatch(content_type: &str, body: &[u8]) -> Option<DecodeError> {
    match (Format::from_content_type(content_type), sniff(body)) {
        (Some(declared), Some(found)) if declared != found => {
            Some(DecodeError::ContentTypeMismatch {
                content_type: content_type.chars().take(100).collect(),
                declared,
                found,
            })
        }
        _ => None,
    }
}

/// Decode a payload of the given format into the mapping tree.
pub fn decode(format: Format, body: &[u8], limits: &Limits) -> Result<Value, DecodeError> {
    match format {
        Format::Xml => decode_xml(body, limits),
        Format::Json => decode_json(body, limits),
    }
}

/// Is the payload well-formed within `limits`? The same checks and the same errors as
/// [`decode`], but for XML only the root element is built (every other element is
/// parsed and checked as the projected decoder checks what it skips): what the gateway
/// asks of a body before it publishes it, at a fraction of a decode.
pub fn check(format: Format, body: &[u8], limits: &Limits) -> Result<(), DecodeError> {
    static ROOT_ONLY: std::sync::LazyLock<projection::Projection> =
        std::sync::LazyLock::new(|| {
            let mut b = projection::ProjectionBuilder::new();
            b.any(projection::DOCUMENT);
            b.finish()
        });
    match format {
        Format::Xml => xml::decode_projected(body, limits, Some(&ROOT_ONLY)).map(drop),
        Format::Json => decode_json(body, limits).map(drop),
    }
}

/// Decode an XML payload: `{"<RootLocalName>": <content>}`. See the module documentation.
pub fn decode_xml(body: &[u8], limits: &Limits) -> Result<Value, DecodeError> {
    xml::decode(body, limits)
}

/// Decode an XML payload keeping only what `projection` says a mapping can read: the
/// tree of [`decode_xml`] without the child elements no path of the mapping reaches.
/// Everything skipped is still parsed and checked, so a document [`decode_xml`] refuses
/// is refused here with the same error. See [`projection`].
pub fn decode_xml_projected(
    body: &[u8],
    limits: &Limits,
    projection: &projection::Projection,
) -> Result<Value, DecodeError> {
    xml::decode_projected(body, limits, Some(projection))
}

/// The local name (NFC) of the root element of an XML payload, read from the start of
/// the document only; `None` when it cannot be found that way (then decode the whole
/// document to learn why).
pub fn xml_root_name(body: &[u8]) -> Option<String> {
    xml::root_name(body)
}

/// Decode a JSON payload, keeping numbers exact. See the module documentation.
pub fn decode_json(body: &[u8], limits: &Limits) -> Result<Value, DecodeError> {
    json::decode(body, limits)
}

/// Why a payload was refused. Every positional error carries a 1-based line and column
/// (columns count characters, not bytes).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The body is larger than [`Limits::max_bytes`].
    #[error(
        "payload of {size} bytes exceeds the limit of {limit} bytes: send a smaller document or split it"
    )]
    TooLarge {
        /// Size of the body.
        size: usize,
        /// The configured limit.
        limit: usize,
    },
    /// Nesting deeper than [`Limits::max_depth`].
    #[error(
        "{} nesting deeper than {limit} levels at line {line}, column {column}: flatten the document, deeper structures are refused",
        .format.lower()
    )]
    TooDeep {
        /// Format of the payload.
        format: Format,
        /// The depth limit that applied.
        limit: usize,
        /// Line of the element or container that went too deep.
        line: usize,
        /// Column of the element or container that went too deep.
        column: usize,
    },
    /// Nothing but whitespace (and a byte order mark).
    #[error("empty body: expected {}", .format.document())]
    Empty {
        /// Format that was expected.
        format: Format,
    },
    /// The body is not valid UTF-8.
    #[error(
        "{} payload is not valid UTF-8 at line {line}, column {column}: payloads must be UTF-8 encoded, convert the document to UTF-8",
        .format.lower()
    )]
    InvalidUtf8 {
        /// Format of the payload.
        format: Format,
        /// Line of the first invalid byte.
        line: usize,
        /// Column of the first invalid byte.
        column: usize,
    },
    /// The XML document declares (or is marked with a byte order mark of) an encoding other
    /// than UTF-8.
    #[error(
        "xml encoding {encoding:?} refused: only UTF-8 is accepted, convert the document to UTF-8 and declare encoding=\"UTF-8\" (or nothing)"
    )]
    XmlEncoding {
        /// The declared or detected encoding.
        encoding: String,
    },
    /// The declared content type names one format and the body is plainly the other.
    #[error(
        "content type {content_type:?} says {}, but the body is {}: fix the content type the sender sets (or send none: lgsp then reads the body's own format)",
        .declared.document(),
        .found.document()
    )]
    ContentTypeMismatch {
        /// The content type as declared (at most 100 characters of it).
        content_type: String,
        /// The format it names.
        declared: Format,
        /// The format the body starts as.
        found: Format,
    },
    /// The XML document has a DOCTYPE.
    #[error(
        "xml DOCTYPE at line {line}, column {column} refused: DTDs and entity declarations are not accepted, send the document without a DOCTYPE"
    )]
    XmlDoctype {
        /// Line of `<!DOCTYPE`.
        line: usize,
        /// Column of `<!DOCTYPE`.
        column: usize,
    },
    /// An entity reference other than the five predefined ones.
    #[error(
        "xml undefined entity &{name}; at line {line}, column {column} refused: only &lt; &gt; &amp; &apos; &quot; and character references are accepted, write the character itself"
    )]
    XmlEntity {
        /// The entity name, without `&` and `;`.
        name: String,
        /// Line of the reference (for attributes: of the tag).
        line: usize,
        /// Column of the reference (for attributes: of the tag).
        column: usize,
    },
    /// A character XML 1.0 does not allow, raw or as a character reference.
    #[error(
        "xml character U+{codepoint:04X} at line {line}, column {column} is not allowed in XML 1.0: remove it (binary data must be base64-encoded)"
    )]
    XmlChar {
        /// The offending code point.
        codepoint: u32,
        /// Line of the character or reference.
        line: usize,
        /// Column of the character or reference.
        column: usize,
    },
    /// The XML document is not well-formed.
    #[error("xml syntax error at line {line}, column {column}: {message}")]
    XmlSyntax {
        /// What is wrong.
        message: String,
        /// Line where it was detected.
        line: usize,
        /// Column where it was detected.
        column: usize,
    },
    /// The JSON document is not valid JSON (this includes `NaN` and `Infinity`).
    #[error("json syntax error at line {line}, column {column}: {message}")]
    JsonSyntax {
        /// What is wrong.
        message: String,
        /// Line where it was detected.
        line: usize,
        /// Column where it was detected.
        column: usize,
    },
    /// A JSON object has the same key twice (after NFC normalisation).
    #[error(
        "json duplicate key {key:?} at line {line}, column {column}: a key may appear only once per object, remove or rename the repeated one"
    )]
    JsonDuplicateKey {
        /// The repeated key.
        key: String,
        /// Line just after the repeated key.
        line: usize,
        /// Column just after the repeated key.
        column: usize,
    },
    /// Something follows the JSON value.
    #[error(
        "json trailing characters at line {line}, column {column}: the body must hold exactly one JSON value, remove what follows it"
    )]
    JsonTrailing {
        /// Line of the first trailing character.
        line: usize,
        /// Column of the first trailing character.
        column: usize,
    },
}

impl DecodeError {
    /// `limit` for size and depth limits, `decode` for everything else.
    pub fn kind(&self) -> lgsp_core::failure::FailureKind {
        use lgsp_core::failure::FailureKind;
        match self {
            DecodeError::TooLarge { .. } | DecodeError::TooDeep { .. } => FailureKind::Limit,
            _ => FailureKind::Decode,
        }
    }

    /// A stable id of the error template, used to group failures.
    pub fn code(&self) -> &'static str {
        match self {
            DecodeError::TooLarge { .. } => "limit.size",
            DecodeError::TooDeep { .. } => "limit.depth",
            DecodeError::Empty {
                format: Format::Xml,
            } => "decode.xml.empty",
            DecodeError::Empty {
                format: Format::Json,
            } => "decode.json.empty",
            DecodeError::InvalidUtf8 {
                format: Format::Xml,
                ..
            } => "decode.xml.utf8",
            DecodeError::InvalidUtf8 {
                format: Format::Json,
                ..
            } => "decode.json.utf8",
            DecodeError::XmlEncoding { .. } => "decode.xml.encoding",
            DecodeError::ContentTypeMismatch { .. } => "decode.content_type",
            DecodeError::XmlDoctype { .. } => "decode.xml.doctype",
            DecodeError::XmlEntity { .. } => "decode.xml.entity",
            DecodeError::XmlChar { .. } => "decode.xml.char",
            DecodeError::XmlSyntax { .. } => "decode.xml.syntax",
            DecodeError::JsonSyntax { .. } => "decode.json.syntax",
            DecodeError::JsonDuplicateKey { .. } => "decode.json.duplicate_key",
            DecodeError::JsonTrailing { .. } => "decode.json.trailing",
        }
    }

    /// The 1-based `(line, column)` the error points at, if it is positional.
    pub fn position(&self) -> Option<(usize, usize)> {
        match *self {
            DecodeError::TooDeep { line, column, .. }
            | DecodeError::InvalidUtf8 { line, column, .. }
            | DecodeError::XmlDoctype { line, column }
            | DecodeError::XmlEntity { line, column, .. }
            | DecodeError::XmlChar { line, column, .. }
            | DecodeError::XmlSyntax { line, column, .. }
            | DecodeError::JsonSyntax { line, column, .. }
            | DecodeError::JsonDuplicateKey { line, column, .. }
            | DecodeError::JsonTrailing { line, column } => Some((line, column)),
            DecodeError::TooLarge { .. }
            | DecodeError::Empty { .. }
            | DecodeError::XmlEncoding { .. }
            | DecodeError::ContentTypeMismatch { .. } => None,
        }
    }
}

/// 1-based line and column (in characters) of a byte offset. Works on invalid UTF-8 too:
/// every byte that is not a UTF-8 continuation byte counts as one column.
pub(crate) fn line_col(body: &[u8], offset: usize) -> (usize, usize) {
    let offset = offset.min(body.len());
    let before = &body[..offset];
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let line = 1 + before[..line_start].iter().filter(|&&b| b == b'\n').count();
    let column = 1 + before[line_start..]
        .iter()
        .filter(|&&b| b & 0xC0 != 0x80)
        .count();
    (line, column)
}

fn is_nfc(s: &str) -> bool {
    crate::values::transform::is_nfc(s)
}

/// `s` in Unicode normalisation form C; copies once, and only normalises when needed.
pub(crate) fn nfc_str(s: &str) -> String {
    if is_nfc(s) {
        s.to_owned()
    } else {
        s.nfc().collect()
    }
}

/// `s` in Unicode normalisation form C; NFC input is returned without reallocating.
pub(crate) fn nfc_string(s: String) -> String {
    if is_nfc(&s) { s } else { s.nfc().collect() }
}

/// `s` in Unicode normalisation form C, borrowed when it already is.
pub(crate) fn nfc_borrowed(s: &str) -> Cow<'_, str> {
    if is_nfc(s) {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(s.nfc().collect())
    }
}

pub(crate) fn nfc_cow(s: Cow<'_, str>) -> String {
    match s {
        Cow::Borrowed(b) => nfc_str(b),
        Cow::Owned(o) => nfc_string(o),
    }
}
