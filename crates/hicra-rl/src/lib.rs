//! Reinforcement learning with verifiable rewards: GRPO family and HICRA.
//!
//! Pure pieces (advantages, the HICRA modifier, the loss, the optimiser, checkpoints, metric
//! sinks, the config) are independent modules; the trainer and SFT loop put them together.

pub mod advantage;
pub mod batch;
pub mod checkpoint;
pub mod config;
pub mod error;
pub mod hicra;
pub mod lab;
pub mod loss;
pub mod metrics;
pub mod optim;
pub mod rollout;
pub mod sft;
pub mod tasks;
pub mod trainer;

pub use error::{Result, RlError};
