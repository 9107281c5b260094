//! The operator files in `deploy/`: every YAML and JSON file parses; the configurations
//! they carry load with lgsp's own loader (and `lgsp check`), with the environment they
//! give; every `LGSP_` variable they set is a configuration key; every file they mount
//! exists; the Kubernetes manifests, the Compose cluster, the RabbitMQ definitions, the
//! Dockerfile and the systemd unit say what deploy/README.md says. No broker needed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Output};

use base64::Engine as _;
use lgsp_core::config::{self, EnvOverrides, LoadedConfig};
use serde::Deserialize;
use serde_yaml::Value;
use sha2::{Digest, Sha256};

/// The password every `password_hash` of definitions.json is made for (deploy/README.md).
const PLACEHOLDER_PASSWORD: &str = "CHANGE-ME";
/// What `lgsp run` drains at most (`--drain`, default 30 s) plus the tracking writer's
/// last flush (10 s): a stop timeout must be longer.
const STOP_NEEDS_SECS: u64 = 40;
/// Top-level keys a deployment's copy of config/lgsp.yaml may set otherwise.
const DEPLOYMENT_KEYS: &[&str] = &[
    "broker",
    "store",
    "http",
    "log",
    "adapter_dir",
    "schema_dir",
    "reference_dir",
];

// ---------------------------------------------------------------------------------------
// Files

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn deploy() -> PathBuf {
    repo().join("deploy")
}

/// `path` relative to the repository, for messages.
fn rel(path: &Path) -> String {
    path.strip_prefix(repo())
        .unwrap_or(path)
        .display()
        .to_string()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: cannot read: {e}", rel(path)))
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_owned()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn ext(path: &Path) -> &str {
    path.extension().and_then(|e| e.to_str()).unwrap_or("")
}

/// Every document of a (multi-document) YAML file; empty documents left out.
fn yaml_docs(path: &Path) -> Vec<Value> {
    let text = read(path);
    let mut docs = Vec::new();
    for (i, doc) in serde_yaml::Deserializer::from_str(&text).enumerate() {
        match Value::deserialize(doc) {
            Ok(Value::Null) => {}
            Ok(v) => docs.push(v),
            Err(e) => panic!("{}: document {}: not valid YAML: {e}", rel(path), i + 1),
        }
    }
    docs
}

fn yaml_one(path: &Path) -> Value {
    let mut docs = yaml_docs(path);
    assert_eq!(
        docs.len(),
        1,
        "{}: expected one YAML document, found {}",
        rel(path),
        docs.len()
    );
    docs.remove(0)
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&read(path))
        .unwrap_or_else(|e| panic!("{}: not valid JSON: {e}", rel(path)))
}

/// The value at a dotted path (`spec.template.spec`; a number indexes a list).
fn get<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = v;
    for seg in path.split('.').filter(|s| !s.is_empty()) {
        cur = match cur {
            Value::Mapping(m) => m.get(seg)?,
            Value::Sequence(s) => s.get(seg.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

/// A scalar as text (`8080`, `true` and `"x"` alike).
fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn text_at(v: &Value, path: &str, what: &str) -> String {
    get(v, path)
        .and_then(scalar)
        .unwrap_or_else(|| panic!("{what}: `{path}` is missing or not a scalar"))
}

fn seq<'a>(v: &'a Value, path: &str) -> &'a [Value] {
    get(v, path)
        .and_then(Value::as_sequence)
        .map_or(&[], Vec::as_slice)
}

fn port_of(listen: &str) -> u16 {
    listen
        .rsplit_once(':')
        .and_then(|(_, p)| p.parse().ok())
        .unwrap_or_else(|| panic!("`{listen}` has no port"))
}

/// `a/./b/../c` -> `a/c`, without touching the file system (container paths).
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// The Dockerfile

/// The instructions of deploy/Dockerfile: (INSTRUCTION, arguments), continuation lines
/// joined, comments left out.
fn dockerfile() -> Vec<(String, String)> {
    let path = deploy().join("Dockerfile");
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in read(&path).lines() {
        let t = line.trim();
        if t.starts_with('#') || (t.is_empty() && cur.is_empty()) {
            continue;
        }
        let (part, more) = match t.strip_suffix('\\') {
            Some(p) => (p.trim_end(), true),
            None => (t, false),
        };
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(part);
        if !more {
            let (ins, args) = cur.split_once(' ').unwrap_or((cur.as_str(), ""));
            out.push((ins.to_ascii_uppercase(), args.trim().to_owned()));
            cur.clear();
        }
    }
    out
}

/// The runtime stage's instructions (after the last FROM).
fn runtime_stage() -> Vec<(String, String)> {
    let all = dockerfile();
    let last = all.iter().rposition(|(i, _)| i == "FROM").unwrap();
    all[last..].to_vec()
}

/// Container folder -> repository folder, from the runtime stage's `COPY src dest`.
fn image_copies() -> Vec<(String, PathBuf)> {
    runtime_stage()
        .iter()
        .filter(|(i, a)| i == "COPY" && !a.starts_with("--from"))
        .map(|(_, a)| {
            let parts: Vec<&str> = a.split_whitespace().collect();
            assert_eq!(
                parts.len(),
                2,
                "deploy/Dockerfile: `COPY {a}`: expected one source and one destination"
            );
            (
                parts[1].trim_end_matches('/').to_owned(),
                repo().join(parts[0]),
            )
        })
        .collect()
}

/// A path in the image, as the repository file or folder the Dockerfile copies there.
fn in_repo(container: &Path, what: &str) -> PathBuf {
    let container = normalize(container);
    for (dest, src) in image_copies() {
        if let Ok(rest) = container.strip_prefix(&dest) {
            return src.join(rest);
        }
    }
    panic!(
        "{what}: {} is not in any folder deploy/Dockerfile copies into the image",
        container.display()
    )
}

/// The image's `ENV` variables.
fn image_env() -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    for (_, args) in runtime_stage().iter().filter(|(i, _)| i == "ENV") {
        for pair in args.split_whitespace() {
            let (k, v) = pair
                .split_once('=')
                .unwrap_or_else(|| panic!("deploy/Dockerfile: `ENV {args}`: write ENV KEY=value"));
            env.insert(k.to_owned(), v.trim_matches('"').to_owned());
        }
    }
    env
}

/// The image's ENTRYPOINT (exec form).
fn image_entrypoint() -> Vec<String> {
    let (_, args) = runtime_stage()
        .into_iter()
        .rfind(|(i, _)| i == "ENTRYPOINT")
        .expect("deploy/Dockerfile: no ENTRYPOINT");
    serde_json::from_str(&args).unwrap_or_else(|e| {
        panic!("deploy/Dockerfile: ENTRYPOINT {args}: write the exec form (a JSON list): {e}")
    })
}

/// The value after `--config` in a command line.
fn config_arg(cmd: &[String], what: &str) -> String {
    cmd.iter()
        .position(|a| a == "--config" || a == "-c")
        .and_then(|i| cmd.get(i + 1))
        .cloned()
        .unwrap_or_else(|| panic!("{what}: `{}` names no --config", cmd.join(" ")))
}

// ---------------------------------------------------------------------------------------
// Configurations

/// `text`, a configuration that lives at `container_path` in the image, with its three
/// folders made absolute paths of this repository (through the Dockerfile's COPY lines),
/// written to `dir`.
fn localize(text: &str, container_path: &str, dir: &Path, what: &str) -> PathBuf {
    let doc: Value = serde_yaml::from_str(text).unwrap_or_else(|e| panic!("{what}: {e}"));
    let base = Path::new(container_path).parent().unwrap();
    let mut out: String = text
        .lines()
        .filter(|l| {
            !["adapter_dir:", "schema_dir:", "reference_dir:"]
                .iter()
                .any(|k| l.starts_with(k))
        })
        .map(|l| format!("{l}\n"))
        .collect();
    for (key, default) in [
        ("adapter_dir", "../adapters"),
        ("schema_dir", "../schemas"),
        ("reference_dir", "../reference"),
    ] {
        let v = get(&doc, key)
            .and_then(scalar)
            .unwrap_or_else(|| default.to_owned());
        let local = in_repo(&base.join(&v), &format!("{what}: {key} `{v}`"));
        assert!(
            local.is_dir(),
            "{what}: {key} `{v}` is {} in the image, which is no folder of the repository",
            normalize(&base.join(&v)).display()
        );
        out.push_str(&format!("{key}: \"{}\"\n", local.display()));
    }
    let path = dir.join("lgsp.yaml");
    std::fs::write(&path, out).unwrap();
    path
}

/// Values naming files in the image (`/opt/lgsp/adapters`) as this repository's.
fn localize_env(env: &BTreeMap<String, String>) -> Vec<(String, String)> {
    env.iter()
        .map(|(k, v)| {
            let v = if v.starts_with('/')
                && image_copies()
                    .iter()
                    .any(|(dest, _)| Path::new(v).starts_with(dest))
            {
                in_repo(Path::new(v), k).display().to_string()
            } else {
                v.clone()
            };
            (k.clone(), v)
        })
        .collect()
}

