//! Generated arithmetic word problems (one or two steps, small numbers, templated stories)
//! with integer golds, for the real-model path (`\boxed{}` answers graded by `hicra-verify`).

use std::collections::HashSet;

use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::TaskError;
use crate::hash::{mix_seed, split_of};
use crate::problem::{Problem, PromptSource};
use crate::prompt::{FormattedPrompt, PromptFormat};
use crate::task::{Score, Split, Task, score_math};

/// The `data_source` of arithmetic word problems.
pub const ARITH_SOURCE: &str = "arith";

/// Settings of the word-problem generator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ArithConfig {
    /// Seed of the training stream.
    pub seed: u64,
    /// Seed of the validation set (keep fixed to compare runs).
    pub validation_seed: u64,
    /// Number of distinct validation problems.
    pub validation_size: usize,
    /// Share of two-step problems.
    pub two_step_fraction: f64,
    /// Largest operand of additions and subtractions (multiplications use 2..=9).
    pub max_operand: u32,
}

impl Default for ArithConfig {
    fn default() -> Self {
        Self {
            seed: 0,
            validation_seed: 2_000_003,
            validation_size: 100,
            two_step_fraction: 0.25,
            max_operand: 12,
        }
    }
}

impl ArithConfig {
    /// Rejects impossible settings, naming the key.
    pub fn validate(&self) -> Result<(), TaskError> {
        let invalid = |key: &str, message: &str| {
            Err(TaskError::InvalidConfig {
                key: format!("arith.{key}"),
                message: message.to_string(),
            })
        };
        if !(0.0..=1.0).contains(&self.two_step_fraction) {
            return invalid("two_step_fraction", "must be a probability in [0, 1]");
        }
        if !(5..=1000).contains(&self.max_operand) {
            return invalid("max_operand", "must be between 5 and 1000");
        }
        if self.validation_size == 0 {
            return invalid("validation_size", "must be at least 1");
        }
        Ok(())
    }
}

/// One generated word problem.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ArithProblem {
    /// The story and question.
    pub text: String,
    /// The integer answer.
    pub answer: i64,
    /// Number of arithmetic operations needed (1 or 2).
    pub steps: u8,
}

impl ArithProblem {
    /// The generic problem: text prompt, integer gold, `data_source = "arith"`.
    pub fn to_problem(&self) -> Problem {
        Problem {
            id: format!("arith-{:016x}", crate::hash::stable_hash(&self.text)),
            prompt: PromptSource::Text(self.text.clone()),
            gold: serde_json::Value::from(self.answer),
            data_source: ARITH_SOURCE.to_string(),
        }
    }

    /// The split this problem belongs to (by hash of its text).
    pub fn split(&self) -> Split {
        split_of(&self.text)
    }
}

const PEOPLE: &[(&str, &str)] = &[
    ("Tom", "He"),
    ("Anna", "She"),
    ("Sam", "He"),
    ("Maria", "She"),
    ("Leo", "He"),
    ("Nina", "She"),
    ("Omar", "He"),
    ("Lucy", "She"),
    ("Ben", "He"),
    ("Zoe", "She"),
    ("Ravi", "He"),
    ("Emma", "She"),
];

const THINGS: &[&str] = &[
    "apples", "marbles", "stickers", "pencils", "cookies", "cards", "stamps", "shells", "books",
    "balloons", "beads", "crayons",
];

const GOODS: &[&str] = &[
    "notebook", "sandwich", "toy car", "ticket", "kite", "puzzle",
];

