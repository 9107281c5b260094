//! The mapping's own JSON writer against serde_json's, on every golden of every shipped
//! adapter and every JSON sample: the bytes must be the same, or the bus's outputs would
//! change with the writer.

use std::path::Path;

use serde_json::Value;

#[test]
fn every_golden_and_json_sample_is_written_byte_for_byte_as_serde_json_writes_it() {
    let adapters = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../adapters");
    let mut files = Vec::new();
    for adapter in std::fs::read_dir(&adapters).unwrap() {
        let dir = adapter.unwrap().path();
        for sub in ["tests/golden", "samples", "samples/variants"] {
            let Ok(entries) = std::fs::read_dir(dir.join(sub)) else {
                continue;
            };
            for e in entries {
                let p = e.unwrap().path();
                if p.extension().is_some_and(|x| x == "json") {
                    files.push(p);
                }
            }
        }
    }
    assert!(files.len() > 50, "found only {} JSON files", files.len());
    for p in &files {
        // A golden of a batch holds one document per output.
        let bytes = std::fs::read(p).unwrap();
        for v in serde_json::Deserializer::from_slice(&bytes).into_iter::<Value>() {
            let v = v.unwrap();
            assert_eq!(
                String::from_utf8(lgsp_mapping::json_out::to_vec(&v)).unwrap(),
                serde_json::to_string(&v).unwrap(),
                "{}",
                p.display()
            );
        }
    }
}
