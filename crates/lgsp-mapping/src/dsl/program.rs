//! A compiled mapping and how it runs on one decoded message.
//!
//! Compilation resolves everything that does not depend on the message: JSONPaths,
//! regexes, date patterns, code tables, multiplication factors, field order. Running
//! walks the fields once per message and builds the output directly.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::Arc;

use chrono::NaiveDate;
use lgsp_core::envelope::Envelope;
use lgsp_core::step::{Step, StepContext, StepErrorKind, Warning, append_warnings};
use regex::Regex;
use rust_decimal::Decimal;
use serde_json::{Map, Value};

use super::error::{ErrorKind, FieldError};
use super::path::CompiledPath;
use super::spec::{
    CheckSpec, ConcatPartSpec, FieldSpec, FormatSpec, LengthSpec, LookupSpec, MappingSpec,
    OneOrMany, ReferenceSpec, TransformSpec,
};
use crate::decode::Format;
use crate::decode::projection::{DOCUMENT, NodeId, Projection, ProjectionBuilder};
use crate::domain::{Domain, LEGACY_ADMIN_CODE, Reference, Resolution, Schema, Schemas};
use crate::values::{self, DatePatterns, ValueError};
use crate::xml_out::XmlOutOptions;

/// How many expressions (JSONPaths, regexes, date patterns, factors) this process has
/// compiled. Mapping a message compiles none: a test holds the count steady over many
/// messages.
pub fn compilations() -> usize {
    COMPILATIONS.load(std::sync::atomic::Ordering::Relaxed)
}

static COMPILATIONS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn counted() {
    COMPILATIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

/// A code table after loading: code -> value.
pub type Table = Arc<HashMap<String, Value>>;

/// A problem found while compiling, at a key path of the mapping (dotted, relative to
/// the mapping), with the column inside the value when known (JSONPath, regex).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileError {
    pub at: String,
    pub column: Option<usize>,
    pub message: String,
}

/// Everything compilation may consult.
pub struct CompileEnv<'a> {
    pub tables: &'a BTreeMap<String, Table>,
    /// Schemas, reference tables and Rust steps.
    pub domain: &'a Domain,
    /// Where a key path of this mapping is in its file (orders fields as written).
    pub position: &'a dyn Fn(&str) -> Option<(usize, usize)>,
}

/// A compiled mapping.
#[derive(Debug, Clone)]
pub struct Program {
    /// `adapter.mapping`.
    pub name: String,
    pub from: Option<Format>,
    pub output: OutputFormat,
    pub event: Option<String>,
    each: Option<Paths>,
    fields: Option<Vec<Field>>,
    steps: Steps,
    validate: Option<(Arc<Schemas>, Schema)>,
    strict_admin_codes: bool,
    /// What of an XML payload the fields can read; `None` when that is everything.
    projection: Option<Arc<Projection>>,
}

/// Rust steps of a mapping, in order.
#[derive(Clone, Default)]
struct Steps(Vec<Arc<dyn Step>>);

impl std::fmt::Debug for Steps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|s| s.name()))
            .finish()
    }
}

#[derive(Debug, Clone)]
pub enum OutputFormat {
    Json,
    Xml(XmlOutOptions),
}

#[derive(Debug, Clone)]
struct Field {
    name: String,
    source: Source,
    required: bool,
    default: Option<Value>,
    transforms: Vec<Transform>,
    checks: Vec<Check>,
    /// Checks whose failure is a warning.
    warns: Vec<Check>,
    reference: Option<RefLookup>,
    personal: bool,
}

/// A compiled `reference:` lookup.
#[derive(Debug, Clone)]
struct RefLookup {
    reference: Arc<Reference>,
    table: String,
    date: CompiledPath,
    date_patterns: DatePatterns,
    name: Option<CompiledPath>,
    keep_former_as: Option<String>,
}

/// One JSONPath, or alternatives tried in order (`path: [$.a, $.@a]`). Never empty.
#[derive(Debug, Clone)]
struct Paths(Vec<CompiledPath>);

impl Paths {
    /// The value of the first alternative that yields one.
    fn select<'a>(&self, node: &'a Value) -> Option<Cow<'a, Value>> {
        self.0.iter().find_map(|p| select_cow(p, node))
    }

    /// The nodes of the first alternative that selects at least one.
    fn each_nodes<'a>(&self, node: &'a Value) -> Vec<&'a Value> {
        for p in &self.0 {
            let nodes = each_nodes(p, node);
            if !nodes.is_empty() {
                return nodes;
            }
        }
        Vec::new()
    }

    /// Where the projection may end: every alternative is read.
    fn project(&self, from: &[NodeId], b: &mut ProjectionBuilder) -> Vec<NodeId> {
        let mut out = Vec::new();
        for p in &self.0 {
            out.extend(p.project(from, b));
        }
        out
    }

    /// As written, for messages: `$.a`, or `$.a, $.@a or $.b`.
    fn describe(&self) -> String {
        let mut out = String::new();
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                out.push_str(if i + 1 == self.0.len() { " or " } else { ", " });
            }
            out.push_str(&p.source);
        }
        out
    }
}

#[derive(Debug, Clone)]
enum Source {
    Path(Paths),
    RootPath(Paths),
    Envelope(String),
    Const(Value),
    Concat(Vec<Part>),
    Object(Vec<Field>),
    List {
        each: Paths,
        item: Option<Vec<Field>>,
    },
}

#[derive(Debug, Clone)]
enum Part {
    Path(CompiledPath, Vec<Transform>),
    Text(String),
}

#[derive(Debug, Clone)]
enum Transform {
    Trim,
    Upper,
    Lower,
    Nfc,
    Integer,
    Decimal,
    VnNumber,
    Bool,
    CompactTaxCode,
    Multiply(Decimal),
    Date(DatePatterns),
    Datetime(DatePatterns),
    Lookup {
        name: String,
        table: Table,
        default: Option<Value>,
    },
    Split(String),
}

#[derive(Debug, Clone)]
enum Check {
    TaxCode,
    CitizenId,
    BudgetUnitCode,
    VsicCode,
    Regex(Regex),
    Enum(Vec<Value>),
    Length(Option<usize>, Option<usize>),
}

