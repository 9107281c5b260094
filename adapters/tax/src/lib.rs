//! Rust steps of the tax adapter.
//!
//! `tax.einvoice_totals` checks that the amounts of a canonical e-invoice
//! (`lgsp.einvoice/1`) add up, per rate group and overall, with exact decimal arithmetic.
//! The rules and the rounding applied are written in the adapter's README.

use std::str::FromStr;

use lgsp_core::step::{DuplicateStep, Step, StepContext, StepError, StepRegistry};
use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::Value;

/// Register the steps of the tax adapter.
pub fn register(steps: &mut StepRegistry) -> Result<(), DuplicateStep> {
    steps.register(EinvoiceTotals)?;
    Ok(())
}

/// Line amounts against quantity × unit price − discount, lines against their rate group,
/// rate groups and lines against the document totals, and the total payable.
#[derive(Debug, Clone, Copy, Default)]
pub struct EinvoiceTotals;

impl Step for EinvoiceTotals {
    fn name(&self) -> &'static str {
        "tax.einvoice_totals"
    }

    fn run(&self, doc: &mut Value, _ctx: &mut StepContext<'_>) -> Result<(), StepError> {
        check(doc)
    }
}

/// How amounts of the invoice's currency are rounded and compared.
#[derive(Debug, Clone, Copy)]
struct Money {
    /// Decimal places of the smallest unit: 0 for the đồng, 2 for other currencies.
    scale: u32,
    /// One smallest unit: 1 đồng, or 0.01 of a foreign currency.
    unit: Decimal,
}

impl Money {
    fn of(currency: &str) -> Money {
        if currency == "VND" {
            Money {
                scale: 0,
                unit: Decimal::ONE,
            }
        } else {
            Money {
                scale: 2,
                unit: Decimal::new(1, 2),
            }
        }
    }

    fn round(self, d: Decimal) -> Decimal {
        d.round_dp_with_strategy(self.scale, RoundingStrategy::MidpointAwayFromZero)
    }
}

/// An amount as text for messages: exact, without trailing zeros after the point.
fn show(d: Decimal) -> String {
    d.normalize().to_string()
}

/// A decimal from a JSON number or a decimal string; `None` when absent or null.
fn decimal(
    v: Option<&Value>,
    field: impl FnOnce() -> String,
) -> Result<Option<Decimal>, StepError> {
    let text: std::borrow::Cow<'_, str> = match v {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n.to_string().into(),
        Some(Value::String(s)) => s.as_str().into(),
        Some(other) => {
            return Err(StepError::mapping(
                field(),
                "einvoice.amount",
                format!("not an amount: {other}"),
            ));
        }
    };
    Decimal::from_str(&text)
        .or_else(|_| Decimal::from_scientific(&text))
        .map(Some)
        .map_err(|_| {
            StepError::mapping(
                field(),
                "einvoice.amount",
                format!("not an exact decimal amount: {text}"),
            )
        })
}

/// A document total: `<name>_vnd` (integer of đồng) or `<name>` (decimal string).
fn total(totals: &Value, name: &str) -> Result<Option<(String, Decimal)>, StepError> {
    for key in [format!("{name}_vnd"), name.to_owned()] {
        let field = format!("totals.{key}");
        if let Some(d) = decimal(totals.get(&key), || field.clone())? {
            return Ok(Some((field, d)));
        }
    }
    Ok(None)
}

/// Sums by rate code, in the order the codes first appear.
#[derive(Debug, Default)]
struct ByRate(Vec<(Option<String>, Decimal, usize)>);

impl ByRate {
    /// Add `amount` to the sum of `code`; `index` is kept from the first entry.
    fn add(&mut self, code: Option<&str>, amount: Decimal, index: usize) {
        match self.0.iter_mut().find(|(c, _, _)| c.as_deref() == code) {
            Some(entry) => entry.1 += amount,
            None => self.0.push((code.map(str::to_owned), amount, index)),
        }
    }

    fn get(&self, code: Option<&str>) -> Option<Decimal> {
        self.0
            .iter()
            .find(|(c, _, _)| c.as_deref() == code)
            .map(|e| e.1)
    }
}

