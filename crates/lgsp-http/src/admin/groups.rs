//! Failures grouped by cause, and bulk replay of a group or a filter, one batch per
//! request.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use lgsp_store::record::Filter;
use serde_json::json;

use super::api::{BulkRequest, Selection};
use super::requests::request_approval;
use super::{
    Admin, bad_request, caller, join_error, parse_body, replay_error, store_error, to_filter,
};
use crate::{ApiCode, ApiError, ApiQuery, AppState};

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

/// Resolve a selection to the filter of records still `failed`.
pub(crate) async fn resolve(admin: &Admin, s: &Selection) -> Result<Filter, ApiError> {
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

pub(crate) fn selection_note(s: &Selection) -> String {
    format!(
        "bulk replay of {}",
        serde_json::to_string(s).unwrap_or_default()
    )
}
