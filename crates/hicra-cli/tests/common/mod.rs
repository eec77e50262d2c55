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

/// Writes a tiny random Llama model with a ChatML chat template (HF layout, built-in test
/// tokenizer) to `dir`.
pub fn chat_model(dir: &Path, seed: u64) {
    let tok = tiny::test_tokenizer();
    let cfg = tiny::tiny_config(Arch::Llama, tok.vocab_size());
    tiny::write_tiny_model(dir, &cfg, &tok, Some(tiny::CHATML_TEMPLATE), seed).unwrap();
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
    train_tiny(
        dir,
        "steps = 2\nval_every = 1\nval_size = 4\nckpt_every = 0\nsamples_every = 1",
    )
}

/// Trains a tiny generated model on arithmetic problems with the given `[trainer]` lines
/// (and any tables after them) into `dir/run` and returns that folder.
pub fn train_tiny(dir: &Path, trainer: &str) -> PathBuf {
    let model = tiny_model(dir, 11);
    let config = tiny_arith_config(dir, &model, 8, 8, trainer);
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

/// The `hicra` binary under test.
pub fn hicra() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_hicra"))
}

/// Runs `hicra` with `args` and returns its output.
pub fn run(args: &[&str]) -> std::process::Output {
    hicra().args(args).output().unwrap()
}

/// Asserts that a run succeeded; returns its stderr.
pub fn ok(out: std::process::Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "stdout: {}\nstderr: {stderr}",
        String::from_utf8_lossy(&out.stdout)
    );
    stderr
}

/// Asserts that a run failed cleanly (an error, exit status 1, no panic); returns its stderr.
pub fn refused(out: std::process::Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

/// Writes `n` GSM8K-style problems (`question`, `answer` with `#### N`) to `path`.
pub fn write_problems(path: &Path, n: usize) {
    let lines: String = (0..n)
        .map(|i| {
            format!(
                "{{\"question\": \"What is {i} plus {}?\", \"answer\": \"#### {}\"}}\n",
                i + 1,
                2 * i + 1
            )
        })
        .collect();
    std::fs::write(path, lines).unwrap();
}

/// The path as a `&str`.
pub fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Every file under `dir` (relative path → bytes), for byte-for-byte comparisons.
pub fn tree(dir: &Path) -> std::collections::BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut std::collections::BTreeMap<PathBuf, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path.strip_prefix(root).unwrap().to_path_buf();
                out.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    let mut out = std::collections::BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// The names under `dir` (recursively) that are temporaries of an interrupted write.
pub fn temporaries(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if hicra_model::io::atomic::temp_owner(path.file_name().unwrap()).is_some() {
                found.push(path.clone());
            }
            if path.is_dir() {
                stack.push(path);
            }
        }
    }
    found
}
