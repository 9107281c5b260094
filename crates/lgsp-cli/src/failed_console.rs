//! The console commands of `lgsp failed`: groups, bulk replay, discard, approval
//! requests, the audit log and notes. Same client, output and exit codes as
//! `failed.rs`.

use std::time::Instant;

use lgsp_http::admin::api::{
    AuditQuery, BulkRequest, DiscardRequest, NoteRequest, RequestsQuery, Selection, VerifyQuery,
};
use serde_json::{Value, json};

use crate::exit;
use crate::failed::{Api, AuditArgs, Client, Failure, GroupsArgs, ReplayArgs, cut, print_rows, s};

fn pretty(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

pub async fn groups(a: &GroupsArgs) -> Result<(), Failure> {
    let c = Client::new(&a.api)?;
    let q = Selection {
        route: a.route.clone(),
        kind: a.kind,
        text: a.text.clone(),
        from: a.from.clone(),
        to: a.to.clone(),
        status: a.status.clone(),
        ..Selection::default()
    };
    let v = c
        .call(c.http.get(format!("{}/admin/v1/groups", c.base)).query(&q))
        .await?;
    if a.api.json {
        pretty(&v);
        return Ok(());
    }
    let rows = rows_of(&v, |g| {
        vec![
            s(g, "key"),
            s(g, "count"),
            match s(g, "route") {
                r if r.is_empty() => "-".into(),
                r => r,
            },
            s(g, "error_kind"),
            s(g, "error_code"),
            s(g, "first_seen"),
            s(g, "last_seen"),
            format!("#{} {}", s(g, "sample_id"), cut(&s(g, "sample_error"), 60)),
        ]
    });
    let none = rows.is_empty();
    print_rows(
        &[
            "GROUP",
            "COUNT",
            "ROUTE",
            "KIND",
            "CODE",
            "FIRST SEEN",
            "LAST SEEN",
            "SAMPLE",
        ],
        rows,
    );
    if none {
        eprintln!("no failed messages match");
    }
    Ok(())
}

/// Drive a bulk replay batch by batch until nothing is left; each call replays and
/// records one batch on the server, which paces them.
pub async fn bulk(a: &ReplayArgs) -> Result<(), Failure> {
    let mut body = BulkRequest {
        group: a.group.clone(),
        batch_size: a.batch_size,
        rate: a.rate,
        ..BulkRequest::default()
    };
    for f in &a.filter {
        let Some((k, v)) = f.split_once('=') else {
            return Err(Failure(
                exit::USAGE,
                format!("--filter {f}: write KEY=VALUE, e.g. --filter kind=mapping"),
            ));
        };
        let value = Some(v.to_owned());
        match k.trim() {
            "route" => body.route = value,
            "code" => body.code = value,
            "text" => body.text = value,
            "from" => body.from = value,
            "to" => body.to = value,
            "kind" => {
                let kind = v
                    .trim()
                    .parse()
                    .map_err(|e| Failure(exit::USAGE, format!("--filter {f}: {e}")))?;
                body.kind = Some(kind);
            }
            k => {
                return Err(Failure(
                    exit::USAGE,
                    format!(
                        "--filter {f}: unknown key `{k}`; one of route, kind, code, text, from, to"
                    ),
                ));
            }
        }
    }
    let selects = BulkRequest {
        batch_size: None,
        rate: None,
        ..body.clone()
    };
    if selects == BulkRequest::default() {
        return Err(Failure(
            exit::USAGE,
            "give an id, --group KEY or --filter KEY=VALUE (see `lgsp failed groups`)".into(),
        ));
    }
    let c = Client::new(&a.api)?;
    let t0 = Instant::now();
    let (mut replayed, mut refused) = (0u64, Vec::<Value>::new());
    let remaining = loop {
        let v = c
            .call(
                c.http
                    .post(format!("{}/admin/v1/bulk-replay", c.base))
                    .json(&body),
            )
            .await?;
        if let Some(r) = v.get("request_id") {
            if a.api.json {
                pretty(&v);
            } else {
                println!(
                    "request {r}: bulk replay of {} messages awaits another operator's approval (lgsp failed approve {r})",
                    s(&v, "count")
                );
            }
            return Ok(());
        }
        let n = v["replayed"].as_array().map_or(0, Vec::len) as u64;
        replayed += n;
        refused.extend(v["refused"].as_array().cloned().unwrap_or_default());
        let remaining = v["remaining"].as_u64().unwrap_or(0);
        let secs = t0.elapsed().as_secs_f64().max(0.001);
        eprintln!(
            "replayed {replayed} ({:.0} msg/s), {remaining} left{}",
            replayed as f64 / secs,
            if refused.is_empty() {
                String::new()
            } else {
                format!(", {} refused by the broker", refused.len())
            }
        );
        if remaining == 0 || n == 0 {
            break remaining;
        }
    };
    let secs = t0.elapsed().as_secs_f64();
    if a.api.json {
        pretty(&json!({
            "replayed": replayed,
            "refused": refused,
            "remaining": remaining,
            "seconds": secs,
        }));
    } else {
        println!("replayed {replayed} messages in {secs:.1}s; {remaining} still failed");
        for r in &refused {
            println!("  refused {}: {}", s(r, "id"), s(r, "error"));
        }
    }
    if refused.is_empty() {
        Ok(())
    } else {
        Err(Failure(
            exit::FAILED,
            format!(
                "{} messages were refused by the broker and stay failed; is the route still configured, its queue not full?",
                refused.len()
            ),
        ))
    }
}

pub async fn discard(api: &Api, id: i64, reason: &str) -> Result<(), Failure> {
    let c = Client::new(api)?;
    let v = c
        .call(
            c.http
                .post(format!("{}/admin/v1/failed/{id}/discard", c.base))
                .json(&DiscardRequest {
                    reason: Some(reason.to_owned()),
                }),
        )
        .await?;
    if api.json {
        pretty(&v);
    } else if let Some(r) = v.get("request_id") {
        println!(
            "request {r}: discard of {id} awaits another operator's approval (lgsp failed approve {r})"
        );
    } else {
        println!("discarded {id}");
    }
    Ok(())
}

pub async fn requests(api: &Api, status: Option<&str>) -> Result<(), Failure> {
    let c = Client::new(api)?;
    let req = c
        .http
        .get(format!("{}/admin/v1/requests", c.base))
        .query(&RequestsQuery {
            status: status.map(str::to_owned),
        });
    let v = c.call(req).await?;
    if api.json {
        pretty(&v);
        return Ok(());
    }
    let rows = rows_of(&v, |r| {
        vec![
            s(r, "id"),
            s(r, "status"),
            s(r, "action"),
            s(r, "requested_by"),
            s(r, "created_at"),
            s(r, "decided_by"),
            cut(&r["payload"].to_string(), 60),
        ]
    });
    print_rows(
        &["ID", "STATUS", "ACTION", "BY", "AT", "APPROVED BY", "WHAT"],
        rows,
    );
    Ok(())
}

pub async fn approve(api: &Api, request: i64) -> Result<(), Failure> {
    let c = Client::new(api)?;
    let v = c
        .call(
            c.http
                .post(format!("{}/admin/v1/requests/{request}/approve", c.base)),
        )
        .await?;
    if api.json {
        pretty(&v);
    } else {
        println!(
            "approved request {request} ({} by {}): {}",
            s(&v["request"], "action"),
            s(&v["request"], "requested_by"),
            v["result"]
        );
    }
    Ok(())
}

pub async fn audit(a: &AuditArgs) -> Result<(), Failure> {
    let c = Client::new(&a.api)?;
    if a.verify {
        let req = c
            .http
            .get(format!("{}/admin/v1/audit/verify", c.base))
            .query(&VerifyQuery {
                head: a.head.clone().flatten(),
            });
        let v = c.call(req).await?;
        if a.api.json {
            pretty(&v);
        }
        if v["ok"] == true {
            if !a.api.json {
                println!(
                    "audit chain verified: {} entries, head {} {}",
                    s(&v, "entries"),
                    s(&v["head"], "seq"),
                    s(&v["head"], "hash")
                );
            }
            return Ok(());
        }
        return Err(Failure(
            exit::FAILED,
            format!(
                "audit chain broken at entry {}: {}",
                s(&v["first_bad"], "seq"),
                s(&v["first_bad"], "problem")
            ),
        ));
    }
    if let Some(None) = &a.head {
        let v = c
            .call(c.http.get(format!("{}/admin/v1/audit/head", c.base)))
            .await?;
        if a.api.json {
            pretty(&v);
        } else {
            println!("{} {}", s(&v, "seq"), s(&v, "hash"));
        }
        return Ok(());
    }
    if let Some(Some(_)) = &a.head {
        return Err(Failure(
            exit::USAGE,
            "--head HASH is checked with --verify: lgsp failed audit --verify --head HASH".into(),
        ));
    }
    let v = c
        .call(
            c.http
                .get(format!("{}/admin/v1/audit", c.base))
                .query(&AuditQuery {
                    after: Some(a.after),
                    limit: Some(a.limit),
                }),
        )
        .await?;
    if a.api.json {
        pretty(&v);
        return Ok(());
    }
    let rows = rows_of(&v, |e| {
        vec![
            s(e, "seq"),
            s(e, "at"),
            s(e, "actor"),
            s(e, "action"),
            cut(&e["message_ids"].to_string(), 30),
            cut(&s(e, "note"), 70),
        ]
    });
    print_rows(&["SEQ", "AT", "WHO", "ACTION", "RECORDS", "NOTE"], rows);
    Ok(())
}

pub async fn note(api: &Api, text: &str, ids: &[i64]) -> Result<(), Failure> {
    let c = Client::new(api)?;
    let v = c
        .call(
            c.http
                .post(format!("{}/admin/v1/audit/notes", c.base))
                .json(&NoteRequest {
                    note: Some(text.to_owned()),
                    ids: ids.to_vec(),
                }),
        )
        .await?;
    if api.json {
        pretty(&v);
    } else {
        println!("noted as audit entry {}", s(&v, "seq"));
    }
    Ok(())
}

/// One table row per item of the JSON array `v` (none when it is not an array).
fn rows_of(v: &Value, row: impl Fn(&Value) -> Vec<String>) -> Vec<Vec<String>> {
    v.as_array()
        .map_or_else(Vec::new, |items| items.iter().map(row).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A mistyped kind in `--filter` is refused before any request is sent (the URL
    /// points nowhere: reaching it would be another error).
    #[tokio::test]
    async fn a_bulk_filter_with_a_mistyped_kind_is_a_usage_error() {
        let a = ReplayArgs {
            api: Api {
                url: "http://127.0.0.1:1".into(),
                token: None,
                ca: None,
                json: false,
            },
            id: None,
            body: None,
            group: None,
            filter: vec!["route=bizreg".into(), "kind=mapings".into()],
            batch_size: None,
            rate: None,
        };
        let Err(Failure(code, message)) = bulk(&a).await else {
            panic!("a mistyped kind was sent");
        };
        assert_eq!(code, exit::USAGE);
        assert!(
            message.starts_with("--filter kind=mapings: unknown error kind `mapings`"),
            "{message}"
        );
    }
}
