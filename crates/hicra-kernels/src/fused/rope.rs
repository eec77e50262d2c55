//! Rotary embedding ("rotate half" layout), with its backward.

use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};
use num_traits::Float;
use rayon::prelude::*;

use super::kernel::{Element, FloatKernel, run_kernel};

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
pub fn rope_bthd_backward(grad: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    grad.contiguous()?.apply_op3_no_bwd(
        &cos.contiguous()?,
        &sin.contiguous()?,
        &Rope { inverse: true },
    )
}
