//! Atomic, verified checkpoint directories: contents are written into a temporary sibling
//! directory, every file is fsynced and listed with its sha256 in `manifest.json` (written
//! last), then the directory is renamed into place. Loading verifies the manifest and every
//! checksum and refuses incomplete or corrupted checkpoints with a named error.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use hicra_model::io::{atomic, digest};
use serde::{Deserialize, Serialize};

use crate::error::{Result, RlError};

/// Name of the manifest file inside a checkpoint directory.
pub const MANIFEST: &str = "manifest.json";
const FORMAT: &str = "hicra-checkpoint-v1";

/// The manifest: format tag, step and the sha256 of every other file (relative paths).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Format tag (`hicra-checkpoint-v1`).
    pub format: String,
    /// Training step the checkpoint was taken after.
    pub step: u64,
    /// Relative path → lowercase hex sha256.
    pub files: BTreeMap<String, String>,
}

/// Writes `bytes` to `path` and fsyncs it.
pub fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    atomic::write_synced(path, bytes).map_err(RlError::from_model_io)
}

/// Writes `bytes` to `path` atomically (sibling temp file, fsync, rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    atomic::write_atomic(path, bytes).map_err(RlError::from_model_io)
}

fn sha256_file(path: &Path) -> Result<String> {
    digest::sha256_file(path).map_err(RlError::from_model_io)
}

fn list_files(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in fs::read_dir(dir).map_err(|e| RlError::io(dir, e))? {
        let entry = entry.map_err(|e| RlError::io(dir, e))?;
        let p = entry.path();
        if p.is_dir() {
            list_files(root, &p, out)?;
        } else {
            out.push(p.strip_prefix(root).unwrap_or(&p).to_path_buf());
        }
    }
    Ok(())
}

/// Creates the checkpoint directory `dest` atomically: `fill` writes the contents into a
/// temporary directory, then files are fsynced and hashed, the manifest is written, and the
/// temporary directory is renamed to `dest` (replacing an older one of the same name).
pub fn write_checkpoint(
    dest: &Path,
    step: u64,
    fill: impl FnOnce(&Path) -> Result<()>,
) -> Result<Manifest> {
    let parent = atomic::parent_of(dest);
    let parent = parent.as_path();
    fs::create_dir_all(parent).map_err(|e| RlError::io(parent, e))?;
    let tmp = atomic::temp_path(dest);
    fs::create_dir_all(&tmp).map_err(|e| RlError::io(&tmp, e))?;
    let result = (|| {
        fill(&tmp)?;
        let mut rel = Vec::new();
        list_files(&tmp, &tmp, &mut rel)?;
        let mut files = BTreeMap::new();
        for r in rel {
            let p = tmp.join(&r);
            if let Ok(f) = fs::File::open(&p) {
                f.sync_all().map_err(|e| RlError::io(&p, e))?;
            }
            let key = r.to_string_lossy().replace('\\', "/");
            if key == MANIFEST {
                continue;
            }
            files.insert(key, sha256_file(&p)?);
        }
        let manifest = Manifest {
            format: FORMAT.into(),
            step,
            files,
        };
        let json = serde_json::to_vec_pretty(&manifest).map_err(|e| RlError::Json {
            context: "manifest".into(),
            source: e,
        })?;
        write_synced(&tmp.join(MANIFEST), &json)?;
        atomic::sync_dir(&tmp);
        Ok(manifest)
    })();
    let manifest = match result {
        Ok(m) => m,
        Err(e) => {
            let _ = fs::remove_dir_all(&tmp);
            return Err(e);
        }
    };
    if dest.exists() {
        let old = atomic::temp_path(dest);
        fs::rename(dest, &old).map_err(|e| RlError::io(dest, e))?;
        fs::rename(&tmp, dest).map_err(|e| RlError::io(dest, e))?;
        let _ = fs::remove_dir_all(&old);
    } else {
        fs::rename(&tmp, dest).map_err(|e| RlError::io(dest, e))?;
    }
    atomic::sync_dir(parent);
    Ok(manifest)
}

