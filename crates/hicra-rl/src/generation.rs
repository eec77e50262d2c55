//! The one prompt → generate → grade path, shared by rollouts, validation and `hicra eval`,
//! so that a run's `val_accuracy` and `hicra eval` on its checkpoint agree.
//!
//! It owns the rules that must not differ between them:
//! - **Rendering**: chat prompts go through the model's chat template when
//!   [`PromptSettings::use_chat_template`] is set and the model has one (with the system prompt
//!   as a first `system` message when the prompt has none); otherwise the prompt's plain text.
//!   The tokenizer adds its special tokens (a BOS, say) to plain text, not after a template,
//!   which writes its own.
//! - **Batches and seeds**: rows are `problem × sample`, problem-major, cut into batches of
//!   `batch_rows`; batch `b` samples with [`batch_seed`]`(base, b)` and row `i` of a batch
//!   draws from stream `i` of that seed. The same settings give the same samples, whichever
//!   caller asks and from whichever batch it starts.
//! - **Decoding**: trailing end-of-sequence tokens are dropped, special tokens inside the
//!   response are kept (so every token has a byte span), and the text is cut before the first
//!   of the task's stop strings (the stop string is not part of the answer).

use hicra_model::{ChatMessage, FinishReason, Generation, LoadedModel, SamplingParams};
use hicra_tasks::{FormattedPrompt, Message, Problem, Score, Task};

use crate::error::{Result, RlError};
use crate::generator::Generator;

/// How problems become model input.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PromptSettings {
    /// Use the model's chat template for chat prompts when it has one.
    pub use_chat_template: bool,
    /// System prompt put first in chat prompts that have none (empty: none).
    pub system_prompt: String,
}

/// A prompt as fed to the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedPrompt {
    /// The text.
    pub text: String,
    /// Its token ids.
    pub ids: Vec<u32>,
}

/// The chat messages of a formatted prompt with the system prompt put first when it has none.
fn with_system_prompt(messages: &[Message], system_prompt: &str) -> Vec<ChatMessage> {
    let mut out = Vec::with_capacity(messages.len() + 1);
    if !system_prompt.is_empty() && messages.first().is_none_or(|m| m.role != "system") {
        out.push(ChatMessage::new("system", system_prompt));
    }
    out.extend(
        messages
            .iter()
            .map(|m| ChatMessage::new(&m.role, &m.content)),
    );
    out
}

/// Renders and tokenises `problem`'s prompt for `model` (see the module docs for the rules).
pub fn render_prompt(
    model: &LoadedModel,
    task: &dyn Task,
    problem: &Problem,
    settings: &PromptSettings,
) -> Result<RenderedPrompt> {
    let formatted = task.prompt(problem);
    let (text, add_special) = match (&formatted, &model.chat_template) {
        (FormattedPrompt::Chat(messages), Some(template)) if settings.use_chat_template => {
            let messages = with_system_prompt(messages, &settings.system_prompt);
            let text = template.render(&messages, true).map_err(|e| {
                RlError::model(
                    &format!("chat template of {}", problem_place(task, problem)),
                    e,
                )
            })?;
            (text, false)
        }
        _ => (formatted.to_plain_text(), true),
    };
    let ids = model.tokenizer.encode(&text, add_special).map_err(|e| {
        RlError::model(
            &format!("encoding the prompt of {}", problem_place(task, problem)),
            e,
        )
    })?;
    if ids.is_empty() {
        return Err(RlError::Task(format!(
            "{}: the prompt is empty",
            problem_place(task, problem)
        )));
    }
    Ok(RenderedPrompt { text, ids })
}

/// The problems among `problems` whose prompt does not fit the model's context with
/// `max_new_tokens` new tokens: each problem's index and `PLACE: why`, PLACE being its file
/// and line where the task knows them ([`Task::locate`]), else its id.
pub fn overlong_prompts(
    model: &LoadedModel,
    task: &dyn Task,
    problems: &[Problem],
    settings: &PromptSettings,
    max_new_tokens: usize,
) -> Result<Vec<(usize, String)>> {
    let mut out = Vec::new();
    for (i, problem) in problems.iter().enumerate() {
        let prompt = render_prompt(model, task, problem, settings)?;
        if let Some(why) = prompt_misfit(model, task, problem, &prompt, max_new_tokens) {
            out.push((i, why));
        }
    }
    Ok(out)
}

/// `PLACE: why` when `prompt` (of `problem`) does not fit the model's context with
/// `max_new_tokens` new tokens.
fn prompt_misfit(
    model: &LoadedModel,
    task: &dyn Task,
    problem: &Problem,
    prompt: &RenderedPrompt,
    max_new_tokens: usize,
) -> Option<String> {
    let context = model.model.config().max_position_embeddings;
    let n = prompt.ids.len();
    (n + max_new_tokens > context).then(|| {
        format!(
            "{}: the prompt has {n} tokens; with {max_new_tokens} new tokens it exceeds the \
             model's context of {context} tokens",
            problem_place(task, problem)
        )
    })
}

