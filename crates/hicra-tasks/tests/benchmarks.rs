//! The seven shared math benchmarks load with their known layouts: row counts equal
//! MANIFEST.tsv, nothing is skipped, golds are readable and verify against themselves.

use std::path::{Path, PathBuf};

use hicra_tasks::{Dataset, LoadOptions, OnError, Problem, PromptSource};

const MATH_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data/math");

/// `(name, file, rows)` from MANIFEST.tsv.
fn manifest() -> Vec<(String, PathBuf, usize)> {
    let text = std::fs::read_to_string(Path::new(MATH_DIR).join("MANIFEST.tsv")).unwrap();
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let cols: Vec<&str> = line.split('\t').collect();
            (
                cols[0].to_string(),
                Path::new(MATH_DIR).join(cols[1]),
                cols[2].parse().unwrap(),
            )
        })
        .collect()
}

fn load(path: &Path) -> Dataset {
    let options = LoadOptions {
        on_error: OnError::Fail,
        ..LoadOptions::default()
    };
    let loaded = Dataset::load(path, &options).unwrap_or_else(|e| panic!("{e}"));
    assert!(loaded.skipped.is_empty());
    loaded.dataset
}

fn text(problem: &Problem) -> &str {
    match &problem.prompt {
        PromptSource::Text(t) => t,
        PromptSource::Messages(_) => panic!("benchmark prompts are plain text"),
    }
}

#[test]
fn all_seven_benchmarks_load_with_manifest_row_counts() {
    let sets = manifest();
    assert_eq!(sets.len(), 7);
    for (name, path, rows) in sets {
        let dataset = load(&path);
        assert_eq!(dataset.name, name);
        assert_eq!(dataset.len(), rows, "{name}");
        for p in dataset.iter() {
            assert!(!text(p).trim().is_empty(), "{name} {}", p.id);
            assert!(!p.gold_text().trim().is_empty(), "{name} {}", p.id);
            assert_eq!(p.data_source, name);
        }
        let ids: std::collections::HashSet<_> = dataset.iter().map(|p| &p.id).collect();
        assert_eq!(ids.len(), rows, "{name}: ids are unique");
    }
}

#[test]
fn golds_are_read_per_layout() {
    let by_name = |name: &str| {
        let (_, path, _) = manifest().into_iter().find(|(n, _, _)| n == name).unwrap();
        load(&path)
    };
    // gsm8k: the number after ####, thousands separators removed.
    let gsm8k = by_name("gsm8k");
    for p in gsm8k.iter() {
        let gold = p.gold.as_str().unwrap();
        assert!(gold.parse::<f64>().is_ok(), "gsm8k gold {gold:?}");
    }
    // aime24: strings, leading zeros kept.
    let aime24 = by_name("aime24");
    assert!(aime24.iter().all(|p| p.gold.is_string()));
    assert!(
        aime24
            .iter()
            .any(|p| p.gold.as_str().unwrap().starts_with('0'))
    );
    // amc23: numbers.
    assert!(by_name("amc23").iter().all(|p| p.gold.is_number()));
    // minerva: the boxed answer of the solution, no \boxed left.
    assert!(
        by_name("minerva_math")
            .iter()
            .all(|p| !p.gold_text().contains("\\boxed"))
    );
    // olympiadbench: one answer unwrapped from its list, several kept as a list.
    let olympiad = by_name("olympiadbench");
    assert!(
        olympiad
            .iter()
            .all(|p| p.gold.is_string() || p.gold.as_array().is_some_and(|a| a.len() > 1))
    );
}

#[test]
fn aime25_lost_backslashes_are_repaired() {
    let (_, path, _) = manifest()
        .into_iter()
        .find(|(n, _, _)| n == "aime25")
        .unwrap();
    let raw = std::fs::read_to_string(&path).unwrap();
    let raw_control = raw
        .lines()
        .filter(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["problem"].as_str().unwrap().contains(['\u{000C}', '\t'])
        })
        .count();
    assert!(raw_control > 0, "the raw file has damaged problems");
    let dataset = load(&path);
    for p in dataset.iter() {
        assert!(!text(p).contains(['\u{000C}', '\t']), "{}", text(p));
    }
    assert!(dataset.iter().any(|p| text(p).contains("\\frac")));
    assert!(dataset.iter().any(|p| text(p).contains("\\triangle DEF")));
}

#[test]
fn every_gold_parses_and_verifies_against_itself_boxed() {
    let config = hicra_verify::Config {
        mode: hicra_verify::ExtractMode::StrictBoxed,
        ..hicra_verify::Config::default()
    };
    for (name, path, _) in manifest() {
        let dataset = load(&path);
        let mut failures = Vec::new();
        for p in dataset.iter() {
            let gold = p.gold().unwrap_or_else(|e| panic!("{name} {}: {e}", p.id));
            let response = format!("The answer is \\boxed{{{}}}.", p.gold_text());
            let verdict = hicra_verify::verify(&gold, &response, &config);
            if !verdict.correct {
                failures.push(format!("{} {:?}: {}", p.id, p.gold_text(), verdict.reason));
            }
        }
        assert!(
            failures.is_empty(),
            "{name}: {} of {} fail: {:?}",
            failures.len(),
            dataset.len(),
            &failures[..failures.len().min(10)]
        );
    }
}
