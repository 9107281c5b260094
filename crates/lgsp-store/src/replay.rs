//! Replay one stored message: republish it to its route's queue through the default
//! exchange (routing key = the queue's name), so it reaches exactly that route and not
//! every route bound to its routing key. Same `message_id`, `lgsp-replay-of`, attempt
//! count reset, `lgsp-targets` = the targets still to deliver. The record becomes
//! `replayed` only after the broker confirmed the publish.
//!
//! An unroutable message has no route: it is republished to its original exchange and
//! routing key, where a route added since may now bind it.

use lapin::Connection;
use lgsp_amqp::headers;
use lgsp_amqp::names::Names;
use lgsp_amqp::publish::{PublishError, Publisher};
use lgsp_core::config::SecretUrl;
use serde::Serialize;
use tokio::sync::Mutex;
use tracing::info;

use crate::fields;
use crate::record::{Replay, Status};
use crate::store::{Store, StoreError};

/// Headers describing a failure or a broker dead-lettering: not carried into a replay.
const DROPPED_HEADERS: &[&str] = &[
    headers::FAILURE_ID,
    headers::ERROR_KIND,
    headers::ERROR_CODE,
    headers::ERROR,
    headers::FAILED_AT,
    headers::ORIGINAL_EXCHANGE,
    headers::ORIGINAL_ROUTING_KEY,
    headers::TARGETS,
    headers::ATTEMPT,
    headers::ROUTE,
    headers::REPLAY_OF,
    "x-death",
    "x-first-death-exchange",
    "x-first-death-queue",
    "x-first-death-reason",
    "x-last-death-exchange",
    "x-last-death-queue",
    "x-last-death-reason",
    "x-delivery-count",
];

/// Why a replay did not happen.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    #[error("no failed message with id {0}")]
    NotFound(i64),
    #[error("failed message {id} is {status}; only failed messages are replayed")]
    NotReplayable { id: i64, status: &'static str },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot reach RabbitMQ to replay: {0}")]
    Broker(String),
    #[error("the broker did not take the replay: {0}")]
    Refused(PublishError),
    #[error(
        "failed message {id} was replayed (confirmed by the broker) but its status could not be recorded: {source}"
    )]
    NotRecorded {
        id: i64,
        #[source]
        source: StoreError,
    },
}

/// The outcome of a replay.
#[derive(Debug, Clone, Serialize)]
pub struct Replayed {
    pub id: i64,
    pub message_id: String,
    pub replay_of: String,
    pub exchange: String,
    pub routing_key: String,
    pub targets: Vec<String>,
    pub edited: bool,
    pub status: Status,
}

/// Publishes replays; connects to the broker on first use and again after a failure.
pub struct Replayer {
    url: SecretUrl,
    names: Names,
    link: Mutex<Option<(Connection, Publisher)>>,
}

impl std::fmt::Debug for Replayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replayer").field("url", &self.url).finish()
    }
}

impl Replayer {
    pub fn new(url: SecretUrl, names: Names) -> Replayer {
        Replayer {
            url,
            names,
            link: Mutex::new(None),
        }
    }

    async fn publisher(&self) -> Result<Publisher, ReplayError> {
        let mut link = self.link.lock().await;
        if let Some((c, p)) = link.as_ref()
            && c.status().connected()
            && p.is_connected()
        {
            return Ok(p.clone());
        }
        let conn = lgsp_amqp::connect(&self.url, "lgsp replay")
            .await
            .map_err(|e| ReplayError::Broker(e.to_string()))?;
        let p = Publisher::open(&conn, 64)
            .await
            .map_err(|e| ReplayError::Broker(e.to_string()))?;
        *link = Some((conn, p.clone()));
        Ok(p)
    }

    /// Replay record `id`, with `body` instead of the original when given (the original
    /// stays in the store). `actor` is recorded in the replay history.
    pub async fn replay(
        &self,
        store: &Store,
        id: i64,
        body: Option<Vec<u8>>,
        actor: &str,
    ) -> Result<Replayed, ReplayError> {
        let f = store.get(id).await?.ok_or(ReplayError::NotFound(id))?;
        if f.summary.status != Status::Failed {
            return Err(ReplayError::NotReplayable {
                id,
                status: f.summary.status.as_str(),
            });
        }
        let (exchange, routing_key) = match &f.summary.route {
            Some(route) => (String::new(), self.names.route_queue(route)),
            None => (f.original_exchange.clone(), f.original_routing_key.clone()),
        };
        let mut h = fields::json_to_table(&f.headers);
        let mut kept = lapin::types::FieldTable::default();
        for (k, v) in h.inner() {
            if !DROPPED_HEADERS.contains(&k.as_str()) {
                kept.insert(k.clone(), v.clone());
            }
        }
        h = kept;
        headers::set(&mut h, headers::REPLAY_OF, f.summary.failure_id.as_str());
        headers::set_int(&mut h, headers::ATTEMPT, 0);
        if !f.targets.is_empty() {
            headers::set(&mut h, headers::TARGETS, f.targets.join(","));
        }
        let props = fields::replay_properties(&f.properties)
            .with_message_id(f.summary.message_id.as_str().into())
            .with_headers(h);
        let sent = body.as_deref().unwrap_or(&f.body);
        let publisher = self.publisher().await?;
        if let Err(e) = publisher
            .publish_confirmed(&exchange, &routing_key, sent, props)
            .await
        {
            if matches!(e, PublishError::Broker { .. }) {
                *self.link.lock().await = None;
                return Err(ReplayError::Broker(e.to_string()));
            }
            return Err(ReplayError::Refused(e));
        }
        let replay = Replay {
            at: String::new(),
            actor: actor.to_owned(),
            exchange: exchange.clone(),
            routing_key: routing_key.clone(),
            targets: f.targets.clone(),
            edited: body.is_some(),
            edited_body: body,
        };
        store
            .record_replay(id, &replay)
            .await
            .map_err(|source| ReplayError::NotRecorded { id, source })?;
        info!(id, message_id = %f.summary.message_id, failure_id = %f.summary.failure_id, %actor, edited = replay.edited, "replayed");
        Ok(Replayed {
            id,
            message_id: f.summary.message_id,
            replay_of: f.summary.failure_id,
            exchange,
            routing_key,
            targets: f.targets,
            edited: replay.edited,
            status: Status::Replayed,
        })
    }
}
