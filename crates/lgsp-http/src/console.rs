//! The administrator's console over the store, beside [`crate::admin`]: groups of
//! failures by cause, bulk replay batch by batch, discard, approval requests and the
//! audit log.
//!
//! Every action that changes something runs in a task of its own (axum drops a
//! handler's future when its client disconnects; a batch must not stop between the
//! broker's confirms and the store's commit). With `replay.require_approval`, replay,
//! bulk replay, edit and discard answer 202 with a request id; another operator's
//! `approve` executes the request.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use lgsp_store::approval::{ApproveError, Request};
use lgsp_store::audit::NewAudit;
use lgsp_store::record::Filter;
use serde::Deserialize;
use serde_json::{Value, json};
use tracing::error;

use crate::admin::{
    Admin, Caller, Selection, bad_request, caller, not_found, parse_body, parse_id, replay_error,
    store_error, to_filter,
};
use crate::{ApiCode, ApiError, ApiPath, ApiQuery, AppState};

pub(crate) fn join_error(e: tokio::task::JoinError) -> ApiError {
    error!(error = %e, "admin API: a task failed");
    ApiError::new(ApiCode::Internal, "the action stopped unexpectedly")
        .with_hint("see the lgsp log; check the record's status before trying again")
}

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

/// `GET /admin/v1/groups`: the list's filters; status defaults to `failed`.
pub(crate) async fn groups(
    State(state): State<AppState>,
    headers: HeaderMap,
    q: Result<ApiQuery<Selection>, ApiError>,
) -> Result<Response, ApiError> {
    let (admin, who) = caller(&state, &headers)?;
    let ApiQuery(q) =
        q.map_err(|e| e.with_hint("known parameters: route, kind, code, text, from, to, status"))?;
    let filter = to_filter(&q)?;
    let mut groups = admin.store.groups(&filter).await.map_err(store_error)?;
    if who.role == crate::admin::Role::Viewer {
        for g in &mut groups {
            if let Some(e) = crate::admin::viewer_error(&g.error_code) {
                g.sample_error = e;
            }
        }
    }
    Ok(Json(groups).into_response())
}

/// Body of `POST /admin/v1/bulk-replay`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BulkRequest {
    group: Option<String>,
    route: Option<String>,
    kind: Option<lgsp_core::failure::FailureKind>,
    code: Option<String>,
    text: Option<String>,
    from: Option<String>,
    to: Option<String>,
    /// Records per batch (1..=1000); default `replay.batch_size`.
    batch_size: Option<u32>,
    /// Messages per second; default `replay.rate`.
    rate: Option<u32>,
}

/// Resolve a selection to the filter of records still `failed`.
async fn resolve(admin: &Admin, s: &Selection) -> Result<Filter, ApiError> {
    if let Some(key) = &s.group {
        let f = admin
            .store
            .group_filter(key)
            .await
            .map_err(store_error)?
            .ok_or_else(|| {
                ApiError::new(
                    ApiCode::NotFound,
                    format!("no failed messages in group `{key}`"),
                )
                .with_hint("`lgsp failed groups` shows the groups still to replay")
            })?;
        return Ok(f);
    }
    let f = to_filter(s)?;
    if f.route.is_none()
        && f.kind.is_none()
        && f.code.is_none()
        && f.text.is_none()
        && f.from.is_none()
        && f.to.is_none()
    {
        return Err(bad_request(
            "give a group or at least one filter (route, kind, code, text, from, to)".into(),
            "`lgsp failed groups` shows the groups; replay one with --group KEY",
        ));
    }
    Ok(f)
}

