//! Rollouts: G samples per prompt through the shared generate-and-grade path
//! ([`crate::generation`]), with the task's reward, DAPO's soft overlong penalty and the
//! truncation mask. Which engine samples is the [`Generator`]'s business.

use hicra_model::FinishReason;
use hicra_tasks::{Problem, Task};

use crate::config::RolloutSection;
use crate::error::Result;
use crate::generation::{
    GradedSample, PassPlan, PromptSettings, SamplingSettings, generate_and_grade_all,
};
use crate::generator::Generator;
use hicra_model::LoadedModel;

/// One sampled response and its grade.
#[derive(Debug, Clone, PartialEq)]
pub struct Rollout {
    /// Index of the prompt in the step's prompt list (responses of a group share it).
    pub prompt_index: usize,
    /// The prompt's token ids.
    pub prompt_ids: Vec<u32>,
    /// The prompt text as fed to the model.
    pub prompt_text: String,
    /// Generated token ids (a final stop token included).
    pub response_ids: Vec<u32>,
    /// Log-prob of each generated token under the sampling policy (untempered).
    pub sampling_logprobs: Vec<f32>,
    /// Why generation ended.
    pub finish_reason: FinishReason,
    /// The response text (special tokens and the final stop token left out).
    pub text: String,
    /// Byte span in `text` of each response token (empty span for the stop token).
    pub token_spans: Vec<(usize, usize)>,
    /// Reward after shaping.
    pub reward: f32,
    /// Whether the task graded the answer correct.
    pub correct: bool,
    /// Whether the response takes part in the loss (false for masked truncations).
    pub trainable: bool,
}

/// DAPO's soft overlong penalty for a response of `len` tokens: 0 up to
/// `max_len - buffer`, then linear down to `-penalty` at `max_len` (0 when `buffer` is 0).
pub fn overlong_penalty(len: usize, max_len: usize, buffer: usize, penalty: f32) -> f32 {
    if buffer == 0 {
        return 0.0;
    }
    let expected = max_len.saturating_sub(buffer);
    if len <= expected {
        return 0.0;
    }
    -((len - expected) as f32 / buffer as f32).min(1.0) * penalty
}

/// The generation pass of a rollout batch: `group_size` samples per problem.
pub fn rollout_plan(settings: &RolloutSection, seed: u64, prompts: &PromptSettings) -> PassPlan {
    PassPlan {
        samples: settings.group_size,
        batch_rows: settings.generation_batch,
        sampling: SamplingSettings {
            temperature: settings.temperature,
            top_p: settings.top_p,
            top_k: settings.top_k,
            max_new_tokens: settings.max_new_tokens,
        },
        seed,
        prompts: prompts.clone(),
    }
}

/// Turns a graded sample into a rollout: shaped reward and the truncation mask.
fn shape(sample: GradedSample, prompt: (&str, &[u32]), settings: &RolloutSection) -> Rollout {
    let g = sample.generation;
    let reward = sample.score.reward
        + overlong_penalty(
            g.token_ids.len(),
            settings.max_new_tokens,
            settings.overlong_buffer,
            settings.overlong_penalty,
        );
    let trainable = !(settings.mask_truncated && g.finish_reason == FinishReason::Length);
    Rollout {
        prompt_index: sample.problem,
        prompt_ids: prompt.1.to_vec(),
        prompt_text: prompt.0.to_string(),
        response_ids: g.token_ids,
        sampling_logprobs: g.logprobs,
        finish_reason: g.finish_reason,
        text: sample.text,
        token_spans: sample.token_spans,
        reward,
        correct: sample.score.correct,
        trainable,
    }
}

/// Samples and grades `group_size` responses per problem: consecutive rollouts per problem,
/// in problem order.
pub fn collect_rollouts(
    generator: &mut dyn Generator,
    model: &LoadedModel,
    task: &dyn Task,
    problems: &[Problem],
    plan: &PassPlan,
    settings: &RolloutSection,
) -> Result<Vec<Rollout>> {
    let (prompts, samples) = generate_and_grade_all(generator, model, task, problems, plan)?;
    Ok(samples
        .into_iter()
        .map(|s| {
            let p = &prompts[s.problem];
            shape(s, (&p.text, &p.ids), settings)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlong_penalty_ramps_over_the_buffer() {
        assert_eq!(overlong_penalty(100, 128, 0, 1.0), 0.0);
        assert_eq!(overlong_penalty(96, 128, 32, 1.0), 0.0);
        assert_eq!(overlong_penalty(112, 128, 32, 1.0), -0.5);
        assert_eq!(overlong_penalty(128, 128, 32, 0.5), -0.5);
    }
}
