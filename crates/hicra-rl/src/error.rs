//! The error type of the RL engine.

use std::path::PathBuf;

/// Everything that can go wrong in the RL engine, with the file, key or step named.
#[derive(Debug, thiserror::Error)]
pub enum RlError {
    /// A configuration key is unknown, mistyped, or its value is impossible.
    #[error("config: `{key}`: {message}")]
    Config {
        /// The dotted key at fault (e.g. `rollout.group_size`).
        key: String,
        /// What is wrong with it.
        message: String,
    },
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A checkpoint has no manifest or is missing files (interrupted write).
    #[error("checkpoint {path} is incomplete: {message}")]
    CheckpointIncomplete {
        /// The checkpoint directory.
        path: PathBuf,
        /// What is missing.
        message: String,
    },
    /// A checkpoint file does not match the checksum in its manifest.
    #[error(
        "checkpoint {path} is corrupted: file `{file}` does not match its sha256 in manifest.json"
    )]
    CheckpointCorrupted {
        /// The checkpoint directory.
        path: PathBuf,
        /// The file whose content changed.
        file: String,
    },
    /// A loss, gradient or advantage is NaN or infinite; the step was not applied.
    #[error("non-finite {what}; the optimiser step was not applied")]
    NonFinite {
        /// Which quantity (e.g. `loss at step 3`, `gradient of model.embed_tokens.weight`).
        what: String,
    },
    /// Inputs of the wrong shape or inconsistent sizes.
    #[error("invalid input: {0}")]
    Invalid(String),
    /// An error from the model core.
    #[error("model: {0}")]
    Model(String),
    /// An error from the task / dataset layer.
    #[error("task: {0}")]
    Task(String),
    /// A tensor operation failed.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    /// A JSON (de)serialisation failed.
    #[error("{context}: {source}")]
    Json {
        /// What was being read or written.
        context: String,
        /// The underlying error.
        source: serde_json::Error,
    },
}

/// Result with [`RlError`].
pub type Result<T> = std::result::Result<T, RlError>;

impl RlError {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        RlError::Io {
            path: path.into(),
            source,
        }
    }

    /// A configuration error naming `key`.
    pub fn config(key: impl Into<String>, message: impl Into<String>) -> Self {
        RlError::Config {
            key: key.into(),
            message: message.into(),
        }
    }
}
