//! Exponentials of shifted values, `exp(x - shift)`, for softmax-like sums over long rows (the
//! sampler's vocabulary, attention scores): 16 at a time on AVX-512, 8 at a time on AVX2 with
//! FMA, in f32 with a relative error under 3e-7, far below what a sampled token or a
//! log-probability can see; elsewhere one at a time.

/// Which vector width this CPU runs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Width {
    Scalar,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    #[cfg(target_arch = "x86_64")]
    Avx512,
}

fn width() -> Width {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        if has!("avx512f") {
            return Width::Avx512;
        }
        if has!("avx2") && has!("fma") {
            return Width::Avx2;
        }
    }
    Width::Scalar
}

/// `exp(x - shift)` for every `x`, as f64 (the sampler's weights).
pub fn shifted_exps_f64(xs: &[f32], shift: f32) -> Vec<f64> {
    let mut out = vec![0f64; xs.len()];
    match width() {
        // SAFETY (both arms): the CPU has the instructions; `out` is as long as `xs`.
        #[cfg(target_arch = "x86_64")]
        Width::Avx512 => unsafe { avx512::shifted_exps(xs, shift, &mut out) },
        #[cfg(target_arch = "x86_64")]
        Width::Avx2 => unsafe { avx2::shifted_exps(xs, shift, &mut out) },
        Width::Scalar => {
            for (o, &x) in out.iter_mut().zip(xs) {
                *o = ((x - shift) as f64).exp();
            }
        }
    }
    out
}

