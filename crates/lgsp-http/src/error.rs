//! Every error the HTTP side answers: one table of codes ([`ApiCode`], each with its HTTP
//! status and a default hint), one [`ApiError`] with the body of `docs/contracts.md`
//! (`{code, message, hint}`), and the extractors whose rejections come back in that same
//! body ([`ApiQuery`], [`ApiPath`]) instead of axum's plain text.

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRequestParts, Path, Query};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

macro_rules! codes {
    ($($variant:ident = $code:literal, $status:literal, $hint:literal;)*) => {
        /// The stable code of an API error: what a client may match on.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum ApiCode {
            $($variant,)*
        }

        impl ApiCode {
            /// Every code, in the order of the table.
            pub const ALL: &'static [ApiCode] = &[$(ApiCode::$variant,)*];

            /// The code as clients see it.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(ApiCode::$variant => $code,)*
                }
            }

            /// The HTTP status it is answered with.
            pub const fn status(self) -> u16 {
                match self {
                    $(ApiCode::$variant => $status,)*
                }
            }

            /// What to do about it, when the place it is raised knows nothing better.
            pub const fn hint(self) -> &'static str {
                match self {
                    $(ApiCode::$variant => $hint,)*
                }
            }
        }
    };
}

codes! {
    BadRequest = "bad_request", 400, "check the request's parameters against the admin API's description";
    BadBody = "bad_body", 400, "send the whole request again";
    BadHeader = "bad_header", 400, "send a short printable value, e.g. a UUID";
    BadRoutingKey = "bad_routing_key", 400, "use dot-separated words without `*`, `#` or blanks, e.g. bizreg.enterprise.registered";
    ContentTypeMismatch = "content_type_mismatch", 400, "send the Content-Type of the body's format (application/xml or application/json); nothing was published";
    NotWellFormed = "not_well_formed", 400, "fix the document; nothing was published";
    ReasonRequired = "reason_required", 400, "say why, for the audit log";
    Unauthorized = "unauthorized", 401, "send `Authorization: Bearer TOKEN`";
    Forbidden = "forbidden", 403, "ask someone whose token or key has that right";
    SelfApproval = "self_approval", 403, "another operator approves it";
    NotFound = "not_found", 404, "check the path and the id";
    NoRoute = "no_route", 404, "check the routing key against the bus's routes (lgsp routes, or the service catalogue)";
    MethodNotAllowed = "method_not_allowed", 405, "check the method against the path (GET reads, POST acts)";
    RequestTimeout = "request_timeout", 408, "send the request again over a faster link, or raise http.body_timeout";
    NotReplayable = "not_replayable", 409, "list what is still to replay with `lgsp failed list --status failed`";
    ReplayInProgress = "replay_in_progress", 409, "wait for it to finish; `lgsp failed show ID` then shows it replayed";
    RouteGone = "route_gone", 409, "configure the route again and restart lgsp, or discard the message with a reason";
    ReplayRefused = "replay_refused", 409, "check that the route's queue exists (is the route still configured?) and is not full";
    NotDiscardable = "not_discardable", 409, "only a failed message can be discarded";
    NotPending = "not_pending", 409, "`lgsp failed requests` shows what still waits";
    IdempotencyInProgress = "idempotency_in_progress", 409, "wait, then send the same request again with the same Idempotency-Key";
    PayloadTooLarge = "payload_too_large", 413, "send a smaller body; the limit follows limits.max_message_bytes";
    UnsupportedMediaType = "unsupported_media_type", 415, "send Content-Type: application/xml or application/json";
    IdempotencyKeyReused = "idempotency_key_reused", 422, "use a new Idempotency-Key for a different message";
    RateLimited = "rate_limited", 429, "slow down; wait for the time Retry-After says";
    Internal = "internal", 500, "see the lgsp log";
    ReplayNotRecorded = "replay_not_recorded", 500, "it stays `failed` in the store; do not replay it again unless receivers drop duplicates by message_id";
    NotReady = "not_ready", 503, "wait and retry; see the lgsp log for the cause";
    BrokerUnavailable = "broker_unavailable", 503, "retry when the broker is back";
    StoreUnavailable = "store_unavailable", 503, "see the lgsp log; the store comes back by itself when the database is reachable";
    AdminDisabled = "admin_disabled", 503, "run it inside `lgsp run`";
    GatewayDisabled = "gateway_disabled", 503, "publish to the lgsp run process";
}

