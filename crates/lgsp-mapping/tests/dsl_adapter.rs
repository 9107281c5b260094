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
