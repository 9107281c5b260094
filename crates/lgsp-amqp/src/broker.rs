//! The broker's lifecycle, for every client of lgsp (router, failed-message ingestor,
//! replay, the gateway, `lgsp publish`/`watch`/`bench`): the nodes to try (`broker.urls`,
//! or `broker.url`), connecting with failover, and a session loop that reconnects with
//! one backoff and stops on what retrying cannot fix — decided on error types
//! ([`Recover`]), not on their text.

use std::future::Future;
use std::sync::Arc;

use lapin::options::{BasicConsumeOptions, BasicQosOptions};
use lapin::types::FieldTable;
use lapin::{Channel, Connection, Consumer};
use lgsp_core::config::{BrokerConfig, ClientTls, SecretUrl};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::TransportError;
use crate::reconnect::{Backoff, Recovery};

/// Something that can say whether retrying after it may help.
pub trait Recover: std::fmt::Display {
    fn recovery(&self) -> Recovery;
}

impl Recover for TransportError {
    fn recovery(&self) -> Recovery {
        TransportError::recovery(self)
    }
}

/// The broker of a configuration: its nodes, tried in order.
#[derive(Debug, Clone)]
pub struct Broker {
    urls: Vec<SecretUrl>,
    tls: ClientTls,
}

/// How a session loop treats an unreachable broker.
#[derive(Debug, Clone, Copy)]
pub struct Reconnect {
    /// Return at once when no node answers (`--no-wait`, one-shot commands) instead of
    /// retrying until one does.
    pub give_up_when_unreachable: bool,
    /// Said once, with the first "unreachable" warning (e.g. how not to wait).
    pub hint: &'static str,
}

impl Reconnect {
    pub const WAIT: Reconnect = Reconnect {
        give_up_when_unreachable: false,
        hint: "",
    };
}

/// Why a session loop ended before its shutdown.
#[derive(Debug, thiserror::Error)]
pub enum SessionEnd<E> {
    /// No node answered and the loop was told not to wait.
    #[error(transparent)]
    Unreachable(TransportError),
    /// Retrying cannot help (access refused, a contradiction with the broker's state).
    #[error("{0}")]
    Fatal(E),
}

impl Broker {
    pub fn new(urls: Vec<SecretUrl>) -> Broker {
        Broker {
            urls,
            tls: ClientTls::default(),
        }
    }

    /// `broker.urls` when given (the nodes of a cluster), else `broker.url`, with the
    /// TLS settings of `broker.tls` for `amqps://` nodes.
    pub fn from_config(c: &BrokerConfig) -> Broker {
        Broker {
            urls: c.nodes().to_vec(),
            tls: c.tls.clone(),
        }
    }

    pub fn urls(&self) -> &[SecretUrl] {
        &self.urls
    }

    /// The first node (its vhost is the one lgsp uses everywhere).
    pub fn first(&self) -> Option<&SecretUrl> {
        self.urls.first()
    }

    /// Connect to the first node that answers, in order. A node that refuses the
    /// credentials or the vhost is as fatal as none answering: the error is the last
    /// node's, or the first fatal one.
    pub async fn connect(&self, name: &str) -> Result<Connection, TransportError> {
        let mut last = None;
        for url in &self.urls {
            match crate::connect_tls(url, &self.tls, name).await {
                Ok(c) => {
                    info!(broker = %url, connection = name, "connected");
                    return Ok(c);
                }
                Err(e) if e.recovery() == Recovery::Fatal => return Err(e),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or(TransportError::NoAddress))
    }

    /// Run `session` on a connection until it returns `Ok` or `shutdown` comes, and
    /// reconnect (with backoff) whenever the broker is unreachable or the session ends
    /// with an error worth retrying. The connection is closed after each session.
    pub async fn keep_connected<E, F, Fut>(
        &self,
        name: &str,
        policy: Reconnect,
        shutdown: &CancellationToken,
        mut session: F,
    ) -> Result<(), SessionEnd<E>>
    where
        E: Recover,
        F: FnMut(Arc<Connection>) -> Fut,
        Fut: Future<Output = Result<(), E>>,
    {
        let mut backoff = Backoff::default();
        let mut told = false;
        loop {
            if shutdown.is_cancelled() {
                return Ok(());
            }
            let conn = tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                c = self.connect(name) => c,
            };
            let conn = match conn {
                Ok(c) => {
                    backoff.reset();
                    told = false;
                    Arc::new(c)
                }
                Err(e) if e.recovery() == Recovery::Fatal || policy.give_up_when_unreachable => {
                    return Err(SessionEnd::Unreachable(e));
                }
                Err(e) => {
                    let wait = backoff.next_delay();
                    if told {
                        warn!(
                            connection = name,
                            "broker still unreachable; retrying in {wait:?}"
                        );
                    } else {
                        warn!(
                            connection = name,
                            "{e}\n{}retrying in {wait:?}", policy.hint
                        );
                        told = true;
                    }
                    if !pause(shutdown, wait).await {
                        return Ok(());
                    }
                    continue;
                }
            };
            let result = session(conn.clone()).await;
            let _ = conn.close(200, "bye".into()).await;
            match result {
                Ok(()) => return Ok(()),
                Err(e) if e.recovery() == Recovery::Fatal => return Err(SessionEnd::Fatal(e)),
                Err(e) => {
                    let wait = backoff.next_delay();
                    warn!(connection = name, "{e}; reconnecting in {wait:?}");
                    if !pause(shutdown, wait).await {
                        return Ok(());
                    }
                }
            }
        }
    }
}

