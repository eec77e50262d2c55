//! The lab's failure anatomy on generated traces whose cause is known: the generator is
//! forced to a strategy, to backtrack or not, and to slip or not; text edits make the
//! no-strategy, no-answer and abandoned-column cases.

use hicra_tasks::anatomy::{Outcome, summarise};
use hicra_tasks::lab::{
    self, DETECT, LabConfig, LabProblem, LabTask, SWITCH, Strategy, TracePlan, diagnose_lab,
    score_lab, write_trace,
};
use hicra_tasks::task_anatomy;
use hicra_tasks::{Diagnosis, Problem, PromptSource, Split, Task};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Diagnoses a completion with the task's own verdict, as the trainer does.
fn diagnose(p: &LabProblem, completion: &str) -> Diagnosis {
    let correct = score_lab(&p.to_problem(), completion).correct;
    diagnose_lab(p, completion, correct)
}

fn plan(strategy: Strategy, backtrack: bool, column_slip: f64, shortcut_slip: f64) -> TracePlan {
    TracePlan {
        strategy,
        backtrack,
        column_slip_rate: column_slip,
        shortcut_slip_rate: shortcut_slip,
    }
}

fn problems(carry: bool) -> Vec<LabProblem> {
    lab::problems(Split::Train, 21)
        .filter(|p| p.has_carry() == carry)
        .take(200)
        .collect()
}

#[test]
fn clean_traces_are_correct_and_openings_judged_by_the_problem() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    for carry in [false, true] {
        for p in problems(carry) {
            let column = write_trace(&p, &TracePlan::clean(Strategy::Column, false), &mut rng);
            let d = diagnose(&p, &column.completion);
            assert_eq!(d.outcome, Outcome::Correct, "{}", column.text());
            assert!(d.valid_opening && !d.needed_backtrack && !d.backtracked);

            let shortcut = write_trace(&p, &TracePlan::clean(Strategy::Shortcut, true), &mut rng);
            let d = diagnose(&p, &shortcut.completion);
            assert_eq!(d.outcome, Outcome::Correct, "{}", shortcut.text());
            assert_eq!(d.valid_opening, !carry, "{}", shortcut.text());
            assert_eq!(d.needed_backtrack, carry);
            assert_eq!(d.backtracked, carry, "{}", shortcut.text());
        }
    }
}

#[test]
fn a_shortcut_finished_on_a_carrying_problem_is_a_planning_failure() {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    for p in problems(true) {
        let t = write_trace(&p, &TracePlan::clean(Strategy::Shortcut, false), &mut rng);
        assert!(!t.correct);
        let d = diagnose(&p, &t.completion);
        assert_eq!(d.outcome, Outcome::Planning, "{}", t.text());
        assert!(!d.valid_opening && d.needed_backtrack && !d.backtracked);
    }
}

#[test]
fn slips_in_a_valid_strategy_are_execution_failures() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    for carry in [false, true] {
        for p in problems(carry) {
            // Every column step slips.
            let t = write_trace(&p, &plan(Strategy::Column, false, 1.0, 0.0), &mut rng);
            assert!(t.slips > 0 && !t.correct);
            let d = diagnose(&p, &t.completion);
            assert_eq!(d.outcome, Outcome::Execution, "{}", t.text());
            assert!(d.valid_opening && !d.backtracked);

            // The shortcut, backtracking when it breaks, then slipping in the column method.
            let t = write_trace(&p, &plan(Strategy::Shortcut, true, 1.0, 0.0), &mut rng);
            let d = diagnose(&p, &t.completion);
            if carry {
                assert!(t.backtracked && !t.correct);
                assert_eq!(d.outcome, Outcome::Execution, "{}", t.text());
                assert!(d.backtracked && d.needed_backtrack);
            } else {
                assert_eq!(d.outcome, Outcome::Correct, "{}", t.text());
            }
        }
    }
    // Shortcut slips on problems where the shortcut is valid.
    for p in problems(false) {
        let t = write_trace(&p, &plan(Strategy::Shortcut, true, 0.0, 1.0), &mut rng);
        assert!(t.slips > 0 && !t.correct);
        let d = diagnose(&p, &t.completion);
        assert_eq!(d.outcome, Outcome::Execution, "{}", t.text());
        assert!(d.valid_opening && !d.backtracked);
    }
}

