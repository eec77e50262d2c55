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
use crate::optim::{AdamW, AdamWConfig, GradAccumulator, LrSchedule, ScheduleKind};

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
fn tokenize(policy: &LoadedModel, ex: &SftExample, max_len: usize) -> Result<(Vec<u32>, Vec<u32>)> {
    let m = |e: hicra_model::ModelError| RlError::Model(format!("tokenizing an SFT example: {e}"));
    let prompt = policy.tokenizer.encode(&ex.prompt, false).map_err(m)?;
    let mut completion = policy.tokenizer.encode(&ex.completion, false).map_err(m)?;
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
    let params = policy.model.parameters();
    let mut optimizer = AdamW::new(params.clone(), opts.adamw)?;
    let schedule = LrSchedule {
        lr: opts.lr,
        warmup_steps: opts.warmup_steps,
        kind: ScheduleKind::Cosine,
        total_steps: opts.steps,
        min_lr_ratio: 0.1,
    };
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    let mut order: Vec<usize> = Vec::new();
    let score = ScoreOptions {
        chunk_positions: opts.chunk_positions,
        with_entropy: false,
    };
    let mut last = f64::NAN;
    for step in 0..opts.steps {
        let mut idx = Vec::with_capacity(opts.batch_size);
        while idx.len() < opts.batch_size {
            if order.is_empty() {
                order = (0..data.len()).collect();
                order.shuffle(&mut rng);
            }
            idx.push(order.pop().expect("non-empty order"));
        }
        let total: usize = idx.iter().map(|&i| data[i].1.len()).sum();
        let w = 1.0 / total.max(1) as f32;
        let mut acc = GradAccumulator::new(params.len());
        let mut loss = 0.0;
        for micro in idx.chunks(opts.micro_batch.max(1)) {
            let seqs: Vec<Sequence> = micro
                .iter()
                .map(|&i| Sequence {
                    prompt: &data[i].0,
                    response: &data[i].1,
                })
                .collect();
            let batch = build_batch(&seqs, policy.pad_token_id, policy.model.device())?;
            let (_, t) = batch.dims().map_err(|e| RlError::Model(e.to_string()))?;
            let ones: Vec<Vec<f32>> = micro.iter().map(|&i| vec![w; data[i].1.len()]).collect();
            let weights = place(
                &seqs,
                &ones.iter().map(|v| v.as_slice()).collect::<Vec<_>>(),
                t,
            );
            let out = policy
                .model
                .backward_token_loss(&batch, &score, &mut |chunk| {
                    let wt: Vec<f32> = weights
                        .iter()
                        .flat_map(|r| r[chunk.start..chunk.start + chunk.len].iter().copied())
                        .collect();
                    let wt = candle_core::Tensor::from_vec(
                        wt,
                        (weights.len(), chunk.len),
                        chunk.logprobs.device(),
                    )?;
                    (chunk.logprobs.mul(&wt)?.sum_all()?).neg()
                })
                .map_err(|e| {
                    let msg = e.to_string();
                    if msg.contains("not finite") {
                        RlError::NonFinite {
                            what: format!("SFT loss at step {step} ({msg})"),
                        }
                    } else {
                        RlError::Model(format!("SFT backward: {msg}"))
                    }
                })?;
            loss += out.loss;
            acc.add(&params, &out.grads)?;
        }
        let lr = schedule.lr_at(step);
        optimizer.step(acc.grads(), lr)?;
        last = loss;
        on_step(step + 1, loss, lr)?;
    }
    Ok(last)
}
