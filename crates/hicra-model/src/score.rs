//! The training path: teacher-forced log-probabilities and entropies of target tokens, computed
//! chunk by chunk over positions so full-vocabulary logits are never held for the whole batch,
//! without gradients (`score_tokens`) or with a chunked backward pass (`backward_token_loss`).

use candle_core::backprop::GradStore;
use candle_core::{D, DType, Tensor, Var};

use crate::batch::TokenBatch;
use crate::error::{ModelError, Result};
use crate::model::Model;
use crate::ops::log_softmax_last;
use crate::weights::Weights;

/// How scoring is chunked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScoreOptions {
    /// Positions per lm_head + log-softmax chunk (memory ≈ B × chunk × vocab floats).
    pub chunk_positions: usize,
    /// Whether to compute token entropies (zeros otherwise).
    pub with_entropy: bool,
}

impl Default for ScoreOptions {
    fn default() -> Self {
        ScoreOptions {
            chunk_positions: 64,
            with_entropy: true,
        }
    }
}

/// Per-position scores, `[B][T]`: position t holds log p(ids[t] | ids[<t]) and the entropy of
/// that predictive distribution; position 0, padding and a row's first real token give 0.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenScores {
    /// Log-probabilities of the given tokens.
    pub logprobs: Vec<Vec<f32>>,
    /// Entropies (nats) of the predictive distributions.
    pub entropy: Vec<Vec<f32>>,
}

/// One chunk of target positions handed to a loss function.
#[derive(Debug, Clone)]
pub struct TokenChunk {
    /// First target position of the chunk.
    pub start: usize,
    /// Number of positions.
    pub len: usize,
    /// (B, len) log-probabilities, differentiable (0 where not scored); f32 (f64 for an f64 model).
    pub logprobs: Tensor,
    /// (B, len) entropies, differentiable (0 where not scored or not requested); dtype as `logprobs`.
    pub entropy: Tensor,
}

/// Gradients of a chunked backward pass.
pub struct BackwardOutput {
    /// Gradients keyed by the parameter Vars (see [`Model::parameters`]).
    pub grads: GradStore,
    /// The total loss (sum of the chunk contributions).
    pub loss: f64,
}

/// Which target positions are scored: t > 0 with tokens t and t-1 both real.
fn scored_positions(mask_rows: &[Vec<bool>]) -> Vec<Vec<bool>> {
    mask_rows
        .iter()
        .map(|r| (0..r.len()).map(|t| t > 0 && r[t] && r[t - 1]).collect())
        .collect()
}

/// Reads the chunk losses in one transfer and sums them in chunk order; a NaN or infinite
/// chunk is an error naming its positions.
fn sum_finite_losses(chunk_losses: &[(Tensor, usize, usize)]) -> Result<f64> {
    if chunk_losses.is_empty() {
        return Ok(0.0);
    }
    let scalars: Vec<Tensor> = chunk_losses.iter().map(|(l, _, _)| l.clone()).collect();
    let values = Tensor::stack(&scalars, 0)?.to_vec1::<f64>()?;
    let mut total = 0f64;
    for (value, (_, start, len)) in values.into_iter().zip(chunk_losses) {
        if !value.is_finite() {
            return Err(ModelError::NonFinite {
                what: format!("the loss of positions {start}..{}", start + len),
                value,
            });
        }
        total += value;
    }
    Ok(total)
}

impl Model {
    /// Log-probs and entropies of `batch`'s tokens, without gradients, chunked over positions.
    pub fn score_tokens(&self, batch: &TokenBatch, opts: &ScoreOptions) -> Result<TokenScores> {
        let w = self.inference_weights();
        let (b, t) = batch.dims()?;
        let hidden = self.batch_hidden(&w, batch)?;
        let scored = scored_positions(&batch.mask_rows()?);
        let mut logprobs = vec![vec![0f32; t]; b];
        let mut entropy = vec![vec![0f32; t]; b];
        for (start, len) in chunks(t, opts.chunk_positions)? {
            let chunk =
                self.score_chunk(&w, &hidden, batch, &scored, start, len, opts.with_entropy)?;
            let lp = chunk.logprobs.to_dtype(DType::F32)?.to_vec2::<f32>()?;
            let en = chunk.entropy.to_dtype(DType::F32)?.to_vec2::<f32>()?;
            for r in 0..b {
                logprobs[r][start..start + len].copy_from_slice(&lp[r]);
                entropy[r][start..start + len].copy_from_slice(&en[r]);
            }
        }
        Ok(TokenScores { logprobs, entropy })
    }

