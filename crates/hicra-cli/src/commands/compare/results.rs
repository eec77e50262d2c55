//! The comparison's results: per method the mean and 95 % interval over seeds of each run
//! summary, the paired difference to the reference method seed by seed, the validation
//! sampling noise; as JSON (`comparison.json`) and as the printed table.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use super::summary::RunSummary;
use crate::stats::{Estimate, LEVEL, binomial_se, estimate, format_estimate, paired_differences};

/// One finished run's summary.
#[derive(Debug, Clone)]
pub struct RunResult {
    /// The method name.
    pub method: String,
    /// The trainer seed.
    pub seed: u64,
    /// Its summary.
    pub summary: RunSummary,
}

/// A method's results over its seeds.
#[derive(Debug, Clone, Serialize)]
pub struct MethodStats {
    /// The method name.
    pub method: String,
    /// Number of runs (seeds).
    pub runs: usize,
    /// Accuracy at the last validation.
    pub final_val_accuracy: Option<Estimate>,
    /// Best validation accuracy.
    pub best_val_accuracy: Option<Estimate>,
    /// Mean validation accuracy over training (area under the curve / step span).
    pub auc: Option<Estimate>,
    /// First validated step reaching the target, over the runs that reached it.
    pub steps_to_target: Option<Estimate>,
    /// Runs that reached the target.
    pub reached_target: usize,
    /// Each seed's steps to target (`null`: not reached), in seed order.
    pub steps_to_target_per_seed: Vec<Option<u64>>,
    /// Binomial standard error of one validation accuracy at the mean final accuracy.
    pub val_sampling_se: f64,
    /// Semantic entropy at the first and last step, mean over seeds.
    pub semantic_entropy_first_last: [f64; 2],
    /// The final validation failure anatomy (`val_lab_*`), when logged.
    pub final_anatomy: BTreeMap<String, Estimate>,
}

/// A method's difference to the reference method, paired by seed.
#[derive(Debug, Clone, Serialize)]
pub struct PairedStats {
    /// The method name.
    pub method: String,
    /// The method it is compared to.
    pub reference: String,
    /// Seeds both methods ran.
    pub seeds: usize,
    /// Δ final validation accuracy.
    pub final_val_accuracy: Option<Estimate>,
    /// Δ best validation accuracy.
    pub best_val_accuracy: Option<Estimate>,
    /// Δ mean validation accuracy over training.
    pub auc: Option<Estimate>,
    /// Δ steps to target, over the seeds where both reached it.
    pub steps_to_target: Option<Estimate>,
}

/// The reference of the paired differences: `grpo` when compared, else the first method.
pub fn reference_method(methods: &[String]) -> Option<&str> {
    methods
        .iter()
        .find(|m| m.as_str() == "grpo")
        .or(methods.first())
        .map(String::as_str)
}

fn by_seed(
    results: &[RunResult],
    method: &str,
    f: impl Fn(&RunSummary) -> Option<f64>,
) -> BTreeMap<u64, f64> {
    results
        .iter()
        .filter(|r| r.method == method)
        .filter_map(|r| Some((r.seed, f(&r.summary)?)))
        .collect()
}

fn values(map: &BTreeMap<u64, f64>) -> Vec<f64> {
    map.values().copied().collect()
}

