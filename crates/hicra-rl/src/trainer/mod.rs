//! The RL trainer: construction, the loop, validation and checkpoints here; a step is five
//! phases, each its own function ([`step`]):
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

use std::path::{Path, PathBuf};
use std::time::Instant;

use hicra_hier::GramSet;
use hicra_model::{LoadedModel, Model, ScoreOptions};
use hicra_tasks::{Problem, Task, task_anatomy};

use crate::checkpoint::{self, checkpoint_dir, write_checkpoint};
use crate::config::TrainConfig;
use crate::error::{Result, RlError};
use crate::events::{TrainEvent, TrainObserver};
use crate::generation::overlong_prompts;
use crate::generator::{Generator, LocalGenerator};
use crate::metrics::{JsonlSink, MetricsSink, MultiSink, Record};
use crate::optim::AdamW;
use crate::run::{RunSetup, TrainerState, latest_checkpoint, prune_checkpoints};
use crate::run_dir::{clean_run_temporaries, prepare_new_run};
use crate::run_record::{RunKind, RunRecord};
use crate::tasks::build_task;
use crate::update::PolicyUpdater;
pub use crate::validation::Evaluation;
use crate::validation::{evaluate, validation_plan};

mod step;

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

/// A seed for `(seed, step, round)` (SplitMix64 finaliser).
pub fn derive_seed(seed: u64, step: u64, round: u64) -> u64 {
    let mut z = seed
        .wrapping_add(step.wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .wrapping_add(round.wrapping_mul(0xD1B5_4A32_D192_ED03));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
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
    notes: Vec<String>,
    zero_advantage_streak: u64,
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
            notes: Vec::new(),
            zero_advantage_streak: 0,
        })
    }

    /// Starts a new run in `run_dir` with the task of the config. A run already there that
    /// kept a checkpoint is refused unless `force` (see [`prepare_new_run`]).
    pub fn create(config: TrainConfig, run_dir: &Path, force: bool) -> Result<Trainer> {
        config.validate()?;
        let task = build_task(&config.task)?;
        Self::start(config, task, run_dir, force)
    }

    /// Starts a new run with a given task (tests, custom tasks); refuses a run directory whose
    /// run kept a checkpoint.
    pub fn create_with_task(
        config: TrainConfig,
        task: Box<dyn Task>,
        run_dir: &Path,
    ) -> Result<Trainer> {
        Self::start(config, task, run_dir, false)
    }

    fn start(
        config: TrainConfig,
        task: Box<dyn Task>,
        run_dir: &Path,
        force: bool,
    ) -> Result<Trainer> {
        config.validate()?;
        let record = RunRecord::new(RunKind::Train, &config)?;
        let policy = load_policy(&config)?;
        check_prompts_fit(&config, task.as_ref(), &policy)?;
        let notes = prepare_new_run(run_dir, RunKind::Train, force)?;
        // The record first: a directory holding it is a run, however early it is stopped.
        record.write(run_dir)?;
        checkpoint::write_atomic(&run_dir.join("config.toml"), config.to_toml().as_bytes())?;
        let run = RunSetup::standard(run_dir)?;
        let mut trainer = Self::new(config, task, policy, None, TrainerState::fresh(), None, run)?;
        trainer.notes = notes;
        Ok(trainer)
    }

    /// Resumes the run in `run_dir` from its latest checkpoint (which must verify), or from
    /// step 0 when it has none yet. The run's `config.toml` may have been edited: see
    /// [`RunRecord::check_resume`] for what a resume accepts.
    pub fn resume(run_dir: &Path) -> Result<Trainer> {
        let (config, notes) = resumed_config(run_dir)?;
        let task = build_task(&config.task)?;
        Self::continue_run(run_dir, config, task, notes)
    }

    /// Resumes with a given task.
    pub fn resume_with_task(run_dir: &Path, task: Box<dyn Task>) -> Result<Trainer> {
        let (config, notes) = resumed_config(run_dir)?;
        Self::continue_run(run_dir, config, task, notes)
    }

    fn continue_run(
        run_dir: &Path,
        config: TrainConfig,
        task: Box<dyn Task>,
        mut notes: Vec<String>,
    ) -> Result<Trainer> {
        let metrics = run_dir.join("metrics.jsonl");
        let checkpoint = latest_checkpoint(run_dir)?;
        let policy = match &checkpoint {
            Some((dir, _)) => {
                hicra_model::load_hf_dir(&dir.join("hf"), &config.model.load_options()?)
                    .map_err(|e| RlError::model("checkpoint model", e))?
            }
            None => load_policy(&config)?,
        };
        check_prompts_fit(&config, task.as_ref(), &policy)?;
        let (state, optimizer_state, reference) = match checkpoint {
            Some((dir, state)) => {
                // The KL reference is the initial policy: reloaded from its source.
                let reference = if config.algorithm.kl_coef > 0.0 {
                    Some(load_policy(&config)?.model)
                } else {
                    None
                };
                JsonlSink::truncate_after(&metrics, Some(state.step))?;
                (state, Some(dir.join("optimizer.safetensors")), reference)
            }
            None => {
                notes.push(format!(
                    "{} has no checkpoint yet: starting it from step 0 with its recorded config",
                    run_dir.display()
                ));
                JsonlSink::truncate_after(&metrics, None)?;
                (TrainerState::fresh(), None, None)
            }
        };
        let run = RunSetup::standard(run_dir)?;
        let mut trainer = Self::new(
            config,
            task,
            policy,
            reference,
            state,
            optimizer_state.as_deref(),
            run,
        )?;
        trainer.notes = notes;
        Ok(trainer)
    }

    /// What starting or resuming found and did that the user should hear about (a replaced
    /// run without checkpoints, accepted config edits, removed temporaries).
    pub fn notes(&self) -> &[String] {
        &self.notes
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
        let (ev, samples, prompts) = evaluate(
            self.generator.as_mut(),
            &self.policy,
            self.task.as_ref(),
            &problems,
            &validation_plan(&self.config),
        )?;
        if self.config.trainer.samples_every > 0 {
            self.run
                .write_validation_samples(step, &problems, &prompts, &samples)?;
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
        prune_checkpoints(&ckdir, self.config.trainer.keep_checkpoints);
        Ok(dest)
    }
}

