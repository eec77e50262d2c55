//! The RL trainer. A step is five phases, each its own function:
//! 1. **collect**: sample the step's groups through the [`Generator`] (dynamic sampling
//!    repeats rounds until enough groups have unequal rewards);
//! 2. **score**: planning masks and hierarchy metrics, and old/reference log-probs and
//!    entropies where the config needs a scoring pass;
//! 3. **advantages**: outcome advantage, then the HICRA modifier ([`crate::credit`], pure);
//! 4. **update**: PPO epochs over mini-batches of groups, micro-batched, through the
//!    [`PolicyUpdater`]; the generator is handed the new weights after each optimiser step;
//! 5. **metrics** ([`crate::step_metrics`], pure), with the task's failure anatomy where it
//!    can diagnose responses (the lab: `lab_planning_error_frac`, …, and `val_lab_…` for
//!    validation).
//!
//! Every random stream is derived from `(trainer.seed, step, round)`, so the resumable state
//! is the weights, the optimiser moments, the step and the data position.
//!
//! The trainer is open: [`Trainer::new`] takes the policy, the task and a [`RunSetup`] (run
//! directory or none, metric sinks, whether this process writes files), so a caller can run in
//! memory (Python) or as one rank of many. [`Trainer::create`] and [`Trainer::resume`] are the
//! standard run-directory layout on top of it.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use hicra_hier::gram_set::merged_spans;
use hicra_hier::{GramSet, HierarchyMetrics, ResponseTokens};
use hicra_model::{LoadedModel, Model, ScoreOptions};
use hicra_tasks::{Problem, Task, task_anatomy};
use serde::{Deserialize, Serialize};

use crate::batch::{Sequence, build_batch, gather, place};
use crate::checkpoint::{
    self, checkpoint_dir, list_checkpoints, verify_checkpoint, write_checkpoint,
};
use crate::config::TrainConfig;
use crate::credit::{CreditInputs, assign_credit};
use crate::error::{Result, RlError};
use crate::generation::GradedSample;
use crate::generator::{Generator, LocalGenerator};
use crate::hicra::{HicraVariant, TokenAdvantages};
use crate::loss::{ChunkStats, LossInputs, LossStats, chunk_loss, sequence_weights};
use crate::metrics::{JsonlSink, MetricsSink, MultiSink, Record, TensorBoardSink};
use crate::optim::AdamW;
use crate::rollout::{Rollout, collect_rollouts, rollout_plan};
use crate::step_metrics::{
    UpdateSummary, advantage_metrics, hierarchy_metrics, sampling_metrics, update_metrics,
};
use crate::tasks::build_task;
use crate::update::PolicyUpdater;
pub use crate::validation::Evaluation;
use crate::validation::{evaluate, validation_plan};

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

impl TrainerState {
    /// The state of a run that has not started.
    pub fn fresh() -> Self {
        TrainerState {
            step: 0,
            data_position: 0,
            optimizer_step: 0,
            initial_val_accuracy: None,
        }
    }
}

/// Outcome of [`Trainer::train`].
#[derive(Debug, Clone, PartialEq)]
pub struct TrainSummary {
    /// The run directory (`None` for an in-memory run).
    pub run_dir: Option<PathBuf>,
    /// Validation accuracy before training.
    pub initial_val_accuracy: Option<f64>,
    /// Validation accuracy after the last step.
    pub final_val_accuracy: Option<f64>,
    /// Steps completed.
    pub steps: u64,
}

/// Where a run keeps its files and sends its metrics.
pub struct RunSetup {
    /// The run directory for checkpoints and samples (`None`: nothing is written).
    pub dir: Option<PathBuf>,
    /// Whether this process writes files (the one writer rank of a data-parallel job).
    pub writer: bool,
    /// Where metrics go.
    pub sinks: Vec<Box<dyn MetricsSink>>,
}

impl RunSetup {
    /// An in-memory run: no files, metrics to `sinks`.
    pub fn in_memory(sinks: Vec<Box<dyn MetricsSink>>) -> Self {
        RunSetup {
            dir: None,
            writer: false,
            sinks,
        }
    }

