//! Declare, idempotently, every exchange and queue a configuration needs
//! (`docs/contracts.md`), and check that the exchanges routes send to exist.

use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{Channel, Connection, ExchangeKind};

use crate::TransportError;
use crate::names::Names;

/// What to declare.
#[derive(Debug, Clone)]
pub struct TopologySpec {
    pub names: Names,
    /// `(adapter, binding keys on <p>.in)`: one input queue per adapter, bound with the
    /// binding of each of its routes ([`crate::routes::RouteTable::inputs`]).
    pub inputs: Vec<(String, Vec<String>)>,
    /// Receiving applications (`app:` targets).
    pub apps: Vec<String>,
    /// `(queue, routing key)` of each webhook target: bound to `<p>.webhook`.
    pub webhooks: Vec<(String, String)>,
    /// `(route, exchange)` of exchange targets other than `<p>.out`: checked, not declared.
    pub target_exchanges: Vec<(String, String)>,
    pub max_length: u64,
    pub delivery_limit: u32,
    /// Every retry delay of every route: one `<p>.retry.<delay>` each.
    pub retry_delays: Vec<std::time::Duration>,
}

fn args(pairs: &[(&str, AMQPValue)]) -> FieldTable {
    let mut t = FieldTable::default();
    for (k, v) in pairs {
        t.insert(ShortString::from(*k), v.clone());
    }
    t
}

fn text(s: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(s.to_owned()))
}

fn durable_exchange() -> ExchangeDeclareOptions {
    ExchangeDeclareOptions {
        durable: true,
        ..ExchangeDeclareOptions::default()
    }
}

fn durable_queue() -> QueueDeclareOptions {
    QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    }
}

/// Declare everything; a refused redeclare names the queue and what differs.
pub async fn declare(conn: &Connection, spec: &TopologySpec) -> Result<(), TransportError> {
    let ch = conn
        .create_channel()
        .await
        .map_err(|e| TransportError::broker("open a channel", e))?;
    let n = &spec.names;
    let quorum = ("x-queue-type", text("quorum"));

    // Fanout exchanges with one quorum queue each: unrouted and failed.
    for name in [n.unrouted(), n.failed()] {
        exchange(&ch, &name, ExchangeKind::Fanout, FieldTable::default()).await?;
        queue(conn, &name, args(std::slice::from_ref(&quorum))).await?;
        bind(&ch, &name, &name, "").await?;
    }
    exchange(
        &ch,
        &n.input(),
        ExchangeKind::Topic,
        args(&[("alternate-exchange", text(&n.unrouted()))]),
    )
    .await?;
    exchange(&ch, &n.output(), ExchangeKind::Topic, FieldTable::default()).await?;
    exchange(
        &ch,
        &n.app_exchange(),
        ExchangeKind::Direct,
        FieldTable::default(),
    )
    .await?;
    for app in &spec.apps {
        let q = n.app_queue(app);
        queue(conn, &q, args(std::slice::from_ref(&quorum))).await?;
        bind(&ch, &q, &n.app_exchange(), app).await?;
    }
    let input_args = || {
        args(&[
            quorum.clone(),
            ("x-dead-letter-exchange", text(&n.failed())),
            ("x-dead-letter-strategy", text("at-least-once")),
            ("x-overflow", text("reject-publish")),
            (
                "x-max-length",
                AMQPValue::LongLongInt(i64::try_from(spec.max_length).unwrap_or(i64::MAX)),
            ),
            (
                "x-delivery-limit",
                AMQPValue::LongLongInt(i64::from(spec.delivery_limit)),
            ),
        ])
    };
    for (adapter, bindings) in &spec.inputs {
        let q = n.input_queue(adapter);
        queue(conn, &q, input_args()).await?;
        for binding in bindings {
            bind(&ch, &q, &n.input(), binding).await?;
        }
    }
    // A webhook queue is an input queue of its deliverer: the same dead-lettering,
    // length limit and delivery limit.
    exchange(
        &ch,
        &n.webhook_exchange(),
        ExchangeKind::Direct,
        FieldTable::default(),
    )
    .await?;
    for (q, key) in &spec.webhooks {
        queue(conn, q, input_args()).await?;
        bind(&ch, q, &n.webhook_exchange(), key).await?;
    }
    // Retries wait in a queue whose TTL dead-letters them to the default exchange with
    // their own routing key: the input queue's name.
    for delay in &spec.retry_delays {
        let name = n.retry(*delay);
        exchange(&ch, &name, ExchangeKind::Fanout, FieldTable::default()).await?;
        let ttl = i64::try_from(delay.as_millis()).unwrap_or(i64::MAX);
        let a = args(&[
            quorum.clone(),
            ("x-message-ttl", AMQPValue::LongLongInt(ttl)),
            ("x-dead-letter-exchange", text("")),
            ("x-dead-letter-strategy", text("at-least-once")),
            ("x-overflow", text("reject-publish")),
        ]);
        queue(conn, &name, a).await?;
        bind(&ch, &name, &name, "").await?;
    }
    for (route, ex) in &spec.target_exchanges {
        // A passive declare that fails closes its channel: use one per check.
        let probe = conn
            .create_channel()
            .await
            .map_err(|e| TransportError::broker("open a channel", e))?;
        let opts = ExchangeDeclareOptions {
            passive: true,
            ..ExchangeDeclareOptions::default()
        };
        if probe
            .exchange_declare(
                ex.as_str().into(),
                ExchangeKind::Topic,
                opts,
                FieldTable::default(),
            )
            .await
            .is_err()
        {
            return Err(TransportError::MissingExchange {
                route: route.clone(),
                exchange: ex.clone(),
            });
        }
        let _ = probe.close(200, "ok".into()).await;
    }
    let _ = ch.close(200, "ok".into()).await;
    Ok(())
}

async fn exchange(
    ch: &Channel,
    name: &str,
    kind: ExchangeKind,
    a: FieldTable,
) -> Result<(), TransportError> {
    ch.exchange_declare(name.into(), kind, durable_exchange(), a)
        .await
        .map_err(|e| TransportError::broker(format!("declare exchange {name}"), e))
}

/// Queues are declared on their own channel: a refused redeclare (406) closes it.
async fn queue(conn: &Connection, name: &str, a: FieldTable) -> Result<(), TransportError> {
    let ch = conn
        .create_channel()
        .await
        .map_err(|e| TransportError::broker("open a channel", e))?;
    match ch.queue_declare(name.into(), durable_queue(), a).await {
        Ok(_) => {
            let _ = ch.close(200, "ok".into()).await;
            Ok(())
        }
        Err(e) => {
            let detail = e.to_string();
            if detail.contains("PRECONDITION_FAILED") || detail.contains("inequivalent") {
                Err(TransportError::Inequivalent {
                    queue: name.to_owned(),
                    detail,
                })
            } else {
                Err(TransportError::broker(format!("declare queue {name}"), e))
            }
        }
    }
}

async fn bind(ch: &Channel, q: &str, ex: &str, key: &str) -> Result<(), TransportError> {
    ch.queue_bind(
        q.into(),
        ex.into(),
        key.into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .map_err(|e| TransportError::broker(format!("bind queue {q} to {ex} with key {key}"), e))
}
