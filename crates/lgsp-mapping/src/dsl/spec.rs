//! What integrators write: the YAML shapes of adapters, mappings, fields and test cases.
//! Plain serde data; [`super::compile`] turns it into something that runs.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use crate::xml_out::XmlOutOptions;

/// Keys allowed at the top of any YAML file of an adapter folder.
pub const ADAPTER_FILE_KEYS: &[&str] = &["description", "messages", "tables", "mappings"];

/// How an adapter picks a mapping for one message type.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DispatchSpec {
    /// Conditions on the payload; the first candidate whose conditions hold is used.
    #[serde(default)]
    pub when: WhenSpec,
    /// The mapping (in this adapter) to run.
    pub mapping: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WhenSpec {
    /// `xml` or `json`: the payload's format (content type, or sniffed).
    #[serde(default)]
    pub content_type: Option<FormatSpec>,
    /// XML: the root element's local name. JSON: a key of the top-level object.
    #[serde(default)]
    pub root: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FormatSpec {
    Xml,
    Json,
}

/// A code table: source code -> value. Keys are text (quote codes such as `"06400"`).
pub type TableSpec = BTreeMap<String, Value>;

/// One mapping: a payload (or a canonical message) into one or more outputs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MappingSpec {
    /// What it reads: `xml` or `json`. Default: either.
    #[serde(default)]
    pub from: Option<FormatSpec>,
    /// What it writes: `json` (default) or `xml` (then `xml` gives the root and namespaces).
    #[serde(default)]
    pub to: Option<FormatSpec>,
    /// Root element and namespaces when `to: xml`.
    #[serde(default)]
    pub xml: Option<XmlOutOptions>,
    /// Canonical event of the output (`enterprise.registered`), the default routing key.
    #[serde(default)]
    pub event: Option<String>,
    /// A batch: one output per node of this path; field paths are relative to the node.
    /// A list of paths is tried in order: the first that selects a node is used.
    #[serde(default)]
    pub each: Option<OneOrMany<String>>,
    /// The output's fields. Without `fields`, the whole decoded document is the output.
    #[serde(default)]
    pub fields: Option<BTreeMap<String, FieldSpec>>,
    /// Rust steps run in order on each output, after the fields (`[tax.einvoice_totals]`).
    #[serde(default)]
    pub steps: Vec<String>,
    /// Canonical schema each output must satisfy, checked last (`lgsp.enterprise/1`).
    #[serde(default)]
    pub validate: Option<String>,
    /// A former administrative code is an error, not a `legacy_admin_code` warning.
    #[serde(default)]
    pub strict_admin_codes: bool,
}

/// One output field. Exactly one source: `path`, `any_of`, `root_path`, `envelope`,
/// `const`, `concat`, `fields` (a nested object) or `each` (a list).
///
/// `path`, `root_path` and `each` take one JSONPath or a list of alternatives, tried in
/// order: the first that yields a value (for `each`, a node) is used; when none does
/// the value is absent, as when a single path selects nothing.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldSpec {
    /// JSONPath relative to the current node (the document, or the item of `each`), or
    /// a list of alternatives (`[$.MaSoThue, $.@MaSoThue, $.ma_so_thue]`).
    #[serde(default)]
    pub path: Option<OneOrMany<String>>,
    /// The same as a list of alternatives for `path`: `any_of: [$.a, $.@a]`.
    #[serde(default)]
    pub any_of: Option<Vec<String>>,
    /// JSONPath from the document root, for use inside `each`, or a list of alternatives.
    #[serde(default)]
    pub root_path: Option<OneOrMany<String>>,
    /// An envelope field: `message_id`, `correlation_id`, `type`, `app_id`, `sender`,
    /// `timestamp`, `content_type`, `user_id`.
    #[serde(default)]
    pub envelope: Option<String>,
    /// A constant value.
    #[serde(default, rename = "const")]
    pub constant: Option<Value>,
    /// Parts joined as text: parts starting with `$` are paths, others literal text; a
    /// part `{ path, transform }` is a path whose value is transformed first (a date
    /// in an id is the same id however the sender spelled the date).
    #[serde(default)]
    pub concat: Option<Vec<ConcatPartSpec>>,
    /// A list: one entry per node of this path (one node or many, always a list); a
    /// list of paths is tried in order, the first that selects a node is used.
    #[serde(default)]
    pub each: Option<OneOrMany<String>>,
    /// A nested object (with `each`: the shape of each entry).
    #[serde(default)]
    pub fields: Option<BTreeMap<String, FieldSpec>>,
    /// Fail when the value is absent (absent optional values are omitted).
    #[serde(default)]
    pub required: bool,
    /// Used when the value is absent.
    #[serde(default)]
    pub default: Option<Value>,
    /// Applied in order to the value.
    #[serde(default)]
    pub transform: Vec<TransformSpec>,
    /// Checks on the final value.
    #[serde(default)]
    pub check: Option<OneOrMany<CheckSpec>>,
    /// Checks whose failure is a warning in the output's `warnings[]`; the value is kept.
    #[serde(default)]
    pub warn: Option<OneOrMany<CheckSpec>>,
    /// Look the final value (a code) up in an effective-dated reference table.
    #[serde(default)]
    pub reference: Option<ReferenceSpec>,
    /// The value is personal data: shown masked in error messages.
    #[serde(default)]
    pub personal: bool,
}

