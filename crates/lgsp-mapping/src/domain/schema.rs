//! Canonical JSON Schemas (draft 2020-12), loaded from `schema_dir` and compiled once.
//!
//! Each file `lgsp.<entity>.<version>.json` has `$id` `lgsp.<entity>/<version>`; shared
//! definitions live in `lgsp.common.1.json` and are referenced as
//! `/lgsp.common/1#/$defs/<name>`. References resolve only among these files: nothing is
//! ever fetched (a remote `$ref` is a load problem). Formats are checked (`2025-02-31` is
//! not a `date`). Properties marked `x-lgsp-personal: true` are masked in error messages.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use jsonschema::{Draft, Registry, Validator};
use lgsp_core::config::{Problem, yaml_pos::Pos};
use serde_json::Value;

use crate::dsl::{ErrorKind, FieldError};
use crate::values;

/// Base URI the schema ids are resolved against; never fetched.
const BASE: &str = "https://schemas.lgsp.invalid/";

/// Errors shown per failed validation; the rest are counted.
const MAX_SHOWN: usize = 3;

/// One compiled schema.
#[derive(Debug, Clone)]
pub struct Schema {
    pub id: String,
    pub file: PathBuf,
    validator: Arc<Validator>,
}

/// Every canonical schema, by id.
#[derive(Debug, Clone, Default)]
pub struct Schemas {
    /// The folder they were loaded from.
    pub dir: PathBuf,
    by_id: BTreeMap<String, Schema>,
    /// Names of properties marked `x-lgsp-personal` anywhere.
    personal: Arc<BTreeSet<String>>,
    /// Per schema, where its personal fields are: chains of member names from the root
    /// (lists skipped), references followed.
    personal_paths: Arc<BTreeMap<String, Vec<Vec<String>>>>,
    /// Those of every schema, for a document of no known schema.
    all_personal_paths: Arc<Vec<Vec<String>>>,
}

/// A document that does not satisfy its schema.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("schema {schema}: {message}")]
pub struct SchemaError {
    pub schema: String,
    /// Output path of the first failure, e.g. `industries[2].vsic_code` (empty: the root).
    pub field: String,
    /// Keyword of the first failure (`required`, `additionalProperties`, `format`, ...).
    pub keyword: String,
    /// Every failure (up to a few), each with its path and rule.
    pub message: String,
}

impl SchemaError {
    /// As the error of a mapping run: kind `validation`, code `schema.<keyword>`.
    pub fn into_field_error(self, mapping: &str) -> FieldError {
        FieldError {
            mapping: mapping.to_owned(),
            field: if self.field.is_empty() {
                "(document)".to_owned()
            } else {
                self.field
            },
            kind: ErrorKind::Validation,
            code: format!("schema.{}", self.keyword),
            message: format!("does not satisfy {}: {}", self.schema, self.message),
        }
    }
}

