//! Data-sharing agreements: which fields of a canonical document a receiver is entitled
//! to (Decree 13/2023 on personal data, Decree 47/2020 on data sharing).
//!
//! A receiver is an application (`app:` targets) or a webhook, by name. For an output of
//! event `E`, the fields it may get are the union of the fields of its agreements that
//! cover `E`; when none covers `E` (or it has none), every field that is not personal.
//! An allowed path keeps everything under it except personal fields (the canonical
//! schemas mark them `x-lgsp-personal`): a personal field goes out only when a path names
//! it (or something inside it) by name. The document's `schema` member always stays.
//!
//! Paths are JSONPaths of names, `[*]` (every item of a list) and `.*` (every member of
//! an object). Lists are transparent: `$.industries.code` is `$.industries[*].code`.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::config::AgreementConfig;

/// One step of an agreement path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Name(String),
    /// `[*]`: every item of a list.
    Items,
    /// `.*`: every member of an object.
    Members,
}

/// A parsed agreement path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldPath {
    pub source: String,
    pub segs: Vec<Seg>,
}

/// Parse `$.a.b`, `$['a b'].c`, `$.list[*].x`, `$.obj.*`.
pub fn parse(path: &str) -> Result<FieldPath, String> {
    let rest = path.trim();
    let Some(mut rest) = rest.strip_prefix('$') else {
        return Err(format!(
            "`{path}` does not start with `$`; write e.g. $.name"
        ));
    };
    let mut segs = Vec::new();
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("[*]") {
            segs.push(Seg::Items);
            rest = r;
        } else if let Some(r) = rest.strip_prefix(".*") {
            segs.push(Seg::Members);
            rest = r;
        } else if let Some(r) = rest.strip_prefix("['") {
            let Some(end) = r.find("']") else {
                return Err(format!("`{path}`: a `['` without its `']`"));
            };
            segs.push(Seg::Name(r[..end].to_owned()));
            rest = &r[end + 2..];
        } else if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            if end == 0 {
                return Err(format!("`{path}`: an empty name"));
            }
            segs.push(Seg::Name(r[..end].to_owned()));
            rest = &r[end..];
        } else {
            return Err(format!(
                "`{path}`: only names, `[*]` and `.*` are allowed in an agreement (no indexes, filters or `..`)"
            ));
        }
    }
    Ok(FieldPath {
        source: path.to_owned(),
        segs,
    })
}

/// One agreement, its paths parsed.
#[derive(Debug, Clone)]
pub struct Agreement {
    pub name: String,
    pub receiver: String,
    pub events: Vec<String>,
    pub fields: Vec<FieldPath>,
    pub basis: Option<String>,
}

/// Every agreement, by receiver.
#[derive(Debug, Clone, Default)]
pub struct Agreements {
    by_receiver: BTreeMap<String, Vec<Agreement>>,
}

/// What a receiver may get of one output.
#[derive(Debug, Clone)]
pub enum Policy<'a> {
    /// No agreement covers it: every field that is not personal.
    NotPersonal,
    /// The fields of these agreements.
    Fields {
        agreements: Vec<&'a str>,
        paths: Vec<&'a FieldPath>,
    },
}

impl Policy<'_> {
    /// The agreements it comes from, for messages (`none`: no agreement).
    pub fn names(&self) -> String {
        match self {
            Policy::NotPersonal => "none".to_owned(),
            Policy::Fields { agreements, .. } => agreements.join(", "),
        }
    }
}

impl Agreements {
    /// Parse every agreement; the problems are `(key, message)` (key below `agreements`).
    pub fn from_config(
        config: &BTreeMap<String, AgreementConfig>,
    ) -> Result<Agreements, Vec<(String, String)>> {
        let mut problems = Vec::new();
        let mut by_receiver: BTreeMap<String, Vec<Agreement>> = BTreeMap::new();
        for (name, a) in config {
            let mut fields = Vec::new();
            for (i, f) in a.fields.iter().enumerate() {
                match parse(f) {
                    Ok(p) => fields.push(p),
                    Err(e) => problems.push((format!("{name}.fields.{i}"), e)),
                }
            }
            if a.fields.is_empty() {
                problems.push((
                    format!("{name}.fields"),
                    "an agreement lists at least one field, e.g. [$.name]".to_owned(),
                ));
            }
            by_receiver
                .entry(a.receiver.clone())
                .or_default()
                .push(Agreement {
                    name: name.clone(),
                    receiver: a.receiver.clone(),
                    events: a.events.clone(),
                    fields,
                    basis: a.basis.clone(),
                });
        }
        if problems.is_empty() {
            Ok(Agreements { by_receiver })
        } else {
            Err(problems)
        }
    }

