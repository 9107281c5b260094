//! Guardrails at start, through the management API: refuse to run against a broker that
//! contradicts the configuration (too old for quorum at-least-once dead-lettering,
//! policies overriding the route queues' settings, existing queues declared otherwise),
//! saying what to change.

use lgsp_core::config::SecretUrl;
use serde_json::Value;

use crate::topology::TopologySpec;

/// A contradiction between the broker and the configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GuardError {
    #[error(
        "cannot read the management API at {url}: {message}; check broker.management_url or remove it to skip these checks"
    )]
    Unreachable { url: String, message: String },
    #[error(
        "RabbitMQ {found} is too old: lgsp needs 3.10 or later (quorum queues with at-least-once dead-lettering and message TTL); upgrade the broker"
    )]
    TooOld { found: String },
    #[error(
        "policy `{policy}` (pattern `{pattern}`) sets {key} = {value} on queue {queue}, which the configuration manages itself; remove {key} from the policy or narrow its pattern"
    )]
    Policy {
        policy: String,
        pattern: String,
        key: String,
        value: String,
        queue: String,
    },
    #[error(
        "queue {queue} exists with {key} = {found}, the configuration expects {expected}; drain and delete the queue, or change the configuration to match"
    )]
    Queue {
        queue: String,
        key: String,
        found: String,
        expected: String,
    },
    #[error(
        "queue {queue} still holds {messages} messages of an earlier lgsp, which read one queue per route; this version reads one input queue per adapter and would leave them there. Stop publishing, run the earlier version until {queue} is empty, or move its messages to exchange {input} (e.g. with a shovel), then delete {queue}"
    )]
    LegacyQueue {
        queue: String,
        messages: u64,
        input: String,
    },
}

/// The vhost named by an AMQP URL (`/` when absent), percent-decoded.
pub fn vhost_of(amqp_url: &str) -> String {
    let rest = amqp_url.split_once("://").map_or(amqp_url, |(_, r)| r);
    let path = rest.split_once('/').map_or("", |(_, p)| p);
    let path = path.split(['?', '#']).next().unwrap_or("");
    if path.is_empty() {
        return "/".into();
    }
    lgsp_core::config::percent_decode(path)
}

fn encode(vhost: &str) -> String {
    vhost.replace('%', "%25").replace('/', "%2F")
}

struct Api {
    base: String,
    user: String,
    password: String,
    shown: String,
    client: reqwest::Client,
}

impl Api {
    fn new(url: &SecretUrl) -> Api {
        let full = url.expose();
        let (scheme, rest) = full.split_once("://").unwrap_or(("http", full));
        let (auth, host) = rest
            .rsplit_once('@')
            .map_or(("guest:guest", rest), |(a, h)| (a, h));
        let (user, password) = auth.split_once(':').unwrap_or((auth, ""));
        Api {
            base: format!("{scheme}://{}", host.trim_end_matches('/')),
            user: user.to_owned(),
            password: password.to_owned(),
            shown: url.redacted(),
            client: reqwest::Client::new(),
        }
    }

    async fn get(&self, path: &str) -> Result<Value, GuardError> {
        let err = |m: String| GuardError::Unreachable {
            url: self.shown.clone(),
            message: m,
        };
        let resp = self
            .client
            .get(format!("{}{path}", self.base))
            .basic_auth(&self.user, Some(&self.password))
            .send()
            .await
            .map_err(|e| err(e.to_string()))?;
        if !resp.status().is_success() {
            return Err(err(format!("GET {path}: HTTP {}", resp.status())));
        }
        resp.json().await.map_err(|e| err(e.to_string()))
    }
}

/// Managed keys: policy key, queue argument, and what the configuration wants (None:
/// the configuration sets it per queue, any policy value contradicts).
const MANAGED: &[&str] = &[
    "max-length",
    "delivery-limit",
    "dead-letter-exchange",
    "dead-letter-strategy",
    "overflow",
    "message-ttl",
];

/// Check the broker behind `management` against the topology of `spec` in `vhost`.
pub async fn check(
    management: &SecretUrl,
    amqp_url: &SecretUrl,
    spec: &TopologySpec,
) -> Result<(), GuardError> {
    let api = Api::new(management);
    let vhost = vhost_of(amqp_url.expose());
    let overview = api.get("/api/overview").await?;
    let version = overview["rabbitmq_version"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    if (major, minor) < (3, 10) {
        return Err(GuardError::TooOld { found: version });
    }
    let n = &spec.names;
    let mut queues: Vec<String> = spec.inputs.iter().map(|(a, _)| n.input_queue(a)).collect();
    queues.extend(spec.retry_delays.iter().map(|d| n.retry(*d)));

    let policies = api
        .get(&format!("/api/policies/{}", encode(&vhost)))
        .await?;
    for p in policies.as_array().into_iter().flatten() {
        let applies = p["apply-to"].as_str().unwrap_or("all");
        if !matches!(applies, "all" | "queues" | "quorum_queues") {
            continue;
        }
        let pattern = p["pattern"].as_str().unwrap_or("");
        let Ok(re) = regex::Regex::new(pattern) else {
            continue;
        };
        for q in queues.iter().filter(|q| re.is_match(q)) {
            for key in MANAGED {
                if let Some(v) = p["definition"].get(*key) {
                    return Err(GuardError::Policy {
                        policy: p["name"].as_str().unwrap_or("").to_owned(),
                        pattern: pattern.to_owned(),
                        key: (*key).to_owned(),
                        value: v.to_string(),
                        queue: q.clone(),
                    });
                }
            }
        }
    }

    let existing = api.get(&format!("/api/queues/{}", encode(&vhost))).await?;
    for q in existing.as_array().into_iter().flatten() {
        let name = q["name"].as_str().unwrap_or("");
        let waiting = q["messages"].as_u64().unwrap_or(0);
        if waiting > 0 && name.starts_with(&format!("{}.route.", n.prefix)) {
            return Err(GuardError::LegacyQueue {
                queue: name.to_owned(),
                messages: waiting,
                input: n.input(),
            });
        }
        if !queues.iter().any(|x| x == name) {
            continue;
        }
        let args = &q["arguments"];
        let mut expect = vec![("x-queue-type", Value::from("quorum"))];
        if n.adapter_of_queue(name).is_some() {
            expect.push(("x-max-length", Value::from(spec.max_length)));
            expect.push(("x-delivery-limit", Value::from(spec.delivery_limit)));
            expect.push(("x-dead-letter-exchange", Value::from(n.failed())));
        }
        for (key, want) in expect {
            let found = args.get(key).cloned().unwrap_or(Value::Null);
            if found != want {
                return Err(GuardError::Queue {
                    queue: name.to_owned(),
                    key: key.to_owned(),
                    found: found.to_string(),
                    expected: want.to_string(),
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vhost_is_read_from_the_url() {
        assert_eq!(vhost_of("amqp://g:g@h:5672/%2f"), "/");
        assert_eq!(vhost_of("amqp://g:g@h:5672"), "/");
        assert_eq!(vhost_of("amqp://g:g@h:5672/prod"), "prod");
        assert_eq!(vhost_of("amqp://h/a%2Fb?heartbeat=10"), "a/b");
    }
}
