//! The service catalogue: every canonical event the configured routes carry, with its
//! schema, the messages and applications it comes from, and per receiver what the
//! receiver gets (its format and the fields its agreements allow). Generated from the
//! configuration and the adapters; served at `GET /api/v1/catalog` and printed by
//! `lgsp catalog`.

use std::collections::BTreeMap;

use lgsp_core::agreement::{Agreements, Policy};
use lgsp_core::apps::Apps;
use lgsp_core::config::Config;
use serde::Serialize;

use crate::dsl::Adapters;

/// The catalogue.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Catalog {
    pub events: Vec<Event>,
}

/// One canonical event.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Event {
    /// `enterprise.registered`.
    pub event: String,
    /// Canonical schemas its documents satisfy (`lgsp.enterprise/1`).
    pub schemas: Vec<String>,
    /// Where it comes from: message types on `<prefix>.in` and their mappings.
    pub sources: Vec<Source>,
    /// Applications entitled to publish those message types.
    pub publishers: Vec<String>,
    pub receivers: Vec<Receiver>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Source {
    pub message_type: String,
    /// `ADAPTER.MAPPING`.
    pub mapping: String,
}

/// One target of one route that delivers the event.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Receiver {
    pub route: String,
    /// `exchange`, `app` or `webhook`.
    pub kind: &'static str,
    /// The exchange, the application id or the webhook's name.
    pub name: String,
    /// Outbound mapping `ADAPTER.MAPPING`, or `canonical` (the canonical JSON).
    pub format: String,
    /// Only outputs where this path selects a value are delivered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub when: Option<String>,
    /// The agreements that apply (none: every field that is not personal).
    pub agreements: Vec<AgreementRef>,
    /// The fields it may get: the agreements' paths, or `["every field that is not
    /// personal"]`, or `["every field"]` for an exchange.
    pub fields: Vec<String>,
    /// Personal fields of the event's schema it does not get.
    pub withheld_personal: Vec<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AgreementRef {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub basis: Option<String>,
}

/// Build the catalogue of `config` with its loaded `adapters`.
pub fn build(config: &Config, adapters: &Adapters) -> Catalog {
    let agreements = Agreements::from_config(&config.agreements).unwrap_or_default();
    let apps = Apps::from_config(&config.apps);
    let mut events: BTreeMap<String, Event> = BTreeMap::new();
    for route in &config.routes {
        let Some(adapter) = adapters.by_name.get(&route.map) else {
            continue;
        };
        for mt in adapter.message_types() {
            if !lgsp_core::topic::matches(&route.from.binding, mt) {
                continue;
            }
            for (name, program) in adapter.mappings_for(mt) {
                let Some(ev) = &program.event else { continue };
                let e = events.entry(ev.clone()).or_insert_with(|| Event {
                    event: ev.clone(),
                    schemas: Vec::new(),
                    sources: Vec::new(),
                    publishers: Vec::new(),
                    receivers: Vec::new(),
                });
                let schema = route
                    .validate
                    .as_deref()
                    .or(program.schema())
                    .map(str::to_owned);
                if let Some(s) = &schema {
                    push_unique(&mut e.schemas, s.clone());
                }
                let source = Source {
                    message_type: mt.to_owned(),
                    mapping: format!("{}.{name}", adapter.name),
                };
                if !e.sources.contains(&source) {
                    e.sources.push(source);
                }
                for app in apps.iter().filter(|a| a.may_publish(mt)) {
                    push_unique(&mut e.publishers, app.id.clone());
                }
                for t in &route.to {
                    let (kind, name) = match (&t.exchange, &t.app, &t.webhook) {
                        (Some(x), _, _) => ("exchange", x.clone()),
                        (None, Some(a), _) => ("app", a.clone()),
                        (None, None, Some(w)) => ("webhook", w.receiver_name()),
                        (None, None, None) => continue,
                    };
                    if e.receivers
                        .iter()
                        .any(|r| r.route == route.name && r.kind == kind && r.name == name)
                    {
                        continue;
                    }
                    let personal = adapters
                        .domain
                        .schemas
                        .personal_paths(schema.as_deref())
                        .to_vec();
                    let (agreement_refs, fields, withheld) = if kind == "exchange" {
                        (Vec::new(), vec!["every field".to_owned()], Vec::new())
                    } else {
                        let policy = agreements.policy(&name, Some(ev));
                        let refs: Vec<AgreementRef> = agreements
                            .of(&name)
                            .iter()
                            .filter(|a| a.events.iter().any(|p| lgsp_core::topic::matches(p, ev)))
                            .map(|a| AgreementRef {
                                name: a.name.clone(),
                                basis: a.basis.clone(),
                            })
                            .collect();
                        let fields = match &policy {
                            Policy::NotPersonal => {
                                vec!["every field that is not personal".to_owned()]
                            }
                            Policy::Fields { paths, .. } => {
                                paths.iter().map(|p| p.source.clone()).collect()
                            }
                        };
                        let withheld = personal
                            .iter()
                            .filter(|chain| {
                                let read: Vec<lgsp_core::agreement::Read> = chain
                                    .iter()
                                    .map(|n| lgsp_core::agreement::Read::Name(n.clone()))
                                    .collect();
                                lgsp_core::agreement::unreadable(&policy, &read, &personal)
                                    .is_some()
                            })
                            .map(|chain| chain.join("."))
                            .collect();
                        (refs, fields, withheld)
                    };
                    e.receivers.push(Receiver {
                        route: route.name.clone(),
                        kind,
                        name,
                        format: t.outbound_map().unwrap_or("canonical").to_owned(),
                        when: t.when.clone(),
                        agreements: agreement_refs,
                        fields,
                        withheld_personal: withheld,
                    });
                }
            }
        }
    }
    Catalog {
        events: events.into_values().collect(),
    }
}

fn push_unique(v: &mut Vec<String>, s: String) {
    if !v.contains(&s) {
        v.push(s);
    }
}

impl Catalog {
    /// The catalogue for people: one block per event.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for e in &self.events {
            out.push_str(&e.event);
            if !e.schemas.is_empty() {
                out.push_str(&format!("  ({})", e.schemas.join(", ")));
            }
            out.push('\n');
            let sources: Vec<String> = e
                .sources
                .iter()
                .map(|s| format!("{} via {}", s.message_type, s.mapping))
                .collect();
            out.push_str(&format!("  from: {}\n", sources.join("; ")));
            out.push_str(&format!(
                "  publishers: {}\n",
                if e.publishers.is_empty() {
                    "none configured".to_owned()
                } else {
                    e.publishers.join(", ")
                }
            ));
            for r in &e.receivers {
                out.push_str(&format!(
                    "  -> {} {} (route {}, {})\n",
                    r.kind, r.name, r.route, r.format
                ));
                if !r.agreements.is_empty() {
                    let names: Vec<String> = r
                        .agreements
                        .iter()
                        .map(|a| match &a.basis {
                            Some(b) => format!("{} [{b}]", a.name),
                            None => a.name.clone(),
                        })
                        .collect();
                    out.push_str(&format!("     agreements: {}\n", names.join(", ")));
                }
                out.push_str(&format!("     fields: {}\n", r.fields.join(", ")));
                if !r.withheld_personal.is_empty() {
                    out.push_str(&format!(
                        "     personal data withheld: {}\n",
                        r.withheld_personal.join(", ")
                    ));
                }
            }
        }
        out
    }
}
