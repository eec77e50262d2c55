//! How an analysis reports its progress: the stages, their units done, and notes for the user.

/// Where an analysis reports its progress.
pub trait Progress {
    /// A stage of `total` units (bytes read, responses rescored) starts.
    fn begin(&mut self, _stage: &str, _total: u64) {}
    /// `n` more units are done.
    fn advance(&mut self, _n: u64) {}
    /// The stage is over.
    fn end(&mut self) {}
    /// Something the user should see now (a bad record, a checkpoint that failed).
    fn note(&mut self, _message: &str) {}
}

/// Reports nothing.
pub struct Silent;

impl Progress for Silent {}
