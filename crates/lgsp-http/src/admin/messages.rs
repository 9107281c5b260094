//! The story of one message: its tracking events and its failure records.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use serde::Serialize;

use super::{Role, bad_request, caller, for_viewer, store_error};
use crate::{ApiCode, ApiError, ApiPath, AppState};

/// The story of one message (`GET /admin/v1/messages/{message_id}`).
#[derive(Debug, Serialize)]
pub struct Story {
    pub message_id: String,
    /// What happened to it, in order of time (metadata only, no bodies).
    pub events: Vec<lgsp_store::tracking::Tracked>,
    /// Its failure records, oldest first.
    pub failures: Vec<lgsp_store::Summary>,
}

pub(crate) async fn message(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiPath(message_id): ApiPath<String>,
) -> Result<Json<Story>, ApiError> {
    let (admin, who) = caller(&state, &headers)?;
    if message_id.is_empty() || message_id.len() > 255 {
        return Err(bad_request(
            "a message id is 1 to 255 characters".into(),
            "pass the message id an application published (AMQP message-id, or the gateway's answer)",
        ));
    }
    let events = admin
        .store
        .events_of(&message_id)
        .await
        .map_err(store_error)?;
    let mut failures = admin
        .store
        .failures_of(&message_id)
        .await
        .map_err(store_error)?;
    if who.role == Role::Viewer {
        failures.iter_mut().for_each(for_viewer);
    }
    if events.is_empty() && failures.is_empty() {
        return Err(ApiError::new(ApiCode::NotFound, format!("nothing is known of message {message_id}")).with_hint("check the id; tracking keeps events for tracking.retention (7 days by default), and only when tracking.enabled"));
    }
    Ok(Json(Story {
        message_id,
        events,
        failures,
    }))
}
