//! The training trunk's backward pass written out by hand, for the fused CPU kernels (f32 and
//! f64 on the CPU, with f32 or bf16 products).
//!
//! candle's autograd adds every gradient contribution into a freshly zeroed tensor: one
//! `zeros_like` and one `add` per edge of the graph, and it keeps every operand of every op
//! alive until the backward pass. Here each layer's forward keeps only the activations its
//! backward reads ([`Activations`], recorded by [`Model::layer`]), the weights are detached so
//! no graph is built, and the backward computes each gradient once: the products of the
//! projections and of attention, and the fused kernels' own backward passes
//! (`hicra_kernels::fused`). With activation checkpointing only the layers' inputs are kept, and
//! each layer is run again, recording, just before its backward.
//!
//! `Model::forward_logits` and the composed kernels (other dtypes and devices) keep candle's
//! autograd; the tests compare the two.

use candle_core::Tensor;
use candle_core::backprop::GradStore;

use hicra_kernels::fused;

use crate::batch::TokenBatch;
use crate::error::{ModelError, Result};
use crate::model::Model;
use crate::model::forward::{Activations, Forward, Kernels, TrunkInputs};
use crate::model::weights::{LayerWeights, Linear, Weights};

/// A linear layer's gradients.
struct LinearGrads {
    w: Tensor,
    b: Option<Tensor>,
}

/// One layer's parameter gradients, shaped like [`LayerWeights`].
struct LayerGrads {
    q: LinearGrads,
    k: LinearGrads,
    v: LinearGrads,
    o: LinearGrads,
    gate: LinearGrads,
    up: LinearGrads,
    down: LinearGrads,
    input_norm: Tensor,
    post_norm: Tensor,
    q_norm: Option<Tensor>,
    k_norm: Option<Tensor>,
}

impl LayerGrads {
    /// Stores the gradients under the tracked weights' ids.
    fn insert_into(self, tracked: &LayerWeights, grads: &mut GradStore) {
        let linears = [
            (self.q, &tracked.q),
            (self.k, &tracked.k),
            (self.v, &tracked.v),
            (self.o, &tracked.o),
            (self.gate, &tracked.gate),
            (self.up, &tracked.up),
            (self.down, &tracked.down),
        ];
        for (g, l) in linears {
            grads.insert(&l.w, g.w);
            if let (Some(gb), Some(b)) = (g.b, &l.b) {
                grads.insert(b, gb);
            }
        }
        grads.insert(&tracked.input_norm, self.input_norm);
        grads.insert(&tracked.post_norm, self.post_norm);
        for (g, w) in [
            (self.q_norm, &tracked.q_norm),
            (self.k_norm, &tracked.k_norm),
        ] {
            if let (Some(g), Some(w)) = (g, w) {
                grads.insert(w, g);
            }
        }
    }
}

/// What the hand-written backward pass keeps of a layer between the passes.
enum Kept {
    Activations(Activations),
    /// Its input only (activation checkpointing).
    Input(Tensor),
}

/// The training trunk's forward pass, kept for [`Model::trunk_backward`].
pub(crate) struct RecordedTrunk {
    /// The detached weights both passes (and the head's chunks) compute with.
    pub weights: Weights,
    layers: Vec<Kept>,
    /// The last layer's output (B·T, D), the final norm's input.
    top: Tensor,
    /// Final normed hidden states (B, T, D), detached.
    pub hidden: Tensor,
    inputs: TrunkInputs,
}

