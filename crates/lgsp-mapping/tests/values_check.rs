//! Tests of the single-value checks: tax code (all vectors of the domain notes),
//! citizen id, budget unit code, length and masking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use lgsp_mapping::values::{ValueError, budget_unit_code, citizen_id, length, mask, tax_code};

fn code(r: Result<(), ValueError>) -> &'static str {
    r.err().map_or("ok", |e| e.code())
}

#[test]
fn tax_code_valid_vectors() {
    for ok in [
        "0100233488",
        "4900000017",
        "4900000031",
        "4900000056",
        "4900000070", // check digit 0
        "4901234561",
        "4956789019",
        "4941209473",
        "4941209473-001",
        "4941209473001",
        "020179031587", // 12 digits: personal id, format only
        " 0100 233 488 ",
        "0100.233.488",
        "4941209473\u{2013}999",
    ] {
        assert_eq!(tax_code(ok), Ok(()), "{ok}");
    }
}

#[test]
fn tax_code_invalid_vectors() {
    let cases = [
        ("0100233480", "tax_code.check_digit"),
        ("4941209476", "tax_code.check_digit"),
        ("4941209473-000", "tax_code.branch"),
        ("0314409058-000", "tax_code.branch"),
        ("4900000000", "tax_code.zero_sequence"),
        ("0100000008", "tax_code.zero_sequence"),
        ("490012345x", "tax_code.not_digits"),
        ("49012345678", "tax_code.length"),
        ("123", "tax_code.length"),
        ("", "value.empty"),
        (" - . ", "value.empty"),
        ("０１００２３３４８８", "tax_code.not_digits"), // full-width digits
        ("4941209476-001", "tax_code.check_digit"),
    ];
    for (s, want) in cases {
        assert_eq!(code(tax_code(s)), want, "{s}");
    }
    // 490012345 has S mod 11 == 0: no 10th digit makes it valid.
    for d in 0..=9 {
        assert_eq!(
            code(tax_code(&format!("490012345{d}"))),
            "tax_code.no_check_digit"
        );
    }
}

#[test]
fn tax_code_exactly_one_check_digit_per_issuable_prefix() {
    for prefix in ["010023348", "490000001", "494120947", "495678901"] {
        let valid = (0..=9)
            .filter(|d| tax_code(&format!("{prefix}{d}")).is_ok())
            .count();
        assert_eq!(valid, 1, "{prefix}");
    }
}

#[test]
fn tax_code_hostile_inputs() {
    let long = "1".repeat(1 << 20);
    assert_eq!(code(tax_code(&long)), "tax_code.length");
    let dashes = "-".repeat(1 << 20);
    assert_eq!(code(tax_code(&dashes)), "value.empty");
    assert_eq!(code(tax_code("é\u{0}\u{FFFF}")), "tax_code.not_digits");
}

#[test]
fn citizen_id_rules() {
    assert_eq!(citizen_id("020179031587"), Ok(()));
    assert_eq!(code(citizen_id("123456789")), "citizen_id.cmnd");
    assert_eq!(
        citizen_id("123456789").unwrap_err().to_string(),
        "a 9-digit number is an old identity card number (CMND), not a citizen id"
    );
    for bad in [
        "02017903158",
        "0201790315870",
        "02017903158a",
        " 020179031587",
        "০২০১৭৯০৩১৫৮৭",
    ] {
        assert_eq!(code(citizen_id(bad)), "citizen_id.format", "{bad}");
    }
    assert_eq!(code(citizen_id("")), "value.empty");
}

#[test]
fn budget_unit_code_rules() {
    assert_eq!(budget_unit_code("1012345"), Ok(()));
    assert_eq!(budget_unit_code("0000457"), Ok(()));
    for bad in ["101234", "10123456", "10123a5", "1 12345"] {
        assert_eq!(
            code(budget_unit_code(bad)),
            "budget_unit_code.format",
            "{bad}"
        );
    }
    assert_eq!(code(budget_unit_code("")), "value.empty");
}

#[test]
fn length_counts_characters() {
    assert_eq!(length("Đường", Some(5), Some(5)), Ok(()));
    assert_eq!(length("", None, None), Ok(()));
    assert_eq!(
        length("ab", Some(3), None),
        Err(ValueError::TooShort { min: 3, actual: 2 })
    );
    assert_eq!(
        length("abcd", None, Some(3)),
        Err(ValueError::TooLong { max: 3, actual: 4 })
    );
    assert_eq!(code(length("abcd", None, Some(3))), "length.too_long");
    assert_eq!(code(length("ab", Some(3), None)), "length.too_short");
}

#[test]
fn mask_hides_the_middle() {
    assert_eq!(mask("020179031587"), "020******587");
    assert_eq!(mask("12345678"), "123**678");
    assert_eq!(mask("1234567"), "*******");
    assert_eq!(mask("Đỗ Văn Ánh"), "Đỗ ****Ánh");
    assert_eq!(mask("đ"), "*");
    assert_eq!(mask(""), "");
}

#[test]
fn messages_are_lowercase_without_period_or_value() {
    let secret = "020179031587";
    for r in [
        tax_code("0100233480"),
        tax_code("4900000000"),
        tax_code("4941209473-000"),
        tax_code("490012345x"),
        citizen_id("12345678901"),
        budget_unit_code(secret),
    ] {
        let msg = r.unwrap_err().to_string();
        assert!(!msg.ends_with('.'), "{msg}");
        assert!(msg.chars().next().unwrap().is_lowercase(), "{msg}");
        assert!(
            !msg.contains(secret) && !msg.contains("0100233480"),
            "{msg}"
        );
    }
}
