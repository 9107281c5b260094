//! One compiled regular expression per distinct pattern of the loaded mappings.
//!
//! The shipped adapters write 176 patterns of which 42 differ (`^\d{5}$` twenty times, and
//! `\d` is the Unicode class, so each copy was a sizable automaton). Compiled once each,
//! the copies share their automata and their search caches: a heap profile of the loaded
//! adapters had compiled expressions as its largest part (BENCHMARKS.md). Only patterns
//! written in mappings come here, never one read from a message, so the set is bounded
//! by the configuration.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{LazyLock, Mutex, PoisonError};

use regex::Regex;

static COMPILED: LazyLock<Mutex<HashMap<String, Regex>>> = LazyLock::new(Default::default);
static COMPILATIONS: AtomicUsize = AtomicUsize::new(0);

/// The compiled `pattern`, compiled at its first use.
pub(crate) fn compile(pattern: &str) -> Result<Regex, regex::Error> {
    // The map only ever gains complete entries, so a poisoned lock is still sound.
    let mut compiled = COMPILED.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(re) = compiled.get(pattern) {
        return Ok(re.clone());
    }
    let re = Regex::new(pattern)?;
    COMPILATIONS.fetch_add(1, Ordering::Relaxed);
    compiled.insert(pattern.to_owned(), re.clone());
    Ok(re)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pattern_is_compiled_once_however_often_it_is_written() {
        let before = COMPILATIONS.load(Ordering::Relaxed);
        let a = compile(r"^\d{5}-once$").unwrap();
        let b = compile(r"^\d{5}-once$").unwrap();
        assert_eq!(COMPILATIONS.load(Ordering::Relaxed), before + 1);
        assert!(a.is_match("12345-once") && b.is_match("12345-once"));
        assert!(!b.is_match("1234-once"));
        let c = compile(r"^\d{6}-once$").unwrap();
        assert_eq!(COMPILATIONS.load(Ordering::Relaxed), before + 2);
        assert!(c.is_match("123456-once"));
    }

    #[test]
    fn an_invalid_pattern_is_refused_every_time_and_not_kept() {
        assert!(compile("(unclosed").is_err());
        assert!(compile("(unclosed").is_err());
        let kept = COMPILED.lock().unwrap_or_else(PoisonError::into_inner);
        assert!(!kept.contains_key("(unclosed"));
    }
}
