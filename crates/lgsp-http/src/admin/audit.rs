//! The audit log: entries, its head, verification of the chain, and operators' notes.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use lgsp_store::audit::NewAudit;
use serde_json::json;

use super::api::{AuditQuery, NoteRequest, VerifyQuery};
use super::{bad_request, caller, join_error, parse_body, store_error};
use crate::{ApiError, ApiQuery, AppState};

/// `GET /admin/v1/audit`: entries after a seq, oldest first.
pub(crate) async fn audit(
    State(state): State<AppState>,
    headers: HeaderMap,
    q: Result<ApiQuery<AuditQuery>, ApiError>,
) -> Result<Response, ApiError> {
    let (admin, _) = caller(&state, &headers)?;
    let ApiQuery(q) = q.map_err(|e| e.with_hint("known parameters: after, limit"))?;
    let entries = admin
        .store
        .audit_entries(q.after.unwrap_or(0), q.limit.unwrap_or(1000))
        .await
        .map_err(store_error)?;
    Ok(Json(entries).into_response())
}

/// `GET /admin/v1/audit/head`: the last entry's seq and hash, to be saved elsewhere.
pub(crate) async fn audit_head(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (admin, _) = caller(&state, &headers)?;
    let head = admin.store.audit_head().await.map_err(store_error)?;
    Ok(Json(head).into_response())
}

/// `GET /admin/v1/audit/verify[?head=HASH]`: 200 with `ok` true or false and the
/// first bad entry.
pub(crate) async fn audit_verify(
    State(state): State<AppState>,
    headers: HeaderMap,
    q: Result<ApiQuery<VerifyQuery>, ApiError>,
) -> Result<Response, ApiError> {
    let (admin, _) = caller(&state, &headers)?;
    let ApiQuery(q) = q.map_err(|e| e.with_hint("known parameter: head"))?;
    if let Some(h) = &q.head
        && !(h.trim().len() == 64 && h.trim().bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return Err(bad_request(
            format!("head: `{h}` is not a SHA-256 in hex"),
            "pass the hash `lgsp failed audit --head` printed",
        ));
    }
    let v = admin
        .store
        .audit_verify(q.head.as_deref())
        .await
        .map_err(store_error)?;
    Ok(Json(v).into_response())
}

/// `POST /admin/v1/audit/notes`: an operator's note in the log (e.g. "investigating
/// ticket 123" about some records).
pub(crate) async fn note(
    State(state): State<AppState>,
    headers: HeaderMap,
    raw: Bytes,
) -> Result<Response, ApiError> {
    let (admin, who) = caller(&state, &headers)?;
    who.operator("writing to the audit log")?;
    let req: NoteRequest = parse_body(&raw, "send {\"note\": \"...\", \"ids\": [1, 2]}")?;
    let note = req
        .note
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| bad_request("a note needs text".into(), "send {\"note\": \"...\"}"))?;
    let entry = NewAudit::new(&who.name, "note", req.ids, &note);
    let seq = tokio::spawn(async move { admin.store.audit(&entry).await })
        .await
        .map_err(join_error)?
        .map_err(store_error)?;
    Ok(Json(json!({ "seq": seq })).into_response())
}
