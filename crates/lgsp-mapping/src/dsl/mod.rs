//! The mapping DSL: specifications as written in YAML ([`spec`]), compiled once at load
//! ([`program`], [`path`]), grouped per sector in an [`adapter`] that picks the mapping for
//! each message type, and test cases an integrator runs offline ([`testing`]).

pub mod adapter;
pub mod error;
mod eval;
pub mod path;
pub mod program;
mod regexes;
pub mod spec;
pub mod testing;

pub use adapter::{Adapter, Adapters, Decoded, Decoding, Mapped, payload_format};
pub use error::{ErrorKind, FieldError, MapError};
pub use program::Program;

/// Render outputs the way `lgsp map` prints them (and golden files store them): each
/// JSON output pretty-printed, each XML output as written, each followed by a newline.
pub fn render(outputs: &[Mapped]) -> String {
    let mut s = String::new();
    for m in outputs {
        if m.content_type == "application/json" {
            s.push_str(&serde_json::to_string_pretty(&m.value).unwrap_or_default());
        } else {
            s.push_str(&String::from_utf8_lossy(&m.body));
        }
        s.push('\n');
    }
    s
}
