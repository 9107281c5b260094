//! The JSON decoder on any input: no panic, and nothing it accepts is refused by
//! serde_json (lgsp is the stricter reader: it refuses duplicate keys, which serde_json
//! lets the last one win); and the bus's JSON writer writes what it accepted byte for
//! byte as serde_json does.
#![no_main]

use lgsp_mapping::decode::{Limits, decode_json};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    // Below serde_json's own recursion limit (128), so depth alone never differs.
    let limits = Limits {
        max_depth: 64,
        ..Limits::default()
    };
    if let Ok(tree) = decode_json(data, &limits) {
        assert_eq!(
            lgsp_mapping::json_out::to_vec(&tree),
            serde_json::to_vec(&tree).unwrap_or_default(),
            "json_out and serde_json write this tree differently"
        );
        let body = data.strip_prefix(b"\xef\xbb\xbf").unwrap_or(data);
        if let Err(e) = serde_json::from_slice::<serde_json::Value>(body) {
            panic!("lgsp accepted JSON that serde_json refuses: {e}");
        }
    }
});
