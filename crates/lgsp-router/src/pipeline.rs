//! One input, start to finish: decode and map, build every output for every target,
//! publish them all, wait for every confirm, then ack. Anything permanent goes to the
//! failed path (confirmed) before the ack; anything uncertain is nacked back to its queue.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use lapin::message::Delivery;
use lgsp_amqp::headers;
use lgsp_amqp::publish::{Pending, PublishError};
use lgsp_core::envelope::Envelope;
use lgsp_mapping::decode::Format;
use lgsp_mapping::dsl::{MapError, Mapped};
use tracing::{debug, warn};

use crate::failpoint;
use crate::message::{self, Failure};
use crate::settle::Settler;
use crate::{Route, Shared, Target};

/// Inputs up to this size are mapped on the worker that received them; larger ones on
/// the blocking pool, so that a big document cannot stall the other deliveries.
const INLINE_MAX_BYTES: usize = 32 * 1024;

/// One message to publish for one target.
struct Out {
    target: usize,
    exchange: String,
    routing_key: String,
    body: Vec<u8>,
    properties: lapin::BasicProperties,
}

enum Outcome {
    Delivered,
    Failed(Failure),
    /// Some targets refused transiently: try them again later.
    Retry {
        targets: Vec<String>,
        reason: String,
    },
    /// Broker trouble: return the input to its queue.
    Requeue(String),
}

pub(crate) async fn handle(
    shared: Arc<Shared>,
    route: Arc<Route>,
    settler: Settler,
    delivery: Delivery,
) {
    let env = message::envelope(&delivery);
    let outcome = process(&shared, &route, &delivery, &env).await;
    let ack = || settler.ack(delivery.delivery_tag, delivery.acker.clone());
    match outcome {
        Outcome::Delivered => {
            failpoint::hit(failpoint::AFTER_CONFIRM_BEFORE_ACK);
            shared.stats.routed.fetch_add(1, Ordering::Relaxed);
            ack();
        }
        Outcome::Failed(f) => {
            let props = message::failure_properties(&delivery, &env, &route.name, &f);
            let failed = shared.names.failed();
            match shared
                .publisher
                .publish_confirmed(
                    &failed,
                    delivery.routing_key.as_str(),
                    &delivery.data,
                    props,
                )
                .await
            {
                Ok(()) => {
                    warn!(message_id = %env.message_id, route = %route.name, kind = f.kind, code = %f.code, error = %f.message, "failed");
                    shared.stats.failed.fetch_add(1, Ordering::Relaxed);
                    ack();
                }
                Err(e) => {
                    warn!(message_id = %env.message_id, route = %route.name, error = %e, "could not record a failure; returning the input to its queue");
                    requeue(&shared, &settler, &delivery)
                }
            }
        }
        Outcome::Retry { targets, reason } => {
            let attempt = headers::attempt(delivery.properties.headers().as_ref());
            let delay = route
                .delays
                .get(attempt as usize)
                .or(route.delays.last())
                .copied()
                .unwrap_or(std::time::Duration::from_secs(1));
            let props =
                message::retry_properties(&delivery, &env, &route.name, attempt + 1, &targets);
            match shared
                .publisher
                .publish_confirmed(
                    &shared.names.retry(delay),
                    &route.queue,
                    &delivery.data,
                    props,
                )
                .await
            {
                Ok(()) => {
                    debug!(message_id = %env.message_id, route = %route.name, attempt = attempt + 1, ?delay, reason = %reason, "retrying");
                    shared.stats.retried.fetch_add(1, Ordering::Relaxed);
                    ack();
                }
                Err(e) => {
                    warn!(message_id = %env.message_id, route = %route.name, error = %e, "could not schedule a retry; returning the input to its queue");
                    requeue(&shared, &settler, &delivery)
                }
            }
        }
        Outcome::Requeue(why) => {
            warn!(message_id = %env.message_id, route = %route.name, reason = %why, "returning the input to its queue");
            requeue(&shared, &settler, &delivery)
        }
    }
}

/// The message of a caught panic (what `panic!` was given), for the failure record.
fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

fn requeue(shared: &Shared, settler: &Settler, d: &Delivery) {
    shared.stats.requeued.fetch_add(1, Ordering::Relaxed);
    settler.requeue(d.delivery_tag, d.acker.clone());
}

fn failure(e: &MapError, targets: &[Target]) -> Failure {
    Failure {
        kind: e.kind().as_str(),
        code: e.code(),
        message: e.to_string(),
        targets: targets.iter().map(|t| t.id.clone()).collect(),
    }
}

