//! Tests of the single-value transforms: text, numbers, booleans, dates, tax-code
//! compaction and splitting, including hostile inputs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::borrow::Cow;
use std::time::{Duration, Instant};

use lgsp_mapping::values::{
    DatePatterns, ValueError, boolean, compact_tax_code, date, datetime, decimal, integer, lower,
    multiply, nfc, parse_factor, split, text, trim, upper, vn_number,
};
use serde_json::{Value, json};

/// A JSON value parsed from source text, so numbers keep their exact text.
fn j(src: &str) -> Value {
    serde_json::from_str(src).unwrap()
}

fn s(x: &str) -> Value {
    Value::String(x.to_owned())
}

fn err_code(r: Result<Value, ValueError>) -> &'static str {
    match r {
        Ok(v) => panic!("expected an error, got {v}"),
        Err(e) => e.code(),
    }
}

fn pats(p: &[&str]) -> DatePatterns {
    DatePatterns::compile(&p.iter().map(|x| x.to_string()).collect::<Vec<_>>()).unwrap()
}

// ----- text --------------------------------------------------------------------------

#[test]
fn text_of_scalars() {
    assert_eq!(text(&s("abc")).unwrap(), "abc");
    assert_eq!(text(&j("12.50")).unwrap(), "12.50");
    assert_eq!(
        text(&j("123456789012345678901234567890")).unwrap(),
        "123456789012345678901234567890"
    );
    assert_eq!(text(&json!(true)).unwrap(), "true");
    assert_eq!(text(&json!(false)).unwrap(), "false");
    assert_eq!(
        text(&json!({})).unwrap_err().to_string(),
        "expected a single value, found an object"
    );
    assert_eq!(
        text(&json!([])).unwrap_err().to_string(),
        "expected a single value, found a list"
    );
    assert_eq!(
        text(&Value::Null).unwrap_err().to_string(),
        "expected a single value, found null"
    );
    assert_eq!(text(&Value::Null).unwrap_err().code(), "value.not_scalar");
}

#[test]
fn nfc_trim_case() {
    let nfd = "Nguye\u{0302}\u{0303}n Vie\u{0323}\u{0302}t";
    assert_eq!(nfc(nfd), "Nguyễn Việt");
    assert!(matches!(nfc("Nguyễn Việt"), Cow::Borrowed(_)));
    assert_eq!(trim("\u{a0} Hà Nội \n"), "Hà Nội");
    assert_eq!(upper("đường lê lợi"), "ĐƯỜNG LÊ LỢI");
    assert_eq!(lower("ĐƯỜNG LÊ LỢI"), "đường lê lợi");
    assert!(matches!(upper("ABC 1"), Cow::Borrowed(_)));
    assert!(matches!(lower("abc 1"), Cow::Borrowed(_)));
    assert!(matches!(upper("ĐÀ"), Cow::Borrowed(_)));
    assert_eq!(upper(""), "");
}

// ----- integer -----------------------------------------------------------------------

#[test]
fn integer_accepts_plain_integers() {
    assert_eq!(integer(&s("12345")).unwrap(), json!(12345));
    assert_eq!(integer(&s("+7")).unwrap(), json!(7));
    assert_eq!(integer(&s("-0042")).unwrap(), json!(-42));
    assert_eq!(integer(&s(" 10 ")).unwrap(), json!(10));
    assert_eq!(integer(&s("-0")).unwrap(), json!(0));
    assert_eq!(integer(&j("5000000000")).unwrap(), json!(5_000_000_000_i64));
    assert_eq!(integer(&s("9223372036854775807")).unwrap(), json!(i64::MAX));
    assert_eq!(
        integer(&s("-9223372036854775808")).unwrap(),
        json!(i64::MIN)
    );
    assert_eq!(integer(&s("0000000000000000000000001")).unwrap(), json!(1));
}

#[test]
fn integer_refuses_the_rest() {
    assert_eq!(
        err_code(integer(&s("9223372036854775808"))),
        "integer.overflow"
    );
    assert_eq!(
        err_code(integer(&s("-9223372036854775809"))),
        "integer.overflow"
    );
    assert_eq!(
        err_code(integer(&j("123456789012345678901234567890"))),
        "integer.overflow"
    );
    let e = integer(&s("5.000")).unwrap_err();
    assert_eq!(e.code(), "integer.invalid");
    assert!(
        e.to_string()
            .contains("use vn_number for Vietnamese-formatted amounts such as 5.000.000")
    );
    for bad in [
        "5,000", "1.5", "12a", "--1", "+", "-", "1 000", "٣", "0x10", "1_000",
    ] {
        assert_eq!(err_code(integer(&s(bad))), "integer.invalid", "{bad}");
    }
    assert_eq!(err_code(integer(&j("1.5"))), "integer.invalid");
    assert_eq!(err_code(integer(&j("5.0"))), "integer.invalid");
    assert_eq!(err_code(integer(&j("1e5"))), "number.exponent");
    assert_eq!(err_code(integer(&s(""))), "value.empty");
    assert_eq!(err_code(integer(&s("   "))), "value.empty");
    assert_eq!(err_code(integer(&json!(true))), "integer.invalid");
    assert_eq!(err_code(integer(&json!([1]))), "value.not_scalar");
}

#[test]
fn huge_inputs_are_fast_and_do_not_panic() {
    let digits = "7".repeat(1 << 20);
    let start = Instant::now();
    assert_eq!(err_code(integer(&s(&digits))), "integer.overflow");
    assert_eq!(decimal(&s(&digits)).unwrap(), s(&digits));
    let frac = format!("0.{digits}");
    assert_eq!(decimal(&s(&frac)).unwrap(), s(&frac));
    assert_eq!(err_code(vn_number(&s(&digits))), "integer.overflow");
    assert_eq!(
        err_code(multiply(&s(&digits), &parse_factor("2").unwrap())),
        "number.out_of_range"
    );
    let dots = "1.".repeat(1 << 19);
    assert_eq!(err_code(vn_number(&s(&dots))), "vn_number.grouping");
    let groups = format!("1{}", ".000".repeat(1 << 18));
    assert_eq!(err_code(vn_number(&s(&groups))), "integer.overflow");
    assert_eq!(err_code(boolean(&s(&digits))), "boolean.invalid");
    let p = pats(&["%d/%m/%Y"]);
    assert_eq!(err_code(date(&s(&digits), &p)), "date.mismatch");
    assert_eq!(err_code(datetime(&s(&digits), &p)), "datetime.mismatch");
    assert_eq!(split(&s(&",".repeat(1 << 20)), ",").unwrap(), json!([]));
    assert_eq!(compact_tax_code(&s(&"-".repeat(1 << 20))).unwrap(), s(""));
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
}

