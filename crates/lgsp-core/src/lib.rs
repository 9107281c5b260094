//! The core of lgsp: what every other part shares and nothing else.
//!
//! - [`config`]: the configuration model, its units (durations, sizes, secrets) and a
//!   loader that reports every problem with file, key path and line:column.
//! - [`agreement`]: data-sharing agreements, the fields each receiver may get.
//! - [`apps`]: sector applications, their API keys (as SHA-256) and their rights.
//! - [`topic`]: topic patterns matched as the broker matches them.
//! - [`failure`]: the closed set of failure kinds every part names failures by.
//! - [`metrics`]: what the bus counts, rendered for Prometheus.
//! - [`tracking`]: the story of each message, as metadata, handed off the hot path.
//! - [`envelope`]: the properties of a message on the bus that a mapping may read.
//! - [`step`]: the trait adapter crates implement for logic the mapping DSL cannot say,
//!   the registry of steps, and warnings (`{code, field, message}`).
//!
//! The core knows no broker, no HTTP and no SQL.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod agreement;
pub mod apps;
pub mod config;
pub mod envelope;
pub mod failure;
pub mod metrics;
pub mod step;
pub mod tls;
pub mod topic;
pub mod tracking;
