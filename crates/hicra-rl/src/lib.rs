//! Reinforcement learning with verifiable rewards: GRPO family and HICRA.
//!
//! Pure pieces (advantages, the HICRA modifier, the loss, the optimiser, checkpoints, metric
//! sinks, the config, the step's metrics) are independent modules. Two seams connect them to
//! the outside: [`generator::Generator`] (who samples: the in-process model or an inference
//! engine) and [`update::GradientHook`] (what happens between gradients and the optimiser
//! step). [`generation`] is the one prompt → generate → grade path of rollouts, validation and
//! `hicra eval`. The trainer and the SFT loop put the pieces together; [`run`] keeps a run's
//! directory and state, [`run_dir`] says what an output directory holds, [`run_record`] what
//! a run was started with (checked on resume), and [`events`] is what the trainer reports.

pub mod advantage;
pub mod analysis;
pub mod batch;
pub mod checkpoint;
pub mod config;
pub mod credit;
pub mod error;
pub mod events;
pub mod generation;
pub mod generator;
pub mod hicra;
pub mod lab;
pub mod loss;
pub mod metrics;
pub mod optim;
pub mod rollout;
pub mod run;
pub mod run_dir;
pub mod run_record;
pub mod sft;
pub mod step_metrics;
pub mod tasks;
pub mod trainer;
pub mod update;
pub mod validation;

pub use error::{Result, RlError};
