//! Loading YAML configuration with figment, collecting every problem with its place.
//!
//! figment (serde) stops at the first error of a value, so each section of a file and each
//! item of a list is deserialized on its own: one run reports one problem per section or
//! item. figment gives the key path of a problem; [`YamlIndex`] adds line and column.

use std::fmt;
use std::path::{Path, PathBuf};

use figment::error::{Actual, Kind};
use figment::providers::{Format, Yaml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};
use serde::de::DeserializeOwned;

use super::yaml_pos::{Pos, YamlIndex};

/// Prefix of the environment variables that override configuration keys.
pub const ENV_PREFIX: &str = "LGSP_";

/// One thing wrong with the configuration, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file, or `None` when the value came from the environment.
    pub file: Option<PathBuf>,
    /// Key path, e.g. `routes[0].retry.delays`, or the environment variable.
    pub key: String,
    pub pos: Option<Pos>,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.file, self.pos) {
            (Some(file), Some(p)) => write!(f, "{}:{}:{}: ", file.display(), p.line, p.column)?,
            (Some(file), None) => write!(f, "{}: ", file.display())?,
            (None, _) => write!(f, "environment: ")?,
        }
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        f.write_str(&self.message)
    }
}

/// Render a dotted index path (`routes.0.retry`) the way people read it (`routes[0].retry`).
pub fn display_key(path: &str) -> String {
    let mut out = String::with_capacity(path.len() + 4);
    for seg in path.split('.').filter(|s| !s.is_empty()) {
        if !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit()) {
            out.push('[');
            out.push_str(seg);
            out.push(']');
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(seg);
        }
    }
    out
}

const ENV_METADATA: &str = "environment variable(s)";

/// Environment overrides `LGSP_<SECTION>__<KEY>=value`, every value kept as a string
/// (figment's own `Env` provider would turn `0123` or `true` into numbers and booleans).
pub struct EnvOverrides {
    vars: Vec<(String, String)>,
}

impl EnvOverrides {
    /// The `LGSP_` variables of this process.
    pub fn from_process() -> Self {
        Self::from_vars(
            std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))),
        )
    }

    /// The `LGSP_` variables among `vars` (tests pass their own).
    pub fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Self {
        EnvOverrides {
            vars: vars
                .into_iter()
                .filter(|(k, _)| k.starts_with(ENV_PREFIX))
                .collect(),
        }
    }

    pub fn none() -> Self {
        EnvOverrides { vars: Vec::new() }
    }

    /// `LGSP_BROKER__URL` -> `broker.url`.
    fn key_of(var: &str) -> String {
        var[ENV_PREFIX.len()..]
            .split("__")
            .map(str::to_ascii_lowercase)
            .collect::<Vec<_>>()
            .join(".")
    }

    /// The variable that sets `key`, if any.
    pub fn var_for(&self, key: &str) -> Option<&str> {
        self.vars
            .iter()
            .find(|(k, _)| {
                // The variable sets `key`, a key inside it, or (an unknown section
                // made by `LGSP_BOGUS__KEY`) something under it.
                let k = Self::key_of(k);
                key == k || key.starts_with(&format!("{k}.")) || k.starts_with(&format!("{key}."))
            })
            .map(|(k, _)| k.as_str())
    }
}

impl Provider for EnvOverrides {
    fn metadata(&self) -> Metadata {
        Metadata::named(ENV_METADATA)
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        fn insert(dict: &mut Dict, segs: &[&str], value: &str) {
            match segs {
                [] => {}
                [last] => {
                    dict.insert((*last).to_owned(), Value::from(value.to_owned()));
                }
                [first, rest @ ..] => {
                    let entry = dict
                        .entry((*first).to_owned())
                        .or_insert_with(|| Value::from(Dict::new()));
                    if entry.as_dict().is_none() {
                        *entry = Value::from(Dict::new());
                    }
                    if let Value::Dict(_, inner) = entry {
                        insert(inner, rest, value);
                    }
                }
            }
        }
        let mut root = Dict::new();
        for (var, value) in &self.vars {
            let key = Self::key_of(var);
            let segs: Vec<&str> = key.split('.').collect();
            insert(&mut root, &segs, value);
        }
        Ok(Profile::Default.collect(root))
    }
}

