//! The lab's failure anatomy: reads a response the way [`super::write_trace`] writes traces
//! and says why it failed.
//!
//! The response is read line by line: the opening line announces a strategy (a [`COLUMN`]
//! or [`SHORTCUT`] phrase); a later line starting with a [`DETECT`] or [`SWITCH`] phrase is
//! a backtrack; the strategy after the last backtrack is the one re-announced there, else
//! the style of the first step line after it (`x+y=s, write d` is the column method,
//! `x+y=s` the shortcut). A wrong answer is then
//!
//! * `format` when no `answer: N` can be read (as [`super::score_lab`] reads it);
//! * `planning` when there is no strategy phrase at the opening or no strategy after a
//!   backtrack, when the strategy that produced the answer cannot work for the problem
//!   (the shortcut on a carrying problem, not abandoned), or when the column method was
//!   abandoned for another;
//! * `execution` otherwise: the strategy that produced the answer is valid here, so a step
//!   slipped.
//!
//! Whether the answer is correct is not re-derived: it is the task's verdict, passed in.

use super::phrases::{COLUMN, DETECT, SHORTCUT, SWITCH};
use super::problem::LabProblem;
use super::trace::{Strategy, extract_answer};
use crate::anatomy::{Diagnosis, Outcome};

/// The strategy a line announces, if it opens with a strategy phrase.
fn announced(line: &str) -> Option<Strategy> {
    if COLUMN.iter().any(|p| line.starts_with(p)) {
        Some(Strategy::Column)
    } else if SHORTCUT.iter().any(|p| line.starts_with(p)) {
        Some(Strategy::Shortcut)
    } else {
        None
    }
}

/// Whether a line opens with a backtracking phrase (noticing or switching).
fn is_backtrack(line: &str) -> bool {
    DETECT.iter().chain(SWITCH).any(|p| line.starts_with(p))
}

/// `digits+digits(+digits)*=digits`: a step's sum.
fn is_sum(text: &str) -> bool {
    let Some((terms, total)) = text.split_once('=') else {
        return false;
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    digits(total) && terms.split('+').count() >= 2 && terms.split('+').all(digits)
}

/// The strategy whose step format a line has: `x+y=s, write …` (column) or `x+y=s` (shortcut).
fn step_style(line: &str) -> Option<Strategy> {
    match line.split_once(", write") {
        Some((sum, _)) if is_sum(sum) => Some(Strategy::Column),
        None if is_sum(line) => Some(Strategy::Shortcut),
        _ => None,
    }
}

/// Whether a strategy can produce the right answer for a problem.
pub fn strategy_valid(strategy: Strategy, problem: &LabProblem) -> bool {
    match strategy {
        Strategy::Column => true,
        Strategy::Shortcut => !problem.has_carry(),
    }
}

/// Diagnoses a response to a lab problem; `correct` is the task's verdict on it
/// ([`super::score_lab`]), so `Outcome::Correct` appears exactly when the grader says so.
pub fn diagnose_lab(problem: &LabProblem, response: &str, correct: bool) -> Diagnosis {
    let lines: Vec<&str> = response
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let opening = lines.first().and_then(|l| announced(l));
    let last_backtrack = lines
        .iter()
        .enumerate()
        .skip(1)
        .rev()
        .find(|(_, l)| is_backtrack(l))
        .map(|(i, _)| i);
    let backtracked = last_backtrack.is_some();
    let final_strategy = match last_backtrack {
        None => opening,
        Some(i) => lines[i + 1..]
            .iter()
            .find_map(|l| announced(l).or_else(|| step_style(l))),
    };
    let outcome = if correct {
        Outcome::Correct
    } else if extract_answer(response)
        .and_then(|a| a.parse::<u64>().ok())
        .is_none()
    {
        Outcome::Format
    } else {
        let column_abandoned =
            opening == Some(Strategy::Column) && final_strategy != Some(Strategy::Column);
        match (opening, final_strategy) {
            (Some(_), Some(last)) if strategy_valid(last, problem) && !column_abandoned => {
                Outcome::Execution
            }
            _ => Outcome::Planning,
        }
    };
    Diagnosis {
        outcome,
        valid_opening: opening.is_some_and(|s| strategy_valid(s, problem)),
        needed_backtrack: opening.is_some_and(|s| !strategy_valid(s, problem)),
        backtracked,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_lines_are_told_apart() {
        assert_eq!(
            step_style("7+5=12, write 2 carry 1"),
            Some(Strategy::Column)
        );
        assert_eq!(
            step_style("4+8+1=13, write 3 carry 1"),
            Some(Strategy::Column)
        );
        assert_eq!(step_style("3+2=5"), Some(Strategy::Shortcut));
        assert_eq!(step_style("answer: 5"), None);
        assert_eq!(step_style("3+=5"), None);
        assert_eq!(step_style("x+2=5, write 5"), None);
    }
}
