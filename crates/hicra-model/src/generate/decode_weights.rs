//! The projections of a model packed for batched decoding ([`crate::packed`]), built once per
//! generate call from the current weights, and the rule for when a call packs them.

use rayon::prelude::*;

use crate::model::weights::Weights;
use hicra_kernels::Precision;
use hicra_kernels::packed::PackedMatrix;

/// f32 generation packs its weights from this many rows on: the packed kernel's 8-row tile is
/// then full. Below, the unpacked [`hicra_kernels::skinny`] kernel reads the weights as stored, and
/// packing would not repay its copy.
pub const PACK_MIN_ROWS_F32: usize = 8;

/// One decoder layer's packed projections.
pub(crate) struct PackedLayer {
    pub q: PackedMatrix,
    pub k: PackedMatrix,
    pub v: PackedMatrix,
    pub o: PackedMatrix,
    pub gate: PackedMatrix,
    pub up: PackedMatrix,
    pub down: PackedMatrix,
}

/// Every projection of a model, packed in one precision.
pub(crate) struct DecodeWeights {
    pub layers: Vec<PackedLayer>,
    pub lm_head: PackedMatrix,
}

impl DecodeWeights {
    /// Packs `w`'s projections (f32 CPU weights).
    pub fn pack(w: &Weights, precision: Precision) -> candle_core::Result<DecodeWeights> {
        let pack = |t: &candle_core::Tensor| PackedMatrix::from_tensor(t, precision);
        let layers = w
            .layers
            .par_iter()
            .map(|l| {
                Ok(PackedLayer {
                    q: pack(&l.q.w)?,
                    k: pack(&l.k.w)?,
                    v: pack(&l.v.w)?,
                    o: pack(&l.o.w)?,
                    gate: pack(&l.gate.w)?,
                    up: pack(&l.up.w)?,
                    down: pack(&l.down.w)?,
                })
            })
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(DecodeWeights {
            layers,
            lm_head: pack(&w.lm_head)?,
        })
    }

    /// The precision to pack a generate call of `rows` prompts in, if any: bf16 when asked for
    /// and the CPU has AVX-512 BF16; f32 for batches of [`PACK_MIN_ROWS_F32`] rows or
    /// more on a CPU with a packed f32 kernel (AVX-512, or AVX2 and FMA); none on other devices
    /// and dtypes.
    pub fn plan(requested: Precision, rows: usize, weights: &Weights) -> Option<Precision> {
        let embed = &weights.embed;
        if !embed.device().is_cpu() || embed.dtype() != candle_core::DType::F32 {
            return None;
        }
        if requested == Precision::Bf16 && Precision::Bf16.fast_on_this_cpu() {
            return Some(Precision::Bf16);
        }
        (rows >= PACK_MIN_ROWS_F32 && Precision::F32.fast_on_this_cpu()).then_some(Precision::F32)
    }
}
