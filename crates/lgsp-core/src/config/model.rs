//! The configuration model: plain serde data, every field with its default and purpose.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use super::secret::{Secret, SecretUrl};
use super::units::{ByteSize, Duration, lenient};

/// The root configuration (`config/lgsp.yaml`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// RabbitMQ connection and topology settings.
    #[serde(default)]
    pub broker: BrokerConfig,
    /// The failed-message store.
    #[serde(default)]
    pub store: StoreConfig,
    /// The HTTP server (health, gateway, admin API).
    #[serde(default)]
    pub http: HttpConfig,
    /// Limits applied to every payload.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// Administration (tokens for the admin API).
    #[serde(default)]
    pub admin: AdminConfig,
    /// Replays of failed messages: bulk pace and approval.
    #[serde(default)]
    pub replay: ReplayConfig,
    /// Folder holding one sub-folder per adapter, relative to this file. Default `../adapters`.
    #[serde(default = "default_adapter_dir")]
    pub adapter_dir: PathBuf,
    /// Folder of the canonical JSON Schemas (`lgsp.<entity>.<version>.json`), relative to
    /// this file. Default `../schemas`.
    #[serde(default = "default_schema_dir")]
    pub schema_dir: PathBuf,
    /// Folder of the reference data shared by all adapters (effective-dated code tables),
    /// relative to this file. Default `../reference`.
    #[serde(default = "default_reference_dir")]
    pub reference_dir: PathBuf,
    /// Adapters to load: folder names under `adapter_dir`.
    #[serde(default)]
    pub adapters: Vec<String>,
    /// Routes: what is consumed, how it is mapped, where it goes.
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
    /// Sector applications by id (`dkkd`, `thue`, ...): their API keys, what they may
    /// publish and receive, their rate limit. Default: none (the HTTP gateway then
    /// refuses every request).
    #[serde(default)]
    pub apps: BTreeMap<String, AppConfig>,
    /// The HTTP gateway (`POST /api/v1/messages/{routing_key}`).
    #[serde(default)]
    pub gateway: GatewayConfig,
    /// Data-sharing agreements by name: which canonical fields a receiver (an application
    /// or a webhook, by its name) is entitled to. A receiver without one gets every field
    /// that is not personal. Default: none.
    #[serde(default)]
    pub agreements: BTreeMap<String, AgreementConfig>,
    /// Log lines of `lgsp run`.
    #[serde(default)]
    pub log: LogConfig,
    /// Message tracking (`lgsp trace`, `GET /admin/v1/messages/{id}`).
    #[serde(default)]
    pub tracking: TrackingConfig,
}

/// The story of each message, kept in the store as metadata (no bodies).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrackingConfig {
    /// Record what happens to each message. Default true.
    #[serde(default = "default_true", deserialize_with = "lenient::boolean")]
    pub enabled: bool,
    /// How long tracking events are kept before `lgsp run` purges them. Default `7d`.
    #[serde(default = "default_tracking_retention")]
    pub retention: Duration,
}

fn default_true() -> bool {
    true
}
fn default_tracking_retention() -> Duration {
    Duration::from_secs(7 * 24 * 3600)
}

impl Default for TrackingConfig {
    fn default() -> Self {
        TrackingConfig {
            enabled: true,
            retention: default_tracking_retention(),
        }
    }
}

/// How `lgsp run` logs (on stderr).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// `text` (default) or `json` (one JSON object per line, for a log collector).
    #[serde(default)]
    pub format: LogFormat,
    /// A filter such as `info` or `info,lgsp_router=debug`; `RUST_LOG` wins when set.
    /// Default `info`.
    #[serde(default)]
    pub level: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// One data-sharing agreement: a receiver, the events it covers, the fields it allows.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgreementConfig {
    /// Who receives: an application id (`app:` targets) or a webhook's `name`.
    pub receiver: String,
    /// Patterns of the canonical events it covers (`enterprise.*`). Default: every event.
    #[serde(default = "every_event")]
    pub events: Vec<String>,
    /// Paths into the canonical document the receiver may get: names, `[*]` (every item
    /// of a list), `.*` (every member), e.g. `$.name`, `$.head_office`,
    /// `$.industries[*].code`. A path keeps everything under it except personal fields,
    /// which must be named themselves.
    pub fields: Vec<String>,
    /// Its legal basis, for the catalogue (e.g. `Quyết định 12/QĐ-UBND`). Default none.
    #[serde(default)]
    pub basis: Option<String>,
}

