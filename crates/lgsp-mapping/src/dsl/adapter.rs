//! An adapter: a folder of YAML (message types, code tables, mappings), loaded and
//! compiled once, then used per message: decode, pick the mapping, run it, encode.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use lgsp_core::config::{LoadedConfig, Problem, YamlFile};
use lgsp_core::envelope::Envelope;
use lgsp_core::step::StepRegistry;
use serde_json::Value;

use super::error::MapError;
use super::program::{CompileEnv, OutputFormat, Program, Table, to_format};
use super::spec::{ADAPTER_FILE_KEYS, DispatchSpec, MappingSpec, TableSpec};
use crate::decode::projection::Projection;
use crate::decode::{self, DecodeError, Format, Limits};
use crate::domain::{Domain, SchemaError};
use crate::xml_out;

/// One output of a mapping run.
#[derive(Debug, Clone, PartialEq)]
pub struct Mapped {
    /// The output's message id: the input's, or the child id of a batch item.
    pub message_id: String,
    /// The parent's message id for batch items.
    pub correlation_id: Option<String>,
    /// Canonical event (`enterprise.registered`) when the mapping declares one.
    pub event: Option<String>,
    /// Index in the batch, for batch mappings.
    pub index: Option<usize>,
    /// The output as a tree (what JSON output prints; what XML output is written from).
    pub value: Value,
    /// The encoded body.
    pub body: Vec<u8>,
    pub content_type: &'static str,
}

/// How a payload is decoded before a mapping runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoding {
    /// XML with the mapping's projection when it has one (only what its paths can read
    /// is built), the whole tree otherwise. What the bus does.
    Auto,
    /// Always the whole tree (to compare, and in benchmarks).
    Tree,
}

/// Which decoding a mapping run used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoded {
    /// XML decoded with the mapping's projection.
    Projected,
    /// The whole tree (JSON, or a mapping that reads everything).
    Tree,
}

#[derive(Debug, Clone)]
struct Candidate {
    format: Option<Format>,
    root: Option<String>,
    mapping: String,
}

impl Candidate {
    fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(f) = self.format {
            parts.push(format_name(f).to_owned());
        }
        if let Some(r) = &self.root {
            parts.push(format!("root `{r}`"));
        }
        if parts.is_empty() {
            parts.push("any payload".into());
        }
        format!("{} -> {}", parts.join(" with "), self.mapping)
    }
}

fn format_name(f: Format) -> &'static str {
    match f {
        Format::Xml => "xml",
        Format::Json => "json",
    }
}

/// A loaded, compiled adapter.
#[derive(Debug, Clone)]
pub struct Adapter {
    pub name: String,
    pub dir: PathBuf,
    dispatch: BTreeMap<String, Vec<Candidate>>,
    programs: BTreeMap<String, Arc<Program>>,
}

impl Adapter {
    /// Load every YAML file of the adapter folder `dir` (`adapter.yaml`, `mappings/*.yaml`)
    /// with no schemas, reference tables or steps (a mapping that names one fails to load).
    pub fn load(name: &str, dir: &Path) -> Result<Adapter, Vec<Problem>> {
        Self::load_with(name, dir, &Domain::default())
    }