/// One YAML file being deserialized section by section.
pub struct YamlFile {
    pub path: PathBuf,
    figment: Figment,
    index: YamlIndex,
    env: Option<EnvOverrides>,
    pub problems: Vec<Problem>,
}

impl YamlFile {
    /// Read `path`; with `env`, environment overrides apply on top of the file.
    pub fn open(path: &Path, env: Option<EnvOverrides>) -> Result<YamlFile, Problem> {
        let text = std::fs::read_to_string(path).map_err(|e| Problem {
            file: Some(path.to_owned()),
            key: String::new(),
            pos: None,
            message: format!("cannot read the file: {e}"),
        })?;
        Ok(Self::from_text(path, &text, env))
    }

    /// Use `text` as the content of `path` (tests, stdin).
    pub fn from_text(path: &Path, text: &str, env: Option<EnvOverrides>) -> YamlFile {
        let mut figment = Figment::from(Yaml::string(text));
        if let Some(env) = &env {
            figment = figment.merge(EnvOverrides {
                vars: env.vars.clone(),
            });
        }
        let index = YamlIndex::parse(text);
        let mut file = YamlFile {
            path: path.to_owned(),
            figment,
            index,
            env,
            problems: Vec::new(),
        };
        file.report_leading_zeros();
        file
    }

    fn report_leading_zeros(&mut self) {
        let found = std::mem::take(&mut self.index.leading_zero_numbers);
        for n in &found {
            self.problems.push(Problem {
                file: Some(self.path.clone()),
                key: display_key(&n.path),
                pos: Some(n.pos),
                message: format!(
                    "unquoted {} is read by YAML as a number and loses its leading zero; \
                     codes are text: write \"{}\"",
                    n.text, n.text
                ),
            });
        }
        self.index.leading_zero_numbers = found;
    }

    /// Record a problem at `path` (dotted, list items by index).
    pub fn problem(&mut self, path: &str, message: impl Into<String>) {
        let problem = self.problem_at(path, message.into());
        self.problems.push(problem);
    }

    fn problem_at(&self, path: &str, message: String) -> Problem {
        let from_env = self
            .figment
            .find_value(path)
            .ok()
            .and_then(|v| {
                self.figment
                    .get_metadata(v.tag())
                    .map(|m| m.name == ENV_METADATA)
            })
            .unwrap_or_else(|| self.index.get(path).is_none());
        if let Some(var) = self.env.as_ref().and_then(|e| e.var_for(path))
            && from_env
        {
            return Problem {
                file: None,
                key: var.to_owned(),
                pos: None,
                message,
            };
        }
        Problem {
            file: Some(self.path.clone()),
            key: display_key(path),
            pos: self.index.nearest(path),
            message,
        }
    }

    /// Line and column of the key at `path` (or of its nearest parent).
    pub fn pos(&self, path: &str) -> Option<super::yaml_pos::Pos> {
        self.index.nearest(path)
    }

    /// Line and column of exactly the key at `path`.
    pub fn exact_pos(&self, path: &str) -> Option<super::yaml_pos::Pos> {
        self.index.get(path)
    }

    /// Is the value at `key` set by an environment variable (not by the file)?
    pub fn from_env(&self, key: &str) -> bool {
        self.env.as_ref().is_some_and(|e| e.var_for(key).is_some())
    }

    /// Does the (merged) document have this top-level or dotted key?
    pub fn has(&self, key: &str) -> bool {
        self.figment.find_value(key).is_ok()
    }

    /// Top-level keys of the document.
    pub fn top_level_keys(&self) -> Vec<String> {
        match self.figment.data() {
            Ok(data) => data.into_values().flat_map(|d| d.into_keys()).collect(),
            Err(_) => Vec::new(),
        }
    }

    /// Report every top-level key not in `allowed`, and a syntax error of the file.
    pub fn check_top_level(&mut self, allowed: &[&str]) -> bool {
        if let Err(e) = self.figment.data() {
            self.push_figment_error("", e);
            return false;
        }
        for key in self.top_level_keys() {
            if !allowed.contains(&key.as_str()) {
                self.problem(
                    &key,
                    format!(
                        "unknown key `{key}`, expected one of: {}",
                        allowed.join(", ")
                    ),
                );
            }
        }
        true
    }

