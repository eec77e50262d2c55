//! Failure anatomy: why a graded response failed (planning, execution or format), whether it
//! opened with a strategy that can work, and whether it backtracked; and the per-batch
//! fractions logged as `lab_*` metrics.
//!
//! Tasks whose traces are structured diagnose responses through `Task::diagnose`
//! (the reasoning lab does; see [`crate::lab::diagnose_lab`]). [`summarise`] turns a batch of
//! diagnoses into [`Anatomy`]; [`Anatomy::metrics`] names its five numbers for `metrics.jsonl`;
//! [`task_anatomy`] does both for a batch of graded responses.
//!
//! The three error shares and the accuracy of the batch (the share of `Correct`) sum to 1,
//! because every diagnosis has exactly one [`Outcome`] and `Correct` is given by the task's
//! own grader. Conditional fractions whose condition never occurs are 0, never NaN.

use serde::{Deserialize, Serialize};

/// What became of one response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// The task's grader accepted the answer.
    Correct,
    /// Wrong because of the plan: no strategy, or a strategy that cannot work here that was
    /// not abandoned, or a valid strategy abandoned.
    Planning,
    /// Wrong although the strategy that produced the answer is valid here: a step slipped.
    Execution,
    /// No answer could be read.
    Format,
}

/// The diagnosis of one graded response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diagnosis {
    /// The outcome; `Correct` exactly when the task graded the answer correct.
    pub outcome: Outcome,
    /// The response opened with a strategy that is valid for the problem.
    pub valid_opening: bool,
    /// The response opened with a strategy that cannot work for the problem (so only
    /// backtracking could rescue it). False when it opened with no strategy at all.
    pub needed_backtrack: bool,
    /// The response noticed a problem and switched strategy (a backtracking phrase after
    /// the opening).
    pub backtracked: bool,
}

/// The five anatomy fractions of a batch of responses.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Anatomy {
    /// Share of responses that failed by planning.
    pub planning_error_frac: f64,
    /// Share of responses that failed by execution.
    pub execution_error_frac: f64,
    /// Share of responses without a readable answer.
    pub format_error_frac: f64,
    /// Share of responses that opened with a strategy valid for their problem.
    pub strategy_choice_acc: f64,
    /// Among responses that opened with a strategy that cannot work here, the share that
    /// backtracked (the lab's `backtrack_rate` knob measures the same in SFT traces);
    /// 0 when no response needed to.
    pub backtrack_rate: f64,
}

/// The metric names of [`Anatomy`], in [`Anatomy::metrics`] order (validation lines add
/// the prefix `val_`).
pub const ANATOMY_KEYS: [&str; 5] = [
    "lab_planning_error_frac",
    "lab_execution_error_frac",
    "lab_format_error_frac",
    "lab_strategy_choice_acc",
    "lab_backtrack_rate",
];

/// `part / whole`, or 0 when `whole` is 0.
fn share(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// The anatomy fractions of a batch of diagnoses (all zero for an empty batch).
pub fn summarise(diagnoses: &[Diagnosis]) -> Anatomy {
    let n = diagnoses.len();
    let count = |f: &dyn Fn(&Diagnosis) -> bool| diagnoses.iter().filter(|d| f(d)).count();
    let needed = count(&|d| d.needed_backtrack);
    Anatomy {
        planning_error_frac: share(count(&|d| d.outcome == Outcome::Planning), n),
        execution_error_frac: share(count(&|d| d.outcome == Outcome::Execution), n),
        format_error_frac: share(count(&|d| d.outcome == Outcome::Format), n),
        strategy_choice_acc: share(count(&|d| d.valid_opening), n),
        backtrack_rate: share(count(&|d| d.needed_backtrack && d.backtracked), needed),
    }
}

impl Anatomy {
    /// The five values keyed by [`ANATOMY_KEYS`] with `prefix` in front (`""` for
    /// rollouts, `"val_"` for validation), ready to extend a metrics record.
    pub fn metrics(&self, prefix: &str) -> Vec<(String, f64)> {
        let values = [
            self.planning_error_frac,
            self.execution_error_frac,
            self.format_error_frac,
            self.strategy_choice_acc,
            self.backtrack_rate,
        ];
        ANATOMY_KEYS
            .iter()
            .zip(values)
            .map(|(key, value)| (format!("{prefix}{key}"), value))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(outcome: Outcome, valid_opening: bool, needed: bool, backtracked: bool) -> Diagnosis {
        Diagnosis {
            outcome,
            valid_opening,
            needed_backtrack: needed,
            backtracked,
        }
    }

    #[test]
    fn fractions_of_a_batch() {
        let batch = [
            d(Outcome::Correct, true, false, false),
            d(Outcome::Correct, false, true, true),
            d(Outcome::Planning, false, true, false),
            d(Outcome::Execution, true, false, false),
            d(Outcome::Format, false, false, false),
        ];
        let a = summarise(&batch);
        assert_eq!(a.planning_error_frac, 0.2);
        assert_eq!(a.execution_error_frac, 0.2);
        assert_eq!(a.format_error_frac, 0.2);
        assert_eq!(a.strategy_choice_acc, 0.4);
        assert_eq!(a.backtrack_rate, 0.5);
        let accuracy = 0.4;
        let total = a.planning_error_frac + a.execution_error_frac + a.format_error_frac + accuracy;
        assert!((total - 1.0).abs() < 1e-12);
    }

    #[test]
    fn empty_and_impossible_classes_are_zero_not_nan() {
        let a = summarise(&[]);
        assert_eq!(a, Anatomy::default());
        // Nobody needed to backtrack: the rate is 0.
        let a = summarise(&[d(Outcome::Execution, true, false, true)]);
        assert_eq!(a.backtrack_rate, 0.0);
        assert_eq!(a.execution_error_frac, 1.0);
        assert!(a.metrics("").iter().all(|(_, v)| v.is_finite()));
    }

    #[test]
    fn metric_names_carry_the_prefix() {
        let a = summarise(&[d(Outcome::Planning, false, true, false)]);
        let m = a.metrics("val_");
        assert_eq!(m.len(), 5);
        assert_eq!(m[0], ("val_lab_planning_error_frac".to_string(), 1.0));
        assert_eq!(m[4].0, "val_lab_backtrack_rate");
        assert_eq!(
            a.metrics("")[3],
            ("lab_strategy_choice_acc".to_string(), 0.0)
        );
    }
}
