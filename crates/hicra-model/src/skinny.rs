//! The decoding projection kernel: `y = x · wᵀ` for a few rows `x` (M × K) against a weight `w`
//! stored as HF keeps it (N × K, row-major). Each weight row is read once and multiplied with
//! every input row while it is in cache; nothing is packed or copied, so a decoding step streams
//! the weights once. gemm, built for large operands, packs the weight on every call and fills
//! a 16-row tile with the one to eight real rows of a decoding step.
//!
//! On x86-64 the inner products use 16-lane FMA where the CPU has AVX-512F, 8-lane FMA where it
//! has AVX2 and FMA (checked at run time); other machines get the portable loop. Within one
//! kernel every output is summed in the same order whatever tile it falls in, so a row's result
//! does not depend on the other rows of the batch.

/// Input rows per tile.
const ROWS: usize = 4;
/// Weight rows per tile (AVX2).
const COLS: usize = 2;
/// Weight rows per tile (AVX-512: twice the lanes, the same 4-row tile, so twice the columns
/// keep the loads per FMA down).
#[cfg(target_arch = "x86_64")]
const COLS_512: usize = 4;
/// Weight rows per tile for a single input row: eight FMA chains and eight memory streams.
#[cfg(target_arch = "x86_64")]
const ONE_ROW_COLS: usize = 8;

/// One tile of the walk over the output: rows `r..r + rows` of x against weight rows
/// `j..j + cols`.
#[cfg(target_arch = "x86_64")]
#[derive(Debug, Clone, Copy)]
struct Tile {
    r: usize,
    j: usize,
    rows: usize,
    cols: usize,
}

/// Walks the (m, n) output in tiles: [`ONE_ROW_COLS`] weight rows at a time for a single input
/// row, else `cols` weight rows by [`ROWS`] input rows, with single rows and columns for the
/// remainders.
#[cfg(target_arch = "x86_64")]
fn walk_tiles(m: usize, n: usize, cols: usize, mut visit: impl FnMut(Tile)) {
    let mut j = 0;
    while j < n {
        let tile_cols = if m == 1 && n - j >= ONE_ROW_COLS {
            ONE_ROW_COLS
        } else if n - j >= cols {
            cols
        } else {
            1
        };
        let mut r = 0;
        while r < m {
            let rows = if tile_cols != ONE_ROW_COLS && m - r >= ROWS {
                ROWS
            } else {
                1
            };
            visit(Tile {
                r,
                j,
                rows,
                cols: tile_cols,
            });
            r += rows;
        }
        j += tile_cols;
    }
}

/// Defines a SIMD kernel's `tile::<R, C>`: the dot products of `R` consecutive rows of x (row
/// stride k) with `C` consecutive rows of w, `lanes` at a time, prefetching the weight rows
/// `ahead` elements further on (one cache line per 16 elements). Every output is summed the
/// same way whatever `R` and `C` are: lane sums, their reduction, then the tail in order.
#[cfg(target_arch = "x86_64")]
macro_rules! dot_tile {
    ($features:literal, $vector:ty, $lanes:literal, $zero:ident, $load:ident, $fma:ident, $reduce:ident) => {
        /// See the `dot_tile` macro.
        ///
        /// # Safety
        /// The CPU must have the kernel's features; `x` must hold R·k and `w` C·k readable
        /// elements (a prefetch never faults).
        #[target_feature(enable = $features)]
        unsafe fn tile<const R: usize, const C: usize>(
            x: *const f32,
            w: *const f32,
            k: usize,
            ahead: Option<usize>,
        ) -> [[f32; C]; R] {
            let mut acc: [[$vector; C]; R] = [[$zero(); C]; R];
            let mut i = 0;
            while i + $lanes <= k {
                let mut wv: [$vector; C] = [$zero(); C];
                for (c, v) in wv.iter_mut().enumerate() {
                    // SAFETY: i + lanes <= k within row c of w.
                    *v = unsafe { $load(w.add(c * k + i)) };
                    if let Some(d) = ahead
                        && i % 16 == 0
                    {
                        // SAFETY: the address lies inside w (checked by the caller); prefetching
                        // has no other effect.
                        unsafe { _mm_prefetch::<_MM_HINT_T0>(w.add(c * k + i + d) as *const i8) };
                    }
                }
                for (r, acc_r) in acc.iter_mut().enumerate() {
                    // SAFETY: i + lanes <= k within row r of x.
                    let xv = unsafe { $load(x.add(r * k + i)) };
                    for (a, wc) in acc_r.iter_mut().zip(&wv) {
                        *a = $fma(xv, *wc, *a);
                    }
                }
                i += $lanes;
            }
            let mut out = [[0f32; C]; R];
            for r in 0..R {
                for c in 0..C {
                    let mut s = $reduce(acc[r][c]);
                    for t in i..k {
                        // SAFETY: t < k within row r of x and row c of w.
                        s += unsafe { *x.add(r * k + t) * *w.add(c * k + t) };
                    }
                    out[r][c] = s;
                }
            }
            out
        }
    };
}
#[cfg(target_arch = "x86_64")]
use dot_tile;