impl Program {
    /// Compile `spec` named `name` (`adapter.mapping`). Every problem is returned.
    pub fn compile(
        name: &str,
        spec: &MappingSpec,
        env: &CompileEnv<'_>,
    ) -> Result<Program, Vec<CompileError>> {
        let mut errors = Vec::new();
        let each = spec
            .each
            .as_ref()
            .and_then(|p| compile_paths(p, "each", &mut errors));
        let output = match (spec.to, &spec.xml) {
            (Some(FormatSpec::Xml), Some(x)) => {
                if let Err(e) = x.validate() {
                    errors.push(err("xml", e.to_string()));
                }
                OutputFormat::Xml(x.clone())
            }
            (Some(FormatSpec::Xml), None) => {
                errors.push(err(
                    "to",
                    "`to: xml` needs an `xml:` section with at least `root`",
                ));
                OutputFormat::Json
            }
            (_, Some(_)) => {
                errors.push(err("xml", "`xml:` applies only with `to: xml`"));
                OutputFormat::Json
            }
            _ => OutputFormat::Json,
        };
        let fields = spec
            .fields
            .as_ref()
            .map(|f| compile_fields(f, "fields", env, &mut errors));
        let mut steps = Vec::with_capacity(spec.steps.len());
        for (i, s) in spec.steps.iter().enumerate() {
            match env.domain.steps.get(s) {
                Some(step) => steps.push(step),
                None => {
                    let known: Vec<&str> = env.domain.steps.names().collect();
                    errors.push(err(
                        &format!("steps.{i}"),
                        format!(
                            "no step `{s}` in this build; steps: {} (an adapter crate registers \
                             its steps in crates/lgsp-cli/src/steps.rs)",
                            if known.is_empty() {
                                "none".to_owned()
                            } else {
                                known.join(", ")
                            }
                        ),
                    ));
                }
            }
        }
        let validate = spec
            .validate
            .as_ref()
            .and_then(|id| match env.domain.schemas.get(id) {
                Some(schema) => Some((env.domain.schemas.clone(), schema.clone())),
                None => {
                    errors.push(err("validate", env.domain.schemas.unknown(id)));
                    None
                }
            });
        if errors.is_empty() {
            let projection = project(each.as_ref(), fields.as_deref()).map(Arc::new);
            Ok(Program {
                name: name.to_owned(),
                from: spec.from.map(to_format),
                output,
                event: spec.event.clone(),
                each,
                fields,
                steps: Steps(steps),
                validate,
                strict_admin_codes: spec.strict_admin_codes,
                projection,
            })
        } else {
            Err(errors)
        }
    }

    /// Run on a decoded document: one output value per entity (several for a batch).
    pub fn run(&self, root: &Value, envelope: &Envelope) -> Result<Vec<Value>, FieldError> {
        let Some(fields) = &self.fields else {
            let docs: Vec<Value> = match &self.each {
                Some(each) => each.each_nodes(root).into_iter().cloned().collect(),
                None => vec![root.clone()],
            };
            return docs
                .into_iter()
                .map(|mut d| self.after_fields(&mut d, Vec::new()).map(|()| d))
                .collect();
        };
        match &self.each {
            None => {
                let ctx = Ctx {
                    root,
                    envelope,
                    program: self,
                    warnings: RefCell::new(Vec::new()),
                };
                let mut doc = Value::Object(ctx.object(fields, root, &Trail::Root)?);
                self.after_fields(&mut doc, ctx.warnings.into_inner())?;
                Ok(vec![doc])
            }
            Some(each) => {
                let items = each.each_nodes(root);
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.into_iter().enumerate() {
                    let mut child = envelope.clone();
                    if !envelope.message_id.is_empty() {
                        child.message_id =
                            lgsp_core::envelope::child_message_id(&envelope.message_id, i);
                        child.correlation_id = Some(envelope.message_id.clone());
                    }
                    let ctx = Ctx {
                        root,
                        envelope: &child,
                        program: self,
                        warnings: RefCell::new(Vec::new()),
                    };
                    let mut doc = Value::Object(ctx.object(fields, item, &Trail::Item(i))?);
                    self.after_fields(&mut doc, ctx.warnings.into_inner())?;
                    out.push(doc);
                }
                Ok(out)
            }
        }
    }

    /// What runs on each output once its fields are made: the fields' warnings are
    /// added, then the Rust steps run, then `strict_admin_codes`, then `validate`.
    fn after_fields(&self, doc: &mut Value, warnings: Vec<Warning>) -> Result<(), FieldError> {
        append_warnings(doc, warnings);
        for step in &self.steps.0 {
            let mut ctx = StepContext::new(&self.name);
            let result = step.run(doc, &mut ctx);
            append_warnings(doc, ctx.into_warnings());
            result.map_err(|e| FieldError {
                mapping: self.name.clone(),
                field: e.field,
                kind: match e.kind {
                    StepErrorKind::Validation => ErrorKind::Validation,
                    StepErrorKind::Mapping => ErrorKind::Mapping,
                },
                code: e.code,
                message: format!("{} (step {})", e.message, step.name()),
            })?;
        }
        if self.strict_admin_codes {
            crate::domain::refuse_legacy_admin_codes(&self.name, doc)?;
        }
        if let Some((schemas, schema)) = &self.validate {
            schemas
                .check(schema, doc)
                .map_err(|e| e.into_field_error(&self.name))?;
        }
        Ok(())
    }

    /// What of an XML payload this mapping can read, when that is less than everything:
    /// decoding with it ([`crate::decode::decode_xml_projected`]) gives the same outputs
    /// as decoding the whole tree.
    pub fn projection(&self) -> Option<&Projection> {
        self.projection.as_deref()
    }

    /// The schema the outputs are validated against, if any.
    pub fn validates(&self) -> Option<&str> {
        self.validate.as_ref().map(|(_, s)| s.id.as_str())
    }

