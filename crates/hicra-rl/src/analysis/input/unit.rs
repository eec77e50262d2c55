//! The files of a recognised run, what its directory says about itself, and the file-name
//! helpers every format's detection uses.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::analysis::sample::Split;

/// One file of a run: its split, and the step its name gives.
#[derive(Debug, Clone, PartialEq)]
pub struct Unit {
    /// The file.
    pub path: PathBuf,
    /// Training or validation.
    pub split: Split,
    /// The step in the file's name, when the format names files by step.
    pub step: Option<u64>,
}

/// What a run directory says about itself, besides its samples.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunHints {
    /// The gram list the run trained with (hicra's `trainer.grams`).
    pub grams: Option<PathBuf>,
    /// The model the run started from (hicra's `model.path`).
    pub model: Option<String>,
    /// A folder of checkpoints found in the run (TRL's `checkpoint-N`, hicra's `checkpoints/`).
    pub checkpoints: Option<PathBuf>,
    /// TRL's reward functions by name (the `rewards/NAME/mean` keys of its
    /// `trainer_state.json`): the completion log's columns that make up the reward.
    pub reward_functions: Option<Vec<String>>,
}

/// Whether a unit is a Parquet file.
pub fn is_parquet(unit: &Unit) -> bool {
    unit.path.extension().is_some_and(|e| e == "parquet")
}

/// The files of `dir` whose names `parse` turns into a step, with that step.
pub(super) fn numbered_files(
    dir: &Path,
    parse: impl Fn(&str) -> Option<u64>,
) -> Vec<(u64, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<(u64, PathBuf)> = entries
        .flatten()
        .filter(|e| e.path().is_file())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            parse(&name).map(|step| (step, e.path()))
        })
        .collect();
    out.sort();
    out
}

/// The number between `prefix` and `suffix` of a file name (digits only).
pub(super) fn step_in_name(name: &str, prefix: &str, suffix: &str) -> Option<u64> {
    let digits = name.strip_prefix(prefix)?.strip_suffix(suffix)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The keys of a record, for messages.
pub(super) fn keys(map: &serde_json::Map<String, Value>) -> String {
    map.keys().cloned().collect::<Vec<_>>().join(", ")
}
