//! Requests that a second operator approves (`replay.require_approval`): a replay, bulk
//! replay, edit or discard is stored as a request; another token name approves it, and
//! only then is it executed. The check that the approver is not the requester is part
//! of the claiming UPDATE itself, so no race lets a token approve its own request.

use serde::Serialize;
use sqlx::Row;

use crate::audit::NewAudit;
use crate::failpoint;
use crate::record::{now_ms, rfc3339};
use crate::store::{Store, StoreError, append_audit, on_pool};

/// A stored request.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Request {
    pub id: i64,
    pub created_at: String,
    pub requested_by: String,
    /// `replay`, `edit_replay`, `bulk_replay` or `discard`.
    pub action: String,
    /// What to do, as the API received it.
    pub payload: serde_json::Value,
    /// `pending`, `approved` (being executed), `executed` or `failed`.
    pub status: String,
    pub decided_by: Option<String>,
    pub decided_at: Option<String>,
    pub result: Option<serde_json::Value>,
}

/// Why a request cannot be approved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApproveError {
    #[error("no approval request with id {0}")]
    NotFound(i64),
    #[error("request {id} was made by {name}; a request must be approved by another operator")]
    SelfApproval { id: i64, name: String },
    #[error("request {id} is {status}, not pending")]
    NotPending { id: i64, status: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn request<R: Row>(r: &R) -> Result<Request, sqlx::Error>
where
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<i64>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<String>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    let parse = |s: &str| serde_json::from_str(s).unwrap_or(serde_json::Value::Null);
    Ok(Request {
        id: r.try_get("id")?,
        created_at: rfc3339(r.try_get("created_at")?),
        requested_by: r.try_get("requested_by")?,
        action: r.try_get("action")?,
        payload: parse(&r.try_get::<String, _>("payload")?),
        status: r.try_get("status")?,
        decided_by: r.try_get("decided_by")?,
        decided_at: r.try_get::<Option<i64>, _>("decided_at")?.map(rfc3339),
        result: r.try_get::<Option<String>, _>("result")?.map(|s| parse(&s)),
    })
}

impl Store {
    /// Store a pending request (audited as `request`); returns its id.
    pub async fn create_request(
        &self,
        actor: &str,
        action: &str,
        payload: &serde_json::Value,
        message_ids: Vec<i64>,
    ) -> Result<i64, StoreError> {
        failpoint::check()?;
        let r: Result<i64, sqlx::Error> = on_pool!(self, |p| {
            async {
            let mut conn = crate::store::WriteConn::acquire(p).await?;
            let mut tx = conn.begin().await?;
            let id: i64 = sqlx::query(
                "INSERT INTO approval_requests (created_at, requested_by, action, payload, status) VALUES ($1, $2, $3, $4, 'pending') RETURNING id",
            )
            .bind(now_ms())
            .bind(actor)
            .bind(action)
            .bind(payload.to_string())
            .fetch_one(&mut *tx)
            .await?
            .try_get("id")?;
            let note = format!("request {id}: {action} awaits another operator's approval");
            append_audit!(tx, &NewAudit::new(actor, "request", message_ids, &note));
            tx.commit().await?;
            conn.done();
            Ok(id)
        }
        .await
        });
        r.map_err(|e| self.unavailable(e))
    }

    /// One request.
    pub async fn get_request(&self, id: i64) -> Result<Option<Request>, StoreError> {
        failpoint::check()?;
        on_pool!(self, |p| async {
            match sqlx::query("SELECT * FROM approval_requests WHERE id = $1")
                .bind(id)
                .fetch_optional(p)
                .await?
            {
                Some(r) => request(&r).map(Some),
                None => Ok(None),
            }
        }
        .await)
        .map_err(|e| self.unavailable(e))
    }

    /// Requests, newest first; only those with `status` when given.
    pub async fn list_requests(&self, status: Option<&str>) -> Result<Vec<Request>, StoreError> {
        failpoint::check()?;
        on_pool!(self, |p| async {
            let rows = match status {
                Some(s) => sqlx::query(
                    "SELECT * FROM approval_requests WHERE status = $1 ORDER BY id DESC LIMIT 1000",
                )
                .bind(s)
                .fetch_all(p)
                .await?,
                None => {
                    sqlx::query("SELECT * FROM approval_requests ORDER BY id DESC LIMIT 1000")
                        .fetch_all(p)
                        .await?
                }
            };
            rows.iter().map(request).collect::<Result<Vec<_>, _>>()
        }
        .await)
        .map_err(|e| self.unavailable(e))
    }

    /// Approve request `id` as `approver`: pending and made by another name, it becomes
    /// `approved` (audited as `approve`) and is returned for execution; the caller then
    /// records the outcome with [`Store::finish_request`].
    pub async fn approve_request(&self, id: i64, approver: &str) -> Result<Request, ApproveError> {
        failpoint::check()?;
        let r: Result<bool, sqlx::Error> = on_pool!(self, |p| {
            async {
            let mut conn = crate::store::WriteConn::acquire(p).await?;
            let mut tx = conn.begin().await?;
            let claimed = sqlx::query(
                "UPDATE approval_requests SET status = 'approved', decided_by = $1, decided_at = $2 \
                 WHERE id = $3 AND status = 'pending' AND requested_by <> $1 RETURNING requested_by, action, payload",
            )
            .bind(approver)
            .bind(now_ms())
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(row) = claimed else {
                tx.rollback().await?;
                return Ok(false);
            };
            let by: String = row.try_get("requested_by")?;
            let action: String = row.try_get("action")?;
            let payload: String = row.try_get("payload")?;
            let ids = ids_of(&payload);
            let note = format!("request {id}: {action} by {by}, approved");
            append_audit!(tx, &NewAudit::new(approver, "approve", ids, &note));
            tx.commit().await?;
            conn.done();
            Ok(true)
        }
        .await
        });
        let claimed = r.map_err(|e| self.unavailable(e))?;
        let req = self
            .get_request(id)
            .await?
            .ok_or(ApproveError::NotFound(id))?;
        if claimed {
            return Ok(req);
        }
        if req.status == "pending" && req.requested_by == approver {
            return Err(ApproveError::SelfApproval {
                id,
                name: req.requested_by,
            });
        }
        Err(ApproveError::NotPending {
            id,
            status: req.status,
        })
    }

    /// Record how an approved request ended: `executed` or `failed`, with its result.
    pub async fn finish_request(
        &self,
        id: i64,
        ok: bool,
        result: &serde_json::Value,
    ) -> Result<(), StoreError> {
        failpoint::check()?;
        on_pool!(self, |p| sqlx::query(
            "UPDATE approval_requests SET status = $1, result = $2 WHERE id = $3"
        )
        .bind(if ok { "executed" } else { "failed" })
        .bind(result.to_string())
        .bind(id)
        .execute(p)
        .await
        .map(|_| ()))
        .map_err(|e| self.unavailable(e))
    }
}

/// The record ids a request payload names (`id` or `ids`).
fn ids_of(payload: &str) -> Vec<i64> {
    let v: serde_json::Value = serde_json::from_str(payload).unwrap_or_default();
    let mut out: Vec<i64> = v["ids"]
        .as_array()
        .map(|a| a.iter().filter_map(serde_json::Value::as_i64).collect())
        .unwrap_or_default();
    if let Some(id) = v["id"].as_i64() {
        out.push(id);
    }
    out
}
