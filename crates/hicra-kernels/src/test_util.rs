//! Helpers shared by the unit tests.

use candle_core::{DType, Tensor};

/// Largest absolute elementwise difference of two same-shape tensors, as f64.
pub fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a - b)
        .and_then(|d| d.abs())
        .and_then(|d| d.flatten_all())
        .and_then(|d| d.max(0))
        .and_then(|d| d.to_dtype(DType::F64))
        .and_then(|d| d.to_scalar::<f64>())
        .expect("tensors of one shape and a float dtype")
}
