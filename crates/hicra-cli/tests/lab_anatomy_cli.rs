//! A short lab run logs the failure anatomy for rollouts and validation, and its error shares
//! account for every wrong answer: planning + execution + format = 1 − accuracy.

use std::process::Command;

use serde_json::Value;

#[test]
fn a_lab_run_logs_the_anatomy_and_its_shares_sum_to_the_error_rate() {
    let d = tempfile::tempdir().unwrap();
    let run = d.path().join("run");
    // A small warm start (cached under this test's own HICRA_HOME) keeps the test quick; a
    // weak model makes errors of every kind likely.
    let sets = [
        "trainer.steps=5",
        "trainer.val_every=5",
        "trainer.val_size=24",
        "trainer.ckpt_every=0",
        "rollout.batch_size=16",
        "rollout.group_size=4",
        "rollout.generation_batch=16",
        "sft.steps=30",
        "sft.examples=400",
        "sft.batch_size=16",
        "lab_model.hidden_size=64",
        "lab_model.layers=2",
        "lab_model.intermediate_size=128",
        "lab_model.corpus_size=400",
    ];
    let mut args = vec![
        "train".to_string(),
        "--out".into(),
        run.display().to_string(),
    ];
    for s in sets {
        args.push("--set".into());
        args.push(s.into());
    }
    let out = Command::new(env!("CARGO_BIN_EXE_hicra"))
        .args(&args)
        .env("HICRA_HOME", d.path().join("home"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let metrics: Vec<Value> = std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let shares = ["planning", "execution", "format"];
    let fields = |prefix: &str| -> Vec<String> {
        shares
            .iter()
            .map(|s| format!("{prefix}lab_{s}_error_frac"))
            .chain([
                format!("{prefix}lab_strategy_choice_acc"),
                format!("{prefix}lab_backtrack_rate"),
            ])
            .collect()
    };
    let check = |m: &Value, prefix: &str, accuracy: &str| {
        for f in fields(prefix) {
            let v = m[&f]
                .as_f64()
                .unwrap_or_else(|| panic!("{f} missing in {m}"));
            assert!((0.0..=1.0).contains(&v), "{f} = {v}");
        }
        let errors: f64 = shares
            .iter()
            .map(|s| m[format!("{prefix}lab_{s}_error_frac")].as_f64().unwrap())
            .sum();
        let acc = m[accuracy].as_f64().unwrap();
        assert!(
            (errors - (1.0 - acc)).abs() < 1e-9,
            "{prefix}: shares sum to {errors}, accuracy {acc}"
        );
        errors
    };
    let steps: Vec<&Value> = metrics
        .iter()
        .filter(|m| m.get("reward_mean").is_some())
        .collect();
    assert_eq!(steps.len(), 5);
    let rollout_errors: f64 = steps.iter().map(|m| check(m, "", "accuracy")).sum();
    let vals: Vec<&Value> = metrics
        .iter()
        .filter(|m| m.get("val_accuracy").is_some())
        .collect();
    assert_eq!(vals.len(), 2, "validation before and after");
    for v in vals {
        check(v, "val_", "val_accuracy");
    }
    assert!(
        rollout_errors > 0.0,
        "the weak warm start should make errors"
    );
}
