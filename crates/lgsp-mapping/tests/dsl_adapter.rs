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

/// A content type that names the other format is refused as such (it was a JSON syntax
/// error at line 1 before); a content type that agrees, or none, maps.
#[test]
fn a_content_type_that_lies_about_the_format_is_refused_as_such() {
    let (adapter, dir) = bizreg();
    let xml = std::fs::read(dir.join("samples/enterprise-registered.xml")).unwrap();
    let json = std::fs::read(dir.join("samples/enterprise-registered.json")).unwrap();
    let with = |ct: Option<&str>| Envelope {
        content_type: ct.map(str::to_owned),
        ..envelope("bizreg.enterprise.registered")
    };
    for (body, lie) in [
        (&xml, "application/json"),
        (&json, "text/xml; charset=utf-8"),
    ] {
        let err = adapter
            .map_message(&with(Some(lie)), body, None, &Limits::default())
            .unwrap_err();
        let MapError::Decode(d) = &err else {
            panic!("not a decode error: {err}")
        };
        assert_eq!(
            (d.kind().as_str(), d.code()),
            ("decode", "decode.content_type")
        );
        assert!(
            err.to_string()
                .contains(&format!("content type {lie:?} says"))
                && err.to_string().contains("fix the content type"),
            "{err}"
        );
    }
    for (body, ct) in [
        (&xml, Some("application/xml")),
        (&json, Some("application/json")),
        (&xml, None),
        (&xml, Some("text/plain")),
    ] {
        let out = adapter
            .map_message(&with(ct), body, None, &Limits::default())
            .unwrap_or_else(|e| panic!("{ct:?}: {e}"));
        assert_eq!(out.len(), 1);
    }
    // A format the caller gives (lgsp map --format) is not second-guessed.
    let err = adapter.map_message(
        &with(Some("application/json")),
        &xml,
        Some(Format::Xml),
        &Limits::default(),
    );
    assert!(err.is_ok(), "{err:?}");
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

fn map_xml(
    adapter: &Adapter,
    mapping: &str,
    body: &str,
) -> Result<Vec<serde_json::Value>, MapError> {
    adapter
        .map_with(
            mapping,
            &Envelope::default(),
            body.as_bytes(),
            None,
            &Limits::default(),
        )
        .map(|out| out.into_iter().map(|m| m.value).collect())
}

#[test]
fn path_alternatives_take_the_first_that_yields_a_value() {
    let adapter = adapter_from(
        "mappings:\n  m:\n    fields:\n      tax_code: { path: [$.HoSo.MaSoThue, $.HoSo.@MaSoThue, $.HoSo.ma_so_thue], required: true }\n      name: { any_of: [$.HoSo.TenDN, $.HoSo.@TenDN] }\n      status: { path: [$.HoSo.TrangThai, $.HoSo.@TrangThai], default: active }\n",
    )
    .unwrap();
    // A child element, an attribute, a snake_case key: all read.
    let element = map_xml(
        &adapter,
        "m",
        "<HoSo><MaSoThue>0100233488</MaSoThue><TenDN>A</TenDN></HoSo>",
    )
    .unwrap();
    assert_eq!(element[0]["tax_code"], "0100233488");
    assert_eq!(element[0]["name"], "A");
    assert_eq!(element[0]["status"], "active");
    let attribute = map_xml(
        &adapter,
        "m",
        r#"<HoSo MaSoThue="0100233488" TenDN="B" TrangThai="x"/>"#,
    )
    .unwrap();
    assert_eq!(attribute[0]["tax_code"], "0100233488");
    assert_eq!(attribute[0]["name"], "B");
    assert_eq!(attribute[0]["status"], "x");
    let json = map_json(&adapter, "m", r#"{"HoSo": {"ma_so_thue": "0100233488"}}"#).unwrap();
    assert_eq!(json["tax_code"], "0100233488");
    assert!(json.get("name").is_none(), "{json}");
    // The first alternative wins when several yield; an empty one does not count.
    let both = map_xml(
        &adapter,
        "m",
        r#"<HoSo MaSoThue="2"><MaSoThue>1</MaSoThue></HoSo>"#,
    )
    .unwrap();
    assert_eq!(both[0]["tax_code"], "1");
    let empty = map_xml(
        &adapter,
        "m",
        r#"<HoSo MaSoThue="2"><MaSoThue> </MaSoThue></HoSo>"#,
    )
    .unwrap();
    assert_eq!(empty[0]["tax_code"], "2");
    // None yields: absent, so `required` fails and names every alternative.
    let err = map_json(&adapter, "m", r#"{"HoSo": {"other": 1}}"#).unwrap_err();
    assert_eq!(code_of(&err), "mapping.required", "{err}");
    assert!(
        err.to_string().contains(
            "required value missing at $.HoSo.MaSoThue, $.HoSo.@MaSoThue or $.HoSo.ma_so_thue"
        ),
        "{err}"
    );
}

#[test]
fn each_and_root_path_take_alternatives_too() {
    let adapter = adapter_from(
        "mappings:\n  batch:\n    each: [$.L.Item, $.L.item]\n    fields:\n      v: { path: [$.V, $.@v] }\n      on: { root_path: [$.L.Ngay, $.L.@ngay], transform: [date] }\n      tags: { each: [$.Tags.Tag, $.tags], transform: [upper] }\n",
    )
    .unwrap();
    let out = map_xml(
        &adapter,
        "batch",
        r#"<L ngay="20/11/2025"><Item v="a"><Tags><Tag>x</Tag><Tag>y</Tag></Tags></Item><Item><V>b</V></Item></L>"#,
    )
    .unwrap();
    assert_eq!(out.len(), 2);
    assert_eq!(out[0]["v"], "a");
    assert_eq!(out[0]["on"], "2025-11-20");
    assert_eq!(out[0]["tags"], serde_json::json!(["X", "Y"]));
    assert_eq!(out[1]["v"], "b");
    assert!(out[1].get("tags").is_none());
    let out = map_json(
        &adapter,
        "batch",
        r#"{"L": {"Ngay": "2025-11-21", "item": [{"V": "c", "tags": ["z"]}]}}"#,
    );
    let out = out.unwrap();
    assert_eq!(out["v"], "c");
    assert_eq!(out["on"], "2025-11-21");
    assert_eq!(out["tags"], serde_json::json!(["Z"]));
    // No alternative selects a node: no outputs, as for a single path.
    let none = map_xml(&adapter, "batch", "<L><Other/></L>").unwrap();
    assert!(none.is_empty());
}

#[test]
fn each_alternative_is_checked_with_its_own_key_path() {
    let err = adapter_from(
        "mappings:\n  x:\n    each: [$.a, \"$.b[\"]\n    fields:\n      tax_code: { path: [$.ok, \"$..[\", $.fine] }\n      r: { root_path: [\"$$\"] }\n      l: { each: [$.ok, \"$.[\"] }\n      a: { any_of: [$.ok, \"$.(\"] }\n      e: { path: [] }\n",
    )
    .unwrap_err();
    for key in [
        "mappings.x.each[1]: bad JSONPath `$.b[`",
        "mappings.x.fields.tax_code.path[1]: bad JSONPath `$..[`",
        "mappings.x.fields.r.root_path[0]: bad JSONPath `$$`",
        "mappings.x.fields.l.each[1]: bad JSONPath `$.[`",
        "mappings.x.fields.a.any_of[1]: bad JSONPath `$.(`",
        "mappings.x.fields.e.path: an empty list of paths selects nothing",
    ] {
        assert!(err.contains(key), "{key}\n{err}");
    }
    assert!(
        !err.contains("tax_code.path[0]") && !err.contains("tax_code.path[2]"),
        "{err}"
    );
    let err = adapter_from(
        "mappings:\n  x:\n    fields:\n      a: { path: $.a, any_of: [$.b] }\n      b: { required: true }\n",
    )
    .unwrap_err();
    assert!(
        err.contains(
            "mappings.x.fields.a: more than one source: give only one of path, any_of, root_path, \
             envelope, const, concat, fields or each"
        ),
        "{err}"
    );
    assert!(
        err.contains("mappings.x.fields.b: no source: give one of path, any_of, root_path"),
        "{err}"
    );
}

#[test]
fn a_projected_xml_decode_keeps_every_alternative() {
    let adapter = adapter_from(
        "mappings:\n  m:\n    fields:\n      a: { path: [$.R.A, $.R.@a] }\n      b: { path: $.R.B }\n",
    )
    .unwrap();
    let program = adapter.program("m").unwrap();
    assert!(
        program.projection().is_some(),
        "the mapping reads part of the payload"
    );
    assert_eq!(program.paths().len(), 3);
    let out = map_xml(&adapter, "m", r#"<R a="1"><B>2</B><C>3</C></R>"#).unwrap();
    assert_eq!(out[0]["a"], "1");
    assert_eq!(out[0]["b"], "2");
}

/// The list form of a message (a JSON array of documents, an XML root of any name
/// holding documents of one root) maps item by item with the single form's mapping;
/// every output is a batch child of the input.
#[test]
fn a_list_root_maps_each_item_as_a_batch_child() {
    let (adapter, dir) = bizreg();
    let limits = Limits::default();
    let ty = "bizreg.enterprise.registered";
    let json = std::fs::read_to_string(dir.join("samples/enterprise-registered.json")).unwrap();
    let one = adapter
        .map_message(&envelope(ty), json.as_bytes(), None, &limits)
        .unwrap();
    let list = format!("[{json}, {json}]");
    let out = adapter
        .map_message(&envelope(ty), list.as_bytes(), None, &limits)
        .unwrap();
    assert_eq!(out.len(), 2);
    for (i, m) in out.iter().enumerate() {
        assert_eq!(m.value, one[0].value, "item {i}");
        assert_eq!(
            m.message_id,
            lgsp_core::envelope::child_message_id("m-1", i)
        );
        assert_eq!(m.correlation_id.as_deref(), Some("m-1"));
        assert_eq!(m.index, Some(i));
    }

    let xml = std::fs::read_to_string(dir.join("samples/enterprise-registered.xml")).unwrap();
    let doc = xml.trim_start_matches('\u{feff}');
    let doc = doc.find("?>").map_or(doc, |at| &doc[at + 2..]);
    let single = adapter
        .map_message(&envelope(ty), xml.as_bytes(), None, &limits)
        .unwrap();
    let list = format!("<DanhSachHoSo SoLuong=\"2\">{doc}{doc}</DanhSachHoSo>");
    let out = adapter
        .map_message(&envelope(ty), list.as_bytes(), None, &limits)
        .unwrap();
    assert_eq!(out.len(), 2);
    assert!(out.iter().all(|m| m.value == single[0].value));
    assert_eq!(
        out[1].message_id,
        lgsp_core::envelope::child_message_id("m-1", 1)
    );

    // One bad item fails the input, and says which item.
    let bad = format!("[{json}, {}]", json.replace("\"0", "\"X"));
    let err = adapter
        .map_message(&envelope(ty), bad.as_bytes(), None, &limits)
        .unwrap_err();
    assert!(err.to_string().contains("list item 2"), "{err}");

    // The list's own leaf values (a count) stand beside the documents; a list of lists
    // is one list.
    for body in [
        format!("<DanhSach><SoLuong>1</SoLuong>{doc}</DanhSach>"),
        format!("<A><B Ngay=\"05/12/2025\">{doc}</B><B>{doc}{doc}</B></A>"),
        format!("{{\"danhSach\": [{json}], \"soLuong\": 1}}"),
    ] {
        let out = adapter.map_message(&envelope(ty), body.as_bytes(), None, &limits);
        let n = if body.contains("<B>") { 3 } else { 1 };
        assert!(
            out.as_ref()
                .is_ok_and(|o| o.len() == n && o.iter().all(|m| m.index.is_some())),
            "{body}: {out:?}"
        );
    }

    // An empty list, a list of something else, a list root holding documents of two
    // names, and a document without its root match no mapping (README: variants not
    // accepted).
    let with_count = format!("<DanhSach><Khac><X>1</X></Khac>{doc}</DanhSach>");
    let rootless = serde_json::to_string(&single[0].value["enterprise_code"]).unwrap();
    let rootless = format!("{{\"DoanhNghiep\": {{\"MaSoDN\": {rootless}}}}}");
    for body in [
        "[]",
        "[{\"other\": 1}]",
        "<DanhSach><Khac/></DanhSach>",
        with_count.as_str(),
        rootless.as_str(),
    ] {
        let err = adapter
            .map_message(&envelope(ty), body.as_bytes(), None, &limits)
            .unwrap_err();
        assert_eq!(err.code(), "dispatch.no_match", "{body}: {err}");
    }
}
