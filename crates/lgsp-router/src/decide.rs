//! What to do with an input once every target that wanted it has answered: a pure
//! function of the attempt count, the routes' retry policies and each target's answer,
//! so every rule of `design.md` is a unit test without a broker.
//!
//! - Some target's answer is unknown (the channel or connection failed before its
//!   confirm): return the input to its queue; nothing else is done.
//! - Otherwise every target that did not get the message either goes to a retry queue
//!   (refused for now, and its route has tries left) or into a failure record. Failures
//!   of one cause (error kind and code) are one record listing every route and target
//!   they cost, so an input bound by two routes that fails to map is one record, not two.

use std::time::Duration;

use lgsp_core::failure::FailureKind;

use crate::{Route, Target};

/// Why a target did not get the message, when it is permanent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cause {
    pub kind: FailureKind,
    pub code: String,
    pub message: String,
}

/// What became of one target of one route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Answer {
    /// Every output confirmed (or the target wanted none of them: `when`).
    Delivered,
    /// Nothing was published for it: the input, its route's checks or its outbound
    /// mapping failed.
    Failed(Cause),
    /// The broker had no queue for it (returned as unroutable): permanent.
    Unroutable(String),
    /// The broker refused it for now (nacked, e.g. a full queue): worth a later try.
    Refused(String),
    /// The channel or connection failed before its confirm: nothing is known.
    Lost(String),
}

/// One target's answer.
#[derive(Debug, Clone)]
pub(crate) struct Verdict<'r> {
    pub route: &'r Route,
    pub target: &'r Target,
    pub answer: Answer,
}

/// A failure record to write: one cause, every route and target it cost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    pub kind: FailureKind,
    pub code: String,
    pub message: String,
    /// Qualified ids of the targets still to deliver.
    pub targets: Vec<String>,
    /// The routes those targets belong to, sorted.
    pub routes: Vec<String>,
}

/// Targets to try again later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Retry {
    pub targets: Vec<String>,
    pub routes: Vec<String>,
    pub delay: Duration,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Plan {
    /// Return the input to its queue: the broker will deliver it again.
    Requeue(String),
    /// Publish the retry and the failure records (if any), then ack the input. Nothing
    /// to publish: every target got it.
    Settle {
        retry: Option<Retry>,
        failures: Vec<Failure>,
    },
}

impl Plan {
    pub(crate) fn delivered(&self) -> bool {
        matches!(self, Plan::Settle { retry: None, failures } if failures.is_empty())
    }
}

