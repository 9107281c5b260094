//! One task per publishing channel awaits every confirm and decides, for each publish,
//! whether the broker delivered, returned or refused it.
//!
//! The AMQP client attaches each `basic.return` to whichever confirm the next ack frame
//! resolves first, so the confirm a return comes with says nothing about whose it is.
//! What the broker guarantees is enough to match them ourselves:
//! - a return is sent before the ack of its own publish, and returns come in publish
//!   order; the client pops them first-in first-out, one per confirm it resolves. So a
//!   return is always attached to a confirm resolved in the same ack frame as its own
//!   publish, or in an earlier one; never a later one.
//! - the client resolves all confirms of one ack frame under one lock. Taking that lock
//!   after seeing a confirm resolved (the [`barrier`]) means the rest of its frame is
//!   resolved too.
//!
//! So, once a set of resolved confirms has been collected, a barrier taken, and every
//! confirm resolved by then collected too (including those of publishes whose delivery
//! tag was assigned but whose confirm was not yet handed over: [`take_handovers`]), every
//! return that will ever concern the first set is in hand. Returns are matched to
//! publishes by exchange, routing key and message id: two in-flight publishes with the
//! same three were routed alike, so which of the two takes the return does not matter.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::future::Future;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Wake, Waker};

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use lapin::types::ShortString;
use lapin::{Channel, Confirmation, PublisherConfirm};
use tokio::sync::{Notify, mpsc, oneshot};

/// What became of one publish.
#[derive(Debug)]
pub(crate) enum Outcome {
    Delivered,
    /// Unroutable: the broker's reply code and text.
    Returned(String),
    Nacked,
    Failed(lapin::Error),
}

/// Exchange, routing key and message id of a publish, hashed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Key(u64);

impl Key {
    pub(crate) fn new(exchange: &str, routing_key: &str, message_id: Option<&ShortString>) -> Key {
        let mut h = DefaultHasher::new();
        exchange.hash(&mut h);
        routing_key.hash(&mut h);
        message_id.map(ShortString::as_str).hash(&mut h);
        Key(h.finish())
    }
}

struct Entry {
    confirm: PublisherConfirm,
    key: Key,
    reply: oneshot::Sender<Outcome>,
}

struct Done {
    key: Key,
    reply: oneshot::Sender<Outcome>,
    result: Result<Confirmation, lapin::Error>,
}

#[derive(Default)]
struct Announced {
    next: u64,
    open: BTreeSet<u64>,
}

#[derive(Default)]
struct Shared {
    announced: Mutex<Announced>,
    handed: Notify,
}

impl Shared {
    fn announced(&self) -> MutexGuard<'_, Announced> {
        // The lock guards plain bookkeeping that no panic leaves half-written.
        self.announced.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The publishing side of a channel's ledger.
#[derive(Clone)]
pub(crate) struct Handle {
    entries: mpsc::UnboundedSender<Entry>,
    shared: Arc<Shared>,
}

/// A publish about to get its delivery tag; hand its confirm over when it has one.
/// Dropped without a hand-over (the publish failed), it is simply withdrawn.
pub(crate) struct Announcement<'a> {
    handle: &'a Handle,
    seq: u64,
}

impl Handle {
    pub(crate) fn announce(&self) -> Announcement<'_> {
        let mut a = self.shared.announced();
        let seq = a.next;
        a.next += 1;
        a.open.insert(seq);
        Announcement { handle: self, seq }
    }
}

impl Announcement<'_> {
    pub(crate) fn hand_over(
        self,
        confirm: PublisherConfirm,
        key: Key,
    ) -> oneshot::Receiver<Outcome> {
        let (reply, outcome) = oneshot::channel();
        // If the ledger task is gone, `outcome` reports it when awaited.
        let _ = self.handle.entries.send(Entry {
            confirm,
            key,
            reply,
        });
        outcome
    }
}

impl Drop for Announcement<'_> {
    fn drop(&mut self) {
        self.handle.shared.announced().open.remove(&self.seq);
        self.handle.shared.handed.notify_waiters();
    }
}

