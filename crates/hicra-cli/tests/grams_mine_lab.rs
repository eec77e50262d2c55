//! Strategic-Gram mining on the reasoning lab: the miner (real all-MiniLM-L6-v2 encoder,
//! `hicra grams mine` defaults except the top fraction) must recover the planning phrases the lab's trace
//! generator planted, and little else.
//!
//! Definitions (all on normalised text):
//! - a mined gram is a true positive when, at every occurrence in the mined traces, all of its
//!   non-space bytes lie inside planted-phrase occurrences (it is pure planning text, e.g.
//!   `let's break this down` or `wait, that's not right`);
//! - a planted phrase of 3–5 words (what word 3–5-gram mining can produce) is recovered when
//!   some mined gram contains it.

use std::process::Command;

use hicra_hier::GramSet;
use hicra_hier::normalize::normalize_str;
use hicra_tasks::lab::{LabConfig, planted_phrases, sft_corpus};

/// Floors asserted below, measured 0.545 and 0.889 (seed 7 traces, k = 100, seed 0).
///
/// Why these levels, and why `--top-frac 0.5` instead of the paper's 0.2: the lab's correct
/// traces hold only 87 distinct letter-bearing 3–5-grams (execution lines are digits with
/// `write`/`carry`), and 77% of them are pure planning text. The one recurring non-planning
/// phrase is the shortcut's claim `no column carries`, which follows every shortcut
/// announcement, so its n-grams have the highest DF of all and fill the top 20% of clusters
/// (at 0.2: precision 0.22, recall 0.22). The branching/backtracking phrases are rare by
/// design (only broken shortcuts that notice) and need the wider cut. A miner that ignored
/// DF or clustered badly would drop the column/shortcut announcements (recall) or keep
/// mostly claim fragments (precision); the floors leave a margin of about one phrase.
const MIN_PRECISION: f64 = 0.45;
const MIN_RECALL: f64 = 0.75;

/// The SFT mix the floors were measured on (the lab's defaults at bb055e0), pinned so
/// that retuning the lab's defaults does not move this test's corpus.
fn measured_mix() -> LabConfig {
    LabConfig {
        shortcut_rate: 0.6,
        backtrack_rate: 0.25,
        column_slip_rate: 0.12,
        shortcut_slip_rate: 0.03,
        no_carry_fraction: 0.4,
        min_digits: 2,
        max_digits: 3,
        ..LabConfig::with_seed(7)
    }
}

fn real_encoder_available() -> bool {
    match hicra_model::io::registry::resolve_model_path("all-minilm-l6-v2") {
        Ok(_) => true,
        Err(e) if std::env::var("HICRA_SKIP_REAL_MODELS").as_deref() == Ok("1") => {
            eprintln!(
                "!!! SKIPPED: all-minilm-l6-v2 is not fetched ({e}); HICRA_SKIP_REAL_MODELS=1"
            );
            false
        }
        Err(e) => panic!(
            "{e}\nrun `hicra models fetch all-minilm-l6-v2` (or set HICRA_SKIP_REAL_MODELS=1 to skip)"
        ),
    }
}

/// Byte mask of planted-phrase occurrences in a normalised text.
fn planted_mask(text: &str, planted: &GramSet) -> Vec<bool> {
    let mut mask = vec![false; text.len()];
    for m in planted.find(text) {
        mask[m.start..m.end].iter_mut().for_each(|b| *b = true);
    }
    mask
}

#[test]
fn mining_recovers_the_planted_planning_phrases() {
    if !real_encoder_available() {
        return;
    }
    let traces = sft_corpus(&measured_mix(), 1500);
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("lab.jsonl");
    let mut lines = String::new();
    for t in &traces {
        lines.push_str(
            &serde_json::json!({"response": t.completion, "correct": t.correct}).to_string(),
        );
        lines.push('\n');
    }
    std::fs::write(&input, lines).unwrap();
    let out = dir.path().join("mined");
    let output = Command::new(env!("CARGO_BIN_EXE_hicra"))
        .args([
            "grams",
            "mine",
            "--top-frac",
            "0.5",
            "--seed",
            "0",
            "--input",
        ])
        .arg(&input)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mined: Vec<String> = std::fs::read_to_string(out.join("grams.txt"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert!(!mined.is_empty());

    let correct: Vec<String> = traces
        .iter()
        .filter(|t| t.correct)
        .map(|t| normalize_str(&t.completion))
        .collect();
    let planted_list: Vec<String> = planted_phrases().iter().map(|p| normalize_str(p)).collect();
    let planted = GramSet::from_grams(planted_list.clone()).unwrap();
    let masks: Vec<Vec<bool>> = correct.iter().map(|t| planted_mask(t, &planted)).collect();

    let mut true_positives = Vec::new();
    let mut false_positives = Vec::new();
    for gram in &mined {
        let single = GramSet::from_grams(vec![gram.clone()]).unwrap();
        let mut seen = 0;
        let pure = correct.iter().zip(&masks).all(|(text, mask)| {
            single.find(text).iter().all(|m| {
                seen += 1;
                text.as_bytes()[m.start..m.end]
                    .iter()
                    .zip(&mask[m.start..m.end])
                    .all(|(b, &planted)| planted || b.is_ascii_whitespace())
            })
        });
        assert!(
            seen > 0,
            "mined gram {gram:?} never occurs in the correct traces"
        );
        if pure {
            true_positives.push(gram)
        } else {
            false_positives.push(gram)
        }
    }
    let minable: Vec<&String> = planted_list
        .iter()
        .filter(|p| (3..=5).contains(&p.split_whitespace().count()))
        .collect();
    let recovered: Vec<&&String> = minable
        .iter()
        .filter(|p| mined.iter().any(|g| g.contains(p.as_str())))
        .collect();
    let short_recovered: Vec<&String> = planted_list
        .iter()
        .filter(|p| p.split_whitespace().count() < 3)
        .filter(|p| mined.iter().any(|g| g.contains(p.as_str())))
        .collect();
    let precision = true_positives.len() as f64 / mined.len() as f64;
    let recall = recovered.len() as f64 / minable.len() as f64;
    eprintln!(
        "lab mining: {} correct traces, {} grams mined; precision {:.3} ({}/{}), recall {:.3} ({}/{} planted 3–5-word phrases); \
         shorter planted phrases inside mined grams: {:?}\nrecovered: {recovered:?}\nfalse positives: {false_positives:?}",
        correct.len(),
        mined.len(),
        precision,
        true_positives.len(),
        mined.len(),
        recall,
        recovered.len(),
        minable.len(),
        short_recovered,
    );
    assert!(
        precision >= MIN_PRECISION,
        "precision {precision:.3} < {MIN_PRECISION}"
    );
    assert!(recall >= MIN_RECALL, "recall {recall:.3} < {MIN_RECALL}");
}
