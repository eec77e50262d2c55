//! The packed kernels on AVX-512: f32 tiles of eight rows × one panel with `vfmadd231ps`, and
//! bf16 tiles with AVX-512 BF16 (`vdpbf16ps`), plus the bf16 rounding and pairing of rows.

use super::layout::{PANEL, TILE_ROWS, bf16_bits};
use std::arch::x86_64::*;

/// Writes the accumulators of a tile: full panels with plain stores, the last (narrower)
/// panel with masked ones.
///
/// # Safety
/// AVX-512F; `y` must hold `acc.len()` rows (stride `n`) of `cols` values.
#[target_feature(enable = "avx512f")]
unsafe fn store(acc: &[[__m512; 2]], y: *mut f32, n: usize, cols: usize) {
    for (r, a) in acc.iter().enumerate() {
        // SAFETY: row r of the tile lies inside y; masked lanes are not written.
        unsafe {
            let yr = y.add(r * n);
            if cols == PANEL {
                _mm512_storeu_ps(yr, a[0]);
                _mm512_storeu_ps(yr.add(16), a[1]);
            } else {
                let lo = cols.min(16);
                let hi = cols - lo;
                _mm512_mask_storeu_ps(yr, ((1u32 << lo) - 1) as u16, a[0]);
                _mm512_mask_storeu_ps(yr.add(16), ((1u32 << hi) - 1) as u16, a[1]);
            }
        }
    }
}

/// f32 tile of `rows` (≤ 8) rows; see `PackedMatrix::matmul`. The cache lines of
/// `ahead` are prefetched into L2, spread evenly over the k steps.
///
/// # Safety
/// AVX-512F; `x` holds rows × k values, `panel` k × 32, `y` the tile's outputs.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f")]
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
    // SAFETY (all arms): forwarded from the caller.
    unsafe {
        match rows {
            8 => f32_rows::<8>(x, k, panel, y, n, cols, ahead),
            7 => f32_rows::<7>(x, k, panel, y, n, cols, ahead),
            6 => f32_rows::<6>(x, k, panel, y, n, cols, ahead),
            5 => f32_rows::<5>(x, k, panel, y, n, cols, ahead),
            4 => f32_rows::<4>(x, k, panel, y, n, cols, ahead),
            3 => f32_rows::<3>(x, k, panel, y, n, cols, ahead),
            2 => f32_rows::<2>(x, k, panel, y, n, cols, ahead),
            1 => f32_rows::<1>(x, k, panel, y, n, cols, ahead),
            _ => unreachable!("tiles hold 1..={TILE_ROWS} rows"),
        }
    }
}

/// f32 values per cache line.
const LINE: usize = 16;

#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f")]
unsafe fn f32_rows<const R: usize>(
    x: &[f32],
    k: usize,
    panel: &[f32],
    y: *mut f32,
    n: usize,
    cols: usize,
    ahead: &[f32],
) {
    debug_assert!(x.len() >= R * k && panel.len() >= k * PANEL);
    let (xp, pp) = (x.as_ptr(), panel.as_ptr());
    // One prefetch every `every` k steps covers `ahead` by the end of the tile.
    let lines = ahead.len().div_ceil(LINE);
    let every = k.checked_div(lines).map_or(usize::MAX, |e| e.max(1));
    let per_step = lines.div_ceil(k.max(1));
    if !ahead.is_empty() {
        // The next panel's outputs of these rows: a wide product (the LM head) writes
        // rows far apart, each store a cache miss without this. Only an address hint
        // (`wrapping_add`, prefetches never fault).
        for r in 0..R {
            let line = y.wrapping_add(r * n + PANEL);
            _mm_prefetch::<_MM_HINT_T0>(line.cast_const().cast());
            _mm_prefetch::<_MM_HINT_T0>(line.wrapping_add(LINE).cast_const().cast());
        }
    }
    let mut next_line = 0;
    let mut countdown = 0;
    let mut acc = [[_mm512_setzero_ps(); 2]; R];
    for kk in 0..k {
        if countdown == 0 {
            countdown = every;
            for _ in 0..per_step.min(lines - next_line) {
                // SAFETY: next_line < lines, so the line starts inside `ahead`;
                // prefetching never faults.
                unsafe {
                    _mm_prefetch::<_MM_HINT_T1>(ahead.as_ptr().add(next_line * LINE).cast());
                }
                next_line += 1;
            }
        }
        countdown -= 1;
        // SAFETY: kk < k, so the 32 panel values of step kk and x[r][kk] are in bounds.
        unsafe {
            let w0 = _mm512_loadu_ps(pp.add(kk * PANEL));
            let w1 = _mm512_loadu_ps(pp.add(kk * PANEL + 16));
            for (r, a) in acc.iter_mut().enumerate() {
                let xv = _mm512_set1_ps(*xp.add(r * k + kk));
                a[0] = _mm512_fmadd_ps(xv, w0, a[0]);
                a[1] = _mm512_fmadd_ps(xv, w1, a[1]);
            }
        }
    }
    // SAFETY: forwarded from the caller.
    unsafe { store(&acc, y, n, cols) };
}

