//! The paper's token panels from checkpoints: a step's responses (up to a cap, evenly spread
//! over the step's file) are tokenised with the checkpoint's tokenizer after their prompt,
//! scored teacher-forced, and their token entropies and NLLs averaged over planning and over
//! execution tokens, as the trainer does (token-level means over the step's tokens).
//!
//! A hicra run logs the token ids it sampled, and those are scored. From text, the token
//! sequence is the tokenizer's encoding of the logged text: a chat prompt
//! goes through the checkpoint's chat template, a text prompt is encoded as it is (verl logs
//! prompts with special tokens removed, so its rescoring conditions on that text), and a hicra
//! response that ended on a stop token gets it back (its `length` counts it).

use hicra_hier::GramSet;
use hicra_hier::gram_set::mask_from_matches;
use hicra_model::{ChatMessage, LoadOptions, LoadedModel, ScoreOptions};

use super::checkpoints::{Checkpoint, CheckpointReport, Pairing};
use super::error::AnalysisError;
use super::input::{Source, Unit};
use super::progress::Progress;
use super::records::for_each_chunk;
use super::sample::{Prompt, Sample, Split};
use super::series::{Rescored, Row};
use crate::batch::{Sequence, build_batch, gather};
use crate::generation::response_token_spans;

/// Sequences scored per forward pass.
const MICRO_BATCH: usize = 8;

/// One response as token ids, with each response token's byte span in its text.
struct Tokens {
    prompt: Vec<u32>,
    response: Vec<u32>,
    spans: Vec<(usize, usize)>,
    text: String,
}

/// Evenly spread indices: `k` of `0..n` (all when `k >= n`).
fn spread(n: usize, k: usize) -> Vec<usize> {
    if k >= n {
        return (0..n).collect();
    }
    (0..k).map(|i| i * n / k).collect()
}

/// The step's responses in the hierarchy population at the chosen positions.
fn step_samples(
    source: &Source,
    step: u64,
    population: usize,
    cap: usize,
) -> Result<Vec<Sample>, AnalysisError> {
    let wanted = spread(population, cap);
    let mut out = Vec::with_capacity(wanted.len());
    let mut index = 0usize;
    let units: Vec<&Unit> = source
        .units
        .iter()
        .filter(|u| u.split == Split::Train && u.step.is_none_or(|s| s == step))
        .collect();
    for unit in units {
        let keep =
            |s: Sample| Ok((s.split == Split::Train && s.step == step && s.trained).then_some(s));
        for_each_chunk(source, unit, &keep, &mut |records, _| {
            for sample in records.into_iter().filter_map(|r| r.outcome.ok().flatten()) {
                if wanted.binary_search(&index).is_ok() {
                    out.push(sample);
                }
                index += 1;
            }
            Ok(())
        })?;
    }
    Ok(out)
}

/// The token sequence of a response under `model`: the ids the run sampled when it logged
/// them (and they fit the model's vocabulary), else the texts tokenised again.
fn tokens(model: &LoadedModel, mut s: Sample) -> Result<Tokens, String> {
    if let Some((prompt, response)) = s.token_ids.take() {
        let vocab = model.model.config().vocab_size;
        if !prompt.is_empty()
            && prompt
                .iter()
                .chain(&response)
                .all(|&id| (id as usize) < vocab)
        {
            return logged_tokens(model, prompt, response, s);
        }
    }
    let tok = &model.tokenizer;
    let mut prompt = match &s.prompt {
        Prompt::Chat(turns) => match &model.chat_template {
            Some(template) => {
                let messages: Vec<ChatMessage> = turns
                    .iter()
                    .map(|t| ChatMessage::new(&t.role, &t.content))
                    .collect();
                let text = template
                    .render(&messages, true)
                    .map_err(|e| e.to_string())?;
                tok.encode(&text, false).map_err(|e| e.to_string())?
            }
            None => tok
                .encode(&s.prompt.display(), true)
                .map_err(|e| e.to_string())?,
        },
        Prompt::Text(t) => tok.encode(t, true).map_err(|e| e.to_string())?,
        Prompt::Missing => Vec::new(),
    };
    if prompt.is_empty() {
        // The first response token needs a context to be scored.
        prompt.push(
            model
                .eos_token_ids
                .first()
                .copied()
                .unwrap_or(model.pad_token_id),
        );
    }
    let (mut response, mut spans) = tok
        .encode_with_offsets(&s.response)
        .map_err(|e| e.to_string())?;
    if s.stopped == Some(true)
        && s.length == Some(response.len() + 1)
        && let Some(&eos) = model.eos_token_ids.first()
    {
        response.push(eos);
        spans.push((s.response.len(), s.response.len()));
    }
    Ok(Tokens {
        prompt,
        response,
        spans,
        text: s.response,
    })
}

