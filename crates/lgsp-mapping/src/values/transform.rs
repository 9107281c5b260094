//! Transforms: turn one decoded leaf (XML text, or a JSON string, number or bool) into
//! its canonical JSON form — exact integers and decimal strings, `YYYY-MM-DD` dates,
//! RFC 3339 timestamps, NFC text — or say why it cannot.
//!
//! Numbers never go through binary floating point: JSON numbers are read from their
//! exact source text and decimals stay strings. Parsers are single-pass over the input,
//! so hostile inputs (megabytes of digits) cost linear time and fail cleanly.

use std::borrow::Cow;
use std::fmt::Write as _;

use chrono::format::{Item, ParseErrorKind, StrftimeItems};
use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime, SecondsFormat};
use rust_decimal::Decimal;
use serde_json::Value;
use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfc_quick};

use super::date_family::{self, Refusal};
use super::error::{DateKind, ValueError};

/// Offset of Vietnam local time (UTC+07:00, no daylight saving).
const VN_OFFSET_SECONDS: i32 = 7 * 3600;

/// Longest text a date pattern is tried against; longer values cannot be dates.
const MAX_DATE_LEN: usize = 256;

/// Most significant digits an exact decimal (rust_decimal) can hold.
const MAX_DECIMAL_DIGITS: usize = 28;

// ---------------------------------------------------------------------------------------
// Text
// ---------------------------------------------------------------------------------------

/// The text of a single value: a string as is, a number as its exact source text, a
/// bool as `true`/`false`. Objects, lists and null are refused.
pub fn text(v: &Value) -> Result<Cow<'_, str>, ValueError> {
    match v {
        Value::String(s) => Ok(Cow::Borrowed(s.as_str())),
        Value::Number(n) => Ok(Cow::Borrowed(n.as_str())),
        Value::Bool(true) => Ok(Cow::Borrowed("true")),
        Value::Bool(false) => Ok(Cow::Borrowed("false")),
        Value::Object(_) => Err(ValueError::NotScalar { found: "an object" }),
        Value::Array(_) => Err(ValueError::NotScalar { found: "a list" }),
        Value::Null => Err(ValueError::NotScalar { found: "null" }),
    }
}

/// Unicode NFC form; borrows when the text is already NFC (the common case).
pub fn nfc(s: &str) -> Cow<'_, str> {
    if is_nfc(s) {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(s.nfc().collect())
    }
}

/// Is `s` already in NFC? Answered without tables for text made only of characters
/// below U+0300 (ASCII, Latin-1, Latin Extended-A/B) and of Latin Extended Additional
/// (U+1E00–U+1EFF, every precomposed Vietnamese letter): all of them are
/// NFC_Quick_Check=Yes with canonical combining class 0, so such text is NFC whatever
/// their order. Anything else (a combining mark, say) takes the quick check.
pub(crate) fn is_nfc(s: &str) -> bool {
    if s.is_ascii() {
        return true;
    }
    s.chars().all(plainly_nfc) || is_nfc_quick(s.chars()) == IsNormalized::Yes
}

fn plainly_nfc(c: char) -> bool {
    c < '\u{300}' || ('\u{1E00}'..='\u{1EFF}').contains(&c)
}

/// Without leading and trailing white space (Unicode white space, including the
/// non-breaking space spreadsheets produce).
pub fn trim(s: &str) -> Cow<'_, str> {
    Cow::Borrowed(s.trim())
}

/// Upper case, Unicode-aware (`đ` -> `Đ`); borrows when nothing changes.
pub fn upper(s: &str) -> Cow<'_, str> {
    if s.chars().any(|c| c.is_lowercase() || !c.is_ascii()) {
        let up = s.to_uppercase();
        if up == s {
            Cow::Borrowed(s)
        } else {
            Cow::Owned(up)
        }
    } else {
        Cow::Borrowed(s)
    }
}

