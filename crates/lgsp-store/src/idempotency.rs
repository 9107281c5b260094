//! Idempotency keys of the HTTP gateway, kept in the store so that a repeat is caught
//! across restarts and replicas. The first request of an (application, key) pair claims
//! it with its message id; a repeat within the window gets that id back (once the broker
//! confirmed it) and publishes nothing.

use sqlx::Row;

use crate::failpoint;
use crate::record::now_ms;
use crate::store::{Store, StoreError, on_pool};

/// What a claim found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The key is this request's now: publish, then [`Store::confirm_idempotency`] (or
    /// [`Store::release_idempotency`] when the publish failed).
    New,
    /// An earlier request holds the key.
    Taken {
        message_id: String,
        /// The broker confirmed that message (else it is still being published).
        confirmed: bool,
        /// The earlier request had the same body.
        same_body: bool,
    },
}

impl Store {
    /// Claim `key` of `app` for `message_id` unless a claim younger than `window_ms`
    /// holds it (an older one is dropped first).
    pub async fn claim_idempotency(
        &self,
        app: &str,
        key: &str,
        message_id: &str,
        body_sha256: &str,
        window_ms: i64,
    ) -> Result<Claim, StoreError> {
        failpoint::check()?;
        let now = now_ms();
        let expired = now.saturating_sub(window_ms);
        on_pool!(self, |p| async {
            sqlx::query(
                "DELETE FROM idempotency_keys WHERE app = $1 AND key = $2 AND created_at < $3",
            )
            .bind(app)
            .bind(key)
            .bind(expired)
            .execute(p)
            .await?;
            let inserted = sqlx::query(
                "INSERT INTO idempotency_keys (app, key, message_id, body_sha256, created_at, confirmed) VALUES ($1, $2, $3, $4, $5, 0) ON CONFLICT (app, key) DO NOTHING",
            )
            .bind(app)
            .bind(key)
            .bind(message_id)
            .bind(body_sha256)
            .bind(now)
            .execute(p)
            .await?
            .rows_affected();
            if inserted == 1 {
                return Ok(Claim::New);
            }
            let row = sqlx::query(
                "SELECT message_id, body_sha256, confirmed FROM idempotency_keys WHERE app = $1 AND key = $2",
            )
            .bind(app)
            .bind(key)
            .fetch_optional(p)
            .await?;
            match row {
                // Released between the insert and the select: the caller claims again.
                None => Ok(Claim::Taken {
                    message_id: String::new(),
                    confirmed: false,
                    same_body: true,
                }),
                Some(r) => {
                    let confirmed: i64 = r.try_get("confirmed")?;
                    let hash: String = r.try_get("body_sha256")?;
                    Ok(Claim::Taken {
                        message_id: r.try_get("message_id")?,
                        confirmed: confirmed != 0,
                        same_body: hash == body_sha256,
                    })
                }
            }
        }
        .await)
        .map_err(|e: sqlx::Error| self.unavailable(e))
    }

    /// The broker confirmed the message of this claim.
    pub async fn confirm_idempotency(
        &self,
        app: &str,
        key: &str,
        message_id: &str,
    ) -> Result<(), StoreError> {
        self.idempotency_update(
            "UPDATE idempotency_keys SET confirmed = 1 WHERE app = $1 AND key = $2 AND message_id = $3",
            app,
            key,
            message_id,
        )
        .await
    }

    /// The publish of this claim failed: free the key for a retry.
    pub async fn release_idempotency(
        &self,
        app: &str,
        key: &str,
        message_id: &str,
    ) -> Result<(), StoreError> {
        self.idempotency_update(
            "DELETE FROM idempotency_keys WHERE app = $1 AND key = $2 AND message_id = $3",
            app,
            key,
            message_id,
        )
        .await
    }

    async fn idempotency_update(
        &self,
        sql: &'static str,
        app: &str,
        key: &str,
        message_id: &str,
    ) -> Result<(), StoreError> {
        failpoint::check()?;
        on_pool!(self, |p| sqlx::query(sql)
            .bind(app)
            .bind(key)
            .bind(message_id)
            .execute(p)
            .await
            .map(|_| ()))
        .map_err(|e| self.unavailable(e))
    }

    /// Drop the claims older than `cutoff` (Unix ms); how many.
    pub async fn purge_idempotency(&self, cutoff: i64) -> Result<u64, StoreError> {
        failpoint::check()?;
        on_pool!(self, |p| sqlx::query(
            "DELETE FROM idempotency_keys WHERE created_at < $1"
        )
        .bind(cutoff)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))
        .map_err(|e| self.unavailable(e))
    }
}