    /// As [`Adapter::load`], with the schemas, reference tables and steps mappings may name.
    pub fn load_with(name: &str, dir: &Path, domain: &Domain) -> Result<Adapter, Vec<Problem>> {
        let mut files = Vec::new();
        let main = dir.join("adapter.yaml");
        if !main.is_file() {
            return Err(vec![Problem {
                file: Some(main),
                key: String::new(),
                pos: None,
                message: format!("adapter `{name}` has no adapter.yaml in {}", dir.display()),
            }]);
        }
        files.push(main);
        let mapping_dir = dir.join("mappings");
        if let Ok(rd) = std::fs::read_dir(&mapping_dir) {
            let mut extra: Vec<PathBuf> = rd
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
                .collect();
            extra.sort();
            files.extend(extra);
        }
        let mut problems = Vec::new();
        let mut opened: Vec<YamlFile> = Vec::new();
        for f in &files {
            match YamlFile::open(f, None) {
                Ok(y) => opened.push(y),
                Err(p) => problems.push(p),
            }
        }
        let mut dispatch_specs: Vec<(usize, String, Vec<DispatchSpec>)> = Vec::new();
        let mut tables: BTreeMap<String, Table> = BTreeMap::new();
        let mut mapping_specs: Vec<(usize, String, MappingSpec)> = Vec::new();
        let mut seen_mappings: HashMap<String, usize> = HashMap::new();
        for (fi, file) in opened.iter_mut().enumerate() {
            if !file.check_top_level(ADAPTER_FILE_KEYS) {
                continue;
            }
            for (ty, d) in file.entries::<Vec<DispatchSpec>>("messages") {
                dispatch_specs.push((fi, ty, d));
            }
            for (tname, t) in file.entries::<TableSpec>("tables") {
                if tables.contains_key(&tname) {
                    file.problem(
                        &format!("tables.{tname}"),
                        format!("table `{tname}` is defined twice in adapter `{name}`"),
                    );
                }
                let map: HashMap<String, Value> = t.into_iter().collect();
                tables.insert(tname, Arc::new(map));
            }
            for (mname, m) in file.entries::<MappingSpec>("mappings") {
                if seen_mappings.insert(mname.clone(), fi).is_some() {
                    file.problem(
                        &format!("mappings.{mname}"),
                        format!("mapping `{mname}` is defined twice in adapter `{name}`"),
                    );
                }
                mapping_specs.push((fi, mname, m));
            }
        }
        let mut programs = BTreeMap::new();
        for (fi, mname, spec) in &mapping_specs {
            let file = &opened[*fi];
            let prefix = format!("mappings.{mname}");
            let position = |p: &str| {
                file.exact_pos(&format!("{prefix}.{p}"))
                    .map(|pos| (pos.line, pos.column))
            };
            let env = CompileEnv {
                tables: &tables,
                domain,
                position: &position,
            };
            match Program::compile(&format!("{name}.{mname}"), spec, &env) {
                Ok(p) => {
                    programs.insert(mname.clone(), Arc::new(p));
                }
                Err(errs) => {
                    let file = &mut opened[*fi];
                    for e in errs {
                        let msg = match e.column {
                            Some(c) => format!("{} (column {c} of the value)", e.message),
                            None => e.message,
                        };
                        file.problem(&format!("{prefix}.{}", e.at), msg);
                    }
                }
            }
        }
        let mut dispatch = BTreeMap::new();
        for (fi, ty, cands) in dispatch_specs {
            let mut out = Vec::new();
            for (i, c) in cands.into_iter().enumerate() {
                if !seen_mappings.contains_key(&c.mapping) {
                    let known: Vec<&str> = seen_mappings.keys().map(String::as_str).collect();
                    opened[fi].problem(
                        &format!("messages.{ty}.{i}.mapping"),
                        format!(
                            "no mapping `{}` in adapter `{name}`; mappings: {}",
                            c.mapping,
                            sorted(known)
                        ),
                    );
                    continue;
                }
                out.push(Candidate {
                    format: c.when.content_type.map(to_format),
                    root: c.when.root,
                    mapping: c.mapping,
                });
            }
            dispatch.insert(ty, out);
        }
        for f in opened {
            problems.extend(f.problems);
        }
        if problems.is_empty() {
            Ok(Adapter {
                name: name.to_owned(),
                dir: dir.to_owned(),
                dispatch,
                programs,
            })
        } else {
            Err(problems)
        }
    }

    /// Message types this adapter maps.
    pub fn message_types(&self) -> impl Iterator<Item = &str> {
        self.dispatch.keys().map(String::as_str)
    }

    /// The mappings message type `message_type` may be mapped with, in dispatch order.
    pub fn mappings_for(&self, message_type: &str) -> Vec<(&str, &Program)> {
        self.dispatch
            .get(message_type)
            .into_iter()
            .flatten()
            .filter_map(|c| {
                self.programs
                    .get(&c.mapping)
                    .map(|p| (c.mapping.as_str(), p.as_ref()))
            })
            .collect()
    }

    /// Mapping names.
    pub fn mapping_names(&self) -> impl Iterator<Item = &str> {
        self.programs.keys().map(String::as_str)
    }

    pub fn program(&self, mapping: &str) -> Result<&Program, MapError> {
        self.programs
            .get(mapping)
            .map(|p| p.as_ref())
            .ok_or_else(|| MapError::UnknownMapping {
                adapter: self.name.clone(),
                mapping: mapping.to_owned(),
                known: sorted(self.programs.keys().map(String::as_str).collect()),
            })
    }

