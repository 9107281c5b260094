//! The `lgsp` binary as integrators use it: `check`, `map`, `test`, exit codes, and
//! hostile payloads refused fast and in little memory.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn lgsp() -> Command {
    Command::new(env!("CARGO_BIN_EXE_lgsp"))
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn shipped_config() -> PathBuf {
    repo().join("config/lgsp.yaml")
}

fn run(cmd: &mut Command) -> Output {
    cmd.env_remove("RUST_BACKTRACE")
        .output()
        .expect("spawn lgsp")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A scratch configuration: `config/lgsp.yaml` with `root` text and one adapter `raw`
/// with a whole-document mapping.
fn scratch(root: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("config")).unwrap();
    std::fs::create_dir_all(dir.path().join("adapters/raw")).unwrap();
    std::fs::write(dir.path().join("config/lgsp.yaml"), root).unwrap();
    std::fs::write(
        dir.path().join("adapters/raw/adapter.yaml"),
        "mappings:\n  whole: {}\n",
    )
    .unwrap();
    dir
}

#[test]
fn check_passes_on_the_shipped_config() {
    let out = run(lgsp().args(["check", "--config"]).arg(shipped_config()));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains(": ok ("));
}

#[test]
fn check_reports_all_four_mistakes_with_positions() {
    let dir = scratch(
        "broker:\n  prefech: 8\nlimits:\n  max_depth: [1]\nadapters: [raw]\nroutes:\n  - name: a\n    from: { binding: \"x.#\" }\n    map: raw\n    to:\n      - exchange: lgsp.out\n    retry: { delays: [\"5 parsecs\"] }\n  - name: b\n    from: { binding: \"y.#\" }\n    map: raw\n    to:\n      - app: tax\n        map: raw.nosuchmapping\n",
    );
    let out = run(lgsp().current_dir(dir.path()).arg("check"));
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    let lines: Vec<&str> = err.lines().collect();
    let expect = [
        "config/lgsp.yaml:2:3: broker.prefech: unknown key `prefech`",
        "config/lgsp.yaml:4:3: limits.max_depth: invalid type",
        "config/lgsp.yaml:12:23: routes[0].retry.delays[0]: invalid duration \"5 parsecs\"",
        "config/lgsp.yaml:18:9: routes[1].to[0].map: adapter `raw` has no mapping `nosuchmapping`",
    ];
    for e in expect {
        assert!(
            lines.iter().any(|l| l.starts_with(e)),
            "missing {e:?} in:\n{err}"
        );
    }
    assert!(err.contains("4 problems found"), "{err}");
}

#[test]
fn check_reports_a_broken_schema_with_its_file_and_an_unknown_route_schema() {
    let dir = scratch(
        "adapters: [raw]\nroutes:\n  - name: a\n    from: { binding: \"x.#\" }\n    map: raw\n    validate: lgsp.nothing/1\n    to:\n      - exchange: lgsp.out\n",
    );
    std::fs::create_dir_all(dir.path().join("schemas")).unwrap();
    std::fs::write(
        dir.path().join("schemas/lgsp.thing.1.json"),
        "{\"$id\": \"lgsp.thing/1\", \"type\": \"objekt\"}",
    )
    .unwrap();
    let out = run(lgsp().current_dir(dir.path()).arg("check"));
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("schemas/lgsp.thing.1.json: type: invalid schema"),
        "{err}"
    );
    std::fs::remove_file(dir.path().join("schemas/lgsp.thing.1.json")).unwrap();
    let out = run(lgsp().current_dir(dir.path()).arg("check"));
    let err = text(&out.stderr);
    assert!(
        err.contains("config/lgsp.yaml:6:5: routes[0].validate: no schema `lgsp.nothing/1`"),
        "{err}"
    );
}

#[test]
fn check_reports_a_bad_jsonpath_with_its_column() {
    let dir = scratch("adapters: [raw]\n");
    std::fs::write(
        dir.path().join("adapters/raw/adapter.yaml"),
        "mappings:\n  m:\n    fields:\n      a: { path: \"$.x[?@.y ==]\" }\n      b: { path: $.z, check: { regex: \"([a-z\" } }\n",
    )
    .unwrap();
    let out = run(lgsp().current_dir(dir.path()).arg("check"));
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("adapter.yaml:4:12: mappings.m.fields.a.path: bad JSONPath `$.x[?@.y ==]`"),
        "{err}"
    );
    assert!(err.contains("(column 12 of the value)"), "{err}");
    assert!(
        err.contains("adapter.yaml:5:23: mappings.m.fields.b.check[0]: bad regex `([a-z`: unclosed character class (column 2 of the value)"),
        "{err}"
    );
}

