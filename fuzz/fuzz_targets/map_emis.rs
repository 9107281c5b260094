//! The emis adapter's mappings on any input (see `lgsp_fuzz::map`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| lgsp_fuzz::map("emis", data));