async fn process(
    shared: &Arc<Shared>,
    route: &Arc<Route>,
    d: &Delivery,
    env: &Envelope,
) -> Outcome {
    // Targets still to deliver: all, or those a retry or replay names.
    let wanted: Vec<usize> = match headers::text(d.properties.headers().as_ref(), headers::TARGETS)
    {
        Some(list) if !list.trim().is_empty() => route
            .targets
            .iter()
            .enumerate()
            .filter(|(_, t)| list.split(',').any(|x| x.trim() == t.id))
            .map(|(i, _)| i)
            .collect(),
        _ => (0..route.targets.len()).collect(),
    };
    if d.data.len() > shared.limits.max_bytes {
        return Outcome::Failed(Failure {
            kind: "limit",
            code: "limit.size".into(),
            message: format!(
                "message of {} bytes is over limits.max_message_bytes ({} bytes); it was not mapped",
                d.data.len(),
                shared.limits.max_bytes
            ),
            targets: route.targets.iter().map(|t| t.id.clone()).collect(),
        });
    }
    failpoint::abort_on(&env.message_id);
    let outs = match build_outputs(shared, route, d, env, &wanted).await {
        Ok(o) => o,
        Err(f) => return Outcome::Failed(f),
    };
    let mut pending: Vec<(usize, Result<Pending, PublishError>)> = Vec::with_capacity(outs.len());
    for o in outs {
        let r = shared
            .publisher
            .publish(&o.exchange, &o.routing_key, &o.body, o.properties)
            .await;
        pending.push((o.target, r));
    }
    failpoint::hit(failpoint::AFTER_PUBLISH_BEFORE_CONFIRM);
    let mut unroutable: Vec<(usize, String)> = Vec::new();
    let mut transient: Vec<(usize, String)> = Vec::new();
    for (t, p) in pending {
        let r = match p {
            Ok(p) => p.wait().await,
            Err(e) => Err(e),
        };
        match r {
            Ok(()) => {}
            Err(e @ PublishError::Unroutable { .. }) => unroutable.push((t, e.to_string())),
            // The channel or connection failed: nothing is known; redeliver the input.
            Err(e @ PublishError::Broker { .. }) => return Outcome::Requeue(e.to_string()),
            Err(e) => transient.push((t, e.to_string())),
        }
    }
    if unroutable.is_empty() && transient.is_empty() {
        return Outcome::Delivered;
    }
    let mut failed: Vec<usize> = unroutable
        .iter()
        .chain(&transient)
        .map(|(t, _)| *t)
        .collect();
    failed.sort_unstable();
    failed.dedup();
    let targets: Vec<String> = failed
        .iter()
        .map(|i| route.targets[*i].id.clone())
        .collect();
    let attempt = headers::attempt(d.properties.headers().as_ref());
    let (kind, code, detail) = if let Some((_, e)) = unroutable.first() {
        ("unroutable", "delivery.unroutable", e.clone())
    } else if attempt + 1 < route.attempts {
        return Outcome::Retry {
            targets,
            reason: transient[0].1.clone(),
        };
    } else {
        (
            "delivery",
            "delivery.attempts_exhausted",
            format!("{} (after {} attempts)", transient[0].1, attempt + 1),
        )
    };
    Outcome::Failed(Failure {
        kind,
        code: code.into(),
        message: format!("route {}: {detail}", route.name),
        targets: failed
            .into_iter()
            .map(|i| route.targets[i].id.clone())
            .collect(),
    })
}

/// Map the input (off the reactor), then every outbound mapping, before anything is
/// published: if any output fails, the whole input fails and nothing leaves.
async fn build_outputs(
    shared: &Arc<Shared>,
    route: &Arc<Route>,
    d: &Delivery,
    env: &Envelope,
    wanted: &[usize],
) -> Result<Vec<Out>, Failure> {
    let all_targets = &route.targets;
    let panicked = |e: &dyn std::fmt::Display| Failure {
        kind: "mapping",
        code: "mapping.panic".into(),
        message: format!("the mapping stopped unexpectedly: {e}"),
        targets: all_targets.iter().map(|t| t.id.clone()).collect(),
    };
    let takers = takers(route, d);
    let mapped = if d.data.len() <= INLINE_MAX_BYTES {
        // A small input maps in well under a millisecond: handing it to another thread
        // and back costs more than the mapping (two context switches per message).
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            map_all(shared, route, env, &d.data, wanted, takers)
        }))
        .map_err(|payload| panicked(&panic_text(payload.as_ref())))?
    } else {
        let _permit = shared.cpu.acquire().await.map_err(|_| Failure {
            kind: "mapping",
            code: "router.stopped".into(),
            message: "the router is stopping".into(),
            targets: Vec::new(),
        })?;
        let job = {
            let shared = shared.clone();
            let route = route.clone();
            let env = env.clone();
            let body = d.data.clone();
            let wanted = wanted.to_vec();
            move || map_all(&shared, &route, &env, &body, &wanted, takers)
        };
        tokio::task::spawn_blocking(job)
            .await
            .map_err(|e| panicked(&e))?
    };
    let per_target = mapped.map_err(|e| failure(&e, all_targets))?;
    let mut outs = Vec::new();
    let batch = per_target.iter().any(|(_, m)| m.index.is_some());
    for (t, m) in per_target {
        let target = &all_targets[t];
        let mut h = message::carried_headers(d, &route.name);
        if batch {
            headers::set(&mut h, headers::PARENT_ID, env.message_id.as_str());
        }
        let routing_key = target
            .routing_key
            .clone()
            .or_else(|| m.event.clone())
            .unwrap_or_else(|| d.routing_key.as_str().to_owned());
        let properties = message::output_properties(
            d,
            env,
            &m.message_id,
            m.correlation_id.as_deref(),
            m.content_type,
            m.event.as_deref(),
            h,
        );
        outs.push(Out {
            target: t,
            exchange: target.exchange.clone(),
            routing_key,
            body: m.body,
            properties,
        });
    }
    Ok(outs)
}

