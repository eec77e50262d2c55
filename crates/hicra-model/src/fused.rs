//! Fused CPU kernels *with* a backward pass, for the training path: RMSNorm, rotary embedding,
//! the SwiGLU gate, softmax over the last dimension, and token log-probabilities plus entropies
//! straight from logits. candle's own fused kernels have no backward (they silently drop
//! gradients); composing these from basic ops keeps five to eight full-size intermediates per
//! call alive for the backward pass. Each kernel here keeps only its input and output, and runs
//! rows in parallel.
//!
//! The kernels cover contiguous f32 and f64 tensors on the CPU; callers fall back to the
//! compositions in [`crate::ops`] elsewhere.

use candle_core::{
    CpuStorage, CustomOp1, CustomOp2, CustomOp3, D, DType, Layout, Result, Shape, Tensor,
};
use num_traits::Float;
use rayon::prelude::*;

/// Whether the fused kernels handle `t` (CPU, f32 or f64).
pub fn supported(t: &Tensor) -> bool {
    t.device().is_cpu() && matches!(t.dtype(), DType::F32 | DType::F64)
}

/// Softmax over the last dimension, differentiable.
pub fn softmax_last(x: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op1(SoftmaxLast)
}

/// Softmax over the last dimension of `scores + mask`, for attention scores (B, G, R, S) and an
/// additive mask (B, 1, T, S) shared by the heads; differentiable w.r.t. the scores only. The
/// scores are (B, H, T, S), or grouped-query (B, KV, rep·T, S): R rows per group, R a multiple
/// of T, row `i` of a group being query `i % T`. Adding the mask inside the kernel keeps
/// candle's backward from building a full-size gradient for the constant mask (it does for any
/// constant operand, and never frees it) and from holding the masked scores for the backward.
pub fn masked_softmax(scores: &Tensor, mask: &Tensor) -> Result<Tensor> {
    let (b, g, r, s) = scores.dims4()?;
    let t = mask.dim(2).unwrap_or(0);
    if mask.dims() != [b, 1, t, s] || t == 0 || r % t != 0 {
        candle_core::bail!(
            "masked softmax: mask {:?} for scores {:?}",
            mask.dims(),
            scores.dims()
        );
    }
    scores.contiguous()?.apply_op2(
        &mask.contiguous()?,
        MaskedSoftmax {
            rows_per_batch: g * r,
            queries: t,
        },
    )
}

/// For logits (N, V) and target ids (N) (u32): a (N, 2) tensor whose columns are the target's
/// log-probability and the entropy of the row's distribution, differentiable w.r.t. the logits.
pub fn token_logprob_entropy(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    // The targets carry no gradient, so they ride in the op itself (checked against the logits
    // when it runs).
    let ids = targets.to_dtype(DType::U32)?.to_vec1::<u32>()?;
    logits.contiguous()?.apply_op1(TokenScores { targets: ids })
}

/// RMSNorm over the last dimension, `x / sqrt(mean(x²) + eps) * weight`, differentiable w.r.t.
/// both `x` and `weight`.
pub fn rms_norm(x: &Tensor, weight: &Tensor, eps: f64) -> Result<Tensor> {
    let d = x.dim(D::Minus1)?;
    if weight.dims1()? != d {
        candle_core::bail!("rms-norm: weight of {:?} for rows of {d}", weight.dims());
    }
    x.contiguous()?
        .apply_op2(&weight.contiguous()?, RmsNorm { eps })
}

/// Rotary embedding ("rotate half" layout) of `x` (B, T, H, hd), with `cos`/`sin` tables
/// (B, T, hd/2): differentiable w.r.t. `x` (the tables are constants).
pub fn rope_bthd(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    let (b, t, _, hd) = x.dims4()?;
    if cos.dims() != [b, t, hd / 2] || sin.dims() != [b, t, hd / 2] || hd % 2 != 0 {
        candle_core::bail!(
            "rope: tables {:?}/{:?} for input {:?}",
            cos.dims(),
            sin.dims(),
            x.dims()
        );
    }
    x.contiguous()?.apply_op3(
        &cos.contiguous()?,
        &sin.contiguous()?,
        Rope { inverse: false },
    )
}

/// The SwiGLU gate `silu(gate) ⊙ up` (same shapes), differentiable w.r.t. both.
pub fn swiglu(gate: &Tensor, up: &Tensor) -> Result<Tensor> {
    if gate.shape() != up.shape() {
        candle_core::bail!("swiglu: gate {:?} and up {:?}", gate.dims(), up.dims());
    }
    gate.contiguous()?.apply_op2(&up.contiguous()?, SwiGlu)
}

