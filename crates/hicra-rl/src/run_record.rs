//! What a run directory records about how it was started, in `run.json`: the command
//! (`train` or `sft`), the resolved configuration, and the sha256 of every input file the
//! configuration names (model, data, grams). A resume checks the run against it: an input
//! whose content changed is refused by its key; an edit of `config.toml` is accepted for the
//! keys of [`RESUMABLE_EDITS`] (how long the run is, how often it validates, checkpoints and
//! writes samples) and refused, by key, for every other one.

use std::collections::BTreeMap;
use std::path::Path;

use hicra_model::io::digest;
use serde::{Deserialize, Serialize};

use crate::checkpoint::write_atomic;
use crate::config::TrainConfig;
use crate::error::{Result, RlError};

/// The record's file name inside a run directory.
pub const RUN_RECORD: &str = "run.json";
const FORMAT: &str = "hicra-run-v1";

/// Config keys a resume accepts edits of: the run's length and its logging and saving.
pub const RESUMABLE_EDITS: &[&str] = &[
    "trainer.steps",
    "trainer.val_every",
    "trainer.ckpt_every",
    "trainer.keep_checkpoints",
    "trainer.samples_every",
    "trainer.out",
    "sft.log_every",
];

/// Which command made a run directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunKind {
    /// `hicra train`.
    Train,
    /// `hicra sft`.
    Sft,
}

impl RunKind {
    /// The config keys naming the inputs this kind of run reads.
    fn input_keys(self) -> &'static [&'static str] {
        match self {
            RunKind::Train => &[
                "model.path",
                "task.train_path",
                "task.val_path",
                "trainer.grams",
            ],
            RunKind::Sft => &["model.path", "sft.data"],
        }
    }

    /// The files and folders a run of this kind writes in its directory.
    pub fn own_files(self) -> &'static [&'static str] {
        match self {
            RunKind::Train => &[
                "config.toml",
                RUN_RECORD,
                "metrics.jsonl",
                "tb",
                "samples",
                "checkpoints",
            ],
            RunKind::Sft => &["config.toml", RUN_RECORD, "metrics.jsonl", "model", ".init"],
        }
    }

    /// The command's name.
    pub fn name(self) -> &'static str {
        match self {
            RunKind::Train => "train",
            RunKind::Sft => "sft",
        }
    }
}

/// The contents of `run.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Format tag (`hicra-run-v1`).
    pub format: String,
    /// The command that made the run.
    pub kind: RunKind,
    /// The configuration the run was started (or last resumed) with.
    pub config: TrainConfig,
    /// Config key → sha256 of the file (or model) it names; empty keys are left out.
    pub inputs: BTreeMap<String, String>,
}

impl RunRecord {
    /// The record of a run of `kind` with `config`: hashes every input it names.
    pub fn new(kind: RunKind, config: &TrainConfig) -> Result<RunRecord> {
        Ok(RunRecord {
            format: FORMAT.into(),
            kind,
            config: config.clone(),
            inputs: input_hashes(kind, config)?,
        })
    }

    /// Reads `run_dir/run.json`; `None` when there is none.
    pub fn read(run_dir: &Path) -> Result<Option<RunRecord>> {
        let path = run_dir.join(RUN_RECORD);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(RlError::io(&path, e)),
        };
        let record: RunRecord = serde_json::from_str(&text).map_err(|e| RlError::Json {
            context: path.display().to_string(),
            source: e,
        })?;
        if record.format != FORMAT {
            return Err(RlError::Invalid(format!(
                "{}: unknown format `{}`",
                path.display(),
                record.format
            )));
        }
        Ok(Some(record))
    }

    /// Writes `run_dir/run.json` atomically.
    pub fn write(&self, run_dir: &Path) -> Result<()> {
        let mut json = serde_json::to_vec_pretty(self).map_err(|e| RlError::Json {
            context: RUN_RECORD.into(),
            source: e,
        })?;
        json.push(b'\n');
        write_atomic(&run_dir.join(RUN_RECORD), &json)
    }

    /// Checks a resume with `edited` (the run's `config.toml` now): every input must hash as
    /// recorded and every changed key must be one of [`RESUMABLE_EDITS`]. Returns the
    /// accepted edits as `key: old -> new` lines; an error names every refused key.
    pub fn check_resume(&self, edited: &TrainConfig) -> Result<Vec<String>> {
        let now = input_hashes(self.kind, edited)?;
        for (key, recorded) in &self.inputs {
            let Some(current) = now.get(key) else {
                continue; // the key itself changed: reported below as a refused edit
            };
            if current != recorded {
                return Err(RlError::config(
                    key.as_str(),
                    format!(
                        "the content of {} changed since the run started (sha256 {recorded} \
                         then, {current} now): a resume must continue with the same inputs",
                        value_at(edited, key)
                    ),
                ));
            }
        }
        let (accepted, refused) = config_edits(&self.config, edited);
        if let Some((first, _)) = refused.first() {
            let lines: Vec<String> = refused.iter().map(|(_, line)| line.clone()).collect();
            return Err(RlError::config(
                first.as_str(),
                format!(
                    "config.toml was edited since the run started, and a resume cannot change \
                     {}: {} (a resume accepts edits of {} only; start a new run for other \
                     settings)",
                    if refused.len() == 1 {
                        "this key"
                    } else {
                        "these keys"
                    },
                    lines.join("; "),
                    RESUMABLE_EDITS.join(", ")
                ),
            ));
        }
        Ok(accepted)
    }
}

