//! `hicra compare`: runs several methods over several seeds on the same config (same data,
//! budget and warm start), sequentially and resumably, then writes and prints a comparison
//! (final / best validation accuracy mean ± std, steps to a target accuracy, area under the
//! accuracy curve, semantic-entropy trajectory) and the overlaid `hicra report`.

use std::path::{Path, PathBuf};

use anyhow::Context;
use hicra_rl::checkpoint::{checkpoint_dir, verify_checkpoint};
use hicra_rl::config::TrainConfig;
use hicra_rl::hicra::HicraVariant;
use hicra_rl::trainer::{Trainer, read_metrics};
use serde_json::{Value, json};

use super::train::{ProgressObserver, ensure_model, load_config};

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
    #[arg(long, default_value_t = 3)]
    pub seeds: u64,
    /// Validation accuracy for "steps to target".
    #[arg(long, default_value_t = 0.5)]
    pub target: f64,
    /// Output folder (one run directory per method and seed, the table and the report).
    #[arg(long)]
    pub out: Option<PathBuf>,
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

/// Summary of one run's validation curve.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSummary {
    /// Accuracy at the last validation.
    pub final_acc: f64,
    /// Best validation accuracy.
    pub best_acc: f64,
    /// First validated step reaching the target.
    pub steps_to_target: Option<u64>,
    /// Area under the accuracy curve divided by the step span (mean accuracy over training).
    pub auc: f64,
    /// Semantic entropy at the first and last training step.
    pub semantic_entropy: (f64, f64),
}

/// Summarises `metrics.jsonl` lines of a run.
pub fn summarise(metrics: &[Value], target: f64) -> Option<RunSummary> {
    let val: Vec<(f64, f64)> = metrics
        .iter()
        .filter_map(|m| Some((m["step"].as_f64()?, m.get("val_accuracy")?.as_f64()?)))
        .collect();
    let (&(first_step, _), &(last_step, final_acc)) = (val.first()?, val.last()?);
    let best_acc = val.iter().map(|v| v.1).fold(f64::NEG_INFINITY, f64::max);
    let steps_to_target = val.iter().find(|v| v.1 >= target).map(|v| v.0 as u64);
    let area: f64 = val
        .windows(2)
        .map(|w| (w[1].0 - w[0].0) * (w[0].1 + w[1].1) / 2.0)
        .sum();
    let span = last_step - first_step;
    let auc = if span > 0.0 { area / span } else { final_acc };
    let se: Vec<f64> = metrics
        .iter()
        .filter_map(|m| m.get("semantic_entropy")?.as_f64())
        .collect();
    Some(RunSummary {
        final_acc,
        best_acc,
        steps_to_target,
        auc,
        semantic_entropy: (
            se.first().copied().unwrap_or(0.0),
            se.last().copied().unwrap_or(0.0),
        ),
    })
}

fn mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    if v.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let m = v.iter().sum::<f64>() / n;
    let s = if v.len() > 1 {
        (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
    } else {
        0.0
    };
    (m, s)
}

/// Runs (or resumes, or skips when finished) one run.
fn ensure_run(config: &TrainConfig, dir: &Path) -> anyhow::Result<()> {
    let steps = config.trainer.steps as u64;
    let final_ckpt = checkpoint_dir(&dir.join("checkpoints"), steps);
    if verify_checkpoint(&final_ckpt).is_ok() {
        println!("{}: finished, skipped", dir.display());
        return Ok(());
    }
    let has_ckpt = !hicra_rl::checkpoint::list_checkpoints(&dir.join("checkpoints")).is_empty();
    let mut trainer = if has_ckpt {
        println!("{}: resuming", dir.display());
        Trainer::resume(dir)?
    } else {
        if dir.exists() {
            std::fs::remove_dir_all(dir)
                .with_context(|| format!("clearing the unfinished run {}", dir.display()))?;
        }
        println!("{}: starting", dir.display());
        Trainer::create(config.clone(), dir)?
    };
    trainer.train(&mut ProgressObserver::new())?;
    Ok(())
}