impl std::fmt::Display for ApiCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ApiCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// An error answered to an HTTP client: a stable code (with its status), a message that
/// says what was wrong, and what to do. Internals are logged where they happen, never
/// put here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error, utoipa::ToSchema)]
#[error("{code}: {message}")]
pub struct ApiError {
    #[schema(value_type = String, example = "bad_request")]
    pub code: ApiCode,
    pub message: String,
    pub hint: String,
}

impl ApiError {
    /// An error of `code` with the table's hint.
    pub fn new(code: ApiCode, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
            hint: code.hint().to_owned(),
        }
    }

    /// The same error with a hint that fits the place better than the table's.
    pub fn with_hint(mut self, hint: impl Into<String>) -> ApiError {
        self.hint = hint.into();
        self
    }

    /// The HTTP status of its code.
    pub fn status(&self) -> u16 {
        self.code.status()
    }

    pub fn not_ready(what: &str) -> ApiError {
        ApiError::new(ApiCode::NotReady, format!("{what} is not ready"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, Json(self)).into_response()
    }
}

impl From<QueryRejection> for ApiError {
    fn from(e: QueryRejection) -> ApiError {
        ApiError::new(ApiCode::BadRequest, format!("query: {}", e.body_text()))
            .with_hint("check the query parameters' names and values")
    }
}

impl From<PathRejection> for ApiError {
    fn from(e: PathRejection) -> ApiError {
        ApiError::new(ApiCode::BadRequest, format!("path: {}", e.body_text()))
            .with_hint("check the path's parameters (percent-encoded UTF-8)")
    }
}

/// `axum::extract::Query` whose rejection is an [`ApiError`] (`bad_request`). A handler
/// that checks the caller first takes `Result<ApiQuery<T>, ApiError>` and applies `?`
/// after the check, so an unknown caller learns nothing about the parameters.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Query(q) = Query::<T>::from_request_parts(parts, state).await?;
        Ok(ApiQuery(q))
    }
}

/// `axum::extract::Path` whose rejection is an [`ApiError`] (`bad_request`).
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(p) = Path::<T>::from_request_parts(parts, state).await?;
        Ok(ApiPath(p))
    }
}

/// What the router answers for a path it does not have.
pub(crate) async fn no_such_path(uri: axum::http::Uri) -> ApiError {
    ApiError::new(ApiCode::NotFound, format!("no endpoint at {}", uri.path()))
        .with_hint("the paths are /healthz, /readyz, /metrics, /api/v1/..., /admin/v1/... and /ui/")
}

/// What the router answers for a method a path does not take.
pub(crate) async fn no_such_method(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        ApiCode::MethodNotAllowed,
        format!("{} does not take {method}", uri.path()),
    )
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn codes_are_unique_lowercase_words_with_an_error_status_and_a_hint() {
        let mut seen = HashSet::new();
        for c in ApiCode::ALL {
            assert!(seen.insert(c.as_str()), "{c} is in the table twice");
            assert!(
                c.as_str()
                    .chars()
                    .all(|ch| ch.is_ascii_lowercase() || ch == '_'),
                "{c}"
            );
            assert!((400..600).contains(&c.status()), "{c}");
            assert!(!c.hint().is_empty(), "{c}");
        }
    }

    #[test]
    fn the_contracts_codes_keep_their_statuses() {
        for (code, status) in [
            (ApiCode::ContentTypeMismatch, 400),
            (ApiCode::ReplayInProgress, 409),
            (ApiCode::PayloadTooLarge, 413),
            (ApiCode::RequestTimeout, 408),
            (ApiCode::Unauthorized, 401),
            (ApiCode::Forbidden, 403),
            (ApiCode::NotReady, 503),
        ] {
            assert_eq!(code.status(), status, "{code}");
        }
    }

    #[test]
    fn the_body_is_code_message_hint_only() {
        let e = ApiError::new(ApiCode::NotFound, "no failed message with id 9");
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            serde_json::json!({
                "code": "not_found",
                "message": "no failed message with id 9",
                "hint": "check the path and the id",
            })
        );
        assert_eq!(e.with_hint("elsewhere").hint, "elsewhere");
    }
}
