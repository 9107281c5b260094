//! `lgsp trace MESSAGE_ID`: the story of one message (received, delivered to which
//! target, retried, failed, stored, edited, replayed, with times), from the admin API of
//! a running `lgsp run` (`GET /admin/v1/messages/{id}`). Exit codes as `lgsp failed`.

use serde_json::Value;

use crate::exit;
use crate::failed::{Api, Client, Failure, print_grid};

#[derive(Debug, clap::Args)]
pub struct TraceArgs {
    #[command(flatten)]
    api: Api,
    /// The message id (AMQP message-id, or the id the HTTP gateway answered).
    message_id: String,
}

pub async fn run(a: &TraceArgs) -> u8 {
    match trace(a).await {
        Ok(()) => exit::OK,
        Err(Failure(code, msg)) => {
            eprintln!("error: {msg}");
            code
        }
    }
}

async fn trace(a: &TraceArgs) -> Result<(), Failure> {
    let c = Client::new(&a.api)?;
    let mut url = reqwest::Url::parse(&c.base)
        .map_err(|e| Failure(exit::USAGE, format!("--url {}: {e}", c.base)))?;
    url.path_segments_mut()
        .map_err(|()| Failure(exit::USAGE, format!("--url {}: not an http(s) URL", c.base)))?
        .pop_if_empty()
        .extend(["admin", "v1", "messages", a.message_id.as_str()]);
    let v = c.call(c.http.get(url)).await?;
    if a.api.json {
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        return Ok(());
    }
    let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    println!("message {}", s(&v, "message_id"));
    let events = v
        .get("events")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let rows = events
        .iter()
        .map(|e| {
            vec![
                s(e, "at"),
                s(e, "event"),
                s(e, "route"),
                s(e, "target"),
                s(e, "detail"),
            ]
        })
        .collect();
    print_grid(&["AT", "EVENT", "ROUTE", "TARGET", "DETAIL"], rows);
    let failures = v
        .get("failures")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for f in &failures {
        println!(
            "failure record {}: {} ({}/{}), `lgsp failed show {}`",
            f.get("id").map(Value::to_string).unwrap_or_default(),
            s(f, "status"),
            s(f, "error_kind"),
            s(f, "error_code"),
            f.get("id").map(Value::to_string).unwrap_or_default(),
        );
    }
    Ok(())
}
