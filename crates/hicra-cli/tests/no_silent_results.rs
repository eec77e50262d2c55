//! No result is silently wrong: settings that train nothing are refused (or warned about at
//! run time) by name, records `eval` leaves out are listed in its summary, a byte order mark
//! is not an error in any JSONL reader, a tokenizer that is not the model's is refused at
//! load, and a resume names every edit of the run's settings it refuses or accepts.

mod common;

use common::{chat_model, ok, refused, run, s, write_problems};
use hicra_model::Arch;
use hicra_model::io::tiny::{test_tokenizer, tiny_config, write_tiny_model};
use serde_json::Value;

const BOM: &str = "\u{FEFF}";

#[test]
fn training_that_cannot_learn_is_refused_or_warned_about() {
    let d = tempfile::tempdir().unwrap();
    let model = common::tiny_model(d.path(), 5);
    let cfg = common::tiny_arith_config(d.path(), &model, 4, 8, "steps = 3\nval_size = 2");
    for estimator in ["grpo", "dr-grpo", "rloo", "reinforce++-baseline"] {
        let out = d.path().join(format!("run-{estimator}"));
        let err = refused(run(&[
            "train",
            "--config",
            s(&cfg),
            "--set",
            "rollout.group_size=1",
            "--set",
            &format!("algorithm.advantage={estimator}"),
            "--out",
            s(&out),
        ]));
        assert!(
            err.contains("rollout.group_size") && err.contains(&format!("\"{estimator}\"")),
            "{err}"
        );
        assert!(!out.exists(), "nothing ran");
    }
    // A random model never answers right: every group's rewards are equal, every advantage
    // is 0, and after a few such steps the run says so.
    let out = d.path().join("run");
    let err = ok(run(&["train", "--config", s(&cfg), "--out", s(&out)]));
    assert!(
        err.contains("warning at step 3") && err.contains("trained nothing"),
        "{err}"
    );
}

#[test]
fn eval_lists_the_records_it_leaves_out_and_reads_a_byte_order_mark() {
    let d = tempfile::tempdir().unwrap();
    let model = d.path().join("m");
    chat_model(&model, 3);
    let data = d.path().join("bench.jsonl");
    std::fs::write(
        &data,
        format!(
            "{BOM}{{\"question\": \"What is 1+1?\", \"answer\": \"#### 2\"}}\nnot json\n\
             {{\"question\": \"What is 2+2?\"}}\n{{\"question\": \"What is 3+3?\", \"answer\": \"#### 6\"}}\n"
        ),
    )
    .unwrap();
    let out = d.path().join("out");
    let o = run(&[
        "eval",
        "--model",
        s(&model),
        "--dataset",
        s(&data),
        "--max-new-tokens",
        "4",
        "--out",
        s(&out),
    ]);
    let err = ok(o);
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["n"], 2, "the BOM line and line 4 are evaluated");
    let skipped = summary["skipped"].as_array().unwrap();
    let locations: Vec<&str> = skipped
        .iter()
        .map(|x| x["location"].as_str().unwrap())
        .collect();
    assert_eq!(
        locations,
        [
            format!("{}:2", data.display()),
            format!("{}:3", data.display())
        ]
    );
    assert!(
        skipped
            .iter()
            .all(|x| !x["reason"].as_str().unwrap().is_empty())
    );
    assert!(err.contains(&format!("{}:2", data.display())), "{err}");

    // Every record invalid: the error shows the first reasons.
    let bad = d.path().join("bad.jsonl");
    std::fs::write(&bad, "not json\n{\"question\": 3}\n").unwrap();
    let err = refused(run(&["eval", "--model", s(&model), "--dataset", s(&bad)]));
    assert!(
        err.contains(&format!("{}:1", bad.display()))
            && err.contains(&format!("{}:2", bad.display())),
        "{err}"
    );
}

