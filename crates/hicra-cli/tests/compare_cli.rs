//! `hicra compare` on two tiny runs writes its table, JSON and the overlaid report, and a
//! second invocation skips the finished runs.

mod common;

use std::process::Command;

fn tiny_config(dir: &std::path::Path) -> std::path::PathBuf {
    let model = common::tiny_model(dir, 5);
    common::tiny_arith_config(
        dir,
        &model,
        6,
        8,
        "steps = 2\nval_every = 1\nval_size = 4\nckpt_every = 0",
    )
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
