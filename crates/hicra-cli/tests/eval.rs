//! `hicra eval` on a tiny generated model: the documented summary JSON, per-item JSONL whose
//! grades agree with the verifier, reproducibility, and clear errors for bad input.

use std::path::Path;
use std::process::{Command, Output};

use hicra_model::Arch;
use hicra_model::io::tiny::{CHATML_TEMPLATE, test_tokenizer, tiny_config, write_tiny_model};
use serde_json::Value;

fn tiny_model(dir: &Path) {
    let tokenizer = test_tokenizer();
    let config = tiny_config(Arch::Llama, tokenizer.vocab_size());
    write_tiny_model(dir, &config, &tokenizer, Some(CHATML_TEMPLATE), 7).unwrap();
}

fn hicra(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hicra"))
        .args(args)
        .output()
        .unwrap()
}

fn write_problems(path: &Path) {
    std::fs::write(
        path,
        concat!(
            "{\"question\": \"What is 2+3?\", \"answer\": \"It is 5.\\n#### 5\"}\n",
            "{\"question\": \"What is 4*4?\", \"answer\": \"#### 16\"}\n",
            "not json\n",
            "{\"question\": \"Half of 9?\", \"answer\": \"#### 4.5\"}\n",
        ),
    )
    .unwrap();
}

fn run_eval(model: &Path, data: &Path, out: &Path) -> Output {
    hicra(&[
        "eval",
        "--model",
        model.to_str().unwrap(),
        "--dataset",
        data.to_str().unwrap(),
        "--samples",
        "2",
        "--max-new-tokens",
        "6",
        "--batch-size",
        "4",
        "--seed",
        "3",
        "--out",
        out.to_str().unwrap(),
    ])
}

#[test]
fn eval_writes_the_documented_summary_and_items() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    tiny_model(&model);
    let data = dir.path().join("toy.jsonl");
    write_problems(&data);
    let out = dir.path().join("out");
    let output = run_eval(&model, &data, &out);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("{}:3:", data.display())),
        "the malformed line is reported: {stderr}"
    );

    let summary: Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    let printed: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(summary, printed);
    for key in [
        "dataset",
        "model",
        "n",
        "samples",
        "pass@1",
        "pass@k",
        "mean_length",
        "format_rate",
    ] {
        assert!(summary.get(key).is_some(), "missing {key}");
    }
    assert_eq!(summary["dataset"], "toy");
    assert_eq!(summary["model"], model.to_str().unwrap());
    assert_eq!(summary["n"], 3);
    assert_eq!(summary["samples"], 2);
    let pass_k: Vec<&String> = summary["pass@k"].as_object().unwrap().keys().collect();
    assert_eq!(pass_k, ["1", "2"]);
    assert_eq!(summary["pass@k"]["1"], summary["pass@1"]);

    let items: Vec<Value> = std::fs::read_to_string(out.join("items.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(items.len(), 3);
    assert_eq!(items[0]["gold"], "5");
    assert!(
        items[0]["prompt"]
            .as_str()
            .unwrap()
            .contains("<|im_start|>user\nWhat is 2+3?")
    );
    let config = hicra_verify::Config::with_mode(hicra_verify::ExtractMode::StrictBoxed);
    let (mut lengths, mut formatted, mut correct) = (0.0, 0.0, 0.0);
    for item in &items {
        let gold = hicra_verify::Gold::from_json(&item["gold"]).unwrap();
        let responses = item["responses"].as_array().unwrap();
        assert_eq!(responses.len(), 2);
        for (i, response) in responses.iter().enumerate() {
            let verdict = hicra_verify::verify(&gold, response.as_str().unwrap(), &config);
            assert_eq!(item["correct"][i], verdict.correct);
            assert_eq!(
                item["extracted"][i],
                serde_json::to_value(&verdict.extracted).unwrap()
            );
            let length = item["lengths"][i].as_u64().unwrap();
            assert!((1..=6).contains(&length));
            lengths += length as f64;
            formatted += f64::from(u8::from(verdict.extracted.is_some()));
            correct += f64::from(u8::from(verdict.correct));
        }
    }
    let close = |a: &Value, b: f64| (a.as_f64().unwrap() - b).abs() < 1e-9;
    assert!(close(&summary["mean_length"], lengths / 6.0));
    assert!(close(&summary["format_rate"], formatted / 6.0));
    assert!(close(&summary["pass@1"], correct / 6.0));

    // Same seed, same results.
    let again = dir.path().join("again");
    assert!(run_eval(&model, &data, &again).status.success());
    assert_eq!(
        std::fs::read(out.join("items.jsonl")).unwrap(),
        std::fs::read(again.join("items.jsonl")).unwrap()
    );
}

#[test]
fn eval_runs_the_built_in_lab_validation_set() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    tiny_model(&model);
    let out = dir.path().join("lab");
    let output = hicra(&[
        "eval",
        "--model",
        model.to_str().unwrap(),
        "--dataset",
        "lab",
        "--limit",
        "3",
        "--max-new-tokens",
        "4",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        (summary["dataset"].as_str(), summary["n"].as_u64()),
        (Some("lab"), Some(3))
    );
    let items = std::fs::read_to_string(out.join("items.jsonl")).unwrap();
    assert!(items.lines().next().unwrap().contains("\"prompt\":\"Q: "));
}

#[test]
fn eval_rejects_bad_input_with_clear_messages() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    tiny_model(&model);
    let missing = dir.path().join("absent.jsonl");
    let output = hicra(&[
        "eval",
        "--model",
        model.to_str().unwrap(),
        "--dataset",
        missing.to_str().unwrap(),
    ]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("absent.jsonl"));

    let data = dir.path().join("toy.jsonl");
    write_problems(&data);
    let output = hicra(&[
        "eval",
        "--model",
        model.to_str().unwrap(),
        "--dataset",
        data.to_str().unwrap(),
        "--on-error",
        "fail",
    ]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("{}:3:", data.display())),
        "{stderr}"
    );

    let output = hicra(&[
        "eval",
        "--model",
        dir.path().join("nope").to_str().unwrap(),
        "--dataset",
        data.to_str().unwrap(),
    ]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("nope"));
}
