//! Message tracking in the store: the events of [`lgsp_core::tracking`], written in
//! batches by a [`Writer`] off the hot path, read back per message id, purged by age.
//! The store's own steps (stored, edited, replayed, discarded) are written in the same
//! transaction as the step itself (see [`TRACK_RECORD`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::{Duration, Instant};

use lgsp_core::tracking::Event;
use serde::Serialize;
use sqlx::Row;

use crate::failpoint;
use crate::record::rfc3339;
use crate::store::{Store, StoreError, on_pool};

/// Events per write at most (one transaction).
pub const BATCH: usize = 500;
/// How often the writer takes what is queued.
pub const LINGER: Duration = Duration::from_millis(200);

/// Rows per INSERT statement (a batch is several, in one transaction). Few on purpose:
/// SQLite finds each `$N` parameter by scanning the statement's parameter names, so
/// binding a statement of n parameters costs n²: with 500 rows (3,000 parameters) that
/// scan was a fifth of the router's CPU.
const ROWS_PER_STATEMENT: usize = 32;

/// `INSERT ... VALUES ($1, ..., $6), ...` for `rows` rows.
fn insert_sql(rows: usize) -> String {
    let mut sql = String::with_capacity(90 + rows * 40);
    sql.push_str(
        "INSERT INTO message_events (message_id, at, event, route, target, detail) VALUES ",
    );
    for i in 0..rows {
        let n = i * 6;
        if i > 0 {
            sql.push(',');
        }
        sql.push_str(&format!(
            "(${}, ${}, ${}, ${}, ${}, ${})",
            n + 1,
            n + 2,
            n + 3,
            n + 4,
            n + 5,
            n + 6
        ));
    }
    sql
}

/// Track a step of failed record `$4` as event `$2` at `$1` with detail `$3`, in the
/// transaction that takes the step.
pub(crate) const TRACK_RECORD: &str = "INSERT INTO message_events (message_id, at, event, route, target, detail) SELECT message_id, $1, $2, COALESCE(route, ''), '', $3 FROM failed_messages WHERE id = $4";

/// One event as read back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tracked {
    /// RFC 3339, UTC, milliseconds.
    pub at: String,
    pub at_ms: i64,
    pub event: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub route: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub target: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

impl Store {
    /// Write `events` in one statement.
    pub async fn insert_events(&self, events: &[Event]) -> Result<(), StoreError> {
        failpoint::check()?;
        if events.is_empty() {
            return Ok(());
        }
        let r: Result<(), sqlx::Error> = on_pool!(self, |p| async {
            let mut conn = crate::store::WriteConn::acquire(p).await?;
            let mut tx = conn.begin().await?;
            for chunk in events.chunks(ROWS_PER_STATEMENT) {
                let sql = insert_sql(chunk.len());
                let mut q = sqlx::query(&sql);
                for e in chunk {
                    q = q
                        .bind(&e.message_id)
                        .bind(e.at_ms)
                        .bind(e.event)
                        .bind(&e.route)
                        .bind(&e.target)
                        .bind(&e.detail);
                }
                q.execute(&mut *tx).await?;
            }
            tx.commit().await?;
            conn.done();
            Ok(())
        }
        .await);
        r.map_err(|e| self.unavailable(e))
    }

    /// The story of `message_id`, in order of time (at most 10,000 events).
    pub async fn events_of(&self, message_id: &str) -> Result<Vec<Tracked>, StoreError> {
        failpoint::check()?;
        let rows: Result<Vec<Tracked>, sqlx::Error> = on_pool!(self, |p| {
            async {
            let rows = sqlx::query(
                "SELECT at, event, route, target, detail FROM message_events WHERE message_id = $1 ORDER BY at, seq LIMIT 10000",
            )
            .bind(message_id)
            .fetch_all(p)
            .await?;
            rows.iter()
                .map(|r| {
                    let at_ms: i64 = r.try_get("at")?;
                    Ok(Tracked {
                        at: rfc3339(at_ms),
                        at_ms,
                        event: r.try_get("event")?,
                        route: r.try_get("route")?,
                        target: r.try_get("target")?,
                        detail: r.try_get("detail")?,
                    })
                })
                .collect()
        }
        .await
        });
        rows.map_err(|e| self.unavailable(e))
    }

