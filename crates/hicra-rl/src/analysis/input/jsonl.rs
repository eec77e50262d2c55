//! Generic JSONL, for any other trainer: one object per line with `step`, `prompt` (text or
//! chat messages), `response`, and optionally `reward`, `gold`, `correct`, `split` (`train` or
//! `val`) and `uid` (samples of one prompt that share it form a group; else the prompt does).

use std::path::Path;

use serde_json::{Map, Value};

use super::fields::{self, FieldError};
use super::lines::first_object;
use super::unit::{RunHints, Unit, keys};
use crate::analysis::sample::{Sample, Split};

/// A JSONL file whose first record has `step`, `prompt` and `response`.
pub fn detect(path: &Path) -> Result<(Vec<Unit>, RunHints), String> {
    if !path.is_file() {
        return Err(format!("{} is not a file", path.display()));
    }
    let first = first_object(path)?;
    let missing: Vec<&str> = ["step", "prompt", "response"]
        .into_iter()
        .filter(|k| !first.contains_key(*k))
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "the first record has no {} (it has: {})",
            missing.join(", "),
            keys(&first)
        ));
    }
    let unit = Unit {
        path: path.to_path_buf(),
        split: Split::Train,
        step: None,
    };
    Ok((vec![unit], RunHints::default()))
}

/// One line.
pub fn record(mut map: Map<String, Value>, unit: &Unit) -> Result<Sample, FieldError> {
    let step = fields::step(&map, None)?;
    let prompt = fields::take_chat_or_text(&mut map, "prompt")?;
    let response = fields::take_str(&mut map, "response")?;
    let split = match fields::opt_str(&map, "split")?.as_deref() {
        None => unit.split,
        Some("train") => Split::Train,
        Some("val" | "validation" | "test" | "eval") => Split::Val,
        Some(other) => {
            return Err(FieldError::field(
                "split",
                format!("expected \"train\" or \"val\", got \"{other}\""),
            ));
        }
    };
    let group_key = fields::opt_str(&map, "uid")?.unwrap_or_else(|| prompt.display());
    let group = hicra_tasks::stable_hash(&group_key);
    Ok(Sample {
        reward: fields::opt_f64(&map, "reward")?,
        correct: fields::opt_verdict(&map, "correct")?,
        gold: map.remove("gold").filter(|g| !g.is_null()),
        ..Sample::text(split, step, group, prompt, response)
    })
}
