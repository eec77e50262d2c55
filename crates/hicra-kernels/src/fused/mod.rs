//! Fused CPU kernels *with* a backward pass, for the training path: RMSNorm, rotary embedding,
//! the SwiGLU gate, softmax over the last dimension, and token log-probabilities plus entropies
//! straight from logits. candle's own fused kernels have no backward (they silently drop
//! gradients); composing these from basic ops keeps five to eight full-size intermediates per
//! call alive for the backward pass. Each kernel here keeps only its input and output, and runs
//! rows in parallel.
//!
//! The kernels cover contiguous f32 and f64 tensors on the CPU; callers fall back to the
//! compositions in [`crate::ops`] elsewhere.

use candle_core::{DType, Tensor};

mod kernel;
mod norm;
mod rope;
mod scores;
mod softmax;
mod swiglu;

pub use norm::{rms_norm, rms_norm_backward};
pub use rope::{rope_bthd, rope_bthd_backward};
pub use scores::{ScoresBackward, token_logprob_entropy, token_scores_with_backward};
pub use softmax::{masked_softmax, softmax_backward, softmax_last};
pub use swiglu::{swiglu, swiglu_backward};

/// Whether the fused kernels handle `t` (CPU, f32 or f64).
pub fn supported(t: &Tensor) -> bool {
    t.device().is_cpu() && matches!(t.dtype(), DType::F32 | DType::F64)
}

#[cfg(test)]
mod tests;
