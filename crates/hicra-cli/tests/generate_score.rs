//! `hicra generate` and `hicra score` run as the built binary on a tiny model.

use std::process::Command;

use hicra_model::io::tiny::{CHATML_TEMPLATE, test_tokenizer, tiny_config, write_tiny_model};
use hicra_model::{Arch, LoadOptions, Padding, ScoreOptions, TokenBatch, load_model};
use serde_json::Value;

fn hicra(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_hicra"))
        .args(args)
        .output()
        .expect("run hicra")
}

fn tiny_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let tok = test_tokenizer();
    write_tiny_model(
        dir.path(),
        &tiny_config(Arch::Llama, tok.vocab_size()),
        &tok,
        Some(CHATML_TEMPLATE),
        42,
    )
    .unwrap();
    dir
}

#[test]
fn generate_json_matches_the_library() {
    let dir = tiny_dir();
    let model = dir.path().to_str().unwrap();
    let out = hicra(&[
        "generate",
        "--model",
        model,
        "--prompt",
        "The answer is",
        "--chat",
        "--max-new-tokens",
        "7",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let ids: Vec<u32> = serde_json::from_value(v["token_ids"].clone()).unwrap();
    let lps: Vec<f32> = serde_json::from_value(v["logprobs"].clone()).unwrap();
    assert!(!ids.is_empty() && ids.len() <= 7 && ids.len() == lps.len());
    assert!(lps.iter().all(|&l| l <= 0.0 && l.is_finite()));
    let reason = v["finish_reason"].as_str().unwrap();
    assert!(
        reason == if ids.len() == 7 { "length" } else { "stop" } || reason == "stop",
        "{reason}"
    );

    let loaded = load_model(model, &LoadOptions::default()).unwrap();
    assert_eq!(
        v["text"].as_str().unwrap(),
        loaded.tokenizer.decode(&ids, true).unwrap()
    );
    // Greedy by default: the library gives the same tokens.
    let prompt = loaded
        .tokenizer
        .encode(&loaded.chat_prompt("The answer is").unwrap(), false)
        .unwrap();
    let params = hicra_model::SamplingParams {
        temperature: 0.0,
        max_new_tokens: 7,
        ..Default::default()
    };
    let g = loaded.generate(&[prompt], &params).unwrap();
    assert_eq!(g[0].token_ids, ids);

    // Streaming mode prints the same text.
    let out = hicra(&[
        "generate",
        "--model",
        model,
        "--prompt",
        "The answer is",
        "--chat",
        "--max-new-tokens",
        "7",
    ]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim_end_matches('\n'),
        v["text"].as_str().unwrap()
    );
}

#[test]
fn score_json_matches_the_library() {
    let dir = tiny_dir();
    let model = dir.path().to_str().unwrap();
    let out = hicra(&[
        "score",
        "--model",
        model,
        "--prompt",
        "Let's think",
        "--continuation",
        " step by step.",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let ids: Vec<u32> = serde_json::from_value(v["token_ids"].clone()).unwrap();
    let lps: Vec<f32> = serde_json::from_value(v["logprobs"].clone()).unwrap();
    let tokens: Vec<String> = serde_json::from_value(v["tokens"].clone()).unwrap();
    assert_eq!(tokens.concat(), " step by step.");
    assert_eq!(ids.len(), lps.len());

    let loaded = load_model(model, &LoadOptions::default()).unwrap();
    let p = loaded.tokenizer.encode("Let's think", true).unwrap();
    let c = loaded.tokenizer.encode(" step by step.", false).unwrap();
    assert_eq!(c, ids);
    let batch = TokenBatch::from_rows(
        &[[p.clone(), c].concat()],
        0,
        Padding::Right,
        loaded.model.device(),
    )
    .unwrap();
    let s = loaded
        .model
        .score_tokens(&batch, &ScoreOptions::default())
        .unwrap();
    for (a, b) in lps.iter().zip(&s.logprobs[0][p.len()..]) {
        assert!((a - b).abs() < 1e-5 && *a < 0.0);
    }
}

#[test]
fn missing_model_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let out = hicra(&[
        "generate",
        "--model",
        missing.to_str().unwrap(),
        "--prompt",
        "x",
        "--json",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nope"), "{err}");
}
