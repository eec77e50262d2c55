//! The portable skinny product: every output summed as a vector kernel of `L` lanes sums it,
//! in plain loops. `L = 8` is AVX2's kernel and the fallback where the CPU has no vector
//! kernel; `L = 16` is AVX-512's. The vector kernels must reproduce these bits.

use crate::lanes::{fma_lanes, halving_sum};

/// `y[r * n + j] = Σ_i x[r * k + i] · w[j * k + i]`, summed with 8 lanes.
pub fn matmul_transposed(x: &[f32], m: usize, k: usize, w: &[f32], n: usize, y: &mut [f32]) {
    matmul_transposed_lanes::<8>(x, m, k, w, n, y);
}

/// As [`matmul_transposed`], each output summed as an `L`-lane kernel sums it ([`dot`]).
pub fn matmul_transposed_lanes<const L: usize>(
    x: &[f32],
    m: usize,
    k: usize,
    w: &[f32],
    n: usize,
    y: &mut [f32],
) {
    for j in 0..n {
        let wr = &w[j * k..(j + 1) * k];
        for r in 0..m {
            y[r * n + j] = dot::<L>(&x[r * k..(r + 1) * k], wr);
        }
    }
}

/// `Σ a·b` as an `L`-lane kernel computes it: `L` fused partial sums over whole steps of `L`
/// values, their horizontal sum, then the remaining products added one at a time.
pub fn dot<const L: usize>(a: &[f32], b: &[f32]) -> f32 {
    let whole = a.len() / L * L;
    let mut acc = [0f32; L];
    for i in (0..whole).step_by(L) {
        fma_lanes(&mut acc, &a[i..i + L], &b[i..i + L]);
    }
    let mut sum = halving_sum(acc);
    for t in whole..a.len() {
        sum += a[t] * b[t];
    }
    sum
}
