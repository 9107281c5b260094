//! Errors of mapping one message, with the bus's error kinds and stable codes.

use crate::decode::DecodeError;
use crate::xml_out::XmlOutError;

/// The error kinds of the bus; a mapping produces `decode`, `limit`, `mapping` and
/// `validation` (see `docs/contracts.md`).
pub use lgsp_core::failure::FailureKind as ErrorKind;

/// A field that could not be produced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("mapping {mapping}: field {field}: {message}")]
pub struct FieldError {
    /// `adapter.mapping`.
    pub mapping: String,
    /// Output path, e.g. `industries[2].vsic_code`.
    pub field: String,
    pub kind: ErrorKind,
    /// Stable id of the error template, for grouping failures.
    pub code: String,
    pub message: String,
}

/// Why a message could not be mapped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MapError {
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error(transparent)]
    Field(#[from] FieldError),
    #[error(
        "the message has no type: set the AMQP `type` property (e.g. bizreg.enterprise.registered)"
    )]
    NoType,
    #[error("adapter {adapter} does not map message type `{message_type}`; it maps: {known}")]
    UnknownType {
        adapter: String,
        message_type: String,
        known: String,
    },
    #[error(
        "adapter {adapter}: message type `{message_type}`: the payload ({found}) matches no mapping; expected one of: {expected}"
    )]
    NoMatch {
        adapter: String,
        message_type: String,
        found: String,
        expected: String,
    },
    #[error("adapter {adapter} has no mapping `{mapping}`; it has: {known}")]
    UnknownMapping {
        adapter: String,
        mapping: String,
        known: String,
    },
    #[error("mapping {mapping} reads {expected}, but the payload is {found}")]
    WrongFormat {
        mapping: String,
        expected: &'static str,
        found: &'static str,
    },
    #[error("mapping {mapping}: cannot write the output as XML: {source}")]
    Encode {
        mapping: String,
        #[source]
        source: XmlOutError,
    },
}

impl MapError {
    /// The bus error kind (`decode`, `limit`, `mapping`, `validation`).
    pub fn kind(&self) -> ErrorKind {
        match self {
            MapError::Decode(e) => e.kind(),
            MapError::Field(f) => f.kind,
            _ => ErrorKind::Mapping,
        }
    }

    /// Stable id of the error template.
    pub fn code(&self) -> String {
        match self {
            MapError::Decode(e) => e.code().to_owned(),
            MapError::Field(f) => f.code.clone(),
            MapError::NoType => "dispatch.no_type".into(),
            MapError::UnknownType { .. } => "dispatch.unknown_type".into(),
            MapError::NoMatch { .. } => "dispatch.no_match".into(),
            MapError::UnknownMapping { .. } => "dispatch.unknown_mapping".into(),
            MapError::WrongFormat { .. } => "dispatch.wrong_format".into(),
            MapError::Encode { .. } => "encode.xml".into(),
        }
    }
}