fn every_event() -> Vec<String> {
    vec!["#".to_owned()]
}

/// One sector application: who it is (its API keys) and what it may do.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppConfig {
    /// What the application is, for people (e.g. `Hệ thống đăng ký doanh nghiệp`).
    #[serde(default)]
    pub description: Option<String>,
    /// SHA-256 (hex) of each API key; several during a rotation. `lgsp apps keygen APP`
    /// prints a new key and the line to paste here.
    #[serde(default)]
    pub api_key_sha256: Vec<String>,
    /// A plain key, read only from the environment (`LGSP_APPS__<ID>__API_KEY`), for a
    /// one-machine setup and tests; never written in a file.
    #[serde(default)]
    pub api_key: Option<Secret>,
    /// The RabbitMQ user it publishes with over AMQP; a message whose broker-checked
    /// `user_id` is this user is this application's. Default: the application id (the
    /// user `lgsp apps rabbitmq-definitions` creates).
    #[serde(default)]
    pub amqp_user: Option<String>,
    /// Topic patterns of the routing keys it may publish on `<prefix>.in`, e.g. `bizreg.#`.
    /// Default: none (it may publish nothing).
    #[serde(default)]
    pub publish: Vec<String>,
    /// Patterns of the canonical events it may receive, e.g. `enterprise.*`. Default:
    /// none.
    #[serde(default)]
    pub receive: Vec<String>,
    /// Requests per second over HTTP, with bursts up to `burst`. Default 200/s, burst 400.
    #[serde(default)]
    pub rate_limit: RateLimitConfig,
}

/// A token bucket: `per_second` sustained, `burst` at once.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    #[serde(default = "default_per_second", deserialize_with = "lenient::number")]
    pub per_second: u32,
    #[serde(default = "default_burst", deserialize_with = "lenient::number")]
    pub burst: u32,
}

fn default_per_second() -> u32 {
    200
}
fn default_burst() -> u32 {
    400
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            per_second: default_per_second(),
            burst: default_burst(),
        }
    }
}

/// The HTTP gateway.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    /// A request repeating an `Idempotency-Key` of the same application within this
    /// window publishes nothing and answers the first message id. Kept in the store, so
    /// it holds across restarts and replicas. Default `24h`.
    #[serde(default = "default_idempotency_window")]
    pub idempotency_window: Duration,
    /// How long a request waits for the broker's confirm before answering 503. Default `10s`.
    #[serde(default = "default_confirm_timeout")]
    pub confirm_timeout: Duration,
}

fn default_idempotency_window() -> Duration {
    Duration::from_secs(24 * 3600)
}
fn default_confirm_timeout() -> Duration {
    Duration::from_secs(10)
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            idempotency_window: default_idempotency_window(),
            confirm_timeout: default_confirm_timeout(),
        }
    }
}

fn default_adapter_dir() -> PathBuf {
    PathBuf::from("../adapters")
}
pub(super) fn default_schema_dir() -> PathBuf {
    PathBuf::from("../schemas")
}
pub(super) fn default_reference_dir() -> PathBuf {
    PathBuf::from("../reference")
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrokerConfig {
    /// AMQP URL, password included (override it with `LGSP_BROKER__URL`).
    /// Default `amqp://guest:guest@127.0.0.1:5672/%2f`.
    #[serde(default = "default_broker_url")]
    pub url: SecretUrl,
    /// Several addresses of one cluster, tried in order (fail over); when set, `url` is
    /// not used. Default: none.
    #[serde(default)]
    pub urls: Vec<SecretUrl>,
    /// RabbitMQ management API (`http://guest:guest@127.0.0.1:15672`); when set, the
    /// broker version, policies and existing queues are checked against the
    /// configuration at start. Default: none.
    #[serde(default)]
    pub management_url: Option<SecretUrl>,
    /// Prefix of every exchange and queue name. Default `lgsp`.
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// Unacknowledged deliveries per consumer. Default 64.
    #[serde(default = "default_prefetch", deserialize_with = "lenient::number")]
    pub prefetch: u16,
    /// Publishes awaiting a broker confirm at once. Default 256.
    #[serde(
        default = "default_confirm_window",
        deserialize_with = "lenient::number"
    )]
    pub confirm_window: u32,
    /// `x-max-length` of each route queue; publishers are refused (reject-publish) past
    /// it. Default 1000000.
    #[serde(default = "default_max_length", deserialize_with = "lenient::number")]
    pub max_length: u64,
    /// `x-delivery-limit` of each route queue: deliveries before the broker dead-letters
    /// a message to the failed path as `poison`. Default 20.
    #[serde(
        default = "default_delivery_limit",
        deserialize_with = "lenient::number"
    )]
    pub delivery_limit: u32,
    /// TLS for `amqps://` URLs: a CA to trust besides the public (Mozilla) roots, and a client
    /// certificate for brokers that require one. Default: the public (Mozilla) roots, no client
    /// certificate.
    #[serde(default)]
    pub tls: ClientTls,
}