/// Draws one problem from the generator (either split).
pub fn sample(config: &ArithConfig, rng: &mut impl Rng) -> ArithProblem {
    let (name, pronoun) = *PEOPLE.choose(rng).unwrap_or(&PEOPLE[0]);
    let other = loop {
        let (candidate, _) = *PEOPLE.choose(rng).unwrap_or(&PEOPLE[1]);
        if candidate != name {
            break candidate;
        }
    };
    let things = *THINGS.choose(rng).unwrap_or(&THINGS[0]);
    let good = *GOODS.choose(rng).unwrap_or(&GOODS[0]);
    let max = i64::from(config.max_operand);
    let small = |rng: &mut dyn rand::RngCore| rng.random_range(2..=9i64);
    let two_step = rng.random_bool(config.two_step_fraction);
    let (text, answer) = if !two_step {
        match rng.random_range(0..5) {
            0 => {
                let (a, b) = (rng.random_range(2..=max), rng.random_range(2..=max));
                (
                    format!(
                        "{name} has {a} {things}. {pronoun} finds {b} more {things}. How many {things} does {name} have now?"
                    ),
                    a + b,
                )
            }
            1 => {
                let a = rng.random_range(5..=max);
                let b = rng.random_range(1..a);
                (
                    format!(
                        "{name} has {a} {things}. {pronoun} gives {b} of them to {other}. How many {things} does {name} have left?"
                    ),
                    a - b,
                )
            }
            2 => {
                let (a, b) = (small(rng), small(rng));
                (
                    format!(
                        "{name} has {a} boxes. Each box holds {b} {things}. How many {things} does {name} have in total?"
                    ),
                    a * b,
                )
            }
            3 => {
                let (a, b) = (small(rng), small(rng));
                (
                    format!(
                        "{name} shares {} {things} equally among {a} friends. How many {things} does each friend get?",
                        a * b
                    ),
                    b,
                )
            }
            _ => {
                let a = rng.random_range(5..=max);
                let b = rng.random_range(1..a);
                (
                    format!(
                        "{name} has {a} {things} and {other} has {b} {things}. How many more {things} does {name} have than {other}?"
                    ),
                    a - b,
                )
            }
        }
    } else {
        match rng.random_range(0..5) {
            0 => {
                let (a, b) = (rng.random_range(2..=max), rng.random_range(2..=max));
                let c = rng.random_range(1..a + b);
                (
                    format!(
                        "{name} has {a} {things}. {pronoun} buys {b} more and then gives {c} to {other}. How many {things} does {name} have now?"
                    ),
                    a + b - c,
                )
            }
            1 => {
                let (a, b, c) = (small(rng), small(rng), rng.random_range(1..=max));
                (
                    format!(
                        "{name} buys {a} bags with {b} {things} in each bag. {pronoun} already had {c} {things}. How many {things} does {name} have now?"
                    ),
                    a * b + c,
                )
            }
            2 => {
                let (a, b) = (small(rng), small(rng));
                let bill = [10i64, 20, 50, 100]
                    .into_iter()
                    .find(|&bill| bill > a * b)
                    .unwrap_or(100);
                (
                    format!(
                        "A {good} costs {a} dollars. {name} buys {b} of them and pays with a {bill}-dollar bill. How much change does {name} get, in dollars?"
                    ),
                    bill - a * b,
                )
            }
            3 => {
                let (a, b) = (small(rng), small(rng));
                let c = rng.random_range(1..a * b);
                (
                    format!(
                        "{name} puts {things} in {a} rows of {b}. Then {pronoun_lower} takes away {c} {things}. How many {things} are left?",
                        pronoun_lower = pronoun.to_lowercase()
                    ),
                    a * b - c,
                )
            }
            _ => {
                let (a, b, c) = (small(rng), small(rng), rng.random_range(2..=max));
                (
                    format!(
                        "{name} reads {a} pages every day for {b} days. {other} reads {c} pages in total. How many pages do they read together?"
                    ),
                    a * b + c,
                )
            }
        }
    };
    ArithProblem {
        text,
        answer,
        steps: if two_step { 2 } else { 1 },
    }
}

/// The problem at `position` of a split's stream for `seed` (deterministic, disjoint splits).
pub fn problem_at(split: Split, config: &ArithConfig, seed: u64, position: u64) -> ArithProblem {
    let mut rng = ChaCha8Rng::seed_from_u64(mix_seed(seed, position));
    loop {
        let p = sample(config, &mut rng);
        if p.split() == split {
            return p;
        }
    }
}

/// The fixed validation set: `config.validation_size` distinct validation problems.
pub fn validation_set(config: &ArithConfig) -> Vec<ArithProblem> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    let mut position = 0;
    while out.len() < config.validation_size
        && position < 1_000 * config.validation_size as u64 + 10_000
    {
        let p = problem_at(Split::Validation, config, config.validation_seed, position);
        position += 1;
        if seen.insert(p.text.clone()) {
            out.push(p);
        }
    }
    out
}

/// Arithmetic word problems as a task: chat prompts asking for `\boxed{}`, graded by
/// `hicra-verify` (default: flexible extraction, reward 1/0).
pub struct ArithTask {
    config: ArithConfig,
    validation: Vec<Problem>,
    /// How problems become prompts (default: chat, boxed instruction).
    pub format: PromptFormat,
    /// Answer extraction and equivalence settings.
    pub verify: hicra_verify::Config,
    /// How a verdict becomes a reward.
    pub reward: hicra_verify::RewardScheme,
}

impl ArithTask {
    /// Builds the task and its validation set; rejects invalid configurations.
    pub fn new(config: ArithConfig) -> Result<Self, TaskError> {
        config.validate()?;
        let validation = validation_set(&config)
            .iter()
            .map(ArithProblem::to_problem)
            .collect();
        Ok(Self {
            config,
            validation,
            format: PromptFormat::default(),
            verify: hicra_verify::Config::default(),
            reward: hicra_verify::RewardScheme::default(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ArithConfig {
        &self.config
    }
}

impl Task for ArithTask {
    fn name(&self) -> &str {
        ARITH_SOURCE
    }

    fn train_problem(&self, position: u64) -> Problem {
        problem_at(Split::Train, &self.config, self.config.seed, position).to_problem()
    }

    fn validation_problems(&self) -> &[Problem] {
        &self.validation
    }

    fn prompt(&self, problem: &Problem) -> FormattedPrompt {
        self.format.format(problem)
    }

    fn score(&self, problem: &Problem, response: &str) -> Score {
        score_math(problem, response, &self.verify, &self.reward)
    }
}