#[test]
fn map_converts_each_bizreg_sample_with_a_whole_document_mapping() {
    let dir = scratch("adapters: [raw]\n");
    let samples = repo().join("adapters/bizreg/samples");
    let mut n = 0;
    for entry in std::fs::read_dir(samples).unwrap() {
        let path = entry.unwrap().path();
        let out = run(lgsp()
            .current_dir(dir.path())
            .args(["map", "--mapping", "raw.whole"])
            .arg(&path));
        assert!(
            out.status.success(),
            "{}: {}",
            path.display(),
            text(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(
            v.as_object()
                .is_some_and(|m| m.len() == 1 || path.extension().unwrap() == "json")
        );
        n += 1;
    }
    assert!(n >= 10, "only {n} bizreg samples");
}

#[test]
fn map_by_type_maps_as_the_bus_does() {
    let out = run(lgsp()
        .args(["map", "--config"])
        .arg(shipped_config())
        .args([
            "--type",
            "bizreg.branch.registered",
            "--envelope",
            "app_id=dkkd",
        ])
        .arg(repo().join("adapters/bizreg/samples/branch-registered.xml")));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["enterprise_code"], "4941209473001");
    assert_eq!(
        v["industries"].as_array().map(Vec::len),
        Some(1),
        "a single Nganh is a list of one"
    );
}

#[test]
fn map_exit_codes_separate_bad_data_from_bad_usage() {
    let dir = scratch("adapters: [raw]\n");
    let mut child = lgsp()
        .current_dir(dir.path())
        .args([
            "map",
            "--mapping",
            "raw.whole",
            "--content-type",
            "json",
            "-",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"{\"a\": 1, \"a\": 2}")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("duplicate key \"a\" at line 1"),
        "{}",
        text(&out.stderr)
    );

    let out = run(lgsp()
        .current_dir(dir.path())
        .args(["map", "--mapping", "raw.nope", "x.xml"]));
    assert_eq!(out.status.code(), Some(2));
    let out = run(lgsp().current_dir(dir.path()).args(["map", "x.xml"]));
    assert_eq!(
        out.status.code(),
        Some(2),
        "neither --mapping nor --type is a usage error"
    );
}

#[test]
fn test_command_passes_on_the_shipped_adapters() {
    let out = run(lgsp().args(["test", "--config"]).arg(shipped_config()));
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    let last = stdout.lines().last().unwrap();
    assert!(last.ends_with(" passed, 0 failed"), "{last}");
}

#[test]
fn test_command_shows_a_diff_and_fails_when_a_golden_differs() {
    let dir = scratch("adapters: [raw]\n");
    let a = dir.path().join("adapters/raw");
    std::fs::create_dir_all(a.join("tests")).unwrap();
    std::fs::write(a.join("in.json"), "{\"x\": \"1\"}").unwrap();
    std::fs::write(a.join("good.json"), "{\n  \"x\": \"1\"\n}\n").unwrap();
    std::fs::write(a.join("bad.json"), "{\n  \"x\": \"2\"\n}\n").unwrap();
    std::fs::write(
        a.join("tests/cases.yaml"),
        "cases:\n  - { name: good, input: in.json, mapping: whole, expect: good.json }\n  - { name: bad, input: in.json, mapping: whole, expect: bad.json }\n  - { name: err, body: \"<a>\", mapping: whole, expect_error: { kind: decode, contains: \"line 1\" } }\n",
    )
    .unwrap();
    let out = run(lgsp().current_dir(dir.path()).arg("test"));
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("-  \"x\": \"2\"") && stdout.contains("+  \"x\": \"1\""),
        "{stdout}"
    );
    assert_eq!(stdout.lines().last(), Some("2 passed, 1 failed"));

    let out = run(lgsp().current_dir(dir.path()).args(["test", "--update"]));
    assert!(out.status.success());
    assert_eq!(
        std::fs::read_to_string(a.join("bad.json")).unwrap(),
        "{\n  \"x\": \"1\"\n}\n"
    );
}