    /// Runs the trunk once with gradients, then lm_head + log-softmax chunk by chunk; `loss_fn`
    /// returns each chunk's scalar contribution to the total loss. Returns the gradients of the
    /// total loss for every parameter Var and the loss value.
    pub fn backward_token_loss(
        &self,
        batch: &TokenBatch,
        opts: &ScoreOptions,
        loss_fn: &mut dyn FnMut(&TokenChunk) -> candle_core::Result<Tensor>,
    ) -> Result<BackwardOutput> {
        let w = self.training_weights();
        let (_, t) = batch.dims()?;
        let checkpointed = if self.activation_checkpointing() {
            Some(self.checkpointed_hidden(w, batch)?)
        } else {
            None
        };
        let hidden = match &checkpointed {
            Some(c) => c.hidden.clone(),
            None => self.batch_hidden(w, batch)?,
        };
        let hidden_var = Var::from_tensor(&hidden.detach())?;
        let scored = scored_positions(&batch.mask_rows()?);
        let mut grads: Option<GradStore> = None;
        let mut grad_hidden: Option<Tensor> = None;
        // Chunk losses stay on the device; they are read once, after the last chunk. They are
        // kept detached: a tracked loss would hold its chunk's graph (the logits and the
        // log-softmax state, B × chunk × vocabulary each) alive until the end.
        let mut chunk_losses: Vec<(Tensor, usize, usize)> = Vec::new();
        for (start, len) in chunks(t, opts.chunk_positions)? {
            let chunk = self.score_chunk(
                w,
                hidden_var.as_tensor(),
                batch,
                &scored,
                start,
                len,
                opts.with_entropy,
            )?;
            let loss = loss_fn(&chunk)?;
            if loss.elem_count() != 1 {
                return Err(ModelError::InvalidInput(format!(
                    "loss function returned shape {:?} for chunk at {start}; expected a scalar",
                    loss.dims()
                )));
            }
            let loss = loss.flatten_all()?.sum_all()?;
            chunk_losses.push((loss.detach().to_dtype(DType::F64)?, start, len));
            let mut g = loss.backward()?;
            if let Some(gh) = g.remove(hidden_var.as_tensor()) {
                grad_hidden = Some(match grad_hidden {
                    Some(acc) => (acc + gh)?,
                    None => gh,
                });
            }
            let g = self.parameter_grads(g);
            match grads.as_mut() {
                Some(all) => all.extend(g)?,
                None => grads = Some(g),
            }
        }
        let total = sum_finite_losses(&chunk_losses)?;
        if let Some(gh) = grad_hidden {
            let g = match checkpointed {
                Some(c) => {
                    drop(hidden);
                    self.checkpointed_backward(w, c, &gh)?
                }
                None => self.parameter_grads((hidden * gh)?.sum_all()?.backward()?),
            };
            match grads.as_mut() {
                Some(all) => all.extend(g)?,
                None => grads = Some(g),
            }
        }
        let grads = match grads {
            Some(g) => g,
            None => Tensor::zeros((), DType::F32, self.device())?.backward()?,
        };
        Ok(BackwardOutput { grads, loss: total })
    }

    /// Log-probs/entropies for target positions `start..start+len` from `hidden` (B, T, D).
    #[allow(clippy::too_many_arguments)]
    fn score_chunk(
        &self,
        w: &Weights,
        hidden: &Tensor,
        batch: &TokenBatch,
        scored: &[Vec<bool>],
        start: usize,
        len: usize,
        with_entropy: bool,
    ) -> Result<TokenChunk> {
        let (b, _) = batch.dims()?;
        let d = self.config().hidden_size;
        let device = self.device();
        // f32 scores, except that an f64 model keeps f64 (for gradient checks).
        let out_dtype = if self.dtype() == DType::F64 {
            DType::F64
        } else {
            DType::F32
        };
        let first = start.max(1);
        let n = start + len - first; // positions with a predecessor
        let (mut lp, mut en) = if n > 0 {
            let h = hidden.narrow(1, first - 1, n)?.reshape((b * n, d))?;
            let logits = self.score_head(w, &h)?;
            let targets = batch
                .input_ids
                .narrow(1, first, n)?
                .contiguous()?
                .reshape(b * n)?;
            let (lp, en) = if crate::fused::supported(&logits) {
                let scores = crate::fused::token_logprob_entropy(&logits, &targets)?;
                let column = |c: usize| -> candle_core::Result<Tensor> {
                    scores.narrow(1, c, 1)?.reshape((b, n))?.to_dtype(out_dtype)
                };
                let en = if with_entropy {
                    column(1)?
                } else {
                    Tensor::zeros((b, n), out_dtype, device)?
                };
                (column(0)?, en)
            } else {
                // bf16/f16 logits (CUDA) are scored in f32, like the fused CPU kernel.
                let lsm = log_softmax_last(&logits.to_dtype(out_dtype)?)?;
                let lp = lsm
                    .gather(&targets.reshape((b * n, 1))?, D::Minus1)?
                    .reshape((b, n))?
                    .to_dtype(out_dtype)?;
                let en = if with_entropy {
                    (lsm.exp()? * &lsm)?
                        .sum(D::Minus1)?
                        .neg()?
                        .reshape((b, n))?
                        .to_dtype(out_dtype)?
                } else {
                    Tensor::zeros((b, n), out_dtype, device)?
                };
                (lp, en)
            };
            let mask: Vec<f32> = scored
                .iter()
                .flat_map(|r| {
                    r[first..first + n]
                        .iter()
                        .map(|&s| if s { 1f32 } else { 0f32 })
                })
                .collect();
            let mask = Tensor::from_vec(mask, (b, n), device)?.to_dtype(out_dtype)?;
            ((lp * &mask)?, (en * mask)?)
        } else {
            let zeros = Tensor::zeros((b, len), out_dtype, device)?;
            return Ok(TokenChunk {
                start,
                len,
                logprobs: zeros.clone(),
                entropy: zeros,
            });
        };
        if first > start {
            let zero = Tensor::zeros((b, 1), out_dtype, device)?;
            lp = Tensor::cat(&[&zero, &lp], 1)?;
            en = Tensor::cat(&[&zero, &en], 1)?;
        }
        Ok(TokenChunk {
            start,
            len,
            logprobs: lp,
            entropy: en,
        })
    }
}

/// Splits `0..t` into chunks of `size` positions.
fn chunks(t: usize, size: usize) -> Result<Vec<(usize, usize)>> {
    if size == 0 {
        return Err(ModelError::InvalidInput(
            "chunk_positions must be positive".into(),
        ));
    }
    Ok((0..t).step_by(size).map(|s| (s, size.min(t - s))).collect())
}
