//! What the bus counts, for Prometheus (`GET /metrics`, OpenMetrics text). One
//! [`Metrics`] per process, shared by the router, the webhook deliverers and the HTTP
//! side. Labels are names from the configuration (adapters, routes, target ids) and
//! stable error codes: never a value from a message, so no personal data and a bounded
//! number of series.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::failure::FailureKind;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AdapterLabel {
    pub adapter: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabel {
    pub route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TargetLabels {
    pub route: String,
    pub target: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FailureLabels {
    /// Empty when the failure has no route (`route.none`).
    pub route: String,
    pub kind: FailureKind,
    pub code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WebhookLabels {
    pub target: String,
    /// `2xx`, `3xx`, `4xx`, `5xx`, or `error` (no answer: connection, timeout).
    pub class: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabel {
    pub status: String,
}

fn mapping_seconds() -> Histogram {
    // 50 µs to about 1.6 s.
    Histogram::new(exponential_buckets(0.000_05, 2.0, 16))
}

/// Every metric of the process.
pub struct Metrics {
    registry: Registry,
    /// The names registered, without the prefix.
    names: Vec<&'static str>,
    /// Inputs consumed from an adapter's input queue.
    pub received: Family<AdapterLabel, Counter>,
    /// Targets of a route that got an input (confirmed, or a 2xx for a webhook).
    pub delivered: Family<TargetLabels, Counter>,
    /// Failure records written, per route they cost, by kind and code.
    pub failed: Family<FailureLabels, Counter>,
    /// Inputs (or webhook messages) sent to a retry queue, per route.
    pub retried: Family<RouteLabel, Counter>,
    /// Stored messages an administrator replayed.
    pub replayed: Counter,
    /// Decoding and mapping one input, per adapter.
    pub mapping_seconds: Family<AdapterLabel, Histogram, fn() -> Histogram>,
    /// From a publish to its broker confirm.
    pub confirm_seconds: Histogram,
    /// Inputs being processed now.
    pub in_flight: Gauge,
    /// 1 while the broker is connected and the topology declared.
    pub broker_connected: Gauge,
    /// 1 while the failed-message store answers.
    pub store_up: Gauge,
    /// Records in the failed-message store by status (read at each scrape).
    pub stored: Family<StatusLabel, Gauge>,
    /// Webhook answers by target and status class.
    pub webhook_responses: Family<WebhookLabels, Counter>,
    /// From a failure (its time on the failed queue) to its record in the store.
    pub ingest_lag_seconds: Histogram,
    /// Tracking events dropped because the writer's queue was full.
    pub tracking_dropped: Counter,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("lgsp");
        let m = Metrics {
            received: Family::default(),
            delivered: Family::default(),
            failed: Family::default(),
            retried: Family::default(),
            replayed: Counter::default(),
            mapping_seconds: Family::new_with_constructor(mapping_seconds),
            confirm_seconds: Histogram::new(exponential_buckets(0.000_1, 2.0, 16)),
            in_flight: Gauge::default(),
            broker_connected: Gauge::default(),
            store_up: Gauge::default(),
            stored: Family::default(),
            webhook_responses: Family::default(),
            // 10 ms to about 5.5 min.
            ingest_lag_seconds: Histogram::new(exponential_buckets(0.01, 2.0, 16)),
            tracking_dropped: Counter::default(),
            registry: Registry::default(),
            names: Vec::new(),
        };
        let mut names = Vec::new();
        names.push("messages_received");
        registry.register(
            "messages_received",
            "Inputs consumed from an adapter's input queue",
            m.received.clone(),
        );
        names.push("messages_delivered");
        registry.register(
            "messages_delivered",
            "Targets of a route that got an input (confirmed by the broker, or a 2xx from a webhook)",
            m.delivered.clone(),
        );
        names.push("messages_failed");
        registry.register(
            "messages_failed",
            "Failure records written, per route they cost, by error kind and code",
            m.failed.clone(),
        );
        names.push("messages_retried");
        registry.register(
            "messages_retried",
            "Messages sent to a retry queue, per route",
            m.retried.clone(),
        );
        names.push("messages_replayed");
        registry.register(
            "messages_replayed",
            "Stored messages replayed by an administrator",
            m.replayed.clone(),
        );
        names.push("mapping_duration_seconds");
        registry.register(
            "mapping_duration_seconds",
            "Decoding and mapping one input",
            m.mapping_seconds.clone(),
        );
        names.push("publish_confirm_seconds");
        registry.register(
            "publish_confirm_seconds",
            "From a publish to its broker confirm",
            m.confirm_seconds.clone(),
        );
        names.push("messages_in_flight");
        registry.register(
            "messages_in_flight",
            "Inputs being processed",
            m.in_flight.clone(),
        );
        names.push("broker_connected");
        registry.register(
            "broker_connected",
            "1 while the broker is connected and the topology declared",
            m.broker_connected.clone(),
        );
        names.push("store_up");
        registry.register(
            "store_up",
            "1 while the failed-message store answers",
            m.store_up.clone(),
        );
        names.push("failed_messages_stored");
        registry.register(
            "failed_messages_stored",
            "Records in the failed-message store, by status",
            m.stored.clone(),
        );
        names.push("webhook_responses");
        registry.register(
            "webhook_responses",
            "Webhook answers, by target and status class (error: no answer)",
            m.webhook_responses.clone(),
        );
        names.push("ingest_lag_seconds");
        registry.register(
            "ingest_lag_seconds",
            "From a failure to its record in the failed-message store",
            m.ingest_lag_seconds.clone(),
        );
        names.push("tracking_events_dropped");
        registry.register(
            "tracking_events_dropped",
            "Tracking events dropped because the writer's queue was full",
            m.tracking_dropped.clone(),
        );
        Metrics {
            registry,
            names,
            ..m
        }
    }

    /// The name of every metric family, as rendered (`lgsp_messages_received`), whether
    /// or not it has a series yet.
    pub fn names(&self) -> Vec<String> {
        self.names.iter().map(|n| format!("lgsp_{n}")).collect()
    }

    /// The OpenMetrics text of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// Count a failure record of `kind`/`code` against each of `routes` (or none).
    pub fn failure(&self, routes: &[String], kind: FailureKind, code: &str) {
        let labels = |route: &str| FailureLabels {
            route: route.to_owned(),
            kind,
            code: code.to_owned(),
        };
        if routes.is_empty() {
            self.failed.get_or_create(&labels("")).inc();
        }
        for r in routes {
            self.failed.get_or_create(&labels(r)).inc();
        }
    }

    /// Count a webhook answer (`status` 0: none).
    pub fn webhook_response(&self, target: &str, status: u16) {
        let class = match status {
            0 => "error".to_owned(),
            s => format!("{}xx", s / 100),
        };
        self.webhook_responses
            .get_or_create(&WebhookLabels {
                target: target.to_owned(),
                class,
            })
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_histograms_render_with_their_labels() {
        let m = Metrics::new();
        m.received
            .get_or_create(&AdapterLabel {
                adapter: "bizreg".into(),
            })
            .inc_by(3);
        m.failure(
            &["a".into(), "b".into()],
            FailureKind::Mapping,
            "field.required",
        );
        m.webhook_response("r/webhook:x", 503);
        m.webhook_response("r/webhook:x", 0);
        m.mapping_seconds
            .get_or_create(&AdapterLabel {
                adapter: "bizreg".into(),
            })
            .observe(0.001);
        let t = m.render();
        assert!(
            t.contains("lgsp_messages_received_total{adapter=\"bizreg\"} 3"),
            "{t}"
        );
        assert!(
            t.contains(
                "lgsp_messages_failed_total{route=\"b\",kind=\"mapping\",code=\"field.required\"} 1"
            ),
            "{t}"
        );
        assert!(
            t.contains("lgsp_webhook_responses_total{target=\"r/webhook:x\",class=\"5xx\"} 1"),
            "{t}"
        );
        assert!(t.contains("class=\"error\"} 1"), "{t}");
        assert!(
            t.contains("lgsp_mapping_duration_seconds_count{adapter=\"bizreg\"} 1"),
            "{t}"
        );
        assert!(t.ends_with("# EOF\n"), "{t}");
    }
}
