//! An input as every consumer of an input queue reads it, once: its body and
//! properties, where it was first published, how many times it was tried, the targets
//! it still has to reach, and the envelope mappings read. Built from a broker delivery
//! or, in tests, from plain values.

use lapin::BasicProperties;
use lgsp_core::envelope::Envelope;

use crate::{headers, routes};

/// An input, read once.
#[derive(Debug, Clone)]
pub struct Inbound {
    pub body: Vec<u8>,
    pub properties: BasicProperties,
    pub envelope: Envelope,
    /// The exchange and routing key it was published with. A retry or a replay reaches
    /// the input queue through the default exchange, with the queue's name as key; they
    /// carry the original ones in `lgsp-original-exchange` and `-routing-key`.
    pub exchange: String,
    pub routing_key: String,
    pub attempt: u32,
    /// Qualified ids of the targets still to deliver (a retry or a replay); `None`: every
    /// target of every route whose binding matches.
    pub targets: Option<Vec<String>>,
    /// `lgsp-route` of a retry or replay: the route of target ids written before they
    /// were qualified.
    pub route: Option<String>,
}

impl Inbound {
    /// Read a message delivered from `exchange` with `routing_key`; `input_exchange` is
    /// `<p>.in` (a message from elsewhere came back through a retry or a replay).
    pub fn read(
        input_exchange: &str,
        exchange: &str,
        routing_key: &str,
        properties: BasicProperties,
        body: Vec<u8>,
    ) -> Inbound {
        let h = properties.headers().as_ref();
        let fresh = exchange == input_exchange;
        let (exchange, routing_key) = if fresh {
            (exchange.to_owned(), routing_key.to_owned())
        } else {
            (
                headers::text(h, headers::ORIGINAL_EXCHANGE)
                    .unwrap_or_else(|| input_exchange.to_owned()),
                headers::text(h, headers::ORIGINAL_ROUTING_KEY)
                    .unwrap_or_else(|| routing_key.to_owned()),
            )
        };
        let targets = headers::text(h, headers::TARGETS)
            .map(|t| routes::list(&t))
            .filter(|t| !t.is_empty());
        let attempt = headers::attempt(h);
        let route = headers::text(h, headers::ROUTE).filter(|r| !r.is_empty());
        let mut envelope = envelope(&properties, &body, &routing_key);
        // A retry or a replay is published by lgsp: the original publisher's user is in a
        // header (only there, where a publisher cannot have set it for lgsp to believe).
        if !fresh && envelope.user_id.is_none() {
            envelope.user_id = headers::text(h, headers::ORIGINAL_USER_ID);
        }
        Inbound {
            body,
            properties,
            envelope,
            exchange,
            routing_key,
            attempt,
            targets,
            route,
        }
    }

    /// Read a broker delivery, keeping its tag and acknowledgement handle apart.
    pub fn from_delivery(
        input_exchange: &str,
        d: lapin::message::Delivery,
    ) -> (Inbound, u64, lapin::Acker) {
        let inbound = Inbound::read(
            input_exchange,
            d.exchange.as_str(),
            d.routing_key.as_str(),
            d.properties,
            d.data,
        );
        (inbound, d.delivery_tag, d.acker)
    }
}

/// The envelope of an input. A missing `message_id` is derived from the body, so that
/// redeliveries of the same input keep the same id; a missing `type` is the routing key
/// the input was published with.
fn envelope(p: &BasicProperties, body: &[u8], routing_key: &str) -> Envelope {
    let h = p.headers().as_ref();
    let message_id = match p.message_id() {
        Some(id) if !id.as_str().is_empty() => id.as_str().to_owned(),
        _ => uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, body).to_string(),
    };
    let message_type = p
        .kind()
        .as_ref()
        .map(|k| k.as_str().to_owned())
        .filter(|k| !k.is_empty())
        .or_else(|| Some(routing_key.to_owned()));
    Envelope {
        message_id,
        correlation_id: p.correlation_id().as_ref().map(|s| s.as_str().to_owned()),
        message_type,
        app_id: p.app_id().as_ref().map(|s| s.as_str().to_owned()),
        sender: headers::text(h, headers::SENDER),
        timestamp: p.timestamp().and_then(|t| {
            let secs = i64::try_from(t).ok()?;
            let local = chrono::FixedOffset::east_opt(7 * 3600)?;
            chrono::DateTime::from_timestamp(secs, 0).map(|dt| {
                dt.with_timezone(&local)
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
            })
        }),
        content_type: p.content_type().as_ref().map(|s| s.as_str().to_owned()),
        user_id: p.user_id().as_ref().map(|s| s.as_str().to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use lapin::types::FieldTable;

    use super::*;

    #[test]
    fn a_first_delivery_is_read_as_published() {
        let p = BasicProperties::default().with_message_id("m-1".into());
        let i = Inbound::read("lgsp.in", "lgsp.in", "bizreg.x.y", p, b"{}".to_vec());
        assert_eq!(
            (i.exchange.as_str(), i.routing_key.as_str()),
            ("lgsp.in", "bizreg.x.y")
        );
        assert_eq!(i.envelope.message_type.as_deref(), Some("bizreg.x.y"));
        assert_eq!((i.attempt, i.targets, i.route), (0, None, None));
    }

    #[test]
    fn a_retry_keeps_where_it_was_first_published_and_what_it_still_has_to_reach() {
        let mut h = FieldTable::default();
        headers::set(&mut h, headers::ORIGINAL_EXCHANGE, "lgsp.in");
        headers::set(&mut h, headers::ORIGINAL_ROUTING_KEY, "bizreg.x.y");
        headers::set(&mut h, headers::TARGETS, "a/app:tax, b/app:finance");
        headers::set(&mut h, headers::ROUTE, "a,b");
        headers::set_int(&mut h, headers::ATTEMPT, 2);
        let p = BasicProperties::default().with_headers(h);
        let i = Inbound::read("lgsp.in", "", "lgsp.in.bizreg", p, b"<x/>".to_vec());
        assert_eq!(i.routing_key, "bizreg.x.y");
        // No type, no message id: the first routing key, and an id from the body.
        assert_eq!(i.envelope.message_type.as_deref(), Some("bizreg.x.y"));
        assert_eq!(
            i.envelope.message_id,
            uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, b"<x/>").to_string()
        );
        assert_eq!(i.attempt, 2);
        assert_eq!(
            i.targets,
            Some(vec!["a/app:tax".to_owned(), "b/app:finance".to_owned()])
        );
        assert_eq!(i.route.as_deref(), Some("a,b"));
    }
}
