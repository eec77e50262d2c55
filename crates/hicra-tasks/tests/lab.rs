//! The reasoning lab: determinism, disjoint splits, planted phrases (all from the paper's
//! Strategic Gram list, present in traces, and the only grams there), correct clean traces.

use std::collections::HashSet;

use hicra_tasks::lab::{
    self, LabConfig, LabProblem, LabTask, Strategy, TracePlan, planted_phrases, write_trace,
};
use hicra_tasks::{FormattedPrompt, Split, Task};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

const PAPER_GRAMS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/reference/strategic_grams_paper.txt"
);

fn paper_grams() -> Vec<String> {
    std::fs::read_to_string(PAPER_GRAMS)
        .unwrap()
        .lines()
        .map(|l| l.trim().to_lowercase())
        .filter(|l| !l.is_empty())
        .collect()
}

#[test]
fn every_planted_phrase_is_a_paper_gram() {
    let grams: HashSet<String> = paper_grams().into_iter().collect();
    assert_eq!(grams.len(), 249);
    for phrase in planted_phrases() {
        assert!(
            grams.contains(phrase),
            "{phrase:?} is not in the paper's list"
        );
    }
}

#[test]
fn streams_are_deterministic_and_seeded() {
    let a: Vec<_> = lab::problems(Split::Train, 7).take(50).collect();
    let b: Vec<_> = lab::problems(Split::Train, 7).take(50).collect();
    let c: Vec<_> = lab::problems(Split::Train, 8).take(50).collect();
    assert_eq!(a, b);
    assert_ne!(a, c);
    let config = LabConfig::with_seed(7);
    assert_eq!(lab::problem_at(Split::Train, &config, 7, 13), a[13]);
    let t1 = lab::sft_corpus(&config, 20);
    let t2 = lab::sft_corpus(&config, 20);
    assert_eq!(t1, t2);
}

#[test]
fn train_and_validation_are_disjoint_across_seeds() {
    let config = LabConfig::default();
    let validation: HashSet<LabProblem> = lab::validation_set(&config).into_iter().collect();
    assert_eq!(validation.len(), config.validation_size);
    for seed in [0, 1, 99] {
        for p in lab::problems(Split::Train, seed).take(20_000) {
            assert!(!validation.contains(&p), "{} is in both splits", p.key());
            assert_eq!(p.split(), Split::Train);
        }
    }
    assert!(validation.iter().all(|p| p.split() == Split::Validation));
}

#[test]
fn problems_mix_carrying_and_non_carrying_sums() {
    let config = LabConfig::default();
    let problems: Vec<_> = lab::problems(Split::Train, 3).take(2000).collect();
    let carrying = problems.iter().filter(|p| p.has_carry()).count() as f64 / 2000.0;
    let expected = 1.0 - config.no_carry_fraction;
    assert!(
        (carrying - expected).abs() < 0.06,
        "carrying share {carrying}"
    );
    for p in &problems {
        let (da, db) = (p.a.to_string().len(), p.b.to_string().len());
        assert_eq!(da, db);
        assert!((config.min_digits..=config.max_digits).contains(&da));
    }
}

#[test]
fn clean_traces_answer_correctly_whatever_the_strategy() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    for p in lab::problems(Split::Train, 11).take(500) {
        for (strategy, backtrack) in [(Strategy::Column, false), (Strategy::Shortcut, true)] {
            let trace = write_trace(&p, &TracePlan::clean(strategy, backtrack), &mut rng);
            assert_eq!(trace.slips, 0);
            assert!(trace.correct, "{}", trace.text());
            assert_eq!(
                lab::extract_answer(&trace.completion),
                Some(p.answer().to_string())
            );
            assert_eq!(
                trace.backtracked,
                strategy == Strategy::Shortcut && p.has_carry()
            );
        }
        // A shortcut that does not notice a carry answers wrongly; without carries it is right.
        let blind = write_trace(&p, &TracePlan::clean(Strategy::Shortcut, false), &mut rng);
        assert_eq!(blind.correct, !p.has_carry(), "{}", blind.text());
    }
}

#[test]
fn slipped_traces_are_wrong_and_counted() {
    let config = LabConfig::default();
    let traces = lab::sft_corpus(&config, 3000);
    let slipped: Vec<_> = traces.iter().filter(|t| t.slips > 0).collect();
    assert!(!slipped.is_empty());
    // A trace is correct exactly when it neither slipped nor finished a broken shortcut.
    for t in &traces {
        let p = LabProblem::from_problem(&hicra_tasks::Problem {
            id: String::new(),
            prompt: hicra_tasks::PromptSource::Text(t.prompt.clone()),
            gold: serde_json::Value::Null,
            data_source: String::new(),
        })
        .unwrap();
        let blind_shortcut = t.strategy == Strategy::Shortcut && p.has_carry() && !t.backtracked;
        assert_eq!(t.correct, t.slips == 0 && !blind_shortcut, "{}", t.text());
        assert_eq!(t.correct, t.answer == p.answer());
    }
    let accuracy = traces.iter().filter(|t| t.correct).count() as f64 / traces.len() as f64;
    assert!(
        (0.3..0.8).contains(&accuracy),
        "SFT mix accuracy {accuracy}"
    );
    assert!(traces.iter().any(|t| t.backtracked));
    assert!(traces.iter().any(|t| t.strategy == Strategy::Column));
}

