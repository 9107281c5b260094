//! `lgsp failed export-test ID`: from a failure to a regression test. The stored body
//! becomes an input file of the route's adapter (`tests/failed/<id>.<ext>`) and a case
//! file `tests/failed-<id>.yaml` runs it as the bus did (same message type, content
//! type, sender). The case expects the correct output in a golden file that does not
//! exist yet, so `lgsp test` fails with today's error — written in the case file — until
//! the cause is fixed; then `lgsp test --update ADAPTER` writes the golden to review.

use std::path::{Path, PathBuf};

use base64::Engine;
use lgsp_core::config::{self, EnvOverrides};
use lgsp_core::failure::FailureKind;
use serde_json::json;

use crate::exit;
use crate::failed::{Api, Client, Failure, s};

fn yaml_str(t: &str) -> String {
    // A JSON string is a valid YAML double-quoted scalar.
    serde_json::to_string(t).unwrap_or_default()
}

fn extension(content_type: &str, body: &[u8]) -> &'static str {
    if content_type.contains("xml") {
        return "xml";
    }
    if content_type.contains("json") {
        return "json";
    }
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'<') => "xml",
        Some(b'{' | b'[') => "json",
        _ => "bin",
    }
}

pub async fn run(api: &Api, id: i64, config_path: &Path) -> Result<(), Failure> {
    let loaded = config::load(config_path, EnvOverrides::from_process()).map_err(|problems| {
        let shown: Vec<String> = problems.iter().map(ToString::to_string).collect();
        Failure(exit::USAGE, shown.join("\n"))
    })?;
    let c = Client::new(api)?;
    let v = c
        .call(c.http.get(format!("{}/admin/v1/failed/{id}", c.base)))
        .await?;
    if v.get("masked").and_then(serde_json::Value::as_bool) == Some(true) {
        return Err(Failure(
            exit::FAILED,
            format!(
                "failed message {id}: this token is a viewer's, which sees the body with its values masked; exporting a test writes the real body to disk: use an operator token"
            ),
        ));
    }
    let kind = s(&v, "error_kind");
    if !kind
        .parse::<FailureKind>()
        .is_ok_and(FailureKind::is_reproducible)
    {
        let reproducible: Vec<&str> = FailureKind::ALL
            .into_iter()
            .filter(|k| k.is_reproducible())
            .map(FailureKind::as_str)
            .collect();
        return Err(Failure(
            exit::FAILED,
            format!(
                "failed message {id} is a `{kind}` failure, which is about delivery or routing, not the mapping; `lgsp test` cannot reproduce it (exportable kinds: {})",
                reproducible.join(", ")
            ),
        ));
    }
    let route_name = s(&v, "route");
    let route = loaded
        .config
        .routes
        .iter()
        .find(|r| r.name == route_name)
        .ok_or_else(|| {
            Failure(
                exit::FAILED,
                format!(
                    "failed message {id} came from route `{route_name}`, which is not in {}; pass the configuration it ran with (--config)",
                    config_path.display()
                ),
            )
        })?;
    let adapter = route.map.clone();
    let dir = loaded.adapter_path(&adapter);
    if !dir.is_dir() {
        return Err(Failure(
            exit::USAGE,
            format!("adapter folder {} does not exist", dir.display()),
        ));
    }
    let body = match s(&v, "body_encoding").as_str() {
        "base64" => base64::engine::general_purpose::STANDARD
            .decode(s(&v, "body"))
            .map_err(|e| Failure(exit::FAILED, format!("body of {id}: {e}")))?,
        _ => s(&v, "body").into_bytes(),
    };
    let content_type = s(&v, "content_type");
    let ext = extension(&content_type, &body);
    let input_rel = format!("tests/failed/{id}.{ext}");
    let case_file = dir.join(format!("tests/failed-{id}.yaml"));
    if case_file.exists() {
        return Err(Failure(
            exit::FAILED,
            format!(
                "{} already exists: failure {id} was exported before; remove it to export again",
                case_file.display()
            ),
        ));
    }
    let name = format!("failed_{id}");
    let message_type = v["properties"]["type"].as_str().map(str::to_owned);
    let mut envelope = Vec::new();
    if let Some(a) = v["properties"]["app_id"].as_str() {
        envelope.push(format!("app_id: {}", yaml_str(a)));
    }
    if let Some(snd) = v["headers"]["lgsp-sender"].as_str() {
        envelope.push(format!("sender: {}", yaml_str(snd)));
    }
    let error = format!("{kind} [{}]: {}", s(&v, "error_code"), s(&v, "error"));
    let mut text = String::new();
    text.push_str(&format!(
        "# Regression test from failed message {id} (message {}, route {route_name}, last failed {}).\n",
        s(&v, "message_id"),
        s(&v, "last_failed_at")
    ));
    for (i, line) in error.lines().enumerate() {
        text.push_str(if i == 0 { "# Today's error: " } else { "#   " });
        text.push_str(line);
        text.push('\n');
    }
    text.push_str(
        "# The case expects the correct output, so `lgsp test` fails with today's error until\n\
         # the cause is fixed; then `lgsp test --update ADAPTER` writes the golden file: review it.\n",
    );
    text.push_str("cases:\n");
    text.push_str(&format!("  - name: {}\n", yaml_str(&name)));
    text.push_str(&format!("    input: {}\n", yaml_str(&input_rel)));
    match &message_type {
        Some(t) => text.push_str(&format!("    type: {}\n", yaml_str(t))),
        None => {
            return Err(Failure(
                exit::FAILED,
                format!(
                    "failed message {id} has no message type (AMQP `type`): the bus could not have dispatched it to a mapping"
                ),
            ));
        }
    }
    if ext != "bin" {
        text.push_str(&format!("    content_type: {ext}\n"));
    }
    if !envelope.is_empty() {
        text.push_str(&format!("    envelope: {{ {} }}\n", envelope.join(", ")));
    }
    text.push_str(&format!(
        "    expect: {}\n",
        yaml_str(&format!("tests/golden/{name}.json"))
    ));
    let input_path: PathBuf = dir.join(&input_rel);
    let write = |path: &Path, bytes: &[u8]| -> Result<(), Failure> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| Failure(exit::FAILED, format!("{}: {e}", parent.display())))?;
        }
        std::fs::write(path, bytes)
            .map_err(|e| Failure(exit::FAILED, format!("{}: {e}", path.display())))
    };
    write(&input_path, &body)?;
    write(&case_file, text.as_bytes())?;
    if api.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "adapter": adapter,
                "case": name,
                "case_file": case_file,
                "input_file": input_path,
                "error": error,
            }))
            .unwrap_or_default()
        );
    } else {
        println!(
            "wrote {} and {}; `lgsp test {adapter}` fails with today's error until it is fixed",
            case_file.display(),
            input_path.display()
        );
    }
    Ok(())
}
