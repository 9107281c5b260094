//! Map one sample N times, to count what a message costs under a profiler: the instruction
//! counts of BENCHMARKS.md come from `benches/instructions.sh`, which runs this under
//! callgrind collecting only inside `map_loop::run` and divides by N.
//!
//! `cargo run --release -p lgsp-mapping --example map_loop -- ADAPTER FILE TYPE MODE N`,
//! where FILE is under the adapter's `samples/`, or a path under the adapter's folder
//! (`samples/variants/...`), or `gen500` for the generated 500-line e-invoice, and MODE is
//! `raw` (quick-xml's bare event loop), `decode` (the whole tree), `auto` (`map_message`
//! as the router runs it, projected) or `tree` (`Decoding::Tree`). The payload's format is
//! its file's extension. Before the N counted runs, one run outside `run` warms the
//! allocator and the adapter's caches, so the count is what a message costs a running bus.
//! The allocator is jemalloc, as in the `lgsp` binary. With a sixth argument `exact` names are
//! looked up exactly (no other spelling of a field), to count what that fallback costs.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use std::path::Path;

use lgsp_core::envelope::Envelope;
use lgsp_mapping::decode::{Format, Limits};
use lgsp_mapping::dsl::Decoding;

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

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
    let dir = root.join("adapters").join(adapter);
    let body = if file == "gen500" {
        einvoice_500::generate().xml.into_bytes()
    } else if file.contains('/') {
        std::fs::read(dir.join(file)).unwrap()
    } else {
        std::fs::read(dir.join("samples").join(file)).unwrap()
    };
    let format = if file.ends_with(".json") {
        Format::Json
    } else {
        Format::Xml
    };
    let env = Envelope {
        message_id: "m".into(),
        message_type: Some(ty.clone()),
        app_id: Some("x".into()),
        ..Envelope::default()
    };
    let limits = Limits::default();
    let exact = args.get(6).is_some_and(|a| a == "exact");
    let go = || {
        once(a, &body, format, &env, &limits, mode);
        run(a, &body, format, &env, &limits, mode, n);
    };
    if exact {
        lgsp_mapping::dsl::path::exact_names(go);
    } else {
        go();
    }
}

/// The counted loop: callgrind collects only inside this function.
#[inline(never)]
fn run(
    a: &lgsp_mapping::dsl::Adapter,
    body: &[u8],
    format: Format,
    env: &Envelope,
    limits: &Limits,
    mode: &str,
    n: usize,
) {
    for _ in 0..n {
        once(a, body, format, env, limits, mode);
    }
}

#[inline(always)]
fn once(
    a: &lgsp_mapping::dsl::Adapter,
    body: &[u8],
    format: Format,
    env: &Envelope,
    limits: &Limits,
    mode: &str,
) {
    {
        match mode {
            "raw" => {
                let mut r = quick_xml::Reader::from_reader(body);
                while !matches!(r.read_event().unwrap(), quick_xml::events::Event::Eof) {}
            }
            "decode" => {
                std::hint::black_box(lgsp_mapping::decode::decode(format, body, limits).unwrap());
            }
            "auto" => {
                std::hint::black_box(
                    a.map_message_using(env, body, Some(format), limits, Decoding::Auto)
                        .unwrap(),
                );
            }
            _ => {
                std::hint::black_box(
                    a.map_message_using(env, body, Some(format), limits, Decoding::Tree)
                        .unwrap(),
                );
            }
        }
    }
}
