//! The admin API (`/admin/v1/...`) over the failed-message store, one module per
//! resource: [`failed`] (list, show, replay, discard), [`groups`] (failures by cause,
//! bulk replay), [`requests`] (approvals), [`audit`] (the audit log and notes),
//! [`messages`] (a message's story); [`api`] holds the request types the admin CLI
//! sends. Every request carries a bearer token; tokens are kept only as SHA-256 hashes
//! and compared in constant time. Roles: `viewer` reads, `operator` reads and acts.
//!
//! Every action that changes something runs in a task of its own (axum drops a
//! handler's future when its client disconnects; a batch must not stop between the
//! broker's confirms and the store's commit).

pub mod api;
pub(crate) mod audit;
pub(crate) mod failed;
pub(crate) mod groups;
pub(crate) mod messages;
pub(crate) mod requests;

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use lgsp_core::apps::{ct_eq, from_hex};
use lgsp_failed::replay::{ReplayError, Replayer};
use lgsp_store::record::{Filter, Status, parse_time};
use lgsp_store::{Store, StoreError};
use serde::Deserialize;
use tracing::{error, warn};

use self::api::Selection;
use crate::{ApiCode, ApiError, AppState};

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Viewer,
    Operator,
}

/// The accepted tokens, as SHA-256 hashes with their role and their holder's name.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    hashes: Vec<([u8; 32], Role, String)>,
}

/// SHA-256 of a token.
pub fn token_hash(token: &str) -> [u8; 32] {
    lgsp_core::apps::key_hash(token)
}

impl Tokens {
    /// From the admin configuration: `operator_token` (the token itself, named
    /// `operator`), the older hash lists (named `operator-N`, `viewer-N`) and the named
    /// `tokens`. A hash that is not 64 hex digits, or a name used twice, is an error
    /// naming its key.
    pub fn from_config(c: &lgsp_core::config::AdminConfig) -> Result<Tokens, String> {
        let mut t = Tokens::default();
        if let Some(tok) = &c.operator_token
            && !tok.expose().is_empty()
        {
            t.hashes
                .push((token_hash(tok.expose()), Role::Operator, "operator".into()));
        }
        let hex_error = |key: String| {
            format!(
                "{key}: not a SHA-256 in hex (64 digits); compute it with `printf %s TOKEN | sha256sum`"
            )
        };
        for (key, list, role, prefix) in [
            (
                "admin.operator_token_sha256",
                &c.operator_token_sha256,
                Role::Operator,
                "operator",
            ),
            (
                "admin.viewer_token_sha256",
                &c.viewer_token_sha256,
                Role::Viewer,
                "viewer",
            ),
        ] {
            for (i, h) in list.iter().enumerate() {
                let hash = from_hex(h).ok_or_else(|| hex_error(format!("{key}[{i}]")))?;
                t.hashes.push((hash, role, format!("{prefix}-{}", i + 1)));
            }
        }
        for (i, tok) in c.tokens.iter().enumerate() {
            let hash = from_hex(&tok.sha256)
                .ok_or_else(|| hex_error(format!("admin.tokens[{i}].sha256")))?;
            if t.hashes.iter().any(|(_, _, n)| *n == tok.name) {
                return Err(format!(
                    "admin.tokens[{i}].name: `{}` is already the name of another token; names must be unique",
                    tok.name
                ));
            }
            let role = match tok.role {
                lgsp_core::config::TokenRole::Viewer => Role::Viewer,
                lgsp_core::config::TokenRole::Operator => Role::Operator,
            };
            t.hashes.push((hash, role, tok.name.clone()));
        }
        Ok(t)
    }

    /// Add a token named `<role>-<n>` (tests, or a setup without configuration).
    pub fn with(self, token: &str, role: Role) -> Tokens {
        let name = format!(
            "{}-{}",
            match role {
                Role::Viewer => "viewer",
                Role::Operator => "operator",
            },
            self.hashes.len() + 1
        );
        self.with_name(token, role, &name)
    }

    /// Add a named token.
    pub fn with_name(mut self, token: &str, role: Role, name: &str) -> Tokens {
        self.hashes.push((token_hash(token), role, name.to_owned()));
        self
    }

    /// The role and name of `token`, comparing against every known hash.
    fn role(&self, token: &str) -> Option<(Role, String)> {
        let h = token_hash(token);
        let mut found = None;
        for (k, role, name) in &self.hashes {
            if ct_eq(k, &h) && found.is_none() {
                found = Some((*role, name.clone()));
            }
        }
        found
    }
}

/// How bulk replays and approvals behave (`replay.*` of the configuration).
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub require_approval: bool,
    pub batch_size: u32,
    /// Messages per second.
    pub rate: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            require_approval: false,
            batch_size: 100,
            rate: 200,
        }
    }
}

impl Settings {
    pub fn from_config(c: &lgsp_core::config::ReplayConfig) -> Settings {
        Settings {
            require_approval: c.require_approval,
            batch_size: c.batch_size,
            rate: c.rate,
        }
    }
}

/// What the admin API needs.
pub struct Admin {
    pub store: Arc<Store>,
    pub replayer: Arc<Replayer>,
    pub tokens: Tokens,
    pub settings: Settings,
}

/// Who is asking.
pub(crate) struct Caller {
    pub(crate) role: Role,
    /// The token's name (never the token).
    pub(crate) name: String,
}

impl Caller {
    /// Refuse a viewer: `what` needs the operator role.
    pub(crate) fn operator(&self, what: &str) -> Result<(), ApiError> {
        if self.role == Role::Operator {
            return Ok(());
        }
        Err(ApiError::new(
            ApiCode::Forbidden,
            format!("{what} needs the operator role; this token is a viewer's"),
        )
        .with_hint("ask an operator, or use an operator token"))
    }
}

