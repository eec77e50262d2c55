//! The errors of reading a GGUF file.

use std::path::PathBuf;

/// Errors reading a GGUF file; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    /// The file could not be opened or read.
    #[error("{path}: {error}")]
    Io {
        /// The GGUF file.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
    /// The file ends before the data its header declares.
    #[error("{path}: truncated GGUF file: {message}")]
    Truncated {
        /// The GGUF file.
        path: PathBuf,
        /// What was cut off.
        message: String,
    },
    /// The file is not a valid GGUF (bad magic, version, malformed header or tensor).
    #[error("{path}: corrupt or unsupported GGUF file: {message}")]
    Corrupt {
        /// The GGUF file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A tensor uses a quantisation type that is not known.
    #[error(
        "{path}: unknown GGUF quantisation type {type_id} (supported include F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K, Q6_K)"
    )]
    UnknownQuantType {
        /// The GGUF file.
        path: PathBuf,
        /// The numeric ggml type id found.
        type_id: u32,
    },
    /// `general.architecture` is not one this loader supports.
    #[error("{path}: unsupported GGUF architecture {arch:?} (supported: llama)")]
    UnsupportedArchitecture {
        /// The GGUF file.
        path: PathBuf,
        /// The architecture named in the file.
        arch: String,
    },
    /// A required metadata key is missing or has the wrong type.
    #[error("{path}: metadata key {key}: {message}")]
    Metadata {
        /// The GGUF file.
        path: PathBuf,
        /// The key.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// A tensor name that does not map to the architecture's HF names.
    #[error("{path}: unexpected tensor {name}")]
    UnexpectedTensor {
        /// The GGUF file.
        path: PathBuf,
        /// The GGUF tensor name.
        name: String,
    },
    /// The tokenizer metadata cannot be turned into a tokenizer.
    #[error("{path}: tokenizer metadata: {message}")]
    Tokenizer {
        /// The GGUF file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A tensor operation failed while converting a tensor.
    #[error("{path}: tensor {name}: {error}")]
    Tensor {
        /// The GGUF file.
        path: PathBuf,
        /// The GGUF tensor name.
        name: String,
        /// The candle error.
        error: Box<candle_core::Error>,
    },
}
