//! SFT traces: a strategy announced by a planning phrase, executed digit by digit, with
//! optional backtracking and injected execution slips.
//!
//! Column method (long, each step can slip):
//! ```text
//! let's break this down
//! 7+5=12, write 2 carry 1
//! 4+8+1=13, write 3 carry 1
//! 3+2+1=6, write 6
//! answer: 632
//! ```
//! Shortcut (short, valid only when no column carries), left to right:
//! ```text
//! use the fact that no column carries
//! 3+2=5
//! 4+1=5
//! answer: 55
//! ```
//! A shortcut that meets a column sum of 10 or more either notices it
//! (`wait, that's not right` / `let's try a different angle`, then the column method) or
//! carries on, keeping the last digit, and answers wrongly.

use rand::Rng;
use rand::seq::IndexedRandom;
use serde::{Deserialize, Serialize};

use super::config::LabConfig;
use super::phrases::{COLUMN, DETECT, SHORTCUT, SHORTCUT_CLAIM, SWITCH};
use super::problem::LabProblem;

/// The strategy a trace opens with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// Column addition from the units, with carries.
    Column,
    /// Left-to-right digit sums, valid only without carries.
    Shortcut,
}

/// One generated SFT example and what went into it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabTrace {
    /// The raw prompt (`"Q: a+b =\n"`).
    pub prompt: String,
    /// The reasoning, ending with `answer: N` (no trailing newline).
    pub completion: String,
    /// The opening strategy.
    pub strategy: Strategy,
    /// Whether the trace noticed a broken shortcut and switched to the column method.
    pub backtracked: bool,
    /// Number of injected execution slips in the steps the answer comes from (slips in an
    /// abandoned shortcut are not counted). Any such slip makes the answer wrong.
    pub slips: usize,
    /// The answer the trace writes.
    pub answer: u64,
    /// Whether that answer is right.
    pub correct: bool,
}

impl LabTrace {
    /// Prompt and completion as one text.
    pub fn text(&self) -> String {
        format!("{}{}", self.prompt, self.completion)
    }
}

/// How a trace is to be generated (what the sampler decided).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TracePlan {
    /// The opening strategy.
    pub strategy: Strategy,
    /// Notice a broken shortcut (only matters for shortcuts on carrying problems).
    pub backtrack: bool,
    /// Per-step slip chance of the column method.
    pub column_slip_rate: f64,
    /// Per-step slip chance of the shortcut.
    pub shortcut_slip_rate: f64,
}

impl TracePlan {
    /// A plan with no slips.
    pub fn clean(strategy: Strategy, backtrack: bool) -> Self {
        Self {
            strategy,
            backtrack,
            column_slip_rate: 0.0,
            shortcut_slip_rate: 0.0,
        }
    }

    /// Draws a plan for `problem` from the configuration's SFT mix.
    pub fn sample(config: &LabConfig, problem: &LabProblem, rng: &mut impl Rng) -> Self {
        let strategy = if config.habit_rate > 0.0 && rng.random_bool(config.habit_rate) {
            units_habit(problem)
        } else if rng.random_bool(config.shortcut_rate) {
            Strategy::Shortcut
        } else {
            Strategy::Column
        };
        Self {
            strategy,
            backtrack: rng.random_bool(config.backtrack_rate),
            column_slip_rate: config.column_slip_rate,
            shortcut_slip_rate: config.shortcut_slip_rate,
        }
    }
}

/// The units-column habit: the shortcut when the units digits sum below 10, else the column
/// method. Right about the shortcut only when no other column carries either.
pub fn units_habit(problem: &LabProblem) -> Strategy {
    match problem.columns().last() {
        Some((x, y)) if x + y < 10 => Strategy::Shortcut,
        _ => Strategy::Column,
    }
}

/// One SFT text (prompt + completion) for `problem` with the default mix.
pub fn sft_trace(problem: &LabProblem, rng: &mut impl Rng) -> String {
    sft_example(problem, &LabConfig::default(), rng).text()
}

/// One SFT example for `problem` drawn from `config`'s mix.
pub fn sft_example(problem: &LabProblem, config: &LabConfig, rng: &mut impl Rng) -> LabTrace {
    let plan = TracePlan::sample(config, problem, rng);
    write_trace(problem, &plan, rng)
}

