//! The failed-message service of lgsp: what moves failed messages between the broker
//! and the store ([`lgsp_store`], which is persistence only and knows no broker).
//!
//! - [`classify`]: from a message on `<p>.failed` or `<p>.unrouted` to a record: lgsp
//!   failures, broker dead-letters (`poison`), unroutable messages.
//! - [`ingest`]: the ingestor inside `lgsp run`, acking only after the commit and
//!   pausing (not nacking) while the store is unreachable.
//! - [`replay`]: republish a stored message to its route with a confirm, one or a bulk
//!   batch at a time.
//! - [`fields`]: AMQP properties and headers as the JSON the store keeps, and back.
//!
//! How messages move through these parts: `crates/lgsp-store/design.md`.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod classify;
pub mod fields;
pub mod ingest;
pub mod replay;
