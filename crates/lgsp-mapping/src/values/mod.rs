//! Transforms and checks on single values.