/// The gradients (dx = g · w, dw = gᵀ · x) of `x · wᵀ` from its output gradient `grad`, the
/// products in bf16 with f32 accumulation where `bf16_products` is set.
pub(crate) fn linear_backward(
    bf16_products: bool,
    x: &Tensor,
    w: &Tensor,
    grad: &Tensor,
) -> candle_core::Result<(Tensor, Tensor)> {
    #[cfg(target_arch = "x86_64")]
    if bf16_products {
        return hicra_kernels::bf16_matmul::linear_backward(x, w, grad);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = bf16_products;
    Ok((grad.matmul(w)?, grad.t()?.matmul(x)?))
}

/// Gradients (dx, dw, db) of `f.linear(x, l)` from its output gradient `grad` (N, out).
fn linear_grads(
    f: &Forward,
    x: &Tensor,
    l: &Linear,
    grad: &Tensor,
) -> candle_core::Result<(Tensor, LinearGrads)> {
    let db = match l.b {
        Some(_) => Some(grad.sum(0)?),
        None => None,
    };
    let (dx, dw) = linear_backward(f.bf16_products, x, &l.w, grad)?;
    Ok((dx, LinearGrads { w: dw, b: db }))
}

/// Gradients (dx, d weight) of the fused RMSNorm.
fn norm_grads(
    f: &Forward,
    x: &Tensor,
    weight: &Tensor,
    grad: &Tensor,
) -> candle_core::Result<(Tensor, Tensor)> {
    fused::rms_norm_backward(x, weight, grad, f.eps)
}

/// The gradient (B, T, heads, hd) of the rotation's input, from the gradient of its
/// (B, heads, T, hd) output.
fn rope_grads(f: &Forward, grad: &Tensor) -> candle_core::Result<Tensor> {
    let (cos, sin) = f
        .half_tables
        .as_ref()
        .ok_or_else(|| candle_core::Error::Msg("rope backward: no fused tables".into()))?;
    fused::rope_bthd_backward(&grad.transpose(1, 2)?, cos, sin)
}

impl Model {
    /// Whether [`Model::trunk_forward`] and [`Model::trunk_backward`] run for these training
    /// weights: the fused kernels apply (f32/f64 on the CPU).
    pub(crate) fn hand_backward_applies(&self, w: &Weights) -> bool {
        Kernels::for_weights(w) == Kernels::Fused
    }

    /// The training trunk's forward pass on detached weights, keeping each layer's
    /// activations (or, with activation checkpointing, its input) for
    /// [`Model::trunk_backward`].
    pub(crate) fn trunk_forward(&self, batch: &TokenBatch) -> Result<RecordedTrunk> {
        let w = self.untracked_weights();
        let inputs = self.trunk_inputs(batch)?;
        let (b, t) = inputs.dims;
        let f = self.training_forward(&w, &inputs.cos, &inputs.sin)?;
        let checkpointed = self.activation_checkpointing();
        let mut layers = Vec::with_capacity(w.layers.len());
        let mut x = w.embed.index_select(&inputs.ids, 0)?;
        for (li, lw) in w.layers.iter().enumerate() {
            let (y, acts) = self.layer(
                &f,
                lw,
                None,
                li,
                &x,
                (b, t),
                &inputs.mask,
                None,
                !checkpointed,
            )?;
            layers.push(match acts {
                Some(a) => Kept::Activations(a),
                None => Kept::Input(x),
            });
            x = y;
        }
        let hidden = f
            .norm(&x, &w.norm)?
            .reshape((b, t, self.config().hidden_size))?;
        Ok(RecordedTrunk {
            weights: w,
            layers,
            top: x,
            hidden,
            inputs,
        })
    }

    /// Gradients of `Σ hidden ⊙ grad_hidden` for every trunk parameter (the embedding, the
    /// layers, the final norm), last layer first; each layer's activations are freed once its
    /// backward has run.
    pub(crate) fn trunk_backward(
        &self,
        trunk: RecordedTrunk,
        grad_hidden: &Tensor,
    ) -> Result<GradStore> {
        let tracked = self.training_weights();
        let RecordedTrunk {
            weights: w,
            layers,
            top,
            inputs,
            ..
        } = trunk;
        let TrunkInputs {
            ids,
            cos,
            sin,
            mask,
            dims,
        } = inputs;
        let f = self.training_forward(&w, &cos, &sin)?;
        let d = self.config().hidden_size;
        let mut grads = GradStore::default();
        let (mut g, d_norm) = norm_grads(
            &f,
            &top,
            &w.norm,
            &grad_hidden.reshape((dims.0 * dims.1, d))?,
        )?;
        drop(top);
        grads.insert(&tracked.norm, d_norm);
        for (li, kept) in layers.into_iter().enumerate().rev() {
            let acts = match kept {
                Kept::Activations(a) => a,
                Kept::Input(x) => self
                    .layer(&f, &w.layers[li], None, li, &x, dims, &mask, None, true)?
                    .1
                    .ok_or_else(|| {
                        ModelError::InvalidInput("a recomputed layer kept no activations".into())
                    })?,
            };
            let (dx, layer_grads) = self.layer_backward(&f, &w.layers[li], acts, &g, dims)?;
            layer_grads.insert_into(&tracked.layers[li], &mut grads);
            g = dx;
        }
        let d_embed = w.embed.zeros_like()?.index_add(&ids, &g, 0)?;
        grads.insert(&tracked.embed, d_embed);
        Ok(grads)
    }

    /// The weights' detached views for the hand-written passes: no graph is recorded, and the
    /// forward still takes the training kernels.
    fn untracked_weights(&self) -> Weights {
        let mut w = self.inference_weights();
        w.inference = false;
        w
    }

    fn training_forward<'a>(
        &self,
        w: &Weights,
        cos: &'a Tensor,
        sin: &'a Tensor,
    ) -> Result<Forward<'a>> {
        let f = Forward::new(
            w,
            self.config().rms_norm_eps,
            cos,
            sin,
            self.bf16_products(),
        )?;
        if f.kernels != Kernels::Fused {
            return Err(ModelError::InvalidInput(
                "the hand-written backward needs the fused CPU kernels (f32/f64)".into(),
            ));
        }
        Ok(f)
    }

    /// One layer's backward pass: from the gradient `dy` (B·T, D) of its output, the gradient
    /// of its input and of its parameters.
    fn layer_backward(
        &self,
        f: &Forward,
        lw: &LayerWeights,
        a: Activations,
        dy: &Tensor,
        (b, t): (usize, usize),
    ) -> Result<(Tensor, LayerGrads)> {
        let cfg = self.config();
        let (nh, nkv, hd) = (
            cfg.num_attention_heads,
            cfg.num_key_value_heads,
            cfg.head_dim,
        );
        let scale = 1.0 / (hd as f64).sqrt();
        // MLP: y = x2 + down(swiglu(gate(xn2), up(xn2))).
        let (d_act, down) = linear_grads(f, &a.act, &lw.down, dy)?;
        drop(a.act);
        let (d_gate, d_up) = fused::swiglu_backward(&a.gate, &a.up, &d_act)?;
        drop((a.gate, a.up, d_act));
        let (dxn2_gate, gate) = linear_grads(f, &a.xn2, &lw.gate, &d_gate)?;
        let (dxn2_up, up) = linear_grads(f, &a.xn2, &lw.up, &d_up)?;
        drop((a.xn2, d_gate, d_up));
        let (dx2_norm, post_norm) = norm_grads(f, &a.x2, &lw.post_norm, &(dxn2_gate + dxn2_up)?)?;
        drop(a.x2);
        let dx2 = (dy + dx2_norm)?;
        // Attention: x2 = x + o(ctx), ctx = softmax(qg·kᵀ + mask)·v per KV group.
        let (d_ctx, o) = linear_grads(f, &a.ctx, &lw.o, &dx2)?;
        drop(a.ctx);
        let d_ctx = d_ctx
            .reshape((b, t, nh, hd))?
            .transpose(1, 2)?
            .contiguous()?
            .reshape((b, nkv, nh / nkv * t, hd))?;
        let d_probs = d_ctx.matmul(&a.v.t()?)?;
        let d_v = a.probs.t()?.matmul(&d_ctx)?; // (B, KV, T, hd)
        drop(d_ctx);
        let d_scores = fused::softmax_backward(&a.probs, &d_probs)?;
        drop((a.probs, d_probs));
        let d_qg = d_scores.matmul(&a.k)?;
        let d_k = d_scores.t()?.matmul(&a.qg)?; // (B, KV, T, hd)
        drop((d_scores, a.k, a.qg));
        let d_q = rope_grads(f, &(d_qg.reshape((b, nh, t, hd))? * scale)?)?; // (B, T, H, hd)
        let d_k = rope_grads(f, &d_k)?;
        let (d_q, d_k, q_norm, k_norm) = match (&lw.q_norm, &lw.k_norm, a.q_lin, a.k_lin) {
            (Some(qn), Some(kn), Some(q_lin), Some(k_lin)) => {
                let (d_q, g_qn) = norm_grads(f, &q_lin, qn, &d_q)?;
                let (d_k, g_kn) = norm_grads(f, &k_lin, kn, &d_k)?;
                (d_q, d_k, Some(g_qn), Some(g_kn))
            }
            _ => (d_q, d_k, None, None),
        };
        let rows = b * t;
        let d_v = d_v
            .transpose(1, 2)?
            .contiguous()?
            .reshape((rows, nkv * hd))?;
        let (dxn1_q, q) = linear_grads(f, &a.xn1, &lw.q, &d_q.reshape((rows, nh * hd))?)?;
        let (dxn1_k, k) = linear_grads(f, &a.xn1, &lw.k, &d_k.reshape((rows, nkv * hd))?)?;
        let (dxn1_v, v) = linear_grads(f, &a.xn1, &lw.v, &d_v)?;
        drop(a.xn1);
        let dxn1 = ((dxn1_q + dxn1_k)? + dxn1_v)?;
        let (dx_norm, input_norm) = norm_grads(f, &a.x, &lw.input_norm, &dxn1)?;
        let dx = (dx2 + dx_norm)?;
        Ok((
            dx,
            LayerGrads {
                q,
                k,
                v,
                o,
                gate,
                up,
                down,
                input_norm,
                post_norm,
                q_norm,
                k_norm,
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::Padding;
    use crate::config::Arch;
    use crate::device::LoadOptions;
    use crate::io::tiny::{random_tensors, tiny_config};
    use candle_core::{DType, Device};

    /// Max |a − b| over a parameter's gradients, relative to the largest |b|.
    fn relative_gap(a: &Tensor, b: &Tensor) -> f64 {
        let a = a.flatten_all().unwrap().to_vec1::<f64>().unwrap();
        let b = b.flatten_all().unwrap().to_vec1::<f64>().unwrap();
        let scale = b.iter().fold(0f64, |m, x| m.max(x.abs()));
        let gap = a
            .iter()
            .zip(&b)
            .fold(0f64, |m, (x, y)| m.max((x - y).abs()));
        gap / scale
    }

    /// The trunk's gradients for a random output gradient, three ways, in f64: by hand (with
    /// and without checkpointing), candle's autograd of the whole trunk, and candle's
    /// checkpointed backward (which the composed kernels, e.g. on CUDA, still run).
    #[test]
    fn the_trunk_backward_by_hand_matches_both_autograd_paths() -> Result<()> {
        let opts = LoadOptions {
            dtype: DType::F64,
            ..LoadOptions::default()
        };
        for arch in [Arch::Llama, Arch::Qwen2, Arch::Qwen3] {
            let mut config = tiny_config(arch, 120);
            config.mlp_bias = true;
            let model = Model::from_tensors(config.clone(), random_tensors(&config, 3)?, &opts)?;
            let rows = vec![vec![5u32, 17, 9, 44, 2, 71, 30], vec![8, 3, 99, 12]];
            let batch = TokenBatch::from_rows(&rows, 0, Padding::Left, &Device::Cpu)?;
            let (b, t) = batch.dims()?;
            let grad_hidden = Tensor::randn(0f64, 1.0, (b, t, config.hidden_size), &Device::Cpu)?;
            let w = model.training_weights();
            let hidden = model.batch_hidden(w, &batch)?;
            let autograd = model.parameter_grads((hidden * &grad_hidden)?.sum_all()?.backward()?);
            let trunk = model.checkpointed_hidden(w, &batch)?;
            let checkpointed = model.checkpointed_backward(w, trunk, &grad_hidden)?;
            for keep_inputs_only in [false, true] {
                let m = model
                    .clone()
                    .with_activation_checkpointing(keep_inputs_only);
                let recorded = m.trunk_forward(&batch)?;
                let by_hand = m.trunk_backward(recorded, &grad_hidden)?;
                for (name, var) in model.parameters() {
                    if m.is_lm_head_param(&name) && !config.tie_word_embeddings {
                        continue; // the head is not part of the trunk
                    }
                    let ours = by_hand.get(var.as_tensor()).expect("a gradient by hand");
                    for (what, theirs) in [("autograd", &autograd), ("checkpointed", &checkpointed)]
                    {
                        let theirs = theirs.get(var.as_tensor()).expect("an autograd gradient");
                        let gap = relative_gap(ours, theirs);
                        assert!(gap < 1e-10, "{arch:?} {name} vs {what}: {gap}");
                    }
                }
            }
        }
        Ok(())
    }
}
