//! The evaluation loop behind `hicra eval`: K samples per problem through the trainer's own
//! generate-and-grade path (`hicra_rl::generation`: the same prompt rendering, seeds and
//! decoding as a run's validation), graded by a task's scorer, summarised the paper's way
//! (averaged pass@1, unbiased pass@k, mean response length, format rate) with one record per
//! problem, handed out as each problem finishes so a long run can be resumed.

use std::collections::BTreeMap;

use crate::stats;
use hicra_model::{FinishReason, LoadedModel};
use hicra_rl::generation::{
    GradedSample, PassPlan, PromptSettings, SamplingSettings, generate_and_grade, render_prompts,
};
use hicra_rl::generator::LocalGenerator;
use hicra_tasks::{Problem, Task};
use serde::{Deserialize, Serialize};

/// Sampling and batching settings of an evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalSettings {
    /// Samples per problem (K).
    pub samples: usize,
    /// Sampling temperature (0 = greedy).
    pub temperature: f64,
    /// Nucleus mass (1 = off).
    pub top_p: f64,
    /// Most new tokens per response.
    pub max_new_tokens: usize,
    /// Rows (problem × sample) per generation call.
    pub batch_size: usize,
    /// Base seed; batch `b` samples with `hicra_rl::generation::batch_seed(seed, b)`.
    pub seed: u64,
    /// Render chat prompts with the model's chat template (when it has one).
    pub use_chat_template: bool,
}

impl Default for EvalSettings {
    fn default() -> Self {
        Self {
            samples: 1,
            temperature: 0.6,
            top_p: 0.95,
            max_new_tokens: 1024,
            batch_size: 8,
            seed: 0,
            use_chat_template: true,
        }
    }
}

impl EvalSettings {
    /// The generate-and-grade pass of these settings.
    pub fn plan(&self) -> PassPlan {
        PassPlan {
            samples: self.samples,
            batch_rows: self.batch_size,
            sampling: SamplingSettings {
                temperature: self.temperature,
                top_p: self.top_p,
                top_k: 0,
                max_new_tokens: self.max_new_tokens,
            },
            seed: self.seed,
            prompts: PromptSettings {
                use_chat_template: self.use_chat_template,
                system_prompt: String::new(),
            },
        }
    }
}

/// The graded samples of one problem (one line of `items.jsonl`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemRecord {
    /// The problem's id.
    pub id: String,
    /// The prompt text given to the model (chat template applied when there is one).
    pub prompt: String,
    /// The gold answer.
    pub gold: serde_json::Value,
    /// The K responses.
    pub responses: Vec<String>,
    /// The answer read from each response (`null` when none was found).
    pub extracted: Vec<Option<String>>,
    /// Whether each response is correct.
    pub correct: Vec<bool>,
    /// Generated tokens per response.
    pub lengths: Vec<usize>,
    /// Why each response ended (`stop` or `length`).
    pub finish_reasons: Vec<FinishReason>,
    /// Share of correct responses.
    #[serde(rename = "pass@1")]
    pub pass_at_1: f64,
}

impl ItemRecord {
    /// Number of correct responses.
    pub fn n_correct(&self) -> usize {
        self.correct.iter().filter(|c| **c).count()
    }

    fn empty(problem: &Problem, prompt: &str) -> Self {
        ItemRecord {
            id: problem.id.clone(),
            prompt: prompt.to_string(),
            gold: problem.gold.clone(),
            responses: Vec::new(),
            extracted: Vec::new(),
            correct: Vec::new(),
            lengths: Vec::new(),
            finish_reasons: Vec::new(),
            pass_at_1: 0.0,
        }
    }

    fn push(&mut self, sample: &GradedSample) {
        self.responses.push(sample.text.clone());
        self.extracted.push(sample.score.extracted.clone());
        self.correct.push(sample.score.correct);
        self.lengths.push(sample.generation.token_ids.len());
        self.finish_reasons.push(sample.generation.finish_reason);
        self.pass_at_1 = self.n_correct() as f64 / self.correct.len() as f64;
    }
}

/// A record of the data that was not evaluated, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SkippedItem {
    /// Where it is: `FILE:LINE` (or `FILE: row N`, `FILE: element N`).
    pub location: String,
    /// Why it was left out (malformed, or a prompt too long for the model).
    pub reason: String,
}

