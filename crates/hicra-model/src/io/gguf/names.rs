//! GGUF (llama.cpp) tensor names → Hugging Face tensor names, and the inverse of llama.cpp's
//! Q/K row permutation.
//!
//! llama.cpp's converter reorders the rows of `q_proj`/`k_proj` within each head from the HF
//! "rotate-half" layout (first half, second half) to interleaved pairs, so that its rotary
//! embedding can rotate adjacent elements. We undo it so our HF-layout rotary code is right.

use super::hparams::LlamaHyperParams;
use candle_core::{Result, Tensor};

/// The HF name of a GGUF llama tensor, or `None` if it is not a llama weight.
pub fn hf_tensor_name(gguf_name: &str) -> Option<String> {
    match gguf_name {
        "token_embd.weight" => return Some("model.embed_tokens.weight".into()),
        "output_norm.weight" => return Some("model.norm.weight".into()),
        "output.weight" => return Some("lm_head.weight".into()),
        _ => {}
    }
    let rest = gguf_name.strip_prefix("blk.")?;
    let (layer, suffix) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    let hf = match suffix {
        "attn_norm.weight" => "input_layernorm.weight",
        "ffn_norm.weight" => "post_attention_layernorm.weight",
        "attn_q.weight" => "self_attn.q_proj.weight",
        "attn_k.weight" => "self_attn.k_proj.weight",
        "attn_v.weight" => "self_attn.v_proj.weight",
        "attn_output.weight" => "self_attn.o_proj.weight",
        "ffn_gate.weight" => "mlp.gate_proj.weight",
        "ffn_up.weight" => "mlp.up_proj.weight",
        "ffn_down.weight" => "mlp.down_proj.weight",
        _ => return None,
    };
    Some(format!("model.layers.{layer}.{hf}"))
}

/// GGUF tensors that carry no weights we need (none for plain llama files today).
pub fn is_ignorable(_gguf_name: &str) -> bool {
    false
}

/// The number of heads whose rows llama.cpp permuted in this tensor (q: heads, k: kv heads).
pub fn qk_heads(gguf_name: &str, hp: &LlamaHyperParams) -> Option<usize> {
    if gguf_name.ends_with(".attn_q.weight") {
        Some(hp.num_attention_heads)
    } else if gguf_name.ends_with(".attn_k.weight") {
        Some(hp.num_key_value_heads)
    } else {
        None
    }
}

/// Undoes llama.cpp's permutation of a (heads·head_dim, in) projection: within each head,
/// row `2i + j` (interleaved) goes back to row `j·head_dim/2 + i` (rotate-half).
pub fn unpermute_qk(weight: &Tensor, heads: usize) -> Result<Tensor> {
    let (rows, cols) = weight.dims2()?;
    if heads == 0 || rows % (2 * heads) != 0 {
        candle_core::bail!("{rows} rows cannot be split into {heads} heads of even size");
    }
    let half = rows / heads / 2;
    weight
        .reshape((heads, half, 2, cols))?
        .transpose(1, 2)?
        .contiguous()?
        .reshape((rows, cols))
}

/// Applies llama.cpp's permutation (HF layout → GGUF layout); the inverse of [`unpermute_qk`].
pub fn permute_qk(weight: &Tensor, heads: usize) -> Result<Tensor> {
    let (rows, cols) = weight.dims2()?;
    if heads == 0 || rows % (2 * heads) != 0 {
        candle_core::bail!("{rows} rows cannot be split into {heads} heads of even size");
    }
    let half = rows / heads / 2;
    weight
        .reshape((heads, 2, half, cols))?
        .transpose(1, 2)?
        .contiguous()?
        .reshape((rows, cols))
}

/// The GGUF name of an HF llama tensor (inverse of [`hf_tensor_name`]).
pub fn gguf_tensor_name(hf_name: &str) -> Option<String> {
    match hf_name {
        "model.embed_tokens.weight" => return Some("token_embd.weight".into()),
        "model.norm.weight" => return Some("output_norm.weight".into()),
        "lm_head.weight" => return Some("output.weight".into()),
        _ => {}
    }
    let rest = hf_name.strip_prefix("model.layers.")?;
    let (layer, suffix) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    let g = match suffix {
        "input_layernorm.weight" => "attn_norm.weight",
        "post_attention_layernorm.weight" => "ffn_norm.weight",
        "self_attn.q_proj.weight" => "attn_q.weight",
        "self_attn.k_proj.weight" => "attn_k.weight",
        "self_attn.v_proj.weight" => "attn_v.weight",
        "self_attn.o_proj.weight" => "attn_output.weight",
        "mlp.gate_proj.weight" => "ffn_gate.weight",
        "mlp.up_proj.weight" => "ffn_up.weight",
        "mlp.down_proj.weight" => "ffn_down.weight",
        _ => return None,
    };
    Some(format!("blk.{layer}.{g}"))
}
