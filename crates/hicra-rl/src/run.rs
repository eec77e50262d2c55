//! A run's directory and the state it resumes from: where files go ([`RunSetup`]), the loop
//! state in each checkpoint ([`TrainerState`]), the latest checkpoint, pruning of old ones, the
//! sample files, and reading `metrics.jsonl` back.

use std::fs;
use std::path::{Path, PathBuf};

use hicra_hier::GramSet;
use hicra_hier::gram_set::{mask_from_matches, merged_spans};
use hicra_tasks::Problem;
use serde::{Deserialize, Serialize};

use crate::checkpoint::{self, list_checkpoints, verify_checkpoint};
use crate::error::{Result, RlError};
use crate::generation::{GradedSample, RenderedPrompt};
use crate::metrics::{JsonlSink, MetricsSink, TensorBoardSink};
use crate::rollout::Rollout;

/// The resumable loop state saved in `trainer_state.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainerState {
    /// Steps completed.
    pub step: u64,
    /// Next training-problem position of the task stream.
    pub data_position: u64,
    /// Optimiser steps applied.
    pub optimizer_step: u64,
    /// Validation accuracy before training (step 0), when measured.
    pub initial_val_accuracy: Option<f64>,
}

impl TrainerState {
    /// The state of a run that has not started.
    pub fn fresh() -> Self {
        TrainerState {
            step: 0,
            data_position: 0,
            optimizer_step: 0,
            initial_val_accuracy: None,
        }
    }
}

/// Where a run keeps its files and sends its metrics.
pub struct RunSetup {
    /// The run directory for checkpoints and samples (`None`: nothing is written).
    pub dir: Option<PathBuf>,
    /// Whether this process writes files (the one writer rank of a data-parallel job).
    pub writer: bool,
    /// Where metrics go.
    pub sinks: Vec<Box<dyn MetricsSink>>,
}

impl RunSetup {
    /// An in-memory run: no files, metrics to `sinks`.
    pub fn in_memory(sinks: Vec<Box<dyn MetricsSink>>) -> Self {
        RunSetup {
            dir: None,
            writer: false,
            sinks,
        }
    }

    /// The standard layout of `dir`: `metrics.jsonl` and TensorBoard events under `tb/`.
    pub fn standard(dir: &Path) -> Result<Self> {
        Ok(RunSetup {
            dir: Some(dir.to_path_buf()),
            writer: true,
            sinks: vec![
                Box::new(JsonlSink::open(&dir.join("metrics.jsonl"))?),
                Box::new(TensorBoardSink::create(&dir.join("tb"))?),
            ],
        })
    }

    /// The directory files are written to, if this process writes any.
    pub(crate) fn writable_dir(&self) -> Option<&Path> {
        self.dir.as_deref().filter(|_| self.writer)
    }

    /// Writes `samples/<file>` atomically, one JSON object per line (nothing without a
    /// writable run directory).
    fn write_sample_file(
        &self,
        file: &str,
        lines: impl Iterator<Item = serde_json::Value>,
    ) -> Result<()> {
        let Some(run_dir) = self.writable_dir() else {
            return Ok(());
        };
        let dir = run_dir.join("samples");
        fs::create_dir_all(&dir).map_err(|e| RlError::io(&dir, e))?;
        let mut out = String::new();
        for v in lines {
            out.push_str(&v.to_string());
            out.push('\n');
        }
        checkpoint::write_atomic(&dir.join(file), out.as_bytes())
    }

    /// Writes `samples/val-step-N.jsonl`: each validation problem's prompt (as fed to the
    /// model), response and grade.
    pub(crate) fn write_validation_samples(
        &self,
        step: u64,
        problems: &[Problem],
        prompts: &[RenderedPrompt],
        samples: &[GradedSample],
    ) -> Result<()> {
        let lines = samples.iter().map(|s| {
            serde_json::json!({
                "step": step,
                "id": problems[s.problem].id,
                "prompt": prompts[s.problem].text,
                "response": s.text,
                "correct": s.score.correct,
                "extracted": s.score.extracted,
                "length": s.generation.token_ids.len(),
                "finish_reason": s.generation.finish_reason,
            })
        });
        self.write_sample_file(&format!("val-step-{step}.jsonl"), lines)
    }

