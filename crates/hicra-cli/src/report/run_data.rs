//! Loading a run directory for the report: `metrics.jsonl`, the label from `config.toml`,
//! and `samples/step-N.jsonl`; or a run of any format through its analysis.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use hicra_rl::analysis::RunAnalysis;
use hicra_rl::analysis::series::row_value;
use serde::Deserialize;

/// One line of `metrics.jsonl`: the step and every numeric metric on the line.
#[derive(Debug, Clone)]
pub struct MetricsLine {
    /// The training step.
    pub step: f64,
    /// Numeric metrics by name (non-numeric values are left out).
    pub values: BTreeMap<String, f64>,
}

/// One sampled response from `samples/step-N.jsonl`.
#[derive(Debug, Clone, Deserialize)]
pub struct Sample {
    /// The prompt.
    #[serde(default)]
    pub prompt: String,
    /// The response text.
    pub response: String,
    /// The reward.
    #[serde(default)]
    pub reward: Option<f64>,
    /// Whether the answer was correct.
    #[serde(default)]
    pub correct: Option<bool>,
    /// Planning spans as BYTE offsets into `response`; recomputed when absent.
    #[serde(default)]
    pub planning_spans: Option<Vec<(usize, usize)>>,
}

/// Samples of one step.
#[derive(Debug, Clone)]
pub struct StepSamples {
    /// The step.
    pub step: u64,
    /// The file they came from.
    pub path: PathBuf,
    /// The responses.
    pub samples: Vec<Sample>,
}

/// Everything the report uses from one run directory.
#[derive(Debug, Clone)]
pub struct RunData {
    /// The run directory.
    pub dir: PathBuf,
    /// The legend label.
    pub label: String,
    /// Metrics lines in file order.
    pub metrics: Vec<MetricsLine>,
    /// Sample files, sorted by step.
    pub samples: Vec<StepSamples>,
    /// The run's analysis (`hicra analyze`), when one was made.
    pub analysis: Option<RunAnalysis>,
}

impl RunData {
    /// Loads a run directory; `metrics.jsonl` is required, the rest optional.
    pub fn load(dir: &Path) -> Result<RunData> {
        if !dir.is_dir() {
            bail!("run directory {} does not exist", dir.display());
        }
        let metrics = read_metrics(&dir.join("metrics.jsonl"))?;
        let samples = read_sample_files(&dir.join("samples"))?;
        Ok(RunData {
            dir: dir.to_path_buf(),
            label: run_label(dir),
            metrics,
            samples,
            analysis: None,
        })
    }

    /// A run as its analysis gives it: one metrics line per step, under the names the
    /// trainer's `metrics.jsonl` uses (validation rows as `val_accuracy`, `val_length`,
    /// `val_…`), and the kept responses as samples.
    pub fn from_analysis(run: RunAnalysis) -> RunData {
        let mut by_step: BTreeMap<u64, BTreeMap<String, f64>> = BTreeMap::new();
        for (rows, prefix) in [(&run.train, ""), (&run.val, "val_")] {
            for row in rows {
                let values = by_step.entry(row.step).or_default();
                let pass_names: Vec<String> = row
                    .pass_at_k
                    .keys()
                    .map(|k| format!("pass_at_{k}"))
                    .collect();
                let names = ROW_METRICS
                    .iter()
                    .copied()
                    .chain(pass_names.iter().map(String::as_str));
                for name in names {
                    if let Some(v) = row_value(row, name) {
                        let logged = match (prefix, name) {
                            ("val_", "response_length_mean") => "val_length".to_string(),
                            (_, "all_equal_group_frac") => format!("{prefix}zero_var_group_frac"),
                            _ => format!("{prefix}{name}"),
                        };
                        values.insert(logged, v);
                    }
                }
            }
        }
        let metrics = by_step
            .into_iter()
            .map(|(step, values)| MetricsLine {
                step: step as f64,
                values,
            })
            .collect();
        let mut samples: Vec<StepSamples> = Vec::new();
        for e in &run.examples {
            if samples.last().is_none_or(|s| s.step != e.step) {
                samples.push(StepSamples {
                    step: e.step,
                    path: run.path.clone(),
                    samples: Vec::new(),
                });
            }
            if let Some(last) = samples.last_mut() {
                last.samples.push(Sample {
                    prompt: e.prompt.clone(),
                    response: e.response.clone(),
                    reward: e.reward,
                    correct: e.correct,
                    planning_spans: None,
                });
            }
        }
        let label = analysis_label(&run);
        RunData {
            dir: run.path.clone(),
            label,
            metrics,
            samples,
            analysis: Some(run),
        }
    }

    /// The `(step, value)` points of a metric, in step order, finite values only.
    pub fn series(&self, name: &str) -> Vec<(f64, f64)> {
        let mut points: Vec<(f64, f64)> = self
            .metrics
            .iter()
            .filter_map(|line| line.values.get(name).map(|&v| (line.step, v)))
            .filter(|(_, v)| v.is_finite())
            .collect();
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        points
    }
}

/// The row values an analysed run is drawn from (besides `pass_at_k`).
const ROW_METRICS: [&str; 13] = [
    "reward_mean",
    "accuracy",
    "response_length_mean",
    "planning_token_frac",
    "semantic_entropy",
    "conditional_entropy",
    "all_equal_group_frac",
    "token_entropy_planning",
    "token_entropy_execution",
    "ppl_planning",
    "ppl_execution",
    "relative_ppl_planning",
    "relative_ppl_execution",
];

