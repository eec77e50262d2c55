//! The evaluation loop behind `hicra eval`: K samples per problem generated in batches,
//! graded by a task's scorer, summarised the paper's way (averaged pass@1, unbiased pass@k,
//! mean response length, format rate) with one record per problem.

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::Context;
use hicra_model::{ChatMessage, FinishReason, LoadedModel, SamplingParams};
use hicra_tasks::{FormattedPrompt, Problem, Task};
use serde::Serialize;

/// Sampling and batching settings of an evaluation.
#[derive(Debug, Clone, PartialEq, Serialize)]
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
    /// Base seed; batch `b` samples with a seed derived from it and `b`.
    pub seed: u64,
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
        }
    }
}

/// The graded samples of one problem (one line of `items.jsonl`).
#[derive(Debug, Clone, PartialEq, Serialize)]
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
    /// Wall-clock seconds of generation and grading.
    pub time_s: f64,
}

/// Renders a formatted prompt for `model`: chat prompts through its chat template when it has
/// one (else their plain text), raw prompts as is. Returns the text and whether the
/// tokenizer should add its special tokens (not after a template, which writes its own).
pub fn render_prompt(
    model: &LoadedModel,
    prompt: &FormattedPrompt,
) -> anyhow::Result<(String, bool)> {
    match (prompt, &model.chat_template) {
        (FormattedPrompt::Chat(messages), Some(template)) => {
            let messages: Vec<ChatMessage> = messages
                .iter()
                .map(|m| ChatMessage::new(&m.role, &m.content))
                .collect();
            let text = template
                .render(&messages, true)
                .context("rendering the chat template")?;
            Ok((text, false))
        }
        (prompt, _) => Ok((prompt.to_plain_text(), true)),
    }
}

/// Cuts `response` at the first of `stops` (the stop string itself is dropped).
fn cut_at_stop(response: &str, stops: &[String]) -> String {
    let end = stops
        .iter()
        .filter(|s| !s.is_empty())
        .filter_map(|s| response.find(s.as_str()))
        .min()
        .unwrap_or(response.len());
    response[..end].to_string()
}

/// Generates `settings.samples` responses per problem and grades them with `task`.
/// `on_rows(done)` is called after each batch with the number of rows done so far.
pub fn evaluate(
    model: &LoadedModel,
    task: &dyn Task,
    problems: &[Problem],
    settings: &EvalSettings,
    on_rows: &mut dyn FnMut(usize),
) -> anyhow::Result<Vec<ItemRecord>> {
    anyhow::ensure!(settings.samples >= 1, "--samples must be at least 1");
    anyhow::ensure!(settings.batch_size >= 1, "--batch-size must be at least 1");
    let mut prompts = Vec::with_capacity(problems.len());
    let mut prompt_ids = Vec::with_capacity(problems.len());
    for problem in problems {
        let (text, add_special) = render_prompt(model, &task.prompt(problem))
            .with_context(|| format!("problem {}", problem.id))?;
        let ids = model
            .tokenizer
            .encode(&text, add_special)
            .with_context(|| format!("tokenising problem {}", problem.id))?;
        prompts.push(text);
        prompt_ids.push(ids);
    }
    let stops = task.stop_strings();
    let rows: Vec<usize> = (0..problems.len())
        .flat_map(|p| std::iter::repeat_n(p, settings.samples))
        .collect();
    let mut items: Vec<ItemRecord> = problems
        .iter()
        .zip(&prompts)
        .map(|(p, prompt)| ItemRecord {
            id: p.id.clone(),
            prompt: prompt.clone(),
            gold: p.gold.clone(),
            responses: Vec::new(),
            extracted: Vec::new(),
            correct: Vec::new(),
            lengths: Vec::new(),
            finish_reasons: Vec::new(),
            pass_at_1: 0.0,
        })
        .collect();
    let mut done = 0;
    for (batch_index, batch) in rows.chunks(settings.batch_size).enumerate() {
        let batch_prompts: Vec<Vec<u32>> = batch.iter().map(|&p| prompt_ids[p].clone()).collect();
        let params = SamplingParams {
            temperature: settings.temperature,
            top_p: settings.top_p,
            top_k: 0,
            max_new_tokens: settings.max_new_tokens,
            seed: settings
                .seed
                .wrapping_mul(0x9e37_79b9_7f4a_7c15)
                .wrapping_add(batch_index as u64),
            stop_token_ids: Vec::new(),
            stop_strings: stops.clone(),
        };
        let generations = model
            .generate(&batch_prompts, &params)
            .with_context(|| format!("generating batch {batch_index}"))?;
        for (&p, generation) in batch.iter().zip(generations) {
            let text = model
                .tokenizer
                .decode(&generation.token_ids, true)
                .context("decoding a response")?;
            let response = cut_at_stop(&text, &stops);
            let score = task.score(&problems[p], &response);
            let item = &mut items[p];
            item.responses.push(response);
            item.extracted.push(score.extracted);
            item.correct.push(score.correct);
            item.lengths.push(generation.token_ids.len());
            item.finish_reasons.push(generation.finish_reason);
        }
        done += batch.len();
        on_rows(done);
    }
    for item in &mut items {
        item.pass_at_1 = item.n_correct() as f64 / item.correct.len().max(1) as f64;
    }
    Ok(items)
}

