//! What an analysis returns (and `analysis.json` holds): per run, one row per step for the
//! training rollouts and for validation, and what was read off them.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use super::checkpoints::CheckpointReport;
use super::input::Format;
use super::movers::GramMovers;
use super::reading::Reading;

/// The metrics of one step. For a hicra run each key means what it means in the run's
/// `metrics.jsonl` (`all_equal_group_frac` is its `zero_var_group_frac`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// The step.
    pub step: u64,
    /// Responses.
    pub n: usize,
    /// Groups (samples of one prompt).
    pub groups: usize,
    /// Mean logged reward (null when the run logs none).
    pub reward_mean: Option<f64>,
    /// Share judged correct (null when nothing says whether a response is correct).
    pub accuracy: Option<f64>,
    /// Mean response length (the unit is the run's `units.response_length`).
    pub response_length_mean: f64,
    /// Planning tokens / all tokens of the hierarchy population.
    pub planning_token_frac: f64,
    /// Entropy (nats) of the Strategic-Gram occurrences of the hierarchy population.
    pub semantic_entropy: f64,
    /// Entropy (nats) of the word 3-grams following them (the control).
    pub conditional_entropy: f64,
    /// Share of groups whose rewards are all equal (no learning signal under GRPO).
    pub all_equal_group_frac: Option<f64>,
    /// Mean unbiased pass@k over groups, k = 1, 2, 4, … up to the smallest group.
    pub pass_at_k: BTreeMap<usize, f64>,
    /// Responses in the hierarchy population (hicra: those trained on; else all).
    pub hierarchy_n: usize,
    /// The paper's token panels from rescoring with a checkpoint.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub rescored: Option<Rescored>,
}

/// Token entropy and perplexity of planning vs execution tokens, from rescoring a step's
/// responses with a checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rescored {
    /// The checkpoint (as found on disk).
    pub checkpoint: String,
    /// Its step.
    pub checkpoint_step: u64,
    /// Responses rescored.
    pub rescored: usize,
    /// Mean token entropy (nats) over planning tokens.
    pub token_entropy_planning: Option<f64>,
    /// Mean token entropy (nats) over execution tokens.
    pub token_entropy_execution: Option<f64>,
    /// exp(mean NLL) over planning tokens.
    pub ppl_planning: Option<f64>,
    /// exp(mean NLL) over execution tokens.
    pub ppl_execution: Option<f64>,
    /// `ppl_planning` / its value at the first rescored step.
    pub relative_ppl_planning: Option<f64>,
    /// `ppl_execution` / its value at the first rescored step.
    pub relative_ppl_execution: Option<f64>,
}

/// The units the lengths and planning shares are counted in.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Units {
    /// Of `response_length_mean`.
    pub response_length: String,
    /// Of `planning_token_frac`.
    pub planning_token_frac: String,
}

/// A response kept for the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Example {
    /// Its step.
    pub step: u64,
    /// The prompt.
    pub prompt: String,
    /// The response.
    pub response: String,
    /// Its reward.
    pub reward: Option<f64>,
    /// Its verdict.
    pub correct: Option<bool>,
}

/// The analysis of one run.
#[derive(Debug, Clone, Serialize)]
pub struct RunAnalysis {
    /// The path given.
    pub path: PathBuf,
    /// Its format.
    pub format: Format,
    /// The Strategic Grams used.
    pub grams: String,
    /// Units of lengths and planning shares.
    pub units: Units,
    /// Where `accuracy` comes from (null when nowhere).
    pub accuracy_source: Option<String>,
    /// One row per training step.
    pub train: Vec<Row>,
    /// One row per validation step.
    pub val: Vec<Row>,
    /// The grams whose share of occurrences rose and fell most.
    pub gram_movers: Option<GramMovers>,
    /// Which phase the run looks to be in.
    pub reading: Reading,
    /// Rescoring with checkpoints, when asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoints: Option<CheckpointReport>,
    /// Records that could not be read.
    pub bad_records: usize,
    /// The first of them, `FILE:LINE: reason`.
    pub problems: Vec<String>,
    /// What the reader of the numbers should know.
    pub notes: Vec<String>,
    /// A few responses of the first and last training steps.
    #[serde(skip)]
    pub examples: Vec<Example>,
}

/// Every run analysed (`analysis.json`).
#[derive(Debug, Clone, Serialize)]
pub struct Analysis {
    /// The runs, in the order given.
    pub runs: Vec<RunAnalysis>,
}

impl RunAnalysis {
    /// The `(step, value)` points of a row field over the training (or validation) rows, by
    /// its `analysis.json` name; `pass_at_k` values as `pass_at_1`, `pass_at_2`, ….
    pub fn series(&self, val: bool, name: &str) -> Vec<(f64, f64)> {
        let rows = if val { &self.val } else { &self.train };
        rows.iter()
            .filter_map(|row| row_value(row, name).map(|v| (row.step as f64, v)))
            .filter(|(_, v)| v.is_finite())
            .collect()
    }
}

/// One named value of a row.
pub fn row_value(row: &Row, name: &str) -> Option<f64> {
    let r = row.rescored.as_ref();
    match name {
        "n" => Some(row.n as f64),
        "groups" => Some(row.groups as f64),
        "reward_mean" => row.reward_mean,
        "accuracy" => row.accuracy,
        "response_length_mean" => Some(row.response_length_mean),
        "planning_token_frac" => Some(row.planning_token_frac),
        "semantic_entropy" => Some(row.semantic_entropy),
        "conditional_entropy" => Some(row.conditional_entropy),
        "all_equal_group_frac" => row.all_equal_group_frac,
        "token_entropy_planning" => r.and_then(|r| r.token_entropy_planning),
        "token_entropy_execution" => r.and_then(|r| r.token_entropy_execution),
        "ppl_planning" => r.and_then(|r| r.ppl_planning),
        "ppl_execution" => r.and_then(|r| r.ppl_execution),
        "relative_ppl_planning" => r.and_then(|r| r.relative_ppl_planning),
        "relative_ppl_execution" => r.and_then(|r| r.relative_ppl_execution),
        other => other
            .strip_prefix("pass_at_")
            .and_then(|k| k.parse::<usize>().ok())
            .and_then(|k| row.pass_at_k.get(&k).copied()),
    }
}
