//! Which routes an input belongs to, for everyone who reads or writes the input queues:
//! the router (which routes of its adapter want a message), the failed-message store
//! (which routes a message dead-lettered from an input queue missed) and replay (which
//! queue a stored failure goes back to).
//!
//! Routes that map with the same adapter share that adapter's input queue
//! (`<p>.in.<adapter>`), bound with each of their bindings: a message reaches it once,
//! however many of the routes want it, and is decoded and mapped once. Target ids in
//! `lgsp-targets` are qualified by their route (`bizreg-registered/app:tax`), so a retry
//! or a replay names exactly the targets still to deliver, whichever route they are of.

use lgsp_core::config::Config;

use crate::names::Names;
use crate::topic;

/// One configured route, as far as queues and bindings are concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteEntry {
    pub name: String,
    pub binding: String,
    pub adapter: String,
}

/// The routes of a configuration, with the input queue each of them reads.
#[derive(Debug, Clone, Default)]
pub struct RouteTable {
    routes: Vec<RouteEntry>,
}

impl RouteTable {
    pub fn new(routes: Vec<RouteEntry>) -> RouteTable {
        RouteTable { routes }
    }

    pub fn from_config(config: &Config) -> RouteTable {
        RouteTable::new(
            config
                .routes
                .iter()
                .map(|r| RouteEntry {
                    name: r.name.clone(),
                    binding: r.from.binding.clone(),
                    adapter: r.map.clone(),
                })
                .collect(),
        )
    }

    pub fn routes(&self) -> &[RouteEntry] {
        &self.routes
    }

    pub fn get(&self, route: &str) -> Option<&RouteEntry> {
        self.routes.iter().find(|r| r.name == route)
    }

    /// Every adapter that has routes, with the distinct bindings of its routes, in
    /// configuration order: one input queue each.
    pub fn inputs(&self) -> Vec<(String, Vec<String>)> {
        let mut out: Vec<(String, Vec<String>)> = Vec::new();
        for r in &self.routes {
            let i = match out.iter().position(|(a, _)| *a == r.adapter) {
                Some(i) => i,
                None => {
                    out.push((r.adapter.clone(), Vec::new()));
                    out.len() - 1
                }
            };
            if !out[i].1.contains(&r.binding) {
                out[i].1.push(r.binding.clone());
            }
        }
        out
    }

    /// The routes of `adapter` whose binding matches `routing_key`, in configuration
    /// order.
    pub fn matching<'a>(
        &'a self,
        adapter: &'a str,
        routing_key: &'a str,
    ) -> impl Iterator<Item = &'a RouteEntry> + 'a {
        self.routes
            .iter()
            .filter(move |r| r.adapter == adapter && topic::matches(&r.binding, routing_key))
    }

    /// The routes a message taken off `queue` with `routing_key` was meant for: those of
    /// the queue's adapter whose binding matches. Empty for a queue that is not an input
    /// queue.
    pub fn routes_of_queue(&self, names: &Names, queue: &str, routing_key: &str) -> Vec<String> {
        match names.adapter_of_queue(queue) {
            Some(adapter) => self
                .matching(adapter, routing_key)
                .map(|r| r.name.clone())
                .collect(),
            None => Vec::new(),
        }
    }
}

/// A target id qualified by its route: `<route>/<target>`.
pub fn qualify(route: &str, target: &str) -> String {
    format!("{route}/{target}")
}

/// The route and target of a qualified id; `None` as the route for an id written before
/// ids were qualified (`app:tax`), whose route is the message's `lgsp-route`.
pub fn split(id: &str) -> (Option<&str>, &str) {
    // Target ids start with `app:` or `exchange:`; a route name has neither `:` nor `/`.
    match id.split_once('/') {
        Some((route, target)) if !route.contains(':') => (Some(route), target),
        _ => (None, id),
    }
}

/// Split a comma-separated list (`lgsp-targets`, `lgsp-route`) into its items.
pub fn list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> RouteTable {
        let e = |name: &str, binding: &str, adapter: &str| RouteEntry {
            name: name.into(),
            binding: binding.into(),
            adapter: adapter.into(),
        };
        RouteTable::new(vec![
            e("bizreg-canonical", "bizreg.#", "bizreg"),
            e(
                "bizreg-registered",
                "bizreg.enterprise.registered",
                "bizreg",
            ),
            e("tax-canonical", "tax.#", "tax"),
            e("bizreg-again", "bizreg.#", "bizreg"),
        ])
    }

    #[test]
    fn routes_of_one_adapter_share_one_input_with_distinct_bindings() {
        assert_eq!(
            table().inputs(),
            vec![
                (
                    "bizreg".to_owned(),
                    vec![
                        "bizreg.#".to_owned(),
                        "bizreg.enterprise.registered".to_owned()
                    ]
                ),
                ("tax".to_owned(), vec!["tax.#".to_owned()]),
            ]
        );
    }

    #[test]
    fn an_input_belongs_to_every_route_of_its_adapter_that_binds_its_key() {
        let t = table();
        let names = Names::new("lgsp");
        assert_eq!(
            t.routes_of_queue(&names, "lgsp.in.bizreg", "bizreg.enterprise.registered"),
            vec!["bizreg-canonical", "bizreg-registered", "bizreg-again"]
        );
        assert_eq!(
            t.routes_of_queue(&names, "lgsp.in.bizreg", "bizreg.branch.registered"),
            vec!["bizreg-canonical", "bizreg-again"]
        );
        assert!(
            t.routes_of_queue(&names, "lgsp.in.tax", "bizreg.x")
                .is_empty()
        );
        assert!(t.routes_of_queue(&names, "lgsp.failed", "tax.x").is_empty());
    }

    #[test]
    fn target_ids_carry_their_route_and_old_ids_do_not() {
        let id = qualify("bizreg-registered", "app:tax");
        assert_eq!(id, "bizreg-registered/app:tax");
        assert_eq!(split(&id), (Some("bizreg-registered"), "app:tax"));
        assert_eq!(split("app:tax"), (None, "app:tax"));
        // An exchange target whose routing key has a slash stays whole.
        assert_eq!(
            split("exchange:lgsp.out/enterprise.x"),
            (None, "exchange:lgsp.out/enterprise.x")
        );
        assert_eq!(
            split("r/exchange:lgsp.out/enterprise.x"),
            (Some("r"), "exchange:lgsp.out/enterprise.x")
        );
        assert_eq!(list(" a, ,b "), vec!["a", "b"]);
    }
}
