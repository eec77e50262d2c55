//! `hicra train` end to end on a tiny random model: a short run writes its run directory,
//! `--resume` continues it, and bad configs are rejected with the key named.

mod common;

use std::path::Path;
use std::process::Command;

fn hicra() -> Command {
    Command::new(env!("CARGO_BIN_EXE_hicra"))
}

fn tiny_model(dir: &Path) -> String {
    common::tiny_model(dir, 11)
}

fn write_config(dir: &Path, model: &str, steps: usize) -> std::path::PathBuf {
    let trainer = format!(
        "steps = {steps}\nval_every = 1\nval_size = 4\nckpt_every = 1\nkeep_checkpoints = 0"
    );
    common::tiny_arith_config(dir, model, 6, 4, &trainer)
}

#[test]
fn train_writes_a_run_directory_and_resumes() {
    let d = tempfile::tempdir().unwrap();
    let model = tiny_model(d.path());
    let cfg = write_config(d.path(), &model, 2);
    let out = d.path().join("run");
    let o = hicra()
        .args(["train", "--config"])
        .arg(&cfg)
        .args(["--set", "trainer.seed=5", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(stdout.contains("validation accuracy before"), "{stdout}");
    assert!(stdout.contains(&out.display().to_string()), "{stdout}");
    let resolved = std::fs::read_to_string(out.join("config.toml")).unwrap();
    assert!(resolved.contains("seed = 5"), "{resolved}");
    for p in [
        "metrics.jsonl",
        "checkpoints/step-2/manifest.json",
        "samples/step-2.jsonl",
        "tb",
    ] {
        assert!(out.join(p).exists(), "{p} missing");
    }
    // extend the finished run by one step through --resume on an edited config
    let resolved = resolved.replace("\nsteps = 2\n", "\nsteps = 3\n");
    std::fs::write(out.join("config.toml"), resolved).unwrap();
    let o = hicra()
        .args(["train", "--resume"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.join("checkpoints/step-3/manifest.json").exists());
}

#[test]
fn unknown_keys_and_impossible_batches_are_named() {
    let d = tempfile::tempdir().unwrap();
    let cfg = write_config(d.path(), "unused", 1);
    let o = hicra()
        .args(["train", "--config"])
        .arg(&cfg)
        .args(["--set", "rollout.grup_size=3"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("rollout.grup_size"), "{err}");
    let o = hicra()
        .args(["train", "--config"])
        .arg(&cfg)
        .args(["--set", "rollout.group_size=3"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("rollout.batch_size"), "{err}");
}