    /// The canonical schema its outputs name: what it validates against, or the constant
    /// of its `schema` field.
    pub fn schema(&self) -> Option<&str> {
        self.validates().or_else(|| {
            self.fields.as_ref()?.iter().find_map(|f| match &f.source {
                Source::Const(Value::String(s)) if f.name == "schema" => Some(s.as_str()),
                _ => None,
            })
        })
    }

    /// Is this a batch mapping (one output per node of `each`)?
    pub fn is_batch(&self) -> bool {
        self.each.is_some()
    }

    /// What this mapping reads of its input, each as steps from the document root
    /// (paths inside `each` after the list's path); with the paths, as written, that
    /// cannot be told so (descendants, unions, functions).
    pub fn reads(&self) -> (Vec<Vec<lgsp_core::agreement::Read>>, Vec<String>) {
        use lgsp_core::agreement::Read;
        struct Out {
            reads: Vec<Vec<Read>>,
            unknown: Vec<String>,
        }
        fn path(p: &CompiledPath, base: &[Read], out: &mut Out) -> Option<Vec<Read>> {
            match p.read_steps() {
                Some(steps) => {
                    let mut r = base.to_vec();
                    r.extend(steps);
                    out.reads.push(r.clone());
                    Some(r)
                }
                None => {
                    out.unknown.push(p.source.clone());
                    None
                }
            }
        }
        fn fields(fs: &[Field], base: &[Read], out: &mut Out) {
            for f in fs {
                match &f.source {
                    Source::Path(p) => p.0.iter().for_each(|p| {
                        path(p, base, out);
                    }),
                    Source::RootPath(p) => p.0.iter().for_each(|p| {
                        path(p, &[], out);
                    }),
                    Source::Concat(parts) => {
                        for part in parts {
                            if let Part::Path(p, _) = part {
                                path(p, base, out);
                            }
                        }
                    }
                    Source::Object(fs) => fields(fs, base, out),
                    Source::List { each, item } => {
                        for e in &each.0 {
                            if let Some(mut inner) = path(e, base, out) {
                                inner.push(Read::Any);
                                match item {
                                    Some(fs) => fields(fs, &inner, out),
                                    // The items themselves are the values.
                                    None => out.reads.push(inner),
                                }
                            }
                        }
                    }
                    Source::Envelope(_) | Source::Const(_) => {}
                }
            }
        }
        let mut out = Out {
            reads: Vec::new(),
            unknown: Vec::new(),
        };
        let bases: Vec<Vec<Read>> = match &self.each {
            Some(each) => each
                .0
                .iter()
                .filter_map(|e| {
                    let mut b = path(e, &[], &mut out)?;
                    b.push(Read::Any);
                    Some(b)
                })
                .collect(),
            None => vec![Vec::new()],
        };
        match &self.fields {
            Some(fs) => bases.iter().for_each(|b| fields(fs, b, &mut out)),
            // No fields: the whole document is the output.
            None => out.reads.extend(bases),
        }
        (out.reads, out.unknown)
    }

    /// Every compiled path of this mapping (tests check that none is re-parsed per message).
    pub fn paths(&self) -> Vec<&CompiledPath> {
        fn collect<'a>(fields: &'a [Field], out: &mut Vec<&'a CompiledPath>) {
            for f in fields {
                match &f.source {
                    Source::Path(p) | Source::RootPath(p) => out.extend(&p.0),
                    Source::Concat(parts) => out.extend(parts.iter().filter_map(|p| match p {
                        Part::Path(p, _) => Some(p),
                        Part::Text(_) => None,
                    })),
                    Source::Object(fs) => collect(fs, out),
                    Source::List { each, item } => {
                        out.extend(&each.0);
                        if let Some(fs) = item {
                            collect(fs, out);
                        }
                    }
                    Source::Envelope(_) | Source::Const(_) => {}
                }
            }
        }
        let mut out = Vec::new();
        out.extend(self.each.iter().flat_map(|p| &p.0));
        if let Some(f) = &self.fields {
            collect(f, &mut out);
        }
        out
    }
}

/// What the paths of a mapping can read, from the document root: `None` when it is
/// everything (no `fields`: the whole document is the output).
fn project(each: Option<&Paths>, fields: Option<&[Field]>) -> Option<Projection> {
    let fields = fields?;
    let mut b = ProjectionBuilder::new();
    let items = match each {
        Some(each) => each.project(&[DOCUMENT], &mut b),
        None => vec![DOCUMENT],
    };
    project_fields(fields, &items, &mut b);
    let projection = b.finish();
    (!projection.keeps_everything()).then_some(projection)
}

/// Every path of `fields` evaluated at `nodes`; what a path selects is read whole.
fn project_fields(fields: &[Field], nodes: &[NodeId], b: &mut ProjectionBuilder) {
    let whole = |p: &CompiledPath, from: &[NodeId], b: &mut ProjectionBuilder| {
        for end in p.project(from, b) {
            b.whole(end);
        }
    };
    let all = |ps: &Paths, from: &[NodeId], b: &mut ProjectionBuilder| {
        for end in ps.project(from, b) {
            b.whole(end);
        }
    };
    for f in fields {
        match &f.source {
            Source::Path(p) => all(p, nodes, b),
            Source::RootPath(p) => all(p, &[DOCUMENT], b),
            Source::Envelope(_) | Source::Const(_) => {}
            Source::Concat(parts) => {
                for part in parts {
                    if let Part::Path(p, _) = part {
                        whole(p, nodes, b);
                    }
                }
            }
            Source::Object(fields) => project_fields(fields, nodes, b),
            Source::List { each, item } => {
                let items = each.project(nodes, b);
                match item {
                    Some(fields) => project_fields(fields, &items, b),
                    None => items.into_iter().for_each(|i| b.whole(i)),
                }
            }
        }
        if let Some(r) = &f.reference {
            whole(&r.date, &[DOCUMENT], b);
            if let Some(name) = &r.name {
                whole(name, nodes, b);
            }
        }
    }
}

pub(crate) fn to_format(f: FormatSpec) -> Format {
    match f {
        FormatSpec::Xml => Format::Xml,
        FormatSpec::Json => Format::Json,
    }
}

