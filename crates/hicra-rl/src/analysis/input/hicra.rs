//! hicra run directories: `samples/step-N.jsonl` (every sampled response with `reward`,
//! `correct`, `length` in tokens, `planning_tokens` and `trained`) and
//! `samples/val-step-N.jsonl` (validation responses with `prompt`, `correct`, `length`).
//! Runs written before `planning_tokens`, `trained` and the validation `prompt` existed are
//! read too: every response then counts as trained, and validation groups are formed by
//! problem id.

use std::path::Path;

use serde_json::{Map, Value};

use super::fields::{self, FieldError};
use super::unit::{RunHints, Unit, numbered_files, step_in_name};
use crate::analysis::sample::{Prompt, Sample, Split};

/// The sample files of a run directory (or of its `samples/` folder given directly).
pub fn detect(path: &Path) -> Result<(Vec<Unit>, RunHints), String> {
    if !path.is_dir() {
        return Err(format!("{} is not a directory", path.display()));
    }
    let (run_dir, samples) = if path.join("samples").is_dir() {
        (path, path.join("samples"))
    } else {
        (path.parent().unwrap_or(path), path.to_path_buf())
    };
    let mut units = Vec::new();
    for (split, prefix) in [(Split::Train, "step-"), (Split::Val, "val-step-")] {
        for (step, file) in numbered_files(&samples, |n| step_in_name(n, prefix, ".jsonl")) {
            units.push(Unit {
                path: file,
                split,
                step: Some(step),
            });
        }
    }
    if units.is_empty() {
        return Err(format!(
            "no samples/step-N.jsonl or samples/val-step-N.jsonl files in {}",
            path.display()
        ));
    }
    Ok((units, hints(run_dir)))
}

/// The gram list, starting model and checkpoints of a run, from its `config.toml`.
fn hints(run_dir: &Path) -> RunHints {
    let mut hints = RunHints::default();
    if run_dir.join("checkpoints").is_dir() {
        hints.checkpoints = Some(run_dir.join("checkpoints"));
    }
    let Ok(text) = std::fs::read_to_string(run_dir.join("config.toml")) else {
        return hints;
    };
    let Ok(config) = text.parse::<toml::Table>() else {
        return hints;
    };
    let get = |section: &str, key: &str| {
        config
            .get(section)
            .and_then(|s| s.get(key))
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    hints.grams = get("trainer", "grams").map(Into::into);
    hints.model = get("model", "path");
    hints
}

/// One line of a sample file.
pub fn record(mut map: Map<String, Value>, unit: &Unit) -> Result<Sample, FieldError> {
    let step = fields::step(&map, unit.step)?;
    let response = fields::take_str(&mut map, "response")?;
    let prompt = match fields::opt_str(&map, "prompt")? {
        Some(p) => Prompt::Text(p),
        None => Prompt::Missing,
    };
    let group_key = match (&prompt, fields::opt_str(&map, "id")?) {
        (Prompt::Text(p), _) => p.clone(),
        (_, Some(id)) => id,
        _ => String::new(),
    };
    // Rewards are f32 in the trainer and written as such: reading them back through f32
    // recovers the trainer's values exactly.
    let reward = fields::opt_f64(&map, "reward")?.map(|r| f64::from(r as f32));
    let trained = match map.get("trained") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(FieldError::field("trained", "expected a boolean")),
    };
    let token_ids = match (
        fields::opt_ids(&map, "prompt_ids")?,
        fields::opt_ids(&map, "response_ids")?,
    ) {
        (Some(prompt), Some(response)) => Some((prompt, response)),
        _ => None,
    };
    Ok(Sample {
        split: unit.split,
        step,
        group: hicra_tasks::stable_hash(&group_key),
        prompt,
        response,
        reward,
        correct: fields::opt_verdict(&map, "correct")?,
        gold: map.remove("gold").filter(|g| !g.is_null()),
        length: fields::opt_u64(&map, "length")?.map(|v| v as usize),
        planning_tokens: fields::opt_u64(&map, "planning_tokens")?.map(|v| v as usize),
        trained,
        stopped: fields::opt_str(&map, "finish_reason")?.map(|f| f == "stop"),
        token_ids,
    })
}
