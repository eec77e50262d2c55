//! The sections of the training configuration, each with its defaults and its own checks
//! (naming the key).

use hicra_model::Precision;
use serde::{Deserialize, Serialize};

use crate::advantage::AdvantageEstimator;
use crate::error::{Result, RlError};
use crate::generation::PromptSettings;
use crate::hicra::HicraConfig;
use crate::loss::{KlEstimator, LossAggregation, LossConfig};
use crate::optim::{AdamWConfig, LrSchedule, ScheduleKind};
pub use hicra_model::device::{DTypeSpec, DeviceSpec};

/// Which model to train, where, and how its prompts are rendered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelSection {
    /// Model spec for `hicra_model::load_model` (HF dir, .gguf, fetched name). Empty: the lab's
    /// tiny model (warm-started by SFT, cached under the hicra home).
    pub path: String,
    /// Format prompts with the model's chat template when it has one.
    pub use_chat_template: bool,
    /// System prompt put first in chat prompts (chat template only; empty: none).
    pub system_prompt: String,
    /// Where the policy, the reference and the generator run: `cpu`, `cuda` or `cuda:N`.
    pub device: DeviceSpec,
    /// Compute dtype: `auto` (f32 on the CPU, bf16 on CUDA), `f32`, `bf16`, `f64`.
    pub dtype: DTypeSpec,
}

impl Default for ModelSection {
    fn default() -> Self {
        ModelSection {
            path: String::new(),
            use_chat_template: true,
            system_prompt: String::new(),
            device: DeviceSpec::Cpu,
            dtype: DTypeSpec::Auto,
        }
    }
}

impl ModelSection {
    /// How prompts are rendered for this model.
    pub fn prompt_settings(&self) -> PromptSettings {
        PromptSettings {
            use_chat_template: self.use_chat_template,
            system_prompt: self.system_prompt.clone(),
        }
    }

    /// The load options of `model.device` and `model.dtype` (an error names the key when this
    /// build or machine cannot provide them).
    pub fn load_options(&self) -> Result<hicra_model::LoadOptions> {
        let device = self
            .device
            .device()
            .map_err(|e| RlError::config("model.device", e.to_string()))?;
        let dtype = self
            .dtype
            .resolve(&self.device)
            .map_err(|e| RlError::config("model.dtype", e.to_string()))?;
        Ok(hicra_model::LoadOptions { device, dtype })
    }
}

/// The kind of task (config: `task.kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskKind {
    /// The built-in reasoning lab.
    #[default]
    Lab,
    /// Generated arithmetic word problems.
    Arithmetic,
    /// Problems from JSONL/Parquet files.
    Dataset,
}

impl TaskKind {
    /// The name used in configs and run directories.
    pub fn name(self) -> &'static str {
        match self {
            TaskKind::Lab => "lab",
            TaskKind::Arithmetic => "arithmetic",
            TaskKind::Dataset => "dataset",
        }
    }
}

/// Which task supplies prompts and rewards.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TaskSection {
    /// `lab` (the built-in reasoning lab), `arithmetic` (generated word problems), or
    /// `dataset` (JSONL/Parquet files).
    pub kind: TaskKind,
    /// The reasoning lab's settings (`kind = "lab"`).
    pub lab: hicra_tasks::lab::LabConfig,
    /// The word-problem generator's settings (`kind = "arithmetic"`).
    pub arith: hicra_tasks::arith::ArithConfig,
    /// Training file (`dataset` only).
    pub train_path: String,
    /// Validation file (`dataset` only; empty = hold out `val_holdout` training problems).
    pub val_path: String,
    /// Problems held out of the training file for validation when `val_path` is empty.
    pub val_holdout: usize,
    /// Seed of the data set's shuffling (`dataset` only).
    pub seed: u64,
}

impl Default for TaskSection {
    fn default() -> Self {
        TaskSection {
            kind: TaskKind::Lab,
            lab: hicra_tasks::lab::LabConfig::default(),
            arith: hicra_tasks::arith::ArithConfig::default(),
            train_path: String::new(),
            val_path: String::new(),
            val_holdout: 100,
            seed: 0,
        }
    }
}