#[test]
fn every_jsonl_reader_takes_a_byte_order_mark() {
    let d = tempfile::tempdir().unwrap();
    // grade
    let pairs = d.path().join("pairs.jsonl");
    std::fs::write(
        &pairs,
        format!("{BOM}{{\"gold\": \"2\", \"response\": \"2\"}}\n"),
    )
    .unwrap();
    let o = run(&["grade", "--input", s(&pairs)]);
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    let err = ok(o);
    assert!(
        stdout.contains("\"correct\":true") && err.contains("0 malformed"),
        "{err}"
    );
    // grams stats
    let texts = d.path().join("texts.jsonl");
    std::fs::write(
        &texts,
        format!("{BOM}{{\"response\": \"First, let me think.\"}}\n"),
    )
    .unwrap();
    ok(run(&["grams", "stats", "--input", s(&texts)]));
    // train on a data set and sft on pairs, both starting with a BOM
    let model = common::tiny_model(d.path(), 4);
    let train = d.path().join("train.jsonl");
    write_problems(&train, 6);
    let text = std::fs::read_to_string(&train).unwrap();
    std::fs::write(&train, format!("{BOM}{text}")).unwrap();
    let cfg = d.path().join("ds.toml");
    std::fs::write(
        &cfg,
        format!(
            "[model]\npath = \"{model}\"\n[task]\nkind = \"dataset\"\ntrain_path = \"{}\"\n\
             val_holdout = 2\n[rollout]\nbatch_size = 4\ngroup_size = 2\nmax_new_tokens = 4\n\
             [trainer]\nsteps = 1\nval_size = 2\n[sft]\ndata = \"{}\"\nsteps = 1\nbatch_size = 1\n",
            s(&train),
            s(&d.path().join("sft.jsonl"))
        ),
    )
    .unwrap();
    std::fs::write(
        d.path().join("sft.jsonl"),
        format!("{BOM}{{\"prompt\": \"a\", \"completion\": \"b\"}}\n"),
    )
    .unwrap();
    let err = ok(run(&[
        "train",
        "--config",
        s(&cfg),
        "--out",
        s(&d.path().join("run")),
    ]));
    assert!(!err.contains("skipped"), "{err}");
    ok(run(&[
        "sft",
        "--config",
        s(&cfg),
        "--out",
        s(&d.path().join("sft")),
    ]));
}

#[test]
fn a_tokenizer_that_is_not_the_models_is_refused_at_load() {
    let d = tempfile::tempdir().unwrap();
    let tok = test_tokenizer();
    // The model has far more embedding rows than the tokenizer has ids: it would sample ids
    // the tokenizer cannot decode (empty text).
    let big = d.path().join("big");
    write_tiny_model(&big, &tiny_config(Arch::Llama, 4096), &tok, None, 1).unwrap();
    let err = refused(run(&["generate", "--model", s(&big), "--prompt", "Hi"]));
    assert!(
        err.contains(&format!("{}", big.join("tokenizer.json").display()))
            && err.contains("vocab_size is 4096"),
        "{err}"
    );
    // The tokenizer has ids the model has no rows for.
    let small = d.path().join("small");
    write_tiny_model(
        &small,
        &tiny_config(Arch::Llama, tok.vocab_size()),
        &tok,
        None,
        1,
    )
    .unwrap();
    let tokenizer_path = small.join("tokenizer.json");
    let mut tokenizer: Value =
        serde_json::from_str(&std::fs::read_to_string(&tokenizer_path).unwrap()).unwrap();
    tokenizer["added_tokens"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "id": tok.vocab_size() + 20, "content": "<|not-in-the-model|>", "single_word": false,
            "lstrip": false, "rstrip": false, "normalized": false, "special": true
        }));
    std::fs::write(&tokenizer_path, tokenizer.to_string()).unwrap();
    let err = refused(run(&["generate", "--model", s(&small), "--prompt", "Hi"]));
    assert!(
        err.contains(s(&tokenizer_path)) && err.contains("not this model's tokenizer"),
        "{err}"
    );
}

#[test]
fn a_resume_accepts_length_and_logging_edits_and_names_the_rest() {
    let d = tempfile::tempdir().unwrap();
    let model = common::tiny_model(d.path(), 6);
    let cfg = common::tiny_arith_config(
        d.path(),
        &model,
        4,
        8,
        "steps = 1\nval_size = 2\nval_every = 1",
    );
    let out = d.path().join("run");
    ok(run(&["train", "--config", s(&cfg), "--out", s(&out)]));
    let config_path = out.join("config.toml");
    let original = std::fs::read_to_string(&config_path).unwrap();
    for (from, to, key) in [
        ("lr = 0.001", "lr = 0.01", "optim.lr"),
        (
            "hidden_size = 128",
            "hidden_size = 64",
            "lab_model.hidden_size",
        ),
        ("seed = 0\nout", "seed = 3\nout", "trainer.seed"),
    ] {
        assert!(original.contains(from), "{from} not in\n{original}");
        std::fs::write(&config_path, original.replace(from, to)).unwrap();
        let err = refused(run(&["train", "--resume", s(&out)]));
        assert!(err.contains(&format!("`{key}`")), "{key}: {err}");
    }
    let edited = original
        .replace("steps = 1\n", "steps = 2\n")
        .replace("val_every = 1", "val_every = 2");
    std::fs::write(&config_path, edited).unwrap();
    let err = ok(run(&["train", "--resume", s(&out)]));
    assert!(
        err.contains("accepted: trainer.steps: 1 -> 2")
            && err.contains("accepted: trainer.val_every: 1 -> 2"),
        "{err}"
    );
    assert!(out.join("checkpoints/step-2/manifest.json").is_file());
}