fn err(at: &str, message: impl Into<String>) -> CompileError {
    CompileError {
        at: at.to_owned(),
        column: None,
        message: message.into(),
    }
}

fn compile_path(p: &str, at: &str, errors: &mut Vec<CompileError>) -> Option<CompiledPath> {
    counted();
    match CompiledPath::compile(p) {
        Ok(c) => Some(c),
        Err(e) => {
            errors.push(CompileError {
                at: at.to_owned(),
                column: e.column,
                message: format!("bad JSONPath `{p}`: {}", e.message),
            });
            None
        }
    }
}

/// One JSONPath (errors at `at`) or alternatives (errors at `at.0`, `at.1`, ...).
fn compile_paths(p: &OneOrMany<String>, at: &str, errors: &mut Vec<CompileError>) -> Option<Paths> {
    match p {
        OneOrMany::One(p) => compile_path(p, at, errors).map(|c| Paths(vec![c])),
        OneOrMany::Many(ps) => compile_alternatives(ps, at, errors),
    }
}

fn compile_alternatives(ps: &[String], at: &str, errors: &mut Vec<CompileError>) -> Option<Paths> {
    if ps.is_empty() {
        errors.push(err(
            at,
            "an empty list of paths selects nothing; give at least one JSONPath",
        ));
        return None;
    }
    let compiled: Vec<Option<CompiledPath>> = ps
        .iter()
        .enumerate()
        .map(|(i, p)| compile_path(p, &format!("{at}.{i}"), errors))
        .collect();
    compiled.into_iter().collect::<Option<Vec<_>>>().map(Paths)
}

fn compile_fields(
    specs: &BTreeMap<String, FieldSpec>,
    at: &str,
    env: &CompileEnv<'_>,
    errors: &mut Vec<CompileError>,
) -> Vec<Field> {
    let mut named: Vec<(&String, &FieldSpec)> = specs.iter().collect();
    // figment keeps keys sorted; restore the order in which they are written.
    named.sort_by_key(|(name, _)| {
        (env.position)(&format!("{at}.{name}")).unwrap_or((usize::MAX, 0))
    });
    named
        .into_iter()
        .filter_map(|(name, spec)| compile_field(name, spec, &format!("{at}.{name}"), env, errors))
        .collect()
}

fn compile_field(
    name: &str,
    spec: &FieldSpec,
    at: &str,
    env: &CompileEnv<'_>,
    errors: &mut Vec<CompileError>,
) -> Option<Field> {
    let before = errors.len();
    let sources = [
        spec.path.is_some(),
        spec.any_of.is_some(),
        spec.root_path.is_some(),
        spec.envelope.is_some(),
        spec.constant.is_some(),
        spec.concat.is_some(),
        spec.each.is_some() || spec.fields.is_some(),
    ];
    let n = sources.iter().filter(|s| **s).count();
    if n != 1 {
        errors.push(err(
            at,
            if n == 0 {
                "no source: give one of path, any_of, root_path, envelope, const, concat, fields or each"
            } else {
                "more than one source: give only one of path, any_of, root_path, envelope, const, concat, fields or each"
            },
        ));
        return None;
    }
    let source = if let Some(p) = &spec.path {
        compile_paths(p, &format!("{at}.path"), errors).map(Source::Path)
    } else if let Some(p) = &spec.any_of {
        compile_alternatives(p, &format!("{at}.any_of"), errors).map(Source::Path)
    } else if let Some(p) = &spec.root_path {
        compile_paths(p, &format!("{at}.root_path"), errors).map(Source::RootPath)
    } else if let Some(e) = &spec.envelope {
        if Envelope::FIELDS.contains(&e.as_str()) {
            Some(Source::Envelope(e.clone()))
        } else {
            errors.push(err(
                &format!("{at}.envelope"),
                format!(
                    "unknown envelope field `{e}`; one of: {}",
                    Envelope::FIELDS.join(", ")
                ),
            ));
            None
        }
    } else if let Some(c) = &spec.constant {
        Some(Source::Const(c.clone()))
    } else if let Some(parts) = &spec.concat {
        let compiled: Vec<Option<Part>> = parts
            .iter()
            .enumerate()
            .map(|(i, part)| match part {
                ConcatPartSpec::Text(p) if p.starts_with('$') => {
                    compile_path(p, &format!("{at}.concat.{i}"), errors)
                        .map(|p| Part::Path(p, Vec::new()))
                }
                ConcatPartSpec::Text(p) => Some(Part::Text(p.clone())),
                ConcatPartSpec::Path(spec) => {
                    let at = format!("{at}.concat.{i}");
                    let path = compile_path(&spec.path, &format!("{at}.path"), errors);
                    let transforms: Option<Vec<Transform>> = spec
                        .transform
                        .iter()
                        .enumerate()
                        .map(|(k, t)| {
                            compile_transform(t, &format!("{at}.transform.{k}"), env, errors)
                        })
                        .collect();
                    Some(Part::Path(path?, transforms?))
                }
            })
            .collect();
        compiled
            .into_iter()
            .collect::<Option<Vec<_>>>()
            .map(Source::Concat)
    } else if let Some(each) = &spec.each {
        let each = compile_paths(each, &format!("{at}.each"), errors);
        let item = spec
            .fields
            .as_ref()
            .map(|f| compile_fields(f, &format!("{at}.fields"), env, errors));
        each.map(|each| Source::List { each, item })
    } else {
        spec.fields
            .as_ref()
            .map(|f| Source::Object(compile_fields(f, &format!("{at}.fields"), env, errors)))
    };
    let has_item_fields = spec.fields.is_some();
    if has_item_fields && (!spec.transform.is_empty() || spec.check.is_some()) {
        errors.push(err(
            at,
            "`transform` and `check` apply to values, not to objects with `fields`",
        ));
    }
    let transforms: Vec<Transform> = spec
        .transform
        .iter()
        .enumerate()
        .filter_map(|(i, t)| compile_transform(t, &format!("{at}.transform.{i}"), env, errors))
        .collect();
    let mut personal = spec.personal;
    let checks: Vec<Check> = spec
        .check
        .clone()
        .map(|c| c.into_vec())
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .filter_map(|(i, c)| {
            if matches!(c, CheckSpec::CitizenId) {
                personal = true;
            }
            compile_check(c, &format!("{at}.check.{i}"), errors)
        })
        .collect();
    let warns: Vec<Check> = spec
        .warn
        .clone()
        .map(|c| c.into_vec())
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .filter_map(|(i, c)| compile_check(c, &format!("{at}.warn.{i}"), errors))
        .collect();
    if (spec.warn.is_some() || spec.reference.is_some()) && has_item_fields {
        errors.push(err(
            at,
            "`warn` and `reference` apply to values, not to objects with `fields`",
        ));
    }
    let reference = spec
        .reference
        .as_ref()
        .and_then(|r| compile_reference(r, &format!("{at}.reference"), env, errors));
    if errors.len() != before {
        return None;
    }
    Some(Field {
        name: name.to_owned(),
        source: source?,
        required: spec.required,
        default: spec.default.clone(),
        transforms,
        checks,
        warns,
        reference,
        personal,
    })
}

