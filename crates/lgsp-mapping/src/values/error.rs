//! The error every transform and check returns.
//!
//! Messages are lower case, have no trailing period, say what is wrong and what is
//! expected, and never contain the input value: the caller adds it (masked when the
//! value is personal, see [`crate::values::mask`]). [`ValueError::code`] is a stable
//! identifier for programs and reports.

/// Which kind of temporal value a date error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DateKind {
    /// A calendar date (`date` transform).
    Date,
    /// A date with a time of day (`datetime` transform).
    DateTime,
}

impl DateKind {
    fn noun(self) -> &'static str {
        match self {
            DateKind::Date => "date",
            DateKind::DateTime => "date and time",
        }
    }
}

/// What is wrong with one value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValueError {
    /// An object, a list or null where one value was expected.
    #[error("expected a single value, found {found}")]
    NotScalar {
        /// `"an object"`, `"a list"` or `"null"`.
        found: &'static str,
    },
    /// Empty (or blank) text where a value was expected.
    #[error("expected a value, found empty text")]
    Empty,

    /// Not a plain integer.
    #[error(
        "expected an integer (digits with an optional sign, no grouping or fraction); \
         use vn_number for Vietnamese-formatted amounts such as 5.000.000"
    )]
    InvalidInteger,
    /// An integer that does not fit in 64 bits.
    #[error(
        "integer out of range, expected a value between -9223372036854775808 and 9223372036854775807"
    )]
    IntegerOverflow,
    /// Not a plain decimal number.
    #[error(
        "expected a decimal number such as 37.5 (digits, optional sign, optional '.' and fraction digits) \
         or in Vietnamese format such as 21,8531 or 7.125.432,50 ('.' between thousands, ',' before decimals)"
    )]
    InvalidDecimal,
    /// A number written with an exponent (`1e5`).
    #[error("exponent notation is not accepted, expected plain digits such as 100000 or 37.5")]
    Exponent,

    /// Not a clean Vietnamese-formatted number.
    #[error(
        "expected a Vietnamese-formatted number such as 5.000.000 or 7.125.432,50 \
         (optional '-', digits, '.' between thousands, ',' before decimals)"
    )]
    InvalidVnNumber,
    /// Thousands groups of the wrong size (`1.50`, `1.2.3`).
    #[error(
        "thousands groups must have exactly 3 digits after the first group (e.g. 1.500.000); \
         a '.' is never a decimal point in Vietnamese format, use ',' for decimals"
    )]
    VnNumberGrouping,
    /// English format (`1,000.50`) where Vietnamese format was expected.
    #[error(
        "found English number format (',' before '.'), expected Vietnamese format \
         where '.' groups thousands and ',' marks decimals (e.g. 1.000,50)"
    )]
    VnNumberEnglishFormat,

    /// The input of `multiply` is not an integer or decimal number.
    #[error("expected an integer or a decimal number to multiply (such as 12 or 7125432.50)")]
    MultiplyInput,
    /// A number or product outside the exact decimal range.
    #[error(
        "number out of range for exact arithmetic, expected at most 28 significant digits \
         and an integral result within 64 bits"
    )]
    OutOfRange,
    /// A `multiply` factor that is not a plain decimal number.
    #[error("invalid factor, expected a plain decimal number such as 1000 or 0.001")]
    InvalidFactor,

    /// Not a yes/no value.
    #[error("expected a yes/no value: 1, 0, true, false, có, không, yes or no")]
    InvalidBoolean,

    /// No date pattern was given.
    #[error("at least one date pattern is required, such as %d/%m/%Y")]
    NoDatePatterns,
    /// A date pattern chrono cannot use.
    #[error("invalid date pattern {pattern:?}: {reason}")]
    InvalidDatePattern {
        /// The pattern as configured.
        pattern: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The value matches none of the patterns.
    #[error("{} does not match pattern {patterns}", kind.noun())]
    DateMismatch {
        /// Date or date and time.
        kind: DateKind,
        /// The patterns tried, joined with " or ".
        patterns: String,
    },
    /// The value has the shape of a pattern but names a day that does not exist.
    #[error("impossible {} (day, month or time out of range) for pattern {pattern}", kind.noun())]
    DateImpossible {
        /// Date or date and time.
        kind: DateKind,
        /// The pattern whose shape matched.
        pattern: String,
    },
    /// The value starts like a date but has more text after it.
    #[error("unexpected text after the {} for pattern {pattern}", kind.noun())]
    DateTrailingText {
        /// Date or date and time.
        kind: DateKind,
        /// The pattern whose shape matched.
        pattern: String,
    },
    /// The pattern matched but does not give every part needed.
    #[error("pattern {pattern} does not give a full {}", kind.noun())]
    DateIncomplete {
        /// Date or date and time.
        kind: DateKind,
        /// The pattern that matched.
        pattern: String,
    },
    /// A year the canonical `YYYY` form cannot hold.
    #[error("year out of range, expected a four-digit year between 1000 and 9999")]
    YearOutOfRange,
    /// A value in none of the spellings of the default family (no pattern configured).
    #[error(
        "{} in no known spelling, expected day first (dd/mm/yyyy, dd-mm-yyyy, dd.mm.yyyy) \
         or year first (yyyy-mm-dd, yyyy/mm/dd){}; give the transform a pattern for any other spelling",
        kind.noun(),
        match kind {
            DateKind::Date => ", optionally with a time",
            DateKind::DateTime => " followed by a time HH:MM or HH:MM:SS",
        }
    )]
    DateNotInFamily {
        /// Date or date and time.
        kind: DateKind,
    },
    /// A two-digit year (`20/11/25`): the century would be a guess.
    #[error(
        "two-digit year in the {}, the century would be a guess; send the year with four digits \
         (e.g. 20/11/2025)",
        kind.noun()
    )]
    DateTwoDigitYear {
        /// Date or date and time.
        kind: DateKind,
    },
    /// A value of the default family whose day, month or time does not exist
    /// (`31/02/2025`, `11/20/2025`: read day first, month 20).
    #[error(
        "impossible {}: {part} out of range for {shape}{}",
        kind.noun(),
        if shape.starts_with("dd") {
            ", which is read day first (never month first); correct the value at the source"
        } else {
            "; correct the value at the source"
        }
    )]
    DateOutOfRange {
        /// Date or date and time.
        kind: DateKind,
        /// `day`, `month`, `hour`, `minute`, `second` or `offset`.
        part: &'static str,
        /// The spelling whose shape the value has, e.g. `dd/mm/yyyy`.
        shape: &'static str,
    },
    /// A date without a time where a date and time is expected.
    #[error(
        "expected a date and time, found a date without a time; send the time too \
         (e.g. 20/11/2025 16:42:05) or use the date transform"
    )]
    DateWithoutTime,

    /// `split` with an empty separator.
    #[error("the separator of split must not be empty")]
    EmptySeparator,

    /// Tax code of a length that is none of 10, 12 or 13.
    #[error(
        "a tax code has 10 digits, 13 digits (10 and a branch 001-999, often written 0123456789-001) \
         or 12 digits (personal id)"
    )]
    TaxCodeLength,
    /// Tax code with characters other than digits (after removing spaces, dots and hyphens).
    #[error("a tax code has only digits (spaces, dots and hyphens are ignored)")]
    TaxCodeNotDigits,
    /// Digits 3 to 9 all zero.
    #[error("invalid tax code: digits 3 to 9 (the sequence) must not all be zero")]
    TaxCodeZeroSequence,
    /// The first nine digits admit no check digit (sum mod 11 is 0): never issued.
    #[error(
        "invalid tax code: no check digit exists for these first 9 digits, such codes are not issued"
    )]
    TaxCodeUnissuable,
    /// Wrong 10th digit.
    #[error("invalid tax code: wrong check digit (10th digit)")]
    TaxCodeCheckDigit,
    /// Branch suffix `000`.
    #[error("invalid tax code: branch suffix 000 is not issued, expected 001 to 999")]
    TaxCodeBranch,

    /// A 9-digit number given as a citizen id.
    #[error("a 9-digit number is an old identity card number (CMND), not a citizen id")]
    CitizenIdCmnd,
    /// Not 12 digits.
    #[error("a citizen id has exactly 12 digits")]
    CitizenIdFormat,

    /// Not 7 digits.
    #[error("a budget unit code has exactly 7 digits")]
    BudgetUnitCode,
    /// A VSIC industry code that is not 4 or 5 digits.
    #[error("not a VSIC 2018 code: expected 4 digits (class) or 5 (subclass), e.g. 4933")]
    VsicCode,

    /// Fewer characters than allowed.
    #[error("too short: {actual} characters, expected at least {min}")]
    TooShort {
        /// Minimum number of characters.
        min: usize,
        /// Number of characters found.
        actual: usize,
    },
    /// More characters than allowed.
    #[error("too long: {actual} characters, expected at most {max}")]
    TooLong {
        /// Maximum number of characters.
        max: usize,
        /// Number of characters found.
        actual: usize,
    },
    /// A code not in the code table of a `lookup`.
    #[error("code not in table `{table}`; add it to the table or give the lookup a default")]
    NotInTable {
        /// The table's name.
        table: String,
    },
    /// A value outside the allowed list of an `enum` check.
    #[error("value not allowed, expected one of: {allowed}")]
    NotInEnum {
        /// The allowed values, comma-separated.
        allowed: String,
    },
    /// A value that does not match a `regex` check.
    #[error("value does not match the pattern {pattern}")]
    NoMatch {
        /// The pattern.
        pattern: String,
    },
}

