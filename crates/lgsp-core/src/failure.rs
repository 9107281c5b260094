//! The kinds of failure of the bus (`docs/contracts.md`, error kinds): one closed enum
//! that the router writes into `lgsp-error-kind`, the store keeps in `error_kind`, the
//! admin API filters and answers with and the CLI reads. On the wire, in the database
//! and in JSON a kind is its lowercase name (`decode`, `mapping`, ...), so nothing that
//! was written before this type existed reads differently.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a message could not be delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FailureKind {
    /// The payload is not the XML or JSON it claims to be (syntax, encoding, content
    /// type, DTD or entity).
    Decode,
    /// No mapping applies, or a field could not be produced.
    Mapping,
    /// The output is wrong for its schema or a step's checks.
    Validation,
    /// A target refused it for good (a webhook's 4xx) or every attempt was used.
    Delivery,
    /// Over a configured limit (size, nesting depth).
    Limit,
    /// The sender may not publish it.
    Forbidden,
    /// Nothing is bound to its routing key, or the broker had no queue for a target.
    Unroutable,
    /// Dead-lettered by the broker (e.g. past the route queue's delivery limit).
    Poison,
}

impl FailureKind {
    /// Every kind, in the order of the contract.
    pub const ALL: [FailureKind; 8] = [
        FailureKind::Decode,
        FailureKind::Mapping,
        FailureKind::Validation,
        FailureKind::Delivery,
        FailureKind::Limit,
        FailureKind::Forbidden,
        FailureKind::Unroutable,
        FailureKind::Poison,
    ];

    /// What a failure is kept and shown as when its kind is missing or is one this
    /// version does not know (written by a newer lgsp, or by hand): `mapping`, the kind
    /// the router gave before it named kinds. Whoever falls back keeps the original
    /// text in the error message ([`UnknownFailureKind::note`]).
    pub const FALLBACK: FailureKind = FailureKind::Mapping;

    /// The name on the wire, in the store and in JSON.
    pub const fn as_str(self) -> &'static str {
        match self {
            FailureKind::Decode => "decode",
            FailureKind::Mapping => "mapping",
            FailureKind::Validation => "validation",
            FailureKind::Delivery => "delivery",
            FailureKind::Limit => "limit",
            FailureKind::Forbidden => "forbidden",
            FailureKind::Unroutable => "unroutable",
            FailureKind::Poison => "poison",
        }
    }

    /// Whether running the adapter's mapping on the stored input again shows the same
    /// failure (`lgsp test` can reproduce it); the other kinds are about the sender,
    /// the routing or the delivery, not the payload.
    pub const fn is_reproducible(self) -> bool {
        matches!(
            self,
            FailureKind::Decode
                | FailureKind::Mapping
                | FailureKind::Validation
                | FailureKind::Limit
        )
    }

    /// `text` as a kind, or [`FailureKind::FALLBACK`] and what was unknown about it.
    pub fn parse_or_fallback(text: &str) -> (FailureKind, Option<UnknownFailureKind>) {
        match text.parse() {
            Ok(k) => (k, None),
            Err(e) => (FailureKind::FALLBACK, Some(e)),
        }
    }

    /// The names of every kind, comma-separated (for messages).
    pub fn names() -> String {
        FailureKind::ALL.map(FailureKind::as_str).join(", ")
    }
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A text that names no failure kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown error kind `{0}`; the kinds are: {kinds}", kinds = FailureKind::names())]
pub struct UnknownFailureKind(pub String);

impl UnknownFailureKind {
    /// What to add to a failure's message when it is kept as [`FailureKind::FALLBACK`].
    pub fn note(&self) -> String {
        format!(
            "error kind `{}` is unknown to this version of lgsp, kept as `{}`",
            self.0,
            FailureKind::FALLBACK
        )
    }
}

impl FromStr for FailureKind {
    type Err = UnknownFailureKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FailureKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownFailureKind(s.to_owned()))
    }
}

impl Serialize for FailureKind {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for FailureKind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl prometheus_client::encoding::EncodeLabelValue for FailureKind {
    fn encode(
        &self,
        encoder: &mut prometheus_client::encoding::LabelValueEncoder,
    ) -> Result<(), fmt::Error> {
        fmt::Write::write_str(encoder, self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_reads_back_from_its_name() {
        for k in FailureKind::ALL {
            assert_eq!(k.as_str().parse::<FailureKind>(), Ok(k));
            assert_eq!(k.to_string(), k.as_str());
        }
    }

    #[test]
    fn the_names_are_the_contracts_lowercase_words() {
        assert_eq!(
            FailureKind::names(),
            "decode, mapping, validation, delivery, limit, forbidden, unroutable, poison"
        );
    }

    #[test]
    fn an_unknown_kind_is_named_with_the_valid_ones() {
        let e = "timeout".parse::<FailureKind>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown error kind `timeout`; the kinds are: decode, mapping, validation, delivery, limit, forbidden, unroutable, poison"
        );
        // Case matters: the wire format is lowercase only.
        assert!("Mapping".parse::<FailureKind>().is_err());
    }

    #[test]
    fn serde_uses_the_same_lowercase_names() {
        assert_eq!(
            serde_json::to_string(&FailureKind::Unroutable).unwrap(),
            "\"unroutable\""
        );
        let k: FailureKind = serde_json::from_str("\"poison\"").unwrap();
        assert_eq!(k, FailureKind::Poison);
        let e = serde_json::from_str::<FailureKind>("\"bogus\"").unwrap_err();
        assert!(e.to_string().contains("unknown error kind `bogus`"), "{e}");
    }

    #[test]
    fn an_unknown_text_falls_back_and_says_what_it_was() {
        assert_eq!(
            FailureKind::parse_or_fallback("delivery"),
            (FailureKind::Delivery, None)
        );
        let (k, unknown) = FailureKind::parse_or_fallback("quota");
        assert_eq!(k, FailureKind::FALLBACK);
        assert_eq!(
            unknown.map(|u| u.note()).as_deref(),
            Some("error kind `quota` is unknown to this version of lgsp, kept as `mapping`")
        );
    }

    #[test]
    fn only_payload_kinds_are_reproducible_by_a_mapping_test() {
        let reproducible: Vec<&str> = FailureKind::ALL
            .into_iter()
            .filter(|k| k.is_reproducible())
            .map(FailureKind::as_str)
            .collect();
        assert_eq!(reproducible, ["decode", "mapping", "validation", "limit"]);
    }
}
