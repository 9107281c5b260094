//! The regular expressions given to RabbitMQ's topic permissions match exactly the
//! routing keys the topic pattern matches.

use lgsp_amqp::topic::{matches, to_regex};

#[test]
fn topic_permission_regexes_agree_with_topic_matching() {
    let patterns = [
        "bizreg.#",
        "#",
        "#.registered",
        "bizreg.*.registered",
        "tax.einvoice.*",
        "a.#.b",
        "#.#",
        "a.b",
        "*",
        "x+y.*",
    ];
    let keys = [
        "bizreg",
        "bizreg.enterprise.registered",
        "bizregx.enterprise",
        "registered",
        "a.registered",
        "tax.einvoice.issued",
        "tax.einvoice",
        "tax.einvoice.issued.x",
        "a.b",
        "a.x.y.b",
        "ab",
        "a",
        "x+y.z",
        "xxy.z",
    ];
    for p in patterns {
        let re = regex::Regex::new(&format!("^(?:{})$", to_regex(p))).unwrap();
        for k in keys {
            assert_eq!(
                re.is_match(k),
                matches(p, k),
                "pattern {p} (regex {re}) and key {k:?} disagree"
            );
        }
    }
}
