//! The RL trainer: rollouts → advantages → HICRA → PPO epochs over mini-batches with
//! gradient accumulation over micro-batches → AdamW; per-step metrics (RL and hierarchy),
//! samples, validation, atomic checkpoints and exact resumption.
//!
//! Every random stream is derived from `(trainer.seed, step, round)`, so the resumable state
//! is the weights, the optimiser moments, the step and the data position.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::Device;
use hicra_hier::gram_set::merged_spans;
use hicra_hier::{GramSet, HierarchyMetrics, ResponseTokens};
use hicra_model::{LoadOptions, LoadedModel, Model, SamplingParams, ScoreOptions};
use hicra_tasks::{Problem, Task};
use serde::{Deserialize, Serialize};

use crate::advantage::{
    AdvantageOptions, compute_advantages, mean_and_std, zero_variance_group_frac,
};
use crate::batch::{Sequence, build_batch, gather, place};
use crate::checkpoint::{
    self, checkpoint_dir, list_checkpoints, verify_checkpoint, write_checkpoint,
};
use crate::config::TrainConfig;
use crate::error::{Result, RlError};
use crate::hicra::{HicraVariant, ResponseInfo, apply_hicra};
use crate::loss::{LossInputs, LossStats, chunk_loss, sequence_weights};
use crate::metrics::{JsonlSink, MetricsSink, MultiSink, Record, TensorBoardSink};
use crate::optim::{AdamW, GradAccumulator, LrSchedule};
use crate::rollout::{LocalRollouts, Rollout, RolloutParams, RolloutSource, prompt_text};
use crate::tasks::build_task;

/// Metric names that depend on wall-clock time or the machine (left out when comparing runs).
pub const WALL_CLOCK_METRICS: &[&str] = &[
    "time_rollout_s",
    "time_train_s",
    "time_val_s",
    "tokens_per_s",
    "peak_rss_mib",
];

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

/// The resumable loop state saved in `trainer_state.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainerState {
    /// Steps completed.
    pub step: u64,
    /// Next training-problem position of the task stream.
    pub data_position: u64,
    /// Optimiser steps applied.
    pub optimizer_step: u64,
    /// Validation accuracy before training (step 0), when measured.
    pub initial_val_accuracy: Option<f64>,
}

/// Outcome of [`Trainer::train`].
#[derive(Debug, Clone, PartialEq)]
pub struct TrainSummary {
    /// The run directory.
    pub run_dir: PathBuf,
    /// Validation accuracy before training.
    pub initial_val_accuracy: Option<f64>,
    /// Validation accuracy after the last step.
    pub final_val_accuracy: Option<f64>,
    /// Steps completed.
    pub steps: u64,
}

/// Accuracy and mean length of a validation pass.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evaluation {
    /// Fraction graded correct.
    pub accuracy: f64,
    /// Mean response length in tokens.
    pub mean_length: f64,
}

/// Generates one response per problem and grades it.
pub fn evaluate(
    policy: &LoadedModel,
    task: &dyn Task,
    problems: &[Problem],
    use_chat_template: bool,
    params: &SamplingParams,
    batch: usize,
) -> Result<Evaluation> {
    if problems.is_empty() {
        return Ok(Evaluation {
            accuracy: 0.0,
            mean_length: 0.0,
        });
    }
    let (mut correct, mut length) = (0usize, 0usize);
    for (b, chunk) in problems.chunks(batch.max(1)).enumerate() {
        let mut ids = Vec::with_capacity(chunk.len());
        for p in chunk {
            let text = prompt_text(policy, task, p, use_chat_template)?;
            ids.push(
                policy
                    .tokenizer
                    .encode(&text, false)
                    .map_err(|e| RlError::Model(format!("encoding prompt {}: {e}", p.id)))?,
            );
        }
        let mut sp = params.clone();
        sp.seed = params.seed.wrapping_add(b as u64);
        sp.stop_strings = task.stop_strings();
        let gens = policy
            .generate(&ids, &sp)
            .map_err(|e| RlError::Model(format!("validation generation: {e}")))?;
        for (p, g) in chunk.iter().zip(gens) {
            let (text, _) = crate::rollout::decode_response(policy, &g.token_ids, g.finish_reason)?;
            correct += usize::from(task.score(p, &text).correct);
            length += g.token_ids.len();
        }
    }
    Ok(Evaluation {
        accuracy: correct as f64 / problems.len() as f64,
        mean_length: length as f64 / problems.len() as f64,
    })
}

