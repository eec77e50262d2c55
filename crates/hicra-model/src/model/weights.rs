//! The parameter layout of a model: HF tensor names and shapes for a config, and the
//! structured view of the weights that the forward pass uses.

use candle_core::{Tensor, Var};
use std::collections::HashMap;

use crate::config::ModelConfig;

/// HF name of the token embedding.
pub const EMBED: &str = "model.embed_tokens.weight";
/// HF name of the final norm.
pub const FINAL_NORM: &str = "model.norm.weight";
/// HF name of the output projection.
pub const LM_HEAD: &str = "lm_head.weight";

/// Every tensor the config needs, with its shape, in HF naming (tied `lm_head` omitted).
pub fn expected_tensors(config: &ModelConfig) -> Vec<(String, Vec<usize>)> {
    let d = config.hidden_size;
    let q = config.num_attention_heads * config.head_dim;
    let kv = config.num_key_value_heads * config.head_dim;
    let ff = config.intermediate_size;
    let mut out = vec![(EMBED.to_string(), vec![config.vocab_size, d])];
    for i in 0..config.num_hidden_layers {
        let p = format!("model.layers.{i}.");
        let mut push = |name: &str, shape: Vec<usize>| out.push((format!("{p}{name}"), shape));
        push("self_attn.q_proj.weight", vec![q, d]);
        push("self_attn.k_proj.weight", vec![kv, d]);
        push("self_attn.v_proj.weight", vec![kv, d]);
        push("self_attn.o_proj.weight", vec![d, q]);
        if config.qkv_bias() {
            push("self_attn.q_proj.bias", vec![q]);
            push("self_attn.k_proj.bias", vec![kv]);
            push("self_attn.v_proj.bias", vec![kv]);
        }
        if config.o_bias() {
            push("self_attn.o_proj.bias", vec![d]);
        }
        if config.qk_norm() {
            push("self_attn.q_norm.weight", vec![config.head_dim]);
            push("self_attn.k_norm.weight", vec![config.head_dim]);
        }
        push("mlp.gate_proj.weight", vec![ff, d]);
        push("mlp.up_proj.weight", vec![ff, d]);
        push("mlp.down_proj.weight", vec![d, ff]);
        if config.mlp_bias {
            push("mlp.gate_proj.bias", vec![ff]);
            push("mlp.up_proj.bias", vec![ff]);
            push("mlp.down_proj.bias", vec![d]);
        }
        push("input_layernorm.weight", vec![d]);
        push("post_attention_layernorm.weight", vec![d]);
    }
    out.push((FINAL_NORM.to_string(), vec![d]));
    if !config.tie_word_embeddings {
        out.push((LM_HEAD.to_string(), vec![config.vocab_size, d]));
    }
    out
}

/// A linear layer's weight (out, in) and optional bias.
#[derive(Clone)]
pub(crate) struct Linear {
    pub w: Tensor,
    pub b: Option<Tensor>,
}

/// One decoder layer's weights.
#[derive(Clone)]
pub(crate) struct LayerWeights {
    pub q: Linear,
    pub k: Linear,
    pub v: Linear,
    pub o: Linear,
    pub gate: Linear,
    pub up: Linear,
    pub down: Linear,
    pub input_norm: Tensor,
    pub post_norm: Tensor,
    pub q_norm: Option<Tensor>,
    pub k_norm: Option<Tensor>,
}

/// All weights as tensors: either the tracked Var tensors (training) or detached views sharing
/// their storage (inference: no graph is recorded).
#[derive(Clone)]
pub(crate) struct Weights {
    pub embed: Tensor,
    pub layers: Vec<LayerWeights>,
    pub norm: Tensor,
    pub lm_head: Tensor,
    /// Detached inference weights: the forward pass may use candle's fused kernels (which have
    /// no backward) and the decoding matmuls.
    pub inference: bool,
}

impl Weights {
    /// Builds the structured view from named Vars (all expected names must be present).
    pub fn from_vars(config: &ModelConfig, vars: &HashMap<String, Var>, detach: bool) -> Weights {
        let get = |name: &str| -> Tensor {
            let t = vars[name].as_tensor();
            if detach { t.detach() } else { t.clone() }
        };
        let opt = |name: &str| -> Option<Tensor> { vars.contains_key(name).then(|| get(name)) };
        let lin = |p: &str| Linear {
            w: get(&format!("{p}.weight")),
            b: opt(&format!("{p}.bias")),
        };
        let layers = (0..config.num_hidden_layers)
            .map(|i| {
                let p = format!("model.layers.{i}.");
                LayerWeights {
                    q: lin(&format!("{p}self_attn.q_proj")),
                    k: lin(&format!("{p}self_attn.k_proj")),
                    v: lin(&format!("{p}self_attn.v_proj")),
                    o: lin(&format!("{p}self_attn.o_proj")),
                    gate: lin(&format!("{p}mlp.gate_proj")),
                    up: lin(&format!("{p}mlp.up_proj")),
                    down: lin(&format!("{p}mlp.down_proj")),
                    input_norm: get(&format!("{p}input_layernorm.weight")),
                    post_norm: get(&format!("{p}post_attention_layernorm.weight")),
                    q_norm: opt(&format!("{p}self_attn.q_norm.weight")),
                    k_norm: opt(&format!("{p}self_attn.k_norm.weight")),
                }
            })
            .collect();
        let embed = get(EMBED);
        let lm_head = if config.tie_word_embeddings {
            embed.clone()
        } else {
            get(LM_HEAD)
        };
        Weights {
            embed,
            layers,
            norm: get(FINAL_NORM),
            lm_head,
            inference: detach,
        }
    }
}
