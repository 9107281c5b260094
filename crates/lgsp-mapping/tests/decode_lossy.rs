//! What the tree does NOT preserve. Each test asserts the loss, so that a change in these
//! rules is a deliberate one (and `docs/decoding.md` is updated with it).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use lgsp_mapping::decode::{Limits, decode_json, decode_xml};
use serde_json::{Value, json};

fn xml(body: &str) -> Value {
    decode_xml(body.as_bytes(), &Limits::default()).unwrap()
}

#[test]
fn loses_order_across_different_names() {
    // <a/><b/><a/>: the second <a> joins the first, before <b>.
    let v = xml("<r><a>1</a><b>2</b><a>3</a></r>");
    assert_eq!(v, json!({"r": {"a": ["1", "3"], "b": "2"}}));
    let keys: Vec<&String> = v["r"].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["a", "b"]);
}

#[test]
fn loses_mixed_content_positions() {
    // Text around child elements is concatenated into one #text.
    let v = xml("<p>Hello <b>big</b> world<i>!</i>.</p>");
    assert_eq!(
        v,
        json!({"p": {"b": "big", "i": "!", "#text": "Hello  world."}})
    );
    // Once an element has children, whitespace-only pieces of text are layout and dropped.
    let v = xml("<p>\n  <b/>\n  tail\n  <i/> &lt; </p>");
    assert_eq!(
        v,
        json!({"p": {"b": "", "i": "", "#text": "\n  tail\n  <"}})
    );
}

#[test]
fn loses_comments() {
    let v = xml("<r><!-- approved by the director --><a>1</a></r>");
    assert_eq!(v, json!({"r": {"a": "1"}}));
    assert!(!v.to_string().contains("director"));
}

#[test]
fn loses_processing_instructions() {
    let v = xml("<?xml-stylesheet href=\"invoice.xsl\"?><r><?render mode=\"fast\"?><a>1</a></r>");
    assert_eq!(v, json!({"r": {"a": "1"}}));
    assert!(!v.to_string().contains("xsl"));
}

#[test]
fn loses_namespace_uris() {
    // Two prefixes bound to different URIs, same local name: one key, one array.
    let v = xml(
        r#"<r xmlns:a="urn:one" xmlns:b="urn:two" a:id="1" b:id="2"><a:x>1</a:x><b:x>2</b:x></r>"#,
    );
    assert_eq!(v, json!({"r": {"@id": ["1", "2"], "x": ["1", "2"]}}));
    assert!(!v.to_string().contains("urn:"));
}

#[test]
fn loses_single_versus_list_distinction() {
    // One child is a value, several are an array: the schema's "list" is not visible.
    let one = xml("<r><i>1</i></r>");
    let two = xml("<r><i>1</i><i>2</i></r>");
    assert!(one["r"]["i"].is_string());
    assert!(two["r"]["i"].is_array());
}

#[test]
fn loses_empty_versus_absent_text_distinction_for_leaves() {
    // <a/>, <a></a> and <a><!-- x --></a> are all "".
    let v = xml("<r><a/><b></b><c><!-- x --></c></r>");
    assert_eq!(v, json!({"r": {"a": "", "b": "", "c": ""}}));
}

#[test]
fn loses_whitespace_between_child_elements_and_attribute_layout() {
    let v = xml("<r\n  a = 'x\n y'>\n  <c>1</c>\n</r>");
    assert_eq!(v, json!({"r": {"@a": "x  y", "c": "1"}}));
}

#[test]
fn loses_carriage_returns_in_xml_text() {
    // XML 1.0 line-end normalisation: CRLF and CR become LF.
    assert_eq!(xml("<r>a\r\nb</r>"), json!({"r": "a\nb"}));
}

#[test]
fn loses_unicode_normalisation_form() {
    let nfd = "Nguye\u{0302}\u{0303}n";
    let v = xml(&format!("<r>{nfd}</r>"));
    assert_ne!(v["r"], json!(nfd));
    let v = decode_json(format!("\"{nfd}\"").as_bytes(), &Limits::default()).unwrap();
    assert_ne!(v, json!(nfd));
}

#[test]
fn loses_json_exponent_spelling() {
    // Mantissa and exponent digits are kept; the marker becomes `e` with an explicit sign.
    let v = decode_json(b"[1E5, 2e5, 3.10E-2]", &Limits::default()).unwrap();
    assert_eq!(v.to_string(), "[1e+5,2e+5,3.10e-2]");
}

#[test]
fn loses_json_escapes() {
    // "\u0041" and "A" are the same string once decoded.
    let v = decode_json(br#"["\u0041", "\/"]"#, &Limits::default()).unwrap();
    assert_eq!(v, json!(["A", "/"]));
}
