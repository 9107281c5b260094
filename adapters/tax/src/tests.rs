#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use serde_json::json;

fn line(kind: &str, q: &str, p: &str, amount: &str, rate: &str) -> Value {
    json!({"kind": kind, "quantity": q, "unit_price": p, "amount_before_vat": amount,
           "vat_rate": {"code": rate}})
}

/// Two rates, a trade discount subtracted in its group, a promotion and a note.
fn invoice() -> Value {
    json!({
        "template": "1",
        "currency": "VND",
        "lines": [
            line("goods_service", "2", "5500000", "11000000", "10%"),
            line("promotion", "2", "0", "0", "10%"),
            {"kind": "trade_discount", "discount_amount": "550000", "amount_before_vat": "550000",
             "vat_rate": {"code": "10%"}},
            line("goods_service", "3", "333.33", "1000", "8%"),
            {"kind": "note", "item_name": "giao đủ"}
        ],
        "totals": {
            "by_rate": [
                {"vat_rate": {"code": "10%"}, "amount_before_vat": "10450000", "vat_amount": "1045000"},
                {"vat_rate": {"code": "8%"}, "amount_before_vat": "1000", "vat_amount": "80"}
            ],
            "total_before_vat_vnd": 10451000,
            "total_vat_vnd": 1045080,
            "trade_discount_total_vnd": 0,
            "total_payable_vnd": 11496080
        }
    })
}

fn err(doc: &Value) -> String {
    check(doc).unwrap_err().to_string()
}

#[test]
fn a_consistent_invoice_passes() {
    assert_eq!(check(&invoice()), Ok(()));
}

#[test]
fn a_line_is_quantity_times_price_minus_discount_within_one_dong() {
    let mut doc = invoice();
    // 3 × 333.33 = 999.99 -> 1000; 1001 is within one đồng, 1002 is not.
    let vnd = Money::of("VND");
    for ok in [999, 1000, 1001] {
        assert_eq!(
            check_line(&doc["lines"][3], 3, Decimal::from(ok), vnd),
            Ok(()),
            "{ok} is within one đồng of 1000"
        );
    }
    doc["lines"][3]["amount_before_vat"] = json!("1002");
    let e = check(&doc).unwrap_err();
    assert_eq!(e.kind, lgsp_core::step::StepErrorKind::Validation);
    assert_eq!(e.code, "einvoice.line_amount");
    assert_eq!(
        e.to_string(),
        "lines[3].amount_before_vat: 1002 ≠ 3 × 333.33 − 0 = 1000"
    );

    let mut doc = invoice();
    doc["lines"][0]["discount_amount"] = json!("1000");
    assert_eq!(
        err(&doc),
        "lines[0].amount_before_vat: 11000000 ≠ 2 × 5500000 − 1000 = 10999000"
    );
}

#[test]
fn a_rate_group_is_the_sum_of_its_lines() {
    let mut doc = invoice();
    doc["totals"]["by_rate"][0]["amount_before_vat"] = json!("11000000");
    assert_eq!(
        err(&doc),
        "totals.by_rate[0].amount_before_vat: rate group 10%: 11000000 ≠ Σ lines of that rate = 10450000"
    );
    let mut doc = invoice();
    doc["lines"][3]["vat_rate"]["code"] = json!("5%");
    assert_eq!(
        err(&doc),
        "totals.by_rate[1].amount_before_vat: rate group 8%: 1000 ≠ Σ lines of that rate = 0"
    );
}

#[test]
fn document_totals_add_up() {
    let mut doc = invoice();
    doc["totals"]["total_before_vat_vnd"] = json!(10451001);
    assert_eq!(
        err(&doc),
        "totals.total_before_vat_vnd: total before VAT 10451001 ≠ Σ lines (notes excluded, trade discounts subtracted) = 10451000"
    );
    let mut doc = invoice();
    doc["totals"]["total_vat_vnd"] = json!(1045000);
    assert_eq!(
        err(&doc),
        "totals.total_vat_vnd: total VAT 1045000 ≠ Σ VAT of the rate groups = 1045080"
    );
    let mut doc = invoice();
    doc["totals"]["total_payable_vnd"] = json!(11496081);
    assert_eq!(
        err(&doc),
        "totals.total_payable_vnd: total payable 11496081 ≠ total before VAT + VAT − trade discount + fees = 10451000 + 1045080 − 0 + 0 = 11496080"
    );
}