/// The plan for an input delivered for the `attempt`-th time (0 = first), whose targets
/// gave `verdicts`.
pub(crate) fn decide(attempt: u32, verdicts: &[Verdict<'_>]) -> Plan {
    if let Some(why) = verdicts.iter().find_map(|v| match &v.answer {
        Answer::Lost(why) => Some(why.clone()),
        _ => None,
    }) {
        return Plan::Requeue(why);
    }
    let mut failures: Vec<Failure> = Vec::new();
    let mut retry: Option<Retry> = None;
    for v in verdicts {
        let cause = match &v.answer {
            Answer::Delivered | Answer::Lost(_) => continue,
            Answer::Failed(c) => c.clone(),
            Answer::Unroutable(e) => Cause {
                kind: FailureKind::Unroutable,
                code: "delivery.unroutable".into(),
                message: format!("route {}: {e}", v.route.name),
            },
            Answer::Refused(e) if attempt + 1 < v.route.attempts => {
                let delay = delay(v.route, attempt);
                let r = retry.get_or_insert_with(|| Retry {
                    targets: Vec::new(),
                    routes: Vec::new(),
                    delay,
                    reason: e.clone(),
                });
                r.delay = r.delay.min(delay);
                r.targets.push(v.target.id.clone());
                add_route(&mut r.routes, &v.route.name);
                continue;
            }
            Answer::Refused(e) => Cause {
                kind: FailureKind::Delivery,
                code: "delivery.attempts_exhausted".into(),
                message: format!(
                    "route {}: {e} (after {} attempts)",
                    v.route.name,
                    attempt + 1
                ),
            },
        };
        let f = match failures
            .iter_mut()
            .find(|f| f.kind == cause.kind && f.code == cause.code)
        {
            Some(f) => f,
            None => {
                failures.push(Failure {
                    kind: cause.kind,
                    code: cause.code,
                    message: cause.message,
                    targets: Vec::new(),
                    routes: Vec::new(),
                });
                let last = failures.len() - 1;
                &mut failures[last]
            }
        };
        f.targets.push(v.target.id.clone());
        add_route(&mut f.routes, &v.route.name);
    }
    Plan::Settle { retry, failures }
}

/// The wait before try `attempt + 1` of `route`: its delays in order, the last repeating.
fn delay(route: &Route, attempt: u32) -> Duration {
    route
        .delays
        .get(attempt as usize)
        .or(route.delays.last())
        .copied()
        .unwrap_or(Duration::from_secs(1))
}

fn add_route(routes: &mut Vec<String>, route: &str) {
    if let Err(i) = routes.binary_search_by(|r| r.as_str().cmp(route)) {
        routes.insert(i, route.to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(route: &str, app: &str) -> Target {
        Target {
            id: format!("{route}/app:{app}"),
            exchange: "lgsp.app".into(),
            routing_key: Some(app.into()),
            map: None,
            when: None,
            receiver: Some(app.into()),
            webhook: None,
        }
    }

    fn route(name: &str, attempts: u32, delays: &[u64], apps: &[&str]) -> Route {
        Route {
            name: name.into(),
            binding: "#".into(),
            targets: apps.iter().map(|a| target(name, a)).collect(),
            attempts,
            delays: delays.iter().map(|s| Duration::from_secs(*s)).collect(),
            validate: None,
            strict_admin_codes: false,
        }
    }

    fn cause(code: &str) -> Cause {
        Cause {
            kind: FailureKind::Mapping,
            code: code.into(),
            message: format!("{code} happened"),
        }
    }

    fn verdicts<'r>(pairs: &[(&'r Route, usize, Answer)]) -> Vec<Verdict<'r>> {
        pairs
            .iter()
            .map(|(r, t, a)| Verdict {
                route: r,
                target: &r.targets[*t],
                answer: a.clone(),
            })
            .collect()
    }

    #[test]
    fn every_target_delivered_is_an_ack_and_nothing_else() {
        let a = route("a", 5, &[1], &["tax", "finance"]);
        let plan = decide(
            0,
            &verdicts(&[(&a, 0, Answer::Delivered), (&a, 1, Answer::Delivered)]),
        );
        assert!(plan.delivered(), "{plan:?}");
    }

    #[test]
    fn an_input_that_fails_for_two_routes_is_one_record_naming_both() {
        let a = route("b-route", 5, &[1], &["tax"]);
        let b = route("a-route", 5, &[1], &["finance", "emis"]);
        let c = cause("mapping.required");
        let plan = decide(
            0,
            &verdicts(&[
                (&a, 0, Answer::Failed(c.clone())),
                (&b, 0, Answer::Failed(c.clone())),
                (&b, 1, Answer::Failed(c.clone())),
            ]),
        );
        let Plan::Settle { retry, failures } = plan else {
            panic!("settles")
        };
        assert_eq!(retry, None);
        assert_eq!(failures.len(), 1, "{failures:?}");
        assert_eq!(failures[0].routes, vec!["a-route", "b-route"]);
        assert_eq!(
            failures[0].targets,
            vec!["b-route/app:tax", "a-route/app:finance", "a-route/app:emis"]
        );
        assert_eq!(failures[0].code, "mapping.required");
    }

    #[test]
    fn two_causes_are_two_records_and_the_delivered_targets_are_in_neither() {
        let a = route("a", 5, &[1], &["tax", "finance"]);
        let b = route("b", 5, &[1], &["emis"]);
        let plan = decide(
            0,
            &verdicts(&[
                (&a, 0, Answer::Delivered),
                (&a, 1, Answer::Unroutable("no queue".into())),
                (&b, 0, Answer::Failed(cause("schema.required"))),
            ]),
        );
        let Plan::Settle { retry, failures } = plan else {
            panic!("settles")
        };
        assert_eq!(retry, None);
        assert_eq!(failures.len(), 2);
        assert_eq!(failures[0].kind, FailureKind::Unroutable);
        assert_eq!(failures[0].targets, vec!["a/app:finance"]);
        assert!(failures[0].message.contains("route a"), "{failures:?}");
        assert_eq!(failures[1].targets, vec!["b/app:emis"]);
    }

    #[test]
    fn a_refused_target_is_retried_with_the_shortest_delay_until_its_route_has_no_tries_left() {
        let a = route("a", 3, &[10, 60], &["tax"]);
        let b = route("b", 2, &[1, 5], &["finance"]);
        let refused = || Answer::Refused("queue full".into());
        // First delivery: both have tries left; the earliest delay wins.
        let plan = decide(0, &verdicts(&[(&a, 0, refused()), (&b, 0, refused())]));
        assert_eq!(
            plan,
            Plan::Settle {
                retry: Some(Retry {
                    targets: vec!["a/app:tax".into(), "b/app:finance".into()],
                    routes: vec!["a".into(), "b".into()],
                    delay: Duration::from_secs(1),
                    reason: "queue full".into(),
                }),
                failures: vec![],
            }
        );
        // Second delivery: b (2 tries) is exhausted, a retries after its second delay.
        let Plan::Settle { retry, failures } =
            decide(1, &verdicts(&[(&a, 0, refused()), (&b, 0, refused())]))
        else {
            panic!("settles")
        };
        let retry = retry.expect("a retries");
        assert_eq!(retry.targets, vec!["a/app:tax"]);
        assert_eq!(retry.delay, Duration::from_secs(60));
        assert_eq!(failures.len(), 1);
        assert_eq!(failures[0].code, "delivery.attempts_exhausted");
        assert_eq!(failures[0].targets, vec!["b/app:finance"]);
        assert!(
            failures[0].message.contains("after 2 attempts"),
            "{failures:?}"
        );
        // Past the configured delays, the last one repeats.
        let Plan::Settle { retry, .. } = decide(
            1,
            &verdicts(&[(&route("c", 9, &[7], &["x"]), 0, refused())]),
        ) else {
            panic!("settles")
        };
        assert_eq!(retry.map(|r| r.delay), Some(Duration::from_secs(7)));
    }

    #[test]
    fn one_unknown_answer_returns_the_input_whatever_the_others_say() {
        let a = route("a", 5, &[1], &["tax", "finance", "emis"]);
        let plan = decide(
            0,
            &verdicts(&[
                (&a, 0, Answer::Delivered),
                (&a, 1, Answer::Failed(cause("x"))),
                (&a, 2, Answer::Lost("channel closed".into())),
            ]),
        );
        assert_eq!(plan, Plan::Requeue("channel closed".into()));
    }

    #[test]
    fn a_single_try_route_fails_at_once_on_a_refusal() {
        let a = route("a", 1, &[1], &["tax"]);
        let Plan::Settle { retry, failures } =
            decide(0, &verdicts(&[(&a, 0, Answer::Refused("nack".into()))]))
        else {
            panic!("settles")
        };
        assert_eq!(retry, None);
        assert_eq!(failures[0].kind, FailureKind::Delivery);
    }
}
