//! Exchange and queue names (DESIGN section 8), all under one prefix.

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
    /// The queue of route `route`.
    pub fn route_queue(&self, route: &str) -> String {
        format!("{}.route.{route}", self.prefix)
    }
}