impl TaskSection {
    /// Checks the task settings, naming the key.
    pub fn validate(&self) -> Result<()> {
        let err = |k: &str, m: String| Err(RlError::config(k, m));
        if self.kind == TaskKind::Dataset && self.train_path.is_empty() {
            return err(
                "task.train_path",
                "is required when task.kind = \"dataset\"".into(),
            );
        }
        Ok(())
    }
}

/// Rollout generation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RolloutSection {
    /// Responses per training step (prompts × group size).
    pub batch_size: usize,
    /// Responses per prompt (G).
    pub group_size: usize,
    /// Sampling temperature.
    pub temperature: f64,
    /// Nucleus sampling threshold (1 = off).
    pub top_p: f64,
    /// Top-k (0 = off).
    pub top_k: usize,
    /// Maximum response length in tokens.
    pub max_new_tokens: usize,
    /// Sequences generated together (memory bound for generation).
    pub generation_batch: usize,
    /// DAPO soft overlong penalty: length of the buffer before `max_new_tokens` over which the
    /// penalty ramps from 0 to `overlong_penalty` (0 = off).
    pub overlong_buffer: usize,
    /// Maximum overlong penalty subtracted from the reward.
    pub overlong_penalty: f32,
    /// Give truncated responses (finish reason `length`) zero loss weight.
    pub mask_truncated: bool,
    /// Precision of in-process generation (rollouts and validation): `f32`, or `bf16` (bf16
    /// weights, f32 accumulation, on CPUs with AVX-512 BF16; f32 elsewhere). With `bf16` the
    /// old log-probs are always rescored by the policy in its own dtype.
    pub decode_dtype: Precision,
}

impl Default for RolloutSection {
    fn default() -> Self {
        RolloutSection {
            batch_size: 64,
            group_size: 8,
            temperature: 1.0,
            top_p: 1.0,
            top_k: 0,
            max_new_tokens: 256,
            generation_batch: 64,
            overlong_buffer: 0,
            overlong_penalty: 1.0,
            mask_truncated: false,
            decode_dtype: Precision::F32,
        }
    }
}

impl RolloutSection {
    /// Checks the rollout settings, naming the key. (Negated comparisons are deliberate: they also reject NaN.)
    #[allow(clippy::neg_cmp_op_on_partial_ord)]
    pub fn validate(&self) -> Result<()> {
        let err = |k: &str, m: String| Err(RlError::config(k, m));
        if self.group_size == 0 {
            return err("rollout.group_size", "must be at least 1".into());
        }
        if self.batch_size == 0 || !self.batch_size.is_multiple_of(self.group_size) {
            return err(
                "rollout.batch_size",
                format!(
                    "{} is not a positive multiple of rollout.group_size = {}",
                    self.batch_size, self.group_size
                ),
            );
        }
        if self.max_new_tokens == 0 {
            return err("rollout.max_new_tokens", "must be at least 1".into());
        }
        if self.overlong_buffer >= self.max_new_tokens && self.overlong_buffer > 0 {
            return err(
                "rollout.overlong_buffer",
                format!(
                    "must be smaller than rollout.max_new_tokens = {}",
                    self.max_new_tokens
                ),
            );
        }
        if !(self.temperature >= 0.0) {
            return err("rollout.temperature", "must be ≥ 0".into());
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return err("rollout.top_p", "must be in (0, 1]".into());
        }
        if self.generation_batch == 0 {
            return err("rollout.generation_batch", "must be at least 1".into());
        }
        Ok(())
    }
}

