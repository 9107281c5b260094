//! The envelope of a message: AMQP properties and `lgsp-` headers a mapping may read.

use serde::Serialize;

/// What the bus knows of a message besides its body (DESIGN section 3).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Envelope {
    /// Stable id; it travels unchanged through retries and replays.
    pub message_id: String,
    pub correlation_id: Option<String>,
    /// Message type, e.g. `bizreg.enterprise.registered`.
    #[serde(rename = "type")]
    pub message_type: Option<String>,
    /// Sending system code (`app_id`).
    pub app_id: Option<String>,
    /// Sender unit (`lgsp-sender`, a Decision 20/2020 identifier such as `H37.05`).
    pub sender: Option<String>,
    /// RFC 3339 timestamp of publication.
    pub timestamp: Option<String>,
    pub content_type: Option<String>,
    /// The authenticated broker user, when the publisher set it.
    pub user_id: Option<String>,
}

impl Envelope {
    /// A field by its name in mappings (`envelope: message_id`), if set.
    pub fn get(&self, name: &str) -> Option<&str> {
        match name {
            "message_id" => Some(self.message_id.as_str()).filter(|s| !s.is_empty()),
            "correlation_id" => self.correlation_id.as_deref(),
            "type" => self.message_type.as_deref(),
            "app_id" => self.app_id.as_deref(),
            "sender" => self.sender.as_deref(),
            "timestamp" => self.timestamp.as_deref(),
            "content_type" => self.content_type.as_deref(),
            "user_id" => self.user_id.as_deref(),
            _ => None,
        }
    }

    /// Names accepted by [`Envelope::get`].
    pub const FIELDS: &'static [&'static str] = &[
        "message_id",
        "correlation_id",
        "type",
        "app_id",
        "sender",
        "timestamp",
        "content_type",
        "user_id",
    ];

    /// Set a field by name; `false` when the name is unknown.
    pub fn set(&mut self, name: &str, value: String) -> bool {
        let slot = match name {
            "message_id" => {
                self.message_id = value;
                return true;
            }
            "correlation_id" => &mut self.correlation_id,
            "type" => &mut self.message_type,
            "app_id" => &mut self.app_id,
            "sender" => &mut self.sender,
            "timestamp" => &mut self.timestamp,
            "content_type" => &mut self.content_type,
            "user_id" => &mut self.user_id,
            _ => return false,
        };
        *slot = Some(value);
        true
    }
}

/// The `message_id` of child `index` (0-based) of a batch input (`docs/contracts.md`): the
/// UUIDv5 of `<parent message_id>/<index>` in the URL namespace, so it is the same on every
/// retry and replay.
pub fn child_message_id(parent: &str, index: usize) -> String {
    uuid::Uuid::new_v5(
        &uuid::Uuid::NAMESPACE_URL,
        format!("{parent}/{index}").as_bytes(),
    )
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn child_ids_are_stable_and_distinct() {
        let a = child_message_id("m-1", 0);
        assert_eq!(a, child_message_id("m-1", 0));
        assert_ne!(a, child_message_id("m-1", 1));
        assert_ne!(a, child_message_id("m-2", 0));
        assert_eq!(uuid::Uuid::parse_str(&a).unwrap().get_version_num(), 5);
    }
}
