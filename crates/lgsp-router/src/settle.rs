//! Settling one consumer channel's deliveries: nacks at once, acks coalesced into
//! `multiple` acks over the longest run of delivery tags that are all settled.
//!
//! Inputs finish out of order (mappings run concurrently), so an ack with `multiple` is
//! only safe up to the lowest tag still in flight: below it everything is settled. A
//! single task per channel owns that bookkeeping and sends every ack and nack in order,
//! because a `multiple` ack naming a tag that an earlier frame already settled would be
//! an unknown tag to the broker, which closes the channel.
//!
//! When acks are sent:
//! - at once when everything delivered so far is settled (a quiet queue costs no latency);
//! - once `batch` acks are waiting;
//! - at the latest `MAX_DELAY` after the first waiting one.
//!
//! Finished inputs behind a slow one would hold the prefetch window: once `batch` of
//! them wait above the lowest unsettled tag they are acked one by one.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use lapin::Acker;
use lapin::options::{BasicAckOptions, BasicNackOptions};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{debug, warn};

use crate::Stats;

/// The longest an ack waits for others to share its frame.
const MAX_DELAY: Duration = Duration::from_millis(2);

/// A frame to send.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Action<A> {
    Ack { acker: A, multiple: bool },
    Nack(A),
}

enum Entry<A> {
    /// Acked, not yet sent.
    Ack(A),
    /// Its frame is sent (a nack, or an ack sent on its own).
    Sent,
}

/// The bookkeeping, without I/O (`A` is the acker; tests use the tag itself).
pub(crate) struct Ledger<A> {
    /// Lowest delivery tag not yet settled (tags of a channel start at 1).
    floor: u64,
    /// Settled tags above the floor.
    above: BTreeMap<u64, Entry<A>>,
    /// Acks of `above` not yet sent.
    held: usize,
    /// The acker of the highest acked tag below the floor not yet sent, and how many
    /// acks below the floor it covers.
    unsent: Option<A>,
    unsent_count: usize,
    batch: usize,
}

impl<A> Ledger<A> {
    pub(crate) fn new(batch: usize) -> Ledger<A> {
        Ledger {
            floor: 1,
            above: BTreeMap::new(),
            held: 0,
            unsent: None,
            unsent_count: 0,
            batch: batch.max(1),
        }
    }

    /// Record that `tag` is finished (`ack` or requeue); frames that must go now are
    /// appended to `out`.
    pub(crate) fn settle(&mut self, tag: u64, ack: bool, acker: A, out: &mut Vec<Action<A>>) {
        if tag < self.floor || self.above.contains_key(&tag) {
            // Settled already: a second frame would be an unknown tag to the broker.
            warn!(
                tag,
                "an input was settled twice; the second settle is ignored"
            );
            return;
        }
        if ack {
            self.above.insert(tag, Entry::Ack(acker));
            self.held += 1;
        } else {
            out.push(Action::Nack(acker));
            self.above.insert(tag, Entry::Sent);
        }
        while let Some(e) = self.above.remove(&self.floor) {
            if let Entry::Ack(a) = e {
                self.held -= 1;
                self.unsent = Some(a);
                self.unsent_count += 1;
            }
            self.floor += 1;
        }
        if self.held >= self.batch {
            for e in self.above.values_mut() {
                if let Entry::Ack(a) = std::mem::replace(e, Entry::Sent) {
                    out.push(Action::Ack {
                        acker: a,
                        multiple: false,
                    });
                }
            }
            self.held = 0;
        }
    }

    /// Should the waiting acks go now? `delivered` is the highest tag delivered so far.
    pub(crate) fn due(&self, delivered: u64) -> bool {
        self.unsent.is_some() && (self.unsent_count >= self.batch || self.floor > delivered)
    }

    pub(crate) fn waiting(&self) -> bool {
        self.unsent.is_some()
    }

    /// Append the one `multiple` ack covering every waiting ack below the floor.
    pub(crate) fn flush(&mut self, out: &mut Vec<Action<A>>) {
        if let Some(acker) = self.unsent.take() {
            out.push(Action::Ack {
                acker,
                multiple: self.unsent_count > 1,
            });
            self.unsent_count = 0;
        }
    }
}

struct Settle<A> {
    tag: u64,
    ack: bool,
    acker: A,
}

/// Where a consumer's handlers report finished inputs.
pub(crate) struct Settler<A = Acker> {
    tx: mpsc::UnboundedSender<Settle<A>>,
    delivered: Arc<AtomicU64>,
}

