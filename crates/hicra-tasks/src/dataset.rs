//! Data sets of problems: loading from JSONL / JSON / Parquet with per-record error
//! handling, seeded shuffling, and epoch-wise iteration by a saveable position.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::TaskError;
use crate::fields::{FieldSpec, known_layout};
use crate::problem::Problem;
use crate::record::{RecordContext, problem_from_record};
use crate::source::{RecordLocation, read_records};

/// What to do with a malformed record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnError {
    /// Report it (file and line) in [`Loaded::skipped`] and go on.
    #[default]
    Skip,
    /// Stop loading with [`TaskError::Malformed`].
    Fail,
}

/// How a data file is read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoadOptions {
    /// Field names (`None` fields are detected; a known benchmark name fills them in).
    pub fields: FieldSpec,
    /// Skip or fail on malformed records.
    pub on_error: OnError,
    /// Keep at most this many problems (the first ones in file order).
    pub limit: Option<usize>,
    /// The data set's name; default: the folder name for files called
    /// `test`/`train`/`validation`/`val`/`dev`, else the file stem.
    pub name: Option<String>,
    /// Restore LaTeX backslashes lost to JSON escapes (see [`crate::repair`]).
    pub repair_escapes: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            fields: FieldSpec::default(),
            on_error: OnError::Skip,
            limit: None,
            name: None,
            repair_escapes: true,
        }
    }
}

/// A record the loader skipped, with where it is and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedRecord {
    /// File and line / row.
    pub location: RecordLocation,
    /// What was wrong.
    pub reason: String,
}

impl std::fmt::Display for SkippedRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.location, self.reason)
    }
}

/// The result of loading: the data set and every record that was skipped.
#[derive(Debug)]
pub struct Loaded {
    /// The problems read.
    pub dataset: Dataset,
    /// Malformed records skipped under [`OnError::Skip`] (never silently dropped).
    pub skipped: Vec<SkippedRecord>,
}

/// An ordered list of problems with a name.
#[derive(Debug, Default)]
pub struct Dataset {
    /// The data set's name (e.g. `gsm8k`).
    pub name: String,
    /// The problems, in file order unless shuffled.
    pub problems: Vec<Problem>,
    /// Where the data came from, if a file.
    pub path: Option<PathBuf>,
    /// Where each problem (by id) sits in its file, for problems read from one.
    locations: HashMap<String, RecordLocation>,
    epoch_order: Mutex<Option<(u64, u64, Vec<usize>)>>,
}

/// How many skipped records an "every record was skipped" error shows.
const EMPTY_REASONS_SHOWN: usize = 5;

impl Clone for Dataset {
    fn clone(&self) -> Self {
        self.derived(self.name.clone(), self.problems.clone())
    }
}

/// A saveable position in an endless, epoch-wise reshuffled pass over a data set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// Seed of the per-epoch shuffles.
    pub seed: u64,
    /// Problems served so far (epoch = position / len).
    pub position: u64,
}

impl Dataset {
    /// A data set from problems already in memory.
    pub fn new(name: impl Into<String>, problems: Vec<Problem>) -> Self {
        Self {
            name: name.into(),
            problems,
            path: None,
            locations: HashMap::new(),
            epoch_order: Mutex::new(None),
        }
    }

    /// A data set of `problems` taken from this one (same file, same locations).
    fn derived(&self, name: String, problems: Vec<Problem>) -> Dataset {
        let mut d = Dataset::new(name, problems).with_path(self.path.clone());
        d.locations = self.locations.clone();
        d
    }

    /// Where the problem with id `id` sits in its file (`FILE:LINE`, `FILE: row N`), when it
    /// was read from one.
    pub fn location(&self, id: &str) -> Option<&RecordLocation> {
        self.locations.get(id)
    }

    fn with_path(mut self, path: Option<PathBuf>) -> Self {
        self.path = path;
        self
    }

