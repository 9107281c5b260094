use std::path::Path;

use super::*;

fn load_text(text: &str, env: &[(&str, &str)]) -> Result<LoadedConfig, Vec<Problem>> {
    let env = EnvOverrides::from_vars(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let mut file = YamlFile::from_text(Path::new("lgsp.yaml"), text, Some(env));
    load_file(&mut file).ok_or(file.problems)
}

const GOOD: &str = r#"
broker: { url: "amqp://guest:guest@127.0.0.1:5672/%2f", prefetch: 32 }
adapters: [bizreg]
routes:
  - name: bizreg-to-tax
    from: { binding: "bizreg.enterprise.*" }
    map: bizreg
    to:
      - exchange: lgsp.out
        routing_key: enterprise.registered
    retry: { attempts: 3, delays: [1s, 10s] }
"#;

#[test]
fn a_valid_file_loads_with_defaults() {
    let c = load_text(GOOD, &[]).unwrap().config;
    assert_eq!(c.broker.prefetch, 32);
    assert_eq!(c.broker.prefix, "lgsp");
    assert_eq!(c.limits.max_message_bytes, ByteSize::mib(8));
    assert_eq!(c.routes[0].retry.delays[1], Duration::from_secs(10));
    assert_eq!(c.store.url.expose(), "sqlite://data/lgsp.db");
}

#[test]
fn four_mistakes_are_all_reported_with_positions() {
    let text = r#"broker:
  prefech: 32
limits:
  max_depth: deep
adapters: [bizreg]
routes:
  - name: a
    from: { binding: "bizreg.enterprise.*" }
    map: bizreg
    to: [{ exchange: lgsp.out, routing_key: x }]
    retry:
      delays: [10x]
  - name: b
    from: { binding: "bizreg.branch.*" }
    map: nosuchadapter
    to: [{ exchange: lgsp.out, routing_key: y }]
"#;
    let problems = load_text(text, &[]).unwrap_err();
    let shown: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert_eq!(problems.len(), 4, "{shown:#?}");
    let find = |needle: &str| {
        shown
            .iter()
            .find(|s| s.contains(needle))
            .unwrap_or_else(|| panic!("no problem mentions {needle}: {shown:#?}"))
            .clone()
    };

    assert!(find("prefech").starts_with("lgsp.yaml:2:3: broker.prefech: unknown key"));
    assert!(find("max_depth").starts_with("lgsp.yaml:4:3: limits.max_depth: "));
    assert!(
        find("10x").starts_with("lgsp.yaml:12:16: routes[0].retry.delays[0]: invalid duration")
    );
    assert!(find("nosuchadapter").starts_with("lgsp.yaml:15:5: routes[1].map: "));
}

#[test]
fn unknown_top_level_key_is_reported() {
    let problems = load_text("brokers: {}\n", &[]).unwrap_err();
    assert_eq!(problems.len(), 1);
    assert!(
        problems[0]
            .to_string()
            .starts_with("lgsp.yaml:1:1: brokers: unknown key")
    );
}

#[test]
fn env_overrides_are_strings_and_numeric_secrets_stay_strings() {
    let c = load_text(
        GOOD,
        &[
            ("LGSP_BROKER__PREFETCH", "16"),
            ("LGSP_ADMIN__OPERATOR_TOKEN", "0012345"),
            ("LGSP_BROKER__PREFIX", "0123"),
            ("OTHER_VAR", "ignored"),
        ],
    )
    .unwrap()
    .config;
    assert_eq!(c.broker.prefetch, 16);
    assert_eq!(c.admin.operator_token.unwrap().expose(), "0012345");
    assert_eq!(c.broker.prefix, "0123");
}

#[test]
fn a_bad_env_override_names_the_variable() {
    let problems = load_text(GOOD, &[("LGSP_BROKER__PREFETCH", "many")]).unwrap_err();
    assert_eq!(problems.len(), 1, "{problems:?}");
    let shown = problems[0].to_string();
    assert!(
        shown.starts_with("environment: LGSP_BROKER__PREFETCH: invalid number"),
        "{shown}"
    );
}

#[test]
fn an_unknown_lgsp_variable_is_an_unknown_key() {
    let problems = load_text(GOOD, &[("LGSP_BROKR__URL", "amqp://x")]).unwrap_err();
    assert!(
        problems[0].to_string().contains("unknown key `brokr`"),
        "{problems:?}"
    );
}

#[test]
fn debug_redacts_passwords_and_tokens() {
    let c = load_text(
        GOOD,
        &[
            ("LGSP_BROKER__URL", "amqp://app:hunter2@10.0.0.1:5672/prod"),
            ("LGSP_STORE__URL", "postgres://lgsp:pgpass99@db/lgsp"),
            ("LGSP_ADMIN__OPERATOR_TOKEN", "tok-abcdef123456"),
        ],
    )
    .unwrap();
    let shown = format!("{c:?} {:#?}", c.config);
    for secret in ["hunter2", "pgpass99", "tok-abcdef123456"] {
        assert!(!shown.contains(secret), "{secret} leaked in {shown}");
    }
    assert!(shown.contains("amqp://app:***@10.0.0.1:5672/prod"));
}

#[test]
fn unquoted_codes_are_reported() {
    let text = format!("{GOOD}\nhttp: {{ listen: 0127 }}\n");
    let problems = load_text(&text, &[]).unwrap_err();
    assert!(
        problems
            .iter()
            .any(|p| p.to_string().contains("unquoted 0127")),
        "{problems:?}"
    );
    let text = "adapters: [20186301]\n";
    let problems = load_text(text, &[]).unwrap_err();
    assert!(
        problems[0]
            .to_string()
            .contains("found the number 20186301 where text is expected; quote it"),
        "{problems:?}"
    );
}

#[test]
fn target_must_name_one_destination() {
    let text = GOOD.replace(
        "      - exchange: lgsp.out\n        routing_key: enterprise.registered",
        "      - routing_key: x",
    );
    let problems = load_text(&text, &[]).unwrap_err();
    assert!(
        problems[0]
            .to_string()
            .contains("routes[0].to[0]: a target needs"),
        "{problems:?}"
    );
}

#[test]
fn schema_and_reference_folders_default_beside_the_adapters_and_resolve_from_the_root_file() {
    let c = load_text(GOOD, &[]).unwrap();
    assert_eq!(c.config.schema_dir, Path::new("../schemas"));
    assert_eq!(c.config.reference_dir, Path::new("../reference"));
    assert!(!c.config.routes[0].strict_admin_codes);
    let text = format!("schema_dir: my/schemas\nreference_dir: /srv/ref\n{GOOD}");
    let mut file = YamlFile::from_text(Path::new("conf/lgsp.yaml"), &text, None);
    let c = load_file(&mut file).unwrap();
    assert_eq!(c.schema_dir(), Path::new("conf/my/schemas"));
    assert_eq!(c.reference_dir(), Path::new("/srv/ref"));
}

#[test]
fn a_route_may_ask_for_strict_admin_codes() {
    let text = GOOD.replace(
        "    map: bizreg\n",
        "    map: bizreg\n    strict_admin_codes: true\n",
    );
    let c = load_text(&text, &[]).unwrap().config;
    assert!(c.routes[0].strict_admin_codes);
}

#[test]
fn named_admin_tokens_load_and_their_mistakes_name_the_key() {
    let hash = "a72bf14466a555a28f46b4fdba9d825359a9f1e5ebc9fa627fd113365cf67542";
    let text = format!(
        "{GOOD}admin:\n  operator_token_sha256: [\"{hash}\"]\n  tokens:\n    - {{ name: lan, sha256: \"{hash}\", role: operator }}\n    - {{ name: minh, sha256: \"{hash}\", role: viewer }}\nreplay: {{ require_approval: true, rate: 50 }}\nstore: {{ retention: 7d }}\n"
    );
    let c = load_text(&text, &[]).unwrap().config;
    assert_eq!(c.admin.tokens.len(), 2);
    assert_eq!(c.admin.tokens[1].role, TokenRole::Viewer);
    assert!(c.replay.require_approval);
    assert_eq!(c.replay.rate, 50);
    assert_eq!(c.replay.batch_size, 100);
    assert_eq!(c.store.retention.get().as_secs(), 7 * 24 * 3600);

    // An unknown role is an error naming the key.
    let bad = format!(
        "{GOOD}admin:\n  tokens:\n    - {{ name: minh, sha256: \"{hash}\", role: admin }}\n"
    );
    let problems = load_text(&bad, &[]).unwrap_err();
    let all: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert_eq!(all.len(), 1, "{all:?}");
    assert!(
        all[0].contains("admin.tokens[0].role") && all[0].contains("found `admin`"),
        "{all:?}"
    );
    let bad = format!("{GOOD}replay: {{ rate: 0, batch_size: 5000 }}\n");
    let all: Vec<String> = load_text(&bad, &[])
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(
        all.iter()
            .any(|p| p.contains("replay.rate: must be at least 1")),
        "{all:?}"
    );
    assert!(
        all.iter().any(|p| p.contains("replay.batch_size")),
        "{all:?}"
    );
}

#[test]
fn token_names_must_be_unique_and_hashes_hex() {
    let hash = "a72bf14466a555a28f46b4fdba9d825359a9f1e5ebc9fa627fd113365cf67542";
    let bad = format!(
        "{GOOD}admin:\n  operator_token_sha256: [\"{hash}\"]\n  tokens:\n    - {{ name: operator-1, sha256: \"{hash}\", role: operator }}\n    - {{ name: lan, sha256: \"abc\", role: operator }}\n"
    );
    let problems = load_text(&bad, &[]).unwrap_err();
    let all: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert!(
        all.iter()
            .any(|p| p.contains("admin.tokens[0].name") && p.contains("already the name")),
        "{all:?}"
    );
    assert!(
        all.iter()
            .any(|p| p.contains("admin.tokens[1].sha256") && p.contains("64 digits")),
        "{all:?}"
    );
}

const APPS: &str = r#"
adapters: [bizreg]
routes:
  - name: r
    from: { binding: "bizreg.#" }
    map: bizreg
    to: [{ app: thue }, { app: finance }]
apps:
  dkkd:
    api_key_sha256: ["ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"]
    publish: ["bizreg.#", "bizreg..x", "bizreg.enterprise*"]
  thue:
    api_key_sha256: ["BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD", "xyz"]
    rate_limit: { per_second: 0 }
"#;

#[test]
fn apps_problems_are_all_reported_with_their_keys() {
    let problems = load_text(APPS, &[]).unwrap_err();
    let shown: Vec<String> = problems.iter().map(ToString::to_string).collect();
    let has = |needle: &str| shown.iter().any(|s| s.contains(needle));
    assert!(
        has("routes[0].to[1].app"),
        "unknown app in a route: {shown:#?}"
    );
    assert!(has("`finance`, which is not in `apps`"), "{shown:#?}");
    assert!(has("apps.dkkd.publish[1]"), "empty word: {shown:#?}");
    assert!(
        has("apps.dkkd.publish[2]"),
        "star inside a word: {shown:#?}"
    );
    assert!(
        has("also a key of application `dkkd`"),
        "overlap: {shown:#?}"
    );
    assert!(has("apps.thue.api_key_sha256[1]"), "bad hex: {shown:#?}");
    assert!(has("apps.thue.rate_limit.per_second"), "{shown:#?}");
    assert_eq!(problems.len(), 6, "{shown:#?}");
}

#[test]
fn a_plain_app_key_comes_from_the_environment_only() {
    let text = "apps:\n  emis:\n    api_key: \"0123456789abcdef0123\"\n    publish: [\"emis.#\"]\n";
    let problems = load_text(text, &[]).unwrap_err();
    assert!(
        problems[0].to_string().contains("LGSP_APPS__EMIS__API_KEY"),
        "{problems:#?}"
    );
    let env_only = "apps:\n  emis:\n    publish: [\"emis.#\"]\n";
    let c = load_text(
        env_only,
        &[("LGSP_APPS__EMIS__API_KEY", "0123456789abcdef0123")],
    )
    .unwrap()
    .config;
    assert_eq!(
        c.apps["emis"].api_key.as_ref().map(|k| k.expose()),
        Some("0123456789abcdef0123")
    );
    assert_eq!(c.gateway.idempotency_window, Duration::from_secs(24 * 3600));
    let short = load_text(env_only, &[("LGSP_APPS__EMIS__API_KEY", "short")]).unwrap_err();
    assert!(short[0].to_string().contains("guessable"), "{short:#?}");
}

#[test]
fn each_application_publishes_over_amqp_with_its_own_user() {
    let shared = "apps:\n  a:\n    amqp_user: pub\n  b:\n    amqp_user: pub\n";
    let problems = load_text(shared, &[]).unwrap_err();
    assert!(
        problems
            .iter()
            .any(|p| p.to_string().contains("also application `a`'s")),
        "{problems:#?}"
    );
    // The default broker user is guest: an application called guest would be trusted.
    let bus = "apps:\n  guest:\n    publish: [\"x.#\"]\n";
    let problems = load_text(bus, &[]).unwrap_err();
    assert!(
        problems[0].to_string().contains("apps.guest.amqp_user"),
        "{problems:#?}"
    );
    let ok = "apps:\n  guest:\n    amqp_user: guest-app\n";
    assert_eq!(
        load_text(ok, &[]).unwrap().config.apps["guest"]
            .amqp_user
            .as_deref(),
        Some("guest-app")
    );
}

#[test]
fn a_webhook_loads_with_its_defaults_and_a_name_from_its_url() {
    let text = r#"
adapters: [bizreg]
routes:
  - name: r
    from: { binding: "bizreg.#" }
    map: bizreg
    to:
      - webhook: { url: "https://user:pw@Thue.example.vn:8443/lgsp/enterprises?token=abc" }
      - webhook: { url: "http://127.0.0.1:9000/tax", name: tax, map: bizreg.x, concurrency: "8" }
agreements:
  a:
    receiver: tax
    fields: [$.name]
"#;
    let c = load_text(text, &[]).unwrap().config;
    let w = c.routes[0].to[0].webhook.as_ref().unwrap();
    assert_eq!(w.receiver_name(), "thue-example-vn-8443-lgsp-enterprises");
    assert_eq!(w.timeout, Duration::from_secs(10));
    assert_eq!(w.concurrency, 4);
    assert!(
        !format!("{w:?}").contains("pw"),
        "the URL's password is redacted"
    );
    let t = &c.routes[0].to[1];
    assert_eq!(t.receiver().as_deref(), Some("tax"));
    assert_eq!(t.outbound_map(), Some("bizreg.x"));
    assert_eq!(t.webhook.as_ref().unwrap().concurrency, 8);
    assert_eq!(c.agreements["a"].events, ["#"]);
}

#[test]
fn tracking_is_on_by_default_and_its_keys_are_checked() {
    let c = load_text(GOOD, &[]).unwrap().config;
    assert!(c.tracking.enabled);
    assert_eq!(c.tracking.retention.get().as_secs(), 7 * 24 * 3600);
    let c = load_text(
        &format!("{GOOD}tracking: {{ enabled: false, retention: 2d }}\n"),
        &[],
    )
    .unwrap()
    .config;
    assert!(!c.tracking.enabled);
    assert_eq!(c.tracking.retention.get().as_secs(), 2 * 24 * 3600);
    let problems = load_text(&format!("{GOOD}tracking: {{ keep: 2d }}\n"), &[]).unwrap_err();
    assert!(
        problems.iter().any(|p| p.to_string().contains("tracking")),
        "{problems:?}"
    );
}

#[test]
fn tls_files_resolve_next_to_the_config_file_and_must_be_readable() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.pem"), "x").unwrap();
    let root = dir.path().join("lgsp.yaml");
    let load = |text: &str| {
        let mut file = YamlFile::from_text(&root, text, None);
        load_file(&mut file).ok_or(file.problems)
    };
    let ok = load(
        "broker: { url: \"amqps://u:p@rabbit:5671/v\", tls: { ca: ca.pem } }\nadapters: []\nroutes: []\n",
    )
    .unwrap();
    assert_eq!(ok.config.broker.tls.ca, Some(dir.path().join("ca.pem")));

    let problems = load(
        "broker: { url: \"amqp://u:p@rabbit:5672/v\", tls: { ca: none.pem, cert: c.pem } }\nhttp: { tls: { cert: ca.pem, key: k.pem } }\nadapters: []\nroutes: []\n",
    )
    .unwrap_err();
    let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
    let has = |key: &str, what: &str| {
        assert!(
            text.iter().any(|p| p.contains(key) && p.contains(what)),
            "no problem at {key} saying {what}: {text:#?}"
        )
    };
    has("broker.tls.ca", "cannot read");
    has("broker.tls.cert", "cannot read");
    has("broker.tls.key", "needs both");
    has("http.tls.key", "cannot read");
    has("broker.tls", "amqps://");
    assert!(
        !text.iter().any(|p| p.contains("http.tls.cert")),
        "{text:#?}"
    );
}