#[test]
fn planted_phrases_appear_and_are_the_only_grams_in_traces() {
    let grams = paper_grams();
    let planted = planted_phrases();
    let traces = lab::sft_corpus(&LabConfig::default(), 3000);
    let mut seen = HashSet::new();
    for t in &traces {
        let text = t.completion.to_lowercase();
        // Byte ranges covered by planted phrases.
        let mut covered = vec![false; text.len()];
        for phrase in &planted {
            for (start, _) in text.match_indices(phrase) {
                seen.insert(*phrase);
                covered[start..start + phrase.len()]
                    .iter_mut()
                    .for_each(|c| *c = true);
            }
        }
        for gram in &grams {
            for (start, _) in text.match_indices(gram.as_str()) {
                assert!(
                    covered[start..start + gram.len()].iter().all(|c| *c),
                    "gram {gram:?} outside a planted phrase in:\n{}",
                    t.completion
                );
            }
        }
        assert!(
            planted.iter().any(|p| text.starts_with(p)),
            "{}",
            t.completion
        );
        // The prompt carries no planning phrase.
        assert!(
            grams
                .iter()
                .all(|g| !t.prompt.to_lowercase().contains(g.as_str()))
        );
    }
    assert_eq!(seen.len(), planted.len(), "every planted phrase is used");
}

#[test]
fn traces_are_short() {
    let traces = lab::sft_corpus(&LabConfig::default(), 2000);
    let mean = traces.iter().map(|t| t.text().len()).sum::<usize>() as f64 / 2000.0;
    let max = traces.iter().map(|t| t.text().len()).max().unwrap();
    assert!(mean < 150.0 && max < 300, "mean {mean} chars, max {max}");
}

#[test]
fn lab_task_serves_raw_prompts_and_scores_exact_answers() {
    let task = LabTask::new(LabConfig::default()).unwrap();
    let p = task.train_problem(0);
    assert_eq!(p, task.train_problem(0));
    let lab_p = LabProblem::from_problem(&p).unwrap();
    let FormattedPrompt::Raw(prompt) = task.prompt(&p) else {
        panic!("lab prompts are raw")
    };
    assert_eq!(prompt, lab_p.prompt());
    let right = format!("let's break this down\n...\nanswer: {}", lab_p.answer());
    let wrong = format!("answer: {}\nanswer: {}", lab_p.answer(), lab_p.answer() + 1);
    let s = task.score(&p, &right);
    assert!(s.correct && s.reward == 1.0);
    assert_eq!(s.extracted, Some(lab_p.answer().to_string()));
    let s = task.score(&p, &wrong);
    assert!(!s.correct && s.reward == 0.0);
    let s = task.score(&p, "no final line");
    assert_eq!((s.correct, s.extracted), (false, None));
    assert_eq!(
        task.validation_problems().len(),
        LabConfig::default().validation_size
    );
    assert_eq!(task.train_batch(5, 3)[1], task.train_problem(6));
}

#[test]
fn invalid_lab_settings_are_rejected_by_name() {
    let bad = LabConfig {
        backtrack_rate: 1.5,
        ..LabConfig::default()
    };
    let err = LabTask::new(bad).err().unwrap().to_string();
    assert!(err.contains("lab.backtrack_rate"), "{err}");
    let bad = LabConfig {
        min_digits: 5,
        max_digits: 3,
        ..LabConfig::default()
    };
    assert!(LabTask::new(bad).is_err());
}

#[test]
fn tokenizer_corpus_covers_every_phrase_and_digit() {
    let corpus = lab::tokenizer_corpus();
    let all = corpus.join("\n");
    for phrase in planted_phrases() {
        assert!(all.contains(phrase), "{phrase}");
    }
    for d in '0'..='9' {
        assert!(all.contains(d));
    }
    assert!(all.contains("answer: ") && all.contains("carry 1") && all.contains("Q: "));
}

#[test]
fn the_units_habit_picks_the_strategy_from_the_units_column_alone() {
    let config = LabConfig {
        habit_rate: 1.0,
        ..LabConfig::with_seed(3)
    };
    let traces = lab::sft_corpus(&config, 2000);
    let problems: Vec<LabProblem> = lab::problems_with(Split::Train, &config)
        .take(2000)
        .collect();
    let mut habit_wrong = 0;
    for (t, p) in traces.iter().zip(&problems) {
        let (x, y) = *p.columns().last().unwrap();
        let expected = if x + y < 10 {
            Strategy::Shortcut
        } else {
            Strategy::Column
        };
        assert_eq!(t.strategy, expected, "{}", t.text());
        assert_eq!(lab::units_habit(p), expected);
        if expected == Strategy::Shortcut && p.has_carry() {
            habit_wrong += 1;
        }
    }
    // The habit fails exactly where a carry sits outside the units column: that happens.
    assert!(habit_wrong > 100, "{habit_wrong} habit failures in 2000");
}
