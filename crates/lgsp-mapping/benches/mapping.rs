//! Decoding and mapping throughput on the samples of the shipped adapters.
//!
//! For every XML sample, four benchmarks in one group named after the file:
//! - `raw`: quick-xml's bare event loop over the bytes, the upper bound;
//! - `decode`: `decode_xml` into the whole mapping tree;
//! - `decode_map`: `Adapter::map_message`, decode and map exactly as the bus does (with
//!   the mapping's projection: only what its paths can read is built);
//! - `decode_map_tree`: the same with the whole tree decoded (`Decoding::Tree`).
//!
//! For every JSON sample, `serde_json` (`from_slice::<Value>`) is the reference, next to
//! `decode` (`decode_json`) and `decode_map`.
//!
//! `einvoice-500-lines` is a generated VAT e-invoice of 500 lines (the generator of
//! `tests/support/einvoice_500.rs`) through the shipped configuration's tax adapter, its
//! totals step included: `raw`, `decode`, `decode_map` and `decode_map_tree`.
//!
//! Run with `cargo bench -p lgsp-mapping --bench mapping`.
#![allow(clippy::expect_used)]

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use lgsp_core::envelope::Envelope;
use lgsp_mapping::decode::{Format, Limits, decode_json, decode_xml};
use lgsp_mapping::dsl::{Adapter, Decoded, Decoding};
use quick_xml::Reader;
use quick_xml::events::Event;

#[path = "../tests/support/einvoice_500.rs"]
mod einvoice_500;
#[path = "../tests/support/shipped.rs"]
mod shipped;

/// The XML samples: adapter, file (under `samples/`), the message type it is published
/// under and the sending application.
const XML_SAMPLES: &[(&str, &str, &str, &str)] = &[
    (
        "bizreg",
        "enterprise-registered",
        "bizreg.enterprise.registered",
        "dkkd",
    ),
    (
        "bizreg",
        "enterprise-changed",
        "bizreg.enterprise.changed",
        "dkkd",
    ),
    (
        "bizreg",
        "enterprise-dissolved",
        "bizreg.enterprise.dissolved",
        "dkkd",
    ),
    (
        "bizreg",
        "branch-registered",
        "bizreg.branch.registered",
        "dkkd",
    ),
    (
        "tax",
        "einvoice-vat-basic",
        "tax.einvoice.issued",
        "hddt-cqt",
    ),
];

/// The JSON samples of the bizreg adapter and the message type each is published under.
const JSON_SAMPLES: &[(&str, &str)] = &[
    ("enterprise-registered", "bizreg.enterprise.registered"),
    ("enterprise-suspended", "bizreg.enterprise.status_changed"),
    (
        "household-business-registered",
        "bizreg.household.registered",
    ),
];

/// The adapters folder, as the bus configuration names it.
const ADAPTERS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../adapters");

fn adapter_dir(adapter: &str) -> PathBuf {
    Path::new(ADAPTERS_DIR).join(adapter)
}

