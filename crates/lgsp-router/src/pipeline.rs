//! One input, start to finish: find the routes that want it, decode and map it once,
//! run each route's checks and outbound mappings, publish every output, wait for every
//! confirm, then settle it as `decide` says: ack, or retry and fail what is left (both
//! confirmed) and ack, or return it to its queue when something is unknown.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use lgsp_amqp::headers;
use lgsp_amqp::inbound::Inbound;
use lgsp_amqp::publish::{Confirm, Publish, PublishError};
use lgsp_amqp::routes::{qualify, split};
use lgsp_core::agreement::{self, Policy};
use lgsp_core::failure::FailureKind;
use lgsp_core::metrics::{AdapterLabel, RouteLabel, TargetLabels};
use lgsp_core::tracking::{self, Event, kind};
use lgsp_mapping::decode::Format;
use lgsp_mapping::dsl::{MapError, Mapped};
use tracing::{debug, warn};

use crate::decide::{self, Answer, Cause, Plan, Verdict};
use crate::failpoint;
use crate::message;
use crate::settle::Ticket;
use crate::{Pipeline, Route, Shared};

/// Inputs up to this size are mapped on the worker that received them; larger ones on
/// the blocking pool, so that a big document cannot stall the other deliveries.
const INLINE_MAX_BYTES: usize = 32 * 1024;

/// The targets of one route that an input still has to reach.
struct Wanted {
    route: usize,
    targets: Vec<usize>,
}

/// A publish awaiting its confirm: which wanted route and target slot, since when.
type Sent<C> = (usize, usize, std::time::Instant, Result<C, PublishError>);

/// What one route made of the input: per target, its outputs; or why it made nothing.
type RouteOutputs = Result<Vec<(usize, Mapped)>, Cause>;

/// One input, in its span (`message`: id, adapter, routing key, attempt, app): every
/// line logged while it is handled carries them.
pub(crate) async fn handle<P: Publish, A>(
    shared: Arc<Shared<P>>,
    pipeline: Arc<Pipeline>,
    ticket: Ticket<A>,
    input: Inbound,
) {
    let span = tracing::info_span!(
        "message",
        message_id = %input.envelope.message_id,
        adapter = %pipeline.adapter,
        routing_key = %input.routing_key,
        attempt = input.attempt,
        app = input.envelope.app_id.as_deref().unwrap_or(""),
        trace_id = trace_id(&input).as_deref().unwrap_or(""),
    );
    tracing::Instrument::instrument(handle_in_span(shared, pipeline, ticket, input), span).await
}

/// The W3C trace id of the input's `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`), when
/// it has a valid one: log lines of the message can then be joined with its trace.
pub(crate) fn trace_id(input: &Inbound) -> Option<String> {
    let tp = headers::text(input.properties.headers().as_ref(), headers::TRACEPARENT)?;
    let id = tp.split('-').nth(1)?;
    (id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()) && id.bytes().any(|b| b != b'0'))
        .then(|| id.to_ascii_lowercase())
}

