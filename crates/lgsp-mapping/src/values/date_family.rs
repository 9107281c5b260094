//! The default family of date spellings: what `date` and `datetime` read when a mapping
//! gives them no pattern.
//!
//! A date is one of
//!
//! - day first: `d/m/yyyy`, `d-m-yyyy`, `d.m.yyyy` (day and month with one or two
//!   digits, so `dd/mm/yyyy` too);
//! - year first: `yyyy-mm-dd`, `yyyy/mm/dd` (month and day with one or two digits);
//!
//! optionally followed by a time: a space (or `T` after a year-first date), `H:MM` or
//! `HH:MM`, optionally `:SS`, optionally a fraction of a second `.f` (1 to 9 digits)
//! after the seconds, optionally an offset `Z`, `+07:00` or `+0700` (`-` too). So every
//! ISO 8601 / RFC 3339 date-time with a four-digit year is in the family.
//!
//! Never month first (`11/20/2025` is month 20, impossible), never a two-digit year,
//! years 1000 to 9999 only.
//!
//! No two spellings can read one value differently: the number of digits before the
//! first separator decides the order (1-2: day first, 4: year first), and the rest of
//! the grammar only adds a time, whose reading does not depend on the date's spelling.
//! A value is read in one pass (the caller bounds its length), without
//! trying spellings one after another.

use chrono::{FixedOffset, NaiveDate, NaiveTime};

/// The spelling of the date part of a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    DaySlash,
    DayDash,
    DayDot,
    YearDash,
    YearSlash,
}

impl Shape {
    /// The spelling, as the documentation writes it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Shape::DaySlash => "dd/mm/yyyy",
            Shape::DayDash => "dd-mm-yyyy",
            Shape::DayDot => "dd.mm.yyyy",
            Shape::YearDash => "yyyy-mm-dd",
            Shape::YearSlash => "yyyy/mm/dd",
        }
    }

    pub(crate) fn day_first(self) -> bool {
        matches!(self, Shape::DaySlash | Shape::DayDash | Shape::DayDot)
    }
}

/// A value of the family, read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reading {
    pub date: NaiveDate,
    pub time: Option<NaiveTime>,
    /// Only with a time.
    pub offset: Option<FixedOffset>,
}

/// Why a value is not in the family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// It has the shape of no spelling.
    Mismatch,
    /// Day first with a two-digit year.
    TwoDigitYear,
    /// A year of other than four digits, or before 1000.
    Year,
    /// The shape of a spelling, but a part out of range (`day`, `month`, ...).
    Impossible { shape: Shape, part: &'static str },
    /// A date (and maybe a time), then more text.
    Trailing { shape: Shape },
}

struct Scan<'a> {
    b: &'a [u8],
    i: usize,
}

impl Scan<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    /// A run of ASCII digits: its value (saturated; only short runs are used) and length.
    fn digits(&mut self) -> (u32, usize) {
        let start = self.i;
        let mut n: u32 = 0;
        while let Some(c) = self.peek().filter(u8::is_ascii_digit) {
            n = n.saturating_mul(10).saturating_add(u32::from(c - b'0'));
            self.i += 1;
        }
        (n, self.i - start)
    }

    /// Exactly two digits.
    fn two(&mut self) -> Option<u32> {
        match self.digits() {
            (n, 2) => Some(n),
            _ => None,
        }
    }

    /// The next two bytes as two digits, whatever follows (`+0700`).
    fn pair(&mut self) -> Option<u32> {
        let (a, b) = (self.b.get(self.i)?, self.b.get(self.i + 1)?);
        if a.is_ascii_digit() && b.is_ascii_digit() {
            self.i += 2;
            Some(u32::from(a - b'0') * 10 + u32::from(b - b'0'))
        } else {
            None
        }
    }

    fn done(&self) -> bool {
        self.i == self.b.len()
    }
}

