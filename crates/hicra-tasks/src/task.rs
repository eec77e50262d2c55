//! The [`Task`] seam between tasks and the trainer: training stream, validation set,
//! prompt formatting and scoring. [`MathTask`] is the data-set-backed implementation.

use serde::{Deserialize, Serialize};

use crate::anatomy::{Anatomy, Diagnosis, summarise};
use crate::dataset::Dataset;
use crate::problem::Problem;
use crate::prompt::{FormattedPrompt, PromptFormat};

/// Which stream of a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Split {
    /// Problems to train on.
    Train,
    /// Held-out problems (disjoint from training).
    Validation,
}

/// The grade of one response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Score {
    /// The scalar reward for RL.
    pub reward: f32,
    /// Whether the final answer matches the gold.
    pub correct: bool,
    /// The answer read from the response, if any.
    pub extracted: Option<String>,
}

/// A source of problems and their grader: what the trainer talks to.
///
/// The training stream is addressed by position (`0, 1, 2, …`) so that a checkpoint only
/// needs to save the next position to resume exactly.
pub trait Task: Send + Sync {
    /// A short name for logs and run directories.
    fn name(&self) -> &str;

    /// The training problem at `position` (deterministic for the task's seed).
    fn train_problem(&self, position: u64) -> Problem;

    /// `n` consecutive training problems starting at `position`.
    fn train_batch(&self, position: u64, n: usize) -> Vec<Problem> {
        (position..position + n as u64)
            .map(|p| self.train_problem(p))
            .collect()
    }

    /// Number of distinct training problems; `None` for an endless generated stream.
    fn train_len(&self) -> Option<usize> {
        None
    }

    /// The fixed validation set.
    fn validation_problems(&self) -> &[Problem];

    /// Where `problem` comes from, for messages about it (`FILE:LINE` for a problem read from
    /// a file); `None` for generated problems.
    fn locate(&self, _problem: &Problem) -> Option<String> {
        None
    }

    /// The prompt for a problem (chat messages for a chat template, or raw text).
    fn prompt(&self, problem: &Problem) -> FormattedPrompt;

    /// Grades one response to `problem`.
    fn score(&self, problem: &Problem, response: &str) -> Score;

    /// Extra strings that end a generation (besides the model's end-of-sequence token).
    fn stop_strings(&self) -> Vec<String> {
        Vec::new()
    }

    /// Why a graded response failed (failure anatomy), for tasks whose responses are
    /// structured enough to tell; `correct` is this task's verdict ([`Task::score`]) on it.
    /// `None` (the default) when the task cannot tell; the lab can.
    fn diagnose(&self, _problem: &Problem, _response: &str, _correct: bool) -> Option<Diagnosis> {
        None
    }
}

/// A math task over data sets, graded by `hicra-verify`.
pub struct MathTask {
    name: String,
    train: Dataset,
    validation: Dataset,
    seed: u64,
    /// How problems become prompts.
    pub format: PromptFormat,
    /// Answer extraction and equivalence settings.
    pub verify: hicra_verify::Config,
    /// How a verdict becomes a reward.
    pub reward: hicra_verify::RewardScheme,
}

impl MathTask {
    /// A task training on `train` (reshuffled every epoch with `seed`) and validating on
    /// `validation`, with the default verifier and reward scheme.
    pub fn new(train: Dataset, validation: Dataset, format: PromptFormat, seed: u64) -> Self {
        Self {
            name: train.name.clone(),
            train,
            validation,
            seed,
            format,
            verify: hicra_verify::Config::default(),
            reward: hicra_verify::RewardScheme::default(),
        }
    }

    /// Sets the verifier configuration.
    pub fn with_verify(mut self, verify: hicra_verify::Config) -> Self {
        self.verify = verify;
        self
    }

    /// Sets the reward scheme.
    pub fn with_reward(mut self, reward: hicra_verify::RewardScheme) -> Self {
        self.reward = reward;
        self
    }

    /// Renames the task.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The training data set.
    pub fn train_set(&self) -> &Dataset {
        &self.train
    }
}

/// Grades `response` against `problem`'s gold with `hicra-verify` (a gold that cannot be
/// read scores 0 with no extraction).
pub fn score_math(
    problem: &Problem,
    response: &str,
    verify: &hicra_verify::Config,
    scheme: &hicra_verify::RewardScheme,
) -> Score {
    match problem.gold() {
        Ok(gold) => {
            let verdict = hicra_verify::verify(&gold, response, verify);
            let reward = hicra_verify::reward(&verdict, response, scheme);
            Score {
                reward,
                correct: verdict.correct,
                extracted: verdict.extracted,
            }
        }
        Err(_) => Score {
            reward: 0.0,
            correct: false,
            extracted: None,
        },
    }
}

impl Task for MathTask {
    fn name(&self) -> &str {
        &self.name
    }

    fn train_problem(&self, position: u64) -> Problem {
        self.train.at(self.seed, position).clone()
    }

    fn train_len(&self) -> Option<usize> {
        Some(self.train.len())
    }

    fn validation_problems(&self) -> &[Problem] {
        &self.validation.problems
    }

    fn locate(&self, problem: &Problem) -> Option<String> {
        self.train
            .location(&problem.id)
            .or_else(|| self.validation.location(&problem.id))
            .map(ToString::to_string)
    }

    fn prompt(&self, problem: &Problem) -> FormattedPrompt {
        self.format.format(problem)
    }

    fn score(&self, problem: &Problem, response: &str) -> Score {
        score_math(problem, response, &self.verify, &self.reward)
    }
}

/// The anatomy of graded responses `(problem, response, correct)`, `correct` being the
/// task's verdict ([`Task::score`]). `None` when the task cannot diagnose some response (every
/// task but the lab), so a logged anatomy always covers the same responses as the accuracy.
pub fn task_anatomy<'a>(
    task: &dyn Task,
    responses: impl IntoIterator<Item = (&'a Problem, &'a str, bool)>,
) -> Option<Anatomy> {
    let diagnoses = responses
        .into_iter()
        .map(|(problem, response, correct)| task.diagnose(problem, response, correct))
        .collect::<Option<Vec<Diagnosis>>>()?;
    Some(summarise(&diagnoses))
}