/// Lower case, Unicode-aware (`Đ` -> `đ`); borrows when nothing changes.
pub fn lower(s: &str) -> Cow<'_, str> {
    if s.chars().any(|c| c.is_uppercase() || !c.is_ascii()) {
        let low = s.to_lowercase();
        if low == s {
            Cow::Borrowed(s)
        } else {
            Cow::Owned(low)
        }
    } else {
        Cow::Borrowed(s)
    }
}

// ---------------------------------------------------------------------------------------
// Numbers
// ---------------------------------------------------------------------------------------

/// A number in plain notation, split into its parts (all slices of the input).
#[derive(Debug, Clone, Copy)]
struct Plain<'a> {
    negative: bool,
    /// Integer digits, at least one, possibly with leading zeros.
    int: &'a str,
    /// Fraction digits, at least one when present.
    frac: Option<&'a str>,
}

impl Plain<'_> {
    /// Integer digits without redundant leading zeros (`"0"` for zero).
    fn int_trimmed(&self) -> &str {
        let t = self.int.trim_start_matches('0');
        if t.is_empty() { "0" } else { t }
    }

    fn is_zero(&self) -> bool {
        self.int.bytes().all(|b| b == b'0')
            && self.frac.is_none_or(|f| f.bytes().all(|b| b == b'0'))
    }

    /// Normalised decimal text: no `+`, no redundant leading zeros, fraction as given,
    /// no sign on zero.
    fn decimal_string(&self) -> String {
        let int = self.int_trimmed();
        let frac = self.frac.unwrap_or("");
        let mut out = String::with_capacity(int.len() + frac.len() + 2);
        if self.negative && !self.is_zero() {
            out.push('-');
        }
        out.push_str(int);
        if let Some(f) = self.frac {
            out.push('.');
            out.push_str(f);
        }
        out
    }

    /// Significant digits, as rust_decimal counts them (leading zeros of the integer
    /// part do not count; every fraction digit does).
    fn significant_digits(&self) -> usize {
        let int = self.int_trimmed();
        let int_len = if int == "0" { 0 } else { int.len() };
        int_len + self.frac.map_or(0, str::len)
    }

    /// As an i64 when there is no fraction.
    fn to_i64(self) -> Result<i64, ValueError> {
        digits_to_i64(self.negative, self.int)
    }
}

/// `[+-]?\d+(\.\d+)?`, or None.
fn parse_plain(s: &str) -> Option<Plain<'_>> {
    let (negative, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let (int, frac) = match body.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (body, None),
    };
    let all_digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(int) || !frac.is_none_or(all_digits) {
        return None;
    }
    Some(Plain {
        negative,
        int,
        frac,
    })
}

/// ASCII digits (possibly with leading zeros) and a sign to i64, with overflow detection.
fn digits_to_i64(negative: bool, digits: &str) -> Result<i64, ValueError> {
    let t = digits.trim_start_matches('0');
    if t.is_empty() {
        return Ok(0);
    }
    // i64 has at most 19 digits; longer input is out of range without parsing it.
    if t.len() > 19 {
        return Err(ValueError::IntegerOverflow);
    }
    let mut buf = String::with_capacity(20);
    if negative {
        buf.push('-');
    }
    buf.push_str(t);
    buf.parse::<i64>().map_err(|_| ValueError::IntegerOverflow)
}

fn has_exponent(s: &str) -> bool {
    s.bytes().any(|b| b == b'e' || b == b'E')
}

/// The plain form of a JSON number's exact text; exponent notation is refused.
fn number_plain(n: &serde_json::Number) -> Result<Plain<'_>, ValueError> {
    let s = n.as_str();
    if has_exponent(s) {
        return Err(ValueError::Exponent);
    }
    // serde_json only produces valid JSON numbers; anything else is a bug upstream.
    parse_plain(s).ok_or(ValueError::InvalidDecimal)
}

/// Trimmed text of a string leaf, refusing blank text.
fn non_blank(s: &str) -> Result<&str, ValueError> {
    let t = s.trim();
    if t.is_empty() {
        Err(ValueError::Empty)
    } else {
        Ok(t)
    }
}

