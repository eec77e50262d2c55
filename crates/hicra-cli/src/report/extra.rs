//! The panels beyond the paper's four, each drawn when some run has its data: accuracy against
//! mean response length (validation when logged, else the training rollouts; one point per
//! step, joined in step order), and the share of groups whose rewards are all equal (groups
//! that give GRPO no learning signal).

use std::path::{Path, PathBuf};

use anyhow::Result;

use super::charts::{Line, Stroke, draw_lines};
use super::html::ChartRef;
use super::run_data::RunData;

/// `(length, accuracy)` per step of a run, and which responses they describe.
fn accuracy_by_length(run: &RunData) -> Option<(Vec<(f64, f64)>, &'static str)> {
    for (acc, len, what) in [
        ("val_accuracy", "val_length", "validation"),
        ("accuracy", "response_length_mean", "rollouts"),
    ] {
        let lengths = run.series(len);
        let points: Vec<(f64, f64)> = run
            .series(acc)
            .into_iter()
            .filter_map(|(step, a)| {
                lengths
                    .iter()
                    .find(|(s, _)| *s == step)
                    .map(|&(_, l)| (l, a))
            })
            .collect();
        if !points.is_empty() {
            return Some((points, what));
        }
    }
    None
}

/// Draws the panels that have data into `out`; returns them for the page.
pub fn draw_panels(runs: &[RunData], out: &Path) -> Result<Vec<(ChartRef, PathBuf)>> {
    let mut drawn = Vec::new();
    let length_lines: Vec<Line> = runs
        .iter()
        .enumerate()
        .filter_map(|(run, data)| {
            accuracy_by_length(data).map(|(points, what)| Line {
                label: format!("{}: {what}", data.label),
                run,
                stroke: Stroke::Solid,
                points,
            })
        })
        .collect();
    let signal_lines: Vec<Line> = runs
        .iter()
        .enumerate()
        .map(|(run, data)| Line {
            label: data.label.clone(),
            run,
            stroke: Stroke::Solid,
            points: data.series("zero_var_group_frac"),
        })
        .filter(|l| !l.points.is_empty())
        .collect();
    let panels = [
        (
            "accuracy_length.png",
            "Accuracy against mean response length (one point per step)",
            "mean response length",
            "accuracy",
            length_lines,
        ),
        (
            "group_signal.png",
            "Share of groups whose rewards are all equal (no GRPO signal)",
            "step",
            "share of groups",
            signal_lines,
        ),
    ];
    for (file, title, x_label, y_label, lines) in panels {
        if lines.is_empty() {
            continue;
        }
        let path = out.join(file);
        draw_lines(&path, title, x_label, y_label, lines)?;
        drawn.push((
            ChartRef {
                file: file.to_string(),
                caption: title.to_string(),
            },
            path,
        ));
    }
    Ok(drawn)
}
