//! `hicra grams mine` end to end with the hashing encoder (no model), and the real
//! all-MiniLM-L6-v2 encoder when it is fetched.

use std::path::Path;
use std::process::Command;

use hicra_model::encoder::BertSentenceEncoder;

fn write_solutions(path: &Path) {
    let fillers = [
        "apples", "boxes", "cars", "dogs", "eggs", "figs", "gums", "hats",
    ];
    let mut lines = String::new();
    for i in 0..60 {
        let (a, b) = (fillers[i % 8], fillers[(i * 3 + 1) % 8]);
        let correct = i % 5 != 0;
        let text = if correct {
            format!("we count {a} and {b}. wait, let's double check the {a} here. answer: {i}")
        } else {
            format!("we count {a} and {b}. purple elephants dance wildly. answer: {i}")
        };
        lines.push_str(&serde_json::json!({"response": text, "correct": correct}).to_string());
        lines.push('\n');
    }
    std::fs::write(path, lines).unwrap();
}

fn mine(input: &Path, out: &Path, seed: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_hicra"))
        .args([
            "grams",
            "mine",
            "--encoder",
            "hashing",
            "--k",
            "12",
            "--seed",
            seed,
            "--input",
        ])
        .arg(input)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap()
}

#[test]
fn mine_with_hashing_encoder_is_deterministic_and_uses_only_correct_solutions() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("solutions.jsonl");
    write_solutions(&input);
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    for out in [&a, &b] {
        let o = mine(&input, out, "5");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    for file in ["grams.txt", "clusters.json", "clusters.txt"] {
        let x = std::fs::read_to_string(a.join(file)).unwrap();
        let y = std::fs::read_to_string(b.join(file)).unwrap();
        assert_eq!(x, y, "{file} differs between identical runs");
    }
    let grams = std::fs::read_to_string(a.join("grams.txt")).unwrap();
    assert!(
        grams.lines().any(|g| g == "wait, let's double check"),
        "{grams}"
    );
    let clusters = std::fs::read_to_string(a.join("clusters.json")).unwrap();
    assert!(
        !clusters.contains("elephants"),
        "incorrect solutions must not be mined"
    );
    let report: serde_json::Value = serde_json::from_str(&clusters).unwrap();
    assert_eq!(report["result"]["documents"], 48);
    let kept = report["result"]["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["kept"] == true)
        .count();
    assert!(kept >= 1);
}

#[test]
fn mine_names_the_line_of_a_missing_correct_flag() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("s.jsonl");
    std::fs::write(
        &input,
        "{\"response\": \"a b c\", \"correct\": true}\n{\"response\": \"a b c\"}\n",
    )
    .unwrap();
    let o = mine(&input, &dir.path().join("o"), "0");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && stderr.contains("s.jsonl:2") && stderr.contains("correct"),
        "{stderr}"
    );
}

/// The fetched all-MiniLM-L6-v2, or `None` (with a loud skip) under HICRA_SKIP_REAL_MODELS=1.
pub fn real_encoder() -> Option<BertSentenceEncoder> {
    match hicra_model::io::registry::resolve_model_path("all-minilm-l6-v2") {
        Ok(dir) => Some(BertSentenceEncoder::load(&dir).expect("loading all-minilm-l6-v2")),
        Err(e) if std::env::var("HICRA_SKIP_REAL_MODELS").as_deref() == Ok("1") => {
            eprintln!(
                "!!! SKIPPED: all-minilm-l6-v2 is not fetched ({e}); HICRA_SKIP_REAL_MODELS=1"
            );
            None
        }
        Err(e) => panic!(
            "{e}\nrun `hicra models fetch all-minilm-l6-v2` (or set HICRA_SKIP_REAL_MODELS=1 to skip)"
        ),
    }
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[test]
fn real_encoder_gives_unit_vectors_that_reflect_meaning_and_ignore_padding() {
    let Some(encoder) = real_encoder() else {
        return;
    };
    assert_eq!(encoder.dim(), 384);
    let texts: Vec<String> = [
        "let's check the answer",
        "let us verify the result",
        "the cat sat on the mat",
        "wait",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let batch = encoder.embed_batch(&texts).unwrap();
    for v in &batch {
        let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4);
    }
    assert!(cosine(&batch[0], &batch[1]) > cosine(&batch[0], &batch[2]) + 0.2);
    // "wait" alone (no padding) equals "wait" padded inside the batch.
    let single = encoder.embed_batch(&texts[3..]).unwrap();
    assert!(cosine(&single[0], &batch[3]) > 0.9999);
}
