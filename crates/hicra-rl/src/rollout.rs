//! Rollouts: G samples per prompt from a policy, with token ids, sampling log-probs, finish
//! reason, the task's reward, DAPO's soft overlong penalty and the truncation mask.
//! [`RolloutSource`] is the seam; [`LocalRollouts`] generates with the in-process model.

use hicra_model::{ChatMessage, FinishReason, LoadedModel, SamplingParams};
use hicra_tasks::{FormattedPrompt, Problem, Task};

use crate::config::RolloutSection;
use crate::error::{Result, RlError};

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

/// Rollout settings for one batch: the run's `[rollout]` section and this batch's seed.
#[derive(Debug, Clone, PartialEq)]
pub struct RolloutParams {
    /// The `[rollout]` settings (group size, sampling, length cap, overlong shaping, …).
    pub settings: RolloutSection,
    /// Seed of this batch's sampling.
    pub seed: u64,
}

/// Produces grouped rollouts for a list of problems: `group_size` consecutive rollouts per
/// problem, in problem order.
pub trait RolloutSource {
    /// Samples and grades responses.
    fn rollouts(
        &mut self,
        policy: &LoadedModel,
        task: &dyn Task,
        problems: &[Problem],
        params: &RolloutParams,
    ) -> Result<Vec<Rollout>>;
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

/// The text fed to the model for a problem: the chat template when asked for and available,
/// else the plain text of the prompt.
pub fn prompt_text(
    policy: &LoadedModel,
    task: &dyn Task,
    problem: &Problem,
    use_chat_template: bool,
) -> Result<String> {
    let formatted = task.prompt(problem);
    match (&formatted, &policy.chat_template) {
        (FormattedPrompt::Chat(messages), Some(tmpl)) if use_chat_template => {
            let msgs: Vec<ChatMessage> = messages
                .iter()
                .map(|m| ChatMessage::new(&m.role, &m.content))
                .collect();
            tmpl.render(&msgs, true)
                .map_err(|e| RlError::Model(format!("chat template: {e}")))
        }
        _ => Ok(formatted.to_plain_text()),
    }
}

/// Generates with the in-process model (`LoadedModel::generate`, EOS and the task's stop
/// strings honoured).
pub struct LocalRollouts {
    /// Use the model's chat template for chat prompts.
    pub use_chat_template: bool,
}

/// Decodes generated ids into the response text and per-token spans (trailing stop tokens
/// get empty spans at the end of the text).
pub fn decode_response(
    policy: &LoadedModel,
    ids: &[u32],
    finish: FinishReason,
) -> Result<(String, Vec<(usize, usize)>)> {
    let mut content = ids.len();
    if finish == FinishReason::Stop {
        while content > 0 && policy.eos_token_ids.contains(&ids[content - 1]) {
            content -= 1;
        }
    }
    let m = |e: hicra_model::ModelError| RlError::Model(format!("decoding a response: {e}"));
    let text = policy.tokenizer.decode(&ids[..content], false).map_err(m)?;
    let mut spans = policy
        .tokenizer
        .token_byte_spans(&ids[..content])
        .map_err(m)?;
    spans.resize(ids.len(), (text.len(), text.len()));
    Ok((text, spans))
}

impl RolloutSource for LocalRollouts {
    fn rollouts(
        &mut self,
        policy: &LoadedModel,
        task: &dyn Task,
        problems: &[Problem],
        params: &RolloutParams,
    ) -> Result<Vec<Rollout>> {
        let mut prompts = Vec::with_capacity(problems.len());
        for p in problems {
            let text = prompt_text(policy, task, p, self.use_chat_template)?;
            let ids = policy
                .tokenizer
                .encode(&text, false)
                .map_err(|e| RlError::Model(format!("encoding prompt {}: {e}", p.id)))?;
            if ids.is_empty() {
                return Err(RlError::Task(format!(
                    "problem {} has an empty prompt",
                    p.id
                )));
            }
            prompts.push((text, ids));
        }
        let rows: Vec<usize> = (0..problems.len())
            .flat_map(|i| std::iter::repeat_n(i, params.settings.group_size))
            .collect();
        let mut out = Vec::with_capacity(rows.len());
        for (b, batch) in rows
            .chunks(params.settings.generation_batch.max(1))
            .enumerate()
        {
            let ids: Vec<Vec<u32>> = batch.iter().map(|&i| prompts[i].1.clone()).collect();
            let sp = SamplingParams {
                temperature: params.settings.temperature,
                top_p: params.settings.top_p,
                top_k: params.settings.top_k,
                max_new_tokens: params.settings.max_new_tokens,
                seed: params
                    .seed
                    .wrapping_add((b as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
                stop_token_ids: vec![],
                stop_strings: task.stop_strings(),
            };
            let gens = policy
                .generate(&ids, &sp)
                .map_err(|e| RlError::Model(format!("generation: {e}")))?;
            for (&i, g) in batch.iter().zip(gens) {
                let (text, token_spans) = decode_response(policy, &g.token_ids, g.finish_reason)?;
                let score = task.score(&problems[i], &text);
                let shaped = score.reward
                    + overlong_penalty(
                        g.token_ids.len(),
                        params.settings.max_new_tokens,
                        params.settings.overlong_buffer,
                        params.settings.overlong_penalty,
                    );
                let trainable =
                    !(params.settings.mask_truncated && g.finish_reason == FinishReason::Length);
                out.push(Rollout {
                    prompt_index: i,
                    prompt_ids: prompts[i].1.clone(),
                    prompt_text: prompts[i].0.clone(),
                    response_ids: g.token_ids,
                    sampling_logprobs: g.logprobs,
                    finish_reason: g.finish_reason,
                    text,
                    token_spans,
                    reward: shaped,
                    correct: score.correct,
                    trainable,
                });
            }
        }
        Ok(out)
    }
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
