//! One store over two backends: SQLite (embedded, one process) and PostgreSQL (several
//! replicas). The SQL is the same text for both (`$N` parameters, `ON CONFLICT`,
//! `RETURNING`); only the migrations differ (column types). Each query is written once
//! and expanded for each pool by [`on_pool!`].

use std::borrow::Cow;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use lgsp_core::config::SecretUrl;
use lgsp_core::failure::FailureKind;
use lgsp_core::tracking::kind;
use sqlx::Row;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::audit::NewAudit;
use crate::edit;
use crate::failpoint;
use crate::record::{
    FORMAT_VERSION, Failure, Filter, NewFailure, Page, Replay, Status, Summary, now_ms, rfc3339,
};
use crate::tracking::TRACK_RECORD;

/// The header a replay carries (`lgsp-replay-of`, `docs/contracts.md`), as the store
/// finds it in a record's headers; the store knows no broker, so it names it here.
pub const REPLAY_OF_HEADER: &str = "lgsp-replay-of";

/// Why the store could not do what was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("store url {url}: {message}")]
    Url { url: String, message: String },
    #[error(
        "TLS with the store at {url} failed: {source}; check sslmode and sslrootcert (the CA that signed PostgreSQL's certificate) in store.url, and that its host is a name in the certificate"
    )]
    Tls {
        url: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("the store at {url} is unreachable or failed: {source}")]
    Unavailable {
        url: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("the store at {url} could not be migrated: {source}")]
    Migrate {
        url: String,
        #[source]
        source: sqlx::migrate::MigrateError,
    },
    #[error("the store is unreachable (failpoint store_outage)")]
    Injected,
    #[error(
        "record {id} is of format version {version}, newer than this lgsp reads ({FORMAT_VERSION}); upgrade lgsp"
    )]
    NewerFormat { id: i64, version: i64 },
}

pub(crate) enum Backend {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// The failed-message store.
pub struct Store {
    pub(crate) backend: Backend,
    url: String,
    migrated: AtomicBool,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("url", &self.url).finish()
    }
}

/// Run the same query code on whichever pool the store has.
macro_rules! on_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match &$store.backend {
            $crate::store::Backend::Sqlite($pool) => $body,
            $crate::store::Backend::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_pool;

/// A pooled connection for one write transaction, closed instead of returned to the
/// pool unless the transaction committed ([`WriteConn::done`]). SQLite rolls a
/// transaction back by itself on some errors (SQLITE_FULL, SQLITE_IOERR), after which
/// the pooled connection would still believe it is in one, and later work on it would
/// run in a transaction never committed (measured: records of a batch reported as
/// stored were missing after a full disk).
pub(crate) struct WriteConn<DB: sqlx::Database> {
    conn: sqlx::pool::PoolConnection<DB>,
    done: bool,
}

impl<DB: sqlx::Database> WriteConn<DB> {
    pub(crate) async fn acquire(pool: &sqlx::Pool<DB>) -> Result<Self, sqlx::Error> {
        Ok(WriteConn {
            conn: pool.acquire().await?,
            done: false,
        })
    }

    pub(crate) async fn begin(&mut self) -> Result<sqlx::Transaction<'_, DB>, sqlx::Error> {
        sqlx::Connection::begin(&mut *self.conn).await
    }

    /// The transaction committed: the connection may go back to the pool.
    pub(crate) fn done(&mut self) {
        self.done = true;
    }
}

impl<DB: sqlx::Database> Drop for WriteConn<DB> {
    fn drop(&mut self) {
        if !self.done {
            self.conn.close_on_drop();
        }
    }
}

