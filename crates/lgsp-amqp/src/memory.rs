//! An in-memory publisher behind the same seam as the broker's ([`Publish`]): it keeps
//! what is published and answers as told per exchange, so the router's decisions
//! (ack, retry, fail, requeue) are tested without RabbitMQ.

use std::sync::{Arc, Mutex, PoisonError};

use lapin::BasicProperties;

use crate::publish::{Confirm, Publish, PublishError};

/// How the in-memory broker answers a publish to an exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Confirmed.
    Ack,
    /// Returned: no queue bound for the key.
    Unroutable,
    /// Refused for now (a full queue).
    Nack,
    /// The channel died before the confirm.
    Lost,
}

/// One publish the in-memory broker took.
#[derive(Debug, Clone)]
pub struct Published {
    pub exchange: String,
    pub routing_key: String,
    pub body: Vec<u8>,
    pub properties: BasicProperties,
    pub answer: Answer,
}

/// Keeps every publish; answers [`Answer::Ack`] unless told otherwise for an exchange.
#[derive(Debug, Clone, Default)]
pub struct MemoryPublisher {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug, Default)]
struct Inner {
    answers: Vec<(String, Answer)>,
    published: Vec<Published>,
}

impl MemoryPublisher {
    pub fn new() -> MemoryPublisher {
        MemoryPublisher::default()
    }

    /// Answer every later publish to `exchange` with `answer`.
    pub fn answer(&self, exchange: &str, answer: Answer) {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.answers.retain(|(e, _)| e != exchange);
        inner.answers.push((exchange.to_owned(), answer));
    }

    /// Everything published so far, in order.
    pub fn published(&self) -> Vec<Published> {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .published
            .clone()
    }
}

/// The answer of one in-memory publish.
#[derive(Debug)]
pub struct MemoryPending {
    exchange: String,
    routing_key: String,
    answer: Answer,
}

impl Publish for MemoryPublisher {
    type Pending = MemoryPending;
    async fn publish(
        &self,
        exchange: &str,
        routing_key: &str,
        body: &[u8],
        properties: BasicProperties,
    ) -> Result<MemoryPending, PublishError> {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let answer = inner
            .answers
            .iter()
            .find(|(e, _)| e == exchange)
            .map_or(Answer::Ack, |(_, a)| *a);
        inner.published.push(Published {
            exchange: exchange.to_owned(),
            routing_key: routing_key.to_owned(),
            body: body.to_vec(),
            properties,
            answer,
        });
        Ok(MemoryPending {
            exchange: exchange.to_owned(),
            routing_key: routing_key.to_owned(),
            answer,
        })
    }
}

impl Confirm for MemoryPending {
    async fn wait(self) -> Result<(), PublishError> {
        let MemoryPending {
            exchange,
            routing_key,
            answer,
        } = self;
        match answer {
            Answer::Ack => Ok(()),
            Answer::Unroutable => Err(PublishError::Unroutable {
                exchange,
                routing_key,
                reply: "312 NO_ROUTE".into(),
            }),
            Answer::Nack => Err(PublishError::Nacked { exchange }),
            Answer::Lost => Err(PublishError::Broker {
                exchange,
                source: lapin::Error::from(std::io::Error::from(
                    std::io::ErrorKind::ConnectionReset,
                )),
            }),
        }
    }
}