    /// Map a payload as the bus does: decode, pick the mapping by message type, run it.
    /// An XML payload is decoded with the chosen mapping's projection when it has one.
    pub fn map_message(
        &self,
        envelope: &Envelope,
        body: &[u8],
        format: Option<Format>,
        limits: &Limits,
    ) -> Result<Vec<Mapped>, MapError> {
        self.map_message_using(envelope, body, format, limits, Decoding::Auto)
            .map(|(outputs, _)| outputs)
    }

    /// [`Adapter::map_message`] with the decoding chosen, and which one was used.
    pub fn map_message_using(
        &self,
        envelope: &Envelope,
        body: &[u8],
        format: Option<Format>,
        limits: &Limits,
        decoding: Decoding,
    ) -> Result<(Vec<Mapped>, Decoded), MapError> {
        let ty = envelope.message_type.as_deref().ok_or(MapError::NoType)?;
        let cands = self.dispatch.get(ty).ok_or_else(|| MapError::UnknownType {
            adapter: self.name.clone(),
            message_type: ty.to_owned(),
            known: sorted(self.dispatch.keys().map(String::as_str).collect()),
        })?;
        declared_format_fits(format, envelope, body)?;
        let format = payload_format(format, envelope, body);
        if format == Format::Xml
            && decoding == Decoding::Auto
            && let Some(root) = decode::xml_root_name(body)
        {
            // The mapping the whole tree would pick, known from the root element alone.
            let chosen = cands.iter().find(|c| {
                c.format.is_none_or(|f| f == format)
                    && c.root
                        .as_deref()
                        .is_none_or(|r| r == root || decode::same_field(r, &root))
            });
            if let Some(c) = chosen {
                let program = self.program(&c.mapping)?;
                if let Some(projection) = program.projection() {
                    return self.run_projected(program, projection, body, limits, envelope);
                }
            }
        }
        let tree = decode::decode(format, body, limits)?;
        // The mappings of the payload's format first; then the same document in the
        // other format (a JSON form of an XML message, or the reverse), which only a
        // candidate with a root can claim.
        for same in [true, false] {
            let fitting: Vec<&Candidate> = cands
                .iter()
                .filter(|c| match c.format {
                    None => same,
                    Some(f) => (f == format) == same,
                })
                .filter(|c| same || c.root.is_some())
                .collect();
            let chosen = fitting
                .iter()
                .find(|c| c.root.as_deref().is_none_or(|r| has_root(&tree, r)));
            if let Some(c) = chosen {
                let program = self.program(&c.mapping)?;
                let read_as = c.format.unwrap_or(format);
                let outputs = self.run_owned(program, tree, read_as, envelope)?;
                return Ok((outputs, Decoded::Tree));
            }
            // The XML form of a JSON document: XML needs one root element, so the JSON
            // document's keys are the children of a root of any name.
            let inner = match (same, format, &tree) {
                (false, Format::Xml, Value::Object(m)) => m.values().next(),
                _ => None,
            };
            let inner_match = inner.filter(|v| v.is_object()).and_then(|inner| {
                fitting.iter().find(|c| {
                    c.format == Some(Format::Json)
                        && c.root.as_deref().is_some_and(|r| has_root(inner, r))
                })
            });
            if let Some(c) = inner_match {
                let program = self.program(&c.mapping)?;
                let inner = match tree {
                    Value::Object(m) => m.into_iter().next().map_or(Value::Null, |(_, v)| v),
                    other => other,
                };
                let outputs = self.run_owned(program, inner, Format::Json, envelope)?;
                return Ok((outputs, Decoded::Tree));
            }
            if let Some(items) = list_items(&fitting, &tree, 1) {
                let outputs = self.run_list(items, format, envelope)?;
                return Ok((outputs, Decoded::Tree));
            }
        }
        Err(MapError::NoMatch {
            adapter: self.name.clone(),
            message_type: ty.to_owned(),
            found: describe_payload(format, &tree),
            expected: cands
                .iter()
                .map(Candidate::describe)
                .collect::<Vec<_>>()
                .join("; "),
        })
    }