impl<A> Clone for Settler<A> {
    fn clone(&self) -> Self {
        Settler {
            tx: self.tx.clone(),
            delivered: self.delivered.clone(),
        }
    }
}

impl Settler<Acker> {
    /// A settler for one channel and the task that sends its frames; the task ends,
    /// after sending everything, once every `Settler` clone is dropped.
    pub(crate) fn spawn(batch: usize, stats: Arc<Stats>) -> (Settler, JoinHandle<()>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let delivered = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn(run(rx, Ledger::new(batch), delivered.clone(), stats));
        (Settler { tx, delivered }, task)
    }
}

impl<A> Settler<A> {
    /// The consumer received `tag`: the handle its handler settles it with, exactly once.
    pub(crate) fn delivered(&self, tag: u64, acker: A) -> Ticket<A> {
        self.delivered.fetch_max(tag, Ordering::Relaxed);
        Ticket {
            settler: self.clone(),
            tag,
            acker: Some(acker),
        }
    }

    fn send(&self, tag: u64, ack: bool, acker: A) {
        if self.tx.send(Settle { tag, ack, acker }).is_err() {
            // The task is gone only when the router stops: the channel closes and the
            // broker redelivers the input; nothing is lost.
            debug!(tag, "settler stopped; the input returns to its queue");
        }
    }
}

/// The one settlement of one delivery. `ack` and `requeue` take it by value, so settling
/// twice does not compile; dropping it unsettled (a bug, or a handler that panicked)
/// returns the input to its queue and says so, so it can never be left unsettled.
pub(crate) struct Ticket<A = Acker> {
    settler: Settler<A>,
    tag: u64,
    acker: Option<A>,
}

impl<A> Ticket<A> {
    pub(crate) fn ack(mut self) {
        if let Some(a) = self.acker.take() {
            self.settler.send(self.tag, true, a);
        }
    }

    /// Return the input to its queue.
    pub(crate) fn requeue(mut self) {
        if let Some(a) = self.acker.take() {
            self.settler.send(self.tag, false, a);
        }
    }
}

impl<A> Drop for Ticket<A> {
    fn drop(&mut self) {
        if let Some(a) = self.acker.take() {
            warn!(
                tag = self.tag,
                "an input was left unsettled; returning it to its queue"
            );
            self.settler.send(self.tag, false, a);
        }
    }
}

async fn run(
    mut rx: mpsc::UnboundedReceiver<Settle<Acker>>,
    mut ledger: Ledger<Acker>,
    delivered: Arc<AtomicU64>,
    stats: Arc<Stats>,
) {
    let mut out = Vec::new();
    let mut deadline: Option<Instant> = None;
    loop {
        let next = match deadline {
            Some(d) => tokio::select! {
                m = rx.recv() => m,
                () = tokio::time::sleep_until(d) => {
                    ledger.flush(&mut out);
                    deadline = None;
                    send(&mut out, &stats).await;
                    continue;
                }
            },
            None => rx.recv().await,
        };
        let Some(first) = next else { break };
        ledger.settle(first.tag, first.ack, first.acker, &mut out);
        while let Ok(s) = rx.try_recv() {
            ledger.settle(s.tag, s.ack, s.acker, &mut out);
        }
        if ledger.due(delivered.load(Ordering::Relaxed)) {
            ledger.flush(&mut out);
            deadline = None;
        } else if ledger.waiting() && deadline.is_none() {
            deadline = Some(Instant::now() + MAX_DELAY);
        }
        send(&mut out, &stats).await;
    }
    ledger.flush(&mut out);
    send(&mut out, &stats).await;
}

