//! verl dumps (`trainer.rollout_data_dir`, `trainer.validation_data_dir`): one file per step,
//! `{global_step}.jsonl`, one object per response with `input` (prompt text, special tokens
//! skipped), `output`, `gts`, `score` (the summed token-level score), `step`, every extra key
//! the reward function returned (`acc` is read as the run's verdict), and `request_id`;
//! validation dumps also carry `reward` (the legacy trainer) or `uid` (`{prompt}_{rollout}_
//! {output}`, the v1 trainer), whose prompt part groups the samples.

use std::path::Path;

use serde_json::{Map, Value};

use super::fields::{self, FieldError};
use super::lines::first_object;
use super::unit::{RunHints, Unit, keys, numbered_files, step_in_name};
use crate::analysis::sample::{Prompt, Sample, Split};

fn dump_files(dir: &Path) -> Vec<(u64, std::path::PathBuf)> {
    numbered_files(dir, |n| step_in_name(n, "", ".jsonl"))
}

/// Validation dumps live in a folder whose name says so.
fn split_of(dir: &Path) -> Split {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    if ["val", "eval", "test"].iter().any(|w| name.contains(w)) {
        Split::Val
    } else {
        Split::Train
    }
}

/// A dump folder, or a folder of dump folders.
pub fn detect(path: &Path) -> Result<(Vec<Unit>, RunHints), String> {
    if !path.is_dir() {
        return Err(format!("{} is not a directory", path.display()));
    }
    let mut dirs = Vec::new();
    if !dump_files(path).is_empty() {
        dirs.push(path.to_path_buf());
    } else if let Ok(entries) = std::fs::read_dir(path) {
        let mut subs: Vec<_> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_dir() && !dump_files(p).is_empty())
            .collect();
        subs.sort();
        dirs.extend(subs);
    }
    if dirs.is_empty() {
        return Err(format!(
            "no {{global_step}}.jsonl dump files in {} or its subfolders",
            path.display()
        ));
    }
    let mut units = Vec::new();
    for dir in dirs {
        let files = dump_files(&dir);
        let first = first_object(&files[0].1)?;
        if !(first.contains_key("input") && first.contains_key("output")) {
            return Err(format!(
                "{}: the first record has no `input` and `output` fields (it has: {})",
                files[0].1.display(),
                keys(&first)
            ));
        }
        let split = split_of(&dir);
        units.extend(files.into_iter().map(|(step, file)| Unit {
            path: file,
            split,
            step: Some(step),
        }));
    }
    Ok((units, RunHints::default()))
}

/// The prompt part of a v1 uid `{prompt}_{rollout}_{output}`; other uids are kept whole.
fn prompt_uid(uid: &str) -> &str {
    let mut parts = uid.rsplitn(3, '_');
    let (output, rollout, prompt) = (parts.next(), parts.next(), parts.next());
    let numeric =
        |p: Option<&str>| p.is_some_and(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()));
    match prompt {
        Some(prompt) if numeric(output) && numeric(rollout) => prompt,
        _ => uid,
    }
}

/// One dumped response.
pub fn record(mut map: Map<String, Value>, unit: &Unit) -> Result<Sample, FieldError> {
    let step = fields::step(&map, unit.step)?;
    let input = fields::take_str(&mut map, "input")?;
    let response = fields::take_str(&mut map, "output")?;
    let reward = match fields::opt_f64(&map, "score")? {
        Some(s) => Some(s),
        None => fields::opt_f64(&map, "reward")?,
    };
    let group = match fields::opt_str(&map, "uid")? {
        Some(uid) => hicra_tasks::stable_hash(prompt_uid(&uid)),
        None => hicra_tasks::stable_hash(&input),
    };
    Ok(Sample {
        reward,
        correct: fields::opt_verdict(&map, "acc")?,
        gold: map.remove("gts").filter(|g| !g.is_null()),
        ..Sample::text(unit.split, step, group, Prompt::Text(input), response)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_uids_group_by_their_prompt_part() {
        assert_eq!(prompt_uid("3f2a-b_0_1"), "3f2a-b");
        assert_eq!(prompt_uid("a_b_0_0"), "a_b");
        assert_eq!(prompt_uid("plain-uuid"), "plain-uuid");
        assert_eq!(prompt_uid("x_1"), "x_1");
    }
}
