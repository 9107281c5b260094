//! The decoding rules, and refusal of hostile or malformed payloads.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::ErrorKind;
use std::net::TcpListener;
use std::time::{Duration, Instant};

use lgsp_mapping::decode::{
    DecodeError, Format, Limits, check, decode, decode_json, decode_xml, sniff,
};
use serde_json::{Value, json};

/// Decode, and check that [`check`] (what the gateway runs) agrees.
fn xml(body: &str) -> Value {
    let v = decode_xml(body.as_bytes(), &Limits::default())
        .unwrap_or_else(|e| panic!("decode failed: {e}"));
    check(Format::Xml, body.as_bytes(), &Limits::default())
        .unwrap_or_else(|e| panic!("check refused what decodes: {e}"));
    v
}

/// The decoder's error, which [`check`] gives too, word for word.
fn xml_err(body: impl AsRef<[u8]>) -> DecodeError {
    match decode_xml(body.as_ref(), &Limits::default()) {
        Ok(v) => panic!("expected an error, got {v}"),
        Err(e) => {
            let checked = check(Format::Xml, body.as_ref(), &Limits::default());
            assert_eq!(
                checked.map_err(|c| c.to_string()),
                Err(e.to_string()),
                "check and decode disagree"
            );
            e
        }
    }
}

fn jsn(body: &str) -> Value {
    decode_json(body.as_bytes(), &Limits::default())
        .unwrap_or_else(|e| panic!("decode failed: {e}"))
}

fn json_err(body: impl AsRef<[u8]>) -> DecodeError {
    match decode_json(body.as_ref(), &Limits::default()) {
        Ok(v) => panic!("expected an error, got {v}"),
        Err(e) => e,
    }
}

/// Every message follows the bus's style: lowercase start, no trailing period.
fn assert_style(e: &DecodeError) {
    let m = e.to_string();
    assert!(!m.ends_with('.'), "trailing period: {m}");
    let first = m.chars().next().unwrap();
    assert!(!first.is_uppercase(), "starts upper-case: {m}");
}

// ---------------------------------------------------------------- API

#[test]
fn content_types() {
    use Format::*;
    assert_eq!(Format::from_content_type("application/xml"), Some(Xml));
    assert_eq!(
        Format::from_content_type("text/xml; charset=utf-8"),
        Some(Xml)
    );
    assert_eq!(Format::from_content_type("application/soap+xml"), Some(Xml));
    assert_eq!(
        Format::from_content_type("Application/JSON;charset=UTF-8"),
        Some(Json)
    );
    assert_eq!(
        Format::from_content_type("application/problem+json"),
        Some(Json)
    );
    assert_eq!(Format::from_content_type("text/plain"), None);
    assert_eq!(Format::from_content_type("json"), None);
    assert_eq!(Format::from_content_type(""), None);
}

#[test]
fn sniffing() {
    assert_eq!(sniff(b"  \n<a/>"), Some(Format::Xml));
    assert_eq!(sniff(b"\xEF\xBB\xBF<a/>"), Some(Format::Xml));
    assert_eq!(sniff(b"\r\n{}"), Some(Format::Json));
    assert_eq!(sniff(b"\xEF\xBB\xBF [1]"), Some(Format::Json));
    assert_eq!(sniff(b"hello"), None);
    assert_eq!(sniff(b"   "), None);
    assert_eq!(sniff(b""), None);
}

#[test]
fn decode_dispatches_on_format() {
    let l = Limits::default();
    assert_eq!(
        decode(Format::Xml, b"<a>1</a>", &l).unwrap(),
        json!({"a": "1"})
    );
    assert_eq!(
        decode(Format::Json, b"{\"a\":\"1\"}", &l).unwrap(),
        json!({"a": "1"})
    );
    assert!(decode(Format::Json, b"<a>1</a>", &l).is_err());
}

#[test]
fn default_limits() {
    let l = Limits::default();
    assert_eq!(l.max_bytes, 8 * 1024 * 1024);
    assert_eq!(l.max_depth, 128);
}

// ---------------------------------------------------------------- XML tree rules

#[test]
fn xml_repeated_siblings_become_an_array_single_child_stays_single() {
    let v = xml("<L><Items><I>1</I><I>2</I><I>3</I></Items><One><I>x</I></One></L>");
    assert_eq!(
        v,
        json!({"L": {"Items": {"I": ["1", "2", "3"]}, "One": {"I": "x"}}})
    );
}

