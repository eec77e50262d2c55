//! The exponentials in plain Rust, as the vector kernels compute them: [`exp_lane`] is one lane
//! of their polynomial, and [`shifted_exps_f64_lanes`] / [`shifted_exps_in_place_lanes`] run
//! it over whole steps of `L` values and the standard library's `exp` over the rest, as an
//! `L`-lane kernel does. `L = 8` is AVX2's kernel and the fallback where the CPU has no vector
//! kernel; `L = 16` is AVX-512's. The vector kernels must reproduce these bits.

/// Below this, e^x is flushed to 0 (under f32's smallest normal after scaling).
pub const FLOOR: f32 = -87.0;
/// Arguments are clamped to this before scaling: e^100 overflows to infinity, as does every
/// larger argument, +∞ included.
pub const CEILING: f32 = 100.0;
/// ln 2 in two parts: the first exact in f32 with trailing zeros, so `n · LN2_HI` is exact.
pub const LN2_HI: f32 = 0.693_145_75;
pub const LN2_LO: f32 = 1.428_606_8e-6;
/// The Taylor coefficients of e^r after 1/7!, highest power first (Horner's order).
pub const TAYLOR: [f32; 7] = [
    1.0 / 720.0,
    1.0 / 120.0,
    1.0 / 24.0,
    1.0 / 6.0,
    0.5,
    1.0,
    1.0,
];

/// e^x as one vector lane computes it: `n = round(x / ln 2)` (ties to even), `r = x − n·ln 2`
/// (ln 2 in two parts, fused), e^r by Horner's rule with fused multiply-adds, scaled by `2^n`
/// in two factors (each a normal number, so no intermediate overflows early); 0 below
/// [`FLOOR`], NaN for NaN, ∞ above [`CEILING`].
pub fn exp_lane(x: f32) -> f32 {
    if x < FLOOR {
        return 0.0;
    }
    if x.is_nan() {
        return x;
    }
    let x = x.min(CEILING);
    let n = (x * std::f32::consts::LOG2_E).round_ties_even();
    let r = (-n).mul_add(LN2_HI, x);
    let r = (-n).mul_add(LN2_LO, r);
    let p = TAYLOR
        .iter()
        .fold(1.0 / 5040.0, |p: f32, &c| p.mul_add(r, c));
    let n = n as i32;
    let half = n >> 1;
    p * power_of_two(half) * power_of_two(n - half)
}

/// `2^e` for an exponent of a normal f32 (−126 ≤ e ≤ 127), built in the exponent bits.
fn power_of_two(e: i32) -> f32 {
    f32::from_bits(((e + 127) as u32) << 23)
}

/// `exp(x - shift)` for every `x`, as f64: whole steps of `L` through [`exp_lane`] (widened),
/// the rest through `f64::exp`.
pub fn shifted_exps_f64_lanes<const L: usize>(xs: &[f32], shift: f32, out: &mut [f64]) {
    let whole = xs.len() / L * L;
    for (o, &x) in out[..whole].iter_mut().zip(&xs[..whole]) {
        *o = exp_lane(x - shift) as f64;
    }
    for (o, &x) in out[whole..xs.len()].iter_mut().zip(&xs[whole..]) {
        *o = ((x - shift) as f64).exp();
    }
}

/// `v[i] = exp(v[i] - shift)`: whole steps of `L` through [`exp_lane`], the rest through
/// `f32::exp`.
pub fn shifted_exps_in_place_lanes<const L: usize>(v: &mut [f32], shift: f32) {
    let whole = v.len() / L * L;
    let (head, tail) = v.split_at_mut(whole);
    head.iter_mut().for_each(|x| *x = exp_lane(*x - shift));
    tail.iter_mut().for_each(|x| *x = (*x - shift).exp());
}
