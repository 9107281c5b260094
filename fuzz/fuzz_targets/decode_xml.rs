//! The XML decoder on any input: no panic; where the whole tree decodes, `check` agrees.
#![no_main]

use lgsp_mapping::decode::{Format, Limits, check, decode_xml};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    let tree = decode_xml(data, &limits);
    let checked = check(Format::Xml, data, &limits);
    assert_eq!(tree.is_ok(), checked.is_ok(), "decode and check disagree");
});
