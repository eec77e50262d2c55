//! An evaluation's output directory: `eval_run.json` (what the results depend on: the
//! settings and the content hashes of the data file, the model and the rendered prompts),
//! `items.jsonl` (one synced line per finished problem) and `summary.json`. A new evaluation
//! never replaces an earlier one without `--force`; `--resume` continues one only when
//! everything it depends on is unchanged, and names what changed otherwise.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use hicra_model::io::atomic;
use hicra_tasks::Problem;
use serde::{Deserialize, Serialize};

use crate::evaluation::{EvalSettings, ItemRecord};

/// The files an evaluation writes in its directory.
const OWN_FILES: [&str; 3] = ["eval_run.json", "items.jsonl", "summary.json"];
/// Names of temporaries older versions used.
const LEGACY_TEMPS: [&str; 2] = ["eval_run.tmp", "summary.tmp"];

/// What an evaluation's results depend on, kept beside them so `--resume` can check it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunIdentity {
    /// The data set's name.
    pub dataset: String,
    /// The sha256 of the data file (empty for a built-in task).
    #[serde(default)]
    pub data_sha256: String,
    /// The model as given.
    pub model: String,
    /// The sha256 of the model's files.
    #[serde(default)]
    pub model_sha256: String,
    /// Answer extraction mode.
    pub mode: String,
    /// Problems evaluated.
    pub problems: usize,
    /// The sha256 of every prompt and gold answer, in order (the fields, instruction, system
    /// prompt and chat template that made them).
    #[serde(default)]
    pub prompts_sha256: String,
    /// Sampling and batching.
    pub settings: EvalSettings,
}

impl RunIdentity {
    /// The fields that differ from `other`, each as `field: recorded -> now` (a hash recorded
    /// empty, by an older version, is not compared).
    fn differences(&self, now: &RunIdentity) -> anyhow::Result<Vec<String>> {
        let (a, b) = (serde_json::to_value(self)?, serde_json::to_value(now)?);
        let mut out = Vec::new();
        for (key, old) in a.as_object().into_iter().flatten() {
            let new = &b[key];
            let unrecorded = key.ends_with("sha256") && old.as_str() == Some("");
            if old != new && !unrecorded {
                out.push(format!("{key}: {old} -> {new}"));
            }
        }
        Ok(out)
    }

    /// The default output directory of this evaluation: unique per data, model and settings.
    pub fn default_dir(&self) -> anyhow::Result<PathBuf> {
        let digest = hicra_model::io::digest::sha256_bytes(&serde_json::to_vec(self)?);
        let model = Path::new(&self.model)
            .file_name()
            .map(|n| n.to_string_lossy().trim_end_matches(".gguf").to_string())
            .unwrap_or_else(|| "model".into());
        Ok(Path::new("eval").join(format!("{}-{model}-{}", self.dataset, &digest[..8])))
    }
}

/// What an output directory holds of an evaluation.
enum Holds {
    Nothing,
    Unfinished,
    Finished,
}

fn holds(out: &Path) -> Holds {
    if out.join("summary.json").is_file() {
        Holds::Finished
    } else if OWN_FILES.iter().any(|f| out.join(f).exists()) {
        Holds::Unfinished
    } else {
        Holds::Nothing
    }
}

/// How a run treats an earlier evaluation in its directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    /// Refuse it (say how to resume or replace it).
    Refuse,
    /// Continue it (`--resume`).
    Resume,
    /// Replace it (`--force`).
    Replace,
}