/// The sha256 of each non-empty input key of `kind` in `config`.
fn input_hashes(kind: RunKind, config: &TrainConfig) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for key in kind.input_keys() {
        let spec = value_at(config, key);
        if spec.is_empty() {
            continue;
        }
        let sum = digest::sha256_model_spec(&spec)
            .map_err(|e| RlError::config(*key, format!("cannot read {spec}: {e}")))?;
        out.insert(key.to_string(), sum);
    }
    Ok(out)
}

/// The string value of a dotted key of `config` (empty when absent or not a string).
fn value_at(config: &TrainConfig, key: &str) -> String {
    flatten(config)
        .remove(key)
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// The config as dotted key → leaf value.
fn flatten(config: &TrainConfig) -> BTreeMap<String, toml::Value> {
    toml::Value::try_from(config)
        .map(|v| crate::config::keys::leaves(&v))
        .unwrap_or_default()
}

/// The keys that differ between two configs, split into accepted and refused edits, each
/// with a `key: old -> new` line.
fn config_edits(before: &TrainConfig, after: &TrainConfig) -> (Vec<String>, Vec<(String, String)>) {
    let (old, new) = (flatten(before), flatten(after));
    let mut keys: Vec<&String> = old.keys().chain(new.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut accepted = Vec::new();
    let mut refused = Vec::new();
    for key in keys {
        let (a, b) = (old.get(key), new.get(key));
        if a == b {
            continue;
        }
        let show = |v: Option<&toml::Value>| v.map_or("(none)".to_string(), |v| v.to_string());
        let line = format!("{key}: {} -> {}", show(a), show(b));
        if RESUMABLE_EDITS.contains(&key.as_str()) {
            accepted.push(line);
        } else {
            refused.push((key.clone(), line));
        }
    }
    (accepted, refused)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(sets: &[&str]) -> TrainConfig {
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        TrainConfig::resolve(None, &sets).unwrap()
    }

    #[test]
    fn edits_of_length_and_logging_are_accepted_and_others_named() {
        let record = RunRecord::new(RunKind::Train, &config(&[])).unwrap();
        let accepted = record
            .check_resume(&config(&["trainer.steps=7", "trainer.val_every=2"]))
            .unwrap();
        assert_eq!(
            accepted,
            ["trainer.steps: 100 -> 7", "trainer.val_every: 10 -> 2"]
        );
        let e = record
            .check_resume(&config(&["optim.lr=0.5", "trainer.steps=7"]))
            .unwrap_err();
        assert!(e.to_string().contains("optim.lr: 0.000001 -> 0.5"), "{e}");
        let e = record
            .check_resume(&config(&["lab_model.layers=2"]))
            .unwrap_err();
        assert!(e.to_string().contains("`lab_model.layers`"), "{e}");
    }

    #[test]
    fn a_changed_input_file_is_refused_by_key() {
        let d = tempfile::tempdir().unwrap();
        let data = d.path().join("train.jsonl");
        std::fs::write(&data, "{}\n").unwrap();
        let path = data.display().to_string();
        let c = config(&["task.kind=dataset", &format!("task.train_path={path}")]);
        let record = RunRecord::new(RunKind::Train, &c).unwrap();
        assert!(record.check_resume(&c).unwrap().is_empty());
        std::fs::write(&data, "{} \n").unwrap();
        let e = record.check_resume(&c).unwrap_err();
        assert!(e.to_string().contains("`task.train_path`"), "{e}");
        let d2 = tempfile::tempdir().unwrap();
        record.write(d2.path()).unwrap();
        assert_eq!(RunRecord::read(d2.path()).unwrap(), Some(record));
    }
}