impl Schemas {
    /// Load and compile every `*.json` of `dir`. Every problem is returned, each with its
    /// file. A missing folder holds no schemas (a `validate:` then names an unknown one).
    pub fn load(dir: &Path) -> Result<Schemas, Vec<Problem>> {
        let mut problems = Vec::new();
        let Ok(rd) = std::fs::read_dir(dir) else {
            return Ok(Schemas {
                dir: dir.to_owned(),
                ..Schemas::default()
            });
        };
        let mut files: Vec<PathBuf> = rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        let mut docs: Vec<(PathBuf, String, Value)> = Vec::new();
        for f in files {
            let text = match std::fs::read_to_string(&f) {
                Ok(t) => t,
                Err(e) => {
                    problems.push(problem(&f, None, "", format!("cannot read the file: {e}")));
                    continue;
                }
            };
            let doc: Value = match serde_json::from_str(&text) {
                Ok(v) => v,
                Err(e) => {
                    let pos = Pos {
                        line: e.line(),
                        column: e.column(),
                    };
                    problems.push(problem(&f, Some(pos), "", format!("not valid JSON: {e}")));
                    continue;
                }
            };
            let Some(id) = doc.get("$id").and_then(Value::as_str).map(str::to_owned) else {
                problems.push(problem(
                    &f,
                    None,
                    "$id",
                    "a canonical schema needs `$id`, e.g. \"lgsp.enterprise/1\"",
                ));
                continue;
            };
            let expected_file = id.replace('/', ".") + ".json";
            if !valid_id(&id) {
                problems.push(problem(
                    &f,
                    None,
                    "$id",
                    format!("`{id}` is not lgsp.<entity>/<version>, e.g. lgsp.enterprise/1"),
                ));
                continue;
            }
            if f.file_name().and_then(|n| n.to_str()) != Some(expected_file.as_str()) {
                problems.push(problem(
                    &f,
                    None,
                    "$id",
                    format!("`{id}` belongs in a file named {expected_file}"),
                ));
            }
            if docs.iter().any(|(_, other, _)| *other == id) {
                problems.push(problem(&f, None, "$id", format!("`{id}` is defined twice")));
                continue;
            }
            docs.push((f, id, doc));
        }
        let registry = match Registry::new()
            .extend(
                docs.iter()
                    .map(|(_, id, doc)| (format!("{BASE}{id}"), doc.clone())),
            )
            .and_then(|b| b.prepare())
        {
            Ok(r) => r,
            Err(e) => {
                problems.push(problem(
                    dir,
                    None,
                    "",
                    format!("schemas do not resolve: {e}"),
                ));
                return Err(problems);
            }
        };
        let mut by_id = BTreeMap::new();
        let mut personal = BTreeSet::new();
        for (file, id, doc) in &docs {
            collect_personal(doc, &mut personal);
            let built = jsonschema::options()
                .with_draft(Draft::Draft202012)
                .offline()
                .should_validate_formats(true)
                .with_base_uri(format!("{BASE}{id}"))
                .with_registry(&registry)
                .build(doc);
            match built {
                Ok(v) => {
                    by_id.insert(
                        id.clone(),
                        Schema {
                            id: id.clone(),
                            file: file.clone(),
                            validator: Arc::new(v),
                        },
                    );
                }
                Err(e) => problems.push(problem(
                    file,
                    None,
                    &pointer_to_key(e.instance_path().as_str()),
                    if matches!(
                        e.kind(),
                        jsonschema::error::ValidationErrorKind::Referencing(_)
                    ) {
                        format!(
                            "invalid schema: {e} (references resolve only to files of the schema \
                             folder, as /lgsp.common/1#/$defs/NAME; nothing is fetched)"
                        )
                    } else {
                        format!("invalid schema: {e}")
                    },
                )),
            }
        }
        let raw: BTreeMap<&str, &Value> =
            docs.iter().map(|(_, id, doc)| (id.as_str(), doc)).collect();
        let mut personal_paths = BTreeMap::new();
        let mut all: Vec<Vec<String>> = Vec::new();
        for (id, doc) in &raw {
            let mut found = Vec::new();
            personal_chains(&raw, id, doc, &mut Vec::new(), &mut found, 0);
            found.sort();
            found.dedup();
            all.extend(found.iter().cloned());
            personal_paths.insert((*id).to_owned(), found);
        }
        all.sort();
        all.dedup();
        if problems.is_empty() {
            Ok(Schemas {
                dir: dir.to_owned(),
                by_id,
                personal: Arc::new(personal),
                personal_paths: Arc::new(personal_paths),
                all_personal_paths: Arc::new(all),
            })
        } else {
            Err(problems)
        }
    }

    /// Where the personal fields of a document of schema `id` are (chains of member
    /// names from the root, lists skipped); of every schema when `id` is unknown or
    /// `None`.
    pub fn personal_paths(&self, id: Option<&str>) -> &[Vec<String>] {
        id.and_then(|id| self.personal_paths.get(id))
            .unwrap_or(&self.all_personal_paths)
    }

