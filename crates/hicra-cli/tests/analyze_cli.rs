//! `hicra analyze` on runs as verl, TRL and hicra write them and on generic JSONL: the rows
//! of `analysis.json` against values the test computes from the same files, the hicra run's
//! text metrics against its trainer's `metrics.jsonl`, and bad input (an unknown format, a
//! malformed line, `--strict`, an existing output).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn hicra() -> Command {
    Command::new(env!("CARGO_BIN_EXE_hicra"))
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../hicra-rl/tests/fixtures/analysis")
}

fn analyze(args: &[&Path], extra: &[&str], out: &Path) -> Output {
    hicra()
        .arg("analyze")
        .args(args)
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .unwrap()
}

/// Runs `hicra analyze` and returns `analysis.json` and stderr.
fn analysis_of(args: &[&Path], extra: &[&str], out: &Path) -> (Value, String) {
    let output = analyze(args, extra, out);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{stderr}");
    let text = std::fs::read_to_string(out.join("analysis.json")).unwrap();
    (serde_json::from_str(&text).unwrap(), stderr)
}

fn row<'a>(run: &'a Value, split: &str, step: u64) -> &'a Value {
    run[split]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["step"] == step)
        .unwrap_or_else(|| panic!("no {split} row for step {step}: {run}"))
}

fn steps(run: &Value, split: &str) -> Vec<u64> {
    run[split]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["step"].as_u64().unwrap())
        .collect()
}

/// The complete JSON lines of a file (an unfinished last line left out).
fn json_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let v: Vec<f64> = values.collect();
    v.iter().sum::<f64>() / v.len() as f64
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * b.abs().max(1.0)
}

#[test]
fn verl_dumps_as_verl_writes_them() {
    let out = tempfile::tempdir().unwrap();
    let verl = fixtures().join("verl");
    let (doc, stderr) = analysis_of(&[&verl], &[], out.path());
    let run = &doc["runs"][0];
    assert_eq!(run["format"], "verl");
    assert_eq!(steps(run, "train"), [1, 2, 3]);
    assert_eq!(steps(run, "val"), [2]);
    assert_eq!(run["units"]["response_length"], "words");

    for step in [1u64, 2] {
        let records = json_lines(&verl.join(format!("rollout/{step}.jsonl")));
        let r = row(run, "train", step);
        assert_eq!(r["n"], records.len());
        assert_eq!(r["groups"], 2, "two prompts per step");
        let reward = mean(records.iter().map(|x| x["score"].as_f64().unwrap()));
        assert!(close(r["reward_mean"].as_f64().unwrap(), reward), "{r}");
        // The run's own verdict (`acc`), not guessed from the score.
        let acc = mean(
            records
                .iter()
                .map(|x| f64::from(u8::from(x["acc"] == true))),
        );
        assert!(close(r["accuracy"].as_f64().unwrap(), acc), "{r}");
        let words = mean(
            records
                .iter()
                .map(|x| x["output"].as_str().unwrap().split_whitespace().count() as f64),
        );
        assert!(close(r["response_length_mean"].as_f64().unwrap(), words));
        // pass@1 over equal groups is the accuracy; groups of 4 give k = 1, 2, 4.
        let pass = r["pass_at_k"].as_object().unwrap();
        assert_eq!(pass.keys().collect::<Vec<_>>(), ["1", "2", "4"]);
        assert!(close(pass["1"].as_f64().unwrap(), acc));
        assert!(r["planning_token_frac"].as_f64().unwrap() > 0.0);
        assert!(r["semantic_entropy"].as_f64().unwrap() > 0.0);
    }
    // 3.jsonl ends inside its eighth record: seven are read and the eighth is named.
    assert_eq!(row(run, "train", 3)["n"], 7);
    let problems = run["problems"].to_string();
    assert!(
        problems.contains("3.jsonl:8") && problems.contains("unfinished last line"),
        "{problems}"
    );
    assert!(stderr.contains("3.jsonl:8"), "{stderr}");
    assert_eq!(run["bad_records"], 1);

    // Validation: groups from the prompt part of the v1 uids, scored by `reward`.
    let val = json_lines(&verl.join("val/2.jsonl"));
    let v = row(run, "val", 2);
    assert_eq!(v["n"], val.len());
    assert_eq!(v["groups"], 2);
    let reward = mean(val.iter().map(|x| x["score"].as_f64().unwrap()));
    assert!(close(v["reward_mean"].as_f64().unwrap(), reward));
    assert!(out.path().join("report.html").is_file());
}

