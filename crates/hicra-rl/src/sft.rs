//! Supervised fine-tuning (warm start): next-token loss on completion tokens only, token-mean
//! over each batch, with the same AdamW, schedule and micro-batching as RL.

use std::path::Path;

use hicra_model::{LoadedModel, ScoreOptions};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::batch::{Sequence, build_batch, place};
use crate::error::{Result, RlError};
use crate::loss::rows_tensor;
use crate::optim::{AdamW, AdamWConfig, LrSchedule, ScheduleKind};
use crate::update::PolicyUpdater;

/// One supervised example.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SftExample {
    /// The prompt (no loss).
    pub prompt: String,
    /// The target completion (loss on its tokens and the end-of-sequence token).
    pub completion: String,
}

/// Reads a JSONL file of `{"prompt", "completion"}` objects; a malformed line is an error
/// naming the file and line.
pub fn load_sft_jsonl(path: &Path) -> Result<Vec<SftExample>> {
    let text = std::fs::read_to_string(path).map_err(|e| RlError::io(path, e))?;
    let text = text.strip_prefix('\u{FEFF}').unwrap_or(&text);
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let ex: SftExample = serde_json::from_str(line).map_err(|e| RlError::Json {
            context: format!("{} line {}", path.display(), i + 1),
            source: e,
        })?;
        out.push(ex);
    }
    if out.is_empty() {
        return Err(RlError::Task(format!("{}: no examples", path.display())));
    }
    Ok(out)
}

/// SFT settings.
#[derive(Debug, Clone, PartialEq)]
pub struct SftOptions {
    /// Optimiser steps.
    pub steps: usize,
    /// Examples per step.
    pub batch_size: usize,
    /// Sequences per forward/backward.
    pub micro_batch: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// Warm-up steps (then cosine to 10%).
    pub warmup_steps: usize,
    /// Longest sequence (prompt + completion tokens).
    pub max_len: usize,
    /// Shuffling seed.
    pub seed: u64,
    /// Positions per lm_head chunk.
    pub chunk_positions: usize,
    /// AdamW settings.
    pub adamw: AdamWConfig,
}

/// Tokenised example: prompt ids and completion ids (EOS appended, truncated to `max_len`).
/// The prompt gets the tokenizer's special tokens, as a plain-text prompt does in generation
/// ([`crate::generation`]); the completion continues it.
fn tokenize(policy: &LoadedModel, ex: &SftExample, max_len: usize) -> Result<(Vec<u32>, Vec<u32>)> {
    let err = |e| RlError::model("tokenizing an SFT example", e);
    let prompt = policy.tokenizer.encode(&ex.prompt, true).map_err(err)?;
    let mut completion = policy
        .tokenizer
        .encode(&ex.completion, false)
        .map_err(err)?;
    if let Some(&eos) = policy.eos_token_ids.first() {
        completion.push(eos);
    }
    let room = max_len.saturating_sub(prompt.len());
    if room == 0 {
        return Err(RlError::Invalid(format!(
            "an SFT prompt has {} tokens, more than sft.max_len = {max_len}",
            prompt.len()
        )));
    }
    completion.truncate(room);
    Ok((prompt, completion))
}

/// An endless shuffled stream of example indices: each epoch is a fresh permutation.
struct EpochSampler {
    rng: ChaCha8Rng,
    order: Vec<usize>,
    n: usize,
}

impl EpochSampler {
    fn new(n: usize, seed: u64) -> Self {
        EpochSampler {
            rng: ChaCha8Rng::seed_from_u64(seed),
            order: Vec::new(),
            n,
        }
    }

    fn take(&mut self, count: usize) -> Vec<usize> {
        let mut idx = Vec::with_capacity(count);
        while idx.len() < count {
            if self.order.is_empty() {
                self.order = (0..self.n).collect();
                self.order.shuffle(&mut self.rng);
            }
            idx.extend(self.order.pop());
        }
        idx
    }
}

/// One SFT step's loss over `idx`: token-mean negative log-likelihood of the completions,
/// accumulated over micro-batches, then one optimiser step. Returns the loss.
fn sft_step(
    policy: &LoadedModel,
    updater: &mut PolicyUpdater,
    data: &[(Vec<u32>, Vec<u32>)],
    idx: &[usize],
    micro_batch: usize,
) -> Result<f64> {
    let total: usize = idx.iter().map(|&i| data[i].1.len()).sum();
    let w = 1.0 / total.max(1) as f32;
    let mut loss = 0.0;
    for micro in idx.chunks(micro_batch.max(1)) {
        let seqs: Vec<Sequence> = micro
            .iter()
            .map(|&i| Sequence {
                prompt: &data[i].0,
                response: &data[i].1,
            })
            .collect();
        let batch = build_batch(&seqs, policy.pad_token_id, policy.model.device())?;
        let (_, t) = batch
            .dims()
            .map_err(|e| RlError::model("an SFT batch", e))?;
        let ones: Vec<Vec<f32>> = micro.iter().map(|&i| vec![w; data[i].1.len()]).collect();
        let weights = place(
            &seqs,
            &ones.iter().map(|v| v.as_slice()).collect::<Vec<_>>(),
            t,
        );
        let weights = rows_tensor(&weights, t, policy.model.device())?;
        loss += updater.backward(&policy.model, &batch, &mut |chunk| {
            let wt = weights.narrow(1, chunk.start, chunk.len)?;
            (chunk.logprobs.mul(&wt)?.sum_all()?).neg()
        })?;
    }
    updater.step()?;
    Ok(loss)
}

/// Trains `policy` in place; `on_step(step, loss, lr)` is called after every step.
pub fn run_sft(
    policy: &LoadedModel,
    examples: &[SftExample],
    opts: &SftOptions,
    on_step: &mut dyn FnMut(usize, f64, f64) -> Result<()>,
) -> Result<f64> {
    if examples.is_empty() {
        return Err(RlError::Invalid("no SFT examples".into()));
    }
    let data: Vec<(Vec<u32>, Vec<u32>)> = examples
        .iter()
        .map(|e| tokenize(policy, e, opts.max_len))
        .collect::<Result<_>>()?;
    let optimizer = AdamW::new(policy.model.parameters(), opts.adamw)?;
    let schedule = LrSchedule {
        lr: opts.lr,
        warmup_steps: opts.warmup_steps,
        kind: ScheduleKind::Cosine,
        total_steps: opts.steps,
        min_lr_ratio: 0.1,
    };
    let score = ScoreOptions {
        chunk_positions: opts.chunk_positions,
        with_entropy: false,
    };
    let mut updater = PolicyUpdater::new(optimizer, schedule, score);
    let mut sampler = EpochSampler::new(data.len(), opts.seed);
    let mut last = f64::NAN;
    for step in 0..opts.steps {
        let idx = sampler.take(opts.batch_size);
        let lr = updater.next_lr();
        last = sft_step(policy, &mut updater, &data, &idx, opts.micro_batch)
            .map_err(|e| e.at_step(step as u64 + 1))?;
        on_step(step + 1, last, lr)?;
    }
    Ok(last)
}
