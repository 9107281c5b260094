//! Configuration: the model, its unit types, and loading with every problem reported.

mod load;
mod model;
mod secret;
mod units;
pub mod yaml_pos;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

pub use load::{ENV_PREFIX, EnvOverrides, Problem, YamlFile, display_key};
pub use model::*;
pub use secret::{Secret, SecretUrl, percent_decode, redact_url};
pub use units::{ByteSize, Duration, lenient};

/// A loaded root configuration and where it came from.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    pub config: Config,
    /// The root file.
    pub path: PathBuf,
    /// For each route of `config.routes`, its index in the file (routes that failed to
    /// load are left out of `config.routes`).
    pub route_index: Vec<usize>,
}

impl LoadedConfig {
    /// The folder of adapter `name`.
    pub fn adapter_path(&self, name: &str) -> PathBuf {
        self.adapter_dir().join(name)
    }

    /// `adapter_dir`, resolved against the root file's folder.
    pub fn adapter_dir(&self) -> PathBuf {
        let base = self.path.parent().unwrap_or_else(|| Path::new("."));
        base.join(&self.config.adapter_dir)
    }

    /// `schema_dir`, resolved against the root file's folder.
    pub fn schema_dir(&self) -> PathBuf {
        let base = self.path.parent().unwrap_or_else(|| Path::new("."));
        base.join(&self.config.schema_dir)
    }

    /// `reference_dir`, resolved against the root file's folder.
    pub fn reference_dir(&self) -> PathBuf {
        let base = self.path.parent().unwrap_or_else(|| Path::new("."));
        base.join(&self.config.reference_dir)
    }
}

const TOP_LEVEL: &[&str] = &[
    "broker",
    "store",
    "http",
    "limits",
    "admin",
    "replay",
    "adapter_dir",
    "schema_dir",
    "reference_dir",
    "adapters",
    "routes",
    "apps",
    "gateway",
    "agreements",
    "log",
    "tracking",
];

/// Load the root file at `path` with `env` overrides. Every problem found is returned,
/// not just the first. Adapters are loaded separately (they belong to the mapping crate).
pub fn load(path: &Path, env: EnvOverrides) -> Result<LoadedConfig, Vec<Problem>> {
    match load_partial(path, env)? {
        (cfg, problems) if problems.is_empty() => Ok(cfg),
        (_, problems) => Err(problems),
    }
}

/// As [`load`], but a file that parses yields a configuration even with problems (failed
/// sections at their defaults, failed routes left out), so that later checks (adapters,
/// references) can report their problems in the same run.
pub fn load_partial(
    path: &Path,
    env: EnvOverrides,
) -> Result<(LoadedConfig, Vec<Problem>), Vec<Problem>> {
    let mut file = YamlFile::open(path, Some(env)).map_err(|p| vec![p])?;
    let cfg = build(&mut file);
    let problems = std::mem::take(&mut file.problems);
    match cfg {
        Some(c) => Ok((c, problems)),
        None => Err(problems),
    }
}

/// As [`load`], from an open file (tests give text directly).
pub fn load_file(file: &mut YamlFile) -> Option<LoadedConfig> {
    build(file).filter(|_| file.problems.is_empty())
}

fn build(file: &mut YamlFile) -> Option<LoadedConfig> {
    if !file.check_top_level(TOP_LEVEL) {
        return None;
    }
    let broker = file.section::<BrokerConfig>("broker");
    let store = file.section::<StoreConfig>("store");
    let http = file.section::<HttpConfig>("http");
    let limits = file.section::<LimitsConfig>("limits");
    let admin = file.section::<AdminConfig>("admin");
    let replay = file.section::<ReplayConfig>("replay");
    let adapter_dir = file.section::<PathBuf>("adapter_dir");
    let schema_dir = file.section::<PathBuf>("schema_dir");
    let reference_dir = file.section::<PathBuf>("reference_dir");
    let adapters = file.list::<String>("adapters");
    let routes = file.list::<RouteConfig>("routes");
    let apps = file.entries::<AppConfig>("apps");
    let gateway = file.section::<GatewayConfig>("gateway");
    let agreements = file.entries::<AgreementConfig>("agreements");
    let log = file.section::<LogConfig>("log");
    let tracking = file.section::<TrackingConfig>("tracking");
    let route_count = file
        .section::<Vec<figment::value::Value>>("routes")
        .map_or(0, |r| r.len());
    let adapter_count = file
        .section::<Vec<figment::value::Value>>("adapters")
        .map_or(0, |r| r.len());

    let route_index: Vec<usize> = routes.iter().map(|(i, _)| *i).collect();
    let mut config = Config {
        broker: broker.unwrap_or_default(),
        store: store.unwrap_or_default(),
        http: http.unwrap_or_default(),
        limits: limits.unwrap_or_default(),
        admin: admin.unwrap_or_default(),
        replay: replay.unwrap_or_default(),
        adapter_dir: adapter_dir.unwrap_or_else(|| PathBuf::from("../adapters")),
        schema_dir: schema_dir.unwrap_or_else(model::default_schema_dir),
        reference_dir: reference_dir.unwrap_or_else(model::default_reference_dir),
        adapters: adapters.into_iter().map(|(_, a)| a).collect(),
        routes: routes.into_iter().map(|(_, r)| r).collect(),
        apps: apps.into_iter().collect(),
        gateway: gateway.unwrap_or_default(),
        agreements: agreements.into_iter().collect(),
        log: log.unwrap_or_default(),
        tracking: tracking.unwrap_or_default(),
    };
    let complete = config.routes.len() == route_count && config.adapters.len() == adapter_count;
    resolve_tls_paths(&mut config, &file.path);
    validate(&config, &route_index, file);
    validate_tls(&config, file);
    validate_apps(&config, &route_index, file);
    if !complete && file.problems.is_empty() {
        file.problem("", "some list items could not be read");
    }
    Some(LoadedConfig {
        config,
        path: file.path.clone(),
        route_index,
    })
}

