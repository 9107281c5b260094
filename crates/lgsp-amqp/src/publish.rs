//! Confirmed publishing: persistent, `mandatory`, a bounded window of publishes awaiting
//! their confirm. A nack is an error; a mandatory publish the broker could not route is
//! returned (`basic.return`) before it is acked, and that is reported as unroutable, not
//! as success.
//!
//! Which publish a return belongs to is decided here, not by the AMQP client. The client
//! hands each waiting return to *some* confirm resolved by the next ack frame: with a
//! multiple ack it is an arbitrary one of the frame's confirms, and a return that arrived
//! before the ack of an earlier tag goes to that earlier confirm. Taken at its word, a
//! returned publish would be reported delivered (a silent loss) and a delivered one
//! unroutable. So every confirm of a channel is awaited by one [`ledger`] task, which
//! collects the returns of all resolved confirms and matches each to its publish by
//! exchange, routing key and message id (see [`ledger`] for why that is sound).

mod ledger;

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::Poll;

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::{BasicProperties, Channel, Connection};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

use crate::TransportError;

/// Why a publish did not end confirmed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PublishError {
    #[error(
        "no queue is bound to exchange `{exchange}` for routing key `{routing_key}` (the broker returned it: {reply})"
    )]
    Unroutable {
        exchange: String,
        routing_key: String,
        reply: String,
    },
    #[error(
        "the broker refused the message for exchange `{exchange}` (nack); a queue may be full (x-max-length with reject-publish)"
    )]
    Nacked { exchange: String },
    #[error("publishing to exchange `{exchange}` failed: {source}")]
    Broker {
        exchange: String,
        #[source]
        source: lapin::Error,
    },
}

impl PublishError {
    /// A transient problem (retry may help) rather than a permanent one.
    pub fn is_transient(&self) -> bool {
        !matches!(self, PublishError::Unroutable { .. })
    }
}

/// What publishes for the router: the broker's confirmed [`Publisher`], or in tests
/// [`crate::memory::MemoryPublisher`]. A publish returns once the message is handed
/// over; its [`Confirm`] resolves with the broker's answer.
pub trait Publish: Send + Sync + 'static {
    type Pending: Confirm;
    fn publish(
        &self,
        exchange: &str,
        routing_key: &str,
        body: &[u8],
        properties: BasicProperties,
    ) -> impl Future<Output = Result<Self::Pending, PublishError>> + Send;
}

/// A publish awaiting the broker's answer.
pub trait Confirm: Send + 'static {
    fn wait(self) -> impl Future<Output = Result<(), PublishError>> + Send;
}

impl Publish for Publisher {
    type Pending = Pending;
    fn publish(
        &self,
        exchange: &str,
        routing_key: &str,
        body: &[u8],
        properties: BasicProperties,
    ) -> impl Future<Output = Result<Pending, PublishError>> + Send {
        Publisher::publish(self, exchange, routing_key, body, properties)
    }
}

impl Confirm for Pending {
    fn wait(self) -> impl Future<Output = Result<(), PublishError>> + Send {
        Pending::wait(self)
    }
}

/// A channel in confirm mode with a bounded window of unconfirmed publishes.
#[derive(Clone)]
pub struct Publisher {
    channel: Channel,
    window: Arc<Semaphore>,
    ledger: ledger::Handle,
    /// Held while a publish gets its delivery tag and queues its frames (see `publish`).
    order: Arc<Mutex<()>>,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("available", &self.window.available_permits())
            .finish()
    }
}

/// A publish awaiting its confirm; holds a place in the window until then.
pub struct Pending {
    outcome: oneshot::Receiver<ledger::Outcome>,
    exchange: String,
    routing_key: String,
    _permit: OwnedSemaphorePermit,
}

impl Publisher {
    /// Open a channel in confirm mode with at most `window` publishes unconfirmed.
    /// Call it inside a tokio runtime: the channel's confirms are awaited by a task.
    pub async fn open(conn: &Connection, window: u32) -> Result<Publisher, TransportError> {
        let channel = conn
            .create_channel()
            .await
            .map_err(|e| TransportError::broker("open a publishing channel", e))?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(|e| TransportError::broker("enable publisher confirms", e))?;
        let ledger = ledger::spawn(channel.clone());
        Ok(Publisher {
            channel,
            window: Arc::new(Semaphore::new(window.max(1) as usize)),
            ledger,
            order: Arc::new(Mutex::new(())),
        })
    }

