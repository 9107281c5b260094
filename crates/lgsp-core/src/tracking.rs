//! Message tracking: the story of each message (received, delivered to which target,
//! retried, failed, stored, edited, replayed), as metadata only, for "where is my
//! message?" (`GET /admin/v1/messages/{id}`, `lgsp trace`).
//!
//! The hot path only hands an [`Event`] to a bounded queue ([`Tracker::record`], which
//! never blocks: when the queue is full the event is dropped and counted). A writer off
//! the hot path (in the store crate) takes them in batches. An event holds names from
//! the configuration, ids and stable codes: never a value of a message, so no personal
//! data is tracked.

use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::time::{SystemTime, UNIX_EPOCH};

use prometheus_client::metrics::counter::Counter;

/// Events waiting for the writer, at most: a few seconds of the bus at full speed.
pub const QUEUE: usize = 20_000;

/// What happened to a message (`event` of a tracking row).
pub mod kind {
    /// Taken from an adapter's input queue (detail: adapter, routing key, attempt).
    pub const RECEIVED: &str = "received";
    /// Accepted by the HTTP gateway from an application.
    pub const ACCEPTED: &str = "accepted";
    /// Every output for a target confirmed by the broker.
    pub const DELIVERED: &str = "delivered";
    /// Put in a webhook's queue (confirmed); its POST follows.
    pub const QUEUED: &str = "queued";
    /// A webhook receiver answered 2xx.
    pub const WEBHOOK_DELIVERED: &str = "webhook.delivered";
    /// Sent to a retry queue.
    pub const RETRIED: &str = "retried";
    /// A failure record published (kind/code in the detail).
    pub const FAILED: &str = "failed";
    /// Returned to its queue (nothing known about its targets).
    pub const REQUEUED: &str = "requeued";
    /// Kept in the failed-message store.
    pub const STORED: &str = "stored";
    /// Its body edited by an operator before a replay.
    pub const EDITED: &str = "edited";
    /// Replayed by an operator.
    pub const REPLAYED: &str = "replayed";
    /// Discarded by an operator.
    pub const DISCARDED: &str = "discarded";
}

/// One step of a message's story.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub message_id: String,
    /// Milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// One of [`kind`].
    pub event: &'static str,
    /// The route(s), comma-separated; empty when none applies.
    pub route: String,
    /// The target id; empty when none applies.
    pub target: String,
    /// Metadata: an adapter, a routing key, an attempt, an error code, an actor.
    pub detail: String,
}

impl Event {
    /// An event of now.
    pub fn now(message_id: &str, event: &'static str) -> Event {
        Event::at(message_id, event, now_ms())
    }

    /// An event of `at_ms` (taken before a publish whose confirm the event waits for:
    /// what the publish causes elsewhere must not come first in the story).
    pub fn at(message_id: &str, event: &'static str, at_ms: i64) -> Event {
        Event {
            message_id: message_id.to_owned(),
            at_ms,
            event,
            route: String::new(),
            target: String::new(),
            detail: String::new(),
        }
    }

    pub fn route(mut self, route: impl Into<String>) -> Event {
        self.route = route.into();
        self
    }

    pub fn target(mut self, target: impl Into<String>) -> Event {
        self.target = target.into();
        self
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Event {
        self.detail = detail.into();
        self
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Where the bus's parts hand their events; cheap to clone. [`Tracker::off`] records
/// nothing.
#[derive(Clone, Default)]
pub struct Tracker {
    tx: Option<SyncSender<Event>>,
    /// Shared with `lgsp_tracking_events_dropped_total` when metrics are on.
    dropped: Counter,
}

impl std::fmt::Debug for Tracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracker")
            .field("on", &self.tx.is_some())
            .field("dropped", &self.dropped())
            .finish()
    }
}

impl Tracker {
    /// A tracker and the receiving end its writer drains (at most `capacity` waiting);
    /// events it cannot queue are counted in `dropped`.
    pub fn new(capacity: usize, dropped: Counter) -> (Tracker, Receiver<Event>) {
        let (tx, rx) = std::sync::mpsc::sync_channel(capacity.max(1));
        (
            Tracker {
                tx: Some(tx),
                dropped,
            },
            rx,
        )
    }

    /// A tracker that records nothing (`tracking.enabled: false`, tools, tests).
    pub fn off() -> Tracker {
        Tracker::default()
    }

    pub fn is_on(&self) -> bool {
        self.tx.is_some()
    }

    /// Hand `event` to the writer without waiting; a full queue or a stopped writer
    /// drops it (counted in [`Tracker::dropped`]). Build the event only when
    /// [`Tracker::is_on`], or through [`Tracker::with`].
    pub fn record(&self, event: Event) {
        let Some(tx) = &self.tx else { return };
        match tx.try_send(event) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.dropped.inc();
            }
        }
    }

    /// Record the event `make` builds, building it only when tracking is on.
    pub fn with(&self, make: impl FnOnce() -> Event) {
        if self.is_on() {
            self.record(make());
        }
    }

    /// Events lost to a full queue or a stopped writer since the start.
    pub fn dropped(&self) -> u64 {
        self.dropped.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_off_tracker_builds_nothing_and_a_full_queue_counts_what_it_drops() {
        let off = Tracker::off();
        off.with(|| panic!("an off tracker must not build events"));
        assert!(!off.is_on());

        let (t, rx) = Tracker::new(2, Counter::default());
        for i in 0..5 {
            t.record(Event::now(&format!("m-{i}"), kind::RECEIVED).route("r"));
        }
        assert_eq!(t.dropped(), 3);
        let got: Vec<Event> = rx.try_iter().collect();
        assert_eq!(
            got.iter()
                .map(|e| e.message_id.as_str())
                .collect::<Vec<_>>(),
            ["m-0", "m-1"]
        );
        assert_eq!(got[0].route, "r");
        drop(rx);
        t.record(Event::now("m-9", kind::FAILED));
        assert_eq!(t.dropped(), 4, "a stopped writer drops and counts");
    }
}
