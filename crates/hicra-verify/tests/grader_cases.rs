//! Agreement with the small public grader tables in `shared/data/grader-cases`
//! (hendrycks MATH, OlympiadBench, Qwen2.5-Math). The disagreements are listed and explained
//! in the crate docs; this test checks the list stays exact and agreement stays >= 95%.

use hicra_verify::{Config, Gold, compare_answer};
use serde_json::Value;

const DATA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/data/grader-cases"
);

/// Cases where this verifier deliberately differs (see the crate docs): `(gold, answer)`.
const KNOWN_DISAGREEMENTS: &[(&str, &str)] =
    &[("10, 4, -2", "4, 10, -2"), ("0.1, 4, 2", "4, .1, 2")];

struct Case {
    table: &'static str,
    gold: String,
    answer: String,
    expected: bool,
    tolerance: Option<f64>,
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    for line in read(&format!(
        "{DATA}/hendrycks-math/math_equivalence_test_cases.jsonl"
    ))
    .lines()
    {
        let v: Value = serde_json::from_str(line).expect("hendrycks line is JSON");
        out.push(Case {
            table: "hendrycks",
            gold: v["a"].as_str().expect("a").to_string(),
            answer: v["b"].as_str().expect("b").to_string(),
            expected: v["expected"].as_bool().expect("expected"),
            tolerance: None,
        });
    }
    let ob: Value = serde_json::from_str(&read(&format!(
        "{DATA}/olympiadbench/scoring_examples.json"
    )))
    .expect("JSON");
    for group in ob.as_array().expect("array") {
        let gold = group["GT"].as_str().expect("GT").to_string();
        for ans in group["Ans"].as_array().expect("Ans") {
            // A precision list (one per answer) is applied as its largest value.
            let tolerance = match &ans["precision"] {
                Value::Number(n) => n.as_f64(),
                Value::Array(a) => a.iter().filter_map(Value::as_f64).reduce(f64::max),
                _ => None,
            };
            out.push(Case {
                table: "olympiadbench",
                gold: gold.clone(),
                answer: ans["answer"].as_str().expect("answer").to_string(),
                expected: ans["equal"].as_bool().expect("equal"),
                tolerance,
            });
        }
    }
    for line in read(&format!(
        "{DATA}/qwen2.5-math/qwen_grader_commented_cases.jsonl"
    ))
    .lines()
    {
        let v: Value = serde_json::from_str(line).expect("qwen line is JSON");
        let Some(expected) = v["intended_equal_inferred"].as_bool() else {
            continue;
        };
        out.push(Case {
            table: "qwen2.5-math",
            gold: v["gt"].as_str().expect("gt").to_string(),
            answer: v["pred"].as_str().expect("pred").to_string(),
            expected,
            tolerance: None,
        });
    }
    out
}

#[test]
fn agrees_with_public_grader_tables() {
    let cases = cases();
    let mut disagreements = Vec::new();
    for c in &cases {
        let config = Config {
            abs_tolerance: c.tolerance,
            ..Config::default()
        };
        let (got, reason) = compare_answer(&Gold::from(c.gold.as_str()), &c.answer, &config);
        if got != c.expected {
            println!(
                "[{}] {:?} vs {:?}: expected {}, got {} ({reason})",
                c.table, c.gold, c.answer, c.expected, got
            );
            disagreements.push((c.gold.as_str(), c.answer.as_str()));
        }
    }
    let agreement = 1.0 - disagreements.len() as f64 / cases.len() as f64;
    println!(
        "agreement {:.4} over {} cases ({} disagreements)",
        agreement,
        cases.len(),
        disagreements.len()
    );
    assert_eq!(cases.len(), 16 + 36 + 16, "table sizes changed");
    assert!(agreement >= 0.95, "agreement {agreement}");
    assert_eq!(
        disagreements, KNOWN_DISAGREEMENTS,
        "the documented disagreement list is out of date"
    );
}
