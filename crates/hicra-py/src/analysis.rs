//! `analyze`: [`hicra_rl::analysis`] for Python, returning `analysis.json`'s text (the Python
//! module `hicra.analysis` turns it into a dict or a DataFrame).

use std::path::PathBuf;

use hicra_rl::analysis::{AnalyzeOptions, Format, Silent, analyze as analyze_runs};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::guard::guarded;

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(analyze, m)?)?;
    Ok(())
}

/// Analyses runs (the GIL is released meanwhile); returns the analysis as JSON text.
#[pyfunction]
#[pyo3(signature = (paths, format, regrade, tokenizer, grams, checkpoints, max_responses_per_step, base_model, device, strict))]
#[allow(clippy::too_many_arguments)]
fn analyze(
    py: Python<'_>,
    paths: Vec<PathBuf>,
    format: &str,
    regrade: bool,
    tokenizer: Option<String>,
    grams: Option<PathBuf>,
    checkpoints: Vec<Option<PathBuf>>,
    max_responses_per_step: usize,
    base_model: Option<String>,
    device: &str,
    strict: bool,
) -> PyResult<String> {
    guarded("analyze", || {
        let value_error = |e: String| PyValueError::new_err(e);
        let opts = AnalyzeOptions {
            format: Format::parse(format).map_err(value_error)?,
            regrade,
            tokenizer,
            grams,
            checkpoints: None,
            max_responses_per_step,
            base_model,
            strict,
            ..AnalyzeOptions::default()
        }
        .on_device(device)
        .map_err(|e| value_error(e.to_string()))?;
        let analysis = py
            .detach(|| analyze_runs(&paths, &checkpoints, &opts, &mut Silent))
            .map_err(|e| value_error(e.to_string()))?;
        serde_json::to_string(&analysis).map_err(|e| value_error(e.to_string()))
    })
}