/// Defines a SIMD kernel's `matmul_transposed` (see [`matmul_transposed`]), compiled for
/// `features`: it walks the output in tiles ([`walk_tiles`]) and computes each with the calling
/// module's `tile::<R, C>`, `cols` weight rows to a full tile.
#[cfg(target_arch = "x86_64")]
macro_rules! tiled_kernel {
    ($features:literal, $cols:path) => {
        /// See the parent module's `matmul_transposed`.
        ///
        /// # Safety
        /// The CPU must have the kernel's features; the slices must hold the shapes' elements.
        #[target_feature(enable = $features)]
        pub unsafe fn matmul_transposed(
            x: &[f32],
            m: usize,
            k: usize,
            w: &[f32],
            n: usize,
            y: &mut [f32],
        ) {
            let (xp, wp) = (x.as_ptr(), w.as_ptr());
            // The end of w: prefetches stop there.
            let w_end = n * k;
            super::walk_tiles(m, n, $cols, |t| {
                let (xr, wj) = (t.r * k, t.j * k);
                // SAFETY (all tiles): rows r..r+rows of x and j..j+cols of w lie inside the slices,
                // whose lengths the caller checked; prefetch addresses are checked.
                unsafe {
                    let xt = xp.add(xr);
                    let wt = wp.add(wj);
                    let ahead = (wj + 2 * t.cols * k < w_end).then(|| 2 * t.cols * k);
                    let (r, j) = (t.r, t.j);
                    match (t.rows, t.cols) {
                        (_, ONE_ROW_COLS) => {
                            store(y, n, r, j, &tile::<1, ONE_ROW_COLS>(xt, wt, k, ahead))
                        }
                        (ROWS, $cols) => store(y, n, r, j, &tile::<ROWS, $cols>(xt, wt, k, ahead)),
                        (1, $cols) => store(y, n, r, j, &tile::<1, $cols>(xt, wt, k, ahead)),
                        (ROWS, _) => store(y, n, r, j, &tile::<ROWS, 1>(xt, wt, k, None)),
                        (1, _) => store(y, n, r, j, &tile::<1, 1>(xt, wt, k, None)),
                        _ => unreachable!("tile rows are ROWS or 1"),
                    }
                }
            });
        }
    };
}
#[cfg(target_arch = "x86_64")]
use tiled_kernel;

/// Writes a tile's sums at rows r.., columns j.. of y (row stride n).
#[cfg(target_arch = "x86_64")]
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

/// `y[r * y_stride + j] = Σ_i x[r * k + i] · w[j * k + i]` for `r < m`, `j < n`.
///
/// # Panics
/// If a slice is shorter than its shape requires (callers pass validated shapes).
pub fn matmul_transposed(x: &[f32], m: usize, k: usize, w: &[f32], n: usize, y: &mut [f32]) {
    assert!(x.len() >= m * k, "x holds {} of {m}x{k} elements", x.len());
    assert!(w.len() >= n * k, "w holds {} of {n}x{k} elements", w.len());
    assert!(y.len() >= m * n, "y holds {} of {m}x{n} elements", y.len());
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has the feature the function is compiled for; the lengths were
        // checked above.
        unsafe { avx512::matmul_transposed(x, m, k, w, n, y) };
        return;
    }
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
    use super::{COLS, ONE_ROW_COLS, ROWS, store};
    use std::arch::x86_64::*;

    super::tiled_kernel!("avx2,fma", COLS);

    super::dot_tile!(
        "avx2,fma",
        __m256,
        8,
        _mm256_setzero_ps,
        _mm256_loadu_ps,
        _mm256_fmadd_ps,
        hsum
    );

    #[target_feature(enable = "avx2,fma")]
    fn hsum(v: __m256) -> f32 {
        let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 0b01));
        _mm_cvtss_f32(s)
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{COLS_512, ONE_ROW_COLS, ROWS, store};
    use std::arch::x86_64::*;

    super::tiled_kernel!("avx512f", COLS_512);

    super::dot_tile!(
        "avx512f",
        __m512,
        16,
        _mm512_setzero_ps,
        _mm512_loadu_ps,
        _mm512_fmadd_ps,
        _mm512_reduce_add_ps
    );
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
        let mut all: Vec<(&'static str, Kernel)> =
            vec![("dispatch", matmul_transposed), ("portable", portable)];
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                // SAFETY: the CPU has the features; the test passes whole shapes.
                all.push(("avx2", |x, m, k, w, n, y| unsafe {
                    avx2::matmul_transposed(x, m, k, w, n, y)
                }));
            }
            if std::arch::is_x86_feature_detected!("avx512f") {
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

    #[test]
    #[should_panic(expected = "w holds")]
    fn short_weight_is_refused() {
        let mut y = vec![0f32; 2];
        matmul_transposed(&[0.0; 4], 1, 4, &[0.0; 6], 2, &mut y);
    }
}
