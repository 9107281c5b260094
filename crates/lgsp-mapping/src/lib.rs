//! Payload decoding, the mapping DSL and its building blocks.
//!
//! - [`decode`]: XML and JSON payloads into the tree mappings read (hostile-input safe).
//! - [`values`]: transforms (`vn_number`, `date`, ...) and checks (`tax_code`, ...) on one value.
//! - [`xml_out`]: a canonical JSON tree written as XML for receivers that speak XML.
//! - [`dsl`]: mapping specifications as written in YAML, compiled once, run per message.
//! - [`mask`]: a payload with every value hidden (what the viewer role sees).
//! - [`catalog`]: the events the routes carry, who publishes and who receives what.
//! - [`domain`]: canonical schemas, effective-dated reference tables, Rust steps, warnings.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod catalog;
pub mod decode;
pub mod domain;
pub mod dsl;
pub mod json_out;
pub mod mask;
pub mod values;
pub mod xml_out;