/// Rows of a contiguous layout: (row length, row slice range).
fn rows_of(layout: &Layout) -> Result<(usize, usize, usize)> {
    let (start, end) = layout
        .contiguous_offsets()
        .ok_or_else(|| candle_core::Error::Msg("fused kernel: contiguous input expected".into()))?;
    let len = layout.shape().dims().last().copied().unwrap_or(1).max(1);
    Ok((len, start, end))
}

/// The kernels' element types, f32 and f64, with the exponentials they take in bulk: 16 at a
/// time in f32 where the CPU has AVX-512, 8 with AVX2 ([`crate::vexp`]), one at a time in f64.
trait Element: Float + Send + Sync {
    /// `v[i] = exp(v[i] - shift)` in place.
    fn shifted_exps_in_place(v: &mut [Self], shift: Self);

    /// σ(g) for every `g` into `s`, as 1 / (1 + e^(−g)).
    fn sigmoids(g: &[Self], s: &mut [Self]) {
        for (s, &g) in s.iter_mut().zip(g) {
            *s = -g;
        }
        Self::shifted_exps_in_place(s, Self::zero());
        for s in s.iter_mut() {
            *s = (Self::one() + *s).recip();
        }
    }
}

impl Element for f32 {
    fn shifted_exps_in_place(v: &mut [f32], shift: f32) {
        crate::vexp::shifted_exps_in_place(v, shift);
    }
}

impl Element for f64 {
    fn shifted_exps_in_place(v: &mut [f64], shift: f64) {
        v.iter_mut().for_each(|x| *x = (*x - shift).exp());
    }

    fn sigmoids(g: &[f64], s: &mut [f64]) {
        for (s, &g) in s.iter_mut().zip(g) {
            *s = (1.0 + (-g).exp()).recip();
        }
    }
}

/// A kernel over the contiguous slices of its operands, for either float element type.
trait FloatKernel {
    /// `args`: the operands' elements; `rows`: the length of each operand's last dimension.
    fn apply<T: Element>(&self, args: &[&[T]], rows: &[usize]) -> Vec<T>;
}

/// Runs `kernel` on contiguous CPU operands that share one dtype, f32 or f64.
fn run_kernel<K: FloatKernel>(
    name: &str,
    kernel: &K,
    operands: &[(&CpuStorage, &Layout)],
) -> Result<CpuStorage> {
    let mut rows = Vec::with_capacity(operands.len());
    let mut ranges = Vec::with_capacity(operands.len());
    for (_, layout) in operands {
        let (len, start, end) = rows_of(layout)?;
        rows.push(len);
        ranges.push(start..end);
    }
    let f32s: Option<Vec<&[f32]>> = operands
        .iter()
        .zip(&ranges)
        .map(|((s, _), r)| match s {
            CpuStorage::F32(v) => Some(&v[r.clone()]),
            _ => None,
        })
        .collect();
    if let Some(args) = f32s {
        return Ok(CpuStorage::F32(kernel.apply(&args, &rows)));
    }
    let f64s: Option<Vec<&[f64]>> = operands
        .iter()
        .zip(&ranges)
        .map(|((s, _), r)| match s {
            CpuStorage::F64(v) => Some(&v[r.clone()]),
            _ => None,
        })
        .collect();
    match f64s {
        Some(args) => Ok(CpuStorage::F64(kernel.apply(&args, &rows))),
        None => candle_core::bail!("{name}: operands of one dtype, f32 or f64, expected"),
    }
}

fn softmax_rows<T: Element>(src: &[T], len: usize) -> Vec<T> {
    let mut out = vec![T::zero(); src.len()];
    out.par_chunks_mut(len)
        .zip(src.par_chunks(len))
        .for_each(|(o, x)| {
            let max = x.iter().copied().fold(T::neg_infinity(), T::max);
            o.copy_from_slice(x);
            T::shifted_exps_in_place(o, max);
            let sum = o.iter().fold(T::zero(), |acc, &v| acc + v);
            let inv = sum.recip();
            o.iter_mut().for_each(|v| *v = *v * inv);
        });
    out
}

struct SoftmaxLast;

impl FloatKernel for SoftmaxLast {
    fn apply<T: Element>(&self, args: &[&[T]], rows: &[usize]) -> Vec<T> {
        softmax_rows(args[0], rows[0])
    }
}

