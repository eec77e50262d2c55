//! Sixteen exponentials at a time on AVX-512F.

use std::arch::x86_64::*;

use super::portable::{CEILING, FLOOR, LN2_HI, LN2_LO, TAYLOR};

/// e^x = 2^n · e^r with n = round(x / ln 2) and |r| ≤ ln 2 / 2 (ln 2 split in two parts),
/// e^r by its Taylor series to r^7; 0 below e^-87 (under f32's smallest normal); NaN for
/// NaN; ∞ above 100 (the argument is clamped there, so +∞ gives ∞, not ∞ − ∞). Each lane is
/// `portable::exp_lane` (`vscalefps` scales in one step what it scales in two, exactly).
#[inline]
#[target_feature(enable = "avx512f")]
fn exp16(x: __m512) -> __m512 {
    let floor = _mm512_set1_ps(FLOOR);
    let small = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(x, floor);
    // `max_ps` and `min_ps` return their second operand where either is NaN: a NaN stays NaN.
    let x = _mm512_min_ps(_mm512_set1_ps(CEILING), _mm512_max_ps(floor, x));
    let n = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
        _mm512_mul_ps(x, _mm512_set1_ps(std::f32::consts::LOG2_E)),
    );
    let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(LN2_HI), x);
    let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(LN2_LO), r);
    let mut p = _mm512_set1_ps(1.0 / 5040.0);
    for c in TAYLOR {
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c));
    }
    _mm512_maskz_mov_ps(!small, _mm512_scalef_ps(p, n))
}

/// # Safety
/// AVX-512F; the output at least as long as `xs`.
#[target_feature(enable = "avx512f")]
pub unsafe fn shifted_exps(xs: &[f32], shift: f32, out: &mut [f64]) {
    debug_assert!(out.len() >= xs.len());
    let whole = xs.len() / 16 * 16;
    let s = _mm512_set1_ps(shift);
    for i in (0..whole).step_by(16) {
        // SAFETY: i + 16 <= xs.len() <= out.len().
        unsafe {
            let e = exp16(_mm512_sub_ps(_mm512_loadu_ps(xs.as_ptr().add(i)), s));
            let lo = _mm512_castps512_ps256(e);
            let hi = _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(e)));
            _mm512_storeu_pd(out.as_mut_ptr().add(i), _mm512_cvtps_pd(lo));
            _mm512_storeu_pd(out.as_mut_ptr().add(i + 8), _mm512_cvtps_pd(hi));
        }
    }
    for i in whole..xs.len() {
        out[i] = ((xs[i] - shift) as f64).exp();
    }
}

/// # Safety
/// AVX-512F.
#[target_feature(enable = "avx512f")]
pub unsafe fn shifted_exps_in_place(v: &mut [f32], shift: f32) {
    let whole = v.len() / 16 * 16;
    let s = _mm512_set1_ps(shift);
    for i in (0..whole).step_by(16) {
        // SAFETY: i + 16 <= v.len().
        unsafe {
            let p = v.as_mut_ptr().add(i);
            _mm512_storeu_ps(p, exp16(_mm512_sub_ps(_mm512_loadu_ps(p), s)));
        }
    }
    for x in &mut v[whole..] {
        *x = (*x - shift).exp();
    }
}
