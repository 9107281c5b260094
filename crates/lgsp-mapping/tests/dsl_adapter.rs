//! The mapping engine on the shipped bizreg adapter: compiled once, run many times.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use lgsp_core::envelope::Envelope;
use lgsp_core::step::StepRegistry;
use lgsp_mapping::decode::{Format, Limits};
use lgsp_mapping::domain::Domain;
use lgsp_mapping::dsl::program::compilations;
use lgsp_mapping::dsl::{Adapter, MapError};

/// The shipped schemas and reference data, no Rust steps.
fn domain() -> Domain {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    Domain::load(
        &repo.join("schemas"),
        &repo.join("reference"),
        StepRegistry::new(),
    )
    .unwrap()
}

fn bizreg() -> (Adapter, PathBuf) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../adapters/bizreg");
    (Adapter::load_with("bizreg", &dir, &domain()).unwrap(), dir)
}

fn envelope(ty: &str) -> Envelope {
    Envelope {
        message_id: "m-1".into(),
        message_type: Some(ty.into()),
        ..Envelope::default()
    }
}

#[test]
fn mapping_messages_compiles_nothing() {
    let (adapter, dir) = bizreg();
    let body = std::fs::read(dir.join("samples/enterprise-registered.xml")).unwrap();
    let env = envelope("bizreg.enterprise.registered");
    let before = compilations();
    assert!(before > 0, "loading the adapter compiles its expressions");
    for _ in 0..200 {
        let out = adapter
            .map_message(&env, &body, None, &Limits::default())
            .unwrap();
        assert_eq!(out.len(), 1);
    }
    // The test runner (nextest) gives each test its own process: nothing else compiles
    // while this test maps.
    let after = compilations();
    assert_eq!(
        after,
        before,
        "compiled {} expressions while mapping",
        after - before
    );
}

