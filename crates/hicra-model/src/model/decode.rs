//! `Model::generate`: batched, left-padded prompts with per-row positions and masks, a
//! preallocated KV cache, CPU sampling, stop conditions, and a per-token callback for streaming.
//! What generation is asked for and returns, and its parts (sampling, token picks, packed
//! weights), live in `crate::generate`.

use std::sync::{Mutex, PoisonError};

use candle_core::Tensor;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use hicra_kernels::packed::packed_linear;

use crate::error::{ModelError, Result};
use crate::generate::decode_weights::DecodeWeights;
use crate::generate::sampling::SamplerSettings;
use crate::generate::token_picks::pick_tokens;
use crate::generate::{FinishReason, Generation, PACKED_GROUP_MIN_ROWS, SamplingParams, StopCheck};
use crate::model::Model;
use crate::model::kv_cache::KvCache;
use crate::model::weights::Weights;

impl Model {
    /// Generates continuations of `prompts` (token ids, any lengths) in one batch.
    pub fn generate(
        &self,
        prompts: &[Vec<u32>],
        params: &SamplingParams,
        stop: Option<&dyn StopCheck>,
    ) -> Result<Vec<Generation>> {
        self.generate_streaming(prompts, params, stop, &mut |_, _| {})
    }

    /// As [`Model::generate`], calling `on_token(row, token)` for every sampled token.
    ///
    /// On the CPU the rows are split into one group per thread and the groups are decoded side by
    /// side, each single-threaded: small decoding matmuls lose more to thread hand-offs than they
    /// gain. Every row draws from its own random stream, so the output does not depend on the
    /// grouping.
    ///
    /// Batches of [`crate::generate::decode_weights::PACK_MIN_ROWS_F32`] rows or more on AVX-512 or AVX2
    /// CPUs, and every bf16 call (see [`Model::with_decode_precision`]), pack the projections
    /// once for the call and decode through `hicra_kernels::packed`: one copy of the weights shared
    /// by the groups.
    /// A packed call of fewer than [`PACKED_GROUP_MIN_ROWS`] rows is one group whose projections
    /// split their panels across the threads, so each step reads the weights once instead of
    /// once per group.
    pub fn generate_streaming(
        &self,
        prompts: &[Vec<u32>],
        params: &SamplingParams,
        stop: Option<&dyn StopCheck>,
        on_token: &mut (dyn FnMut(usize, u32) + Send),
    ) -> Result<Vec<Generation>> {
        validate(self, prompts, params)?;
        let w = self.inference_weights();
        let packed = match DecodeWeights::plan(self.decode_precision(), prompts.len(), &w) {
            Some(precision) => Some(DecodeWeights::pack(&w, precision)?),
            None => None,
        };
        let packed = packed.as_ref();
        let groups = row_groups(self, prompts.len(), packed.is_some());
        if groups.len() <= 1 {
            return self.generate_rows(&w, packed, prompts, 0, params, stop, on_token);
        }
        let sink = Mutex::new(on_token);
        let outputs: Vec<Result<Vec<Generation>>> = groups
            .par_iter()
            .map(|&(start, len)| {
                let mut forward = |row: usize, tok: u32| {
                    let mut f = sink.lock().unwrap_or_else(PoisonError::into_inner);
                    (*f)(row, tok)
                };
                self.generate_rows(
                    &w,
                    packed,
                    &prompts[start..start + len],
                    start,
                    params,
                    stop,
                    &mut forward,
                )
            })
            .collect();
        let mut all = Vec::with_capacity(prompts.len());
        for out in outputs {
            all.extend(out?);
        }
        Ok(all)
    }