/// Peak resident memory of this process in MiB (`VmHWM`), when the OS reports it.
pub fn peak_rss_mib() -> Option<f64> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// A seed for `(seed, step, round)` (SplitMix64 finaliser).
pub fn derive_seed(seed: u64, step: u64, round: u64) -> u64 {
    let mut z = seed
        .wrapping_add(step.wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .wrapping_add(round.wrapping_mul(0xD1B5_4A32_D192_ED03));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn model_err(context: &str) -> impl Fn(hicra_model::ModelError) -> RlError + '_ {
    move |e| RlError::Model(format!("{context}: {e}"))
}

/// Per-response, per-token values (`[response][token]`).
type PerToken = Vec<Vec<f32>>;

/// The RL trainer.
pub struct Trainer {
    config: TrainConfig,
    run_dir: PathBuf,
    policy: LoadedModel,
    reference: Option<Model>,
    task: Box<dyn Task>,
    grams: GramSet,
    optimizer: AdamW,
    schedule: LrSchedule,
    rollouts: Box<dyn RolloutSource>,
    state: TrainerState,
    sinks: MultiSink,
}

fn load_policy(spec: &str) -> Result<LoadedModel> {
    if spec.is_empty() {
        return Err(RlError::config(
            "model.path",
            "no model given (the lab's model is prepared by `hicra train`)",
        ));
    }
    hicra_model::load_model(spec, &LoadOptions::default()).map_err(model_err(spec))
}

fn load_grams(path: &str) -> Result<GramSet> {
    if path.is_empty() {
        Ok(GramSet::paper())
    } else {
        GramSet::from_file(Path::new(path))
            .map_err(|e| RlError::config("trainer.grams", e.to_string()))
    }
}

impl Trainer {
    /// Starts a new run in `run_dir` (created; must not already hold a run) with the task of
    /// the config.
    pub fn create(config: TrainConfig, run_dir: &Path) -> Result<Trainer> {
        let task = build_task(&config.task)?;
        Self::create_with_task(config, task, run_dir)
    }

    /// Starts a new run with a given task (tests, custom tasks).
    pub fn create_with_task(
        config: TrainConfig,
        task: Box<dyn Task>,
        run_dir: &Path,
    ) -> Result<Trainer> {
        config.validate()?;
        if run_dir.join("metrics.jsonl").exists() {
            return Err(RlError::Invalid(format!(
                "{} already holds a run; use --resume to continue it or choose another --out",
                run_dir.display()
            )));
        }
        fs::create_dir_all(run_dir).map_err(|e| RlError::io(run_dir, e))?;
        checkpoint::write_atomic(&run_dir.join("config.toml"), config.to_toml().as_bytes())?;
        let policy = load_policy(&config.model.path)?;
        let state = TrainerState {
            step: 0,
            data_position: 0,
            optimizer_step: 0,
            initial_val_accuracy: None,
        };
        Self::assemble(config, task, run_dir, policy, state, None)
    }

    /// Resumes the run in `run_dir` from its latest checkpoint (which must verify).
    pub fn resume(run_dir: &Path) -> Result<Trainer> {
        let config = TrainConfig::load(Some(&run_dir.join("config.toml")), &[])?;
        let task = build_task(&config.task)?;
        Self::resume_with_task(run_dir, task)
    }

    /// Resumes with a given task.
    pub fn resume_with_task(run_dir: &Path, task: Box<dyn Task>) -> Result<Trainer> {
        let config = TrainConfig::load(Some(&run_dir.join("config.toml")), &[])?;
        let ckpts = list_checkpoints(&run_dir.join("checkpoints"));
        let (_, dir) = ckpts.last().ok_or_else(|| {
            RlError::Invalid(format!(
                "{} has no checkpoint to resume from",
                run_dir.display()
            ))
        })?;
        let manifest = verify_checkpoint(dir)?;
        let state_path = dir.join("trainer_state.json");
        let text = fs::read_to_string(&state_path).map_err(|e| RlError::io(&state_path, e))?;
        let state: TrainerState = serde_json::from_str(&text).map_err(|e| RlError::Json {
            context: state_path.display().to_string(),
            source: e,
        })?;
        if state.step != manifest.step {
            return Err(RlError::CheckpointCorrupted {
                path: dir.clone(),
                file: "trainer_state.json".into(),
            });
        }
        let hf = dir.join("hf");
        let policy = hicra_model::load_hf_dir(&hf, &LoadOptions::default())
            .map_err(model_err("checkpoint model"))?;
        JsonlSink::truncate_after(&run_dir.join("metrics.jsonl"), state.step)?;
        let opt_path = dir.join("optimizer.safetensors");
        Self::assemble(config, task, run_dir, policy, state, Some(opt_path))
    }

    fn assemble(
        config: TrainConfig,
        task: Box<dyn Task>,
        run_dir: &Path,
        policy: LoadedModel,
        state: TrainerState,
        optimizer_state: Option<PathBuf>,
    ) -> Result<Trainer> {
        let reference = if config.algorithm.kl_coef > 0.0 {
            // The reference is the initial policy: reload it from its source on resume.
            if state.step == 0 {
                Some(
                    policy
                        .model
                        .deep_clone()
                        .map_err(model_err("reference model"))?,
                )
            } else {
                Some(load_policy(&config.model.path)?.model)
            }
        } else {
            None
        };
        let grams = load_grams(&config.trainer.grams)?;
        let mut optimizer = AdamW::new(policy.model.parameters(), config.optim.adamw())?;
        if let Some(p) = optimizer_state {
            optimizer.load_state(&p, state.optimizer_step)?;
        }
        let a = &config.algorithm;
        let total_opt_steps = config.trainer.steps * a.ppo_epochs * a.mini_batches;
        let schedule = config.optim.schedule(total_opt_steps);
        let mut sinks = MultiSink::default();
        sinks.push(Box::new(JsonlSink::open(&run_dir.join("metrics.jsonl"))?));
        sinks.push(Box::new(TensorBoardSink::create(&run_dir.join("tb"))?));
        let rollouts = Box::new(LocalRollouts {
            use_chat_template: config.model.use_chat_template,
        });
        Ok(Trainer {
            config,
            run_dir: run_dir.to_path_buf(),
            policy,
            reference,
            task,
            grams,
            optimizer,
            schedule,
            rollouts,
            state,
            sinks,
        })
    }

    /// Replaces the rollout source (e.g. a remote generator).
    pub fn set_rollout_source(&mut self, source: Box<dyn RolloutSource>) {
        self.rollouts = source;
    }

    /// The run directory.
    pub fn run_dir(&self) -> &Path {
        &self.run_dir
    }

    /// The policy being trained.
    pub fn policy(&self) -> &LoadedModel {
        &self.policy
    }

    /// The loop state.
    pub fn state(&self) -> &TrainerState {
        &self.state
    }

    /// The resolved configuration.
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// Runs the remaining steps: validation before the first step (fresh runs), every
    /// `val_every` steps and after the last; checkpoints every `ckpt_every` steps and at the end.
    pub fn train(&mut self, observer: &mut dyn TrainObserver) -> Result<TrainSummary> {
        let total = self.config.trainer.steps as u64;
        observer.event(&TrainEvent::Started {
            start_step: self.state.step,
            total_steps: total,
        });
        if self.state.step == 0 {
            let ev = self.validate(0, observer)?;
            self.state.initial_val_accuracy = Some(ev.accuracy);
        }
        let mut final_acc = None;
        while self.state.step < total {
            let step = self.state.step + 1;
            let record = self.train_step(step, observer)?;
            self.state.step = step;
            self.sinks.log(step, &record)?;
            observer.event(&TrainEvent::Step {
                step,
                record: &record,
            });
            let tr = &self.config.trainer;
            let last = step == total;
            if last || (tr.val_every > 0 && step.is_multiple_of(tr.val_every as u64)) {
                final_acc = Some(self.validate(step, observer)?.accuracy);
            }
            self.sinks.flush()?;
            let tr = &self.config.trainer;
            if last || (tr.ckpt_every > 0 && step.is_multiple_of(tr.ckpt_every as u64)) {
                observer.event(&TrainEvent::Stage {
                    step,
                    stage: "checkpoint",
                });
                let path = self.save_checkpoint()?;
                observer.event(&TrainEvent::Checkpoint { step, path: &path });
            }
        }
        self.sinks.flush()?;
        Ok(TrainSummary {
            run_dir: self.run_dir.clone(),
            initial_val_accuracy: self.state.initial_val_accuracy,
            final_val_accuracy: final_acc,
            steps: self.state.step,
        })
    }

    /// Validates on the first `val_size` validation problems and logs `val_accuracy`, `val_length`.
    pub fn validate(&mut self, step: u64, observer: &mut dyn TrainObserver) -> Result<Evaluation> {
        observer.event(&TrainEvent::Stage {
            step,
            stage: "validation",
        });
        let t0 = Instant::now();
        let n = self.config.trainer.val_size;
        let problems: Vec<Problem> = self
            .task
            .validation_problems()
            .iter()
            .take(n)
            .cloned()
            .collect();
        let params = SamplingParams {
            temperature: self.config.trainer.val_temperature,
            top_p: self.config.rollout.top_p,
            top_k: 0,
            max_new_tokens: self.config.rollout.max_new_tokens,
            seed: derive_seed(self.config.trainer.seed, step, u64::MAX),
            stop_token_ids: vec![],
            stop_strings: vec![],
        };
        let ev = evaluate(
            &self.policy,
            self.task.as_ref(),
            &problems,
            self.config.model.use_chat_template,
            &params,
            self.config.rollout.generation_batch,
        )?;
        let mut r = Record::new();
        r.insert("val_accuracy".into(), ev.accuracy);
        r.insert("val_length".into(), ev.mean_length);
        r.insert("time_val_s".into(), t0.elapsed().as_secs_f64());
        self.sinks.log(step, &r)?;
        self.sinks.flush()?;
        observer.event(&TrainEvent::Validation {
            step,
            accuracy: ev.accuracy,
            length: ev.mean_length,
        });
        Ok(ev)
    }

    /// Writes `checkpoints/step-N` atomically and prunes old ones.
    pub fn save_checkpoint(&mut self) -> Result<PathBuf> {
        let ckdir = self.run_dir.join("checkpoints");
        let dest = checkpoint_dir(&ckdir, self.state.step);
        self.state.optimizer_step = self.optimizer.step_count();
        let state_json = serde_json::to_vec_pretty(&self.state).map_err(|e| RlError::Json {
            context: "trainer state".into(),
            source: e,
        })?;
        let policy = &self.policy;
        let optimizer = &self.optimizer;
        write_checkpoint(&dest, self.state.step, |tmp| {
            policy
                .save_hf(&tmp.join("hf"))
                .map_err(model_err("saving the model"))?;
            optimizer.save_state(&tmp.join("optimizer.safetensors"))?;
            checkpoint::write_synced(&tmp.join("trainer_state.json"), &state_json)
        })?;
        let keep = self.config.trainer.keep_checkpoints;
        if keep > 0 {
            let all = list_checkpoints(&ckdir);
            for (_, old) in all.iter().take(all.len().saturating_sub(keep)) {
                let _ = fs::remove_dir_all(old);
            }
        }
        Ok(dest)
    }

    fn rollout_params(&self, step: u64, round: u64) -> RolloutParams {
        RolloutParams {
            settings: self.config.rollout.clone(),
            seed: derive_seed(self.config.trainer.seed, step, round),
        }
    }

    /// Samples the step's groups (with dynamic sampling: rounds until enough groups have
    /// non-equal rewards). Returns the kept rollouts and all sampled ones' rewards/stats.
    fn collect(&mut self, step: u64) -> Result<(Vec<Rollout>, Vec<Rollout>)> {
        let n_prompts = self.config.prompts_per_step();
        let g = self.config.rollout.group_size;
        let a = &self.config.algorithm;
        let rounds = if a.dynamic_sampling {
            a.max_sampling_rounds
        } else {
            1
        };
        let dynamic = a.dynamic_sampling;
        let mut kept: Vec<Rollout> = Vec::new();
        let mut all: Vec<Rollout> = Vec::new();
        for round in 0..rounds as u64 {
            let need = n_prompts - kept.len() / g;
            let problems = self.task.train_batch(self.state.data_position, need);
            self.state.data_position += need as u64;
            let params = self.rollout_params(step, round);
            let mut rs =
                self.rollouts
                    .rollouts(&self.policy, self.task.as_ref(), &problems, &params)?;
            if rs.len() != need * g {
                return Err(RlError::Invalid(format!(
                    "rollout source returned {} responses for {need} prompts × {g}",
                    rs.len()
                )));
            }
            let offset = all.len() / g;
            for r in &mut rs {
                r.prompt_index += offset;
            }
            for group in rs.chunks(g) {
                all.extend(group.iter().cloned());
                let flat = group.iter().all(|r| r.reward == group[0].reward);
                if !dynamic || !flat {
                    kept.extend(group.iter().cloned());
                }
            }
            if kept.len() / g >= n_prompts {
                break;
            }
        }
        kept.truncate(n_prompts * g);
        Ok((kept, all))
    }

    fn score_opts(&self) -> ScoreOptions {
        ScoreOptions {
            chunk_positions: self.config.algorithm.chunk_positions,
            with_entropy: true,
        }
    }

    /// Scores rollouts with `model` (no grad), micro-batched: per-response log-probs and entropies.
    fn score_rollouts(&self, model: &Model, rs: &[Rollout]) -> Result<(PerToken, PerToken)> {
        let (mut lp, mut en) = (Vec::new(), Vec::new());
        for chunk in rs.chunks(self.config.algorithm.micro_batch) {
            let seqs: Vec<Sequence> = chunk
                .iter()
                .map(|r| Sequence {
                    prompt: &r.prompt_ids,
                    response: &r.response_ids,
                })
                .collect();
            let batch = build_batch(&seqs, self.policy.pad_token_id, model.device())?;
            let s = model
                .score_tokens(&batch, &self.score_opts())
                .map_err(model_err("scoring"))?;
            lp.extend(gather(&seqs, &s.logprobs));
            en.extend(gather(&seqs, &s.entropy));
        }
        Ok((lp, en))
    }

    /// One RL step; returns its metrics.
    pub fn train_step(&mut self, step: u64, observer: &mut dyn TrainObserver) -> Result<Record> {
        observer.event(&TrainEvent::Stage {
            step,
            stage: "rollout",
        });
        let t_roll = Instant::now();
        let (rs, all) = self.collect(step)?;
        let time_rollout = t_roll.elapsed().as_secs_f64();
        observer.event(&TrainEvent::Stage {
            step,
            stage: "train",
        });
        let t_train = Instant::now();
        let cfg = self.config.clone();
        let a = &cfg.algorithm;
        let g = cfg.rollout.group_size;

        // Planning masks and hierarchy metrics from the sampled responses.
        let resp_tokens: Vec<ResponseTokens> = rs
            .iter()
            .map(|r| ResponseTokens {
                text: &r.text,
                token_byte_spans: &r.token_spans,
                logprobs: &r.sampling_logprobs,
                entropies: None,
            })
            .collect();
        let (hier, masks) = HierarchyMetrics::compute_with_masks(&resp_tokens, &self.grams)
            .map_err(|e| RlError::Invalid(format!("hierarchy metrics: {e}")))?;

        // Old log-probs and entropies (scoring pass only when needed).
        let needs_entropy = matches!(
            a.hicra.variant,
            HicraVariant::Released | HicraVariant::Entropy
        );
        let (old_lp, mut entropies) = if a.recompute_old_logprobs || needs_entropy {
            let (lp, en) = self.score_rollouts(&self.policy.model, &rs)?;
            let old = if a.recompute_old_logprobs {
                lp
            } else {
                rs.iter().map(|r| r.sampling_logprobs.clone()).collect()
            };
            (old, Some(en))
        } else {
            (
                rs.iter().map(|r| r.sampling_logprobs.clone()).collect(),
                None,
            )
        };
        let ref_lp = match &self.reference {
            Some(m) => Some(self.score_rollouts(m, &rs)?.0),
            None => None,
        };

        // Advantages and HICRA.
        let rewards: Vec<f32> = rs.iter().map(|r| r.reward).collect();
        let adv_opts = AdvantageOptions {
            std_normalize: a.std_normalize,
            ..AdvantageOptions::default()
        };
        let seq_adv = if rs.is_empty() {
            Vec::new()
        } else {
            compute_advantages(a.advantage, &rewards, g, &adv_opts)?
        };
        let empty: Vec<f32> = Vec::new();
        let infos: Vec<ResponseInfo> = rs
            .iter()
            .enumerate()
            .map(|(i, r)| ResponseInfo {
                advantage: seq_adv[i],
                planning: &masks[i],
                entropy: entropies.as_ref().map_or(&empty, |e| &e[i]),
                correct: r.correct,
            })
            .collect();
        let tok_adv = if rs.is_empty() {
            crate::hicra::TokenAdvantages {
                advantages: vec![],
                marked: vec![],
            }
        } else {
            apply_hicra(
                &a.hicra,
                &infos,
                g,
                derive_seed(cfg.trainer.seed, step, 1 << 32),
            )?
        };

        // PPO epochs over mini-batches of groups, micro-batched.
        let loss_cfg = a.loss_config();
        let mut stats = LossStats::default();
        let mut grad_norms = Vec::new();
        let mut lr_used = self.schedule.lr_at(self.optimizer.step_count() as usize);
        let mut first_entropy: Vec<Vec<f32>> = vec![Vec::new(); rs.len()];
        let n_groups = rs.len() / g.max(1);
        for epoch in 0..a.ppo_epochs {
            for mb in 0..a.mini_batches {
                if n_groups == 0 {
                    break;
                }
                let per = n_groups.div_ceil(a.mini_batches);
                let idx: Vec<usize> = (mb * per * g..((mb + 1) * per * g).min(rs.len())).collect();
                if idx.is_empty() {
                    continue;
                }
                let lengths: Vec<usize> = idx
                    .iter()
                    .map(|&i| {
                        if rs[i].trainable {
                            rs[i].response_ids.len()
                        } else {
                            0
                        }
                    })
                    .collect();
                let seq_w = sequence_weights(a.loss_agg, &lengths, cfg.rollout.max_new_tokens);
                let params = self.optimizer.params().to_vec();
                let mut acc = GradAccumulator::new(params.len());
                // Sequences whose loss is identically zero (no advantage on any token and no
                // KL or entropy term) are skipped: they contribute no gradient.
                let only_pg = loss_cfg.kl_coef == 0.0 || self.reference.is_none();
                let only_pg = only_pg && loss_cfg.entropy_coef == 0.0;
                let work: Vec<usize> = (0..idx.len())
                    .filter(|&k| {
                        let i = idx[k];
                        seq_w[k] != 0.0
                            && (!only_pg || tok_adv.advantages[i].iter().any(|&v| v != 0.0))
                    })
                    .collect();
                for chunk_pos in work.chunks(a.micro_batch) {
                    let micro: Vec<usize> = chunk_pos.iter().map(|&k| idx[k]).collect();
                    let micro = micro.as_slice();
                    let seqs: Vec<Sequence> = micro
                        .iter()
                        .map(|&i| Sequence {
                            prompt: &rs[i].prompt_ids,
                            response: &rs[i].response_ids,
                        })
                        .collect();
                    let batch =
                        build_batch(&seqs, self.policy.pad_token_id, self.policy.model.device())?;
                    let (_, t) = batch.dims().map_err(model_err("batch"))?;
                    let w_rows: Vec<Vec<f32>> = micro
                        .iter()
                        .enumerate()
                        .map(|(k, &i)| vec![seq_w[chunk_pos[k]]; rs[i].response_ids.len()])
                        .collect();
                    fn refs<'v>(v: &'v [Vec<f32>], micro: &[usize]) -> Vec<&'v [f32]> {
                        micro.iter().map(|&i| v[i].as_slice()).collect()
                    }
                    let inputs = LossInputs {
                        old_logprobs: place(&seqs, &refs(&old_lp, micro), t),
                        ref_logprobs: ref_lp.as_ref().map(|r| place(&seqs, &refs(r, micro), t)),
                        advantages: place(&seqs, &refs(&tok_adv.advantages, micro), t),
                        weights: place(
                            &seqs,
                            &w_rows.iter().map(|v| v.as_slice()).collect::<Vec<_>>(),
                            t,
                        ),
                    };
                    let mut micro_stats = LossStats::default();
                    let mut ent_rows = vec![vec![0f32; t]; micro.len()];
                    let out = self
                        .policy
                        .model
                        .backward_token_loss(&batch, &self.score_opts(), &mut |chunk| {
                            if epoch == 0 {
                                let e = chunk.entropy.detach().to_vec2::<f32>()?;
                                for (row, er) in ent_rows.iter_mut().zip(e) {
                                    row[chunk.start..chunk.start + chunk.len].copy_from_slice(&er);
                                }
                            }
                            chunk_loss(
                                &loss_cfg,
                                &inputs,
                                chunk.start,
                                &chunk.logprobs,
                                &chunk.entropy,
                                &mut micro_stats,
                            )
                        })
                        .map_err(|e| {
                            let msg = e.to_string();
                            if msg.contains("not finite") {
                                RlError::NonFinite {
                                    what: format!("loss at step {step} ({msg})"),
                                }
                            } else {
                                RlError::Model(format!("backward: {msg}"))
                            }
                        })?;
                    if epoch == 0 {
                        for (k, e) in gather(&seqs, &ent_rows).into_iter().enumerate() {
                            first_entropy[micro[k]] = e;
                        }
                    }
                    stats.merge(&micro_stats);
                    acc.add(&params, &out.grads)?;
                }
                let lr = self.schedule.lr_at(self.optimizer.step_count() as usize);
                let rep = self.optimizer.step(acc.grads(), lr).map_err(|e| match e {
                    RlError::NonFinite { what } => RlError::NonFinite {
                        what: format!("{what} at step {step}"),
                    },
                    other => other,
                })?;
                grad_norms.push(rep.grad_norm);
                lr_used = lr;
            }
        }
        if entropies.is_none() {
            entropies = Some(first_entropy);
        }
        let time_train = t_train.elapsed().as_secs_f64();

        // Metrics.
        let mut m = Record::new();
        let n_all = all.len().max(1) as f64;
        m.insert(
            "reward_mean".into(),
            all.iter().map(|r| r.reward as f64).sum::<f64>() / n_all,
        );
        m.insert(
            "accuracy".into(),
            all.iter().filter(|r| r.correct).count() as f64 / n_all,
        );
        let gen_tokens: usize = all.iter().map(|r| r.response_ids.len()).sum();
        m.insert("response_length_mean".into(), gen_tokens as f64 / n_all);
        m.insert(
            "truncated_frac".into(),
            all.iter()
                .filter(|r| r.finish_reason == hicra_model::FinishReason::Length)
                .count() as f64
                / n_all,
        );
        m.insert("clip_frac".into(), stats.clip_frac());
        if self.reference.is_some() {
            m.insert("kl".into(), stats.kl_mean());
        }
        m.insert("entropy_mean".into(), stats.entropy_mean());
        m.insert(
            "loss".into(),
            stats.loss / (a.ppo_epochs * a.mini_batches) as f64,
        );
        m.insert(
            "grad_norm".into(),
            grad_norms.iter().sum::<f64>() / grad_norms.len().max(1) as f64,
        );
        m.insert("lr".into(), lr_used);
        let all_rewards: Vec<f32> = all.iter().map(|r| r.reward).collect();
        m.insert(
            "zero_var_group_frac".into(),
            zero_variance_group_frac(&all_rewards, g) as f64,
        );
        m.insert("groups_trained".into(), n_groups as f64);
        let (mut adv_all, mut plan_abs, mut exec_abs, mut marked) =
            (Vec::new(), Vec::new(), Vec::new(), 0usize);
        for (i, r) in rs.iter().enumerate() {
            if !r.trainable {
                continue;
            }
            for (t, &v) in tok_adv.advantages[i].iter().enumerate() {
                adv_all.push(v);
                if masks[i].get(t).copied().unwrap_or(false) {
                    plan_abs.push(v.abs());
                } else {
                    exec_abs.push(v.abs());
                }
                marked += usize::from(tok_adv.marked[i][t]);
            }
        }
        let (am, asd) = mean_and_std(&adv_all);
        m.insert("adv_mean".into(), am as f64);
        m.insert("adv_std".into(), asd as f64);
        let mean = |v: &[f32]| v.iter().map(|&x| x as f64).sum::<f64>() / v.len().max(1) as f64;
        m.insert("adv_abs_planning_mean".into(), mean(&plan_abs));
        m.insert("adv_abs_execution_mean".into(), mean(&exec_abs));
        m.insert(
            "hicra_marked_frac".into(),
            marked as f64 / adv_all.len().max(1) as f64,
        );
        m.insert("semantic_entropy".into(), hier.semantic_entropy);
        m.insert("conditional_entropy".into(), hier.conditional_entropy);
        m.insert("planning_token_frac".into(), hier.planning_token_frac);
        if let Some(v) = hier.ppl_planning {
            m.insert("ppl_planning".into(), v);
        }
        if let Some(v) = hier.ppl_execution {
            m.insert("ppl_execution".into(), v);
        }
        if let Some(ent) = &entropies {
            let (mut ep, mut ee) = (Vec::new(), Vec::new());
            for (i, e) in ent.iter().enumerate() {
                for (t, &x) in e.iter().enumerate() {
                    if masks[i].get(t).copied().unwrap_or(false) {
                        ep.push(x);
                    } else {
                        ee.push(x);
                    }
                }
            }
            if !ep.is_empty() {
                m.insert("token_entropy_planning".into(), mean(&ep));
            }
            if !ee.is_empty() {
                m.insert("token_entropy_execution".into(), mean(&ee));
            }
        }
        m.insert("time_rollout_s".into(), time_rollout);
        m.insert("time_train_s".into(), time_train);
        m.insert(
            "tokens_per_s".into(),
            gen_tokens as f64 / time_rollout.max(1e-9),
        );
        if let Some(rss) = peak_rss_mib() {
            m.insert("peak_rss_mib".into(), rss);
        }
        let every = cfg.trainer.samples_every;
        if every > 0 && step.is_multiple_of(every as u64) {
            self.write_samples(step, &all)?;
        }
        Ok(m)
    }

    fn write_samples(&self, step: u64, rs: &[Rollout]) -> Result<()> {
        let dir = self.run_dir.join("samples");
        fs::create_dir_all(&dir).map_err(|e| RlError::io(&dir, e))?;
        let mut out = String::new();
        for r in rs {
            let spans: Vec<[usize; 2]> = merged_spans(&self.grams.find(&r.text))
                .into_iter()
                .map(|(s, e)| [s, e])
                .collect();
            let v = serde_json::json!({
                "step": step,
                "prompt": r.prompt_text,
                "response": r.text,
                "reward": r.reward,
                "correct": r.correct,
                "length": r.response_ids.len(),
                "finish_reason": r.finish_reason,
                "planning_spans": spans,
            });
            out.push_str(&v.to_string());
            out.push('\n');
        }
        checkpoint::write_atomic(&dir.join(format!("step-{step}.jsonl")), out.as_bytes())
    }
}

/// Loads `metrics.jsonl` of a run as JSON objects (for comparisons and reports).
pub fn read_metrics(run_dir: &Path) -> Result<Vec<serde_json::Value>> {
    let p = run_dir.join("metrics.jsonl");
    let text = fs::read_to_string(&p).map_err(|e| RlError::io(&p, e))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| RlError::Json {
                context: format!("{} line {}", p.display(), i + 1),
                source: e,
            })
        })
        .collect()
}

/// Uses the CPU device (the only one this build targets).
pub fn default_device() -> Device {
    Device::Cpu
}