/// Reads `s` (already trimmed) as a member of the family.
pub(crate) fn read(s: &str) -> Result<Reading, Refusal> {
    let mut sc = Scan {
        b: s.as_bytes(),
        i: 0,
    };
    let (first, first_len) = sc.digits();
    let sep = sc.peek().ok_or(Refusal::Mismatch)?;
    let shape = match (first_len, sep) {
        (1 | 2, b'/') => Shape::DaySlash,
        (1 | 2, b'-') => Shape::DayDash,
        (1 | 2, b'.') => Shape::DayDot,
        (4, b'-') => Shape::YearDash,
        (4, b'/') => Shape::YearSlash,
        _ => return Err(Refusal::Mismatch),
    };
    sc.i += 1;
    let (second, second_len) = sc.digits();
    if !(1..=2).contains(&second_len) || !sc.eat(sep) {
        return Err(Refusal::Mismatch);
    }
    let (third, third_len) = sc.digits();
    let (year, month, day) = if shape.day_first() {
        match third_len {
            4 => {}
            2 => return Err(Refusal::TwoDigitYear),
            0 => return Err(Refusal::Mismatch),
            _ => return Err(Refusal::Year),
        }
        (third, second, first)
    } else {
        if !(1..=2).contains(&third_len) {
            return Err(Refusal::Mismatch);
        }
        (first, second, third)
    };
    if year < 1000 {
        return Err(Refusal::Year);
    }
    let impossible = |part| Refusal::Impossible { shape, part };
    if !(1..=12).contains(&month) {
        return Err(impossible("month"));
    }
    let year = i32::try_from(year).map_err(|_| Refusal::Year)?;
    let date = NaiveDate::from_ymd_opt(year, month, day).ok_or(impossible("day"))?;
    if sc.done() {
        return Ok(Reading {
            date,
            time: None,
            offset: None,
        });
    }
    let trailing = Refusal::Trailing { shape };
    let before_time = sc.peek();
    if !(before_time == Some(b' ') || (before_time == Some(b'T') && !shape.day_first())) {
        return Err(trailing);
    }
    sc.i += 1;
    let (hour, hour_len) = sc.digits();
    if !(1..=2).contains(&hour_len) || !sc.eat(b':') {
        return Err(trailing);
    }
    let minute = sc.two().ok_or(trailing)?;
    let (second, has_seconds) = if sc.eat(b':') {
        (sc.two().ok_or(trailing)?, true)
    } else {
        (0, false)
    };
    // A fraction follows seconds only (`HH:MM:SS.f`); after minutes the `.` is trailing.
    let nano = if has_seconds && sc.eat(b'.') {
        let (frac, frac_len) = sc.digits();
        if !(1..=9).contains(&frac_len) {
            return Err(trailing);
        }
        // At most nine digits: frac < 10^9 and the exponent is 0..=8.
        frac * 10u32.pow(9 - frac_len as u32)
    } else {
        0
    };
    if hour > 23 {
        return Err(impossible("hour"));
    }
    if minute > 59 {
        return Err(impossible("minute"));
    }
    if second > 59 {
        return Err(impossible("second"));
    }
    let time = NaiveTime::from_hms_nano_opt(hour, minute, second, nano).ok_or(trailing)?;
    let offset = match sc.peek() {
        None => None,
        Some(b'Z') => {
            sc.i += 1;
            FixedOffset::east_opt(0)
        }
        Some(sign @ (b'+' | b'-')) => {
            sc.i += 1;
            let h = sc.pair().ok_or(trailing)?;
            sc.eat(b':');
            let m = sc.pair().ok_or(trailing)?;
            if h > 23 || m > 59 {
                return Err(impossible("offset"));
            }
            let secs = i32::try_from(h * 3600 + m * 60).map_err(|_| impossible("offset"))?;
            FixedOffset::east_opt(if sign == b'-' { -secs } else { secs })
        }
        Some(_) => return Err(trailing),
    };
    if !sc.done() {
        return Err(trailing);
    }
    Ok(Reading {
        date,
        time: Some(time),
        offset,
    })
}