async fn handle_in_span<P: Publish, A>(
    shared: Arc<Shared<P>>,
    pipeline: Arc<Pipeline>,
    ticket: Ticket<A>,
    input: Inbound,
) {
    let m = &shared.metrics;
    m.received
        .get_or_create(&AdapterLabel {
            adapter: pipeline.adapter.clone(),
        })
        .inc();
    m.in_flight.inc();
    let _in_flight = InFlight(&m.in_flight);
    let id = input.envelope.message_id.as_str();
    let received_at = shared.tracker.is_on().then(tracking::now_ms);
    let plan = process(&shared, &pipeline, &input).await;
    // A first delivery that reached every target is told by its `delivered` events
    // alone (they say how it was received): one row per target, not two, for the
    // common case. Anything else has its `received` event, dated when it came.
    if let Some(at) = received_at
        && !(plan.delivered() && first_delivery(&input))
    {
        shared
            .tracker
            .record(Event::at(id, kind::RECEIVED, at).detail(reception(&pipeline.adapter, &input)));
    }
    if plan.delivered() {
        failpoint::hit(failpoint::AFTER_CONFIRM_BEFORE_ACK);
        shared.stats.routed.fetch_add(1, Ordering::Relaxed);
        return ticket.ack();
    }
    let (retry, failures) = match plan {
        Plan::Settle { retry, failures } => (retry, failures),
        Plan::Requeue(why) => {
            warn!(message_id = %id, queue = %pipeline.queue, reason = %why, "returning the input to its queue");
            shared
                .tracker
                .with(|| Event::now(id, kind::REQUEUED).detail(why));
            return requeue(&shared, ticket);
        }
    };
    // Everything that is left is published, then confirmed, before the input is acked.
    let at = tracking::now_ms();
    let mut pending: Vec<Result<P::Pending, PublishError>> = Vec::new();
    if let Some(r) = &retry {
        let props = message::retry_properties(&input, r);
        pending.push(
            shared
                .publisher
                .publish(
                    &shared.names.retry(r.delay),
                    &pipeline.queue,
                    &input.body,
                    props,
                )
                .await,
        );
    }
    let failed = shared.names.failed();
    for f in &failures {
        let props = message::failure_properties(&input, f);
        pending.push(
            shared
                .publisher
                .publish(&failed, &input.routing_key, &input.body, props)
                .await,
        );
    }
    for p in pending {
        let r = match p {
            Ok(p) => p.wait().await,
            Err(e) => Err(e),
        };
        if let Err(e) = r {
            warn!(message_id = %id, queue = %pipeline.queue, error = %e, "could not schedule a retry or record a failure; returning the input to its queue");
            return requeue(&shared, ticket);
        }
    }
    if let Some(r) = &retry {
        debug!(message_id = %id, routes = %r.routes.join(","), attempt = input.attempt + 1, delay = ?r.delay, reason = %r.reason, "retrying");
        shared.stats.retried.fetch_add(1, Ordering::Relaxed);
        shared.tracker.with(|| {
            Event::at(id, kind::RETRIED, at)
                .route(r.routes.join(","))
                .target(r.targets.join(","))
                .detail(format!("attempt {} in {:?}", input.attempt + 1, r.delay))
        });
        for route in &r.routes {
            m.retried
                .get_or_create(&RouteLabel {
                    route: route.clone(),
                })
                .inc();
        }
    }
    for f in &failures {
        warn!(message_id = %id, routes = %f.routes.join(","), kind = %f.kind, code = %f.code, error = %f.message, "failed");
        shared.stats.failed.fetch_add(1, Ordering::Relaxed);
        m.failure(&f.routes, f.kind, &f.code);
        shared.tracker.with(|| {
            Event::at(id, kind::FAILED, at)
                .route(f.routes.join(","))
                .target(f.targets.join(","))
                .detail(format!("{}/{}", f.kind, f.code))
        });
    }
    ticket.ack();
}

/// Neither a retry nor a replay.
fn first_delivery(input: &Inbound) -> bool {
    input.attempt == 0 && input.targets.is_none()
}

/// How an input came, for its tracking events.
fn reception(adapter: &str, input: &Inbound) -> String {
    let mut detail = format!(
        "adapter {adapter}, key {}, attempt {}",
        input.routing_key, input.attempt
    );
    if let Some(app) = &input.envelope.app_id {
        detail.push_str(", app ");
        detail.push_str(app);
    }
    detail
}

/// Takes an input off the in-flight gauge however its handling ends.
struct InFlight<'g>(&'g prometheus_client::metrics::gauge::Gauge);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

fn requeue<P, A>(shared: &Shared<P>, ticket: Ticket<A>) {
    shared.stats.requeued.fetch_add(1, Ordering::Relaxed);
    ticket.requeue();
}

/// The message of a caught panic (what `panic!` was given), for the failure record.
fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

fn cause(e: &MapError) -> Cause {
    Cause {
        kind: e.kind(),
        code: e.code(),
        message: e.to_string(),
    }
}

