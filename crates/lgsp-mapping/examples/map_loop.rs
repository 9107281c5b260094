//! Map one sample N times, to count what a message costs under a profiler (the instruction
//! counts of `docs/decoding.md`): run it with 0 and with N, and divide the difference by N.
//!
//! `cargo run --release -p lgsp-mapping --example map_loop -- ADAPTER FILE TYPE MODE N`,
//! where FILE is under the adapter's `samples/` (or `gen500` for the generated 500-line
//! e-invoice) and MODE is `raw` (quick-xml's bare event loop), `decode` (the whole tree),
//! `auto` (`map_message`, projected) or `tree` (`Decoding::Tree`). With
//! `LGSP_EXACT_NAMES=1` names are looked up exactly (no other spelling of a field), to
//! count what that fallback costs.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use std::path::Path;

use lgsp_core::envelope::Envelope;
use lgsp_mapping::decode::{Format, Limits};
use lgsp_mapping::dsl::Decoding;

#[path = "../tests/support/einvoice_500.rs"]
mod einvoice_500;
#[path = "../tests/support/shipped.rs"]
mod shipped;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (adapter, file, ty, mode, n) = (
        &args[1],
        &args[2],
        &args[3],
        &args[4],
        args[5].parse::<usize>().unwrap(),
    );
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let adapters = shipped::adapters();
    let a = &adapters.by_name[adapter.as_str()];
    let body = if file == "gen500" {
        einvoice_500::generate().xml.into_bytes()
    } else {
        std::fs::read(
            root.join("adapters")
                .join(adapter)
                .join("samples")
                .join(file),
        )
        .unwrap()
    };
    let env = Envelope {
        message_id: "m".into(),
        message_type: Some(ty.clone()),
        app_id: Some("x".into()),
        ..Envelope::default()
    };
    let limits = Limits::default();
    let exact = std::env::var_os("LGSP_EXACT_NAMES").is_some();
    let go = || run(a, &body, &env, &limits, mode, n);
    if exact {
        lgsp_mapping::dsl::path::exact_names(go);
    } else {
        go();
    }
}

fn run(
    a: &lgsp_mapping::dsl::Adapter,
    body: &[u8],
    env: &Envelope,
    limits: &Limits,
    mode: &str,
    n: usize,
) {
    for _ in 0..n {
        match mode {
            "raw" => {
                let mut r = quick_xml::Reader::from_reader(body);
                while !matches!(r.read_event().unwrap(), quick_xml::events::Event::Eof) {}
            }
            "decode" => {
                std::hint::black_box(lgsp_mapping::decode::decode_xml(body, limits).unwrap());
            }
            "auto" => {
                std::hint::black_box(
                    a.map_message_using(env, body, Some(Format::Xml), limits, Decoding::Auto)
                        .unwrap(),
                );
            }
            _ => {
                std::hint::black_box(
                    a.map_message_using(env, body, Some(Format::Xml), limits, Decoding::Tree)
                        .unwrap(),
                );
            }
        }
    }
}