/// Run `lgsp map` on `body`; return exit code, stderr, wall time and peak RSS in KiB.
fn map_hostile(format: &str, body: &[u8]) -> (Option<i32>, String, Duration, i64) {
    let dir = scratch("adapters: [raw]\n");
    let file = dir.path().join(format!("payload.{format}"));
    std::fs::write(&file, body).unwrap();
    let started = Instant::now();
    let out = run(lgsp()
        .current_dir(dir.path())
        .args(["map", "--mapping", "raw.whole"])
        .arg(&file));
    let elapsed = started.elapsed();
    // Each test runs in its own process under nextest, so the children's peak RSS is
    // this command's.
    let usage =
        nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN).unwrap();
    (
        out.status.code(),
        text(&out.stderr),
        elapsed,
        usage.max_rss(),
    )
}

fn assert_refused_fast(format: &str, body: &[u8], needle: &str) {
    let (code, err, elapsed, rss_kib) = map_hostile(format, body);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains(needle), "expected {needle:?} in {err}");
    assert!(elapsed < Duration::from_secs(1), "took {elapsed:?}");
    assert!(rss_kib < 64 * 1024, "peak RSS {rss_kib} KiB");
}

#[test]
fn billion_laughs_is_refused_fast() {
    let doc = lgsp_testkit::entity_bomb("<lolz>&lol9;</lolz>\n");
    assert_refused_fast("xml", doc.as_bytes(), "DOCTYPE");
}

#[test]
fn xxe_is_refused_and_nothing_is_read() {
    let secret_dir = tempfile::tempdir().unwrap();
    let secret = secret_dir.path().join("secret.txt");
    std::fs::write(&secret, "TOP-SECRET-CONTENT").unwrap();
    let doc = format!(
        "<?xml version=\"1.0\"?>\n<!DOCTYPE r [<!ENTITY x SYSTEM \"file://{}\">]>\n<r>&x;</r>\n",
        secret.display()
    );
    let (code, err, _, _) = map_hostile("xml", doc.as_bytes());
    assert_eq!(code, Some(1));
    assert!(
        err.contains("DOCTYPE") && !err.contains("TOP-SECRET"),
        "{err}"
    );
}

#[test]
fn xml_nested_10000_deep_is_refused_fast() {
    let doc = format!("{}{}", "<a>".repeat(10_000), "</a>".repeat(10_000));
    assert_refused_fast("xml", doc.as_bytes(), "[limit limit.depth]");
}

#[test]
fn json_nested_100000_deep_is_refused_fast() {
    let doc = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert_refused_fast("json", doc.as_bytes(), "[limit limit.depth]");
}

#[test]
fn invalid_utf8_is_refused_with_its_position() {
    let (code, err, _, _) = map_hostile("xml", b"<a>\n  caf\xe9</a>");
    assert_eq!(code, Some(1));
    assert!(err.contains("line 2"), "{err}");
}

/// `lgsp map --mapping raw.whole` on a file `name` holding `content`.
fn map_whole(name: &str, content: &str) -> Output {
    let dir = scratch("adapters: [raw]\n");
    let file = dir.path().join(name);
    std::fs::write(&file, content).unwrap();
    run(lgsp()
        .current_dir(dir.path())
        .args(["map", "--mapping", "raw.whole"])
        .arg(&file))
}