#[test]
fn no_strategy_phrase_is_a_planning_failure() {
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    for p in problems(true) {
        let t = write_trace(&p, &plan(Strategy::Column, false, 1.0, 0.0), &mut rng);
        let (_, steps) = t.completion.split_once('\n').unwrap();
        let d = diagnose(&p, steps);
        assert_eq!(d.outcome, Outcome::Planning, "{steps}");
        assert!(!d.valid_opening && !d.needed_backtrack);
        // Without a phrase but right, it is still correct: the grader decides that.
        let clean = write_trace(&p, &TracePlan::clean(Strategy::Column, false), &mut rng);
        let (_, steps) = clean.completion.split_once('\n').unwrap();
        let d = diagnose(&p, steps);
        assert_eq!(d.outcome, Outcome::Correct);
        assert!(!d.valid_opening);
    }
}

#[test]
fn a_missing_answer_is_a_format_failure() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    for p in problems(true).into_iter().chain(problems(false)) {
        let t = write_trace(&p, &TracePlan::clean(Strategy::Shortcut, false), &mut rng);
        let (reasoning, _) = t.completion.rsplit_once('\n').unwrap();
        let d = diagnose(&p, reasoning);
        assert_eq!(d.outcome, Outcome::Format, "{reasoning}");
        // Truncated inside the answer line: `answer:` with no number.
        let d = diagnose(&p, &format!("{reasoning}\nanswer:"));
        assert_eq!(d.outcome, Outcome::Format);
    }
}

#[test]
fn abandoning_the_column_method_is_a_planning_failure() {
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    for p in problems(true) {
        let column = write_trace(&p, &TracePlan::clean(Strategy::Column, false), &mut rng);
        let blind = write_trace(&p, &TracePlan::clean(Strategy::Shortcut, false), &mut rng);
        let column_lines: Vec<&str> = column.completion.lines().collect();
        let shortcut_steps: Vec<&str> = blind.completion.lines().skip(1).collect();
        let text = [
            &column_lines[..2],
            &[DETECT[0], SWITCH[0]],
            &shortcut_steps[..],
        ]
        .concat()
        .join("\n");
        let d = diagnose(&p, &text);
        assert_eq!(d.outcome, Outcome::Planning, "{text}");
        assert!(d.valid_opening && d.backtracked && !d.needed_backtrack);
    }
}

#[test]
fn the_sft_mix_is_diagnosed_by_its_known_causes() {
    let config = LabConfig::default();
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut diagnoses = Vec::new();
    let mut correct = 0;
    for p in lab::problems(Split::Train, 8).take(3000) {
        let t = lab::sft_example(&p, &config, &mut rng);
        let d = diagnose(&p, &t.completion);
        let expected = if t.correct {
            Outcome::Correct
        } else if t.strategy == Strategy::Shortcut && p.has_carry() && !t.backtracked {
            Outcome::Planning
        } else {
            assert!(t.slips > 0);
            Outcome::Execution
        };
        assert_eq!(d.outcome, expected, "{}", t.text());
        assert_eq!(d.backtracked, t.backtracked);
        assert_eq!(
            d.valid_opening,
            t.strategy == Strategy::Column || !p.has_carry()
        );
        correct += usize::from(t.correct);
        diagnoses.push(d);
    }
    let a = summarise(&diagnoses);
    let accuracy = correct as f64 / diagnoses.len() as f64;
    let total = a.planning_error_frac + a.execution_error_frac + a.format_error_frac + accuracy;
    assert!((total - 1.0).abs() < 1e-12, "{a:?} accuracy {accuracy}");
    assert!(a.planning_error_frac > 0.0 && a.execution_error_frac > 0.0);
    assert_eq!(a.format_error_frac, 0.0);
    // The measured rate of backtracking out of a broken shortcut is the SFT knob.
    assert!(
        (a.backtrack_rate - config.backtrack_rate).abs() < 0.05,
        "{a:?}"
    );
    let expected_choice = 1.0 - config.shortcut_rate * (1.0 - config.no_carry_fraction);
    assert!(
        (a.strategy_choice_acc - expected_choice).abs() < 0.05,
        "{a:?}"
    );
}

