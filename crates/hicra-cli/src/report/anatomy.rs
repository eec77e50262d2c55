//! The failure-anatomy panels: the shares of planning, execution and format errors over
//! steps, one line per class and run (colour = run, stroke = class), for the training
//! rollouts (`lab_*_error_frac`) and for validation (`val_lab_*_error_frac`). A panel is
//! drawn only when some run logs its metrics.

use std::path::{Path, PathBuf};

use anyhow::Result;

use super::charts::{Line, Stroke, draw_lines};
use super::html::ChartRef;
use super::run_data::RunData;

/// The page note when no run logs the anatomy.
pub const ABSENT_NOTE: &str = "No run logs the failure anatomy (lab_planning_error_frac, …): \
     the anatomy panels are omitted (the reasoning lab logs it).";

/// The error classes: metric suffix and legend name, drawn solid, dashed, dotted.
const CLASSES: [(&str, &str, Stroke); 3] = [
    ("lab_planning_error_frac", "planning", Stroke::Solid),
    ("lab_execution_error_frac", "execution", Stroke::Dashed),
    ("lab_format_error_frac", "format", Stroke::Dotted),
];

/// The two panels: metric prefix, file, title.
const PANELS: [(&str, &str, &str); 2] = [
    (
        "",
        "anatomy.png",
        "Failure anatomy of training rollouts: error shares",
    ),
    (
        "val_",
        "anatomy_validation.png",
        "Failure anatomy on validation: error shares",
    ),
];

/// The lines of one panel (empty when no run logs its metrics).
fn panel_lines(runs: &[RunData], prefix: &str) -> Vec<Line> {
    let mut lines = Vec::new();
    for (run, data) in runs.iter().enumerate() {
        for (metric, class, stroke) in CLASSES {
            let points = data.series(&format!("{prefix}{metric}"));
            if !points.is_empty() {
                lines.push(Line {
                    label: format!("{}: {class}", data.label),
                    run,
                    stroke,
                    points,
                });
            }
        }
    }
    lines
}

/// Draws the anatomy panels that have data into `out`; returns them for the page.
pub fn draw_panels(runs: &[RunData], out: &Path) -> Result<Vec<(ChartRef, PathBuf)>> {
    let mut drawn = Vec::new();
    for (prefix, file, title) in PANELS {
        let lines = panel_lines(runs, prefix);
        if lines.is_empty() {
            continue;
        }
        let path = out.join(file);
        draw_lines(&path, title, "step", "share of responses", lines)?;
        drawn.push((
            ChartRef {
                file: file.to_string(),
                caption: format!("{title} (planning solid, execution dashed, format dotted)"),
            },
            path,
        ));
    }
    Ok(drawn)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::run_data::MetricsLine;

    fn run(label: &str, lines: Vec<(f64, &[(&str, f64)])>) -> RunData {
        RunData {
            dir: PathBuf::from(label),
            label: label.to_string(),
            metrics: lines
                .into_iter()
                .map(|(step, values)| MetricsLine {
                    step,
                    values: values.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
                })
                .collect(),
            samples: Vec::new(),
            analysis: None,
        }
    }

    #[test]
    fn one_line_per_class_and_run_with_the_class_stroke() {
        let a = run(
            "a",
            vec![
                (
                    1.0,
                    &[
                        ("lab_planning_error_frac", 0.3),
                        ("lab_execution_error_frac", 0.2),
                        ("lab_format_error_frac", 0.0),
                    ],
                ),
                (2.0, &[("lab_planning_error_frac", 0.25)]),
            ],
        );
        let b = run("b", vec![(1.0, &[("accuracy", 0.5)])]);
        let lines = panel_lines(&[a, b], "");
        let labels: Vec<&str> = lines.iter().map(|l| l.label.as_str()).collect();
        assert_eq!(labels, ["a: planning", "a: execution", "a: format"]);
        assert_eq!(lines[0].points, [(1.0, 0.3), (2.0, 0.25)]);
        assert_eq!(lines[1].stroke, Stroke::Dashed);
        assert_eq!(lines[2].stroke, Stroke::Dotted);
        assert!(lines.iter().all(|l| l.run == 0));
    }

    #[test]
    fn validation_lines_use_the_prefixed_keys() {
        let a = run(
            "a",
            vec![
                (0.0, &[("val_lab_execution_error_frac", 0.4)]),
                (1.0, &[("lab_planning_error_frac", 0.1)]),
            ],
        );
        let val = panel_lines(std::slice::from_ref(&a), "val_");
        assert_eq!(val.len(), 1);
        assert_eq!(val[0].label, "a: execution");
        assert_eq!(panel_lines(&[a], "")[0].label, "a: planning");
    }
}