async fn send(out: &mut Vec<Action<Acker>>, stats: &Stats) {
    for a in out.drain(..) {
        let r = match a {
            Action::Ack { acker, multiple } => {
                stats.ack_frames.fetch_add(1, Ordering::Relaxed);
                acker.ack(BasicAckOptions { multiple }).await
            }
            Action::Nack(acker) => {
                acker
                    .nack(BasicNackOptions {
                        requeue: true,
                        ..BasicNackOptions::default()
                    })
                    .await
            }
        };
        if let Err(e) = r {
            // The channel is gone: the broker redelivers what was not acked.
            debug!(error = %e, "could not settle");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detached() -> (Settler<u64>, mpsc::UnboundedReceiver<Settle<u64>>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (
            Settler {
                tx,
                delivered: Arc::new(AtomicU64::new(0)),
            },
            rx,
        )
    }

    #[test]
    fn a_ticket_settles_once_and_a_dropped_one_returns_its_input() {
        let (settler, mut rx) = detached();
        settler.delivered(1, 1).ack();
        settler.delivered(2, 2).requeue();
        drop(settler.delivered(3, 3));
        let got: Vec<(u64, bool)> = std::iter::from_fn(|| rx.try_recv().ok())
            .map(|s| (s.tag, s.ack))
            .collect();
        assert_eq!(got, [(1, true), (2, false), (3, false)]);
        assert_eq!(settler.delivered.load(Ordering::Relaxed), 3);
    }

    fn ack(tag: u64, multiple: bool) -> Action<u64> {
        Action::Ack {
            acker: tag,
            multiple,
        }
    }

    #[test]
    fn in_order_acks_become_one_multiple_ack() {
        let mut l = Ledger::new(64);
        let mut out = Vec::new();
        for t in 1..=5 {
            l.settle(t, true, t, &mut out);
        }
        assert!(out.is_empty());
        assert!(
            !l.due(10),
            "five more are in flight and the batch is not full"
        );
        assert!(l.due(5), "everything delivered is settled");
        l.flush(&mut out);
        assert_eq!(out, vec![ack(5, true)]);
    }

    #[test]
    fn an_unsettled_tag_stops_the_multiple_ack_below_it() {
        let mut l = Ledger::new(64);
        let mut out = Vec::new();
        for t in [1, 2, 4, 5] {
            l.settle(t, true, t, &mut out);
        }
        l.flush(&mut out);
        assert_eq!(out, vec![ack(2, true)], "3 is in flight: 4 and 5 wait");
        out.clear();
        l.settle(3, true, 3, &mut out);
        l.flush(&mut out);
        assert_eq!(out, vec![ack(5, true)]);
    }

    #[test]
    fn nacks_go_at_once_and_the_multiple_ack_names_an_acked_tag() {
        let mut l = Ledger::new(64);
        let mut out = Vec::new();
        l.settle(1, true, 1, &mut out);
        l.settle(2, false, 2, &mut out);
        assert_eq!(out, vec![Action::Nack(2)]);
        out.clear();
        l.flush(&mut out);
        // Tag 2 was nacked: naming it again would be an unknown tag to the broker.
        assert_eq!(out, vec![ack(1, false)]);
    }

    #[test]
    fn a_single_ack_is_not_multiple() {
        let mut l = Ledger::new(64);
        let mut out = Vec::new();
        l.settle(1, true, 1, &mut out);
        assert!(l.due(1));
        l.flush(&mut out);
        assert_eq!(out, vec![ack(1, false)]);
    }

    #[test]
    fn acks_held_behind_a_slow_input_go_one_by_one_past_the_batch() {
        let mut l = Ledger::new(3);
        let mut out = Vec::new();
        for t in 2..=3 {
            l.settle(t, true, t, &mut out);
        }
        assert!(out.is_empty());
        l.settle(4, true, 4, &mut out);
        assert_eq!(out, vec![ack(2, false), ack(3, false), ack(4, false)]);
        out.clear();
        // The slow one finishes: nothing above it is waiting any more.
        l.settle(1, true, 1, &mut out);
        l.flush(&mut out);
        assert_eq!(out, vec![ack(1, false)]);
        out.clear();
        l.settle(5, true, 5, &mut out);
        l.flush(&mut out);
        assert_eq!(
            out,
            vec![ack(5, false)],
            "the floor moved past the sent ones"
        );
    }

    #[test]
    fn a_full_batch_is_due_while_others_are_in_flight() {
        let mut l = Ledger::new(4);
        let mut out = Vec::new();
        for t in 1..=3 {
            l.settle(t, true, t, &mut out);
        }
        assert!(!l.due(100));
        l.settle(4, true, 4, &mut out);
        assert!(l.due(100));
    }

    #[test]
    fn a_tag_settled_twice_sends_nothing_more() {
        let mut l = Ledger::new(8);
        let mut out = Vec::new();
        l.settle(1, true, 1, &mut out);
        l.flush(&mut out);
        out.clear();
        l.settle(1, true, 1, &mut out);
        l.settle(2, true, 2, &mut out);
        l.settle(2, false, 2, &mut out);
        l.flush(&mut out);
        assert_eq!(out, vec![ack(2, false)]);
    }
}