    /// The agreements of `receiver`.
    pub fn of(&self, receiver: &str) -> &[Agreement] {
        self.by_receiver.get(receiver).map_or(&[], Vec::as_slice)
    }

    /// What `receiver` may get of an output of `event` (`None`: an output without one,
    /// which only agreements covering every event, `#`, cover).
    pub fn policy(&self, receiver: &str, event: Option<&str>) -> Policy<'_> {
        let mut agreements = Vec::new();
        let mut paths = Vec::new();
        for a in self.of(receiver) {
            let covers = a.events.iter().any(|p| match event {
                Some(e) => crate::topic::matches(p, e),
                None => p == "#",
            });
            if covers {
                agreements.push(a.name.as_str());
                paths.extend(a.fields.iter());
            }
        }
        if agreements.is_empty() {
            Policy::NotPersonal
        } else {
            Policy::Fields { agreements, paths }
        }
    }

    /// Every path `receiver`'s agreements allow, whatever the event (what `lgsp check`
    /// holds an outbound mapping's reads against).
    pub fn any_event(&self, receiver: &str) -> Policy<'_> {
        let list = self.of(receiver);
        if list.is_empty() {
            return Policy::NotPersonal;
        }
        Policy::Fields {
            agreements: list.iter().map(|a| a.name.as_str()).collect(),
            paths: list.iter().flat_map(|a| a.fields.iter()).collect(),
        }
    }
}

/// A cursor: a path and how far into it the walk is.
type Cursor<'a> = (&'a FieldPath, usize);

/// Where the walk is: the cursors still going, whether the node is allowed whole,
/// whether a path named this node, and its chain of member names (lists skipped).
struct At<'a> {
    cursors: Vec<Cursor<'a>>,
    whole: bool,
    named: bool,
}

impl<'a> At<'a> {
    fn root(policy: &Policy<'a>) -> At<'a> {
        match policy {
            Policy::NotPersonal => At {
                cursors: Vec::new(),
                whole: true,
                named: false,
            },
            Policy::Fields { paths, .. } => {
                let cursors: Vec<Cursor<'a>> = paths.iter().map(|p| (*p, 0)).collect();
                let whole = cursors.iter().any(|(p, i)| *i == p.segs.len());
                At {
                    cursors,
                    whole,
                    named: false,
                }
            }
        }
    }

    /// Into member `key` of an object.
    fn member(&self, key: &str) -> At<'a> {
        let mut cursors = Vec::new();
        let mut named = false;
        for &(p, i) in &self.cursors {
            match p.segs.get(i) {
                Some(Seg::Name(n)) if n == key => {
                    named = true;
                    cursors.push((p, i + 1));
                }
                Some(Seg::Members) => cursors.push((p, i + 1)),
                _ => {}
            }
        }
        let whole = self.whole || cursors.iter().any(|(p, i)| *i == p.segs.len());
        At {
            cursors,
            whole,
            named,
        }
    }

    /// Into the items of a list: `[*]` and `.*` step over it, names wait for the items.
    fn items(&self) -> At<'a> {
        let cursors: Vec<Cursor<'a>> = self
            .cursors
            .iter()
            .map(|&(p, i)| match p.segs.get(i) {
                Some(Seg::Items | Seg::Members) => (p, i + 1),
                _ => (p, i),
            })
            .collect();
        let whole = self.whole || cursors.iter().any(|(p, i)| *i == p.segs.len());
        At {
            cursors,
            whole,
            named: self.named,
        }
    }

    fn open(&self) -> bool {
        self.whole || !self.cursors.is_empty()
    }
}

/// Is `chain` a personal path?
fn is_personal(chain: &[&str], personal: &[Vec<String>]) -> bool {
    personal
        .iter()
        .any(|p| p.len() == chain.len() && p.iter().zip(chain).all(|(a, b)| a == b))
}

