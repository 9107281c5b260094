//! Projected decoding maps exactly like the whole tree: every golden case of every
//! shipped adapter, generated variants of the samples, and hostile documents (which must
//! fail with the same error either way).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use lgsp_mapping::decode::projection::{DOCUMENT, ProjectionBuilder};
use lgsp_mapping::decode::{DecodeError, Format, Limits, decode_xml, decode_xml_projected};
use lgsp_mapping::dsl::testing::test_envelope;
use lgsp_mapping::dsl::testing::{Outcome, case_input, load_cases, map_case, run_case};
use lgsp_mapping::dsl::{Adapter, Decoded, Decoding, MapError, Mapped};

#[path = "support/shipped.rs"]
mod shipped;
use shipped::adapters;

/// A result reduced to what a caller can observe: the outputs, or the error's kind,
/// code and message.
fn observed(r: &Result<(Vec<Mapped>, Decoded), MapError>) -> Result<Vec<Mapped>, String> {
    match r {
        Ok((outputs, _)) => Ok(outputs.clone()),
        Err(e) => Err(format!("{} [{}]: {e}", e.kind().as_str(), e.code())),
    }
}

#[test]
fn every_golden_case_maps_the_same_projected_and_whole() {
    let adapters = adapters();
    let limits = Limits::default();
    let (mut mapped_xml, mut projected, mut total) = (0, 0, 0);
    for adapter in adapters.by_name.values() {
        for case in load_cases(&adapter.dir).unwrap() {
            let name = format!("{}/{}", adapter.name, case.spec.name);
            let input = case_input(adapter, &case).unwrap();
            let auto = map_case(adapter, &case, &input, &limits, Decoding::Auto).unwrap();
            let tree = map_case(adapter, &case, &input, &limits, Decoding::Tree).unwrap();
            assert_eq!(observed(&auto), observed(&tree), "{name}");
            // And the golden file (or expected error) still holds.
            let outcome = run_case(adapter, &case, &limits, false);
            assert!(matches!(outcome, Outcome::Passed), "{name}: {outcome:?}");
            if let Ok((_, how)) = &tree {
                assert_eq!(*how, Decoded::Tree, "{name}");
            }
            total += 1;
            let format =
                lgsp_mapping::dsl::payload_format(input.format, &input.envelope, &input.body);
            // Which decoding a failed case used is not reported; an error is compared
            // all the same.
            if format == Format::Xml && auto.is_ok() {
                mapped_xml += 1;
                if matches!(auto, Ok((_, Decoded::Projected))) {
                    projected += 1;
                } else {
                    eprintln!("whole tree: {name}");
                }
            }
        }
    }
    eprintln!("{total} cases; {mapped_xml} map XML, {projected} of them from a projection");
    assert!(total >= 150, "only {total} cases found");
    assert!(mapped_xml >= 50, "only {mapped_xml} XML cases map");
    assert!(
        projected * 10 >= mapped_xml * 9,
        "only {projected} of {mapped_xml} XML cases were projected"
    );
}

/// One sample through both decodings, by message type.
fn same_both_ways(adapter: &Adapter, message_type: &str, body: &str) -> Vec<Mapped> {
    let mut envelope = test_envelope();
    envelope.message_type = Some(message_type.to_owned());
    let limits = Limits::default();
    let run =
        |d| adapter.map_message_using(&envelope, body.as_bytes(), Some(Format::Xml), &limits, d);
    let (auto, tree) = (run(Decoding::Auto), run(Decoding::Tree));
    assert_eq!(observed(&auto), observed(&tree), "{body}");
    if let Ok((_, how)) = &auto {
        assert_eq!(*how, Decoded::Projected);
    }
    auto.map(|(o, _)| o).unwrap_or_default()
}

fn sample(adapter: &str, file: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../adapters")
        .join(adapter)
        .join("samples")
        .join(file);
    std::fs::read_to_string(path).unwrap()
}

/// Variants a sender may produce, applied to a sample: each must map the same both ways
/// (most still map; some make the mapping refuse the message, alike).
fn variants(xml: &str, repeated: &str) -> Vec<String> {
    let open = format!("<{repeated}>");
    let close = format!("</{repeated}>");
    let mut out = Vec::new();
    // One item where there are usually many.
    if let (Some(first), Some(last)) = (xml.find(&open), xml.rfind(&close)) {
        let first_end = xml[first..].find(&close).map(|i| first + i + close.len());
        if let Some(first_end) = first_end {
            out.push(format!(
                "{}{}{}",
                &xml[..first_end],
                "",
                &xml[last + close.len()..]
            ));
        }
    }
    // Unknown elements and attributes everywhere, including inside kept elements.
    out.push(xml.replace(
        &close,
        &format!("<Extra a=\"1\"><Deep>x</Deep></Extra>{close}"),
    ));
    out.push(xml.replacen('>', " lgsp-extra=\"y\">", 3));
    out.push(xml.replace(&open, &format!("{open}<Unknown/>")));
    // Namespace prefixes on every element.
    let prefixed = prefix_all(xml);
    out.push(prefixed);
    // Decomposed diacritics.
    out.push(xml.replace('ễ', "e\u{302}\u{303}").replace('Ạ', "A\u{323}"));
    // Text beside children, a comment and a CDATA section.
    out.push(xml.replace(&open, &format!("{open}note<!-- c --><![CDATA[ d ]]>")));
    // An empty repeated element.
    out.push(xml.replacen(&open, &format!("<{repeated}/>{open}"), 1));
    out
}

