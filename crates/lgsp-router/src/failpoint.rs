//! Failure points for tests: `FAILPOINTS=name[=N],...` makes the process exit abruptly
//! (as a crash would) the Nth time it passes the named point (default: the first).
//! Compiled only with the `failpoints` feature, which test builds enable.

/// Points where a crash matters for at-least-once delivery.
pub const AFTER_PUBLISH_BEFORE_CONFIRM: &str = "exit_after_publish_before_confirm";
pub const AFTER_CONFIRM_BEFORE_ACK: &str = "exit_after_confirm_before_ack";
/// `abort_on_message_id=<id>`: abort (as a crash in a mapping would) on that message.
pub const ABORT_ON_MESSAGE_ID: &str = "abort_on_message_id";
/// `panic_on_message_id=<id>`: panic inside the mapping of that message (repeatable).
pub const PANIC_ON_MESSAGE_ID: &str = "panic_on_message_id";

#[cfg(feature = "failpoints")]
mod imp {
    use std::collections::HashMap;
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};

    fn spec() -> String {
        std::env::var("FAILPOINTS").unwrap_or_default()
    }

    /// The message ids the spec gives `key`.
    fn ids(key: &str) -> Vec<String> {
        spec()
            .split(',')
            .filter_map(|s| s.split_once('='))
            .filter(|(k, _)| k.trim() == key)
            .map(|(_, v)| v.trim().to_owned())
            .collect()
    }

    pub fn panic_on(message_id: &str) {
        static IDS: OnceLock<Vec<String>> = OnceLock::new();
        let ids = IDS.get_or_init(|| ids(super::PANIC_ON_MESSAGE_ID));
        if ids.iter().any(|i| i == message_id) {
            panic!(
                "failpoint {}={message_id} reached",
                super::PANIC_ON_MESSAGE_ID
            );
        }
    }

    pub fn abort_on(message_id: &str) {
        static IDS: OnceLock<Vec<String>> = OnceLock::new();
        let ids = IDS.get_or_init(|| ids(super::ABORT_ON_MESSAGE_ID));
        if ids.iter().any(|i| i == message_id) {
            eprintln!(
                "failpoint {}={message_id} reached: aborting",
                super::ABORT_ON_MESSAGE_ID
            );
            std::process::abort();
        }
    }

    fn points() -> &'static HashMap<String, (u64, AtomicU64)> {
        static POINTS: OnceLock<HashMap<String, (u64, AtomicU64)>> = OnceLock::new();
        POINTS.get_or_init(|| {
            spec()
                .split(',')
                .filter(|s| !s.trim().is_empty())
                .map(|s| {
                    let (name, n) = s.split_once('=').unwrap_or((s, "1"));
                    let n = n.trim().parse().unwrap_or(1);
                    (name.trim().to_owned(), (n, AtomicU64::new(0)))
                })
                .collect()
        })
    }

    pub fn hit(name: &str) {
        if let Some((at, count)) = points().get(name)
            && count.fetch_add(1, Ordering::SeqCst) + 1 == *at
        {
            eprintln!("failpoint {name} reached: exiting");
            std::process::exit(70);
        }
    }
}

/// Pass the failure point `name`.
#[inline]
pub fn hit(_name: &str) {
    #[cfg(feature = "failpoints")]
    imp::hit(_name);
}

/// Abort the process if a failure point names this message.
#[inline]
pub fn abort_on(_message_id: &str) {
    #[cfg(feature = "failpoints")]
    imp::abort_on(_message_id);
}

/// Panic if a failure point names this message (inside the mapping, which catches it).
#[inline]
pub fn panic_on(_message_id: &str) {
    #[cfg(feature = "failpoints")]
    imp::panic_on(_message_id);
}