/// A plain integer: `^[+-]?\d+$` text (surrounding white space ignored) or an integral
/// JSON number, as a JSON number (i64). Fractions, grouping (`5.000`) and exponents
/// are refused: use [`vn_number`] for Vietnamese-formatted amounts.
pub fn integer(v: &Value) -> Result<Value, ValueError> {
    let plain = match v {
        Value::Number(n) => number_plain(n).map_err(|e| match e {
            ValueError::InvalidDecimal => ValueError::InvalidInteger,
            e => e,
        })?,
        Value::String(s) => parse_plain(non_blank(s)?).ok_or(ValueError::InvalidInteger)?,
        Value::Bool(_) => return Err(ValueError::InvalidInteger),
        other => return Err(not_scalar(other)),
    };
    if plain.frac.is_some() {
        return Err(ValueError::InvalidInteger);
    }
    Ok(Value::from(plain.to_i64()?))
}

/// An exact decimal, as a normalised decimal string: no `+`, no redundant leading zeros
/// (`007.50` -> `7.50`), fraction digits kept as given, no sign on zero. Surrounding
/// white space is ignored. Read as:
///
/// 1. a plain decimal `^[+-]?\d+(\.\d+)?$` first, so `1.500` is 1.500 (a JSON number
///    without exponent is always read this way);
/// 2. otherwise, when the text has a `,` or more than one `.`, by the Vietnamese rules
///    of [`vn_number`] (`,` marks decimals, `.` groups thousands in groups of three):
///    `21,8531` -> `"21.8531"`, `7.125.432,50` -> `"7125432.50"`, `1.234.567` ->
///    `"1234567"`. English grouping (`1,234.50`, `1,234,567`) and bad groups (`1.2.3`)
///    are refused with vn_number's errors.
///
/// Exponent notation (`1e5`) is refused rather than converted.
pub fn decimal(v: &Value) -> Result<Value, ValueError> {
    let plain = match v {
        Value::Number(n) => number_plain(n)?,
        Value::String(s) => {
            let t = non_blank(s)?;
            match parse_plain(t) {
                Some(p) => p,
                None if has_exponent(t) && t.bytes().all(|b| b"+-.0123456789eE".contains(&b)) => {
                    return Err(ValueError::Exponent);
                }
                None if t.bytes().all(|b| b"+-.,0123456789".contains(&b))
                    && (t.contains(',') || t.bytes().filter(|b| *b == b'.').count() > 1) =>
                {
                    let vn = split_vn(t).map_err(|e| match e {
                        ValueError::InvalidVnNumber => ValueError::InvalidDecimal,
                        e => e,
                    })?;
                    let plain = Plain {
                        negative: vn.negative,
                        int: &vn.int,
                        frac: vn.frac,
                    };
                    return Ok(Value::String(plain.decimal_string()));
                }
                None => return Err(ValueError::InvalidDecimal),
            }
        }
        Value::Bool(_) => return Err(ValueError::InvalidDecimal),
        other => return Err(not_scalar(other)),
    };
    Ok(Value::String(plain.decimal_string()))
}

/// A number in Vietnamese text format: `.` groups thousands (groups of exactly three
/// digits), `,` marks decimals. Integral values become JSON numbers (i64), others a
/// decimal string: `5.000.000.000` -> 5000000000, `7.125.432,50` -> `"7125432.50"`,
/// `104,79` -> `"104.79"`, `12345` -> 12345. Anything that does not match cleanly is
/// refused (`1.50`, `1,000.50`, `1.2.3`). A JSON number is read as JSON (`.` is its
/// decimal point): an integer stays an integer, a fraction becomes a decimal string.
pub fn vn_number(v: &Value) -> Result<Value, ValueError> {
    match v {
        Value::Number(n) => {
            let plain = number_plain(n)?;
            Ok(match plain.frac {
                None => Value::from(plain.to_i64()?),
                Some(_) => Value::String(plain.decimal_string()),
            })
        }
        Value::String(s) => parse_vn(non_blank(s)?),
        Value::Bool(_) => Err(ValueError::InvalidVnNumber),
        other => Err(not_scalar(other)),
    }
}