    /// Loads a `.jsonl`, `.json` or `.parquet` file.
    ///
    /// The seven benchmarks of `shared/data/math` are recognised by name; other files by
    /// detection (see [`FieldSpec`]). Malformed records are skipped and listed, or fatal.
    pub fn load(path: &Path, options: &LoadOptions) -> Result<Loaded, TaskError> {
        let name = options.name.clone().unwrap_or_else(|| dataset_name(path));
        let fields = match known_layout(&name) {
            Some(layout) => options.fields.with_layout(layout),
            None => options.fields.clone(),
        };
        let ctx = RecordContext {
            fields: &fields,
            dataset: &name,
            repair_escapes: options.repair_escapes,
        };
        let mut problems: Vec<Problem> = Vec::new();
        let mut locations = HashMap::new();
        let mut skipped = Vec::new();
        for (location, record) in read_records(path)? {
            if options.limit.is_some_and(|limit| problems.len() >= limit) {
                break;
            }
            let outcome =
                record.and_then(|value| problem_from_record(&value, location.number, &ctx));
            match outcome {
                Ok(problem) => {
                    locations
                        .entry(problem.id.clone())
                        .or_insert_with(|| location.clone());
                    problems.push(problem);
                }
                Err(reason) => match options.on_error {
                    OnError::Fail => {
                        return Err(TaskError::Malformed {
                            location: location.to_string(),
                            reason,
                        });
                    }
                    OnError::Skip => skipped.push(SkippedRecord { location, reason }),
                },
            }
        }
        if problems.is_empty() {
            return Err(TaskError::Empty {
                path: path.to_path_buf(),
                skipped: skipped.len(),
                first_reasons: skipped
                    .iter()
                    .take(EMPTY_REASONS_SHOWN)
                    .map(ToString::to_string)
                    .collect(),
            });
        }
        let mut dataset = Dataset::new(name, problems).with_path(Some(path.to_path_buf()));
        dataset.locations = locations;
        Ok(Loaded { dataset, skipped })
    }

    /// Number of problems.
    pub fn len(&self) -> usize {
        self.problems.len()
    }

    /// Whether there are no problems.
    pub fn is_empty(&self) -> bool {
        self.problems.is_empty()
    }

    /// Iterates the problems in their current order.
    pub fn iter(&self) -> std::slice::Iter<'_, Problem> {
        self.problems.iter()
    }

    /// Shuffles the problems in place, deterministically for a seed.
    pub fn shuffle(&mut self, seed: u64) {
        self.problems.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
        *self
            .epoch_order
            .get_mut()
            .unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// Splits off a validation set of `n` problems chosen by `seed` (order otherwise kept);
    /// returns `(train, validation)`.
    pub fn split_validation(&self, n: usize, seed: u64) -> (Dataset, Dataset) {
        let mut indices: Vec<usize> = (0..self.len()).collect();
        indices.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
        let mut is_validation = vec![false; self.len()];
        for &i in indices.iter().take(n) {
            is_validation[i] = true;
        }
        let pick = |want: bool| {
            self.problems
                .iter()
                .zip(&is_validation)
                .filter(|(_, v)| **v == want)
                .map(|(p, _)| p.clone())
                .collect()
        };
        (
            self.derived(self.name.clone(), pick(false)),
            self.derived(format!("{}-validation", self.name), pick(true)),
        )
    }

    /// The problem served at `position` of an endless pass that reshuffles every epoch
    /// (epoch `e` uses seed `seed + e`). Panics on an empty data set.
    pub fn at(&self, seed: u64, position: u64) -> &Problem {
        let len = self.len() as u64;
        assert!(len > 0, "Dataset::at on an empty data set");
        let epoch = position / len;
        let offset = (position % len) as usize;
        let mut cache = self.epoch_order.lock().unwrap_or_else(|e| e.into_inner());
        let stale = !matches!(&*cache, Some((s, e, _)) if *s == seed && *e == epoch);
        if stale {
            let mut order: Vec<usize> = (0..self.len()).collect();
            order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed.wrapping_add(epoch)));
            *cache = Some((seed, epoch, order));
        }
        let index = cache
            .as_ref()
            .map(|(_, _, order)| order[offset])
            .unwrap_or(offset);
        &self.problems[index]
    }

    /// The next `n` problems from `cursor`, advancing it (save the cursor to resume).
    pub fn next_batch(&self, cursor: &mut Cursor, n: usize) -> Vec<Problem> {
        (0..n)
            .map(|_| {
                let problem = self.at(cursor.seed, cursor.position).clone();
                cursor.position += 1;
                problem
            })
            .collect()
    }
}

/// The data set name implied by a path (see [`LoadOptions::name`]).
pub fn dataset_name(path: &Path) -> String {
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("dataset")
        .to_string();
    let generic = ["test", "train", "validation", "val", "dev"];
    if generic.contains(&stem.to_ascii_lowercase().as_str())
        && let Some(parent) = path
            .parent()
            .and_then(|p| p.file_name())
            .and_then(|s| s.to_str())
    {
        return parent.to_string();
    }
    stem
}