/// The routes and targets the input still has to reach: those a retry or replay names
/// (`lgsp-targets`), or every target of every route whose binding matches its key.
fn wanted(p: &Pipeline, input: &Inbound) -> Vec<Wanted> {
    let mut out: Vec<Wanted> = Vec::new();
    let Some(ids) = &input.targets else {
        for (i, r) in p.routes.iter().enumerate() {
            if lgsp_amqp::topic::matches(&r.binding, &input.routing_key) {
                out.push(Wanted {
                    route: i,
                    targets: (0..r.targets.len()).collect(),
                });
            }
        }
        return out;
    };
    for id in ids {
        // An id written before ids named their route belongs to the message's one route.
        let (route, target) = match split(id) {
            (Some(route), target) => (route, target),
            (None, target) => match input.route.as_deref() {
                Some(route) if !route.contains(',') => (route, target),
                _ => continue,
            },
        };
        let Some(ri) = p.routes.iter().position(|r| r.name == route) else {
            continue;
        };
        let qualified = qualify(route, target);
        let Some(ti) = p.routes[ri].targets.iter().position(|t| t.id == qualified) else {
            continue;
        };
        match out.iter_mut().find(|w| w.route == ri) {
            Some(w) if !w.targets.contains(&ti) => w.targets.push(ti),
            Some(_) => {}
            None => out.push(Wanted {
                route: ri,
                targets: vec![ti],
            }),
        }
    }
    out
}