fn compile_transform(
    t: &TransformSpec,
    at: &str,
    env: &CompileEnv<'_>,
    errors: &mut Vec<CompileError>,
) -> Option<Transform> {
    counted();
    Some(match t {
        TransformSpec::Trim => Transform::Trim,
        TransformSpec::Upper => Transform::Upper,
        TransformSpec::Lower => Transform::Lower,
        TransformSpec::Nfc => Transform::Nfc,
        TransformSpec::Integer => Transform::Integer,
        TransformSpec::Decimal => Transform::Decimal,
        TransformSpec::VnNumber => Transform::VnNumber,
        TransformSpec::Bool => Transform::Bool,
        TransformSpec::CompactTaxCode => Transform::CompactTaxCode,
        TransformSpec::Multiply(f) => {
            let text = match f {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                _ => String::new(),
            };
            match values::parse_factor(&text) {
                Ok(d) => Transform::Multiply(d),
                Err(e) => {
                    errors.push(err(at, format!("bad factor for multiply: {e}")));
                    return None;
                }
            }
        }
        TransformSpec::Date(p) | TransformSpec::Datetime(p) => {
            let compiled = match p {
                None => Ok(DatePatterns::family()),
                Some(patterns) => DatePatterns::compile(patterns),
            };
            match compiled {
                Ok(d) if matches!(t, TransformSpec::Date(_)) => Transform::Date(d),
                Ok(d) => Transform::Datetime(d),
                Err(e) => {
                    errors.push(err(at, format!("bad date pattern: {e}")));
                    return None;
                }
            }
        }
        TransformSpec::Lookup(l) => {
            let (name, default) = match l {
                LookupSpec::Table(t) => (t.clone(), None),
                LookupSpec::WithDefault(w) => (w.table.clone(), Some(w.default.clone())),
            };
            match env.tables.get(&name) {
                Some(table) => Transform::Lookup {
                    name,
                    table: table.clone(),
                    default,
                },
                None => {
                    let known: Vec<&str> = env.tables.keys().map(String::as_str).collect();
                    errors.push(err(
                        at,
                        format!(
                            "no table `{name}` in this adapter; tables: {}",
                            if known.is_empty() {
                                "none".to_owned()
                            } else {
                                known.join(", ")
                            }
                        ),
                    ));
                    return None;
                }
            }
        }
        TransformSpec::Split(sep) => {
            if sep.is_empty() {
                errors.push(err(at, "split needs a non-empty separator"));
                return None;
            }
            Transform::Split(sep.clone())
        }
    })
}

fn compile_reference(
    r: &ReferenceSpec,
    at: &str,
    env: &CompileEnv<'_>,
    errors: &mut Vec<CompileError>,
) -> Option<RefLookup> {
    let before = errors.len();
    if env.domain.reference.get(&r.table).is_none() {
        errors.push(err(
            &format!("{at}.table"),
            format!(
                "no reference table `{}` in reference_dir; tables: {}",
                r.table,
                env.domain.reference.names()
            ),
        ));
    }
    let date = compile_path(&r.date_path, &format!("{at}.date_path"), errors);
    let name = r
        .name_path
        .as_deref()
        .and_then(|p| compile_path(p, &format!("{at}.name_path"), errors));
    counted();
    let compiled = match r.date_format.clone() {
        None => Ok(DatePatterns::family()),
        Some(p) => DatePatterns::compile(&p.into_vec()),
    };
    let date_patterns = match compiled {
        Ok(d) => Some(d),
        Err(e) => {
            errors.push(err(
                &format!("{at}.date_format"),
                format!("bad date pattern: {e}"),
            ));
            None
        }
    };
    if errors.len() != before {
        return None;
    }
    Some(RefLookup {
        reference: env.domain.reference.clone(),
        table: r.table.clone(),
        date: date?,
        date_patterns: date_patterns?,
        name,
        keep_former_as: r.keep_former_as.clone(),
    })
}

fn compile_check(c: CheckSpec, at: &str, errors: &mut Vec<CompileError>) -> Option<Check> {
    counted();
    Some(match c {
        CheckSpec::TaxCode => Check::TaxCode,
        CheckSpec::CitizenId => Check::CitizenId,
        CheckSpec::BudgetUnitCode => Check::BudgetUnitCode,
        CheckSpec::VsicCode => Check::VsicCode,
        CheckSpec::Regex(r) => match super::regexes::compile(&r) {
            Ok(re) => Check::Regex(re),
            Err(e) => {
                let (column, message) = regex_error(&e.to_string());
                errors.push(CompileError {
                    at: at.to_owned(),
                    column,
                    message: format!("bad regex `{r}`: {message}"),
                });
                return None;
            }
        },
        CheckSpec::Enum(v) => Check::Enum(v),
        CheckSpec::Length(LengthSpec::Exact(n)) => Check::Length(Some(n), Some(n)),
        CheckSpec::Length(LengthSpec::Range(r)) => Check::Length(r.min, r.max),
    })
}

