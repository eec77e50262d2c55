//! Outcome advantage estimators of the GRPO family: one scalar per response, computed
//! from rewards grouped by prompt (each group is `group_size` consecutive responses).

use serde::{Deserialize, Serialize};

use crate::error::{Result, RlError};

/// Which advantage estimator to use (config: `algorithm.advantage`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AdvantageEstimator {
    /// GRPO: `r_i - mean(group)`, divided by the group's std when `std_normalize` is on.
    #[default]
    Grpo,
    /// Dr.GRPO: `r_i - mean(group)`, never divided by the std.
    DrGrpo,
    /// RLOO: `r_i - mean of the other G-1 rewards of the group`.
    Rloo,
    /// REINFORCE++ with baseline: `r_i - mean(group)`, then whitened over the whole batch.
    #[serde(rename = "reinforce++-baseline", alias = "reinforce-pp-baseline")]
    ReinforcePpBaseline,
}

/// Numerical settings shared by the estimators.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdvantageOptions {
    /// GRPO only: divide by the group's (sample, Bessel-corrected) standard deviation.
    pub std_normalize: bool,
    /// Added to standard deviations before dividing.
    pub eps: f32,
}

impl Default for AdvantageOptions {
    fn default() -> Self {
        AdvantageOptions {
            std_normalize: true,
            eps: 1e-6,
        }
    }
}

/// Mean and sample standard deviation (n - 1 in the denominator; 0 for n < 2).
pub fn mean_and_std(values: &[f32]) -> (f32, f32) {
    if values.is_empty() {
        return (0.0, 0.0);
    }
    let n = values.len() as f64;
    let mean = values.iter().map(|&v| v as f64).sum::<f64>() / n;
    if values.len() < 2 {
        return (mean as f32, 0.0);
    }
    let var = values
        .iter()
        .map(|&v| (v as f64 - mean).powi(2))
        .sum::<f64>()
        / (n - 1.0);
    (mean as f32, var.sqrt() as f32)
}

/// Computes one advantage per response. `rewards.len()` must be a multiple of `group_size`;
/// group `g` is `rewards[g * group_size .. (g + 1) * group_size]`.
pub fn compute_advantages(
    estimator: AdvantageEstimator,
    rewards: &[f32],
    group_size: usize,
    opts: &AdvantageOptions,
) -> Result<Vec<f32>> {
    if group_size == 0 || !rewards.len().is_multiple_of(group_size) {
        return Err(RlError::Invalid(format!(
            "{} rewards cannot be split into groups of {group_size}",
            rewards.len()
        )));
    }
    if let Some(i) = rewards.iter().position(|r| !r.is_finite()) {
        return Err(RlError::NonFinite {
            what: format!("reward of response {i}"),
        });
    }
    let mut out = Vec::with_capacity(rewards.len());
    for group in rewards.chunks(group_size) {
        let (mean, std) = mean_and_std(group);
        let g = group.len() as f32;
        for &r in group {
            let a = match estimator {
                AdvantageEstimator::Grpo if opts.std_normalize => (r - mean) / (std + opts.eps),
                AdvantageEstimator::Grpo
                | AdvantageEstimator::DrGrpo
                | AdvantageEstimator::ReinforcePpBaseline => r - mean,
                AdvantageEstimator::Rloo if group.len() < 2 => 0.0,
                // mean of the others = (G·mean - r)/(G-1), so r - that = G/(G-1)·(r - mean)
                AdvantageEstimator::Rloo => (r - mean) * g / (g - 1.0),
            };
            out.push(a);
        }
    }
    if estimator == AdvantageEstimator::ReinforcePpBaseline {
        let (mean, std) = mean_and_std(&out);
        for a in &mut out {
            *a = (*a - mean) / (std + opts.eps);
        }
    }
    Ok(out)
}

