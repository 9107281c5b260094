//! Failure points for tests: `FAILPOINTS=name[=N],...` makes the process exit abruptly
//! (as a crash would) the Nth time it passes the named point (default: the first).
//! Compiled only with the `failpoints` feature, which test builds enable.

/// Points where a crash matters for at-least-once delivery.
pub const AFTER_PUBLISH_BEFORE_CONFIRM: &str = "exit_after_publish_before_confirm";
pub const AFTER_CONFIRM_BEFORE_ACK: &str = "exit_after_confirm_before_ack";

#[cfg(feature = "failpoints")]
mod imp {
    use std::collections::HashMap;
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};

    fn points() -> &'static HashMap<String, (u64, AtomicU64)> {
        static POINTS: OnceLock<HashMap<String, (u64, AtomicU64)>> = OnceLock::new();
        POINTS.get_or_init(|| {
            let spec = std::env::var("FAILPOINTS").unwrap_or_default();
            spec.split(',')
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