/// A lookup of a code in an effective-dated reference table, on the document's date.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReferenceSpec {
    /// The table (in `reference_dir`), e.g. `admin_unit`.
    pub table: String,
    /// JSONPath from the document root to the date the code must be valid on.
    pub date_path: String,
    /// chrono pattern(s) of that date. Default: the default family of spellings of the
    /// `date` transform (which reads `YYYY-MM-DD` as before, and `dd/mm/yyyy` and the
    /// other Vietnamese spellings too).
    #[serde(default)]
    pub date_format: Option<OneOrMany<String>>,
    /// JSONPath (relative, like `path`) to the name the document gives the unit: a name
    /// that is not the table's is an `admin_name_mismatch` warning.
    #[serde(default)]
    pub name_path: Option<String>,
    /// Sibling field that receives a former code replaced by the current one
    /// (e.g. `legacy_commune_code`); without it the former code is only in the warning.
    #[serde(default)]
    pub keep_former_as: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<T> OneOrMany<T> {
    pub fn into_vec(self) -> Vec<T> {
        match self {
            OneOrMany::One(t) => vec![t],
            OneOrMany::Many(v) => v,
        }
    }
}

/// One part of a `concat`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum ConcatPartSpec {
    /// A path (`$...`) or literal text.
    Text(String),
    /// A path with transforms.
    Path(ConcatPathSpec),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConcatPathSpec {
    pub path: String,
    #[serde(default)]
    pub transform: Vec<TransformSpec>,
}

/// One transform: a name (`trim`, `date`) or a map with one key (`{ date: "%d/%m/%Y" }`).
/// `date` and `datetime` take their patterns optionally: a bare `date` reads the default
/// family of spellings ([`crate::values::DatePatterns::family`]).
#[derive(Debug, Clone)]
pub enum TransformSpec {
    Trim,
    Upper,
    Lower,
    Nfc,
    Integer,
    Decimal,
    VnNumber,
    Bool,
    CompactTaxCode,
    /// Multiply exactly by a factor (`1000000` for amounts in millions).
    Multiply(Value),
    /// Parse a date -> `YYYY-MM-DD`, with chrono patterns or (`None`) the default family.
    Date(Option<Vec<String>>),
    /// Parse a date and time -> RFC 3339, `+07:00` when the source has no offset; with
    /// chrono patterns or (`None`) the default family.
    Datetime(Option<Vec<String>>),
    /// Replace by the value in a code table.
    Lookup(LookupSpec),
    /// Split text into a list on a separator.
    Split(String),
}

impl<'de> Deserialize<'de> for TransformSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(TransformVisitor)
    }
}

struct TransformVisitor;

impl<'de> serde::de::Visitor<'de> for TransformVisitor {
    type Value = TransformSpec;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a transform: a name such as trim or date, or a map with one key such as { date: \"%d/%m/%Y\" }")
    }

    fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<TransformSpec, E> {
        use serde::de::IntoDeserializer as _;
        match name {
            "date" => Ok(TransformSpec::Date(None)),
            "datetime" => Ok(TransformSpec::Datetime(None)),
            _ => TransformRepr::deserialize(name.into_deserializer()).map(Into::into),
        }
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(
        self,
        mut map: A,
    ) -> Result<TransformSpec, A::Error> {
        use serde::de::Error as _;
        let Some(name) = map.next_key::<String>()? else {
            return Err(A::Error::invalid_length(0, &self));
        };
        let arg: Value = map.next_value()?;
        if map.next_key::<serde::de::IgnoredAny>()?.is_some() {
            return Err(A::Error::custom(
                "a transform is a map with exactly one key, such as { date: \"%d/%m/%Y\" }; \
                 give each transform its own list item",
            ));
        }
        let one = Value::Object(std::iter::once((name, arg)).collect());
        TransformRepr::deserialize(one)
            .map(Into::into)
            .map_err(A::Error::custom)
    }
}

