//! Token log-probabilities and entropies straight from logits, with their backward.

use candle_core::{CpuStorage, CustomOp1, CustomOp3, DType, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::kernel::{Element, FloatKernel, rows_of, run_kernel};

/// For logits (N, V) and target ids (N) (u32): a (N, 2) tensor whose columns are the target's
/// log-probability and the entropy of the row's distribution, differentiable w.r.t. the logits.
pub fn token_logprob_entropy(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    // The targets carry no gradient, so they ride in the op itself (checked against the logits
    // when it runs).
    let ids = targets.to_dtype(DType::U32)?.to_vec1::<u32>()?;
    logits.contiguous()?.apply_op1(TokenScores { targets: ids })
}

/// Per row: (log p[target], entropy), accumulated in f64.
fn score_rows<T: Element>(logits: &[T], v: usize, targets: &[u32]) -> Vec<T> {
    let mut out = vec![T::zero(); 2 * targets.len()];
    out.par_chunks_mut(2)
        .zip(logits.par_chunks(v))
        .zip(targets.par_iter())
        .for_each_init(Vec::new, |scratch, ((o, z), &t)| {
            let (lse, mean_z) = lse_and_mean(z, scratch);
            let lp = z[t as usize].to_f64().unwrap_or(f64::NAN) - lse;
            o[0] = T::from(lp).unwrap_or(T::nan());
            o[1] = T::from(lse - mean_z).unwrap_or(T::nan());
        });
    out
}

/// log Σ exp z, and Σ p·z under p = softmax(z); `scratch` holds the exponentials.
fn lse_and_mean<T: Element>(z: &[T], scratch: &mut Vec<T>) -> (f64, f64) {
    let max = z.iter().copied().fold(T::neg_infinity(), T::max);
    scratch.clear();
    scratch.extend_from_slice(z);
    T::shifted_exps_in_place(scratch, max);
    let (mut sum, mut weighted) = (0f64, 0f64);
    for (&e, &v) in scratch.iter().zip(z) {
        let e = e.to_f64().unwrap_or(f64::NAN);
        sum += e;
        weighted += e * v.to_f64().unwrap_or(f64::NAN);
    }
    let max = max.to_f64().unwrap_or(f64::NAN);
    (max + sum.ln(), weighted / sum)
}

/// d logits = g_lp·(onehot − p) − g_H·p·(log p + H), per row.
fn score_rows_backward<T: Element>(
    logits: &[T],
    v: usize,
    targets: &[u32],
    scores: &[T],
    grads: &[T],
) -> Vec<T> {
    let mut out = vec![T::zero(); logits.len()];
    out.par_chunks_mut(v)
        .zip(logits.par_chunks(v))
        .enumerate()
        .for_each(|(r, (d, z))| {
            // log Σ exp z from the forward's log p[target] (saves a pass of exponentials).
            let t = targets[r] as usize;
            let lse = z[t] - scores[2 * r];
            let entropy = scores[2 * r + 1];
            let (g_lp, g_h) = (grads[2 * r], grads[2 * r + 1]);
            d.copy_from_slice(z);
            T::shifted_exps_in_place(d, lse);
            for (d, &zj) in d.iter_mut().zip(z) {
                let (p, logp) = (*d, zj - lse);
                *d = -g_lp * p - g_h * p * (logp + entropy);
            }
            d[t] = d[t] + g_lp;
        });
    out
}

struct TokenScores {
    targets: Vec<u32>,
}

impl TokenScores {
    /// One target per row, each inside the vocabulary.
    fn check(&self, layout: &Layout) -> Result<()> {
        let (v, _, _) = rows_of(layout)?;
        let (n, _) = layout.shape().dims2()?;
        if n != self.targets.len() {
            candle_core::bail!("token scores: {n} rows, {} targets", self.targets.len());
        }
        if let Some(&bad) = self.targets.iter().find(|&&t| t as usize >= v) {
            candle_core::bail!("token scores: target id {bad} outside a vocabulary of {v}");
        }
        Ok(())
    }
}

impl FloatKernel for TokenScores {
    fn apply<T: Element>(&self, args: &[&[T]], rows: &[usize]) -> Vec<T> {
        score_rows(args[0], rows[0], &self.targets)
    }
}

impl CustomOp1 for TokenScores {
    fn name(&self) -> &'static str {
        "fused-token-scores"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        self.check(layout)?;
        let out = run_kernel(self.name(), self, &[(storage, layout)])?;
        Ok((out, Shape::from((self.targets.len(), 2))))
    }

    fn bwd(&self, arg: &Tensor, res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        token_scores_backward(arg, &self.targets, res, grad).map(Some)
    }
}

/// The gradient of [`token_logprob_entropy`] w.r.t. the logits (N, V), from its output `scores`
/// (N, 2) and their gradient.
fn token_scores_backward(
    logits: &Tensor,
    targets: &[u32],
    scores: &Tensor,
    grad: &Tensor,
) -> Result<Tensor> {
    let backward = TokenScoresBackward {
        targets: targets.to_vec(),
    };
    logits
        .contiguous()?
        .apply_op3_no_bwd(&scores.contiguous()?, &grad.contiguous()?, &backward)
}

/// As [`token_logprob_entropy`], for the hand-written backward pass: no graph is recorded;
/// the returned [`ScoresBackward`] gives the logits' gradient from the scores' gradient.
pub fn token_scores_with_backward(
    logits: &Tensor,
    targets: &Tensor,
) -> Result<(Tensor, ScoresBackward)> {
    let logits = logits.detach().contiguous()?;
    let targets = targets.to_dtype(DType::U32)?.to_vec1::<u32>()?;
    let scores = logits.apply_op1_no_bwd(&TokenScores {
        targets: targets.clone(),
    })?;
    let backward = ScoresBackward {
        logits,
        targets,
        scores: scores.clone(),
    };
    Ok((scores, backward))
}

/// What the gradient of [`token_scores_with_backward`]'s scores needs: its logits, targets and
/// scores.
pub struct ScoresBackward {
    logits: Tensor,
    targets: Vec<u32>,
    scores: Tensor,
}

impl ScoresBackward {
    /// The logits' gradient (N, V) from the scores' gradient (N, 2).
    pub fn logits_grad(&self, grad: &Tensor) -> Result<Tensor> {
        token_scores_backward(&self.logits, &self.targets, &self.scores, grad)
    }
}

/// The gradient of [`TokenScores`] w.r.t. its logits, from (logits, scores, score grads).
struct TokenScoresBackward {
    targets: Vec<u32>,
}

impl FloatKernel for TokenScoresBackward {
    /// args: logits, scores, score grads.
    fn apply<T: Element>(&self, args: &[&[T]], rows: &[usize]) -> Vec<T> {
        score_rows_backward(args[0], rows[0], &self.targets, args[1], args[2])
    }
}

impl CustomOp3 for TokenScoresBackward {
    fn name(&self) -> &'static str {
        "fused-token-scores-backward"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let out = run_kernel(self.name(), self, &[(s1, l1), (s2, l2), (s3, l3)])?;
        Ok((out, l1.shape().clone()))
    }
}
