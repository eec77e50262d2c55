//! The decoding projection kernel: `y = x · wᵀ` for a few rows `x` (M × K) against a weight `w`
//! stored as HF keeps it (N × K, row-major). Each weight row is read once and multiplied with
//! every input row while it is in cache; nothing is packed or copied, so a decoding step streams
//! the weights once. gemm, built for large operands, packs the weight on every call and fills
//! a 16-row tile with the one to eight real rows of a decoding step.
//!
//! On x86-64 with AVX2 and FMA (checked at run time) the inner products use 8-lane FMA; other
//! machines get the portable loop.

/// Input rows per tile.
const ROWS: usize = 4;
/// Weight rows per tile.
const COLS: usize = 2;

/// `y[r * y_stride + j] = Σ_i x[r * k + i] · w[j * k + i]` for `r < m`, `j < n`.
///
/// # Panics
/// If a slice is shorter than its shape requires (callers pass validated shapes).
pub fn matmul_transposed(x: &[f32], m: usize, k: usize, w: &[f32], n: usize, y: &mut [f32]) {
    assert!(x.len() >= m * k, "x holds {} of {m}x{k} elements", x.len());
    assert!(w.len() >= n * k, "w holds {} of {n}x{k} elements", w.len());
    assert!(y.len() >= m * n, "y holds {} of {m}x{n} elements", y.len());
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has the features the function is compiled for; the lengths were
        // checked above.
        unsafe { avx2::matmul_transposed(x, m, k, w, n, y) };
        return;
    }
    portable(x, m, k, w, n, y);
}