/// The TLS files of the broker and the HTTP server, resolved against the root file's
/// folder (as every path of the configuration is), so that every part reads the same
/// file whatever its working directory.
fn resolve_tls_paths(c: &mut Config, root: &Path) {
    let base = root.parent().unwrap_or_else(|| Path::new("."));
    let t = &mut c.broker.tls;
    for p in [&mut t.ca, &mut t.cert, &mut t.key].into_iter().flatten() {
        *p = base.join(&*p);
    }
    if let Some(t) = &mut c.http.tls {
        t.cert = base.join(&t.cert);
        t.key = base.join(&t.key);
    }
}

/// A TLS file must be readable now (not at the first reconnect, hours later); a client
/// certificate needs its key; TLS settings for the broker with no `amqps://` URL would be
/// ignored silently.
fn validate_tls(c: &Config, file: &mut YamlFile) {
    let t = &c.broker.tls;
    let mut files = vec![
        ("broker.tls.ca", t.ca.as_ref()),
        ("broker.tls.cert", t.cert.as_ref()),
        ("broker.tls.key", t.key.as_ref()),
    ];
    if let Some(h) = &c.http.tls {
        files.push(("http.tls.cert", Some(&h.cert)));
        files.push(("http.tls.key", Some(&h.key)));
    }
    for (key, path) in files {
        let readable = |p: &Path| {
            if std::fs::File::open(p)?.metadata()?.is_file() {
                Ok(())
            } else {
                Err(std::io::Error::other("not a file"))
            }
        };
        if let Some(path) = path
            && let Err(e) = readable(path)
        {
            file.problem(
                key,
                format!(
                    "cannot read {}: {e}; give the path of a PEM file (relative paths are relative to the configuration file's folder)",
                    path.display()
                ),
            );
        }
    }
    if t.cert.is_some() != t.key.is_some() {
        file.problem(
            if t.cert.is_some() {
                "broker.tls.key"
            } else {
                "broker.tls.cert"
            },
            "a client certificate needs both broker.tls.cert and broker.tls.key",
        );
    }
    if !t.is_empty()
        && !c
            .broker
            .nodes()
            .iter()
            .any(|u| u.expose().starts_with("amqps://"))
    {
        file.problem(
            "broker.tls",
            "TLS settings are given but no broker URL is amqps://; write amqps://user:password@host:5671/vhost (or remove broker.tls)",
        );
    }
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Admin tokens: hashes are SHA-256 in hex, names unique (the fixed names of the
/// older keys included); replay pace at least 1.
fn validate_admin(c: &Config, file: &mut YamlFile) {
    let mut names: HashSet<String> = HashSet::new();
    if c.admin.operator_token.is_some() {
        names.insert("operator".into());
    }
    for (key, list, prefix) in [
        (
            "admin.operator_token_sha256",
            &c.admin.operator_token_sha256,
            "operator",
        ),
        (
            "admin.viewer_token_sha256",
            &c.admin.viewer_token_sha256,
            "viewer",
        ),
    ] {
        for (i, h) in list.iter().enumerate() {
            names.insert(format!("{prefix}-{}", i + 1));
            if !is_sha256_hex(h.trim()) {
                file.problem(
                    &format!("{key}.{i}"),
                    "not a SHA-256 in hex (64 digits); compute it with `printf %s TOKEN | sha256sum`",
                );
            }
        }
    }
    for (i, t) in c.admin.tokens.iter().enumerate() {
        if t.name.trim().is_empty() || t.name.chars().any(char::is_control) {
            file.problem(
                &format!("admin.tokens.{i}.name"),
                "give the holder's name (no control characters)",
            );
        } else if !names.insert(t.name.clone()) {
            file.problem(
                &format!("admin.tokens.{i}.name"),
                format!(
                    "`{}` is already the name of another token (older keys are named operator, operator-N, viewer-N); names must be unique",
                    t.name
                ),
            );
        }
        if !is_sha256_hex(t.sha256.trim()) {
            file.problem(
                &format!("admin.tokens.{i}.sha256"),
                "not a SHA-256 in hex (64 digits); compute it with `printf %s TOKEN | sha256sum`",
            );
        }
    }
    if c.replay.rate == 0 {
        file.problem("replay.rate", "must be at least 1 (messages per second)");
    }
    if c.replay.batch_size == 0 || c.replay.batch_size > 1000 {
        file.problem("replay.batch_size", "must be between 1 and 1000");
    }
}

/// Applications: ids are names, hashes are SHA-256 in hex and belong to one application
/// only, plain keys come from the environment only, patterns are topic patterns, rate
/// limits are positive; a route target `app:` names a configured application (when any
/// is configured).
fn validate_apps(c: &Config, route_index: &[usize], file: &mut YamlFile) {
    let mut owner: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    for (id, app) in &c.apps {
        let at = |k: &str| format!("apps.{id}.{k}");
        if !valid_name(id) {
            file.problem(
                &format!("apps.{id}"),
                format!("application id `{id}`: use lower-case letters, digits, `_` or `-`"),
            );
        }
        let mut hashes: Vec<String> = Vec::new();
        for (i, h) in app.api_key_sha256.iter().enumerate() {
            let h = h.trim().to_ascii_lowercase();
            if !is_sha256_hex(&h) {
                file.problem(
                    &format!("apps.{id}.api_key_sha256.{i}"),
                    "not a SHA-256 in hex (64 digits); `lgsp apps keygen APP` prints a key and its hash",
                );
                continue;
            }
            hashes.push(h);
        }
        if let Some(k) = &app.api_key {
            if !file.from_env(&at("api_key")) {
                file.problem(
                    &at("api_key"),
                    format!(
                        "a plain API key is read only from the environment (LGSP_APPS__{}__API_KEY); in the file, list its SHA-256 in api_key_sha256",
                        id.to_ascii_uppercase()
                    ),
                );
            } else if k.expose().len() < 16 {
                file.problem(
                    &at("api_key"),
                    "an API key shorter than 16 characters is guessable; use `lgsp apps keygen APP`",
                );
            } else {
                hashes.push(crate::apps::key_hash_hex(k.expose()));
            }
        }
        for h in hashes {
            match owner.get(&h) {
                Some(other) if other != id => file.problem(
                    &at("api_key_sha256"),
                    format!(
                        "the same API key is also a key of application `{other}`: a key must identify one application; give each its own (`lgsp apps keygen`)"
                    ),
                ),
                Some(_) => file.problem(&at("api_key_sha256"), "the same key is listed twice"),
                None => {
                    owner.insert(h, id.clone());
                }
            }
        }
        for (list, key) in [(&app.publish, "publish"), (&app.receive, "receive")] {
            for (i, p) in list.iter().enumerate() {
                if let Some(why) = crate::topic::pattern_problem(p) {
                    file.problem(&format!("apps.{id}.{key}.{i}"), why);
                }
            }
        }
        if app.rate_limit.per_second == 0 {
            file.problem(&at("rate_limit.per_second"), "must be at least 1");
        }
        if app.rate_limit.burst == 0 {
            file.problem(&at("rate_limit.burst"), "must be at least 1");
        }
    }
    // The AMQP user of each application: one application per user, never the bus's own.
    let bus_users = c.broker.users();
    let mut amqp_owner: std::collections::HashMap<&str, &str> = std::collections::HashMap::new();
    for (id, app) in &c.apps {
        let user = app.amqp_user.as_deref().unwrap_or(id);
        let at = format!("apps.{id}.amqp_user");
        if user.trim().is_empty() {
            file.problem(
                &at,
                "an empty AMQP user: leave the key out to use the application id",
            );
        } else if bus_users.iter().any(|b| b == user) {
            file.problem(
                &at,
                format!(
                    "`{user}` is the user lgsp itself connects with (broker.url): the bus trusts its messages to name any application, so an application must publish with a user of its own; set apps.{id}.amqp_user"
                ),
            );
        }
        if let Some(other) = amqp_owner.insert(user, id) {
            file.problem(
                &at,
                format!(
                    "AMQP user `{user}` is also application `{other}`'s: each application publishes with its own user"
                ),
            );
        }
    }
    if c.gateway.confirm_timeout.get().is_zero() {
        file.problem("gateway.confirm_timeout", "must be more than 0, e.g. 10s");
    }
    if c.apps.is_empty() {
        return;
    }
    for (r, &i) in c.routes.iter().zip(route_index) {
        for (j, t) in r.to.iter().enumerate() {
            if let Some(app) = &t.app
                && !c.apps.contains_key(app)
            {
                file.problem(
                    &format!("routes.{i}.to.{j}.app"),
                    format!(
                        "route `{}` delivers to application `{app}`, which is not in `apps` ({}); add it there or fix the name",
                        r.name,
                        c.apps.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                );
            }
        }
    }
}

fn validate_webhook(w: &model::WebhookConfig, at: &str, file: &mut YamlFile) {
    let url = w.url.expose();
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        file.problem(
            &format!("{at}.webhook.url"),
            format!("`{}` is not an http:// or https:// URL", w.url),
        );
    }
    let name = w.receiver_name();
    if !valid_name(&name) {
        file.problem(
            &format!("{at}.webhook.name"),
            format!("`{name}`: use lower-case letters, digits, `_` or `-`"),
        );
    }
    if w.concurrency == 0 {
        file.problem(&format!("{at}.webhook.concurrency"), "must be at least 1");
    }
    if w.timeout.get().is_zero() {
        file.problem(
            &format!("{at}.webhook.timeout"),
            "must be more than 0, e.g. 10s",
        );
    }
    if let Some(var) = &w.secret_env
        && var.starts_with(ENV_PREFIX)
    {
        file.problem(
            &format!("{at}.webhook.secret_env"),
            format!("`{var}`: variables starting with {ENV_PREFIX} are configuration keys; name the secret's variable otherwise, e.g. TAX_WEBHOOK_SECRET"),
        );
    }
}

/// Every agreement parses and names a receiver some route delivers to.
fn validate_agreements(c: &Config, file: &mut YamlFile) {
    if let Err(problems) = crate::agreement::Agreements::from_config(&c.agreements) {
        for (key, message) in problems {
            file.problem(&format!("agreements.{key}"), message);
        }
    }
    let mut receivers: Vec<String> = Vec::new();
    for t in c.routes.iter().flat_map(|r| &r.to) {
        if let Some(a) = &t.app {
            receivers.push(a.clone());
        }
        if let Some(w) = &t.webhook {
            receivers.push(w.receiver_name());
        }
    }
    receivers.sort();
    receivers.dedup();
    for (name, a) in &c.agreements {
        if !receivers.contains(&a.receiver) && !c.apps.contains_key(&a.receiver) {
            file.problem(
                &format!("agreements.{name}.receiver"),
                format!(
                    "`{}` is neither an application nor a webhook any route delivers to; receivers: {}",
                    a.receiver,
                    if receivers.is_empty() { "none".to_owned() } else { receivers.join(", ") }
                ),
            );
        }
        if a.events.is_empty() {
            file.problem(
                &format!("agreements.{name}.events"),
                "give at least one event pattern, e.g. [enterprise.*], or leave the key out for every event",
            );
        }
    }
}

/// Checks that need more than one key: names, references between sections, ranges.
fn validate(c: &Config, route_index: &[usize], file: &mut YamlFile) {
    if !valid_name(&c.broker.prefix) && !c.broker.prefix.contains('.') {
        file.problem(
            "broker.prefix",
            "use lower-case letters, digits, `_` or `-`",
        );
    }
    let url = c.broker.url.expose();
    for (i, u) in c.broker.urls.iter().enumerate() {
        if !(u.expose().starts_with("amqp://") || u.expose().starts_with("amqps://")) {
            file.problem(
                &format!("broker.urls.{i}"),
                format!("`{u}` is not an AMQP URL"),
            );
        }
    }
    if let Some(m) = &c.broker.management_url
        && !m.expose().starts_with("http://")
    {
        file.problem(
            "broker.management_url",
            format!("`{m}` is not an http:// URL; write http://user:password@host:15672"),
        );
    }
    if !(url.starts_with("amqp://") || url.starts_with("amqps://")) {
        file.problem(
            "broker.url",
            format!(
                "`{}` is not an AMQP URL; write amqp://user:password@host:5672/vhost",
                c.broker.url
            ),
        );
    }
    if c.broker.prefetch == 0 {
        file.problem("broker.prefetch", "must be at least 1");
    }
    if c.broker.confirm_window == 0 {
        file.problem("broker.confirm_window", "must be at least 1");
    }
    validate_admin(c, file);
    validate_agreements(c, file);
    let store = c.store.url.expose();
    if !(store.starts_with("sqlite:")
        || store.starts_with("postgres://")
        || store.starts_with("postgresql://"))
    {
        file.problem(
            "store.url",
            format!(
                "`{}` is neither sqlite://PATH nor postgres://...",
                c.store.url
            ),
        );
    }
    if c.http.listen.parse::<std::net::SocketAddr>().is_err() {
        file.problem(
            "http.listen",
            format!(
                "`{}` is not an address; write HOST:PORT, e.g. 127.0.0.1:8080 (port 0 picks one)",
                c.http.listen
            ),
        );
    }
    if c.limits.max_depth == 0 {
        file.problem("limits.max_depth", "must be at least 1");
    }
    if c.limits.max_message_bytes.bytes() == 0 {
        file.problem("limits.max_message_bytes", "must be more than 0");
    }
    let mut seen = HashSet::new();
    for (i, a) in c.adapters.iter().enumerate() {
        if !valid_name(a) {
            file.problem(
                &format!("adapters.{i}"),
                format!("`{a}` is not a folder name of lower-case letters, digits, `_` or `-`"),
            );
        }
        if !seen.insert(a) {
            file.problem(
                &format!("adapters.{i}"),
                format!("adapter `{a}` is listed twice"),
            );
        }
    }
    let mut names = HashSet::new();
    for (r, &i) in c.routes.iter().zip(route_index) {
        let at = |k: &str| format!("routes.{i}.{k}");
        if !valid_name(&r.name) {
            file.problem(
                &at("name"),
                format!("`{}`: use lower-case letters, digits, `_` or `-`", r.name),
            );
        }
        if !names.insert(&r.name) {
            file.problem(&at("name"), format!("route `{}` is defined twice", r.name));
        }
        if r.from.binding.trim().is_empty() {
            file.problem(
                &at("from.binding"),
                "empty binding key; write e.g. bizreg.enterprise.*",
            );
        }
        if !c.adapters.contains(&r.map) {
            file.problem(
                &at("map"),
                format!(
                    "route `{}` maps with adapter `{}`, which is not in `adapters` ({}); add it there or fix the name",
                    r.name,
                    r.map,
                    c.adapters.join(", ")
                ),
            );
        }
        if r.to.is_empty() {
            file.problem(&at("to"), format!("route `{}` has no target", r.name));
        }
        let mut webhooks = HashSet::new();
        for (j, t) in r.to.iter().enumerate() {
            let tat = format!("routes.{i}.to.{j}");
            let kinds = [t.exchange.is_some(), t.app.is_some(), t.webhook.is_some()];
            match kinds.iter().filter(|k| **k).count() {
                0 => file.problem(
                    &tat,
                    "a target needs `exchange` (with `routing_key`), `app` or `webhook`",
                ),
                1 => {}
                _ => file.problem(&tat, "set one of `exchange`, `app` or `webhook`"),
            }
            if t.routing_key.is_some() && t.exchange.is_none() {
                file.problem(
                    &format!("{tat}.routing_key"),
                    "`routing_key` applies to `exchange` targets only",
                );
            }
            if let Some(w) = &t.webhook {
                validate_webhook(w, &tat, file);
                if t.map.is_some() && w.map.is_some() {
                    file.problem(
                        &format!("{tat}.map"),
                        "give the webhook's mapping once: in `webhook.map` or in `map`",
                    );
                }
                let name = w.receiver_name();
                if !webhooks.insert(name.clone()) {
                    file.problem(
                        &format!("{tat}.webhook"),
                        format!(
                            "route `{}` has two webhooks named `{name}`; give each its own `name`",
                            r.name
                        ),
                    );
                }
            }
        }
        if r.retry.attempts == 0 {
            file.problem(&at("retry.attempts"), "must be at least 1 (1 = no retry)");
        }
        if r.retry.delays.iter().any(|d| d.get().is_zero()) {
            file.problem(
                &at("retry.delays"),
                "a delay of 0 would retry at once; give e.g. 1s",
            );
        }
        if r.retry.delays.is_empty() {
            file.problem(&at("retry.delays"), "give at least one delay, e.g. [10s]");
        }
    }
}

#[cfg(test)]
mod tests;
