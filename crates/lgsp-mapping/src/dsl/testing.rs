//! Adapter test cases (`tests/*.yaml` in an adapter folder): run a sample through the
//! mapping exactly as the bus would, compare with a golden file or an expected error.

use std::path::{Path, PathBuf};

use lgsp_core::config::{Problem, YamlFile};
use lgsp_core::envelope::Envelope;

use super::adapter::{Adapter, Decoded, Decoding, Mapped};
use super::error::MapError;
use super::program::to_format;
use super::render;
use super::spec::TestCaseSpec;
use crate::decode::{Format, Limits};

/// The envelope every test case starts from, so goldens never depend on the clock.
pub fn test_envelope() -> Envelope {
    Envelope {
        message_id: "00000000-0000-4000-8000-000000000001".into(),
        timestamp: Some("2025-01-01T08:00:00+07:00".into()),
        app_id: Some("test".into()),
        sender: Some("H37.TEST".into()),
        ..Envelope::default()
    }
}

/// A loaded test case and where it came from.
#[derive(Debug, Clone)]
pub struct TestCase {
    pub file: PathBuf,
    pub spec: TestCaseSpec,
}

/// The outcome of one case.
#[derive(Debug, Clone)]
pub enum Outcome {
    Passed,
    /// Output differs from the golden file.
    Differs {
        golden: PathBuf,
        expected: String,
        actual: String,
    },
    /// Expected an error, got output; or the error differs.
    WrongError {
        expected: String,
        actual: String,
    },
    /// Expected output, got an error.
    Failed {
        error: String,
    },
    /// The case itself is broken (missing input, golden, both or neither expectation).
    Broken {
        problem: String,
    },
}

/// Load the test cases of an adapter (`<dir>/tests/*.yaml`, key `cases`).
pub fn load_cases(adapter_dir: &Path) -> Result<Vec<TestCase>, Vec<Problem>> {
    let dir = adapter_dir.join("tests");
    let Ok(rd) = std::fs::read_dir(&dir) else {
        return Ok(Vec::new());
    };
    let mut files: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    let mut problems = Vec::new();
    let mut cases = Vec::new();
    for f in files {
        let mut y = match YamlFile::open(&f, None) {
            Ok(y) => y,
            Err(p) => {
                problems.push(p);
                continue;
            }
        };
        if !y.check_top_level(&["cases"]) {
            problems.extend(y.problems);
            continue;
        }
        for (_, spec) in y.list::<TestCaseSpec>("cases") {
            cases.push(TestCase {
                file: f.clone(),
                spec,
            });
        }
        problems.extend(y.problems);
    }
    if problems.is_empty() {
        Ok(cases)
    } else {
        Err(problems)
    }
}

/// What a case feeds the adapter: the body, the envelope and the format it names.
#[derive(Debug, Clone)]
pub struct CaseInput {
    pub body: Vec<u8>,
    pub envelope: Envelope,
    pub format: Option<Format>,
}

/// Read the input of a case; `Err` says why the case itself is broken.
pub fn case_input(adapter: &Adapter, case: &TestCase) -> Result<CaseInput, String> {
    let spec = &case.spec;
    let body = match (&spec.input, &spec.body) {
        (Some(path), None) => std::fs::read(adapter.dir.join(path))
            .map_err(|e| format!("cannot read input {path}: {e}"))?,
        (None, Some(b)) => b.clone().into_bytes(),
        _ => return Err("give exactly one of `input` (a file) or `body` (inline)".into()),
    };
    let mut envelope = test_envelope();
    if let Some(t) = &spec.message_type {
        envelope.message_type = Some(t.clone());
    }
    for (k, v) in &spec.envelope {
        if !envelope.set(k, v.clone()) {
            return Err(format!(
                "unknown envelope field `{k}`; one of: {}",
                Envelope::FIELDS.join(", ")
            ));
        }
    }
    Ok(CaseInput {
        body,
        envelope,
        format: spec.content_type.map(to_format),
    })
}

/// Map the input of a case as it asks (by message type or by mapping name) with the
/// given decoding; `Err` says why the case itself is broken.
pub fn map_case(
    adapter: &Adapter,
    case: &TestCase,
    input: &CaseInput,
    limits: &Limits,
    decoding: Decoding,
) -> Result<Result<(Vec<Mapped>, Decoded), MapError>, String> {
    let CaseInput {
        body,
        envelope,
        format,
    } = input;
    match (&case.spec.message_type, &case.spec.mapping) {
        (_, Some(m)) => Ok(adapter.map_with_using(m, envelope, body, *format, limits, decoding)),
        (Some(_), None) => Ok(adapter.map_message_using(envelope, body, *format, limits, decoding)),
        (None, None) => Err("give `type` (dispatch as the bus does) or `mapping`".into()),
    }
}

/// Run one case. With `update`, a differing or missing golden file is rewritten.
pub fn run_case(adapter: &Adapter, case: &TestCase, limits: &Limits, update: bool) -> Outcome {
    let spec = &case.spec;
    let mapped = case_input(adapter, case)
        .and_then(|input| map_case(adapter, case, &input, limits, Decoding::Auto));
    let result = match mapped {
        Ok(result) => result.map(|(outputs, _)| outputs),
        Err(problem) => return Outcome::Broken { problem },
    };
    match (&spec.expect, &spec.expect_error, result) {
        (Some(golden), None, Ok(outputs)) => {
            let actual = render(&outputs);
            let path = adapter.dir.join(golden);
            let expected = std::fs::read_to_string(&path).unwrap_or_default();
            if expected == actual {
                Outcome::Passed
            } else if update {
                match std::fs::create_dir_all(path.parent().unwrap_or(Path::new(".")))
                    .and_then(|_| std::fs::write(&path, &actual))
                {
                    Ok(()) => Outcome::Passed,
                    Err(e) => Outcome::Broken {
                        problem: format!("cannot write {}: {e}", path.display()),
                    },
                }
            } else {
                Outcome::Differs {
                    golden: path,
                    expected,
                    actual,
                }
            }
        }
        (Some(_), None, Err(e)) => Outcome::Failed {
            error: format!("{} [{}]: {e}", e.kind().as_str(), e.code()),
        },
        (None, Some(want), Ok(outputs)) => Outcome::WrongError {
            expected: want.describe(),
            actual: format!("success:\n{}", render(&outputs)),
        },
        (None, Some(want), Err(e)) => {
            let text = e.to_string();
            let kind_ok = e.kind().as_str() == want.kind;
            let text_ok = want.contains.as_deref().is_none_or(|c| text.contains(c));
            if kind_ok && text_ok {
                Outcome::Passed
            } else {
                Outcome::WrongError {
                    expected: want.describe(),
                    actual: format!("{} error: {text}", e.kind().as_str()),
                }
            }
        }
        _ => Outcome::Broken {
            problem: "give exactly one of `expect` (a golden file) or `expect_error`".into(),
        },
    }
}