    /// Writes `samples/step-N.jsonl`: every sampled response with its reward, planning spans,
    /// planning-token count (`length` counts every token), whether it was trained on (the
    /// population of the step's hierarchy metrics; `trained[i]` is response `i`'s), and the
    /// prompt's and response's token ids (which `hicra analyze` rescores).
    pub(crate) fn write_step_samples(
        &self,
        step: u64,
        rs: &[Rollout],
        trained: &[bool],
        grams: &GramSet,
    ) -> Result<()> {
        let lines = rs.iter().zip(trained).map(|(r, &trained)| {
            let matches = grams.find(&r.text);
            let planning_tokens = mask_from_matches(&matches, &r.token_spans)
                .into_iter()
                .filter(|&p| p)
                .count();
            let spans: Vec<[usize; 2]> = merged_spans(&matches)
                .into_iter()
                .map(|(s, e)| [s, e])
                .collect();
            serde_json::json!({
                "step": step,
                "prompt": r.prompt_text,
                "response": r.text,
                "reward": r.reward,
                "correct": r.correct,
                "length": r.response_ids.len(),
                "finish_reason": r.finish_reason,
                "planning_spans": spans,
                "planning_tokens": planning_tokens,
                "trained": trained,
                "prompt_ids": r.prompt_ids,
                "response_ids": r.response_ids,
            })
        });
        self.write_sample_file(&format!("step-{step}.jsonl"), lines)
    }
}

/// The latest checkpoint of `run_dir` (verified) and its loop state; `None` when the run has
/// none yet.
pub(crate) fn latest_checkpoint(run_dir: &Path) -> Result<Option<(PathBuf, TrainerState)>> {
    let ckpts = list_checkpoints(&run_dir.join("checkpoints"));
    let Some((_, dir)) = ckpts.last() else {
        return Ok(None);
    };
    let manifest = verify_checkpoint(dir)?;
    let state_path = dir.join("trainer_state.json");
    let text = fs::read_to_string(&state_path).map_err(|e| RlError::io(&state_path, e))?;
    let state: TrainerState = serde_json::from_str(&text).map_err(|e| RlError::Json {
        context: state_path.display().to_string(),
        source: e,
    })?;
    if state.step != manifest.step {
        return Err(RlError::CheckpointCorrupted {
            path: dir.clone(),
            file: "trainer_state.json".into(),
        });
    }
    Ok(Some((dir.clone(), state)))
}

/// Removes all but the newest `keep` checkpoints of `checkpoints_dir` (0 keeps every one).
pub(crate) fn prune_checkpoints(checkpoints_dir: &Path, keep: usize) {
    if keep > 0 {
        let all = list_checkpoints(checkpoints_dir);
        for (_, old) in all.iter().take(all.len().saturating_sub(keep)) {
            let _ = fs::remove_dir_all(old);
        }
    }
}

/// Loads `metrics.jsonl` of a run as JSON objects (for comparisons and reports). A last line
/// cut short (by a kill, or a run still writing it) is left out; any other bad line is an
/// error naming it.
pub fn read_metrics(run_dir: &Path) -> Result<Vec<serde_json::Value>> {
    let p = run_dir.join("metrics.jsonl");
    let text = fs::read_to_string(&p).map_err(|e| RlError::io(&p, e))?;
    let count = text.lines().count();
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str(line) {
            Ok(v) => out.push(v),
            Err(_) if i + 1 == count && !text.ends_with('\n') => {}
            Err(e) => {
                return Err(RlError::Json {
                    context: format!("{} line {}", p.display(), i + 1),
                    source: e,
                });
            }
        }
    }
    Ok(out)
}

/// Peak resident memory of this process in MiB (`VmHWM`), when the OS reports it.
pub fn peak_rss_mib() -> Option<f64> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}
