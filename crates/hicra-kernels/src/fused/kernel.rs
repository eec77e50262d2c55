//! What the fused kernels share: their element types (f32, f64) with bulk exponentials, and
//! running one kernel over the contiguous CPU operands of a candle op.

use candle_core::{CpuStorage, Layout, Result};
use num_traits::Float;

/// Rows of a contiguous layout: (row length, row slice range).
pub fn rows_of(layout: &Layout) -> Result<(usize, usize, usize)> {
    let (start, end) = layout
        .contiguous_offsets()
        .ok_or_else(|| candle_core::Error::Msg("fused kernel: contiguous input expected".into()))?;
    let len = layout.shape().dims().last().copied().unwrap_or(1).max(1);
    Ok((len, start, end))
}

/// The kernels' element types, f32 and f64, with the exponentials they take in bulk: 16 at a
/// time in f32 where the CPU has AVX-512, 8 with AVX2 ([`crate::vexp`]), one at a time in f64.
pub trait Element: Float + Send + Sync {
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
pub trait FloatKernel {
    /// `args`: the operands' elements; `rows`: the length of each operand's last dimension.
    fn apply<T: Element>(&self, args: &[&[T]], rows: &[usize]) -> Vec<T>;
}

/// Runs `kernel` on contiguous CPU operands that share one dtype, f32 or f64.
pub fn run_kernel<K: FloatKernel>(
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