/// A Vietnamese-formatted number in parts: sign, integer digits without the group dots,
/// fraction digits.
struct VnParts<'a> {
    negative: bool,
    int: Cow<'a, str>,
    frac: Option<&'a str>,
}

fn parse_vn(s: &str) -> Result<Value, ValueError> {
    let vn = split_vn(s)?;
    let plain = Plain {
        negative: vn.negative,
        int: &vn.int,
        frac: vn.frac,
    };
    Ok(match vn.frac {
        None => Value::from(plain.to_i64()?),
        Some(_) => Value::String(plain.decimal_string()),
    })
}

fn split_vn(s: &str) -> Result<VnParts<'_>, ValueError> {
    let (negative, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let (int, frac) = match body.split_once(',') {
        Some((i, f)) => (i, Some(f)),
        None => (body, None),
    };
    if let Some(f) = frac {
        // `1,000.50` or `1,000,000`: English format.
        if f.contains('.') || f.contains(',') {
            return Err(ValueError::VnNumberEnglishFormat);
        }
        if f.is_empty() || !f.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ValueError::InvalidVnNumber);
        }
    }
    if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(ValueError::InvalidVnNumber);
    }
    let digits: Cow<'_, str> = if int.contains('.') {
        let mut groups = int.split('.');
        let first = groups.next().unwrap_or("");
        // The first group has 1-3 digits and no leading zero (`05.000` is not a number).
        if first.is_empty() || first.len() > 3 || first.starts_with('0') {
            return Err(ValueError::VnNumberGrouping);
        }
        let mut out = String::with_capacity(int.len());
        out.push_str(first);
        for g in groups {
            if g.len() != 3 {
                return Err(ValueError::VnNumberGrouping);
            }
            out.push_str(g);
        }
        Cow::Owned(out)
    } else {
        Cow::Borrowed(int)
    };
    Ok(VnParts {
        negative,
        int: digits,
        frac,
    })
}

/// Reads a factor for [`multiply`] when a mapping is compiled: a plain decimal number
/// (`1000`, `0.001`, `-1`) within the exact decimal range.
pub fn parse_factor(s: &str) -> Result<Decimal, ValueError> {
    let plain = parse_plain(s.trim()).ok_or(ValueError::InvalidFactor)?;
    to_decimal(&plain).map_err(|_| ValueError::InvalidFactor)
}

fn to_decimal(p: &Plain<'_>) -> Result<Decimal, ValueError> {
    if p.significant_digits() > MAX_DECIMAL_DIGITS {
        return Err(ValueError::OutOfRange);
    }
    Decimal::from_str_exact(&p.decimal_string()).map_err(|_| ValueError::OutOfRange)
}

/// Exact product of an integer or decimal (a JSON number, or a decimal string as
/// [`decimal`] and [`vn_number`] produce) and a factor. An integral product becomes a
/// JSON number (i64), any other a decimal string without trailing zeros:
/// `"7125432.50"` x 1000000 -> 7125432500000; `"1.25"` x 10 -> `"12.5"`.
pub fn multiply(v: &Value, factor: &Decimal) -> Result<Value, ValueError> {
    let plain = match v {
        Value::Number(n) => number_plain(n)?,
        Value::String(s) => parse_plain(non_blank(s)?).ok_or(ValueError::MultiplyInput)?,
        Value::Bool(_) => return Err(ValueError::MultiplyInput),
        other => return Err(not_scalar(other)),
    };
    let x = to_decimal(&plain)?;
    let product = x.checked_mul(*factor).ok_or(ValueError::OutOfRange)?;
    if product.is_integer() {
        let digits = product.trunc().normalize().to_string();
        let n = digits
            .parse::<i64>()
            .map_err(|_| ValueError::IntegerOverflow)?;
        Ok(Value::from(n))
    } else {
        Ok(Value::String(product.normalize().to_string()))
    }
}

// ---------------------------------------------------------------------------------------
// Booleans
// ---------------------------------------------------------------------------------------

