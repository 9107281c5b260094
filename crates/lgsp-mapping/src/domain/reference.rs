//! Reference data shared by every adapter: effective-dated code tables loaded from
//! `reference_dir` (`*.yaml`, key `tables`).
//!
//! A row names a unit by `code` and `name` and is valid from `valid_from` to `valid_to`
//! (both inclusive, both optional: open-ended). A row that ends may say which code
//! `replaced_by` it: that is the crosswalk from former codes to current units. A lookup
//! takes a code and a date and returns the row valid on that date, following
//! replacements when the code itself is no longer valid. One table may be spread over
//! several files (current units in one, a crosswalk in another).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use lgsp_core::config::{Problem, YamlFile};
use serde::Deserialize;

/// Longest chain of replacements followed (a code replaced by a code replaced by ...).
const MAX_HOPS: usize = 8;

/// One reference file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableSpec {
    /// What the table holds and where it comes from.
    #[serde(default)]
    pub description: Option<String>,
    /// The table lists only part of the official code list: a code missing from it is
    /// a warning, not an error.
    #[serde(default)]
    pub partial: bool,
    pub rows: Vec<RowSpec>,
}

/// One row: a unit and when its code means it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RowSpec {
    pub code: String,
    pub name: String,
    /// First day the code means this unit (`YYYY-MM-DD`); absent: always was.
    #[serde(default)]
    pub valid_from: Option<String>,
    /// Last day the code means this unit; absent: still valid.
    #[serde(default)]
    pub valid_to: Option<String>,
    /// The code that replaced this one after `valid_to` (crosswalk).
    #[serde(default)]
    pub replaced_by: Option<String>,
    /// Level of the unit (`province`, `commune`, `ward`, ...).
    #[serde(default)]
    pub level: Option<String>,
    /// Why the row is there (e.g. "fictional sample").
    #[serde(default)]
    pub note: Option<String>,
}

/// A loaded row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub code: String,
    pub name: String,
    pub valid_from: Option<NaiveDate>,
    pub valid_to: Option<NaiveDate>,
    pub replaced_by: Option<String>,
    pub level: Option<String>,
}

impl Row {
    pub fn valid_on(&self, d: NaiveDate) -> bool {
        self.valid_from.is_none_or(|f| f <= d) && self.valid_to.is_none_or(|t| d <= t)
    }

    /// `06400 Xã Hữu Liên`.
    pub fn describe(&self) -> String {
        format!("{} {}", self.code, self.name)
    }
}

/// One effective-dated table.
#[derive(Debug, Clone, Default)]
pub struct DatedTable {
    pub name: String,
    pub partial: bool,
    rows: HashMap<String, Vec<Row>>,
}

/// What a lookup found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution<'a> {
    /// The code is valid on the date.
    Current(&'a Row),
    /// The code had ended by the date; `current` replaced it.
    Legacy { former: &'a Row, current: &'a Row },
    /// The code is known, but no row covers the date and nothing replaced it.
    NotOnDate(&'a Row),
    /// The code is in no row.
    Unknown,
}

impl DatedTable {
    /// The row valid for `code` on `date`, following replacements.
    pub fn resolve(&self, code: &str, date: NaiveDate) -> Resolution<'_> {
        let Some(rows) = self.rows.get(code) else {
            return Resolution::Unknown;
        };
        if let Some(r) = rows.iter().find(|r| r.valid_on(date)) {
            return Resolution::Current(r);
        }
        let ended = rows
            .iter()
            .filter(|r| r.valid_to.is_some_and(|t| t < date) && r.replaced_by.is_some())
            .max_by_key(|r| r.valid_to);
        if let Some(former) = ended {
            let mut next = former.replaced_by.as_deref();
            for _ in 0..MAX_HOPS {
                let Some(code) = next else { break };
                let Some(rows) = self.rows.get(code) else {
                    break;
                };
                if let Some(current) = rows.iter().find(|r| r.valid_on(date)) {
                    return Resolution::Legacy { former, current };
                }
                next = rows
                    .iter()
                    .filter(|r| r.valid_to.is_some_and(|t| t < date))
                    .max_by_key(|r| r.valid_to)
                    .and_then(|r| r.replaced_by.as_deref());
            }
        }
        Resolution::NotOnDate(&rows[0])
    }

    /// Every row of `code`.
    pub fn rows(&self, code: &str) -> &[Row] {
        self.rows.get(code).map_or(&[], Vec::as_slice)
    }

    /// Number of distinct codes.
    pub fn codes(&self) -> usize {
        self.rows.len()
    }
}

