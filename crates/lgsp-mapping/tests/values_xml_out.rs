//! Tests of writing canonical JSON as XML: attributes, lists, escaping, namespaces,
//! names, forbidden characters, NFC and pretty-printing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use lgsp_mapping::xml_out::{XmlNamespace, XmlOutError, XmlOutOptions, to_xml};
use serde_json::{Value, json};

fn opts(root: &str) -> XmlOutOptions {
    XmlOutOptions {
        root: root.to_owned(),
        declaration: false,
        ..XmlOutOptions::default()
    }
}

fn ns(prefix: &str, uri: &str) -> XmlNamespace {
    XmlNamespace {
        prefix: prefix.to_owned(),
        uri: uri.to_owned(),
    }
}

fn xml(v: &Value, o: &XmlOutOptions) -> String {
    to_xml(v, o).unwrap()
}

fn err(v: &Value, o: &XmlOutOptions) -> XmlOutError {
    to_xml(v, o).unwrap_err()
}

#[test]
fn declaration_by_default() {
    let o = XmlOutOptions {
        root: "a".into(),
        ..XmlOutOptions::default()
    };
    assert_eq!(
        xml(&json!({"b": 1}), &o),
        r#"<?xml version="1.0" encoding="UTF-8"?><a><b>1</b></a>"#
    );
    let parsed: XmlOutOptions = serde_json::from_value(json!({"root": "a"})).unwrap();
    assert!(parsed.declaration);
    assert_eq!(parsed.indent, None);
    assert!(serde_json::from_value::<XmlOutOptions>(json!({"root": "a", "indnet": 2})).is_err());
    assert!(
        serde_json::from_value::<XmlOutOptions>(
            json!({"root": "a", "namespaces": [{"prefix": "", "uri": "u", "x": 1}]})
        )
        .is_err()
    );
}

