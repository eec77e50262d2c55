//! `apply_hicra`: [`hicra_rl::hicra::apply_hicra`] on padded `(B, T)` numpy arrays.
//! Response tokens of row `i` are the positions where `mask[i]` is true, in order; the
//! other positions of the result are 0 (and never marked).

use hicra_rl::hicra::{HicraConfig, HicraVariant, ResponseInfo, apply_hicra as rust_apply_hicra};
use numpy::ndarray::Array2;
use numpy::{IntoPyArray, PyArray2, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::guard::guarded;

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(apply_hicra, m)?)?;
    m.add("VARIANTS", VARIANTS.to_vec())?;
    Ok(())
}

/// The variant names, as in the trainer's config (`algorithm.hicra.variant`).
const VARIANTS: [&str; 5] = ["paper", "released", "entropy", "placebo", "none"];

fn parse_variant(name: &str) -> PyResult<HicraVariant> {
    let known = VARIANTS.contains(&name);
    let parsed = serde_json::Value::String(name.to_string());
    match serde_json::from_value::<HicraVariant>(parsed) {
        Ok(v) if known => Ok(v),
        _ => Err(PyValueError::new_err(format!(
            "unknown HICRA variant {name:?} (expected one of {})",
            VARIANTS.join(", ")
        ))),
    }
}

/// The per-token advantages and the marked tokens, both `(B, T)`.
type HicraArrays<'py> = (Bound<'py, PyArray2<f32>>, Bound<'py, PyArray2<bool>>);

/// One row's response tokens, gathered from the padded arrays.
struct Row {
    positions: Vec<usize>,
    planning: Vec<bool>,
    entropy: Vec<f32>,
}

/// Per-token HICRA advantages `(B, T)` float32 and the marked tokens `(B, T)` bool.
#[pyfunction]
#[pyo3(signature = (advantages, planning, mask, *, alpha, variant, entropy_quantile, entropy, correct, group_size, seed))]
#[allow(clippy::too_many_arguments)]
fn apply_hicra<'py>(
    py: Python<'py>,
    advantages: PyReadonlyArray1<'py, f32>,
    planning: PyReadonlyArray2<'py, bool>,
    mask: PyReadonlyArray2<'py, bool>,
    alpha: f32,
    variant: &str,
    entropy_quantile: f32,
    entropy: Option<PyReadonlyArray2<'py, f32>>,
    correct: Option<PyReadonlyArray1<'py, bool>>,
    group_size: Option<usize>,
    seed: u64,
) -> PyResult<HicraArrays<'py>> {
    guarded("apply_hicra", || {
        let variant = parse_variant(variant)?;
        if !(alpha.is_finite() && alpha >= 0.0) {
            return Err(PyValueError::new_err(format!(
                "alpha = {alpha} must be a finite number >= 0 (as algorithm.hicra.alpha)"
            )));
        }
        if !(0.0..=1.0).contains(&entropy_quantile) {
            return Err(PyValueError::new_err(format!(
                "entropy_quantile = {entropy_quantile} is outside [0, 1]"
            )));
        }
        let adv = advantages.as_array();
        let plan = planning.as_array();
        let msk = mask.as_array();
        let (b, t) = plan.dim();
        if adv.len() != b {
            return Err(PyValueError::new_err(format!(
                "advantages has {} entries but planning has {b} rows (advantages must be (B,))",
                adv.len()
            )));
        }
        if msk.dim() != (b, t) {
            return Err(PyValueError::new_err(format!(
                "mask has shape {:?} but planning has shape ({b}, {t})",
                msk.dim()
            )));
        }
        let ent = entropy.as_ref().map(|e| e.as_array());
        if let Some(e) = &ent
            && e.dim() != (b, t)
        {
            return Err(PyValueError::new_err(format!(
                "entropy has shape {:?} but planning has shape ({b}, {t})",
                e.dim()
            )));
        }
        if matches!(variant, HicraVariant::Released | HicraVariant::Entropy) && ent.is_none() {
            return Err(PyValueError::new_err(format!(
                "variant {variant:?} needs entropy: a (B, T) array of per-token policy entropies"
            )));
        }
        let cor = correct.as_ref().map(|c| c.as_array());
        if let Some(c) = &cor
            && c.len() != b
        {
            return Err(PyValueError::new_err(format!(
                "correct has {} entries but there are {b} responses",
                c.len()
            )));
        }
        if variant == HicraVariant::Released && cor.is_none() {
            return Err(PyValueError::new_err(
                "variant released needs correct: a (B,) bool array (which responses were graded correct)",
            ));
        }
        if let Some(i) = adv.iter().position(|a| !a.is_finite()) {
            return Err(PyValueError::new_err(format!(
                "advantages[{i}] = {} is not finite",
                adv[i]
            )));
        }
        let group_size = group_size.unwrap_or(b.max(1));
        if group_size == 0 || b % group_size != 0 {
            return Err(PyValueError::new_err(format!(
                "group_size {group_size} does not divide the batch of {b} responses"
            )));
        }
        let rows: Vec<Row> = (0..b)
            .map(|i| {
                let positions: Vec<usize> = (0..t).filter(|&j| msk[[i, j]]).collect();
                Row {
                    planning: positions.iter().map(|&j| plan[[i, j]]).collect(),
                    entropy: ent
                        .as_ref()
                        .map(|e| positions.iter().map(|&j| e[[i, j]]).collect())
                        .unwrap_or_default(),
                    positions,
                }
            })
            .collect();
        let adv: Vec<f32> = adv.to_vec();
        let cor: Vec<bool> = cor.map(|c| c.to_vec()).unwrap_or_else(|| vec![false; b]);
        let config = HicraConfig {
            variant,
            alpha,
            entropy_quantile,
        };
        let result = py.detach(|| {
            let infos: Vec<ResponseInfo<'_>> = rows
                .iter()
                .enumerate()
                .map(|(i, r)| ResponseInfo {
                    advantage: adv[i],
                    planning: &r.planning,
                    entropy: &r.entropy,
                    correct: cor[i],
                })
                .collect();
            rust_apply_hicra(&config, &infos, group_size, seed)
        });
        let tokens = result.map_err(|e| PyValueError::new_err(e.to_string()))?;
        let mut out = Array2::<f32>::zeros((b, t));
        let mut marked = Array2::<bool>::from_elem((b, t), false);
        for (i, row) in rows.iter().enumerate() {
            for (k, &j) in row.positions.iter().enumerate() {
                out[[i, j]] = tokens.advantages[i][k];
                marked[[i, j]] = tokens.marked[i][k];
            }
        }
        Ok((out.into_pyarray(py), marked.into_pyarray(py)))
    })
}