/// The column and the message of a regex syntax error, whose text shows the pattern on
/// one line and a caret under the bad character on the next.
fn regex_error(text: &str) -> (Option<usize>, String) {
    let lines: Vec<&str> = text.lines().collect();
    let caret = lines.iter().position(|l| l.trim_start().starts_with('^'));
    let column = caret.and_then(|i| {
        let pattern_line = lines.get(i.checked_sub(1)?)?;
        let indent = pattern_line.len() - pattern_line.trim_start().len();
        let caret_at = lines.get(i)?.find('^')?;
        Some(caret_at.checked_sub(indent)? + 1)
    });
    let message = lines
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix("error: "))
        .map_or_else(
            || lines.iter().map(|l| l.trim()).collect::<Vec<_>>().join(" "),
            str::to_owned,
        );
    (column, message)
}

/// The nodes of `each`: a single object is a list of one; arrays are flattened; empty
/// values (an empty element) are skipped.
fn each_nodes<'a>(each: &CompiledPath, node: &'a Value) -> Vec<&'a Value> {
    let mut found = Vec::new();
    each.select(node, &mut found);
    let mut out = Vec::with_capacity(found.len());
    for v in found {
        match v {
            Value::Array(items) => out.extend(items.iter().filter(|v| !is_empty(v))),
            v if !is_empty(v) => out.push(v),
            _ => {}
        }
    }
    out
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        _ => false,
    }
}

/// Where in the output a field is, for error messages; built only when needed.
enum Trail<'p> {
    Root,
    Item(usize),
    Field(&'p Trail<'p>, &'p str),
    Index(&'p Trail<'p>, usize),
}

impl Trail<'_> {
    fn render(&self, out: &mut String) {
        match self {
            Trail::Root => {}
            Trail::Item(i) => {
                let _ = write!(out, "[{i}]");
            }
            Trail::Field(parent, name) => {
                parent.render(out);
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(name);
            }
            Trail::Index(parent, i) => {
                parent.render(out);
                let _ = write!(out, "[{i}]");
            }
        }
    }

    fn to_path(&self) -> String {
        let mut s = String::new();
        self.render(&mut s);
        s
    }
}

struct Ctx<'a> {
    root: &'a Value,
    envelope: &'a Envelope,
    program: &'a Program,
    /// Findings of this output's fields, in field order.
    warnings: RefCell<Vec<Warning>>,
}