// ----- decimal -----------------------------------------------------------------------

#[test]
fn decimal_normalises_exactly() {
    let cases = [
        ("007.50", "7.50"),
        ("-0.5", "-0.5"),
        ("+3.140", "3.140"),
        ("37.5", "37.5"),
        ("0", "0"),
        ("-0", "0"),
        ("-0.00", "0.00"),
        ("000", "0"),
        ("12", "12"),
        (" 3181818.18 ", "3181818.18"),
        (
            "123456789012345678901234567890.123456789",
            "123456789012345678901234567890.123456789",
        ),
    ];
    for (input, want) in cases {
        assert_eq!(decimal(&s(input)).unwrap(), s(want), "{input}");
    }
    assert_eq!(decimal(&j("25315.50")).unwrap(), s("25315.50"));
    assert_eq!(decimal(&j("-12")).unwrap(), s("-12"));
    assert_eq!(decimal(&j("0.1")).unwrap(), s("0.1"));
}

#[test]
fn decimal_refuses_the_rest() {
    assert_eq!(err_code(decimal(&j("1e5"))), "number.exponent");
    assert_eq!(err_code(decimal(&j("1.5E-3"))), "number.exponent");
    assert_eq!(err_code(decimal(&s("1e5"))), "number.exponent");
    for bad in ["1.", ".5", "abc", "1e", "NaN", "inf", "- 1", "1.5a"] {
        let c = err_code(decimal(&s(bad)));
        assert!(
            c == "decimal.invalid" || c == "number.exponent",
            "{bad}: {c}"
        );
    }
    assert_eq!(err_code(decimal(&s(""))), "value.empty");
    assert_eq!(err_code(decimal(&json!(false))), "decimal.invalid");
    assert_eq!(err_code(decimal(&json!({"a": 1}))), "value.not_scalar");
}

#[test]
fn decimal_reads_a_vietnamese_decimal_comma() {
    let cases = [
        ("21,8531", "21.8531"),
        ("7.125.432,50", "7125432.50"),
        ("1.234.567", "1234567"),
        ("-0,5", "-0.5"),
        ("+1.000,25", "1000.25"),
        ("0,00", "0.00"),
        ("-0,00", "0.00"),
        ("1,000", "1.000"),
        (" 104,79 ", "104.79"),
        // A plain decimal is read first: one '.' is a decimal point.
        ("1.500", "1.500"),
        ("1.234", "1.234"),
        // Beyond i64: still exact.
        ("9.223.372.036.854.775.808", "9223372036854775808"),
    ];
    for (input, want) in cases {
        assert_eq!(decimal(&s(input)).unwrap(), s(want), "{input}");
    }
    let refused = [
        ("1,234.50", "vn_number.english_format"),
        ("1,234,567", "vn_number.english_format"),
        ("1.2.3", "vn_number.grouping"),
        ("1.50,5", "vn_number.grouping"),
        ("05.000,5", "vn_number.grouping"),
        ("1..000", "vn_number.grouping"),
        ("1,", "decimal.invalid"),
        (",5", "decimal.invalid"),
        ("-,5", "decimal.invalid"),
        ("1,5a", "decimal.invalid"),
        ("1,5e3", "decimal.invalid"),
        ("+-1,5", "decimal.invalid"),
    ];
    for (input, want) in refused {
        assert_eq!(err_code(decimal(&s(input))), want, "{input}");
    }
    let e = decimal(&s("1,234.50")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "found English number format (',' before '.'), expected Vietnamese format \
         where '.' groups thousands and ',' marks decimals (e.g. 1.000,50)"
    );
    assert_eq!(
        decimal(&s("x")).unwrap_err().to_string(),
        "expected a decimal number such as 37.5 (digits, optional sign, optional '.' and \
         fraction digits) or in Vietnamese format such as 21,8531 or 7.125.432,50 ('.' \
         between thousands, ',' before decimals)"
    );
    // vn_number is unchanged: integral values stay integers.
    assert_eq!(vn_number(&s("1.234.567")).unwrap(), json!(1_234_567));
    assert_eq!(vn_number(&s("21,8531")).unwrap(), s("21.8531"));
    // Long Vietnamese-formatted input stays linear.
    let groups = format!("1{},5", ".000".repeat(1 << 18));
    let start = Instant::now();
    let out = decimal(&s(&groups)).unwrap();
    assert_eq!(out.as_str().map(str::len), Some(1 + 3 * (1 << 18) + 2));
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
}

// ----- vn_number ---------------------------------------------------------------------

#[test]
fn vn_number_reads_vietnamese_format() {
    assert_eq!(
        vn_number(&s("5.000.000.000")).unwrap(),
        json!(5_000_000_000_i64)
    );
    assert_eq!(vn_number(&s("7.125.432,50")).unwrap(), s("7125432.50"));
    assert_eq!(vn_number(&s("104,79")).unwrap(), s("104.79"));
    assert_eq!(vn_number(&s("6.800")).unwrap(), json!(6800));
    assert_eq!(vn_number(&s("12345")).unwrap(), json!(12345));
    assert_eq!(vn_number(&s("-1.900.000")).unwrap(), json!(-1_900_000));
    assert_eq!(vn_number(&s("0,5")).unwrap(), s("0.5"));
    assert_eq!(vn_number(&s("-0,5")).unwrap(), s("-0.5"));
    assert_eq!(vn_number(&s("0")).unwrap(), json!(0));
    assert_eq!(vn_number(&s(" 1.000 ")).unwrap(), json!(1000));
    assert_eq!(vn_number(&s("1,000")).unwrap(), s("1.000"));
    assert_eq!(vn_number(&j("5000000")).unwrap(), json!(5_000_000));
    assert_eq!(vn_number(&j("37.5")).unwrap(), s("37.5"));
}

