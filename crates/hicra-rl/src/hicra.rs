//! HICRA: hierarchy-aware credit assignment as a modifier on any outcome advantage.
//! Turns one advantage per response into one advantage per response token, amplifying
//! the marked tokens (planning tokens for the paper's rule, or the controls' choices).

use rand::SeedableRng;
use rand::seq::index::sample;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::{Result, RlError};

/// Which tokens are amplified and how (config: `algorithm.hicra.variant`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HicraVariant {
    /// No amplification: every token gets the response's advantage (plain GRPO etc.).
    None,
    /// The paper's rule: `A' = A + α|A|` on planning tokens.
    #[default]
    Paper,
    /// The authors' released-code variant: on tokens above the entropy quantile of their
    /// response or planning, factor `1 + α·sign(A)`, only for correct responses longer than
    /// their group's mean length.
    Released,
    /// Control: the paper's rule on high-entropy tokens instead of planning tokens.
    Entropy,
    /// Control: the paper's rule on as many random tokens as there are planning tokens.
    Placebo,
}

impl HicraVariant {
    /// Whether the variant reads token entropies (so the trainer runs a scoring pass for them).
    pub fn needs_entropy(self) -> bool {
        matches!(self, HicraVariant::Released | HicraVariant::Entropy)
    }
}

/// HICRA settings (config section `algorithm.hicra`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HicraConfig {
    /// Which variant.
    pub variant: HicraVariant,
    /// Amplification strength α (paper: 0.2).
    pub alpha: f32,
    /// Tokens strictly above this quantile of their response's token entropy are "high entropy"
    /// (`released` and `entropy` variants; 0.7 = top 30%).
    pub entropy_quantile: f32,
}

impl Default for HicraConfig {
    fn default() -> Self {
        HicraConfig {
            variant: HicraVariant::Paper,
            alpha: 0.2,
            entropy_quantile: 0.7,
        }
    }
}

/// The per-response inputs HICRA needs. All slices have one entry per response token.
#[derive(Debug, Clone, Copy)]
pub struct ResponseInfo<'a> {
    /// The response's outcome advantage.
    pub advantage: f32,
    /// Planning-token flags from the Strategic-Gram mask.
    pub planning: &'a [bool],
    /// Next-token entropy of the policy at each response token (may be empty when the
    /// variant does not use it).
    pub entropy: &'a [f32],
    /// Whether the response was graded correct.
    pub correct: bool,
}

/// Per-token advantages and which tokens were amplified.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenAdvantages {
    /// `[response][token]` advantages after the modifier.
    pub advantages: Vec<Vec<f32>>,
    /// `[response][token]` true where the modifier changed the rule applied to the token.
    pub marked: Vec<Vec<bool>>,
}

/// The value at quantile `q` of `values` with linear interpolation between order statistics
/// (numpy's default). `None` for an empty slice.
pub fn quantile(values: &[f32], q: f32) -> Option<f32> {
    if values.is_empty() {
        return None;
    }
    let mut v: Vec<f32> = values.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let pos = q.clamp(0.0, 1.0) * (v.len() - 1) as f32;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    Some(v[lo] + (v[hi] - v[lo]) * (pos - lo as f32))
}

/// Flags the tokens whose entropy is strictly above the `q` quantile of `entropy`.
pub fn high_entropy_mask(entropy: &[f32], q: f32) -> Vec<bool> {
    match quantile(entropy, q) {
        Some(t) => entropy.iter().map(|&e| e > t).collect(),
        None => Vec::new(),
    }
}

/// The paper's rule for one token.
fn amplify_paper(a: f32, alpha: f32) -> f32 {
    a + alpha * a.abs()
}