/// Summarises graded items (all with the same number of samples).
pub fn summarize(
    dataset: &str,
    model: &str,
    mode: &str,
    items: &[ItemRecord],
    settings: &EvalSettings,
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
        pass_at_1: mean(items.iter().map(|i| i.pass_at_1).sum(), n),
        pass_at_k,
        mean_length: mean(lengths, responses),
        format_rate: mean(formatted, responses),
        truncated_rate: mean(truncated, responses),
        mode: mode.to_string(),
        temperature: settings.temperature,
        top_p: settings.top_p,
        max_new_tokens: settings.max_new_tokens,
        seed: settings.seed,
        time_s,
    }
}

/// Runs [`evaluate`] and [`summarize`], timing both.
pub fn evaluate_and_summarize(
    model: &LoadedModel,
    task: &dyn Task,
    problems: &[Problem],
    settings: &EvalSettings,
    names: (&str, &str, &str),
    on_rows: &mut dyn FnMut(usize),
) -> anyhow::Result<(EvalSummary, Vec<ItemRecord>)> {
    let start = Instant::now();
    let items = evaluate(model, task, problems, settings, on_rows)?;
    let (dataset, model_name, mode) = names;
    let summary = summarize(
        dataset,
        model_name,
        mode,
        &items,
        settings,
        start.elapsed().as_secs_f64(),
    );
    Ok((summary, items))
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
        let s = summarize("d", "m", "strict-boxed", &items, &settings, 0.0);
        assert_eq!((s.n, s.samples), (2, 4));
        assert!((s.pass_at_1 - (0.25 + 1.0) / 2.0).abs() < 1e-12);
        // One of four correct: pass@2 = 1 - C(3,2)/C(4,2) = 1/2; all correct: 1.
        assert!((s.pass_at_k[&2] - 0.75).abs() < 1e-12);
        assert!((s.pass_at_k[&4] - 1.0).abs() < 1e-12);
        assert_eq!(s.pass_at_k.keys().copied().collect::<Vec<_>>(), [1, 2, 4]);
        assert!((s.mean_length - 120.0 / 8.0).abs() < 1e-12);
        assert!((s.format_rate - 6.0 / 8.0).abs() < 1e-12);
    }

    #[test]
    fn responses_are_cut_at_stop_strings() {
        let stops = vec!["\nQ:".to_string()];
        assert_eq!(cut_at_stop("answer: 5\nQ: 1+1", &stops), "answer: 5");
        assert_eq!(cut_at_stop("answer: 5", &stops), "answer: 5");
    }
}
