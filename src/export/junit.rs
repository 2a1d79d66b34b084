//! JUnit XML for CI test reports: one testcase per threshold, per gated
//! metric of a comparison, and one for the run's validity. Values go into
//! the failure messages so a CI UI shows *why* without opening files.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::export::Exporter;
use crate::format;
use crate::results::verdict::{invalid_reasons, Comparison, Verdict};
use crate::results::{RunResults, ThresholdResult};

/// Writes `junit.xml` (thresholds and validity) into a run's output directory.
pub struct JunitExporter;

impl Exporter for JunitExporter {
    fn name(&self) -> &'static str {
        "junit"
    }

    fn export(&self, results: &RunResults, dir: &Path) -> anyhow::Result<PathBuf> {
        let path = dir.join("junit.xml");
        std::fs::write(&path, run_junit(results))
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(path)
    }
}

/// One testcase.
struct Case {
    classname: &'static str,
    name: String,
    outcome: CaseOutcome,
    /// Shown as `system-out`: the full explanation, pass or fail.
    detail: String,
}

enum CaseOutcome {
    Pass,
    Failure { kind: &'static str, message: String },
    Skipped { message: String },
}

/// JUnit for a single run: its thresholds and its validity.
fn run_junit(results: &RunResults) -> String {
    let mut suites = vec![("bench.thresholds", threshold_cases(&results.thresholds))];
    suites.push((
        "bench.validity",
        vec![validity_case(&invalid_reasons(results))],
    ));
    render(&format!("bench run {}", results.name), &suites)
}

/// JUnit for `bench compare`: the gated metrics, the current run's
/// thresholds, and the current run's validity.
pub fn comparison_junit(c: &Comparison) -> String {
    let metric_cases = c
        .rows
        .iter()
        .map(|row| {
            let sentence = format::sentence(row);
            let outcome = match row.verdict {
                Verdict::Regressed => CaseOutcome::Failure {
                    kind: "regression",
                    message: sentence.clone(),
                },
                Verdict::NotMeasured => CaseOutcome::Skipped {
                    message: sentence.clone(),
                },
                Verdict::Improved | Verdict::WithinNoise => CaseOutcome::Pass,
            };
            Case {
                classname: "bench.compare",
                name: row.metric.clone(),
                outcome,
                detail: sentence,
            }
        })
        .collect();
    let suites = vec![
        ("bench.compare", metric_cases),
        ("bench.thresholds", threshold_cases(&c.thresholds)),
        ("bench.validity", vec![validity_case(&c.invalid_reasons)]),
    ];
    render(
        &format!("bench compare {} vs {}", c.current_name, c.baseline_name),
        &suites,
    )
}

fn threshold_cases(thresholds: &[ThresholdResult]) -> Vec<Case> {
    thresholds
        .iter()
        .map(|t| {
            let measured = t.value.map_or_else(
                || "not measured".to_string(),
                |v| format::value(&t.metric, v),
            );
            let sentence = format!(
                "{} {}: measured {measured}: {}",
                t.metric,
                t.condition,
                if t.pass { "pass" } else { "FAIL" }
            );
            Case {
                classname: "bench.thresholds",
                name: format!("{} {}", t.metric, t.condition),
                outcome: if t.pass {
                    CaseOutcome::Pass
                } else {
                    CaseOutcome::Failure {
                        kind: "threshold",
                        message: sentence.clone(),
                    }
                },
                detail: sentence,
            }
        })
        .collect()
}

fn validity_case(reasons: &[String]) -> Case {
    let detail = if reasons.is_empty() {
        "the run completed and the generator kept up".to_string()
    } else {
        reasons.join("; ")
    };
    Case {
        classname: "bench.validity",
        name: "run is valid".into(),
        outcome: if reasons.is_empty() {
            CaseOutcome::Pass
        } else {
            CaseOutcome::Failure {
                kind: "invalid_run",
                message: detail.clone(),
            }
        },
        detail,
    }
}

fn render(name: &str, suites: &[(&str, Vec<Case>)]) -> String {
    let count = |f: fn(&CaseOutcome) -> bool| -> usize {
        suites
            .iter()
            .flat_map(|(_, cases)| cases)
            .filter(|c| f(&c.outcome))
            .count()
    };
    let is_failure = |o: &CaseOutcome| matches!(o, CaseOutcome::Failure { .. });
    let is_skipped = |o: &CaseOutcome| matches!(o, CaseOutcome::Skipped { .. });
    let total: usize = suites.iter().map(|(_, c)| c.len()).sum();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"{}\" tests=\"{total}\" failures=\"{}\" skipped=\"{}\" errors=\"0\">",
        escape(name),
        count(is_failure),
        count(is_skipped)
    );
    for (suite, cases) in suites {
        let failures = cases.iter().filter(|c| is_failure(&c.outcome)).count();
        let skipped = cases.iter().filter(|c| is_skipped(&c.outcome)).count();
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" skipped=\"{skipped}\" errors=\"0\">",
            escape(suite),
            cases.len()
        );
        for case in cases {
            let _ = writeln!(
                out,
                "    <testcase classname=\"{}\" name=\"{}\">",
                escape(case.classname),
                escape(&case.name)
            );
            match &case.outcome {
                CaseOutcome::Pass => {}
                CaseOutcome::Failure { kind, message } => {
                    let _ = writeln!(
                        out,
                        "      <failure type=\"{kind}\" message=\"{}\">{}</failure>",
                        escape(message),
                        escape(message)
                    );
                }
                CaseOutcome::Skipped { message } => {
                    let _ = writeln!(out, "      <skipped message=\"{}\"/>", escape(message));
                }
            }
            let _ = writeln!(
                out,
                "      <system-out>{}</system-out>",
                escape(&case.detail)
            );
            out.push_str("    </testcase>\n");
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

/// Escapes text for XML attributes and content; drops characters XML 1.0
/// cannot carry at all.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\t' | '\r' => out.push(' '),
            c if (c as u32) < 0x20 => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(escape("a<b & \"c\"\u{1}"), "a&lt;b &amp; &quot;c&quot;");
    }

