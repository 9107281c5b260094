//! Checks: validate one text value against the format rules of Vietnamese codes
//! (tax code with its check digit, citizen id, budget unit code) and simple length
//! limits, and mask personal values before they are shown in messages.
//!
//! Checks never echo the value in their errors; callers show it through [`mask`]
//! when it is personal.

use super::error::ValueError;
use super::transform::is_tax_code_separator;

/// Weights of digits N1..N9 in the tax-code check digit.
const TAX_CODE_WEIGHTS: [u32; 9] = [31, 29, 23, 19, 17, 13, 7, 5, 3];

/// A tax code (mã số thuế), after removing white space, dots and hyphens:
/// - 10 digits: digits 3-9 not all zero, and a valid check digit: with
///   `S = Σ Ni × Wi` over N1..N9 (weights 31 29 23 19 17 13 7 5 3) and `r = S mod 11`,
///   N10 must be `10 - r`; when `r == 0` no code with these nine digits is ever issued;
/// - 13 digits: a valid 10-digit code and a branch suffix `001`..`999`;
/// - 12 digits: a personal id used as tax code (since 2025): digits only, no check digit.
pub fn tax_code(s: &str) -> Result<(), ValueError> {
    let mut digits = [0u8; 13];
    let mut len = 0usize;
    let mut non_digit = false;
    for c in s.chars().filter(|c| !is_tax_code_separator(*c)) {
        if !c.is_ascii_digit() {
            non_digit = true;
        } else if let Some(slot) = digits.get_mut(len) {
            *slot = c as u8 - b'0';
        }
        len = len.saturating_add(1);
    }
    if len == 0 {
        return Err(ValueError::Empty);
    }
    if non_digit {
        return Err(ValueError::TaxCodeNotDigits);
    }
    match len {
        12 => Ok(()),
        10 => check_ten(&digits[..10]),
        13 => {
            check_ten(&digits[..10])?;
            if digits[10..13] == [0, 0, 0] {
                Err(ValueError::TaxCodeBranch)
            } else {
                Ok(())
            }
        }
        _ => Err(ValueError::TaxCodeLength),
    }
}

/// Zero sequence and check digit of a 10-digit tax code (`d` holds digit values).
fn check_ten(d: &[u8]) -> Result<(), ValueError> {
    if d.get(2..9).is_some_and(|seq| seq.iter().all(|&x| x == 0)) {
        return Err(ValueError::TaxCodeZeroSequence);
    }
    let sum: u32 = d
        .iter()
        .zip(TAX_CODE_WEIGHTS)
        .map(|(&x, w)| u32::from(x) * w)
        .sum();
    let r = sum % 11;
    if r == 0 {
        return Err(ValueError::TaxCodeUnissuable);
    }
    if d.get(9).map(|&x| u32::from(x)) == Some(10 - r) {
        Ok(())
    } else {
        Err(ValueError::TaxCodeCheckDigit)
    }
}

/// A citizen id (CCCD / personal identification number): exactly 12 ASCII digits.
/// A 9-digit number is refused with its own error: it is an old identity card (CMND).
pub fn citizen_id(s: &str) -> Result<(), ValueError> {
    if s.is_empty() {
        return Err(ValueError::Empty);
    }
    let digits = s.bytes().all(|b| b.is_ascii_digit());
    match (digits, s.len()) {
        (true, 12) => Ok(()),
        (true, 9) => Err(ValueError::CitizenIdCmnd),
        _ => Err(ValueError::CitizenIdFormat),
    }
}

/// A budget-relationship unit code (mã ĐVQHNS): exactly 7 ASCII digits.
pub fn budget_unit_code(s: &str) -> Result<(), ValueError> {
    if s.is_empty() {
        return Err(ValueError::Empty);
    }
    if s.len() == 7 && s.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(ValueError::BudgetUnitCode)
    }
}

/// VSIC 2018 industry code: 4 digits (class, as business registration lists them) or 5
/// (subclass). Only the format: the shipped code tables do not hold the full list.
pub fn vsic_code(s: &str) -> Result<(), ValueError> {
    if s.is_empty() {
        return Err(ValueError::Empty);
    }
    if (s.len() == 4 || s.len() == 5) && s.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(ValueError::VsicCode)
    }
}

/// Length in characters (Unicode scalar values) within `min..=max`; either bound may
/// be absent.
pub fn length(s: &str, min: Option<usize>, max: Option<usize>) -> Result<(), ValueError> {
    let actual = s.chars().count();
    if let Some(min) = min.filter(|&m| actual < m) {
        return Err(ValueError::TooShort { min, actual });
    }
    if let Some(max) = max.filter(|&m| actual > m) {
        return Err(ValueError::TooLong { max, actual });
    }
    Ok(())
}

/// A personal value made safe to show: 8 characters or more keep the first 3 and last
/// 3 characters, the rest become `*` (`020179031587` -> `020******587`); shorter
/// values become all `*`, one per character.
pub fn mask(s: &str) -> String {
    let n = s.chars().count();
    if n < 8 {
        return "*".repeat(n);
    }
    let mut out = String::with_capacity(s.len());
    out.extend(s.chars().take(3));
    out.extend(std::iter::repeat_n('*', n - 6));
    out.extend(s.chars().skip(n - 3));
    out
}
