//! What an output directory of `hicra train` or `hicra sft` holds, and how a new run treats
//! it: a vacant directory is used; a run that kept nothing to continue from (no checkpoint,
//! no finished model) is started over; a run that did is refused unless forced; files no run
//! wrote are always refused. Only a run's own files are ever removed.

use std::path::{Path, PathBuf};

use hicra_model::io::atomic;

use crate::checkpoint::list_checkpoints;
use crate::error::{Result, RlError};
use crate::run_record::{RunKind, RunRecord};

/// What an output directory holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunDir {
    /// Nothing: no directory, or an empty one.
    Vacant,
    /// A run: its kind, and what it kept to continue from (`None`: nothing).
    Run {
        /// The command that made it.
        kind: RunKind,
        /// The latest checkpoint or the finished model, described.
        kept: Option<String>,
    },
    /// Files no run wrote (their names, sorted).
    Foreign(Vec<String>),
}

impl RunDir {
    /// Looks at `dir` (our own stale temporaries do not count).
    pub fn inspect(dir: &Path) -> Result<RunDir> {
        let names = match std::fs::read_dir(dir) {
            Ok(entries) => {
                let mut names = Vec::new();
                for entry in entries {
                    let name = entry.map_err(|e| RlError::io(dir, e))?.file_name();
                    if atomic::temp_owner(&name).is_none() {
                        names.push(name.to_string_lossy().into_owned());
                    }
                }
                names
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => {
                return Err(RlError::Invalid(format!(
                    "{} is a file, not a run directory",
                    dir.display()
                )));
            }
            Err(e) => return Err(RlError::io(dir, e)),
        };
        if names.is_empty() {
            return Ok(RunDir::Vacant);
        }
        let has = |n: &str| names.iter().any(|x| x == n);
        let kind = match RunRecord::read(dir)? {
            Some(record) => Some(record.kind),
            // Runs of versions that wrote no run.json.
            None if has("config.toml") && has("metrics.jsonl") && !has("model") => {
                Some(RunKind::Train)
            }
            None if has("metrics.jsonl") && has("model") => Some(RunKind::Sft),
            None => None,
        };
        let Some(kind) = kind else {
            let mut names = names;
            names.sort();
            return Ok(RunDir::Foreign(names));
        };
        let kept = match kind {
            RunKind::Train => list_checkpoints(&dir.join("checkpoints"))
                .last()
                .map(|(step, _)| format!("its latest checkpoint is step {step}")),
            RunKind::Sft => dir
                .join("model")
                .is_dir()
                .then(|| "its fine-tuned model is in model/".to_string()),
        };
        Ok(RunDir::Run { kind, kept })
    }
}

/// Removes the files and folders a run of `kind` wrote in `dir` (nothing else).
pub fn remove_run_files(dir: &Path, kind: RunKind) -> Result<()> {
    for name in kind.own_files() {
        let path = dir.join(name);
        let removed = if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else if path.exists() {
            std::fs::remove_file(&path)
        } else {
            Ok(())
        };
        removed.map_err(|e| RlError::io(&path, e))?;
    }
    Ok(())
}

/// Removes the stale temporaries of killed writers in a run directory (the directory, its
/// checkpoints and its samples); returns what it removed.
pub fn clean_run_temporaries(dir: &Path) -> Vec<PathBuf> {
    ["", "checkpoints", "samples"]
        .iter()
        .flat_map(|sub| atomic::clean_stale(&dir.join(sub)))
        .collect()
}

/// Makes `dir` ready for a new run of `kind`; returns notes for the user. A run there that
/// kept nothing to continue from is replaced; one that did is refused unless `force`
/// (which replaces it); a directory with files no run wrote is refused. Each refusal says
/// how to continue or where else to go.
pub fn prepare_new_run(dir: &Path, kind: RunKind, force: bool) -> Result<Vec<String>> {
    let mut notes: Vec<String> = clean_run_temporaries(dir)
        .iter()
        .map(|p| format!("removed {}, left by an interrupted run", p.display()))
        .collect();
    let cmd = kind.name();
    match RunDir::inspect(dir)? {
        RunDir::Vacant => {}
        RunDir::Foreign(names) => {
            return Err(RlError::Invalid(format!(
                "{} holds files that no hicra run wrote ({}): choose another --out (a new or \
                 empty directory)",
                dir.display(),
                names.join(", ")
            )));
        }
        RunDir::Run { kind: other, .. } if other != kind => {
            return Err(RlError::Invalid(format!(
                "{} holds the output of `hicra {}`: choose another --out",
                dir.display(),
                other.name()
            )));
        }
        RunDir::Run {
            kept: Some(kept), ..
        } if !force => {
            let how = match kind {
                RunKind::Train => {
                    format!("`hicra train --resume {}` continues it, ", dir.display())
                }
                RunKind::Sft => String::new(),
            };
            return Err(RlError::Invalid(format!(
                "{} already holds a `hicra {cmd}` run ({kept}): {how}--force starts it over \
                 (deleting that run's files), or choose another --out",
                dir.display()
            )));
        }
        RunDir::Run { kept, .. } => {
            remove_run_files(dir, kind)?;
            notes.push(match kept {
                Some(_) => format!("--force: removed the earlier run in {}", dir.display()),
                None => format!(
                    "{} held a run with nothing to continue from (stopped before its first \
                     checkpoint); starting it over",
                    dir.display()
                ),
            });
        }
    }
    std::fs::create_dir_all(dir).map_err(|e| RlError::io(dir, e))?;
    Ok(notes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn foreign_files_are_refused_and_kept() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("notes.txt"), "mine").unwrap();
        for force in [false, true] {
            let e = prepare_new_run(d.path(), RunKind::Train, force).unwrap_err();
            assert!(e.to_string().contains("notes.txt"), "{e}");
        }
        assert!(d.path().join("notes.txt").exists());
        assert!(prepare_new_run(&d.path().join("new"), RunKind::Sft, false).is_ok());
    }

    #[test]
    fn a_run_that_kept_something_needs_force_and_only_its_files_go() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path();
        let config = crate::config::TrainConfig::default();
        RunRecord::new(RunKind::Train, &config)
            .unwrap()
            .write(dir)
            .unwrap();
        std::fs::write(dir.join("metrics.jsonl"), "").unwrap();
        std::fs::write(dir.join("notes.txt"), "mine").unwrap();
        // Nothing kept: started over without asking.
        assert_eq!(
            prepare_new_run(dir, RunKind::Train, false).unwrap().len(),
            1
        );
        RunRecord::new(RunKind::Train, &config)
            .unwrap()
            .write(dir)
            .unwrap();
        std::fs::create_dir_all(dir.join("checkpoints/step-2")).unwrap();
        let e = prepare_new_run(dir, RunKind::Train, false).unwrap_err();
        assert!(e.to_string().contains("--resume"), "{e}");
        let e = prepare_new_run(dir, RunKind::Sft, true).unwrap_err();
        assert!(e.to_string().contains("hicra train"), "{e}");
        prepare_new_run(dir, RunKind::Train, true).unwrap();
        assert!(
            !dir.join("checkpoints").exists() && !dir.join(crate::run_record::RUN_RECORD).exists()
        );
        assert!(dir.join("notes.txt").exists());
    }
}