    /// Decodes `prompts` (rows `first_row..` of the caller's batch) as one batch with the
    /// inference weights `w` (and their packed projections, if any).
    #[allow(clippy::too_many_arguments)]
    fn generate_rows(
        &self,
        w: &Weights,
        packed: Option<&DecodeWeights>,
        prompts: &[Vec<u32>],
        first_row: usize,
        params: &SamplingParams,
        stop: Option<&dyn StopCheck>,
        on_token: &mut dyn FnMut(usize, u32),
    ) -> Result<Vec<Generation>> {
        let n = prompts.len();
        let mut out: Vec<Generation> = (0..n)
            .map(|_| Generation {
                token_ids: vec![],
                logprobs: vec![],
                finish_reason: FinishReason::Length,
            })
            .collect();
        if params.max_new_tokens == 0 {
            return Ok(out);
        }
        let settings = SamplerSettings {
            temperature: params.temperature,
            top_p: params.top_p,
            top_k: params.top_k,
        };
        let mut rngs: Vec<ChaCha8Rng> = (0..n)
            .map(|r| {
                let mut rng = ChaCha8Rng::seed_from_u64(params.seed);
                rng.set_stream((first_row + r) as u64);
                rng
            })
            .collect();
        let p = prompts.iter().map(Vec::len).max().unwrap_or(0);
        let capacity = p + params.max_new_tokens;
        let mut cache = KvCache::new(self.config(), n, capacity, self.dtype(), self.device())?;

        // Prefill the left-padded prompts.
        let mut ids = Vec::with_capacity(n * p);
        let mut key_valid: Vec<Vec<bool>> = Vec::with_capacity(n);
        let mut positions = Vec::with_capacity(n);
        for prompt in prompts {
            let pad = p - prompt.len();
            ids.extend(std::iter::repeat_n(0u32, pad));
            ids.extend_from_slice(prompt);
            let mut valid = vec![false; pad];
            valid.extend(std::iter::repeat_n(true, prompt.len()));
            key_valid.push(valid);
            positions.push(
                (0..p)
                    .map(|i| i.saturating_sub(pad) as u32)
                    .collect::<Vec<_>>(),
            );
        }
        let ids = Tensor::from_vec(ids, (n, p), self.device())?;
        let (cos, sin) = self.rope_tables(&positions)?;
        let mask = self.attention_mask(&key_valid, 0, p)?;
        let hidden = self.trunk(w, packed, &ids, &cos, &sin, &mask, Some(&mut cache))?;
        let mut last = hidden.narrow(1, p - 1, 1)?.squeeze(1)?;

        // rows[i] = original index of the i-th active row.
        let mut rows: Vec<usize> = (0..n).collect();
        let mut next_pos: Vec<u32> = prompts.iter().map(|q| q.len() as u32).collect();
        loop {
            let logits = self.decode_logits(w, packed, &last)?;
            let picks = pick_tokens(&logits, &settings, &mut rngs, &rows)?;
            let mut keep = Vec::with_capacity(rows.len());
            let mut fed = Vec::with_capacity(rows.len());
            for (i, &r) in rows.iter().enumerate() {
                let (tok, lp) = picks[i];
                let g = &mut out[r];
                g.token_ids.push(tok);
                g.logprobs.push(lp);
                on_token(first_row + r, tok);
                let stopped = params.stop_token_ids.contains(&tok)
                    || stop.is_some_and(|s| s.should_stop(first_row + r, &g.token_ids));
                if stopped {
                    g.finish_reason = FinishReason::Stop;
                } else if g.token_ids.len() >= params.max_new_tokens {
                    g.finish_reason = FinishReason::Length;
                } else {
                    keep.push(i);
                    fed.push(tok);
                }
            }
            if keep.is_empty() {
                break;
            }
            if keep.len() < rows.len() {
                compact(&mut cache, &keep)?;
                rows = keep.iter().map(|&i| rows[i]).collect();
                key_valid = keep
                    .iter()
                    .map(|&i| std::mem::take(&mut key_valid[i]))
                    .collect();
            }
            let b = rows.len();
            for kv in key_valid.iter_mut() {
                kv.push(true);
            }
            let positions: Vec<Vec<u32>> = rows.iter().map(|&r| vec![next_pos[r]]).collect();
            for &r in &rows {
                next_pos[r] += 1;
            }
            let ids = Tensor::from_vec(fed, (b, 1), self.device())?;
            let (cos, sin) = self.rope_tables(&positions)?;
            let mask = self.attention_mask(&key_valid, cache.len, 1)?;
            let hidden = self.trunk(w, packed, &ids, &cos, &sin, &mask, Some(&mut cache))?;
            last = hidden.squeeze(1)?;
        }
        Ok(out)
    }
}

impl Model {
    /// Logits (N, V) of the last hidden rows (N, D), through the packed LM head if there is one.
    fn decode_logits(
        &self,
        w: &Weights,
        packed: Option<&DecodeWeights>,
        hidden: &Tensor,
    ) -> Result<Tensor> {
        match packed {
            Some(p) => Ok(packed_linear(hidden, &p.lm_head)?),
            None => self.lm_head(w, hidden),
        }
    }
}

/// Contiguous row groups `(start, len)`: one per thread on the CPU (one in all for a packed call
/// of fewer than [`PACKED_GROUP_MIN_ROWS`] rows), one in all elsewhere.
fn row_groups(model: &Model, n: usize, packed: bool) -> Vec<(usize, usize)> {
    let threads = if model.device().is_cpu() && !(packed && n < PACKED_GROUP_MIN_ROWS) {
        rayon::current_num_threads().clamp(1, n.max(1))
    } else {
        1
    };
    let (base, extra) = (n / threads, n % threads);
    let mut start = 0;
    (0..threads)
        .map(|g| {
            let len = base + usize::from(g < extra);
            let group = (start, len);
            start += len;
            group
        })
        .collect()
}

/// Keeps only the cache rows in `keep` (in order).
fn compact(cache: &mut KvCache, keep: &[usize]) -> Result<()> {
    let device = cache.k[0].device().clone();
    let idx = Tensor::from_vec(
        keep.iter().map(|&i| i as u32).collect::<Vec<_>>(),
        keep.len(),
        &device,
    )?;
    for t in cache.k.iter_mut().chain(cache.v.iter_mut()) {
        *t = t.index_select(&idx, 0)?;
    }
    Ok(())
}

fn validate(model: &Model, prompts: &[Vec<u32>], params: &SamplingParams) -> Result<()> {
    if prompts.is_empty() {
        return Err(ModelError::InvalidInput(
            "no prompts to generate from".into(),
        ));
    }
    let cfg = model.config();
    for (i, p) in prompts.iter().enumerate() {
        if p.is_empty() {
            return Err(ModelError::InvalidInput(format!(
                "prompt {i} has no tokens"
            )));
        }
        if let Some(&bad) = p.iter().find(|&&t| t as usize >= cfg.vocab_size) {
            return Err(ModelError::InvalidInput(format!(
                "prompt {i} holds token id {bad}, outside the vocabulary of {}",
                cfg.vocab_size
            )));
        }
        if p.len() + params.max_new_tokens > cfg.max_position_embeddings {
            return Err(ModelError::PromptTooLong {
                index: i,
                prompt_len: p.len(),
                max_new_tokens: params.max_new_tokens,
                context: cfg.max_position_embeddings,
            });
        }
    }
    if !(params.temperature >= 0.0 && params.temperature.is_finite()) {
        return Err(ModelError::InvalidInput(format!(
            "temperature must be >= 0, got {}",
            params.temperature
        )));
    }
    if !(params.top_p > 0.0 && params.top_p <= 1.0) {
        return Err(ModelError::InvalidInput(format!(
            "top_p must be in (0, 1], got {}",
            params.top_p
        )));
    }
    Ok(())
}