/// What `policy` lets through of `doc`, whose personal fields are at `personal` (chains
/// of member names from the root, lists skipped).
pub fn apply(policy: &Policy<'_>, doc: &Value, personal: &[Vec<String>]) -> Value {
    let at = At::root(policy);
    let mut chain = Vec::new();
    match doc {
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                if k == "schema" {
                    out.insert(k.clone(), v.clone());
                    continue;
                }
                if let Some(v) = keep(v, &at.member(k), k, &mut chain, personal) {
                    out.insert(k.clone(), v);
                }
            }
            Value::Object(out)
        }
        other => keep_node(other, &at, &mut chain, personal).unwrap_or(Value::Null),
    }
}

fn keep<'a>(
    v: &'a Value,
    at: &At<'_>,
    key: &'a str,
    chain: &mut Vec<&'a str>,
    personal: &[Vec<String>],
) -> Option<Value> {
    if !at.open() {
        return None;
    }
    chain.push(key);
    let out = if is_personal(chain, personal) && !at.named {
        None
    } else {
        keep_node(v, at, chain, personal)
    };
    chain.pop();
    out
}

fn keep_node<'a>(
    v: &'a Value,
    at: &At<'_>,
    chain: &mut Vec<&'a str>,
    personal: &[Vec<String>],
) -> Option<Value> {
    match v {
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, child) in m {
                if let Some(c) = keep(child, &at.member(k), k, chain, personal) {
                    out.insert(k.clone(), c);
                }
            }
            (at.whole || !out.is_empty()).then_some(Value::Object(out))
        }
        Value::Array(items) => {
            let inner = at.items();
            let out: Vec<Value> = items
                .iter()
                .filter_map(|i| keep_node(i, &inner, chain, personal))
                .collect();
            (at.whole || !out.is_empty()).then_some(Value::Array(out))
        }
        leaf => at.whole.then(|| leaf.clone()),
    }
}

/// One step of a path a mapping reads: a member, or any item or member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Read {
    Name(String),
    Any,
}

