//! `hicra report` and `hicra analyze`'s report: the paper's four dynamics panels over steps
//! for one or more runs, as PNG charts and a `report.html` with highlighted sample responses;
//! accuracy against length and the share of signal-free groups ([`extra`]); a reading of each
//! run's phase, with the Strategic Grams that rose and fell for analysed runs ([`findings`]);
//! for runs that log the failure anatomy (the lab's `lab_*_error_frac`), also the error shares
//! over steps, one line per class (rollouts, and validation when logged).
//!
//! A hicra run directory is drawn from its `metrics.jsonl`; any other run (verl, TRL, generic
//! JSONL, or a hicra run without metrics) from its analysis ([`run_data::RunData::from_analysis`]),
//! whose series carry the same names.

mod anatomy;
pub mod charts;
mod extra;
mod findings;
pub mod html;
pub mod run_data;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use hicra_hier::GramSet;
use hicra_rl::analysis::{AnalyzeOptions, Silent, analyze_run};

use charts::{ChartSpec, Line, Stroke, draw_chart};
use html::ChartRef;
use run_data::RunData;

/// One panel: two metrics of every run.
struct Panel {
    file: &'static str,
    title: &'static str,
    y_label: &'static str,
    first: (&'static str, &'static str),
    second: (&'static str, &'static str),
    /// Divide each line by its value at the first step.
    relative: bool,
    /// Put the second metric on its own right-hand axis with this description.
    second_axis: Option<&'static str>,
}

const PANELS: [Panel; 4] = [
    Panel {
        file: "relative_ppl.png",
        title: "Relative perplexity (ppl / ppl at first step)",
        y_label: "relative perplexity",
        first: ("ppl_planning", "planning"),
        second: ("ppl_execution", "execution"),
        relative: true,
        second_axis: None,
    },
    Panel {
        file: "token_entropy.png",
        title: "Token entropy",
        y_label: "entropy (nats)",
        first: ("token_entropy_planning", "planning"),
        second: ("token_entropy_execution", "execution"),
        relative: false,
        second_axis: None,
    },
    Panel {
        file: "semantic_entropy.png",
        title: "Semantic entropy of Strategic Grams vs conditional entropy",
        y_label: "entropy (nats)",
        first: ("semantic_entropy", "semantic (SG)"),
        second: ("conditional_entropy", "conditional"),
        relative: false,
        second_axis: None,
    },
    Panel {
        file: "val_accuracy_length.png",
        title: "Validation accuracy and mean response length",
        y_label: "accuracy",
        first: ("val_accuracy", "accuracy"),
        second: ("val_length", "length"),
        relative: false,
        second_axis: Some("mean response length (tokens)"),
    },
];

/// What `write_report` produced.
pub struct ReportOutput {
    /// The HTML page.
    pub html: PathBuf,
    /// The charts.
    pub charts: Vec<PathBuf>,
}

fn relative(points: Vec<(f64, f64)>) -> Vec<(f64, f64)> {
    match points.first() {
        Some(&(_, base)) if base != 0.0 => points.into_iter().map(|(s, v)| (s, v / base)).collect(),
        _ => Vec::new(),
    }
}

fn lines_for(runs: &[RunData], metric: &str, suffix: &str, stroke: Stroke, rel: bool) -> Vec<Line> {
    runs.iter()
        .enumerate()
        .map(|(run, data)| {
            let points = data.series(metric);
            Line {
                label: format!("{}: {suffix}", data.label),
                run,
                stroke,
                points: if rel { relative(points) } else { points },
            }
        })
        .filter(|l| !l.points.is_empty())
        .collect()
}