/// A method's statistics; `val_size` is the number of validation problems per run.
pub fn method_stats(results: &[RunResult], method: &str, val_size: usize) -> MethodStats {
    let mine: Vec<&RunResult> = results.iter().filter(|r| r.method == method).collect();
    let est =
        |f: fn(&RunSummary) -> Option<f64>| estimate(&values(&by_seed(results, method, f)), LEVEL);
    let final_acc = est(|s| Some(s.final_acc));
    let steps = by_seed(results, method, |s| s.steps_to_target.map(|v| v as f64));
    let mean_of = |f: fn(&RunSummary) -> f64| {
        estimate(
            &mine.iter().map(|r| f(&r.summary)).collect::<Vec<_>>(),
            LEVEL,
        )
        .map_or(0.0, |e| e.mean)
    };
    let mut anatomy_keys: Vec<&String> = mine
        .iter()
        .flat_map(|r| r.summary.final_anatomy.keys())
        .collect();
    anatomy_keys.sort();
    anatomy_keys.dedup();
    let final_anatomy = anatomy_keys
        .into_iter()
        .filter_map(|key| {
            let v: Vec<f64> = mine
                .iter()
                .filter_map(|r| r.summary.final_anatomy.get(key).copied())
                .collect();
            Some((key.clone(), estimate(&v, LEVEL)?))
        })
        .collect();
    MethodStats {
        method: method.to_string(),
        runs: mine.len(),
        val_sampling_se: binomial_se(final_acc.map_or(0.0, |e| e.mean), val_size),
        final_val_accuracy: final_acc,
        best_val_accuracy: est(|s| Some(s.best_acc)),
        auc: est(|s| Some(s.auc)),
        steps_to_target: estimate(&values(&steps), LEVEL),
        reached_target: steps.len(),
        steps_to_target_per_seed: {
            let mut seeds: Vec<&RunResult> = mine.clone();
            seeds.sort_by_key(|r| r.seed);
            seeds.iter().map(|r| r.summary.steps_to_target).collect()
        },
        semantic_entropy_first_last: [
            mean_of(|s| s.semantic_entropy.0),
            mean_of(|s| s.semantic_entropy.1),
        ],
        final_anatomy,
    }
}

/// `method - reference` paired by seed.
pub fn paired_stats(results: &[RunResult], method: &str, reference: &str) -> PairedStats {
    let diff = |f: fn(&RunSummary) -> Option<f64>| {
        let d = paired_differences(
            &by_seed(results, method, f),
            &by_seed(results, reference, f),
        );
        estimate(&d, LEVEL)
    };
    let seeds = paired_differences(
        &by_seed(results, method, |s| Some(s.final_acc)),
        &by_seed(results, reference, |s| Some(s.final_acc)),
    )
    .len();
    PairedStats {
        method: method.to_string(),
        reference: reference.to_string(),
        seeds,
        final_val_accuracy: diff(|s| Some(s.final_acc)),
        best_val_accuracy: diff(|s| Some(s.best_acc)),
        auc: diff(|s| Some(s.auc)),
        steps_to_target: diff(|s| s.steps_to_target.map(|v| v as f64)),
    }
}

const W: usize = 24;