/// `dst[i]` = `src[i]` rounded to bf16 (nearest even; `vcvtneps2bf16`, which reads
/// subnormal inputs as zero), as bits.
///
/// # Safety
/// AVX-512F and AVX-512 BF16; `dst` at least as long as `src`.
#[target_feature(enable = "avx512f,avx512bf16")]
pub unsafe fn round_to_bf16(src: &[f32], dst: &mut [u16]) {
    debug_assert!(dst.len() >= src.len());
    let whole = src.len() / 16 * 16;
    for i in (0..whole).step_by(16) {
        // SAFETY: i + 16 <= src.len() <= dst.len(); __m256bh and __m256i are both 32 bytes
        // of plain bits.
        unsafe {
            let v = _mm512_loadu_ps(src.as_ptr().add(i));
            let b: __m256i = std::mem::transmute(_mm512_cvtneps_pbh(v));
            _mm256_storeu_si256(dst.as_mut_ptr().add(i).cast(), b);
        }
    }
    for i in whole..src.len() {
        dst[i] = half::bf16::from_f32(src[i]).to_bits();
    }
}

/// See `interleave_bf16` in the parent module.
///
/// # Safety
/// AVX-512F and AVX-512 BF16; `even` (and `odd`) at least as long as `out`.
#[target_feature(enable = "avx512f,avx512bf16")]
pub unsafe fn interleave_bf16(even: &[f32], odd: Option<&[f32]>, out: &mut [u32]) {
    debug_assert!(even.len() >= out.len() && odd.is_none_or(|o| o.len() >= out.len()));
    let whole = out.len() / 16 * 16;
    // SAFETY: 16 values from i < whole lie inside even, odd and out.
    let widen = |v: &[f32], i: usize| unsafe {
        let b: __m256i =
            std::mem::transmute(_mm512_cvtneps_pbh(_mm512_loadu_ps(v.as_ptr().add(i))));
        _mm512_cvtepu16_epi32(b)
    };
    for i in (0..whole).step_by(16) {
        let lo = widen(even, i);
        let pair = match odd {
            Some(o) => _mm512_or_si512(lo, _mm512_slli_epi32::<16>(widen(o, i))),
            None => lo,
        };
        // SAFETY: i + 16 <= out.len().
        unsafe { _mm512_storeu_si512(out.as_mut_ptr().add(i).cast(), pair) };
    }
    for i in whole..out.len() {
        let hi = odd.map_or(0, |o| bf16_bits(o[i]));
        out[i] = bf16_bits(even[i]) | (hi << 16);
    }
}

/// bf16 tile of `rows` (≤ 8) rows of pairs; see `PackedMatrix::matmul`.
///
/// # Safety
/// AVX-512F and AVX-512 BF16; `x` holds rows × k2 pairs, `panel` k2 × 32, `y` the outputs.
#[target_feature(enable = "avx512f,avx512bf16")]
pub unsafe fn bf16_tile(
    x: &[u32],
    rows: usize,
    k2: usize,
    panel: &[u32],
    y: *mut f32,
    n: usize,
    cols: usize,
) {
    // SAFETY (all arms): forwarded from the caller.
    unsafe {
        match rows {
            8 => bf16_rows::<8>(x, k2, panel, y, n, cols),
            7 => bf16_rows::<7>(x, k2, panel, y, n, cols),
            6 => bf16_rows::<6>(x, k2, panel, y, n, cols),
            5 => bf16_rows::<5>(x, k2, panel, y, n, cols),
            4 => bf16_rows::<4>(x, k2, panel, y, n, cols),
            3 => bf16_rows::<3>(x, k2, panel, y, n, cols),
            2 => bf16_rows::<2>(x, k2, panel, y, n, cols),
            1 => bf16_rows::<1>(x, k2, panel, y, n, cols),
            _ => unreachable!("tiles hold 1..={TILE_ROWS} rows"),
        }
    }
}

#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn bf16_rows<const R: usize>(
    x: &[u32],
    k2: usize,
    panel: &[u32],
    y: *mut f32,
    n: usize,
    cols: usize,
) {
    debug_assert!(x.len() >= R * k2 && panel.len() >= k2 * PANEL);
    let (xp, pp) = (x.as_ptr(), panel.as_ptr());
    let mut acc = [[_mm512_setzero_ps(); 2]; R];
    for kp in 0..k2 {
        // SAFETY: kp < k2, so the 32 panel pairs of step kp and x[r][kp] are in bounds;
        // __m512i and __m512bh are both 64-byte vectors of plain bits.
        unsafe {
            let w0: __m512bh =
                std::mem::transmute(_mm512_loadu_si512(pp.add(kp * PANEL) as *const _));
            let w1: __m512bh =
                std::mem::transmute(_mm512_loadu_si512(pp.add(kp * PANEL + 16) as *const _));
            for (r, a) in acc.iter_mut().enumerate() {
                let xv: __m512bh =
                    std::mem::transmute(_mm512_set1_epi32(*xp.add(r * k2 + kp) as i32));
                a[0] = _mm512_dpbf16_ps(a[0], xv, w0);
                a[1] = _mm512_dpbf16_ps(a[1], xv, w1);
            }
        }
    }
    // SAFETY: forwarded from the caller.
    unsafe { store(&acc, y, n, cols) };
}
