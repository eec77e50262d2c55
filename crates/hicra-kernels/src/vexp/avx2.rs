//! Eight exponentials at a time on AVX2 with FMA.

use std::arch::x86_64::*;

use super::portable::{CEILING, FLOOR, LN2_HI, LN2_LO, TAYLOR};

/// `portable::exp_lane` on eight lanes: 2^n is built in the exponent bits, in two factors
/// (n ≤ 145 after clamping x to 100, each factor a normal number), so large x still
/// overflows to infinity.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn exp8(x: __m256) -> __m256 {
    let floor = _mm256_set1_ps(FLOOR);
    let small = _mm256_cmp_ps::<_CMP_LT_OQ>(x, floor);
    // `max_ps` and `min_ps` return their second operand where either is NaN: a NaN stays
    // NaN (and so does the polynomial of it).
    let x = _mm256_min_ps(_mm256_set1_ps(CEILING), _mm256_max_ps(floor, x));
    let n = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(_mm256_mul_ps(
        x,
        _mm256_set1_ps(std::f32::consts::LOG2_E),
    ));
    let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LN2_HI), x);
    let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LN2_LO), r);
    let mut p = _mm256_set1_ps(1.0 / 5040.0);
    for c in TAYLOR {
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(c));
    }
    let n = _mm256_cvtps_epi32(n);
    let half = _mm256_srai_epi32::<1>(n);
    let power = |e: __m256i| {
        _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(
            e,
            _mm256_set1_epi32(127),
        )))
    };
    let scaled = _mm256_mul_ps(
        _mm256_mul_ps(p, power(half)),
        power(_mm256_sub_epi32(n, half)),
    );
    _mm256_andnot_ps(small, scaled)
}

/// # Safety
/// AVX2 and FMA; the output at least as long as `xs`.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn shifted_exps(xs: &[f32], shift: f32, out: &mut [f64]) {
    debug_assert!(out.len() >= xs.len());
    let whole = xs.len() / 8 * 8;
    let s = _mm256_set1_ps(shift);
    for i in (0..whole).step_by(8) {
        // SAFETY: i + 8 <= xs.len() <= out.len().
        unsafe {
            let e = exp8(_mm256_sub_ps(_mm256_loadu_ps(xs.as_ptr().add(i)), s));
            let lo = _mm256_castps256_ps128(e);
            let hi = _mm256_extractf128_ps::<1>(e);
            _mm256_storeu_pd(out.as_mut_ptr().add(i), _mm256_cvtps_pd(lo));
            _mm256_storeu_pd(out.as_mut_ptr().add(i + 4), _mm256_cvtps_pd(hi));
        }
    }
    for i in whole..xs.len() {
        out[i] = ((xs[i] - shift) as f64).exp();
    }
}

/// # Safety
/// AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn shifted_exps_in_place(v: &mut [f32], shift: f32) {
    let whole = v.len() / 8 * 8;
    let s = _mm256_set1_ps(shift);
    for i in (0..whole).step_by(8) {
        // SAFETY: i + 8 <= v.len().
        unsafe {
            let p = v.as_mut_ptr().add(i);
            _mm256_storeu_ps(p, exp8(_mm256_sub_ps(_mm256_loadu_ps(p), s)));
        }
    }
    for x in &mut v[whole..] {
        *x = (*x - shift).exp();
    }
}