/// `<a>` -> `<p:a>` for every element (the root declares the prefix).
fn prefix_all(xml: &str) -> String {
    let mut out = String::with_capacity(xml.len() + 256);
    let mut rest = xml;
    let mut first = true;
    while let Some(i) = rest.find('<') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        match after.chars().next() {
            Some('/') => {
                out.push_str("</p:");
                rest = &after[1..];
            }
            Some(c) if c.is_alphabetic() => {
                out.push_str("<p:");
                let name_end = after
                    .find(|c: char| c == '>' || c == '/' || c.is_whitespace())
                    .unwrap_or(after.len());
                out.push_str(&after[..name_end]);
                if first {
                    out.push_str(" xmlns:p=\"urn:lgsp:test\"");
                    first = false;
                }
                rest = &after[name_end..];
            }
            _ => {
                out.push('<');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[test]
fn generated_variants_map_the_same_projected_and_whole() {
    let adapters = adapters();
    let cases = [
        (
            "tax",
            "einvoice-vat-basic.xml",
            "tax.einvoice.issued",
            "HHDVu",
        ),
        (
            "tax",
            "einvoice-tdiep-public-buyer.xml",
            "tax.einvoice.issued",
            "HDon",
        ),
        (
            "tax",
            "einvoice-adjustment.xml",
            "tax.einvoice.adjusted",
            "HHDVu",
        ),
        (
            "bizreg",
            "enterprise-registered.xml",
            "bizreg.enterprise.registered",
            "Nganh",
        ),
        (
            "bizreg",
            "enterprise-changed.xml",
            "bizreg.enterprise.changed",
            "GiaTriMoi",
        ),
        ("emis", "school-list.xml", "emis.school.listed", "Truong"),
        (
            "finance",
            "budget-allocation-decision.xml",
            "finance.budget.allocated",
            "DonVi",
        ),
    ];
    let mut mapped = 0;
    for (adapter, file, message_type, repeated) in cases {
        let adapter = &adapters.by_name[adapter];
        let xml = sample(&adapter.name, file);
        assert!(
            !same_both_ways(adapter, message_type, &xml).is_empty(),
            "{file} does not map as {message_type}"
        );
        for v in variants(&xml, repeated) {
            if !same_both_ways(adapter, message_type, &v).is_empty() {
                mapped += 1;
            }
        }
    }
    assert!(mapped >= 20, "only {mapped} variants mapped");
}

/// A projection that keeps `R.Keep` only.
fn keep_only() -> lgsp_mapping::decode::projection::Projection {
    let mut b = ProjectionBuilder::new();
    let r = b.child(DOCUMENT, "R");
    let keep = b.child(r, "Keep");
    b.whole(keep);
    b.finish()
}

fn both(body: &[u8], limits: &Limits) -> (Result<String, String>, Result<String, String>) {
    let show = |r: Result<serde_json::Value, DecodeError>| match r {
        Ok(v) => Ok(v.to_string()),
        Err(e) => Err(format!("{} {} {:?} {e}", e.kind(), e.code(), e.position())),
    };
    (
        show(decode_xml(body, limits)),
        show(decode_xml_projected(body, limits, &keep_only())),
    )
}

/// The reader checks UTF-8 piece by piece as it reads; the whole body is checked only
/// when something is refused, so that an invalid byte is still reported before any other
/// fault, wherever either is, in every kind of markup, built or skipped.
#[test]
fn invalid_utf8_is_reported_before_any_other_fault_wherever_it_is() {
    let limits = Limits::default();
    let earlier_faults = [
        "",
        "<!DOCTYPE x>",
        "&eacute;",
        "\u{1}",
        "a&#1;b",
        "<a></b>",
        "a & b",
        "<S a=1/>",
        "<S a=\"1\" a=\"2\"/>",
        "<?xml version=\"1.0\"?>",
        "</R>",
    ];
    // Where the invalid byte goes: before it, after it.
    let places = [
        ("<Keep>1", "</Keep>"),
        ("<Skip>1", "</Skip>"),
        ("<Skip a=\"", "\"/>"),
        ("<Keep a=\"", "\"/>"),
        ("<Sk", "ip/>"),
        ("<!-- ", " -->"),
        ("<?pi ", "?>"),
        ("<Keep><![CDATA[", "]]></Keep>"),
        ("<Keep>&#65;", "</Keep>"),
    ];
    for fault in earlier_faults {
        for (before, after) in places {
            for invalid in [&[0xFFu8][..], &[0xC3, b'('], &[0xE1, 0xBB]] {
                let head = format!("<R>{fault}<Keep>1</Keep>{before}");
                let mut body = head.clone().into_bytes();
                body.extend_from_slice(invalid);
                body.extend_from_slice(format!("{after}</R>").as_bytes());
                let column = head.chars().count() + 1;
                for r in [
                    decode_xml(&body, &limits),
                    decode_xml_projected(&body, &limits, &keep_only()),
                ] {
                    let e = r.expect_err(&String::from_utf8_lossy(&body));
                    assert_eq!(e.code(), "decode.xml.utf8", "{e}: {head}");
                    assert_eq!(e.position(), Some((1, column)), "{e}: {head}");
                }
            }
        }
    }
    // After the root element, and in the declaration.
    for body in [
        &b"<R/>\n<!-- \xFF -->"[..],
        b"<R/> \xFF",
        b"<?xml version=\"1.0\" standalone=\"\xFF\"?><R/>",
    ] {
        for r in [
            decode_xml(body, &limits),
            decode_xml_projected(body, &limits, &keep_only()),
        ] {
            let e = r.expect_err(&String::from_utf8_lossy(body));
            assert_eq!(e.code(), "decode.xml.utf8", "{e}");
        }
    }
}

#[test]
fn hostile_documents_fail_the_same_when_the_bad_part_is_skipped() {
    let limits = Limits::default();
    let bad_parts = [
        "<!DOCTYPE x [<!ENTITY e \"e\">]>",
        "&eacute;",
        "<S a=\"&nbsp;\"/>",
        "a&#1;b",
        "<S a=\"&#x1B;\"/>",
        "&#99999999999;",
        "\u{1}",
        "\u{FFFF}",
        "<S a=\"\u{0}\"/>",
        "<a><b>x</a>",
        "<a>",
        "<a></b>",
        "a & b",
        "<S a=\"1\" a=\"2\"/>",
        "<![CDATA[x",
        "<?xml version=\"1.0\"?>",
        "<S a=1/>",
        "</R>",
        "<S><T>",
        "<S>&lt;&gt;&amp;&apos;&quot;&#65;&#x41;</S>",
    ];
    for bad in bad_parts {
        for body in [
            format!("<R><Keep>1</Keep><Skip>{bad}</Skip></R>"),
            format!("<R><Skip><Deeper x=\"1\">{bad}</Deeper></Skip><Keep>1</Keep></R>"),
            format!("<R>{bad}<Keep>1</Keep></R>"),
            format!("<R><Keep>{bad}</Keep></R>"),
        ] {
            let (tree, projected) = both(body.as_bytes(), &limits);
            assert_eq!(tree.clone().err(), projected.clone().err(), "{body}");
            assert_eq!(tree.is_ok(), projected.is_ok(), "{body}");
        }
    }
    // Depth counts skipped elements too.
    let deep = format!("<R>{}{}</R>", "<a>".repeat(200), "</a>".repeat(200));
    let (tree, projected) = both(deep.as_bytes(), &limits);
    assert!(tree.as_ref().is_err_and(|e| e.contains("limit.depth")));
    assert_eq!(tree, projected);
    let unclosed = "<R><Keep>1</Keep><Skip><Inner a=\"1\">";
    let (tree, projected) = both(unclosed.as_bytes(), &limits);
    assert!(
        tree.as_ref().is_err_and(|e| e.contains("<Inner>")),
        "{tree:?}"
    );
    assert_eq!(tree, projected);
    let tight = Limits {
        max_bytes: 20,
        ..Limits::default()
    };
    let (tree, projected) = both(b"<R><Keep>1</Keep><Skip/></R>", &tight);
    assert!(tree.as_ref().is_err_and(|e| e.contains("limit.size")));
    assert_eq!(tree, projected);
}

#[test]
fn a_projection_keeps_shape_attributes_and_text_of_what_it_reaches() {
    let limits = Limits::default();
    let body = br#"<R id="7">lead<Skip>x</Skip><Keep a="1">k<Sub>s</Sub></Keep><Keep>2</Keep><Only><Skip/></Only>
        <Only2><Skip/>t</Only2></R>"#;
    let mut b = ProjectionBuilder::new();
    let r = b.child(DOCUMENT, "R");
    let keep = b.child(r, "Keep");
    b.whole(keep);
    b.child(r, "Only");
    b.child(r, "Only2");
    let projected = decode_xml_projected(body, &limits, &b.finish()).unwrap();
    assert_eq!(
        projected,
        serde_json::json!({"R": {
            "@id": "7",
            "Keep": [{"@a": "1", "Sub": "s", "#text": "k"}, "2"],
            "Only": {},
            "Only2": {"#text": "t"},
            "#text": "lead"
        }})
    );
}