#[test]
fn vn_number_refuses_unclean_input() {
    let cases = [
        ("1.50", "vn_number.grouping"),
        ("1.2.3", "vn_number.grouping"),
        ("1.0000", "vn_number.grouping"),
        ("1234.567", "vn_number.grouping"),
        ("05.000", "vn_number.grouping"),
        (".500", "vn_number.grouping"),
        ("1..000", "vn_number.grouping"),
        ("1.000.", "vn_number.grouping"),
        ("1,000.50", "vn_number.english_format"),
        ("1,000,000", "vn_number.english_format"),
        ("1,", "vn_number.invalid"),
        (",5", "vn_number.invalid"),
        ("1 000", "vn_number.invalid"),
        ("abc", "vn_number.invalid"),
        ("-", "vn_number.invalid"),
        ("1,5a", "vn_number.invalid"),
        ("", "value.empty"),
        ("9.223.372.036.854.775.808", "integer.overflow"),
    ];
    for (input, want) in cases {
        assert_eq!(err_code(vn_number(&s(input))), want, "{input}");
    }
    assert_eq!(err_code(vn_number(&j("1e3"))), "number.exponent");
    assert_eq!(err_code(vn_number(&json!(true))), "vn_number.invalid");
    assert_eq!(err_code(vn_number(&Value::Null)), "value.not_scalar");
}

// ----- multiply ----------------------------------------------------------------------

#[test]
fn multiply_is_exact() {
    let million = parse_factor("1000000").unwrap();
    assert_eq!(
        multiply(&s("7125432.50"), &million).unwrap(),
        json!(7_125_432_500_000_i64)
    );
    assert_eq!(
        multiply(&json!(12), &parse_factor("1000").unwrap()).unwrap(),
        json!(12000)
    );
    assert_eq!(
        multiply(&s("1.25"), &parse_factor("10").unwrap()).unwrap(),
        s("12.5")
    );
    assert_eq!(
        multiply(&s("0.1"), &parse_factor("0.2").unwrap()).unwrap(),
        s("0.02")
    );
    assert_eq!(
        multiply(&j("2.50"), &parse_factor("2").unwrap()).unwrap(),
        json!(5)
    );
    assert_eq!(
        multiply(&s("-3"), &parse_factor("-1").unwrap()).unwrap(),
        json!(3)
    );
    assert_eq!(
        multiply(&s("5"), &parse_factor("0").unwrap()).unwrap(),
        json!(0)
    );
    assert_eq!(
        multiply(&s("-5"), &parse_factor("0").unwrap()).unwrap(),
        json!(0)
    );
    // Chained with vn_number: "7.125.432,50" million đồng.
    let amount = vn_number(&s("7.125.432,50")).unwrap();
    assert_eq!(
        multiply(&amount, &million).unwrap(),
        json!(7_125_432_500_000_i64)
    );
}

#[test]
fn multiply_refuses_overflow_and_bad_input() {
    let big = parse_factor("10000000000").unwrap();
    let ten = parse_factor("10").unwrap();
    assert_eq!(
        err_code(multiply(&json!(i64::MAX), &ten)),
        "integer.overflow"
    );
    assert_eq!(
        err_code(multiply(&json!(i64::MAX), &big)),
        "number.out_of_range"
    );
    assert_eq!(
        err_code(multiply(&s("79228162514264337593543950335"), &big)),
        "number.out_of_range"
    );
    assert_eq!(
        err_code(multiply(&s("5.000.000"), &big)),
        "multiply.invalid"
    );
    assert_eq!(err_code(multiply(&json!(true), &big)), "multiply.invalid");
    assert_eq!(err_code(multiply(&j("1e3"), &big)), "number.exponent");
    assert_eq!(err_code(multiply(&s(""), &big)), "value.empty");
}

#[test]
fn parse_factor_rules() {
    assert_eq!(parse_factor("1000").unwrap().to_string(), "1000");
    assert_eq!(parse_factor("0.001").unwrap().to_string(), "0.001");
    for bad in [
        "",
        "1e3",
        "1.000,5",
        "abc",
        "1.",
        "99999999999999999999999999999999",
    ] {
        assert_eq!(
            parse_factor(bad).unwrap_err().code(),
            "multiply.factor",
            "{bad}"
        );
    }
}

// ----- boolean -----------------------------------------------------------------------

#[test]
fn boolean_words() {
    for t in [
        "1",
        "true",
        "TRUE",
        "có",
        "Có",
        "CÓ",
        " yes ",
        "Yes",
        "Co\u{0301}",
    ] {
        assert_eq!(boolean(&s(t)).unwrap(), json!(true), "{t}");
    }
    for f in [
        "0",
        "false",
        "False",
        "không",
        "KHÔNG",
        "Không",
        "no",
        "NO",
        "kho\u{0302}ng",
    ] {
        assert_eq!(boolean(&s(f)).unwrap(), json!(false), "{f}");
    }
    assert_eq!(boolean(&json!(true)).unwrap(), json!(true));
    assert_eq!(boolean(&j("0")).unwrap(), json!(false));
    assert_eq!(boolean(&j("1")).unwrap(), json!(true));
    for bad in ["2", "co", "khong", "y", "n", "đúng", "1.0"] {
        assert_eq!(err_code(boolean(&s(bad))), "boolean.invalid", "{bad}");
    }
    assert_eq!(err_code(boolean(&j("2"))), "boolean.invalid");
    assert_eq!(err_code(boolean(&s(""))), "value.empty");
    assert_eq!(err_code(boolean(&Value::Null)), "value.not_scalar");
}

// ----- dates -------------------------------------------------------------------------