fn rate_code(item: &Value) -> Option<&str> {
    item.get("vat_rate")
        .and_then(|r| r.get("code"))
        .and_then(Value::as_str)
}

fn rate_name(code: Option<&str>) -> &str {
    code.unwrap_or("without rate")
}

/// The checks of `tax.einvoice_totals` on a canonical e-invoice.
pub fn check(doc: &Value) -> Result<(), StepError> {
    let currency = doc.get("currency").and_then(Value::as_str).unwrap_or("VND");
    let money = Money::of(currency);
    let sales = doc.get("template").and_then(Value::as_str) == Some("2");
    let empty = Vec::new();
    let lines = doc.get("lines").and_then(Value::as_array).unwrap_or(&empty);

    // 1. Each line, and the sums per rate and overall (notes excluded, trade discounts
    //    subtracted).
    let mut line_sums = ByRate::default();
    let mut line_vat = ByRate::default();
    let mut lines_with_vat = ByRate::default();
    let mut sum_lines = Decimal::ZERO;
    for (i, line) in lines.iter().enumerate() {
        let kind = line
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("goods_service");
        if kind == "note" {
            continue;
        }
        // Whether an amount is required is the mapping's and the schema's business: a
        // line without one adds nothing and is not checked.
        let Some(amount) = decimal(line.get("amount_before_vat"), || {
            format!("lines[{i}].amount_before_vat")
        })?
        else {
            continue;
        };
        check_line(line, i, amount, money)?;
        let signed = if kind == "trade_discount" {
            -amount
        } else {
            amount
        };
        let code = rate_code(line);
        line_sums.add(code, signed, i);
        sum_lines += signed;
        if let Some(vat) = decimal(line.get("vat_amount"), || format!("lines[{i}].vat_amount"))? {
            let vat = if kind == "trade_discount" { -vat } else { vat };
            line_vat.add(code, vat, i);
            lines_with_vat.add(code, Decimal::ONE, i);
        }
    }

    let none = Value::Null;
    let totals = doc.get("totals").unwrap_or(&none);

    // 2. Rate groups against their lines.
    let mut sum_groups_vat = None::<Decimal>;
    if let Some(groups) = totals.get("by_rate").and_then(Value::as_array) {
        let mut group_sums = ByRate::default();
        let mut group_vat = ByRate::default();
        for (j, g) in groups.iter().enumerate() {
            let base = decimal(g.get("amount_before_vat"), || {
                format!("totals.by_rate[{j}].amount_before_vat")
            })?
            .unwrap_or_default();
            let vat = decimal(g.get("vat_amount"), || {
                format!("totals.by_rate[{j}].vat_amount")
            })?
            .unwrap_or_default();
            group_sums.add(rate_code(g), base, j);
            group_vat.add(rate_code(g), vat, j);
            *sum_groups_vat.get_or_insert(Decimal::ZERO) += vat;
        }
        for (code, group, j) in &group_sums.0 {
            let lines_sum = line_sums.get(code.as_deref()).unwrap_or_default();
            if *group != lines_sum {
                return Err(StepError::validation(
                    format!("totals.by_rate[{j}].amount_before_vat"),
                    "einvoice.rate_group_total",
                    format!(
                        "rate group {}: {} ≠ Σ lines of that rate = {}",
                        rate_name(code.as_deref()),
                        show(*group),
                        show(lines_sum)
                    ),
                ));
            }
            // Lines that carry their own VAT: the group's VAT may differ by the rounding
            // of each line, one smallest unit per line.
            if let (Some(vat_lines), Some(n)) = (
                line_vat.get(code.as_deref()),
                lines_with_vat.get(code.as_deref()),
            ) {
                let group_vat = group_vat.get(code.as_deref()).unwrap_or_default();
                if (group_vat - vat_lines).abs() > money.unit * n {
                    return Err(StepError::validation(
                        format!("totals.by_rate[{j}].vat_amount"),
                        "einvoice.rate_group_vat",
                        format!(
                            "rate group {}: VAT {} ≠ Σ VAT of its lines = {} (tolerance {} per line)",
                            rate_name(code.as_deref()),
                            show(group_vat),
                            show(vat_lines),
                            show(money.unit)
                        ),
                    ));
                }
            }
        }
        for (code, lines_sum, i) in &line_sums.0 {
            if group_sums.get(code.as_deref()).is_none() && !lines_sum.is_zero() {
                return Err(StepError::validation(
                    format!("lines[{i}].vat_rate"),
                    "einvoice.rate_group_missing",
                    format!(
                        "lines of rate {} sum to {} but the invoice has no rate group for it",
                        rate_name(code.as_deref()),
                        show(*lines_sum)
                    ),
                ));
            }
        }
    }

    // 3. Document totals.
    let before_vat = total(totals, "total_before_vat")?;
    if let Some((field, t)) = &before_vat
        && *t != sum_lines
    {
        return Err(StepError::validation(
            field.clone(),
            "einvoice.total_before_vat",
            format!(
                "total before VAT {} ≠ Σ lines (notes excluded, trade discounts subtracted) = {}",
                show(*t),
                show(sum_lines)
            ),
        ));
    }
    let vat = total(totals, "total_vat")?;
    if let (Some((field, t)), Some(groups)) = (&vat, sum_groups_vat)
        && *t != groups
    {
        return Err(StepError::validation(
            field.clone(),
            "einvoice.total_vat",
            format!(
                "total VAT {} ≠ Σ VAT of the rate groups = {}",
                show(*t),
                show(groups)
            ),
        ));
    }
    let discount = total(totals, "trade_discount_total")?.map_or(Decimal::ZERO, |(_, d)| d);
    let mut fees = Decimal::ZERO;
    if let Some(list) = totals.get("fees").and_then(Value::as_array) {
        for (k, fee) in list.iter().enumerate() {
            for key in ["amount_vnd", "amount"] {
                if let Some(d) = decimal(fee.get(key), || format!("totals.fees[{k}].{key}"))? {
                    fees += d;
                    break;
                }
            }
        }
    }
    if let Some((field, payable)) = total(totals, "total_payable")? {
        let (expected, how) = if sales {
            let expected = sum_lines - discount + fees;
            (
                expected,
                format!(
                    "Σ lines − trade discount + fees = {} − {} + {} = {}",
                    show(sum_lines),
                    show(discount),
                    show(fees),
                    show(expected)
                ),
            )
        } else {
            let base = before_vat.map_or(sum_lines, |(_, d)| d);
            let vat = vat
                .map(|(_, d)| d)
                .or(sum_groups_vat)
                .unwrap_or(Decimal::ZERO);
            let expected = base + vat - discount + fees;
            (
                expected,
                format!(
                    "total before VAT + VAT − trade discount + fees = {} + {} − {} + {} = {}",
                    show(base),
                    show(vat),
                    show(discount),
                    show(fees),
                    show(expected)
                ),
            )
        };
        if payable != expected {
            return Err(StepError::validation(
                field,
                "einvoice.total_payable",
                format!("total payable {} ≠ {how}", show(payable)),
            ));
        }
    }
    Ok(())
}

