//! Shared fixtures of the CLI tests: a tiny random model and a short RL config on it.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use hicra_model::Arch;
use hicra_model::io::tiny;

/// Writes a tiny random Llama model (HF layout, built-in test tokenizer) to `dir/model` and
/// returns its path.
pub fn tiny_model(dir: &Path, seed: u64) -> String {
    let tok = tiny::test_tokenizer();
    let cfg = tiny::tiny_config(Arch::Llama, tok.vocab_size());
    let path = dir.join("model");
    tiny::write_tiny_model(&path, &cfg, &tok, None, seed).unwrap();
    path.display().to_string()
}

/// Writes `dir/tiny.toml`: RL of `model` on arithmetic problems with 2 prompts × 4 samples,
/// `max_new_tokens` new tokens, `micro_batch` sequences per backward, and the given
/// `[trainer]` section lines.
pub fn tiny_arith_config(
    dir: &Path,
    model: &str,
    max_new_tokens: usize,
    micro_batch: usize,
    trainer: &str,
) -> PathBuf {
    let text = format!(
        r#"
[model]
path = "{model}"
[task]
kind = "arithmetic"
[task.arith]
validation_size = 4
[rollout]
batch_size = 8
group_size = 4
max_new_tokens = {max_new_tokens}
generation_batch = 8
[algorithm]
micro_batch = {micro_batch}
chunk_positions = 16
[optim]
lr = 0.001
[trainer]
{trainer}
"#
    );
    let path = dir.join("tiny.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Trains a two-step RL run of a tiny generated model on arithmetic problems (validation and
/// samples every step, no checkpoints) into `dir/run` and returns that folder.
pub fn train_tiny_run(dir: &Path) -> PathBuf {
    let model = tiny_model(dir, 11);
    let config = tiny_arith_config(
        dir,
        &model,
        8,
        8,
        "steps = 2\nval_every = 1\nval_size = 4\nckpt_every = 0\nsamples_every = 1",
    );
    let run = dir.join("run");
    let train = std::process::Command::new(env!("CARGO_BIN_EXE_hicra"))
        .args(["train", "--config"])
        .arg(&config)
        .arg("--out")
        .arg(&run)
        .output()
        .unwrap();
    assert!(
        train.status.success(),
        "{}",
        String::from_utf8_lossy(&train.stderr)
    );
    run
}
