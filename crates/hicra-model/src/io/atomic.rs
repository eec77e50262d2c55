//! Outputs written so that no reader sees half of one, and so that the temporaries of a
//! writer that was killed are recognised and removed by the next run of the same command.
//!
//! Every temporary is a hidden sibling of its target named `.{target}.{pid}-{n}.hicra-tmp`:
//! the process id tells a temporary of a live writer (left alone) from a stale one.

use std::ffi::OsStr;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{ModelError, Result};

/// The suffix of every temporary file or directory.
const SUFFIX: &str = ".hicra-tmp";

/// A fresh temporary path beside `target` (same folder, so a rename onto `target` is atomic).
pub fn temp_path(target: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "output".into());
    parent_of(target).join(format!(".{name}.{}-{n}{SUFFIX}", std::process::id()))
}

/// The folder `path` lies in (`.` for a bare name).
pub fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Writes `bytes` to `path` and flushes them to disk.
pub fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = fs::File::create(path).map_err(|e| ModelError::io(path, e))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| ModelError::io(path, e))
}

/// Writes `bytes` to `path` atomically: a synced temporary sibling renamed into place (the
/// temporary is removed when the write fails).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = temp_path(path);
    let result = write_synced(&tmp, bytes)
        .and_then(|()| fs::rename(&tmp, path).map_err(|e| ModelError::io(path, e)));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    sync_dir(&parent_of(path));
    result
}

/// Flushes a folder's entries to disk (best effort: not every platform supports it).
pub fn sync_dir(dir: &Path) {
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// The process id of the writer of a temporary named `name`, if `name` is one of ours. The
/// names older versions used are recognised too: `.tmp-step-N-PID` and `.old-step-N-PID`
/// (checkpoints), `.NAME.tmp-PID-NANOS` and its `.old` (exports), `NAME.tmp-PID` (files).
pub fn temp_owner(name: &OsStr) -> Option<u32> {
    let name = name.to_str()?;
    if let Some(stem) = name.strip_suffix(SUFFIX) {
        let (_, tag) = stem.rsplit_once('.')?;
        return tag.split_once('-')?.0.parse().ok();
    }
    if let Some(rest) = name
        .strip_prefix(".tmp-step-")
        .or_else(|| name.strip_prefix(".old-step-"))
    {
        return rest.rsplit_once('-')?.1.parse().ok();
    }
    let (_, tag) = name.rsplit_once(".tmp-")?;
    let tag = tag.strip_suffix(".old").unwrap_or(tag);
    tag.split('-').next()?.parse().ok()
}

/// Whether process `pid` is running. Where that cannot be asked, every process counts as
/// running, so nothing is removed.
fn alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    if cfg!(target_os = "linux") {
        Path::new("/proc").join(pid.to_string()).exists()
    } else {
        true
    }
}

/// Removes the temporaries in `dir` (not below it) left by writers that no longer run;
/// returns what it removed. A folder that cannot be read holds nothing to clean.
pub fn clean_stale(dir: &Path) -> Vec<PathBuf> {
    clean_matching(dir, |_| true)
}

/// Removes the stale temporaries of `target` alone (for a target in a folder of the user's,
/// where other names are none of our business).
pub fn clean_stale_for(target: &Path) -> Vec<PathBuf> {
    let Some(name) = target.file_name().and_then(OsStr::to_str) else {
        return Vec::new();
    };
    let prefix = format!(".{name}.");
    clean_matching(&parent_of(target), |entry| entry.starts_with(&prefix))
}

fn clean_matching(dir: &Path, wanted: impl Fn(&str) -> bool) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name.to_str().is_some_and(&wanted) {
            continue;
        }
        let Some(pid) = temp_owner(&name) else {
            continue;
        };
        if alive(pid) {
            continue;
        }
        let path = entry.path();
        let gone = if path.is_dir() {
            fs::remove_dir_all(&path)
        } else {
            fs::remove_file(&path)
        };
        if gone.is_ok() {
            removed.push(path);
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporaries_name_their_writer() {
        let t = temp_path(Path::new("out/summary.json"));
        assert_eq!(t.parent(), Some(Path::new("out")));
        assert_eq!(temp_owner(t.file_name().unwrap()), Some(std::process::id()));
        for (name, pid) in [
            (".tmp-step-3-4242", Some(4242)),
            (".old-step-3-4242", Some(4242)),
            (".model.tmp-4242-123456", Some(4242)),
            (".model.tmp-4242-123456.old", Some(4242)),
            ("config.tmp-4242", Some(4242)),
            ("config.toml", None),
            ("step-3", None),
            ("notes.tmp", None),
        ] {
            assert_eq!(temp_owner(OsStr::new(name)), pid, "{name}");
        }
    }

    #[test]
    fn only_temporaries_of_dead_writers_are_removed() {
        let d = tempfile::tempdir().unwrap();
        // A process id no system hands out (above the Linux maximum of 2^22).
        let dead = d.path().join(".a.json.4999999-0.hicra-tmp");
        let live = temp_path(&d.path().join("b.json"));
        let user = d.path().join("notes.txt");
        for p in [&dead, &live, &user] {
            fs::write(p, b"x").unwrap();
        }
        let removed = clean_stale(d.path());
        if cfg!(target_os = "linux") {
            assert_eq!(removed, vec![dead.clone()]);
            assert!(!dead.exists());
        }
        assert!(live.exists() && user.exists());
        let other = d.path().join(".c.json.4999999-0.hicra-tmp");
        fs::write(&other, b"x").unwrap();
        assert!(clean_stale_for(&d.path().join("d.json")).is_empty());
        assert!(other.exists());
    }

    #[test]
    fn atomic_writes_leave_no_temporary() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x.json");
        write_atomic(&p, b"1").unwrap();
        write_atomic(&p, b"2").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"2");
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 1);
    }
}
