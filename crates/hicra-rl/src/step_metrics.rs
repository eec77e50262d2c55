//! The metrics phase of a step: pure functions from what the step produced to the named
//! values of `metrics.jsonl`. Which population each covers:
//! - `reward_mean`, `accuracy`, `response_length_mean`, `truncated_frac`,
//!   `zero_var_group_frac`: every sampled response (all dynamic-sampling rounds);
//! - the advantage metrics and the hierarchy metrics (`semantic_entropy`,
//!   `planning_token_frac`, `ppl_*`): the responses kept for training;
//! - `token_entropy_*`: the kept responses' tokens, from the scoring pass when the variant
//!   needs one, otherwise from the first update epoch, which skips responses with zero
//!   advantage on every token;
//! - `clip_frac`, `kl`, `entropy_mean`, `loss`, `grad_norm`: the tokens the update trained on.

use hicra_hier::HierarchyMetrics;
use hicra_model::FinishReason;

use crate::advantage::{mean_and_std, zero_variance_group_frac};
use crate::hicra::TokenAdvantages;
use crate::loss::LossStats;
use crate::metrics::Record;
use crate::rollout::Rollout;

fn mean(v: &[f32]) -> f64 {
    v.iter().map(|&x| x as f64).sum::<f64>() / v.len().max(1) as f64
}

/// Reward, accuracy, length and truncation over every sampled response.
pub fn sampling_metrics(all: &[Rollout], group_size: usize, m: &mut Record) {
    let n = all.len().max(1) as f64;
    m.insert(
        "reward_mean".into(),
        all.iter().map(|r| r.reward as f64).sum::<f64>() / n,
    );
    m.insert(
        "accuracy".into(),
        all.iter().filter(|r| r.correct).count() as f64 / n,
    );
    let tokens: usize = all.iter().map(|r| r.response_ids.len()).sum();
    m.insert("response_length_mean".into(), tokens as f64 / n);
    m.insert(
        "truncated_frac".into(),
        all.iter()
            .filter(|r| r.finish_reason == FinishReason::Length)
            .count() as f64
            / n,
    );
    let rewards: Vec<f32> = all.iter().map(|r| r.reward).collect();
    m.insert(
        "zero_var_group_frac".into(),
        zero_variance_group_frac(&rewards, group_size) as f64,
    );
}

/// What the update phase measured.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UpdateSummary {
    /// Loss statistics over every trained token.
    pub stats: LossStats,
    /// Gradient norm of each optimiser step.
    pub grad_norms: Vec<f64>,
    /// Learning rate of the last optimiser step.
    pub lr: f64,
    /// Epochs × mini-batches of the update (the reported loss is the mean over them).
    pub passes: usize,
    /// Token entropy of each kept response from the first epoch (empty for skipped ones).
    pub first_epoch_entropy: Vec<Vec<f32>>,
}

/// Clipping, KL, entropy, loss, gradient norm and learning rate of the update.
pub fn update_metrics(u: &UpdateSummary, with_kl: bool, m: &mut Record) {
    m.insert("clip_frac".into(), u.stats.clip_frac());
    if with_kl {
        m.insert("kl".into(), u.stats.kl_mean());
    }
    m.insert("entropy_mean".into(), u.stats.entropy_mean());
    m.insert("loss".into(), u.stats.loss / u.passes.max(1) as f64);
    m.insert(
        "grad_norm".into(),
        u.grad_norms.iter().sum::<f64>() / u.grad_norms.len().max(1) as f64,
    );
    m.insert("lr".into(), u.lr);
}

