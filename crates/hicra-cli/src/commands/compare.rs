//! `hicra compare`: runs several methods over several seeds on the same config, then
//! writes and prints the comparison and the overlaid `hicra report`.
//!
//! Runs of one seed share the warm start (one per comparison, prepared first), the data
//! order and the validation set (both fixed by the task's own seeds, which the comparison
//! never changes); the trainer seed (`trainer.seed = 0, 1, …`) drives rollout and
//! validation sampling. Every run is its own run directory and `hicra train` process
//! ([`runner`]): a rerun reuses finished runs and resumes unfinished ones. Per method the
//! table gives the mean and Student-t 95 % interval over seeds of final and best validation
//! accuracy, the area under the validation curve and the steps to a target accuracy, the
//! paired difference to GRPO (else the first method) seed by seed, and the sampling noise
//! of one validation accuracy ([`results`], [`crate::stats`]).

mod progress;
mod results;
mod runner;
mod summary;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use hicra_rl::config::TrainConfig;
use hicra_rl::hicra::HicraVariant;
use hicra_rl::run::read_metrics;
use serde_json::json;

use super::train::{ensure_model, load_config};
use results::{RunResult, method_stats, paired_stats, reference_method, render_table};
use runner::{RunPlan, RunnerOptions, run_all};

/// Arguments of `hicra compare`.
#[derive(clap::Args)]
pub struct Args {
    /// TOML config shared by every run (default: the built-in lab job).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Override a config key for every run (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Methods: grpo (HICRA off), hicra (= paper), released, entropy, placebo.
    #[arg(long, value_delimiter = ',', default_value = "grpo,hicra")]
    pub methods: Vec<String>,
    /// Seeds per method (trainer.seed = 0, 1, …).
    #[arg(long, default_value_t = 8)]
    pub seeds: u64,
    /// Validation accuracy for "steps to target".
    #[arg(long, default_value_t = 0.5)]
    pub target: f64,
    /// Output folder (one run directory per method and seed, the table and the report).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Runs trained side by side (default: the number of cores / --threads-per-run).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Threads of each run (`RAYON_NUM_THREADS`). Keep it when resuming a comparison:
    /// the thread count can change a run's arithmetic.
    #[arg(long, default_value_t = 1)]
    pub threads_per_run: usize,
    /// Where the runs train and in which dtype (overrides `model.device` / `model.dtype`).
    #[command(flatten)]
    pub device: super::device_args::DeviceArgs,
}

/// The HICRA variant a method name stands for.
pub fn method_variant(method: &str) -> anyhow::Result<HicraVariant> {
    Ok(match method {
        "grpo" | "none" => HicraVariant::None,
        "hicra" | "paper" => HicraVariant::Paper,
        "released" => HicraVariant::Released,
        "entropy" => HicraVariant::Entropy,
        "placebo" => HicraVariant::Placebo,
        other => anyhow::bail!(
            "unknown method `{other}` (expected grpo, hicra, released, entropy, placebo)"
        ),
    })
}

/// The runs: every method × seed on `base`, each in `out/<method>-seed<N>`.
fn plan_runs(
    base: &TrainConfig,
    methods: &[String],
    seeds: u64,
    out: &std::path::Path,
) -> anyhow::Result<Vec<RunPlan>> {
    let mut plans = Vec::new();
    // Seed by seed, every method within a seed: a comparison stopped part-way has whole
    // seeds, so its paired differences already cover every method.
    for seed in 0..seeds {
        for method in methods {
            let variant = method_variant(method)?;
            let name = format!("{method}-seed{seed}");
            let dir = out.join(&name);
            let mut config = base.clone();
            config.algorithm.hicra.variant = variant;
            config.trainer.seed = seed;
            config.trainer.out = dir.display().to_string();
            plans.push(RunPlan {
                name,
                method: method.clone(),
                seed,
                dir,
                config,
            });
        }
    }
    Ok(plans)
}

