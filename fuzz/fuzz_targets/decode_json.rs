//! The JSON decoder on any input: no panic, and nothing it accepts is refused by
//! serde_json (lgsp is the stricter reader: it refuses duplicate keys, which serde_json
//! lets the last one win).
#![no_main]

use lgsp_mapping::decode::{Limits, decode_json};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    // Below serde_json's own recursion limit (128), so depth alone never differs.
    let limits = Limits {
        max_depth: 64,
        ..Limits::default()
    };
    if decode_json(data, &limits).is_ok() {
        let body = data.strip_prefix(b"\xef\xbb\xbf").unwrap_or(data);
        if let Err(e) = serde_json::from_slice::<serde_json::Value>(body) {
            panic!("lgsp accepted JSON that serde_json refuses: {e}");
        }
    }
});
