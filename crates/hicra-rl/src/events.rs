//! What the trainer reports while it runs: [`TrainEvent`]s to a [`TrainObserver`] (progress
//! bars, logs, the Python bindings).

use std::path::Path;

use crate::hicra::TokenAdvantages;
use crate::metrics::Record;
use crate::rollout::Rollout;

/// What the trainer reports while it runs (for progress bars and logs).
#[derive(Debug)]
pub enum TrainEvent<'a> {
    /// Training begins (or resumes) after `start_step` of `total_steps`.
    Started {
        /// Steps already done.
        start_step: u64,
        /// Steps of the whole run.
        total_steps: u64,
    },
    /// A stage of a step begins (`rollout`, `train`, `validation`, `checkpoint`).
    Stage {
        /// The step.
        step: u64,
        /// Which stage.
        stage: &'a str,
    },
    /// The advantages phase of a step is done: the per-token credit of each kept response.
    Credit {
        /// The step.
        step: u64,
        /// The responses kept for training.
        rollouts: &'a [Rollout],
        /// Planning-token flags per response token.
        planning: &'a [Vec<bool>],
        /// Token entropies, when a scoring pass computed them.
        entropies: Option<&'a [Vec<f32>]>,
        /// Per-token advantages and which tokens the HICRA variant marked.
        advantages: &'a TokenAdvantages,
    },
    /// A step finished with these metrics.
    Step {
        /// The step.
        step: u64,
        /// Its metrics.
        record: &'a Record,
    },
    /// A validation finished.
    Validation {
        /// The step (0 = before training).
        step: u64,
        /// Accuracy on the validation problems.
        accuracy: f64,
        /// Mean response length in tokens.
        length: f64,
    },
    /// Something the user should know while the run goes on (e.g. nothing was trained for
    /// several steps).
    Warning {
        /// The step.
        step: u64,
        /// What is wrong, and what to look at.
        message: String,
    },
    /// A checkpoint was written.
    Checkpoint {
        /// The step.
        step: u64,
        /// Its directory.
        path: &'a Path,
    },
}

/// Receives [`TrainEvent`]s.
pub trait TrainObserver {
    /// Called for every event.
    fn event(&mut self, event: &TrainEvent<'_>);
}

/// An observer that ignores everything.
pub struct SilentObserver;

impl TrainObserver for SilentObserver {
    fn event(&mut self, _event: &TrainEvent<'_>) {}
}