/// Validation problems each run is scored on: `trainer.val_size`, at most the task's set.
fn validation_size(config: &TrainConfig) -> anyhow::Result<usize> {
    let task = hicra_rl::tasks::build_task(&config.task).context("building the task")?;
    Ok(config
        .trainer
        .val_size
        .min(task.validation_problems().len()))
}

fn default_jobs(threads_per_run: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cores / threads_per_run.max(1)).max(1)
}

/// Runs `hicra compare`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let sets = [args.set.clone(), args.device.config_overrides()].concat();
    let mut base = load_config(args.config.as_deref(), &sets)?;
    anyhow::ensure!(args.seeds >= 1, "--seeds must be at least 1");
    anyhow::ensure!(
        (0.0..=1.0).contains(&args.target),
        "--target is a validation accuracy, between 0 and 1 (got {})",
        args.target
    );
    anyhow::ensure!(!args.methods.is_empty(), "--methods names no method");
    anyhow::ensure!(
        args.threads_per_run >= 1,
        "--threads-per-run must be at least 1"
    );
    anyhow::ensure!(args.jobs != Some(0), "--jobs must be at least 1");
    for m in &args.methods {
        method_variant(m)?;
    }
    ensure_model(&mut base)?; // one warm start shared by every run
    let out = args.out.clone().unwrap_or_else(|| {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        PathBuf::from("runs").join(format!("compare-{secs}"))
    });
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let val_size = validation_size(&base)?;
    let plans = plan_runs(&base, &args.methods, args.seeds, &out)?;
    let opts = RunnerOptions {
        jobs: args
            .jobs
            .unwrap_or_else(|| default_jobs(args.threads_per_run)),
        threads_per_run: args.threads_per_run,
        exe: std::env::current_exe().context("locating the hicra executable")?,
        work_dir: out.join("logs"),
        progress_every: Duration::from_secs(10),
    };
    run_all(&plans, &opts)?;

    let results = plans
        .iter()
        .map(|p| {
            let metrics = read_metrics(&p.dir)?;
            let summary = summary::summarise(&metrics, args.target)
                .with_context(|| format!("{} has no validation lines", p.dir.display()))?;
            Ok(RunResult {
                method: p.method.clone(),
                seed: p.seed,
                summary,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let methods: Vec<_> = args
        .methods
        .iter()
        .map(|m| method_stats(&results, m, val_size))
        .collect();
    let reference = reference_method(&args.methods).unwrap_or_default();
    let paired: Vec<_> = args
        .methods
        .iter()
        .filter(|m| m.as_str() != reference)
        .map(|m| paired_stats(&results, m, reference))
        .collect();
    let table = render_table(&methods, &paired, args.target, val_size);
    println!("\n{table}");
    std::fs::write(out.join("comparison.txt"), &table)?;
    let doc = json!({
        "target": args.target,
        "seeds": args.seeds,
        "confidence": crate::stats::LEVEL,
        "interval": "Student t over seeds: mean ± t(1 - (1 - confidence)/2, n - 1) · s / √n",
        "val_size": val_size,
        "threads_per_run": args.threads_per_run,
        "reference": reference,
        "methods": methods,
        "paired": paired,
        "runs": plans.iter().map(|p| p.dir.display().to_string()).collect::<Vec<_>>(),
    });
    std::fs::write(
        out.join("comparison.json"),
        serde_json::to_string_pretty(&doc)?,
    )?;
    let run_dirs: Vec<PathBuf> = plans.iter().map(|p| p.dir.clone()).collect();
    let report = crate::report::load_runs(&run_dirs, None).and_then(|runs| {
        crate::report::write_report(runs, &out.join("report"), &hicra_hier::GramSet::paper())
    });
    match report {
        Ok(r) => println!("report: {}", r.html.display()),
        Err(e) => eprintln!("warning: the overlaid report could not be written: {e:#}"),
    }
    println!("comparison: {}", out.join("comparison.txt").display());
    Ok(())
}
