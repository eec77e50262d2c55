//! The training backward with activation checkpointing through candle's autograd, for the
//! weights our hand-written backward does not cover (other dtypes and devices): the layers'
//! inputs are kept, and each layer is run again, with its graph, just before its backward.

use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};

use crate::batch::TokenBatch;
use crate::error::{ModelError, Result};
use crate::model::Model;
use crate::model::forward::{Forward, TrunkInputs};
use crate::model::weights::Weights;

/// What [`Model::checkpointed_hidden`] keeps for the backward pass.
pub(crate) struct CheckpointedTrunk {
    /// Detached inputs of the layers, the embeddings first.
    layer_inputs: Vec<Tensor>,
    /// The last layer's output, as a leaf of `hidden`'s graph.
    top: Var,
    /// Final normed hidden states (B, T, D).
    pub hidden: Tensor,
    inputs: TrunkInputs,
}

impl Model {
    /// The training trunk with activation checkpointing: runs the layers keeping only their
    /// (detached) inputs; the returned hidden states are tracked from the last layer's output
    /// and the final norm only. [`Model::checkpointed_backward`] completes the backward pass.
    pub(crate) fn checkpointed_hidden(
        &self,
        w: &Weights,
        batch: &TokenBatch,
    ) -> Result<CheckpointedTrunk> {
        let inputs = self.trunk_inputs(batch)?;
        let (b, t) = inputs.dims;
        let mut layer_inputs = Vec::with_capacity(w.layers.len());
        let (top, hidden) = {
            let f = Forward::new(
                w,
                self.config.rms_norm_eps,
                &inputs.cos,
                &inputs.sin,
                self.bf16_products(),
            )?;
            let mut x = w.embed.index_select(&inputs.ids, 0)?.detach();
            for (li, lw) in w.layers.iter().enumerate() {
                // Detaching drops the layer's graph, and with it its activations.
                let (y, _) = self.layer(&f, lw, None, li, &x, (b, t), &inputs.mask, None, false)?;
                let y = y.detach();
                layer_inputs.push(std::mem::replace(&mut x, y));
            }
            let top = Var::from_tensor(&x)?;
            let hidden = f.norm(top.as_tensor(), &w.norm)?;
            (top, hidden.reshape((b, t, self.config.hidden_size))?)
        };
        Ok(CheckpointedTrunk {
            layer_inputs,
            top,
            hidden,
            inputs,
        })
    }

    /// Gradients of `Σ hidden ⊙ grad_hidden` for every parameter, recomputing one layer at a
    /// time from its saved input, last layer first.
    pub(crate) fn checkpointed_backward(
        &self,
        w: &Weights,
        trunk: CheckpointedTrunk,
        grad_hidden: &Tensor,
    ) -> Result<GradStore> {
        let lost = |what: &str| ModelError::InvalidInput(format!("checkpointed backward: {what}"));
        let mut grads = (&trunk.hidden * grad_hidden)?.sum_all()?.backward()?;
        let mut g = grads
            .remove(trunk.top.as_tensor())
            .ok_or_else(|| lost("no gradient reached the last layer"))?;
        let f = Forward::new(
            w,
            self.config.rms_norm_eps,
            &trunk.inputs.cos,
            &trunk.inputs.sin,
            self.bf16_products(),
        )?;
        for (li, lw) in w.layers.iter().enumerate().rev() {
            let input = Var::from_tensor(&trunk.layer_inputs[li])?;
            let (y, _) = self.layer(
                &f,
                lw,
                None,
                li,
                input.as_tensor(),
                trunk.inputs.dims,
                &trunk.inputs.mask,
                None,
                false,
            )?;
            let mut layer_grads = (y * &g)?.sum_all()?.backward()?;
            g = layer_grads
                .remove(input.as_tensor())
                .ok_or_else(|| lost("no gradient reached a layer's input"))?;
            grads.extend(self.parameter_grads(layer_grads))?;
        }
        let embedded = w.embed.index_select(&trunk.inputs.ids, 0)?;
        grads.extend((embedded * g)?.sum_all()?.backward()?)?;
        Ok(self.parameter_grads(grads))
    }
}
