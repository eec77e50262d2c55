//! A reading of a run's trends: which of the paper's two phases it looks to be in. A
//! heuristic, stated with the numbers it used: each metric's mean over the first third of its
//! steps against the last third.
//! - phase 1 (execution is being consolidated): execution token entropy (or perplexity) still
//!   falls by more than [`FLAT`] of its early value, and semantic entropy does not rise;
//! - phase 2 (planning is the bottleneck): execution is flat (within [`FLAT`]) while semantic
//!   entropy rises by more than [`RISE_NATS`];
//! - the transition: both at once;
//! - without rescored execution panels only a rise of semantic entropy is read (as phase 2,
//!   with that caveat); anything else is left undetermined.

use serde::Serialize;

/// Relative change of an execution metric that still counts as flat.
pub const FLAT: f64 = 0.10;
/// Rise of semantic entropy (nats) that counts as rising.
pub const RISE_NATS: f64 = 0.05;
/// Fewest points a metric needs to be read.
pub const MIN_POINTS: usize = 3;

/// The phase a run looks to be in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Phase 1: execution is being consolidated.
    Execution,
    /// Between the phases.
    Transition,
    /// Phase 2: planning is the bottleneck.
    Planning,
    /// The trends do not say.
    Undetermined,
}

/// One metric's early and late means.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Trend {
    /// The metric.
    pub metric: String,
    /// Mean over the first third of its steps.
    pub early: f64,
    /// Mean over the last third.
    pub late: f64,
}

impl Trend {
    fn change(&self) -> f64 {
        self.late - self.early
    }
    fn relative(&self) -> f64 {
        self.change() / self.early.abs().max(1e-12)
    }
    fn describe(&self) -> String {
        format!(
            "{} {:.3} → {:.3} ({:+.1} %)",
            self.metric,
            self.early,
            self.late,
            100.0 * self.relative()
        )
    }
}

/// The reading.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reading {
    /// The phase.
    pub phase: Phase,
    /// The reading in words, with its numbers.
    pub text: String,
    /// The trends it used.
    pub trends: Vec<Trend>,
}

fn trend(metric: &str, points: &[(f64, f64)]) -> Option<Trend> {
    if points.len() < MIN_POINTS {
        return None;
    }
    let w = points.len() / 3;
    let mean = |p: &[(f64, f64)]| p.iter().map(|x| x.1).sum::<f64>() / p.len() as f64;
    Some(Trend {
        metric: metric.to_string(),
        early: mean(&points[..w]),
        late: mean(&points[points.len() - w..]),
    })
}

/// Reads the phase from a run's series (`series(name)` gives a metric's `(step, value)`
/// points in step order, by its `metrics.jsonl` name).
pub fn read_phase(series: &dyn Fn(&str) -> Vec<(f64, f64)>) -> Reading {
    let get = |name: &str| trend(name, &series(name));
    let semantic = get("semantic_entropy");
    let execution = get("token_entropy_execution").or_else(|| get("ppl_execution"));
    let planning = get("token_entropy_planning");
    let accuracy = get("val_accuracy").or_else(|| get("accuracy"));
    let trends: Vec<Trend> = [&semantic, &execution, &planning, &accuracy]
        .into_iter()
        .flatten()
        .cloned()
        .collect();
    let said: Vec<String> = trends.iter().map(Trend::describe).collect();
    let numbers = said.join("; ");
    let Some(sem) = &semantic else {
        return Reading {
            phase: Phase::Undetermined,
            text: format!(
                "Too few steps to read a trend (fewer than {MIN_POINTS} with semantic entropy)."
            ),
            trends,
        };
    };
    let rising = sem.change() > RISE_NATS;
    let (phase, why) = match &execution {
        Some(e) if e.relative() < -FLAT && !rising => (
            Phase::Execution,
            "execution tokens are still being consolidated (their entropy falls) while the diversity of planning phrases does not grow",
        ),
        Some(e) if e.relative() < -FLAT => (
            Phase::Transition,
            "execution is still consolidating while semantic entropy already rises",
        ),
        Some(e) if e.relative().abs() <= FLAT && rising => (
            Phase::Planning,
            "execution is flat while the diversity of planning phrases (semantic entropy) rises: planning is the bottleneck, where HICRA has headroom",
        ),
        Some(_) => (Phase::Undetermined, "the trends fit neither phase"),
        None if rising => (
            Phase::Planning,
            "semantic entropy rises (without --checkpoints the execution side is not measured, so this rests on the text alone)",
        ),
        None => (
            Phase::Undetermined,
            "semantic entropy does not rise, and without --checkpoints the execution side is not measured",
        ),
    };
    let name = match phase {
        Phase::Execution => "phase 1 (execution)",
        Phase::Transition => "the transition from phase 1 to phase 2",
        Phase::Planning => "phase 2 (planning)",
        Phase::Undetermined => "neither phase clearly",
    };
    Reading {
        phase,
        text: format!(
            "The run looks to be in {name}: {why}. Heuristic, first third of the steps against the last third: {numbers}."
        ),
        trends,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(f: impl Fn(f64) -> f64) -> Vec<(f64, f64)> {
        (0..9).map(|s| (s as f64, f(s as f64))).collect()
    }

    #[test]
    fn flat_execution_and_rising_semantic_entropy_read_as_phase_two() {
        let r = read_phase(&|name| match name {
            "semantic_entropy" => line(|s| 2.0 + 0.1 * s),
            "token_entropy_execution" => line(|s| 0.5 - 0.001 * s),
            _ => Vec::new(),
        });
        assert_eq!(r.phase, Phase::Planning, "{}", r.text);
        assert!(
            r.text.contains("semantic_entropy 2.100 → 2.700"),
            "{}",
            r.text
        );
    }

    #[test]
    fn falling_execution_reads_as_phase_one_and_few_steps_as_undetermined() {
        let r = read_phase(&|name| match name {
            "semantic_entropy" => line(|_| 2.0),
            "token_entropy_execution" => line(|s| 1.0 - 0.08 * s),
            _ => Vec::new(),
        });
        assert_eq!(r.phase, Phase::Execution);
        let r = read_phase(&|_| vec![(0.0, 1.0), (1.0, 2.0)]);
        assert_eq!(r.phase, Phase::Undetermined);
    }
}
