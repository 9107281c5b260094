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
    for bad in [
        "1,5",
        "1.",
        ".5",
        "1.2.3",
        "7.125.432,50",
        "abc",
        "1e",
        "NaN",
        "inf",
        "- 1",
    ] {
        let c = err_code(decimal(&s(bad)));
        assert!(
            c == "decimal.invalid" || c == "number.exponent",
            "{bad}: {c}"
        );
    }
    assert_eq!(err_code(decimal(&s("1,5"))), "decimal.invalid");
    assert_eq!(err_code(decimal(&s(""))), "value.empty");
    assert_eq!(err_code(decimal(&json!(false))), "decimal.invalid");
    assert_eq!(err_code(decimal(&json!({"a": 1}))), "value.not_scalar");
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
