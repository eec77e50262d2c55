//! The statistics `hicra compare` and `hicra eval` share: mean with a Student-t confidence
//! interval, paired differences by seed, and the binomial sampling error of one accuracy.
//!
//! The interval of `n` values with mean `m` and sample standard deviation `s` (divisor
//! `n - 1`) is `m ± t(1 - (1 - level) / 2, n - 1) · s / √n`, the t quantile from `statrs`.
//! It needs two values; with one the interval is absent (JSON `null`), never NaN.

use std::collections::BTreeMap;

use serde::Serialize;
use statrs::distribution::{ContinuousCDF, Normal, StudentsT};

/// The confidence level every interval of `hicra compare` uses.
pub const LEVEL: f64 = 0.95;

/// Mean of some values with its confidence interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Estimate {
    /// Number of values.
    pub n: usize,
    /// Their mean.
    pub mean: f64,
    /// Sample standard deviation (divisor `n - 1`); `None` for one value.
    pub std: Option<f64>,
    /// Half-width of the interval; `None` for one value.
    pub half_width: Option<f64>,
    /// `[mean - half_width, mean + half_width]`; `None` for one value.
    pub ci: Option<[f64; 2]>,
}

/// Above this many degrees of freedom the t quantile is the normal one (they differ by
/// under 1e-4 there, and `statrs`' t inversion loses accuracy far beyond it).
const NORMAL_DOF: f64 = 1e5;

/// The `p` quantile of Student's t distribution with `dof` degrees of freedom.
pub fn t_quantile(p: f64, dof: f64) -> f64 {
    if dof > NORMAL_DOF {
        return Normal::standard().inverse_cdf(p);
    }
    match StudentsT::new(0.0, 1.0, dof) {
        Ok(t) => t.inverse_cdf(p),
        Err(_) => f64::NAN,
    }
}

/// Mean and `level` Student-t interval of `values`; `None` when there are none.
pub fn estimate(values: &[f64], level: f64) -> Option<Estimate> {
    let n = values.len();
    if n == 0 {
        return None;
    }
    let mean = values.iter().sum::<f64>() / n as f64;
    if n == 1 {
        return Some(Estimate {
            n,
            mean,
            std: None,
            half_width: None,
            ci: None,
        });
    }
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    let std = var.sqrt();
    let half = t_quantile(1.0 - (1.0 - level) / 2.0, (n - 1) as f64) * std / (n as f64).sqrt();
    Some(Estimate {
        n,
        mean,
        std: Some(std),
        half_width: Some(half),
        ci: Some([mean - half, mean + half]),
    })
}

/// `method - reference` for every seed both have a value for, in seed order.
pub fn paired_differences(method: &BTreeMap<u64, f64>, reference: &BTreeMap<u64, f64>) -> Vec<f64> {
    method
        .iter()
        .filter_map(|(seed, v)| reference.get(seed).map(|r| v - r))
        .collect()
}

/// Standard error of an accuracy `p` measured on `n` independent problems:
/// `√(p (1 - p) / n)` (0 for `n = 0`).
pub fn binomial_se(p: f64, n: usize) -> f64 {
    if n == 0 {
        return 0.0;
    }
    (p.clamp(0.0, 1.0) * (1.0 - p.clamp(0.0, 1.0)) / n as f64).sqrt()
}