/// `v[i] = exp(v[i] - shift)` in place.
pub fn shifted_exps_in_place(v: &mut [f32], shift: f32) {
    match width() {
        // SAFETY (both arms): the CPU has the instructions; the output is the input.
        #[cfg(target_arch = "x86_64")]
        Width::Avx512 => unsafe { avx512::shifted_exps_in_place(v, shift) },
        #[cfg(target_arch = "x86_64")]
        Width::Avx2 => unsafe { avx2::shifted_exps_in_place(v, shift) },
        Width::Scalar => v.iter_mut().for_each(|x| *x = (*x - shift).exp()),
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    /// As `avx512::exp16`, eight lanes: 2^n is built in the exponent bits, in two factors
    /// (n ≤ 145 after clamping x to 100, each factor a normal number), so large x still
    /// overflows to infinity.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn exp8(x: __m256) -> __m256 {
        let floor = _mm256_set1_ps(-87.0);
        let small = _mm256_cmp_ps::<_CMP_LT_OQ>(x, floor);
        // `max_ps` and `min_ps` return their second operand where either is NaN: a NaN stays
        // NaN (and so does the polynomial of it).
        let x = _mm256_min_ps(_mm256_set1_ps(100.0), _mm256_max_ps(floor, x));
        let n = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
            _mm256_mul_ps(x, _mm256_set1_ps(std::f32::consts::LOG2_E)),
        );
        let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693_145_75), x);
        let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.428_606_8e-6), r);
        let mut p = _mm256_set1_ps(1.0 / 5040.0);
        for c in [
            1.0 / 720.0,
            1.0 / 120.0,
            1.0 / 24.0,
            1.0 / 6.0,
            0.5,
            1.0,
            1.0,
        ] {
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
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    /// e^x = 2^n · e^r with n = round(x / ln 2) and |r| ≤ ln 2 / 2 (ln 2 split in two parts),
    /// e^r by its Taylor series to r^7; 0 below e^-87 (under f32's smallest normal); NaN for
    /// NaN.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn exp16(x: __m512) -> __m512 {
        let floor = _mm512_set1_ps(-87.0);
        let small = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(x, floor);
        // `max_ps` returns its second operand where either is NaN: a NaN stays NaN.
        let x = _mm512_max_ps(floor, x);
        let n = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
            _mm512_mul_ps(x, _mm512_set1_ps(std::f32::consts::LOG2_E)),
        );
        let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693_145_75), x);
        let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428_606_8e-6), r);
        let mut p = _mm512_set1_ps(1.0 / 5040.0);
        for c in [
            1.0 / 720.0,
            1.0 / 120.0,
            1.0 / 24.0,
            1.0 / 6.0,
            0.5,
            1.0,
            1.0,
        ] {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values over the range a shifted logit takes, with the edges, -inf and a tail of 5.
    fn samples(shift: f32) -> Vec<f32> {
        (0..2005)
            .map(|i| shift - (i as f32) * 0.05)
            .chain([
                shift,
                shift - 86.9,
                shift - 87.5,
                shift - 200.0,
                f32::NEG_INFINITY,
            ])
            .collect()
    }

    #[test]
    fn a_nan_stays_nan() {
        let mut xs = vec![1.0f32; 40];
        xs[3] = f32::NAN;
        xs[37] = f32::NAN;
        let wide = shifted_exps_f64(&xs, 0.5);
        shifted_exps_in_place(&mut xs, 0.5);
        for i in [3, 37] {
            assert!(xs[i].is_nan() && wide[i].is_nan(), "position {i}");
        }
        assert!(xs[0].is_finite() && wide[0].is_finite());
    }

    #[test]
    fn exponentials_match_f64() {
        let shift = 3.5f32;
        let xs = samples(shift);
        let wide = shifted_exps_f64(&xs, shift);
        let mut narrow = xs.clone();
        shifted_exps_in_place(&mut narrow, shift);
        for ((x, w), n) in xs.iter().zip(&wide).zip(&narrow) {
            let want = ((x - shift) as f64).exp();
            let tol = 3e-7 * want + 1e-37;
            assert!(
                (w - want).abs() <= tol,
                "exp({}) = {w}, want {want}",
                x - shift
            );
            assert!(
                (*n as f64 - want).abs() <= tol,
                "exp({}) = {n}, want {want}",
                x - shift
            );
        }
    }

    #[test]
    fn large_arguments_overflow_to_infinity() {
        let xs = [10.0f32, 50.0, 88.0, 89.0, 200.0, f32::INFINITY, 1.0, 2.0];
        let mut narrow = xs;
        shifted_exps_in_place(&mut narrow, 0.0);
        for (x, e) in xs.iter().zip(narrow) {
            let want = (*x as f64).exp();
            if want > f32::MAX as f64 {
                assert_eq!(e, f32::INFINITY, "exp({x})");
            } else {
                assert!((e as f64 - want).abs() <= 3e-7 * want, "exp({x}) = {e}");
            }
        }
    }

    /// The AVX2 kernels on every CPU that has them (AVX-512 CPUs run the wider ones above).
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn avx2_exponentials_match_f64() {
        use std::arch::is_x86_feature_detected as has;
        if !(has!("avx2") && has!("fma")) {
            eprintln!("skipped: this CPU has no AVX2 and FMA");
            return;
        }
        let shift = -1.25f32;
        // The special values in the first vector (the scalar tail widens before it
        // exponentiates, so it would not overflow).
        let mut xs = vec![f32::NAN, 60.0, 95.0, f32::INFINITY];
        xs.extend(samples(shift));
        let mut wide = vec![0f64; xs.len()];
        let mut narrow = xs.clone();
        // SAFETY: AVX2 and FMA are present; `wide` is as long as `xs`.
        unsafe {
            avx2::shifted_exps(&xs, shift, &mut wide);
            avx2::shifted_exps_in_place(&mut narrow, shift);
        }
        for ((x, w), n) in xs.iter().zip(&wide).zip(&narrow) {
            let want = ((x - shift) as f64).exp();
            if x.is_nan() {
                assert!(w.is_nan() && n.is_nan());
            } else if want > f32::MAX as f64 {
                assert!(
                    *n == f32::INFINITY && *w == f64::INFINITY,
                    "exp({})",
                    x - shift
                );
            } else {
                let tol = 3e-7 * want + 1e-37;
                assert!((w - want).abs() <= tol, "exp({}) = {w}", x - shift);
                assert!((*n as f64 - want).abs() <= tol, "exp({}) = {n}", x - shift);
            }
        }
    }
}