impl ValueError {
    /// A stable identifier for this kind of error, e.g. `"tax_code.check_digit"`.
    pub fn code(&self) -> &'static str {
        use ValueError as E;
        let date = |kind: &DateKind, d: &'static str, dt: &'static str| match kind {
            DateKind::Date => d,
            DateKind::DateTime => dt,
        };
        match self {
            E::NotScalar { .. } => "value.not_scalar",
            E::Empty => "value.empty",
            E::InvalidInteger => "integer.invalid",
            E::IntegerOverflow => "integer.overflow",
            E::InvalidDecimal => "decimal.invalid",
            E::Exponent => "number.exponent",
            E::InvalidVnNumber => "vn_number.invalid",
            E::VnNumberGrouping => "vn_number.grouping",
            E::VnNumberEnglishFormat => "vn_number.english_format",
            E::MultiplyInput => "multiply.invalid",
            E::OutOfRange => "number.out_of_range",
            E::InvalidFactor => "multiply.factor",
            E::InvalidBoolean => "boolean.invalid",
            E::NoDatePatterns => "date.no_pattern",
            E::InvalidDatePattern { .. } => "date.pattern",
            E::DateMismatch { kind, .. } => date(kind, "date.mismatch", "datetime.mismatch"),
            E::DateImpossible { kind, .. } => date(kind, "date.impossible", "datetime.impossible"),
            E::DateTrailingText { kind, .. } => {
                date(kind, "date.trailing_text", "datetime.trailing_text")
            }
            E::DateIncomplete { kind, .. } => date(kind, "date.incomplete", "datetime.incomplete"),
            E::YearOutOfRange => "date.year_out_of_range",
            E::DateNotInFamily { kind } => date(kind, "date.mismatch", "datetime.mismatch"),
            E::DateTwoDigitYear { kind } => {
                date(kind, "date.two_digit_year", "datetime.two_digit_year")
            }
            E::DateOutOfRange { kind, .. } => date(kind, "date.impossible", "datetime.impossible"),
            E::DateWithoutTime => "datetime.no_time",
            E::EmptySeparator => "split.empty_separator",
            E::TaxCodeLength => "tax_code.length",
            E::TaxCodeNotDigits => "tax_code.not_digits",
            E::TaxCodeZeroSequence => "tax_code.zero_sequence",
            E::TaxCodeUnissuable => "tax_code.no_check_digit",
            E::TaxCodeCheckDigit => "tax_code.check_digit",
            E::TaxCodeBranch => "tax_code.branch",
            E::CitizenIdCmnd => "citizen_id.cmnd",
            E::CitizenIdFormat => "citizen_id.format",
            E::BudgetUnitCode => "budget_unit_code.format",
            E::VsicCode => "vsic_code.format",
            E::TooShort { .. } => "length.too_short",
            E::TooLong { .. } => "length.too_long",
            E::NotInTable { .. } => "lookup.not_in_table",
            E::NotInEnum { .. } => "enum.not_allowed",
            E::NoMatch { .. } => "regex.no_match",
        }
    }
}