/// Everything up to the plan: what to do with the input once its targets answered.
pub(crate) async fn process<P: Publish>(
    shared: &Arc<Shared<P>>,
    p: &Arc<Pipeline>,
    input: &Inbound,
) -> Plan {
    let wanted = wanted(p, input);
    if wanted.is_empty() {
        let message = match &input.targets {
            Some(ids) => format!(
                "no configured route of adapter {} has the targets this message still has to reach ({}); the routes were removed or renamed: add them back, or discard it",
                p.adapter,
                ids.join(",")
            ),
            None => format!(
                "no configured route of adapter {} binds routing key `{}`; queue {} keeps a binding of an earlier configuration: add a route for it, or remove the binding from the queue",
                p.adapter, input.routing_key, p.queue
            ),
        };
        return Plan::Settle {
            retry: None,
            failures: vec![decide::Failure {
                kind: FailureKind::Unroutable,
                code: "route.none".into(),
                message,
                targets: input.targets.clone().unwrap_or_default(),
                routes: Vec::new(),
            }],
        };
    }
    let fail_all = |c: Cause| -> Plan {
        let verdicts: Vec<Verdict<'_>> = wanted
            .iter()
            .flat_map(|w| {
                let route = &p.routes[w.route];
                w.targets.iter().map(move |t| (route, *t))
            })
            .map(|(route, t)| Verdict {
                route,
                target: &route.targets[t],
                answer: Answer::Failed(c.clone()),
            })
            .collect();
        decide::decide(input.attempt, &verdicts)
    };
    if let Some(denied) = shared.access.as_ref().and_then(|a| a.refuse(input)) {
        return fail_all(Cause {
            kind: FailureKind::Forbidden,
            code: "publish.forbidden".into(),
            message: denied.0,
        });
    }
    if input.body.len() > shared.limits.max_bytes {
        return fail_all(Cause {
            kind: FailureKind::Limit,
            code: "limit.size".into(),
            message: format!(
                "message of {} bytes is over limits.max_message_bytes ({} bytes); it was not mapped",
                input.body.len(),
                shared.limits.max_bytes
            ),
        });
    }
    failpoint::abort_on(&input.envelope.message_id);
    let mapping = std::time::Instant::now();
    let mapped = map_input(shared, p, input, &wanted).await;
    shared
        .metrics
        .mapping_seconds
        .get_or_create(&AdapterLabel {
            adapter: p.adapter.clone(),
        })
        .observe(mapping.elapsed().as_secs_f64());
    let per_route = match mapped {
        Ok(o) => o,
        Err(c) => return fail_all(c),
    };

    // Publish everything without waiting, then collect the confirms.
    let mut answers: Vec<Vec<Answer>> = wanted
        .iter()
        .map(|w| vec![Answer::Delivered; w.targets.len()])
        .collect();
    let mut pending: Vec<Sent<P::Pending>> = Vec::new();
    let published_at = tracking::now_ms();
    for (wi, outputs) in per_route.into_iter().enumerate() {
        let w = &wanted[wi];
        let route = &p.routes[w.route];
        let outputs = match outputs {
            Ok(o) => o,
            Err(c) => {
                for a in &mut answers[wi] {
                    *a = Answer::Failed(c.clone());
                }
                continue;
            }
        };
        let batch = outputs.iter().any(|(_, m)| m.index.is_some());
        for (t, m) in outputs {
            let target = &route.targets[t];
            let mut h = message::carried_headers(input, &route.name);
            if target.webhook.is_some() {
                // Its own tries start here: the webhook's deliverer counts them.
                headers::set_int(&mut h, headers::ATTEMPT, 0);
            }
            if batch {
                headers::set(
                    &mut h,
                    headers::PARENT_ID,
                    input.envelope.message_id.as_str(),
                );
            }
            let routing_key = target
                .routing_key
                .as_deref()
                .or(m.event.as_deref())
                .unwrap_or(&input.routing_key);
            let properties = message::output_properties(
                input,
                &input.envelope,
                &m.message_id,
                m.correlation_id.as_deref(),
                m.content_type,
                m.event.as_deref(),
                h,
            );
            let sent = std::time::Instant::now();
            let r = shared
                .publisher
                .publish(&target.exchange, routing_key, &m.body, properties)
                .await;
            let slot = w.targets.iter().position(|x| *x == t).unwrap_or(0);
            pending.push((wi, slot, sent, r));
        }
    }
    failpoint::hit(failpoint::AFTER_PUBLISH_BEFORE_CONFIRM);
    for (wi, slot, sent, p) in pending {
        let r = match p {
            Ok(p) => p.wait().await,
            Err(e) => Err(e),
        };
        shared
            .metrics
            .confirm_seconds
            .observe(sent.elapsed().as_secs_f64());
        let answer = match r {
            Ok(()) => continue,
            Err(e @ PublishError::Unroutable { .. }) => Answer::Unroutable(e.to_string()),
            Err(e @ PublishError::Broker { .. }) => Answer::Lost(e.to_string()),
            Err(e) => Answer::Refused(e.to_string()),
        };
        // The worst answer of a target's outputs is the target's.
        let a = &mut answers[wi][slot];
        if severity(&answer) > severity(a) {
            *a = answer;
        }
    }
    let verdicts: Vec<Verdict<'_>> = wanted
        .iter()
        .zip(answers)
        .flat_map(|(w, answers)| {
            let route = &p.routes[w.route];
            w.targets
                .iter()
                .zip(answers)
                .map(move |(t, answer)| Verdict {
                    route,
                    target: &route.targets[*t],
                    answer,
                })
        })
        .collect();
    // A clean first delivery has no `received` event: its deliveries say how it came.
    let clean = shared.tracker.is_on()
        && first_delivery(input)
        && verdicts.iter().all(|v| v.answer == Answer::Delivered);
    // A webhook target's delivery is counted when its receiver answers 2xx.
    for v in &verdicts {
        if v.answer != Answer::Delivered {
            continue;
        }
        shared.tracker.with(|| {
            // A webhook's deliverer may answer before this line: its queueing is dated
            // by the publish.
            let id = &input.envelope.message_id;
            let e = match v.target.webhook {
                Some(_) => Event::at(id, kind::QUEUED, published_at),
                None => Event::now(id, kind::DELIVERED),
            }
            .route(v.route.name.as_str())
            .target(v.target.id.as_str());
            if clean {
                e.detail(reception(&p.adapter, input))
            } else {
                e
            }
        });
        if v.target.webhook.is_none() {
            shared
                .metrics
                .delivered
                .get_or_create(&TargetLabels {
                    route: v.route.name.clone(),
                    target: v.target.id.clone(),
                })
                .inc();
        }
    }
    decide::decide(input.attempt, &verdicts)
}

/// What `receiver` may get of canonical output `m` (its agreements, personal data
/// removed): `m` itself when that is all of it.
fn entitled<'m, P>(
    shared: &Shared<P>,
    route: &Route,
    receiver: &str,
    m: &'m Mapped,
) -> Cow<'m, Mapped> {
    let policy = shared.agreements.policy(receiver, m.event.as_deref());
    let schema = route
        .validate
        .as_deref()
        .or_else(|| m.value.get("schema").and_then(serde_json::Value::as_str));
    let personal = shared.adapters.domain.schemas.personal_paths(schema);
    if matches!(policy, Policy::NotPersonal) && personal.is_empty() {
        return Cow::Borrowed(m);
    }
    let value = agreement::apply(&policy, &m.value, personal);
    if value == m.value {
        return Cow::Borrowed(m);
    }
    let body = lgsp_mapping::json_out::to_vec(&value);
    Cow::Owned(Mapped {
        message_id: m.message_id.clone(),
        correlation_id: m.correlation_id.clone(),
        event: m.event.clone(),
        index: m.index,
        value,
        body,
        content_type: "application/json",
    })
}