/// Why a mapping cannot read `path` of what `policy` lets through, if it cannot: the
/// node is outside every allowed path, or is personal and not named.
pub fn unreadable(policy: &Policy<'_>, path: &[Read], personal: &[Vec<String>]) -> Option<String> {
    let mut at = At::root(policy);
    let mut chain: Vec<&str> = Vec::new();
    for step in path {
        match step {
            Read::Name(n) if n == "schema" && chain.is_empty() => return None,
            Read::Name(n) => {
                at = at.member(n);
                chain.push(n);
                if !at.open() {
                    return Some(format!(
                        "`{}`, which is not among the fields",
                        chain.join(".")
                    ));
                }
                if is_personal(&chain, personal) && !at.named {
                    return Some(format!(
                        "`{}`, personal data, which goes out only when an agreement names it",
                        chain.join(".")
                    ));
                }
            }
            Read::Any => at = at.items(),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn fields(paths: &[&str]) -> Vec<FieldPath> {
        paths.iter().map(|p| parse(p).unwrap()).collect()
    }

    fn policy(paths: &[FieldPath]) -> Policy<'_> {
        Policy::Fields {
            agreements: vec!["a"],
            paths: paths.iter().collect(),
        }
    }

    fn doc() -> Value {
        json!({
            "schema": "lgsp.enterprise/1",
            "enterprise_code": "0101234567",
            "name": "Công ty A",
            "head_office": { "province_code": "01", "street": "1 Tràng Tiền" },
            "legal_representative": { "name": "Nguyễn Văn A", "citizen_id": "001085012345", "title": "Giám đốc" },
            "industries": [ { "code": "6201", "main": true }, { "code": "4651", "main": false } ]
        })
    }

    fn personal() -> Vec<Vec<String>> {
        vec![
            vec!["legal_representative".into(), "name".into()],
            vec!["legal_representative".into(), "citizen_id".into()],
        ]
    }

    #[test]
    fn paths_parse_names_items_and_members_only() {
        let p = parse("$.industries[*].code").unwrap();
        assert_eq!(
            p.segs,
            vec![
                Seg::Name("industries".into()),
                Seg::Items,
                Seg::Name("code".into())
            ]
        );
        assert_eq!(
            parse("$['a b'].*").unwrap().segs,
            vec![Seg::Name("a b".into()), Seg::Members]
        );
        for bad in ["name", "$.a[0]", "$..a", "$.a[?@.x]", "$.", "$['a"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_the_listed_fields_go_out() {
        let f = fields(&[
            "$.name",
            "$.head_office.province_code",
            "$.industries[*].code",
        ]);
        let out = apply(&policy(&f), &doc(), &personal());
        assert_eq!(
            out,
            json!({
                "schema": "lgsp.enterprise/1",
                "name": "Công ty A",
                "head_office": { "province_code": "01" },
                "industries": [ { "code": "6201" }, { "code": "4651" } ]
            })
        );
    }

    #[test]
    fn lists_are_transparent() {
        let a = fields(&["$.industries.code"]);
        let b = fields(&["$.industries[*].code"]);
        assert_eq!(
            apply(&policy(&a), &doc(), &[]),
            apply(&policy(&b), &doc(), &[])
        );
    }

    #[test]
    fn a_subtree_keeps_everything_but_its_personal_fields() {
        let f = fields(&["$.legal_representative"]);
        let out = apply(&policy(&f), &doc(), &personal());
        assert_eq!(out["legal_representative"], json!({ "title": "Giám đốc" }));
        let f = fields(&[
            "$.legal_representative",
            "$.legal_representative.citizen_id",
        ]);
        let out = apply(&policy(&f), &doc(), &personal());
        assert_eq!(
            out["legal_representative"],
            json!({ "citizen_id": "001085012345", "title": "Giám đốc" })
        );
        // `.*` is not naming it.
        let f = fields(&["$.legal_representative.*"]);
        let out = apply(&policy(&f), &doc(), &personal());
        assert_eq!(out["legal_representative"], json!({ "title": "Giám đốc" }));
    }

    #[test]
    fn without_an_agreement_everything_but_personal_data_goes_out() {
        let out = apply(&Policy::NotPersonal, &doc(), &personal());
        let mut expected = doc();
        expected["legal_representative"] = json!({ "title": "Giám đốc" });
        assert_eq!(out, expected);
    }

    #[test]
    fn a_read_outside_the_agreement_is_named() {
        let f = fields(&["$.name", "$.legal_representative.title"]);
        let p = policy(&f);
        let read = |s: &[&str]| -> Vec<Read> {
            s.iter()
                .map(|n| {
                    if *n == "*" {
                        Read::Any
                    } else {
                        Read::Name((*n).into())
                    }
                })
                .collect()
        };
        assert_eq!(unreadable(&p, &read(&["name"]), &personal()), None);
        assert_eq!(unreadable(&p, &read(&["schema"]), &personal()), None);
        assert!(
            unreadable(&p, &read(&["enterprise_code"]), &personal())
                .unwrap()
                .contains("`enterprise_code`, which is not among")
        );
        assert!(
            unreadable(
                &p,
                &read(&["legal_representative", "citizen_id"]),
                &personal()
            )
            .unwrap()
            .contains("not among")
        );
        assert!(
            unreadable(
                &Policy::NotPersonal,
                &read(&["legal_representative", "citizen_id"]),
                &personal()
            )
            .unwrap()
            .contains("personal")
        );
        assert_eq!(
            unreadable(&p, &read(&["legal_representative"]), &personal()),
            None
        );
    }

    #[test]
    fn the_agreements_covering_an_event_apply() {
        let mut c = BTreeMap::new();
        c.insert(
            "edu".to_owned(),
            AgreementConfig {
                receiver: "emis".into(),
                events: vec!["enterprise.registered".into()],
                fields: vec!["$.name".into()],
                basis: None,
            },
        );
        let a = Agreements::from_config(&c).unwrap();
        assert!(matches!(
            a.policy("emis", Some("enterprise.registered")),
            Policy::Fields { .. }
        ));
        assert!(matches!(
            a.policy("emis", Some("enterprise.changed")),
            Policy::NotPersonal
        ));
        assert!(matches!(
            a.policy("tax", Some("enterprise.registered")),
            Policy::NotPersonal
        ));
        c.get_mut("edu").unwrap().fields = vec!["$.a[0]".into()];
        let e = Agreements::from_config(&c).unwrap_err();
        assert_eq!(e[0].0, "edu.fields.0");
    }
}
