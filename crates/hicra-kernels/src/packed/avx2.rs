//! The packed f32 kernel for CPUs with AVX2 and FMA but no AVX-512 (most laptops, AMD Zen 1–3).
//!
//! Sixteen 8-lane registers hold a tile of [`F32_ROWS`] rows × 16 columns (half a panel, one
//! 64-byte line per k step) in twelve accumulators; a tile walks the panel's two halves in
//! turn. It keeps the portable kernel's order of operations (a fused multiply-add along k from
//! zero), so it gives the same bits as the portable `portable_f32` and the AVX-512 kernel.

use super::layout::PANEL;
use std::arch::x86_64::*;

/// Input rows per f32 tile: 2 × 6 accumulators, two panel vectors and a broadcast.
pub const F32_ROWS: usize = 6;
/// Columns per pass over the panel (two 8-lane vectors).
const HALF: usize = 16;
/// f32 values per cache line.
const LINE: usize = 16;

/// Writes a pass's accumulators: `cols` (≤ 16) columns of each row of `y` (row stride `n`).
///
/// # Safety
/// AVX; `y` must hold `acc.len()` rows of `cols` values.
#[target_feature(enable = "avx2,fma")]
unsafe fn store(acc: &[[__m256; 2]], y: *mut f32, n: usize, cols: usize) {
    for (r, a) in acc.iter().enumerate() {
        // SAFETY: row r's `cols` values lie inside y; the spill buffer holds 16.
        unsafe {
            let yr = y.add(r * n);
            if cols == HALF {
                _mm256_storeu_ps(yr, a[0]);
                _mm256_storeu_ps(yr.add(8), a[1]);
            } else {
                let mut spill = [0f32; HALF];
                _mm256_storeu_ps(spill.as_mut_ptr(), a[0]);
                _mm256_storeu_ps(spill.as_mut_ptr().add(8), a[1]);
                std::ptr::copy_nonoverlapping(spill.as_ptr(), yr, cols);
            }
        }
    }
}

/// Spreads prefetches of `ahead`'s cache lines into L2 over the `k` steps of a pass.
struct Prefetcher<'a> {
    ahead: &'a [f32],
    lines: usize,
    every: usize,
    per_step: usize,
    next_line: usize,
    countdown: usize,
}

impl<'a> Prefetcher<'a> {
    fn new(ahead: &'a [f32], k: usize) -> Prefetcher<'a> {
        let lines = ahead.len().div_ceil(LINE);
        Prefetcher {
            ahead,
            lines,
            every: k.checked_div(lines).map_or(usize::MAX, |e| e.max(1)),
            per_step: lines.div_ceil(k.max(1)),
            next_line: 0,
            countdown: 0,
        }
    }

    #[inline(always)]
    fn step(&mut self) {
        if self.countdown == 0 {
            self.countdown = self.every;
            for _ in 0..self.per_step.min(self.lines - self.next_line) {
                // SAFETY: next_line < lines, so the line starts inside `ahead`; prefetching
                // never faults.
                unsafe {
                    _mm_prefetch::<_MM_HINT_T1>(
                        self.ahead.as_ptr().add(self.next_line * LINE).cast(),
                    );
                }
                self.next_line += 1;
            }
        }
        self.countdown -= 1;
    }
}

/// f32 tile of `rows` (≤ [`F32_ROWS`]) rows against one panel; see
/// `PackedMatrix::matmul`. `ahead` is prefetched on the way, half per pass.
///
/// # Safety
/// AVX2 and FMA; `x` holds rows × k values, `panel` k × 32, `y` the tile's outputs.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma")]
pub unsafe fn f32_tile(
    x: &[f32],
    rows: usize,
    k: usize,
    panel: &[f32],
    y: *mut f32,
    n: usize,
    cols: usize,
    ahead: &[f32],
) {
    debug_assert!(x.len() >= rows * k && panel.len() >= k * PANEL);
    let (first, second) = ahead.split_at(ahead.len() / 2);
    for (half, ahead) in [(0, first), (1, second)] {
        let c0 = half * HALF;
        if c0 >= cols {
            break;
        }
        let pass_cols = HALF.min(cols - c0);
        // SAFETY (all arms): forwarded from the caller; the pass's columns start at c0.
        unsafe {
            let (pp, yp) = (panel.as_ptr().add(c0), y.add(c0));
            match rows {
                6 => f32_pass::<6>(x, k, pp, yp, n, pass_cols, ahead),
                5 => f32_pass::<5>(x, k, pp, yp, n, pass_cols, ahead),
                4 => f32_pass::<4>(x, k, pp, yp, n, pass_cols, ahead),
                3 => f32_pass::<3>(x, k, pp, yp, n, pass_cols, ahead),
                2 => f32_pass::<2>(x, k, pp, yp, n, pass_cols, ahead),
                1 => f32_pass::<1>(x, k, pp, yp, n, pass_cols, ahead),
                _ => unreachable!("AVX2 f32 tiles hold 1..={F32_ROWS} rows"),
            }
        }
    }
}

/// One pass: R rows × 16 columns from `pp` (a panel's column c0, row stride [`PANEL`]).
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma")]
unsafe fn f32_pass<const R: usize>(
    x: &[f32],
    k: usize,
    pp: *const f32,
    y: *mut f32,
    n: usize,
    cols: usize,
    ahead: &[f32],
) {
    let xp = x.as_ptr();
    let mut prefetch = Prefetcher::new(ahead, k);
    let mut acc = [[_mm256_setzero_ps(); 2]; R];
    for kk in 0..k {
        if !ahead.is_empty() {
            prefetch.step();
        }
        // SAFETY: kk < k, so the 16 panel values of step kk and x[r][kk] are in bounds.
        unsafe {
            let w0 = _mm256_loadu_ps(pp.add(kk * PANEL));
            let w1 = _mm256_loadu_ps(pp.add(kk * PANEL + 8));
            for (r, a) in acc.iter_mut().enumerate() {
                let xv = _mm256_broadcast_ss(&*xp.add(r * k + kk));
                a[0] = _mm256_fmadd_ps(xv, w0, a[0]);
                a[1] = _mm256_fmadd_ps(xv, w1, a[1]);
            }
        }
    }
    // SAFETY: forwarded from the caller.
    unsafe { store(&acc, y, n, cols) };
}