impl CustomOp1 for SoftmaxLast {
    fn name(&self) -> &'static str {
        "fused-softmax"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let out = run_kernel(self.name(), self, &[(storage, layout)])?;
        Ok((out, layout.shape().clone()))
    }

    fn bwd(&self, _arg: &Tensor, res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        softmax_backward(res, grad).map(Some)
    }
}

/// The softmax gradient dx = y ⊙ (g − Σ g ⊙ y) per row, from the output `y` and its gradient.
pub(crate) fn softmax_backward(y: &Tensor, grad: &Tensor) -> Result<Tensor> {
    y.contiguous()?
        .apply_op2_no_bwd(&grad.contiguous()?, &SoftmaxBackward)
}

/// One pass per row for [`softmax_backward`] (instead of four full-size elementwise ops).
struct SoftmaxBackward;

impl FloatKernel for SoftmaxBackward {
    /// args: y, g.
    fn apply<T: Element>(&self, args: &[&[T]], rows: &[usize]) -> Vec<T> {
        let (y, g, len) = (args[0], args[1], rows[0]);
        let mut out = vec![T::zero(); y.len()];
        out.par_chunks_mut(len)
            .zip(y.par_chunks(len).zip(g.par_chunks(len)))
            .for_each(|(d, (y, g))| {
                let dot = y.iter().zip(g).fold(T::zero(), |acc, (&a, &b)| acc + a * b);
                for ((d, &y), &g) in d.iter_mut().zip(y).zip(g) {
                    *d = y * (g - dot);
                }
            });
        out
    }
}

impl CustomOp2 for SoftmaxBackward {
    fn name(&self) -> &'static str {
        "fused-softmax-backward"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        if l1.shape() != l2.shape() {
            candle_core::bail!("softmax backward: {:?} and {:?}", l1.dims(), l2.dims());
        }
        let out = run_kernel(self.name(), self, &[(s1, l1), (s2, l2)])?;
        Ok((out, l1.shape().clone()))
    }
}

/// [`masked_softmax`]'s op: score row `r` takes mask row `(r / rows_per_batch)·T + r % T` of
/// (B, 1, T, S).
struct MaskedSoftmax {
    /// Score rows per batch row (G·R).
    rows_per_batch: usize,
    /// Queries T.
    queries: usize,
}

impl FloatKernel for MaskedSoftmax {
    /// args: scores, mask.
    fn apply<T: Element>(&self, args: &[&[T]], rows: &[usize]) -> Vec<T> {
        let (scores, mask, len) = (args[0], args[1], rows[0]);
        let (per_batch, t) = (self.rows_per_batch, self.queries);
        let mut out = vec![T::zero(); scores.len()];
        out.par_chunks_mut(len)
            .zip(scores.par_chunks(len))
            .enumerate()
            .for_each(|(r, (o, x))| {
                let m = (r / per_batch) * t + r % t;
                let m = &mask[m * len..(m + 1) * len];
                for ((o, &v), &mv) in o.iter_mut().zip(x).zip(m) {
                    *o = v + mv;
                }
                let max = o.iter().copied().fold(T::neg_infinity(), T::max);
                T::shifted_exps_in_place(o, max);
                let sum = o.iter().fold(T::zero(), |acc, &v| acc + v);
                let inv = sum.recip();
                o.iter_mut().for_each(|v| *v = *v * inv);
            });
        out
    }
}

