//! The walk over the output of a skinny product in register tiles, and the two macros that
//! instantiate a tile kernel and its driver for one instruction set (AVX2, AVX-512): the
//! kernels differ only in vector type, width and intrinsics.

/// Input rows per tile.
pub const ROWS: usize = 4;
/// Weight rows per tile (AVX2).
pub const COLS: usize = 2;
/// Weight rows per tile (AVX-512: twice the lanes, the same 4-row tile, so twice the columns
/// keep the loads per FMA down).
pub const COLS_512: usize = 4;
/// Weight rows per tile for a single input row: eight FMA chains and eight memory streams.
pub const ONE_ROW_COLS: usize = 8;

/// One tile of the walk over the output: rows `r..r + rows` of x against weight rows
/// `j..j + cols`.
#[derive(Debug, Clone, Copy)]
pub struct Tile {
    pub r: usize,
    pub j: usize,
    pub rows: usize,
    pub cols: usize,
}

/// Walks the (m, n) output in tiles: [`ONE_ROW_COLS`] weight rows at a time for a single input
/// row, else `cols` weight rows by [`ROWS`] input rows, with single rows and columns for the
/// remainders.
pub fn walk_tiles(m: usize, n: usize, cols: usize, mut visit: impl FnMut(Tile)) {
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
pub(super) use dot_tile;

/// Defines a SIMD kernel's `matmul_transposed` (see the parent module's), compiled for
/// `features`: it walks the output in tiles ([`walk_tiles`]) and computes each with the calling
/// module's `tile::<R, C>`, `cols` weight rows to a full tile.
macro_rules! tiled_kernel {
    ($features:literal, $cols:path) => {
        /// See `skinny::matmul_transposed`.
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
            walk_tiles(m, n, $cols, |t| {
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
pub(super) use tiled_kernel;

/// Writes a tile's sums at rows r.., columns j.. of y (row stride n).
pub fn store<const R: usize, const C: usize>(
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
