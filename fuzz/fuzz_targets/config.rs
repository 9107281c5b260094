//! The configuration loader on any text: no panic; every problem names a key or a file.
#![no_main]

use lgsp_core::config::{YamlFile, load_file};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = lgsp_fuzz::repo().join("config/fuzz.yaml");
    let mut file = YamlFile::from_text(&path, text, None);
    let _ = load_file(&mut file);
    for p in &file.problems {
        let _ = p.to_string();
    }
});