impl CustomOp2 for MaskedSoftmax {
    fn name(&self) -> &'static str {
        "fused-masked-softmax"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let out = run_kernel(self.name(), self, &[(s1, l1), (s2, l2)])?;
        Ok((out, l1.shape().clone()))
    }

    /// As [`SoftmaxLast`]'s for the scores; the mask is a constant and gets no gradient.
    fn bwd(
        &self,
        _scores: &Tensor,
        _mask: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        Ok((Some(softmax_backward(res, grad)?), None))
    }
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
pub(crate) fn token_scores_with_backward(
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
pub(crate) struct ScoresBackward {
    logits: Tensor,
    targets: Vec<u32>,
    scores: Tensor,
}

impl ScoresBackward {
    /// The logits' gradient (N, V) from the scores' gradient (N, 2).
    pub(crate) fn logits_grad(&self, grad: &Tensor) -> Result<Tensor> {
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

#[derive(Clone, Copy)]
struct RmsNorm {
    eps: f64,
}

/// `1 / sqrt(mean(x²) + eps)` of one row, accumulated in f64.
fn inv_rms<T: Float>(x: &[T], eps: f64) -> T {
    let ms = x
        .iter()
        .map(|v| {
            let v = v.to_f64().unwrap_or(f64::NAN);
            v * v
        })
        .sum::<f64>()
        / x.len() as f64;
    T::from(1.0 / (ms + eps).sqrt()).unwrap_or(T::nan())
}

fn rms_norm_rows<T: Float + Send + Sync>(x: &[T], w: &[T], eps: f64) -> Vec<T> {
    let d = w.len();
    let mut out = vec![T::zero(); x.len()];
    out.par_chunks_mut(d)
        .zip(x.par_chunks(d))
        .for_each(|(o, x)| {
            let inv = inv_rms(x, eps);
            for ((o, &x), &w) in o.iter_mut().zip(x).zip(w) {
                *o = x * inv * w;
            }
        });
    out
}

/// dx (rows) followed by dw (one more row): with x̂ = x·inv and u = g ⊙ w,
/// dx = inv · (u − x̂ · mean(u ⊙ x̂)), dw = Σ_rows g ⊙ x̂.
fn rms_norm_backward_rows<T: Float + Send + Sync>(x: &[T], w: &[T], g: &[T], eps: f64) -> Vec<T> {
    let d = w.len();
    let rows = x.len() / d;
    let mut out = vec![T::zero(); x.len() + d];
    let (dx, dw) = out.split_at_mut(rows * d);
    // Row blocks in parallel, each with its own partial dw.
    let block = rows
        .div_ceil(rayon::current_num_threads().max(1) * 4)
        .max(1);
    let partials: Vec<Vec<T>> = dx
        .par_chunks_mut(block * d)
        .zip(x.par_chunks(block * d))
        .zip(g.par_chunks(block * d))
        .map(|((dx, x), g)| {
            let mut dw = vec![T::zero(); d];
            for ((dx, x), g) in dx.chunks_mut(d).zip(x.chunks(d)).zip(g.chunks(d)) {
                let inv = inv_rms(x, eps);
                let mut dot = 0f64;
                for ((&x, &g), &w) in x.iter().zip(g).zip(w) {
                    dot += ((g * w) * (x * inv)).to_f64().unwrap_or(f64::NAN);
                }
                let mean = T::from(dot / d as f64).unwrap_or(T::nan());
                for (j, dx) in dx.iter_mut().enumerate() {
                    let xhat = x[j] * inv;
                    *dx = inv * (g[j] * w[j] - xhat * mean);
                    dw[j] = dw[j] + g[j] * xhat;
                }
            }
            dw
        })
        .collect();
    for p in partials {
        for (a, b) in dw.iter_mut().zip(p) {
            *a = *a + b;
        }
    }
    out
}

impl FloatKernel for RmsNorm {
    /// args: x, weight.
    fn apply<T: Element>(&self, args: &[&[T]], _rows: &[usize]) -> Vec<T> {
        rms_norm_rows(args[0], args[1], self.eps)
    }
}

impl CustomOp2 for RmsNorm {
    fn name(&self) -> &'static str {
        "fused-rms-norm"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let out = run_kernel(self.name(), self, &[(s1, l1), (s2, l2)])?;
        Ok((out, l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (dx, dw) = rms_norm_backward(x, w, grad, self.eps)?;
        Ok((Some(dx), Some(dw)))
    }
}

/// The gradients (dx, d weight) of [`rms_norm`] at `x`, from its output gradient `grad`.
pub(crate) fn rms_norm_backward(
    x: &Tensor,
    w: &Tensor,
    grad: &Tensor,
    eps: f64,
) -> Result<(Tensor, Tensor)> {
    let d = w.dim(0)?;
    let rows = x.elem_count() / d.max(1);
    let both = x.contiguous()?.apply_op3_no_bwd(
        &w.contiguous()?,
        &grad.contiguous()?,
        &RmsNormBackward(RmsNorm { eps }),
    )?;
    let dx = both.narrow(0, 0, rows * d)?.reshape(x.shape())?;
    let dw = both.narrow(0, rows * d, d)?;
    Ok((dx, dw))
}

/// The gradients of [`RmsNorm`], from (x, weight, output grad), packed as a flat vector.
struct RmsNormBackward(RmsNorm);

impl FloatKernel for RmsNormBackward {
    /// args: x, weight, output grad.
    fn apply<T: Element>(&self, args: &[&[T]], _rows: &[usize]) -> Vec<T> {
        rms_norm_backward_rows(args[0], args[1], args[2], self.0.eps)
    }
}

impl CustomOp3 for RmsNormBackward {
    fn name(&self) -> &'static str {
        "fused-rms-norm-backward"
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
        Ok((
            out,
            Shape::from(l1.shape().elem_count() + l2.shape().elem_count()),
        ))
    }
}

/// Rotates every head of every position: `x` holds positions of `heads` × 2·half values, the
/// tables one row of `half` per position. `sign` = -1 applies the inverse rotation (backward).
fn rope_rows<T: Float + Send + Sync>(
    x: &[T],
    cos: &[T],
    sin: &[T],
    half: usize,
    sign: T,
) -> Vec<T> {
    let per_position = x.len() / (cos.len() / half).max(1);
    let mut out = vec![T::zero(); x.len()];
    out.par_chunks_mut(per_position)
        .zip(x.par_chunks(per_position))
        .zip(cos.par_chunks(half).zip(sin.par_chunks(half)))
        .for_each(|((o, x), (c, s))| {
            for (o, x) in o.chunks_mut(2 * half).zip(x.chunks(2 * half)) {
                let (x1, x2) = x.split_at(half);
                let (o1, o2) = o.split_at_mut(half);
                for i in 0..half {
                    let sn = sign * s[i];
                    o1[i] = x1[i] * c[i] - x2[i] * sn;
                    o2[i] = x2[i] * c[i] + x1[i] * sn;
                }
            }
        });
    out
}

/// Rotary embedding; `inverse` rotates backwards (the gradient).
#[derive(Clone, Copy)]
struct Rope {
    inverse: bool,
}

impl FloatKernel for Rope {
    /// args: x, cos, sin (rows of hd/2).
    fn apply<T: Element>(&self, args: &[&[T]], rows: &[usize]) -> Vec<T> {
        let sign = if self.inverse { -T::one() } else { T::one() };
        rope_rows(args[0], args[1], args[2], rows[1], sign)
    }
}

impl CustomOp3 for Rope {
    fn name(&self) -> &'static str {
        if self.inverse {
            "fused-rope-inverse"
        } else {
            "fused-rope"
        }
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

    /// The rotation is orthogonal: its gradient is the inverse rotation of the output grad.
    fn bwd(
        &self,
        _x: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let inverse = Rope {
            inverse: !self.inverse,
        };
        let dx = grad.contiguous()?.apply_op3_no_bwd(cos, sin, &inverse)?;
        Ok((Some(dx), None, None))
    }
}

/// The gradient of [`rope_bthd`] w.r.t. its input, from its output gradient (B, T, H, hd): the
/// inverse rotation.
pub(crate) fn rope_bthd_backward(grad: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    grad.contiguous()?.apply_op3_no_bwd(
        &cos.contiguous()?,
        &sin.contiguous()?,
        &Rope { inverse: true },
    )
}

/// Elements per parallel block of the elementwise kernels.
const BLOCK: usize = 1 << 14;

/// g·σ(g)·u, with the sigmoids of each block computed into the output first.
fn swiglu_values<T: Element>(gate: &[T], up: &[T]) -> Vec<T> {
    let mut out = vec![T::zero(); gate.len()];
    out.par_chunks_mut(BLOCK)
        .zip(gate.par_chunks(BLOCK).zip(up.par_chunks(BLOCK)))
        .for_each(|(o, (g, u))| {
            T::sigmoids(g, o);
            for ((o, &g), &u) in o.iter_mut().zip(g).zip(u) {
                *o = g * *o * u;
            }
        });
    out
}

/// d gate (first half) and d up (second half): with s = σ(g),
/// d gate = δ·u·s·(1 + g·(1 − s)), d up = δ·g·s. The sigmoids of each block are computed into
/// the gate gradient's block first.
fn swiglu_backward_values<T: Element>(gate: &[T], up: &[T], grad: &[T]) -> Vec<T> {
    let n = gate.len();
    let mut out = vec![T::zero(); 2 * n];
    let (dg, du) = out.split_at_mut(n);
    dg.par_chunks_mut(BLOCK)
        .zip(du.par_chunks_mut(BLOCK))
        .zip(gate.par_chunks(BLOCK).zip(up.par_chunks(BLOCK)))
        .zip(grad.par_chunks(BLOCK))
        .for_each(|(((dg, du), (g, u)), d)| {
            T::sigmoids(g, dg);
            for i in 0..g.len() {
                let s = dg[i];
                dg[i] = d[i] * u[i] * s * (T::one() + g[i] * (T::one() - s));
                du[i] = d[i] * g[i] * s;
            }
        });
    out
}

struct SwiGlu;

impl FloatKernel for SwiGlu {
    /// args: gate, up.
    fn apply<T: Element>(&self, args: &[&[T]], _rows: &[usize]) -> Vec<T> {
        swiglu_values(args[0], args[1])
    }
}

impl CustomOp2 for SwiGlu {
    fn name(&self) -> &'static str {
        "fused-swiglu"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let out = run_kernel(self.name(), self, &[(s1, l1), (s2, l2)])?;
        Ok((out, l1.shape().clone()))
    }

    fn bwd(
        &self,
        gate: &Tensor,
        up: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (dg, du) = swiglu_backward(gate, up, grad)?;
        Ok((Some(dg), Some(du)))
    }
}

/// The gradients (d gate, d up) of [`swiglu`], from its output gradient `grad`.
pub(crate) fn swiglu_backward(
    gate: &Tensor,
    up: &Tensor,
    grad: &Tensor,
) -> Result<(Tensor, Tensor)> {
    let n = gate.elem_count();
    let both = gate.contiguous()?.apply_op3_no_bwd(
        &up.contiguous()?,
        &grad.contiguous()?,
        &SwiGluBackward,
    )?;
    let dg = both.narrow(0, 0, n)?.reshape(gate.shape())?;
    let du = both.narrow(0, n, n)?.reshape(up.shape())?;
    Ok((dg, du))
}

/// The gradients of [`SwiGlu`] from (gate, up, output grad), packed as one flat vector.
struct SwiGluBackward;

impl FloatKernel for SwiGluBackward {
    /// args: gate, up, output grad.
    fn apply<T: Element>(&self, args: &[&[T]], _rows: &[usize]) -> Vec<T> {
        swiglu_backward_values(args[0], args[1], args[2])
    }
}

impl CustomOp3 for SwiGluBackward {
    fn name(&self) -> &'static str {
        "fused-swiglu-backward"
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
        Ok((out, Shape::from(2 * l1.shape().elem_count())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops;
    use crate::test_util::max_abs_diff as max_diff;
    use candle_core::{Device, Var};

    #[test]
    fn softmax_and_its_gradient_match_the_composition() -> Result<()> {
        let dev = Device::Cpu;
        let x = Var::from_tensor(&Tensor::randn(0f64, 2.0, (3, 4, 7), &dev)?)?;
        let weights = Tensor::randn(0f64, 1.0, (3, 4, 7), &dev)?;
        let fused = softmax_last(x.as_tensor())?;
        let composed = ops::softmax_last(x.as_tensor())?;
        assert!(max_diff(&fused, &composed) < 1e-12);
        let g_fused = (fused * &weights)?.sum_all()?.backward()?;
        let g_composed = (composed * &weights)?.sum_all()?.backward()?;
        let (a, b) = (
            g_fused.get(x.as_tensor()).expect("grad"),
            g_composed.get(x.as_tensor()).expect("grad"),
        );
        assert!(max_diff(a, b) < 1e-12);
        Ok(())
    }

    #[test]
    fn token_scores_and_their_gradient_match_the_composition() -> Result<()> {
        let dev = Device::Cpu;
        for dtype in [DType::F64, DType::F32] {
            let tol = if dtype == DType::F64 { 1e-10 } else { 1e-4 };
            let z = Var::from_tensor(&Tensor::randn(0f64, 3.0, (5, 11), &dev)?.to_dtype(dtype)?)?;
            let targets = Tensor::new(&[0u32, 10, 3, 3, 7], &dev)?;
            let fused = token_logprob_entropy(z.as_tensor(), &targets)?;
            let lsm = ops::log_softmax_last(z.as_tensor())?;
            let lp = lsm.gather(&targets.unsqueeze(1)?, D::Minus1)?.squeeze(1)?;
            let entropy = (lsm.exp()? * &lsm)?.sum(D::Minus1)?.neg()?;
            assert!(max_diff(&fused.narrow(1, 0, 1)?.squeeze(1)?, &lp) < tol);
            assert!(max_diff(&fused.narrow(1, 1, 1)?.squeeze(1)?, &entropy) < tol);
            // A loss mixing both outputs with per-row weights.
            let w_lp = Tensor::new(&[1.0f64, -2.0, 0.5, 0.0, 3.0], &dev)?.to_dtype(dtype)?;
            let w_h = Tensor::new(&[0.3f64, 0.1, -1.0, 2.0, 0.0], &dev)?.to_dtype(dtype)?;
            let loss = |lp: &Tensor, h: &Tensor| -> Result<Tensor> {
                (lp * &w_lp)?.sum_all()? + (h * &w_h)?.sum_all()?
            };
            let g_fused = loss(
                &fused.narrow(1, 0, 1)?.squeeze(1)?,
                &fused.narrow(1, 1, 1)?.squeeze(1)?,
            )?
            .backward()?;
            let g_composed = loss(&lp, &entropy)?.backward()?;
            let (a, b) = (
                g_fused.get(z.as_tensor()).expect("grad"),
                g_composed.get(z.as_tensor()).expect("grad"),
            );
            assert!(max_diff(a, b) < tol, "{dtype:?}");
        }
        Ok(())
    }

    #[test]
    fn out_of_vocabulary_targets_are_an_error() {
        let dev = Device::Cpu;
        let z = Tensor::zeros((2, 4), DType::F32, &dev).unwrap();
        let t = Tensor::new(&[1u32, 4], &dev).unwrap();
        assert!(token_logprob_entropy(&z, &t).is_err());
    }

    #[test]
    fn rms_norm_and_its_gradients_match_the_composition() -> Result<()> {
        let dev = Device::Cpu;
        let x = Var::from_tensor(&Tensor::randn(0f64, 2.0, (2, 3, 8), &dev)?)?;
        let w = Var::from_tensor(&Tensor::randn(1f64, 0.3, 8, &dev)?)?;
        let probe = Tensor::randn(0f64, 1.0, (2, 3, 8), &dev)?;
        let fused = rms_norm(x.as_tensor(), w.as_tensor(), 1e-5)?;
        let composed = ops::rms_norm(x.as_tensor(), w.as_tensor(), 1e-5)?;
        assert!(max_diff(&fused, &composed) < 1e-12);
        let g_fused = (fused * &probe)?.sum_all()?.backward()?;
        let g_composed = (composed * &probe)?.sum_all()?.backward()?;
        for v in [&x, &w] {
            let a = g_fused.get(v.as_tensor()).expect("grad");
            let b = g_composed.get(v.as_tensor()).expect("grad");
            assert_eq!(a.dims(), b.dims());
            assert!(max_diff(a, b) < 1e-10);
        }
        Ok(())
    }

    #[test]
    fn rope_and_its_gradient_match_the_composition() -> Result<()> {
        let dev = Device::Cpu;
        let (b, t, h, hd) = (2, 5, 3, 8);
        let x = Var::from_tensor(&Tensor::randn(0f64, 1.0, (b, t, h, hd), &dev)?)?;
        let angles = Tensor::randn(0f64, 2.0, (b, t, hd / 2), &dev)?;
        let (cos, sin) = (angles.cos()?, angles.sin()?);
        let probe = Tensor::randn(0f64, 1.0, (b, h, t, hd), &dev)?;
        // The composition works on (B, H, T, hd) with full-width (B, 1, T, hd) tables.
        let full = |t: &Tensor| Tensor::cat(&[t, t], 2)?.unsqueeze(1);
        let composed = ops::rope(&x.as_tensor().transpose(1, 2)?, &full(&cos)?, &full(&sin)?)?;
        let fused = rope_bthd(x.as_tensor(), &cos, &sin)?.transpose(1, 2)?;
        assert!(max_diff(&fused, &composed) < 1e-12);
        let g_fused = (fused * &probe)?.sum_all()?.backward()?;
        let g_composed = (composed * &probe)?.sum_all()?.backward()?;
        let a = g_fused.get(x.as_tensor()).expect("grad");
        let b2 = g_composed.get(x.as_tensor()).expect("grad");
        assert!(max_diff(a, b2) < 1e-12);
        Ok(())
    }

    #[test]
    fn masked_softmax_matches_the_composition_and_leaves_the_mask_without_gradient() -> Result<()> {
        let dev = Device::Cpu;
        let (b, h, t, s) = (2, 3, 4, 6);
        let scores = Var::from_tensor(&Tensor::randn(0f64, 2.0, (b, h, t, s), &dev)?)?;
        // A causal mask with a padded first key in row 1, as the model builds it.
        let mut m = vec![0f64; b * t * s];
        for r in 0..b {
            for i in 0..t {
                for j in 0..s {
                    if j > i + (s - t) || (r == 1 && j == 0 && i + (s - t) > 0) {
                        m[(r * t + i) * s + j] = -1e9;
                    }
                }
            }
        }
        let mask = Tensor::from_vec(m, (b, 1, t, s), &dev)?;
        let probe = Tensor::randn(0f64, 1.0, (b, h, t, s), &dev)?;
        let fused = masked_softmax(scores.as_tensor(), &mask)?;
        let composed = ops::softmax_last(&scores.as_tensor().broadcast_add(&mask)?)?;
        assert!(max_diff(&fused, &composed) < 1e-12);
        let g_fused = (fused * &probe)?.sum_all()?.backward()?;
        let g_composed = (composed * &probe)?.sum_all()?.backward()?;
        let a = g_fused.get(scores.as_tensor()).expect("grad");
        let b2 = g_composed.get(scores.as_tensor()).expect("grad");
        assert!(max_diff(a, b2) < 1e-12);
        // The composition leaves a gradient for the (broadcast) mask in the store; the fused op
        // does not: its store holds the scores' and the constant probe's only.
        assert_eq!(g_fused.get_ids().count(), 2, "scores and probe only");
        assert!(g_composed.get_ids().count() > 2);
        assert!(masked_softmax(scores.as_tensor(), &mask.narrow(3, 0, 2)?).is_err());
        // Grouped-query layout: heads (0, 1, 2) as one group of 3·T rows gives the same rows.
        let grouped = scores.as_tensor().reshape((b, 1, h * t, s))?;
        let fused_grouped = masked_softmax(&grouped, &mask)?.reshape((b, h, t, s))?;
        assert!(max_diff(&fused_grouped, &masked_softmax(scores.as_tensor(), &mask)?) == 0.0);
        // Rows per group must be whole sets of queries.
        assert!(masked_softmax(&scores.as_tensor().reshape((b, 2, 6, s))?, &mask).is_err());
        Ok(())
    }

    /// The f32 kernels (vector exponentials) against the f64 composition, over a spread of
    /// gates with saturated ones (±100, where e^(−g) overflows or underflows) among them.
    #[test]
    fn swiglu_in_f32_matches_the_f64_composition() -> Result<()> {
        let dev = Device::Cpu;
        let mut gates = Tensor::randn(0f64, 4.0, (2, 20_003), &dev)?
            .flatten_all()?
            .to_vec1::<f64>()?;
        gates[5] = 100.0;
        gates[20_010] = -100.0;
        let g64 = Var::from_tensor(&Tensor::from_vec(gates, (2, 20_003), &dev)?)?;
        let up64 = Var::from_tensor(&Tensor::randn(0f64, 1.0, (2, 20_003), &dev)?)?;
        let probe = Tensor::randn(0f64, 1.0, (2, 20_003), &dev)?;
        let composed = (g64.as_tensor().silu()? * up64.as_tensor())?;
        let grads64 = (&composed * &probe)?.sum_all()?.backward()?;
        let g32 = Var::from_tensor(&g64.as_tensor().to_dtype(DType::F32)?)?;
        let up32 = Var::from_tensor(&up64.as_tensor().to_dtype(DType::F32)?)?;
        let fused = swiglu(g32.as_tensor(), up32.as_tensor())?;
        let to64 = |t: &Tensor| t.to_dtype(DType::F64);
        // f32 rounding of values up to |g·u| ≈ 40.
        assert!(max_diff(&to64(&fused)?, &composed) < 2e-5);
        let grads32 = (fused * probe.to_dtype(DType::F32)?)?
            .sum_all()?
            .backward()?;
        for (v32, v64) in [(&g32, &g64), (&up32, &up64)] {
            let a = to64(grads32.get(v32.as_tensor()).expect("grad"))?;
            let b = grads64.get(v64.as_tensor()).expect("grad");
            assert!(max_diff(&a, b) < 2e-4, "{}", max_diff(&a, b));
        }
        Ok(())
    }

    #[test]
    fn swiglu_and_its_gradients_match_the_composition() -> Result<()> {
        let dev = Device::Cpu;
        let g = Var::from_tensor(&Tensor::randn(0f64, 2.0, (3, 40_000), &dev)?)?;
        let u = Var::from_tensor(&Tensor::randn(0f64, 1.0, (3, 40_000), &dev)?)?;
        let probe = Tensor::randn(0f64, 1.0, (3, 40_000), &dev)?;
        let fused = swiglu(g.as_tensor(), u.as_tensor())?;
        let composed = (g.as_tensor().silu()? * u.as_tensor())?;
        assert!(max_diff(&fused, &composed) < 1e-12);
        let g_fused = (fused * &probe)?.sum_all()?.backward()?;
        let g_composed = (composed * &probe)?.sum_all()?.backward()?;
        for v in [&g, &u] {
            let a = g_fused.get(v.as_tensor()).expect("grad");
            let b = g_composed.get(v.as_tensor()).expect("grad");
            assert!(max_diff(a, b) < 1e-10);
        }
        Ok(())
    }
}