/// Where a problem is, for messages: its file and line where the task knows them, else its id.
pub fn problem_place(task: &dyn Task, problem: &Problem) -> String {
    task.locate(problem)
        .unwrap_or_else(|| format!("problem {}", problem.id))
}

/// Sampling settings of a pass (the seed is the pass's base seed).
#[derive(Debug, Clone, PartialEq)]
pub struct SamplingSettings {
    /// 0 = greedy.
    pub temperature: f64,
    /// Nucleus mass; 1 = off.
    pub top_p: f64,
    /// Top-k; 0 = off.
    pub top_k: usize,
    /// Most new tokens per response.
    pub max_new_tokens: usize,
}

/// One generate-and-grade pass over a list of problems.
#[derive(Debug, Clone, PartialEq)]
pub struct PassPlan {
    /// Responses per problem.
    pub samples: usize,
    /// Rows (problem × sample) per generation call.
    pub batch_rows: usize,
    /// Sampling settings.
    pub sampling: SamplingSettings,
    /// Base seed of the pass; batch `b` uses [`batch_seed`]`(seed, b)`.
    pub seed: u64,
    /// How prompts are rendered.
    pub prompts: PromptSettings,
}

impl PassPlan {
    /// The batch holding the first sample of problem `problem`.
    pub fn batch_of_problem(&self, problem: usize) -> usize {
        problem * self.samples / self.batch_rows.max(1)
    }
}

