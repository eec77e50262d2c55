//! Extended-range floating point: an `f64` mantissa with an `i64` binary exponent.
//!
//! Values such as `1/2006!` or `10^(10^10)` keep their magnitude instead of flushing to
//! zero or infinity, so numeric comparison can still tell them apart.

use std::cmp::Ordering;

/// Largest binary exponent kept before a value counts as infinite (or zero).
const MAX_EXP: i64 = 1 << 60;

/// A real number `m * 2^e` with `0.5 <= |m| < 1` (or `m` zero, infinite or NaN).
#[derive(Clone, Copy, Debug)]
pub struct XFloat {
    m: f64,
    e: i64,
}

/// Splits a finite non-zero `f64` into a mantissa in `[0.5, 1)` and a binary exponent.
fn frexp(x: f64) -> (f64, i64) {
    if x == 0.0 || !x.is_finite() {
        return (x, 0);
    }
    let bits = x.to_bits();
    let exp = ((bits >> 52) & 0x7ff) as i64;
    if exp == 0 {
        // Subnormal: scale into the normal range first.
        let (m, e) = frexp(x * f64::from_bits(0x43f0_0000_0000_0000)); // 2^64
        return (m, e - 64);
    }
    let m = f64::from_bits((bits & !(0x7ff << 52)) | (1022 << 52));
    (m, exp - 1022)
}

/// `2^k` for `k` within the normal `f64` exponent range.
fn pow2(k: i64) -> f64 {
    f64::from_bits(((k + 1023) as u64) << 52)
}

impl XFloat {
    /// Zero.
    pub const ZERO: XFloat = XFloat { m: 0.0, e: 0 };
    /// Not a number (undefined result).
    pub const NAN: XFloat = XFloat { m: f64::NAN, e: 0 };

    /// Builds from `m * 2^e`, normalising the mantissa and saturating the exponent.
    pub fn from_parts(m: f64, e: i64) -> XFloat {
        if m == 0.0 || !m.is_finite() {
            return XFloat { m, e: 0 };
        }
        let (mm, me) = frexp(m);
        let e = e.saturating_add(me);
        if e > MAX_EXP {
            XFloat {
                m: f64::INFINITY.copysign(mm),
                e: 0,
            }
        } else if e < -MAX_EXP {
            XFloat::ZERO
        } else {
            XFloat { m: mm, e }
        }
    }

    /// Converts an `f64`.
    pub fn from_f64(x: f64) -> XFloat {
        XFloat::from_parts(x, 0)
    }

    /// The nearest `f64` (may overflow to infinity or underflow to zero).
    pub fn to_f64(self) -> f64 {
        if self.m == 0.0 || !self.m.is_finite() {
            return self.m;
        }
        if self.e > 1100 {
            return f64::INFINITY.copysign(self.m);
        }
        if self.e < -1100 {
            return 0.0;
        }
        let half = self.e / 2;
        self.m * pow2(half) * pow2(self.e - half)
    }

    /// Whether the value is NaN.
    pub fn is_nan(self) -> bool {
        self.m.is_nan()
    }

    /// Whether the value is infinite.
    pub fn is_infinite(self) -> bool {
        self.m.is_infinite()
    }

    /// Whether the value is finite (not NaN, not infinite).
    pub fn is_finite(self) -> bool {
        self.m.is_finite()
    }

    /// Whether the value is exactly zero.
    pub fn is_zero(self) -> bool {
        self.m == 0.0
    }

    /// Sign: -1, 0 or 1 (NaN gives 0).
    pub fn signum(self) -> i32 {
        if self.m > 0.0 {
            1
        } else if self.m < 0.0 {
            -1
        } else {
            0
        }
    }

    /// Absolute value.
    pub fn abs(self) -> XFloat {
        XFloat {
            m: self.m.abs(),
            e: self.e,
        }
    }

    /// Negation.
    pub fn neg(self) -> XFloat {
        XFloat {
            m: -self.m,
            e: self.e,
        }
    }

    /// Product.
    pub fn mul(self, o: XFloat) -> XFloat {
        XFloat::from_parts(self.m * o.m, self.e.saturating_add(o.e))
    }

