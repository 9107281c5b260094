//! RabbitMQ transport of lgsp (lapin): the names of DESIGN section 8, the topology
//! declared idempotently at start, a publisher with confirms and a bounded window, and
//! consumers with manual acknowledgements.
//!
//! - [`broker`]: the nodes, connecting with failover, the reconnecting session loop,
//!   consumer set-up.
//! - [`names`]: exchange and queue names from the prefix.
//! - [`topology`]: declare everything a configuration needs; explain refused redeclares.
//! - [`publish`]: confirmed, persistent, mandatory publishing; unroutable is an error.
//! - [`inbound`]: an input read once (original key, attempt, targets, envelope).
//! - [`memory`]: an in-memory publisher behind the same seam, for tests.
//! - [`headers`]: reading and writing `lgsp-` headers.
//! - [`topic`]: topic bindings matched as the broker matches them.
//! - [`routes`]: which routes an input queue serves; route-qualified target ids.

pub mod broker;
pub mod guard;
pub mod headers;
pub mod inbound;
pub mod memory;
pub mod names;
pub mod publish;
pub mod reconnect;
pub mod routes;
pub use lgsp_core::topic;
pub mod topology;

pub use lapin;
use lapin::{Connection, ConnectionProperties};
use lgsp_core::config::SecretUrl;

/// Why talking to the broker failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    #[error(
        "cannot connect to RabbitMQ at {url}: {source}; is it running? (start it with `rabbitmq-server -detached`, or set broker.url / LGSP_BROKER__URL)"
    )]
    Connect {
        url: String,
        #[source]
        source: lapin::Error,
    },
    #[error("no broker address configured: set broker.url or broker.urls")]
    NoAddress,
    #[error("{what}: {source}")]
    Broker {
        what: String,
        #[source]
        source: lapin::Error,
    },
    #[error(
        "queue {queue} exists with different settings ({detail}); the broker refused to redeclare it. Drain and delete the queue (rabbitmqctl delete_queue {queue}) or change the configuration to match"
    )]
    Inequivalent { queue: String, detail: String },
    #[error("the broker cancelled the consumer of queue {queue} (was it deleted?)")]
    Cancelled { queue: String },
    #[error(
        "route {route}: target exchange `{exchange}` does not exist; declare it on the broker or fix the route's `to`"
    )]
    MissingExchange { route: String, exchange: String },
}

impl TransportError {
    /// Whether reconnecting may help: decided on the error's type and, for the broker's
    /// own refusals, on the AMQP reply code.
    pub fn recovery(&self) -> reconnect::Recovery {
        use reconnect::Recovery;
        match self {
            TransportError::Connect { source, .. } | TransportError::Broker { source, .. } => {
                reconnect::recovery(source)
            }
            TransportError::Cancelled { .. } => Recovery::Retry,
            TransportError::NoAddress
            | TransportError::Inequivalent { .. }
            | TransportError::MissingExchange { .. } => Recovery::Fatal,
        }
    }

    pub(crate) fn broker(what: impl Into<String>, source: lapin::Error) -> Self {
        TransportError::Broker {
            what: what.into(),
            source,
        }
    }
}

/// Connect to the broker at `url`.
pub async fn connect(url: &SecretUrl, name: &str) -> Result<Connection, TransportError> {
    let props = ConnectionProperties::default().with_connection_name(name.into());
    Connection::connect(url.expose(), props)
        .await
        .map_err(|source| TransportError::Connect {
            url: url.redacted(),
            source,
        })
}