/// Start the ledger task of `channel` (a channel in confirm mode).
pub(crate) fn spawn(channel: Channel) -> Handle {
    let (entries, rx) = mpsc::unbounded_channel();
    let shared = Arc::new(Shared::default());
    tokio::spawn(run(channel, rx, shared.clone()));
    Handle { entries, shared }
}

async fn wait(entry: Entry) -> Done {
    let result = entry.confirm.await;
    Done {
        key: entry.key,
        reply: entry.reply,
        result,
    }
}

async fn run(channel: Channel, mut rx: mpsc::UnboundedReceiver<Entry>, shared: Arc<Shared>) {
    let mut waiting = FuturesUnordered::new();
    let mut returned = Returns::default();
    let mut open = true;
    loop {
        let first = tokio::select! {
            entry = rx.recv(), if open => {
                match entry {
                    Some(entry) => waiting.push(wait(entry)),
                    None => open = false,
                }
                continue;
            }
            Some(done) = waiting.next(), if !waiting.is_empty() => done,
            else => break,
        };
        let mut undecided = vec![first];
        drain_ready(&mut waiting, &mut undecided);
        returned.collect(&mut undecided);
        while !undecided.is_empty() {
            barrier(&channel);
            take_handovers(&mut rx, &shared, &mut |e| waiting.push(wait(e))).await;
            let mut more = Vec::new();
            drain_ready(&mut waiting, &mut more);
            returned.collect(&mut more);
            for done in undecided {
                let outcome = returned.decide(done.key, done.result);
                let _ = done.reply.send(outcome);
            }
            undecided = more;
        }
        if waiting.is_empty() && shared.announced().open.is_empty() && rx.is_empty() {
            returned.forget_strays();
        }
    }
}

/// Every confirm already resolved, without waiting.
///
/// `FuturesUnordered` answers `Pending` not only when nothing is ready: after two of its
/// futures were woken while being polled (a confirm resolved by the client's I/O thread
/// at that very moment), it yields with ready futures still queued, waking the caller.
/// Stopping at that first `Pending` left a resolved confirm, possibly carrying another
/// publish's return, out of the set being decided, and that publish was then reported
/// delivered although the broker had returned it. So a `Pending` that woke us is polled
/// again; only a `Pending` without a wake means nothing more is ready.
fn drain_ready<F: Future>(waiting: &mut FuturesUnordered<F>, out: &mut Vec<F::Output>) {
    let woken = Arc::new(Woken::default());
    let waker = Waker::from(woken.clone());
    let mut cx = Context::from_waker(&waker);
    loop {
        woken.0.store(false, Ordering::SeqCst);
        match waiting.poll_next_unpin(&mut cx) {
            Poll::Ready(Some(done)) => out.push(done),
            Poll::Ready(None) => return,
            Poll::Pending if woken.0.load(Ordering::SeqCst) => {}
            Poll::Pending => return,
        }
    }
}

/// A waker that only remembers it was woken.
#[derive(Default)]
struct Woken(AtomicBool);