fn lgsp(args: &[&str], config: &Path, env: &[(String, String)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lgsp"))
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .expect("spawn lgsp")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `lgsp check` passes on `config` with exactly the variables `env`.
fn assert_checks(config: &Path, env: &[(String, String)], what: &str) {
    let out = lgsp(&["check"], config, env);
    assert!(
        out.status.success(),
        "{what}: `lgsp check` refuses the configuration with the environment {:?}:\n{}",
        env.iter().map(|(k, _)| k).collect::<Vec<_>>(),
        text(&out.stderr)
    );
}

fn load(config: &Path, env: &[(String, String)], what: &str) -> LoadedConfig {
    config::load(config, EnvOverrides::from_vars(env.iter().cloned())).unwrap_or_else(|p| {
        panic!(
            "{what}: lgsp's loader refuses it:\n{}",
            p.iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        )
    })
}

/// `copy` is config/lgsp.yaml except for the keys a deployment sets.
fn assert_same_flows(copy: &Value, what: &str) {
    let shipped = yaml_one(&repo().join("config/lgsp.yaml"));
    let keys = |v: &Value| -> BTreeSet<String> {
        v.as_mapping()
            .map(|m| m.keys().filter_map(scalar).collect())
            .unwrap_or_default()
    };
    for key in keys(&shipped).union(&keys(copy)) {
        if DEPLOYMENT_KEYS.contains(&key.as_str()) {
            continue;
        }
        assert!(
            get(&shipped, key) == get(copy, key),
            "{what}: `{key}` differs from config/lgsp.yaml's; copy it from there (only {} may differ)",
            DEPLOYMENT_KEYS.join(", ")
        );
    }
    assert_eq!(
        get(copy, "broker.prefix"),
        get(&shipped, "broker.prefix"),
        "{what}: broker.prefix differs from config/lgsp.yaml's (deploy/rabbitmq/definitions.json's permissions are for `lgsp.`)"
    );
}

// ---------------------------------------------------------------------------------------
// URLs

#[derive(Debug)]
struct Url {
    scheme: String,
    user: String,
    password: String,
    host: String,
    port: Option<u16>,
    path: String,
}

fn parse_url(url: &str, what: &str) -> Url {
    let (scheme, rest) = url
        .split_once("://")
        .unwrap_or_else(|| panic!("{what}: `{url}` is not a URL"));
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let (userinfo, hostport) = authority.rsplit_once('@').unwrap_or(("", authority));
    let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) => (
            h,
            Some(p.parse().unwrap_or_else(|_| panic!("{what}: bad port"))),
        ),
        None => (hostport, None),
    };
    let path = tail.split('?').next().unwrap_or("").trim_start_matches('/');
    Url {
        scheme: scheme.to_owned(),
        user: config::percent_decode(user),
        password: config::percent_decode(password),
        host: host.to_owned(),
        port,
        path: config::percent_decode(path),
    }
}

// ---------------------------------------------------------------------------------------
// RabbitMQ

fn definitions() -> serde_json::Value {
    json(&deploy().join("rabbitmq/definitions.json"))
}

fn def_list<'a>(defs: &'a serde_json::Value, key: &str) -> &'a [serde_json::Value] {
    defs[key].as_array().map_or(&[], Vec::as_slice)
}

/// A broker URL's user and password are a user of definitions.json with full
/// permissions on the URL's vhost.
fn assert_bus_url(url: &str, what: &str) {
    let u = parse_url(url, what);
    assert!(
        u.scheme == "amqp" || u.scheme == "amqps",
        "{what}: `{}` is not an AMQP URL",
        config::redact_url(url)
    );
    let defs = definitions();
    let user = def_list(&defs, "users")
        .iter()
        .find(|x| x["name"] == u.user.as_str())
        .unwrap_or_else(|| {
            panic!(
                "{what}: the broker user `{}` is not in deploy/rabbitmq/definitions.json",
                u.user
            )
        });
    assert!(
        password_matches(user, &u.password),
        "{what}: the password of `{}` in the broker URL is not the one deploy/rabbitmq/definitions.json has a hash for",
        u.user
    );
    let full = def_list(&defs, "permissions").iter().any(|p| {
        p["user"] == u.user.as_str()
            && p["vhost"] == u.path.as_str()
            && p["configure"] == ".*"
            && p["write"] == ".*"
            && p["read"] == ".*"
    });
    assert!(
        full,
        "{what}: deploy/rabbitmq/definitions.json gives `{}` no full permissions (.* .* .*) on vhost `{}`, the vhost of the broker URL",
        u.user, u.path
    );
}

/// `rabbit_password_hashing_sha256`: base64(salt (4 bytes) + SHA-256(salt + password)).
fn password_matches(user: &serde_json::Value, password: &str) -> bool {
    let Some(hash) = user["password_hash"].as_str() else {
        return false;
    };
    let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(hash) else {
        return false;
    };
    if raw.len() != 36 {
        return false;
    }
    let mut h = Sha256::new();
    h.update(&raw[..4]);
    h.update(password.as_bytes());
    h.finalize().as_slice() == &raw[4..]
}

/// `key = value` lines of rabbitmq.conf.
fn rabbitmq_conf() -> BTreeMap<String, String> {
    read(&deploy().join("rabbitmq/rabbitmq.conf"))
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap_or_else(|| {
                panic!("deploy/rabbitmq/rabbitmq.conf: `{l}` is not `key = value`")
            });
            (k.trim().to_owned(), v.trim().to_owned())
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Kubernetes

struct Manifest {
    file: PathBuf,
    doc: Value,
}

impl Manifest {
    fn what(&self) -> String {
        format!(
            "{} ({} {})",
            rel(&self.file),
            get(&self.doc, "kind").and_then(scalar).unwrap_or_default(),
            get(&self.doc, "metadata.name")
                .and_then(scalar)
                .unwrap_or_default()
        )
    }
}

fn manifests() -> Vec<Manifest> {
    let mut out = Vec::new();
    for file in files_under(&deploy().join("k8s")) {
        assert!(
            matches!(ext(&file), "yaml" | "yml"),
            "{}: deploy/k8s holds only manifests (*.yaml)",
            rel(&file)
        );
        for doc in yaml_docs(&file) {
            out.push(Manifest {
                file: file.clone(),
                doc,
            });
        }
    }
    out
}

fn the<'a>(all: &'a [Manifest], kind: &str) -> &'a Manifest {
    let found: Vec<&Manifest> = all
        .iter()
        .filter(|m| get(&m.doc, "kind").and_then(scalar).as_deref() == Some(kind))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "deploy/k8s: expected one {kind}, found {}",
        found.len()
    );
    found[0]
}

/// The ConfigMap's data item `key`.
fn configmap_text(cm: &Manifest, key: &str) -> String {
    get(&cm.doc, "data")
        .and_then(Value::as_mapping)
        .and_then(|d| d.get(key))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("{}: no data item `{key}`", cm.what()))
}

/// The pod's environment: the image's ENV, then the Secret (envFrom), then `env:`.
fn pod_env(all: &[Manifest]) -> BTreeMap<String, String> {
    let secret = the(all, "Secret");
    let container = lgsp_container(all);
    let mut env = image_env();
    for from in seq(container, "envFrom") {
        let name = text_at(from, "secretRef.name", &the(all, "Deployment").what());
        assert_eq!(
            Some(name.clone()),
            get(&secret.doc, "metadata.name").and_then(scalar),
            "{}: envFrom names Secret `{name}`, which deploy/k8s does not define",
            the(all, "Deployment").what()
        );
        if let Some(Value::Mapping(m)) = get(&secret.doc, "stringData") {
            for (k, v) in m {
                env.insert(scalar(k).unwrap(), scalar(v).unwrap_or_default());
            }
        }
    }
    for e in seq(container, "env") {
        env.insert(
            text_at(e, "name", "deployment env"),
            get(e, "value").and_then(scalar).unwrap_or_default(),
        );
    }
    env
}

fn lgsp_container(all: &[Manifest]) -> &Value {
    let d = the(all, "Deployment");
    seq(&d.doc, "spec.template.spec.containers")
        .iter()
        .find(|c| get(c, "name").and_then(scalar).as_deref() == Some("lgsp"))
        .unwrap_or_else(|| panic!("{}: no container named lgsp", d.what()))
}