/// Runs `hicra compare`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let mut base = load_config(args.config.as_deref(), &args.set)?;
    anyhow::ensure!(args.seeds >= 1, "--seeds must be at least 1");
    let variants: Vec<(String, HicraVariant)> = args
        .methods
        .iter()
        .map(|m| Ok((m.clone(), method_variant(m)?)))
        .collect::<anyhow::Result<_>>()?;
    ensure_model(&mut base)?; // one warm start shared by every run
    let out = args.out.clone().unwrap_or_else(|| {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        PathBuf::from("runs").join(format!("compare-{secs}"))
    });
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let mut dirs = Vec::new();
    for (name, variant) in &variants {
        for seed in 0..args.seeds {
            let mut c = base.clone();
            c.algorithm.hicra.variant = *variant;
            c.trainer.seed = seed;
            let dir = out.join(format!("{name}-seed{seed}"));
            c.trainer.out = dir.display().to_string();
            ensure_run(&c, &dir)?;
            dirs.push((name.clone(), dir));
        }
    }
    let mut table = format!(
        "{:<10} {:>16} {:>16} {:>16} {:>16} {:>20}\n",
        "method",
        "final val acc",
        "best val acc",
        "steps to target",
        "AUC (mean acc)",
        "semantic entropy"
    );
    let mut rows = Vec::new();
    for (name, _) in &variants {
        let sums: Vec<RunSummary> = dirs
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, d)| {
                let m = read_metrics(d)?;
                summarise(&m, args.target)
                    .with_context(|| format!("{} has no validation lines", d.display()))
            })
            .collect::<anyhow::Result<_>>()?;
        let col =
            |f: &dyn Fn(&RunSummary) -> f64| mean_std(&sums.iter().map(f).collect::<Vec<_>>());
        let (fm, fs) = col(&|s| s.final_acc);
        let (bm, bs) = col(&|s| s.best_acc);
        let (am, as_) = col(&|s| s.auc);
        let (s0, _) = col(&|s| s.semantic_entropy.0);
        let (s1, _) = col(&|s| s.semantic_entropy.1);
        let reached: Vec<f64> = sums
            .iter()
            .filter_map(|s| s.steps_to_target.map(|v| v as f64))
            .collect();
        let target_txt = if reached.is_empty() {
            "not reached".to_string()
        } else {
            let (m, _) = mean_std(&reached);
            format!("{m:.1} ({}/{})", reached.len(), sums.len())
        };
        table.push_str(&format!(
            "{:<10} {:>16} {:>16} {:>16} {:>16} {:>20}\n",
            name,
            format!("{fm:.3} ± {fs:.3}"),
            format!("{bm:.3} ± {bs:.3}"),
            target_txt,
            format!("{am:.3} ± {as_:.3}"),
            format!("{s0:.3} → {s1:.3}"),
        ));
        rows.push(json!({
            "method": name, "runs": sums.len(),
            "final_val_accuracy": {"mean": fm, "std": fs},
            "best_val_accuracy": {"mean": bm, "std": bs},
            "auc": {"mean": am, "std": as_},
            "steps_to_target": sums.iter().map(|s| s.steps_to_target).collect::<Vec<_>>(),
            "semantic_entropy_first_last": [s0, s1],
        }));
    }
    println!("\n{table}");
    std::fs::write(out.join("comparison.txt"), &table)?;
    let doc = json!({"target": args.target, "seeds": args.seeds, "methods": rows,
        "runs": dirs.iter().map(|(_, d)| d.display().to_string()).collect::<Vec<_>>()});
    std::fs::write(
        out.join("comparison.json"),
        serde_json::to_string_pretty(&doc)?,
    )?;
    let run_dirs: Vec<PathBuf> = dirs.iter().map(|(_, d)| d.clone()).collect();
    match crate::report::write_report(
        &run_dirs,
        &out.join("report"),
        &hicra_hier::GramSet::paper(),
    ) {
        Ok(r) => println!("report: {}", r.html.display()),
        Err(e) => eprintln!("warning: the overlaid report could not be written: {e:#}"),
    }
    println!("comparison: {}", out.join("comparison.txt").display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_of_a_validation_curve() {
        let m: Vec<Value> = vec![
            json!({"step": 0, "val_accuracy": 0.2}),
            json!({"step": 1, "semantic_entropy": 1.0}),
            json!({"step": 2, "val_accuracy": 0.6}),
            json!({"step": 2, "semantic_entropy": 1.5}),
            json!({"step": 4, "val_accuracy": 0.4}),
        ];
        let s = summarise(&m, 0.5).unwrap();
        assert_eq!(s.final_acc, 0.4);
        assert_eq!(s.best_acc, 0.6);
        assert_eq!(s.steps_to_target, Some(2));
        // trapezoids: 2*(0.2+0.6)/2 + 2*(0.6+0.4)/2 = 1.8 over 4 steps
        assert!((s.auc - 0.45).abs() < 1e-12);
        assert_eq!(s.semantic_entropy, (1.0, 1.5));
    }
}
