//! One failed message: list with filters and a cursor, show (masked for viewers),
//! replay (optionally edited) and discard.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use lgsp_store::Page;
use serde::Serialize;
use serde_json::json;

use super::api::{DiscardRequest, ListQuery, ReplayRequest, Selection};
use super::requests::request_approval;
use super::{
    Role, bad_request, caller, for_viewer, join_error, not_found, parse_body, parse_id,
    replay_error, store_error, to_filter,
};
use crate::{ApiCode, ApiError, ApiPath, ApiQuery, AppState};

pub(crate) async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    q: Result<ApiQuery<ListQuery>, ApiError>,
) -> Result<Json<Page>, ApiError> {
    let (admin, who) = caller(&state, &headers)?;
    let ApiQuery(q) = q.map_err(|e| {
        e.with_hint("known parameters: route, kind, code, text, from, to, status, cursor, limit")
    })?;
    let filter = to_filter(&Selection {
        group: None,
        route: q.route,
        kind: q.kind,
        code: q.code,
        text: q.text,
        from: q.from,
        to: q.to,
        status: q.status,
    })?;
    let cursor = q
        .cursor
        .as_deref()
        .map(|c| {
            c.parse::<i64>().map_err(|_| {
                bad_request(
                    format!("cursor: `{c}` is not a cursor"),
                    "pass the next_cursor of the previous page",
                )
            })
        })
        .transpose()?;
    let mut page = admin
        .store
        .list(&filter, cursor, q.limit.unwrap_or(50))
        .await
        .map_err(store_error)?;
    if who.role == Role::Viewer {
        page.items.iter_mut().for_each(for_viewer);
    }
    Ok(Json(page))
}

/// One record as `GET /admin/v1/failed/{id}` shows it.
#[derive(Debug, Serialize)]
pub struct Shown {
    #[serde(flatten)]
    summary: lgsp_store::Summary,
    /// Every value of the body is hidden (`***`), edits' diffs and receivers' answers
    /// left out: the viewer role sees a message's shape, not its data.
    masked: bool,
    format_version: i64,
    targets: Vec<String>,
    original_exchange: String,
    original_routing_key: String,
    source_queue: String,
    content_type: Option<String>,
    properties: serde_json::Value,
    headers: serde_json::Value,
    /// `text` (UTF-8) or `base64`.
    body_encoding: &'static str,
    body: String,
    stored_at: String,
    replays: Vec<lgsp_store::Replay>,
    /// Replays of every failure of this message on this route (edits included).
    history: Vec<lgsp_store::Replay>,
    #[serde(skip_serializing_if = "Option::is_none")]
    discarded_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    discard_reason: Option<String>,
}

pub(crate) async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Shown>, ApiError> {
    let (admin, who) = caller(&state, &headers)?;
    let id = parse_id(&id)?;
    let mut f = admin
        .store
        .get(id)
        .await
        .map_err(store_error)?
        .ok_or_else(|| not_found(id))?;
    let viewer = who.role == Role::Viewer;
    let (body_encoding, body) = if viewer {
        for r in f.replays.iter_mut().chain(f.history.iter_mut()) {
            r.diff = None;
        }
        if let Some(h) = f.headers.as_object_mut() {
            h.remove(lgsp_amqp::headers::ERROR);
        }
        for_viewer(&mut f.summary);
        let masked = lgsp_mapping::mask::mask_values(&f.body, f.content_type.as_deref())
            .unwrap_or_else(|| {
                format!(
                    "*** ({} bytes that do not parse, hidden from viewers)",
                    f.body.len()
                )
            });
        ("text", masked)
    } else {
        match String::from_utf8(f.body) {
            Ok(t) => ("text", t),
            Err(e) => ("base64", B64.encode(e.as_bytes())),
        }
    };
    Ok(Json(Shown {
        masked: viewer,
        summary: f.summary,
        format_version: f.format_version,
        targets: f.targets,
        original_exchange: f.original_exchange,
        original_routing_key: f.original_routing_key,
        source_queue: f.source_queue,
        content_type: f.content_type,
        properties: f.properties,
        headers: f.headers,
        body_encoding,
        body,
        stored_at: f.stored_at,
        replays: f.replays,
        history: f.history,
        discarded_by: f.discarded_by,
        discard_reason: f.discard_reason,
    }))
}

pub(crate) async fn replay(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
    raw: Bytes,
) -> Result<Response, ApiError> {
    let (admin, who) = caller(&state, &headers)?;
    who.operator("replaying")?;
    let id = parse_id(&id)?;
    let req: ReplayRequest = parse_body(
        &raw,
        "send {} for the original body, {\"body\": \"...\"} or {\"body_base64\": \"...\"} for an edited one",
    )?;
    let body = match (req.body, req.body_base64) {
        (Some(_), Some(_)) => {
            return Err(bad_request(
                "give body or body_base64, not both".into(),
                "body for text, body_base64 for bytes",
            ));
        }
        (Some(t), None) => Some(t.into_bytes()),
        (None, Some(b)) => Some(B64.decode(b.trim()).map_err(|e| {
            bad_request(format!("body_base64: {e}"), "standard base64 with padding")
        })?),
        (None, None) => None,
    };
    if admin.settings.require_approval {
        let action = if body.is_some() {
            "edit_replay"
        } else {
            "replay"
        };
        let mut payload = serde_json::json!({ "id": id });
        if let Some(b) = &body {
            payload["body_base64"] = B64.encode(b).into();
        }
        return request_approval(&admin, &who, action, payload, vec![id]).await;
    }
    let name = who.name.clone();
    // A task of its own: a client that disconnects does not cancel the replay between
    // the broker's confirm and the store's commit.
    let done =
        tokio::spawn(async move { admin.replayer.replay(&admin.store, id, body, &name).await })
            .await
            .map_err(join_error)?;
    match done {
        Ok(r) => Ok(Json(r).into_response()),
        Err(e) => Err(replay_error(e)),
    }
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
