//! One inbound mapping for the routes that receive the same message.
//!
//! Routes of one adapter whose bindings overlap each get their own copy of a published
//! message, in their own queue: with the default configuration a VAT e-invoice reaches
//! `tax-canonical` (`tax.#`) and `einvoice-to-finance` (`tax.einvoice.*`). The canonical
//! outputs depend only on the adapter, the envelope and the body, so the first of those
//! routes to map the message keeps the outputs until the others have taken them, and
//! they skip decoding and mapping the same bytes again.
//!
//! Only a first delivery that another route is known to receive is kept: a retry or a
//! replay reaches one route only. What is kept is bounded in entries and bytes, oldest
//! dropped first: a route that is stopped or far behind maps for itself, as it would
//! without sharing. Two routes mapping the same message at the same moment both map it.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use lgsp_core::envelope::Envelope;
use lgsp_mapping::dsl::Mapped;

/// The canonical outputs of one input.
pub(crate) type Outputs = Arc<Vec<Mapped>>;

/// Kept outputs, oldest first.
pub(crate) struct Shelf {
    max_entries: usize,
    max_bytes: usize,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    entries: VecDeque<Entry>,
    bytes: usize,
}

struct Entry {
    adapter: Arc<str>,
    envelope: Envelope,
    body: Vec<u8>,
    outputs: Outputs,
    /// Routes still expected to take it.
    takers: usize,
    /// What it holds, roughly: the input, and each output's body about three times
    /// (the body, and the value it was encoded from).
    bytes: usize,
}

impl Inner {
    fn find(&self, adapter: &str, envelope: &Envelope, body: &[u8]) -> Option<usize> {
        self.entries
            .iter()
            .position(|e| e.is(adapter, envelope, body))
    }

    /// One expected route took entry `i`: its outputs; the entry goes with the last one.
    fn taken(&mut self, i: usize) -> Outputs {
        let entry = &mut self.entries[i];
        entry.takers = entry.takers.saturating_sub(1);
        let outputs = entry.outputs.clone();
        if entry.takers == 0 {
            let bytes = entry.bytes;
            self.entries.remove(i);
            self.bytes -= bytes;
        }
        outputs
    }
}

impl Entry {
    fn is(&self, adapter: &str, envelope: &Envelope, body: &[u8]) -> bool {
        // Ids first: they differ between most entries and compare fastest.
        self.envelope.message_id == envelope.message_id
            && *self.adapter == *adapter
            && self.envelope == *envelope
            && self.body == body
    }
}

