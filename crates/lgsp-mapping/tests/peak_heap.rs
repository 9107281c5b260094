//! The heap a 500-line e-invoice needs to map, whole tree against projection: the peak
//! of bytes in use while mapping, over what was in use before. One test in this binary,
//! so nothing else allocates meanwhile.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use lgsp_core::envelope::Envelope;
use lgsp_mapping::decode::{Format, Limits};
use lgsp_mapping::dsl::{Decoded, Decoding};
use peak_alloc::PeakAlloc;

#[path = "support/einvoice_500.rs"]
mod einvoice_500;

#[global_allocator]
static HEAP: PeakAlloc = PeakAlloc;

#[path = "support/shipped.rs"]
mod shipped;
use shipped::adapters;

#[test]
fn a_500_line_invoice_maps_within_a_bounded_heap_and_the_projection_needs_less() {
    let adapters = adapters();
    let tax = &adapters.by_name["tax"];
    let body = einvoice_500::generate().xml.into_bytes();
    let envelope = Envelope {
        message_id: "m-500".into(),
        message_type: Some("tax.einvoice.issued".into()),
        app_id: Some("hddt-cqt".into()),
        ..Envelope::default()
    };
    let limits = Limits::default();
    let peak = |decoding| {
        let before = HEAP.current_usage();
        HEAP.reset_peak_usage();
        let (outputs, how) = tax
            .map_message_using(&envelope, &body, Some(Format::Xml), &limits, decoding)
            .unwrap();
        let peak = HEAP.peak_usage() - before;
        (peak, outputs, how)
    };
    // Once each first: lazily built statics are not the message's.
    peak(Decoding::Tree);
    peak(Decoding::Auto);
    let (tree, tree_out, _) = peak(Decoding::Tree);
    let (projected, projected_out, how) = peak(Decoding::Auto);
    assert_eq!(how, Decoded::Projected);
    assert_eq!(tree_out, projected_out);
    let output: usize = projected_out.iter().map(|m| m.body.len()).sum();
    eprintln!(
        "500-line e-invoice, {} bytes in, {output} bytes of JSON out: peak heap {tree} bytes \
         with the whole tree, {projected} bytes with the projection",
        body.len()
    );
    // Bounded: a small multiple of the payload, whichever way it is decoded.
    assert!(tree < body.len() * 40, "whole tree: {tree} bytes");
    assert!(projected < body.len() * 40, "projection: {projected} bytes");
    // The e-invoice mapping reads nearly all of it (every member of every line, for the
    // VAT rate filter), so the projection saves little here; it never costs more.
    assert!(
        projected <= tree + tree / 100,
        "projection {projected} > tree {tree}"
    );
}
