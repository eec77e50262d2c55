//! The unbiased pass@k estimator (Chen et al. 2021, "Evaluating Large Language Models
//! Trained on Code"): `1 - C(n-c, k) / C(n, k)` for `n` samples of which `c` are correct.

/// Unbiased pass@k for `n` samples with `c` correct. Computed as the numerically stable
/// product `1 - Π_{i=n-c+1..=n} (1 - k/i)`. Returns NaN when `k` is 0, `k > n` or `c > n`
/// (pass@k is undefined there).
pub fn pass_at_k(n: usize, c: usize, k: usize) -> f64 {
    if k == 0 || k > n || c > n {
        return f64::NAN;
    }
    if n - c < k {
        return 1.0;
    }
    let miss: f64 = (n - c + 1..=n).map(|i| 1.0 - k as f64 / i as f64).product();
    1.0 - miss
}

/// The k values reported for `n` samples: 1, 2, 4, … up to `n`.
pub fn pass_k_values(n: usize) -> Vec<usize> {
    std::iter::successors(Some(1usize), |k| k.checked_mul(2))
        .take_while(|&k| k <= n)
        .collect()
}

/// Mean pass@k over problems, each given as `(n samples, c correct)`, for k = 1, 2, 4, …
/// up to the smallest `n`. Empty when there are no problems.
pub fn pass_at_k_curve(problems: &[(usize, usize)]) -> Vec<(usize, f64)> {
    let Some(min_n) = problems.iter().map(|p| p.0).min() else {
        return Vec::new();
    };
    pass_k_values(min_n)
        .into_iter()
        .map(|k| {
            let sum: f64 = problems.iter().map(|&(n, c)| pass_at_k(n, c, k)).sum();
            (k, sum / problems.len() as f64)
        })
        .collect()
}
