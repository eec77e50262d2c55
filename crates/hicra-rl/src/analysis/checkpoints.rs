//! Checkpoints of a run and the steps whose responses each one rescores. Found in a folder:
//! verl's `global_step_N/actor/huggingface`, TRL's `checkpoint-N`, hicra's `step-N/hf` (in a
//! run's `checkpoints/`, or the run directory itself); the model a run started from counts as
//! step 0.
//!
//! Matching: in all three trainers the responses logged at step `S` were sampled by the
//! weights saved as step `S - 1` (a step logs its rollouts, then updates and saves). So
//! checkpoint `C` rescores step `C + 1`, the responses it sampled (then its token entropies
//! are the ones the trainer saw); when no step `C + 1` was logged, it rescores step `C`
//! (responses sampled one update earlier), and the row says which checkpoint it used. A
//! checkpoint with neither step logged is named as unmatched.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// One checkpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    /// Its name as found (`global_step_10`, `checkpoint-10`, `step-10`, or the base model).
    pub name: String,
    /// Its step.
    pub step: u64,
    /// The model: a Hugging Face directory, or a fetched model's name.
    pub model: String,
}

/// One checkpoint and the step it rescores.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Pairing {
    /// The checkpoint's name.
    pub checkpoint: String,
    /// Its step.
    pub checkpoint_step: u64,
    /// The step whose responses it rescores.
    pub step: u64,
    /// Whether it sampled them (`step == checkpoint_step + 1`).
    pub sampled_them: bool,
}

/// What rescoring did, for `analysis.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CheckpointReport {
    /// The folder searched.
    pub dir: PathBuf,
    /// Checkpoints found, in step order.
    pub found: Vec<String>,
    /// Checkpoint → step pairs rescored.
    pub rescored: Vec<Pairing>,
    /// Checkpoints whose steps match no logged step.
    pub unmatched: Vec<String>,
    /// Checkpoints that could not be loaded or scored, and why (the text analysis stands).
    pub errors: Vec<String>,
    /// Responses rescored per step at most.
    pub max_responses_per_step: usize,
    /// The checkpoint whose perplexities the relative ones divide by: step 0 (the starting
    /// model) when it was found, else the first one rescored.
    pub relative_to: Option<String>,
}

fn numbered(name: &str, prefix: &str) -> Option<u64> {
    let digits = name.strip_prefix(prefix)?;
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

/// The checkpoints in `dir`, in step order; an error says which layouts were looked for.
pub fn discover(dir: &Path) -> Result<Vec<Checkpoint>, String> {
    let base = if dir.join("checkpoints").is_dir() {
        dir.join("checkpoints")
    } else {
        dir.to_path_buf()
    };
    let entries = std::fs::read_dir(&base).map_err(|e| format!("{}: {e}", base.display()))?;
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if !path.is_dir() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        let layout: Option<(u64, PathBuf)> = if let Some(s) = numbered(&name, "global_step_") {
            Some((s, path.join("actor").join("huggingface")))
        } else if let Some(s) = numbered(&name, "checkpoint-") {
            Some((s, path.clone()))
        } else {
            numbered(&name, "step-").map(|s| (s, path.join("hf")))
        };
        if let Some((step, model)) = layout {
            found.push(Checkpoint {
                name,
                step,
                model: model.display().to_string(),
            });
        }
    }
    if found.is_empty() {
        return Err(format!(
            "no checkpoints in {} (looked for verl's global_step_N/actor/huggingface, TRL's \
             checkpoint-N and hicra's step-N/hf)",
            dir.display()
        ));
    }
    found.sort_by_key(|c| c.step);
    Ok(found)
}

/// Pairs checkpoints with logged steps (see the module docs); also returns the unmatched
/// checkpoints, each with the steps looked for.
pub fn pair(checkpoints: &[Checkpoint], steps: &BTreeSet<u64>) -> (Vec<Pairing>, Vec<String>) {
    let mut claimed = BTreeSet::new();
    let (mut pairs, mut unmatched) = (Vec::new(), Vec::new());
    for c in checkpoints {
        let next = c.step + 1;
        let pick = [next, c.step]
            .into_iter()
            .find(|s| steps.contains(s) && !claimed.contains(s));
        match pick {
            Some(step) => {
                claimed.insert(step);
                pairs.push(Pairing {
                    checkpoint: c.name.clone(),
                    checkpoint_step: c.step,
                    step,
                    sampled_them: step == next,
                });
            }
            None => unmatched.push(format!(
                "{} (step {}): no logged training step {} or {} left to rescore",
                c.name, c.step, next, c.step
            )),
        }
    }
    (pairs, unmatched)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ck(step: u64) -> Checkpoint {
        Checkpoint {
            name: format!("global_step_{step}"),
            step,
            model: String::new(),
        }
    }

    #[test]
    fn a_checkpoint_rescores_the_step_it_sampled_else_its_own() {
        let steps: BTreeSet<u64> = [1, 2, 3, 10].into_iter().collect();
        let (pairs, unmatched) = pair(&[ck(0), ck(1), ck(10), ck(50)], &steps);
        let got: Vec<(u64, u64, bool)> = pairs
            .iter()
            .map(|p| (p.checkpoint_step, p.step, p.sampled_them))
            .collect();
        assert_eq!(got, [(0, 1, true), (1, 2, true), (10, 10, false)]);
        assert_eq!(unmatched.len(), 1);
        assert!(
            unmatched[0].starts_with("global_step_50 (step 50)"),
            "{unmatched:?}"
        );
    }

    #[test]
    fn finds_each_trainers_layout() {
        let d = tempfile::tempdir().unwrap();
        for sub in [
            "global_step_20/actor/huggingface",
            "checkpoint-5",
            "step-7/hf",
            "other",
        ] {
            std::fs::create_dir_all(d.path().join(sub)).unwrap();
        }
        let found = discover(d.path()).unwrap();
        let names: Vec<&str> = found.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["checkpoint-5", "step-7", "global_step_20"]);
        assert!(found[2].model.ends_with("actor/huggingface"));
        let empty = tempfile::tempdir().unwrap();
        assert!(
            discover(empty.path())
                .unwrap_err()
                .contains("global_step_N")
        );
    }
}
