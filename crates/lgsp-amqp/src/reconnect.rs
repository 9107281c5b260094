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

/// What to do about an error of the AMQP client. The broker's refusals that retrying
/// cannot change — wrong credentials or permissions (403), a redeclare with other
/// arguments (406), a vhost that does not exist or is not allowed (530, 402) — are
/// fatal; everything else (network, a restart, a closed connection or channel, a queue
/// not declared yet) is worth a reconnect.
pub fn recovery(e: &lapin::Error) -> Recovery {
    use lapin::ErrorKind;
    use lapin::protocol::{AMQPErrorKind, AMQPHardError, AMQPSoftError};
    match e.kind() {
        ErrorKind::ProtocolError(amqp) => match amqp.kind() {
            AMQPErrorKind::Soft(AMQPSoftError::ACCESSREFUSED)
            | AMQPErrorKind::Soft(AMQPSoftError::PRECONDITIONFAILED)
            | AMQPErrorKind::Hard(AMQPHardError::NOTALLOWED)
            | AMQPErrorKind::Hard(AMQPHardError::INVALIDPATH) => Recovery::Fatal,
            _ => Recovery::Retry,
        },
        ErrorKind::InvalidProtocolVersion(_) | ErrorKind::AuthProviderError(_) => Recovery::Fatal,
        _ => Recovery::Retry,
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
    fn refusals_retrying_cannot_change_are_fatal_network_trouble_is_not() {
        use lapin::protocol::{AMQPError, AMQPErrorKind, AMQPHardError, AMQPSoftError};
        let amqp = |k: AMQPErrorKind| {
            lapin::Error::from(lapin::ErrorKind::ProtocolError(AMQPError::new(
                k,
                "refused".into(),
            )))
        };
        for fatal in [
            AMQPErrorKind::Soft(AMQPSoftError::ACCESSREFUSED),
            AMQPErrorKind::Soft(AMQPSoftError::PRECONDITIONFAILED),
            AMQPErrorKind::Hard(AMQPHardError::NOTALLOWED),
        ] {
            assert_eq!(recovery(&amqp(fatal.clone())), Recovery::Fatal, "{fatal:?}");
        }
        for retry in [
            AMQPErrorKind::Hard(AMQPHardError::CONNECTIONFORCED),
            AMQPErrorKind::Soft(AMQPSoftError::NOTFOUND),
            AMQPErrorKind::Soft(AMQPSoftError::RESOURCELOCKED),
        ] {
            assert_eq!(recovery(&amqp(retry.clone())), Recovery::Retry, "{retry:?}");
        }
        let io = lapin::Error::from(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert_eq!(recovery(&io), Recovery::Retry);
        let closed = lapin::Error::from(lapin::ErrorKind::InvalidChannelState(
            lapin::ChannelState::Closed,
            "closed",
        ));
        assert_eq!(recovery(&closed), Recovery::Retry);
    }
}