/// Advantage statistics over the trainable responses' tokens, split by planning and execution
/// tokens, and the share of tokens the HICRA variant marked.
pub fn advantage_metrics(
    kept: &[Rollout],
    masks: &[Vec<bool>],
    advantages: &TokenAdvantages,
    m: &mut Record,
) {
    let (mut all, mut planning, mut execution, mut marked) =
        (Vec::new(), Vec::new(), Vec::new(), 0usize);
    for (i, r) in kept.iter().enumerate() {
        if !r.trainable {
            continue;
        }
        for (t, &v) in advantages.advantages[i].iter().enumerate() {
            all.push(v);
            if masks[i].get(t).copied().unwrap_or(false) {
                planning.push(v.abs());
            } else {
                execution.push(v.abs());
            }
            marked += usize::from(advantages.marked[i][t]);
        }
    }
    let (am, asd) = mean_and_std(&all);
    m.insert("adv_mean".into(), am as f64);
    m.insert("adv_std".into(), asd as f64);
    m.insert("adv_abs_planning_mean".into(), mean(&planning));
    m.insert("adv_abs_execution_mean".into(), mean(&execution));
    m.insert(
        "hicra_marked_frac".into(),
        marked as f64 / all.len().max(1) as f64,
    );
}

/// Semantic entropy, planning-token share, perplexities, and the token entropy of planning vs
/// execution tokens.
pub fn hierarchy_metrics(
    hier: &HierarchyMetrics,
    masks: &[Vec<bool>],
    entropies: &[Vec<f32>],
    m: &mut Record,
) {
    m.insert("semantic_entropy".into(), hier.semantic_entropy);
    m.insert("conditional_entropy".into(), hier.conditional_entropy);
    m.insert("planning_token_frac".into(), hier.planning_token_frac);
    if let Some(v) = hier.ppl_planning {
        m.insert("ppl_planning".into(), v);
    }
    if let Some(v) = hier.ppl_execution {
        m.insert("ppl_execution".into(), v);
    }
    let (mut planning, mut execution) = (Vec::new(), Vec::new());
    for (i, e) in entropies.iter().enumerate() {
        for (t, &x) in e.iter().enumerate() {
            if masks[i].get(t).copied().unwrap_or(false) {
                planning.push(x);
            } else {
                execution.push(x);
            }
        }
    }
    if !planning.is_empty() {
        m.insert("token_entropy_planning".into(), mean(&planning));
    }
    if !execution.is_empty() {
        m.insert("token_entropy_execution".into(), mean(&execution));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rollout(reward: f32, correct: bool, len: usize, finish: FinishReason) -> Rollout {
        Rollout {
            prompt_index: 0,
            prompt_ids: vec![1],
            prompt_text: String::new(),
            response_ids: vec![2; len],
            sampling_logprobs: vec![0.0; len],
            finish_reason: finish,
            text: String::new(),
            token_spans: vec![(0, 0); len],
            reward,
            correct,
            trainable: true,
        }
    }

    #[test]
    fn sampling_metrics_average_over_every_response() {
        let all = [
            rollout(1.0, true, 4, FinishReason::Stop),
            rollout(0.0, false, 8, FinishReason::Length),
            rollout(0.0, false, 2, FinishReason::Stop),
            rollout(0.0, false, 2, FinishReason::Stop),
        ];
        let mut m = Record::new();
        sampling_metrics(&all, 2, &mut m);
        assert_eq!(m["reward_mean"], 0.25);
        assert_eq!(m["accuracy"], 0.25);
        assert_eq!(m["response_length_mean"], 4.0);
        assert_eq!(m["truncated_frac"], 0.25);
        assert_eq!(m["zero_var_group_frac"], 0.5); // the second group is all zeros
    }

    #[test]
    fn advantages_split_by_planning_and_count_marked_tokens() {
        let kept = [rollout(1.0, true, 2, FinishReason::Stop)];
        let masks = vec![vec![true, false]];
        let adv = TokenAdvantages {
            advantages: vec![vec![1.2, -1.0]],
            marked: vec![vec![true, false]],
        };
        let mut m = Record::new();
        advantage_metrics(&kept, &masks, &adv, &mut m);
        assert!((m["adv_abs_planning_mean"] - 1.2).abs() < 1e-6);
        assert_eq!(m["adv_abs_execution_mean"], 1.0);
        assert_eq!(m["hicra_marked_frac"], 0.5);
    }
}
