//! `hicra compare --seeds 8` on two methods with tiny runs: the table prints the 95 %
//! intervals, the paired differences to GRPO and the validation noise, `comparison.json`
//! holds them; a rerun skips finished runs and resumes an interrupted one from its
//! checkpoint to the same result; a changed config is refused naming the run directory.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn tiny_config(dir: &Path) -> std::path::PathBuf {
    let model = common::tiny_model(dir, 5);
    common::tiny_arith_config(
        dir,
        &model,
        6,
        8,
        "steps = 2\nval_every = 1\nval_size = 4\nckpt_every = 1\nkeep_checkpoints = 2",
    )
}

fn compare(config: &Path, out: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hicra"))
        .args(["compare", "--config"])
        .arg(config)
        .args(["--methods", "grpo,hicra", "--seeds", "8", "--out"])
        .arg(out)
        .args(extra)
        .output()
        .unwrap()
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn final_val_accuracy(run: &Path) -> f64 {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| v.get("val_accuracy")?.as_f64())
        .next_back()
        .unwrap()
}

#[test]
fn compare_over_eight_seeds_reports_intervals_and_paired_differences_and_resumes() {
    let d = tempfile::tempdir().unwrap();
    let cfg = tiny_config(d.path());
    let out = d.path().join("cmp");

    let o = compare(&cfg, &out, &[]);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stdout}\n{stderr}");
    // The printed table: intervals, the paired block against GRPO, the noise note.
    assert!(stdout.contains("final val acc"), "{stdout}");
    assert!(stdout.contains("paired difference to grpo"), "{stdout}");
    assert!(stdout.contains("Δ final val acc"), "{stdout}");
    assert!(
        stdout.contains("val SE") && stdout.contains("on 4 problems"),
        "{stdout}"
    );
    assert!(stdout.contains("ETA"), "{stdout}");
    let hicra_row = stdout
        .lines()
        .rfind(|l| l.starts_with("hicra "))
        .expect("a paired row for hicra");
    assert!(
        hicra_row.contains(" 8  ") && hicra_row.contains('['),
        "{hicra_row}"
    );
    let table = std::fs::read_to_string(out.join("comparison.txt")).unwrap();
    assert!(table.contains("paired difference to grpo"), "{table}");

    // comparison.json: per-method intervals over 8 seeds and the paired differences.
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("comparison.json")).unwrap())
            .unwrap();
    assert_eq!(json["reference"], "grpo");
    assert_eq!(json["val_size"], 4);
    let methods = json["methods"].as_array().unwrap();
    assert_eq!(methods.len(), 2);
    for m in methods {
        assert_eq!(m["runs"], 8);
        for key in ["final_val_accuracy", "best_val_accuracy", "auc"] {
            let e = &m[key];
            assert_eq!(e["n"], 8, "{key}: {e}");
            let ci = e["ci"].as_array().expect("an interval");
            let (lo, hi, mean) = (
                ci[0].as_f64().unwrap(),
                ci[1].as_f64().unwrap(),
                e["mean"].as_f64().unwrap(),
            );
            assert!(lo <= mean && mean <= hi, "{key}: {e}");
        }
        assert!(m["val_sampling_se"].as_f64().unwrap().is_finite());
        assert_eq!(m["steps_to_target_per_seed"].as_array().unwrap().len(), 8);
    }
    let paired = json["paired"].as_array().unwrap();
    assert_eq!(paired.len(), 1);
    assert_eq!(paired[0]["method"], "hicra");
    assert_eq!(paired[0]["seeds"], 8);
    let delta = &paired[0]["final_val_accuracy"];
    assert_eq!(delta["n"], 8);
    // The paired mean is the difference of the two methods' means (same seeds).
    let mean = |i: usize| methods[i]["final_val_accuracy"]["mean"].as_f64().unwrap();
    assert!((delta["mean"].as_f64().unwrap() - (mean(1) - mean(0))).abs() < 1e-9);
    assert_eq!(json["runs"].as_array().unwrap().len(), 16);
    assert!(out.join("report/report.html").is_file());
    assert!(out.join("logs/grpo-seed3.log").is_file());

    // Interrupt one run after its first step: its final checkpoint disappears.
    let run = out.join("grpo-seed3");
    let before = final_val_accuracy(&run);
    std::fs::remove_dir_all(run.join("checkpoints/step-2")).unwrap();
    let o = compare(&cfg, &out, &[]);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("grpo-seed3: resuming after step"),
        "{stdout}"
    );
    assert_eq!(stdout.matches("finished, skipped").count(), 15, "{stdout}");
    assert_eq!(final_val_accuracy(&run), before);

    // Another step count does not silently reuse the runs.
    let o = compare(&cfg, &out, &["--set", "trainer.steps=3"]);
    let (stdout, stderr) = text(&o);
    assert!(!o.status.success(), "{stdout}");
    assert!(
        stderr.contains("grpo-seed0") && stderr.contains("another configuration"),
        "{stderr}"
    );
}