    #[test]
    fn run_junit_lists_thresholds_and_validity() {
        let mut r = RunResults {
            name: "demo".into(),
            ..Default::default()
        };
        r.thresholds.push(ThresholdResult {
            metric: "delivery_latency.p99".into(),
            condition: "< 50ms".into(),
            value: Some(62.1),
            pass: false,
        });
        let xml = run_junit(&r);
        assert!(xml.contains("tests=\"2\" failures=\"1\""), "{xml}");
        assert!(
            xml.contains("name=\"delivery_latency.p99 &lt; 50ms\""),
            "{xml}"
        );
        assert!(xml.contains("measured 62.10 ms: FAIL"), "{xml}");
    }

    #[test]
    fn exporters_write_their_files_through_the_manager() {
        let dir = tempfile::tempdir().unwrap();
        let mut manager = crate::export::ExportManager::new();
        manager
            .add(Box::new(JunitExporter))
            .add(Box::new(crate::export::markdown::MarkdownExporter));
        let r = RunResults {
            interrupted: true,
            ..Default::default()
        };
        let report = manager.export_all(&r, dir.path());
        assert!(report.failed.is_empty(), "{:?}", report.failed);
        let names: Vec<&str> = report.written.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, vec!["junit", "markdown"]);
        let xml = std::fs::read_to_string(dir.path().join("junit.xml")).unwrap();
        assert!(
            xml.contains("type=\"invalid_run\" message=\"the run was interrupted\""),
            "{xml}"
        );
        let md = std::fs::read_to_string(dir.path().join("summary.md")).unwrap();
        assert!(
            md.contains("Invalid run:** the run was interrupted"),
            "{md}"
        );
    }
}