/// Every reference table, by name.
#[derive(Debug, Clone, Default)]
pub struct Reference {
    pub tables: BTreeMap<String, DatedTable>,
}

impl Reference {
    /// Load every `*.yaml` of `dir` (a missing folder is no reference data, not an error).
    pub fn load(dir: &Path) -> Result<Reference, Vec<Problem>> {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return Ok(Reference::default());
        };
        let mut files: Vec<PathBuf> = rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
            .collect();
        files.sort();
        let mut problems = Vec::new();
        let mut tables: BTreeMap<String, DatedTable> = BTreeMap::new();
        // Replacements to check once every file is read: (file, key, position, table, code, to).
        let mut replacements = Vec::new();
        for f in files {
            let mut y = match YamlFile::open(&f, None) {
                Ok(y) => y,
                Err(p) => {
                    problems.push(p);
                    continue;
                }
            };
            if !y.check_top_level(&["tables"]) {
                problems.extend(y.problems);
                continue;
            }
            for (tname, spec) in y.entries::<TableSpec>("tables") {
                let table = tables.entry(tname.clone()).or_insert_with(|| DatedTable {
                    name: tname.clone(),
                    ..DatedTable::default()
                });
                table.partial |= spec.partial;
                for (i, r) in spec.rows.into_iter().enumerate() {
                    let at = format!("tables.{tname}.rows.{i}");
                    let mut date = |key: &str, v: &Option<String>| -> Option<NaiveDate> {
                        let s = v.as_deref()?;
                        match NaiveDate::parse_from_str(s, "%Y-%m-%d") {
                            Ok(d) => Some(d),
                            Err(e) => {
                                y.problem(
                                    &format!("{at}.{key}"),
                                    format!("`{s}` is not a date YYYY-MM-DD: {e}"),
                                );
                                None
                            }
                        }
                    };
                    let row = Row {
                        valid_from: date("valid_from", &r.valid_from),
                        valid_to: date("valid_to", &r.valid_to),
                        code: r.code.trim().to_owned(),
                        name: crate::values::nfc(r.name.trim()).into_owned(),
                        replaced_by: r.replaced_by.map(|c| c.trim().to_owned()),
                        level: r.level,
                    };
                    if row.code.is_empty() {
                        y.problem(&format!("{at}.code"), "empty code");
                        continue;
                    }
                    if let (Some(f), Some(t)) = (row.valid_from, row.valid_to)
                        && t < f
                    {
                        y.problem(
                            &format!("{at}.valid_to"),
                            format!("valid_to {t} is before valid_from {f}"),
                        );
                        continue;
                    }
                    let same = table.rows.entry(row.code.clone()).or_default();
                    if let Some(other) = same.iter().find(|o| overlap(o, &row)) {
                        y.problem(
                            &format!("{at}.code"),
                            format!(
                                "code {} is also `{}` over overlapping dates in table `{tname}`; \
                                 close one with valid_to",
                                row.code, other.name
                            ),
                        );
                        continue;
                    }
                    if let Some(to) = &row.replaced_by {
                        let key = format!("{at}.replaced_by");
                        replacements.push((
                            f.clone(),
                            lgsp_core::config::display_key(&key),
                            y.pos(&key),
                            tname.clone(),
                            row.code.clone(),
                            to.clone(),
                        ));
                    }
                    same.push(row);
                }
            }
            problems.extend(y.problems);
        }
        for (file, key, pos, table, code, to) in replacements {
            if !tables.get(&table).is_some_and(|t| t.rows.contains_key(&to)) {
                problems.push(Problem {
                    file: Some(file),
                    key,
                    pos,
                    message: format!(
                        "code {code} is replaced_by {to}, which is in no row of table `{table}`; \
                         add the current unit or fix the code"
                    ),
                });
            }
        }
        if problems.is_empty() {
            Ok(Reference { tables })
        } else {
            Err(problems)
        }
    }

    pub fn get(&self, name: &str) -> Option<&DatedTable> {
        self.tables.get(name)
    }

    /// Table names, comma-separated, for error messages.
    pub fn names(&self) -> String {
        if self.tables.is_empty() {
            "none".to_owned()
        } else {
            self.tables.keys().cloned().collect::<Vec<_>>().join(", ")
        }
    }
}

