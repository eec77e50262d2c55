//! The policy update shared by RL and SFT: backward passes over micro-batches accumulate
//! gradients; then, at one named point ([`GradientHook`], where a data-parallel all-reduce
//! goes), the gradients are final and one AdamW step on the learning-rate schedule applies
//! them.

use candle_core::{Tensor, Var};
use hicra_model::{Model, ScoreOptions, TokenBatch, TokenChunk};

use crate::error::{Result, RlError};
use crate::optim::{AdamW, GradAccumulator, LrSchedule, StepReport};

/// Runs between "gradients ready" and "optimiser step" (a data-parallel all-reduce, gradient
/// logging). It may replace the gradients in place.
pub trait GradientHook: Send {
    /// `grads[i]` is the summed gradient of `params[i]` (`None`: it received none).
    fn gradients_ready(
        &mut self,
        params: &[(String, Var)],
        grads: &mut [Option<Tensor>],
    ) -> Result<()>;
}

/// A hook that leaves the gradients as they are (single process).
pub struct NoHook;

impl GradientHook for NoHook {
    fn gradients_ready(&mut self, _: &[(String, Var)], _: &mut [Option<Tensor>]) -> Result<()> {
        Ok(())
    }
}

/// Accumulates micro-batch gradients and applies optimiser steps.
pub struct PolicyUpdater {
    optimizer: AdamW,
    schedule: LrSchedule,
    score: ScoreOptions,
    accumulated: GradAccumulator,
    hook: Box<dyn GradientHook>,
}

impl PolicyUpdater {
    /// An updater over `optimizer`'s parameters; `score` sets the position chunking (and
    /// whether entropies are computed) of the backward passes.
    pub fn new(optimizer: AdamW, schedule: LrSchedule, score: ScoreOptions) -> Self {
        let n = optimizer.params().len();
        PolicyUpdater {
            optimizer,
            schedule,
            score,
            accumulated: GradAccumulator::new(n),
            hook: Box::new(NoHook),
        }
    }

    /// Puts `hook` between gradient accumulation and the optimiser step.
    pub fn set_hook(&mut self, hook: Box<dyn GradientHook>) {
        self.hook = hook;
    }

    /// The optimiser (its step count and state).
    pub fn optimizer(&self) -> &AdamW {
        &self.optimizer
    }

    /// The optimiser, to load a saved state.
    pub fn optimizer_mut(&mut self) -> &mut AdamW {
        &mut self.optimizer
    }

    /// The learning rate the next step will use.
    pub fn next_lr(&self) -> f64 {
        self.schedule.lr_at(self.optimizer.step_count() as usize)
    }

    /// One backward pass of `model` over `batch`: `loss` is called per position chunk and
    /// returns its differentiable scalar loss. The gradients are added to the accumulated ones;
    /// returns the micro-batch's total loss. A non-finite loss is [`RlError::NonFinite`].
    pub fn backward(
        &mut self,
        model: &Model,
        batch: &TokenBatch,
        loss: &mut dyn FnMut(&TokenChunk) -> candle_core::Result<Tensor>,
    ) -> Result<f64> {
        let out = model
            .backward_token_loss(batch, &self.score, loss)
            .map_err(|e| RlError::model("backward", e))?;
        self.accumulated.add(self.optimizer.params(), &out.grads)?;
        Ok(out.loss)
    }

    /// Runs the hook on the accumulated gradients, then one AdamW step at the scheduled
    /// learning rate; the accumulator starts again from zero. Nothing is applied when a
    /// gradient is not finite.
    pub fn step(&mut self) -> Result<StepReport> {
        let lr = self.next_lr();
        let n = self.optimizer.params().len();
        let mut grads = std::mem::replace(&mut self.accumulated, GradAccumulator::new(n));
        self.hook
            .gradients_ready(self.optimizer.params(), grads.grads_mut())?;
        self.optimizer.step(grads.grads(), lr)
    }
}