/// `mean [lo, hi]` with `digits` decimals, `mean (n=1)` without an interval, `–` for none.
pub fn format_estimate(e: Option<&Estimate>, digits: usize, signed: bool) -> String {
    let num = |v: f64| {
        if signed {
            format!("{v:+.digits$}")
        } else {
            format!("{v:.digits$}")
        }
    };
    match e {
        None => "–".to_string(),
        Some(Estimate {
            ci: Some([lo, hi]),
            mean,
            ..
        }) => {
            format!("{} [{}, {}]", num(*mean), num(*lo), num(*hi))
        }
        Some(e) => format!("{} (n=1)", num(e.mean)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t_quantiles_match_the_tables() {
        // Two-sided 95 % critical values: 12.706 (1 dof), 2.365 (7), 2.045 (29), 1.962 (1000).
        assert!((t_quantile(0.975, 1.0) - 12.706).abs() < 1e-3);
        assert!((t_quantile(0.975, 7.0) - 2.365).abs() < 1e-3);
        assert!((t_quantile(0.975, 29.0) - 2.045).abs() < 1e-3);
        assert!((t_quantile(0.975, 1000.0) - 1.962).abs() < 1e-3);
        assert!((t_quantile(0.975, 1e9) - 1.960).abs() < 1e-3);
        assert!((t_quantile(0.975, 1e5) - t_quantile(0.975, 1.01e5)).abs() < 1e-4);
        assert!((t_quantile(0.025, 7.0) + 2.365).abs() < 1e-3);
    }

    #[test]
    fn interval_of_known_values() {
        // mean 3, s = √2.5, half = 2.776 · √2.5 / √5 = 1.963
        let e = estimate(&[1.0, 2.0, 3.0, 4.0, 5.0], 0.95).unwrap();
        assert_eq!(e.n, 5);
        assert_eq!(e.mean, 3.0);
        assert!((e.std.unwrap() - 2.5f64.sqrt()).abs() < 1e-12);
        assert!((e.half_width.unwrap() - 1.963).abs() < 1e-3);
        let [lo, hi] = e.ci.unwrap();
        assert!((lo - (3.0 - 1.963)).abs() < 1e-3 && (hi - (3.0 + 1.963)).abs() < 1e-3);
        // A wider level gives a wider interval.
        let wide = estimate(&[1.0, 2.0, 3.0, 4.0, 5.0], 0.99).unwrap();
        assert!(wide.half_width.unwrap() > e.half_width.unwrap());
    }

    #[test]
    fn degenerate_samples_have_no_nan() {
        assert_eq!(estimate(&[], 0.95), None);
        let one = estimate(&[0.4], 0.95).unwrap();
        assert_eq!((one.mean, one.std, one.ci), (0.4, None, None));
        let flat = estimate(&[0.5, 0.5, 0.5], 0.95).unwrap();
        assert_eq!(flat.half_width, Some(0.0));
        let json = serde_json::to_string(&one).unwrap();
        assert!(json.contains("\"ci\":null"), "{json}");
    }

    #[test]
    fn differences_are_paired_by_seed() {
        let a: BTreeMap<u64, f64> = [(0, 0.5), (1, 0.7), (3, 0.9)].into();
        let b: BTreeMap<u64, f64> = [(0, 0.4), (1, 0.6), (2, 0.1)].into();
        let d = paired_differences(&a, &b);
        assert_eq!(d.len(), 2);
        assert!((d[0] - 0.1).abs() < 1e-12 && (d[1] - 0.1).abs() < 1e-12);
        // A constant shift has a zero-width paired interval though each side varies.
        let e = estimate(&d, 0.95).unwrap();
        assert!(e.half_width.unwrap() < 1e-12);
    }

    #[test]
    fn binomial_noise() {
        assert!((binomial_se(0.5, 100) - 0.05).abs() < 1e-12);
        assert!((binomial_se(0.5, 500) - 0.02236).abs() < 1e-5);
        assert_eq!(binomial_se(0.0, 100), 0.0);
        assert_eq!(binomial_se(0.3, 0), 0.0);
    }

    #[test]
    fn formatting() {
        let e = estimate(&[0.1, 0.3], 0.95).unwrap();
        let text = format_estimate(Some(&e), 3, false);
        assert!(text.starts_with("0.200 [") && text.ends_with(']'), "{text}");
        let one = estimate(&[0.02], 0.95).unwrap();
        assert_eq!(format_estimate(Some(&one), 2, true), "+0.02 (n=1)");
        assert_eq!(format_estimate(None, 3, false), "–");
    }
}