    /// Deserialize the section at `key` (missing: `None`). Problems are recorded.
    pub fn section<T: DeserializeOwned>(&mut self, key: &str) -> Option<T> {
        let value = self.figment.find_value(key).ok()?;
        match value.deserialize::<T>() {
            Ok(v) => Some(v),
            Err(e) => {
                self.push_figment_error(key, e);
                None
            }
        }
    }

    /// Deserialize the list at `key` item by item: `(index, item)` for the good ones.
    pub fn list<T: DeserializeOwned>(&mut self, key: &str) -> Vec<(usize, T)> {
        let Ok(value) = self.figment.find_value(key) else {
            return Vec::new();
        };
        let Some(items) = value.into_array() else {
            self.problem(key, "expected a list (`- item` lines)");
            return Vec::new();
        };
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.into_iter().enumerate() {
            match item.deserialize::<T>() {
                Ok(v) => out.push((i, v)),
                Err(e) => self.push_figment_error(&format!("{key}.{i}"), e),
            }
        }
        out
    }

    /// Deserialize every entry of the map at `key` on its own: `(name, value)`.
    pub fn entries<T: DeserializeOwned>(&mut self, key: &str) -> Vec<(String, T)> {
        let Ok(value) = self.figment.find_value(key) else {
            return Vec::new();
        };
        let Some(dict) = value.into_dict() else {
            self.problem(key, "expected a map of `name: ...` entries");
            return Vec::new();
        };
        let mut out = Vec::with_capacity(dict.len());
        for (name, item) in dict {
            match item.deserialize::<T>() {
                Ok(v) => out.push((name, v)),
                Err(e) => self.push_figment_error(&format!("{key}.{name}"), e),
            }
        }
        out
    }

    fn push_figment_error(&mut self, prefix: &str, err: figment::Error) {
        for e in err {
            let mut path: Vec<String> = Vec::new();
            if !prefix.is_empty() {
                path.push(prefix.to_owned());
            }
            path.extend(e.path.iter().cloned());
            let mut at = path.join(".");
            if let Kind::UnknownField(name, _) = &e.kind
                && e.path.last() != Some(name)
            {
                at = if at.is_empty() {
                    name.clone()
                } else {
                    format!("{at}.{name}")
                };
            }
            let message = describe(&e.kind);
            let problem = self.problem_at(&at, message);
            self.problems.push(problem);
        }
    }
}

/// A figment error kind in words, with a hint where a common mistake is likely.
fn describe(kind: &Kind) -> String {
    match kind {
        Kind::UnknownField(name, expected) => {
            format!(
                "unknown key `{name}`, expected one of: {}",
                expected.join(", ")
            )
        }
        Kind::MissingField(name) => format!("missing required key `{name}`"),
        Kind::InvalidType(actual, expected) if expected.contains("string") => match actual {
            Actual::Unsigned(n) => format!(
                "found the number {n} where text is expected; quote it (\"{n}\"): codes are text"
            ),
            Actual::Signed(n) => {
                format!("found the number {n} where text is expected; quote it (\"{n}\")")
            }
            Actual::Float(n) => {
                format!("found the number {n} where text is expected; quote it (\"{n}\")")
            }
            other => format!("invalid type: found {other}, expected {expected}"),
        },
        Kind::InvalidType(actual, expected) => {
            format!("invalid type: found {actual}, expected {expected}")
        }
        Kind::Message(m) => m.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_key_shows_list_indexes() {
        assert_eq!(
            display_key("routes.0.retry.delays"),
            "routes[0].retry.delays"
        );
        assert_eq!(display_key("broker"), "broker");
    }

    #[test]
    fn env_keys_are_lowercased_and_nested() {
        assert_eq!(EnvOverrides::key_of("LGSP_BROKER__URL"), "broker.url");
        assert_eq!(
            EnvOverrides::key_of("LGSP_ADMIN__OPERATOR_TOKEN"),
            "admin.operator_token"
        );
    }
}