/// Writes a trace following `plan` (the rng picks phrases and slips).
pub fn write_trace(problem: &LabProblem, plan: &TracePlan, rng: &mut impl Rng) -> LabTrace {
    let mut lines: Vec<String> = Vec::new();
    let mut slips = 0;
    let mut backtracked = false;
    let answer = match plan.strategy {
        Strategy::Column => {
            lines.push(pick(COLUMN, rng).to_string());
            column_steps(problem, plan.column_slip_rate, rng, &mut lines, &mut slips)
        }
        Strategy::Shortcut => {
            lines.push(format!("{} {SHORTCUT_CLAIM}", pick(SHORTCUT, rng)));
            let mut written = Vec::new();
            let mut broke = false;
            let mut shortcut_slips = 0;
            // A shortcut that will finish despite a carry is wrong already; a slip there
            // could cancel the dropped carry and make a lucky right answer, so none is added.
            let blind = !plan.backtrack && problem.has_carry();
            for (x, y) in problem.columns() {
                let mut sum = x + y;
                if sum < 10 && !blind && rng.random_bool(plan.shortcut_slip_rate) {
                    sum = slip_below_ten(sum, rng);
                    shortcut_slips += 1;
                }
                lines.push(format!("{x}+{y}={sum}"));
                if sum >= 10 && plan.backtrack {
                    broke = true;
                    break;
                }
                written.push(sum % 10);
            }
            if broke {
                backtracked = true;
                lines.push(pick(DETECT, rng).to_string());
                lines.push(pick(SWITCH, rng).to_string());
                column_steps(problem, plan.column_slip_rate, rng, &mut lines, &mut slips)
            } else {
                slips += shortcut_slips;
                written.iter().fold(0, |acc, &d| acc * 10 + u64::from(d))
            }
        }
    };
    lines.push(format!("answer: {answer}"));
    LabTrace {
        prompt: problem.prompt(),
        completion: lines.join("\n"),
        strategy: plan.strategy,
        backtracked,
        slips,
        answer,
        correct: answer == problem.answer(),
    }
}

/// Column addition from the units; returns the number written.
fn column_steps(
    problem: &LabProblem,
    slip_rate: f64,
    rng: &mut impl Rng,
    lines: &mut Vec<String>,
    slips: &mut usize,
) -> u64 {
    let columns = problem.columns();
    let mut carry = 0u8;
    let mut result = 0u64;
    let mut place = 1u64;
    for (i, (x, y)) in columns.iter().rev().enumerate() {
        let mut sum = x + y + carry;
        if rng.random_bool(slip_rate) {
            sum = if sum == 0 || (sum < 19 && rng.random_bool(0.5)) {
                sum + 1
            } else {
                sum - 1
            };
            *slips += 1;
        }
        let terms = if carry > 0 {
            format!("{x}+{y}+{carry}")
        } else {
            format!("{x}+{y}")
        };
        let last = i + 1 == columns.len();
        if last {
            lines.push(format!("{terms}={sum}, write {sum}"));
            result += u64::from(sum) * place;
        } else if sum >= 10 {
            lines.push(format!("{terms}={sum}, write {} carry 1", sum - 10));
            result += u64::from(sum - 10) * place;
        } else {
            lines.push(format!("{terms}={sum}, write {sum}"));
            result += u64::from(sum) * place;
        }
        carry = u8::from(sum >= 10);
        place *= 10;
    }
    result
}

fn slip_below_ten(sum: u8, rng: &mut impl Rng) -> u8 {
    if sum == 0 || (sum < 9 && rng.random_bool(0.5)) {
        sum + 1
    } else {
        sum - 1
    }
}

fn pick<'a>(options: &[&'a str], rng: &mut impl Rng) -> &'a str {
    options.choose(rng).copied().unwrap_or_default()
}

/// Reads the final answer (`answer: N`, the last one) from a completion.
pub fn extract_answer(completion: &str) -> Option<String> {
    let (_, after) = completion.rsplit_once("answer:")?;
    let number: String = after
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    (!number.is_empty()).then_some(number)
}