/// A yes/no value: `1`, `0`, `true`, `false`, `có`, `không`, `yes`, `no` (any case,
/// surrounding white space ignored, NFC or NFD), or a JSON bool.
pub fn boolean(v: &Value) -> Result<Value, ValueError> {
    let s = match v {
        Value::Bool(b) => return Ok(Value::Bool(*b)),
        Value::String(s) => s.as_str(),
        Value::Number(n) => n.as_str(),
        other => return Err(not_scalar(other)),
    };
    let t = non_blank(s)?;
    // The longest accepted word is "không" in NFD (9 bytes); skip work on anything long.
    if t.len() > 16 {
        return Err(ValueError::InvalidBoolean);
    }
    let folded = lower(&nfc(t)).into_owned();
    match folded.as_str() {
        "1" | "true" | "có" | "yes" => Ok(Value::Bool(true)),
        "0" | "false" | "không" | "no" => Ok(Value::Bool(false)),
        _ => Err(ValueError::InvalidBoolean),
    }
}

// ---------------------------------------------------------------------------------------
// Dates and times
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
struct DatePattern {
    text: String,
    /// The pattern reads a UTC offset (`%z`, `%:z`, ...).
    has_offset: bool,
}

/// How `date` and `datetime` read a value: the default family of spellings (see
/// [`DatePatterns::family`]), or date or date-time patterns (chrono `strftime` syntax,
/// e.g. `%d/%m/%Y`) checked once when a mapping is compiled and tried in order on each
/// value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatePatterns {
    /// Empty for the family.
    patterns: Vec<DatePattern>,
}

impl DatePatterns {
    /// The default family of Vietnamese and ISO spellings, read when no pattern is given:
    ///
    /// - day first `d/m/yyyy`, `d-m-yyyy`, `d.m.yyyy` (day and month with one or two
    ///   digits: `dd/mm/yyyy` too), year first `yyyy-mm-dd`, `yyyy/mm/dd`;
    /// - optionally a time after a space (or `T` after a year-first date): `HH:MM` or
    ///   `HH:MM:SS` (the hour may have one digit), then optionally a fraction `.f` of the
    ///   second (1-9 digits) and an offset `Z`, `+07:00` or `+0700`; so every ISO 8601 /
    ///   RFC 3339 date-time with a four-digit year is in it.
    ///
    /// Never month first (`11/20/2025` is refused: month 20), never a two-digit year,
    /// years 1000 to 9999. The digits before the first separator (1-2 or 4) decide day
    /// first or year first, so no two spellings read one value differently, and a value
    /// is read in one pass, without trying spellings in turn.
    pub fn family() -> DatePatterns {
        DatePatterns {
            patterns: Vec::new(),
        }
    }

    /// Is this the default family (no pattern configured)?
    pub fn is_family(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Checks each pattern: known specifiers only, and able to read back a full date it
    /// writes itself (so `%m/%Y` is refused: it has no day).
    pub fn compile(patterns: &[String]) -> Result<DatePatterns, ValueError> {
        if patterns.is_empty() {
            return Err(ValueError::NoDatePatterns);
        }
        let sample = sample_datetime()?;
        let mut compiled = Vec::with_capacity(patterns.len());
        for p in patterns {
            let bad = |reason: &'static str| ValueError::InvalidDatePattern {
                pattern: p.clone(),
                reason,
            };
            if p.trim().is_empty() {
                return Err(bad("empty pattern"));
            }
            if StrftimeItems::new(p).any(|i| matches!(i, Item::Error)) {
                return Err(bad("unknown or incomplete % specifier"));
            }
            let mut written = String::new();
            if write!(written, "{}", sample.format(p)).is_err() {
                return Err(bad("chrono cannot write this pattern"));
            }
            match NaiveDate::parse_from_str(&written, p) {
                Ok(_) => {}
                Err(e) if e.kind() == ParseErrorKind::NotEnough => {
                    return Err(bad(
                        "it does not give a full date (needs year, month and day)",
                    ));
                }
                Err(_) => return Err(bad("chrono cannot read back what this pattern writes")),
            }
            let has_offset = DateTime::parse_from_str(&written, p).is_ok();
            compiled.push(DatePattern {
                text: p.clone(),
                has_offset,
            });
        }
        Ok(DatePatterns { patterns: compiled })
    }

