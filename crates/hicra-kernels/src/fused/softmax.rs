//! Softmax over the last dimension, plain and with an additive attention mask, and its
//! backward.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::kernel::{Element, FloatKernel, run_kernel};

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
pub fn softmax_backward(y: &Tensor, grad: &Tensor) -> Result<Tensor> {
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
