//! Decoding payloads into the mapping tree.
