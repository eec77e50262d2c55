//! The advantages phase of a step, as a pure function: one outcome advantage per response
//! from its group's rewards ([`crate::advantage`]), then the HICRA modifier per token
//! ([`crate::hicra`]).

use crate::advantage::{AdvantageOptions, compute_advantages};
use crate::config::AlgorithmSection;
use crate::error::Result;
use crate::hicra::{ResponseInfo, TokenAdvantages, apply_hicra};

/// What the advantages of a batch of responses depend on, one entry per response.
#[derive(Debug, Clone, Copy)]
pub struct CreditInputs<'a> {
    /// Shaped rewards.
    pub rewards: &'a [f32],
    /// Planning-token flags per response token.
    pub planning: &'a [Vec<bool>],
    /// Token entropies per response token (the `released` and `entropy` variants need them).
    pub entropies: Option<&'a [Vec<f32>]>,
    /// Whether each response was graded correct.
    pub correct: &'a [bool],
}

/// Per-token advantages of `group_size`-response groups: the outcome advantage of
/// `algorithm.advantage`, then `algorithm.hicra`'s modifier (`seed` drives the placebo).
pub fn assign_credit(
    algorithm: &AlgorithmSection,
    inputs: &CreditInputs<'_>,
    group_size: usize,
    seed: u64,
) -> Result<TokenAdvantages> {
    if inputs.rewards.is_empty() {
        return Ok(TokenAdvantages {
            advantages: vec![],
            marked: vec![],
        });
    }
    let options = AdvantageOptions {
        std_normalize: algorithm.std_normalize,
        ..AdvantageOptions::default()
    };
    let outcome = compute_advantages(algorithm.advantage, inputs.rewards, group_size, &options)?;
    let responses: Vec<ResponseInfo> = outcome
        .iter()
        .enumerate()
        .map(|(i, &advantage)| ResponseInfo {
            advantage,
            planning: &inputs.planning[i],
            entropy: inputs.entropies.map_or(&[][..], |e| &e[i]),
            correct: inputs.correct[i],
        })
        .collect();
    apply_hicra(&algorithm.hicra, &responses, group_size, seed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hicra::HicraVariant;

    #[test]
    fn planning_tokens_of_a_positive_response_are_amplified() {
        let mut algorithm = AlgorithmSection::default();
        algorithm.hicra.variant = HicraVariant::Paper;
        algorithm.hicra.alpha = 0.5;
        algorithm.std_normalize = false;
        let planning = vec![vec![true, false], vec![false, true]];
        let inputs = CreditInputs {
            rewards: &[1.0, 0.0],
            planning: &planning,
            entropies: None,
            correct: &[true, false],
        };
        let out = assign_credit(&algorithm, &inputs, 2, 0).unwrap();
        // Group mean 0.5: advantages +0.5 and -0.5; planning tokens get A + α|A|.
        assert_eq!(out.advantages, vec![vec![0.75, 0.5], vec![-0.5, -0.25]]);
        assert_eq!(out.marked, planning);
    }

    #[test]
    fn no_responses_give_no_advantages() {
        let inputs = CreditInputs {
            rewards: &[],
            planning: &[],
            entropies: None,
            correct: &[],
        };
        let out = assign_credit(&AlgorithmSection::default(), &inputs, 4, 0).unwrap();
        assert!(out.advantages.is_empty());
    }
}