#[test]
fn date_patterns_compile_checks() {
    let bad = |p: &[&str]| {
        DatePatterns::compile(&p.iter().map(|x| x.to_string()).collect::<Vec<_>>()).unwrap_err()
    };
    assert_eq!(bad(&[]).code(), "date.no_pattern");
    assert_eq!(bad(&["%d/%m/%Q"]).code(), "date.pattern");
    assert_eq!(bad(&["%d/%m/%"]).code(), "date.pattern");
    assert_eq!(bad(&[""]).code(), "date.pattern");
    assert_eq!(bad(&["%m/%Y"]).code(), "date.pattern");
    assert!(bad(&["%m/%Y"]).to_string().contains("full date"));
    assert_eq!(bad(&["%d/%m/%Y", "%Q"]).code(), "date.pattern");
    let p = pats(&["%d/%m/%Y", "%Y-%m-%d"]);
    assert_eq!(p.patterns().collect::<Vec<_>>(), ["%d/%m/%Y", "%Y-%m-%d"]);
}

#[test]
fn date_reads_configured_patterns() {
    let p = pats(&["%d/%m/%Y", "%Y-%m-%d", "%Y/%m/%d"]);
    assert_eq!(date(&s("10/12/2025"), &p).unwrap(), s("2025-12-10"));
    assert_eq!(date(&s("2025-12-10"), &p).unwrap(), s("2025-12-10"));
    assert_eq!(date(&s("2025/12/10"), &p).unwrap(), s("2025-12-10"));
    assert_eq!(date(&s("1/2/2025"), &p).unwrap(), s("2025-02-01"));
    assert_eq!(date(&s(" 29/02/2024 "), &p).unwrap(), s("2024-02-29"));
    let compact = pats(&["%Y%m%d"]);
    assert_eq!(date(&j("20251120"), &compact).unwrap(), s("2025-11-20"));
}

#[test]
fn date_errors_are_specific() {
    let p = pats(&["%d/%m/%Y"]);
    let e = date(&s("31/02/2025"), &p).unwrap_err();
    assert_eq!(e.code(), "date.impossible");
    assert_eq!(
        e.to_string(),
        "impossible date (day, month or time out of range) for pattern %d/%m/%Y"
    );
    assert_eq!(err_code(date(&s("29/02/2025"), &p)), "date.impossible");
    assert_eq!(err_code(date(&s("32/01/2025"), &p)), "date.impossible");
    assert_eq!(err_code(date(&s("10/13/2025"), &p)), "date.impossible");
    let e = date(&s("2025-12-10"), &p).unwrap_err();
    assert_eq!(e.code(), "date.mismatch");
    assert_eq!(e.to_string(), "date does not match pattern %d/%m/%Y");
    assert_eq!(
        err_code(date(&s("10/12/2025 abc"), &p)),
        "date.trailing_text"
    );
    assert_eq!(err_code(date(&s("10/12/2025x"), &p)), "date.trailing_text");
    assert_eq!(err_code(date(&s("10/12/25"), &p)), "date.year_out_of_range");
    assert_eq!(err_code(date(&s("10/12/20251"), &p)), "date.trailing_text");
    assert_eq!(err_code(date(&s(""), &p)), "value.empty");
    assert_eq!(err_code(date(&json!(true), &p)), "date.mismatch");
    assert_eq!(err_code(date(&json!({}), &p)), "value.not_scalar");
    let two = pats(&["%d/%m/%Y", "%Y-%m-%d"]);
    assert_eq!(
        date(&s("hôm nay"), &two).unwrap_err().to_string(),
        "date does not match pattern %d/%m/%Y or %Y-%m-%d"
    );
    // The impossible reading wins over the mismatch of the other pattern.
    assert_eq!(err_code(date(&s("31/02/2025"), &two)), "date.impossible");
    let msg = date(&s("31/02/2025"), &two).unwrap_err().to_string();
    assert!(!msg.contains("31/02/2025"), "{msg}");
}

#[test]
fn datetime_local_and_offset() {
    let p = pats(&[
        "%d/%m/%Y %H:%M:%S",
        "%Y-%m-%dT%H:%M:%S%:z",
        "%Y-%m-%dT%H:%M:%S",
    ]);
    assert_eq!(
        datetime(&s("20/11/2025 16:42:05"), &p).unwrap(),
        s("2025-11-20T16:42:05+07:00")
    );
    assert_eq!(
        datetime(&s("2025-11-20T09:42:05+00:00"), &p).unwrap(),
        s("2025-11-20T09:42:05+00:00")
    );
    assert_eq!(
        datetime(&s("2025-11-20T16:42:05+07:00"), &p).unwrap(),
        s("2025-11-20T16:42:05+07:00")
    );
    assert_eq!(
        datetime(&s("2025-11-20T16:42:05"), &p).unwrap(),
        s("2025-11-20T16:42:05+07:00")
    );
    let z = pats(&["%Y%m%d%H%M%S%z"]);
    assert_eq!(
        datetime(&s("20251120164205-0130"), &z).unwrap(),
        s("2025-11-20T16:42:05-01:30")
    );
    let frac = pats(&["%Y-%m-%d %H:%M:%S%.f"]);
    assert_eq!(
        datetime(&s("2025-11-20 16:42:05.250"), &frac).unwrap(),
        s("2025-11-20T16:42:05.250+07:00")
    );
    let minutes = pats(&["%d/%m/%Y %H:%M"]);
    assert_eq!(
        datetime(&s("01/01/2026 00:00"), &minutes).unwrap(),
        s("2026-01-01T00:00:00+07:00")
    );
}