fn overlap(a: &Row, b: &Row) -> bool {
    let starts_before_b_ends = match (a.valid_from, b.valid_to) {
        (Some(f), Some(t)) => f <= t,
        _ => true,
    };
    let b_starts_before_a_ends = match (b.valid_from, a.valid_to) {
        (Some(f), Some(t)) => f <= t,
        _ => true,
    };
    starts_before_b_ends && b_starts_before_a_ends
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn load(text: &str) -> Result<Reference, Vec<Problem>> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("t.yaml"), text).unwrap();
        Reference::load(dir.path())
    }

    const TABLE: &str = r#"
tables:
  unit:
    rows:
      - { code: "90001", name: "Xã Cũ", valid_to: "2025-06-30", replaced_by: "06400" }
      - { code: "06400", name: "Xã Trước", valid_to: "2025-06-30" }
      - { code: "06400", name: "Xã Hữu Liên", valid_from: "2025-07-01" }
"#;

    #[test]
    fn the_same_code_names_different_units_on_either_side_of_a_change() {
        let r = load(TABLE).unwrap();
        let t = r.get("unit").unwrap();
        let before = t.resolve("06400", d("2025-06-30"));
        let after = t.resolve("06400", d("2025-07-01"));
        assert!(matches!(before, Resolution::Current(r) if r.name == "Xã Trước"));
        assert!(matches!(after, Resolution::Current(r) if r.name == "Xã Hữu Liên"));
    }

    #[test]
    fn an_ended_code_resolves_to_its_replacement() {
        let r = load(TABLE).unwrap();
        let t = r.get("unit").unwrap();
        assert!(
            matches!(t.resolve("90001", d("2025-06-30")), Resolution::Current(r) if r.name == "Xã Cũ")
        );
        match t.resolve("90001", d("2025-07-01")) {
            Resolution::Legacy { former, current } => {
                assert_eq!(former.code, "90001");
                assert_eq!(current.describe(), "06400 Xã Hữu Liên");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(t.resolve("12345", d("2025-07-01")), Resolution::Unknown);
    }

    #[test]
    fn overlapping_rows_bad_dates_and_dangling_replacements_are_reported() {
        let e = load(
            r#"
tables:
  unit:
    rows:
      - { code: "1", name: "A", valid_from: "2025-01-01" }
      - { code: "1", name: "B", valid_from: "2025-06-01" }
      - { code: "2", name: "C", valid_from: "2025-13-01" }
      - { code: "3", name: "D", valid_to: "2025-01-01", replaced_by: "9" }
"#,
        )
        .unwrap_err();
        let text: Vec<String> = e.iter().map(ToString::to_string).collect();
        assert_eq!(text.len(), 3, "{text:#?}");
        assert!(
            text[0].contains("tables.unit.rows[1].code: code 1 is also `A`"),
            "{text:#?}"
        );
        assert!(text[0].contains("t.yaml:6:"), "line of the row: {text:#?}");
        assert!(text[1].contains("`2025-13-01` is not a date"), "{text:#?}");
        assert!(
            text[2].contains("t.yaml:8:") && text[2].contains("replaced_by 9, which is in no row"),
            "{text:#?}"
        );
    }
}
