//! Builds the [`Task`] named by the config's `[task]` section.

use std::path::Path;

use hicra_tasks::arith::ArithTask;
use hicra_tasks::lab::LabTask;
use hicra_tasks::{Dataset, LoadOptions, MathTask, PromptFormat, Task};

use crate::config::{TaskKind, TaskSection};
use crate::error::{Result, RlError};

fn load_dataset(path: &str) -> Result<Dataset> {
    let loaded = Dataset::load(Path::new(path), &LoadOptions::default())
        .map_err(|e| RlError::Task(format!("{path}: {e}")))?;
    for s in &loaded.skipped {
        eprintln!("warning: skipped malformed record {s}");
    }
    if loaded.dataset.is_empty() {
        return Err(RlError::Task(format!("{path}: no usable problems")));
    }
    Ok(loaded.dataset)
}

/// Checks that holding `val_holdout` problems out of a training file of `n` leaves problems
/// on both sides.
fn check_holdout(section: &TaskSection, n: usize) -> Result<()> {
    let holdout = section.val_holdout;
    if holdout == 0 {
        return Err(RlError::config(
            "task.val_holdout",
            "is 0 and task.val_path is empty, which leaves no validation problems: hold some out \
             (e.g. 100) or give a validation file",
        ));
    }
    if holdout >= n {
        return Err(RlError::config(
            "task.val_holdout",
            format!(
                "= {holdout} holds out every problem of task.train_path ({}, {n} usable \
                 problems) and leaves none to train on: hold out fewer, or give task.val_path",
                section.train_path
            ),
        ));
    }
    Ok(())
}

/// The task of `section` (`lab`, `arithmetic` or `dataset`).
pub fn build_task(section: &TaskSection) -> Result<Box<dyn Task>> {
    let t = |e: hicra_tasks::TaskError| RlError::Task(e.to_string());
    Ok(match section.kind {
        TaskKind::Lab => Box::new(LabTask::new(section.lab.clone()).map_err(t)?),
        TaskKind::Arithmetic => Box::new(ArithTask::new(section.arith.clone()).map_err(t)?),
        TaskKind::Dataset => {
            let train = load_dataset(&section.train_path)?;
            let (train, val) = if section.val_path.is_empty() {
                check_holdout(section, train.len())?;
                train.split_validation(section.val_holdout, section.seed)
            } else {
                (train, load_dataset(&section.val_path)?)
            };
            Box::new(MathTask::new(
                train,
                val,
                PromptFormat::default(),
                section.seed,
            ))
        }
    })
}