/// Fraction of groups whose rewards are all equal (zero advantage under every estimator
/// except the batch-whitened one).
pub fn zero_variance_group_frac(rewards: &[f32], group_size: usize) -> f32 {
    if group_size == 0 || rewards.is_empty() {
        return 0.0;
    }
    let groups: Vec<&[f32]> = rewards.chunks(group_size).collect();
    let zero = groups
        .iter()
        .filter(|g| g.iter().all(|&r| r == g[0]))
        .count();
    zero as f32 / groups.len() as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: &[f32], b: &[f32]) {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() < 1e-4, "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn grpo_with_std_matches_hand_values() {
        // group 1: [1,0,0,1] mean .5, sample std sqrt(1/3)=0.57735 → ±0.866025
        // group 2: [1,1,1,1] → 0
        let r = [1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0];
        let a = compute_advantages(
            AdvantageEstimator::Grpo,
            &r,
            4,
            &AdvantageOptions::default(),
        )
        .unwrap();
        close(
            &a,
            &[0.866025, -0.866025, -0.866025, 0.866025, 0., 0., 0., 0.],
        );
    }

    #[test]
    fn grpo_without_std_and_dr_grpo_subtract_the_group_mean() {
        let r = [3.0, 1.0, 2.0, 0.0, 0.0, 3.0];
        let opts = AdvantageOptions {
            std_normalize: false,
            eps: 1e-6,
        };
        let expected = [1.0, -1.0, 0.0, -1.0, -1.0, 2.0];
        close(
            &compute_advantages(AdvantageEstimator::Grpo, &r, 3, &opts).unwrap(),
            &expected,
        );
        // Dr.GRPO ignores std_normalize
        close(
            &compute_advantages(
                AdvantageEstimator::DrGrpo,
                &r,
                3,
                &AdvantageOptions::default(),
            )
            .unwrap(),
            &expected,
        );
    }

    #[test]
    fn rloo_uses_leave_one_out_baseline() {
        // [1,0,0]: others' means 0, .5, .5 → 1, -.5, -.5
        let a = compute_advantages(
            AdvantageEstimator::Rloo,
            &[1.0, 0.0, 0.0],
            3,
            &AdvantageOptions::default(),
        )
        .unwrap();
        close(&a, &[1.0, -0.5, -0.5]);
    }

    #[test]
    fn reinforce_pp_baseline_whitens_over_the_batch() {
        // group means: [1,0]→.5, [1,1]→1; centred: [.5,-.5,0,0];
        // batch mean 0, sample std sqrt((.25+.25)/3)=0.408248 → [1.224745,-1.224745,0,0]
        let a = compute_advantages(
            AdvantageEstimator::ReinforcePpBaseline,
            &[1.0, 0.0, 1.0, 1.0],
            2,
            &AdvantageOptions::default(),
        )
        .unwrap();
        close(&a, &[1.224745, -1.224745, 0.0, 0.0]);
    }

    #[test]
    fn rejects_ragged_groups_and_nan_rewards() {
        let o = AdvantageOptions::default();
        assert!(compute_advantages(AdvantageEstimator::Grpo, &[1.0, 0.0, 1.0], 2, &o).is_err());
        let e = compute_advantages(AdvantageEstimator::Grpo, &[1.0, f32::NAN], 2, &o).unwrap_err();
        assert!(e.to_string().contains("response 1"), "{e}");
    }

    #[test]
    fn estimator_names_parse_from_config() {
        #[derive(Deserialize)]
        struct W {
            a: AdvantageEstimator,
        }
        for (s, e) in [
            ("grpo", AdvantageEstimator::Grpo),
            ("dr-grpo", AdvantageEstimator::DrGrpo),
            ("rloo", AdvantageEstimator::Rloo),
            (
                "reinforce++-baseline",
                AdvantageEstimator::ReinforcePpBaseline,
            ),
        ] {
            let w: W = toml::from_str(&format!("a = \"{s}\"")).unwrap();
            assert_eq!(w.a, e);
        }
    }

    #[test]
    fn zero_variance_fraction_counts_flat_groups() {
        assert_eq!(
            zero_variance_group_frac(&[1., 1., 0., 1., 0., 0.], 2),
            2.0 / 3.0
        );
    }
}