#[test]
fn datetime_errors() {
    let p = pats(&["%d/%m/%Y %H:%M:%S"]);
    assert_eq!(
        err_code(datetime(&s("31/02/2025 10:00:00"), &p)),
        "datetime.impossible"
    );
    assert_eq!(
        err_code(datetime(&s("20/11/2025 25:00:00"), &p)),
        "datetime.impossible"
    );
    assert_eq!(
        err_code(datetime(&s("20/11/2025"), &p)),
        "datetime.mismatch"
    );
    assert_eq!(
        err_code(datetime(&s("20/11/2025 10:00:00 GMT"), &p)),
        "datetime.trailing_text"
    );
    let date_only = pats(&["%d/%m/%Y"]);
    assert_eq!(
        err_code(datetime(&s("20/11/2025"), &date_only)),
        "datetime.incomplete"
    );
    assert_eq!(
        datetime(&s("x"), &p).unwrap_err().to_string(),
        "date and time does not match pattern %d/%m/%Y %H:%M:%S"
    );
}

// ----- codes and lists ---------------------------------------------------------------

#[test]
fn compact_tax_code_removes_separators() {
    assert_eq!(
        compact_tax_code(&s(" 4941209473-001 ")).unwrap(),
        s("4941209473001")
    );
    assert_eq!(
        compact_tax_code(&s("0100.233.488")).unwrap(),
        s("0100233488")
    );
    assert_eq!(
        compact_tax_code(&s("0100 233\u{a0}488")).unwrap(),
        s("0100233488")
    );
    assert_eq!(compact_tax_code(&j("4941209473")).unwrap(), s("4941209473"));
    assert_eq!(err_code(compact_tax_code(&json!([]))), "value.not_scalar");
}

#[test]
fn split_trims_and_drops_empty() {
    assert_eq!(
        split(&s(" a ; b;;c ;"), ";").unwrap(),
        json!(["a", "b", "c"])
    );
    assert_eq!(
        split(&s("Toán, Văn"), ", ").unwrap(),
        json!(["Toán", "Văn"])
    );
    assert_eq!(split(&s(""), ",").unwrap(), json!([]));
    assert_eq!(split(&s("x"), ",").unwrap(), json!(["x"]));
    assert_eq!(err_code(split(&s("a,b"), "")), "split.empty_separator");
    assert_eq!(err_code(split(&Value::Null, ",")), "value.not_scalar");
}

#[test]
fn messages_follow_the_house_style() {
    let errors = [
        integer(&s("5.000")).unwrap_err(),
        decimal(&s("x")).unwrap_err(),
        vn_number(&s("1.50")).unwrap_err(),
        vn_number(&s("1,000.50")).unwrap_err(),
        boolean(&s("x")).unwrap_err(),
        date(&s("31/02/2025"), &pats(&["%d/%m/%Y"])).unwrap_err(),
        split(&s("x"), "").unwrap_err(),
        parse_factor("x").unwrap_err(),
    ];
    for e in errors {
        let msg = e.to_string();
        assert!(!msg.ends_with('.'), "{msg}");
        assert!(msg.chars().next().unwrap().is_lowercase(), "{msg}");
        assert!(e.code().contains('.'), "{}", e.code());
    }
}

// ----- the default family of date spellings --------------------------------------------

fn family() -> DatePatterns {
    DatePatterns::family()
}

fn fam_date(x: &str) -> Result<Value, ValueError> {
    date(&s(x), &family())
}

fn fam_datetime(x: &str) -> Result<Value, ValueError> {
    datetime(&s(x), &family())
}

#[test]
fn the_family_reads_vietnamese_and_iso_dates() {
    let cases = [
        ("20/11/2025", "2025-11-20"),
        ("3/4/2025", "2025-04-03"),
        ("03/04/2025", "2025-04-03"),
        ("20-11-2025", "2025-11-20"),
        ("3-4-2025", "2025-04-03"),
        ("20.11.2025", "2025-11-20"),
        ("2025-11-20", "2025-11-20"),
        ("2025/11/20", "2025-11-20"),
        ("2025-1-5", "2025-01-05"),
        ("29/02/2024", "2024-02-29"),
        (" 20/11/2025 ", "2025-11-20"),
        ("01/01/1000", "1000-01-01"),
        ("31/12/9999", "9999-12-31"),
        // A date-time without offset gives its date as written.
        ("20/11/2025 16:42", "2025-11-20"),
        ("20/11/2025 16:42:05", "2025-11-20"),
        ("20-11-2025 23:59:59", "2025-11-20"),
        ("2025-11-20T23:30:00", "2025-11-20"),
        ("2025-11-20 23:30", "2025-11-20"),
        ("2025/11/20 08:00:00", "2025-11-20"),
        ("2025-11-20T16:42:05.123456", "2025-11-20"),
    ];
    for (input, want) in cases {
        assert_eq!(
            fam_date(input).map_err(|e| (input, e)).unwrap(),
            s(want),
            "{input}"
        );
    }
    assert_eq!(
        date(&j("\"2025-11-20\""), &family()).unwrap(),
        s("2025-11-20")
    );
}

#[test]
fn the_family_takes_the_vietnam_calendar_date_of_a_date_time_with_an_offset() {
    let cases = [
        ("2025-11-20T23:30:00Z", "2025-11-21"),
        ("2025-11-20T16:59:59Z", "2025-11-20"),
        ("2025-11-20T17:00:00Z", "2025-11-21"),
        ("2025-11-20T23:30:00+07:00", "2025-11-20"),
        ("2025-11-20T23:30:00+0700", "2025-11-20"),
        ("2025-11-20T16:00:00-05:00", "2025-11-21"),
        ("2025-11-21T01:00:00+09:00", "2025-11-20"),
        ("2025-11-20T23:30:00.5Z", "2025-11-21"),
        ("20/11/2025 23:30:00Z", "2025-11-21"),
    ];
    for (input, want) in cases {
        assert_eq!(
            fam_date(input).map_err(|e| (input, e)).unwrap(),
            s(want),
            "{input}"
        );
    }
    // Past the last representable year once moved to Vietnam time.
    assert_eq!(
        err_code(fam_date("9999-12-31T20:00:00Z")),
        "date.year_out_of_range"
    );
}

