//! Dataset iteration: seeded shuffles, epoch-wise streams by position, resumable cursors,
//! and the data-set-backed MathTask.

use hicra_tasks::{Cursor, Dataset, MathTask, Problem, PromptFormat, PromptSource, Task};
use serde_json::json;

fn dataset(n: usize) -> Dataset {
    let problems = (0..n)
        .map(|i| Problem {
            id: i.to_string(),
            prompt: PromptSource::Text(format!("What is {i}+0?")),
            gold: json!(i.to_string()),
            data_source: "toy".into(),
        })
        .collect();
    Dataset::new("toy", problems)
}

fn ids(problems: &[Problem]) -> Vec<usize> {
    problems.iter().map(|p| p.id.parse().unwrap()).collect()
}

#[test]
fn each_epoch_is_a_permutation_and_epochs_differ() {
    let d = dataset(20);
    let epoch0: Vec<usize> = (0..20).map(|i| d.at(3, i).id.parse().unwrap()).collect();
    let epoch1: Vec<usize> = (20..40).map(|i| d.at(3, i).id.parse().unwrap()).collect();
    let mut sorted = epoch0.clone();
    sorted.sort();
    assert_eq!(sorted, (0..20).collect::<Vec<_>>());
    let mut sorted1 = epoch1.clone();
    sorted1.sort();
    assert_eq!(sorted1, sorted);
    assert_ne!(epoch0, epoch1);
    assert_ne!(epoch0, (0..20).collect::<Vec<_>>());
}

#[test]
fn a_saved_cursor_resumes_the_same_stream() {
    let d = dataset(7);
    let mut straight = Cursor {
        seed: 9,
        position: 0,
    };
    let all = d.next_batch(&mut straight, 30);
    let mut first = Cursor {
        seed: 9,
        position: 0,
    };
    let head = d.next_batch(&mut first, 11);
    let saved = serde_json::to_string(&first).unwrap();
    let mut resumed: Cursor = serde_json::from_str(&saved).unwrap();
    let tail = d.next_batch(&mut resumed, 19);
    assert_eq!(ids(&[head, tail].concat()), ids(&all));
    assert_eq!(resumed.position, 30);
}

#[test]
fn shuffle_is_seeded() {
    let mut a = dataset(30);
    let mut b = dataset(30);
    a.shuffle(1);
    b.shuffle(1);
    assert_eq!(ids(&a.problems), ids(&b.problems));
    b.shuffle(2);
    assert_ne!(ids(&a.problems), ids(&b.problems));
}

#[test]
fn validation_split_is_disjoint_and_complete() {
    let d = dataset(50);
    let (train, validation) = d.split_validation(10, 4);
    assert_eq!((train.len(), validation.len()), (40, 10));
    let mut all = [ids(&train.problems), ids(&validation.problems)].concat();
    all.sort();
    assert_eq!(all, (0..50).collect::<Vec<_>>());
}

#[test]
fn math_task_streams_the_dataset_and_grades_with_the_verifier() {
    let (train, validation) = dataset(12).split_validation(4, 0);
    let task = MathTask::new(train, validation, PromptFormat::default(), 5);
    assert_eq!(task.train_len(), Some(8));
    assert_eq!(task.validation_problems().len(), 4);
    let p = task.train_problem(3);
    assert_eq!(p, task.train_problem(3));
    let gold = p.gold_text();
    assert!(task.score(&p, &format!("\\boxed{{{gold}}}")).correct);
    assert!(!task.score(&p, "\\boxed{-1}").correct);
    let prompt = task.prompt(&p);
    assert!(
        prompt.messages().unwrap()[0]
            .content
            .ends_with(hicra_tasks::BOXED_INSTRUCTION)
    );
}
