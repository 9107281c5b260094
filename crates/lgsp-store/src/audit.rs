//! The audit log: every admin action (who — the token's name —, what, which records,
//! when, a note), append-only and hash-chained. Entry `n` stores the hash of entry
//! `n - 1`; its own hash is SHA-256 over a canonical encoding of its fields and that
//! previous hash, so altering, removing or reordering a row breaks the chain from there.
//! Removing the last entries leaves a valid shorter chain: that is caught by comparing
//! with the head kept in the store (`audit_head`) and with a head saved elsewhere
//! (`lgsp failed audit --head`).

use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::failpoint;
use crate::record::rfc3339;
use crate::store::{Store, StoreError, append_audit, on_pool};

/// The `prev_hash` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// An entry to append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAudit {
    pub actor: String,
    pub action: String,
    /// Ids of the failed-message records concerned (may be empty).
    pub message_ids: Vec<i64>,
    pub note: String,
}

impl NewAudit {
    pub fn new(actor: &str, action: &str, message_ids: Vec<i64>, note: &str) -> NewAudit {
        NewAudit {
            actor: actor.to_owned(),
            action: action.to_owned(),
            message_ids,
            note: note.to_owned(),
        }
    }

    /// The ids as stored (and hashed): a JSON array.
    pub fn ids_json(&self) -> String {
        serde_json::Value::from(self.message_ids.clone()).to_string()
    }
}

/// A stored entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    pub seq: i64,
    /// RFC 3339, UTC.
    pub at: String,
    #[serde(skip)]
    pub at_ms: i64,
    pub actor: String,
    pub action: String,
    pub message_ids: serde_json::Value,
    pub note: String,
    pub prev_hash: String,
    pub hash: String,
    #[serde(skip)]
    ids_text: String,
}

/// The hash of an entry: SHA-256, in hex, of the JSON array
/// `["lgsp-audit/1", seq, at, actor, action, message_ids, note, prev_hash]` where
/// `message_ids` is the stored text. A JSON array of strings and integers has one
/// encoding, so the same fields always give the same hash and no two field lists
/// encode alike.
pub fn entry_hash(
    seq: i64,
    at: i64,
    actor: &str,
    action: &str,
    message_ids: &str,
    note: &str,
    prev_hash: &str,
) -> String {
    let canonical = serde_json::json!([
        "lgsp-audit/1",
        seq,
        at,
        actor,
        action,
        message_ids,
        note,
        prev_hash
    ])
    .to_string();
    Sha256::digest(canonical.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The head of the chain: its last entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Head {
    pub seq: i64,
    pub hash: String,
}

/// The first entry that breaks the chain, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BadEntry {
    /// The sequence number of the entry (for a missing saved head: the head's).
    pub seq: i64,
    pub problem: String,
}

/// What verification found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verified {
    pub ok: bool,
    pub entries: i64,
    pub head: Head,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_bad: Option<BadEntry>,
}

/// Check `entries` (in seq order, a continuation after `prev`) and report the first bad one.
fn check_run(entries: &[AuditEntry], prev: &mut Head) -> Option<BadEntry> {
    for e in entries {
        let bad = |problem: String| {
            Some(BadEntry {
                seq: e.seq,
                problem,
            })
        };
        if e.seq != prev.seq + 1 {
            return bad(format!(
                "audit entry {} follows entry {}: entries {}..{} are missing",
                e.seq,
                prev.seq,
                prev.seq + 1,
                e.seq - 1
            ));
        }
        if e.prev_hash != prev.hash {
            return bad(format!(
                "audit entry {}: its prev_hash does not match the hash of entry {}",
                e.seq, prev.seq
            ));
        }
        let h = entry_hash(
            e.seq,
            e.at_ms,
            &e.actor,
            &e.action,
            &e.ids_text,
            &e.note,
            &e.prev_hash,
        );
        if h != e.hash {
            return bad(format!(
                "audit entry {}: its content does not match its hash (the row was altered)",
                e.seq
            ));
        }
        *prev = Head {
            seq: e.seq,
            hash: e.hash.clone(),
        };
    }
    None
}

fn entry<R: Row>(r: &R) -> Result<AuditEntry, sqlx::Error>
where
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    let ids_text: String = r.try_get("message_ids")?;
    let at_ms: i64 = r.try_get("at")?;
    Ok(AuditEntry {
        seq: r.try_get("seq")?,
        at: rfc3339(at_ms),
        at_ms,
        actor: r.try_get("actor")?,
        action: r.try_get("action")?,
        message_ids: serde_json::from_str(&ids_text).unwrap_or(serde_json::Value::Null),
        note: r.try_get("note")?,
        prev_hash: r.try_get("prev_hash")?,
        hash: r.try_get("hash")?,
        ids_text,
    })
}