    /// Schema ids, sorted.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.by_id.keys().map(String::as_str)
    }

    pub fn get(&self, id: &str) -> Option<&Schema> {
        self.by_id.get(id)
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// "unknown schema" in words, listing the known ones.
    pub fn unknown(&self, id: &str) -> String {
        format!(
            "no schema `{id}` in {} (schema_dir); schemas: {}",
            self.dir.display(),
            if self.by_id.is_empty() {
                "none".to_owned()
            } else {
                self.ids().collect::<Vec<_>>().join(", ")
            }
        )
    }

    /// Validate `doc` against schema `id` (a route's `validate:` uses this).
    pub fn validate(&self, id: &str, doc: &Value) -> Result<(), SchemaError> {
        let Some(schema) = self.by_id.get(id) else {
            return Err(SchemaError {
                schema: id.to_owned(),
                field: String::new(),
                keyword: "unknown".into(),
                message: self.unknown(id),
            });
        };
        self.check(schema, doc)
    }

    /// Validate `doc` against a compiled schema.
    pub fn check(&self, schema: &Schema, doc: &Value) -> Result<(), SchemaError> {
        // Nearly every document is valid: answer that without collecting errors.
        if schema.validator.is_valid(doc) {
            return Ok(());
        }
        let mut errors = schema.validator.iter_errors(doc).peekable();
        let Some(first) = errors.next() else {
            return Ok(());
        };
        let field = pointer_to_field(first.instance_path().as_str());
        let keyword = first.kind().keyword().to_owned();
        let mut message = String::new();
        let mut extra = 0usize;
        for (i, e) in std::iter::once(first).chain(errors).enumerate() {
            if i >= MAX_SHOWN {
                extra += 1;
                continue;
            }
            if i > 0 {
                message.push_str("; ");
            }
            let at = pointer_to_field(e.instance_path().as_str());
            let rule = if self.is_personal(e.instance_path().as_str()) {
                let shown = e.instance().as_str().map_or_else(
                    || "the value".to_owned(),
                    |s| format!("\"{}\"", values::mask(s)),
                );
                e.masked_with(shown).to_string()
            } else {
                e.to_string()
            };
            let _ = write!(
                message,
                "{}{rule}",
                if at.is_empty() {
                    String::new()
                } else {
                    format!("{at}: ")
                }
            );
        }
        if extra > 0 {
            let _ = write!(message, "; and {extra} more");
        }
        Err(SchemaError {
            schema: schema.id.clone(),
            field,
            keyword,
            message,
        })
    }

    fn is_personal(&self, pointer: &str) -> bool {
        pointer
            .split('/')
            .any(|seg| self.personal.contains(&unescape(seg)))
    }
}

fn valid_id(id: &str) -> bool {
    let Some((name, version)) = id.split_once('/') else {
        return false;
    };
    let Some(entity) = name.strip_prefix("lgsp.") else {
        return false;
    };
    !entity.is_empty()
        && entity
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !version.is_empty()
        && version.bytes().all(|b| b.is_ascii_digit())
}

fn collect_personal(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::Object(props)) = m.get("properties") {
                for (name, p) in props {
                    if p.get("x-lgsp-personal") == Some(&Value::Bool(true)) {
                        out.insert(name.clone());
                    }
                }
            }
            m.values().for_each(|c| collect_personal(c, out));
        }
        Value::Array(items) => items.iter().for_each(|c| collect_personal(c, out)),
        _ => {}
    }
}