/// TLS of a client connection (lgsp to the broker). Relative paths are relative to the
/// root configuration file's folder.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientTls {
    /// PEM file of the CA certificate(s) that signed the server's certificate, trusted
    /// besides the public (Mozilla) roots.
    #[serde(default)]
    pub ca: Option<PathBuf>,
    /// PEM file of lgsp's client certificate (with its chain), for mutual TLS.
    #[serde(default)]
    pub cert: Option<PathBuf>,
    /// PEM file of the client certificate's private key (PKCS#8, PKCS#1 or SEC1).
    #[serde(default)]
    pub key: Option<PathBuf>,
}

impl ClientTls {
    pub fn is_empty(&self) -> bool {
        self.ca.is_none() && self.cert.is_none() && self.key.is_none()
    }
}

/// TLS of lgsp's own HTTP server: HTTPS when set.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerTls {
    /// PEM file of the server certificate with its chain (leaf first).
    pub cert: PathBuf,
    /// PEM file of its private key.
    pub key: PathBuf,
}

impl BrokerConfig {
    /// The nodes lgsp connects to, in order: `urls` when given (a cluster), else `url`.
    pub fn nodes(&self) -> &[SecretUrl] {
        if self.urls.is_empty() {
            std::slice::from_ref(&self.url)
        } else {
            &self.urls
        }
    }

    /// The users lgsp connects with: of `urls`, or of `url` when `urls` is empty.
    pub fn users(&self) -> Vec<String> {
        let mut users: Vec<String> = Vec::new();
        for u in self.nodes() {
            let u = u.user();
            if !users.contains(&u) {
                users.push(u);
            }
        }
        users
    }
}

fn default_max_length() -> u64 {
    1_000_000
}
fn default_delivery_limit() -> u32 {
    20
}