/// The RL algorithm.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlgorithmSection {
    /// Advantage estimator: `grpo`, `dr-grpo`, `rloo`, `reinforce++-baseline`.
    pub advantage: AdvantageEstimator,
    /// GRPO: divide by the group std.
    pub std_normalize: bool,
    /// The HICRA modifier.
    pub hicra: HicraConfig,
    /// Lower clip ε.
    pub clip_low: f32,
    /// Upper clip ε (clip-higher).
    pub clip_high: f32,
    /// Dual-clip constant (0 = off).
    pub dual_clip: f32,
    /// Loss aggregation: `token-mean`, `seq-mean-token-mean`, `seq-mean-token-sum-norm`.
    pub loss_agg: LossAggregation,
    /// KL coefficient to the frozen reference (0 = off, no reference model kept).
    pub kl_coef: f32,
    /// KL estimator: `k1`, `k2`, `k3`.
    pub kl_estimator: KlEstimator,
    /// Entropy bonus coefficient.
    pub entropy_coef: f32,
    /// Drop groups whose rewards are all equal and sample more prompts to refill the batch.
    pub dynamic_sampling: bool,
    /// With dynamic sampling: rollout rounds per step at most (then train on what there is).
    pub max_sampling_rounds: usize,
    /// Passes over each step's rollouts.
    pub ppo_epochs: usize,
    /// Optimiser steps per epoch (the batch's groups are split evenly).
    pub mini_batches: usize,
    /// Sequences per forward/backward pass (gradient accumulation inside a mini-batch).
    pub micro_batch: usize,
    /// Recompute old log-probs with the policy before training (else the sampling log-probs).
    pub recompute_old_logprobs: bool,
    /// Positions per lm_head chunk in scoring and backward (memory bound).
    pub chunk_positions: usize,
    /// Recompute each layer's activations in the backward pass instead of keeping them (less
    /// memory, one more trunk forward per micro-batch).
    pub activation_checkpointing: bool,
    /// Precision of the projections and LM head in the training forward/backward and the
    /// policy's scoring: `f32`, or `bf16` (operands rounded to bf16, f32 accumulation, f32
    /// master weights, on CPUs with AVX-512 BF16, AMX where present; f32 elsewhere). With
    /// `bf16` the old log-probs are always rescored by the policy, so that the importance ratio
    /// compares like with like.
    pub matmul_dtype: Precision,
}

impl Default for AlgorithmSection {
    fn default() -> Self {
        AlgorithmSection {
            advantage: AdvantageEstimator::Grpo,
            std_normalize: true,
            hicra: HicraConfig::default(),
            clip_low: 0.2,
            clip_high: 0.28,
            dual_clip: 3.0,
            loss_agg: LossAggregation::TokenMean,
            kl_coef: 0.0,
            kl_estimator: KlEstimator::K3,
            entropy_coef: 0.0,
            dynamic_sampling: false,
            max_sampling_rounds: 3,
            ppo_epochs: 1,
            mini_batches: 1,
            micro_batch: 8,
            recompute_old_logprobs: false,
            chunk_positions: 64,
            activation_checkpointing: false,
            matmul_dtype: Precision::F32,
        }
    }
}

impl AlgorithmSection {
    /// Checks the algorithm settings for `prompts` prompts per step, naming the key. (Negated comparisons are deliberate: they also reject NaN.)
    #[allow(clippy::neg_cmp_op_on_partial_ord)]
    pub fn validate(&self, prompts: usize) -> Result<()> {
        let err = |k: &str, m: String| Err(RlError::config(k, m));
        if self.mini_batches == 0 || !prompts.is_multiple_of(self.mini_batches) {
            return err(
                "algorithm.mini_batches",
                format!(
                    "must divide the {prompts} prompts per step (rollout.batch_size / rollout.group_size)"
                ),
            );
        }
        if self.micro_batch == 0 {
            return err("algorithm.micro_batch", "must be at least 1".into());
        }
        if self.ppo_epochs == 0 {
            return err("algorithm.ppo_epochs", "must be at least 1".into());
        }
        if self.chunk_positions == 0 {
            return err("algorithm.chunk_positions", "must be at least 1".into());
        }
        if !(self.clip_low >= 0.0 && self.clip_low < 1.0) {
            return err("algorithm.clip_low", "must be in [0, 1)".into());
        }
        if !(self.clip_high >= 0.0) {
            return err("algorithm.clip_high", "must be ≥ 0".into());
        }
        if self.dual_clip != 0.0 && !(self.dual_clip > 1.0) {
            return err(
                "algorithm.dual_clip",
                "must be 0 (off) or greater than 1".into(),
            );
        }
        if !(self.kl_coef >= 0.0) {
            return err("algorithm.kl_coef", "must be ≥ 0".into());
        }
        if !(self.hicra.alpha >= 0.0) {
            return err("algorithm.hicra.alpha", "must be ≥ 0".into());
        }
        if !(0.0..=1.0).contains(&self.hicra.entropy_quantile) {
            return err(
                "algorithm.hicra.entropy_quantile",
                "must be in [0, 1]".into(),
            );
        }
        if self.dynamic_sampling && self.max_sampling_rounds == 0 {
            return err("algorithm.max_sampling_rounds", "must be at least 1".into());
        }
        Ok(())
    }

