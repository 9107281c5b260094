//! The failed-message store of lgsp and what feeds and drains it.
//!
//! - [`store`]: one [`Store`] over SQLite (embedded default) or PostgreSQL, migrations
//!   per backend run at start, records with a format version.
//! - [`record`]: what a stored failure keeps, list filters and pages.
//! - [`classify`]: from a message on `<p>.failed` or `<p>.unrouted` to a record: lgsp
//!   failures, broker dead-letters (`poison`), unroutable messages.
//! - [`ingest`]: the ingestor inside `lgsp run`, acking only after the commit and
//!   pausing (not nacking) while the store is unreachable.
//! - [`replay`]: republish a stored message to its route with a confirm.
//! - [`ops`]: groups of failures by cause, selections for bulk replay, discard,
//!   retention.
//! - [`edit`]: an edited body kept as a diff against the stored one.
//! - [`approval`]: requests that a second operator approves.
//! - [`audit`]: the append-only, hash-chained audit log.
//! - [`idempotency`]: the HTTP gateway's idempotency keys.
//! - [`tracking`]: message tracking events, written in batches, read per message.
//! - [`failpoint`]: an injected store outage for tests.
//!
//! How messages move through these parts: `design.md` beside this file.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod approval;
pub mod audit;
pub mod classify;
pub mod edit;
pub mod failpoint;
pub mod fields;
pub mod idempotency;
pub mod ingest;
pub mod ops;
pub mod record;
pub mod replay;
pub mod store;
pub mod tracking;

pub use record::{Failure, Filter, NewFailure, Page, Replay, Status, Summary};
pub use store::{Store, StoreError};