#[test]
fn dispatch_picks_the_mapping_by_format_and_root() {
    let (adapter, dir) = bizreg();
    let env = envelope("bizreg.enterprise.registered");
    for file in ["enterprise-registered.xml", "enterprise-registered.json"] {
        let body = std::fs::read(dir.join("samples").join(file)).unwrap();
        let out = adapter
            .map_message(&env, &body, None, &Limits::default())
            .unwrap();
        assert_eq!(out[0].value["schema"], "lgsp.enterprise/1", "{file}");
        assert_eq!(out[0].event.as_deref(), Some("enterprise.registered"));
        assert_eq!(out[0].message_id, "m-1");
    }
    let err = adapter
        .map_message(&env, b"<Other/>", Some(Format::Xml), &Limits::default())
        .unwrap_err();
    assert!(matches!(err, MapError::NoMatch { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("expected one of: xml with root `HoSo`"),
        "{err}"
    );
}

#[test]
fn an_unknown_type_lists_the_known_ones() {
    let (adapter, _) = bizreg();
    let err = adapter
        .map_message(&envelope("bizreg.nope"), b"<a/>", None, &Limits::default())
        .unwrap_err();
    assert_eq!(err.kind().as_str(), "mapping");
    assert!(
        err.to_string()
            .contains("it maps: bizreg.branch.registered"),
        "{err}"
    );
}

#[test]
fn batch_children_get_the_contract_ids() {
    let dir = tempfile_dir();
    std::fs::write(
        dir.join("adapter.yaml"),
        "mappings:\n  list:\n    each: $.L.I\n    fields:\n      id: { envelope: message_id }\n      parent: { envelope: correlation_id }\n      v: { path: $.v }\n",
    )
    .unwrap();
    let adapter = Adapter::load("t", &dir).unwrap();
    let env = Envelope {
        message_id: "parent-1".into(),
        ..Envelope::default()
    };
    let out = adapter
        .map_with(
            "list",
            &env,
            b"<L><I><v>a</v></I><I><v>b</v></I></L>",
            None,
            &Limits::default(),
        )
        .unwrap();
    assert_eq!(out.len(), 2);
    for (i, m) in out.iter().enumerate() {
        let expected = lgsp_core::envelope::child_message_id("parent-1", i);
        assert_eq!(m.message_id, expected);
        assert_eq!(m.value["id"], expected.as_str());
        assert_eq!(m.value["parent"], "parent-1");
        assert_eq!(m.correlation_id.as_deref(), Some("parent-1"));
    }
    std::fs::remove_dir_all(dir).unwrap();
}

fn tempfile_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "lgsp-dsl-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn an_enum_check_never_accepts_an_object() {
    let dir = tempfile_dir();
    std::fs::write(
        dir.join("adapter.yaml"),
        "mappings:\n  m:\n    fields:\n      v: { path: $.v, check: { enum: [{ a: 1 }, ok] } }\n",
    )
    .unwrap();
    let adapter = Adapter::load("t", &dir).unwrap();
    let env = Envelope::default();
    let limits = Limits::default();
    assert!(
        adapter
            .map_with("m", &env, br#"{"v": "ok"}"#, None, &limits)
            .is_ok()
    );
    let err = adapter
        .map_with("m", &env, br#"{"v": {"b": 2}}"#, None, &limits)
        .unwrap_err();
    assert_eq!(err.kind().as_str(), "validation", "{err}");
    std::fs::remove_dir_all(dir).unwrap();
}

/// An adapter made of one `adapter.yaml`, loaded with the shipped domain; its load
/// problems as text.
fn adapter_from(yaml: &str) -> Result<Adapter, String> {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let dir = tempfile_dir().join(format!(
        "a{}",
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("adapter.yaml"), yaml).unwrap();
    let loaded = Adapter::load_with("t", &dir, &domain()).map_err(|problems| {
        problems
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    });
    std::fs::remove_dir_all(&dir).unwrap();
    loaded
}

fn map_json(adapter: &Adapter, mapping: &str, body: &str) -> Result<serde_json::Value, MapError> {
    adapter
        .map_with(
            mapping,
            &Envelope::default(),
            body.as_bytes(),
            None,
            &Limits::default(),
        )
        .map(|mut out| out.remove(0).value)
}

#[test]
fn a_bare_date_transform_reads_the_default_family() {
    let adapter = adapter_from(
        "mappings:\n  m:\n    fields:\n      d: { path: $.d, transform: [date] }\n      t: { path: $.t, transform: [datetime] }\n      strict: { path: $.s, transform: [{ date: \"%d/%m/%Y\" }] }\n",
    )
    .unwrap();
    let out = map_json(
        &adapter,
        "m",
        r#"{"d": "2025-11-20T23:30:00Z", "t": "20/11/2025 16:42:05", "s": "20/11/2025"}"#,
    )
    .unwrap();
    assert_eq!(out["d"], "2025-11-21");
    assert_eq!(out["t"], "2025-11-20T16:42:05+07:00");
    assert_eq!(out["strict"], "2025-11-20");
    for (body, code) in [
        (r#"{"d": "11/20/2025"}"#, "date.impossible"),
        (r#"{"d": "20/11/25"}"#, "date.two_digit_year"),
        (r#"{"t": "20/11/2025"}"#, "datetime.no_time"),
        // An explicit pattern narrows: ISO is not dd/mm/yyyy.
        (r#"{"s": "2025-11-20"}"#, "date.mismatch"),
    ] {
        let err = map_json(&adapter, "m", body).unwrap_err();
        assert_eq!(err.kind().as_str(), "mapping", "{body}: {err}");
        assert!(
            err.to_string().contains(code) || code_of(&err) == code,
            "{body}: {err}"
        );
    }
}

fn code_of(err: &MapError) -> String {
    match err {
        MapError::Field(f) => f.code.clone(),
        other => panic!("not a field error: {other}"),
    }
}

#[test]
fn transform_names_and_maps_are_still_checked() {
    let err =
        adapter_from("mappings:\n  m:\n    fields:\n      d: { path: $.d, transform: [dates] }\n")
            .unwrap_err();
    assert!(err.contains("unknown variant: found `dates`"), "{err}");
    assert!(err.contains("date") && err.contains("vn_number"), "{err}");
    let err = adapter_from(
        "mappings:\n  m:\n    fields:\n      d: { path: $.d, transform: [{ date: \"%d/%m/%Y\", split: \",\" }] }\n",
    )
    .unwrap_err();
    assert!(err.contains("exactly one key"), "{err}");
    let err = adapter_from(
        "mappings:\n  m:\n    fields:\n      d: { path: $.d, transform: [{ date: \"%m/%Y\" }] }\n",
    )
    .unwrap_err();
    assert!(err.contains("mappings.m.fields.d.transform[0]"), "{err}");
    assert!(err.contains("full date"), "{err}");
    let adapter = adapter_from(
        "mappings:\n  m:\n    fields:\n      a: { path: $.a, transform: [trim, { multiply: 1000 }, { lookup: { table: t, default: x } }] }\ntables:\n  t: { \"5000\": five }\n",
    )
    .unwrap();
    assert_eq!(
        map_json(&adapter, "m", r#"{"a": "5"}"#).unwrap()["a"],
        "five"
    );
}

#[test]
fn a_reference_without_date_format_reads_the_date_in_the_default_family() {
    let yaml = |date_format: &str| {
        format!(
            "mappings:\n  m:\n    fields:\n      ward:\n        path: $.w\n        reference:\n          table: admin_unit\n          date_path: $.on\n{date_format}"
        )
    };
    let adapter = adapter_from(&yaml("")).unwrap();
    for on in [
        "2025-08-01",
        "01/08/2025",
        "1-8-2025",
        "2025-08-01T10:00:00+07:00",
    ] {
        let out = map_json(&adapter, "m", &format!(r#"{{"w": "05977", "on": "{on}"}}"#)).unwrap();
        assert_eq!(out["ward"], "05977", "{on}");
        assert!(out.get("warnings").is_none(), "{on}: {out}");
    }
    // 15 June 2025, before the ward existed: read day first.
    let out = map_json(&adapter, "m", r#"{"w": "05977", "on": "15/06/2025"}"#).unwrap();
    assert_eq!(out["warnings"][0]["code"], "admin_code_unverified", "{out}");
    let err = map_json(&adapter, "m", r#"{"w": "05977", "on": "06/15/2025"}"#).unwrap_err();
    assert_eq!(code_of(&err), "reference.bad_date", "{err}");
    // An explicit format still narrows.
    let strict = adapter_from(&yaml("          date_format: \"%Y-%m-%d\"\n")).unwrap();
    let err = map_json(&strict, "m", r#"{"w": "05977", "on": "01/08/2025"}"#).unwrap_err();
    assert_eq!(code_of(&err), "reference.bad_date", "{err}");
}