#[test]
fn xml_attributes_and_text() {
    let v = xml(r#"<R v="2.0"><M Id="m1">00B7</M><N a="1"/><T>  keep  me </T></R>"#);
    assert_eq!(
        v,
        json!({"R": {"@v": "2.0", "M": {"@Id": "m1", "#text": "00B7"}, "N": {"@a": "1"}, "T": "  keep  me "}})
    );
}

#[test]
fn xml_empty_elements_are_empty_strings() {
    let v = xml("<R><A/><B></B><C>\n  </C></R>");
    assert_eq!(v, json!({"R": {"A": "", "B": "", "C": "\n  "}}));
}

#[test]
fn xml_whitespace_between_children_is_ignored() {
    let v = xml("<R>\n  <A>1</A>\n  <B>2</B>\n</R>");
    assert_eq!(v, json!({"R": {"A": "1", "B": "2"}}));
}

#[test]
fn xml_leaves_are_strings_with_leading_zeros_kept() {
    let v = xml("<R><SHDon>0000457</SHDon><MaXa>06400</MaXa><N>1.10</N></R>");
    assert_eq!(v["R"]["SHDon"], json!("0000457"));
    assert_eq!(v["R"]["MaXa"], json!("06400"));
    assert_eq!(v["R"]["N"], json!("1.10"));
}

#[test]
fn xml_namespace_prefixes_and_declarations_dropped() {
    let v = xml(
        r#"<inv:HDon xmlns:inv="urn:x:inv" xmlns="urn:x:default" inv:Id="7"><inv:SHDon>125</inv:SHDon><Ten>A</Ten></inv:HDon>"#,
    );
    assert_eq!(v, json!({"HDon": {"@Id": "7", "SHDon": "125", "Ten": "A"}}));
}

#[test]
fn xml_cdata_is_text_and_joins_adjacent_text() {
    let v = xml("<R><S><![CDATA[a < b && c]]></S><T>x <![CDATA[<y>]]> &amp; z</T></R>");
    assert_eq!(v["R"]["S"], json!("a < b && c"));
    assert_eq!(v["R"]["T"], json!("x <y> & z"));
}

#[test]
fn xml_predefined_entities_and_char_refs() {
    let v = xml(r#"<R a="&lt;&#x41;&quot;">&lt;&gt;&amp;&apos;&quot; &#65;&#x1EC5;</R>"#);
    assert_eq!(v, json!({"R": {"@a": "<A\"", "#text": "<>&'\" Aễ"}}));
}

#[test]
fn xml_line_ends_and_attribute_whitespace_normalised_as_xml_requires() {
    let v = xml("<R a=\"x\ty\">1\r\n2\r3</R>");
    assert_eq!(v, json!({"R": {"@a": "x y", "#text": "1\n2\n3"}}));
}

#[test]
fn xml_comments_pis_and_declaration_skipped() {
    let v = xml(
        "<?xml version=\"1.0\" encoding=\"utf8\"?>\n<!-- c --><?pi x?><R><!-- c -->a<?pi y?>b</R>\n<!-- end -->",
    );
    assert_eq!(v, json!({"R": "ab"}));
}

#[test]
fn xml_utf8_bom_accepted() {
    let mut body = b"\xEF\xBB\xBF".to_vec();
    body.extend_from_slice("<?xml version=\"1.0\" encoding=\"UTF-8\"?><R>Lạng Sơn</R>".as_bytes());
    assert_eq!(
        decode_xml(&body, &Limits::default()).unwrap(),
        json!({"R": "Lạng Sơn"})
    );
}

#[test]
fn xml_nfd_input_becomes_nfc() {
    let nfd = "Nguye\u{0302}\u{0303}n"; // "Nguyễn", decomposed
    let nfc = "Nguy\u{1EC5}n";
    let body =
        format!("<R t=\"{nfd}\"><Te\u{0302}n>{nfd}</Te\u{0302}n><C><![CDATA[{nfd}]]></C></R>");
    let v = xml(&body);
    assert_eq!(v["R"]["@t"], json!(nfc));
    assert_eq!(v["R"]["T\u{00EA}n"], json!(nfc));
    assert_eq!(v["R"]["C"], json!(nfc));
    // A combining mark split from its base by a reference still composes.
    let v = xml("<R>Nguye&#x302;\u{0303}n</R>");
    assert_eq!(v["R"], json!(nfc));
}

// ---------------------------------------------------------------- XML refusals

#[test]
fn xml_utf16_refused() {
    let mut body = vec![0xFF, 0xFE];
    for unit in "<R>x</R>".encode_utf16() {
        body.extend_from_slice(&unit.to_le_bytes());
    }
    let e = xml_err(&body);
    assert_eq!(e.code(), "decode.xml.encoding");
    assert!(e.to_string().contains("UTF-16"), "{e}");
    assert!(
        e.to_string().contains("convert the document to UTF-8"),
        "{e}"
    );
    // Without a byte order mark too.
    let body: Vec<u8> = "<R/>".encode_utf16().flat_map(u16::to_be_bytes).collect();
    assert_eq!(xml_err(&body).code(), "decode.xml.encoding");
    assert_style(&e);
}

#[test]
fn xml_declared_non_utf8_encoding_refused() {
    let e = xml_err("<?xml version=\"1.0\" encoding=\"windows-1258\"?><R>abc</R>");
    assert_eq!(e.code(), "decode.xml.encoding");
    assert_eq!(e.kind().as_str(), "decode");
    assert!(e.to_string().contains("\"windows-1258\""), "{e}");
    assert!(e.to_string().contains("UTF-8"), "{e}");
    // Latin bytes that are not UTF-8: the declared encoding is what is reported.
    let mut body = b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><R>".to_vec();
    body.extend_from_slice(&[0xE9, b'<', b'/', b'R', b'>']);
    let e = xml_err(&body);
    assert_eq!(e.code(), "decode.xml.encoding");
    assert!(e.to_string().contains("ISO-8859-1"), "{e}");
    // UTF-8 spelled either way is fine.
    xml("<?xml version=\"1.0\" encoding=\"UtF-8\"?><R/>");
}

#[test]
fn xml_invalid_utf8_refused_with_position() {
    let mut body = b"<R>\n  <A>ab".to_vec();
    body.push(0xFF);
    body.extend_from_slice(b"</A>\n</R>");
    let e = xml_err(&body);
    assert_eq!(e.code(), "decode.xml.utf8");
    assert_eq!(e.position(), Some((2, 8)));
    assert!(e.to_string().contains("line 2, column 8"), "{e}");
    assert_style(&e);
}

#[test]
fn xml_billion_laughs_refused() {
    let body = r#"<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol9 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
]>
<lolz>&lol9;</lolz>"#;
    let e = xml_err(body);
    assert_eq!(e.code(), "decode.xml.doctype");
    assert_eq!(e.position(), Some((2, 1)));
    assert_eq!(
        e.to_string(),
        "xml DOCTYPE at line 2, column 1 refused: DTDs and entity declarations are not accepted, send the document without a DOCTYPE"
    );
}

#[test]
fn xml_xxe_refused_and_nothing_fetched() {
    let secret = format!("lgsp-secret-{}", std::process::id());
    let path = std::env::temp_dir().join(format!("lgsp-xxe-{}.txt", std::process::id()));
    std::fs::write(&path, &secret).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();

    let file_doc = format!(
        "<?xml version=\"1.0\"?><!DOCTYPE R [<!ENTITY xxe SYSTEM \"file://{}\">]><R>&xxe;</R>",
        path.display()
    );
    let net_doc = format!("<!DOCTYPE R SYSTEM \"http://127.0.0.1:{port}/evil.dtd\"><R>&xxe;</R>");
    let param_doc =
        format!("<!DOCTYPE R [<!ENTITY % p SYSTEM \"http://127.0.0.1:{port}/p\"> %p;]><R/>");
    for doc in [&file_doc, &net_doc, &param_doc] {
        let e = xml_err(doc);
        assert_eq!(e.code(), "decode.xml.doctype", "{doc}");
        assert!(!format!("{e} {e:?}").contains(&secret));
    }
    std::thread::sleep(Duration::from_millis(50));
    match listener.accept() {
        Err(err) if err.kind() == ErrorKind::WouldBlock => {}
        Err(err) => panic!("unexpected listener error {err}"),
        Ok((_, from)) => panic!("the decoder connected to the network (from {from})"),
    }
    std::fs::remove_file(&path).ok();
}

#[test]
fn xml_undefined_entity_refused() {
    let e = xml_err("<R>\n  <A>caf&eacute;</A>\n</R>");
    assert_eq!(e.code(), "decode.xml.entity");
    assert_eq!(e.position(), Some((2, 9)));
    assert!(e.to_string().contains("&eacute;"), "{e}");
    assert_style(&e);
    // In an attribute too.
    assert_eq!(xml_err("<R a=\"&nbsp;\"/>").code(), "decode.xml.entity");
}

#[test]
fn xml_forbidden_char_refs_refused() {
    let e = xml_err("<R>a&#1;b</R>");
    assert_eq!(e.code(), "decode.xml.char");
    assert!(e.to_string().contains("U+0001"), "{e}");
    assert_eq!(e.position(), Some((1, 5)));
    assert_eq!(xml_err("<R>&#x0;</R>").code(), "decode.xml.char");
    assert_eq!(xml_err("<R>&#xFFFE;</R>").code(), "decode.xml.char");
    assert_eq!(xml_err("<R>&#xD800;</R>").code(), "decode.xml.char");
    assert_eq!(xml_err("<R a=\"&#x1B;\"/>").code(), "decode.xml.char");
    assert_eq!(xml_err("<R>&#99999999999;</R>").kind().as_str(), "decode");
}

#[test]
fn xml_raw_control_chars_refused() {
    let e = xml_err("<R>\n a\u{1}b</R>");
    assert_eq!(e.code(), "decode.xml.char");
    assert_eq!(e.position(), Some((2, 3)));
    assert_eq!(xml_err("<R>\u{FFFF}</R>").code(), "decode.xml.char");
    assert_eq!(xml_err("<R a=\"\u{0}\"/>").code(), "decode.xml.char");
    // Tab, LF, CR are fine.
    xml("<R>\t\n\r</R>");
    // Wherever they are in the body, including across 64-byte boundaries.
    for pad in 55..140 {
        let body = format!("<R>{}\u{FFFF}</R>", "a".repeat(pad));
        let e = xml_err(&body);
        assert_eq!(
            (e.code(), e.position()),
            ("decode.xml.char", Some((1, pad + 4)))
        );
        let body = format!("<R>{}\u{7}</R>", "a".repeat(pad));
        assert_eq!(xml_err(&body).position(), Some((1, pad + 4)));
    }
}

#[test]
fn xml_malformed_refused_with_position() {
    let e = xml_err("<r>\n  <a>\n    <b>x</a>\n</r>");
    assert_eq!(e.code(), "decode.xml.syntax");
    assert!(
        e.to_string()
            .contains("closing tag </a> does not match <b>"),
        "{e}"
    );
    assert_eq!(e.position().unwrap().0, 3, "{e}");
    assert_style(&e);

    for (body, what) in [
        ("<r><a></r>", "does not match"),
        ("<r>\n<a>", "not closed"),
        ("<r/><s/>", "second root"),
        ("<r/>tail", "after the root"),
        ("lead<r/>", "before the root"),
        ("</r>", "no matching opening tag"),
        ("<r a=\"1\" a=\"2\"/>", "<r>"),
        ("<r>a & b</r>", "&amp;"),
        ("<!-- only a comment -->", "no root element"),
        ("<r><![CDATA[x</r>", "CDATA not closed"),
        ("<r/><?xml version=\"1.0\"?>", "declaration"),
    ] {
        let e = xml_err(body);
        assert_eq!(e.code(), "decode.xml.syntax", "{body}: {e}");
        assert!(e.position().is_some());
        assert!(e.to_string().contains(what), "{body}: {e}");
        assert_style(&e);
    }
}

#[test]
fn xml_unclosed_root_points_at_its_start_tag() {
    let e = xml_err("<r>\n  <a>1</a>\n  <b>");
    assert_eq!(e.position(), Some((3, 3)));
    assert!(e.to_string().contains("<b>"), "{e}");
}

#[test]
fn xml_empty_body_refused() {
    for body in ["", "  \n\t", "\u{FEFF}"] {
        let e = xml_err(body);
        assert_eq!(e.code(), "decode.xml.empty", "{body:?}");
        assert_eq!(e.to_string(), "empty body: expected an XML document");
    }
}

#[test]
fn xml_deep_nesting_refused_fast() {
    let depth = 10_000;
    let body = format!("{}{}", "<a>".repeat(depth), "</a>".repeat(depth));
    let started = Instant::now();
    let e = xml_err(&body);
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(e.kind().as_str(), "limit");
    assert_eq!(e.code(), "limit.depth");
    // The 129th element is refused, at its own position.
    assert_eq!(e.position(), Some((1, 128 * 3 + 1)));
    assert_style(&e);
    // Exactly at the limit is fine.
    let ok = format!("{}{}", "<a>".repeat(128), "</a>".repeat(128));
    xml(&ok);
    // Unclosed deep input is also a limit error, not a syntax error.
    assert_eq!(xml_err("<a>".repeat(depth)).code(), "limit.depth");
    let tight = Limits {
        max_depth: 2,
        ..Limits::default()
    };
    assert!(decode_xml(b"<a><b/></a>", &tight).is_ok());
    assert_eq!(
        decode_xml(b"<a><b><c/></b></a>", &tight)
            .unwrap_err()
            .code(),
        "limit.depth"
    );
}

#[test]
fn xml_size_limit() {
    let small = Limits {
        max_bytes: 16,
        ..Limits::default()
    };
    assert!(decode_xml(b"<r>0123456789</r>", &small).is_err());
    let e = decode_xml(b"<r>0123456789</r>", &small).unwrap_err();
    assert_eq!((e.kind().as_str(), e.code()), ("limit", "limit.size"));
    assert!(e.to_string().contains("17 bytes"), "{e}");
    assert!(decode_xml(b"<r>012345678</r>", &small).is_ok());
    // Checked before anything else: even garbage over the limit is a limit error.
    assert_eq!(
        decode_xml(&[0xFF; 17], &small).unwrap_err().code(),
        "limit.size"
    );
}

// ---------------------------------------------------------------- JSON

#[test]
fn json_numbers_kept_exactly() {
    let v = jsn(
        r#"{"big": 12345678901234567890123456, "d": 1.10, "e": 1E+3, "huge": 1e999, "n": -0.0, "z": 0}"#,
    );
    assert_eq!(v["big"].to_string(), "12345678901234567890123456");
    assert_eq!(v["d"].to_string(), "1.10");
    // The exponent is written `e` with an explicit sign: the one detail of the text not kept.
    assert_eq!(v["e"].to_string(), "1e+3");
    assert_eq!(v["huge"].to_string(), "1e+999");
    assert_eq!(v["n"].to_string(), "-0.0");
    assert_eq!(v["z"], json!(0));
    assert!(v["big"].is_number());
}

#[test]
fn json_values_and_order_kept() {
    let v = jsn(r#"{"z": [true, false, null, "0000457"], "a": {"b": []}, "m": {}}"#);
    assert_eq!(
        v,
        json!({"z": [true, false, null, "0000457"], "a": {"b": []}, "m": {}})
    );
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["z", "a", "m"]);
    assert_eq!(jsn("\"x\""), json!("x"));
    assert_eq!(jsn(" 42 "), json!(42));
}

#[test]
fn json_bom_accepted() {
    let v = decode_json(b"\xEF\xBB\xBF{\"a\": 1}", &Limits::default()).unwrap();
    assert_eq!(v, json!({"a": 1}));
}

#[test]
fn json_nfd_strings_and_keys_become_nfc() {
    let v = jsn("{\"Te\u{0302}n\": \"Nguye\u{0302}\u{0303}n\", \"l\": [\"Nguye\\u0302\\u0303n\"]}");
    assert_eq!(
        v,
        json!({"T\u{00EA}n": "Nguy\u{1EC5}n", "l": ["Nguy\u{1EC5}n"]})
    );
}

#[test]
fn json_duplicate_keys_refused() {
    let e = json_err("{\n  \"mst\": \"1\",\n  \"mst\": \"2\"\n}");
    assert_eq!(e.code(), "decode.json.duplicate_key");
    assert!(e.to_string().contains("\"mst\""), "{e}");
    assert_eq!(e.position().unwrap().0, 3);
    assert_style(&e);
    // Nested, and keys equal only after NFC.
    assert_eq!(
        json_err(r#"[{"a": {"b": 1, "b": 1}}]"#).code(),
        "decode.json.duplicate_key"
    );
    assert_eq!(
        json_err("{\"T\u{00EA}n\": 1, \"Te\u{0302}n\": 2}").code(),
        "decode.json.duplicate_key"
    );
    // The same key in sibling objects is fine.
    jsn(r#"[{"a": 1}, {"a": 2}]"#);
}

#[test]
fn json_trailing_garbage_refused() {
    let e = json_err("{\"a\": 1}\n x");
    assert_eq!(e.code(), "decode.json.trailing");
    assert_eq!(e.position(), Some((2, 2)));
    assert_style(&e);
    assert_eq!(json_err("{} {}").code(), "decode.json.trailing");
    assert_eq!(json_err("1 2").code(), "decode.json.trailing");
}

#[test]
fn json_nan_and_infinity_refused() {
    for body in [
        "NaN",
        "{\"a\": NaN}",
        "[Infinity]",
        "[-Infinity]",
        "[+1]",
        "[.5]",
    ] {
        let e = json_err(body);
        assert_eq!(e.code(), "decode.json.syntax", "{body}: {e}");
        assert!(e.position().is_some());
        assert_style(&e);
    }
}

#[test]
fn json_syntax_errors_have_positions() {
    let e = json_err("{\n  \"a\": 1,\n  \"b\": }");
    assert_eq!(e.code(), "decode.json.syntax");
    assert_eq!(e.position(), Some((3, 8)));
    assert!(
        e.to_string()
            .starts_with("json syntax error at line 3, column 8: "),
        "{e}"
    );
    // Columns count characters, not bytes.
    let e = json_err("{\"tên\": \"Lạng Sơn\" x}");
    assert_eq!(e.position(), Some((1, 20)), "{e}");
}

#[test]
fn json_empty_body_refused() {
    for body in ["", "  \r\n", "\u{FEFF}"] {
        let e = json_err(body);
        assert_eq!(e.code(), "decode.json.empty");
        assert_eq!(e.to_string(), "empty body: expected a JSON document");
    }
}

#[test]
fn json_invalid_utf8_refused_with_position() {
    let e = json_err(b"{\n \"a\": \"x\xC3\x28\"}");
    assert_eq!(e.code(), "decode.json.utf8");
    assert_eq!(e.position(), Some((2, 9)));
    assert_style(&e);
}

#[test]
fn json_deep_nesting_refused_fast() {
    let body = "[".repeat(100_000);
    let started = Instant::now();
    let e = json_err(&body);
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!((e.kind().as_str(), e.code()), ("limit", "limit.depth"));
    assert_style(&e);
    let body = "{\"a\":".repeat(100_000);
    assert_eq!(json_err(&body).code(), "limit.depth");
    // Our own limit, below the parser's.
    let tight = Limits {
        max_depth: 3,
        ..Limits::default()
    };
    assert!(decode_json(b"[[[1, {}]]]", &tight).is_err());
    assert!(decode_json(b"[[[1, 2]]]", &tight).is_ok());
    let e = decode_json(b"{\"a\": {\"b\": {\"c\": {}}}}", &tight).unwrap_err();
    assert_eq!(e.code(), "limit.depth");
    assert!(e.to_string().contains("deeper than 3 levels"), "{e}");
    // Numbers at the deepest level do not count as a level.
    assert!(decode_json(b"[[[1.5, 2]]]", &tight).is_ok());
}

#[test]
fn json_size_limit() {
    let small = Limits {
        max_bytes: 8,
        ..Limits::default()
    };
    let e = decode_json(b"[1,2,3,4]", &small).unwrap_err();
    assert_eq!((e.kind().as_str(), e.code()), ("limit", "limit.size"));
    assert!(decode_json(b"[1,2,34]", &small).is_ok());
}

#[test]
fn every_code_is_a_limit_or_decode_code() {
    let errors = [
        xml_err(""),
        xml_err("<a>"),
        xml_err("<!DOCTYPE a><a/>"),
        xml_err("<a>&x;</a>"),
        xml_err("<a>&#1;</a>"),
        xml_err(b"<a>\xFF</a>"),
        xml_err("<?xml version=\"1.0\" encoding=\"latin1\"?><a/>"),
        json_err(""),
        json_err("[1,]"),
        json_err("{\"a\":1,\"a\":2}"),
        json_err("1 1"),
        json_err(b"\"\xFF\""),
    ];
    for e in errors {
        assert!(
            e.code().starts_with(e.kind().as_str()),
            "{} / {}",
            e.kind(),
            e.code()
        );
        assert_style(&e);
    }
}