#[test]
fn without_carrying_problems_planning_failures_cannot_occur_and_rates_are_zero() {
    let config = LabConfig {
        no_carry_fraction: 1.0,
        ..LabConfig::default()
    };
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    let diagnoses: Vec<Diagnosis> = lab::problems_with(Split::Train, &config)
        .take(500)
        .map(|p| diagnose(&p, &lab::sft_example(&p, &config, &mut rng).completion))
        .collect();
    let a = summarise(&diagnoses);
    assert_eq!(a.planning_error_frac, 0.0);
    assert_eq!(a.backtrack_rate, 0.0);
    assert_eq!(a.strategy_choice_acc, 1.0);
    assert!(a.execution_error_frac > 0.0);
}

#[test]
fn the_lab_task_diagnoses_through_the_task_trait() {
    let task = LabTask::new(LabConfig::default()).unwrap();
    let problem = task.validation_problems()[0].clone();
    let p = LabProblem::from_problem(&problem).unwrap();
    let response = format!("let's break this down\nanswer: {}", p.answer() + 1);
    let verdict = task.score(&problem, &response).correct;
    let d = task.diagnose(&problem, &response, verdict).unwrap();
    assert_eq!(d.outcome, Outcome::Execution);
    let right = format!("answer: {}", p.answer());
    let verdict = task.score(&problem, &right).correct;
    assert_eq!(
        task.diagnose(&problem, &right, verdict).unwrap().outcome,
        Outcome::Correct
    );
    let foreign = Problem {
        id: "x".into(),
        prompt: PromptSource::Text("What is 2+2?".into()),
        gold: serde_json::json!(4),
        data_source: "other".into(),
    };
    assert_eq!(task.diagnose(&foreign, "answer: 4", true), None);
}

#[test]
fn task_anatomy_covers_every_graded_response_or_none() {
    let task = LabTask::new(LabConfig::default()).unwrap();
    let config = task.config().clone();
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let problems: Vec<Problem> = task.validation_problems().to_vec();
    let responses: Vec<String> = problems
        .iter()
        .map(|p| {
            let lp = LabProblem::from_problem(p).unwrap();
            lab::sft_example(&lp, &config, &mut rng).completion
        })
        .collect();
    let verdicts: Vec<bool> = problems
        .iter()
        .zip(&responses)
        .map(|(p, r)| task.score(p, r).correct)
        .collect();
    let graded = || {
        problems
            .iter()
            .zip(&responses)
            .zip(&verdicts)
            .map(|((p, r), &c)| (p, r.as_str(), c))
    };
    let a = task_anatomy(&task, graded()).unwrap();
    let accuracy = verdicts.iter().filter(|c| **c).count() as f64 / verdicts.len() as f64;
    let total = a.planning_error_frac + a.execution_error_frac + a.format_error_frac + accuracy;
    assert!((total - 1.0).abs() < 1e-12, "{a:?} accuracy {accuracy}");
    // One response the task cannot diagnose: no anatomy at all.
    let foreign = Problem {
        id: "x".into(),
        prompt: PromptSource::Text("What is 2+2?".into()),
        gold: serde_json::json!(4),
        data_source: "other".into(),
    };
    let with_foreign = graded().chain([(&foreign, "answer: 4", true)]);
    assert_eq!(task_anatomy(&task, with_foreign), None);
}
