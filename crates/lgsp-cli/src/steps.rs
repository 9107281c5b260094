//! The one place where adapter crates with Rust steps are registered.
//!
//! Each adapter crate that has Rust steps exposes `pub fn register(&mut StepRegistry)
//! -> Result<(), DuplicateStep>` and gets exactly one line below (and one dependency
//! line in this crate's Cargo.toml). Nothing else in `crates/` knows about adapters.

use lgsp_core::step::{DuplicateStep, StepRegistry};

/// Every Rust step this binary knows.
pub fn registry() -> Result<StepRegistry, DuplicateStep> {
    let mut steps = StepRegistry::new();
    lgsp_adapter_emis::register(&mut steps)?;
    lgsp_adapter_tax::register(&mut steps)?;
    Ok(steps)
}
