//! `StrategicGrams`: [`hicra_hier::GramSet`] for Python, with character offsets (Python's
//! and Hugging Face's unit) instead of the matcher's byte offsets, plus the hierarchy
//! metrics (semantic entropy, conditional entropy).

use std::path::PathBuf;

use hicra_hier::{GramSet, HierError, conditional_entropy, semantic_entropy};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::guard::guarded;
use crate::offsets::CharIndex;

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<StrategicGrams>()?;
    Ok(())
}

fn hier_err(e: HierError) -> PyErr {
    PyValueError::new_err(e.to_string())
}

/// A Strategic-Gram list and its matcher (the trainer's matching rule).
#[pyclass(frozen, module = "hicra._native")]
pub struct StrategicGrams {
    set: GramSet,
    origin: String,
}

#[pymethods]
impl StrategicGrams {
    /// The paper's 249 Strategic Grams, shipped with hicra.
    #[staticmethod]
    fn paper() -> PyResult<StrategicGrams> {
        guarded("StrategicGrams.paper", || {
            Ok(StrategicGrams {
                set: GramSet::paper(),
                origin: "paper".into(),
            })
        })
    }

    /// Reads a UTF-8 gram file, one gram per line (empty lines skipped; `#` is not a comment).
    #[staticmethod]
    fn from_file(path: PathBuf) -> PyResult<StrategicGrams> {
        guarded("StrategicGrams.from_file", || {
            Ok(StrategicGrams {
                set: GramSet::from_file(&path).map_err(hier_err)?,
                origin: path.display().to_string(),
            })
        })
    }

    /// Builds a set from a list of grams.
    #[staticmethod]
    fn from_grams(grams: Vec<String>) -> PyResult<StrategicGrams> {
        guarded("StrategicGrams.from_grams", || {
            Ok(StrategicGrams {
                set: GramSet::from_grams(grams).map_err(hier_err)?,
                origin: "a list".into(),
            })
        })
    }

    /// The grams, in list order.
    #[getter]
    fn grams(&self) -> Vec<String> {
        self.set.grams().to_vec()
    }

    fn __len__(&self) -> usize {
        self.set.len()
    }

    fn __repr__(&self) -> String {
        format!(
            "StrategicGrams({} grams from {})",
            self.set.len(),
            self.origin
        )
    }

    /// Every occurrence as `(start, end, gram_index)` in character offsets, sorted.
    fn matches(&self, py: Python<'_>, text: &str) -> PyResult<Vec<(usize, usize, usize)>> {
        guarded("StrategicGrams.matches", || {
            let found = py.detach(|| self.set.find(text));
            let index = CharIndex::new(text);
            Ok(found
                .iter()
                .map(|m| {
                    (
                        index.char_of_byte(m.start),
                        index.char_of_byte(m.end),
                        m.gram,
                    )
                })
                .collect())
        })
    }

    /// The planning spans of `text`: the union of all matches as sorted, disjoint
    /// `(start, end)` character ranges.
    fn spans(&self, py: Python<'_>, text: &str) -> PyResult<Vec<(usize, usize)>> {
        guarded("StrategicGrams.spans", || {
            let spans = py.detach(|| self.set.planning_spans(text));
            let index = CharIndex::new(text);
            Ok(spans
                .iter()
                .map(|&(s, e)| (index.char_of_byte(s), index.char_of_byte(e)))
                .collect())
        })
    }

    /// Planning flag of each token, given the tokens' `(start, end)` character offsets into
    /// `text`: a token is planning when it overlaps a span; empty tokens never are.
    fn token_mask(&self, text: &str, offsets: Vec<(usize, usize)>) -> PyResult<Vec<bool>> {
        guarded("StrategicGrams.token_mask", || {
            let index = CharIndex::new(text);
            let byte_spans = offsets
                .iter()
                .enumerate()
                .map(|(i, &(s, e))| match (index.byte(s), index.byte(e)) {
                    (Some(bs), Some(be)) if s <= e => Ok((bs, be)),
                    _ => Err(PyValueError::new_err(format!(
                        "offsets[{i}] = ({s}, {e}) is not a character range of the text \
                         ({} characters)",
                        index.chars()
                    ))),
                })
                .collect::<PyResult<Vec<_>>>()?;
            Ok(self.set.planning_mask(text, &byte_spans))
        })
    }

    /// Semantic entropy (natural log) of the gram occurrences pooled over `texts`.
    fn semantic_entropy(&self, py: Python<'_>, texts: Vec<String>) -> PyResult<f64> {
        guarded("StrategicGrams.semantic_entropy", || {
            Ok(py.detach(|| semantic_entropy(&texts, &self.set)))
        })
    }

    /// Conditional-entropy control (natural log): entropy of the word 3-grams following
    /// gram occurrences, pooled over `texts`.
    fn conditional_entropy(&self, py: Python<'_>, texts: Vec<String>) -> PyResult<f64> {
        guarded("StrategicGrams.conditional_entropy", || {
            Ok(py.detach(|| conditional_entropy(&texts, &self.set)))
        })
    }
}