    /// Map each item of a list payload ([`list_items`]) with the mapping of its own
    /// form. Every output is a batch child of the input (docs/contracts.md, "Batches
    /// and partial delivery"), numbered in order over all items: the child id of the
    /// input's id and the input's id as its correlation id, so a list of one batch
    /// document has the batch's own ids. One bad item fails the whole input (one input,
    /// one outcome), naming the item.
    fn run_list(
        &self,
        items: Vec<(&Candidate, Value)>,
        format: Format,
        envelope: &Envelope,
    ) -> Result<Vec<Mapped>, MapError> {
        let mut outputs = Vec::with_capacity(items.len());
        for (i, (candidate, item)) in items.into_iter().enumerate() {
            let program = self.program(&candidate.mapping)?;
            let read_as = candidate.format.unwrap_or(format);
            let mapped = self
                .run_owned(program, item, read_as, envelope)
                .map_err(|e| match e {
                    MapError::Field(mut f) => {
                        f.field = format!("list item {}: {}", i + 1, f.field);
                        MapError::Field(f)
                    }
                    other => other,
                })?;
            for mut m in mapped {
                let k = outputs.len();
                if !envelope.message_id.is_empty() {
                    m.message_id = lgsp_core::envelope::child_message_id(&envelope.message_id, k);
                    m.correlation_id = Some(envelope.message_id.clone());
                }
                m.index = Some(k);
                outputs.push(m);
            }
        }
        Ok(outputs)
    }

    /// Map a payload with the named mapping (no dispatch).
    pub fn map_with(
        &self,
        mapping: &str,
        envelope: &Envelope,
        body: &[u8],
        format: Option<Format>,
        limits: &Limits,
    ) -> Result<Vec<Mapped>, MapError> {
        self.map_with_using(mapping, envelope, body, format, limits, Decoding::Auto)
            .map(|(outputs, _)| outputs)
    }

    /// [`Adapter::map_with`] with the decoding chosen, and which one was used.
    pub fn map_with_using(
        &self,
        mapping: &str,
        envelope: &Envelope,
        body: &[u8],
        format: Option<Format>,
        limits: &Limits,
        decoding: Decoding,
    ) -> Result<(Vec<Mapped>, Decoded), MapError> {
        let program = self.program(mapping)?;
        declared_format_fits(format, envelope, body)?;
        let format = payload_format(format, envelope, body);
        if let (Format::Xml, Decoding::Auto, Some(projection)) =
            (format, decoding, program.projection())
        {
            return self.run_projected(program, projection, body, limits, envelope);
        }
        let tree = decode::decode(format, body, limits)?;
        let outputs = self.run_owned(program, tree, format, envelope)?;
        Ok((outputs, Decoded::Tree))
    }

    /// Decode an XML payload with `projection` (only what `program` can read) and run it.
    fn run_projected(
        &self,
        program: &Program,
        projection: &Projection,
        body: &[u8],
        limits: &Limits,
        envelope: &Envelope,
    ) -> Result<(Vec<Mapped>, Decoded), MapError> {
        let tree = decode::decode_xml_projected(body, limits, projection)?;
        let outputs = self.run_owned(program, tree, Format::Xml, envelope)?;
        Ok((outputs, Decoded::Projected))
    }

    /// Run `program` on an already decoded tree.
    pub fn run(
        &self,
        program: &Program,
        tree: &Value,
        format: Format,
        envelope: &Envelope,
    ) -> Result<Vec<Mapped>, MapError> {
        check_format(program, format)?;
        let values = program.run(tree, envelope)?;
        self.encode(program, values, envelope)
    }

    /// [`Adapter::run`] on a tree it owns, which it drops as soon as the outputs are made,
    /// before encoding them: the tree and the encoded outputs never use memory together.
    fn run_owned(
        &self,
        program: &Program,
        tree: Value,
        format: Format,
        envelope: &Envelope,
    ) -> Result<Vec<Mapped>, MapError> {
        check_format(program, format)?;
        let values = program.run(&tree, envelope)?;
        drop(tree);
        self.encode(program, values, envelope)
    }