#[test]
fn trade_discount_total_and_fees_enter_the_total_payable() {
    let mut doc = invoice();
    doc["totals"]["trade_discount_total_vnd"] = json!(80);
    doc["totals"]["fees"] = json!([{"name": "phí", "amount": "5000"}]);
    doc["totals"]["total_payable_vnd"] = json!(11496080 - 80 + 5000);
    assert_eq!(check(&doc), Ok(()));
}

#[test]
fn adjustments_may_be_negative() {
    let doc = json!({
        "template": "1", "currency": "VND",
        "lines": [line("goods_service", "-20", "95000", "-1900000", "5%")],
        "totals": {
            "by_rate": [{"vat_rate": {"code": "5%"}, "amount_before_vat": "-1900000", "vat_amount": "-95000"}],
            "total_before_vat_vnd": -1900000, "total_vat_vnd": -95000,
            "trade_discount_total_vnd": 0, "total_payable_vnd": -1995000
        }
    });
    assert_eq!(check(&doc), Ok(()));
}

#[test]
fn a_sales_invoice_totals_its_lines() {
    let mut doc = json!({
        "template": "2", "currency": "VND",
        "lines": [
            {"kind": "goods_service", "quantity": "10", "unit_price": "180000", "amount_before_vat": "1800000"},
            {"kind": "goods_service", "quantity": "4", "unit_price": "350000", "amount_before_vat": "1400000"}
        ],
        "totals": {"total_payable_vnd": 3200000}
    });
    assert_eq!(check(&doc), Ok(()));
    doc["totals"]["total_payable_vnd"] = json!(3300000);
    assert_eq!(
        err(&doc),
        "totals.total_payable_vnd: total payable 3300000 ≠ Σ lines − trade discount + fees = 3200000 − 0 + 0 = 3200000"
    );
}

#[test]
fn foreign_currency_rounds_to_the_cent() {
    let mut doc = json!({
        "template": "1", "currency": "USD",
        "lines": [line("goods_service", "2.5", "480.20", "1200.50", "0%")],
        "totals": {
            "by_rate": [{"vat_rate": {"code": "0%"}, "amount_before_vat": "1200.50", "vat_amount": "0.00"}],
            "total_before_vat": "1200.50", "total_vat": "0.00", "total_payable": "1200.50"
        }
    });
    assert_eq!(check(&doc), Ok(()));
    doc["lines"][0]["amount_before_vat"] = json!("1200.52");
    assert_eq!(
        err(&doc),
        "lines[0].amount_before_vat: 1200.52 ≠ 2.5 × 480.2 − 0 = 1200.5"
    );
}

#[test]
fn line_vat_may_differ_from_the_group_by_one_dong_per_line() {
    let mut doc = invoice();
    doc["lines"][0]["vat_amount"] = json!("1100000");
    doc["lines"][2]["vat_amount"] = json!("55001");
    assert_eq!(check(&doc), Ok(()), "one đồng over two lines");
    doc["lines"][2]["vat_amount"] = json!("54997");
    assert_eq!(
        err(&doc),
        "totals.by_rate[0].vat_amount: rate group 10%: VAT 1045000 ≠ Σ VAT of its lines = 1045003 (tolerance 1 per line)"
    );
}

#[test]
fn lines_without_a_rate_group_are_named() {
    let mut doc = invoice();
    doc["lines"][3]["vat_rate"]["code"] = json!("5%");
    doc["totals"]["by_rate"][1]["amount_before_vat"] = json!("0");
    assert_eq!(
        err(&doc),
        "lines[3].vat_rate: lines of rate 5% sum to 1000 but the invoice has no rate group for it"
    );
}

#[test]
fn an_amount_that_is_not_a_decimal_is_a_mapping_error() {
    let mut doc = invoice();
    doc["lines"][0]["amount_before_vat"] = json!("1.000.000");
    let e = check(&doc).unwrap_err();
    assert_eq!(e.kind, lgsp_core::step::StepErrorKind::Mapping);
    assert_eq!(e.field, "lines[0].amount_before_vat");
}

#[test]
fn the_step_is_registered_under_its_name() {
    let mut steps = StepRegistry::new();
    register(&mut steps).unwrap();
    assert_eq!(steps.names().collect::<Vec<_>>(), ["tax.einvoice_totals"]);
}