#[test]
fn the_family_is_day_first_and_refuses_what_it_cannot_read_for_sure() {
    // Month first is never read: month 20 does not exist.
    let e = fam_date("11/20/2025").unwrap_err();
    assert_eq!(e.code(), "date.impossible");
    assert_eq!(
        e.to_string(),
        "impossible date: month out of range for dd/mm/yyyy, which is read day first \
         (never month first); correct the value at the source"
    );
    let e = fam_date("31/02/2025").unwrap_err();
    assert_eq!(e.code(), "date.impossible");
    assert!(e.to_string().contains("day out of range"), "{e}");
    let impossible = [
        "29/02/2025",
        "32/01/2025",
        "00/01/2025",
        "13/13/2025",
        "10/00/2025",
        "2025-13-01",
        "2025-02-30",
        "20/11/2025 24:00",
        "20/11/2025 10:60",
        "20/11/2025 10:00:60",
        "2025-11-20T10:00:00+24:00",
    ];
    for x in impossible {
        assert_eq!(err_code(fam_date(x)), "date.impossible", "{x}");
    }
    assert_eq!(
        fam_date("2025-13-01").unwrap_err().to_string(),
        "impossible date: month out of range for yyyy-mm-dd; correct the value at the source"
    );
    let e = fam_date("20/11/25").unwrap_err();
    assert_eq!(e.code(), "date.two_digit_year");
    assert_eq!(
        e.to_string(),
        "two-digit year in the date, the century would be a guess; send the year with four \
         digits (e.g. 20/11/2025)"
    );
    assert_eq!(err_code(fam_date("20-11-25")), "date.two_digit_year");
    assert_eq!(err_code(fam_date("20.11.25 10:00")), "date.two_digit_year");
    for x in [
        "20/11/20251",
        "20/11/999",
        "20/11/0999",
        "0999-01-01",
        "1/1/1",
    ] {
        assert_eq!(err_code(fam_date(x)), "date.year_out_of_range", "{x}");
    }
    assert_eq!(
        fam_date("0999-01-01").unwrap_err().to_string(),
        "year out of range, expected a four-digit year between 1000 and 9999"
    );
    let trailing = [
        "20/11/2025x",
        "20/11/2025 abc",
        "20/11/2025T10:00",
        "20/11/2025 10",
        "20/11/2025 10:0",
        "20/11/2025 10:00:0",
        "20/11/2025 10:00.5",
        "2025-11-20T10:00:00.",
        "2025-11-20T10:00:00.1234567890",
        "2025-11-20T10:00:00 GMT",
        "2025-11-20T10:00:00+07",
        "2025-11-20T10:00:00+07:00Z",
        "2025-11-20  10:00",
    ];
    for x in trailing {
        assert_eq!(err_code(fam_date(x)), "date.trailing_text", "{x}");
    }
    assert_eq!(
        fam_date("20/11/2025 abc").unwrap_err().to_string(),
        "unexpected text after the date for pattern dd/mm/yyyy"
    );
    let mismatch = [
        "hôm nay",
        "20251120",
        "2025.11.20",
        "20/11-2025",
        "2025-11/20",
        "20/11/",
        "/11/2025",
        "123/11/2025",
        "2025-111-20",
        "2025-11-200",
        "+2025-11-20",
        "１/１/２０２５",
        "Nov 20, 2025",
    ];
    for x in mismatch {
        assert_eq!(err_code(fam_date(x)), "date.mismatch", "{x}");
    }
    assert_eq!(
        fam_date("hôm nay").unwrap_err().to_string(),
        "date in no known spelling, expected day first (dd/mm/yyyy, dd-mm-yyyy, dd.mm.yyyy) \
         or year first (yyyy-mm-dd, yyyy/mm/dd), optionally with a time; give the transform \
         a pattern for any other spelling"
    );
    assert_eq!(err_code(date(&j("20251120"), &family())), "date.mismatch");
    assert_eq!(err_code(date(&json!(true), &family())), "date.mismatch");
    assert_eq!(err_code(fam_date("")), "value.empty");
    assert_eq!(err_code(date(&json!([]), &family())), "value.not_scalar");
    // Messages never quote the value.
    for x in ["31/02/2025", "20/11/25", "20/11/2025 abc", "11/20/2025"] {
        let msg = fam_date(x).unwrap_err().to_string();
        assert!(!msg.contains(x), "{msg}");
    }
}

#[test]
fn the_family_reads_date_times_in_vietnam_time_unless_an_offset_is_given() {
    let cases = [
        ("20/11/2025 16:42:05", "2025-11-20T16:42:05+07:00"),
        ("20/11/2025 16:42", "2025-11-20T16:42:00+07:00"),
        ("3/4/2025 8:05", "2025-04-03T08:05:00+07:00"),
        ("20-11-2025 16:42:05", "2025-11-20T16:42:05+07:00"),
        ("20.11.2025 16:42:05", "2025-11-20T16:42:05+07:00"),
        ("2025-11-20 16:42:05", "2025-11-20T16:42:05+07:00"),
        ("2025/11/20 16:42:05", "2025-11-20T16:42:05+07:00"),
        ("2025-11-20T16:42:05", "2025-11-20T16:42:05+07:00"),
        ("2025-11-20T16:42", "2025-11-20T16:42:00+07:00"),
        ("2025-11-20T16:42:05.250", "2025-11-20T16:42:05.250+07:00"),
        ("2025-11-20T09:42:05Z", "2025-11-20T09:42:05+00:00"),
        ("2025-11-20T16:42:05+07:00", "2025-11-20T16:42:05+07:00"),
        ("2025-11-20T16:42:05+0700", "2025-11-20T16:42:05+07:00"),
        ("2025-11-20T04:12:05-05:30", "2025-11-20T04:12:05-05:30"),
        (
            "2025-11-20T16:42:05.123456789Z",
            "2025-11-20T16:42:05.123456789+00:00",
        ),
    ];
    for (input, want) in cases {
        assert_eq!(
            fam_datetime(input).map_err(|e| (input, e)).unwrap(),
            s(want),
            "{input}"
        );
    }
    let e = fam_datetime("20/11/2025").unwrap_err();
    assert_eq!(e.code(), "datetime.no_time");
    assert_eq!(
        e.to_string(),
        "expected a date and time, found a date without a time; send the time too \
         (e.g. 20/11/2025 16:42:05) or use the date transform"
    );
    assert_eq!(err_code(fam_datetime("2025-11-20")), "datetime.no_time");
    assert_eq!(
        err_code(fam_datetime("11/20/2025 10:00")),
        "datetime.impossible"
    );
    assert_eq!(
        err_code(fam_datetime("20/11/2025 25:00")),
        "datetime.impossible"
    );
    assert_eq!(
        err_code(fam_datetime("20/11/25 10:00")),
        "datetime.two_digit_year"
    );
    assert_eq!(
        err_code(fam_datetime("20/11/2025 10:00 x")),
        "datetime.trailing_text"
    );
    assert_eq!(err_code(fam_datetime("x")), "datetime.mismatch");
    assert!(
        fam_datetime("x")
            .unwrap_err()
            .to_string()
            .contains("followed by a time HH:MM or HH:MM:SS"),
    );
    assert_eq!(
        err_code(fam_datetime("0999-01-01 10:00")),
        "date.year_out_of_range"
    );
}

