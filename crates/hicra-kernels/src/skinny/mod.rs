//! The decoding projection kernel: `y = x · wᵀ` for a few rows `x` (M × K) against a weight `w`
//! stored as HF keeps it (N × K, row-major). Each weight row is read once and multiplied with
//! every input row while it is in cache; nothing is packed or copied, so a decoding step streams
//! the weights once. gemm, built for large operands, packs the weight on every call and fills
//! a 16-row tile with the one to eight real rows of a decoding step.
//!
//! On x86-64 the inner products use 16-lane FMA where the CPU has AVX-512F, 8-lane FMA where it
//! has AVX2 and FMA (checked at run time); other machines get the portable loop, which sums in
//! the 8-lane order and is the reference both vector kernels reproduce bit for bit (each with
//! its own lane count). Within one kernel every output is summed in the same order whatever
//! tile it falls in, so a row's result does not depend on the other rows of the batch.

#[cfg(target_arch = "x86_64")]
use crate::cpu::isa;

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
mod portable;
#[cfg(target_arch = "x86_64")]
mod tiles;

/// `y[r * y_stride + j] = Σ_i x[r * k + i] · w[j * k + i]` for `r < m`, `j < n`.
///
/// # Panics
/// If a slice is shorter than its shape requires (callers pass validated shapes).
pub fn matmul_transposed(x: &[f32], m: usize, k: usize, w: &[f32], n: usize, y: &mut [f32]) {
    assert!(x.len() >= m * k, "x holds {} of {m}x{k} elements", x.len());
    assert!(w.len() >= n * k, "w holds {} of {n}x{k} elements", w.len());
    assert!(y.len() >= m * n, "y holds {} of {m}x{n} elements", y.len());
    #[cfg(target_arch = "x86_64")]
    if isa().avx512f {
        // SAFETY: the CPU has the feature the function is compiled for; the lengths were
        // checked above.
        unsafe { avx512::matmul_transposed(x, m, k, w, n, y) };
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if isa().avx2_fma {
        // SAFETY: the CPU has the features the function is compiled for; the lengths were
        // checked above.
        unsafe { avx2::matmul_transposed(x, m, k, w, n, y) };
        return;
    }
    portable::matmul_transposed(x, m, k, w, n, y);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(x: &[f32], m: usize, k: usize, w: &[f32], n: usize) -> Vec<f32> {
        let mut y = vec![0f32; m * n];
        for r in 0..m {
            for j in 0..n {
                y[r * n + j] = (0..k)
                    .map(|i| x[r * k + i] as f64 * w[j * k + i] as f64)
                    .sum::<f64>() as f32;
            }
        }
        y
    }

    fn values(len: usize, seed: u32) -> Vec<f32> {
        (0..len)
            .map(|i| (((i as u32).wrapping_mul(2654435761) ^ seed) % 1000) as f32 / 500.0 - 1.0)
            .collect()
    }

    #[test]
    fn every_tile_shape_and_tail_matches_the_reference() {
        // Row counts 1..=9 cover every tile remainder; k = 13 and 70 have non-multiple-of-8
        // tails; n = 1 and 5 leave a single weight row.
        for (m, k, n) in [
            (1, 8, 1),
            (3, 13, 5),
            (4, 70, 2),
            (5, 64, 7),
            (9, 33, 4),
            (8, 576, 3),
        ] {
            let x = values(m * k, 7);
            let w = values(n * k, 11);
            let expected = reference(&x, m, k, &w, n);
            for (name, kernel) in kernels() {
                let mut y = vec![f32::NAN; m * n];
                kernel(&x, m, k, &w, n, &mut y);
                for i in 0..m * n {
                    let tol = 1e-4 * (1.0 + expected[i].abs());
                    assert!((y[i] - expected[i]).abs() < tol, "{name} {m}x{k}x{n} [{i}]");
                }
            }
        }
    }

    type Kernel = fn(&[f32], usize, usize, &[f32], usize, &mut [f32]);

    /// The dispatcher, the portable loop and every SIMD kernel this CPU can run.
    fn kernels() -> Vec<(&'static str, Kernel)> {
        let mut all: Vec<(&'static str, Kernel)> = vec![
            ("dispatch", matmul_transposed),
            ("portable", portable::matmul_transposed),
        ];
        #[cfg(target_arch = "x86_64")]
        {
            if isa().avx2_fma {
                // SAFETY: the CPU has the features; the test passes whole shapes.
                all.push(("avx2", |x, m, k, w, n, y| unsafe {
                    avx2::matmul_transposed(x, m, k, w, n, y)
                }));
            }
            if isa().avx512f {
                // SAFETY: as above.
                all.push(("avx512", |x, m, k, w, n, y| unsafe {
                    avx512::matmul_transposed(x, m, k, w, n, y)
                }));
            }
        }
        all
    }

    #[test]
    fn a_row_gets_the_same_bits_alone_and_in_any_batch() {
        // The batch sizes put row 0 in a one-row tile (m = 1), a full 4-row tile and a remainder.
        let (k, n) = (83, 11);
        let x = values(9 * k, 5);
        let w = values(n * k, 9);
        for (name, kernel) in kernels() {
            let mut alone = vec![0f32; n];
            kernel(&x[..k], 1, k, &w, n, &mut alone);
            for m in [2, 4, 5, 9] {
                let mut batch = vec![0f32; m * n];
                kernel(&x[..m * k], m, k, &w, n, &mut batch);
                let last = m - 1;
                let mut last_alone = vec![0f32; n];
                kernel(&x[last * k..m * k], 1, k, &w, n, &mut last_alone);
                assert_eq!(alone, batch[..n], "{name}: row 0 in a batch of {m}");
                assert_eq!(last_alone, batch[last * n..], "{name}: row {last} of {m}");
            }
        }
    }

    /// Each vector kernel this CPU runs gives the bits of the portable kernel of its lane
    /// count, on shapes with every tile remainder and tails of k.
    #[test]
    fn vector_kernels_give_the_portable_bits() {
        let lanes: Vec<(&str, Kernel, usize)> = kernels()
            .into_iter()
            .filter_map(|(name, kernel)| match name {
                "avx2" => Some((name, kernel, 8)),
                "avx512" => Some((name, kernel, 16)),
                _ => None,
            })
            .collect();
        if lanes.is_empty() {
            eprintln!("skipped: this CPU runs no vector kernel");
        }
        for (m, k, n) in [
            (1, 8, 9),
            (3, 13, 5),
            (4, 70, 2),
            (5, 64, 7),
            (9, 33, 4),
            (1, 300, 17),
        ] {
            let (x, w) = (values(m * k, 3), values(n * k, 4));
            for &(name, kernel, l) in &lanes {
                let mut want = vec![f32::NAN; m * n];
                match l {
                    8 => portable::matmul_transposed_lanes::<8>(&x, m, k, &w, n, &mut want),
                    _ => portable::matmul_transposed_lanes::<16>(&x, m, k, &w, n, &mut want),
                }
                let mut got = vec![f32::NAN; m * n];
                kernel(&x, m, k, &w, n, &mut got);
                let same = got
                    .iter()
                    .zip(&want)
                    .all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(same, "{name} {m}x{k}x{n}: not the portable bits");
            }
        }
    }

    #[test]
    #[should_panic(expected = "w holds")]
    fn short_weight_is_refused() {
        let mut y = vec![0f32; 2];
        matmul_transposed(&[0.0; 4], 1, 4, &[0.0; 6], 2, &mut y);
    }
}