/// The YAML forms of [`TransformSpec`] other than bare `date` and `datetime`.
#[derive(Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum TransformRepr {
    Trim,
    Upper,
    Lower,
    Nfc,
    Integer,
    Decimal,
    VnNumber,
    Bool,
    CompactTaxCode,
    Multiply(Value),
    Date(OneOrMany<String>),
    Datetime(OneOrMany<String>),
    Lookup(LookupSpec),
    Split(String),
}

impl From<TransformRepr> for TransformSpec {
    fn from(r: TransformRepr) -> TransformSpec {
        match r {
            TransformRepr::Trim => TransformSpec::Trim,
            TransformRepr::Upper => TransformSpec::Upper,
            TransformRepr::Lower => TransformSpec::Lower,
            TransformRepr::Nfc => TransformSpec::Nfc,
            TransformRepr::Integer => TransformSpec::Integer,
            TransformRepr::Decimal => TransformSpec::Decimal,
            TransformRepr::VnNumber => TransformSpec::VnNumber,
            TransformRepr::Bool => TransformSpec::Bool,
            TransformRepr::CompactTaxCode => TransformSpec::CompactTaxCode,
            TransformRepr::Multiply(v) => TransformSpec::Multiply(v),
            TransformRepr::Date(p) => TransformSpec::Date(Some(p.into_vec())),
            TransformRepr::Datetime(p) => TransformSpec::Datetime(Some(p.into_vec())),
            TransformRepr::Lookup(l) => TransformSpec::Lookup(l),
            TransformRepr::Split(s) => TransformSpec::Split(s),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum LookupSpec {
    Table(String),
    WithDefault(LookupWithDefault),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LookupWithDefault {
    pub table: String,
    /// Used when the code is not in the table (otherwise that is an error).
    pub default: Value,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum CheckSpec {
    TaxCode,
    CitizenId,
    BudgetUnitCode,
    /// VSIC 2018 code: 4 digits (class) or 5 (subclass).
    VsicCode,
    Regex(String),
    Enum(Vec<Value>),
    Length(LengthSpec),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum LengthSpec {
    Exact(usize),
    Range(LengthRange),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LengthRange {
    #[serde(default)]
    pub min: Option<usize>,
    #[serde(default)]
    pub max: Option<usize>,
}

/// One test case of an adapter (`tests/*.yaml`, key `cases`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestCaseSpec {
    pub name: String,
    /// Input file, relative to the adapter folder.
    #[serde(default)]
    pub input: Option<String>,
    /// Inline input instead of a file.
    #[serde(default)]
    pub body: Option<String>,
    /// `xml` or `json`; default: sniffed from the input.
    #[serde(default)]
    pub content_type: Option<FormatSpec>,
    /// Message type (dispatch as the bus does) ...
    #[serde(default, rename = "type")]
    pub message_type: Option<String>,
    /// ... or a mapping of this adapter, by name.
    #[serde(default)]
    pub mapping: Option<String>,
    /// Envelope fields set for the case (others are fixed test values).
    #[serde(default)]
    pub envelope: BTreeMap<String, String>,
    /// Expected output file (what `lgsp map` prints), relative to the adapter folder.
    #[serde(default)]
    pub expect: Option<String>,
    /// Expected failure.
    #[serde(default)]
    pub expect_error: Option<ExpectErrorSpec>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectErrorSpec {
    /// Error kind: `decode`, `limit`, `mapping`, `validation`.
    pub kind: String,
    /// Text the error message must contain.
    #[serde(default)]
    pub contains: Option<String>,
}

impl ExpectErrorSpec {
    /// The expectation in words, for test reports.
    pub fn describe(&self) -> String {
        match &self.contains {
            Some(c) => format!("{} error containing \"{c}\"", self.kind),
            None => format!("{} error", self.kind),
        }
    }
}