fn unauthorized() -> ApiError {
    ApiError::new(ApiCode::Unauthorized, "a bearer token is required")
        .with_hint("send `Authorization: Bearer TOKEN` (lgsp failed: --token or LGSPCTL_TOKEN)")
}

pub(crate) fn caller(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<(Arc<Admin>, Caller), ApiError> {
    let admin = state.admin.clone().ok_or_else(|| {
        ApiError::new(
            ApiCode::AdminDisabled,
            "the admin API is not configured in this process",
        )
    })?;
    let token = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(unauthorized)?;
    let (role, name) = admin.tokens.role(token).ok_or_else(|| ApiError {
        message: "the token is not known".into(),
        ..unauthorized()
    })?;
    Ok((admin, Caller { role, name }))
}

pub(crate) fn store_error(e: StoreError) -> ApiError {
    error!(error = %e, "admin API: store error");
    ApiError::new(
        ApiCode::StoreUnavailable,
        "the failed-message store is unreachable",
    )
}

pub(crate) fn bad_request(message: String, hint: &str) -> ApiError {
    ApiError::new(ApiCode::BadRequest, message).with_hint(hint)
}

pub(crate) fn join_error(e: tokio::task::JoinError) -> ApiError {
    error!(error = %e, "admin API: a task failed");
    ApiError::new(ApiCode::Internal, "the action stopped unexpectedly")
        .with_hint("see the lgsp log; check the record's status before trying again")
}

/// The store filter of a selection's filters (the group is resolved elsewhere).
pub(crate) fn to_filter(q: &Selection) -> Result<Filter, ApiError> {
    let time = |s: &Option<String>, name: &str| -> Result<Option<i64>, ApiError> {
        s.as_deref()
            .map(|t| {
                parse_time(t).ok_or_else(|| {
                    bad_request(
                        format!("{name}: `{t}` is not an RFC 3339 time"),
                        "write e.g. 2025-01-31T08:00:00+07:00",
                    )
                })
            })
            .transpose()
    };
    let status = q
        .status
        .as_deref()
        .map(|s| {
            Status::parse(s).ok_or_else(|| {
                bad_request(
                    format!("status: `{s}` is not a status"),
                    "one of failed, replayed, discarded",
                )
            })
        })
        .transpose()?;
    Ok(Filter {
        route: q.route.clone(),
        exact_route: false,
        no_route: false,
        kind: q.kind,
        code: q.code.clone(),
        text: q.text.clone(),
        from: time(&q.from, "from")?,
        to: time(&q.to, "to")?,
        status,
    })
}

/// What a viewer may see of the error text of a failure with `code`: a webhook
/// receiver's answer (in the error of a `webhook.status.*` failure) may echo the
/// message, so it is replaced; any other error is shown as it is (`None`).
pub(crate) fn viewer_error(code: &str) -> Option<String> {
    code.starts_with("webhook.status.").then(|| {
        format!("{code}: the receiver's answer is hidden from viewers (an operator sees it)")
    })
}

/// A summary as a viewer may see it (see [`viewer_error`]).
pub(crate) fn for_viewer(s: &mut lgsp_store::Summary) {
    if let Some(e) = viewer_error(&s.error_code) {
        s.error = e;
    }
}

pub(crate) fn parse_id(id: &str) -> Result<i64, ApiError> {
    id.parse().map_err(|_| {
        ApiError::new(
            ApiCode::NotFound,
            format!("no failed message with id `{id}`"),
        )
        .with_hint("ids are the numbers `lgsp failed list` shows")
    })
}

pub(crate) fn not_found(id: i64) -> ApiError {
    ApiError::new(ApiCode::NotFound, format!("no failed message with id {id}"))
        .with_hint("ids are the numbers `lgsp failed list` shows")
}

/// A JSON request body; an empty one is the default request.
pub(crate) fn parse_body<T: for<'a> Deserialize<'a> + Default>(
    raw: &Bytes,
    hint: &str,
) -> Result<T, ApiError> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(raw).map_err(|e| bad_request(format!("request body: {e}"), hint))
}

pub(crate) fn replay_error(e: ReplayError) -> ApiError {
    match e {
        ReplayError::NotFound(id) => not_found(id),
        ReplayError::NotReplayable { .. } => ApiError::new(ApiCode::NotReplayable, e.to_string()),
        ReplayError::Claimed(_) => ApiError::new(ApiCode::ReplayInProgress, e.to_string()),
        ReplayError::Store(s) => store_error(s),
        ReplayError::Broker(m) => {
            warn!(error = %m, "replay: broker unreachable");
            ApiError::new(
                ApiCode::BrokerUnavailable,
                "RabbitMQ is unreachable; nothing was replayed",
            )
        }
        ReplayError::RouteGone { .. } => ApiError::new(ApiCode::RouteGone, e.to_string()),
        ReplayError::Refused(p) => ApiError::new(
            ApiCode::ReplayRefused,
            format!("the broker did not take the replay: {p}"),
        ),
        other @ ReplayError::NotRecorded { .. } => {
            error!(error = %other, "replay");
            ApiError::new(
                ApiCode::ReplayNotRecorded,
                "the message was replayed but its status could not be recorded",
            )
        }
        other => ApiError::new(ApiCode::Internal, other.to_string()),
    }
}

/// Who a token is (`GET /admin/v1/me`): its name and role, for the page's sign-in.
pub(crate) async fn me(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    let (_, who) = caller(&state, &headers)?;
    Ok(Json(serde_json::json!({
        "name": who.name,
        "role": match who.role {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
        },
    })))
}