    /// The standard layout of `dir`: `metrics.jsonl` and TensorBoard events under `tb/`.
    pub fn standard(dir: &Path) -> Result<Self> {
        Ok(RunSetup {
            dir: Some(dir.to_path_buf()),
            writer: true,
            sinks: vec![
                Box::new(JsonlSink::open(&dir.join("metrics.jsonl"))?),
                Box::new(TensorBoardSink::create(&dir.join("tb"))?),
            ],
        })
    }

    /// The directory files are written to, if this process writes any.
    fn writable_dir(&self) -> Option<&Path> {
        self.dir.as_deref().filter(|_| self.writer)
    }
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

/// Peak resident memory of this process in MiB (`VmHWM`), when the OS reports it.
pub fn peak_rss_mib() -> Option<f64> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Per-response, per-token values (`[response][token]`).
type PerToken = Vec<Vec<f32>>;

/// The responses of a step: those kept for training and every one sampled, with the problems
/// of `all` (indexed by `Rollout::prompt_index`).
struct Collected {
    kept: Vec<Rollout>,
    all: Vec<Rollout>,
    problems: Vec<Problem>,
}

/// What the score phase adds to the kept responses.
struct Scored {
    /// Planning-token flags per response token.
    masks: Vec<Vec<bool>>,
    /// Hierarchy metrics of the kept responses.
    hierarchy: HierarchyMetrics,
    /// Behaviour-policy log-probs (sampling, or recomputed).
    old_logprobs: PerToken,
    /// Reference log-probs (KL on).
    ref_logprobs: Option<PerToken>,
    /// Token entropies, when a scoring pass ran.
    entropies: Option<PerToken>,
}

/// Loads the policy named by `model.path` on `model.device` / `model.dtype`.
pub fn load_policy(config: &TrainConfig) -> Result<LoadedModel> {
    let spec = &config.model.path;
    if spec.is_empty() {
        return Err(RlError::config(
            "model.path",
            "no model given (the lab's model is prepared by `hicra train`)",
        ));
    }
    hicra_model::load_model(spec, &config.model.load_options()?)
        .map_err(|e| RlError::model(spec, e))
}

fn load_grams(path: &str) -> Result<GramSet> {
    if path.is_empty() {
        Ok(GramSet::paper())
    } else {
        GramSet::from_file(Path::new(path))
            .map_err(|e| RlError::config("trainer.grams", e.to_string()))
    }
}

/// The RL trainer.
pub struct Trainer {
    config: TrainConfig,
    run: RunSetup,
    policy: LoadedModel,
    reference: Option<Model>,
    task: Box<dyn Task>,
    grams: GramSet,
    updater: PolicyUpdater,
    generator: Box<dyn Generator>,
    state: TrainerState,
    sinks: MultiSink,
}

impl Trainer {
    /// A trainer over `policy` and `task` at `state` (a fresh one, or a checkpoint's with the
    /// optimiser state in `optimizer_state`). `reference` is the frozen KL reference (needed
    /// when `algorithm.kl_coef > 0`; `None` then copies the policy). Generation is in-process
    /// until [`Trainer::set_generator`].
    pub fn new(
        config: TrainConfig,
        task: Box<dyn Task>,
        policy: LoadedModel,
        reference: Option<Model>,
        state: TrainerState,
        optimizer_state: Option<&Path>,
        mut run: RunSetup,
    ) -> Result<Trainer> {
        config.validate()?;
        // The policy generates in the rollout precision, trains with or without activation
        // checkpointing and in the products' precision; the settings share its parameters.
        let mut policy = policy;
        policy.model = policy
            .model
            .clone()
            .with_decode_precision(config.rollout.decode_dtype)
            .with_activation_checkpointing(config.algorithm.activation_checkpointing)
            .with_matmul_precision(config.algorithm.matmul_dtype);
        let reference = match (config.algorithm.kl_coef > 0.0, reference) {
            (false, _) => None,
            (true, Some(r)) => Some(r),
            (true, None) => Some(
                policy
                    .model
                    .deep_clone()
                    .map_err(|e| RlError::model("reference model", e))?,
            ),
        };
        let grams = load_grams(&config.trainer.grams)?;
        let mut optimizer = AdamW::new(policy.model.parameters(), config.optim.adamw())?;
        if let Some(p) = optimizer_state {
            optimizer.load_state(p, state.optimizer_step)?;
        }
        let a = &config.algorithm;
        let total_opt_steps = config.trainer.steps * a.ppo_epochs * a.mini_batches;
        let score = ScoreOptions {
            chunk_positions: a.chunk_positions,
            with_entropy: true,
        };
        let updater = PolicyUpdater::new(optimizer, config.optim.schedule(total_opt_steps), score);
        let mut sinks = MultiSink::default();
        for s in run.sinks.drain(..) {
            sinks.push(s);
        }
        let generator = Box::new(LocalGenerator::new(&policy));
        Ok(Trainer {
            config,
            run,
            policy,
            reference,
            task,
            grams,
            updater,
            generator,
            state,
            sinks,
        })
    }

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
        let policy = load_policy(&config)?;
        let run = RunSetup::standard(run_dir)?;
        Self::new(config, task, policy, None, TrainerState::fresh(), None, run)
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
        let (dir, state) = latest_checkpoint(run_dir)?;
        let policy = hicra_model::load_hf_dir(&dir.join("hf"), &config.model.load_options()?)
            .map_err(|e| RlError::model("checkpoint model", e))?;
        // The KL reference is the initial policy: reloaded from its source.
        let reference = if config.algorithm.kl_coef > 0.0 {
            Some(load_policy(&config)?.model)
        } else {
            None
        };
        JsonlSink::truncate_after(&run_dir.join("metrics.jsonl"), state.step)?;
        let run = RunSetup::standard(run_dir)?;
        let optimizer_state = dir.join("optimizer.safetensors");
        Self::new(
            config,
            task,
            policy,
            reference,
            state,
            Some(&optimizer_state),
            run,
        )
    }