    /// The patterns as configured, in order (none for the family).
    pub fn patterns(&self) -> impl Iterator<Item = &str> {
        self.patterns.iter().map(|p| p.text.as_str())
    }

    fn joined(&self) -> String {
        let mut out = String::new();
        for (i, p) in self.patterns.iter().enumerate() {
            if i > 0 {
                out.push_str(" or ");
            }
            out.push_str(&p.text);
        }
        out
    }
}

fn sample_datetime() -> Result<DateTime<FixedOffset>, ValueError> {
    let offset = FixedOffset::east_opt(VN_OFFSET_SECONDS).ok_or(ValueError::OutOfRange)?;
    NaiveDate::from_ymd_opt(2025, 11, 20)
        .and_then(|d| d.and_hms_opt(16, 42, 5))
        .and_then(|n| n.and_local_timezone(offset).single())
        .ok_or(ValueError::OutOfRange)
}

/// The most telling failure across patterns: a value that had the shape of a pattern
/// but was impossible says more than "does not match".
#[derive(Default)]
struct DateFailure<'p> {
    rank: u8,
    error: Option<(u8, &'p str)>,
}

impl<'p> DateFailure<'p> {
    const YEAR: u8 = 5;
    const IMPOSSIBLE: u8 = 4;
    const TRAILING: u8 = 3;
    const INCOMPLETE: u8 = 2;

    fn record(&mut self, kind: ParseErrorKind, pattern: &'p str) {
        let rank = match kind {
            ParseErrorKind::OutOfRange | ParseErrorKind::Impossible => Self::IMPOSSIBLE,
            ParseErrorKind::TooLong => Self::TRAILING,
            ParseErrorKind::NotEnough => Self::INCOMPLETE,
            _ => 1,
        };
        self.record_rank(rank, pattern);
    }

    fn record_rank(&mut self, rank: u8, pattern: &'p str) {
        if rank > self.rank {
            self.rank = rank;
            self.error = Some((rank, pattern));
        }
    }

    fn into_error(self, kind: DateKind, patterns: &DatePatterns) -> ValueError {
        let pattern = |p: &str| p.to_owned();
        match self.error {
            Some((Self::YEAR, _)) => ValueError::YearOutOfRange,
            Some((Self::IMPOSSIBLE, p)) => ValueError::DateImpossible {
                kind,
                pattern: pattern(p),
            },
            Some((Self::TRAILING, p)) => ValueError::DateTrailingText {
                kind,
                pattern: pattern(p),
            },
            Some((Self::INCOMPLETE, p)) => ValueError::DateIncomplete {
                kind,
                pattern: pattern(p),
            },
            _ => ValueError::DateMismatch {
                kind,
                patterns: patterns.joined(),
            },
        }
    }
}

/// Canonical years have exactly four digits; chrono's `%Y` also reads `25` or `20251`.
fn year_ok(year: i32) -> bool {
    (1000..=9999).contains(&year)
}

fn date_input(v: &Value) -> Result<Cow<'_, str>, ValueError> {
    match v {
        Value::String(s) => Ok(Cow::Borrowed(non_blank(s)?)),
        Value::Number(n) => Ok(Cow::Borrowed(n.as_str())),
        Value::Bool(_) => Ok(Cow::Borrowed("")),
        other => Err(not_scalar(other)),
    }
}

