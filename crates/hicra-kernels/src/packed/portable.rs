//! The portable packed kernels: plain loops that compute each output in exactly the order
//! of the vector kernels, so they are both the fallback where the CPU has no vector kernel
//! and the reference whose bits the vector kernels must reproduce.

use super::layout::PANEL;

/// Portable f32 tile: the same per-element order (fused multiply-add along k) as the AVX-512
/// kernel.
pub fn portable_f32(
    x: &[f32],
    rows: usize,
    k: usize,
    panel: &[f32],
    y: *mut f32,
    n: usize,
    cols: usize,
) {
    for r in 0..rows {
        for c in 0..cols {
            let mut acc = 0f32;
            for kk in 0..k {
                acc = x[r * k + kk].mul_add(panel[kk * PANEL + c], acc);
            }
            // SAFETY: the caller's tile lies inside y (row stride n).
            unsafe { *y.add(r * n + c) = acc };
        }
    }
}

/// The f32 value of the bf16 in the low (`hi = false`) or high half of a pair.
pub fn bf16_value(pair: u32, hi: bool) -> f32 {
    let bits = if hi { pair & 0xffff_0000 } else { pair << 16 };
    f32::from_bits(bits)
}

/// Portable bf16 tile: per pair, the odd product then the even one added in f32, as
/// `vdpbf16ps` does (the products of two bf16 values are exact in f32).
pub fn portable_bf16(
    x: &[u32],
    rows: usize,
    k2: usize,
    panel: &[u32],
    y: *mut f32,
    n: usize,
    cols: usize,
) {
    for r in 0..rows {
        for c in 0..cols {
            let mut acc = 0f32;
            for kp in 0..k2 {
                let (a, b) = (x[r * k2 + kp], panel[kp * PANEL + c]);
                acc += bf16_value(a, true) * bf16_value(b, true);
                acc += bf16_value(a, false) * bf16_value(b, false);
            }
            // SAFETY: the caller's tile lies inside y (row stride n).
            unsafe { *y.add(r * n + c) = acc };
        }
    }
}