fn severity(a: &Answer) -> u8 {
    match a {
        Answer::Delivered => 0,
        Answer::Refused(_) => 1,
        Answer::Failed(_) | Answer::Unroutable(_) => 2,
        Answer::Lost(_) => 3,
    }
}

/// Decode and map the input once (off the reactor when it is large), then each wanted
/// route's checks and outbound mappings: per wanted route, its outputs or why it has
/// none. A failure of the input itself (decode, mapping, a panic) fails every route.
async fn map_input<P: Publish>(
    shared: &Arc<Shared<P>>,
    p: &Arc<Pipeline>,
    input: &Inbound,
    wanted: &[Wanted],
) -> Result<Vec<RouteOutputs>, Cause> {
    let panicked = |e: &dyn std::fmt::Display| Cause {
        kind: FailureKind::Mapping,
        code: "mapping.panic".into(),
        message: format!("the mapping stopped unexpectedly: {e}"),
    };
    let routes: Vec<(usize, Vec<usize>)> = wanted
        .iter()
        .map(|w| (w.route, w.targets.clone()))
        .collect();
    if input.body.len() <= INLINE_MAX_BYTES {
        // A small input maps in well under a millisecond: handing it to another thread
        // and back costs more than the mapping (two context switches per message).
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            map_all(shared, p, input, &routes)
        }))
        .map_err(|payload| panicked(&panic_text(payload.as_ref())))?
    } else {
        let _permit = shared.cpu.acquire().await.map_err(|_| Cause {
            kind: FailureKind::Mapping,
            code: "router.stopped".into(),
            message: "the router is stopping".into(),
        })?;
        let job = {
            let shared = shared.clone();
            let p = p.clone();
            let input = input.clone();
            move || map_all(&shared, &p, &input, &routes)
        };
        tokio::task::spawn_blocking(job)
            .await
            .map_err(|e| panicked(&e))?
    }
}

/// The inbound mapping, once, then for each wanted route its checks and, per wanted
/// target, its outbound mapping (or the canonical output as is).
fn map_all<P>(
    shared: &Shared<P>,
    p: &Pipeline,
    input: &Inbound,
    wanted: &[(usize, Vec<usize>)],
) -> Result<Vec<RouteOutputs>, Cause> {
    let env = &input.envelope;
    failpoint::panic_on(&env.message_id);
    let adapter = shared.adapters.by_name.get(&p.adapter).ok_or_else(|| {
        cause(&MapError::UnknownMapping {
            adapter: p.adapter.clone(),
            mapping: String::new(),
            known: String::new(),
        })
    })?;
    shared.stats.mapped.fetch_add(1, Ordering::Relaxed);
    let canonical = adapter
        .map_message(env, &input.body, None, &shared.limits)
        .map_err(|e| cause(&e))?;
    Ok(wanted
        .iter()
        .map(|(ri, targets)| route_outputs(shared, &p.routes[*ri], input, &canonical, targets))
        .collect())
}

/// One route's part: its checks on the canonical outputs, then its targets' outputs.
fn route_outputs<P>(
    shared: &Shared<P>,
    route: &Route,
    input: &Inbound,
    canonical: &[Mapped],
    targets: &[usize],
) -> RouteOutputs {
    let run = || -> Result<Vec<(usize, Mapped)>, MapError> {
        // Named in errors only: made when a route check runs, not for every input.
        let step = || format!("route {}", route.name);
        for m in canonical {
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
        let mut out = Vec::with_capacity(canonical.len() * targets.len());
        for m in canonical {
            for &t in targets {
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
                let shared_part = match &target.receiver {
                    Some(r) => entitled(shared, route, r, m),
                    None => Cow::Borrowed(m),
                };
                let m = shared_part.as_ref();
                let Some((a, name)) = &target.map else {
                    out.push((t, m.clone()));
                    continue;
                };
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
                let mut child = input.envelope.clone();
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
        Ok(out)
    };
    run().map_err(|e| cause(&e))
}
