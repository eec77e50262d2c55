//! [`LabTask`]: the lab behind the [`Task`] seam (raw prompts, exact-answer reward).

use super::anatomy::diagnose_lab;
use super::config::LabConfig;
use super::problem::{LAB_SOURCE, LabProblem, problem_at, validation_set};
use super::trace::extract_answer;
use crate::anatomy::Diagnosis;
use crate::error::TaskError;
use crate::problem::Problem;
use crate::prompt::FormattedPrompt;
use crate::task::{Score, Split, Task};

/// The reasoning lab as a task: reward 1 for the exact sum after the last `answer:`, else 0.
pub struct LabTask {
    config: LabConfig,
    validation: Vec<Problem>,
}

impl LabTask {
    /// Builds the task (and its validation set); rejects invalid configurations.
    pub fn new(config: LabConfig) -> Result<Self, TaskError> {
        config.validate()?;
        let validation = validation_set(&config)
            .iter()
            .map(LabProblem::to_problem)
            .collect();
        Ok(Self { config, validation })
    }

    /// The configuration.
    pub fn config(&self) -> &LabConfig {
        &self.config
    }
}

/// Scores a lab completion: exact match of the last `answer: N` with the gold integer.
pub fn score_lab(problem: &Problem, response: &str) -> Score {
    let extracted = extract_answer(response);
    let gold = problem.gold.as_u64();
    let correct =
        matches!((&extracted, gold), (Some(e), Some(g)) if e.parse::<u64>().ok() == Some(g));
    Score {
        reward: if correct { 1.0 } else { 0.0 },
        correct,
        extracted,
    }
}

impl Task for LabTask {
    fn name(&self) -> &str {
        LAB_SOURCE
    }

    fn train_problem(&self, position: u64) -> Problem {
        problem_at(Split::Train, &self.config, self.config.seed, position).to_problem()
    }

    fn validation_problems(&self) -> &[Problem] {
        &self.validation
    }

    fn prompt(&self, problem: &Problem) -> FormattedPrompt {
        FormattedPrompt::Raw(problem.prompt.problem_text().to_string())
    }

    fn score(&self, problem: &Problem, response: &str) -> Score {
        score_lab(problem, response)
    }

    fn stop_strings(&self) -> Vec<String> {
        vec!["\nQ:".to_string()]
    }

    fn diagnose(&self, problem: &Problem, response: &str, correct: bool) -> Option<Diagnosis> {
        LabProblem::from_problem(problem).map(|p| diagnose_lab(&p, response, correct))
    }
}