#[test]
fn explicit_patterns_narrow_the_family() {
    let p = pats(&["%d/%m/%Y"]);
    assert!(!p.is_family() && family().is_family());
    assert_eq!(family().patterns().count(), 0);
    assert_eq!(err_code(date(&s("2025-11-20"), &p)), "date.mismatch");
    assert_eq!(
        err_code(date(&s("20/11/2025 10:00"), &p)),
        "date.trailing_text"
    );
    assert_eq!(
        err_code(date(&s("2025-11-20T23:30:00Z"), &p)),
        "date.mismatch"
    );
    let iso = pats(&["%Y-%m-%d"]);
    assert_eq!(err_code(date(&s("20/11/2025"), &iso)), "date.mismatch");
    let dt = pats(&["%d/%m/%Y %H:%M:%S"]);
    assert_eq!(
        err_code(datetime(&s("2025-11-20T16:42:05Z"), &dt)),
        "datetime.mismatch"
    );
}

/// One spelling of the family as chrono patterns: a reading independent of the family's
/// own scanner.
struct Member {
    pattern: String,
    offset: MemberOffset,
}

#[derive(Clone, Copy, PartialEq)]
enum MemberOffset {
    /// A date only.
    NoTime,
    /// A time, no offset.
    Local,
    /// A literal `Z`.
    Utc,
    /// `%:z` or `%z`.
    Read,
}

/// Every spelling the family documents.
fn members() -> Vec<Member> {
    let mut out = Vec::new();
    for (date, year_first) in [
        ("%d/%m/%Y", false),
        ("%d-%m-%Y", false),
        ("%d.%m.%Y", false),
        ("%Y-%m-%d", true),
        ("%Y/%m/%d", true),
    ] {
        out.push(Member {
            pattern: date.to_owned(),
            offset: MemberOffset::NoTime,
        });
        let seps: &[&str] = if year_first { &[" ", "T"] } else { &[" "] };
        for sep in seps {
            for time in ["%H:%M", "%H:%M:%S", "%H:%M:%S%.f"] {
                for (off, kind) in [
                    ("", MemberOffset::Local),
                    ("Z", MemberOffset::Utc),
                    ("%:z", MemberOffset::Read),
                    ("%z", MemberOffset::Read),
                ] {
                    out.push(Member {
                        pattern: format!("{date}{sep}{time}{off}"),
                        offset: kind,
                    });
                }
            }
        }
    }
    out
}

/// What a value means: its date, its time if any, its offset if any.
type Meaning = (
    chrono::NaiveDate,
    Option<chrono::NaiveTime>,
    Option<chrono::FixedOffset>,
);

fn member_reading(m: &Member, x: &str) -> Option<Meaning> {
    use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime};
    let r = match m.offset {
        MemberOffset::NoTime => NaiveDate::parse_from_str(x, &m.pattern)
            .ok()
            .map(|d| (d, None, None)),
        MemberOffset::Local => NaiveDateTime::parse_from_str(x, &m.pattern)
            .ok()
            .map(|n| (n.date(), Some(n.time()), None)),
        MemberOffset::Utc => NaiveDateTime::parse_from_str(x, &m.pattern)
            .ok()
            .map(|n| (n.date(), Some(n.time()), FixedOffset::east_opt(0))),
        MemberOffset::Read => DateTime::parse_from_str(x, &m.pattern).ok().map(|d| {
            let n = d.naive_local();
            (n.date(), Some(n.time()), Some(*d.offset()))
        }),
    }?;
    (1000..=9999).contains(&r.0.year()).then_some(r)
}

/// What `date` and `datetime` must give for a meaning.
fn expected(m: &Meaning) -> (Option<String>, Option<String>) {
    use chrono::{FixedOffset, SecondsFormat};
    let vn = FixedOffset::east_opt(7 * 3600).unwrap();
    let Some(t) = m.1 else {
        return (Some(m.0.format("%Y-%m-%d").to_string()), None);
    };
    let at =
        m.0.and_time(t)
            .and_local_timezone(m.2.unwrap_or(vn))
            .unwrap();
    let day = at.with_timezone(&vn).date_naive();
    (
        Some(day.format("%Y-%m-%d").to_string()),
        Some(at.to_rfc3339_opts(SecondsFormat::AutoSi, false)),
    )
}

/// A tiny deterministic generator (no dependency needed for a property test).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

/// Checks one value: every spelling that reads it reads the same meaning, and the family
/// accepts it only with that meaning (it may refuse what chrono's lenient parsing reads,
/// such as a one-digit minute). Returns whether some spelling read it.
fn check_value(members: &[Member], x: &str) -> bool {
    // Transforms ignore surrounding white space; so do the readings.
    let x = x.trim();
    let readings: Vec<(usize, Meaning)> = members
        .iter()
        .enumerate()
        .filter_map(|(i, m)| member_reading(m, x).map(|r| (i, r)))
        .collect();
    if let Some((i, first)) = readings.first() {
        for (k, r) in &readings {
            assert_eq!(
                r, first,
                "{x:?}: {} and {} disagree",
                members[*i].pattern, members[*k].pattern
            );
        }
    }
    let got = (fam_date(x).ok(), fam_datetime(x).ok());
    if got.0.is_some() || got.1.is_some() {
        let Some((_, r)) = readings.first() else {
            panic!("{x:?}: the family reads {got:?}, no documented spelling does");
        };
        let (d, dt) = expected(r);
        assert_eq!(
            got.0.as_ref().and_then(|v| v.as_str()),
            d.as_deref(),
            "{x:?}"
        );
        assert_eq!(
            got.1.as_ref().and_then(|v| v.as_str()),
            dt.as_deref(),
            "{x:?}"
        );
    }
    !readings.is_empty()
}

