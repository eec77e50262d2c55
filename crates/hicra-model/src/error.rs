//! The error type of `hicra-model`: every failure names the file or item and the problem.

use std::path::PathBuf;

use crate::io::gguf::error::GgufError;
use crate::io::registry::RegistryError;

/// Errors from loading, running and saving models.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A configuration file is malformed or lacks a required field.
    #[error("{path}: {message}")]
    Config {
        /// The file (or a description of the source).
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The `model_type`/`architectures` of a config is not supported.
    #[error("{path}: unknown architecture {arch:?} (supported: llama, qwen2, qwen3)")]
    UnknownArchitecture {
        /// The config file.
        path: PathBuf,
        /// The architecture named in it.
        arch: String,
    },
    /// A weights file is truncated, corrupt or not safetensors.
    #[error("{path}: corrupt or truncated weights file: {message}")]
    CorruptWeights {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A tensor the architecture needs is missing.
    #[error("{source_name}: missing tensor {name}")]
    MissingTensor {
        /// Where the weights came from.
        source_name: String,
        /// The HF tensor name.
        name: String,
    },
    /// A tensor has the wrong shape.
    #[error("{source_name}: tensor {name} has shape {actual:?}, expected {expected:?}")]
    WrongShape {
        /// Where the weights came from.
        source_name: String,
        /// The HF tensor name.
        name: String,
        /// The shape the config implies.
        expected: Vec<usize>,
        /// The shape found.
        actual: Vec<usize>,
    },
    /// The tokenizer is missing or cannot be used.
    #[error("{path}: tokenizer error: {message}")]
    Tokenizer {
        /// The tokenizer file (or model directory).
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A chat template failed to compile or render.
    #[error("chat template: {0}")]
    Template(String),
    /// A prompt does not fit in the model's context window.
    #[error(
        "prompt {index} has {prompt_len} tokens; with {max_new_tokens} new tokens it exceeds the context of {context} tokens"
    )]
    PromptTooLong {
        /// Index of the prompt in the batch.
        index: usize,
        /// Its length in tokens.
        prompt_len: usize,
        /// Requested new tokens.
        max_new_tokens: usize,
        /// The model's `max_position_embeddings`.
        context: usize,
    },
    /// An argument is invalid (empty batch, bad sampling parameter, ...).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// A tensor operation failed.
    #[error("tensor error: {0}")]
    Candle(#[from] candle_core::Error),
    /// A GGUF file could not be used (truncated, corrupt, unknown quant type, non-llama, ...).
    #[error(transparent)]
    Gguf(Box<GgufError>),
    /// The model registry failed (unknown or unfetched model, fetch failure, checksum).
    #[error(transparent)]
    Registry(Box<RegistryError>),
    /// A loss (or another value that must be finite) is NaN or infinite.
    #[error("{what} is not finite ({value})")]
    NonFinite {
        /// What was not finite, e.g. `loss of positions 0..64`.
        what: String,
        /// The value found.
        value: f64,
    },
    /// A device (`cuda:0`, ...) cannot be opened: no driver, no such GPU, a library missing.
    #[error("{device}: {message}")]
    Device {
        /// The device as written (`cuda:7`).
        device: String,
        /// What is missing.
        message: String,
    },
    /// Something does not fit in the free memory of a GPU.
    #[error(
        "{device}: {what} needs {needed_bytes} bytes ({needed_gib:.2} GiB) but only {free_bytes} bytes ({free_gib:.2} GiB) of the GPU's memory are free",
        needed_gib = *needed_bytes as f64 / (1u64 << 30) as f64,
        free_gib = *free_bytes as f64 / (1u64 << 30) as f64
    )]
    OutOfDeviceMemory {
        /// The device (`cuda:0`).
        device: String,
        /// What was to be placed there (`the weights of model.safetensors`).
        what: String,
        /// Bytes needed.
        needed_bytes: u64,
        /// Bytes free on the device.
        free_bytes: u64,
    },
    /// An output path holds something a write would destroy (a file where a directory goes,
    /// files the write did not make).
    #[error("{path}: {message}")]
    OutputInUse {
        /// The output path.
        path: PathBuf,
        /// What is there.
        message: String,
    },
    /// Any other failure with a message.
    #[error("{0}")]
    Other(String),
}

impl ModelError {
    /// Builds an [`ModelError::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ModelError::Io {
            path: path.into(),
            source,
        }
    }
}

impl From<GgufError> for ModelError {
    fn from(err: GgufError) -> Self {
        ModelError::Gguf(Box::new(err))
    }
}

impl From<RegistryError> for ModelError {
    fn from(err: RegistryError) -> Self {
        ModelError::Registry(Box::new(err))
    }
}

/// Result with [`ModelError`].
pub type Result<T, E = ModelError> = std::result::Result<T, E>;