impl Shelf {
    pub(crate) fn new(max_entries: usize, max_bytes: usize) -> Shelf {
        Shelf {
            max_entries,
            max_bytes,
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Nothing is mapped under the lock, so a poisoned lock holds consistent data.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The outputs another route kept for this input, if any; the entry goes once every
    /// expected route has taken it.
    pub(crate) fn take(&self, adapter: &str, envelope: &Envelope, body: &[u8]) -> Option<Outputs> {
        let mut inner = self.lock();
        let i = inner.find(adapter, envelope, body)?;
        Some(inner.taken(i))
    }

    /// Keep `outputs` for `takers` more routes. When one of them mapped the input at the
    /// same time and kept its outputs first, that counts as its take.
    pub(crate) fn keep(
        &self,
        adapter: &str,
        envelope: &Envelope,
        body: &[u8],
        outputs: &Outputs,
        takers: usize,
    ) {
        if takers == 0 || envelope.message_id.is_empty() {
            return;
        }
        let bytes = body.len()
            + envelope.message_id.len()
            + outputs.iter().map(|m| 3 * m.body.len()).sum::<usize>();
        if bytes > self.max_bytes {
            return;
        }
        let mut inner = self.lock();
        if let Some(i) = inner.find(adapter, envelope, body) {
            inner.taken(i);
            return;
        }
        while inner.entries.len() >= self.max_entries || inner.bytes + bytes > self.max_bytes {
            match inner.entries.pop_front() {
                Some(old) => inner.bytes -= old.bytes,
                None => break,
            }
        }
        inner.bytes += bytes;
        inner.entries.push_back(Entry {
            adapter: Arc::from(adapter),
            envelope: envelope.clone(),
            body: body.to_vec(),
            outputs: outputs.clone(),
            takers,
            bytes,
        });
    }

    /// Entries and estimated bytes kept now.
    #[cfg(test)]
    fn size(&self) -> (usize, usize) {
        let inner = self.lock();
        (inner.entries.len(), inner.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(id: &str) -> Envelope {
        Envelope {
            message_id: id.into(),
            message_type: Some("tax.einvoice.issued".into()),
            ..Envelope::default()
        }
    }

    fn outputs(body: &str) -> Outputs {
        Arc::new(vec![Mapped {
            message_id: "m".into(),
            correlation_id: None,
            event: Some("einvoice.issued".into()),
            index: None,
            value: serde_json::json!({ "body": body }),
            body: body.as_bytes().to_vec(),
            content_type: "application/json",
        }])
    }

    #[test]
    fn a_kept_mapping_is_taken_by_each_expected_route_then_dropped() {
        let shelf = Shelf::new(16, 1 << 20);
        let kept = outputs("{}");
        shelf.keep("tax", &envelope("m1"), b"<HDon/>", &kept, 2);
        for _ in 0..2 {
            let got = shelf.take("tax", &envelope("m1"), b"<HDon/>");
            assert!(got.is_some_and(|g| Arc::ptr_eq(&g, &kept)));
        }
        assert_eq!(shelf.take("tax", &envelope("m1"), b"<HDon/>"), None);
        assert_eq!(shelf.size(), (0, 0));
    }

    #[test]
    fn only_the_same_adapter_envelope_and_body_take_it() {
        let shelf = Shelf::new(16, 1 << 20);
        shelf.keep("tax", &envelope("m1"), b"<HDon/>", &outputs("{}"), 1);
        assert!(shelf.take("bizreg", &envelope("m1"), b"<HDon/>").is_none());
        assert!(shelf.take("tax", &envelope("m2"), b"<HDon/>").is_none());
        // The same id with an edited body (a replay, a publisher's mistake) maps again.
        assert!(
            shelf
                .take("tax", &envelope("m1"), b"<HDon a='1'/>")
                .is_none()
        );
        let mut other = envelope("m1");
        other.sender = Some("H37.05".into());
        assert!(shelf.take("tax", &other, b"<HDon/>").is_none());
        assert!(shelf.take("tax", &envelope("m1"), b"<HDon/>").is_some());
    }

    #[test]
    fn nothing_is_kept_without_takers_or_without_an_id() {
        let shelf = Shelf::new(16, 1 << 20);
        shelf.keep("tax", &envelope("m1"), b"x", &outputs("{}"), 0);
        shelf.keep("tax", &envelope(""), b"x", &outputs("{}"), 1);
        assert_eq!(shelf.size(), (0, 0));
    }

    #[test]
    fn the_oldest_go_first_past_either_bound() {
        let shelf = Shelf::new(3, 1 << 20);
        for i in 0..5 {
            shelf.keep("tax", &envelope(&format!("m{i}")), b"x", &outputs("{}"), 1);
        }
        assert_eq!(shelf.size().0, 3);
        assert!(shelf.take("tax", &envelope("m1"), b"x").is_none());
        assert!(shelf.take("tax", &envelope("m4"), b"x").is_some());

        // 1,000 bytes each against a budget of 2,500: two fit.
        let body = vec![b'x'; 1000 - 2];
        let shelf = Shelf::new(100, 2500);
        for i in 0..4 {
            shelf.keep("tax", &envelope(&format!("m{i}")), &body, &outputs(""), 1);
        }
        let (entries, bytes) = shelf.size();
        assert_eq!((entries, bytes), (2, 2000));
        assert!(shelf.take("tax", &envelope("m3"), &body).is_some());
        // An input larger than the whole budget is not kept at all.
        let huge = vec![b'x'; 3000];
        shelf.keep("tax", &envelope("big"), &huge, &outputs(""), 1);
        assert!(shelf.take("tax", &envelope("big"), &huge).is_none());
    }

    #[test]
    fn two_routes_mapping_at_once_count_the_second_keep_as_a_take() {
        let shelf = Shelf::new(16, 1 << 20);
        // Three routes receive m1; two mapped it at the same moment.
        shelf.keep("tax", &envelope("m1"), b"x", &outputs("a"), 2);
        shelf.keep("tax", &envelope("m1"), b"x", &outputs("a"), 2);
        assert!(shelf.take("tax", &envelope("m1"), b"x").is_some());
        assert_eq!(shelf.size(), (0, 0));
    }
}
