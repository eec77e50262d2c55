//! The AdamW update as three in-place passes over contiguous f32 CPU tensors (first moment,
//! second moment, weight), instead of a dozen whole-tensor temporaries per parameter.

use candle_core::{CpuStorage, DType, InplaceOp2, InplaceOp3, Layout, Tensor};

use crate::error::Result;

/// One step's hyper-parameters.
pub(super) struct Hyper {
    pub lr: f64,
    pub weight_decay: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    /// Gradient multiplier (global-norm clipping).
    pub grad_scale: f64,
    pub bias_correction1: f64,
    pub bias_correction2: f64,
}

/// Whether every tensor is a contiguous f32 CPU tensor of one shape. (m and v must be separate
/// buffers, as `AdamW` allocates and loads them; candle refuses a source aliasing its target.)
pub(super) fn applies(w: &Tensor, g: &Tensor, m: &Tensor, v: &Tensor) -> bool {
    [w, g, m, v].iter().all(|t| {
        t.device().is_cpu()
            && t.dtype() == DType::F32
            && t.is_contiguous()
            && t.shape() == w.shape()
    })
}

/// m ← β1·m + (1−β1)·s·g; v ← β2·v + (1−β2)·(s·g)²; w ← w·(1 − lr·wd) − lr·m̂ / (√v̂ + ε).
pub(super) fn step(w: &Tensor, g: &Tensor, m: &Tensor, v: &Tensor, h: &Hyper) -> Result<()> {
    m.inplace_op2(
        g,
        &Moment {
            decay: h.beta1 as f32,
            scale: h.grad_scale as f32,
            square: false,
        },
    )?;
    v.inplace_op2(
        g,
        &Moment {
            decay: h.beta2 as f32,
            scale: h.grad_scale as f32,
            square: true,
        },
    )?;
    w.inplace_op3(
        m,
        v,
        &Weight {
            shrink: (1.0 - h.lr * h.weight_decay) as f32,
            lr: h.lr as f32,
            inv_bc1: (1.0 / h.bias_correction1) as f32,
            inv_bc2: (1.0 / h.bias_correction2) as f32,
            eps: h.eps as f32,
        },
    )?;
    Ok(())
}

/// The contiguous f32 elements of a storage.
fn slice<'a>(s: &'a CpuStorage, l: &Layout, op: &str) -> candle_core::Result<&'a [f32]> {
    match (s, l.contiguous_offsets()) {
        (CpuStorage::F32(v), Some((a, b))) => Ok(&v[a..b]),
        _ => candle_core::bail!("{op}: contiguous f32 expected"),
    }
}

fn slice_mut<'a>(
    s: &'a mut CpuStorage,
    l: &Layout,
    op: &str,
) -> candle_core::Result<&'a mut [f32]> {
    match (s, l.contiguous_offsets()) {
        (CpuStorage::F32(v), Some((a, b))) => Ok(&mut v[a..b]),
        _ => candle_core::bail!("{op}: contiguous f32 expected"),
    }
}

/// A moment update from the gradient.
struct Moment {
    decay: f32,
    scale: f32,
    square: bool,
}

impl InplaceOp2 for Moment {
    fn name(&self) -> &'static str {
        "adamw-moment"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<()> {
        let g = slice(s2, l2, self.name())?;
        let m = slice_mut(s1, l1, self.name())?;
        let keep = 1.0 - self.decay;
        for (m, &g) in m.iter_mut().zip(g) {
            let g = g * self.scale;
            let x = if self.square { g * g } else { g };
            *m = self.decay * *m + keep * x;
        }
        Ok(())
    }
}

/// The decoupled-decay weight update from both moments.
struct Weight {
    shrink: f32,
    lr: f32,
    inv_bc1: f32,
    inv_bc2: f32,
    eps: f32,
}

impl InplaceOp3 for Weight {
    fn name(&self) -> &'static str {
        "adamw-weight"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<()> {
        let m = slice(s2, l2, self.name())?;
        let v = slice(s3, l3, self.name())?;
        let w = slice_mut(s1, l1, self.name())?;
        for ((w, &m), &v) in w.iter_mut().zip(m).zip(v) {
            let update = (m * self.inv_bc1) / ((v * self.inv_bc2).sqrt() + self.eps);
            *w = *w * self.shrink - self.lr * update;
        }
        Ok(())
    }
}