/// `POST /admin/v1/bulk-replay`: replay ONE batch of the selection (the client calls
/// again until `remaining` is 0), or, with approval on, store the whole bulk replay as
/// a request.
pub(crate) async fn bulk_replay(
    State(state): State<AppState>,
    headers: HeaderMap,
    raw: Bytes,
) -> Result<Response, ApiError> {
    let (admin, who) = caller(&state, &headers)?;
    who.operator("replaying")?;
    let req: BulkRequest = parse_body(
        &raw,
        "send {\"group\": KEY} or filters (route, kind, code, text, from, to), optionally batch_size and rate",
    )?;
    let selection = Selection {
        group: req.group,
        route: req.route,
        kind: req.kind,
        code: req.code,
        text: req.text,
        from: req.from,
        to: req.to,
        status: None,
    };
    let filter = resolve(&admin, &selection).await?;
    let batch_size = req.batch_size.unwrap_or(admin.settings.batch_size);
    if !(1..=1000).contains(&batch_size) {
        return Err(bad_request(
            format!("batch_size: {batch_size} is out of range"),
            "between 1 and 1000",
        ));
    }
    let rate = req.rate.unwrap_or(admin.settings.rate).max(1);
    if admin.settings.require_approval {
        let ids = admin
            .store
            .failed_ids(&filter, None)
            .await
            .map_err(store_error)?;
        let payload = json!({
            "selection": selection,
            "batch_size": batch_size,
            "rate": rate,
            "count": ids.len(),
        });
        return request_approval(&admin, &who, "bulk_replay", payload, ids).await;
    }
    let note = selection_note(&selection);
    let batch = tokio::spawn(async move {
        admin
            .replayer
            .replay_batch(&admin.store, &filter, batch_size, rate, &who.name, &note)
            .await
    })
    .await
    .map_err(join_error)?
    .map_err(replay_error)?;
    Ok(Json(batch).into_response())
}

fn selection_note(s: &Selection) -> String {
    format!(
        "bulk replay of {}",
        serde_json::to_string(s).unwrap_or_default()
    )
}

/// Body of `POST /admin/v1/failed/{id}/discard`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscardRequest {
    reason: Option<String>,
}

/// `POST /admin/v1/failed/{id}/discard` with a mandatory reason.
pub(crate) async fn discard(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
    raw: Bytes,
) -> Result<Response, ApiError> {
    let (admin, who) = caller(&state, &headers)?;
    who.operator("discarding")?;
    let id = parse_id(&id)?;
    let req: DiscardRequest = parse_body(&raw, "send {\"reason\": \"why\"}")?;
    let reason = req
        .reason
        .map(|r| r.trim().to_owned())
        .filter(|r| !r.is_empty())
        .ok_or_else(|| {
            ApiError::new(ApiCode::ReasonRequired, "a discard needs a reason").with_hint(
                "say why the message is dropped: `lgsp failed discard ID --reason \"...\"`",
            )
        })?;
    let rec = admin
        .store
        .get(id)
        .await
        .map_err(store_error)?
        .ok_or_else(|| not_found(id))?;
    if rec.summary.status != lgsp_store::Status::Failed {
        return Err(ApiError::new(
            ApiCode::NotDiscardable,
            format!(
                "failed message {id} is {}; only failed messages are discarded",
                rec.summary.status.as_str()
            ),
        )
        .with_hint("list what is still failed with `lgsp failed list --status failed`"));
    }
    if admin.settings.require_approval {
        let payload = json!({ "ids": [id], "reason": reason });
        return request_approval(&admin, &who, "discard", payload, vec![id]).await;
    }
    let done =
        tokio::spawn(async move { admin.store.discard(&[id], &who.name, &reason, "").await })
            .await
            .map_err(join_error)?
            .map_err(store_error)?;
    Ok(Json(json!({ "discarded": done, "status": "discarded" })).into_response())
}

/// Query of `GET /admin/v1/requests`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestsQuery {
    status: Option<String>,
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

/// Query of `GET /admin/v1/audit`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    after: Option<i64>,
    limit: Option<u32>,
}

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

/// Query of `GET /admin/v1/audit/verify`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyQuery {
    head: Option<String>,
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

/// Body of `POST /admin/v1/audit/notes`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoteRequest {
    note: Option<String>,
    #[serde(default)]
    ids: Vec<i64>,
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