    /// Replaces the generator (an external inference engine); it is synced to the current
    /// weights at once.
    pub fn set_generator(&mut self, mut generator: Box<dyn Generator>) -> Result<()> {
        generator.sync_weights(self.updater.optimizer().step_count(), &self.policy.model)?;
        self.generator = generator;
        Ok(())
    }

    /// The updater, e.g. to put a gradient hook (all-reduce) before the optimiser step.
    pub fn updater_mut(&mut self) -> &mut PolicyUpdater {
        &mut self.updater
    }

    /// The run directory (`None` for an in-memory run).
    pub fn run_dir(&self) -> Option<&Path> {
        self.run.dir.as_deref()
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
    /// `val_every` steps and after the last; checkpoints every `ckpt_every` steps and at the
    /// end (when there is a run directory to write them to).
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
            let due = last || (tr.ckpt_every > 0 && step.is_multiple_of(tr.ckpt_every as u64));
            if due && self.run.writable_dir().is_some() {
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
            run_dir: self.run.dir.clone(),
            initial_val_accuracy: self.state.initial_val_accuracy,
            final_val_accuracy: final_acc,
            steps: self.state.step,
        })
    }

    /// Validates on the first `val_size` validation problems and logs `val_accuracy`,
    /// `val_length` (see [`crate::validation`] for the settings).
    pub fn validate(&mut self, step: u64, observer: &mut dyn TrainObserver) -> Result<Evaluation> {
        observer.event(&TrainEvent::Stage {
            step,
            stage: "validation",
        });
        let t0 = Instant::now();
        let problems: Vec<Problem> = self
            .task
            .validation_problems()
            .iter()
            .take(self.config.trainer.val_size)
            .cloned()
            .collect();
        let (ev, samples) = evaluate(
            self.generator.as_mut(),
            &self.policy,
            self.task.as_ref(),
            &problems,
            &validation_plan(&self.config),
        )?;
        if self.config.trainer.samples_every > 0 {
            self.write_validation_samples(step, &problems, &samples)?;
        }
        let mut r = Record::new();
        let responses = samples
            .iter()
            .map(|s| (&problems[s.problem], s.text.as_str(), s.score.correct));
        if let Some(anatomy) = task_anatomy(self.task.as_ref(), responses) {
            r.extend(anatomy.metrics("val_"));
        }
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
        let run_dir = self.run.writable_dir().ok_or_else(|| {
            RlError::Invalid("this trainer has no run directory to write checkpoints to".into())
        })?;
        let ckdir = run_dir.join("checkpoints");
        let dest = checkpoint_dir(&ckdir, self.state.step);
        self.state.optimizer_step = self.updater.optimizer().step_count();
        let state_json = serde_json::to_vec_pretty(&self.state).map_err(|e| RlError::Json {
            context: "trainer state".into(),
            source: e,
        })?;
        let policy = &self.policy;
        let optimizer = self.updater.optimizer();
        write_checkpoint(&dest, self.state.step, |tmp| {
            policy
                .save_hf(&tmp.join("hf"))
                .map_err(|e| RlError::model("saving the model", e))?;
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

    /// One RL step; returns its metrics.
    pub fn train_step(&mut self, step: u64, observer: &mut dyn TrainObserver) -> Result<Record> {
        observer.event(&TrainEvent::Stage {
            step,
            stage: "rollout",
        });
        let t_rollout = Instant::now();
        let collected = self.collect(step)?;
        let time_rollout = t_rollout.elapsed().as_secs_f64();
        observer.event(&TrainEvent::Stage {
            step,
            stage: "train",
        });
        let t_train = Instant::now();
        let scored = self.score(&collected.kept)?;
        let advantages = self.advantages(step, &collected.kept, &scored)?;
        observer.event(&TrainEvent::Credit {
            step,
            rollouts: &collected.kept,
            planning: &scored.masks,
            entropies: scored.entropies.as_deref(),
            advantages: &advantages,
        });
        let update = self.update(step, &collected.kept, &scored, &advantages)?;
        let time_train = t_train.elapsed().as_secs_f64();

        let g = self.config.rollout.group_size;
        let mut m = Record::new();
        sampling_metrics(&collected.all, g, &mut m);
        let responses = collected.all.iter().map(|r| {
            (
                &collected.problems[r.prompt_index],
                r.text.as_str(),
                r.correct,
            )
        });
        if let Some(anatomy) = task_anatomy(self.task.as_ref(), responses) {
            m.extend(anatomy.metrics(""));
        }
        update_metrics(&update, self.reference.is_some(), &mut m);
        m.insert("groups_trained".into(), (collected.kept.len() / g) as f64);
        advantage_metrics(&collected.kept, &scored.masks, &advantages, &mut m);
        let entropies = scored
            .entropies
            .as_ref()
            .unwrap_or(&update.first_epoch_entropy);
        hierarchy_metrics(&scored.hierarchy, &scored.masks, entropies, &mut m);
        let gen_tokens: usize = collected.all.iter().map(|r| r.response_ids.len()).sum();
        m.insert("time_rollout_s".into(), time_rollout);
        m.insert("time_train_s".into(), time_train);
        m.insert(
            "tokens_per_s".into(),
            gen_tokens as f64 / time_rollout.max(1e-9),
        );
        if let Some(rss) = peak_rss_mib() {
            m.insert("peak_rss_mib".into(), rss);
        }
        let every = self.config.trainer.samples_every;
        if every > 0 && step.is_multiple_of(every as u64) {
            self.write_samples(step, &collected.all)?;
        }
        Ok(m)
    }

    /// Phase 1: samples the step's groups (with dynamic sampling: rounds until enough groups
    /// have unequal rewards).
    fn collect(&mut self, step: u64) -> Result<Collected> {
        let n_prompts = self.config.prompts_per_step();
        let g = self.config.rollout.group_size;
        let a = &self.config.algorithm;
        let dynamic = a.dynamic_sampling;
        let rounds = if dynamic { a.max_sampling_rounds } else { 1 };
        let prompts = self.config.model.prompt_settings();
        let mut kept: Vec<Rollout> = Vec::new();
        let mut all: Vec<Rollout> = Vec::new();
        let mut sampled_problems: Vec<Problem> = Vec::new();
        for round in 0..rounds as u64 {
            let need = n_prompts - kept.len() / g;
            let problems = self.task.train_batch(self.state.data_position, need);
            self.state.data_position += need as u64;
            let plan = rollout_plan(
                &self.config.rollout,
                derive_seed(self.config.trainer.seed, step, round),
                &prompts,
            );
            let mut rs = collect_rollouts(
                self.generator.as_mut(),
                &self.policy,
                self.task.as_ref(),
                &problems,
                &plan,
                &self.config.rollout,
            )?;
            let offset = all.len() / g;
            for r in &mut rs {
                r.prompt_index += offset;
            }
            sampled_problems.extend(problems);
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
        Ok(Collected {
            kept,
            all,
            problems: sampled_problems,
        })
    }

    /// Phase 2: planning masks and hierarchy metrics; old and reference log-probs and
    /// entropies from scoring passes where the config needs them.
    fn score(&self, rs: &[Rollout]) -> Result<Scored> {
        let tokens: Vec<ResponseTokens> = rs
            .iter()
            .map(|r| ResponseTokens {
                text: &r.text,
                token_byte_spans: &r.token_spans,
                logprobs: &r.sampling_logprobs,
                entropies: None,
            })
            .collect();
        let (hierarchy, masks) = HierarchyMetrics::compute_with_masks(&tokens, &self.grams)
            .map_err(|e| RlError::Invalid(format!("hierarchy metrics: {e}")))?;
        let a = &self.config.algorithm;
        let needs_entropy = matches!(
            a.hicra.variant,
            HicraVariant::Released | HicraVariant::Entropy
        );
        let sampling = || rs.iter().map(|r| r.sampling_logprobs.clone()).collect();
        let rescore = self.config.rescores_old_logprobs();
        let (old_logprobs, entropies) = if rescore || needs_entropy {
            let (lp, en) = self.score_rollouts(&self.policy.model, rs)?;
            let old = if rescore { lp } else { sampling() };
            (old, Some(en))
        } else {
            (sampling(), None)
        };
        let ref_logprobs = match &self.reference {
            Some(m) => Some(self.score_rollouts(m, rs)?.0),
            None => None,
        };
        Ok(Scored {
            masks,
            hierarchy,
            old_logprobs,
            ref_logprobs,
            entropies,
        })
    }

    /// Scores rollouts with `model` (no grad), micro-batched: per-response log-probs and
    /// entropies.
    fn score_rollouts(&self, model: &Model, rs: &[Rollout]) -> Result<(PerToken, PerToken)> {
        let (mut lp, mut en) = (Vec::new(), Vec::new());
        let opts = ScoreOptions {
            chunk_positions: self.config.algorithm.chunk_positions,
            with_entropy: true,
        };
        for chunk in rs.chunks(self.config.algorithm.micro_batch) {
            let seqs = sequences(chunk.iter());
            let batch = build_batch(&seqs, self.policy.pad_token_id, model.device())?;
            let s = model
                .score_tokens(&batch, &opts)
                .map_err(|e| RlError::model("scoring", e))?;
            lp.extend(gather(&seqs, &s.logprobs));
            en.extend(gather(&seqs, &s.entropy));
        }
        Ok((lp, en))
    }

    /// Phase 3: per-token advantages.
    fn advantages(&self, step: u64, rs: &[Rollout], scored: &Scored) -> Result<TokenAdvantages> {
        let rewards: Vec<f32> = rs.iter().map(|r| r.reward).collect();
        let correct: Vec<bool> = rs.iter().map(|r| r.correct).collect();
        let inputs = CreditInputs {
            rewards: &rewards,
            planning: &scored.masks,
            entropies: scored.entropies.as_deref(),
            correct: &correct,
        };
        assign_credit(
            &self.config.algorithm,
            &inputs,
            self.config.rollout.group_size,
            derive_seed(self.config.trainer.seed, step, 1 << 32),
        )
    }

    /// Phase 4: PPO epochs over mini-batches of groups; one optimiser step per mini-batch,
    /// after which the generator gets the new weights.
    fn update(
        &mut self,
        step: u64,
        rs: &[Rollout],
        scored: &Scored,
        advantages: &TokenAdvantages,
    ) -> Result<UpdateSummary> {
        let a = self.config.algorithm.clone();
        let g = self.config.rollout.group_size;
        let mut summary = UpdateSummary {
            lr: self.updater.next_lr(),
            passes: a.ppo_epochs * a.mini_batches,
            first_epoch_entropy: vec![Vec::new(); rs.len()],
            ..UpdateSummary::default()
        };
        let n_groups = rs.len() / g.max(1);
        if n_groups == 0 {
            return Ok(summary);
        }
        let per = n_groups.div_ceil(a.mini_batches);
        for epoch in 0..a.ppo_epochs {
            for mb in 0..a.mini_batches {
                let idx: Vec<usize> = (mb * per * g..((mb + 1) * per * g).min(rs.len())).collect();
                if idx.is_empty() {
                    continue;
                }
                let work = self.trained_sequences(rs, &idx, advantages);
                for micro in work.chunks(a.micro_batch) {
                    let out = self
                        .micro_batch(rs, micro, scored, advantages)
                        .map_err(|e| e.at_step(step))?;
                    if epoch == 0 {
                        for (&(i, _), e) in micro.iter().zip(out.entropy) {
                            summary.first_epoch_entropy[i] = e;
                        }
                    }
                    summary.stats.merge(&out.stats);
                }
                summary.lr = self.updater.next_lr();
                let report = self.updater.step().map_err(|e| e.at_step(step))?;
                summary.grad_norms.push(report.grad_norm);
                let opt_step = self.updater.optimizer().step_count();
                self.generator.sync_weights(opt_step, &self.policy.model)?;
            }
        }
        Ok(summary)
    }

    /// The sequences of mini-batch `idx` that take part in the loss, with their aggregation
    /// weight. Sequences whose loss is identically zero (no advantage on any token and no KL
    /// or entropy term) are left out: they contribute no gradient.
    fn trained_sequences(
        &self,
        rs: &[Rollout],
        idx: &[usize],
        advantages: &TokenAdvantages,
    ) -> Vec<(usize, f32)> {
        let a = &self.config.algorithm;
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
        let weights = sequence_weights(a.loss_agg, &lengths, self.config.rollout.max_new_tokens);
        let only_pg = (a.kl_coef == 0.0 || self.reference.is_none()) && a.entropy_coef == 0.0;
        idx.iter()
            .zip(weights)
            .filter(|&(&i, w)| {
                w != 0.0 && (!only_pg || advantages.advantages[i].iter().any(|&v| v != 0.0))
            })
            .map(|(&i, w)| (i, w))
            .collect()
    }

    /// One micro-batch's backward pass: the loss inputs go to the device once, the clipped
    /// loss is computed chunk by chunk, and its statistics are read once at the end.
    /// Returns the statistics and each sequence's response-token entropies.
    fn micro_batch(
        &mut self,
        rs: &[Rollout],
        micro: &[(usize, f32)],
        scored: &Scored,
        advantages: &TokenAdvantages,
    ) -> Result<MicroBatchOutcome> {
        let seqs = sequences(micro.iter().map(|&(i, _)| &rs[i]));
        let device = self.policy.model.device().clone();
        let batch = build_batch(&seqs, self.policy.pad_token_id, &device)?;
        let (_, t) = batch.dims().map_err(|e| RlError::model("batch", e))?;
        let rows = |v: &PerToken| -> Vec<Vec<f32>> {
            let values: Vec<&[f32]> = micro.iter().map(|&(i, _)| v[i].as_slice()).collect();
            place(&seqs, &values, t)
        };
        let weight_rows: Vec<Vec<f32>> = micro
            .iter()
            .map(|&(i, w)| vec![w; rs[i].response_ids.len()])
            .collect();
        let weight_refs: Vec<&[f32]> = weight_rows.iter().map(Vec::as_slice).collect();
        let inputs = LossInputs::upload(
            &rows(&scored.old_logprobs),
            scored.ref_logprobs.as_ref().map(rows).as_deref(),
            &rows(&advantages.advantages),
            &place(&seqs, &weight_refs, t),
            t,
            &device,
        )?;
        let loss_cfg = self.config.algorithm.loss_config();
        let mut chunks = ChunkStats::default();
        self.updater
            .backward(&self.policy.model, &batch, &mut |chunk| {
                chunk_loss(
                    &loss_cfg,
                    &inputs,
                    chunk.start,
                    &chunk.logprobs,
                    &chunk.entropy,
                    &mut chunks,
                )
            })?;
        let read = chunks.read()?;
        Ok(MicroBatchOutcome {
            stats: read.stats,
            entropy: gather(&seqs, &read.entropy),
        })
    }

    /// Writes `samples/<file>` atomically, one JSON object per line (nothing without a
    /// writable run directory).
    fn write_sample_file(
        &self,
        file: &str,
        lines: impl Iterator<Item = serde_json::Value>,
    ) -> Result<()> {
        let Some(run_dir) = self.run.writable_dir() else {
            return Ok(());
        };
        let dir = run_dir.join("samples");
        fs::create_dir_all(&dir).map_err(|e| RlError::io(&dir, e))?;
        let mut out = String::new();
        for v in lines {
            out.push_str(&v.to_string());
            out.push('\n');
        }
        checkpoint::write_atomic(&dir.join(file), out.as_bytes())
    }

    /// Writes `samples/val-step-N.jsonl`: each validation problem's response and grade.
    fn write_validation_samples(
        &self,
        step: u64,
        problems: &[Problem],
        samples: &[GradedSample],
    ) -> Result<()> {
        let lines = samples.iter().map(|s| {
            serde_json::json!({
                "step": step,
                "id": problems[s.problem].id,
                "response": s.text,
                "correct": s.score.correct,
                "extracted": s.score.extracted,
                "length": s.generation.token_ids.len(),
                "finish_reason": s.generation.finish_reason,
            })
        });
        self.write_sample_file(&format!("val-step-{step}.jsonl"), lines)
    }

    /// Writes `samples/step-N.jsonl`: every sampled response with its reward and planning
    /// spans.
    fn write_samples(&self, step: u64, rs: &[Rollout]) -> Result<()> {
        let lines = rs.iter().map(|r| {
            let spans: Vec<[usize; 2]> = merged_spans(&self.grams.find(&r.text))
                .into_iter()
                .map(|(s, e)| [s, e])
                .collect();
            serde_json::json!({
                "step": step,
                "prompt": r.prompt_text,
                "response": r.text,
                "reward": r.reward,
                "correct": r.correct,
                "length": r.response_ids.len(),
                "finish_reason": r.finish_reason,
                "planning_spans": spans,
            })
        });
        self.write_sample_file(&format!("step-{step}.jsonl"), lines)
    }
}

/// The statistics and per-sequence entropies of one micro-batch.
struct MicroBatchOutcome {
    stats: LossStats,
    entropy: PerToken,
}

/// The prompt + response sequences of rollouts.
fn sequences<'a>(rs: impl Iterator<Item = &'a Rollout>) -> Vec<Sequence<'a>> {
    rs.map(|r| Sequence {
        prompt: &r.prompt_ids,
        response: &r.response_ids,
    })
    .collect()
}

/// The latest checkpoint of `run_dir` (verified) and its loop state.
fn latest_checkpoint(run_dir: &Path) -> Result<(PathBuf, TrainerState)> {
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
    Ok((dir.clone(), state))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send<T: Send>() {}

    #[test]
    fn the_trainer_can_move_to_another_thread() {
        assert_send::<Trainer>();
    }
}