/// The legend label of an analysed run: a hicra run's own label, else the path's last
/// component and the format.
fn analysis_label(run: &RunAnalysis) -> String {
    if run.path.join("config.toml").is_file() {
        return run_label(&run.path);
    }
    let name = run
        .path
        .canonicalize()
        .unwrap_or_else(|_| run.path.clone())
        .file_name()
        .map_or_else(
            || run.path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
    format!("{name} ({})", run.format.name())
}

/// Reads `metrics.jsonl`; a missing file or a line that is not a JSON object with a
/// numeric `step` is an error naming the file and line, except a last line cut short (a run
/// killed while writing it, or still writing): that one is skipped with a warning.
pub fn read_metrics(path: &Path) -> Result<Vec<MetricsLine>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read metrics file {}", path.display()))?;
    let mut lines = Vec::new();
    let count = text.lines().count();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at = || format!("{}:{}", path.display(), index + 1);
        let cut_short = index + 1 == count && !text.ends_with('\n');
        let value: serde_json::Value = match serde_json::from_str(line) {
            Ok(value) => value,
            Err(_) if cut_short => {
                eprintln!("warning: {}: skipped the last line, cut short", at());
                continue;
            }
            Err(e) => {
                return Err(e).with_context(|| format!("{}: malformed JSON metrics line", at()));
            }
        };
        let Some(object) = value.as_object() else {
            bail!("{}: metrics line is not a JSON object", at());
        };
        let Some(step) = object.get("step").and_then(serde_json::Value::as_f64) else {
            bail!("{}: metrics line has no numeric \"step\"", at());
        };
        let values = object
            .iter()
            .filter_map(|(k, v)| v.as_f64().map(|v| (k.clone(), v)))
            .collect();
        lines.push(MetricsLine { step, values });
    }
    Ok(lines)
}

/// Reads every `step-N.jsonl` in `dir` (none when the folder is absent).
pub fn read_sample_files(dir: &Path) -> Result<Vec<StepSamples>> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut files = Vec::new();
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))?;
    for entry in entries {
        let path = entry
            .with_context(|| format!("cannot list {}", dir.display()))?
            .path();
        let step = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix("step-"))
            .and_then(|n| n.strip_suffix(".jsonl"))
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(step) = step {
            files.push((step, path));
        }
    }
    files.sort();
    files
        .into_iter()
        .map(|(step, path)| {
            let samples = read_samples(&path)?;
            Ok(StepSamples {
                step,
                path,
                samples,
            })
        })
        .collect()
}

fn read_samples(path: &Path) -> Result<Vec<Sample>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read samples file {}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(index, line)| {
            serde_json::from_str(line)
                .with_context(|| format!("{}:{}: malformed sample line", path.display(), index + 1))
        })
        .collect()
}

/// The legend label: `method seed N` from `config.toml` when it names them, else the
/// directory name. The method is a `method` key at any depth, else the trainer's
/// `algorithm.hicra.variant` (`none` → the advantage estimator, `paper` → `hicra`); the seed
/// is `trainer.seed`, else a `seed` key at any depth (shallowest first).
pub fn run_label(dir: &Path) -> String {
    let name = dir
        .canonicalize()
        .unwrap_or_else(|_| dir.to_path_buf())
        .file_name()
        .map_or_else(
            || dir.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
    let Ok(text) = std::fs::read_to_string(dir.join("config.toml")) else {
        return name;
    };
    let Ok(config) = text.parse::<toml::Table>() else {
        return name;
    };
    let method = find_key(&config, "method")
        .and_then(|v| v.as_str().map(str::to_string))
        .or_else(|| trainer_method(&config));
    let seed = lookup(&config, &["trainer", "seed"])
        .or_else(|| find_key(&config, "seed"))
        .and_then(toml::Value::as_integer);
    match (method, seed) {
        (Some(method), Some(seed)) => format!("{method} seed {seed}"),
        (Some(method), None) => method,
        (None, Some(seed)) => format!("{name} seed {seed}"),
        (None, None) => name,
    }
}

/// The method name `hicra compare` uses, from a trainer config's algorithm section.
fn trainer_method(config: &toml::Table) -> Option<String> {
    let variant = lookup(config, &["algorithm", "hicra", "variant"])?.as_str()?;
    Some(match variant {
        "none" => lookup(config, &["algorithm", "advantage"])
            .and_then(toml::Value::as_str)
            .unwrap_or("grpo")
            .to_string(),
        "paper" => "hicra".to_string(),
        other => other.to_string(),
    })
}

/// The value at a dotted path of nested tables.
fn lookup<'a>(table: &'a toml::Table, path: &[&str]) -> Option<&'a toml::Value> {
    let (last, parents) = path.split_last()?;
    let mut current = table;
    for key in parents {
        current = current.get(*key)?.as_table()?;
    }
    current.get(*last)
}

/// Breadth-first search for a key in nested tables.
fn find_key<'a>(table: &'a toml::Table, key: &str) -> Option<&'a toml::Value> {
    let mut level = vec![table];
    while !level.is_empty() {
        if let Some(v) = level.iter().find_map(|t| t.get(key)) {
            return Some(v);
        }
        level = level
            .iter()
            .flat_map(|t| t.values().filter_map(toml::Value::as_table))
            .collect();
    }
    None
}
