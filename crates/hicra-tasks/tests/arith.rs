//! Arithmetic word problems: golds are right (re-derived from the text by an independent
//! reading of each story), splits are disjoint, the task grades boxed answers.

use std::collections::HashSet;

use hicra_tasks::arith::{self, ArithConfig, ArithProblem, ArithTask};
use hicra_tasks::{FormattedPrompt, Split, Task};

/// Solves a generated story from its words and numbers.
fn solve(text: &str) -> i64 {
    let n: Vec<i64> = text
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    if text.contains("finds") {
        n[0] + n[1]
    } else if text.contains("of them to") || text.contains("How many more") {
        n[0] - n[1]
    } else if text.contains("Each box holds") {
        n[0] * n[1]
    } else if text.contains("equally among") {
        n[0] / n[1]
    } else if text.contains("and then gives") {
        n[0] + n[1] - n[2]
    } else if text.contains("bags with") || text.contains("pages every day") {
        n[0] * n[1] + n[2]
    } else if text.contains("change") {
        n[2] - n[0] * n[1]
    } else if text.contains("rows of") {
        n[0] * n[1] - n[2]
    } else {
        panic!("unknown story: {text}")
    }
}

#[test]
fn golds_match_the_stories() {
    let config = ArithConfig::default();
    let mut steps = [0; 3];
    for i in 0..3000 {
        let p = arith::problem_at(Split::Train, &config, 4, i);
        assert_eq!(p.answer, solve(&p.text), "{}", p.text);
        assert!(p.answer >= 0, "{}", p.text);
        steps[p.steps as usize] += 1;
    }
    let two_step_share = f64::from(steps[2]) / 3000.0;
    assert!(
        (two_step_share - config.two_step_fraction).abs() < 0.04,
        "{steps:?}"
    );
    assert_eq!(steps[0], 0);
}

#[test]
fn splits_are_disjoint_and_deterministic() {
    let config = ArithConfig::default();
    let validation: HashSet<String> = arith::validation_set(&config)
        .into_iter()
        .map(|p| p.text)
        .collect();
    assert_eq!(validation.len(), config.validation_size);
    let train: Vec<ArithProblem> = (0..5000)
        .map(|i| arith::problem_at(Split::Train, &config, 0, i))
        .collect();
    assert!(train.iter().all(|p| !validation.contains(&p.text)));
    assert_eq!(train[17], arith::problem_at(Split::Train, &config, 0, 17));
    assert_ne!(train[17], arith::problem_at(Split::Train, &config, 1, 17));
}

#[test]
fn arith_task_asks_for_boxed_answers_and_grades_them() {
    let task = ArithTask::new(ArithConfig::default()).unwrap();
    let p = task.train_problem(3);
    let FormattedPrompt::Chat(messages) = task.prompt(&p) else {
        panic!("arith prompts are chat messages")
    };
    assert_eq!(messages.len(), 1);
    assert!(messages[0].content.contains("\\boxed{}"));
    let gold = p.gold.as_i64().unwrap();
    assert!(task.score(&p, &format!("so \\boxed{{{gold}}}")).correct);
    assert!(
        !task
            .score(&p, &format!("so \\boxed{{{}}}", gold + 1))
            .correct
    );
    assert_eq!(task.score(&p, &format!("so \\boxed{{{gold}}}")).reward, 1.0);
}
