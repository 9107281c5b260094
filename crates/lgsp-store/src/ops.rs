//! What an administrator does with many records at once: see them grouped by cause,
//! select a group or a filter for a bulk replay, discard, and purge what is settled.

use lgsp_core::failure::FailureKind;
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::audit::NewAudit;
use crate::failpoint;
use crate::record::{Failure, Filter, Status, now_ms, rfc3339};
use crate::store::{Param, Store, StoreError, append_audit, bind_all, filter_sql, on_pool};

/// Failures of one cause: the routes they cost, error kind and error code (the stable
/// id of the error's template, not its text).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Group {
    /// Stable id of the group, for the command line (`--group`): derived from route,
    /// kind and code only, so it is the same tomorrow and on every replica.
    pub key: String,
    pub route: Option<String>,
    /// As in [`crate::Summary`]: a stored kind this version does not know reads as
    /// [`FailureKind::FALLBACK`] (its key still tells it apart).
    pub error_kind: FailureKind,
    pub error_code: String,
    pub count: i64,
    /// RFC 3339, UTC: the earliest first failure and the latest last failure.
    pub first_seen: String,
    pub last_seen: String,
    /// One record of the group and its error text.
    pub sample_id: i64,
    pub sample_error: String,
}

/// The key of the group of `route`, `kind`, `code`: `g` and 12 hex digits of a SHA-256.
pub fn group_key(route: Option<&str>, kind: &str, code: &str) -> String {
    let mut h = Sha256::new();
    h.update(route.unwrap_or("\u{0}none").as_bytes());
    h.update([0]);
    h.update(kind.as_bytes());
    h.update([0]);
    h.update(code.as_bytes());
    let hex: String = h.finalize()[..6]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("g{hex}")
}