/// `amount` against quantity × unit price − discount, rounded to the smallest unit, with
/// a tolerance of one smallest unit. Lines without quantity or unit price are not checked.
fn check_line(line: &Value, i: usize, amount: Decimal, money: Money) -> Result<(), StepError> {
    let q = decimal(line.get("quantity"), || format!("lines[{i}].quantity"))?;
    let p = decimal(line.get("unit_price"), || format!("lines[{i}].unit_price"))?;
    let (Some(q), Some(p)) = (q, p) else {
        return Ok(());
    };
    let d = decimal(line.get("discount_amount"), || {
        format!("lines[{i}].discount_amount")
    })?
    .unwrap_or_default();
    let exact = q
        .checked_mul(p)
        .and_then(|qp| qp.checked_sub(d))
        .ok_or_else(|| {
            StepError::validation(
                format!("lines[{i}].amount_before_vat"),
                "einvoice.line_amount",
                format!("{} × {} − {} is out of range", show(q), show(p), show(d)),
            )
        })?;
    let expected = money.round(exact);
    if (amount - expected).abs() > money.unit {
        return Err(StepError::validation(
            format!("lines[{i}].amount_before_vat"),
            "einvoice.line_amount",
            format!(
                "{} ≠ {} × {} − {} = {}",
                show(amount),
                show(q),
                show(p),
                show(d),
                show(expected)
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