/// A calendar date, as `YYYY-MM-DD`: read with the first of the patterns that matches,
/// or, for [`DatePatterns::family`], in the default family of spellings. `31/02/2025`
/// is "impossible", `10/12/2025 extra` has trailing text; both are refused.
///
/// In the family a date-time gives its date: as written when it has no offset, and the
/// calendar date in Vietnam (UTC+07:00) when it has one, so `2025-11-20T23:30:00Z` is
/// `2025-11-21`.
pub fn date(v: &Value, patterns: &DatePatterns) -> Result<Value, ValueError> {
    let kind = DateKind::Date;
    let s = date_input(v)?;
    if patterns.is_family() {
        let r = read_family(&s, kind)?;
        let d = match (r.time, r.offset) {
            (Some(t), Some(offset)) => vn_local(r.date.and_time(t), offset)?.date_naive(),
            _ => r.date,
        };
        if !year_ok(d.year()) {
            return Err(ValueError::YearOutOfRange);
        }
        return Ok(Value::String(d.format("%Y-%m-%d").to_string()));
    }
    let mut failure = DateFailure::default();
    if s.len() <= MAX_DATE_LEN && !s.is_empty() {
        for p in &patterns.patterns {
            match NaiveDate::parse_from_str(&s, &p.text) {
                Ok(d) if year_ok(d.year()) => {
                    return Ok(Value::String(format!(
                        "{:04}-{:02}-{:02}",
                        d.year(),
                        d.month(),
                        d.day()
                    )));
                }
                Ok(_) => failure.record_rank(DateFailure::YEAR, &p.text),
                Err(e) => failure.record(e.kind(), &p.text),
            }
        }
    }
    Err(failure.into_error(kind, patterns))
}

/// A date and time read with the first pattern that matches (or in the default family
/// of spellings, [`DatePatterns::family`]), as RFC 3339 with seconds
/// (`2025-11-20T16:42:05+07:00`; fractional seconds kept when present). An offset read
/// (`%z`, `%:z`; `Z`, `+07:00`, `+0700` in the family) is kept; without one the time is
/// Vietnam local time and written with `+07:00`. In the family a date without a time is
/// refused: midnight would be a guess.
pub fn datetime(v: &Value, patterns: &DatePatterns) -> Result<Value, ValueError> {
    let kind = DateKind::DateTime;
    let s = date_input(v)?;
    let vn = FixedOffset::east_opt(VN_OFFSET_SECONDS).ok_or(ValueError::OutOfRange)?;
    if patterns.is_family() {
        let r = read_family(&s, kind)?;
        let time = r.time.ok_or(ValueError::DateWithoutTime)?;
        let dt = r
            .date
            .and_time(time)
            .and_local_timezone(r.offset.unwrap_or(vn))
            .single()
            .ok_or(ValueError::OutOfRange)?;
        return Ok(Value::String(
            dt.to_rfc3339_opts(SecondsFormat::AutoSi, false),
        ));
    }
    let mut failure = DateFailure::default();
    if s.len() <= MAX_DATE_LEN && !s.is_empty() {
        for p in &patterns.patterns {
            let parsed: Result<DateTime<FixedOffset>, ParseErrorKind> = if p.has_offset {
                DateTime::parse_from_str(&s, &p.text).map_err(|e| e.kind())
            } else {
                NaiveDateTime::parse_from_str(&s, &p.text)
                    .map_err(|e| e.kind())
                    // A fixed offset never makes a local time ambiguous or missing.
                    .and_then(|n| {
                        n.and_local_timezone(vn)
                            .single()
                            .ok_or(ParseErrorKind::OutOfRange)
                    })
            };
            match parsed {
                Ok(dt) if year_ok(dt.year()) => {
                    return Ok(Value::String(
                        dt.to_rfc3339_opts(SecondsFormat::AutoSi, false),
                    ));
                }
                Ok(_) => failure.record_rank(DateFailure::YEAR, &p.text),
                Err(e) => failure.record(e, &p.text),
            }
        }
    }
    Err(failure.into_error(kind, patterns))
}

/// `s` read in the default family, refusals as value errors of `kind`.
fn read_family(s: &str, kind: DateKind) -> Result<date_family::Reading, ValueError> {
    if s.len() > MAX_DATE_LEN {
        return Err(ValueError::DateNotInFamily { kind });
    }
    date_family::read(s).map_err(|r| match r {
        Refusal::Mismatch => ValueError::DateNotInFamily { kind },
        Refusal::TwoDigitYear => ValueError::DateTwoDigitYear { kind },
        Refusal::Year => ValueError::YearOutOfRange,
        Refusal::Impossible { shape, part } => ValueError::DateOutOfRange {
            kind,
            part,
            shape: shape.name(),
        },
        Refusal::Trailing { shape } => ValueError::DateTrailingText {
            kind,
            pattern: shape.name().to_owned(),
        },
    })
}

