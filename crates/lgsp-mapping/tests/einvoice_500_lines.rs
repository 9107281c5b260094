//! A generated e-invoice of 500 lines through the shipped configuration, with the tax
//! adapter's totals step: every line is mapped and the totals are exact.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use lgsp_core::envelope::Envelope;
use lgsp_mapping::decode::{Format, Limits};
use serde_json::json;

#[path = "support/einvoice_500.rs"]
mod einvoice_500;

#[path = "support/shipped.rs"]
mod shipped;
use shipped::adapters;

fn envelope() -> Envelope {
    Envelope {
        message_id: "m-500".into(),
        message_type: Some("tax.einvoice.issued".into()),
        app_id: Some("hddt-cqt".into()),
        sender: Some("H37.TT".into()),
        ..Envelope::default()
    }
}

#[test]
fn a_generated_invoice_of_500_lines_maps_with_exact_totals() {
    let generated = einvoice_500::generate();
    let adapters = adapters();
    let tax = &adapters.by_name["tax"];
    let mapped = tax
        .map_message(
            &envelope(),
            generated.xml.as_bytes(),
            Some(Format::Xml),
            &Limits::default(),
        )
        .unwrap();
    assert_eq!(mapped.len(), 1);
    let doc = &mapped[0].value;
    let lines = doc["lines"].as_array().unwrap();
    assert_eq!(lines.len(), einvoice_500::LINES);
    assert_eq!(lines[49]["kind"], "trade_discount");
    assert_eq!(lines[499]["kind"], "note");
    let totals = &doc["totals"];
    assert_eq!(totals["by_rate"].as_array().map(Vec::len), Some(4));
    assert_eq!(
        totals["total_before_vat_vnd"],
        json!(generated.total_before_vat)
    );
    assert_eq!(totals["total_vat_vnd"], json!(generated.total_vat));
    assert_eq!(totals["total_payable_vnd"], json!(generated.total_payable));
    assert!(generated.total_payable > 100_000_000, "a large invoice");
}

#[test]
fn one_dong_off_in_a_generated_invoice_is_refused_naming_the_total() {
    let generated = einvoice_500::generate();
    let wrong = generated.xml.replace(
        &format!("<TgTTTBSo>{}</TgTTTBSo>", generated.total_payable),
        &format!("<TgTTTBSo>{}</TgTTTBSo>", generated.total_payable + 1),
    );
    let adapters = adapters();
    let e = adapters.by_name["tax"]
        .map_message(
            &envelope(),
            wrong.as_bytes(),
            Some(Format::Xml),
            &Limits::default(),
        )
        .unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains(&format!(
            "field totals.total_payable_vnd: total payable {} ≠ total before VAT + VAT",
            generated.total_payable + 1
        )),
        "{text}"
    );
}