/// The summary written to `summary.json` and printed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvalSummary {
    /// The data set's name.
    pub dataset: String,
    /// The model (as given).
    pub model: String,
    /// Number of problems.
    pub n: usize,
    /// Samples per problem.
    pub samples: usize,
    /// Mean over problems of the share of correct samples.
    #[serde(rename = "pass@1")]
    pub pass_at_1: f64,
    /// 95 % Student-t interval of pass@1 over problems (each problem's share of correct
    /// samples is one value); `None` for a single problem.
    #[serde(rename = "pass@1_ci95")]
    pub pass_at_1_ci95: Option<[f64; 2]>,
    /// Unbiased pass@k (Chen et al.) for k = 1, 2, 4, … and K.
    #[serde(rename = "pass@k")]
    pub pass_at_k: BTreeMap<usize, f64>,
    /// Mean generated tokens per response.
    pub mean_length: f64,
    /// Share of responses with an extractable answer (a `\boxed{}` in strict mode).
    pub format_rate: f64,
    /// Share of responses cut by `max_new_tokens`.
    pub truncated_rate: f64,
    /// Answer extraction mode.
    pub mode: String,
    /// Sampling temperature.
    pub temperature: f64,
    /// Nucleus mass.
    pub top_p: f64,
    /// Most new tokens per response.
    pub max_new_tokens: usize,
    /// Base seed.
    pub seed: u64,
    /// The records of the data file that were not evaluated, with the reason (`n` counts
    /// only the evaluated problems).
    pub skipped: Vec<SkippedItem>,
    /// Wall-clock seconds of generation and grading (of this invocation, when resumed).
    pub time_s: f64,
}

/// Generates `settings.samples` responses per problem and grades them with `task`, skipping
/// the first `done` problems (already evaluated by an interrupted run: the pass restarts at
/// the batch that holds problem `done`, so the samples are those of an uninterrupted run).
/// `on_item` receives each later problem's record, in order, as soon as its last sample is
/// graded; `on_rows(rows)` the number of rows generated so far by this call.
pub fn evaluate(
    model: &LoadedModel,
    task: &dyn Task,
    problems: &[Problem],
    settings: &EvalSettings,
    done: usize,
    on_item: &mut dyn FnMut(ItemRecord) -> anyhow::Result<()>,
    on_rows: &mut dyn FnMut(usize),
) -> anyhow::Result<()> {
    anyhow::ensure!(settings.samples >= 1, "--samples must be at least 1");
    anyhow::ensure!(settings.batch_size >= 1, "--batch-size must be at least 1");
    anyhow::ensure!(
        done <= problems.len(),
        "{done} problems already done, but there are only {}",
        problems.len()
    );
    let plan = settings.plan();
    let prompts = render_prompts(model, task, problems, &plan.prompts)?;
    let mut generator = LocalGenerator::new(model);
    let first_batch = plan.batch_of_problem(done);
    let mut open: BTreeMap<usize, ItemRecord> = BTreeMap::new();
    let mut rows = 0;
    let mut failure: Option<anyhow::Error> = None;
    generate_and_grade(
        &mut generator,
        model,
        task,
        problems,
        &prompts,
        &plan,
        first_batch,
        &mut |batch| {
            for sample in batch.iter().filter(|s| s.problem >= done) {
                let p = sample.problem;
                let item = open
                    .entry(p)
                    .or_insert_with(|| ItemRecord::empty(&problems[p], &prompts[p].text));
                item.push(sample);
            }
            rows += batch.len();
            on_rows(rows);
            while let Some(entry) = open.first_entry() {
                if entry.get().correct.len() < settings.samples {
                    break;
                }
                if let Err(e) = on_item(entry.remove()) {
                    failure = Some(e);
                    return Err(hicra_rl::RlError::Invalid("writing an item failed".into()));
                }
            }
            Ok(())
        },
    )
    .map_err(|e| failure.take().unwrap_or_else(|| e.into()))?;
    Ok(())
}