impl Store {
    /// Append one entry; returns its sequence number.
    pub async fn audit(&self, entry: &NewAudit) -> Result<i64, StoreError> {
        failpoint::check()?;
        let r: Result<i64, sqlx::Error> = on_pool!(self, |p| async {
            let mut conn = crate::store::WriteConn::acquire(p).await?;
            let mut tx = conn.begin().await?;
            let seq = append_audit!(tx, entry);
            tx.commit().await?;
            conn.done();
            Ok(seq)
        }
        .await);
        r.map_err(|e| self.unavailable(e))
    }

    /// Entries after `after` (a seq), oldest first, at most `limit`.
    pub async fn audit_entries(
        &self,
        after: i64,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        failpoint::check()?;
        let limit = i64::from(limit.clamp(1, 10_000));
        on_pool!(self, |p| async {
            sqlx::query("SELECT * FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2")
                .bind(after)
                .bind(limit)
                .fetch_all(p)
                .await?
                .iter()
                .map(entry)
                .collect::<Result<Vec<_>, sqlx::Error>>()
        }
        .await)
        .map_err(|e| self.unavailable(e))
    }

    /// The last entry's seq and hash (seq 0 and [`GENESIS`] for an empty log), as the
    /// entries say (not the head row, which [`Store::audit_verify`] checks against).
    pub async fn audit_head(&self) -> Result<Head, StoreError> {
        failpoint::check()?;
        on_pool!(self, |p| async {
            match sqlx::query("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
                .fetch_optional(p)
                .await?
            {
                Some(r) => Ok(Head {
                    seq: r.try_get("seq")?,
                    hash: r.try_get("hash")?,
                }),
                None => Ok(Head {
                    seq: 0,
                    hash: GENESIS.into(),
                }),
            }
        }
        .await)
        .map_err(|e| self.unavailable(e))
    }

    /// Walk the whole chain; report the first bad entry. The store's head row must
    /// match the last entry; `saved_head` (a hash exported earlier) must be the hash of
    /// an entry still in the chain — otherwise entries at its end were removed.
    pub async fn audit_verify(&self, saved_head: Option<&str>) -> Result<Verified, StoreError> {
        let mut prev = Head {
            seq: 0,
            hash: GENESIS.into(),
        };
        let mut entries = 0i64;
        let mut saved_found = saved_head.is_none_or(|h| h == GENESIS);
        loop {
            let page = self.audit_entries(prev.seq, 1000).await?;
            if page.is_empty() {
                break;
            }
            if let Some(bad) = check_run(&page, &mut prev) {
                return Ok(Verified {
                    ok: false,
                    entries,
                    head: prev,
                    first_bad: Some(bad),
                });
            }
            entries += page.len() as i64;
            if let Some(h) = saved_head
                && page.iter().any(|e| e.hash.eq_ignore_ascii_case(h.trim()))
            {
                saved_found = true;
            }
        }
        let stored: Result<Head, sqlx::Error> = on_pool!(self, |p| async {
            let r = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1")
                .fetch_one(p)
                .await?;
            Ok(Head {
                seq: r.try_get("seq")?,
                hash: r.try_get("hash")?,
            })
        }
        .await);
        let stored = stored.map_err(|e| self.unavailable(e))?;
        let mut first_bad = None;
        if stored != prev {
            first_bad = Some(BadEntry {
                seq: prev.seq + 1,
                problem: format!(
                    "the chain ends at entry {} but the store's head says entry {} (hash {}): entries after {} were removed",
                    prev.seq, stored.seq, stored.hash, prev.seq
                ),
            });
        } else if !saved_found {
            first_bad = Some(BadEntry {
                seq: prev.seq + 1,
                problem: format!(
                    "the saved head {} is not in the chain (it ends at entry {} with hash {}): entries were removed from its end",
                    saved_head.unwrap_or_default(),
                    prev.seq,
                    prev.hash
                ),
            });
        }
        Ok(Verified {
            ok: first_bad.is_none(),
            entries,
            head: prev,
            first_bad,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_covers_every_field_and_the_previous_hash() {
        let base = entry_hash(1, 10, "lan", "replay", "[1]", "n", GENESIS);
        assert_eq!(base.len(), 64);
        for other in [
            entry_hash(2, 10, "lan", "replay", "[1]", "n", GENESIS),
            entry_hash(1, 11, "lan", "replay", "[1]", "n", GENESIS),
            entry_hash(1, 10, "lam", "replay", "[1]", "n", GENESIS),
            entry_hash(1, 10, "lan", "discard", "[1]", "n", GENESIS),
            entry_hash(1, 10, "lan", "replay", "[2]", "n", GENESIS),
            entry_hash(1, 10, "lan", "replay", "[1]", "m", GENESIS),
            entry_hash(1, 10, "lan", "replay", "[1]", "n", &base),
            // Moving text between fields changes the hash too.
            entry_hash(1, 10, "lanreplay", "", "[1]", "n", GENESIS),
        ] {
            assert_ne!(other, base);
        }
    }
}