fn default_broker_url() -> SecretUrl {
    SecretUrl::new("amqp://guest:guest@127.0.0.1:5672/%2f")
}
fn default_prefix() -> String {
    "lgsp".into()
}
fn default_prefetch() -> u16 {
    64
}
fn default_confirm_window() -> u32 {
    256
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            url: default_broker_url(),
            urls: Vec::new(),
            management_url: None,
            prefix: default_prefix(),
            prefetch: default_prefetch(),
            confirm_window: default_confirm_window(),
            max_length: default_max_length(),
            delivery_limit: default_delivery_limit(),
            tls: ClientTls::default(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// `sqlite://data/lgsp.db` (default, created with its folder on first run; a relative
    /// path is relative to the root configuration file's folder) or `postgres://...`.
    #[serde(default = "default_store_url")]
    pub url: SecretUrl,
    /// How long replayed and discarded records are kept before `lgsp run` purges them
    /// (failed ones are never purged; the audit log is never purged). Default `30d`.
    #[serde(default = "default_retention")]
    pub retention: Duration,
}

fn default_store_url() -> SecretUrl {
    SecretUrl::new("sqlite://data/lgsp.db")
}
fn default_retention() -> Duration {
    Duration::from_secs(30 * 24 * 3600)
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            url: default_store_url(),
            retention: default_retention(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayConfig {
    /// Bulk replays publish at most this many messages per second (a command may ask
    /// for another pace). Default 200.
    #[serde(default = "default_replay_rate", deserialize_with = "lenient::number")]
    pub rate: u32,
    /// Messages published (confirms pipelined) and recorded per bulk batch. Default 100.
    #[serde(
        default = "default_replay_batch_size",
        deserialize_with = "lenient::number"
    )]
    pub batch_size: u32,
    /// A replay, bulk replay, edit or discard becomes a request that another operator
    /// (another token name) must approve. Default false.
    #[serde(default, deserialize_with = "lenient::boolean")]
    pub require_approval: bool,
}

fn default_replay_rate() -> u32 {
    200
}
fn default_replay_batch_size() -> u32 {
    100
}

impl Default for ReplayConfig {
    fn default() -> Self {
        ReplayConfig {
            rate: default_replay_rate(),
            batch_size: default_replay_batch_size(),
            require_approval: false,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Address to listen on; port 0 picks a free port (the bound address is logged).
    /// Default `127.0.0.1:8080`.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// HTTPS with this certificate and key; plain HTTP when absent. Default: absent.
    #[serde(default)]
    pub tls: Option<ServerTls>,
    /// A client that has not sent its request's headers (or finished its TLS handshake)
    /// within this time is disconnected. Default `10s`.
    #[serde(default = "default_header_timeout")]
    pub header_timeout: Duration,
    /// A request whose body has not arrived within this time is answered 408. Default
    /// `60s`.
    #[serde(default = "default_body_timeout")]
    pub body_timeout: Duration,
}

fn default_listen() -> String {
    "127.0.0.1:8080".into()
}
fn default_header_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_body_timeout() -> Duration {
    Duration::from_secs(60)
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: default_listen(),
            tls: None,
            header_timeout: default_header_timeout(),
            body_timeout: default_body_timeout(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest payload accepted. Default `8MiB`.
    #[serde(default = "default_max_message_bytes")]
    pub max_message_bytes: ByteSize,
    /// Deepest nesting of XML elements or JSON containers. Default 128 (JSON cannot go
    /// deeper than 128 whatever this says).
    #[serde(default = "default_max_depth", deserialize_with = "lenient::number")]
    pub max_depth: u32,
}

fn default_max_message_bytes() -> ByteSize {
    ByteSize::mib(8)
}
fn default_max_depth() -> u32 {
    128
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_message_bytes: default_max_message_bytes(),
            max_depth: default_max_depth(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// Token with the operator role, for a one-machine setup
    /// (`LGSP_ADMIN__OPERATOR_TOKEN`). Never commit it.
    #[serde(default)]
    pub operator_token: Option<Secret>,
    /// SHA-256 (hex) of further operator tokens (read, replay). Default none.
    #[serde(default)]
    pub operator_token_sha256: Vec<String>,
    /// SHA-256 (hex) of viewer tokens (read only). Default none.
    #[serde(default)]
    pub viewer_token_sha256: Vec<String>,
    /// Named tokens: the name is who the audit log and approvals see. The keys above
    /// stay valid and get fixed names (`operator`, `operator-N`, `viewer-N`). Default none.
    #[serde(default)]
    pub tokens: Vec<TokenConfig>,
}

/// One named admin token, kept as its SHA-256.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// Who holds it, e.g. `nguyen.van.a`; unique; recorded in the audit log.
    pub name: String,
    /// SHA-256 of the token, 64 hex digits (`printf %s TOKEN | sha256sum`).
    pub sha256: String,
    /// `viewer` (read) or `operator` (read, replay, discard, approve).
    pub role: TokenRole,
}

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenRole {
    Viewer,
    Operator,
}

/// One route: messages bound from `lgsp.in`, mapped by an adapter, sent to targets.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Route name: `[a-z0-9_-]+`; it qualifies the ids of its targets (`<name>/app:tax`).
    /// Routes of one adapter share its input queue `<prefix>.in.<adapter>`.
    pub name: String,
    /// What the route consumes.
    pub from: FromConfig,
    /// The adapter that maps the input (it picks the mapping by message type).
    pub map: String,
    /// Canonical schema the mapped message must satisfy, e.g. `lgsp.enterprise/1`.
    #[serde(default)]
    pub validate: Option<String>,
    /// Fail a message whose administrative codes are former ones (a `legacy_admin_code`
    /// warning becomes a `validation` error). Default false: the warning is kept.
    #[serde(default)]
    pub strict_admin_codes: bool,
    /// Where mapped messages go.
    pub to: Vec<TargetConfig>,
    /// Delayed retries of transient delivery failures.
    #[serde(default)]
    pub retry: RetryConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FromConfig {
    /// Binding key on `<prefix>.in`, e.g. `bizreg.enterprise.*`.
    pub binding: String,
}

/// One target of a route. Exactly one of `exchange`, `app` or `webhook` is set.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    /// Publish to this exchange (e.g. `lgsp.out`) with `routing_key`.
    #[serde(default)]
    pub exchange: Option<String>,
    /// Routing key for `exchange`; default: the canonical event name of the message.
    #[serde(default)]
    pub routing_key: Option<String>,
    /// Deliver to the receiving application's queue `<prefix>.app.<app>`.
    #[serde(default)]
    pub app: Option<String>,
    /// POST to a receiver's HTTP endpoint (through its own queue `<prefix>.webhook.<route>.<name>`).
    #[serde(default)]
    pub webhook: Option<WebhookConfig>,
    /// Outbound mapping `ADAPTER.MAPPING` into the receiver's format; default: canonical JSON.
    #[serde(default)]
    pub map: Option<String>,
    /// Only outputs where this JSONPath selects a value go to this target (e.g.
    /// `$.buyer.budget_unit_code`: invoices to budget units). Default: every output.
    #[serde(default)]
    pub when: Option<String>,
}

impl TargetConfig {
    /// Its outbound mapping: `map`, or the webhook's.
    pub fn outbound_map(&self) -> Option<&str> {
        self.map
            .as_deref()
            .or_else(|| self.webhook.as_ref().and_then(|w| w.map.as_deref()))
    }

    /// The receiver its agreements name: the application, or the webhook's name; `None`
    /// for an exchange (whoever may bind to it; RabbitMQ permissions decide).
    pub fn receiver(&self) -> Option<String> {
        match (&self.app, &self.webhook) {
            (Some(a), _) => Some(a.clone()),
            (None, Some(w)) => Some(w.receiver_name()),
            (None, None) => None,
        }
    }
}

/// A receiver's HTTP endpoint.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// `http://` or `https://` URL the messages are POSTed to.
    pub url: SecretUrl,
    /// The receiver's name: the target id (`<route>/webhook:<name>`), its queue, and the
    /// `receiver` of its agreement: `[a-z0-9_-]+`. Default: the URL's host, port and path
    /// made into such a name (`127-0-0-1-9000-tax-enterprises`).
    #[serde(default)]
    pub name: Option<String>,
    /// Outbound mapping `ADAPTER.MAPPING`; default: canonical JSON.
    #[serde(default)]
    pub map: Option<String>,
    /// A delivery that has no answer within this time is a transient failure. Default `10s`.
    #[serde(default = "default_webhook_timeout")]
    pub timeout: Duration,
    /// Further request headers, e.g. `{ X-Api-Version: "2" }`. Default none.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The environment variable holding the signing secret: each request then carries
    /// `X-LGSP-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "t.message_id.body">`.
    /// Default: unsigned.
    #[serde(default)]
    pub secret_env: Option<String>,
    /// Deliveries in flight at once to this endpoint. Default 4.
    #[serde(
        default = "default_webhook_concurrency",
        deserialize_with = "lenient::number"
    )]
    pub concurrency: u16,
}