/// Sleep `d` unless `shutdown` comes first; `false` if it did.
pub async fn pause(shutdown: &CancellationToken, d: std::time::Duration) -> bool {
    tokio::select! {
        _ = shutdown.cancelled() => false,
        _ = tokio::time::sleep(d) => true,
    }
}

/// A channel for consumers with `prefetch` unacknowledged deliveries per consumer.
pub async fn consuming_channel(
    conn: &Connection,
    prefetch: u16,
) -> Result<Channel, TransportError> {
    let ch = conn
        .create_channel()
        .await
        .map_err(|e| TransportError::broker("open a consuming channel", e))?;
    ch.basic_qos(prefetch.max(1), BasicQosOptions::default())
        .await
        .map_err(|e| TransportError::broker("set prefetch", e))?;
    Ok(ch)
}

/// Consume `queue` on `ch` with manual acknowledgements.
pub async fn consume(ch: &Channel, queue: &str, tag: &str) -> Result<Consumer, TransportError> {
    ch.basic_consume(
        queue.into(),
        tag.into(),
        BasicConsumeOptions::default(),
        FieldTable::default(),
    )
    .await
    .map_err(|e| TransportError::broker(format!("consume {queue}"), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_unreachable_broker_is_given_up_or_waited_for_until_shutdown() {
        // Nothing listens on port 1.
        let broker = Broker::new(vec![
            SecretUrl::new("amqp://guest:guest@127.0.0.1:1/%2f"),
            SecretUrl::new("amqp://guest:guest@127.0.0.1:2/%2f"),
        ]);
        let shutdown = CancellationToken::new();
        let mut sessions = 0;
        let r = broker
            .keep_connected(
                "test",
                Reconnect {
                    give_up_when_unreachable: true,
                    hint: "",
                },
                &shutdown,
                |_| {
                    sessions += 1;
                    async { Ok::<(), TransportError>(()) }
                },
            )
            .await;
        assert!(matches!(r, Err(SessionEnd::Unreachable(_))), "{r:?}");
        assert_eq!(sessions, 0);
        let stop = shutdown.clone();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(600)).await;
            stop.cancel();
        });
        let r = broker
            .keep_connected("test", Reconnect::WAIT, &shutdown, |_| async {
                Ok::<(), TransportError>(())
            })
            .await;
        assert!(r.is_ok(), "shutdown ends the wait");
    }

    #[test]
    fn urls_replace_url() {
        let mut c: BrokerConfig = serde_json::from_value(serde_json::json!({})).unwrap();
        assert_eq!(Broker::from_config(&c).urls().len(), 1);
        c.urls = vec![
            SecretUrl::new("amqp://a:b@n1:5672/%2f"),
            SecretUrl::new("amqp://a:b@n2:5672/%2f"),
        ];
        let b = Broker::from_config(&c);
        assert_eq!(b.urls().len(), 2);
        assert_eq!(
            b.first().map(SecretUrl::expose),
            Some("amqp://a:b@n1:5672/%2f")
        );
    }
}
