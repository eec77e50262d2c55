//! The crate's error type: every variant names the file, field or line at fault.

use std::path::PathBuf;

/// Errors from loading datasets, parsing records and configuring tasks.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// A file could not be opened or read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// A record (JSONL line or Parquet row) is malformed and `on_error = fail` was asked.
    #[error("{location}: {reason}")]
    Malformed {
        /// Where the bad record is (`file:line` or `file: row N`).
        location: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A Parquet file could not be decoded.
    #[error("{path}: not a readable Parquet file: {message}")]
    Parquet {
        /// The file.
        path: PathBuf,
        /// The decoder's message.
        message: String,
    },
    /// The file extension is not one the loader knows.
    #[error("{path}: unsupported dataset format (expected .jsonl, .json or .parquet)")]
    UnsupportedFormat {
        /// The file.
        path: PathBuf,
    },
    /// The file held no usable problem.
    #[error(
        "{path}: no usable problems ({skipped} records skipped){}",
        first_reasons.iter().map(|r| format!("\n  {r}")).collect::<String>()
    )]
    Empty {
        /// The file.
        path: PathBuf,
        /// How many records were skipped as malformed.
        skipped: usize,
        /// The first skipped records, each as `location: reason`.
        first_reasons: Vec<String>,
    },
    /// A configuration value is invalid; the message names the setting.
    #[error("invalid setting `{key}`: {message}")]
    InvalidConfig {
        /// The setting's name.
        key: String,
        /// Why it is rejected.
        message: String,
    },
}