    /// Publish persistently with `mandatory`; await the returned [`Pending`] for the confirm.
    pub async fn publish(
        &self,
        exchange: &str,
        routing_key: &str,
        body: &[u8],
        properties: BasicProperties,
    ) -> Result<Pending, PublishError> {
        let permit =
            self.window
                .clone()
                .acquire_owned()
                .await
                .map_err(|_| PublishError::Nacked {
                    exchange: exchange.to_owned(),
                })?;
        let key = ledger::Key::new(exchange, routing_key, properties.message_id().as_ref());
        // Announced before the client assigns the delivery tag, handed over after.
        let handover = self.ledger.announce();
        let publish = self.channel.basic_publish(
            exchange.into(),
            routing_key.into(),
            BasicPublishOptions {
                mandatory: true,
                ..BasicPublishOptions::default()
            },
            body,
            properties.with_delivery_mode(2),
        );
        let mut publish = std::pin::pin!(publish);
        // The client assigns the delivery tag and queues the frames in the publish's first
        // poll, as two steps. Two publishes of one channel (tasks on two threads) racing
        // between them reach the broker in the other order than their tags, so each would
        // be resolved by the other's confirm, and an unroutable one could be reported
        // delivered before its return arrived (seen about once in 25 runs of
        // `each_publish_learns_its_own_fate...` under load). The first poll is taken
        // under the channel's lock; the rest (waiting for the frames to be written) is not.
        let first = std::future::poll_fn(|cx| {
            let _order = self.order.lock().unwrap_or_else(PoisonError::into_inner);
            Poll::Ready(publish.as_mut().poll(cx))
        })
        .await;
        let confirm = match first {
            Poll::Ready(r) => r,
            Poll::Pending => publish.await,
        }
        .map_err(|source| PublishError::Broker {
            exchange: exchange.to_owned(),
            source,
        })?;
        let outcome = handover.hand_over(confirm, key);
        Ok(Pending {
            outcome,
            exchange: exchange.to_owned(),
            routing_key: routing_key.to_owned(),
            _permit: permit,
        })
    }

    /// Publish and wait for the confirm.
    pub async fn publish_confirmed(
        &self,
        exchange: &str,
        routing_key: &str,
        body: &[u8],
        properties: BasicProperties,
    ) -> Result<(), PublishError> {
        self.publish(exchange, routing_key, body, properties)
            .await?
            .wait()
            .await
    }

    /// Is the channel still usable?
    pub fn is_connected(&self) -> bool {
        self.channel.status().connected()
    }

    /// Close the channel, waiting for the broker's answer. Call it before closing the
    /// connection: a publisher merely dropped closes its channel in the background,
    /// and if the connection is closing by then the AMQP client logs a connection error.
    /// Publishes still unconfirmed fail.
    pub async fn close(&self) {
        if self.channel.status().connected() {
            let _ = self.channel.close(200, "closing".into()).await;
        }
    }
}

impl Pending {
    /// Wait for the broker's confirm.
    pub async fn wait(self) -> Result<(), PublishError> {
        let Pending {
            outcome,
            exchange,
            routing_key,
            _permit,
        } = self;
        match outcome.await {
            Ok(ledger::Outcome::Delivered) => Ok(()),
            Ok(ledger::Outcome::Returned(reply)) => Err(PublishError::Unroutable {
                exchange,
                routing_key,
                reply,
            }),
            Ok(ledger::Outcome::Nacked) => Err(PublishError::Nacked { exchange }),
            Ok(ledger::Outcome::Failed(source)) => Err(PublishError::Broker { exchange, source }),
            // The ledger task ended without an answer: only when the runtime shuts down.
            Err(_) => Err(PublishError::Broker {
                exchange,
                source: lapin::Error::from(lapin::ErrorKind::InvalidChannelState(
                    lapin::ChannelState::Closed,
                    "confirm",
                )),
            }),
        }
    }
}
