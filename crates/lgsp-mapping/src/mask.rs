//! A payload with every value hidden, for readers who may see a message's shape but
//! not its data (the viewer role of the admin API): XML keeps its elements and
//! attribute names, JSON its members; text, attribute values, strings and numbers become
//! [`MASK`]. Namespace declarations stay (they name formats, not people). A payload that
//! does not parse gives `None`: show nothing of it.

use quick_xml::events::{BytesStart, BytesText, Event};
use quick_xml::{Reader, Writer, XmlVersion};
use serde_json::Value;

/// What a hidden value reads as.
pub const MASK: &str = "***";

/// `body` with its values hidden, as text; `None` when it is neither well-formed XML nor
/// JSON. `content_type` decides when given (`xml` or `json` in it), else the first
/// character.
pub fn mask_values(body: &[u8], content_type: Option<&str>) -> Option<String> {
    let ct = content_type.unwrap_or("").to_ascii_lowercase();
    let first = body.iter().find(|b| !b.is_ascii_whitespace()).copied();
    let xml = if ct.contains("xml") {
        true
    } else if ct.contains("json") {
        false
    } else {
        first == Some(b'<')
    };
    if xml { mask_xml(body) } else { mask_json(body) }
}

fn mask_json(body: &[u8]) -> Option<String> {
    fn walk(v: &mut Value) {
        match v {
            Value::String(_) | Value::Number(_) => *v = Value::String(MASK.into()),
            Value::Array(items) => items.iter_mut().for_each(walk),
            Value::Object(members) => members.values_mut().for_each(walk),
            Value::Bool(_) | Value::Null => {}
        }
    }
    let mut v: Value = serde_json::from_slice(body).ok()?;
    walk(&mut v);
    serde_json::to_string_pretty(&v).ok()
}

fn masked_start(e: &BytesStart<'_>) -> Option<BytesStart<'static>> {
    let name = e.name().0.to_owned();
    let mut out = BytesStart::new(name);
    for a in e.attributes() {
        let a = a.ok()?;
        let key = a.key.0;
        if key == "xmlns" || key.starts_with("xmlns:") {
            let value = a.normalized_value(XmlVersion::Implicit1_0).ok()?;
            out.push_attribute((key, value.as_ref()));
        } else {
            out.push_attribute((key, MASK));
        }
    }
    Some(out)
}

fn mask_xml(body: &[u8]) -> Option<String> {
    let mut reader = Reader::from_reader(body);
    reader.config_mut().check_end_names = true;
    let mut writer = Writer::new(Vec::with_capacity(body.len()));
    let mut buf = Vec::new();
    let mut depth = 0usize;
    loop {
        let event = reader.read_event_into(&mut buf).ok()?;
        let out = match event {
            Event::Eof => break,
            Event::Start(e) => {
                depth += 1;
                Event::Start(masked_start(&e)?)
            }
            Event::Empty(e) => Event::Empty(masked_start(&e)?),
            Event::End(e) => {
                depth = depth.checked_sub(1)?;
                Event::End(e.into_owned())
            }
            Event::Text(t) if t.bytes().all(|b| b.is_ascii_whitespace()) => {
                Event::Text(t.into_owned())
            }
            Event::Text(_) | Event::CData(_) | Event::GeneralRef(_) => {
                Event::Text(BytesText::new(MASK))
            }
            Event::Decl(d) => Event::Decl(d.into_owned()),
            // A comment may hold anything; a DOCTYPE or instruction is not data.
            Event::Comment(_) | Event::DocType(_) | Event::PI(_) => {
                buf.clear();
                continue;
            }
        };
        writer.write_event(out).ok()?;
        buf.clear();
    }
    if depth != 0 {
        return None;
    }
    String::from_utf8(writer.into_inner()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_keeps_its_shape_and_loses_every_value() {
        let body = "<?xml version=\"1.0\"?>\n<!-- Nguyễn -->\n<hs:HoSo xmlns:hs=\"urn:dkkd\" ma=\"0101234567\">\n  <HoTen>Nguyễn Văn An</HoTen>\n  <CCCD><![CDATA[001088012345]]></CCCD>\n  <DiaChi so=\"12\"/>\n  <Ten>A &amp; B</Ten>\n</hs:HoSo>";
        let m = mask_values(body.as_bytes(), Some("application/xml")).unwrap();
        for secret in [
            "Nguy",
            "0101234567",
            "001088012345",
            "12",
            "A &amp; B",
            "&amp;",
        ] {
            assert!(!m.contains(secret), "{secret} in {m}");
        }
        assert!(
            m.contains("<hs:HoSo xmlns:hs=\"urn:dkkd\" ma=\"***\">"),
            "{m}"
        );
        assert!(m.contains("<HoTen>***</HoTen>"), "{m}");
        assert!(m.contains("<DiaChi so=\"***\"/>"), "{m}");
    }

    #[test]
    fn json_keeps_its_members_and_loses_strings_and_numbers() {
        let body = r#"{"owner": {"full_name": "Trần Thị Bích", "id": 79123456789, "active": true, "nick": null}, "list": ["a", 1]}"#;
        let m = mask_values(body.as_bytes(), None).unwrap();
        let v: Value = serde_json::from_str(&m).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"owner": {"full_name": "***", "id": "***", "active": true, "nick": null}, "list": ["***", "***"]})
        );
    }

    #[test]
    fn what_does_not_parse_is_not_shown() {
        assert_eq!(mask_values(b"<a><b>x</a>", None), None);
        assert_eq!(mask_values(b"<a>unclosed", None), None);
        assert_eq!(mask_values(b"{\"a\": ", None), None);
        assert_eq!(mask_values(&[0xff, 0xfe, 0x00], None), None);
        assert_eq!(mask_values(b"plain text Nguyen", Some("text/plain")), None);
    }
}