impl Store {
    /// Groups of the records matching `filter` (default status: `failed`), largest first.
    pub async fn groups(&self, filter: &Filter) -> Result<Vec<Group>, StoreError> {
        failpoint::check()?;
        let mut filter = filter.clone();
        filter.status = Some(filter.status.unwrap_or(Status::Failed));
        let mut sql = "SELECT route, error_kind, error_code, COUNT(*) AS n, MIN(first_failed_at) AS first_seen, \
                       MAX(last_failed_at) AS last_seen, MIN(id) AS sample_id FROM failed_messages WHERE 1 = 1"
            .to_owned();
        let mut params = Vec::new();
        filter_sql(&filter, &mut sql, &mut params);
        sql.push_str(
            " GROUP BY route, error_kind, error_code ORDER BY n DESC, route, error_kind, error_code",
        );
        let r: Result<Vec<Group>, sqlx::Error> = on_pool!(self, |p| async {
            let rows = bind_all!(sqlx::query(&sql), &params).fetch_all(p).await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                let route: Option<String> = row.try_get("route")?;
                let kind: String = row.try_get("error_kind")?;
                let code: String = row.try_get("error_code")?;
                let sample_id: i64 = row.try_get("sample_id")?;
                let (error_kind, unknown) = FailureKind::parse_or_fallback(&kind);
                let mut sample_error: String =
                    sqlx::query("SELECT error FROM failed_messages WHERE id = $1")
                        .bind(sample_id)
                        .fetch_one(p)
                        .await?
                        .try_get("error")?;
                if let Some(u) = unknown {
                    sample_error = format!("{}: {sample_error}", u.note());
                }
                out.push(Group {
                    key: group_key(route.as_deref(), &kind, &code),
                    route,
                    error_kind,
                    error_code: code,
                    count: row.try_get("n")?,
                    first_seen: rfc3339(row.try_get("first_seen")?),
                    last_seen: rfc3339(row.try_get("last_seen")?),
                    sample_id,
                    sample_error,
                });
            }
            Ok(out)
        }
        .await);
        r.map_err(|e| self.unavailable(e))
    }

    /// The filter of the group `key` among the records still `failed`; `None` when no
    /// failed record has that cause (all replayed or discarded, or a mistyped key).
    pub async fn group_filter(&self, key: &str) -> Result<Option<Filter>, StoreError> {
        let groups = self.groups(&Filter::default()).await?;
        Ok(groups.into_iter().find(|g| g.key == key).map(|g| Filter {
            no_route: g.route.is_none(),
            route: g.route,
            exact_route: true,
            kind: Some(g.error_kind),
            code: Some(g.error_code),
            status: Some(Status::Failed),
            ..Filter::default()
        }))
    }

    /// Records still `failed` that match `filter`, oldest first, at most `limit`, whole
    /// (bodies included): the next batch of a bulk replay. A rerun after an interruption
    /// selects only what is still unreplayed.
    pub async fn select_failed(
        &self,
        filter: &Filter,
        limit: u32,
    ) -> Result<Vec<Failure>, StoreError> {
        let ids = self.failed_ids(filter, Some(limit)).await?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(f) = self.get(id).await? {
                out.push(f);
            }
        }
        Ok(out)
    }

    /// Claim up to `limit` records still `failed` matching `filter` that no other replay
    /// holds, for `lease`, and return them, oldest first: what a replay publishes. Each
    /// claim is one conditional update, so of two replays at once (other processes
    /// included) only one gets a record. A claim ends when the record is replayed, when
    /// [`Store::release`] gives it back, or when the lease passes.
    pub async fn claim_failed(
        &self,
        filter: &Filter,
        limit: u32,
        lease: std::time::Duration,
    ) -> Result<Vec<Failure>, StoreError> {
        let now = now_ms();
        let candidates = self
            .failed_ids_unclaimed(filter, Some(limit), Some(now))
            .await?;
        let until = now + i64::try_from(lease.as_millis()).unwrap_or(i64::MAX / 2);
        let mut out = Vec::with_capacity(candidates.len());
        for id in candidates {
            if self.claim(id, now, until).await?
                && let Some(f) = self.get(id).await?
            {
                out.push(f);
            }
        }
        Ok(out)
    }

    /// Claim the one record `id` (see [`Store::claim_failed`]): `false` when it is not
    /// `failed` or another replay holds it.
    pub async fn claim_one(&self, id: i64, lease: std::time::Duration) -> Result<bool, StoreError> {
        let now = now_ms();
        let until = now + i64::try_from(lease.as_millis()).unwrap_or(i64::MAX / 2);
        self.claim(id, now, until).await
    }

    async fn claim(&self, id: i64, now: i64, until: i64) -> Result<bool, StoreError> {
        failpoint::check()?;
        let r: Result<u64, sqlx::Error> = on_pool!(self, |p| {
            async {
            sqlx::query(
                "UPDATE failed_messages SET claimed_until = $1 WHERE id = $2 AND status = $3 AND (claimed_until IS NULL OR claimed_until < $4)",
            )
            .bind(until)
            .bind(id)
            .bind(Status::Failed.as_str())
            .bind(now)
            .execute(p)
            .await
            .map(|d| d.rows_affected())
        }
        .await
        });
        r.map(|n| n == 1).map_err(|e| self.unavailable(e))
    }

    /// Give claimed records back (a replay that did not publish them).
    pub async fn release(&self, ids: &[i64]) -> Result<(), StoreError> {
        failpoint::check()?;
        for id in ids {
            let r: Result<u64, sqlx::Error> = on_pool!(self, |p| async {
                sqlx::query("UPDATE failed_messages SET claimed_until = NULL WHERE id = $1")
                    .bind(id)
                    .execute(p)
                    .await
                    .map(|d| d.rows_affected())
            }
            .await);
            r.map_err(|e| self.unavailable(e))?;
        }
        Ok(())
    }

    /// Ids of the records still `failed` matching `filter`, oldest first.
    pub async fn failed_ids(
        &self,
        filter: &Filter,
        limit: Option<u32>,
    ) -> Result<Vec<i64>, StoreError> {
        self.failed_ids_unclaimed(filter, limit, None).await
    }

    /// [`Store::failed_ids`]; with `unclaimed_at`, only those no replay holds at that
    /// time (Unix ms).
    async fn failed_ids_unclaimed(
        &self,
        filter: &Filter,
        limit: Option<u32>,
        unclaimed_at: Option<i64>,
    ) -> Result<Vec<i64>, StoreError> {
        failpoint::check()?;
        let mut filter = filter.clone();
        filter.status = Some(Status::Failed);
        let mut sql = "SELECT id FROM failed_messages WHERE 1 = 1".to_owned();
        let mut params = Vec::new();
        filter_sql(&filter, &mut sql, &mut params);
        if let Some(now) = unclaimed_at {
            params.push(Param::Int(now));
            sql.push_str(&format!(
                " AND (claimed_until IS NULL OR claimed_until < ${})",
                params.len()
            ));
        }
        sql.push_str(" ORDER BY id");
        if let Some(l) = limit {
            params.push(Param::Int(i64::from(l.clamp(1, 1000))));
            sql.push_str(&format!(" LIMIT ${}", params.len()));
        }
        let r: Result<Vec<i64>, sqlx::Error> = on_pool!(self, |p| async {
            bind_all!(sqlx::query(&sql), &params)
                .fetch_all(p)
                .await?
                .iter()
                .map(|r| r.try_get::<i64, _>("id"))
                .collect()
        }
        .await);
        r.map_err(|e| self.unavailable(e))
    }

    /// Discard the records `ids` that are still `failed` (status `discarded`, with who
    /// and why), audited in the same transaction; returns the ids discarded.
    pub async fn discard(
        &self,
        ids: &[i64],
        actor: &str,
        reason: &str,
        note: &str,
    ) -> Result<Vec<i64>, StoreError> {
        failpoint::check()?;
        let now = now_ms();
        let r: Result<Vec<i64>, sqlx::Error> = on_pool!(self, |p| {
            async {
            let mut conn = crate::store::WriteConn::acquire(p).await?;
            let mut tx = conn.begin().await?;
            let mut done = Vec::new();
            for id in ids {
                let n = sqlx::query(
                    "UPDATE failed_messages SET status = $1, settled_at = $2, discarded_by = $3, discard_reason = $4 WHERE id = $5 AND status = $6",
                )
                .bind(Status::Discarded.as_str())
                .bind(now)
                .bind(actor)
                .bind(reason)
                .bind(id)
                .bind(Status::Failed.as_str())
                .execute(&mut *tx)
                .await?;
                if n.rows_affected() == 1 {
                    done.push(*id);
                    sqlx::query(crate::tracking::TRACK_RECORD)
                        .bind(now)
                        .bind(lgsp_core::tracking::kind::DISCARDED)
                        .bind(format!("by {actor}, record {id}"))
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                }
            }
            if !done.is_empty() {
                let text = if note.is_empty() {
                    reason.to_owned()
                } else {
                    format!("{reason}; {note}")
                };
                append_audit!(tx, &NewAudit::new(actor, "discard", done.clone(), &text));
            }
            tx.commit().await?;
            conn.done();
            Ok(done)
        }
        .await
        });
        r.map_err(|e| self.unavailable(e))
    }

    /// Delete replayed and discarded records settled before `cutoff` (Unix ms), with
    /// their replay history; failed records are never purged. Audited as `purge` by
    /// `actor` when anything went. Returns how many records were deleted.
    pub async fn purge(&self, cutoff: i64, actor: &str) -> Result<u64, StoreError> {
        failpoint::check()?;
        let r: Result<u64, sqlx::Error> = on_pool!(self, |p| {
            async {
            let mut conn = crate::store::WriteConn::acquire(p).await?;
            let mut tx = conn.begin().await?;
            let deleted = sqlx::query(
                "DELETE FROM replays WHERE failed_id IN (SELECT id FROM failed_messages WHERE status IN ($1, $2) AND settled_at < $3)",
            )
            .bind(Status::Replayed.as_str())
            .bind(Status::Discarded.as_str())
            .bind(cutoff)
            .execute(&mut *tx)
            .await?;
            let _ = deleted;
            let gone = sqlx::query(
                "DELETE FROM failed_messages WHERE status IN ($1, $2) AND settled_at < $3 RETURNING id",
            )
            .bind(Status::Replayed.as_str())
            .bind(Status::Discarded.as_str())
            .bind(cutoff)
            .fetch_all(&mut *tx)
            .await?;
            let ids = gone
                .iter()
                .map(|r| r.try_get::<i64, _>("id"))
                .collect::<Result<Vec<_>, _>>()?;
            if !ids.is_empty() {
                let note = format!(
                    "retention: {} replayed or discarded records settled before {}",
                    ids.len(),
                    rfc3339(cutoff)
                );
                append_audit!(tx, &NewAudit::new(actor, "purge", ids.clone(), &note));
            }
            tx.commit().await?;
            conn.done();
            Ok(ids.len() as u64)
        }
        .await
        });
        r.map_err(|e| self.unavailable(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_keys_are_stable_and_tell_causes_apart() {
        let k = group_key(Some("demo"), "mapping", "mapping.required");
        assert_eq!(k, group_key(Some("demo"), "mapping", "mapping.required"));
        assert_eq!(k.len(), 13);
        assert_ne!(k, group_key(Some("demo"), "mapping", "mapping.date"));
        assert_ne!(k, group_key(None, "mapping", "mapping.required"));
        assert_ne!(
            group_key(Some("a"), "bc", "d"),
            group_key(Some("ab"), "c", "d")
        );
    }
}
