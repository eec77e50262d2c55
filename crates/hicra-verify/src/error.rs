//! Errors of the verifier's public API.

/// Errors raised when building verifier inputs (gold answers) from untrusted data.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum VerifyError {
    /// A gold answer in JSON had a type that cannot hold an answer.
    #[error("gold answer must be a string, a number or a list of those, got {0}")]
    BadGoldType(String),
    /// A gold answer list was empty.
    #[error("gold answer list is empty")]
    EmptyGoldList,
    /// A gold answer string was empty.
    #[error("gold answer is empty")]
    EmptyGold,
}
