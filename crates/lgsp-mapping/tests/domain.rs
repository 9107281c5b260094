//! The domain engine: canonical schemas, effective-dated reference tables, warnings,
//! `strict_admin_codes` and Rust steps, on the shipped data and on small test adapters.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use lgsp_core::envelope::Envelope;
use lgsp_core::step::{Step, StepContext, StepError, StepRegistry};
use lgsp_mapping::decode::{Format, Limits};
use lgsp_mapping::domain::{Domain, Reference, Resolution, Schemas};
use lgsp_mapping::dsl::{Adapter, ErrorKind, MapError};
use serde_json::{Value, json};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn schemas() -> Schemas {
    Schemas::load(&repo().join("schemas")).unwrap()
}

fn golden(name: &str) -> Value {
    let p = repo().join("adapters/bizreg/tests/golden").join(name);
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn date(s: &str) -> chrono::NaiveDate {
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

/// A minimal valid document of each schema; the bizreg ones are goldens of `lgsp test`.
/// With each: a date field and a field of a fixed type, to break in the negative tests.
fn examples() -> Vec<(&'static str, Value, &'static str, &'static str)> {
    let src = |sector: &str| json!({"system": "test", "sector": sector});
    vec![
        (
            "lgsp.enterprise/1",
            golden("enterprise_registered_json.json"),
            "registered_on",
            "charter_capital_vnd",
        ),
        (
            "lgsp.enterprise_change/1",
            golden("enterprise_changed.json"),
            "changed_on",
            "registration_change_no",
        ),
        (
            "lgsp.enterprise_status_change/1",
            golden("enterprise_suspended.json"),
            "effective_from",
            "enterprise_code",
        ),
        (
            "lgsp.tax_registration/1",
            json!({"schema": "lgsp.tax_registration/1", "source": src("tax"),
            "tax_code": "4941209473001", "taxpayer_kind": "dependent_unit", "parent_tax_code": "4941209473",
            "issued_on": "2025-11-20", "vat_method": "credit", "status_code": "00", "status": "active"}),
            "issued_on",
            "tax_code",
        ),
        (
            "lgsp.vat_return/1",
            json!({"schema": "lgsp.vat_return/1", "source": src("tax"),
            "tax_code": "4941209473", "form": "01/GTGT", "period": {"kind": "month", "value": "2025-10"},
            "filed_on": "2025-11-18", "vat_payable_vnd": 12500000, "indicators": {"ct40": 12500000}}),
            "filed_on",
            "vat_payable_vnd",
        ),
        (
            "lgsp.einvoice/1",
            json!({"schema": "lgsp.einvoice/1", "source": src("tax"),
            "invoice_id": "4941209473/1/C25TAA/0000123", "template": "1", "invoice_type": "vat",
            "series": "C25TAA", "coded": true, "number": "0000123", "issue_date": "2025-11-20",
            "currency": "VND", "seller": {"name": "CÔNG TY A", "tax_code": "4941209473"},
            "buyer": {"name": "TRƯỜNG B", "budget_unit_code": "1234567"},
            "lines": [{"line_no": 1, "kind": "goods_service", "item_name": "Giấy A4", "quantity": "10",
                "unit_price": "75000", "amount_before_vat": 750000, "vat_rate": {"code": "8%", "percent": "8"}}],
            "totals": {"total_before_vat": 750000, "total_vat": 60000, "total_payable": 810000}}),
            "issue_date",
            "template",
        ),
        (
            "lgsp.budget_allocation/1",
            json!({"schema": "lgsp.budget_allocation/1", "source": src("finance"),
            "decision_no": "1234/QĐ-UBND", "decision_date": "2025-01-10", "fiscal_year": 2025,
            "budget_level": "province", "allocations": [{"budget_unit_code": "1045678",
            "school_code": "20123456", "items": [{"line_no": 1, "autonomous": true, "amount_vnd": 100}],
            "total_vnd": 100}], "total_vnd": 100}),
            "decision_date",
            "fiscal_year",
        ),
        (
            "lgsp.budget_disbursement/1",
            json!({"schema": "lgsp.budget_disbursement/1", "source": src("finance"),
            "voucher_no": "0001", "voucher_date": "2025-11-03", "budget_unit_code": "1045678",
            "budget_level": "commune", "admin_area": {"commune_code": "06400"},
            "lines": [{"line_no": 1, "economic_code": "6001", "amount_vnd": 5000}], "total_vnd": 5000}),
            "voucher_date",
            "total_vnd",
        ),
        (
            "lgsp.revenue_collection/1",
            json!({"schema": "lgsp.revenue_collection/1", "source": src("finance"),
            "report_date": "2025-11-20", "total_vnd": 10, "line_count": 1,
            "lines": [{"tax_code": "020179031587", "economic_code": "1701",
                "tax_period": {"kind": "quarter", "value": "2025-Q3"}, "amount_vnd": 10}]}),
            "report_date",
            "total_vnd",
        ),
        (
            "lgsp.budget_unit/1",
            json!({"schema": "lgsp.budget_unit/1", "source": src("finance"),
            "budget_unit_code": "1045678", "name": "Trường THCS A", "unit_kind": "budget_user",
            "estimate_level": 3, "dossier": {"no": "HS-1", "received_on": "2025-08-01"}}),
            "dossier.received_on",
            "estimate_level",
        ),
        (
            "lgsp.public_asset/1",
            json!({"schema": "lgsp.public_asset/1", "source": src("finance"),
            "report_date": "2025-12-31", "budget_unit_code": "1045678",
            "assets": [{"name": "Nhà lớp học", "kind": "building", "floor_area_m2": "420.5",
                "original_cost_vnd": 100, "accumulated_depreciation_vnd": 40, "residual_value_vnd": 60}]}),
            "report_date",
            "assets",
        ),
        (
            "lgsp.budget_report/1",
            json!({"schema": "lgsp.budget_report/1", "source": src("finance"),
            "fiscal_year": 2024, "prepared_on": "2025-06-30",
            "rows": [{"indicator": "Tổng chi", "actual_vnd": 7125432500000_i64, "ratio_percent": "98.5"}]}),
            "prepared_on",
            "fiscal_year",
        ),
        (
            "lgsp.school/1",
            json!({"schema": "lgsp.school/1", "source": src("emis"),
            "school_code": "20123456", "name": "Trường THCS Hữu Liên", "education_levels": ["lower_secondary"],
            "ownership": "public", "address": {"admin_area": {"province_code": "20", "commune_code": "06400",
            "legacy_district_code": "186"}}, "principal": {"full_name": "Nguyễn Văn A", "citizen_id": "020078014563"},
            "founded_year": 1962, "status": "active"}),
            "principal.birth_date",
            "founded_year",
        ),
        (
            "lgsp.school_statistics/1",
            json!({"schema": "lgsp.school_statistics/1", "source": src("emis"),
            "school_code": "20123456", "academic_year": "2025-2026", "period": "start_of_year",
            "as_of": "2025-09-15", "grades": [{"grade": "6", "classes": 2, "pupils": 60, "female": 29}],
            "totals": {"classes": 2, "pupils": 60, "female": 29}, "teachers": {"total": 5, "by_degree": {"bachelor": 5}}}),
            "as_of",
            "period",
        ),
        (
            "lgsp.teacher/1",
            json!({"schema": "lgsp.teacher/1", "source": src("emis"),
            "school_code": "20123456", "staff_code": "GV001", "person": {"full_name": "Lý Thị B",
            "birth_date": "1990-02-28", "gender": "female"}, "qualification": "bachelor",
            "professional_grade": "III", "subjects": ["Toán"], "joined_on": "2012-09-05", "status": "active"}),
            "joined_on",
            "subjects",
        ),
        (
            "lgsp.teacher_roster/1",
            json!({"schema": "lgsp.teacher_roster/1", "source": src("emis"),
            "school_code": "20123456", "academic_year": "2025-2026",
            "teachers": [{"person": {"full_name": "Lý Thị B"}, "joined_on": "2012-09-05"}]}),
            "teachers[0].joined_on",
            "school_code",
        ),
        (
            "lgsp.student_enrollment/1",
            json!({"schema": "lgsp.student_enrollment/1", "source": src("emis"),
            "school_code": "20123456", "academic_year": "2025-2026",
            "events": [{"event": "enrolled", "student": {"full_name": "Hoàng Văn C", "citizen_id": "020213004567",
            "birth_date": "2013-05-02"}, "enrolled_on": "2025-09-05", "semi_boarding": true,
            "residence": {"admin_area": {"commune_code": "06400"}}}]}),
            "events[0].enrolled_on",
            "events",
        ),
    ]
}

/// The value at a dotted path with `[i]` indexes, created when absent.
fn at<'a>(doc: &'a mut Value, path: &str) -> &'a mut Value {
    let mut cur = doc;
    for seg in path.split('.') {
        let (name, index) = match seg.split_once('[') {
            Some((n, i)) => (n, i.trim_end_matches(']').parse::<usize>().ok()),
            None => (seg, None),
        };
        cur = &mut cur[name];
        if let Some(i) = index {
            cur = &mut cur[i];
        }
    }
    cur
}