/// Collect the chains of member names leading to a property marked personal, following
/// `properties`, `items`, `allOf`/`anyOf`/`oneOf` and references among the schemas.
fn personal_chains(
    docs: &BTreeMap<&str, &Value>,
    doc_id: &str,
    node: &Value,
    chain: &mut Vec<String>,
    out: &mut Vec<Vec<String>>,
    depth: usize,
) {
    let Value::Object(m) = node else { return };
    if depth > 32 {
        return;
    }
    if !chain.is_empty() && m.get("x-lgsp-personal") == Some(&Value::Bool(true)) {
        out.push(chain.clone());
        return;
    }
    if let Some(Value::String(r)) = m.get("$ref") {
        // `/lgsp.common/1#/$defs/x` or `#/$defs/x`.
        let (target, pointer) = r.split_once('#').unwrap_or((r.as_str(), ""));
        let target = target.trim_start_matches('/');
        let id = if target.is_empty() { doc_id } else { target };
        if let Some(found) = docs.get(id).and_then(|d| d.pointer(pointer)) {
            personal_chains(docs, id, found, chain, out, depth + 1);
        }
    }
    if let Some(Value::Object(props)) = m.get("properties") {
        for (name, p) in props {
            chain.push(name.clone());
            personal_chains(docs, doc_id, p, chain, out, depth + 1);
            chain.pop();
        }
    }
    if let Some(items) = m.get("items") {
        personal_chains(docs, doc_id, items, chain, out, depth + 1);
    }
    for k in ["allOf", "anyOf", "oneOf"] {
        if let Some(Value::Array(list)) = m.get(k) {
            for s in list {
                personal_chains(docs, doc_id, s, chain, out, depth + 1);
            }
        }
    }
}

fn unescape(seg: &str) -> String {
    seg.replace("~1", "/").replace("~0", "~")
}

/// `/industries/2/vsic_code` -> `industries[2].vsic_code`.
pub fn pointer_to_field(pointer: &str) -> String {
    let mut out = String::new();
    for seg in pointer.split('/').filter(|s| !s.is_empty()) {
        if seg.bytes().all(|b| b.is_ascii_digit()) {
            let _ = write!(out, "[{seg}]");
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&unescape(seg));
        }
    }
    out
}

fn pointer_to_key(pointer: &str) -> String {
    pointer_to_field(pointer)
}

fn problem(file: &Path, pos: Option<Pos>, key: &str, message: impl Into<String>) -> Problem {
    Problem {
        file: Some(file.to_owned()),
        key: key.to_owned(),
        pos,
        message: message.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_read_as_output_paths() {
        assert_eq!(
            pointer_to_field("/industries/2/vsic_code"),
            "industries[2].vsic_code"
        );
        assert_eq!(pointer_to_field(""), "");
        assert_eq!(pointer_to_field("/a~1b"), "a/b");
    }

    #[test]
    fn ids_are_versioned_entity_names() {
        assert!(valid_id("lgsp.enterprise/1"));
        assert!(valid_id("lgsp.enterprise_change/12"));
        assert!(!valid_id("lgsp.enterprise"));
        assert!(!valid_id("enterprise/1"));
        assert!(!valid_id("lgsp.Enterprise/1"));
        assert!(!valid_id("lgsp.enterprise/v1"));
    }

    #[test]
    fn personal_fields_are_found_by_where_they_are_through_references() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas");
        let s = Schemas::load(&dir).unwrap();
        let p = s.personal_paths(Some("lgsp.enterprise/1"));
        let has = |c: &[&str]| {
            p.iter()
                .any(|x| x.iter().map(String::as_str).eq(c.iter().copied()))
        };
        assert!(has(&["legal_representatives", "full_name"]), "{p:?}");
        assert!(has(&["legal_representatives", "citizen_id"]), "{p:?}");
        assert!(has(&["owners", "name"]), "{p:?}");
        // The enterprise's own name is not personal, a person's is.
        assert!(!has(&["name"]), "{p:?}");
        // A person's gender and ethnic origin are personal (ethnic origin is sensitive
        // personal data in Vietnamese law): a receiver gets them only by agreement.
        assert!(has(&["legal_representatives", "gender"]), "{p:?}");
        assert!(has(&["legal_representatives", "ethnicity"]), "{p:?}");
        // An unknown schema: every schema's.
        assert!(s.personal_paths(None).len() >= p.len());
    }
}