fn portable(x: &[f32], m: usize, k: usize, w: &[f32], n: usize, y: &mut [f32]) {
    for j in 0..n {
        let wr = &w[j * k..(j + 1) * k];
        for r in 0..m {
            let xr = &x[r * k..(r + 1) * k];
            // Eight partial sums: lets the compiler vectorise without reassociating.
            let mut acc = [0f32; 8];
            let mut xc = xr.chunks_exact(8);
            let mut wc = wr.chunks_exact(8);
            for (a, b) in (&mut xc).zip(&mut wc) {
                for l in 0..8 {
                    acc[l] += a[l] * b[l];
                }
            }
            let tail: f32 = xc
                .remainder()
                .iter()
                .zip(wc.remainder())
                .map(|(a, b)| a * b)
                .sum();
            y[r * n + j] = acc.iter().sum::<f32>() + tail;
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{COLS, ROWS};
    use std::arch::x86_64::*;

    /// See [`super::matmul_transposed`].
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA; the slices must hold the shapes' elements.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn matmul_transposed(
        x: &[f32],
        m: usize,
        k: usize,
        w: &[f32],
        n: usize,
        y: &mut [f32],
    ) {
        let xp = x.as_ptr();
        let wp = w.as_ptr();
        // The end of w: prefetches stop there.
        let w_end = n * k;
        let mut j = 0;
        while j < n {
            // One input row (batch-1 decoding): eight weight rows at once keep eight FMA chains
            // and eight memory streams busy.
            let cols = if m == 1 && n - j >= 8 {
                8
            } else if n - j >= COLS {
                COLS
            } else {
                1
            };
            let mut r = 0;
            while r < m {
                // Full tiles of ROWS input rows, then single rows.
                let rows = if cols != 8 && m - r >= ROWS { ROWS } else { 1 };
                let (xr, wj) = (r * k, j * k);
                // SAFETY (all tiles): rows r..r+rows of x and j..j+cols of w lie inside the
                // slices, whose lengths the caller checked; prefetch addresses are checked.
                unsafe {
                    let xt = xp.add(xr);
                    let wt = wp.add(wj);
                    let ahead = (wj + 2 * cols * k < w_end).then(|| 2 * cols * k);
                    match (rows, cols) {
                        (_, 8) => store(y, n, r, j, &tile::<1, 8>(xt, wt, k, ahead)),
                        (ROWS, COLS) => store(y, n, r, j, &tile::<ROWS, COLS>(xt, wt, k, ahead)),
                        (1, COLS) => store(y, n, r, j, &tile::<1, COLS>(xt, wt, k, ahead)),
                        (ROWS, _) => store(y, n, r, j, &tile::<ROWS, 1>(xt, wt, k, None)),
                        (1, _) => store(y, n, r, j, &tile::<1, 1>(xt, wt, k, None)),
                        _ => unreachable!("tile rows are ROWS or 1"),
                    }
                }
                r += rows;
            }
            j += cols;
        }
    }

    /// Writes a tile's sums at rows r.., columns j.. of y (row stride n).
    fn store<const R: usize, const C: usize>(
        y: &mut [f32],
        n: usize,
        r: usize,
        j: usize,
        sums: &[[f32; C]; R],
    ) {
        for (dr, row) in sums.iter().enumerate() {
            y[(r + dr) * n + j..(r + dr) * n + j + C].copy_from_slice(row);
        }
    }

    /// Dot products of `R` consecutive rows of x (row stride k) with `C` consecutive rows of w,
    /// prefetching the weight rows `ahead` elements further on.
    ///
    /// # Safety
    /// AVX2 and FMA; `x` must hold R·k and `w` C·k readable elements (C·k + ahead with a
    /// prefetch distance, though a prefetch never faults).
    #[target_feature(enable = "avx2,fma")]
    unsafe fn tile<const R: usize, const C: usize>(
        x: *const f32,
        w: *const f32,
        k: usize,
        ahead: Option<usize>,
    ) -> [[f32; C]; R] {
        let mut acc = [[_mm256_setzero_ps(); C]; R];
        let mut i = 0;
        while i + 8 <= k {
            let mut wv = [_mm256_setzero_ps(); C];
            for (c, v) in wv.iter_mut().enumerate() {
                // SAFETY: i + 8 <= k within row c of w.
                *v = unsafe { _mm256_loadu_ps(w.add(c * k + i)) };
                if let Some(d) = ahead
                    && i % 16 == 0
                {
                    // SAFETY: the address lies inside w (checked by the caller); prefetching
                    // has no other effect.
                    unsafe { _mm_prefetch::<_MM_HINT_T0>(w.add(c * k + i + d) as *const i8) };
                }
            }
            for (r, acc_r) in acc.iter_mut().enumerate() {
                // SAFETY: i + 8 <= k within row r of x.
                let xv = unsafe { _mm256_loadu_ps(x.add(r * k + i)) };
                for (a, wc) in acc_r.iter_mut().zip(&wv) {
                    *a = _mm256_fmadd_ps(xv, *wc, *a);
                }
            }
            i += 8;
        }
        let mut out = [[0f32; C]; R];
        for r in 0..R {
            for c in 0..C {
                let mut s = hsum(acc[r][c]);
                for t in i..k {
                    // SAFETY: t < k within row r of x and row c of w.
                    s += unsafe { *x.add(r * k + t) * *w.add(c * k + t) };
                }
                out[r][c] = s;
            }
        }
        out
    }

    #[target_feature(enable = "avx2,fma")]
    fn hsum(v: __m256) -> f32 {
        let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 0b01));
        _mm_cvtss_f32(s)
    }
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
            let mut fast = vec![f32::NAN; m * n];
            matmul_transposed(&x, m, k, &w, n, &mut fast);
            let mut slow = vec![f32::NAN; m * n];
            portable(&x, m, k, &w, n, &mut slow);
            for i in 0..m * n {
                let tol = 1e-4 * (1.0 + expected[i].abs());
                assert!((fast[i] - expected[i]).abs() < tol, "{m}x{k}x{n} [{i}]");
                assert!((slow[i] - expected[i]).abs() < tol, "{m}x{k}x{n} [{i}]");
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
