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
    /// A parameter's gradient is NaN or infinite; the optimiser step was not applied.
    #[error("the gradient of {parameter} is not finite{}; the optimiser step was not applied", .step.map(|s| format!(" at step {s}")).unwrap_or_default())]
    NonFiniteGradient {
        /// The parameter's name (e.g. `model.embed_tokens.weight`).
        parameter: String,
        /// The training step, when known.
        step: Option<u64>,
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

    /// Wraps a model-core error with what was being done; a non-finite value stays typed
    /// ([`RlError::NonFinite`]).
    pub fn model(context: &str, error: hicra_model::ModelError) -> Self {
        match error {
            hicra_model::ModelError::NonFinite { what, value } => RlError::NonFinite {
                what: format!("{what} ({value}) in {context}"),
            },
            other => RlError::Model(format!("{context}: {other}")),
        }
    }

    /// Keeps an I/O error of the model crate's file helpers typed, with its path.
    pub fn from_model_io(error: hicra_model::ModelError) -> Self {
        match error {
            hicra_model::ModelError::Io { path, source } => RlError::Io { path, source },
            other => RlError::Model(other.to_string()),
        }
    }

    /// Adds the step to a non-finite error (other errors pass through).
    pub fn at_step(self, step: u64) -> Self {
        match self {
            RlError::NonFinite { what } => RlError::NonFinite {
                what: format!("{what} at step {step}"),
            },
            RlError::NonFiniteGradient { parameter, .. } => RlError::NonFiniteGradient {
                parameter,
                step: Some(step),
            },
            other => other,
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
