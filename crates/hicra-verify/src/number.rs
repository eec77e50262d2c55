//! Number literals: decimal / scientific parsing into exact rationals, number words, bases.

use crate::expr::Expr;
use num_bigint::BigInt;
use num_rational::BigRational;
use num_traits::{One, Zero};

/// Longest digit string accepted in one literal.
const MAX_LITERAL_DIGITS: usize = 400;
/// Largest `|exponent|` accepted in e-notation literals.
const MAX_LITERAL_EXPONENT: i64 = 400;

/// `10^k` as a big integer.
pub fn pow10(k: u32) -> BigInt {
    num_traits::pow(BigInt::from(10u32), k as usize)
}

/// Parses a literal such as `12`, `3.50`, `.5`, `1.`, `4.5e33` into an exact number.
///
/// Integers (and decimals whose fractional digits are all zero, like `27.0`) give
/// [`Expr::Num`]; other decimals and e-notation give [`Expr::Dec`] with their precision.
pub fn parse_number(s: &str) -> Option<Expr> {
    let (mantissa, exp) = match s.find(['e', 'E']) {
        Some(p) => (&s[..p], s[p + 1..].parse::<i64>().ok()?),
        None => (s, 0),
    };
    if mantissa.len() > MAX_LITERAL_DIGITS || exp.abs() > MAX_LITERAL_EXPONENT {
        return None;
    }
    let (int_part, frac_part) = match mantissa.find('.') {
        Some(p) => (&mantissa[..p], &mantissa[p + 1..]),
        None => (mantissa, ""),
    };
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    if exp == 0 && frac_part.is_empty() && int_part.len() <= 18 {
        // A plain integer that fits a machine word: no big-number parse or reduction.
        if int_part.bytes().all(|b| b.is_ascii_digit()) {
            let n: u64 = int_part.parse().ok()?;
            return Some(Expr::Num(BigRational::from_integer(BigInt::from(n))));
        }
    }
    let digits = format!("{int_part}{frac_part}");
    let int_digits: BigInt = if digits.is_empty() {
        BigInt::zero()
    } else {
        digits.parse().ok()?
    };
    let scale = frac_part.len() as i64 - exp;
    let value = if scale >= 0 {
        BigRational::new(int_digits, pow10(scale as u32))
    } else {
        BigRational::from_integer(int_digits * pow10((-scale) as u32))
    };
    let frac_all_zero = frac_part.bytes().all(|b| b == b'0');
    if exp == 0 && frac_all_zero {
        return Some(Expr::Num(value));
    }
    let sig = digits.trim_start_matches('0').len().max(1) as u32;
    Some(Expr::Dec {
        value,
        ulp: -scale,
        sig,
    })
}

/// Converts the digits of `value` (an integer written in decimal digits) from `base`.
pub fn from_base(digits: &str, base: u32) -> Option<BigInt> {
    if !(2..=36).contains(&base) || digits.is_empty() || digits.len() > 200 {
        return None;
    }
    let mut acc = BigInt::zero();
    for c in digits.chars() {
        let d = c.to_digit(36)?;
        if d >= base {
            return None;
        }
        acc = acc * base + d;
    }
    Some(acc)
}

/// Reads an unambiguous English number word (`zero` … `twenty`, tens, `hundred`).
pub fn number_word(s: &str) -> Option<BigRational> {
    const SMALL: &[&str] = &[
        "zero",
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "eleven",
        "twelve",
        "thirteen",
        "fourteen",
        "fifteen",
        "sixteen",
        "seventeen",
        "eighteen",
        "nineteen",
        "twenty",
    ];
    const TENS: &[(&str, u32)] = &[
        ("thirty", 30),
        ("forty", 40),
        ("fifty", 50),
        ("sixty", 60),
        ("seventy", 70),
        ("eighty", 80),
        ("ninety", 90),
    ];
    let w = s.trim().to_ascii_lowercase();
    if let Some(i) = SMALL.iter().position(|x| *x == w) {
        return Some(BigRational::from_integer(BigInt::from(i)));
    }
    if let Some((_, v)) = TENS.iter().find(|(x, _)| *x == w) {
        return Some(BigRational::from_integer(BigInt::from(*v)));
    }
    match w.as_str() {
        "hundred" | "one hundred" => Some(BigRational::from_integer(BigInt::from(100))),
        "half" | "one half" => Some(BigRational::new(BigInt::one(), BigInt::from(2))),
        _ => None,
    }
}

/// Bit length of a rational's larger component.
pub fn bits(r: &BigRational) -> u64 {
    r.numer().bits().max(r.denom().bits())
}

/// Rounds `x / 10^ulp` half away from zero and compares it to `decimal / 10^ulp`.
pub fn rounds_to(exact: &BigRational, decimal: &BigRational, ulp: i64) -> bool {
    if ulp.abs() > 1_000 {
        return false;
    }
    let scale = if ulp >= 0 {
        BigRational::new(BigInt::one(), pow10(ulp as u32))
    } else {
        BigRational::from_integer(pow10((-ulp) as u32))
    };
    let half = BigRational::new(BigInt::one(), BigInt::from(2));
    let a = exact * &scale;
    let b = decimal * &scale;
    let round = |x: BigRational| -> BigInt {
        if x >= BigRational::zero() {
            (x + &half).floor().to_integer()
        } else {
            -((-x + &half).floor().to_integer())
        }
    };
    round(a) == round(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rat(n: i64, d: i64) -> BigRational {
        BigRational::new(BigInt::from(n), BigInt::from(d))
    }

    #[test]
    fn parses_literals() {
        assert_eq!(parse_number("025"), Some(Expr::Num(rat(25, 1))));
        assert_eq!(parse_number("27.0"), Some(Expr::Num(rat(27, 1))));
        assert_eq!(
            parse_number(".5"),
            Some(Expr::Dec {
                value: rat(1, 2),
                ulp: -1,
                sig: 1
            })
        );
        assert_eq!(
            parse_number("4.5e3"),
            Some(Expr::Dec {
                value: rat(4500, 1),
                ulp: 2,
                sig: 2
            })
        );
        assert_eq!(
            parse_number("1e-5"),
            Some(Expr::Dec {
                value: rat(1, 100000),
                ulp: -5,
                sig: 1
            })
        );
        assert_eq!(from_base("52", 8), Some(BigInt::from(42)));
        assert_eq!(from_base("59", 8), None);
        assert_eq!(number_word("Seven"), Some(rat(7, 1)));
        assert!(rounds_to(&rat(1, 12), &rat(833, 10000), -4));
        assert!(!rounds_to(&rat(1, 12), &rat(834, 10000), -4));
    }
}