/// Prepares `out` for a run: stale temporaries are removed; an earlier evaluation is refused,
/// continued (when it was started with the same identity) or replaced, as `existing` says.
/// Returns the items already done. Files of others in `out` are never touched.
pub fn open_run(
    out: &Path,
    identity: &RunIdentity,
    problems: &[Problem],
    existing: Existing,
) -> anyhow::Result<Vec<ItemRecord>> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    atomic::clean_stale(out);
    for legacy in LEGACY_TEMPS {
        let _ = std::fs::remove_file(out.join(legacy));
    }
    let id_path = out.join("eval_run.json");
    match (holds(out), existing) {
        (Holds::Nothing, Existing::Resume) => bail!(
            "--resume: {} has no evaluation to continue ({} is missing)",
            out.display(),
            id_path.display()
        ),
        (Holds::Finished, Existing::Refuse) => bail!(
            "{} already holds a finished evaluation (summary.json): choose another --out, or \
             add --force to replace it",
            out.display()
        ),
        (Holds::Unfinished, Existing::Refuse) => bail!(
            "{} holds an unfinished evaluation: add --resume to continue it (same flags), or \
             --force to start it over",
            out.display()
        ),
        (_, Existing::Resume) => {
            check_identity(&id_path, identity)?;
            return read_done_items(&out.join("items.jsonl"), problems);
        }
        (_, Existing::Replace | Existing::Refuse) => {}
    }
    for file in OWN_FILES {
        let path = out.join(file);
        if path.exists() {
            std::fs::remove_file(&path)
                .with_context(|| format!("removing the old {}", path.display()))?;
        }
    }
    let mut json = serde_json::to_vec_pretty(identity)?;
    json.push(b'\n');
    atomic::write_atomic(&id_path, &json)?;
    Ok(Vec::new())
}

/// Refuses a resume whose data, model, prompts or settings differ from the recorded ones,
/// naming each difference.
fn check_identity(id_path: &Path, identity: &RunIdentity) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(id_path)
        .with_context(|| format!("--resume: reading {}", id_path.display()))?;
    let before: RunIdentity =
        serde_json::from_str(&text).with_context(|| format!("reading {}", id_path.display()))?;
    let changed = before.differences(identity)?;
    if !changed.is_empty() {
        bail!(
            "--resume: {} was started with other inputs or settings ({}); give the same data, \
             model and flags, or start afresh with --force",
            id_path.display(),
            changed.join("; ")
        );
    }
    Ok(())
}

/// Reads the complete lines of an interrupted run's `items.jsonl`, in problem order. A last
/// line cut short by the kill is dropped (and truncated away); any other bad line is an error
/// naming it.
fn read_done_items(path: &Path, problems: &[Problem]) -> anyhow::Result<Vec<ItemRecord>> {
    let text = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let complete = text.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let mut items = Vec::new();
    for (n, line) in text[..complete].split(|&b| b == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        let item: ItemRecord = serde_json::from_slice(line)
            .with_context(|| format!("{} line {}: not an item record", path.display(), n + 1))?;
        let expected = problems.get(items.len()).map(|p| p.id.as_str());
        anyhow::ensure!(
            expected == Some(item.id.as_str()),
            "{} line {}: item `{}` where problem `{}` was expected",
            path.display(),
            n + 1,
            item.id,
            expected.unwrap_or("(none: more items than problems)")
        );
        items.push(item);
    }
    if complete < text.len() {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .with_context(|| format!("opening {}", path.display()))?;
        file.set_len(complete as u64)
            .with_context(|| format!("truncating the cut-off last line of {}", path.display()))?;
    }
    Ok(items)
}

/// Appends item records to `items.jsonl`, one synced line each.
pub struct ItemWriter {
    path: PathBuf,
    file: std::fs::File,
}

impl ItemWriter {
    /// Opens `path` for appending.
    pub fn append(path: &Path) -> anyhow::Result<Self> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("opening {}", path.display()))?;
        Ok(ItemWriter {
            path: path.to_path_buf(),
            file,
        })
    }

    /// Appends one record and syncs it.
    pub fn write(&mut self, item: &ItemRecord) -> anyhow::Result<()> {
        let mut line = serde_json::to_vec(item)?;
        line.push(b'\n');
        self.file
            .write_all(&line)
            .and_then(|()| self.file.sync_data())
            .with_context(|| format!("writing {}", self.path.display()))
    }
}