#[test]
fn every_schema_has_a_valid_example_and_refuses_four_kinds_of_mistake() {
    let schemas = schemas();
    let examples = examples();
    let covered: Vec<&str> = examples.iter().map(|e| e.0).collect();
    let entities: Vec<&str> = schemas.ids().filter(|id| *id != "lgsp.common/1").collect();
    assert_eq!(covered.len(), entities.len(), "{entities:?}");
    for id in entities {
        assert!(covered.contains(&id), "no example for {id}");
    }
    for (id, doc, date_field, typed_field) in examples {
        if let Err(e) = schemas.validate(id, &doc) {
            panic!("{id}: the example is refused: {e}");
        }
        let mut extra = doc.clone();
        extra["colour"] = json!("red");
        let e = schemas.validate(id, &extra).unwrap_err();
        assert_eq!(e.keyword, "additionalProperties", "{id}: {e}");
        assert!(e.message.contains("'colour' was unexpected"), "{id}: {e}");

        let mut nested = doc.clone();
        nested["source"]["colour"] = json!("red");
        assert_eq!(
            schemas.validate(id, &nested).unwrap_err().field,
            "source",
            "{id}: extra fields are refused at every level"
        );

        let mut wrong = doc.clone();
        *at(&mut wrong, typed_field) = json!({"not": "this"});
        let e = schemas.validate(id, &wrong).unwrap_err();
        assert_eq!(e.field, typed_field, "{id}: {e}");

        let mut missing = doc.clone();
        missing.as_object_mut().unwrap().remove("source");
        let e = schemas.validate(id, &missing).unwrap_err();
        assert_eq!(e.keyword, "required", "{id}: {e}");
        assert!(
            e.message.contains("\"source\" is a required property"),
            "{id}: {e}"
        );

        let mut bad_date = doc.clone();
        *at(&mut bad_date, date_field) = json!("2025-02-31");
        let e = schemas.validate(id, &bad_date).unwrap_err();
        assert_eq!(e.field, date_field, "{id}: {e}");
        assert!(e.message.contains("is not a \"date\""), "{id}: {e}");
    }
}