fn sample(adapter: &str, file: &str) -> Vec<u8> {
    let path = adapter_dir(adapter).join("samples").join(file);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// An envelope as the bus builds it for an incoming message of `message_type`.
fn envelope(message_type: &str, app_id: &str) -> Envelope {
    Envelope {
        message_id: "00000000-0000-4000-8000-000000000001".into(),
        message_type: Some(message_type.to_owned()),
        app_id: Some(app_id.into()),
        sender: Some("H37.DKKD".into()),
        timestamp: Some("2025-01-01T08:00:00+07:00".into()),
        ..Envelope::default()
    }
}

/// quick-xml's event loop with nothing done per event: what no decoder can beat.
fn raw_events(bytes: &[u8]) -> usize {
    let mut reader = Reader::from_reader(bytes);
    let mut events = 0;
    loop {
        match reader.read_event() {
            Ok(Event::Eof) => return events,
            Ok(event) => {
                black_box(event);
                events += 1;
            }
            Err(err) => panic!("sample is not well-formed XML: {err}"),
        }
    }
}

/// The four XML benchmarks of one payload, after checking once, outside timing, that
/// every stage succeeds and that both decodings map alike.
fn xml_group(c: &mut Criterion, group: &str, adapter: &Adapter, envelope: &Envelope, bytes: &[u8]) {
    let limits = Limits::default();
    assert!(raw_events(bytes) > 0, "{group}: no XML events");
    decode_xml(bytes, &limits).unwrap_or_else(|e| panic!("{group} does not decode: {e}"));
    let map = |decoding| {
        adapter
            .map_message_using(envelope, bytes, Some(Format::Xml), &limits, decoding)
            .unwrap_or_else(|e| panic!("{group} does not map: {e}"))
    };
    let (projected, how) = map(Decoding::Auto);
    let (tree, _) = map(Decoding::Tree);
    assert!(!projected.is_empty(), "{group} maps to nothing");
    assert_eq!(projected, tree, "{group}: the decodings disagree");
    assert_eq!(how, Decoded::Projected, "{group}: not projected");

    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    g.bench_function("raw", |b| b.iter(|| raw_events(black_box(bytes))));
    g.bench_function("decode", |b| {
        b.iter(|| decode_xml(black_box(bytes), &limits))
    });
    for (name, decoding) in [
        ("decode_map", Decoding::Auto),
        ("decode_map_tree", Decoding::Tree),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                adapter.map_message_using(
                    black_box(envelope),
                    black_box(bytes),
                    Some(Format::Xml),
                    &limits,
                    decoding,
                )
            })
        });
    }
    g.finish();
}

fn xml(c: &mut Criterion) {
    let adapters = shipped::adapters();
    for &(adapter, name, message_type, app_id) in XML_SAMPLES {
        let bytes = sample(adapter, &format!("{name}.xml"));
        let envelope = envelope(message_type, app_id);
        xml_group(c, name, &adapters.by_name[adapter], &envelope, &bytes);
    }
}

fn json(c: &mut Criterion) {
    let adapters = shipped::adapters();
    let adapter = &adapters.by_name["bizreg"];
    let limits = Limits::default();
    for &(name, message_type) in JSON_SAMPLES {
        let bytes = sample("bizreg", &format!("{name}.json"));
        let envelope = envelope(message_type, "dkkd");
        serde_json::from_slice::<serde_json::Value>(&bytes)
            .unwrap_or_else(|e| panic!("{name}.json is not JSON: {e}"));
        decode_json(&bytes, &limits).unwrap_or_else(|e| panic!("{name}.json does not decode: {e}"));
        let mapped = adapter
            .map_message(&envelope, &bytes, Some(Format::Json), &limits)
            .unwrap_or_else(|e| panic!("{name}.json does not map as {message_type}: {e}"));
        assert!(!mapped.is_empty(), "{name}.json maps to nothing");

        let mut group = c.benchmark_group(format!("{name}.json"));
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_function("serde_json", |b| {
            b.iter(|| serde_json::from_slice::<serde_json::Value>(black_box(&bytes)))
        });
        group.bench_function("decode", |b| {
            b.iter(|| decode_json(black_box(&bytes), &limits))
        });
        group.bench_function("decode_map", |b| {
            b.iter(|| {
                adapter.map_message(
                    black_box(&envelope),
                    black_box(&bytes),
                    Some(Format::Json),
                    &limits,
                )
            })
        });
        group.finish();
    }
}

fn einvoice_500_lines(c: &mut Criterion) {
    let adapters = shipped::adapters();
    let tax = &adapters.by_name["tax"];
    let limits = Limits::default();
    let generated = einvoice_500::generate();
    let bytes = generated.xml.into_bytes();
    let envelope = envelope("tax.einvoice.issued", "hddt-cqt");
    let mapped = tax
        .map_message(&envelope, &bytes, Some(Format::Xml), &limits)
        .unwrap_or_else(|e| panic!("the generated invoice does not map: {e}"));
    assert_eq!(
        mapped[0].value["lines"].as_array().map(Vec::len),
        Some(einvoice_500::LINES)
    );
    assert_eq!(
        mapped[0].value["totals"]["total_payable_vnd"],
        serde_json::json!(generated.total_payable)
    );
    xml_group(c, "einvoice-500-lines", tax, &envelope, &bytes);
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = xml, json, einvoice_500_lines
}
criterion_main!(benches);
