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

#[cfg(test)]
mod tests {
    use super::matches;

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