    fn encode(
        &self,
        program: &Program,
        values: Vec<Value>,
        envelope: &Envelope,
    ) -> Result<Vec<Mapped>, MapError> {
        let batch = program.is_batch();
        values
            .into_iter()
            .enumerate()
            .map(|(i, value)| {
                let (body, content_type) = match &program.output {
                    OutputFormat::Json => (crate::json_out::to_vec(&value), "application/json"),
                    OutputFormat::Xml(opts) => {
                        let xml =
                            xml_out::to_xml(&value, opts).map_err(|source| MapError::Encode {
                                mapping: program.name.clone(),
                                source,
                            })?;
                        (xml.into_bytes(), "application/xml")
                    }
                };
                let (message_id, correlation_id) = if batch && !envelope.message_id.is_empty() {
                    (
                        lgsp_core::envelope::child_message_id(&envelope.message_id, i),
                        Some(envelope.message_id.clone()),
                    )
                } else {
                    (envelope.message_id.clone(), envelope.correlation_id.clone())
                };
                Ok(Mapped {
                    message_id,
                    correlation_id,
                    event: program.event.clone(),
                    index: batch.then_some(i),
                    value,
                    body,
                    content_type,
                })
            })
            .collect()
    }
}

/// A mapping that names its input format refuses the other one.
fn check_format(program: &Program, format: Format) -> Result<(), MapError> {
    match program.from {
        Some(expected) if expected != format => Err(MapError::WrongFormat {
            mapping: program.name.clone(),
            expected: format_name(expected),
            found: format_name(format),
        }),
        _ => Ok(()),
    }
}

fn sorted(mut v: Vec<&str>) -> String {
    v.sort_unstable();
    if v.is_empty() {
        "none".to_owned()
    } else {
        v.join(", ")
    }
}

/// The format: given, else from the envelope's content type, else sniffed (XML if unsure).
pub fn payload_format(given: Option<Format>, envelope: &Envelope, body: &[u8]) -> Format {
    given
        .or_else(|| {
            envelope
                .content_type
                .as_deref()
                .and_then(Format::from_content_type)
        })
        .or_else(|| decode::sniff(body))
        .unwrap_or(Format::Xml)
}

/// A content type that names the other format than the body plainly is is refused as
/// such ([`decode::content_type_mismatch`]), rather than with the syntax error decoding
/// the body in the declared format would give. Not checked when the caller gave the
/// format.
fn declared_format_fits(
    given: Option<Format>,
    envelope: &Envelope,
    body: &[u8],
) -> Result<(), DecodeError> {
    match (given, envelope.content_type.as_deref()) {
        (None, Some(declared)) => decode::content_type_mismatch(declared, body).map_or(Ok(()), Err),
        _ => Ok(()),
    }
}

/// The items of a list form of the message, each given back as the single document it
/// holds with the candidate that maps it: a JSON array of documents; an object whose one
/// non-leaf member is such an array (`{"danhSach": [...]}`), or the root key holding an
/// array (`{"enterprise": [...]}`); or a root of any name
/// (`<DanhSachHoSo>`, `{"DanhSach": {...}}`) whose child elements of one name are the
/// documents (one child is a list of one), beside which only attributes and leaf values
/// (a count, a date: the list's own data, not carried) may stand. An item may itself be
/// a list form (a list of lists, one level deep). `None` when the payload is no such
/// list, or an empty one.
fn list_items<'c>(
    cands: &[&'c Candidate],
    tree: &Value,
    depth: u8,
) -> Option<Vec<(&'c Candidate, Value)>> {
    let docs = |items: Vec<Value>| -> Option<Vec<(&'c Candidate, Value)>> {
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            let matching = cands
                .iter()
                .copied()
                .find(|c| c.root.as_deref().is_some_and(|r| has_root(&item, r)));
            match matching {
                Some(c) => out.push((c, item)),
                None if depth > 0 => out.extend(list_items(cands, &item, depth - 1)?),
                None => return None,
            }
        }
        (!out.is_empty()).then_some(out)
    };
    let wrap = |name: &str, item: &Value| {
        Value::Object([(name.to_owned(), item.clone())].into_iter().collect())
    };
    match tree {
        Value::Array(items) => docs(items.clone()),
        Value::Object(top) => match nested(top)? {
            // `{"danhSach": [documents], "soLuong": 2}`, or the root key holding many
            // (`{"enterprise": [{...}, {...}]}`).
            (name, Value::Array(items)) => {
                docs(items.clone()).or_else(|| docs(items.iter().map(|i| wrap(&name, i)).collect()))
            }
            // `<DanhSachHoSo SoLuong="2"><HoSo>...</HoSo>...</DanhSachHoSo>`.
            (_, Value::Object(list)) if top.len() == 1 => {
                let (name, value) = nested(list)?;
                docs(match value {
                    Value::Array(items) => items.iter().map(|i| wrap(&name, i)).collect(),
                    single => vec![wrap(&name, single)],
                })
            }
            _ => None,
        },
        _ => None,
    }
}

