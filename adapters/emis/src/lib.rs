//! Rust steps of the EMIS adapter.
//!
//! `emis.statistics_totals` checks a canonical school statistics report
//! (`lgsp.school_statistics/1`): the totals are the sums of the grades for each measure,
//! no grade has more girls than pupils, and the teachers' counts by degree and by
//! standard each add up to the number of teachers.

use lgsp_core::step::{DuplicateStep, Step, StepContext, StepError, StepRegistry};
use serde_json::Value;

/// Register the steps of the EMIS adapter.
pub fn register(steps: &mut StepRegistry) -> Result<(), DuplicateStep> {
    steps.register(StatisticsTotals)?;
    Ok(())
}

/// Σ grades = totals for each measure, female ≤ pupils, teachers by degree and by
/// standard = teachers.total.
#[derive(Debug, Clone, Copy, Default)]
pub struct StatisticsTotals;

impl Step for StatisticsTotals {
    fn name(&self) -> &'static str {
        "emis.statistics_totals"
    }

    fn run(&self, doc: &mut Value, ctx: &mut StepContext<'_>) -> Result<(), StepError> {
        check(doc, ctx)
    }
}

/// A count: a JSON integer; `None` when absent or null.
fn count(v: Option<&Value>, field: &str) -> Result<Option<i64>, StepError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(n) => n.as_i64().map(Some).ok_or_else(|| {
            StepError::mapping(
                field,
                "statistics.count",
                format!("not a whole number: {n}"),
            )
        }),
    }
}

/// The checks of `emis.statistics_totals`; a measure given for some grades only is
/// recorded as a warning (`incomplete_grades`) instead of being summed.
pub fn check(doc: &Value, ctx: &mut StepContext<'_>) -> Result<(), StepError> {
    let empty = Vec::new();
    let grades = doc
        .get("grades")
        .and_then(Value::as_array)
        .unwrap_or(&empty);

    for (i, g) in grades.iter().enumerate() {
        female_at_most_pupils(g, &format!("grades[{i}]"))?;
    }

    if let Some(Value::Object(totals)) = doc.get("totals") {
        female_at_most_pupils(doc.get("totals").unwrap_or(&Value::Null), "totals")?;
        for (measure, total) in totals {
            let field = format!("totals.{measure}");
            let Some(total) = count(Some(total), &field)? else {
                continue;
            };
            let mut parts = Vec::with_capacity(grades.len());
            for (i, g) in grades.iter().enumerate() {
                if let Some(n) = count(g.get(measure), &format!("grades[{i}].{measure}"))? {
                    let grade = g
                        .get("grade")
                        .map_or_else(|| i.to_string(), Value::to_string);
                    parts.push((grade, n));
                }
            }
            if parts.is_empty() {
                continue;
            }
            if parts.len() < grades.len() {
                ctx.warn(
                    "incomplete_grades",
                    field,
                    format!(
                        "{measure} is given for {} of {} grades: the total {total} is not checked against them",
                        parts.len(),
                        grades.len()
                    ),
                );
                continue;
            }
            let sum: i64 = parts.iter().map(|(_, n)| n).sum();
            if sum != total {
                let detail = parts
                    .iter()
                    .map(|(g, n)| format!("grade {g}: {n}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                return Err(StepError::validation(
                    field,
                    "statistics.grade_total",
                    format!("total {measure} {total} ≠ Σ grades = {sum} ({detail})"),
                ));
            }
        }
    }

    if let Some(teachers) = doc.get("teachers") {
        let total = count(teachers.get("total"), "teachers.total")?;
        if let Some(total) = total {
            for part in ["by_degree", "by_standard"] {
                let Some(Value::Object(by)) = teachers.get(part) else {
                    continue;
                };
                let mut sum = 0i64;
                let mut detail = Vec::with_capacity(by.len());
                for (k, v) in by {
                    if let Some(n) = count(Some(v), &format!("teachers.{part}.{k}"))? {
                        sum += n;
                        detail.push(format!("{k}: {n}"));
                    }
                }
                if !detail.is_empty() && sum != total {
                    return Err(StepError::validation(
                        format!("teachers.{part}"),
                        "statistics.teacher_total",
                        format!(
                            "teachers {part} sum to {sum} ({}) ≠ teachers.total {total}",
                            detail.join(", ")
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}

fn female_at_most_pupils(item: &Value, at: &str) -> Result<(), StepError> {
    let female = count(item.get("female"), &format!("{at}.female"))?;
    let pupils = count(item.get("pupils"), &format!("{at}.pupils"))?;
    if let (Some(f), Some(p)) = (female, pupils)
        && f > p
    {
        return Err(StepError::validation(
            format!("{at}.female"),
            "statistics.female_over_pupils",
            format!("{f} female pupils > {p} pupils"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use serde_json::json;

    fn report() -> Value {
        json!({
            "grades": [
                {"grade": 6, "classes": 3, "pupils": 98, "female": 47},
                {"grade": 7, "classes": 3, "pupils": 101, "female": 52}
            ],
            "totals": {"classes": 6, "pupils": 199, "female": 99},
            "teachers": {"total": 10, "by_degree": {"master": 2, "bachelor": 8},
                         "by_standard": {"above": 1, "meets": 8, "below": 1}},
            "full_day_pupils": null
        })
    }

    fn run(doc: &Value) -> (Result<(), StepError>, usize) {
        let mut ctx = StepContext::new("emis.test");
        let r = check(doc, &mut ctx);
        (r, ctx.warnings().len())
    }

    fn err(doc: &Value) -> String {
        run(doc).0.unwrap_err().to_string()
    }

    #[test]
    fn a_consistent_report_passes() {
        assert_eq!(run(&report()), (Ok(()), 0));
    }

    #[test]
    fn a_total_is_the_sum_of_the_grades() {
        let mut doc = report();
        doc["totals"]["pupils"] = json!(200);
        let e = run(&doc).0.unwrap_err();
        assert_eq!(e.code, "statistics.grade_total");
        assert_eq!(
            e.to_string(),
            "totals.pupils: total pupils 200 ≠ Σ grades = 199 (grade 6: 98, grade 7: 101)"
        );
    }

    #[test]
    fn female_pupils_never_exceed_pupils() {
        let mut doc = report();
        doc["grades"][1]["female"] = json!(102);
        doc["totals"]["female"] = json!(149);
        assert_eq!(
            err(&doc),
            "grades[1].female: 102 female pupils > 101 pupils"
        );
    }

    #[test]
    fn teachers_by_degree_and_by_standard_add_up() {
        let mut doc = report();
        doc["teachers"]["by_standard"]["below"] = json!(2);
        assert_eq!(
            err(&doc),
            "teachers.by_standard: teachers by_standard sum to 11 (above: 1, meets: 8, below: 2) ≠ teachers.total 10"
        );
        let mut doc = report();
        doc["teachers"]["by_degree"] = json!({"bachelor": 9});
        assert_eq!(
            err(&doc),
            "teachers.by_degree: teachers by_degree sum to 9 (bachelor: 9) ≠ teachers.total 10"
        );
    }

    #[test]
    fn a_measure_of_some_grades_only_is_a_warning() {
        let mut doc = report();
        doc["grades"][1].as_object_mut().unwrap().remove("classes");
        assert_eq!(run(&doc), (Ok(()), 1));
    }

    #[test]
    fn the_step_is_registered_under_its_name() {
        let mut steps = StepRegistry::new();
        register(&mut steps).unwrap();
        assert_eq!(
            steps.names().collect::<Vec<_>>(),
            ["emis.statistics_totals"]
        );
    }
}