/// The seed of batch `batch` of a pass with base seed `base`.
pub fn batch_seed(base: u64, batch: usize) -> u64 {
    base.wrapping_add((batch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// One graded response.
#[derive(Debug, Clone, PartialEq)]
pub struct GradedSample {
    /// Index of the problem in the pass's problem list.
    pub problem: usize,
    /// Which of the problem's samples (0-based).
    pub sample: usize,
    /// The generated ids, their sampling log-probs and the finish reason.
    pub generation: Generation,
    /// The response text (see the module docs).
    pub text: String,
    /// Byte span in `text` of each generated token (empty at the end of the text for tokens
    /// past it: a final EOS, a stop string).
    pub token_spans: Vec<(usize, usize)>,
    /// The task's grade of `text`.
    pub score: Score,
}

/// Decodes generated ids into the response text and per-token byte spans (see the module docs).
pub fn decode_response(
    model: &LoadedModel,
    ids: &[u32],
    finish: FinishReason,
    stop_strings: &[String],
) -> Result<(String, Vec<(usize, usize)>)> {
    let stopped = finish == FinishReason::Stop;
    let err = |e| RlError::model("decoding a response", e);
    let mut text = model
        .tokenizer
        .decode(&ids[..text_token_count(model, ids, stopped)], false)
        .map_err(err)?;
    if let Some(cut) = stop_strings
        .iter()
        .filter(|s| !s.is_empty())
        .filter_map(|s| text.find(s.as_str()))
        .min()
    {
        text.truncate(cut);
    }
    let spans = response_token_spans(model, ids, stopped, text.len()).map_err(err)?;
    Ok((text, spans))
}

/// How many of a response's ids its text holds: a final stop token is left out of it.
fn text_token_count(model: &LoadedModel, ids: &[u32], stopped: bool) -> usize {
    let mut content = ids.len();
    if stopped {
        while content > 0 && model.eos_token_ids.contains(&ids[content - 1]) {
            content -= 1;
        }
    }
    content
}

/// The byte span of each generated token in its response text of `text_len` bytes (the
/// decoded ids, perhaps cut short by a stop string): tokens past the text, a final stop token
/// or what a stop string cut, get empty spans at its end.
pub fn response_token_spans(
    model: &LoadedModel,
    ids: &[u32],
    stopped: bool,
    text_len: usize,
) -> hicra_model::Result<Vec<(usize, usize)>> {
    let content = text_token_count(model, ids, stopped);
    let mut spans = model.tokenizer.token_byte_spans(&ids[..content])?;
    for span in &mut spans {
        *span = (span.0.min(text_len), span.1.min(text_len));
    }
    spans.resize(ids.len(), (text_len, text_len));
    Ok(spans)
}

/// Renders and tokenises the prompts of `problems`.
pub fn render_prompts(
    model: &LoadedModel,
    task: &dyn Task,
    problems: &[Problem],
    settings: &PromptSettings,
) -> Result<Vec<RenderedPrompt>> {
    problems
        .iter()
        .map(|p| render_prompt(model, task, p, settings))
        .collect()
}

/// Generates `plan.samples` responses per problem with `generator` and grades them with
/// `task`, batch by batch from batch `first_batch` (0 for a whole pass; later to continue an
/// interrupted one). `prompts` are the problems' rendered prompts ([`render_prompts`]).
/// `on_batch` sees each batch's graded samples as soon as they are ready. `model` decodes (its
/// weights are not used).
#[allow(clippy::too_many_arguments)]
pub fn generate_and_grade(
    generator: &mut dyn Generator,
    model: &LoadedModel,
    task: &dyn Task,
    problems: &[Problem],
    prompts: &[RenderedPrompt],
    plan: &PassPlan,
    first_batch: usize,
    on_batch: &mut dyn FnMut(&[GradedSample]) -> Result<()>,
) -> Result<()> {
    if plan.samples == 0 || plan.batch_rows == 0 {
        return Err(RlError::Invalid(
            "a generation pass needs at least one sample per problem and one row per batch".into(),
        ));
    }
    if prompts.len() != problems.len() {
        return Err(RlError::Invalid(format!(
            "{} prompts for {} problems",
            prompts.len(),
            problems.len()
        )));
    }
    let stop_strings = task.stop_strings();
    let rows: Vec<(usize, usize)> = (0..problems.len())
        .flat_map(|p| (0..plan.samples).map(move |s| (p, s)))
        .collect();
    for (b, batch) in rows.chunks(plan.batch_rows).enumerate().skip(first_batch) {
        let max_new = plan.sampling.max_new_tokens;
        if let Some(why) = batch
            .iter()
            .find_map(|&(p, _)| prompt_misfit(model, task, &problems[p], &prompts[p], max_new))
        {
            return Err(RlError::Task(why));
        }
        let ids: Vec<Vec<u32>> = batch.iter().map(|&(p, _)| prompts[p].ids.clone()).collect();
        let params = SamplingParams {
            temperature: plan.sampling.temperature,
            top_p: plan.sampling.top_p,
            top_k: plan.sampling.top_k,
            max_new_tokens: plan.sampling.max_new_tokens,
            seed: batch_seed(plan.seed, b),
            stop_token_ids: vec![],
            stop_strings: stop_strings.clone(),
        };
        let generations = generator.generate(&ids, &params)?;
        if generations.len() != batch.len() {
            return Err(RlError::Invalid(format!(
                "the generator returned {} responses for {} prompts",
                generations.len(),
                batch.len()
            )));
        }
        let mut graded = Vec::with_capacity(batch.len());
        for (&(p, s), generation) in batch.iter().zip(generations) {
            let (text, token_spans) = decode_response(
                model,
                &generation.token_ids,
                generation.finish_reason,
                &stop_strings,
            )?;
            let score = task.score(&problems[p], &text);
            graded.push(GradedSample {
                problem: p,
                sample: s,
                generation,
                text,
                token_spans,
                score,
            });
        }
        on_batch(&graded)?;
    }
    Ok(())
}

/// Renders the prompts and runs a whole pass; returns the prompts and the graded samples in
/// row order.
pub fn generate_and_grade_all(
    generator: &mut dyn Generator,
    model: &LoadedModel,
    task: &dyn Task,
    problems: &[Problem],
    plan: &PassPlan,
) -> Result<(Vec<RenderedPrompt>, Vec<GradedSample>)> {
    let prompts = render_prompts(model, task, problems, &plan.prompts)?;
    let mut all = Vec::with_capacity(problems.len() * plan.samples);
    generate_and_grade(
        generator,
        model,
        task,
        problems,
        &prompts,
        plan,
        0,
        &mut |batch| {
            all.extend_from_slice(batch);
            Ok(())
        },
    )?;
    Ok((prompts, all))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_bookkeeping_maps_problems_to_batches() {
        let plan = PassPlan {
            samples: 4,
            batch_rows: 6,
            sampling: SamplingSettings {
                temperature: 1.0,
                top_p: 1.0,
                top_k: 0,
                max_new_tokens: 8,
            },
            seed: 3,
            prompts: PromptSettings::default(),
        };
        // 5 problems × 4 samples = 20 rows → 4 batches of 6, 6, 6, 2.
        assert_eq!(plan.batch_of_problem(0), 0);
        assert_eq!(plan.batch_of_problem(1), 0); // rows 4..8 start in batch 0
        assert_eq!(plan.batch_of_problem(2), 1); // rows 8..12
        assert_eq!(plan.batch_of_problem(3), 2); // rows 12..16
        assert_eq!(plan.batch_of_problem(4), 2); // rows 16..20
        assert_ne!(batch_seed(3, 0), batch_seed(3, 1));
        assert_eq!(batch_seed(3, 0), 3);
    }

    #[test]
    fn system_prompt_goes_first_unless_one_is_there() {
        let user = [Message::new("user", "hi")];
        let m = with_system_prompt(&user, "be brief");
        assert_eq!(m.len(), 2);
        assert_eq!(
            (m[0].role.as_str(), m[0].content.as_str()),
            ("system", "be brief")
        );
        let own = [Message::new("system", "own"), Message::new("user", "hi")];
        let m = with_system_prompt(&own, "be brief");
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].content, "own");
        assert_eq!(with_system_prompt(&user, "").len(), 1);
    }
}