fn default_webhook_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_webhook_concurrency() -> u16 {
    4
}

impl WebhookConfig {
    /// [`WebhookConfig::name`], or the one made from the URL.
    pub fn receiver_name(&self) -> String {
        if let Some(n) = &self.name {
            return n.clone();
        }
        let url = self.url.expose();
        let rest = url.split_once("://").map_or(url, |(_, r)| r);
        let rest = rest.split(['?', '#']).next().unwrap_or("");
        let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
        let mut out = String::new();
        for c in rest.chars() {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_alphanumeric() || c == '_' {
                out.push(c);
            } else if !out.ends_with('-') {
                out.push('-');
            }
        }
        out.trim_matches('-').to_owned()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    /// Deliveries tried before a message goes to the failed path. Default 5.
    #[serde(default = "default_attempts", deserialize_with = "lenient::number")]
    pub attempts: u32,
    /// Waits between tries; the last one repeats. Default `[1s, 10s, 1m, 10m]`.
    #[serde(default = "default_delays")]
    pub delays: Vec<Duration>,
}

fn default_attempts() -> u32 {
    5
}
fn default_delays() -> Vec<Duration> {
    vec![
        Duration::from_secs(1),
        Duration::from_secs(10),
        Duration::from_secs(60),
        Duration::from_secs(600),
    ]
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            attempts: default_attempts(),
            delays: default_delays(),
        }
    }
}
