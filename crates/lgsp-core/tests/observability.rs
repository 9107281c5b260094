//! The alert rules and the dashboard in `deploy/observability/` parse, and every `lgsp_*`
//! metric they use is one the bus exports.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::PathBuf;

use lgsp_core::metrics::Metrics;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/observability")
}

/// Every `lgsp_...` name in `text`, without the series suffixes.
fn used(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("lgsp_") {
        let before = rest[..i].chars().last();
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(tail.len());
        if !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            let mut name = &tail[..end];
            for suffix in ["_total", "_bucket", "_count", "_sum"] {
                name = name.strip_suffix(suffix).unwrap_or(name);
            }
            out.insert(name.to_owned());
        }
        rest = &tail[end..];
    }
    out
}

/// The metric families the bus exports.
fn exported() -> BTreeSet<String> {
    Metrics::new().names().into_iter().collect()
}

#[test]
fn the_alert_rules_parse_and_use_only_exported_metrics() {
    let text = std::fs::read_to_string(dir().join("prometheus-alerts.yaml")).unwrap();
    let docs = yaml_rust2::YamlLoader::load_from_str(&text).unwrap();
    let rules = docs[0]["groups"][0]["rules"].as_vec().unwrap();
    assert!(rules.len() >= 6);
    for r in rules {
        assert!(
            r["alert"].as_str().is_some() && r["expr"].as_str().is_some(),
            "{r:?}"
        );
        assert!(r["annotations"]["summary"].as_str().is_some(), "{r:?}");
    }
    let exported = exported();
    let used = used(&text);
    assert!(used.contains("lgsp_store_up"), "{used:?}");
    for name in &used {
        assert!(
            exported.contains(name),
            "{name} is not exported: {exported:?}"
        );
    }
}

#[test]
fn the_dashboard_parses_and_uses_only_exported_metrics() {
    let text = std::fs::read_to_string(dir().join("grafana-dashboard.json")).unwrap();
    let dash: serde_json::Value = serde_json::from_str(&text).unwrap();
    let panels = dash["panels"].as_array().unwrap();
    assert!(panels.len() >= 10);
    let exported = exported();
    for p in panels {
        for t in p["targets"].as_array().unwrap() {
            for name in used(t["expr"].as_str().unwrap()) {
                assert!(
                    exported.contains(&name),
                    "{name} (panel {}) is not exported",
                    p["title"]
                );
            }
        }
    }
}
