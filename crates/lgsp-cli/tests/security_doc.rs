//! SECURITY.md names a test for each control: every test it names exists, so the
//! document cannot point at a test that was renamed or removed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn sources(dir: &Path, out: &mut String) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push_str(&std::fs::read_to_string(&p).unwrap());
        }
    }
}

/// `crate::file test` (or `crate::file`, or `crate test`) spans of the document.
fn named_tests(doc: &str) -> Vec<(String, Option<String>, Option<String>)> {
    let mut out = Vec::new();
    for (i, span) in doc.split('`').enumerate() {
        if i % 2 == 0 || !span.starts_with("lgsp-") {
            continue;
        }
        let (head, test) = match span.split_once(' ') {
            Some((h, t)) => (h, Some(t.to_owned())),
            None => (span, None),
        };
        let (krate, file) = match head.split_once("::") {
            Some((c, f)) => (c, Some(f.to_owned())),
            None => (head, None),
        };
        out.push((krate.to_owned(), file, test));
    }
    out
}

#[test]
fn every_test_security_md_names_exists() {
    let doc = std::fs::read_to_string(repo().join("SECURITY.md")).unwrap();
    let named = named_tests(&doc);
    assert!(named.len() > 40, "too few tests named: {}", named.len());
    let mut missing = Vec::new();
    for (krate, file, test) in &named {
        // The system suites are the package in the top-level `tests/` folder.
        let (dir, tests) = if krate == "lgsp-system-tests" {
            (repo().join("tests"), repo().join("tests"))
        } else {
            let d = repo().join("crates").join(krate);
            (d.clone(), d.join("tests"))
        };
        if !dir.is_dir() {
            missing.push(format!("{krate}: no such crate"));
            continue;
        }
        if let Some(f) = file
            && !tests.join(format!("{f}.rs")).is_file()
        {
            missing.push(format!("{krate}::{f}: no such test file"));
            continue;
        }
        let Some(test) = test else { continue };
        let mut text = String::new();
        match file {
            Some(f) => text = std::fs::read_to_string(tests.join(format!("{f}.rs"))).unwrap(),
            None => sources(&dir.join("src"), &mut text),
        }
        let name = test.rsplit("::").next().unwrap();
        let defined =
            text.contains(&format!("fn {name}(")) || text.contains(&format!("fn {name}<"));
        if !defined {
            missing.push(format!("{krate} {test}: no fn {name}"));
        }
    }
    assert!(
        missing.is_empty(),
        "SECURITY.md names tests that do not exist:\n{}",
        missing.join("\n")
    );
}