#[test]
fn strict_stops_at_the_first_bad_record() {
    let out = tempfile::tempdir().unwrap();
    let output = analyze(&[&fixtures().join("verl")], &["--strict"], out.path());
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("3.jsonl:8") && stderr.contains("--strict"),
        "{stderr}"
    );
    assert!(!out.path().join("analysis.json").exists());
}

/// The rows of a Parquet file as JSON objects.
fn parquet(path: &Path) -> Vec<Value> {
    let (_, rows) = hicra_tasks::parquet_rows(path).unwrap();
    rows.map(Result::unwrap).collect()
}

#[test]
fn trl_conversational_completion_logs() {
    let out = tempfile::tempdir().unwrap();
    let trl = fixtures().join("trl");
    let (doc, _) = analysis_of(&[&trl], &[], out.path());
    let run = &doc["runs"][0];
    assert_eq!(run["format"], "trl");
    assert_eq!(steps(run, "train"), [1, 2]);
    assert!(run["val"].as_array().unwrap().is_empty());
    for step in [1u64, 2] {
        let rows = parquet(&trl.join(format!("completions/completions_{step:05}.parquet")));
        assert!(
            rows[0]["prompt"].is_array(),
            "conversational prompts expected"
        );
        let r = row(run, "train", step);
        assert_eq!(r["n"], rows.len());
        assert_eq!(r["groups"], 2, "groups by the chat prompt");
        // The reward is the sum of the reward-function columns, not the advantage.
        let reward = mean(rows.iter().map(|x| {
            x["accuracy_reward"].as_f64().unwrap() + x["format_reward"].as_f64().unwrap()
        }));
        assert!(close(r["reward_mean"].as_f64().unwrap(), reward), "{r}");
        // No column is a verdict: accuracy is null, never read off the reward.
        assert!(r["accuracy"].is_null(), "{r}");
        assert!(r["pass_at_k"].as_object().unwrap().is_empty());
        // Lengths count the completion message's words.
        let words = mean(rows.iter().map(|x| {
            x["completion"][0]["content"]
                .as_str()
                .unwrap()
                .split_whitespace()
                .count() as f64
        }));
        assert!(close(r["response_length_mean"].as_f64().unwrap(), words));
    }
    // With --regrade, hicra's verifier grades against the `answer` column; the fixture's
    // accuracy_reward is 1 exactly where the boxed answer equals the gold.
    let out2 = tempfile::tempdir().unwrap();
    let (doc, _) = analysis_of(&[&trl], &["--regrade"], out2.path());
    let rows = parquet(&trl.join("completions/completions_00001.parquet"));
    let expected = mean(rows.iter().map(|x| x["accuracy_reward"].as_f64().unwrap()));
    let r = row(&doc["runs"][0], "train", 1);
    assert!(close(r["accuracy"].as_f64().unwrap(), expected), "{r}");
    assert_eq!(r["pass_at_k"].as_object().unwrap().len(), 3);
}

#[test]
fn trl_reward_sums_the_reward_functions_its_trainer_state_names() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("trl");
    std::fs::create_dir_all(run.join("completions")).unwrap();
    for step in [1u64, 2] {
        let name = format!("completions/completions_{step:05}.parquet");
        std::fs::copy(fixtures().join("trl").join(&name), run.join(&name)).unwrap();
    }
    // TRL logs `rewards/NAME/mean` for each reward function: here only accuracy_reward is one,
    // and format_reward is an extra numeric column (a reward function's `log_extra`).
    std::fs::write(
        run.join("trainer_state.json"),
        r#"{"global_step": 2, "log_history": [
            {"step": 1, "reward": 0.5, "rewards/accuracy_reward/mean": 0.5, "loss": 0.0},
            {"step": 2, "reward": 0.25, "rewards/accuracy_reward/mean": 0.25, "loss": 0.0}]}"#,
    )
    .unwrap();
    let (doc, _) = analysis_of(&[&run], &[], &dir.path().join("out"));
    for step in [1u64, 2] {
        let rows = parquet(&run.join(format!("completions/completions_{step:05}.parquet")));
        let reward = mean(rows.iter().map(|x| x["accuracy_reward"].as_f64().unwrap()));
        let r = row(&doc["runs"][0], "train", step);
        assert!(close(r["reward_mean"].as_f64().unwrap(), reward), "{r}");
    }
}

