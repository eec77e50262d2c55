//! Exponentials of shifted values, `exp(x - shift)`, for softmax-like sums over long rows (the
//! sampler's vocabulary, attention scores): 16 at a time on AVX-512, 8 at a time on AVX2 with
//! FMA, in f32 with a relative error under 3e-7, far below what a sampled token or a
//! log-probability can see; elsewhere the portable loops, which compute the 8-lane kernel's
//! bits. The polynomial is [`portable::exp_lane`]; each vector kernel reproduces the portable
//! functions of its lane count bit for bit.

#[cfg(target_arch = "x86_64")]
use crate::cpu::isa;

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
pub mod portable;

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
        let isa = isa();
        if isa.avx512f {
            return Width::Avx512;
        }
        if isa.avx2_fma {
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
        Width::Scalar => portable::shifted_exps_f64_lanes::<8>(xs, shift, &mut out),
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
        Width::Scalar => portable::shifted_exps_in_place_lanes::<8>(v, shift),
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

    /// Each vector kernel this CPU runs gives the bits of the portable functions of its lane
    /// count (a NaN stays a NaN, whatever its payload), special values included.
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn vector_kernels_give_the_portable_bits() {
        let isa = isa();
        let mut xs = vec![f32::NAN, 60.0, 95.0, f32::INFINITY, -f32::INFINITY, 150.0];
        xs.extend(samples(2.0));
        let same = |a: f32, b: f32| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan());
        let same_wide = |a: f64, b: f64| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan());
        for len in [xs.len(), 13, 8, 7] {
            let xs = &xs[..len];
            let shift = 0.25;
            let mut want8 = xs.to_vec();
            portable::shifted_exps_in_place_lanes::<8>(&mut want8, shift);
            let mut want16 = xs.to_vec();
            portable::shifted_exps_in_place_lanes::<16>(&mut want16, shift);
            let mut wide8 = vec![0f64; len];
            portable::shifted_exps_f64_lanes::<8>(xs, shift, &mut wide8);
            let mut wide16 = vec![0f64; len];
            portable::shifted_exps_f64_lanes::<16>(xs, shift, &mut wide16);
            let mut got = xs.to_vec();
            let mut wide = vec![0f64; len];
            if isa.avx2_fma {
                // SAFETY: AVX2 and FMA are present; `wide` is as long as `xs`.
                unsafe {
                    avx2::shifted_exps_in_place(&mut got, shift);
                    avx2::shifted_exps(xs, shift, &mut wide);
                }
                assert!(
                    got.iter().zip(&want8).all(|(a, b)| same(*a, *b)),
                    "avx2, {len}"
                );
                assert!(
                    wide.iter().zip(&wide8).all(|(a, b)| same_wide(*a, *b)),
                    "avx2 f64, {len}"
                );
            }
            if isa.avx512f {
                let mut got = xs.to_vec();
                // SAFETY: AVX-512F is present; `wide` is as long as `xs`.
                unsafe {
                    avx512::shifted_exps_in_place(&mut got, shift);
                    avx512::shifted_exps(xs, shift, &mut wide);
                }
                assert!(
                    got.iter().zip(&want16).all(|(a, b)| same(*a, *b)),
                    "avx512, {len}"
                );
                assert!(
                    wide.iter().zip(&wide16).all(|(a, b)| same_wide(*a, *b)),
                    "avx512 f64, {len}"
                );
            }
        }
    }

    /// The AVX2 kernels on every CPU that has them (AVX-512 CPUs run the wider ones above).
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn avx2_exponentials_match_f64() {
        if !isa().avx2_fma {
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