/// Every secret the configuration can hold — broker, cluster, management and store
/// passwords, the operator token, an API key, a webhook URL's credentials — is `***` in
/// the configuration's `Debug` output (what a `{:?}` in a log or a panic would print).
#[test]
fn the_debug_output_of_a_configuration_holds_no_secret() {
    let text = r#"
broker:
  url: "amqp://bus:Secret-broker-1@rabbit:5672/lgsp"
  urls: ["amqp://bus:Secret-node-2@rabbit-2:5672/lgsp"]
  management_url: "http://admin:Secret-mgmt-3@rabbit:15672"
store: { url: "postgres://lgsp:Secret-store-4@db/lgsp" }
adapters: [bizreg]
apps:
  bizreg: { publish: ["bizreg.#"] }
routes:
  - name: r
    from: { binding: "bizreg.#" }
    map: bizreg
    to:
      - webhook: { url: "https://hook:Secret-hook-5@tax.example/in", name: tax }
"#;
    let env = [
        ("LGSP_ADMIN__OPERATOR_TOKEN", "Secret-token-6-0123456789"),
        ("LGSP_APPS__BIZREG__API_KEY", "Secret-key-7-0123456789"),
    ];
    let c = load_text(text, &env).unwrap();
    assert!(c.config.admin.operator_token.is_some());
    let shown = format!("{c:?} {:#?}", c.config);
    for n in 1..=7 {
        let secret = format!(
            "Secret-{}",
            ["broker", "node", "mgmt", "store", "hook", "token", "key"][n - 1]
        );
        assert!(!shown.contains(&secret), "{secret} in {shown}");
    }
    assert!(shown.contains("bus:***@rabbit"), "{shown}");
}

/// An unknown variable is reported as the variable, whatever level it is unknown at
/// (`LGSP_BOGUS__KEY` was reported as the file's key `bogus`).
#[test]
fn an_unknown_variable_is_named_as_the_variable() {
    for var in ["LGSP_BOGUS", "LGSP_BOGUS__KEY", "LGSP_BROKER__BOGUS"] {
        let problems = load_text(GOOD, &[(var, "x")]).unwrap_err();
        assert_eq!(problems.len(), 1, "{var}: {problems:?}");
        assert_eq!(problems[0].file, None, "{var}: {}", problems[0]);
        assert_eq!(problems[0].key, var, "{}", problems[0]);
    }
}