/// Summarises graded items (all with the same number of samples).
pub fn summarize(
    dataset: &str,
    model: &str,
    mode: &str,
    items: &[ItemRecord],
    settings: &EvalSettings,
    skipped: &[SkippedItem],
    time_s: f64,
) -> EvalSummary {
    let n = items.len();
    let k_max = settings.samples;
    let mut ks = hicra_hier::pass_at_k::pass_k_values(k_max);
    if !ks.contains(&k_max) {
        ks.push(k_max);
    }
    let mean = |total: f64, count: usize| {
        if count == 0 {
            0.0
        } else {
            total / count as f64
        }
    };
    let pass_at_k = ks
        .into_iter()
        .map(|k| {
            let total: f64 = items
                .iter()
                .map(|item| {
                    hicra_hier::pass_at_k::pass_at_k(item.correct.len(), item.n_correct(), k)
                })
                .sum();
            (k, mean(total, n))
        })
        .collect();
    let pass_rates: Vec<f64> = items.iter().map(|i| i.pass_at_1).collect();
    let responses = items.iter().map(|i| i.responses.len()).sum::<usize>();
    let lengths = items.iter().flat_map(|i| &i.lengths).sum::<usize>() as f64;
    let formatted = items
        .iter()
        .flat_map(|i| &i.extracted)
        .filter(|e| e.is_some())
        .count() as f64;
    let truncated = items
        .iter()
        .flat_map(|i| &i.finish_reasons)
        .filter(|r| **r == FinishReason::Length)
        .count() as f64;
    EvalSummary {
        dataset: dataset.to_string(),
        model: model.to_string(),
        n,
        samples: settings.samples,
        pass_at_1: mean(pass_rates.iter().sum(), n),
        pass_at_1_ci95: stats::estimate(&pass_rates, stats::LEVEL).and_then(|e| e.ci),
        pass_at_k,
        mean_length: mean(lengths, responses),
        format_rate: mean(formatted, responses),
        truncated_rate: mean(truncated, responses),
        mode: mode.to_string(),
        temperature: settings.temperature,
        top_p: settings.top_p,
        max_new_tokens: settings.max_new_tokens,
        seed: settings.seed,
        skipped: skipped.to_vec(),
        time_s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(correct: &[bool], extracted: &[Option<&str>], lengths: &[usize]) -> ItemRecord {
        ItemRecord {
            id: "x".into(),
            prompt: String::new(),
            gold: serde_json::json!("1"),
            responses: vec![String::new(); correct.len()],
            extracted: extracted.iter().map(|e| e.map(str::to_string)).collect(),
            correct: correct.to_vec(),
            lengths: lengths.to_vec(),
            finish_reasons: vec![FinishReason::Stop; correct.len()],
            pass_at_1: correct.iter().filter(|c| **c).count() as f64 / correct.len() as f64,
        }
    }

    #[test]
    fn summary_averages_pass_rates_lengths_and_formats() {
        let settings = EvalSettings {
            samples: 4,
            ..EvalSettings::default()
        };
        let items = [
            item(
                &[true, false, false, false],
                &[Some("1"), Some("2"), None, None],
                &[10, 20, 30, 40],
            ),
            item(&[true, true, true, true], &[Some("1"); 4], &[5, 5, 5, 5]),
        ];
        let s = summarize("d", "m", "strict-boxed", &items, &settings, &[], 0.0);
        assert_eq!((s.n, s.samples), (2, 4));
        assert!((s.pass_at_1 - (0.25 + 1.0) / 2.0).abs() < 1e-12);
        // Two problems at 0.25 and 1: s = 0.75 / √2, half-width t(0.975, 1) · s / √2.
        let [lo, hi] = s.pass_at_1_ci95.expect("two problems give an interval");
        let half = 12.706_204_736 * 0.75 / 2.0;
        assert!((lo - (0.625 - half)).abs() < 1e-6 && (hi - (0.625 + half)).abs() < 1e-6);
        // One of four correct: pass@2 = 1 - C(3,2)/C(4,2) = 1/2; all correct: 1.
        assert!((s.pass_at_k[&2] - 0.75).abs() < 1e-12);
        assert!((s.pass_at_k[&4] - 1.0).abs() < 1e-12);
        assert_eq!(s.pass_at_k.keys().copied().collect::<Vec<_>>(), [1, 2, 4]);
        assert!((s.mean_length - 120.0 / 8.0).abs() < 1e-12);
        assert!((s.format_rate - 6.0 / 8.0).abs() < 1e-12);
    }
}