impl Ctx<'_> {
    fn object(
        &self,
        fields: &[Field],
        node: &Value,
        trail: &Trail<'_>,
    ) -> Result<Map<String, Value>, FieldError> {
        let mut out = Map::with_capacity(fields.len());
        for f in fields {
            let t = Trail::Field(trail, &f.name);
            if let Some(v) = self.field(f, node, &t)? {
                match &f.reference {
                    None => {
                        out.insert(f.name.clone(), v);
                    }
                    Some(r) => {
                        let (v, former) = self.resolve(f, r, v, node, &t)?;
                        out.insert(f.name.clone(), v);
                        if let (Some(name), Some(code)) = (&r.keep_former_as, former) {
                            out.insert(name.clone(), Value::String(code));
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    fn warn(&self, code: &str, trail: &Trail<'_>, message: String) {
        self.warnings
            .borrow_mut()
            .push(Warning::new(code, trail.to_path(), message));
    }

    /// Look a code up on the document's date: the value to output (the current code)
    /// and, for a former code, that code. Findings become warnings.
    fn resolve(
        &self,
        f: &Field,
        r: &RefLookup,
        v: Value,
        node: &Value,
        trail: &Trail<'_>,
    ) -> Result<(Value, Option<String>), FieldError> {
        let fail = |kind: ErrorKind, code: &str, message: String| FieldError {
            mapping: self.program.name.clone(),
            field: trail.to_path(),
            kind,
            code: code.to_owned(),
            message,
        };
        let code = match values::text(&v) {
            Ok(c) => c.trim().to_owned(),
            Err(e) => return Err(self.value_error(f, trail, e, &v, ErrorKind::Mapping)),
        };
        let Some(table) = r.reference.get(&r.table) else {
            return Err(fail(
                ErrorKind::Mapping,
                "reference.no_table",
                format!("no reference table `{}`", r.table),
            ));
        };
        let date = select_value(&r.date, self.root)
            .ok_or_else(|| {
                fail(
                    ErrorKind::Mapping,
                    "reference.no_date",
                    format!(
                        "no date at {} to look up code {code} in table `{}`",
                        r.date.source, r.table
                    ),
                )
            })
            .and_then(|d| {
                values::date(&d, &r.date_patterns)
                    .ok()
                    .and_then(|iso| {
                        values::text(&iso)
                            .ok()
                            .and_then(|t| NaiveDate::parse_from_str(&t, "%Y-%m-%d").ok())
                    })
                    .ok_or_else(|| {
                        fail(
                            ErrorKind::Mapping,
                            "reference.bad_date",
                            format!(
                                "the date at {} (to look up code {code} in table `{}`) is not \
                                 a valid date in the expected format",
                                r.date.source, r.table
                            ),
                        )
                    })
            })?;
        let doc_name = r
            .name
            .as_ref()
            .and_then(|p| select_value(p, node))
            .and_then(|n| values::text(&n).ok().map(|t| t.into_owned()));
        let check_name = |row_names: &[&str], shown: &str| {
            if let Some(n) = &doc_name
                && !row_names.iter().any(|rn| same_name(n, rn))
            {
                self.warn(
                    "admin_name_mismatch",
                    trail,
                    format!(
                        "the document names code {code} `{}`, but table `{}` has {shown} on {date}; \
                         check which of the code or the name is wrong",
                        n.trim(),
                        r.table
                    ),
                );
            }
        };
        match table.resolve(&code, date) {
            Resolution::Current(row) => {
                check_name(&[&row.name], &format!("`{}`", row.name));
                Ok((v, None))
            }
            Resolution::Legacy { former, current } => {
                check_name(
                    &[&former.name, &current.name],
                    &format!("`{}` (now `{}`)", former.name, current.name),
                );
                let until = former
                    .valid_to
                    .map_or_else(String::new, |t| format!(" until {t}"));
                self.warn(
                    LEGACY_ADMIN_CODE,
                    trail,
                    format!(
                        "former code {}{until}; on {date} it is {} (table `{}`)",
                        former.describe(),
                        current.describe(),
                        r.table
                    ),
                );
                Ok((Value::String(current.code.clone()), Some(code)))
            }
            Resolution::NotOnDate(row) => {
                let span = match (row.valid_from, row.valid_to) {
                    (Some(f), _) if f > date => format!("from {f}"),
                    (_, Some(t)) => format!("until {t}"),
                    _ => "on other dates".to_owned(),
                };
                self.warn(
                    "admin_code_unverified",
                    trail,
                    format!(
                        "table `{}` has no unit for code {code} on {date} (it lists {} {span}); \
                         the code is kept unverified",
                        r.table, row.name
                    ),
                );
                Ok((v, None))
            }
            Resolution::Unknown if table.partial => {
                self.warn(
                    "code_not_in_table",
                    trail,
                    format!(
                        "code {code} is not in table `{}`, which lists only part of the codes",
                        r.table
                    ),
                );
                Ok((v, None))
            }
            Resolution::Unknown => Err(fail(
                ErrorKind::Validation,
                "reference.unknown_code",
                format!(
                    "code {code} is in no row of table `{}`{}; check the code, or add the unit \
                     to the reference data",
                    r.table,
                    self.where_from(f)
                ),
            )),
        }
    }

    fn field(
        &self,
        f: &Field,
        node: &Value,
        trail: &Trail<'_>,
    ) -> Result<Option<Value>, FieldError> {
        let raw: Option<Cow<'_, Value>> = match &f.source {
            Source::Path(p) => p.select(node),
            Source::RootPath(p) => p.select(self.root),
            Source::Envelope(name) => self
                .envelope
                .get(name)
                .map(|s| Cow::Owned(Value::String(s.to_owned()))),
            Source::Const(v) => Some(Cow::Borrowed(v)),
            Source::Concat(parts) => {
                let mut s = String::new();
                let mut complete = true;
                for part in parts {
                    match part {
                        Part::Text(t) => s.push_str(t),
                        Part::Path(p, transforms) => match select_value(p, node) {
                            Some(mut v) => match transformed(transforms, &mut v)
                                .and_then(|()| values::text(&v))
                            {
                                Ok(t) => s.push_str(t.trim()),
                                Err(e) => {
                                    return Err(self.value_error(
                                        f,
                                        trail,
                                        e,
                                        &v,
                                        ErrorKind::Mapping,
                                    ));
                                }
                            },
                            None => complete = false,
                        },
                    }
                }
                complete.then_some(Cow::Owned(Value::String(s)))
            }
            Source::Object(fields) => {
                let m = self.object(fields, node, trail)?;
                (!m.is_empty()).then_some(Cow::Owned(Value::Object(m)))
            }
            Source::List { each, item } => {
                let nodes = each.each_nodes(node);
                let mut list = Vec::with_capacity(nodes.len());
                for (i, n) in nodes.into_iter().enumerate() {
                    let t = Trail::Index(trail, i);
                    match item {
                        Some(fields) => {
                            let m = self.object(fields, n, &t)?;
                            if !m.is_empty() {
                                list.push(Value::Object(m));
                            }
                        }
                        None => {
                            if let Some(v) = self.finish(f, Cow::Borrowed(n), &t)? {
                                list.push(v);
                            }
                        }
                    }
                }
                if item.is_none() {
                    return self.present(
                        f,
                        (!list.is_empty()).then_some(Value::Array(list)),
                        trail,
                    );
                }
                (!list.is_empty()).then_some(Cow::Owned(Value::Array(list)))
            }
        };
        match raw {
            Some(v) if !matches!(f.source, Source::List { item: None, .. }) => {
                let v = self.finish(f, v, trail)?;
                self.present(f, v, trail)
            }
            other => self.present(f, other.map(Cow::into_owned), trail),
        }
    }

    /// Absent -> default, or an error when required.
    fn present(
        &self,
        f: &Field,
        v: Option<Value>,
        trail: &Trail<'_>,
    ) -> Result<Option<Value>, FieldError> {
        match v {
            Some(v) => Ok(Some(v)),
            None => match &f.default {
                Some(d) => Ok(Some(d.clone())),
                None if f.required => Err(FieldError {
                    mapping: self.program.name.clone(),
                    field: trail.to_path(),
                    kind: ErrorKind::Mapping,
                    code: "mapping.required".into(),
                    message: format!("required value missing{}", self.where_from(f)),
                }),
                None => Ok(None),
            },
        }
    }

    fn where_from(&self, f: &Field) -> String {
        match &f.source {
            Source::Path(p) | Source::RootPath(p) => format!(" at {}", p.describe()),
            Source::List { each, .. } => format!(" at {}", each.describe()),
            Source::Envelope(e) => format!(" in the envelope ({e})"),
            _ => String::new(),
        }
    }

    /// Transforms, normalisation (trim, NFC), checks. `None` when the result is empty.
    /// The value may be borrowed from the document: the first transform makes a new
    /// one, so a value that is transformed is never copied first.
    fn finish(
        &self,
        f: &Field,
        mut v: Cow<'_, Value>,
        trail: &Trail<'_>,
    ) -> Result<Option<Value>, FieldError> {
        for t in &f.transforms {
            v = match apply_each(t, &v) {
                Ok(out) => Cow::Owned(out),
                Err(e) => return Err(self.value_error(f, trail, e, &v, ErrorKind::Mapping)),
            };
        }
        let Some(v) = normalise(v.into_owned()) else {
            return Ok(None);
        };
        for c in &f.checks {
            if let Err(e) = check_each(c, &v) {
                return Err(self.value_error(f, trail, e, &v, ErrorKind::Validation));
            }
        }
        for c in &f.warns {
            if let Err(e) = check_each(c, &v) {
                let FieldError { code, message, .. } =
                    self.value_error(f, trail, e, &v, ErrorKind::Validation);
                self.warn(&code, trail, message);
            }
        }
        Ok(Some(v))
    }

    fn value_error(
        &self,
        f: &Field,
        trail: &Trail<'_>,
        e: ValueError,
        v: &Value,
        kind: ErrorKind,
    ) -> FieldError {
        let shown = match values::text(v) {
            Ok(t) if f.personal => values::mask(&t),
            Ok(t) => t.chars().take(80).collect(),
            Err(_) => "(not a single value)".to_owned(),
        };
        FieldError {
            mapping: self.program.name.clone(),
            field: trail.to_path(),
            kind,
            code: e.code().to_owned(),
            message: format!("{e}: value \"{shown}\"{}", self.where_from(f)),
        }
    }
}

/// Names compared as people write them: NFC, case, spacing and the unit's level word
/// (`Xã`, `Phường`, `Thị trấn`, `Tỉnh`, `Thành phố`) do not matter.
fn same_name(a: &str, b: &str) -> bool {
    fn key(s: &str) -> String {
        let lower = values::nfc(s).to_lowercase();
        let words: Vec<&str> = lower.split_whitespace().collect();
        let joined = words.join(" ");
        for prefix in ["thị trấn ", "thành phố ", "xã ", "phường ", "tỉnh "] {
            if let Some(rest) = joined.strip_prefix(prefix) {
                return rest.to_owned();
            }
        }
        joined
    }
    key(a) == key(b)
}

/// As [`select_value`], borrowing the node when the path selects one node or none.
fn select_cow<'a>(p: &CompiledPath, node: &'a Value) -> Option<Cow<'a, Value>> {
    if p.is_names() {
        return p.select_one(node, is_empty).map(Cow::Borrowed);
    }
    select_value(p, node).map(Cow::Owned)
}

fn select_value(p: &CompiledPath, node: &Value) -> Option<Value> {
    if p.is_names() {
        return p.select_one(node, is_empty).cloned();
    }
    let mut found = Vec::new();
    p.select(node, &mut found);
    found.retain(|v| !is_empty(v));
    match found.len() {
        0 => None,
        1 => Some(found[0].clone()),
        _ => Some(Value::Array(found.into_iter().cloned().collect())),
    }
}

/// Trim and NFC every string; drop empty strings and empty lists.
fn normalise(v: Value) -> Option<Value> {
    match v {
        Value::String(s) => {
            let t = s.trim();
            if t.is_empty() {
                None
            } else if t.len() == s.len() {
                match values::nfc(&s) {
                    std::borrow::Cow::Borrowed(_) => Some(Value::String(s)),
                    std::borrow::Cow::Owned(n) => Some(Value::String(n)),
                }
            } else {
                Some(Value::String(values::nfc(t).into_owned()))
            }
        }
        Value::Array(items) => {
            let items: Vec<Value> = items.into_iter().filter_map(normalise).collect();
            (!items.is_empty()).then_some(Value::Array(items))
        }
        Value::Null => None,
        other => Some(other),
    }
}

/// `v` through `transforms`, in order.
fn transformed(transforms: &[Transform], v: &mut Value) -> Result<(), ValueError> {
    for t in transforms {
        *v = apply_each(t, v)?;
    }
    Ok(())
}

fn apply_each(t: &Transform, v: &Value) -> Result<Value, ValueError> {
    match v {
        Value::Array(items) if !matches!(t, Transform::Split(_)) => items
            .iter()
            .map(|i| apply(t, i))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        _ => apply(t, v),
    }
}

fn apply(t: &Transform, v: &Value) -> Result<Value, ValueError> {
    let str_op = |f: &dyn Fn(&str) -> String| -> Result<Value, ValueError> {
        Ok(Value::String(f(&values::text(v)?)))
    };
    match t {
        Transform::Trim => str_op(&|s| s.trim().to_owned()),
        Transform::Upper => str_op(&|s| s.to_uppercase()),
        Transform::Lower => str_op(&|s| s.to_lowercase()),
        Transform::Nfc => str_op(&|s| values::nfc(s).into_owned()),
        Transform::Integer => values::integer(v),
        Transform::Decimal => values::decimal(v),
        Transform::VnNumber => values::vn_number(v),
        Transform::Bool => values::boolean(v),
        Transform::CompactTaxCode => values::compact_tax_code(v),
        Transform::Multiply(f) => values::multiply(v, f),
        Transform::Date(p) => values::date(v, p),
        Transform::Datetime(p) => values::datetime(v, p),
        Transform::Split(sep) => values::split(v, sep),
        Transform::Lookup {
            name,
            table,
            default,
        } => {
            let key = values::text(v)?;
            let key = values::nfc(key.trim());
            match table.get(key.as_ref()) {
                Some(found) => Ok(found.clone()),
                None => default.clone().ok_or_else(|| ValueError::NotInTable {
                    table: name.clone(),
                }),
            }
        }
    }
}

fn check_each(c: &Check, v: &Value) -> Result<(), ValueError> {
    match v {
        Value::Array(items) => items.iter().try_for_each(|i| check(c, i)),
        _ => check(c, v),
    }
}

fn check(c: &Check, v: &Value) -> Result<(), ValueError> {
    if let Check::Enum(allowed) = c {
        return if allowed.iter().any(|a| {
            a == v || matches!((values::text(a), values::text(v)), (Ok(x), Ok(y)) if x == y)
        }) {
            Ok(())
        } else {
            Err(ValueError::NotInEnum {
                allowed: allowed
                    .iter()
                    .filter_map(|a| values::text(a).ok().map(|t| t.into_owned()))
                    .collect::<Vec<_>>()
                    .join(", "),
            })
        };
    }
    let text = values::text(v)?;
    match c {
        Check::TaxCode => values::tax_code(&text),
        Check::CitizenId => values::citizen_id(&text),
        Check::BudgetUnitCode => values::budget_unit_code(&text),
        Check::VsicCode => values::vsic_code(&text),
        Check::Regex(re) => {
            if re.is_match(&text) {
                Ok(())
            } else {
                Err(ValueError::NoMatch {
                    pattern: re.as_str().to_owned(),
                })
            }
        }
        Check::Length(min, max) => values::length(&text, *min, *max),
        Check::Enum(_) => Ok(()),
    }
}
