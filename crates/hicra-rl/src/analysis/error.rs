//! The error type of the run analysis.

use std::path::PathBuf;

use super::format::Format;

/// What stops an analysis. Problems with single records are not errors (they are counted and
/// named in the run's diagnostics) unless the analysis is strict.
#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    /// No format could read the path; each format tried says why.
    #[error("{path}: not a run hicra can read; formats tried:{}", list_tried(.tried))]
    UnknownFormat {
        /// The path given.
        path: PathBuf,
        /// Each format tried and why it does not fit.
        tried: Vec<(Format, String)>,
    },
    /// A record is malformed and the analysis is strict.
    #[error("{location}: {message} (--strict stops at the first bad record)")]
    BadRecord {
        /// `FILE:LINE` (or `FILE: row N`).
        location: String,
        /// What is wrong, naming the field.
        message: String,
    },
    /// Reading a file or listing a folder failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file cannot be read at all (a damaged Parquet file, say).
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The gram list cannot be used.
    #[error("grams: {0}")]
    Grams(#[from] hicra_hier::HierError),
    /// The tokenizer for response lengths cannot be loaded.
    #[error("tokenizer {spec}: {message}")]
    Tokenizer {
        /// The model or tokenizer given.
        spec: String,
        /// What went wrong.
        message: String,
    },
    /// The options do not fit together.
    #[error("{0}")]
    Invalid(String),
}

impl AnalysisError {
    /// An I/O error on `path`.
    pub fn io(path: &std::path::Path, source: std::io::Error) -> AnalysisError {
        AnalysisError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

fn list_tried(tried: &[(Format, String)]) -> String {
    tried
        .iter()
        .map(|(format, why)| format!("\n  {}: {why}", format.name()))
        .collect()
}
