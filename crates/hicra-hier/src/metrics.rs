//! Hierarchy metrics of one training step, computed from its rollouts: semantic entropy of
//! Strategic-Gram occurrences, the conditional-entropy control, and token entropy /
//! perplexity split into planning and execution tokens.
//!
//! Conventions (fixed so curves are comparable): entropies use the natural log; gram
//! counts are pooled over all responses of the step; token means are pooled over all
//! tokens of all responses (a token-level mean, not a mean of per-response means).

use serde::{Deserialize, Serialize};

use crate::error::HierError;
use crate::gram_set::{GramSet, mask_from_matches};
use crate::tally::GramTally;

pub use crate::entropy::{FOLLOWING_NGRAM_WORDS, entropy_of_counts};

/// How often each gram occurs over all texts (indexed like [`GramSet::grams`]).
pub fn gram_counts<S: AsRef<str>>(texts: &[S], grams: &GramSet) -> Vec<usize> {
    let mut counts = vec![0usize; grams.len()];
    for text in texts {
        for m in grams.find(text.as_ref()) {
            counts[m.gram] += 1;
        }
    }
    counts
}

/// Semantic entropy: entropy (natural log) of the distribution of gram occurrences pooled
/// over all texts (count of each gram / total occurrences); 0 when there are none.
pub fn semantic_entropy<S: AsRef<str>>(texts: &[S], grams: &GramSet) -> f64 {
    entropy_of_counts(gram_counts(texts, grams))
}

/// Conditional-entropy control: entropy (natural log) of the distribution of the word
/// 3-grams that immediately follow a gram occurrence (words as in [`crate::words`]);
/// occurrences followed by fewer than 3 words are left out; 0 when there are none. The counts
/// are summed in a fixed (sorted) order, so the value is the same in every process.
pub fn conditional_entropy<S: AsRef<str>>(texts: &[S], grams: &GramSet) -> f64 {
    let mut tally = GramTally::new(grams);
    for text in texts {
        let text = text.as_ref();
        tally.add(text, &grams.find(text));
    }
    tally.conditional_entropy()
}

/// One response of a step as the trainer has it: its decoded text, and per token the byte
/// span in `text`, the sampling log-probability and (optionally) the policy's entropy.
#[derive(Debug, Clone, Copy)]
pub struct ResponseTokens<'a> {
    /// The decoded response text.
    pub text: &'a str,
    /// Byte span of each token in `text`.
    pub token_byte_spans: &'a [(usize, usize)],
    /// Log-probability of each token under the policy (natural log).
    pub logprobs: &'a [f32],
    /// Next-token entropy of the policy at each token, when computed.
    pub entropies: Option<&'a [f32]>,
}

/// The hierarchy metrics of one step; serde names are the logged metric names.
/// Split metrics are `None` (left out of the JSON) when the step has no token of that kind.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HierarchyMetrics {
    /// Entropy of the gram-occurrence distribution (natural log).
    pub semantic_entropy: f64,
    /// Entropy of the word 3-grams following gram occurrences (natural log).
    pub conditional_entropy: f64,
    /// Planning tokens / all tokens (0 when there are no tokens).
    pub planning_token_frac: f64,
    /// Mean policy entropy over planning tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_entropy_planning: Option<f64>,
    /// Mean policy entropy over execution tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_entropy_execution: Option<f64>,
    /// exp(mean NLL) over planning tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ppl_planning: Option<f64>,
    /// exp(mean NLL) over execution tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ppl_execution: Option<f64>,
}

/// Running sums for a mean over selected tokens.
#[derive(Default)]
struct MeanAcc {
    sum: f64,
    count: usize,
}

impl MeanAcc {
    fn add(&mut self, value: f32) {
        self.sum += f64::from(value);
        self.count += 1;
    }
    fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum / self.count as f64)
    }
}

impl HierarchyMetrics {
    /// Computes every metric of a step from its responses (planning masks from `grams`).
    pub fn compute(
        responses: &[ResponseTokens<'_>],
        grams: &GramSet,
    ) -> Result<HierarchyMetrics, HierError> {
        Ok(Self::compute_with_masks(responses, grams)?.0)
    }

    /// Like [`HierarchyMetrics::compute`], also returning each response's planning mask
    /// (so a trainer need not match twice).
    pub fn compute_with_masks(
        responses: &[ResponseTokens<'_>],
        grams: &GramSet,
    ) -> Result<(HierarchyMetrics, Vec<Vec<bool>>), HierError> {
        let mut tally = GramTally::new(grams);
        let (mut nll_plan, mut nll_exec) = (MeanAcc::default(), MeanAcc::default());
        let (mut ent_plan, mut ent_exec) = (MeanAcc::default(), MeanAcc::default());
        let mut masks = Vec::with_capacity(responses.len());
        for (index, response) in responses.iter().enumerate() {
            check_lengths(index, response)?;
            let matches = grams.find(response.text);
            tally.add(response.text, &matches);
            let mask = mask_from_matches(&matches, response.token_byte_spans);
            for (t, &planning) in mask.iter().enumerate() {
                let (nll, ent) = if planning {
                    (&mut nll_plan, &mut ent_plan)
                } else {
                    (&mut nll_exec, &mut ent_exec)
                };
                nll.add(-response.logprobs[t]);
                if let Some(entropies) = response.entropies {
                    ent.add(entropies[t]);
                }
            }
            masks.push(mask);
        }
        let total_tokens = nll_plan.count + nll_exec.count;
        let metrics = HierarchyMetrics {
            semantic_entropy: tally.semantic_entropy(),
            conditional_entropy: tally.conditional_entropy(),
            planning_token_frac: if total_tokens == 0 {
                0.0
            } else {
                nll_plan.count as f64 / total_tokens as f64
            },
            token_entropy_planning: ent_plan.mean(),
            token_entropy_execution: ent_exec.mean(),
            ppl_planning: nll_plan.mean().map(f64::exp),
            ppl_execution: nll_exec.mean().map(f64::exp),
        };
        Ok((metrics, masks))
    }
}

fn check_lengths(index: usize, response: &ResponseTokens<'_>) -> Result<(), HierError> {
    let expected = response.token_byte_spans.len();
    let mismatch = |field, got| HierError::LengthMismatch {
        response: index,
        field,
        got,
        expected,
    };
    if response.logprobs.len() != expected {
        return Err(mismatch("logprobs", response.logprobs.len()));
    }
    match response.entropies {
        Some(e) if e.len() != expected => Err(mismatch("entropies", e.len())),
        _ => Ok(()),
    }
}