/// How many other routes receive this input and can take its canonical outputs: for a
/// first delivery, the routes of the same adapter whose binding matches its routing key.
/// A retry, a replay or a redelivery (after a crash or a requeue) reaches this route
/// only.
fn takers(route: &Route, d: &Delivery) -> usize {
    if route.siblings.is_empty() || d.redelivered {
        return 0;
    }
    let h = d.properties.headers().as_ref();
    if headers::attempt(h) > 0
        || headers::text(h, headers::TARGETS).is_some()
        || headers::text(h, headers::REPLAY_OF).is_some()
    {
        return 0;
    }
    let key = d.routing_key.as_str();
    route
        .siblings
        .iter()
        .filter(|b| lgsp_amqp::topic::matches(b, key))
        .count()
}

/// Inbound mapping (or the one another route kept for this input), then for each
/// wanted target its outbound mapping (or the canonical output as is):
/// `(target index, output)` pairs.
fn map_all(
    shared: &Shared,
    route: &Route,
    env: &Envelope,
    body: &[u8],
    wanted: &[usize],
    takers: usize,
) -> Result<Vec<(usize, Mapped)>, MapError> {
    failpoint::panic_on(&env.message_id);
    let adapter =
        shared
            .adapters
            .by_name
            .get(&route.adapter)
            .ok_or_else(|| MapError::UnknownMapping {
                adapter: route.adapter.clone(),
                mapping: String::new(),
                known: String::new(),
            })?;
    let kept = if takers > 0 {
        shared.shelf.take(&route.adapter, env, body)
    } else {
        None
    };
    let canonical = match kept {
        Some(kept) => {
            shared.stats.mappings_shared.fetch_add(1, Ordering::Relaxed);
            kept
        }
        None => {
            let mapped = adapter.map_message(env, body, None, &shared.limits);
            shared.stats.mapped.fetch_add(1, Ordering::Relaxed);
            let mapped = Arc::new(mapped?);
            shared
                .shelf
                .keep(&route.adapter, env, body, &mapped, takers);
            mapped
        }
    };
    // Named in errors only: made when a route check runs, not for every input.
    let step = || format!("route {}", route.name);
    for m in canonical.iter() {
        if route.strict_admin_codes {
            lgsp_mapping::domain::refuse_legacy_admin_codes(&step(), &m.value)?;
        }
        if let Some(schema) = &route.validate {
            shared
                .adapters
                .validate(schema, &m.value)
                .map_err(|e| MapError::Field(e.into_field_error(&step())))?;
        }
    }
    let mut out = Vec::with_capacity(canonical.len() * wanted.len());
    for m in canonical.iter() {
        for &t in wanted {
            let target = &route.targets[t];
            if let Some(when) = &target.when {
                let mut found = Vec::new();
                when.select(&m.value, &mut found);
                if found
                    .iter()
                    .all(|v| v.is_null() || v.as_str().is_some_and(str::is_empty))
                {
                    continue;
                }
            }
            match &target.map {
                None => out.push((t, m.clone())),
                Some((a, name)) => {
                    let ad =
                        shared
                            .adapters
                            .by_name
                            .get(a)
                            .ok_or_else(|| MapError::UnknownMapping {
                                adapter: a.clone(),
                                mapping: name.clone(),
                                known: String::new(),
                            })?;
                    let program = ad.program(name)?;
                    let mut child = env.clone();
                    child.message_id = m.message_id.clone();
                    if m.correlation_id.is_some() {
                        child.correlation_id = m.correlation_id.clone();
                    }
                    // An outbound batch (one document per school of an allocation, say)
                    // gives its children ids derived from the canonical message's id.
                    let outputs = ad.run(program, &m.value, Format::Json, &child)?;
                    let many = outputs.len() > 1;
                    for (j, mut o) in outputs.into_iter().enumerate() {
                        if many {
                            o.message_id = lgsp_core::envelope::child_message_id(&m.message_id, j);
                            o.correlation_id = Some(m.message_id.clone());
                        } else {
                            o.message_id = m.message_id.clone();
                            o.correlation_id = m.correlation_id.clone();
                        }
                        o.event = m.event.clone();
                        o.index = m.index;
                        out.push((t, o));
                    }
                }
            }
        }
    }
    Ok(out)
}
