//! The domain engine shared by every adapter: canonical schemas ([`schema`]),
//! effective-dated reference tables ([`reference`]), the Rust steps the binary registers
//! (`lgsp_core::step`), and the rules about warnings they share.
//!
//! A mapping run is: fields (with reference lookups and `warn:` checks recording
//! warnings), then the mapping's Rust steps, then `strict_admin_codes`, then `validate:`.

pub mod reference;
pub mod schema;

use std::path::Path;
use std::sync::Arc;

use lgsp_core::config::Problem;
use lgsp_core::step::StepRegistry;
use serde_json::Value;

pub use reference::{DatedTable, Reference, Resolution, Row};
pub use schema::{Schema, SchemaError, Schemas};

use crate::dsl::{ErrorKind, FieldError};

/// Warning code of a former administrative code (district abolished, commune merged).
pub const LEGACY_ADMIN_CODE: &str = "legacy_admin_code";

/// What mappings may refer to beyond their own adapter.
#[derive(Debug, Clone, Default)]
pub struct Domain {
    pub schemas: Arc<Schemas>,
    pub reference: Arc<Reference>,
    pub steps: StepRegistry,
}

impl Domain {
    /// Load the schemas and the reference data; `steps` come from the binary.
    pub fn load(
        schema_dir: &Path,
        reference_dir: &Path,
        steps: StepRegistry,
    ) -> Result<Domain, Vec<Problem>> {
        let mut problems = Vec::new();
        let schemas = Schemas::load(schema_dir).unwrap_or_else(|p| {
            problems.extend(p);
            Schemas::default()
        });
        let reference = Reference::load(reference_dir).unwrap_or_else(|p| {
            problems.extend(p);
            Reference::default()
        });
        if problems.is_empty() {
            Ok(Domain {
                schemas: Arc::new(schemas),
                reference: Arc::new(reference),
                steps,
            })
        } else {
            Err(problems)
        }
    }
}

/// A route's `strict_admin_codes: true`: refuse a document that carries a
/// `legacy_admin_code` warning (kind `validation`, naming the field).
pub fn refuse_legacy_admin_codes(mapping: &str, doc: &Value) -> Result<(), FieldError> {
    let Some(list) = doc.get("warnings").and_then(Value::as_array) else {
        return Ok(());
    };
    match list
        .iter()
        .find(|w| w.get("code").and_then(Value::as_str) == Some(LEGACY_ADMIN_CODE))
    {
        None => Ok(()),
        Some(w) => Err(FieldError {
            mapping: mapping.to_owned(),
            field: w
                .get("field")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            kind: ErrorKind::Validation,
            code: "reference.legacy_code".into(),
            message: format!(
                "{} (strict_admin_codes refuses former administrative codes; have the sender \
                 use the current code, or turn strict_admin_codes off to accept it with a warning)",
                w.get("message").and_then(Value::as_str).unwrap_or_default()
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strict_refuses_only_legacy_codes() {
        let ok =
            json!({"warnings": [{"code": "admin_name_mismatch", "field": "a", "message": "m"}]});
        assert!(refuse_legacy_admin_codes("t.m", &ok).is_ok());
        assert!(refuse_legacy_admin_codes("t.m", &json!({})).is_ok());
        let bad = json!({"warnings": [{"code": "legacy_admin_code", "field": "head_office.admin_area.commune_code", "message": "former code 90001"}]});
        let e = refuse_legacy_admin_codes("t.m", &bad).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Validation);
        assert_eq!(e.field, "head_office.admin_area.commune_code");
        assert!(
            e.to_string()
                .contains("former code 90001 (strict_admin_codes refuses")
        );
    }
}
