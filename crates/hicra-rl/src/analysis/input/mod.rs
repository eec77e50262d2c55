//! The run formats hicra reads, how a path is recognised as one of them, and how each record
//! becomes a [`Sample`]:
//! - [`Format::Hicra`]: a hicra run directory (`samples/step-N.jsonl`, `samples/val-step-N.jsonl`);
//! - [`Format::Verl`]: verl rollout or validation dumps (`{dir}/{global_step}.jsonl`), one
//!   folder, or a folder of such folders (one whose name says `val`, `eval` or `test` holds
//!   validation dumps);
//! - [`Format::Trl`]: TRL completion logs (`completions/completions_{step:05d}.parquet`);
//! - [`Format::Jsonl`]: generic JSONL, `{"step", "prompt", "response", "reward"?, "gold"?,
//!   "correct"?, "split"?, "uid"?}` per line.

mod fields;
mod hicra;
mod jsonl;
pub mod lines;
mod trl;
mod unit;
mod verl;

use std::path::{Path, PathBuf};

use serde_json::Value;

pub use super::format::Format;
pub use fields::FieldError;
pub use unit::{RunHints, Unit, is_parquet};

use super::error::AnalysisError;
use super::sample::Sample;

/// A recognised run: its format and files, in step order.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    /// The path given.
    pub path: PathBuf,
    /// Its format.
    pub format: Format,
    /// Its files.
    pub units: Vec<Unit>,
    /// What the run directory says about itself.
    pub hints: RunHints,
}

/// Recognises `path` as `format`, or as the first format that fits (`None`); otherwise the
/// error lists every format tried and why it does not fit.
pub fn detect(path: &Path, format: Option<Format>) -> Result<Source, AnalysisError> {
    if !path.exists() {
        return Err(AnalysisError::Invalid(format!(
            "{} does not exist",
            path.display()
        )));
    }
    let candidates: Vec<Format> = match format {
        Some(f) => vec![f],
        None => Format::ALL.to_vec(),
    };
    let mut tried = Vec::new();
    for f in candidates {
        let found = match f {
            Format::Hicra => hicra::detect(path),
            Format::Verl => verl::detect(path),
            Format::Trl => trl::detect(path),
            Format::Jsonl => jsonl::detect(path),
        };
        match found {
            Ok((mut units, hints)) => {
                units.sort_by(|a, b| (a.split, a.step, &a.path).cmp(&(b.split, b.step, &b.path)));
                return Ok(Source {
                    path: path.to_path_buf(),
                    format: f,
                    units,
                    hints,
                });
            }
            Err(why) => tried.push((f, why)),
        }
    }
    Err(AnalysisError::UnknownFormat {
        path: path.to_path_buf(),
        tried,
    })
}

/// How a unit's records are read: JSON lines, or Parquet rows with the file's columns.
#[derive(Debug, Clone, PartialEq)]
pub enum Reading {
    /// One JSON object per line.
    Lines,
    /// Parquet rows; the columns in schema order (TRL's reward columns are found by position).
    Parquet(Vec<String>),
}

/// Reads one record of `source`'s `unit` (its JSON value) as a sample.
pub fn to_sample(
    source: &Source,
    unit: &Unit,
    reading: &Reading,
    value: Value,
) -> Result<Sample, FieldError> {
    let map = fields::object(value)?;
    let rewards = source.hints.reward_functions.as_deref();
    match (source.format, reading) {
        (Format::Hicra, _) => hicra::record(map, unit),
        (Format::Verl, _) => verl::record(map, unit),
        (Format::Trl, Reading::Parquet(columns)) => trl::record(map, unit, columns, rewards),
        (Format::Trl, Reading::Lines) => trl::record(map, unit, &[], rewards),
        (Format::Jsonl, _) => jsonl::record(map, unit),
    }
}
