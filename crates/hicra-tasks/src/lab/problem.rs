//! Lab problems (`a+b` with 1–9 digit operands of equal length) and their seeded,
//! position-addressed train / validation streams, disjoint by a hash of the problem.

use std::collections::HashSet;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::config::LabConfig;
use crate::hash::{mix_seed, split_of};
use crate::problem::{Problem, PromptSource};
use crate::task::Split;

/// One lab problem: the sum of two numbers with the same number of digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LabProblem {
    /// First operand.
    pub a: u64,
    /// Second operand.
    pub b: u64,
}

/// The `data_source` of lab problems.
pub const LAB_SOURCE: &str = "lab";

impl LabProblem {
    /// The canonical text `a+b` (also the split key).
    pub fn key(&self) -> String {
        format!("{}+{}", self.a, self.b)
    }

    /// The raw prompt, e.g. `"Q: 347+285 =\n"`.
    pub fn prompt(&self) -> String {
        format!("Q: {}+{} =\n", self.a, self.b)
    }

    /// The correct sum.
    pub fn answer(&self) -> u64 {
        self.a + self.b
    }

    /// Digits of an operand, most significant first, padded to the longer operand.
    pub fn columns(&self) -> Vec<(u8, u8)> {
        let width = digits(self.a).len().max(digits(self.b).len());
        let pad = |n: u64| {
            let d = digits(n);
            let mut padded = vec![0u8; width - d.len()];
            padded.extend(d);
            padded
        };
        pad(self.a).into_iter().zip(pad(self.b)).collect()
    }

    /// Whether some column's digit sum reaches 10 (the shortcut is then invalid).
    pub fn has_carry(&self) -> bool {
        self.columns().iter().any(|(x, y)| x + y >= 10)
    }

    /// The split this problem belongs to (by hash of [`LabProblem::key`]).
    pub fn split(&self) -> Split {
        split_of(&self.key())
    }

    /// The generic problem: raw prompt text, integer gold, `data_source = "lab"`.
    pub fn to_problem(&self) -> Problem {
        Problem {
            id: format!("lab-{}", self.key()),
            prompt: PromptSource::Text(self.prompt()),
            gold: serde_json::Value::from(self.answer()),
            data_source: LAB_SOURCE.to_string(),
        }
    }

    /// Reads a lab problem back from a generic one (its id or prompt).
    pub fn from_problem(problem: &Problem) -> Option<LabProblem> {
        let text = problem.prompt.problem_text();
        let body = text
            .trim()
            .strip_prefix("Q:")?
            .trim()
            .strip_suffix('=')?
            .trim();
        let (a, b) = body.split_once('+')?;
        Some(LabProblem {
            a: a.trim().parse().ok()?,
            b: b.trim().parse().ok()?,
        })
    }
}

/// Decimal digits, most significant first (`0` → `[0]`).
pub(crate) fn digits(n: u64) -> Vec<u8> {
    n.to_string().bytes().map(|b| b - b'0').collect()
}

fn from_digits(ds: &[u8]) -> u64 {
    ds.iter().fold(0, |acc, &d| acc * 10 + u64::from(d))
}

/// Draws one problem (either split) from the configured distribution.
fn sample(config: &LabConfig, rng: &mut impl Rng) -> LabProblem {
    let n = rng.random_range(config.min_digits..=config.max_digits);
    let lead_min = if n == 1 { 0 } else { 1 };
    if rng.random_bool(config.no_carry_fraction) {
        let (mut da, mut db) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for column in 0..n {
            // Column sum uniform over what is possible, then split between the operands.
            let low = if column == 0 { lead_min } else { 0 };
            let sum = rng.random_range(2 * low..=9);
            let x = rng.random_range(low..=sum - low);
            let y = sum - x;
            da.push(x);
            db.push(y);
        }
        LabProblem {
            a: from_digits(&da),
            b: from_digits(&db),
        }
    } else {
        let low = if n == 1 { 0 } else { 10u64.pow(n as u32 - 1) };
        let high = 10u64.pow(n as u32);
        loop {
            let p = LabProblem {
                a: rng.random_range(low..high),
                b: rng.random_range(low..high),
            };
            if p.has_carry() {
                return p;
            }
        }
    }
}

/// The problem at `position` of a split's stream for `seed`: deterministic, random access.
/// Candidates of the other split are rejected, so the streams are disjoint.
pub fn problem_at(split: Split, config: &LabConfig, seed: u64, position: u64) -> LabProblem {
    let mut rng = ChaCha8Rng::seed_from_u64(mix_seed(seed, position));
    loop {
        let p = sample(config, &mut rng);
        if p.split() == split {
            return p;
        }
    }
}

/// An endless stream of problems of a split with the default configuration and `seed`.
/// Validation streams yield distinct problems (see [`problems_with`]).
pub fn problems(split: Split, seed: u64) -> Box<dyn Iterator<Item = LabProblem>> {
    let config = LabConfig {
        seed,
        validation_seed: seed,
        ..LabConfig::default()
    };
    problems_with(split, &config)
}

/// The stream of a split for a configuration: training uses `config.seed` and may repeat
/// problems; validation uses `config.validation_seed` and never repeats (it ends if the
/// validation share of the problem space runs out).
pub fn problems_with(split: Split, config: &LabConfig) -> Box<dyn Iterator<Item = LabProblem>> {
    let config = config.clone();
    match split {
        Split::Train => {
            Box::new((0..).map(move |i| problem_at(Split::Train, &config, config.seed, i)))
        }
        Split::Validation => {
            let mut seen = HashSet::new();
            let mut misses = 0u32;
            let mut position = 0u64;
            Box::new(std::iter::from_fn(move || {
                while misses < 10_000 {
                    let p =
                        problem_at(Split::Validation, &config, config.validation_seed, position);
                    position += 1;
                    if seen.insert(p) {
                        misses = 0;
                        return Some(p);
                    }
                    misses += 1;
                }
                None
            }))
        }
    }
}

/// The fixed validation set: the first `config.validation_size` validation problems.
pub fn validation_set(config: &LabConfig) -> Vec<LabProblem> {
    problems_with(Split::Validation, config)
        .take(config.validation_size)
        .collect()
}
