//! What the store keeps: a failed message, its summary for lists, its replay history,
//! and the filters of a list.

use lgsp_core::failure::FailureKind;
use serde::Serialize;

/// Version of the stored record format. A record keeps the version it was written
/// with; readers accept every version up to this one.
pub const FORMAT_VERSION: i64 = 1;

/// Where a record is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Failed,
    Replayed,
    Discarded,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Failed => "failed",
            Status::Replayed => "replayed",
            Status::Discarded => "discarded",
        }
    }
    pub fn parse(s: &str) -> Option<Status> {
        match s {
            "failed" => Some(Status::Failed),
            "replayed" => Some(Status::Replayed),
            "discarded" => Some(Status::Discarded),
            _ => None,
        }
    }
}

/// A failure as it arrives from the broker, ready to be stored.
#[derive(Debug, Clone, PartialEq)]
pub struct NewFailure {
    /// `lgsp-failure-id`, or one derived deterministically from the message.
    pub failure_id: String,
    pub message_id: String,
    /// The routes the message failed on, comma-separated (`lgsp-route`); `None` for
    /// unroutable messages.
    pub route: Option<String>,
    /// Targets still to deliver (`lgsp-targets`, qualified by their route); empty: all
    /// of the routes'.
    pub targets: Vec<String>,
    pub original_exchange: String,
    pub original_routing_key: String,
    /// The queue the ingestor took it from (`<p>.failed` or `<p>.unrouted`).
    pub source_queue: String,
    /// AMQP properties other than headers, as JSON.
    pub properties: serde_json::Value,
    /// Every header, as JSON (see `fields`).
    pub headers: serde_json::Value,
    pub body: Vec<u8>,
    pub content_type: Option<String>,
    pub error_kind: FailureKind,
    pub error_code: String,
    pub error: String,
    pub attempts: i64,
    /// Unix milliseconds.
    pub failed_at: i64,
}

/// One line of a list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub id: i64,
    pub failure_id: String,
    pub message_id: String,
    pub route: Option<String>,
    /// A stored kind this version does not know reads as [`FailureKind::FALLBACK`],
    /// its text said at the start of `error`.
    pub error_kind: FailureKind,
    pub error_code: String,
    pub error: String,
    pub status: Status,
    pub attempts: i64,
    /// RFC 3339, UTC.
    pub first_failed_at: String,
    pub last_failed_at: String,
}

/// A stored failed message, whole.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub id: i64,
    pub format_version: i64,
    pub summary: Summary,
    pub targets: Vec<String>,
    pub original_exchange: String,
    pub original_routing_key: String,
    pub source_queue: String,
    pub properties: serde_json::Value,
    pub headers: serde_json::Value,
    pub body: Vec<u8>,
    pub content_type: Option<String>,
    pub stored_at: String,
    /// This record's replays, oldest first.
    pub replays: Vec<Replay>,
    /// Every replay of the same message on the same route, this record's and those of
    /// earlier failures of it (an edit stays visible after the message failed again
    /// and was replayed plainly).
    pub history: Vec<Replay>,
    /// Who discarded it and why (status `discarded`).
    pub discarded_by: Option<String>,
    pub discard_reason: Option<String>,
}

/// One replay of a stored message.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Replay {
    /// The record it replayed.
    pub failed_id: i64,
    pub at: String,
    /// Who asked for it (the token's name).
    pub actor: String,
    pub exchange: String,
    pub routing_key: String,
    pub targets: Vec<String>,
    /// The body sent instead of the original, when it was edited.
    #[serde(skip)]
    pub edited_body: Option<Vec<u8>>,
    pub edited: bool,
    /// The edit as a unified diff against the stored body (text bodies).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
    /// Written to the audit entry of this replay (e.g. the approved request).
    #[serde(skip)]
    pub note: String,
    /// When its publish began (Unix ms; 0: when it is recorded). Its tracking events
    /// carry this time: the router may receive the replay before it is recorded.
    #[serde(skip)]
    pub sent_ms: i64,
}

impl Replay {
    /// Where it was published: `queue Q` (default exchange) or `exchange E key K`.
    pub fn destination(&self) -> String {
        if self.exchange.is_empty() {
            format!("queue {}", self.routing_key)
        } else {
            format!("exchange {} key {}", self.exchange, self.routing_key)
        }
    }
}

/// What a list shows. Every field narrows it; `None` does not.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Records that cost this route (among others).
    pub route: Option<String>,
    /// `route` is a record's whole list of routes (a group), not one of them.
    pub exact_route: bool,
    /// Only records without a route (unroutable); `route` is then ignored.
    pub no_route: bool,
    /// [`FailureKind::FALLBACK`] also selects records of a stored kind this version
    /// does not know, as they read as that kind.
    pub kind: Option<FailureKind>,
    pub code: Option<String>,
    /// Substring of the error text, case-insensitive (ASCII on SQLite).
    pub text: Option<String>,
    /// Last failure at or after, Unix milliseconds.
    pub from: Option<i64>,
    /// Last failure before, Unix milliseconds.
    pub to: Option<i64>,
    pub status: Option<Status>,
}

/// One page of a list, newest first; `next` is the cursor of the following page.
#[derive(Debug, Clone, Serialize)]
pub struct Page {
    pub items: Vec<Summary>,
    pub next_cursor: Option<String>,
}

/// Unix milliseconds as RFC 3339 UTC.
pub fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

/// RFC 3339 as Unix milliseconds.
pub fn parse_time(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.timestamp_millis())
}

/// Now, Unix milliseconds.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