/// A date-time at `offset`, as Vietnam local time.
fn vn_local(
    local: NaiveDateTime,
    offset: FixedOffset,
) -> Result<DateTime<FixedOffset>, ValueError> {
    let vn = FixedOffset::east_opt(VN_OFFSET_SECONDS).ok_or(ValueError::OutOfRange)?;
    local
        .and_local_timezone(offset)
        .single()
        .map(|dt| dt.with_timezone(&vn))
        .ok_or(ValueError::OutOfRange)
}

// ---------------------------------------------------------------------------------------
// Codes and lists
// ---------------------------------------------------------------------------------------

/// Whether `c` is one of the separators people write inside tax codes: white space,
/// dots and hyphens (including the dash look-alikes spreadsheets substitute).
pub(crate) fn is_tax_code_separator(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '.' | '-' | '\u{2010}' | '\u{2011}' | '\u{2013}' | '\u{2212}'
        )
}

/// The compact key form of a tax code: `4941209473-001` -> `"4941209473001"`,
/// `0100 233 488` -> `"0100233488"`. Does not validate; see [`super::tax_code`].
pub fn compact_tax_code(v: &Value) -> Result<Value, ValueError> {
    let s = text(v)?;
    let compact: String = s.chars().filter(|c| !is_tax_code_separator(*c)).collect();
    Ok(Value::String(compact))
}

/// Splits text on `sep` into a list of trimmed, non-empty strings.
pub fn split(v: &Value, sep: &str) -> Result<Value, ValueError> {
    if sep.is_empty() {
        return Err(ValueError::EmptySeparator);
    }
    let s = text(v)?;
    Ok(Value::Array(
        s.split(sep)
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(|t| Value::String(t.to_owned()))
            .collect(),
    ))
}

fn not_scalar(v: &Value) -> ValueError {
    match text(v) {
        Err(e) => e,
        Ok(_) => ValueError::NotScalar {
            found: "a value of another kind",
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use unicode_normalization::char::canonical_combining_class;

    /// The characters answered without tables really are NFC_Quick_Check=Yes with
    /// combining class 0 (the two conditions under which any sequence of them is NFC).
    #[test]
    fn the_plain_ranges_are_quick_check_yes_and_class_zero() {
        let plain = ('\0'..'\u{300}').chain('\u{1E00}'..='\u{1EFF}');
        for c in plain {
            assert!(plainly_nfc(c));
            assert_eq!(
                is_nfc_quick(std::iter::once(c)),
                IsNormalized::Yes,
                "U+{:04X}",
                u32::from(c)
            );
            assert_eq!(canonical_combining_class(c), 0, "U+{:04X}", u32::from(c));
        }
        assert!(!plainly_nfc('\u{300}') && !plainly_nfc('\u{1F00}'));
    }

    #[test]
    fn nfc_agrees_with_the_full_normalisation() {
        let cases = [
            "Nguyễn Văn An",
            "Nguye\u{302}\u{303}n", // decomposed ễ
            "Thành phố Hồ Chí Minh",
            "a\u{301}",        // a + combining acute
            "\u{1EC5}\u{301}", // precomposed then a combining mark
            "Ω Å ﬁ",           // compatibility characters stay
            "",
        ];
        for s in cases {
            let full: String = s.nfc().collect();
            assert_eq!(nfc(s), full, "{s:?}");
            // `is_nfc` may answer no for NFC text it cannot tell cheaply (a `Maybe` of
            // the quick check): then `nfc` normalises, to the same text. Never yes wrongly.
            assert!(!is_nfc(s) || s == full, "{s:?}");
        }
        assert!(is_nfc("Nguyễn Văn An, Thành phố Hồ Chí Minh, Đắk Lắk"));
    }
}
