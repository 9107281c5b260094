//! Transforms and checks on single values.
//!
//! Each function works on ONE leaf of a decoded payload (XML text, or a JSON string,
//! number or bool) and returns either its canonical JSON form or a [`ValueError`]
//! saying what is wrong, without quoting the value (callers add it, masked with
//! [`mask`] when it is personal).
//!
//! - Transforms ([`transform`]): [`text`], [`nfc`], [`trim`], [`upper`], [`lower`],
//!   [`integer`], [`decimal`], [`vn_number`], [`multiply`], [`boolean`], [`date`],
//!   [`datetime`], [`compact_tax_code`], [`split`].
//! - Checks ([`check`]): [`tax_code`], [`citizen_id`], [`budget_unit_code`], [`length`],
//!   and [`mask`] for showing personal values.

pub mod check;
mod date_family;
mod error;
pub mod transform;

pub use check::{budget_unit_code, citizen_id, length, mask, tax_code, vsic_code};
pub use error::{DateKind, ValueError};
pub use transform::{
    DatePatterns, boolean, compact_tax_code, date, datetime, decimal, integer, lower, multiply,
    nfc, parse_factor, split, text, trim, upper, vn_number,
};