impl Wake for Woken {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Take the lock under which the AMQP client resolves the confirms of an ack frame, and
/// let go: every frame whose resolution was seen has been fully resolved. The client's
/// `wait_for_confirms` takes it first thing; it is polled once and dropped, which only
/// forgets the client's own marker of the latest publish, which lgsp does not use.
fn barrier(channel: &Channel) {
    let mut cx = Context::from_waker(Waker::noop());
    let _ = pin!(channel.wait_for_confirms()).poll(&mut cx);
}

/// Receive every confirm whose delivery tag was assigned before now, waiting for
/// publishes still between getting their tag and handing their confirm over.
async fn take_handovers(
    rx: &mut mpsc::UnboundedReceiver<Entry>,
    shared: &Shared,
    push: &mut impl FnMut(Entry),
) {
    let before = shared.announced().next;
    loop {
        let mut handed = pin!(shared.handed.notified());
        handed.as_mut().enable();
        // Checked before receiving: an announcement leaves `open` only after its entry
        // was sent, so none below `before` open means all of them are in `rx`.
        let open_below = shared.announced().open.range(..before).next().is_some();
        while let Ok(entry) = rx.try_recv() {
            push(entry);
        }
        if !open_below {
            return;
        }
        handed.await;
    }
}

/// Returns collected from resolved confirms, waiting for the publish they belong to.
#[derive(Default)]
struct Returns(HashMap<Key, VecDeque<String>>);

impl Returns {
    fn collect(&mut self, done: &mut [Done]) {
        for d in done {
            let result = std::mem::replace(&mut d.result, Ok(Confirmation::NotRequested));
            d.result = match result {
                Ok(Confirmation::Ack(Some(r))) => {
                    self.add(&r);
                    Ok(Confirmation::Ack(None))
                }
                Ok(Confirmation::Nack(Some(r))) => {
                    self.add(&r);
                    Ok(Confirmation::Nack(None))
                }
                other => other,
            };
        }
    }

    fn add(&mut self, r: &lapin::message::BasicReturnMessage) {
        let d = &r.delivery;
        let key = Key::new(
            d.exchange.as_str(),
            d.routing_key.as_str(),
            d.properties.message_id().as_ref(),
        );
        self.0.entry(key).or_default().push_back(format!(
            "{} {}",
            r.reply_code,
            r.reply_text.as_str()
        ));
    }

    fn take(&mut self, key: Key) -> Option<String> {
        let replies = self.0.get_mut(&key)?;
        let reply = replies.pop_front();
        if replies.is_empty() {
            self.0.remove(&key);
        }
        reply
    }

    fn decide(&mut self, key: Key, result: Result<Confirmation, lapin::Error>) -> Outcome {
        match result {
            Ok(Confirmation::Ack(_)) => match self.take(key) {
                Some(reply) => Outcome::Returned(reply),
                None => Outcome::Delivered,
            },
            Ok(Confirmation::Nack(_)) | Ok(Confirmation::NotRequested) => {
                self.take(key);
                Outcome::Nacked
            }
            Err(e) => {
                // The channel failed: every publish still waiting fails with it.
                self.0.clear();
                Outcome::Failed(e)
            }
        }
    }

    /// With nothing in flight, a return still here matched no publish (it cannot happen
    /// unless the broker returned a message lgsp did not publish on this channel).
    fn forget_strays(&mut self) {
        if !self.0.is_empty() {
            tracing::warn!(
                returns = self.0.values().map(VecDeque::len).sum::<usize>(),
                "returned messages matched no publish of this channel; dropped"
            );
            self.0.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use futures_util::future::{BoxFuture, FutureExt};
    use futures_util::stream::FuturesUnordered;

    use super::drain_ready;

    /// Pending once, woken while it is polled (as a confirm the I/O thread resolves at
    /// that moment), then ready.
    struct WokenWhilePolled(Option<u32>, bool);

    impl Future for WokenWhilePolled {
        type Output = u32;
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u32> {
            if self.1 {
                return Poll::Ready(self.0.take().unwrap_or(0));
            }
            self.1 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }

    #[test]
    fn every_ready_confirm_is_drained_even_when_the_set_yields_early() {
        let mut waiting: FuturesUnordered<BoxFuture<'static, u32>> = FuturesUnordered::new();
        // Two futures woken while polled make the set yield before the ready ones.
        waiting.push(WokenWhilePolled(Some(1), false).boxed());
        waiting.push(WokenWhilePolled(Some(2), false).boxed());
        for n in 3..=5 {
            waiting.push(std::future::ready(n).boxed());
        }
        waiting.push(std::future::pending().boxed());
        let mut out = Vec::new();
        drain_ready(&mut waiting, &mut out);
        out.sort_unstable();
        assert_eq!(out, [1, 2, 3, 4, 5]);
        assert_eq!(waiting.len(), 1, "the pending one stays");
    }
}
