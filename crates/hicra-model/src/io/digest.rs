//! Content hashes (sha256, lowercase hex) of data files and models, recorded beside an
//! output so that continuing it can check it continues with the same inputs.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{ModelError, Result};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The sha256 of a file's bytes.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f = fs::File::open(path).map_err(|e| ModelError::io(path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|e| ModelError::io(path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

/// The sha256 of `bytes`.
pub fn sha256_bytes(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Whether a file of a model directory is one a load reads (configs, weights, tokenizer,
/// chat template); notes and hidden files beside them do not change the model.
fn is_model_file(path: &Path) -> bool {
    let hidden = path
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with('.'));
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    !hidden && matches!(ext, "json" | "safetensors" | "jinja" | "gguf")
}

fn model_files(dir: &Path, root: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in fs::read_dir(dir).map_err(|e| ModelError::io(dir, e))? {
        let path = entry.map_err(|e| ModelError::io(dir, e))?.path();
        if path.is_dir() {
            let hidden = path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('.'));
            if !hidden {
                model_files(&path, root, out)?;
            }
        } else if is_model_file(&path) {
            out.push(path.strip_prefix(root).unwrap_or(&path).to_path_buf());
        }
    }
    Ok(())
}

/// The content hash of a model: a file's sha256, or for a directory the sha256 of the sorted
/// list of its model files (relative path and sha256 of each).
pub fn sha256_model(path: &Path) -> Result<String> {
    if !path.is_dir() {
        return sha256_file(path);
    }
    let mut files = Vec::new();
    model_files(path, path, &mut files)?;
    files.sort();
    let mut listing = String::new();
    for rel in files {
        let sum = sha256_file(&path.join(&rel))?;
        listing.push_str(&format!("{}\t{sum}\n", rel.to_string_lossy()));
    }
    Ok(sha256_bytes(listing.as_bytes()))
}

/// The content hash of the model named by `spec` (a directory, a `.gguf` file or a fetched
/// model's name).
pub fn sha256_model_spec(spec: &str) -> Result<String> {
    let path = crate::io::registry::resolve_model_path(spec)?;
    sha256_model(&path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_model_hash_follows_its_files_not_notes_beside_them() {
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join("config.json"), b"{}").unwrap();
        fs::write(d.path().join("model.safetensors"), b"w").unwrap();
        let before = sha256_model(d.path()).unwrap();
        fs::write(d.path().join("README.md"), b"notes").unwrap();
        assert_eq!(sha256_model(d.path()).unwrap(), before);
        fs::write(d.path().join("model.safetensors"), b"v").unwrap();
        assert_ne!(sha256_model(d.path()).unwrap(), before);
        assert_eq!(
            sha256_bytes(b"hello"),
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
    }
}