/// The one member of `m` that is an object or an array (attributes, `#text` and leaf
/// values beside it are the list's own data), or `None` when there are none or several.
fn nested(m: &serde_json::Map<String, Value>) -> Option<(String, &Value)> {
    let mut it = m
        .iter()
        .filter(|(k, v)| !k.starts_with(['@', '#']) && (v.is_object() || v.is_array()));
    let one = it.next();
    if it.next().is_some() {
        None
    } else {
        one.map(|(k, v)| (k.clone(), v))
    }
}

/// Does the tree's top level hold `root` (in the spelling of the mapping or another
/// one of the same field, as paths read it)?
fn has_root(tree: &Value, root: &str) -> bool {
    tree.as_object()
        .is_some_and(|m| super::path::member(m, root).is_some())
}

fn describe_payload(format: Format, tree: &Value) -> String {
    match (format, tree.as_object()) {
        (Format::Xml, Some(m)) => format!(
            "xml with root `{}`",
            m.keys().next().map_or("", String::as_str)
        ),
        (Format::Json, Some(m)) => {
            let keys: Vec<&str> = m.keys().take(5).map(String::as_str).collect();
            format!("json with keys {}", keys.join(", "))
        }
        (f, _) => format_name(f).to_owned(),
    }
}

/// Every adapter of a configuration, loaded and compiled.
#[derive(Debug, Clone, Default)]
pub struct Adapters {
    pub by_name: BTreeMap<String, Adapter>,
    /// The schemas, reference tables and steps the adapters were compiled with.
    pub domain: Domain,
}

impl Adapters {
    /// Load the adapters the configuration lists, with no Rust steps.
    pub fn load(cfg: &LoadedConfig) -> Result<Adapters, Vec<Problem>> {
        Self::load_with_steps(cfg, StepRegistry::new())
    }

    /// Load the schemas (`schema_dir`), the reference data (`reference_dir`) and the
    /// adapters the configuration lists, and check the routes' references into them.
    pub fn load_with_steps(
        cfg: &LoadedConfig,
        steps: StepRegistry,
    ) -> Result<Adapters, Vec<Problem>> {
        let mut problems = Vec::new();
        let domain = match Domain::load(&cfg.schema_dir(), &cfg.reference_dir(), steps.clone()) {
            Ok(d) => d,
            Err(p) => {
                problems.extend(p);
                Domain {
                    steps,
                    ..Domain::default()
                }
            }
        };
        let mut by_name = BTreeMap::new();
        let root = YamlFile::open(&cfg.path, None);
        let mut root = match root {
            Ok(r) => r,
            Err(p) => return Err(vec![p]),
        };
        for (i, name) in cfg.config.adapters.iter().enumerate() {
            let dir = cfg.adapter_path(name);
            if !dir.is_dir() {
                root.problem(
                    &format!("adapters.{i}"),
                    format!(
                        "adapter folder {} does not exist (adapter_dir is {})",
                        dir.display(),
                        cfg.config.adapter_dir.display()
                    ),
                );
                continue;
            }
            match Adapter::load_with(name, &dir, &domain) {
                Ok(a) => {
                    by_name.insert(name.clone(), a);
                }
                Err(p) => problems.extend(p),
            }
        }
        let adapters = Adapters { by_name, domain };
        // Agreements that do not parse are reported by the configuration's own checks.
        let agreements = lgsp_core::agreement::Agreements::from_config(&cfg.config.agreements)
            .unwrap_or_default();
        for (r, i) in cfg.config.routes.iter().zip(&cfg.route_index) {
            if let Some(id) = &r.validate
                && problems.is_empty()
                && adapters.domain.schemas.get(id).is_none()
            {
                root.problem(
                    &format!("routes.{i}.validate"),
                    adapters.domain.schemas.unknown(id),
                );
            }
            for (j, t) in r.to.iter().enumerate() {
                if let Some(m) = t.outbound_map() {
                    match adapters.check_ref(m) {
                        Err(msg) => root.problem(&format!("routes.{i}.to.{j}.map"), msg),
                        Ok(()) => {
                            if let Some(msg) = adapters.check_agreement(r, t, m, &agreements) {
                                root.problem(&format!("routes.{i}.to.{j}.map"), msg);
                            }
                        }
                    }
                }
                if let Some(w) = &t.when
                    && let Err(e) = super::path::CompiledPath::compile(w)
                {
                    let col = e
                        .column
                        .map(|c| format!(" (column {c} of the value)"))
                        .unwrap_or_default();
                    root.problem(
                        &format!("routes.{i}.to.{j}.when"),
                        format!("bad JSONPath `{w}`: {}{col}", e.message),
                    );
                }
            }
        }
        problems.extend(root.problems);
        if problems.is_empty() {
            Ok(adapters)
        } else {
            Err(problems)
        }
    }