/// The Deployment's `--config` file and the ConfigMap item mounted there.
fn configmap_config(all: &[Manifest]) -> (String, String) {
    let d = the(all, "Deployment");
    let cm = the(all, "ConfigMap");
    let c = lgsp_container(all);
    let cmd: Vec<String> = seq(c, "command")
        .iter()
        .chain(seq(c, "args"))
        .filter_map(scalar)
        .collect();
    let cmd = if cmd.is_empty() {
        image_entrypoint()
    } else {
        cmd
    };
    let config = config_arg(&cmd, &d.what());
    let cm_name = text_at(&cm.doc, "metadata.name", &cm.what());
    let volume = seq(&d.doc, "spec.template.spec.volumes")
        .iter()
        .find(|v| get(v, "configMap.name").and_then(scalar).as_deref() == Some(&cm_name))
        .unwrap_or_else(|| panic!("{}: no volume of ConfigMap `{cm_name}`", d.what()));
    let vname = text_at(volume, "name", &d.what());
    let mount = seq(c, "volumeMounts")
        .iter()
        .find(|m| get(m, "name").and_then(scalar).as_deref() == Some(&vname))
        .unwrap_or_else(|| panic!("{}: volume `{vname}` is not mounted", d.what()));
    let dir = text_at(mount, "mountPath", &d.what());
    let file = Path::new(&config)
        .strip_prefix(&dir)
        .unwrap_or_else(|_| {
            panic!(
                "{}: --config {config} is not in {dir}, where the ConfigMap is mounted",
                d.what()
            )
        })
        .display()
        .to_string();
    let items = seq(volume, "configMap.items");
    let key = if items.is_empty() {
        file.clone()
    } else {
        items
            .iter()
            .find(|i| get(i, "path").and_then(scalar).as_deref() == Some(&file))
            .map(|i| text_at(i, "key", &d.what()))
            .unwrap_or_else(|| panic!("{}: no ConfigMap item is mounted as {file}", d.what()))
    };
    (config, configmap_text(cm, &key))
}

/// A container port by number or by name.
fn resolve_port(port: &Value, container: &Value, what: &str) -> u16 {
    match port {
        Value::Number(n) => u16::try_from(n.as_u64().unwrap()).unwrap(),
        Value::String(name) => seq(container, "ports")
            .iter()
            .find(|p| get(p, "name").and_then(scalar).as_deref() == Some(name))
            .and_then(|p| get(p, "containerPort").and_then(scalar))
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("{what}: no container port named `{name}`")),
        other => panic!("{what}: port {other:?}"),
    }
}

fn memory_bytes(q: &str) -> u64 {
    for (suffix, unit) in [
        ("Ki", 1u64 << 10),
        ("Mi", 1 << 20),
        ("Gi", 1 << 30),
        ("k", 1000),
        ("M", 1_000_000),
        ("G", 1_000_000_000),
    ] {
        if let Some(n) = q.strip_suffix(suffix) {
            return n.parse::<u64>().unwrap_or_else(|_| panic!("memory `{q}`")) * unit;
        }
    }
    q.parse().unwrap_or_else(|_| panic!("memory `{q}`"))
}

fn cpu_millis(q: &str) -> u64 {
    match q.strip_suffix('m') {
        Some(m) => m.parse().unwrap_or_else(|_| panic!("cpu `{q}`")),
        None => {
            let cores: f64 = q.parse().unwrap_or_else(|_| panic!("cpu `{q}`"));
            (cores * 1000.0).round() as u64
        }
    }
}

fn labels_match(selector: Option<&Value>, labels: Option<&Value>) -> bool {
    let (Some(Value::Mapping(sel)), Some(Value::Mapping(labels))) = (selector, labels) else {
        return false;
    };
    !sel.is_empty() && sel.iter().all(|(k, v)| labels.get(k) == Some(v))
}

// ---------------------------------------------------------------------------------------
// Compose

fn compose() -> Value {
    yaml_one(&deploy().join("compose.yaml"))
}

fn services(c: &Value) -> Vec<(String, &Value)> {
    match get(c, "services") {
        Some(Value::Mapping(m)) => m.iter().map(|(k, v)| (scalar(k).unwrap(), v)).collect(),
        _ => panic!("deploy/compose.yaml: no services"),
    }
}

fn image(s: &Value) -> String {
    get(s, "image").and_then(scalar).unwrap_or_default()
}

fn service_env(s: &Value, name: &str) -> BTreeMap<String, String> {
    match get(s, "environment") {
        None => BTreeMap::new(),
        Some(Value::Mapping(m)) => m
            .iter()
            .map(|(k, v)| (scalar(k).unwrap(), scalar(v).unwrap_or_default()))
            .collect(),
        Some(Value::Sequence(items)) => items
            .iter()
            .filter_map(scalar)
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv.as_str(), ""));
                (k.to_owned(), v.to_owned())
            })
            .collect(),
        Some(_) => {
            panic!("deploy/compose.yaml: service {name}: environment is neither a map nor a list")
        }
    }
}

/// (source, target) of each volume of a service; a named volume's source has no `/`.
fn service_mounts(s: &Value) -> Vec<(String, String)> {
    seq(s, "volumes")
        .iter()
        .map(|v| match v {
            Value::String(short) => {
                let parts: Vec<&str> = short.split(':').collect();
                (parts[0].to_owned(), parts.get(1).unwrap_or(&"").to_string())
            }
            long => (
                get(long, "source").and_then(scalar).unwrap_or_default(),
                get(long, "target").and_then(scalar).unwrap_or_default(),
            ),
        })
        .collect()
}

fn is_bind(source: &str) -> bool {
    source.starts_with('.') || source.starts_with('/')
}

/// The repository file a bind mount's source names (compose paths are relative to
/// deploy/).
fn mounted_file(source: &str) -> PathBuf {
    normalize(&deploy().join(source))
}

struct Cluster<'a> {
    rabbitmq: Vec<(String, &'a Value)>,
    lgsp: Vec<(String, &'a Value)>,
    postgres: (String, &'a Value),
    prometheus: (String, &'a Value),
}

fn cluster(c: &Value) -> Cluster<'_> {
    let all = services(c);
    let pick = |f: &dyn Fn(&Value) -> bool| -> Vec<(String, &Value)> {
        all.iter()
            .filter(|(_, s)| f(s))
            .map(|(n, s)| (n.clone(), *s))
            .collect()
    };
    let rabbitmq = pick(&|s| image(s).starts_with("rabbitmq:3.10"));
    let lgsp = pick(&|s| get(s, "build").is_some() || image(s).starts_with("lgsp"));
    let postgres = pick(&|s| image(s).starts_with("postgres:15"));
    let prometheus = pick(&|s| image(s).starts_with("prom/prometheus"));
    assert_eq!(
        rabbitmq.len(),
        3,
        "deploy/compose.yaml: expected 3 services of image rabbitmq:3.10-*, found {:?}",
        rabbitmq.iter().map(|(n, _)| n).collect::<Vec<_>>()
    );
    assert_eq!(
        lgsp.len(),
        2,
        "deploy/compose.yaml: expected 2 lgsp services (built from deploy/Dockerfile), found {:?}",
        lgsp.iter().map(|(n, _)| n).collect::<Vec<_>>()
    );
    assert_eq!(
        postgres.len(),
        1,
        "deploy/compose.yaml: expected one postgres:15 service"
    );
    assert_eq!(
        prometheus.len(),
        1,
        "deploy/compose.yaml: expected one prom/prometheus service"
    );
    Cluster {
        rabbitmq,
        lgsp,
        postgres: postgres[0].clone(),
        prometheus: prometheus[0].clone(),
    }
}

/// The configuration file a compose lgsp service runs with, and where it is in the
/// container.
fn compose_lgsp_config(name: &str, s: &Value) -> (String, PathBuf) {
    let entrypoint: Vec<String> = seq(s, "entrypoint").iter().filter_map(scalar).collect();
    let cmd = if entrypoint.is_empty() {
        image_entrypoint()
    } else {
        entrypoint
    };
    let config = config_arg(&cmd, &format!("deploy/compose.yaml: service {name}"));
    let source = service_mounts(s)
        .into_iter()
        .find(|(src, dst)| is_bind(src) && *dst == config)
        .map(|(src, _)| mounted_file(&src))
        .unwrap_or_else(|| in_repo(Path::new(&config), name));
    (config, source)
}

// ---------------------------------------------------------------------------------------
// systemd

/// `[Section]` -> key -> values, in order.
fn unit_file(text: &str) -> BTreeMap<String, BTreeMap<String, Vec<String>>> {
    let mut out: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
    let mut section = String::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = s.to_owned();
            continue;
        }
        let (k, v) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("deploy/systemd/lgsp.service: `{line}` is not key=value"));
        out.entry(section.clone())
            .or_default()
            .entry(k.trim().to_owned())
            .or_default()
            .push(v.trim().to_owned());
    }
    out
}

fn unit_seconds(v: &str) -> u64 {
    let mut total = 0;
    for part in v.split_whitespace() {
        let digits: String = part.chars().take_while(char::is_ascii_digit).collect();
        let n: u64 = digits.parse().unwrap_or_else(|_| panic!("time span `{v}`"));
        total += match &part[digits.len()..] {
            "" | "s" | "sec" => n,
            "m" | "min" => n * 60,
            "h" => n * 3600,
            other => panic!("time span `{v}`: unit `{other}`"),
        };
    }
    total
}