#[test]
fn every_bizreg_canonical_golden_satisfies_its_schema() {
    let schemas = schemas();
    let dir = repo().join("adapters/bizreg/tests/golden");
    let mut checked = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "json") {
            // A golden of a batch holds one document per output.
            let text = std::fs::read_to_string(&p).unwrap();
            for doc in serde_json::Deserializer::from_str(&text).into_iter::<Value>() {
                let doc = doc.unwrap();
                let id = doc["schema"].as_str().unwrap();
                if let Err(e) = schemas.validate(id, &doc) {
                    panic!("{}: {e}", p.display());
                }
                checked += 1;
            }
        }
    }
    assert!(checked >= 15, "{checked}");
}

#[test]
fn a_validation_error_names_the_list_item_and_the_rule() {
    let mut doc = golden("enterprise_registered_xml.json");
    doc["industries"][2]["vsic_code"] = json!("52");
    let e = schemas().validate("lgsp.enterprise/1", &doc).unwrap_err();
    assert_eq!(e.field, "industries[2].vsic_code");
    assert!(e.message.contains(r#"does not match "^\d{4,5}$""#), "{e}");
    let f = e.into_field_error("bizreg.x");
    assert_eq!(f.kind, ErrorKind::Validation);
    assert_eq!(f.code, "schema.pattern");
}

#[test]
fn personal_values_are_masked_in_schema_errors() {
    let mut doc = golden("enterprise_registered_xml.json");
    doc["legal_representatives"][0]["citizen_id"] = json!("0200780145");
    let e = schemas().validate("lgsp.enterprise/1", &doc).unwrap_err();
    assert_eq!(e.field, "legal_representatives[0].citizen_id");
    assert!(!e.message.contains("0200780145"), "{e}");
    assert!(e.message.contains("020****145"), "{e}");
}

#[test]
fn an_unknown_schema_id_lists_the_known_ones() {
    let e = schemas()
        .validate("lgsp.enterprize/1", &json!({}))
        .unwrap_err();
    assert!(e.message.contains("no schema `lgsp.enterprize/1`"), "{e}");
    assert!(e.message.contains("lgsp.enterprise/1"), "{e}");
}

fn schema_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

#[test]
fn a_remote_ref_is_refused_and_nothing_is_fetched() {
    let dir = schema_dir(&[(
        "lgsp.x.1.json",
        r#"{"$id": "lgsp.x/1", "$ref": "https://json-schema.org/draft/2020-12/schema-not-here"}"#,
    )]);
    let started = std::time::Instant::now();
    let problems = Schemas::load(dir.path()).unwrap_err();
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    let text = problems[0].to_string();
    assert!(text.contains("lgsp.x.1.json"), "{text}");
    assert!(text.contains("nothing is fetched"), "{text}");
}

#[test]
fn broken_schemas_are_reported_with_their_file() {
    let dir = schema_dir(&[
        (
            "lgsp.a.1.json",
            "{\n  \"$id\": \"lgsp.a/1\",\n  \"type\": \n}",
        ),
        ("lgsp.b.1.json", r#"{"$id": "lgsp.b/1", "type": "objekt"}"#),
        ("lgsp.c.1.json", r#"{"$id": "lgsp.d/1"}"#),
        ("lgsp.e.1.json", r#"{"type": "object"}"#),
    ]);
    let text: Vec<String> = Schemas::load(dir.path())
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(text.len(), 4, "{text:#?}");
    for needle in [
        "lgsp.a.1.json:4:1: not valid JSON",
        "lgsp.b.1.json: type: invalid schema: \"objekt\" is not valid",
        "lgsp.c.1.json: $id: `lgsp.d/1` belongs in a file named lgsp.d.1.json",
        "lgsp.e.1.json: $id: a canonical schema needs `$id`",
    ] {
        assert!(
            text.iter().any(|t| t.contains(needle)),
            "{needle} in {text:#?}"
        );
    }
}

#[test]
fn the_shipped_reference_has_the_province_and_65_units_from_july_2025() {
    let r = Reference::load(&repo().join("reference")).unwrap();
    let t = r.get("admin_unit").unwrap();
    let current: Vec<_> = ["05977", "06400", "06637", "06187"]
        .iter()
        .map(|c| t.resolve(c, date("2025-07-01")))
        .collect();
    assert!(
        current.iter().all(|r| matches!(r, Resolution::Current(_))),
        "{current:?}"
    );
    assert!(
        matches!(t.resolve("20", date("2019-01-01")), Resolution::Current(r) if r.name == "Tỉnh Lạng Sơn")
    );
    let text = std::fs::read_to_string(repo().join("reference/admin_units_lang_son.yaml")).unwrap();
    assert_eq!(text.matches("valid_from: \"2025-07-01\"").count(), 65);
    assert_eq!(text.matches("level: ward").count(), 4);
    assert!(text.contains("TO VERIFY AGAINST THE OFFICIAL DECISION"));
    let sample =
        std::fs::read_to_string(repo().join("reference/admin_units_crosswalk_sample.yaml"))
            .unwrap();
    assert!(sample.starts_with("# FICTIONAL SAMPLE"));
    assert!(matches!(
        t.resolve("06400", date("2025-06-30")),
        Resolution::NotOnDate(_)
    ));
}

#[test]
fn a_former_code_resolves_to_itself_before_the_change_and_to_its_successor_after() {
    let r = Reference::load(&repo().join("reference")).unwrap();
    let t = r.get("admin_unit").unwrap();
    assert!(matches!(
        t.resolve("90001", date("2025-06-30")),
        Resolution::Current(r) if r.name == "Xã Mẫu Thử Một"
    ));
    match t.resolve("90001", date("2025-07-01")) {
        Resolution::Legacy { former, current } => {
            assert_eq!(former.code, "90001");
            assert_eq!(current.describe(), "06400 Xã Hữu Liên");
        }
        other => panic!("{other:?}"),
    }
    // Merged twice (2024-12-01, then 2025-07-01): followed to the unit of the day.
    assert!(matches!(
        t.resolve("90003", date("2025-01-15")),
        Resolution::Legacy { current, .. } if current.code == "90001"
    ));
    assert!(matches!(
        t.resolve("90003", date("2025-08-01")),
        Resolution::Legacy { current, .. } if current.code == "06400"
    ));
}

// --- mappings using the domain --------------------------------------------------------

/// A test adapter `t` with one mapping `m` (YAML `mapping` under `mappings.m`).
fn adapter(mapping: &str, steps: StepRegistry) -> Result<Adapter, Vec<String>> {
    let dir = tempfile::tempdir().unwrap().keep();
    std::fs::write(
        dir.join("adapter.yaml"),
        format!("mappings:\n  m:\n{mapping}"),
    )
    .unwrap();
    let domain = Domain::load(&repo().join("schemas"), &repo().join("reference"), steps).unwrap();
    Adapter::load_with("t", &dir, &domain).map_err(|p| p.iter().map(ToString::to_string).collect())
}

fn map(a: &Adapter, body: &str) -> Result<Value, MapError> {
    let out = a.map_with(
        "m",
        &Envelope::default(),
        body.as_bytes(),
        Some(Format::Json),
        &Limits::default(),
    )?;
    Ok(out.into_iter().next().unwrap().value)
}

const ADDRESS: &str = r#"    fields:
      commune_code:
        path: $.xa
        reference: { table: admin_unit, date_path: $.ngay, name_path: $.tenXa, keep_former_as: legacy_commune_code }
"#;

#[test]
fn a_former_code_after_the_change_is_replaced_with_a_warning() {
    let a = adapter(ADDRESS, StepRegistry::new()).unwrap();
    let before = map(&a, r#"{"xa": "90001", "ngay": "2025-06-30"}"#).unwrap();
    assert_eq!(before, json!({"commune_code": "90001"}));
    let after = map(&a, r#"{"xa": "90001", "ngay": "2025-07-01"}"#).unwrap();
    assert_eq!(after["commune_code"], "06400");
    assert_eq!(after["legacy_commune_code"], "90001");
    assert_eq!(after["warnings"][0]["code"], "legacy_admin_code");
    assert_eq!(after["warnings"][0]["field"], "commune_code");
    assert_eq!(
        after["warnings"][0]["message"],
        "former code 90001 Xã Mẫu Thử Một until 2025-06-30; on 2025-07-01 it is 06400 Xã Hữu Liên (table `admin_unit`)"
    );
}

#[test]
fn strict_admin_codes_turns_the_legacy_warning_into_a_validation_error() {
    let a = adapter(
        &format!("    strict_admin_codes: true\n{ADDRESS}"),
        StepRegistry::new(),
    )
    .unwrap();
    assert!(map(&a, r#"{"xa": "06400", "ngay": "2025-07-01"}"#).is_ok());
    let e = map(&a, r#"{"xa": "90001", "ngay": "2025-07-01"}"#).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Validation);
    assert_eq!(e.code(), "reference.legacy_code");
    let text = e.to_string();
    assert!(
        text.starts_with("mapping t.m: field commune_code: former code 90001"),
        "{text}"
    );
    assert!(
        text.contains("strict_admin_codes refuses former administrative codes"),
        "{text}"
    );
}

#[test]
fn a_name_that_is_not_the_tables_is_a_warning_and_level_words_do_not_count() {
    let a = adapter(ADDRESS, StepRegistry::new()).unwrap();
    let same = map(
        &a,
        r#"{"xa": "06400", "ngay": "2025-07-01", "tenXa": "hữu  liên"}"#,
    )
    .unwrap();
    assert!(same.get("warnings").is_none(), "{same}");
    let other = map(
        &a,
        r#"{"xa": "06400", "ngay": "2025-07-01", "tenXa": "Xã Chi Lăng"}"#,
    )
    .unwrap();
    assert_eq!(other["warnings"][0]["code"], "admin_name_mismatch");
}

#[test]
fn a_lookup_without_a_date_or_with_an_unknown_code_fails_with_the_reason() {
    let a = adapter(ADDRESS, StepRegistry::new()).unwrap();
    let e = map(&a, r#"{"xa": "06400"}"#).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Mapping);
    assert!(
        e.to_string()
            .contains("no date at $.ngay to look up code 06400"),
        "{e}"
    );
    let e = map(&a, r#"{"xa": "06400", "ngay": "2025-02-31"}"#).unwrap_err();
    assert_eq!(e.code(), "reference.bad_date");
    let e = map(&a, r#"{"xa": "99999", "ngay": "2025-07-01"}"#).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Validation);
    assert_eq!(e.code(), "reference.unknown_code");
}

#[test]
fn a_warn_check_keeps_the_value_and_records_a_warning() {
    let a = adapter(
        "    fields:\n      vsic:\n        path: $.v\n        warn: vsic_code\n",
        StepRegistry::new(),
    )
    .unwrap();
    let out = map(&a, r#"{"v": "H4933"}"#).unwrap();
    assert_eq!(out["vsic"], "H4933");
    assert_eq!(
        out["warnings"],
        json!([{"code": "vsic_code.format", "field": "vsic",
            "message": "not a VSIC 2018 code: expected 4 digits (class) or 5 (subclass), e.g. 4933: value \"H4933\" at $.v"}])
    );
}

#[test]
fn unknown_schemas_steps_and_tables_are_config_problems_with_positions() {
    let e = adapter(
        "    validate: lgsp.enterprize/1\n    steps: [tax.nothing]\n    fields:\n      a:\n        path: $.a\n        reference: { table: vsic, date_path: $.d }\n",
        StepRegistry::new(),
    )
    .unwrap_err();
    assert_eq!(e.len(), 3, "{e:#?}");
    let find = |needle: &str| {
        e.iter()
            .find(|l| l.contains(needle))
            .cloned()
            .unwrap_or_default()
    };
    assert!(
        find("mappings.m.validate")
            .contains("adapter.yaml:3:5: mappings.m.validate: no schema `lgsp.enterprize/1`"),
        "{e:#?}"
    );
    assert!(find("mappings.m.steps").contains("adapter.yaml:4:13: mappings.m.steps[0]: no step `tax.nothing` in this build; steps: none"), "{e:#?}");
    assert!(
        find("reference.table")
            .contains("no reference table `vsic` in reference_dir; tables: admin_unit"),
        "{e:#?}"
    );
}

/// A step as an adapter crate would write it: totals that must add up.
struct Totals;

impl Step for Totals {
    fn name(&self) -> &'static str {
        "test.totals"
    }

    fn run(&self, doc: &mut Value, ctx: &mut StepContext<'_>) -> Result<(), StepError> {
        let lines = doc["lines"].as_array().cloned().unwrap_or_default();
        let sum: i64 = lines.iter().filter_map(|l| l["amount_vnd"].as_i64()).sum();
        if lines.len() == 1 {
            ctx.warn("single_line", "lines", "a voucher with one line");
        }
        match doc["total_vnd"].as_i64() {
            Some(t) if t == sum => {
                doc["line_count"] = json!(lines.len());
                Ok(())
            }
            Some(t) => Err(StepError::validation(
                "total_vnd",
                "test.total",
                format!("total {t} is not the sum of the lines, {sum}"),
            )),
            None => Err(StepError::mapping("total_vnd", "test.no_total", "no total")),
        }
    }
}

#[test]
fn a_rust_step_named_in_yaml_completes_the_document_warns_and_fails_with_the_field() {
    let mut steps = StepRegistry::new();
    steps.register(Totals).unwrap();
    let a = adapter(
        "    steps: [test.totals]\n    validate: lgsp.revenue_collection/1\n    fields:\n      schema: { const: lgsp.revenue_collection/1 }\n      source: { fields: { sector: { const: finance } } }\n      report_date: { path: $.ngay }\n      total_vnd: { path: $.tong, transform: [integer] }\n      lines:\n        each: $.dong\n        fields:\n          amount_vnd: { path: $.tien, transform: [integer] }\n",
        steps,
    )
    .unwrap();
    let ok = map(
        &a,
        r#"{"ngay": "2025-11-20", "tong": 10, "dong": [{"tien": 10}]}"#,
    )
    .unwrap();
    assert_eq!(
        ok["line_count"], 1,
        "the step's change is validated and kept"
    );
    assert_eq!(
        ok["warnings"][0],
        json!({"code": "single_line", "field": "lines", "message": "a voucher with one line"})
    );

    let e = map(
        &a,
        r#"{"ngay": "2025-11-20", "tong": 11, "dong": [{"tien": 10}, {"tien": 2}]}"#,
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Validation);
    assert_eq!(e.code(), "test.total");
    assert_eq!(
        e.to_string(),
        "mapping t.m: field total_vnd: total 11 is not the sum of the lines, 12 (step test.totals)"
    );
    // After the step, the schema still has the last word.
    let e = map(
        &a,
        r#"{"ngay": "2025-02-31", "tong": 10, "dong": [{"tien": 10}]}"#,
    )
    .unwrap_err();
    assert_eq!(e.code(), "schema.format");
    assert!(
        e.to_string()
            .contains("field report_date: does not satisfy lgsp.revenue_collection/1"),
        "{e}"
    );
}