#[test]
fn a_26_digit_json_number_is_kept_exactly() {
    let out = map_whole("n.json", "{\"n\": 12345678901234567890123456}");
    assert!(
        text(&out.stdout).contains("\"n\": 12345678901234567890123456"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn nfd_input_comes_out_nfc() {
    // "Nguyễn" with the tone and the circumflex as combining marks.
    let out = map_whole("n.xml", "<a>Nguye\u{0302}\u{0303}n</a>");
    assert!(
        text(&out.stdout).contains("\"a\": \"Nguy\u{1ec5}n\""),
        "{}",
        text(&out.stdout)
    );
}

/// A configuration on the repository's adapters and schemas with `rest` appended.
fn on_repo_adapters(rest: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("config")).unwrap();
    let text = format!(
        "adapter_dir: \"{0}/adapters\"\nschema_dir: \"{0}/schemas\"\nreference_dir: \"{0}/reference\"\nadapters: [bizreg]\n{rest}",
        repo().display()
    );
    std::fs::write(dir.path().join("config/lgsp.yaml"), text).unwrap();
    dir
}

const TAX_FEED_ROUTE: &str = "routes:\n  - name: reg\n    from: { binding: \"bizreg.enterprise.registered\" }\n    map: bizreg\n    validate: lgsp.enterprise/1\n    to:\n      - app: tax\n        map: bizreg.enterprise_to_tax_xml\n";

#[test]
fn check_names_the_agreement_an_outbound_mapping_reads_past() {
    // No agreement: the tax feed reads the representatives' names, which are personal.
    let dir = on_repo_adapters(TAX_FEED_ROUTE);
    let out = run(lgsp().current_dir(dir.path()).arg("check"));
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("routes[0].to[0].map: outbound mapping bizreg.enterprise_to_tax_xml reads `legal_representatives.full_name`, personal data"), "{err}");
    assert!(err.contains("receiver `tax` has no agreement"), "{err}");

    // An agreement that leaves out what the mapping reads is named.
    let dir = on_repo_adapters(&format!(
        "{TAX_FEED_ROUTE}agreements:\n  tax-names-only:\n    receiver: tax\n    fields: [$.name]\n"
    ));
    let out = run(lgsp().current_dir(dir.path()).arg("check"));
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("which is not among the fields of agreement tax-names-only (receiver `tax`)"),
        "{err}"
    );

    // One that names it passes.
    let dir = on_repo_adapters(&format!(
        "{TAX_FEED_ROUTE}agreements:\n  tax:\n    receiver: tax\n    fields: [$, $.legal_representatives.full_name, $.legal_representatives.citizen_id, $.legal_representatives.birth_date, $.legal_representatives.legacy_id, $.owners.name, $.owners.citizen_id]\n"
    ));
    let out = run(lgsp().current_dir(dir.path()).arg("check"));
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn check_reports_bad_webhooks_and_agreements_with_their_keys() {
    let dir = on_repo_adapters(
        "routes:\n  - name: reg\n    from: { binding: \"bizreg.#\" }\n    map: bizreg\n    to:\n      - webhook: { url: \"ftp://x/y\", name: Tax, concurrency: 0 }\n      - webhook: { url: \"http://a/b\", name: edu, secret_env: LGSP_SECRET }\n      - webhook: { url: \"http://a/c\", name: edu }\n      - app: tax\n        webhook: { url: \"http://a/d\" }\nagreements:\n  x:\n    receiver: nobody\n    fields: [\"$.a[0]\"]\n",
    );
    let out = run(lgsp().current_dir(dir.path()).arg("check"));
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    for e in [
        "routes[0].to[0].webhook.url: `ftp://x/y` is not an http:// or https:// URL",
        "routes[0].to[0].webhook.name: `Tax`: use lower-case letters",
        "routes[0].to[0].webhook.concurrency: must be at least 1",
        "routes[0].to[1].webhook.secret_env: `LGSP_SECRET`: variables starting with LGSP_",
        "routes[0].to[2].webhook: route `reg` has two webhooks named `edu`",
        "routes[0].to[3]: set one of `exchange`, `app` or `webhook`",
        "agreements.x.fields[0]: `$.a[0]`: only names",
        "agreements.x.receiver: `nobody` is neither an application nor a webhook",
    ] {
        assert!(err.contains(e), "missing {e:?} in:\n{err}");
    }
}

#[test]
fn catalog_shows_each_event_its_receivers_and_what_they_get() {
    let out = run(lgsp().args(["catalog", "--config"]).arg(shipped_config()));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let t = text(&out.stdout);
    let reg = t
        .split("\nenterprise.registered  (lgsp.enterprise/1)\n")
        .nth(1)
        .unwrap_or_else(|| panic!("{t}"));
    let reg = &reg[..reg.find("\nenterprise.").unwrap_or(reg.len())];
    assert!(reg.contains("publishers: bizreg"), "{reg}");
    assert!(
        reg.contains("-> app tax (route bizreg-registered, bizreg.enterprise_to_tax_xml)"),
        "{reg}"
    );
    assert!(
        reg.contains("agreements: tax-enterprise-registration [Nghị định 01/2021"),
        "{reg}"
    );
    assert!(reg.contains("-> app finance (route bizreg-registered, canonical)\n     fields: every field that is not personal\n     personal data withheld: legal_representatives.birth_date"), "{reg}");
    let json = run(lgsp()
        .args(["catalog", "--json", "--config"])
        .arg(shipped_config()));
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert!(v["events"].as_array().unwrap().len() >= 10);
}