/// A response's logged ids with each token's byte span in its text, as the trainer made them.
fn logged_tokens(
    model: &LoadedModel,
    prompt: Vec<u32>,
    response: Vec<u32>,
    s: Sample,
) -> Result<Tokens, String> {
    let spans = response_token_spans(model, &response, s.stopped == Some(true), s.response.len())
        .map_err(|e| e.to_string())?;
    Ok(Tokens {
        prompt,
        response,
        spans,
        text: s.response,
    })
}

/// Running sums over planning and execution tokens.
#[derive(Default)]
struct Sums {
    entropy: [f64; 2],
    nll: [f64; 2],
    count: [usize; 2],
}

impl Sums {
    fn panels(&self) -> [(Option<f64>, Option<f64>); 2] {
        [0, 1].map(|k| {
            let n = self.count[k];
            (n > 0)
                .then(|| (self.entropy[k] / n as f64, (self.nll[k] / n as f64).exp()))
                .unzip()
        })
    }
}

/// Scores responses with `model`; returns the panels and how many responses were scored.
fn score(
    model: &LoadedModel,
    grams: &GramSet,
    samples: Vec<Sample>,
    progress: &mut dyn Progress,
) -> Result<Sums, String> {
    let limit = model.model.config().max_position_embeddings;
    let mut sums = Sums::default();
    let all: Vec<Tokens> = samples
        .into_iter()
        .map(|s| tokens(model, s))
        .collect::<Result<_, _>>()?;
    let fitting: Vec<&Tokens> = all
        .iter()
        .filter(|t| t.prompt.len() + t.response.len() <= limit)
        .collect();
    if fitting.len() < all.len() {
        progress.note(&format!(
            "{} responses longer than the model's {limit} positions were not rescored",
            all.len() - fitting.len()
        ));
    }
    let opts = ScoreOptions {
        chunk_positions: 64,
        with_entropy: true,
    };
    for chunk in fitting.chunks(MICRO_BATCH) {
        let seqs: Vec<Sequence> = chunk
            .iter()
            .map(|t| Sequence {
                prompt: &t.prompt,
                response: &t.response,
            })
            .collect();
        let batch = build_batch(&seqs, model.pad_token_id, model.model.device())
            .map_err(|e| e.to_string())?;
        let scores = model
            .model
            .score_tokens(&batch, &opts)
            .map_err(|e| e.to_string())?;
        let logprobs = gather(&seqs, &scores.logprobs);
        let entropies = gather(&seqs, &scores.entropy);
        for (k, t) in chunk.iter().enumerate() {
            let mask = mask_from_matches(&grams.find(&t.text), &t.spans);
            for (i, &planning) in mask.iter().enumerate() {
                let side = usize::from(!planning);
                sums.entropy[side] += f64::from(entropies[k][i]);
                sums.nll[side] += -f64::from(logprobs[k][i]);
                sums.count[side] += 1;
            }
        }
        progress.advance(chunk.len() as u64);
    }
    Ok(sums)
}