/// `LGSP_X=value` lines of an environment file; commented-out ones too (they document
/// variables an operator will use).
fn env_file(path: &Path) -> Vec<(String, String)> {
    read(path)
        .lines()
        .map(|l| l.trim().trim_start_matches('#').trim())
        .filter_map(|l| l.split_once('='))
        .filter(|(k, _)| {
            k.starts_with("LGSP_")
                && k.bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        })
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn systemd_env() -> BTreeMap<String, String> {
    let unit = unit_file(&read(&deploy().join("systemd/lgsp.service")));
    let mut env = BTreeMap::new();
    for line in unit
        .get("Service")
        .and_then(|s| s.get("Environment"))
        .into_iter()
        .flatten()
    {
        for pair in line.split_whitespace() {
            let (k, v) = pair.trim_matches('"').split_once('=').unwrap_or_else(|| {
                panic!("deploy/systemd/lgsp.service: Environment={line}: expected VAR=value")
            });
            env.insert(k.to_owned(), v.to_owned());
        }
    }
    env
}

// =======================================================================================
// Tests

#[test]
fn every_yaml_and_json_file_parses_and_the_readme_names_every_file() {
    let readme = read(&deploy().join("README.md"));
    let (mut yaml, mut json_files) = (0, 0);
    for file in files_under(&deploy()) {
        match ext(&file) {
            "yaml" | "yml" => {
                assert!(
                    !yaml_docs(&file).is_empty(),
                    "{}: holds no YAML document",
                    rel(&file)
                );
                yaml += 1;
            }
            "json" => {
                json(&file);
                json_files += 1;
            }
            _ => {}
        }
        let name = file.strip_prefix(deploy()).unwrap().display().to_string();
        if name != "README.md" && !name.starts_with("observability/") {
            assert!(
                readme.contains(&format!("`{name}`")),
                "deploy/README.md does not say what `{name}` is (the table \"What each file is\")"
            );
        }
        let content = std::fs::read_to_string(&file).unwrap_or_default();
        for machine in ["/work/", "/root/", "/home/", ".cache/"] {
            assert!(
                !content.contains(machine),
                "{}: names a path of a build machine (`{machine}`)",
                rel(&file)
            );
        }
    }
    assert!(
        yaml >= 9,
        "deploy/: expected at least 9 YAML files, found {yaml}"
    );
    assert!(
        json_files >= 2,
        "deploy/: expected at least 2 JSON files, found {json_files}"
    );
    for row in readme.lines().filter(|l| l.starts_with("| `")) {
        let name = row[3..].split('`').next().unwrap();
        assert!(
            deploy().join(name).exists(),
            "deploy/README.md lists `{name}`, which is not in deploy/"
        );
    }
}

#[test]
fn kubernetes_manifests_have_kind_name_and_no_namespace() {
    let all = manifests();
    let mut seen = BTreeSet::new();
    for m in &all {
        let what = m.what();
        let api = text_at(&m.doc, "apiVersion", &what);
        let kind = text_at(&m.doc, "kind", &what);
        let name = text_at(&m.doc, "metadata.name", &what);
        assert!(
            !name.is_empty()
                && name.len() <= 63
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
            "{what}: metadata.name `{name}` is not a DNS label"
        );
        assert!(
            get(&m.doc, "metadata.namespace").is_none(),
            "{what}: the manifests are namespace-less (kubectl apply -n NAMESPACE); remove metadata.namespace"
        );
        let expected_api = match kind.as_str() {
            "Deployment" => "apps/v1",
            "PodDisruptionBudget" => "policy/v1",
            _ => "v1",
        };
        assert_eq!(api, expected_api, "{what}: apiVersion");
        assert!(seen.insert((kind.clone(), name)), "{what}: defined twice");
    }
    for kind in [
        "ConfigMap",
        "Secret",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
    ] {
        the(&all, kind);
    }
    let secret = the(&all, "Secret");
    let data = get(&secret.doc, "stringData")
        .and_then(Value::as_mapping)
        .unwrap_or_else(|| panic!("{}: no stringData", secret.what()));
    for (k, v) in data {
        let (k, v) = (scalar(k).unwrap(), scalar(v).unwrap_or_default());
        assert!(
            v.contains(PLACEHOLDER_PASSWORD),
            "{}: {k} is not a placeholder marked CHANGE-ME",
            secret.what()
        );
    }
    for key in [
        "LGSP_BROKER__URL",
        "LGSP_STORE__URL",
        "LGSP_ADMIN__OPERATOR_TOKEN",
    ] {
        assert!(
            data.contains_key(key),
            "{}: no {key} in stringData",
            secret.what()
        );
    }
}

#[test]
fn the_deployment_probes_the_port_lgsp_listens_on_runs_as_non_root_and_has_resources() {
    let all = manifests();
    let d = the(&all, "Deployment");
    let what = d.what();
    let c = lgsp_container(&all);
    assert_eq!(
        get(&d.doc, "spec.replicas").and_then(Value::as_u64),
        Some(2),
        "{what}: spec.replicas"
    );

    // The port: what the ConfigMap's configuration listens on, with the pod's environment.
    let tmp = tempfile::tempdir().unwrap();
    let (config_path, config_text) = configmap_config(&all);
    let local = localize(&config_text, &config_path, tmp.path(), &what);
    let env = localize_env(&pod_env(&all));
    let loaded = load(
        &local,
        &env,
        &format!(
            "{} with the pod's environment",
            the(&all, "ConfigMap").what()
        ),
    );
    let port = port_of(&loaded.config.http.listen);
    let cm_doc: Value = serde_yaml::from_str(&config_text).unwrap();
    let file_listen = text_at(&cm_doc, "http.listen", "the ConfigMap's configuration");
    assert_eq!(
        port_of(&file_listen),
        port,
        "{}: http.listen {file_listen} contradicts the environment, which makes lgsp listen on {}",
        the(&all, "ConfigMap").what(),
        loaded.config.http.listen
    );
    let scheme = if get(&cm_doc, "http.tls").is_some() {
        "HTTPS"
    } else {
        "HTTP"
    };
    for (probe, path) in [("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")] {
        let p = get(c, &format!("{probe}.httpGet"))
            .unwrap_or_else(|| panic!("{what}: no {probe}.httpGet"));
        assert_eq!(
            get(p, "path").and_then(scalar).as_deref(),
            Some(path),
            "{what}: {probe} must GET {path}"
        );
        let probe_port = resolve_port(get(p, "port").unwrap(), c, &what);
        assert_eq!(
            probe_port, port,
            "{what}: {probe} probes port {probe_port}, lgsp listens on {port}"
        );
        assert_eq!(
            get(p, "scheme")
                .and_then(scalar)
                .as_deref()
                .unwrap_or("HTTP"),
            scheme,
            "{what}: {probe} scheme (http.tls decides)"
        );
    }
    if let Some(p) = get(&d.doc, "spec.template.metadata.annotations")
        .and_then(Value::as_mapping)
        .and_then(|a| a.get("prometheus.io/port"))
        .and_then(scalar)
    {
        assert_eq!(p, port.to_string(), "{what}: annotation prometheus.io/port");
    }

    // The Service and the PodDisruptionBudget select these pods.
    let labels = get(&d.doc, "spec.template.metadata.labels");
    assert!(
        labels_match(get(&d.doc, "spec.selector.matchLabels"), labels),
        "{what}: spec.selector does not select the pod template's labels"
    );
    let svc = the(&all, "Service");
    assert!(
        labels_match(get(&svc.doc, "spec.selector"), labels),
        "{}: spec.selector does not select the Deployment's pods",
        svc.what()
    );
    let svc_ports = seq(&svc.doc, "spec.ports");
    assert!(!svc_ports.is_empty(), "{}: no ports", svc.what());
    for p in svc_ports {
        let target = get(p, "targetPort")
            .or_else(|| get(p, "port"))
            .unwrap_or_else(|| panic!("{}: a port without port", svc.what()));
        assert_eq!(
            resolve_port(target, c, &svc.what()),
            port,
            "{}: targetPort is not the port lgsp listens on ({port})",
            svc.what()
        );
    }
    let pdb = the(&all, "PodDisruptionBudget");
    assert_eq!(
        get(&pdb.doc, "spec.minAvailable").and_then(Value::as_u64),
        Some(1),
        "{}: spec.minAvailable",
        pdb.what()
    );
    assert!(
        labels_match(get(&pdb.doc, "spec.selector.matchLabels"), labels),
        "{}: spec.selector does not select the Deployment's pods",
        pdb.what()
    );

    // Non-root, read-only root file system, a writable /tmp.
    let pod_sc = get(&d.doc, "spec.template.spec.securityContext");
    let sc = |key: &str| {
        get(c, &format!("securityContext.{key}"))
            .or_else(|| pod_sc.and_then(|p| get(p, key)))
            .and_then(scalar)
    };
    assert_eq!(
        sc("runAsNonRoot").as_deref(),
        Some("true"),
        "{what}: runAsNonRoot"
    );
    let uid = sc("runAsUser").unwrap_or_else(|| panic!("{what}: no runAsUser"));
    assert_ne!(uid, "0", "{what}: runAsUser 0 is root");
    let image_user = runtime_stage()
        .into_iter()
        .rfind(|(i, _)| i == "USER")
        .map(|(_, a)| a)
        .expect("deploy/Dockerfile: no USER");
    assert_eq!(
        image_user.split(':').next(),
        Some(uid.as_str()),
        "{what}: runAsUser {uid} is not the image's USER {image_user}"
    );
    assert_eq!(
        get(c, "securityContext.readOnlyRootFilesystem")
            .and_then(scalar)
            .as_deref(),
        Some("true"),
        "{what}: readOnlyRootFilesystem"
    );
    assert_eq!(
        get(c, "securityContext.allowPrivilegeEscalation")
            .and_then(scalar)
            .as_deref(),
        Some("false"),
        "{what}: allowPrivilegeEscalation"
    );
    assert!(
        seq(c, "securityContext.capabilities.drop")
            .iter()
            .any(|v| v.as_str() == Some("ALL")),
        "{what}: capabilities.drop must be [ALL]"
    );
    let tmp_mount = seq(c, "volumeMounts")
        .iter()
        .find(|m| get(m, "mountPath").and_then(scalar).as_deref() == Some("/tmp"))
        .unwrap_or_else(|| panic!("{what}: nothing is mounted on /tmp"));
    let tmp_volume = text_at(tmp_mount, "name", &what);
    assert!(
        seq(&d.doc, "spec.template.spec.volumes").iter().any(|v| {
            get(v, "name").and_then(scalar).as_deref() == Some(&tmp_volume)
                && get(v, "emptyDir").is_some()
        }),
        "{what}: /tmp must be an emptyDir volume"
    );

    // Resources for a service of about 64 MB resident.
    let q = |key: &str| {
        get(c, &format!("resources.{key}"))
            .and_then(scalar)
            .unwrap_or_else(|| panic!("{what}: no resources.{key}"))
    };
    let (req_mem, lim_mem) = (
        memory_bytes(&q("requests.memory")),
        memory_bytes(&q("limits.memory")),
    );
    let (req_cpu, lim_cpu) = (cpu_millis(&q("requests.cpu")), cpu_millis(&q("limits.cpu")));
    assert!(
        (64 << 20..=1 << 30).contains(&req_mem),
        "{what}: requests.memory {} for a process of about 64 MB resident",
        q("requests.memory")
    );
    assert!(
        lim_mem >= req_mem && lim_mem <= 4 << 30,
        "{what}: limits.memory {} must be at least the request and sane",
        q("limits.memory")
    );
    assert!(
        req_cpu >= 10 && lim_cpu >= req_cpu,
        "{what}: cpu requests {} and limits {}",
        q("requests.cpu"),
        q("limits.cpu")
    );

    // Room for the drain.
    let grace = get(&d.doc, "spec.template.spec.terminationGracePeriodSeconds")
        .and_then(Value::as_u64)
        .unwrap_or(30);
    assert!(
        grace > STOP_NEEDS_SECS,
        "{what}: terminationGracePeriodSeconds {grace} leaves no room for the drain (30 s) and the last tracking flush (10 s)"
    );
}

#[test]
fn the_configmap_configuration_passes_lgsp_check_and_keeps_the_default_flows() {
    let all = manifests();
    let cm = the(&all, "ConfigMap");
    let (config_path, config_text) = configmap_config(&all);
    let doc: Value = serde_yaml::from_str(&config_text)
        .unwrap_or_else(|e| panic!("{}: its lgsp.yaml is not YAML: {e}", cm.what()));
    assert_same_flows(&doc, &cm.what());
    let tmp = tempfile::tempdir().unwrap();
    let local = localize(&config_text, &config_path, tmp.path(), &cm.what());
    assert_checks(
        &local,
        &localize_env(&pod_env(&all)),
        &format!("{} with the Secret and the Deployment's env", cm.what()),
    );
    // The broker URL of the Secret is the bus's user of definitions.json.
    let env = pod_env(&all);
    assert_bus_url(
        env.get("LGSP_BROKER__URL").unwrap(),
        &the(&all, "Secret").what(),
    );
}

#[test]
fn every_lgsp_variable_of_the_deployment_files_is_a_configuration_key() {
    let shipped = repo().join("config/lgsp.yaml");
    // The loader refuses a variable that names no key: what makes the rest meaningful.
    for bogus in ["LGSP_BOGUS__KEY", "LGSP_BROKER__BOGUS"] {
        let out = lgsp(&["check"], &shipped, &[(bogus.to_owned(), "x".to_owned())]);
        assert_eq!(
            out.status.code(),
            Some(2),
            "`lgsp check` accepts the unknown variable {bogus}: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stderr).contains("unknown key `bogus`"),
            "`lgsp check` with {bogus}: {}",
            text(&out.stderr)
        );
        assert!(
            config::load(
                &shipped,
                EnvOverrides::from_vars([(bogus.to_owned(), "x".to_owned())])
            )
            .is_err(),
            "lgsp's loader accepts the unknown variable {bogus}"
        );
    }

    let mut sources: Vec<(String, Vec<(String, String)>)> = Vec::new();
    sources.push((
        "deploy/Dockerfile (ENV)".into(),
        image_env().into_iter().collect(),
    ));
    for (name, s) in services(&compose()) {
        sources.push((
            format!("deploy/compose.yaml (service {name})"),
            service_env(s, &name).into_iter().collect(),
        ));
    }
    let all = manifests();
    let secret = the(&all, "Secret");
    if let Some(Value::Mapping(m)) = get(&secret.doc, "stringData") {
        sources.push((
            secret.what(),
            m.iter()
                .map(|(k, v)| (scalar(k).unwrap(), scalar(v).unwrap_or_default()))
                .collect(),
        ));
    }
    sources.push((
        format!("{} (env)", the(&all, "Deployment").what()),
        seq(lgsp_container(&all), "env")
            .iter()
            .map(|e| {
                (
                    text_at(e, "name", "deployment env"),
                    get(e, "value").and_then(scalar).unwrap_or_default(),
                )
            })
            .collect(),
    ));
    sources.push((
        "deploy/systemd/lgsp.service (Environment=)".into(),
        systemd_env().into_iter().collect(),
    ));
    sources.push((
        "deploy/systemd/lgsp.env.example".into(),
        env_file(&deploy().join("systemd/lgsp.env.example")),
    ));

    let mut checked = 0;
    for (source, vars) in &sources {
        for (name, value) in vars.iter().filter(|(k, _)| k.starts_with("LGSP_")) {
            let one: BTreeMap<String, String> = [(name.clone(), value.clone())].into();
            if let Err(problems) =
                config::load(&shipped, EnvOverrides::from_vars(localize_env(&one)))
            {
                panic!(
                    "{source}: {name} is refused by lgsp's loader:\n{}",
                    problems
                        .iter()
                        .map(|p| p.to_string())
                        .collect::<Vec<_>>()
                        .join("\n")
                );
            }
            checked += 1;
        }
    }
    assert!(
        checked >= 10,
        "only {checked} LGSP_ variables found in deploy/"
    );

    // The systemd unit's environment with its environment file, on config/lgsp.yaml as
    // /etc/lgsp/lgsp.yaml is installed (deploy/README.md).
    let mut env = systemd_env();
    let example = deploy().join("systemd/lgsp.env.example");
    for line in read(&example).lines().filter(|l| l.starts_with("LGSP_")) {
        let (k, v) = line.split_once('=').unwrap();
        env.insert(k.to_owned(), v.to_owned());
    }
    assert_checks(
        &shipped,
        &localize_env(&env),
        "deploy/systemd/lgsp.service with lgsp.env.example on config/lgsp.yaml",
    );
    assert_bus_url(
        env.get("LGSP_BROKER__URL")
            .expect("deploy/systemd/lgsp.env.example: no LGSP_BROKER__URL"),
        "deploy/systemd/lgsp.env.example",
    );
    // The image's own configuration with the image's environment.
    let config = config_arg(&image_entrypoint(), "deploy/Dockerfile");
    let tmp = tempfile::tempdir().unwrap();
    let local = localize(
        &read(&in_repo(Path::new(&config), "deploy/Dockerfile ENTRYPOINT")),
        &config,
        tmp.path(),
        "deploy/Dockerfile",
    );
    assert_checks(
        &local,
        &localize_env(&image_env()),
        "the image's configuration with its ENV",
    );
}

#[test]
fn compose_runs_three_rabbitmq_nodes_postgres_two_replicas_and_prometheus() {
    let c = compose();
    let cl = cluster(&c);
    let declared: BTreeSet<String> = get(&c, "volumes")
        .and_then(Value::as_mapping)
        .map(|m| m.keys().filter_map(scalar).collect())
        .unwrap_or_default();

    // Every bind-mounted file exists in the repository; every named volume is declared.
    for (name, s) in services(&c) {
        for (source, target) in service_mounts(s) {
            if is_bind(&source) {
                let file = mounted_file(&source);
                assert!(
                    file.exists() && file.starts_with(repo()),
                    "deploy/compose.yaml: service {name} mounts {source} (at {target}), which is not a file of the repository"
                );
            } else {
                assert!(
                    declared.contains(&source),
                    "deploy/compose.yaml: service {name} uses volume `{source}`, not declared under volumes:"
                );
            }
        }
        if let Some(b) = get(s, "build") {
            let context = normalize(&deploy().join(text_at(b, "context", &name)));
            assert_eq!(
                context,
                repo(),
                "deploy/compose.yaml: service {name}: the build context must be the repository root"
            );
            let dockerfile = context.join(text_at(b, "dockerfile", &name));
            assert_eq!(
                dockerfile,
                deploy().join("Dockerfile"),
                "deploy/compose.yaml: service {name} must build deploy/Dockerfile"
            );
        }
    }

    // RabbitMQ: one cookie, the peer list of rabbitmq.conf, definitions imported.
    let conf = rabbitmq_conf();
    assert!(
        matches!(
            conf.get("cluster_formation.peer_discovery_backend")
                .map(String::as_str),
            Some("classic_config" | "rabbit_peer_discovery_classic_config")
        ),
        "deploy/rabbitmq/rabbitmq.conf: cluster_formation.peer_discovery_backend must be classic_config"
    );
    let peers: BTreeSet<String> = conf
        .iter()
        .filter(|(k, _)| k.starts_with("cluster_formation.classic_config.nodes."))
        .map(|(_, v)| v.clone())
        .collect();
    let definitions_path = conf
        .get("definitions.local.path")
        .or_else(|| conf.get("load_definitions"))
        .expect("deploy/rabbitmq/rabbitmq.conf: definitions are not imported at boot");
    let mut cookies = BTreeSet::new();
    let mut nodes = BTreeSet::new();
    let mut hosts = BTreeSet::new();
    for (name, s) in &cl.rabbitmq {
        let host = get(s, "hostname")
            .and_then(scalar)
            .unwrap_or_else(|| name.clone());
        nodes.insert(format!("rabbit@{host}"));
        hosts.insert(host);
        let cookie = service_env(s, name)
            .get("RABBITMQ_ERLANG_COOKIE")
            .cloned()
            .unwrap_or_default();
        assert!(
            !cookie.is_empty(),
            "deploy/compose.yaml: service {name} has no RABBITMQ_ERLANG_COOKIE"
        );
        cookies.insert(cookie);
        let mounts = service_mounts(s);
        for (file, target) in [
            ("rabbitmq/rabbitmq.conf", "/etc/rabbitmq/rabbitmq.conf"),
            ("rabbitmq/definitions.json", definitions_path.as_str()),
        ] {
            assert!(
                mounts
                    .iter()
                    .any(|(src, dst)| mounted_file(src) == deploy().join(file) && dst == target),
                "deploy/compose.yaml: service {name} must mount deploy/{file} at {target}"
            );
        }
    }
    assert_eq!(
        cookies.len(),
        1,
        "deploy/compose.yaml: the three RabbitMQ nodes must share one RABBITMQ_ERLANG_COOKIE"
    );
    assert_eq!(
        peers, nodes,
        "deploy/rabbitmq/rabbitmq.conf: cluster_formation.classic_config.nodes are not the compose nodes"
    );

    // PostgreSQL and the two replicas on it.
    let (pg_name, pg) = &cl.postgres;
    let pg_env = service_env(pg, pg_name);
    let (one, other) = (&cl.lgsp[0], &cl.lgsp[1]);
    assert_eq!(
        service_env(one.1, &one.0),
        service_env(other.1, &other.0),
        "deploy/compose.yaml: {} and {} must have the same environment",
        one.0,
        other.0
    );
    assert_eq!(
        service_mounts(one.1),
        service_mounts(other.1),
        "deploy/compose.yaml: {} and {} must mount the same files",
        one.0,
        other.0
    );
    let mut listen_port = None;
    for (name, s) in &cl.lgsp {
        let what = format!("deploy/compose.yaml: service {name}");
        let mut env = image_env();
        env.extend(service_env(s, name));
        let store = env
            .get("LGSP_STORE__URL")
            .unwrap_or_else(|| panic!("{what}: no LGSP_STORE__URL"));
        let u = parse_url(store, &what);
        assert!(
            u.scheme == "postgres" || u.scheme == "postgresql",
            "{what}: LGSP_STORE__URL must be the shared PostgreSQL store"
        );
        assert_eq!(u.host, *pg_name, "{what}: LGSP_STORE__URL host");
        assert_eq!(
            u.port.unwrap_or(5432),
            5432,
            "{what}: LGSP_STORE__URL port (the postgres image listens on 5432)"
        );
        for (part, key) in [
            (&u.user, "POSTGRES_USER"),
            (&u.password, "POSTGRES_PASSWORD"),
            (&u.path, "POSTGRES_DB"),
        ] {
            assert_eq!(
                Some(part),
                pg_env.get(key),
                "{what}: LGSP_STORE__URL does not match {pg_name}'s {key}"
            );
        }
        assert!(
            get(s, &format!("depends_on.{pg_name}")).is_some()
                || seq(s, "depends_on")
                    .iter()
                    .any(|d| d.as_str() == Some(pg_name)),
            "{what}: must depend on {pg_name}"
        );
        let grace = get(s, "stop_grace_period")
            .and_then(scalar)
            .map_or(10, |g| unit_seconds(&g));
        assert!(
            grace > STOP_NEEDS_SECS,
            "{what}: stop_grace_period {grace}s leaves no room for the drain"
        );

        // Its configuration: broker.urls are the three nodes, with the bus's user.
        let (config, source) = compose_lgsp_config(name, s);
        let tmp = tempfile::tempdir().unwrap();
        let local = localize(&read(&source), &config, tmp.path(), &rel(&source));
        let env: Vec<(String, String)> = localize_env(&env);
        assert_checks(&local, &env, &what);
        let loaded = load(&local, &env, &rel(&source));
        assert_same_flows(&yaml_one(&source), &rel(&source));
        let urls: Vec<String> = loaded
            .config
            .broker
            .urls
            .iter()
            .map(|u| u.expose().to_owned())
            .collect();
        let url_hosts: BTreeSet<String> = urls.iter().map(|u| parse_url(u, &what).host).collect();
        assert_eq!(
            (urls.len(), &url_hosts),
            (3, &hosts),
            "{}: broker.urls must list the three RabbitMQ nodes once each",
            rel(&source)
        );
        for u in &urls {
            assert_bus_url(u, &rel(&source));
        }
        let port = port_of(&loaded.config.http.listen);
        assert!(
            listen_port.is_none() || listen_port == Some(port),
            "{what}: the replicas listen on different ports"
        );
        listen_port = Some(port);
    }
    let port = listen_port.unwrap();

    // Prometheus: both replicas, the nodes, the alert rules.
    let (prom_name, prom) = &cl.prometheus;
    let what = format!("deploy/compose.yaml: service {prom_name}");
    let mounts = service_mounts(prom);
    let config_file = mounts
        .iter()
        .find(|(_, dst)| dst == "/etc/prometheus/prometheus.yml")
        .map(|(src, _)| mounted_file(src))
        .unwrap_or_else(|| panic!("{what}: nothing is mounted at /etc/prometheus/prometheus.yml"));
    assert_eq!(
        config_file,
        deploy().join("prometheus/prometheus.yml"),
        "{what}: /etc/prometheus/prometheus.yml"
    );
    let prom_cfg = yaml_one(&config_file);
    let rules: Vec<PathBuf> = seq(&prom_cfg, "rule_files")
        .iter()
        .filter_map(scalar)
        .map(|r| {
            let target = normalize(&Path::new("/etc/prometheus").join(&r));
            mounts
                .iter()
                .find(|(_, dst)| Path::new(dst) == target)
                .map(|(src, _)| mounted_file(src))
                .unwrap_or_else(|| {
                    panic!("deploy/prometheus/prometheus.yml: rule file {r} is not mounted in {prom_name}")
                })
        })
        .collect();
    assert!(
        rules.contains(&deploy().join("observability/prometheus-alerts.yaml")),
        "deploy/prometheus/prometheus.yml: rule_files must load deploy/observability/prometheus-alerts.yaml"
    );
    let job = |name: &str| -> BTreeSet<String> {
        let job = seq(&prom_cfg, "scrape_configs")
            .iter()
            .find(|j| get(j, "job_name").and_then(scalar).as_deref() == Some(name))
            .unwrap_or_else(|| {
                panic!("deploy/prometheus/prometheus.yml: no job `{name}` (the alert rules use it)")
            });
        assert_eq!(
            get(job, "metrics_path")
                .and_then(scalar)
                .as_deref()
                .unwrap_or("/metrics"),
            "/metrics",
            "deploy/prometheus/prometheus.yml: job {name}: metrics_path"
        );
        seq(job, "static_configs")
            .iter()
            .flat_map(|s| seq(s, "targets"))
            .filter_map(scalar)
            .collect()
    };
    let lgsp_targets: BTreeSet<String> =
        cl.lgsp.iter().map(|(n, _)| format!("{n}:{port}")).collect();
    assert_eq!(
        job("lgsp"),
        lgsp_targets,
        "deploy/prometheus/prometheus.yml: job lgsp must scrape both replicas' /metrics"
    );
    let rabbit_port = conf
        .get("prometheus.tcp.port")
        .cloned()
        .unwrap_or_else(|| "15692".into());
    let rabbit_targets: BTreeSet<String> =
        hosts.iter().map(|h| format!("{h}:{rabbit_port}")).collect();
    assert_eq!(
        job("rabbitmq"),
        rabbit_targets,
        "deploy/prometheus/prometheus.yml: job rabbitmq must scrape the three nodes"
    );
}

#[test]
fn rabbitmq_definitions_give_the_bus_its_vhost_and_each_application_only_lgsp_in() {
    let defs = definitions();
    let what = "deploy/rabbitmq/definitions.json";
    let vhosts: Vec<&str> = def_list(&defs, "vhosts")
        .iter()
        .filter_map(|v| v["name"].as_str())
        .collect();
    assert_eq!(vhosts, ["lgsp"], "{what}: vhosts");
    let users = def_list(&defs, "users");
    for u in users {
        let name = u["name"].as_str().unwrap_or_default();
        assert_eq!(
            u["hashing_algorithm"], "rabbit_password_hashing_sha256",
            "{what}: user {name}: hashing_algorithm"
        );
        assert!(
            password_matches(u, PLACEHOLDER_PASSWORD),
            "{what}: user {name}: password_hash is not a rabbit_password_hashing_sha256 hash of the documented placeholder {PLACEHOLDER_PASSWORD}"
        );
    }
    for p in def_list(&defs, "permissions")
        .iter()
        .chain(def_list(&defs, "topic_permissions"))
    {
        assert_eq!(
            p["vhost"], "lgsp",
            "{what}: a permission outside vhost lgsp: {p}"
        );
        assert!(
            users.iter().any(|u| u["name"] == p["user"]),
            "{what}: a permission of an unknown user: {p}"
        );
    }
    let user = |name: &str| {
        users
            .iter()
            .find(|u| u["name"] == name)
            .unwrap_or_else(|| panic!("{what}: no user `{name}`"))
    };
    assert_eq!(
        user("lgsp")["tags"],
        serde_json::json!([]),
        "{what}: the bus's user needs no tags"
    );
    let perms_of = |name: &str| -> Vec<&serde_json::Value> {
        def_list(&defs, "permissions")
            .iter()
            .filter(|p| p["user"] == name)
            .collect()
    };
    assert_eq!(
        perms_of("lgsp"),
        [
            &serde_json::json!({"user": "lgsp", "vhost": "lgsp", "configure": ".*", "write": ".*", "read": ".*"})
        ],
        "{what}: the bus (user lgsp) must have full permissions on vhost lgsp"
    );

    // One user per application of config/lgsp.yaml, as `lgsp apps rabbitmq-definitions`
    // makes them: configure nothing, write lgsp.in only (its routing keys by topic
    // permissions), read its own queue only; no tags.
    let shipped = repo().join("config/lgsp.yaml");
    let loaded = load(&shipped, &[], "config/lgsp.yaml");
    let out = lgsp(
        &["apps", "rabbitmq-definitions", "--vhost", "lgsp"],
        &shipped,
        &[],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let generated: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut app_users = BTreeSet::new();
    for (id, app) in &loaded.config.apps {
        let name = app.amqp_user.clone().unwrap_or_else(|| id.clone());
        let u = user(&name);
        assert_eq!(
            u["tags"],
            serde_json::json!([]),
            "{what}: application user {name} must have no tags"
        );
        let expected = serde_json::json!({
            "user": name,
            "vhost": "lgsp",
            "configure": "^$",
            "write": "^lgsp\\.in$",
            "read": format!("^lgsp\\.app\\.{id}$"),
        });
        assert_eq!(
            perms_of(&name),
            [&expected],
            "{what}: application {id} (user {name}) may write only to lgsp.in and read only lgsp.app.{id}"
        );
        app_users.insert(name);
    }
    for key in ["permissions", "topic_permissions"] {
        let ours: Vec<&serde_json::Value> = def_list(&defs, key)
            .iter()
            .filter(|p| app_users.contains(p["user"].as_str().unwrap_or_default()))
            .collect();
        let theirs: Vec<&serde_json::Value> = def_list(&generated, key).iter().collect();
        assert_eq!(
            ours, theirs,
            "{what}: the applications' {key} differ from `lgsp apps rabbitmq-definitions --vhost lgsp` for config/lgsp.yaml; regenerate them"
        );
    }
    for u in users {
        let name = u["name"].as_str().unwrap_or_default();
        if name == "lgsp" || app_users.contains(name) {
            continue;
        }
        assert_eq!(
            name, "admin",
            "{what}: user {name} is neither the bus, an application of config/lgsp.yaml nor admin"
        );
        assert_eq!(
            u["tags"],
            serde_json::json!(["administrator"]),
            "{what}: admin's tags"
        );
    }
    let readme = read(&deploy().join("README.md"));
    for needed in ["rabbitmqctl change_password", PLACEHOLDER_PASSWORD] {
        assert!(
            readme.contains(needed),
            "deploy/README.md must say how to change the placeholder passwords (`{needed}`)"
        );
    }
}

#[test]
fn the_dockerfile_builds_in_rust_and_runs_non_root_on_debian_slim() {
    let all = dockerfile();
    let what = "deploy/Dockerfile";
    let froms: Vec<&String> = all
        .iter()
        .filter(|(i, _)| i == "FROM")
        .map(|(_, a)| a)
        .collect();
    assert_eq!(
        froms.len(),
        2,
        "{what}: expected two stages, found FROM {froms:?}"
    );
    let (builder_image, stage) = froms[0]
        .split_once(" AS ")
        .or_else(|| froms[0].split_once(" as "))
        .unwrap_or_else(|| panic!("{what}: the builder stage has no name (FROM ... AS build)"));
    assert_eq!(builder_image, "rust:1.95-bookworm", "{what}: builder image");
    assert_eq!(froms[1], "debian:bookworm-slim", "{what}: runtime image");
    let builder_runs: String = all
        .iter()
        .take_while(|(i, a)| !(i == "FROM" && a == froms[1]))
        .filter(|(i, _)| i == "RUN")
        .map(|(_, a)| a.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        builder_runs.contains("cargo build --release -p lgsp-cli --locked")
            && builder_runs.contains("target/release/lgsp"),
        "{what}: the builder must run `cargo build --release -p lgsp-cli --locked` and take target/release/lgsp"
    );

    let runtime = runtime_stage();
    let runs: String = runtime
        .iter()
        .filter(|(i, _)| i == "RUN")
        .map(|(_, a)| a.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    let install = runs
        .split("apt-get install")
        .nth(1)
        .unwrap_or_else(|| panic!("{what}: the runtime stage installs no packages"));
    let packages: BTreeSet<&str> = install
        .split("&&")
        .next()
        .unwrap()
        .split_whitespace()
        .filter(|w| !w.starts_with('-'))
        .collect();
    assert_eq!(
        packages,
        BTreeSet::from(["ca-certificates", "curl"]),
        "{what}: the runtime installs ca-certificates and curl only"
    );
    let user = runtime
        .iter()
        .rfind(|(i, _)| i == "USER")
        .map(|(_, a)| a.clone())
        .unwrap_or_else(|| panic!("{what}: no USER: the image would run as root"));
    assert_eq!(
        user, "10001:10001",
        "{what}: USER (fixed uid and gid 10001)"
    );
    assert!(
        runs.contains("--gid 10001") && runs.contains("--uid 10001"),
        "{what}: the user and group 10001 must be created"
    );
    let binary = runtime
        .iter()
        .find(|(i, a)| i == "COPY" && a.starts_with(&format!("--from={stage} ")))
        .map(|(_, a)| a.clone())
        .unwrap_or_else(|| panic!("{what}: the binary is not copied from stage {stage}"));
    assert!(
        binary.ends_with(" /usr/local/bin/lgsp"),
        "{what}: `COPY {binary}`: the binary goes to /usr/local/bin/lgsp"
    );
    let copies = image_copies();
    for dir in ["adapters", "schemas", "reference", "config"] {
        let dest = format!("/opt/lgsp/{dir}");
        assert!(
            copies
                .iter()
                .any(|(d, src)| *d == dest && *src == repo().join(dir)),
            "{what}: must COPY {dir} {dest}"
        );
        assert!(
            repo().join(dir).is_dir(),
            "{what}: {dir}/ is not in the repository"
        );
    }
    let workdir = runtime
        .iter()
        .rfind(|(i, _)| i == "WORKDIR")
        .map(|(_, a)| a.clone())
        .unwrap_or_else(|| panic!("{what}: no WORKDIR in the runtime stage"));
    assert!(
        runs.contains(&format!("-o 10001 -g 10001 -m 0750 {workdir}")),
        "{what}: WORKDIR {workdir} must be created writable by 10001"
    );
    let listen = image_env()
        .get("LGSP_HTTP__LISTEN")
        .cloned()
        .unwrap_or_else(|| {
            panic!("{what}: no ENV LGSP_HTTP__LISTEN (the default config listens on 127.0.0.1)")
        });
    assert!(
        listen.starts_with("0.0.0.0:"),
        "{what}: LGSP_HTTP__LISTEN {listen} must listen on every interface"
    );
    let port = port_of(&listen);
    let expose = runtime
        .iter()
        .find(|(i, _)| i == "EXPOSE")
        .map(|(_, a)| a.clone())
        .unwrap_or_else(|| panic!("{what}: no EXPOSE"));
    assert_eq!(
        expose,
        port.to_string(),
        "{what}: EXPOSE is not the port lgsp listens on"
    );
    let health = runtime
        .iter()
        .find(|(i, _)| i == "HEALTHCHECK")
        .map(|(_, a)| a.clone())
        .unwrap_or_else(|| panic!("{what}: no HEALTHCHECK"));
    assert!(
        health.contains(&format!("curl -fsS http://127.0.0.1:{port}/healthz")),
        "{what}: HEALTHCHECK must be curl -fsS http://127.0.0.1:{port}/healthz"
    );
    let entry = image_entrypoint();
    assert_eq!(
        entry[..3],
        ["/usr/local/bin/lgsp", "run", "--config"],
        "{what}: ENTRYPOINT must be lgsp run --config FILE"
    );
    let config = in_repo(Path::new(&entry[3]), "deploy/Dockerfile ENTRYPOINT");
    assert!(
        config.is_file(),
        "{what}: ENTRYPOINT's --config {} is no file of the image",
        entry[3]
    );

    // The build context is the repository root: nothing the build needs is ignored.
    let ignore = read(&deploy().join("Dockerfile.dockerignore"));
    let needed = [
        "Cargo.toml",
        "Cargo.lock",
        ".cargo",
        "crates",
        "adapters",
        "schemas",
        "reference",
        "config",
    ];
    for pattern in ignore
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let p = pattern.trim_start_matches('/').trim_end_matches('/');
        assert!(
            !needed.contains(&p) && p != "*" && p != "**",
            "deploy/Dockerfile.dockerignore: `{pattern}` leaves out what the build needs"
        );
    }
    let readme = read(&deploy().join("README.md"));
    assert!(
        readme.contains("docker build -f deploy/Dockerfile") && readme.contains("repository root"),
        "deploy/README.md must say to build with `docker build -f deploy/Dockerfile .` from the repository root"
    );
}

#[test]
fn the_systemd_unit_is_hardened_and_passes_systemd_analyze_verify() {
    let path = deploy().join("systemd/lgsp.service");
    let unit_text = read(&path);
    let unit = unit_file(&unit_text);
    let what = "deploy/systemd/lgsp.service";
    let service = unit
        .get("Service")
        .unwrap_or_else(|| panic!("{what}: no [Service] section"));
    let one = |key: &str| -> String {
        let v = service
            .get(key)
            .unwrap_or_else(|| panic!("{what}: [Service] has no {key}="));
        v.last().unwrap().clone()
    };
    assert_eq!(
        one("ExecStart")
            .split_whitespace()
            .take(4)
            .collect::<Vec<_>>(),
        [
            "/usr/local/bin/lgsp",
            "run",
            "--config",
            "/etc/lgsp/lgsp.yaml"
        ],
        "{what}: ExecStart"
    );
    for (key, expected) in [
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("NoNewPrivileges", "yes"),
        ("StateDirectory", "lgsp"),
        ("EnvironmentFile", "/etc/lgsp/lgsp.env"),
        ("CapabilityBoundingSet", ""),
        ("Restart", "on-failure"),
    ] {
        assert_eq!(one(key), expected, "{what}: {key}=");
    }
    let families: BTreeSet<String> = one("RestrictAddressFamilies")
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        families,
        BTreeSet::from(["AF_INET", "AF_INET6", "AF_UNIX"].map(String::from)),
        "{what}: RestrictAddressFamilies="
    );
    assert!(
        service
            .get("SystemCallFilter")
            .is_some_and(|v| v.iter().any(|f| f == "@system-service")),
        "{what}: SystemCallFilter=@system-service"
    );
    assert!(
        service
            .get("DynamicUser")
            .is_some_and(|v| v.last().map(String::as_str) == Some("yes"))
            || service
                .get("User")
                .is_some_and(|v| v.last().is_some_and(|u| u != "root" && u != "0")),
        "{what}: run as DynamicUser=yes or a dedicated User="
    );
    let stop = unit_seconds(&one("TimeoutStopSec"));
    assert!(
        stop > STOP_NEEDS_SECS,
        "{what}: TimeoutStopSec={stop}s leaves no room for the drain (30 s) and the last tracking flush (10 s)"
    );
    assert!(
        unit.get("Install")
            .and_then(|i| i.get("WantedBy"))
            .is_some(),
        "{what}: [Install] has no WantedBy="
    );

    let analyze = Path::new("/usr/bin/systemd-analyze");
    if !analyze.exists() {
        eprintln!(
            "{what}: /usr/bin/systemd-analyze is not installed here; checked the unit's keys by parsing only"
        );
        return;
    }
    // `systemd-analyze verify` insists that ExecStart's binary exists. The unit's
    // /usr/local/bin/lgsp is not installed on a build machine, so a copy of the unit runs
    // the binary this test was built with (the same program, at another path); nothing
    // else of the unit is changed.
    let tmp = tempfile::tempdir().unwrap();
    let copy = tmp.path().join("lgsp.service");
    std::fs::write(
        &copy,
        unit_text.replace("/usr/local/bin/lgsp", env!("CARGO_BIN_EXE_lgsp")),
    )
    .unwrap();
    let out = Command::new(analyze)
        .arg("verify")
        .arg(&copy)
        .output()
        .expect("run systemd-analyze");
    let stderr = text(&out.stderr);
    // verify exits 0 on unknown keys and bad values, but names the unit in a warning.
    let about_unit: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("lgsp.service"))
        .collect();
    assert!(
        out.status.success() && about_unit.is_empty(),
        "{what}: systemd-analyze verify: {}\n{stderr}",
        out.status
    );
}