#[test]
fn generic_jsonl_names_a_malformed_line_and_reads_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("run.jsonl");
    let lines = [
        r#"{"step": 0, "prompt": "p1", "response": "Wait, 2 + 2 = 4", "reward": 1.0, "correct": true}"#,
        r#"{"step": 0, "prompt": "p1", "response": 7, "reward": 0.0}"#,
        r#"{"step": 0, "prompt": [{"role": "user", "content": "p2"}], "response": "Let me see: 5", "reward": 0.0, "correct": false}"#,
        r#"not json"#,
        r#"{"step": 1, "prompt": "p1", "response": "so 4", "reward": 1.0, "correct": true, "split": "val"}"#,
    ];
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let out = dir.path().join("out");
    let (doc, stderr) = analysis_of(&[&file], &[], &out);
    let run = &doc["runs"][0];
    assert_eq!(run["format"], "jsonl");
    assert_eq!(run["bad_records"], 2);
    let at = |n: usize| format!("{}:{n}", file.display());
    assert!(
        stderr.contains(&at(2)) && stderr.contains("response"),
        "{stderr}"
    );
    assert!(stderr.contains(&at(4)), "{stderr}");
    let r = row(run, "train", 0);
    assert_eq!(r["n"], 2);
    assert_eq!(r["groups"], 2);
    assert!(close(r["accuracy"].as_f64().unwrap(), 0.5));
    assert_eq!(row(run, "val", 1)["n"], 1);

    let strict = analyze(&[&file], &["--strict"], &dir.path().join("strict"));
    assert!(!strict.status.success());
    assert!(String::from_utf8_lossy(&strict.stderr).contains(&at(2)));
}

#[test]
fn an_unknown_format_lists_every_format_tried() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), "hello\n").unwrap();
    let output = analyze(&[dir.path()], &[], &dir.path().join("out"));
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    for format in ["hicra:", "verl:", "trl:", "jsonl:"] {
        assert!(stderr.contains(format), "{format} missing: {stderr}");
    }
    // A forced format says why that one does not fit.
    let output = analyze(&[dir.path()], &["--format", "trl"], &dir.path().join("out"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("completions_NNNNN.parquet"), "{stderr}");
}

#[test]
fn an_existing_analysis_is_not_overwritten_without_force() {
    let out = tempfile::tempdir().unwrap();
    std::fs::write(out.path().join("analysis.json"), "mine").unwrap();
    let verl = fixtures().join("verl");
    let output = analyze(&[&verl], &[], out.path());
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--force"));
    assert_eq!(
        std::fs::read_to_string(out.path().join("analysis.json")).unwrap(),
        "mine"
    );
    let output = analyze(&[&verl], &["--force"], out.path());
    assert!(output.status.success());
    assert!(
        std::fs::read_to_string(out.path().join("analysis.json"))
            .unwrap()
            .contains("\"verl\"")
    );
}

/// The numbers of `metrics.jsonl` lines that carry `key`, by step.
fn logged(metrics: &[Value], key: &str) -> Vec<(u64, f64)> {
    metrics
        .iter()
        .filter_map(|l| Some((l["step"].as_u64()?, l.get(key)?.as_f64()?)))
        .collect()
}

#[test]
fn a_hicra_runs_text_metrics_equal_its_trainers() {
    let root = tempfile::tempdir().unwrap();
    let run = common::train_tiny_run(root.path());
    let metrics = json_lines(&run.join("metrics.jsonl"));
    let (doc, _) = analysis_of(&[&run], &[], &root.path().join("analysis"));
    let a = &doc["runs"][0];
    assert_eq!(a["format"], "hicra");
    let pairs = [
        ("reward_mean", "train", "reward_mean"),
        ("accuracy", "train", "accuracy"),
        ("response_length_mean", "train", "response_length_mean"),
        ("planning_token_frac", "train", "planning_token_frac"),
        ("semantic_entropy", "train", "semantic_entropy"),
        ("conditional_entropy", "train", "conditional_entropy"),
        ("zero_var_group_frac", "train", "all_equal_group_frac"),
        ("val_accuracy", "val", "accuracy"),
        ("val_length", "val", "response_length_mean"),
    ];
    for (logged_name, split, key) in pairs {
        let values = logged(&metrics, logged_name);
        assert!(!values.is_empty(), "the trainer logged no {logged_name}");
        for (step, value) in values {
            let ours = row(a, split, step)[key].as_f64();
            assert_eq!(
                ours,
                Some(value),
                "{logged_name} at step {step}: analysis {ours:?}, trainer {value}"
            );
        }
    }
}

