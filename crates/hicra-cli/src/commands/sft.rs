//! `hicra sft`: supervised warm start. With the lab task and no `model.path` it builds the
//! lab's tokenizer and tiny model and trains on the lab's traces (the cached warm start the
//! default `hicra train` job uses); otherwise it fine-tunes `model.path` on `sft.data`
//! (JSONL of `{"prompt", "completion"}`) and writes the model to `--out`.
//!
//! `--out` gets `config.toml` and `run.json` (the settings and the inputs' hashes) first,
//! `metrics.jsonl` as it trains and `model/` when done. A finished SFT there is refused
//! unless `--force`; an unfinished one (killed: SFT keeps no checkpoints) is run again from
//! step 0, by a new `--out` run or by `--resume DIR` with its recorded settings.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use hicra_rl::config::TrainConfig;
use hicra_rl::metrics::{JsonlSink, MetricsSink, Record};
use hicra_rl::run_dir::{RunDir, clean_run_temporaries, prepare_new_run};
use hicra_rl::run_record::{RunKind, RunRecord};
use indicatif::{ProgressBar, ProgressStyle};

use super::train::{ensure_model, load_config, say};

/// Arguments of `hicra sft`.
#[derive(clap::Args)]
pub struct Args {
    /// TOML config (default: the built-in lab job); the `[sft]` section applies.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Override a config key (repeatable), e.g. `--set sft.steps=100`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Output directory for the fine-tuned model (HF layout) and `metrics.jsonl`.
    /// Without it, the lab's warm start goes to the hicra cache.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Run the unfinished SFT in this directory again, from step 0, with its recorded
    /// settings (SFT keeps no checkpoints).
    #[arg(long, conflicts_with_all = ["config", "set", "out", "device", "dtype", "force"])]
    pub resume: Option<PathBuf>,
    /// Redo a finished SFT in `--out` (its files are deleted; files no run wrote are never
    /// touched).
    #[arg(long)]
    pub force: bool,
    /// Where the model trains and in which dtype (overrides `model.device` / `model.dtype`).
    #[command(flatten)]
    pub device: super::device_args::DeviceArgs,
}

/// Runs `hicra sft`.
pub fn run(args: Args) -> anyhow::Result<()> {
    if let Some(dir) = &args.resume {
        return match resumed_config(dir)? {
            Some(config) => fine_tune(config, dir),
            None => Ok(()),
        };
    }
    let sets = [args.set.clone(), args.device.config_overrides()].concat();
    let mut config = load_config(args.config.as_deref(), &sets)?;
    if config.model.path.is_empty() && args.out.is_none() {
        // The lab warm start, cached for `hicra train`.
        ensure_model(&mut config)?;
        println!("warm-started lab model: {}", config.model.path);
        return Ok(());
    }
    let out = args
        .out
        .context("--out is required when fine-tuning a given model")?;
    let record = RunRecord::new(RunKind::Sft, &config)?;
    for note in prepare_new_run(&out, RunKind::Sft, args.force)? {
        eprintln!("note: {note}");
    }
    // The record first: a directory holding it is an SFT run, however early it is stopped.
    record.write(&out)?;
    hicra_rl::checkpoint::write_atomic(&out.join("config.toml"), config.to_toml().as_bytes())?;
    fine_tune(config, &out)
}

/// The settings an unfinished SFT in `dir` runs again with (checked as a training resume
/// is); its partial outputs are removed. `None` for a finished SFT: nothing to do.
fn resumed_config(dir: &Path) -> anyhow::Result<Option<TrainConfig>> {
    for removed in clean_run_temporaries(dir) {
        eprintln!(
            "note: removed {}, left by the interrupted run",
            removed.display()
        );
    }
    match RunDir::inspect(dir)? {
        RunDir::Run {
            kind: RunKind::Sft,
            kept: None,
        } => {}
        RunDir::Run {
            kind: RunKind::Sft,
            kept: Some(_),
        } => {
            eprintln!(
                "note: {} holds a finished SFT (its model is in {}): nothing to resume; \
                 `hicra sft --force --out {}` with the same settings redoes it",
                dir.display(),
                dir.join("model").display(),
                dir.display()
            );
            return Ok(None);
        }
        _ => bail!("{} holds no `hicra sft` run to resume", dir.display()),
    }
    let record = RunRecord::read(dir)?
        .with_context(|| format!("{} has no run.json to resume from", dir.display()))?;
    let config = TrainConfig::load(Some(&dir.join("config.toml")), &[])?;
    for edit in record.check_resume(&config)? {
        eprintln!("note: config.toml edit accepted: {edit}");
    }
    RunRecord {
        config: config.clone(),
        ..record
    }
    .write(dir)?;
    remove_partial_outputs(dir)?;
    eprintln!(
        "note: SFT keeps no checkpoints: running {} again from step 0",
        dir.display()
    );
    Ok(Some(config))
}

/// Removes what an interrupted SFT wrote besides its settings.
fn remove_partial_outputs(dir: &Path) -> anyhow::Result<()> {
    for name in ["metrics.jsonl", ".init"] {
        let path = dir.join(name);
        if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else if path.exists() {
            std::fs::remove_file(&path)
        } else {
            Ok(())
        }
        .with_context(|| format!("removing {}", path.display()))?;
    }
    Ok(())
}

/// Fine-tunes `config.model.path` (or the lab's model from scratch) into `out/model`.
fn fine_tune(mut config: TrainConfig, out: &Path) -> anyhow::Result<()> {
    if config.model.path.is_empty() {
        // Lab from scratch into --out.
        let init = out.join(".init");
        hicra_rl::lab::write_initial_lab_model(&config, &init)?;
        config.model.path = init.display().to_string();
    }
    let policy = hicra_model::load_model(&config.model.path, &config.model.load_options()?)
        .with_context(|| format!("loading {}", config.model.path))?;
    let examples = if config.sft.data.is_empty() {
        anyhow::ensure!(
            config.task.kind == hicra_rl::config::TaskKind::Lab,
            "sft.data is empty: give a JSONL of prompt/completion pairs"
        );
        hicra_rl::lab::lab_sft_examples(&config)
    } else {
        hicra_rl::sft::load_sft_jsonl(std::path::Path::new(&config.sft.data))?
    };
    let mut sink = JsonlSink::open(&out.join("metrics.jsonl"))?;
    let bar = ProgressBar::new(config.sft.steps as u64);
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} SFT [{bar:30}] {pos}/{len} {msg}")?
            .progress_chars("=> "),
    );
    let every = config.sft.log_every.max(1);
    hicra_rl::sft::run_sft(
        &policy,
        &examples,
        &hicra_rl::lab::sft_options(&config),
        &mut |step, loss, lr| {
            bar.set_position(step as u64);
            bar.set_message(format!("loss {loss:.3}"));
            let mut r = Record::new();
            r.insert("sft_loss".into(), loss);
            r.insert("lr".into(), lr);
            sink.log(step as u64, &r)?;
            if step % every == 0 {
                say(&bar, format!("sft step {step}: loss {loss:.4}"));
            }
            Ok(())
        },
    )?;
    sink.flush()?;
    bar.finish_and_clear();
    let model_dir = out.join("model");
    policy
        .save_hf(&model_dir)
        .with_context(|| format!("saving {}", model_dir.display()))?;
    let _ = std::fs::remove_dir_all(out.join(".init"));
    println!("fine-tuned model: {}", model_dir.display());
    Ok(())
}
