//! The error type of `hicra-hier`.

use std::path::PathBuf;

/// Everything that can go wrong in Strategic-Gram matching, metrics and mining.
#[derive(Debug, thiserror::Error)]
pub enum HierError {
    /// A gram file could not be read.
    #[error("cannot read gram file {path}: {source}")]
    ReadGrams {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A gram list (file or vector) holds no grams.
    #[error("gram list {origin} holds no grams (one gram per line expected)")]
    NoGrams {
        /// Where the list came from (a file path or "the given list").
        origin: String,
    },
    /// The Aho-Corasick automaton could not be built.
    #[error("cannot build the gram matcher: {0}")]
    Automaton(String),
    /// Per-token arrays of one response disagree in length.
    #[error("response {response}: {field} has {got} entries but token_byte_spans has {expected}")]
    LengthMismatch {
        /// Index of the response in the batch.
        response: usize,
        /// The per-token array with the wrong length.
        field: &'static str,
        /// Its length.
        got: usize,
        /// The number of token spans.
        expected: usize,
    },
    /// The sentence encoder failed.
    #[error("sentence encoder: {0}")]
    Encoder(String),
    /// Mining was given options it cannot work with.
    #[error("invalid mining option: {0}")]
    InvalidOption(String),
}
