//! `hicra sft`: supervised warm start. With the lab task and no `model.path` it builds the
//! lab's tokenizer and tiny model and trains on the lab's traces (the cached warm start the
//! default `hicra train` job uses); otherwise it fine-tunes `model.path` on `sft.data`
//! (JSONL of `{"prompt", "completion"}`) and writes the model to `--out`.

use std::path::PathBuf;

use anyhow::Context;
use hicra_rl::metrics::{JsonlSink, MetricsSink, Record};
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
    /// Where the model trains and in which dtype (overrides `model.device` / `model.dtype`).
    #[command(flatten)]
    pub device: super::device_args::DeviceArgs,
}

/// Runs `hicra sft`.
pub fn run(args: Args) -> anyhow::Result<()> {
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
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
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