/// Applies HICRA to a batch of responses grouped by prompt (`group_size` consecutive
/// responses per group). `seed` drives the placebo's random token choice (pass a value
/// that changes every step, e.g. derived from the run seed and the step).
pub fn apply_hicra(
    config: &HicraConfig,
    responses: &[ResponseInfo<'_>],
    group_size: usize,
    seed: u64,
) -> Result<TokenAdvantages> {
    if group_size == 0 || !responses.len().is_multiple_of(group_size) {
        return Err(RlError::Invalid(format!(
            "{} responses cannot be split into groups of {group_size}",
            responses.len()
        )));
    }
    for (i, r) in responses.iter().enumerate() {
        if config.variant.needs_entropy() && r.entropy.len() != r.planning.len() {
            return Err(RlError::Invalid(format!(
                "response {i}: {} entropies for {} tokens (variant {:?} needs one per token)",
                r.entropy.len(),
                r.planning.len(),
                config.variant
            )));
        }
    }
    let alpha = config.alpha;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut advantages = Vec::with_capacity(responses.len());
    let mut marked_all = Vec::with_capacity(responses.len());
    for group in responses.chunks(group_size) {
        let mean_len =
            group.iter().map(|r| r.planning.len() as f64).sum::<f64>() / group.len() as f64;
        for r in group {
            let n = r.planning.len();
            let marked: Vec<bool> = match config.variant {
                HicraVariant::None => vec![false; n],
                HicraVariant::Paper => r.planning.to_vec(),
                HicraVariant::Entropy => high_entropy_mask(r.entropy, config.entropy_quantile),
                HicraVariant::Placebo => {
                    let k = r.planning.iter().filter(|&&p| p).count();
                    let mut m = vec![false; n];
                    for i in sample(&mut rng, n, k.min(n)).iter() {
                        m[i] = true;
                    }
                    m
                }
                HicraVariant::Released => {
                    if r.correct && (n as f64) > mean_len {
                        let hi = high_entropy_mask(r.entropy, config.entropy_quantile);
                        r.planning.iter().zip(hi).map(|(&p, h)| p || h).collect()
                    } else {
                        vec![false; n]
                    }
                }
            };
            let a = r.advantage;
            let adv: Vec<f32> = marked
                .iter()
                .map(|&m| match (m, config.variant) {
                    (false, _) => a,
                    (true, HicraVariant::Released) => a * (1.0 + alpha * a.signum_or_zero()),
                    (true, _) => amplify_paper(a, alpha),
                })
                .collect();
            advantages.push(adv);
            marked_all.push(marked);
        }
    }
    Ok(TokenAdvantages {
        advantages,
        marked: marked_all,
    })
}

/// `sign` with sign(0) = 0 (f32::signum gives ±1 for ±0).
trait SignumOrZero {
    fn signum_or_zero(self) -> f32;
}

impl SignumOrZero for f32 {
    fn signum_or_zero(self) -> f32 {
        if self == 0.0 { 0.0 } else { self.signum() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info<'a>(
        a: f32,
        planning: &'a [bool],
        entropy: &'a [f32],
        correct: bool,
    ) -> ResponseInfo<'a> {
        ResponseInfo {
            advantage: a,
            planning,
            entropy,
            correct,
        }
    }

    fn cfg(variant: HicraVariant) -> HicraConfig {
        HicraConfig {
            variant,
            ..HicraConfig::default()
        }
    }

    #[test]
    fn quantile_interpolates_like_numpy() {
        // numpy.quantile([1,2,3,4,5], .7) = 3.8
        assert!((quantile(&[5., 1., 3., 2., 4.], 0.7).unwrap() - 3.8).abs() < 1e-6);
        assert_eq!(
            high_entropy_mask(&[5., 1., 3., 2., 4.], 0.7),
            vec![true, false, false, false, true]
        );
    }

    #[test]
    fn paper_rule_changes_exactly_the_planning_tokens() {
        let p0 = [true, false, true, false];
        let p1 = [false, true, false, false];
        let r = [info(1.5, &p0, &[], true), info(-1.5, &p1, &[], false)];
        let out = apply_hicra(&cfg(HicraVariant::Paper), &r, 2, 0).unwrap();
        let grpo = apply_hicra(&cfg(HicraVariant::None), &r, 2, 0).unwrap();
        assert_eq!(out.advantages[0], vec![1.8, 1.5, 1.8, 1.5]);
        // negative: -1.5 + 0.2*1.5 = -1.2
        assert_eq!(out.advantages[1], vec![-1.5, -1.2, -1.5, -1.5]);
        for (i, resp) in r.iter().enumerate() {
            for t in 0..4 {
                let differs = out.advantages[i][t] != grpo.advantages[i][t];
                assert_eq!(differs, resp.planning[t], "response {i} token {t}");
            }
        }
        assert_eq!(out.marked[0], p0.to_vec());
    }

    #[test]
    fn entropy_control_amplifies_high_entropy_tokens_only() {
        let p = [true, false, false, false, false];
        let e = [0.1, 2.0, 0.3, 0.2, 1.0]; // q.7 = 0.58 → tokens 1 and 4
        let r = [info(1.0, &p, &e, true), info(-1.0, &p, &e, false)];
        let out = apply_hicra(&cfg(HicraVariant::Entropy), &r, 2, 0).unwrap();
        assert_eq!(out.advantages[0], vec![1.0, 1.2, 1.0, 1.0, 1.2]);
        assert_eq!(out.advantages[1], vec![-1.0, -0.8, -1.0, -1.0, -0.8]);
    }

    #[test]
    fn released_variant_only_touches_long_correct_responses() {
        let p_long = [false, true, false, false, false, false];
        let e_long = [0.0, 0.0, 0.0, 0.0, 0.0, 9.0]; // only the last is above q.7 (= 0)
        let p_short = [true, false];
        let e_short = [5.0, 0.0];
        let r = [
            info(0.5, &p_long, &e_long, true), // long (6 > mean 4), correct: amplified
            info(-0.5, &p_short, &e_short, false), // short, wrong: untouched
            info(0.5, &p_short, &e_short, true), // correct but short: untouched
            info(-0.5, &p_long, &e_long, false), // long but wrong: untouched
        ];
        let out = apply_hicra(&cfg(HicraVariant::Released), &r, 4, 0).unwrap();
        assert_eq!(out.advantages[0], vec![0.5, 0.6, 0.5, 0.5, 0.5, 0.6]);
        assert_eq!(out.advantages[1], vec![-0.5, -0.5]);
        assert_eq!(out.advantages[2], vec![0.5, 0.5]);
        assert_eq!(out.advantages[3], vec![-0.5; 6]);
    }

    #[test]
    fn placebo_marks_as_many_random_tokens_as_planning_tokens_reproducibly() {
        let p = [
            true, true, true, false, false, false, false, false, false, false,
        ];
        let r = [info(1.0, &p, &[], true), info(-1.0, &p, &[], false)];
        let a = apply_hicra(&cfg(HicraVariant::Placebo), &r, 2, 7).unwrap();
        let b = apply_hicra(&cfg(HicraVariant::Placebo), &r, 2, 7).unwrap();
        assert_eq!(a, b);
        for (i, m) in a.marked.iter().enumerate() {
            assert_eq!(m.iter().filter(|&&x| x).count(), 3);
            for (t, &mk) in m.iter().enumerate() {
                let base = r[i].advantage;
                let expect = if mk { base + 0.2 * base.abs() } else { base };
                assert_eq!(a.advantages[i][t], expect);
            }
        }
        let c = apply_hicra(&cfg(HicraVariant::Placebo), &r, 2, 8).unwrap();
        assert_ne!(
            a.marked, c.marked,
            "a different seed should pick other tokens"
        );
    }

    #[test]
    fn variant_needing_entropy_without_it_is_an_error() {
        let p = [true];
        let r = [info(1.0, &p, &[], true)];
        assert!(apply_hicra(&cfg(HicraVariant::Entropy), &r, 1, 0).is_err());
    }
}