#[test]
fn attributes_come_first_wherever_they_are() {
    let o = opts("hoaDon");
    let before: Value = serde_json::from_str(r#"{"@id": "K25", "@so": 7, "ten": "A"}"#).unwrap();
    let after: Value = serde_json::from_str(r#"{"ten": "A", "@id": "K25", "@so": 7}"#).unwrap();
    let between: Value = serde_json::from_str(r#"{"@id": "K25", "ten": "A", "@so": 7}"#).unwrap();
    let want = r#"<hoaDon id="K25" so="7"><ten>A</ten></hoaDon>"#;
    assert_eq!(xml(&before, &o), want);
    assert_eq!(xml(&after, &o), want);
    assert_eq!(xml(&between, &o), want);
}

#[test]
fn lists_become_repeated_elements() {
    let v: Value = serde_json::from_str(
        r#"{"line": [{"@stt": 1, "name": "Bút", "qty": "2.5"}, {"@stt": 2, "name": "Vở", "qty": 10}],
            "tag": ["a", "b", null, 3, true], "none": null, "empty": []}"#,
    )
    .unwrap();
    assert_eq!(
        xml(&v, &opts("lines")),
        concat!(
            r#"<lines><line stt="1"><name>Bút</name><qty>2.5</qty></line>"#,
            r#"<line stt="2"><name>Vở</name><qty>10</qty></line>"#,
            r#"<tag>a</tag><tag>b</tag><tag>3</tag><tag>true</tag></lines>"#
        )
    );
}

#[test]
fn nested_lists_of_scalars_in_objects() {
    let v = json!({"school": [{"grade": ["1", "2"]}, {"grade": ["3"]}]});
    assert_eq!(
        xml(&v, &opts("r")),
        "<r><school><grade>1</grade><grade>2</grade></school><school><grade>3</grade></school></r>"
    );
    let e = err(&json!({"a": [[1, 2]]}), &opts("r"));
    assert_eq!(e.code(), "xml_out.nested_list");
    assert!(e.to_string().contains("$.a[0]"), "{e}");
}

#[test]
fn numbers_keep_their_exact_text() {
    let v: Value =
        serde_json::from_str(r#"{"a": 7125432500000, "b": 0.10, "c": 12345678901234567890123}"#)
            .unwrap();
    assert_eq!(
        xml(&v, &opts("r")),
        "<r><a>7125432500000</a><b>0.10</b><c>12345678901234567890123</c></r>"
    );
}

#[test]
fn escaping_of_text_and_attributes() {
    let v = json!({"@note": "a<b & \"c\"\n\td'", "text": "x < y && z > \"w\"\r\n'q'"});
    assert_eq!(
        xml(&v, &opts("r")),
        concat!(
            r#"<r note="a&lt;b &amp; &quot;c&quot;&#10;&#9;d'">"#,
            "<text>x &lt; y &amp;&amp; z &gt; \"w\"&#13;\n'q'</text></r>"
        )
    );
    assert_eq!(
        xml(&json!({"t": "]]>"}), &opts("r")),
        "<r><t>]]&gt;</t></r>"
    );
}

#[test]
fn text_content_and_mixed_content() {
    let v = json!({"soTien": {"@dvt": "VND", "#text": 5000000}});
    assert_eq!(
        xml(&v, &opts("r")),
        r#"<r><soTien dvt="VND">5000000</soTien></r>"#
    );
    assert_eq!(xml(&json!("plain"), &opts("r")), "<r>plain</r>");
    assert_eq!(
        xml(&json!({"#text": "a", "b": 1}), &opts("r")),
        "<r>a<b>1</b></r>"
    );
    assert_eq!(
        err(&json!({"#text": {"x": 1}}), &opts("r")).code(),
        "xml_out.not_scalar"
    );
    assert_eq!(
        err(&json!({"@a": [1]}), &opts("r")).code(),
        "xml_out.not_scalar"
    );
    assert_eq!(err(&json!([1]), &opts("r")).code(), "xml_out.root_list");
}

#[test]
fn empty_content_is_self_closing() {
    let o = opts("r");
    assert_eq!(xml(&json!({}), &o), "<r/>");
    assert_eq!(xml(&Value::Null, &o), "<r/>");
    assert_eq!(
        xml(
            &json!({"a": {}, "b": "", "c": {"@x": "1"}, "d": {"e": null}}),
            &o
        ),
        r#"<r><a/><b/><c x="1"/><d/></r>"#
    );
}

#[test]
fn namespaces_and_prefixes() {
    let o = XmlOutOptions {
        root: "edXML:edXML".into(),
        namespaces: vec![
            ns("edXML", "http://www.mic.gov.vn/TBT/QCVN_102_2016"),
            ns("", "urn:default"),
        ],
        ..opts("")
    };
    let v = json!({"edXML:edXMLHeader": {"edXML:From": {"edXML:OrganId": "H37.05"}}});
    assert_eq!(
        xml(&v, &o),
        concat!(
            r#"<edXML:edXML xmlns:edXML="http://www.mic.gov.vn/TBT/QCVN_102_2016" xmlns="urn:default">"#,
            "<edXML:edXMLHeader><edXML:From><edXML:OrganId>H37.05</edXML:OrganId></edXML:From>",
            "</edXML:edXMLHeader></edXML:edXML>"
        )
    );
    // A default prefix is applied to every unprefixed element name, root included,
    // but not to attributes (unprefixed attributes belong to no namespace).
    let o = XmlOutOptions {
        root: "edXML".into(),
        namespaces: vec![ns("edXML", "urn:ed"), ns("x", "urn:x")],
        prefix: Some("edXML".into()),
        ..opts("")
    };
    let v = json!({"Header": {"@id": "1", "@x:k": "v", "From": "A", "x:Other": "B"}});
    assert_eq!(
        xml(&v, &o),
        concat!(
            r#"<edXML:edXML xmlns:edXML="urn:ed" xmlns:x="urn:x">"#,
            r#"<edXML:Header id="1" x:k="v"><edXML:From>A</edXML:From><x:Other>B</x:Other>"#,
            "</edXML:Header></edXML:edXML>"
        )
    );
    let o = XmlOutOptions {
        root: "root".into(),
        namespaces: vec![ns("", "urn:only-default")],
        ..opts("")
    };
    assert_eq!(
        xml(&json!({"a": 1}), &o),
        r#"<root xmlns="urn:only-default"><a>1</a></root>"#
    );
    assert_eq!(
        xml(&json!({"@xml:lang": "vi"}), &o),
        r#"<root xmlns="urn:only-default" xml:lang="vi"/>"#
    );
}

#[test]
fn undeclared_prefixes_and_bad_names_are_refused_with_path() {
    let o = opts("r");
    let e = err(&json!({"lines": [{"a": 1}, {"a": 2}, {"1abc": 3}]}), &o);
    assert_eq!(e.code(), "xml_out.name");
    assert!(e.to_string().contains("$.lines[2].1abc"), "{e}");
    let e = err(&json!({"p:x": 1}), &o);
    assert_eq!(e.code(), "xml_out.undeclared_prefix");
    assert!(e.to_string().contains("$.p:x"), "{e}");
    assert_eq!(
        err(&json!({"@p:x": 1}), &o).code(),
        "xml_out.undeclared_prefix"
    );
    for bad in [
        "", "a b", "a:b:c", ":a", "a:", "-a", ".a", "a/b", "#comment", "a&b", "@",
    ] {
        assert_eq!(
            err(&json!({ bad: 1 }), &o).code(),
            "xml_out.name",
            "{bad:?}"
        );
    }
    assert_eq!(err(&json!({"@": 1}), &o).code(), "xml_out.name");
    assert_eq!(err(&json!({"@1x": 1}), &o).code(), "xml_out.name");
    assert_eq!(
        err(&json!({"@xmlns": "u"}), &o).code(),
        "xml_out.xmlns_attribute"
    );
    assert_eq!(
        err(&json!({"@xmlns:a": "u"}), &o).code(),
        "xml_out.xmlns_attribute"
    );
    // Vietnamese letters and other name characters are fine.
    assert_eq!(
        xml(&json!({"tênĐơnVị": 1, "_a.b-c1": 2}), &o),
        "<r><tênĐơnVị>1</tênĐơnVị><_a.b-c1>2</_a.b-c1></r>"
    );
}

#[test]
fn options_are_validated() {
    let check = |o: XmlOutOptions| o.validate().map_err(|e| e.code());
    assert_eq!(check(opts("r")), Ok(()));
    assert_eq!(check(opts("")), Err("xml_out.options"));
    assert_eq!(check(opts("1r")), Err("xml_out.options"));
    assert_eq!(check(opts("p:r")), Err("xml_out.options"));
    assert_eq!(
        check(XmlOutOptions {
            prefix: Some("p".into()),
            ..opts("r")
        }),
        Err("xml_out.options")
    );
    assert_eq!(
        check(XmlOutOptions {
            namespaces: vec![ns("p", "u"), ns("p", "v")],
            ..opts("r")
        }),
        Err("xml_out.options")
    );
    assert_eq!(
        check(XmlOutOptions {
            namespaces: vec![ns("p", "")],
            ..opts("r")
        }),
        Err("xml_out.options")
    );
    assert_eq!(
        check(XmlOutOptions {
            namespaces: vec![ns("xmlns", "u")],
            ..opts("r")
        }),
        Err("xml_out.options")
    );
    assert_eq!(
        check(XmlOutOptions {
            namespaces: vec![ns("a b", "u")],
            ..opts("r")
        }),
        Err("xml_out.options")
    );
    assert_eq!(
        check(XmlOutOptions {
            namespaces: vec![ns("", "u\u{1}")],
            ..opts("r")
        }),
        Err("xml_out.options")
    );
    assert_eq!(
        check(XmlOutOptions {
            indent: Some(1000),
            ..opts("r")
        }),
        Err("xml_out.options")
    );
    assert_eq!(
        check(XmlOutOptions {
            namespaces: vec![ns("p", "u")],
            prefix: Some("p".into()),
            ..opts("p:r")
        }),
        Ok(())
    );
    assert_eq!(err(&json!({}), &opts("")).code(), "xml_out.options");
}

#[test]
fn control_characters_are_refused_with_path() {
    let o = opts("r");
    let e = err(&json!({"a": {"b": "x\u{1}y"}}), &o);
    assert_eq!(e.code(), "xml_out.invalid_char");
    assert!(e.to_string().contains("$.a.b"), "{e}");
    assert!(!e.to_string().contains("x\u{1}y"));
    let e = err(&json!({"@a": "\u{0}"}), &o);
    assert!(e.to_string().contains("$.@a"), "{e}");
    assert_eq!(
        err(&json!({"a": "\u{FFFF}"}), &o).code(),
        "xml_out.invalid_char"
    );
    assert_eq!(
        err(&json!({"a": ["ok", "\u{1b}"]}), &o).to_string(),
        "character not allowed in XML 1.0 (a control character) at $.a[1]"
    );
    // Tab, LF and CR are allowed.
    assert_eq!(xml(&json!({"a": "\t\n"}), &o), "<r><a>\t\n</a></r>");
}

#[test]
fn output_is_nfc() {
    let nfd = "Nguye\u{0302}\u{0303}n";
    let v = json!({ "@ten": nfd, "te\u{0302}n": nfd });
    assert_eq!(
        xml(&v, &opts("r")),
        r#"<r ten="Nguyễn"><tên>Nguyễn</tên></r>"#
    );
    let dup = json!({"@t\u{0065}\u{0302}": 1, "@t\u{00EA}": 2});
    assert_eq!(err(&dup, &opts("r")).code(), "xml_out.duplicate_attribute");
}

#[test]
fn pretty_printing() {
    let o = XmlOutOptions {
        root: "r".into(),
        indent: Some(2),
        ..XmlOutOptions::default()
    };
    let v = json!({"@v": "1", "a": {"b": "x", "c": {}}, "l": [1, 2], "m": {"#text": "t", "n": 1}});
    assert_eq!(
        xml(&v, &o),
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<r v=\"1\">\n  <a>\n    <b>x</b>\n    <c/>\n  </a>\n  <l>1</l>\n  <l>2</l>\n  <m>t<n>1</n></m>\n</r>"
    );
    assert_eq!(
        xml(&json!({}), &o),
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<r/>"
    );
}

#[test]
fn deep_and_large_values() {
    let mut v = json!("leaf");
    for _ in 0..300 {
        v = json!({ "a": v });
    }
    assert_eq!(err(&v, &opts("r")).code(), "xml_out.too_deep");
    let mut ok = json!("leaf");
    for _ in 0..100 {
        ok = json!({ "a": ok });
    }
    assert!(xml(&ok, &opts("r")).ends_with("</a></r>"));
    let many: Vec<Value> = (0..200_000)
        .map(|i| json!({"@i": i, "#text": "x&y"}))
        .collect();
    let out = xml(&json!({ "item": many }), &opts("r"));
    assert_eq!(out.matches("<item ").count(), 200_000);
    let big = "<&".repeat(1 << 19);
    assert_eq!(
        xml(&json!({ "t": big }), &opts("r")).len(),
        "<r><t></t></r>".len() + (1 << 19) * 9
    );
}