    /// Why outbound mapping `reference` of target `t` of route `r` reads a field the
    /// receiver's agreements remove (or a personal field none names), if it does.
    fn check_agreement(
        &self,
        r: &lgsp_core::config::RouteConfig,
        t: &lgsp_core::config::TargetConfig,
        reference: &str,
        agreements: &lgsp_core::agreement::Agreements,
    ) -> Option<String> {
        let receiver = t.receiver()?;
        let (_, program) = self.resolve(reference).ok()?;
        let policy = agreements.any_event(&receiver);
        let personal = self.domain.schemas.personal_paths(r.validate.as_deref());
        let (reads, _) = program.reads();
        let why = reads
            .iter()
            .find_map(|read| lgsp_core::agreement::unreadable(&policy, read, personal))?;
        Some(match &policy {
            lgsp_core::agreement::Policy::NotPersonal => format!(
                "outbound mapping {reference} reads {why}; receiver `{receiver}` has no agreement: add one under `agreements` (receiver: {receiver}) that names the field, or stop reading it"
            ),
            lgsp_core::agreement::Policy::Fields { .. } => format!(
                "outbound mapping {reference} reads {why} of agreement {} (receiver `{receiver}`), which removes it before the mapping runs: add the field to the agreement, or stop reading it",
                policy.names()
            ),
        })
    }

    /// Validate a canonical document against schema `id` (a route's `validate:`).
    pub fn validate(&self, id: &str, doc: &Value) -> Result<(), SchemaError> {
        self.domain.schemas.validate(id, doc)
    }

    /// Resolve `ADAPTER.MAPPING`.
    pub fn resolve(&self, reference: &str) -> Result<(&Adapter, &Program), MapError> {
        let (a, m) = reference.split_once('.').unwrap_or((reference, ""));
        let adapter = self
            .by_name
            .get(a)
            .ok_or_else(|| MapError::UnknownMapping {
                adapter: a.to_owned(),
                mapping: m.to_owned(),
                known: format!(
                    "(no adapter `{a}`; adapters: {})",
                    sorted(self.by_name.keys().map(String::as_str).collect())
                ),
            })?;
        Ok((adapter, adapter.program(m)?))
    }

    fn check_ref(&self, reference: &str) -> Result<(), String> {
        let Some((a, m)) = reference.split_once('.') else {
            return Err(format!(
                "`{reference}` is not ADAPTER.MAPPING, e.g. bizreg.enterprise_out_xml"
            ));
        };
        match self.by_name.get(a) {
            None => Err(format!(
                "no loaded adapter `{a}`; adapters: {}",
                sorted(self.by_name.keys().map(String::as_str).collect())
            )),
            Some(ad) if ad.programs.contains_key(m) => Ok(()),
            Some(ad) => Err(format!(
                "adapter `{a}` has no mapping `{m}`; mappings: {}",
                sorted(ad.mapping_names().collect())
            )),
        }
    }

    /// The adapter mapping `message_type`, searching all adapters (for `lgsp map --type`).
    pub fn for_type(&self, message_type: &str) -> Option<&Adapter> {
        self.by_name
            .values()
            .find(|a| a.dispatch.contains_key(message_type))
    }
}