    /// Delete the events older than `cutoff` (Unix ms); how many. Rows are found in key
    /// order from the oldest (`seq` grows with time, give or take a writer's batch), so
    /// the purge reads what it deletes and the first row it keeps, without an index on
    /// time.
    pub async fn purge_events(&self, cutoff: i64) -> Result<u64, StoreError> {
        failpoint::check()?;
        on_pool!(self, |p| async {
            let first_kept: Option<i64> = match sqlx::query(
                "SELECT seq FROM message_events WHERE at >= $1 ORDER BY seq LIMIT 1",
            )
            .bind(cutoff)
            .fetch_optional(p)
            .await?
            {
                Some(r) => Some(r.try_get("seq")?),
                None => None,
            };
            let done = match first_kept {
                Some(seq) => {
                    sqlx::query("DELETE FROM message_events WHERE seq < $1 AND at < $2")
                        .bind(seq)
                        .bind(cutoff)
                        .execute(p)
                        .await?
                }
                None => {
                    sqlx::query("DELETE FROM message_events WHERE at < $1")
                        .bind(cutoff)
                        .execute(p)
                        .await?
                }
            };
            Ok(done.rows_affected())
        }
        .await)
        .map_err(|e: sqlx::Error| self.unavailable(e))
    }
}

/// What the writer did, for logs and tests.
#[derive(Debug, Default)]
pub struct WriterStats {
    pub written: AtomicU64,
    /// Events given up after the store refused them [`ATTEMPTS`] times.
    pub lost: AtomicU64,
}

/// Tries per batch before it is given up (tracking must never hold the bus back).
pub const ATTEMPTS: u32 = 5;

/// Drains a tracker's queue into the store on a thread of its own.
pub struct Writer {
    thread: std::thread::JoinHandle<()>,
    stop: Arc<AtomicBool>,
    pub stats: Arc<WriterStats>,
}

impl Writer {
    /// Start writing what arrives on `rx` into `store`, on `runtime`.
    pub fn spawn(
        store: Arc<Store>,
        rx: Receiver<Event>,
        runtime: tokio::runtime::Handle,
    ) -> std::io::Result<Writer> {
        let stats = Arc::new(WriterStats::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (s, halt) = (stats.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("lgsp-tracking".into())
            .spawn(move || write_loop(&store, &rx, &runtime, &s, &halt))?;
        Ok(Writer {
            thread,
            stop,
            stats,
        })
    }

    /// Write what is queued, then stop; wait at most `within`. `false`: it did not
    /// finish in time (the rest is lost, the messages themselves are not affected).
    pub async fn finish(self, within: Duration) -> bool {
        self.stop.store(true, Ordering::SeqCst);
        let deadline = Instant::now() + within;
        while !self.thread.is_finished() {
            if Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.thread.join().is_ok()
    }
}

/// Every [`LINGER`], take what is queued (without blocking: a sender never wakes this
/// thread, which would cost the router a context switch per event) and write it in
/// batches of at most [`BATCH`]; ends when told to stop (after the rest) or when every
/// sender is gone.
fn write_loop(
    store: &Store,
    rx: &Receiver<Event>,
    rt: &tokio::runtime::Handle,
    s: &WriterStats,
    stop: &AtomicBool,
) {
    let mut batch: Vec<Event> = Vec::with_capacity(BATCH);
    loop {
        let stopping = stop.load(Ordering::SeqCst);
        let mut gone = false;
        loop {
            match rx.try_recv() {
                Ok(e) => {
                    batch.push(e);
                    if batch.len() == BATCH {
                        write_batch(store, &mut batch, rt, s);
                    }
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    gone = true;
                    break;
                }
            }
        }
        write_batch(store, &mut batch, rt, s);
        if stopping || gone {
            return;
        }
        std::thread::sleep(LINGER);
    }
}

fn write_batch(
    store: &Store,
    batch: &mut Vec<Event>,
    rt: &tokio::runtime::Handle,
    s: &WriterStats,
) {
    if batch.is_empty() {
        return;
    }
    for attempt in 1..=ATTEMPTS {
        match rt.block_on(async {
            if !store.is_migrated() {
                store.migrate().await?;
            }
            store.insert_events(batch).await
        }) {
            Ok(()) => {
                s.written.fetch_add(batch.len() as u64, Ordering::Relaxed);
                batch.clear();
                return;
            }
            Err(e) if attempt == ATTEMPTS => {
                tracing::warn!(events = batch.len(), error = %e, "cannot write tracking events; they are lost (the messages themselves are not affected)");
            }
            Err(_) => std::thread::sleep(Duration::from_millis(200 * u64::from(attempt))),
        }
    }
    s.lost.fetch_add(batch.len() as u64, Ordering::Relaxed);
    batch.clear();
}
