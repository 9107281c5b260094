//! Mapping specifications: parse, compile, run.
