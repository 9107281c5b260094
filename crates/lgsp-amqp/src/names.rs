//! Exchange and queue names (`docs/contracts.md`), all under one prefix.

/// The names derived from `broker.prefix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    pub prefix: String,
}

impl Names {
    pub fn new(prefix: &str) -> Self {
        Names {
            prefix: prefix.to_owned(),
        }
    }
    /// Topic exchange every publisher sends to.
    pub fn input(&self) -> String {
        format!("{}.in", self.prefix)
    }
    /// Topic exchange of canonical events.
    pub fn output(&self) -> String {
        format!("{}.out", self.prefix)
    }
    /// Fanout exchange and queue of failed messages.
    pub fn failed(&self) -> String {
        format!("{}.failed", self.prefix)
    }
    /// Fanout exchange and queue of what `in` could not route.
    pub fn unrouted(&self) -> String {
        format!("{}.unrouted", self.prefix)
    }
    /// Direct exchange to receiving applications.
    pub fn app_exchange(&self) -> String {
        format!("{}.app", self.prefix)
    }
    /// The queue of receiving application `app`.
    pub fn app_queue(&self, app: &str) -> String {
        format!("{}.app.{app}", self.prefix)
    }
    /// Direct exchange to webhook queues (routing key: the target id).
    pub fn webhook_exchange(&self) -> String {
        format!("{}.webhook", self.prefix)
    }
    /// The queue of webhook `name` of route `route`: what the router mapped for it,
    /// waiting to be POSTed.
    pub fn webhook_queue(&self, route: &str, name: &str) -> String {
        format!("{}.webhook.{route}.{name}", self.prefix)
    }
    /// Fanout exchange and queue holding retries for `delay` (`<p>.retry.10s`).
    pub fn retry(&self, delay: std::time::Duration) -> String {
        format!("{}.retry.{}", self.prefix, delay_name(delay))
    }
    /// The input queue of adapter `adapter`: bound to `in` with the binding of every
    /// route that maps with this adapter, so one input reaches it once, however many
    /// of those routes want it.
    pub fn input_queue(&self, adapter: &str) -> String {
        format!("{}.in.{adapter}", self.prefix)
    }
    /// The adapter whose input queue is `queue`, if it is one.
    pub fn adapter_of_queue<'q>(&self, queue: &'q str) -> Option<&'q str> {
        queue
            .strip_prefix(self.prefix.as_str())?
            .strip_prefix(".in.")
            .filter(|a| !a.is_empty())
    }
}

/// A delay as a short name: `500ms`, `10s`, `1m`, `2h`.
pub fn delay_name(d: std::time::Duration) -> String {
    let ms = d.as_millis();
    if ms > 0 && ms.is_multiple_of(3_600_000) {
        format!("{}h", ms / 3_600_000)
    } else if ms > 0 && ms.is_multiple_of(60_000) {
        format!("{}m", ms / 60_000)
    } else if ms > 0 && ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn delays_have_short_names() {
        let n = Names::new("lgsp");
        assert_eq!(n.retry(Duration::from_secs(10)), "lgsp.retry.10s");
        assert_eq!(n.retry(Duration::from_secs(60)), "lgsp.retry.1m");
        assert_eq!(n.retry(Duration::from_secs(7200)), "lgsp.retry.2h");
        assert_eq!(n.retry(Duration::from_millis(1500)), "lgsp.retry.1500ms");
    }

    #[test]
    fn an_input_queue_names_its_adapter() {
        let n = Names::new("lgsp");
        assert_eq!(n.input_queue("bizreg"), "lgsp.in.bizreg");
        assert_eq!(n.adapter_of_queue("lgsp.in.bizreg"), Some("bizreg"));
        assert_eq!(n.adapter_of_queue("lgsp.in."), None);
        assert_eq!(n.adapter_of_queue("lgsp.failed"), None);
        assert_eq!(n.adapter_of_queue("other.in.bizreg"), None);
    }
}
