//! Canonical JSON written as XML.