    /// Checks that the estimator has responses to compare: every GRPO-family advantage
    /// measures a response against the other responses to its prompt, so with one response
    /// per prompt each is 0 and training changes nothing.
    pub fn validate_groups(&self, group_size: usize) -> Result<()> {
        if group_size >= 2 {
            return Ok(());
        }
        let estimator = serde_json::to_value(self.advantage)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        Err(RlError::config(
            "rollout.group_size",
            format!(
                "= {group_size} trains nothing with algorithm.advantage = \"{estimator}\": the \
                 estimator compares the responses to one prompt, so with a single response \
                 every advantage is 0; use at least 2 (8 or 16 are usual)"
            ),
        ))
    }

    /// The loss settings.
    pub fn loss_config(&self) -> LossConfig {
        LossConfig {
            clip_low: self.clip_low,
            clip_high: self.clip_high,
            dual_clip: self.dual_clip,
            aggregation: self.loss_agg,
            kl_coef: self.kl_coef,
            kl_estimator: self.kl_estimator,
            entropy_coef: self.entropy_coef,
        }
    }
}

/// Optimiser and schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OptimSection {
    /// Peak learning rate.
    pub lr: f64,
    /// Decoupled weight decay.
    pub weight_decay: f64,
    /// Adam β1.
    pub beta1: f64,
    /// Adam β2.
    pub beta2: f64,
    /// Adam ε.
    pub eps: f64,
    /// Global grad-norm clip (0 = off).
    pub grad_clip: f64,
    /// Linear warm-up steps.
    pub warmup_steps: usize,
    /// `constant` or `cosine` after warm-up.
    pub schedule: ScheduleKind,
    /// Cosine floor as a fraction of `lr`.
    pub min_lr_ratio: f64,
}

impl Default for OptimSection {
    fn default() -> Self {
        OptimSection {
            lr: 1e-6,
            weight_decay: 0.01,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            grad_clip: 1.0,
            warmup_steps: 0,
            schedule: ScheduleKind::Constant,
            min_lr_ratio: 0.0,
        }
    }
}

impl OptimSection {
    /// Checks the optimiser settings, naming the key. (Negated comparisons are deliberate: they also reject NaN.)
    #[allow(clippy::neg_cmp_op_on_partial_ord)]
    pub fn validate(&self) -> Result<()> {
        let err = |k: &str, m: String| Err(RlError::config(k, m));
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return err("optim.lr", "must be a positive number".into());
        }
        if !(0.0..1.0).contains(&self.beta1) || !(0.0..1.0).contains(&self.beta2) {
            return err("optim.beta1", "β1 and β2 must be in [0, 1)".into());
        }
        Ok(())
    }

    /// AdamW hyper-parameters.
    pub fn adamw(&self) -> AdamWConfig {
        AdamWConfig {
            beta1: self.beta1,
            beta2: self.beta2,
            eps: self.eps,
            weight_decay: self.weight_decay,
            grad_clip: self.grad_clip,
        }
    }
    /// The schedule over `total_steps` optimiser steps.
    pub fn schedule(&self, total_steps: usize) -> LrSchedule {
        LrSchedule {
            lr: self.lr,
            warmup_steps: self.warmup_steps,
            kind: self.schedule,
            total_steps,
            min_lr_ratio: self.min_lr_ratio,
        }
    }
}

