//! The SwiGLU gate `silu(gate) ⊙ up`, with its backward.

use candle_core::{CpuStorage, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::kernel::{Element, FloatKernel, run_kernel};

/// The SwiGLU gate `silu(gate) ⊙ up` (same shapes), differentiable w.r.t. both.
pub fn swiglu(gate: &Tensor, up: &Tensor) -> Result<Tensor> {
    if gate.shape() != up.shape() {
        candle_core::bail!("swiglu: gate {:?} and up {:?}", gate.dims(), up.dims());
    }
    gate.contiguous()?.apply_op2(&up.contiguous()?, SwiGlu)
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
pub fn swiglu_backward(gate: &Tensor, up: &Tensor, grad: &Tensor) -> Result<(Tensor, Tensor)> {
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
