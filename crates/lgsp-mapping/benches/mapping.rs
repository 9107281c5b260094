//! Decoding and mapping throughput on the samples of the bizreg adapter.
//!
//! For every XML sample, three benchmarks in one group named after the file:
//! - `raw`: quick-xml's bare event loop over the bytes, the upper bound;
//! - `decode`: `decode_xml` into the mapping tree;
//! - `decode_map`: `Adapter::map_message`, decode and map exactly as the bus does.
//!
//! For every JSON sample, `serde_json` (`from_slice::<Value>`) is the reference, next to
//! `decode` (`decode_json`) and `decode_map`.
//!
//! `einvoice-500-lines` is a generated VAT e-invoice of 500 lines (the generator of
//! `tests/support/einvoice_500.rs`) through the shipped configuration's tax adapter, its
//! totals step included: `decode` and `decode_map`.
//!
//! Run with `cargo bench -p lgsp-mapping --bench mapping`.
#![allow(clippy::expect_used)]

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use lgsp_core::envelope::Envelope;
use lgsp_mapping::decode::{Format, Limits, decode_json, decode_xml};
use lgsp_mapping::dsl::Adapter;
use quick_xml::Reader;
use quick_xml::events::Event;

#[path = "../tests/support/einvoice_500.rs"]
mod einvoice_500;

/// The XML samples and the message type each is published under.
const XML_SAMPLES: &[(&str, &str)] = &[
    ("enterprise-registered", "bizreg.enterprise.registered"),
    ("enterprise-changed", "bizreg.enterprise.changed"),
    ("enterprise-dissolved", "bizreg.enterprise.dissolved"),
    ("branch-registered", "bizreg.branch.registered"),
];

/// The JSON samples and the message type each is published under.
const JSON_SAMPLES: &[(&str, &str)] = &[
    ("enterprise-registered", "bizreg.enterprise.registered"),
    ("enterprise-suspended", "bizreg.enterprise.status_changed"),
    (
        "household-business-registered",
        "bizreg.household.registered",
    ),
];

/// The adapter folder, as the bus configuration names it.
const ADAPTER_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../adapters/bizreg");

fn adapter_dir() -> PathBuf {
    Path::new(ADAPTER_DIR).to_path_buf()
}

fn load_adapter() -> Adapter {
    let repo = adapter_dir().join("../..");
    let domain = lgsp_mapping::domain::Domain::load(
        &repo.join("schemas"),
        &repo.join("reference"),
        lgsp_core::step::StepRegistry::new(),
    )
    .expect("the shipped schemas and reference data load");
    Adapter::load_with("bizreg", &adapter_dir(), &domain).expect("the bizreg adapter loads")
}

fn sample(file: &str) -> Vec<u8> {
    let path = adapter_dir().join("samples").join(file);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// An envelope as the bus builds it for an incoming message of `message_type`.
fn envelope(message_type: &str) -> Envelope {
    Envelope {
        message_id: "00000000-0000-4000-8000-000000000001".into(),
        message_type: Some(message_type.to_owned()),
        app_id: Some("dkkd".into()),
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

fn xml(c: &mut Criterion) {
    let adapter = load_adapter();
    let limits = Limits::default();
    for &(name, message_type) in XML_SAMPLES {
        let bytes = sample(&format!("{name}.xml"));
        let envelope = envelope(message_type);
        // Check once, outside timing, that every stage succeeds on this sample.
        assert!(raw_events(&bytes) > 0, "{name}.xml: no XML events");
        decode_xml(&bytes, &limits).unwrap_or_else(|e| panic!("{name}.xml does not decode: {e}"));
        let mapped = adapter
            .map_message(&envelope, &bytes, Some(Format::Xml), &limits)
            .unwrap_or_else(|e| panic!("{name}.xml does not map as {message_type}: {e}"));
        assert!(!mapped.is_empty(), "{name}.xml maps to nothing");

        let mut group = c.benchmark_group(name);
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_function("raw", |b| b.iter(|| raw_events(black_box(&bytes))));
        group.bench_function("decode", |b| {
            b.iter(|| decode_xml(black_box(&bytes), &limits))
        });
        group.bench_function("decode_map", |b| {
            b.iter(|| {
                adapter.map_message(
                    black_box(&envelope),
                    black_box(&bytes),
                    Some(Format::Xml),
                    &limits,
                )
            })
        });
        group.finish();
    }
}

fn json(c: &mut Criterion) {
    let adapter = load_adapter();
    let limits = Limits::default();
    for &(name, message_type) in JSON_SAMPLES {
        let bytes = sample(&format!("{name}.json"));
        let envelope = envelope(message_type);
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

/// The adapters of the shipped configuration, with the Rust steps their mappings name.
fn shipped_adapters() -> lgsp_mapping::dsl::Adapters {
    let cfg = adapter_dir().join("../../config/lgsp.yaml");
    let loaded = lgsp_core::config::load(&cfg, lgsp_core::config::EnvOverrides::none())
        .expect("the shipped configuration loads");
    let mut steps = lgsp_core::step::StepRegistry::new();
    lgsp_adapter_emis::register(&mut steps).expect("emis steps register");
    lgsp_adapter_tax::register(&mut steps).expect("tax steps register");
    lgsp_mapping::dsl::Adapters::load_with_steps(&loaded, steps).expect("the shipped adapters load")
}

fn einvoice_500_lines(c: &mut Criterion) {
    let adapters = shipped_adapters();
    let tax = &adapters.by_name["tax"];
    let limits = Limits::default();
    let generated = einvoice_500::generate();
    let bytes = generated.xml.into_bytes();
    let mut envelope = envelope("tax.einvoice.issued");
    envelope.app_id = Some("hddt-cqt".into());
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

    let mut group = c.benchmark_group("einvoice-500-lines");
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    group.bench_function("decode", |b| {
        b.iter(|| decode_xml(black_box(&bytes), &limits))
    });
    group.bench_function("decode_map", |b| {
        b.iter(|| {
            tax.map_message(
                black_box(&envelope),
                black_box(&bytes),
                Some(Format::Xml),
                &limits,
            )
        })
    });
    group.finish();
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