/// The training loop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainerSection {
    /// RL steps (one rollout batch each).
    pub steps: usize,
    /// Validate every N steps (and before the first and after the last); 0 = only at the ends.
    pub val_every: usize,
    /// Validation problems.
    pub val_size: usize,
    /// Validation sampling temperature (0 = greedy).
    pub val_temperature: f64,
    /// Checkpoint every N steps (and at the end); 0 = only at the end.
    pub ckpt_every: usize,
    /// Checkpoints kept (older ones deleted); 0 = all.
    pub keep_checkpoints: usize,
    /// Seed of everything random in the run.
    pub seed: u64,
    /// Run directory (empty = `runs/<timestamp>`).
    pub out: String,
    /// Write `samples/step-N.jsonl` every N steps (0 = never).
    pub samples_every: usize,
    /// Strategic-Gram file for planning masks (empty = the paper's list).
    pub grams: String,
}

impl Default for TrainerSection {
    fn default() -> Self {
        TrainerSection {
            steps: 100,
            val_every: 10,
            val_size: 64,
            val_temperature: 0.0,
            ckpt_every: 50,
            keep_checkpoints: 2,
            seed: 0,
            out: String::new(),
            samples_every: 1,
            grams: String::new(),
        }
    }
}

impl TrainerSection {
    /// Checks the loop settings, naming the key.
    pub fn validate(&self) -> Result<()> {
        let err = |k: &str, m: String| Err(RlError::config(k, m));
        if self.steps == 0 {
            return err(
                "trainer.steps",
                "must be at least 1: a run of 0 steps trains nothing (`hicra eval` evaluates a \
                 model)"
                    .into(),
            );
        }
        if self.val_size == 0 {
            return err("trainer.val_size", "must be at least 1".into());
        }
        Ok(())
    }
}

/// Supervised warm start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SftSection {
    /// Optimiser steps.
    pub steps: usize,
    /// Sequences per step.
    pub batch_size: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// Warm-up steps.
    pub warmup_steps: usize,
    /// JSONL of `{"prompt", "completion"}` (empty = the task's own traces, e.g. the lab's).
    pub data: String,
    /// Training examples generated from the task (when `data` is empty).
    pub examples: usize,
    /// Longest sequence kept (prompt + completion tokens); longer ones are truncated.
    pub max_len: usize,
    /// Log every N steps.
    pub log_every: usize,
}

impl Default for SftSection {
    fn default() -> Self {
        SftSection {
            steps: 200,
            batch_size: 32,
            lr: 3e-3,
            warmup_steps: 20,
            data: String::new(),
            examples: 4000,
            max_len: 256,
            log_every: 20,
        }
    }
}

impl SftSection {
    /// Checks the warm-start settings, naming the key.
    pub fn validate(&self) -> Result<()> {
        let err = |k: &str, m: String| Err(RlError::config(k, m));
        if self.batch_size == 0 {
            return err("sft.batch_size", "must be at least 1".into());
        }
        if self.steps == 0 {
            return err(
                "sft.steps",
                "must be at least 1: 0 steps would train nothing".into(),
            );
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return err("sft.lr", "must be a positive number".into());
        }
        Ok(())
    }
}

/// Shape of the lab's tiny Llama model and its tokenizer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LabModelSection {
    /// BPE vocabulary size trained on the lab corpus.
    pub vocab_size: usize,
    /// Hidden size.
    pub hidden_size: usize,
    /// Transformer layers.
    pub layers: usize,
    /// Attention heads.
    pub heads: usize,
    /// Key/value heads.
    pub kv_heads: usize,
    /// MLP inner size.
    pub intermediate_size: usize,
    /// Texts in the tokenizer corpus.
    pub corpus_size: usize,
}

impl Default for LabModelSection {
    fn default() -> Self {
        LabModelSection {
            vocab_size: 512,
            hidden_size: 128,
            layers: 4,
            heads: 4,
            kv_heads: 2,
            intermediate_size: 384,
            corpus_size: 2000,
        }
    }
}

impl LabModelSection {
    /// Checks the lab model's shape, naming the key.
    pub fn validate(&self) -> Result<()> {
        let err = |k: &str, m: String| Err(RlError::config(k, m));
        if self.heads == 0
            || self.kv_heads == 0
            || !self.hidden_size.is_multiple_of(self.heads)
            || !self.heads.is_multiple_of(self.kv_heads)
        {
            return err(
                "lab_model.heads",
                "lab_model.hidden_size must be divisible by lab_model.heads, and lab_model.heads by lab_model.kv_heads"
                    .into(),
            );
        }
        Ok(())
    }
}
