//! `hicra compare` on two tiny runs writes its table, JSON and the overlaid report, and a
//! second invocation skips the finished runs.

use std::path::Path;
use std::process::Command;

use hicra_model::{Arch, tiny};

fn tiny_config(dir: &Path) -> std::path::PathBuf {
    let tok = tiny::test_tokenizer();
    let cfg = tiny::tiny_config(Arch::Llama, tok.vocab_size());
    let model = dir.join("model");
    tiny::write_tiny_model(&model, &cfg, &tok, None, 5).unwrap();
    let text = format!(
        r#"
[model]
path = "{}"
[task]
kind = "arithmetic"
[task.arith]
validation_size = 4
[rollout]
batch_size = 8
group_size = 4
max_new_tokens = 6
generation_batch = 8
[algorithm]
micro_batch = 8
chunk_positions = 16
[optim]
lr = 0.001
[trainer]
steps = 2
val_every = 1
val_size = 4
ckpt_every = 0
"#,
        model.display()
    );
    let p = dir.join("tiny.toml");
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn compare_writes_table_json_and_report_and_is_resumable() {
    let d = tempfile::tempdir().unwrap();
    let cfg = tiny_config(d.path());
    let out = d.path().join("cmp");
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_hicra"))
            .args(["compare", "--config"])
            .arg(&cfg)
            .args(["--methods", "grpo,hicra", "--seeds", "1", "--out"])
            .arg(&out)
            .output()
            .unwrap()
    };
    let o = run();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let table = std::fs::read_to_string(out.join("comparison.txt")).unwrap();
    assert!(table.contains("grpo") && table.contains("hicra"), "{table}");
    assert!(stdout.contains("final val acc"), "{stdout}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("comparison.json")).unwrap())
            .unwrap();
    assert_eq!(json["methods"].as_array().unwrap().len(), 2);
    assert!(out.join("report/report.html").is_file());
    let o = run();
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains("finished, skipped"));
}
