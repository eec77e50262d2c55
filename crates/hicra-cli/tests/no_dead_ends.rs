//! No crash and no dead end: sizes that cannot work are refused before anything runs, a run
//! directory without a checkpoint can be resumed or started over, an over-long prompt is
//! named by file and line (and skipped by `eval`), a closed pipe ends `generate` quietly,
//! negative numbers are values, and errors name the key, the path or the line.

mod common;

use std::path::Path;

use common::{chat_model, hicra, ok, refused, run, s, write_problems};
use serde_json::Value;

/// A data-set training config on `train` (validation held out of it unless `val` is given).
fn dataset_config(
    dir: &Path,
    model: &str,
    train: &Path,
    val: Option<&Path>,
    extra: &str,
) -> String {
    let val = val.map_or(String::new(), |v| {
        format!("val_path = \"{}\"\n", v.display())
    });
    let text = format!(
        "[model]\npath = \"{model}\"\n[task]\nkind = \"dataset\"\ntrain_path = \"{}\"\n{val}\
         {extra}\n[rollout]\nbatch_size = 4\ngroup_size = 2\nmax_new_tokens = 4\n\
         generation_batch = 4\n[algorithm]\nchunk_positions = 16\n[trainer]\nsteps = 1\n\
         val_size = 2\n",
        train.display()
    );
    let path = dir.join("ds.toml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn sizes_that_cannot_work_are_refused_before_anything_runs() {
    let d = tempfile::tempdir().unwrap();
    let model = common::tiny_model(d.path(), 2);
    let train = d.path().join("train.jsonl");
    write_problems(&train, 5);
    let out = d.path().join("run");
    for (holdout, why) in [
        (5, "leaves none to train on"),
        (9, "leaves none to train on"),
        (0, "no validation"),
    ] {
        let cfg = dataset_config(
            d.path(),
            &model,
            &train,
            None,
            &format!("val_holdout = {holdout}"),
        );
        let err = refused(run(&["train", "--config", &cfg, "--out", s(&out)]));
        assert!(
            err.contains("task.val_holdout") && err.contains(why),
            "{err}"
        );
        assert!(!out.exists(), "refused before the run directory was made");
    }
    let cfg = dataset_config(d.path(), &model, &train, None, "val_holdout = 2");
    ok(run(&["train", "--config", &cfg, "--out", s(&out)]));
}

#[test]
fn a_run_without_a_checkpoint_resumes_from_step_zero_or_starts_over() {
    let d = tempfile::tempdir().unwrap();
    let model = common::tiny_model(d.path(), 3);
    let cfg = common::tiny_arith_config(d.path(), &model, 4, 8, "steps = 2\nval_size = 2");
    let out = d.path().join("run");
    // The first checkpoint fails (the disk fills: here, a file size limit below the
    // weights' size); the error names the file.
    let o = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "trap '' XFSZ; ulimit -f 40; exec \"$0\" train --config {} --out {}",
            cfg.display(),
            out.display()
        ))
        .arg(env!("CARGO_BIN_EXE_hicra"))
        .output()
        .unwrap();
    let err = refused(o);
    assert!(
        err.contains(&format!("{}", out.join("checkpoints").display())) && err.contains("large"),
        "{err}"
    );
    assert!(out.join("metrics.jsonl").is_file());
    assert!(
        common::temporaries(&out).is_empty(),
        "the failed checkpoint left nothing"
    );
    // --resume starts it from step 0 with its recorded config and finishes it.
    let err = ok(run(&["train", "--resume", s(&out)]));
    assert!(err.contains("no checkpoint yet"), "{err}");
    assert!(out.join("checkpoints/step-2/manifest.json").is_file());
    let steps: Vec<u64> = std::fs::read_to_string(out.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["step"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(
        steps,
        [0, 1, 2, 2],
        "one log of one run: val 0, step 1, step 2, val 2"
    );
    // A fresh start into a run without a checkpoint starts it over; with a checkpoint it is
    // refused with the way to resume or overwrite.
    std::fs::remove_dir_all(out.join("checkpoints")).unwrap();
    let err = ok(run(&["train", "--config", s(&cfg), "--out", s(&out)]));
    assert!(err.contains("starting it over"), "{err}");
    let err = refused(run(&["train", "--config", s(&cfg), "--out", s(&out)]));
    assert!(err.contains("--resume") && err.contains("--force"), "{err}");
    ok(run(&[
        "train",
        "--config",
        s(&cfg),
        "--out",
        s(&out),
        "--force",
    ]));
}

fn long_question() -> String {
    "Count the apples in the basket again and again and again. ".repeat(30)
}

#[test]
fn an_over_long_prompt_is_named_by_file_and_line() {
    let d = tempfile::tempdir().unwrap();
    let model = d.path().join("m");
    chat_model(&model, 3);
    let data = d.path().join("bench.jsonl");
    write_problems(&data, 3);
    let text = std::fs::read_to_string(&data).unwrap();
    let long = format!(
        "{{\"question\": \"{}\", \"answer\": \"#### 1\"}}\n",
        long_question()
    );
    std::fs::write(&data, format!("{text}{long}")).unwrap();
    let line = format!("{}:4", data.display());
    // eval skips it and records it.
    let out = d.path().join("out");
    let args = [
        "eval",
        "--model",
        s(&model),
        "--dataset",
        s(&data),
        "--max-new-tokens",
        "4",
    ];
    let mut with_out = args.to_vec();
    with_out.extend(["--out", s(&out)]);
    ok(run(&with_out));
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["n"], 3);
    assert_eq!(summary["skipped"][0]["location"], line.as_str());
    assert!(
        summary["skipped"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("context")
    );
    // ... or stops at it with --on-error fail.
    let out2 = d.path().join("out2");
    let mut fail = args.to_vec();
    fail.extend(["--on-error", "fail", "--out", s(&out2)]);
    let err = refused(run(&fail));
    assert!(err.contains(&line), "{err}");
    // Training names it before it starts.
    let cfg = dataset_config(d.path(), s(&model), &data, Some(&data), "");
    let err = refused(run(&[
        "train",
        "--config",
        &cfg,
        "--out",
        s(&d.path().join("run")),
    ]));
    assert!(
        err.contains(&line) && err.contains("rollout.max_new_tokens"),
        "{err}"
    );
}

#[test]
fn a_closed_pipe_ends_generate_quietly_and_negative_numbers_are_values() {
    let d = tempfile::tempdir().unwrap();
    let model = d.path().join("m");
    chat_model(&model, 3);
    let mut child = hicra()
        .args([
            "generate",
            "--model",
            s(&model),
            "--prompt",
            "Hello",
            "--max-new-tokens",
            "64",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // the reader (`| head`) is gone
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("panicked"), "{err}");
    use std::os::unix::process::ExitStatusExt;
    assert!(
        o.status.success() || o.status.signal() == Some(13),
        "ended by SIGPIPE or normally, not a panic: {:?} {err}",
        o.status
    );
    for flag in ["--temperature", "--top-p"] {
        let err = refused(run(&[
            "generate",
            "--model",
            s(&model),
            "--prompt",
            "Hi",
            flag,
            "-1",
        ]));
        assert!(!err.contains("unexpected argument"), "{err}");
    }
}

#[test]
fn errors_name_the_key_and_reports_read_a_cut_off_last_line() {
    let d = tempfile::tempdir().unwrap();
    let model = common::tiny_model(d.path(), 4);
    let cfg = common::tiny_arith_config(d.path(), &model, 4, 8, "steps = 1\nval_size = 2");
    let err = refused(run(&[
        "train",
        "--config",
        s(&cfg),
        "--set",
        "trainer.steps=-1",
    ]));
    assert!(err.contains("`trainer.steps`"), "{err}");
    std::fs::write(d.path().join("neg.toml"), "[rollout]\ntop_k = -2\n").unwrap();
    let err = refused(run(&["train", "--config", s(&d.path().join("neg.toml"))]));
    assert!(err.contains("`rollout.top_k`"), "{err}");
    // compare's target is an accuracy.
    for target in ["5", "-0.5"] {
        let err = refused(run(&["compare", "--config", s(&cfg), "--target", target]));
        assert!(err.contains("--target"), "{err}");
    }
    // report reads a run whose last metrics line was cut short, with a warning.
    let out = d.path().join("run");
    ok(run(&["train", "--config", s(&cfg), "--out", s(&out)]));
    let metrics = out.join("metrics.jsonl");
    let mut text = std::fs::read_to_string(&metrics).unwrap();
    text.push_str("{\"step\": 2, \"val_acc");
    std::fs::write(&metrics, text).unwrap();
    let err = ok(run(&[
        "report",
        s(&out),
        "--out",
        s(&d.path().join("report")),
    ]));
    assert!(err.contains("cut short"), "{err}");
}
