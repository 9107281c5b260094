//! RabbitMQ transport of lgsp (lapin): the names of `docs/contracts.md`, the topology
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
use lapin::tcp::{OwnedIdentity, OwnedTLSConfig};
use lapin::{Connection, ConnectionProperties};
use lgsp_core::config::{ClientTls, SecretUrl};

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
    #[error(
        "TLS with RabbitMQ at {url} failed: {reason}; check broker.tls.ca (the CA that signed the broker's certificate), that the URL's host is a name in that certificate, and broker.tls.cert/key if the broker asks for a client certificate"
    )]
    Tls { url: String, reason: String },
    #[error("cannot read {key} ({}): {source}", path.display())]
    TlsFile {
        key: &'static str,
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
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
            | TransportError::Tls { .. }
            | TransportError::TlsFile { .. }
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

/// Connect to the broker at `url` (plain, or TLS with the public (Mozilla) roots).
pub async fn connect(url: &SecretUrl, name: &str) -> Result<Connection, TransportError> {
    connect_tls(url, &ClientTls::default(), name).await
}

/// Connect to the broker at `url`; an `amqps://` URL is verified against the system's
/// roots and `tls.ca`, and presents `tls.cert` when given. The files are read at each
/// connection, so a renewed certificate is picked up at the next reconnect.
pub async fn connect_tls(
    url: &SecretUrl,
    tls: &ClientTls,
    name: &str,
) -> Result<Connection, TransportError> {
    let props = ConnectionProperties::default().with_connection_name(name.into());
    let config = tls_config(tls)?;
    let runtime = lapin::runtime::default_runtime().map_err(|source| TransportError::Connect {
        url: url.redacted(),
        source,
    })?;
    Connection::connect_with_config(url.expose(), props, config, runtime)
        .await
        .map_err(|source| {
            if let Some(tls) = tls_failure(&source) {
                TransportError::Tls {
                    url: url.redacted(),
                    reason: tls,
                }
            } else {
                TransportError::Connect {
                    url: url.redacted(),
                    source,
                }
            }
        })
}

fn tls_config(tls: &ClientTls) -> Result<OwnedTLSConfig, TransportError> {
    let read = |key: &'static str, path: &std::path::Path| {
        std::fs::read(path).map_err(|source| TransportError::TlsFile {
            key,
            path: path.to_owned(),
            source,
        })
    };
    let cert_chain = match &tls.ca {
        Some(p) => Some(String::from_utf8_lossy(&read("broker.tls.ca", p)?).into_owned()),
        None => None,
    };
    let identity = match (&tls.cert, &tls.key) {
        (Some(cert), Some(key)) => Some(OwnedIdentity::PKCS8 {
            pem: read("broker.tls.cert", cert)?,
            key: read("broker.tls.key", key)?,
        }),
        _ => None,
    };
    Ok(OwnedTLSConfig {
        identity,
        cert_chain,
    })
}

/// The TLS reason of a failed connection (an unknown issuer, a name mismatch, a refused
/// client certificate), if TLS is why it failed.
fn tls_failure(e: &lapin::Error) -> Option<String> {
    let lapin::ErrorKind::IOError(io) = e.kind() else {
        return None;
    };
    lgsp_core::tls::cause(&**io).map(ToString::to_string)
}
