//! One generate-and-grade path: a run's `val_accuracy`/`val_length` at a checkpoint equal
//! `hicra eval` on that checkpoint with the same settings, and `hicra eval --resume` after a
//! kill gives the summary and items of an uninterrupted evaluation.

mod common;

use std::path::Path;
use std::process::Output;

use serde_json::Value;

use common::{chat_model, run as hicra, write_problems};

fn ok(out: Output) -> Output {
    assert!(
        out.status.success(),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn default_mode() -> String {
    serde_json::to_value(hicra_verify::Config::default().mode)
        .unwrap()
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn validation_at_a_checkpoint_equals_hicra_eval_on_it() {
    let d = tempfile::tempdir().unwrap();
    let model = d.path().join("model");
    chat_model(&model, 11);
    let (train, val) = (d.path().join("train.jsonl"), d.path().join("val.jsonl"));
    write_problems(&train, 8);
    write_problems(&val, 6);
    let config = d.path().join("run.toml");
    // Sampled validation (temperature 0.8), so the seeds and batches must agree too.
    std::fs::write(
        &config,
        format!(
            r#"
[model]
path = "{}"
[task]
kind = "dataset"
train_path = "{}"
val_path = "{}"
[rollout]
batch_size = 8
group_size = 4
max_new_tokens = 12
top_p = 0.9
generation_batch = 4
[algorithm]
micro_batch = 8
chunk_positions = 16
[optim]
lr = 0.002
[trainer]
steps = 2
val_every = 0
val_size = 5
val_temperature = 0.8
ckpt_every = 2
seed = 9
samples_every = 1
"#,
            model.display(),
            train.display(),
            val.display()
        ),
    )
    .unwrap();
    let run = d.path().join("run");
    ok(hicra(&[
        "train",
        "--config",
        config.to_str().unwrap(),
        "--out",
        run.to_str().unwrap(),
    ]));
    let metrics: Vec<Value> = std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let val_at = |step: u64| {
        metrics
            .iter()
            .find(|m| m["step"] == step && m.get("val_accuracy").is_some())
            .unwrap()
            .clone()
    };
    let eval_dir = d.path().join("eval");
    let ckpt = run.join("checkpoints/step-2/hf");
    let mode = default_mode();
    ok(hicra(&[
        "eval",
        "--model",
        ckpt.to_str().unwrap(),
        "--dataset",
        val.to_str().unwrap(),
        "--samples",
        "1",
        "--temperature",
        "0.8",
        "--top-p",
        "0.9",
        "--max-new-tokens",
        "12",
        "--batch-size",
        "4",
        "--seed",
        "9",
        "--limit",
        "5",
        "--mode",
        &mode,
        "--out",
        eval_dir.to_str().unwrap(),
    ]));
    let summary = json(&eval_dir.join("summary.json"));
    let val = val_at(2);
    assert_eq!(summary["n"], 5);
    assert_eq!(summary["pass@1"].as_f64(), val["val_accuracy"].as_f64());
    assert_eq!(summary["mean_length"].as_f64(), val["val_length"].as_f64());
    // Response by response: the same texts and grades.
    let items: Vec<Value> = std::fs::read_to_string(eval_dir.join("items.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let samples: Vec<Value> = std::fs::read_to_string(run.join("samples/val-step-2.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(items.len(), samples.len());
    for (item, sample) in items.iter().zip(&samples) {
        assert_eq!(item["id"], sample["id"]);
        assert_eq!(item["responses"][0], sample["response"]);
        assert_eq!(item["correct"][0], sample["correct"]);
    }
    // Sampled responses differ between problems: equal texts are no accident of greedy
    // decoding.
    let texts: std::collections::BTreeSet<&str> = samples
        .iter()
        .map(|s| s["response"].as_str().unwrap())
        .collect();
    assert!(texts.len() > 1, "{texts:?}");
}

fn eval_args<'a>(model: &'a str, data: &'a str, out: &'a str) -> Vec<&'a str> {
    vec![
        "eval",
        "--model",
        model,
        "--dataset",
        data,
        "--samples",
        "2",
        "--max-new-tokens",
        "8",
        "--batch-size",
        "3",
        "--seed",
        "4",
        "--out",
        out,
    ]
}

fn without_time(mut summary: Value) -> Value {
    summary.as_object_mut().unwrap().remove("time_s");
    summary
}

#[test]
fn eval_resume_after_a_kill_gives_the_uninterrupted_result() {
    let d = tempfile::tempdir().unwrap();
    let model = d.path().join("model");
    chat_model(&model, 11);
    let data = d.path().join("problems.jsonl");
    write_problems(&data, 7);
    let (m, p) = (model.to_str().unwrap(), data.to_str().unwrap());
    let full = d.path().join("full");
    ok(hicra(&eval_args(m, p, full.to_str().unwrap())));
    let full_items = std::fs::read_to_string(full.join("items.jsonl")).unwrap();
    assert_eq!(full_items.lines().count(), 7);

    // A run killed after 3 items, halfway through writing the fourth (batches of 3 rows over
    // 2 samples per problem straddle problems, so the resume starts mid-batch).
    let cut = d.path().join("cut");
    std::fs::create_dir_all(&cut).unwrap();
    std::fs::copy(full.join("eval_run.json"), cut.join("eval_run.json")).unwrap();
    let lines: Vec<&str> = full_items.lines().collect();
    let partial = format!(
        "{}\n{}",
        lines[..3].join("\n"),
        &lines[3][..lines[3].len() / 2]
    );
    std::fs::write(cut.join("items.jsonl"), partial).unwrap();
    let mut args = eval_args(m, p, cut.to_str().unwrap());
    args.push("--resume");
    let out = ok(hicra(&args));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("3 of 7 problems already evaluated"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(cut.join("items.jsonl")).unwrap(),
        full_items
    );
    assert_eq!(
        without_time(json(&cut.join("summary.json"))),
        without_time(json(&full.join("summary.json")))
    );

    // Other settings are refused by name, and so is --resume of nothing.
    let mut other = eval_args(m, p, cut.to_str().unwrap());
    let seed_at = other.len() - 3;
    other[seed_at] = "5"; // --seed 5
    other.push("--resume");
    let out = hicra(&other);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("other inputs or settings") && err.contains("\"seed\":5"),
        "{err}"
    );
    let empty = d.path().join("empty");
    let mut none = eval_args(m, p, empty.to_str().unwrap());
    none.push("--resume");
    let out = hicra(&none);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no evaluation to continue"));
}