#[test]
fn checkpoints_that_match_no_step_or_cannot_load_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let checkpoints = dir.path().join("ckpt");
    // checkpoint-1 sampled step 2 but holds an architecture hicra cannot load; checkpoint-9
    // matches no logged step (the fixture logs steps 1 and 2).
    for name in ["checkpoint-1", "checkpoint-9"] {
        let folder = checkpoints.join(name);
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(
            folder.join("config.json"),
            r#"{"architectures": ["MambaForCausalLM"], "model_type": "mamba"}"#,
        )
        .unwrap();
    }
    let out = dir.path().join("out");
    let trl = fixtures().join("trl");
    let (doc, stderr) = analysis_of(
        &[&trl],
        &["--checkpoints", checkpoints.to_str().unwrap()],
        &out,
    );
    let report = &doc["runs"][0]["checkpoints"];
    let unmatched = report["unmatched"].to_string();
    assert!(unmatched.contains("checkpoint-9"), "{report}");
    let errors = report["errors"].to_string();
    assert!(errors.contains("checkpoint-1"), "{report}");
    assert!(
        stderr.contains("checkpoint-9") && stderr.contains("checkpoint-1"),
        "{stderr}"
    );
    // The text analysis is written all the same, without token panels.
    let rows = doc["runs"][0]["train"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert!(
        rows.iter()
            .all(|r| r.get("token_entropy_planning").is_none())
    );
}

#[test]
fn a_checkpoint_rescores_the_step_it_sampled() {
    let dir = tempfile::tempdir().unwrap();
    let checkpoints = dir.path().join("ckpt");
    std::fs::create_dir_all(&checkpoints).unwrap();
    let model = common::tiny_model(dir.path(), 3);
    std::fs::rename(&model, checkpoints.join("checkpoint-1")).unwrap();
    let out = dir.path().join("out");
    let trl = fixtures().join("trl");
    let args = [
        "--checkpoints",
        checkpoints.to_str().unwrap(),
        "--max-responses-per-step",
        "3",
    ];
    let (doc, stderr) = analysis_of(&[&trl], &args, &out);
    let run = &doc["runs"][0];
    let report = &run["checkpoints"];
    assert_eq!(report["errors"].as_array().unwrap().len(), 0, "{report}");
    assert_eq!(report["rescored"][0]["step"], 2, "{report}");
    assert_eq!(report["rescored"][0]["sampled_them"], true);
    let r = row(run, "train", 2);
    assert_eq!(r["checkpoint"], "checkpoint-1", "{r}");
    assert_eq!(r["rescored"], 3);
    for key in ["token_entropy_planning", "token_entropy_execution"] {
        let v = r[key].as_f64().unwrap();
        assert!(v.is_finite() && v > 0.0, "{key}: {r}");
    }
    // The only rescored step is its own reference, and the analysis says it is not step 0.
    assert_eq!(r["relative_ppl_execution"], 1.0);
    assert_eq!(report["relative_to"], "checkpoint-1 (step 1)", "{report}");
    assert!(stderr.contains("not by step 0"), "{stderr}");
    assert!(row(run, "train", 1).get("checkpoint").is_none());
}

#[test]
fn rescored_entropies_equal_the_trainers() {
    let root = tempfile::tempdir().unwrap();
    // The entropy variant runs a scoring pass over the kept responses before each update:
    // the token entropies it logs are those of the weights that sampled the step.
    let run = common::train_tiny(
        root.path(),
        "steps = 2\nckpt_every = 1\nsamples_every = 1\n[algorithm.hicra]\nvariant = \"entropy\"",
    );
    let metrics = json_lines(&run.join("metrics.jsonl"));
    let args = [
        "--checkpoints",
        run.to_str().unwrap(),
        "--max-responses-per-step",
        "1000",
    ];
    let (doc, _) = analysis_of(&[&run], &args, &root.path().join("analysis"));
    let a = &doc["runs"][0];
    let report = &a["checkpoints"];
    assert_eq!(report["errors"].as_array().unwrap().len(), 0, "{report}");
    // The starting model (from the run's config) sampled step 1, step-1's weights step 2.
    let pairs: Vec<(u64, u64)> = report["rescored"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["checkpoint_step"].as_u64().unwrap(),
                p["step"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(pairs, [(0, 1), (1, 2)], "{report}");
    assert!(
        report["relative_to"]
            .as_str()
            .unwrap()
            .starts_with("the starting model"),
        "{report}"
    );
    let mut compared = 0;
    for key in ["token_entropy_planning", "token_entropy_execution"] {
        for step in [1, 2] {
            let trainer = metrics
                .iter()
                .find(|l| l["step"] == step && l.get("semantic_entropy").is_some())
                .and_then(|l| l.get(key))
                .and_then(Value::as_f64);
            let ours = row(a, "train", step)[key].as_f64();
            match (trainer, ours) {
                (Some(t), Some(o)) => {
                    assert!(
                        (t - o).abs() <= 1e-4 * t.abs().max(1.0),
                        "{key} at step {step}: analysis {o}, trainer {t}"
                    );
                    compared += 1;
                }
                (None, None) => {}
                other => panic!("{key} at step {step}: (trainer, analysis) = {other:?}"),
            }
        }
    }
    assert!(compared >= 2, "no token entropy was logged to compare");
}
