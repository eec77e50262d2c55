//! TRL completion logs (`GRPOConfig(log_completions=True)`):
//! `output_dir/completions/completions_{step:05d}.parquet` with the columns `step`, `prompt`,
//! `completion` (text, or a list of chat messages for conversational data), one column per
//! reward function, any extra logged columns, and `advantage`. The reward is the sum of the
//! reward functions' columns, named by the `rewards/NAME/mean` keys that TRL logs into
//! `trainer_state.json` (the output directory's, else its checkpoints'). Without one, it is
//! the sum of the numeric columns between `completion` and `advantage` (TRL writes the reward
//! columns first there), leaving out a verdict column (`correct`, `acc`, `accuracy`) and a
//! gold column (`answer`, `gold`, `ground_truth`, `solution`), which are read as such.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::fields::{self, FieldError};
use super::unit::{RunHints, Unit, numbered_files, step_in_name};
use crate::analysis::sample::{Sample, Split};

/// Extra columns read as the run's verdict.
const VERDICT_COLUMNS: [&str; 3] = ["correct", "acc", "accuracy"];
/// Extra columns read as the gold answer.
const GOLD_COLUMNS: [&str; 4] = ["answer", "gold", "ground_truth", "solution"];

fn completion_files(dir: &Path) -> Vec<(u64, PathBuf)> {
    numbered_files(dir, |n| step_in_name(n, "completions_", ".parquet"))
}

/// An output directory (with `completions/`) or its `completions/` folder.
pub fn detect(path: &Path) -> Result<(Vec<Unit>, RunHints), String> {
    if !path.is_dir() {
        return Err(format!("{} is not a directory", path.display()));
    }
    let (output_dir, dir) = if path.join("completions").is_dir() {
        (path, path.join("completions"))
    } else {
        (path.parent().unwrap_or(path), path.to_path_buf())
    };
    let files = completion_files(&dir);
    if files.is_empty() {
        return Err(format!(
            "no completions/completions_NNNNN.parquet files in {}",
            path.display()
        ));
    }
    let units = files
        .into_iter()
        .map(|(step, file)| Unit {
            path: file,
            split: Split::Train,
            step: Some(step),
        })
        .collect();
    let checkpoints = checkpoint_dirs(output_dir);
    let hints = RunHints {
        checkpoints: (!checkpoints.is_empty()).then(|| output_dir.to_path_buf()),
        reward_functions: reward_functions(output_dir, &checkpoints),
        ..RunHints::default()
    };
    Ok((units, hints))
}

/// TRL's `checkpoint-N` entries of the output directory, by step.
fn checkpoint_dirs(output_dir: &Path) -> Vec<(u64, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(output_dir) else {
        return Vec::new();
    };
    let mut found: Vec<(u64, PathBuf)> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let step = name.strip_prefix("checkpoint-")?.parse().ok()?;
            Some((step, e.path()))
        })
        .collect();
    found.sort();
    found
}

/// The reward functions' names from the `rewards/NAME/mean` keys of the `log_history` in the
/// output directory's `trainer_state.json`, else in its checkpoints' (the last that has one).
fn reward_functions(output_dir: &Path, checkpoints: &[(u64, PathBuf)]) -> Option<Vec<String>> {
    let mut states = std::iter::once(output_dir.join("trainer_state.json")).chain(
        checkpoints
            .iter()
            .rev()
            .map(|(_, dir)| dir.join("trainer_state.json")),
    );
    states.find_map(|path| {
        let text = std::fs::read_to_string(&path).ok()?;
        let state: Value = serde_json::from_str(&text).ok()?;
        let mut names: Vec<String> = Vec::new();
        for entry in state["log_history"].as_array()? {
            for key in entry.as_object()?.keys() {
                if let Some(name) = key
                    .strip_prefix("rewards/")
                    .and_then(|k| k.strip_suffix("/mean"))
                    && !names.iter().any(|n| n == name)
                {
                    names.push(name.to_string());
                }
            }
        }
        (!names.is_empty()).then_some(names)
    })
}

/// The reward columns of a file with these columns (in schema order).
pub fn reward_columns(columns: &[String]) -> Vec<String> {
    let start = columns
        .iter()
        .position(|c| c == "completion")
        .map_or(0, |i| i + 1);
    let end = columns
        .iter()
        .rposition(|c| c == "advantage")
        .unwrap_or(columns.len());
    columns
        .get(start..end.max(start))
        .unwrap_or(&[])
        .iter()
        .filter(|c| !VERDICT_COLUMNS.contains(&c.as_str()) && !GOLD_COLUMNS.contains(&c.as_str()))
        .cloned()
        .collect()
}

/// One logged completion; `rewards` names the reward functions' columns when the run says.
pub fn record(
    mut map: Map<String, Value>,
    unit: &Unit,
    columns: &[String],
    rewards: Option<&[String]>,
) -> Result<Sample, FieldError> {
    let step = fields::step(&map, unit.step)?;
    let prompt = fields::take_chat_or_text(&mut map, "prompt")?;
    let response = fields::response_text(fields::take_chat_or_text(&mut map, "completion")?);
    let mut reward = None;
    let reward_columns = rewards.map_or_else(|| reward_columns(columns), <[String]>::to_vec);
    for column in reward_columns {
        // Strings and other non-numbers are extra columns, not rewards; a null reward (a
        // function that does not apply) is left out of the sum, as TRL's nansum does.
        if let Some(Value::Number(n)) = map.get(&column) {
            *reward.get_or_insert(0.0) += n.as_f64().unwrap_or(0.0);
        }
    }
    let mut correct = None;
    for c in VERDICT_COLUMNS {
        if correct.is_none() {
            correct = fields::opt_verdict(&map, c)?;
        }
    }
    let gold = GOLD_COLUMNS
        .iter()
        .find_map(|c| map.remove(*c).filter(|g| !g.is_null()));
    let group = hicra_tasks::stable_hash(&prompt.display());
    Ok(Sample {
        reward,
        correct,
        gold,
        ..Sample::text(unit.split, step, group, prompt, response)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reward_columns_sit_between_completion_and_advantage() {
        let cols: Vec<String> = [
            "step",
            "prompt",
            "completion",
            "accuracy_reward",
            "format",
            "answer",
            "advantage",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(reward_columns(&cols), ["accuracy_reward", "format"]);
    }
}
