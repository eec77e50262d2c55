//! Validation: one response per validation problem through the shared generate-and-grade
//! path, so `val_accuracy` equals `hicra eval` on the same checkpoint with the same settings
//! (`--samples 1 --seed <trainer.seed> --temperature <trainer.val_temperature> --top-p
//! <rollout.top_p> --max-new-tokens <rollout.max_new_tokens> --batch-size
//! <rollout.generation_batch> --limit <trainer.val_size>`).

use hicra_model::LoadedModel;
use hicra_tasks::{Problem, Task};

use crate::config::TrainConfig;
use crate::error::Result;
use crate::generation::{
    GradedSample, PassPlan, RenderedPrompt, SamplingSettings, generate_and_grade_all,
};
use crate::generator::Generator;

/// Accuracy and mean length of a validation pass.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evaluation {
    /// Fraction graded correct.
    pub accuracy: f64,
    /// Mean response length in tokens.
    pub mean_length: f64,
}

/// The validation pass of a run: greedy or at `trainer.val_temperature`, one sample per
/// problem, seeded by `trainer.seed` at every step (the same random numbers each time, so
/// the curve's steps differ by the policy only).
pub fn validation_plan(config: &TrainConfig) -> PassPlan {
    PassPlan {
        samples: 1,
        batch_rows: config.rollout.generation_batch,
        sampling: SamplingSettings {
            temperature: config.trainer.val_temperature,
            top_p: config.rollout.top_p,
            top_k: 0,
            max_new_tokens: config.rollout.max_new_tokens,
        },
        seed: config.trainer.seed,
        prompts: config.model.prompt_settings(),
    }
}

/// Accuracy and mean length of graded samples.
pub fn summarize(samples: &[GradedSample]) -> Evaluation {
    if samples.is_empty() {
        return Evaluation {
            accuracy: 0.0,
            mean_length: 0.0,
        };
    }
    let n = samples.len() as f64;
    let correct = samples.iter().filter(|s| s.score.correct).count();
    let length: usize = samples.iter().map(|s| s.generation.token_ids.len()).sum();
    Evaluation {
        accuracy: correct as f64 / n,
        mean_length: length as f64 / n,
    }
}

/// Generates one response per problem, grades it, and returns the summary, the samples and
/// the problems' prompts as fed to the model.
pub fn evaluate(
    generator: &mut dyn Generator,
    model: &LoadedModel,
    task: &dyn Task,
    problems: &[Problem],
    plan: &PassPlan,
) -> Result<(Evaluation, Vec<GradedSample>, Vec<RenderedPrompt>)> {
    let (prompts, samples) = generate_and_grade_all(generator, model, task, problems, plan)?;
    Ok((summarize(&samples), samples, prompts))
}