/// Loads each path: a hicra run directory from its `metrics.jsonl` (with the analysis of its
/// samples for the gram movers, when they can be read), anything else through its analysis
/// (the text alone, the format detected).
pub fn load_runs(paths: &[PathBuf], grams: Option<&Path>) -> Result<Vec<RunData>> {
    let opts = AnalyzeOptions {
        grams: grams.map(Path::to_path_buf),
        ..AnalyzeOptions::default()
    };
    paths
        .iter()
        .map(|path| {
            if path.join("metrics.jsonl").is_file() {
                let mut run = RunData::load(path)?;
                run.analysis = analyze_run(path, &opts, &mut Silent).ok();
                Ok(run)
            } else {
                let run = analyze_run(path, &opts, &mut Silent).with_context(|| {
                    format!(
                        "{} has no metrics.jsonl (a hicra run directory), and `hicra analyze` cannot read it",
                        path.display()
                    )
                })?;
                Ok(RunData::from_analysis(run))
            }
        })
        .collect()
}

/// Writes `report.html` and the charts of `runs` into `out`.
pub fn write_report(mut runs: Vec<RunData>, out: &Path, grams: &GramSet) -> Result<ReportOutput> {
    disambiguate_labels(&mut runs);
    std::fs::create_dir_all(out)
        .with_context(|| format!("cannot create report folder {}", out.display()))?;
    let mut chart_refs = Vec::new();
    let mut chart_paths = Vec::new();
    let mut notes = Vec::new();
    for panel in &PANELS {
        let (mut first, mut second) = (panel.first, panel.second);
        let mut title = panel.title.to_string();
        // Without validation lines, show the training rollouts' accuracy and length.
        if first.0 == "val_accuracy" && runs.iter().all(|r| r.series("val_accuracy").is_empty()) {
            first = ("accuracy", "accuracy");
            second = ("response_length_mean", "length");
            title = "Accuracy and mean response length (training rollouts)".to_string();
            notes.push("No validation lines (val_accuracy) in the runs: the last panel shows training-rollout accuracy and length.".to_string());
        }
        let first_lines = lines_for(&runs, first.0, first.1, Stroke::Solid, panel.relative);
        let second_lines = lines_for(&runs, second.0, second.1, Stroke::Dashed, panel.relative);
        for (metric, lines) in [(first.0, &first_lines), (second.0, &second_lines)] {
            if lines.is_empty() {
                notes.push(format!("No run has the metric {metric}."));
            }
        }
        let spec = match panel.second_axis {
            Some(axis) => ChartSpec {
                title: &title,
                x_label: "step",
                y_label: panel.y_label,
                lines: first_lines,
                secondary: Some((axis, second_lines)),
            },
            None => ChartSpec {
                title: &title,
                x_label: "step",
                y_label: panel.y_label,
                lines: first_lines.into_iter().chain(second_lines).collect(),
                secondary: None,
            },
        };
        let path = out.join(panel.file);
        draw_chart(&path, &spec)?;
        chart_refs.push(ChartRef {
            file: panel.file.to_string(),
            caption: title,
        });
        chart_paths.push(path);
    }
    for (chart, path) in extra::draw_panels(&runs, out)? {
        chart_refs.push(chart);
        chart_paths.push(path);
    }
    let anatomy = anatomy::draw_panels(&runs, out)?;
    if anatomy.is_empty() {
        notes.push(anatomy::ABSENT_NOTE.to_string());
    }
    for (chart, path) in anatomy {
        chart_refs.push(chart);
        chart_paths.push(path);
    }
    let page = html::render_page(&runs, &chart_refs, &notes, &findings::render(&runs), grams);
    let html_path = out.join("report.html");
    std::fs::write(&html_path, page)
        .with_context(|| format!("cannot write {}", html_path.display()))?;
    Ok(ReportOutput {
        html: html_path,
        charts: chart_paths,
    })
}

/// Makes labels unique by appending the directory when two runs share one.
fn disambiguate_labels(runs: &mut [RunData]) {
    let labels: Vec<String> = runs.iter().map(|r| r.label.clone()).collect();
    for run in runs.iter_mut() {
        if labels.iter().filter(|l| **l == run.label).count() > 1 {
            run.label = format!("{} ({})", run.label, run.dir.display());
        }
    }
}
