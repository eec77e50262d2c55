//! RMSNorm over the last dimension, with its backward w.r.t. the input and the weight.

use candle_core::{CpuStorage, CustomOp2, CustomOp3, D, Layout, Result, Shape, Tensor};
use num_traits::Float;
use rayon::prelude::*;

use super::kernel::{Element, FloatKernel, run_kernel};

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
pub fn rms_norm_backward(
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
