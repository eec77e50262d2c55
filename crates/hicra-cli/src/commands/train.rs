//! `hicra train`: RL training from a TOML config (with `--set` overrides), resumable; with no
//! arguments, the reasoning lab's default job (SFT warm start if not cached, then HICRA).

use std::path::{Path, PathBuf};

use anyhow::Context;
use hicra_rl::config::TrainConfig;
use hicra_rl::events::{TrainEvent, TrainObserver};
use hicra_rl::trainer::{TrainSummary, Trainer};
use indicatif::{ProgressBar, ProgressStyle};

/// The default job's config (the lab with HICRA, paper variant).
pub const DEFAULT_CONFIG: &str = include_str!("../../../../configs/lab-hicra.toml");

/// Arguments of `hicra train`.
#[derive(clap::Args)]
pub struct Args {
    /// TOML config (default: the built-in lab job, `configs/lab-hicra.toml`).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Override a config key, e.g. `--set rollout.group_size=4` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Run directory (default: `trainer.out`, else `runs/<task>-<method>-<time>`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Continue the run in this directory from its latest checkpoint (from step 0 when it has
    /// none yet). Edits of its config.toml are accepted for the run's length and its
    /// validation, checkpoint and sample intervals only.
    #[arg(long, conflicts_with_all = ["config", "set", "out", "device", "dtype", "force"])]
    pub resume: Option<PathBuf>,
    /// Start over in a run directory whose run kept checkpoints (its files are deleted; files
    /// no run wrote are never touched).
    #[arg(long)]
    pub force: bool,
    /// Where the model trains and in which dtype (overrides `model.device` / `model.dtype`).
    #[command(flatten)]
    pub device: super::device_args::DeviceArgs,
}

/// Prints a line above the bar, or to stderr when the bar is hidden (not a terminal).
pub fn say(bar: &ProgressBar, line: impl AsRef<str>) {
    if bar.is_hidden() {
        eprintln!("{}", line.as_ref());
    } else {
        bar.println(line.as_ref());
    }
}

/// Loads the config from a file or the built-in default, with overrides.
pub fn load_config(config: Option<&Path>, sets: &[String]) -> anyhow::Result<TrainConfig> {
    Ok(match config {
        Some(p) => TrainConfig::load(Some(p), sets)?,
        None => TrainConfig::resolve(
            Some(("built-in configs/lab-hicra.toml", DEFAULT_CONFIG)),
            sets,
        )?,
    })
}

/// A progress bar over RL steps.
pub struct ProgressObserver {
    bar: ProgressBar,
}

impl ProgressObserver {
    /// A hidden bar until training starts.
    pub fn new() -> Self {
        ProgressObserver {
            bar: ProgressBar::hidden(),
        }
    }
}

impl Default for ProgressObserver {
    fn default() -> Self {
        Self::new()
    }
}

impl TrainObserver for ProgressObserver {
    fn event(&mut self, event: &TrainEvent<'_>) {
        match event {
            TrainEvent::Started {
                start_step,
                total_steps,
            } => {
                self.bar = ProgressBar::new(*total_steps);
                self.bar.set_style(
                    ProgressStyle::with_template(
                        "{elapsed_precise} [{bar:30}] step {pos}/{len} {msg}",
                    )
                    .expect("valid template")
                    .progress_chars("=> "),
                );
                self.bar.set_position(*start_step);
            }
            TrainEvent::Stage { step, stage } => {
                self.bar.set_message(format!("(step {step}: {stage})"))
            }
            TrainEvent::Step { step, record } => {
                self.bar.set_position(*step);
                let g = |k: &str| record.get(k).copied().unwrap_or(f64::NAN);
                say(
                    &self.bar,
                    format!(
                        "step {step}: reward {:.3} acc {:.3} len {:.1} clip {:.3} grad {:.3} plan {:.3} rollout {:.1}s train {:.1}s",
                        g("reward_mean"),
                        g("accuracy"),
                        g("response_length_mean"),
                        g("clip_frac"),
                        g("grad_norm"),
                        g("planning_token_frac"),
                        g("time_rollout_s"),
                        g("time_train_s"),
                    ),
                );
            }
            TrainEvent::Validation {
                step,
                accuracy,
                length,
            } => say(
                &self.bar,
                format!(
                    "validation at step {step}: accuracy {accuracy:.3}, mean length {length:.1}"
                ),
            ),
            TrainEvent::Checkpoint { path, .. } => {
                say(&self.bar, format!("checkpoint {}", path.display()))
            }
            TrainEvent::Warning { step, message } => {
                say(&self.bar, format!("warning at step {step}: {message}"))
            }
            TrainEvent::Credit { .. } => {}
        }
    }
}