/// What rescoring reads from.
pub struct Job<'a> {
    /// The run.
    pub source: &'a Source,
    /// The Strategic Grams.
    pub grams: &'a GramSet,
    /// The checkpoints found.
    pub checkpoints: &'a [Checkpoint],
    /// Where and in which dtype they are loaded.
    pub load: &'a LoadOptions,
}

/// Rescores each pair's step with its checkpoint into the training rows; a checkpoint that
/// cannot be loaded or scored is named in the report and the rest go on.
pub fn rescore_pairs(
    job: &Job<'_>,
    pairs: &[Pairing],
    rows: &mut [Row],
    report: &mut CheckpointReport,
    progress: &mut dyn Progress,
) -> Result<(), AnalysisError> {
    let (source, grams, checkpoints, load) = (job.source, job.grams, job.checkpoints, job.load);
    let cap = report.max_responses_per_step;
    let population = |rows: &[Row], step: u64| {
        rows.iter()
            .find(|r| r.step == step)
            .map_or(0, |r| r.hierarchy_n)
    };
    let total: usize = pairs
        .iter()
        .map(|p| population(rows, p.step).min(cap))
        .sum();
    progress.begin("rescoring", total as u64);
    for pair in pairs {
        let Some(checkpoint) = checkpoints.iter().find(|c| c.name == pair.checkpoint) else {
            continue;
        };
        let samples = step_samples(source, pair.step, population(rows, pair.step), cap)?;
        let n = samples.len();
        let model = match hicra_model::load_model(&checkpoint.model, load) {
            Ok(m) => m,
            Err(e) => {
                report
                    .errors
                    .push(format!("{} ({}): {e}", checkpoint.name, checkpoint.model));
                progress.advance(n as u64);
                continue;
            }
        };
        let sums = match score(&model, grams, samples, progress) {
            Ok(s) => s,
            Err(e) => {
                report.errors.push(format!(
                    "{} ({}): scoring: {e}",
                    checkpoint.name, checkpoint.model
                ));
                continue;
            }
        };
        let [(ent_p, ppl_p), (ent_e, ppl_e)] = sums.panels();
        if let Some(row) = rows.iter_mut().find(|r| r.step == pair.step) {
            row.rescored = Some(Rescored {
                checkpoint: checkpoint.name.clone(),
                checkpoint_step: checkpoint.step,
                rescored: n,
                token_entropy_planning: ent_p,
                token_entropy_execution: ent_e,
                ppl_planning: ppl_p,
                ppl_execution: ppl_e,
                relative_ppl_planning: None,
                relative_ppl_execution: None,
            });
            report.rescored.push(pair.clone());
        }
    }
    progress.end();
    report.relative_to = relative_to_first(rows);
    Ok(())
}

/// Divides each rescored perplexity by the first rescored step's (step 0's when the starting
/// model was rescored); returns that checkpoint's name and step.
fn relative_to_first(rows: &mut [Row]) -> Option<String> {
    let first = rows.iter().find_map(|r| r.rescored.as_ref()).cloned()?;
    let ratio = |v: Option<f64>, base: Option<f64>| match (v, base) {
        (Some(v), Some(b)) if b != 0.0 => Some(v / b),
        _ => None,
    };
    for r in rows.iter_mut().filter_map(|r| r.rescored.as_mut()) {
        r.relative_ppl_planning = ratio(r.ppl_planning, first.ppl_planning);
        r.relative_ppl_execution = ratio(r.ppl_execution, first.ppl_execution);
    }
    Some(format!(
        "{} (step {})",
        first.checkpoint, first.checkpoint_step
    ))
}

#[cfg(test)]
mod tests {
    use super::spread;

    #[test]
    fn spread_picks_evenly_and_all_when_few() {
        assert_eq!(spread(3, 8), [0, 1, 2]);
        assert_eq!(spread(10, 4), [0, 2, 5, 7]);
    }
}
