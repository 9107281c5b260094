//! Rust steps: the seam for logic an adapter cannot say in the mapping DSL (totals that
//! must add up, cross-field rules). An adapter crate implements [`Step`], registers its
//! steps in a [`StepRegistry`], and a mapping names them in YAML (`steps: [tax.totals]`),
//! so the integrator still sees the whole pipeline in one place.
//!
//! A step runs on the mapped canonical document, after the mapping's fields and before
//! schema validation. It may change the document, record non-fatal findings with
//! [`StepContext::warn`] (they end up in the output's `warnings[]`), or fail the message
//! with a [`StepError`] naming the field.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde_json::{Map, Value};

/// A non-fatal finding, as stored in a canonical document's `warnings[]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// Stable code, e.g. `legacy_admin_code`.
    pub code: String,
    /// Output path of the field concerned, e.g. `head_office.admin_area.commune_code`.
    pub field: String,
    /// What was found and what it means, in words.
    pub message: String,
}

impl Warning {
    pub fn new(
        code: impl Into<String>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Warning {
            code: code.into(),
            field: field.into(),
            message: message.into(),
        }
    }

    /// `{code, field, message}`.
    pub fn to_value(&self) -> Value {
        let mut m = Map::with_capacity(3);
        m.insert("code".into(), Value::String(self.code.clone()));
        m.insert("field".into(), Value::String(self.field.clone()));
        m.insert("message".into(), Value::String(self.message.clone()));
        Value::Object(m)
    }
}

/// Append `warnings` to the `warnings` array of `doc` (created when absent). A document
/// that is not an object, or whose `warnings` is not a list, gets them in a fresh list:
/// a finding is never dropped.
pub fn append_warnings(doc: &mut Value, warnings: impl IntoIterator<Item = Warning>) {
    let mut warnings = warnings.into_iter().peekable();
    if warnings.peek().is_none() {
        return;
    }
    let Value::Object(map) = doc else {
        return;
    };
    let entry = map
        .entry("warnings")
        .or_insert_with(|| Value::Array(Vec::new()));
    if !entry.is_array() {
        let previous = std::mem::take(entry);
        *entry = Value::Array(vec![previous]);
    }
    if let Value::Array(list) = entry {
        list.extend(warnings.map(|w| w.to_value()));
    }
}

/// What a step may know about the message it runs on, and where its warnings go.
#[derive(Debug)]
pub struct StepContext<'a> {
    mapping: &'a str,
    warnings: Vec<Warning>,
}

impl<'a> StepContext<'a> {
    /// A context for a run of mapping `mapping` (`adapter.mapping`).
    pub fn new(mapping: &'a str) -> Self {
        StepContext {
            mapping,
            warnings: Vec::new(),
        }
    }

    /// The mapping the step runs in (`adapter.mapping`).
    pub fn mapping(&self) -> &str {
        self.mapping
    }

    /// Record a non-fatal finding; it is added to the output's `warnings[]`.
    pub fn warn(
        &mut self,
        code: impl Into<String>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) {
        self.warnings.push(Warning::new(code, field, message));
    }

    /// The findings recorded so far.
    pub fn warnings(&self) -> &[Warning] {
        &self.warnings
    }

    pub fn into_warnings(self) -> Vec<Warning> {
        self.warnings
    }
}

/// Whether a step failure is about the data's content or about producing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepErrorKind {
    /// The document is wrong (totals do not add up): error kind `validation`.
    Validation,
    /// The document could not be completed: error kind `mapping`.
    Mapping,
}

/// Why a step failed a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct StepError {
    pub kind: StepErrorKind,
    /// Output path of the field concerned, e.g. `lines[2].amount_before_vat`.
    pub field: String,
    /// Stable id of the error template, e.g. `einvoice.line_total`.
    pub code: String,
    pub message: String,
}

impl StepError {
    pub fn validation(
        field: impl Into<String>,
        code: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        StepError {
            kind: StepErrorKind::Validation,
            field: field.into(),
            code: code.into(),
            message: message.into(),
        }
    }

    pub fn mapping(
        field: impl Into<String>,
        code: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        StepError {
            kind: StepErrorKind::Mapping,
            field: field.into(),
            code: code.into(),
            message: message.into(),
        }
    }
}

/// Logic an adapter crate adds to the mapping pipeline.
pub trait Step: Send + Sync {
    /// The name YAML uses, `<sector>.<step>` (e.g. `tax.einvoice_totals`).
    fn name(&self) -> &'static str;
    /// Check or complete `doc`, the mapped canonical document.
    fn run(&self, doc: &mut Value, ctx: &mut StepContext<'_>) -> Result<(), StepError>;
}

/// Two steps registered under one name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("step `{0}` is registered twice; give each step its own `<sector>.<step>` name")]
pub struct DuplicateStep(pub String);

/// The steps the binary knows, by name.
#[derive(Clone, Default)]
pub struct StepRegistry {
    steps: BTreeMap<&'static str, Arc<dyn Step>>,
}

impl fmt::Debug for StepRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.steps.keys()).finish()
    }
}

impl StepRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Add `step` under its name.
    pub fn register(&mut self, step: impl Step + 'static) -> Result<&mut Self, DuplicateStep> {
        let name = step.name();
        if self.steps.contains_key(name) {
            return Err(DuplicateStep(name.to_owned()));
        }
        self.steps.insert(name, Arc::new(step));
        Ok(self)
    }

    pub fn get(&self, name: &str) -> Option<Arc<dyn Step>> {
        self.steps.get(name).cloned()
    }

    /// Registered names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.steps.keys().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct Noop;
    impl Step for Noop {
        fn name(&self) -> &'static str {
            "test.noop"
        }
        fn run(&self, _: &mut Value, ctx: &mut StepContext<'_>) -> Result<(), StepError> {
            ctx.warn("noop", "", "ran");
            Ok(())
        }
    }

    #[test]
    fn a_name_registers_once() {
        let mut r = StepRegistry::new();
        assert!(r.register(Noop).is_ok());
        let e = r.register(Noop).err().map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some(
                "step `test.noop` is registered twice; give each step its own `<sector>.<step>` name"
            )
        );
        assert_eq!(r.names().collect::<Vec<_>>(), ["test.noop"]);
        assert!(r.get("test.other").is_none());
    }

    #[test]
    fn warnings_are_appended_never_dropped() {
        let mut doc = json!({"a": 1, "warnings": [{"code": "x", "field": "a", "message": "m"}]});
        append_warnings(&mut doc, [Warning::new("y", "b", "n")]);
        assert_eq!(doc["warnings"].as_array().map(Vec::len), Some(2));
        assert_eq!(doc["warnings"][1]["code"], "y");
        let mut odd = json!({"warnings": "text"});
        append_warnings(&mut odd, [Warning::new("y", "b", "n")]);
        assert_eq!(odd["warnings"][0], "text");
        assert_eq!(odd["warnings"][1]["field"], "b");
        let mut empty = json!({});
        append_warnings(&mut empty, []);
        assert_eq!(empty, json!({}));
    }

    #[test]
    fn a_step_records_warnings_in_its_context() {
        let mut ctx = StepContext::new("t.m");
        let mut doc = json!({});
        assert!(Noop.run(&mut doc, &mut ctx).is_ok());
        assert_eq!(ctx.mapping(), "t.m");
        assert_eq!(ctx.into_warnings(), vec![Warning::new("noop", "", "ran")]);
    }
}