/// Prepares the lab model when `model.path` is empty (cached SFT warm start).
pub fn ensure_model(config: &mut TrainConfig) -> anyhow::Result<()> {
    if !config.model.path.is_empty() {
        return Ok(());
    }
    anyhow::ensure!(
        config.task.kind == hicra_rl::config::TaskKind::Lab,
        "model.path is empty: name a model (only the lab task has a built-in one)"
    );
    let bar = ProgressBar::new(config.sft.steps as u64);
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} SFT [{bar:30}] {pos}/{len} {msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    let every = config.sft.log_every.max(1);
    let (dir, eval) = hicra_rl::lab::prepare_lab_model(
        config,
        &mut |line| say(&bar, line),
        &mut |step, loss| {
            bar.set_position(step as u64);
            bar.set_message(format!("loss {loss:.3}"));
            if step % every == 0 {
                say(&bar, format!("sft step {step}: loss {loss:.4}"));
            }
        },
    )?;
    bar.finish_and_clear();
    if let Some(ev) = eval {
        println!(
            "warm start ready: validation accuracy {:.3}, mean length {:.1} ({})",
            ev.accuracy,
            ev.mean_length,
            dir.display()
        );
    }
    config.model.path = dir.display().to_string();
    Ok(())
}

/// The default run directory name.
pub fn default_out(config: &TrainConfig) -> PathBuf {
    if !config.trainer.out.is_empty() {
        return PathBuf::from(&config.trainer.out);
    }
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let method = match config.algorithm.hicra.variant {
        hicra_rl::hicra::HicraVariant::None => "grpo".to_string(),
        v => format!(
            "hicra-{}",
            serde_json::to_value(v)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default()
        ),
    };
    PathBuf::from("runs").join(format!("{}-{method}-{secs}", config.task.kind.name()))
}

/// Prints what starting or resuming a run found and did.
fn print_notes(trainer: &Trainer) {
    for note in trainer.notes() {
        eprintln!("note: {note}");
    }
}

/// Runs a fresh training job and returns its summary.
pub fn train_fresh(
    mut config: TrainConfig,
    out: Option<PathBuf>,
    force: bool,
) -> anyhow::Result<TrainSummary> {
    ensure_model(&mut config)?;
    let out = out.unwrap_or_else(|| default_out(&config));
    let mut trainer = Trainer::create(config, &out, force)
        .with_context(|| format!("starting the run in {}", out.display()))?;
    print_notes(&trainer);
    println!("run directory: {}", out.display());
    let mut obs = ProgressObserver::new();
    Ok(trainer.train(&mut obs)?)
}

fn print_summary(s: &TrainSummary) {
    let fmt = |v: Option<f64>| v.map_or("n/a".to_string(), |a| format!("{a:.3}"));
    println!(
        "validation accuracy before: {}  after: {}  ({} steps)",
        fmt(s.initial_val_accuracy),
        fmt(s.final_val_accuracy),
        s.steps
    );
    if let Some(dir) = &s.run_dir {
        println!("run directory: {}", dir.display());
    }
}

/// Runs `hicra train`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let summary = if let Some(dir) = args.resume {
        let mut trainer =
            Trainer::resume(&dir).with_context(|| format!("resuming {}", dir.display()))?;
        print_notes(&trainer);
        println!(
            "resuming {} after step {}",
            dir.display(),
            trainer.state().step
        );
        let mut obs = ProgressObserver::new();
        trainer.train(&mut obs)?
    } else {
        let sets = [args.set.clone(), args.device.config_overrides()].concat();
        let config = load_config(args.config.as_deref(), &sets)?;
        train_fresh(config, args.out, args.force)?
    };
    print_summary(&summary);
    Ok(())
}
