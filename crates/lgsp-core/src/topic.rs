//! Topic bindings as RabbitMQ matches them: words separated by `.`, `*` for exactly one
//! word, `#` for zero or more.

/// Does topic binding `pattern` match routing key `key`?
pub fn matches(pattern: &str, key: &str) -> bool {
    fn go(p: &[&str], k: &[&str]) -> bool {
        match (p.first(), k.first()) {
            (None, None) => true,
            (Some(&"#"), _) => go(&p[1..], k) || (!k.is_empty() && go(p, &k[1..])),
            (Some(&"*"), Some(_)) => go(&p[1..], &k[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &k[1..]),
            _ => false,
        }
    }
    let p: Vec<&str> = pattern.split('.').collect();
    let k: Vec<&str> = key.split('.').collect();
    go(&p, &k)
}

/// A regular expression (no anchors) matching the routing keys `pattern` matches, for
/// RabbitMQ's topic permissions: `*` is one word, `#` zero or more (with their dots).
pub fn to_regex(pattern: &str) -> String {
    let mut words: Vec<&str> = Vec::new();
    for w in pattern.split('.') {
        if !(w == "#" && words.last() == Some(&"#")) {
            words.push(w);
        }
    }
    if words == ["#"] {
        return ".*".into();
    }
    let mut out = String::new();
    let mut after_leading_hash = false;
    for (i, w) in words.iter().enumerate() {
        let sep = if i == 0 || after_leading_hash {
            ""
        } else {
            "\\."
        };
        after_leading_hash = false;
        match *w {
            "#" if i == 0 => {
                out.push_str("(?:[^.]+\\.)*");
                after_leading_hash = true;
            }
            "#" => out.push_str("(?:\\.[^.]+)*"),
            "*" => {
                out.push_str(sep);
                out.push_str("[^.]+");
            }
            lit => {
                out.push_str(sep);
                out.push_str(&regex_escape(lit));
            }
        }
    }
    out
}

/// `s` with every regular-expression metacharacter escaped.
pub fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Why `pattern` is not a topic pattern the broker would take as meant: empty, longer
/// than a routing key may be (255 bytes), an empty word (`a..b`, a leading or trailing
/// `.`), or `*`/`#` inside a word (`bizreg.enterprise*` matches only that literal word).
pub fn pattern_problem(pattern: &str) -> Option<String> {
    if pattern.is_empty() {
        return Some("empty pattern; write e.g. bizreg.# or tax.einvoice.*".into());
    }
    if pattern.len() > 255 {
        return Some(format!(
            "longer than 255 bytes ({}), the most a routing key can be",
            pattern.len()
        ));
    }
    for word in pattern.split('.') {
        if word.is_empty() {
            return Some(format!(
                "`{pattern}` has an empty word (two dots, or a dot at an end)"
            ));
        }
        if word != "*" && word != "#" && (word.contains('*') || word.contains('#')) {
            return Some(format!(
                "`{word}` in `{pattern}`: `*` and `#` match only as whole words between dots; write e.g. `bizreg.*`"
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::{matches, pattern_problem};

    #[test]
    fn bad_patterns_are_named() {
        assert!(pattern_problem("bizreg.#").is_none());
        assert!(pattern_problem("*.einvoice.*").is_none());
        assert!(pattern_problem("").is_some());
        assert!(pattern_problem("a..b").unwrap().contains("empty word"));
        assert!(pattern_problem("a.").is_some());
        assert!(
            pattern_problem("bizreg.enterprise*")
                .unwrap()
                .contains("whole words")
        );
        assert!(pattern_problem(&"a".repeat(256)).is_some());
    }

    #[test]
    fn topic_bindings_match_like_rabbitmq() {
        assert!(matches("bizreg.#", "bizreg.enterprise.registered"));
        assert!(matches("bizreg.*.registered", "bizreg.branch.registered"));
        assert!(!matches("bizreg.*", "bizreg.enterprise.registered"));
        assert!(matches("#", "a"));
        assert!(matches("a.#", "a"));
        assert!(matches("tax.einvoice.*", "tax.einvoice.issued"));
        assert!(!matches("tax.einvoice.*", "bizreg.enterprise.registered"));
        assert!(!matches("a.b", "a.b.c"));
        assert!(matches("#.c", "a.b.c"));
    }
}