/// Append one audit entry inside the open transaction `$tx` (in a function returning
/// `Result<_, sqlx::Error>`); evaluates to its sequence number. The first statement
/// locks the chain head: on PostgreSQL the head row stays locked until the commit, so
/// appends from every process are serialised; on SQLite it is a write, so the
/// transaction holds the database's write lock from there on (callers make sure no
/// read precedes it in the transaction, which would risk a stale snapshot).
macro_rules! append_audit {
    ($tx:expr, $entry:expr) => {{
        let e: &$crate::audit::NewAudit = $entry;
        let head =
            sqlx::query("UPDATE audit_head SET seq = seq + 1 WHERE id = 1 RETURNING seq, hash")
                .fetch_one(&mut *$tx)
                .await?;
        let seq: i64 = sqlx::Row::try_get(&head, "seq")?;
        let prev: String = sqlx::Row::try_get(&head, "hash")?;
        let at = $crate::record::now_ms();
        let ids = e.ids_json();
        let hash = $crate::audit::entry_hash(seq, at, &e.actor, &e.action, &ids, &e.note, &prev);
        sqlx::query(
            "INSERT INTO audit_log (seq, at, actor, action, message_ids, note, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(seq)
        .bind(at)
        .bind(&e.actor)
        .bind(&e.action)
        .bind(&ids)
        .bind(&e.note)
        .bind(&prev)
        .bind(&hash)
        .execute(&mut *$tx)
        .await?;
        sqlx::query("UPDATE audit_head SET hash = $1 WHERE id = 1")
            .bind(&hash)
            .execute(&mut *$tx)
            .await?;
        seq
    }};
}
pub(crate) use append_audit;

const SQLITE_MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "failed messages",
        include_str!("../migrations/sqlite/0001_failed_messages.sql"),
    ),
    (
        2,
        "groups approvals audit",
        include_str!("../migrations/sqlite/0002_groups_approvals_audit.sql"),
    ),
    (
        3,
        "idempotency keys",
        include_str!("../migrations/sqlite/0003_idempotency_keys.sql"),
    ),
    (
        4,
        "message events",
        include_str!("../migrations/sqlite/0004_message_events.sql"),
    ),
    (
        5,
        "replay claims",
        include_str!("../migrations/sqlite/0005_replay_claims.sql"),
    ),
];
const POSTGRES_MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "failed messages",
        include_str!("../migrations/postgres/0001_failed_messages.sql"),
    ),
    (
        2,
        "groups approvals audit",
        include_str!("../migrations/postgres/0002_groups_approvals_audit.sql"),
    ),
    (
        3,
        "idempotency keys",
        include_str!("../migrations/postgres/0003_idempotency_keys.sql"),
    ),
    (
        4,
        "message events",
        include_str!("../migrations/postgres/0004_message_events.sql"),
    ),
    (
        5,
        "replay claims",
        include_str!("../migrations/postgres/0005_replay_claims.sql"),
    ),
];

fn migrator(list: &'static [(i64, &'static str, &'static str)]) -> Migrator {
    let migrations: Vec<Migration> = list
        .iter()
        .map(|(v, d, sql)| {
            Migration::new(
                *v,
                Cow::Borrowed(*d),
                MigrationType::Simple,
                Cow::Borrowed(*sql),
                false,
            )
        })
        .collect();
    Migrator {
        migrations: Cow::Owned(migrations),
        ..Migrator::DEFAULT
    }
}

/// A query parameter of a dynamically built list query.
pub(crate) enum Param {
    Text(String),
    Int(i64),
}

/// Append the conditions of `filter` to `sql` (which ends in a WHERE clause), with
/// `$N` parameters numbered after those already in `params`.
pub(crate) fn filter_sql(filter: &Filter, sql: &mut String, params: &mut Vec<Param>) {
    let mut add = |sql: &mut String, cond: &str, p: Param| {
        params.push(p);
        sql.push_str(&cond.replace("?", &format!("${}", params.len())));
    };
    if filter.no_route {
        sql.push_str(" AND route IS NULL");
    } else if let Some(r) = &filter.route {
        if filter.exact_route {
            add(sql, " AND route = ?", Param::Text(r.clone()));
        } else {
            // `route` lists every route a failure cost, comma-separated.
            let pattern = format!("%,{},%", like_escape(r));
            add(
                sql,
                " AND (',' || route || ',') LIKE ? ESCAPE '\\'",
                Param::Text(pattern),
            );
        }
    }
    if let Some(k) = filter.kind {
        if k == FailureKind::FALLBACK {
            // What reads as the fallback kind: the kinds this version does not know too.
            let known: Vec<String> = FailureKind::ALL
                .iter()
                .map(|k| format!("'{}'", k.as_str()))
                .collect();
            add(
                sql,
                &format!(
                    " AND (error_kind = ? OR error_kind NOT IN ({}))",
                    known.join(", ")
                ),
                Param::Text(k.as_str().to_owned()),
            );
        } else {
            add(
                sql,
                " AND error_kind = ?",
                Param::Text(k.as_str().to_owned()),
            );
        }
    }
    if let Some(c) = &filter.code {
        add(sql, " AND error_code = ?", Param::Text(c.clone()));
    }
    if let Some(t) = &filter.text {
        let pattern = format!("%{}%", like_escape(&t.to_lowercase()));
        add(
            sql,
            " AND LOWER(error) LIKE ? ESCAPE '\\'",
            Param::Text(pattern),
        );
    }
    if let Some(f) = filter.from {
        add(sql, " AND last_failed_at >= ?", Param::Int(f));
    }
    if let Some(t) = filter.to {
        add(sql, " AND last_failed_at < ?", Param::Int(t));
    }
    if let Some(s) = filter.status {
        add(sql, " AND status = ?", Param::Text(s.as_str().into()));
    }
}