/// The printed table: per-method estimates, paired differences, and how to read them.
pub fn render_table(
    methods: &[MethodStats],
    paired: &[PairedStats],
    target: f64,
    val_size: usize,
) -> String {
    let mut t = String::new();
    let target_col = format!("steps to {target}");
    let _ = writeln!(
        t,
        "{:<10} {:>4}  {:<W$} {:<W$} {:<W$} {:<W$} {:>7}  semantic entropy",
        "method",
        "runs",
        "final val acc",
        "best val acc",
        "AUC (mean val acc)",
        target_col,
        "val SE",
    );
    for m in methods {
        let steps = match m.steps_to_target {
            Some(_) => format!(
                "{} {}/{}",
                format_estimate(m.steps_to_target.as_ref(), 1, false),
                m.reached_target,
                m.runs
            ),
            None => format!("not reached 0/{}", m.runs),
        };
        let _ = writeln!(
            t,
            "{:<10} {:>4}  {:<W$} {:<W$} {:<W$} {:<W$} {:>7.3}  {:.3} → {:.3}",
            m.method,
            m.runs,
            format_estimate(m.final_val_accuracy.as_ref(), 3, false),
            format_estimate(m.best_val_accuracy.as_ref(), 3, false),
            format_estimate(m.auc.as_ref(), 3, false),
            steps,
            m.val_sampling_se,
            m.semantic_entropy_first_last[0],
            m.semantic_entropy_first_last[1],
        );
    }
    if let Some(first) = paired.first() {
        let r = &first.reference;
        let _ = writeln!(
            t,
            "\npaired difference to {r} (method − {r}, seed by seed), mean [95% CI]"
        );
        let _ = writeln!(
            t,
            "{:<10} {:>5}  {:<W$} {:<W$} {:<W$} {:<W$}",
            "method",
            "seeds",
            "Δ final val acc",
            "Δ best val acc",
            "Δ AUC",
            format!("Δ {target_col}")
        );
        for p in paired {
            let _ = writeln!(
                t,
                "{:<10} {:>5}  {:<W$} {:<W$} {:<W$} {:<W$}",
                p.method,
                p.seeds,
                format_estimate(p.final_val_accuracy.as_ref(), 3, true),
                format_estimate(p.best_val_accuracy.as_ref(), 3, true),
                format_estimate(p.auc.as_ref(), 3, true),
                format_estimate(p.steps_to_target.as_ref(), 1, true),
            );
        }
    }
    let _ = write!(
        t,
        "\nmean [95% CI] over seeds: Student t, mean ± t(0.975, n−1)·s/√n; paired Δ: the same \
         over per-seed differences (runs of one seed share warm start, data order and \
         validation set).\n\
         steps to {target}: mean over the runs that reached it (reached/runs); Δ over the \
         seeds where both did.\n\
         val SE: sampling noise of one run's validation accuracy on {val_size} problems, \
         √(p(1−p)/n) at the method's mean final accuracy (already inside the seed CI).\n"
    );
    t.lines().map(str::trim_end).collect::<Vec<_>>().join("\n") + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(method: &str, seed: u64, final_acc: f64, steps: Option<u64>) -> RunResult {
        RunResult {
            method: method.into(),
            seed,
            summary: RunSummary {
                final_acc,
                best_acc: final_acc + 0.1,
                steps_to_target: steps,
                auc: final_acc - 0.1,
                semantic_entropy: (1.0, 2.0),
                final_anatomy: [("val_lab_planning_error_frac".to_string(), 0.2)].into(),
            },
        }
    }

    fn results() -> Vec<RunResult> {
        vec![
            run("grpo", 0, 0.50, Some(4)),
            run("grpo", 1, 0.60, None),
            run("grpo", 2, 0.40, Some(6)),
            run("hicra", 0, 0.55, Some(2)),
            run("hicra", 1, 0.65, Some(3)),
            run("hicra", 2, 0.45, Some(4)),
        ]
    }

    #[test]
    fn per_method_estimates() {
        let m = method_stats(&results(), "grpo", 100);
        assert_eq!(m.runs, 3);
        let f = m.final_val_accuracy.unwrap();
        assert!((f.mean - 0.5).abs() < 1e-12);
        // s = 0.1, t(0.975, 2) = 4.303: half-width 0.2484
        assert!((f.half_width.unwrap() - 0.2484).abs() < 1e-3);
        assert_eq!(m.reached_target, 2);
        assert_eq!(m.steps_to_target.unwrap().mean, 5.0);
        assert_eq!(m.steps_to_target_per_seed, vec![Some(4), None, Some(6)]);
        assert!((m.val_sampling_se - 0.05).abs() < 1e-12);
        assert!((m.final_anatomy["val_lab_planning_error_frac"].mean - 0.2).abs() < 1e-12);
    }

    #[test]
    fn paired_differences_remove_the_seed_effect() {
        let p = paired_stats(&results(), "hicra", "grpo");
        assert_eq!(p.seeds, 3);
        let d = p.final_val_accuracy.unwrap();
        assert!((d.mean - 0.05).abs() < 1e-12);
        // Every seed moves by +0.05: a zero-width interval, while each method's spans ±0.25.
        assert!(d.half_width.unwrap() < 1e-9);
        // Steps: only seeds 0 and 2 reached it under both: (2-4, 4-6).
        let s = p.steps_to_target.unwrap();
        assert_eq!((s.n, s.mean), (2, -2.0));
    }

    #[test]
    fn reference_is_grpo_or_the_first() {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(reference_method(&names(&["hicra", "grpo"])), Some("grpo"));
        assert_eq!(
            reference_method(&names(&["hicra", "placebo"])),
            Some("hicra")
        );
        assert_eq!(reference_method(&[]), None);
    }

    #[test]
    fn table_shows_intervals_paired_columns_and_noise() {
        let r = results();
        let methods = vec![
            method_stats(&r, "grpo", 100),
            method_stats(&r, "hicra", 100),
        ];
        let paired = vec![paired_stats(&r, "hicra", "grpo")];
        let t = render_table(&methods, &paired, 0.5, 100);
        assert!(t.contains("paired difference to grpo"), "{t}");
        assert!(t.contains("+0.050 [+0.050, +0.050]"), "{t}");
        assert!(t.contains("0.500 [0.252, 0.748]"), "{t}");
        assert!(t.contains("val SE") && t.contains("100 problems"), "{t}");
        assert!(t.contains("5.0 [") && t.contains("2/3"), "{t}");
    }
}
