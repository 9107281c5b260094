//! Approval requests: with `replay.require_approval`, replay, bulk replay, edit and
//! discard answer 202 with a request id; another operator's `approve` executes it.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use lgsp_store::approval::{ApproveError, Request};
use serde_json::{Value, json};
use tracing::error;

use super::api::{RequestsQuery, Selection};
use super::groups::{resolve, selection_note};
use super::{Admin, Caller, caller, join_error, replay_error, store_error};
use crate::{ApiCode, ApiError, ApiPath, ApiQuery, AppState};

/// Store a request for approval and answer 202 with its id.
pub(crate) async fn request_approval(
    admin: &Arc<Admin>,
    who: &Caller,
    action: &str,
    payload: Value,
    ids: Vec<i64>,
) -> Result<Response, ApiError> {
    let id = admin
        .store
        .create_request(&who.name, action, &payload, ids)
        .await
        .map_err(store_error)?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({
            "request_id": id,
            "status": "pending",
            "action": action,
            "requested_by": who.name,
            "hint": format!("another operator approves it with `lgsp failed approve {id}`"),
        })),
    )
        .into_response())
}

/// `GET /admin/v1/requests`: newest first.
pub(crate) async fn requests(
    State(state): State<AppState>,
    headers: HeaderMap,
    q: Result<ApiQuery<RequestsQuery>, ApiError>,
) -> Result<Json<Vec<Request>>, ApiError> {
    let (admin, _) = caller(&state, &headers)?;
    let ApiQuery(q) = q.map_err(|e| e.with_hint("known parameter: status"))?;
    let list = admin
        .store
        .list_requests(q.status.as_deref())
        .await
        .map_err(store_error)?;
    Ok(Json(list))
}

/// `POST /admin/v1/requests/{id}/approve`: another operator approves; the request is
/// executed at once, in the requester's name, and its outcome stored with it.
pub(crate) async fn approve(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    let (admin, who) = caller(&state, &headers)?;
    who.operator("approving")?;
    let id: i64 = id.parse().map_err(|_| {
        ApiError::new(
            ApiCode::NotFound,
            format!("no approval request with id `{id}`"),
        )
        .with_hint("`lgsp failed requests` lists them")
    })?;
    let approver = who.name.clone();
    let outcome = tokio::spawn(async move {
        let req = match admin.store.approve_request(id, &approver).await {
            Ok(r) => r,
            Err(e) => return Err(approve_error(e)),
        };
        let result = execute(&admin, &req, &approver).await;
        let (ok, value) = match &result {
            Ok(v) => (true, v.clone()),
            Err(e) => (false, json!({ "code": e.code, "message": e.message })),
        };
        if let Err(e) = admin.store.finish_request(id, ok, &value).await {
            error!(error = %e, request = id, "cannot record the outcome of an approved request");
        }
        let req = admin.store.get_request(id).await.ok().flatten();
        result.map(|v| json!({ "request": req, "result": v }))
    })
    .await
    .map_err(join_error)??;
    Ok(Json(outcome).into_response())
}

fn approve_error(e: ApproveError) -> ApiError {
    match e {
        ApproveError::NotFound(id) => ApiError::new(
            ApiCode::NotFound,
            format!("no approval request with id {id}"),
        )
        .with_hint("`lgsp failed requests` lists them"),
        e @ ApproveError::SelfApproval { .. } => {
            ApiError::new(ApiCode::SelfApproval, e.to_string())
                .with_hint("ask another operator (a token with another name) to approve it")
        }
        e @ ApproveError::NotPending { .. } => ApiError::new(ApiCode::NotPending, e.to_string())
            .with_hint("`lgsp failed requests --json` shows its outcome"),
        ApproveError::Store(s) => store_error(s),
        other => ApiError::new(ApiCode::Internal, other.to_string()),
    }
}

/// Execute an approved request in its requester's name.
async fn execute(admin: &Arc<Admin>, req: &Request, approver: &str) -> Result<Value, ApiError> {
    let p = &req.payload;
    let note = format!("request {} approved by {approver}", req.id);
    let bad = || {
        ApiError::new(
            ApiCode::Internal,
            format!("request {} cannot be read", req.id),
        )
    };
    match req.action.as_str() {
        "replay" | "edit_replay" => {
            let id = p["id"].as_i64().ok_or_else(bad)?;
            let body = match p["body_base64"].as_str() {
                Some(b) => Some(B64.decode(b).map_err(|_| bad())?),
                None => None,
            };
            let r = admin
                .replayer
                .replay_noted(&admin.store, id, body, &req.requested_by, &note)
                .await
                .map_err(replay_error)?;
            Ok(serde_json::to_value(r).unwrap_or_default())
        }
        "discard" => {
            let ids: Vec<i64> = p["ids"]
                .as_array()
                .ok_or_else(bad)?
                .iter()
                .filter_map(Value::as_i64)
                .collect();
            let reason = p["reason"].as_str().ok_or_else(bad)?;
            let done = admin
                .store
                .discard(&ids, &req.requested_by, reason, &note)
                .await
                .map_err(store_error)?;
            Ok(json!({ "discarded": done }))
        }
        "bulk_replay" => {
            let selection: Selection =
                serde_json::from_value(p["selection"].clone()).map_err(|_| bad())?;
            let filter = resolve(admin, &selection).await?;
            let batch_size = p["batch_size"].as_u64().unwrap_or(100).clamp(1, 1000) as u32;
            let rate = p["rate"]
                .as_u64()
                .unwrap_or(200)
                .clamp(1, u64::from(u32::MAX)) as u32;
            let note = format!("{}; {note}", selection_note(&selection));
            let (mut replayed, mut refused) = (0usize, Vec::new());
            loop {
                let b = admin
                    .replayer
                    .replay_batch(
                        &admin.store,
                        &filter,
                        batch_size,
                        rate,
                        &req.requested_by,
                        &note,
                    )
                    .await
                    .map_err(replay_error)?;
                replayed += b.replayed.len();
                refused.extend(b.refused);
                if b.remaining == 0 || b.replayed.is_empty() {
                    return Ok(
                        json!({ "replayed": replayed, "refused": refused, "remaining": b.remaining }),
                    );
                }
            }
        }
        other => Err(ApiError::new(
            ApiCode::Internal,
            format!("request {} has an unknown action `{other}`", req.id),
        )),
    }
}