/// Reads the manifest of `dir` and checks that every listed file exists with its checksum.
pub fn verify_checkpoint(dir: &Path) -> Result<Manifest> {
    let mpath = dir.join(MANIFEST);
    if !dir.is_dir() {
        return Err(RlError::CheckpointIncomplete {
            path: dir.to_path_buf(),
            message: "not a directory".into(),
        });
    }
    let bytes = fs::read(&mpath).map_err(|_| RlError::CheckpointIncomplete {
        path: dir.to_path_buf(),
        message: format!("no {MANIFEST} (the write was interrupted?)"),
    })?;
    let manifest: Manifest =
        serde_json::from_slice(&bytes).map_err(|e| RlError::CheckpointIncomplete {
            path: dir.to_path_buf(),
            message: format!("{MANIFEST} is unreadable: {e}"),
        })?;
    if manifest.format != FORMAT {
        return Err(RlError::CheckpointIncomplete {
            path: dir.to_path_buf(),
            message: format!("unknown format `{}`", manifest.format),
        });
    }
    for (file, sum) in &manifest.files {
        let p = dir.join(file);
        if !p.is_file() {
            return Err(RlError::CheckpointIncomplete {
                path: dir.to_path_buf(),
                message: format!("file `{file}` listed in the manifest is missing"),
            });
        }
        if &sha256_file(&p)? != sum {
            return Err(RlError::CheckpointCorrupted {
                path: dir.to_path_buf(),
                file: file.clone(),
            });
        }
    }
    Ok(manifest)
}

/// The step-N directories under `checkpoints_dir` that have a manifest, sorted by step.
pub fn list_checkpoints(checkpoints_dir: &Path) -> Vec<(u64, PathBuf)> {
    let mut out = Vec::new();
    if let Ok(rd) = fs::read_dir(checkpoints_dir) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(n) = name
                .strip_prefix("step-")
                .and_then(|s| s.parse::<u64>().ok())
            {
                out.push((n, e.path()));
            }
        }
    }
    out.sort();
    out
}

/// The directory of checkpoint `step` under `checkpoints_dir`.
pub fn checkpoint_dir(checkpoints_dir: &Path, step: u64) -> PathBuf {
    checkpoints_dir.join(format!("step-{step}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn make(root: &Path) -> PathBuf {
        let dest = root.join("checkpoints/step-3");
        write_checkpoint(&dest, 3, |tmp| {
            write_synced(&tmp.join("a.bin"), b"hello")?;
            fs::create_dir_all(tmp.join("hf")).unwrap();
            write_synced(&tmp.join("hf/config.json"), b"{}")
        })
        .unwrap();
        dest
    }

    #[test]
    fn written_checkpoint_verifies_and_lists_files() {
        let d = tempfile::tempdir().unwrap();
        let dest = make(d.path());
        let m = verify_checkpoint(&dest).unwrap();
        assert_eq!(m.step, 3);
        assert_eq!(
            m.files.keys().cloned().collect::<Vec<_>>(),
            vec!["a.bin".to_string(), "hf/config.json".to_string()]
        );
        // sha256("hello")
        assert_eq!(
            m.files["a.bin"],
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert_eq!(list_checkpoints(&d.path().join("checkpoints")).len(), 1);
        // no temp dirs left behind
        assert_eq!(
            fs::read_dir(d.path().join("checkpoints")).unwrap().count(),
            1
        );
    }

    #[test]
    fn corrupted_file_is_refused_by_name() {
        let d = tempfile::tempdir().unwrap();
        let dest = make(d.path());
        fs::write(dest.join("a.bin"), b"hellp").unwrap();
        match verify_checkpoint(&dest) {
            Err(RlError::CheckpointCorrupted { file, .. }) => assert_eq!(file, "a.bin"),
            other => panic!("expected corruption error, got {other:?}"),
        }
    }

    #[test]
    fn half_written_checkpoint_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let dest = make(d.path());
        fs::remove_file(dest.join(MANIFEST)).unwrap();
        assert!(matches!(
            verify_checkpoint(&dest),
            Err(RlError::CheckpointIncomplete { .. })
        ));
        let dest = make(d.path());
        fs::remove_file(dest.join("hf/config.json")).unwrap();
        let e = verify_checkpoint(&dest).unwrap_err();
        assert!(e.to_string().contains("hf/config.json"), "{e}");
    }

    #[test]
    fn failing_fill_leaves_nothing_behind() {
        let d = tempfile::tempdir().unwrap();
        let dest = d.path().join("ck/step-1");
        let r = write_checkpoint(&dest, 1, |_| Err(RlError::Invalid("boom".into())));
        assert!(r.is_err());
        assert!(!dest.exists());
        assert_eq!(fs::read_dir(d.path().join("ck")).unwrap().count(), 0);
    }
}