/// Bind `params` in order.
macro_rules! bind_all {
    ($q:expr, $params:expr) => {{
        let mut q = $q;
        for param in $params {
            q = match param {
                $crate::store::Param::Text(s) => q.bind(s.clone()),
                $crate::store::Param::Int(n) => q.bind(*n),
            };
        }
        q
    }};
}
pub(crate) use bind_all;

const SUMMARY_COLUMNS: &str = "id, failure_id, message_id, route, error_kind, error_code, error, status, attempts, first_failed_at, last_failed_at";

impl Store {
    /// Prepare the store at `url` without connecting (connections are made on demand);
    /// a SQLite file's folder is created now. Call [`Store::migrate`] before use.
    pub fn open(url: &SecretUrl) -> Result<Store, StoreError> {
        let shown = url.redacted();
        let bad = |message: String| StoreError::Url {
            url: shown.clone(),
            message,
        };
        let raw = url.expose();
        let backend = if raw.starts_with("sqlite:") {
            let opts = SqliteConnectOptions::from_str(raw)
                .map_err(|e| bad(e.to_string()))?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true);
            let file = opts.get_filename();
            if let Some(dir) = file.parent()
                && !dir.as_os_str().is_empty()
                && file.to_str() != Some(":memory:")
            {
                std::fs::create_dir_all(dir)
                    .map_err(|e| bad(format!("cannot create folder {}: {e}", dir.display())))?;
            }
            Backend::Sqlite(
                SqlitePoolOptions::new()
                    .max_connections(4)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_lazy_with(opts),
            )
        } else if raw.starts_with("postgres:") || raw.starts_with("postgresql:") {
            let opts = PgConnectOptions::from_str(raw).map_err(|e| bad(e.to_string()))?;
            Backend::Postgres(
                PgPoolOptions::new()
                    .max_connections(8)
                    .acquire_timeout(Duration::from_secs(5))
                    .connect_lazy_with(opts),
            )
        } else {
            return Err(bad(
                "unknown scheme; use sqlite://PATH or postgres://USER@HOST/DB".into(),
            ));
        };
        Ok(Store {
            backend,
            url: shown,
            migrated: AtomicBool::new(false),
        })
    }

    /// The URL, password redacted.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Which backend: `sqlite` or `postgres`.
    pub fn backend(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    pub(crate) fn unavailable(&self, source: sqlx::Error) -> StoreError {
        let url = self.url.clone();
        if matches!(source, sqlx::Error::Tls(_)) || lgsp_core::tls::cause(&source).is_some() {
            StoreError::Tls { url, source }
        } else {
            StoreError::Unavailable { url, source }
        }
    }

    /// Create or upgrade the schema (idempotent; serialised between processes).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        failpoint::check()?;
        let r = match &self.backend {
            Backend::Sqlite(p) => migrator(SQLITE_MIGRATIONS).run(p).await,
            Backend::Postgres(p) => migrator(POSTGRES_MIGRATIONS).run(p).await,
        };
        r.map_err(|source| StoreError::Migrate {
            url: self.url.clone(),
            source,
        })?;
        self.migrated.store(true, Ordering::SeqCst);
        Ok(())
    }

    /// Migrated, and answering a trivial query now.
    pub async fn ping(&self) -> Result<(), StoreError> {
        failpoint::check()?;
        on_pool!(self, |p| sqlx::query("SELECT 1")
            .execute(p)
            .await
            .map(|_| ()))
        .map_err(|e| self.unavailable(e))
    }

    /// Has [`Store::migrate`] succeeded?
    pub fn is_migrated(&self) -> bool {
        self.migrated.load(Ordering::SeqCst)
    }

    /// Store failures in one transaction; for each, whether it was new (`false`: that
    /// failure id was already stored, nothing changed).
    pub async fn insert(&self, failures: &[NewFailure]) -> Result<Vec<bool>, StoreError> {
        failpoint::check()?;
        let stored_at = now_ms();
        let r: Result<Vec<bool>, sqlx::Error> = on_pool!(self, |p| {
            async {
            let mut conn = crate::store::WriteConn::acquire(p).await?;
            let mut tx = conn.begin().await?;
            let mut out = Vec::with_capacity(failures.len());
            for f in failures {
                // The same failure again while it is still open: the input was redelivered
                // after its failure was published but before it was acknowledged (a lost
                // connection, a killed process), and failed the same way. One input, one
                // record. A replay (which carries `lgsp-replay-of`) or a failure after the
                // record was replayed or discarded is a new one.
                let open = sqlx::query(
                    "SELECT headers, body FROM failed_messages WHERE message_id = $1 AND COALESCE(route, '') = $2 AND status = $3 AND error_code = $4 AND targets = $5 AND attempts = $6",
                )
                .bind(&f.message_id)
                .bind(f.route.clone().unwrap_or_default())
                .bind(Status::Failed.as_str())
                .bind(&f.error_code)
                .bind(f.targets.join(","))
                .bind(f.attempts)
                .fetch_all(&mut *tx)
                .await?;
                let replay_of = |h: &serde_json::Value| h.get(REPLAY_OF_HEADER).cloned();
                let mut again = false;
                for row in &open {
                    let headers: String = row.try_get("headers")?;
                    let body: Vec<u8> = row.try_get("body")?;
                    let headers = serde_json::from_str(&headers).unwrap_or_default();
                    again |= body == f.body && replay_of(&headers) == replay_of(&f.headers);
                }
                if again {
                    out.push(false);
                    continue;
                }
                // A message that failed before (and was replayed) keeps its first failure time.
                let earlier: Option<i64> = sqlx::query(
                    "SELECT MIN(first_failed_at) AS t FROM failed_messages WHERE message_id = $1 AND COALESCE(route, '') = $2",
                )
                .bind(&f.message_id)
                .bind(f.route.clone().unwrap_or_default())
                .fetch_one(&mut *tx)
                .await?
                .try_get("t")?;
                let first = earlier.map_or(f.failed_at, |e| e.min(f.failed_at));
                let done = sqlx::query(
                    "INSERT INTO failed_messages (format_version, failure_id, message_id, route, targets, original_exchange, original_routing_key, source_queue, properties, headers, body, content_type, error_kind, error_code, error, attempts, first_failed_at, last_failed_at, stored_at, status) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20) \
                     ON CONFLICT (failure_id) DO NOTHING",
                )
                .bind(FORMAT_VERSION)
                .bind(&f.failure_id)
                .bind(&f.message_id)
                .bind(&f.route)
                .bind(f.targets.join(","))
                .bind(&f.original_exchange)
                .bind(&f.original_routing_key)
                .bind(&f.source_queue)
                .bind(f.properties.to_string())
                .bind(f.headers.to_string())
                .bind(&f.body)
                .bind(&f.content_type)
                .bind(f.error_kind.as_str())
                .bind(&f.error_code)
                .bind(&f.error)
                .bind(f.attempts)
                .bind(first)
                .bind(f.failed_at)
                .bind(stored_at)
                .bind(Status::Failed.as_str())
                .execute(&mut *tx)
                .await?;
                let new = done.rows_affected() == 1;
                if new {
                    sqlx::query(
                        "INSERT INTO message_events (message_id, at, event, route, target, detail) VALUES ($1, $2, $3, $4, $5, $6)",
                    )
                    .bind(&f.message_id)
                    .bind(stored_at)
                    .bind(kind::STORED)
                    .bind(f.route.clone().unwrap_or_default())
                    .bind(f.targets.join(","))
                    .bind(format!("{}/{} after {} attempt(s), from {}", f.error_kind, f.error_code, f.attempts, f.source_queue))
                    .execute(&mut *tx)
                    .await?;
                }
                out.push(new);
            }
            tx.commit().await?;
            conn.done();
            Ok(out)
        }
        .await
        });
        let out = r.map_err(|e| self.unavailable(e))?;
        failpoint::stored(out.len());
        Ok(out)
    }

    /// A page of summaries, newest first. `cursor` is a previous page's `next_cursor`.
    pub async fn list(
        &self,
        filter: &Filter,
        cursor: Option<i64>,
        limit: u32,
    ) -> Result<Page, StoreError> {
        failpoint::check()?;
        let limit = limit.clamp(1, 1000);
        let mut sql = format!("SELECT {SUMMARY_COLUMNS} FROM failed_messages WHERE 1 = 1");
        let mut params = Vec::new();
        filter_sql(filter, &mut sql, &mut params);
        let mut add = |sql: &mut String, cond: &str, p: Param| {
            params.push(p);
            sql.push_str(&cond.replace("?", &format!("${}", params.len())));
        };
        if let Some(c) = cursor {
            add(&mut sql, " AND id < ?", Param::Int(c));
        }
        add(
            &mut sql,
            " ORDER BY id DESC LIMIT ?",
            Param::Int(i64::from(limit) + 1),
        );
        let rows: Result<Vec<Summary>, sqlx::Error> = on_pool!(self, |p| async {
            let rows = bind_all!(sqlx::query(&sql), &params).fetch_all(p).await?;
            rows.iter().map(summary).collect()
        }
        .await);
        let mut items = rows.map_err(|e| self.unavailable(e))?;
        let next_cursor = if items.len() > limit as usize {
            items.truncate(limit as usize);
            items.last().map(|s| s.id.to_string())
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }

    /// One record with its replay history.
    pub async fn get(&self, id: i64) -> Result<Option<Failure>, StoreError> {
        failpoint::check()?;
        let r: Result<Option<Failure>, sqlx::Error> = on_pool!(self, |p| {
            async {
            let Some(row) = sqlx::query("SELECT * FROM failed_messages WHERE id = $1")
                .bind(id)
                .fetch_optional(p)
                .await?
            else {
                return Ok(None);
            };
            let message_id: String = row.try_get("message_id")?;
            let route: Option<String> = row.try_get("route")?;
            let history = sqlx::query(
                "SELECT r.*, f.body AS original FROM replays r JOIN failed_messages f ON f.id = r.failed_id \
                 WHERE f.message_id = $1 AND COALESCE(f.route, '') = $2 ORDER BY r.id",
            )
            .bind(&message_id)
            .bind(route.clone().unwrap_or_default())
            .fetch_all(p)
            .await?
            .iter()
            .map(|r| {
                let original: Vec<u8> = r.try_get("original")?;
                let edit_diff: Option<String> = r.try_get("edit_diff")?;
                let edited_body: Option<Vec<u8>> = match edit_diff {
                    Some(d) => Some(
                        serde_json::from_str(&d)
                            .ok()
                            .and_then(|d| edit::apply(&original, &d).ok())
                            .ok_or_else(|| {
                                sqlx::Error::Decode(
                                    format!("the edit diff of a replay of record {id} is damaged").into(),
                                )
                            })?,
                    ),
                    None => r.try_get("edited_body")?,
                };
                let diff = edited_body.as_deref().and_then(|e| {
                    (std::str::from_utf8(e).is_ok() && std::str::from_utf8(&original).is_ok())
                        .then(|| edit::unified(&original, e))
                });
                Ok(Replay {
                    failed_id: r.try_get("failed_id")?,
                    at: rfc3339(r.try_get("replayed_at")?),
                    actor: r.try_get("actor")?,
                    exchange: r.try_get("exchange")?,
                    routing_key: r.try_get("routing_key")?,
                    targets: split_list(&r.try_get::<String, _>("targets")?),
                    edited: edited_body.is_some(),
                    edited_body,
                    diff,
                    note: String::new(),
                    sent_ms: 0,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
            Ok(Some(Failure {
                id: row.try_get("id")?,
                format_version: row.try_get("format_version")?,
                summary: summary(&row)?,
                targets: split_list(&row.try_get::<String, _>("targets")?),
                original_exchange: row.try_get("original_exchange")?,
                original_routing_key: row.try_get("original_routing_key")?,
                source_queue: row.try_get("source_queue")?,
                properties: json(&row.try_get::<String, _>("properties")?),
                headers: json(&row.try_get::<String, _>("headers")?),
                body: row.try_get("body")?,
                content_type: row.try_get("content_type")?,
                stored_at: rfc3339(row.try_get("stored_at")?),
                replays: history.iter().filter(|r| r.failed_id == id).cloned().collect(),
                history,
                discarded_by: row.try_get("discarded_by")?,
                discard_reason: row.try_get("discard_reason")?,
            }))
        }
        .await
        });
        let f = r.map_err(|e| self.unavailable(e))?;
        if let Some(f) = &f
            && f.format_version > FORMAT_VERSION
        {
            return Err(StoreError::NewerFormat {
                id: f.id,
                version: f.format_version,
            });
        }
        Ok(f)
    }

    /// Record a confirmed replay and mark the record `replayed`, with its audit entry,
    /// in one transaction. An edited text body is kept as a diff against the stored one.
    pub async fn record_replay(&self, id: i64, replay: &Replay) -> Result<(), StoreError> {
        let original = match &replay.edited_body {
            Some(_) => self.body(id).await?,
            None => None,
        };
        self.record_replays(&[(id, replay.clone(), original)], None)
            .await
            .map(|_| ())
    }

    /// The stored body of record `id`.
    pub(crate) async fn body(&self, id: i64) -> Result<Option<Vec<u8>>, StoreError> {
        failpoint::check()?;
        on_pool!(self, |p| async {
            match sqlx::query("SELECT body FROM failed_messages WHERE id = $1")
                .bind(id)
                .fetch_optional(p)
                .await?
            {
                Some(r) => r.try_get::<Vec<u8>, _>("body").map(Some),
                None => Ok(None),
            }
        }
        .await)
        .map_err(|e| self.unavailable(e))
    }

    /// Record confirmed replays (each with its original body when it was edited) in one
    /// transaction: a `replays` row each, status `replayed` for those still `failed`, and
    /// one audit entry naming them all (`batch_note` set: a bulk batch; otherwise one
    /// replay, audited as `replay` or `edit_replay`). Returns the ids newly marked.
    pub async fn record_replays(
        &self,
        replays: &[(i64, Replay, Option<Vec<u8>>)],
        batch_note: Option<&str>,
    ) -> Result<Vec<i64>, StoreError> {
        failpoint::check()?;
        if replays.is_empty() {
            return Ok(Vec::new());
        }
        let now = now_ms();
        let actor = replays[0].1.actor.clone();
        let r: Result<Vec<i64>, sqlx::Error> = on_pool!(self, |p| {
            async {
            let mut conn = crate::store::WriteConn::acquire(p).await?;
            let mut tx = conn.begin().await?;
            let mut marked = Vec::with_capacity(replays.len());
            for (id, replay, original) in replays {
                let diff = match (&replay.edited_body, original) {
                    (Some(e), Some(o)) => edit::diff(o, e),
                    _ => None,
                };
                let edited_body = if diff.is_some() { None } else { replay.edited_body.clone() };
                sqlx::query(
                    "INSERT INTO replays (failed_id, replayed_at, actor, exchange, routing_key, targets, edited_body, edit_diff) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(id)
                .bind(now)
                .bind(&replay.actor)
                .bind(&replay.exchange)
                .bind(&replay.routing_key)
                .bind(replay.targets.join(","))
                .bind(edited_body)
                .bind(diff.map(|d| d.to_string()))
                .execute(&mut *tx)
                .await?;
                let done = sqlx::query("UPDATE failed_messages SET status = $1, settled_at = $2 WHERE id = $3 AND status = $4")
                    .bind(Status::Replayed.as_str())
                    .bind(now)
                    .bind(id)
                    .bind(Status::Failed.as_str())
                    .execute(&mut *tx)
                    .await?;
                if done.rows_affected() == 1 {
                    marked.push(*id);
                }
                let sent = if replay.sent_ms > 0 { replay.sent_ms } else { now };
                if replay.edited {
                    sqlx::query(TRACK_RECORD)
                        .bind(sent)
                        .bind(kind::EDITED)
                        .bind(format!("by {}, record {id}", replay.actor))
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                }
                sqlx::query(TRACK_RECORD)
                    .bind(sent)
                    .bind(kind::REPLAYED)
                    .bind(format!("by {}, record {id}, to {}", replay.actor, replay.destination()))
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
            let ids: Vec<i64> = replays.iter().map(|(id, _, _)| *id).collect();
            let entry = match batch_note {
                Some(n) => NewAudit::new(&actor, "bulk_replay", ids, n),
                None => {
                    let r = &replays[0].1;
                    let action = if r.edited { "edit_replay" } else { "replay" };
                    let target = r.destination();
                    let note = if r.note.is_empty() { target } else { format!("{target}; {}", r.note) };
                    NewAudit::new(&actor, action, ids, &note)
                }
            };
            append_audit!(tx, &entry);
            tx.commit().await?;
            conn.done();
            Ok(marked)
        }
        .await
        });
        r.map_err(|e| self.unavailable(e))
    }

    /// How many records there are (for tests and logs).
    pub async fn count(&self) -> Result<i64, StoreError> {
        failpoint::check()?;
        on_pool!(self, |p| sqlx::query(
            "SELECT COUNT(*) AS n FROM failed_messages"
        )
        .fetch_one(p)
        .await
        .and_then(|r| r.try_get::<i64, _>("n")))
        .map_err(|e| self.unavailable(e))
    }

    /// How many records have each status (`failed`, `replayed`, `discarded`), for the
    /// metrics.
    pub async fn count_by_status(&self) -> Result<Vec<(String, i64)>, StoreError> {
        failpoint::check()?;
        on_pool!(self, |p| sqlx::query(
            "SELECT status, COUNT(*) AS n FROM failed_messages GROUP BY status ORDER BY status"
        )
        .fetch_all(p)
        .await
        .and_then(|rows| {
            rows.iter()
                .map(|r| Ok((r.try_get::<String, _>("status")?, r.try_get::<i64, _>("n")?)))
                .collect::<Result<Vec<_>, sqlx::Error>>()
        }))
        .map_err(|e| self.unavailable(e))
    }

    /// The records of `message_id`, oldest first.
    pub async fn failures_of(&self, message_id: &str) -> Result<Vec<Summary>, StoreError> {
        failpoint::check()?;
        let sql = format!(
            "SELECT {SUMMARY_COLUMNS} FROM failed_messages WHERE message_id = $1 ORDER BY id LIMIT 1000"
        );
        let rows: Result<Vec<Summary>, sqlx::Error> = on_pool!(self, |p| async {
            let rows = sqlx::query(&sql).bind(message_id).fetch_all(p).await?;
            rows.iter().map(summary).collect()
        }
        .await);
        rows.map_err(|e| self.unavailable(e))
    }

    /// Close every connection.
    pub async fn close(&self) {
        on_pool!(self, |p| p.close().await);
    }
}

fn summary<R: Row>(r: &R) -> Result<Summary, sqlx::Error>
where
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<String>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    let status: String = r.try_get("status")?;
    let kind: String = r.try_get("error_kind")?;
    let (error_kind, unknown) = FailureKind::parse_or_fallback(&kind);
    let mut error: String = r.try_get("error")?;
    if let Some(u) = unknown {
        error = format!("{}: {error}", u.note());
    }
    Ok(Summary {
        id: r.try_get("id")?,
        failure_id: r.try_get("failure_id")?,
        message_id: r.try_get("message_id")?,
        route: r.try_get("route")?,
        error_kind,
        error_code: r.try_get("error_code")?,
        error,
        status: Status::parse(&status).unwrap_or(Status::Failed),
        attempts: r.try_get("attempts")?,
        first_failed_at: rfc3339(r.try_get("first_failed_at")?),
        last_failed_at: rfc3339(r.try_get("last_failed_at")?),
    })
}

fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or(serde_json::Value::Null)
}

fn like_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A relative SQLite path in `url` resolved against `base` (the root configuration
/// file's folder), as `adapter_dir` is; other URLs unchanged.
pub fn resolve_url(url: &SecretUrl, base: &std::path::Path) -> SecretUrl {
    let raw = url.expose();
    let Some(rest) = raw
        .strip_prefix("sqlite://")
        .or_else(|| raw.strip_prefix("sqlite:"))
    else {
        return url.clone();
    };
    if rest.starts_with('/') || rest.starts_with(":memory:") || rest.is_empty() {
        return url.clone();
    }
    SecretUrl::new(format!("sqlite://{}", base.join(rest).display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_sqlite_paths_follow_the_config_file() {
        let base = std::path::Path::new("/etc/lgsp");
        let r = |u: &str| resolve_url(&SecretUrl::new(u), base).expose().to_owned();
        assert_eq!(
            r("sqlite://data/lgsp.db"),
            "sqlite:///etc/lgsp/data/lgsp.db"
        );
        assert_eq!(r("sqlite:///var/lib/lgsp.db"), "sqlite:///var/lib/lgsp.db");
        assert_eq!(
            r("sqlite://data/x.db?mode=rwc"),
            "sqlite:///etc/lgsp/data/x.db?mode=rwc"
        );
        assert_eq!(r("postgres://u@h/db"), "postgres://u@h/db");
    }
}
