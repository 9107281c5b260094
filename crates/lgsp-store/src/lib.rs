//! The failed-message store of lgsp: persistence only. What feeds it from the broker
//! (the ingestor) and drains it back onto the bus (replay) is `lgsp-failed`.
//!
//! - [`store`]: one [`Store`] over SQLite (embedded default) or PostgreSQL, migrations
//!   per backend run at start, records with a format version.
//! - [`record`]: what a stored failure keeps, list filters and pages.
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
pub mod edit;
pub mod failpoint;
pub mod idempotency;
pub mod ops;
pub mod record;
pub mod store;
pub mod tracking;

pub use record::{Failure, Filter, NewFailure, Page, Replay, Status, Summary};
pub use store::{Store, StoreError};

#[cfg(test)]
mod tests {
    /// The store is persistence only: the broker side of failed messages (ingest,
    /// replay) is `lgsp-failed`, so nothing here may pull in the AMQP client.
    #[test]
    fn the_store_depends_on_no_broker_client() {
        let manifest = include_str!("../Cargo.toml");
        let deps = manifest
            .split("[dependencies]")
            .nth(1)
            .and_then(|rest| rest.split("\n[").next())
            .unwrap_or_default();
        for broker in ["lapin", "lgsp-amqp"] {
            assert!(
                !deps.lines().any(|l| l.trim_start().starts_with(broker)),
                "lgsp-store depends on {broker}"
            );
        }
        assert!(
            deps.contains("sqlx"),
            "the [dependencies] table was not found"
        );
    }
}