/// How many over-long prompts an error lists.
const OVERLONG_SHOWN: usize = 5;

/// Checks, before anything runs, that every prompt the run will use (each training problem of
/// a finite data set, the validation problems) fits the model's context with
/// `rollout.max_new_tokens` new tokens; an error lists the misfits by file and line.
fn check_prompts_fit(config: &TrainConfig, task: &dyn Task, policy: &LoadedModel) -> Result<()> {
    let mut problems: Vec<Problem> = task
        .validation_problems()
        .iter()
        .take(config.trainer.val_size)
        .cloned()
        .collect();
    if let Some(n) = task.train_len() {
        problems.extend((0..n as u64).map(|i| task.train_problem(i)));
    }
    let settings = config.model.prompt_settings();
    let max_new = config.rollout.max_new_tokens;
    let misfits = overlong_prompts(policy, task, &problems, &settings, max_new)?;
    if misfits.is_empty() {
        return Ok(());
    }
    let shown: Vec<&str> = misfits
        .iter()
        .take(OVERLONG_SHOWN)
        .map(|(_, m)| m.as_str())
        .collect();
    Err(RlError::Task(format!(
        "{} prompts do not fit the model's context with rollout.max_new_tokens = {max_new} \
         (remove them from the data or lower rollout.max_new_tokens):\n  {}",
        misfits.len(),
        shown.join("\n  ")
    )))
}

/// The config a resume of `run_dir` continues with: its `config.toml`, checked against what
/// the run recorded (inputs unchanged, only resumable keys edited; then recorded anew), with
/// notes on the accepted edits and the removed temporaries of the interrupted run.
fn resumed_config(run_dir: &Path) -> Result<(TrainConfig, Vec<String>)> {
    if !run_dir.join("config.toml").is_file() {
        return Err(RlError::Invalid(format!(
            "{} is not a run directory (it has no config.toml)",
            run_dir.display()
        )));
    }
    let mut notes: Vec<String> = clean_run_temporaries(run_dir)
        .iter()
        .map(|p| format!("removed {}, left by the interrupted run", p.display()))
        .collect();
    let config = TrainConfig::load(Some(&run_dir.join("config.toml")), &[])?;
    let record = match RunRecord::read(run_dir)? {
        Some(record) if record.kind != RunKind::Train => {
            return Err(RlError::Invalid(format!(
                "{} holds the output of `hicra {}`, not a training run",
                run_dir.display(),
                record.kind.name()
            )));
        }
        Some(record) => {
            for edit in record.check_resume(&config)? {
                notes.push(format!("config.toml edit accepted: {edit}"));
            }
            RunRecord {
                config: config.clone(),
                ..record
            }
        }
        None => {
            notes.push(format!(
                "{} has no run.json (a run of an older hicra): its inputs and settings are \
                 recorded now, unchecked",
                run_dir.display()
            ));
            RunRecord::new(RunKind::Train, &config)?
        }
    };
    record.write(run_dir)?;
    Ok((config, notes))
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