#[test]
fn no_two_spellings_of_the_family_read_a_value_differently() {
    use chrono::{Datelike, FixedOffset, NaiveDate, NaiveTime, TimeZone};
    let members = members();
    let offsets = [
        FixedOffset::east_opt(7 * 3600).unwrap(),
        FixedOffset::east_opt(0).unwrap(),
        FixedOffset::west_opt(5 * 3600 + 1800).unwrap(),
    ];
    let times = [
        NaiveTime::from_hms_opt(0, 0, 0).unwrap(),
        NaiveTime::from_hms_milli_opt(9, 5, 7, 250).unwrap(),
        NaiveTime::from_hms_nano_opt(23, 59, 59, 123_456_789).unwrap(),
    ];
    let mut dates = Vec::new();
    for (year, days) in [
        (2025, 1..=31),
        (2024, 1..=31),
        (1000, 1..=13),
        (9999, 1..=13),
    ] {
        for month in 1..=12 {
            for day in days.clone() {
                dates.extend(NaiveDate::from_ymd_opt(year, month, day));
            }
        }
    }
    let alphabet: Vec<char> = "0123456789/-.: TZ+".chars().collect();
    let mut rng = Lcg(20251120);
    let (mut checked, mut read, mut accepted_spellings) = (0usize, 0usize, 0usize);
    for (n, d) in dates.iter().enumerate() {
        for (k, m) in members.iter().enumerate() {
            // Each date in every spelling, padded and unpadded, with a rotating time and offset.
            let t = times[(n + k) % times.len()];
            let off = offsets[(n + 2 * k) % offsets.len()];
            for pattern in [
                m.pattern.clone(),
                m.pattern.replace("%d", "%-d").replace("%m", "%-m"),
            ] {
                let x = match m.offset {
                    MemberOffset::NoTime => d.format(&pattern).to_string(),
                    MemberOffset::Local | MemberOffset::Utc => {
                        d.and_time(t).format(&pattern).to_string()
                    }
                    MemberOffset::Read => off
                        .from_local_datetime(&d.and_time(t))
                        .unwrap()
                        .format(&pattern)
                        .to_string(),
                };
                assert!(check_value(&members, &x), "{x:?} from {pattern}");
                // The family reads every documented spelling.
                let want = member_reading(m, &x).map(|r| expected(&r)).unwrap();
                assert_eq!(
                    fam_date(&x).map_err(|e| (&x, e)).unwrap().as_str(),
                    want.0.as_deref(),
                    "{x:?} from {pattern}"
                );
                assert_eq!(
                    fam_datetime(&x)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned)),
                    want.1,
                    "{x:?} from {pattern}"
                );
                accepted_spellings += 1;
                checked += 1;
                // Near misses: one character replaced, inserted or removed.
                if (n + k) % 4 == 0 {
                    let mut chars: Vec<char> = x.chars().collect();
                    let at = rng.next(chars.len());
                    match rng.next(3) {
                        0 => chars[at] = alphabet[rng.next(alphabet.len())],
                        1 => chars.insert(at, alphabet[rng.next(alphabet.len())]),
                        _ => {
                            chars.remove(at);
                        }
                    }
                    let y: String = chars.into_iter().collect();
                    read += usize::from(check_value(&members, &y));
                    checked += 1;
                }
            }
        }
        assert!(d.year() >= 1000);
    }
    // Random text made of the characters dates are made of.
    for _ in 0..20_000 {
        let len = 6 + rng.next(24);
        let y: String = (0..len)
            .map(|_| alphabet[rng.next(alphabet.len())])
            .collect();
        read += usize::from(check_value(&members, &y));
        checked += 1;
    }
    assert!(accepted_spellings > 100_000, "{accepted_spellings}");
    assert!(checked > 150_000 && read > 1_000, "{checked} {read}");
}

#[test]
fn the_family_is_bounded_on_hostile_input() {
    let start = Instant::now();
    let digits = "7".repeat(1 << 20);
    assert_eq!(err_code(date(&s(&digits), &family())), "date.mismatch");
    let long = format!("20/11/2025 10:00:00.{}", "1".repeat(1 << 20));
    assert_eq!(err_code(date(&s(&long), &family())), "date.mismatch");
    assert_eq!(
        err_code(datetime(&s(&long), &family())),
        "datetime.mismatch"
    );
    let just_fits = format!("2025-11-20T10:00:00{}", " ".repeat(200));
    assert_eq!(
        err_code(datetime(&s(&format!("{just_fits}x")), &family())),
        "datetime.trailing_text"
    );
    // Every byte string of a few bytes: no panic.
    let bytes = b"0123456789/-.:TZ+ \xc3\xa9";
    let mut x = Vec::new();
    for a in bytes {
        for b in bytes {
            for c in bytes {
                x.clear();
                x.extend_from_slice(b"20/11/2025 1");
                x.extend([*a, *b, *c]);
                if let Ok(t) = std::str::from_utf8(&x) {
                    let _ = date(&s(t), &family());
                    let _ = datetime(&s(t), &family());
                }
            }
        }
    }
    // Reading is one pass: many values take little time even unoptimised.
    for i in 0..100_000u32 {
        let v = format!(
            "{:02}/{:02}/2025 10:{:02}:00",
            1 + i % 28,
            1 + i % 12,
            i % 60
        );
        assert!(date(&s(&v), &family()).is_ok());
    }
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
}
