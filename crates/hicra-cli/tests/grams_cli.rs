//! `hicra grams stats` and `hicra grams mark` end to end.

use std::process::Command;

use serde_json::{Value, json};

fn hicra(args: &[&str]) -> (bool, Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hicra"))
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let value = serde_json::from_str(stdout.trim()).unwrap_or(Value::Null);
    (out.status.success(), value, stderr)
}

#[test]
fn stats_counts_occurrences_entropy_and_top_grams() {
    let dir = tempfile::tempdir().unwrap();
    let grams = dir.path().join("grams.txt");
    std::fs::write(&grams, "wait\nlet's try\nalternatively\nnever used\n").unwrap();
    let input = dir.path().join("in.jsonl");
    std::fs::write(
        &input,
        "{\"text\": \"Wait, wait. Let\u{2019}s try it\"}\n\n{\"text\": \"alternatively\", \"x\": 1}\n",
    )
    .unwrap();
    let (ok, v, err) = hicra(&[
        "grams",
        "stats",
        "--grams",
        grams.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--field",
        "text",
        "--json",
    ]);
    assert!(ok, "{err}");
    assert_eq!(v["texts"], 2);
    assert_eq!(v["occurrences"], 4);
    assert_eq!(v["distinct_grams"], 3);
    let expected = 1.5 * 2f64.ln(); // p = (1/2, 1/4, 1/4)
    assert!((v["semantic_entropy"].as_f64().unwrap() - expected).abs() < 1e-9);
    // By count, ties by gram text.
    assert_eq!(
        v["top"],
        json!([["wait", 2], ["alternatively", 1], ["let's try", 1]])
    );
}

#[test]
fn stats_defaults_to_the_paper_list_and_names_bad_lines() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, "{\"response\": \"Hmm, but wait\"}\n").unwrap();
    let (ok, v, err) = hicra(&[
        "grams",
        "stats",
        "--input",
        input.to_str().unwrap(),
        "--json",
    ]);
    assert!(ok, "{err}");
    // Paper grams in the text: "hmm," "but" "but wait" "wait".
    assert_eq!(v["occurrences"], 4, "{v}");

    std::fs::write(&input, "{\"response\": \"ok\"}\n{\"other\": 1}\n").unwrap();
    let (ok, _, err) = hicra(&[
        "grams",
        "stats",
        "--input",
        input.to_str().unwrap(),
        "--json",
    ]);
    assert!(
        !ok && err.contains("in.jsonl:2") && err.contains("response"),
        "{err}"
    );
    std::fs::write(&input, "{\"response\": \"ok\"}\nnot json\n").unwrap();
    let (ok, _, err) = hicra(&[
        "grams",
        "stats",
        "--input",
        input.to_str().unwrap(),
        "--json",
    ]);
    assert!(!ok && err.contains("in.jsonl:2"), "{err}");
}

#[test]
fn mark_reports_character_offsets_sorted() {
    let dir = tempfile::tempdir().unwrap();
    let grams = dir.path().join("g.txt");
    std::fs::write(&grams, "wait, but\nbut\nhmm,\n").unwrap();
    // "é" is one character but two bytes: offsets after it must count characters.
    let (ok, v, err) = hicra(&[
        "grams",
        "mark",
        "--grams",
        grams.to_str().unwrap(),
        "--text",
        "é Wait, but hmm,x",
        "--json",
    ]);
    assert!(ok, "{err}");
    assert_eq!(
        v,
        json!({"matches": [[2, 11, "wait, but"], [8, 11, "but"], [12, 16, "hmm,"]]})
    );
}

#[test]
fn mark_with_a_model_flags_its_tokens() {
    use hicra_model::io::tiny::{test_tokenizer, tiny_config, write_tiny_model};
    let dir = tempfile::tempdir().unwrap();
    let tokenizer = test_tokenizer();
    let config = tiny_config(hicra_model::Arch::Llama, tokenizer.vocab_size());
    write_tiny_model(dir.path(), &config, &tokenizer, None, 1).unwrap();
    let text = "x 12 alternatively 3";
    let (ok, v, err) = hicra(&[
        "grams",
        "mark",
        "--text",
        text,
        "--model",
        dir.path().to_str().unwrap(),
        "--json",
    ]);
    assert!(ok, "{err}");
    assert_eq!(v["matches"], json!([[5, 18, "alternatively"]]));
    let tokens = v["tokens"].as_array().unwrap();
    let joined: String = tokens.iter().map(|t| t[0].as_str().unwrap()).collect();
    assert_eq!(joined, text);
    let planning: String = tokens
        .iter()
        .filter(|t| t[1].as_bool().unwrap())
        .map(|t| t[0].as_str().unwrap())
        .collect();
    assert_eq!(planning.trim(), "alternatively");
}