    /// Quotient.
    pub fn div(self, o: XFloat) -> XFloat {
        if o.m == 0.0 {
            return XFloat::NAN;
        }
        XFloat::from_parts(self.m / o.m, self.e.saturating_sub(o.e))
    }

    /// Sum.
    pub fn add(self, o: XFloat) -> XFloat {
        if !self.m.is_finite() || !o.m.is_finite() {
            return XFloat {
                m: self.m + o.m,
                e: 0,
            };
        }
        if self.m == 0.0 {
            return o;
        }
        if o.m == 0.0 {
            return self;
        }
        let (big, small) = if self.e >= o.e { (self, o) } else { (o, self) };
        let diff = big.e - small.e;
        if diff > 200 {
            return big;
        }
        XFloat::from_parts(big.m + small.m * pow2(-diff), big.e)
    }

    /// Difference.
    pub fn sub(self, o: XFloat) -> XFloat {
        self.add(o.neg())
    }

    /// Scales by a plain `f64`.
    pub fn scale(self, k: f64) -> XFloat {
        self.mul(XFloat::from_f64(k))
    }

    /// Natural logarithm of the absolute value, as an `f64`.
    pub fn ln_abs(self) -> f64 {
        if self.m == 0.0 {
            return f64::NEG_INFINITY;
        }
        self.m.abs().ln() + self.e as f64 * std::f64::consts::LN_2
    }

    /// `exp(l)` for an `f64` exponent, without overflow for large `l`.
    pub fn exp_of(l: f64) -> XFloat {
        if l.is_nan() {
            return XFloat::NAN;
        }
        let k = l / std::f64::consts::LN_2;
        if k > MAX_EXP as f64 {
            return XFloat {
                m: f64::INFINITY,
                e: 0,
            };
        }
        if k < -(MAX_EXP as f64) {
            return XFloat::ZERO;
        }
        let n = k.floor();
        let f = k - n;
        XFloat::from_parts(f.exp2(), n as i64)
    }

    /// Square root (NaN for negatives).
    pub fn sqrt(self) -> XFloat {
        if self.m < 0.0 {
            return XFloat::NAN;
        }
        if self.m == 0.0 || !self.m.is_finite() {
            return self;
        }
        if self.e % 2 == 0 {
            XFloat::from_parts(self.m.sqrt(), self.e / 2)
        } else {
            XFloat::from_parts((self.m * 2.0).sqrt(), (self.e - 1) / 2)
        }
    }

    /// Compares magnitudes `|self|` and `|o|` (NaN compares as equal).
    pub fn cmp_abs(self, o: XFloat) -> Ordering {
        let (a, b) = (self.abs(), o.abs());
        if a.m.is_nan() || b.m.is_nan() {
            return Ordering::Equal;
        }
        if a.m.is_infinite() || b.m.is_infinite() {
            return a.m.partial_cmp(&b.m).unwrap_or(Ordering::Equal);
        }
        if a.m == 0.0 || b.m == 0.0 {
            return a.m.partial_cmp(&b.m).unwrap_or(Ordering::Equal);
        }
        a.e.cmp(&b.e)
            .then(a.m.partial_cmp(&b.m).unwrap_or(Ordering::Equal))
    }

    /// Larger of two magnitudes.
    pub fn max_abs(self, o: XFloat) -> XFloat {
        if self.cmp_abs(o) == Ordering::Less {
            o.abs()
        } else {
            self.abs()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_keeps_tiny_values() {
        let x = XFloat::from_f64(3.5);
        assert_eq!(x.to_f64(), 3.5);
        let tiny = XFloat::exp_of(-20_000.0);
        assert!(!tiny.is_zero());
        assert_eq!(tiny.to_f64(), 0.0);
        let ratio = tiny.div(XFloat::exp_of(-20_001.0)).to_f64();
        assert!((ratio - std::f64::consts::E).abs() < 1e-9, "{ratio}");
        assert_eq!(
            XFloat::from_f64(2.0).add(XFloat::from_f64(-0.5)).to_f64(),
            1.5
        );
        let four = XFloat::from_f64(8.0)
            .sqrt()
            .mul(XFloat::from_f64(2.0).sqrt())
            .to_f64();
        assert!((four - 4.0).abs() < 1e-12);
    }
}
