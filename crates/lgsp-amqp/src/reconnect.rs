//! The reconnect policy, in one small tested unit: how long to wait before the next
//! attempt, and which errors are worth retrying at all.

use std::time::Duration;

/// Exponential backoff with a ceiling; `reset` after a success.
#[derive(Debug, Clone)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub fn new(first: Duration, max: Duration) -> Self {
        Backoff {
            first,
            max,
            next: first,
        }
    }

    /// The wait before the next attempt; doubles up to the ceiling.
    pub fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(self.max);
        d
    }

    pub fn reset(&mut self) {
        self.next = self.first;
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new(Duration::from_millis(250), Duration::from_secs(30))
    }
}

/// What to do about a broker error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovery {
    /// Reconnect after a backoff (network, broker restart, connection or channel closed).
    Retry,
    /// Retrying cannot help: the configuration contradicts the broker (access refused,
    /// inequivalent arguments, missing exchange). Stop and say what to change.
    Fatal,
}

/// Classify an error by its text (lapin reports AMQP reply codes in it).
pub fn classify(error: &str) -> Recovery {
    const FATAL: [&str; 5] = [
        "ACCESS_REFUSED",
        "PRECONDITION_FAILED",
        "NOT_ALLOWED",
        "inequivalent",
        "does not exist; declare it",
    ];
    if FATAL.iter().any(|f| error.contains(f)) {
        Recovery::Fatal
    } else {
        Recovery::Retry
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_a_ceiling_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(500));
        let seen: Vec<u128> = (0..5).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(seen, vec![100, 200, 400, 500, 500]);
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_millis(100));
    }

    #[test]
    fn access_and_contradictions_are_fatal_network_trouble_is_not() {
        assert_eq!(
            classify("ACCESS_REFUSED - Login was refused"),
            Recovery::Fatal
        );
        assert_eq!(
            classify(
                "queue x exists with different settings (PRECONDITION_FAILED - inequivalent arg)"
            ),
            Recovery::Fatal
        );
        assert_eq!(
            classify("IO error: Connection refused (os error 111)"),
            Recovery::Retry
        );
        assert_eq!(
            classify(
                "connection closed by server: CONNECTION_FORCED - broker forced connection closure"
            ),
            Recovery::Retry
        );
        assert_eq!(classify("invalid channel state: Closed"), Recovery::Retry);
    }
}