/// The definitions file imports on a blank RabbitMQ node of this machine's version (a
/// node of the test's own): the bus's user runs `lgsp run` against the `lgsp` vhost,
/// an application's user may publish its own keys to `lgsp.in` and is refused another's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_definitions_import_on_a_blank_node_and_hold_their_permissions() {
    let dir = tempfile::tempdir().unwrap();
    let node = lgsp_testkit::node::RabbitNode::start(
        dir.path(),
        lgsp_testkit::node::NodeConfig {
            extra: format!(
                "definitions.import_backend = local_filesystem\ndefinitions.local.path = {}\n",
                repo().join("deploy/rabbitmq/definitions.json").display()
            ),
            ..Default::default()
        },
    );
    let ok = node.ctl(&["authenticate_user", "bizreg", PLACEHOLDER_PASSWORD]);
    assert!(ok.status.success(), "{ok:?}\n{}", node.log());
    let no = node.ctl(&["authenticate_user", "bizreg", "wrong"]);
    assert!(!no.status.success(), "a wrong password was accepted");

    let cfg = repo().join("config/lgsp.yaml");
    let store = dir.path().join("store.db");
    let mut bus = lgsp_testkit::Lgsp::spawn(
        Path::new(env!("CARGO_BIN_EXE_lgsp")),
        &cfg,
        &[
            (
                "LGSP_BROKER__URL",
                node.url_as("lgsp", PLACEHOLDER_PASSWORD, "lgsp"),
            ),
            ("LGSP_STORE__URL", format!("sqlite://{}", store.display())),
        ],
    );
    bus.wait_ready();

    let bizreg = node.url_as("bizreg", PLACEHOLDER_PASSWORD, "lgsp");
    assert!(
        lgsp_testkit::broker_takes(&bizreg, "bizreg.enterprise.registered").await,
        "bizreg may publish its key"
    );
    assert!(
        !lgsp_testkit::broker_takes(&bizreg, "tax.einvoice.issued").await,
        "bizreg published a tax key"
    );
    bus.stop_cleanly();
}
