//! `hicra sft` on a tiny model and a JSONL of prompt/completion pairs: the loss falls, the
//! model is written, and a malformed line is reported by file and line.

use std::path::Path;
use std::process::Command;

use hicra_model::Arch;
use hicra_model::io::tiny;

fn setup(dir: &Path, data: &str) -> std::path::PathBuf {
    let tok = tiny::test_tokenizer();
    let cfg = tiny::tiny_config(Arch::Llama, tok.vocab_size());
    let model = dir.join("model");
    tiny::write_tiny_model(&model, &cfg, &tok, None, 9).unwrap();
    let data_path = dir.join("sft.jsonl");
    std::fs::write(&data_path, data).unwrap();
    let text = format!(
        "[model]\npath = \"{}\"\n[sft]\ndata = \"{}\"\nsteps = 6\nbatch_size = 2\nlr = 0.01\nwarmup_steps = 0\nlog_every = 1\n",
        model.display(),
        data_path.display()
    );
    let p = dir.join("sft.toml");
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn sft_lowers_the_loss_and_writes_the_model() {
    let d = tempfile::tempdir().unwrap();
    let data = "{\"prompt\": \"The answer is\", \"completion\": \" 7. So the final answer is 7.\"}\n\
                {\"prompt\": \"Hello,\", \"completion\": \" world! The quick brown fox.\"}\n";
    let cfg = setup(d.path(), data);
    let out = d.path().join("out");
    let o = Command::new(env!("CARGO_BIN_EXE_hicra"))
        .args(["sft", "--config"])
        .arg(&cfg)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.join("model/config.json").is_file());
    let losses: Vec<f64> = std::fs::read_to_string(out.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["sft_loss"]
                .as_f64()
                .unwrap()
        })
        .collect();
    assert_eq!(losses.len(), 6);
    assert!(losses[5] < losses[0] * 0.8, "loss did not fall: {losses:?}");
}

#[test]
fn malformed_sft_line_is_named() {
    let d = tempfile::tempdir().unwrap();
    let cfg = setup(
        d.path(),
        "{\"prompt\": \"a\", \"completion\": \"b\"}\n{\"prompt\": 3}\n",
    );
    let o = Command::new(env!("CARGO_BIN_EXE_hicra"))
        .args(["sft", "--config"])
        .arg(&cfg)
        .arg("--out")
        .arg(d.path().join("out"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("sft.jsonl line 2"), "{err}");
}
