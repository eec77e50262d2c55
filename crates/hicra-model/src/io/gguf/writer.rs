//! Writing a llama-architecture model as a GGUF file (the inverse of the reader): HF names →
//! GGUF names, Q/K rows permuted to llama.cpp's layout, tensors stored in a chosen ggml type,
//! the hyper-parameter keys, and the byte-level BPE tokenizer as `tokenizer.ggml.*`.
//! Used to make small GGUF files for tests and for handing a model to llama.cpp tools.

use super::names::{gguf_tensor_name, permute_qk};
use crate::config::{Arch, ModelConfig};
use crate::error::{ModelError, Result};
use crate::io::tokenizer::Tokenizer;
use candle_core::Tensor;
use candle_core::quantized::gguf_file::Value;
use candle_core::quantized::{GgmlDType, QTensor};
use serde_json::Value as Json;
use std::path::Path;

/// Special tokens and chat template stored with the GGUF tokenizer.
#[derive(Debug, Clone, Default)]
pub struct GgufTokenizerInfo {
    /// BOS id.
    pub bos_token_id: Option<u32>,
    /// EOS id.
    pub eos_token_id: Option<u32>,
    /// Padding id.
    pub padding_token_id: Option<u32>,
    /// `tokenizer.ggml.pre` (e.g. `gpt-2`, `smollm`).
    pub pre: String,
    /// `tokenizer.chat_template`.
    pub chat_template: Option<String>,
}

fn tokenizer_metadata(tokenizer: &Tokenizer) -> Result<(Vec<String>, Vec<String>, Vec<i32>)> {
    let json: Json = serde_json::from_str(&tokenizer.to_json()?)
        .map_err(|e| ModelError::Other(format!("tokenizer JSON: {e}")))?;
    let model = json
        .get("model")
        .ok_or_else(|| ModelError::Other("tokenizer JSON has no model".into()))?;
    if model.get("type").and_then(Json::as_str) != Some("BPE") {
        return Err(ModelError::InvalidInput(
            "only BPE tokenizers can be written to GGUF".into(),
        ));
    }
    let vocab = model
        .get("vocab")
        .and_then(Json::as_object)
        .ok_or_else(|| ModelError::Other("tokenizer JSON has no vocab".into()))?;
    let mut tokens = vec![String::new(); tokenizer.vocab_size()];
    let mut types = vec![1i32; tokenizer.vocab_size()];
    for (text, id) in vocab {
        if let Some(slot) = id.as_u64().and_then(|i| tokens.get_mut(i as usize)) {
            *slot = text.clone();
        }
    }
    for added in json
        .get("added_tokens")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
    {
        let (Some(id), Some(text)) = (
            added.get("id").and_then(Json::as_u64),
            added.get("content").and_then(Json::as_str),
        ) else {
            continue;
        };
        if let Some(slot) = tokens.get_mut(id as usize) {
            *slot = text.to_string();
            let special = added
                .get("special")
                .and_then(Json::as_bool)
                .unwrap_or(false);
            types[id as usize] = if special { 3 } else { 4 };
        }
    }
    let merges = model
        .get("merges")
        .and_then(Json::as_array)
        .map(|m| {
            m.iter()
                .filter_map(|x| match x {
                    Json::String(s) => Some(s.clone()),
                    Json::Array(pair) => Some(
                        pair.iter()
                            .filter_map(Json::as_str)
                            .collect::<Vec<_>>()
                            .join(" "),
                    ),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    Ok((tokens, merges, types))
}

/// Writes a Llama model as a GGUF v2/v3 file: `tensors` are HF-named weights (a tied
/// `lm_head.weight` is left out), stored as `dtype` (2-D weights; norms stay F32).
pub fn write_llama_gguf(
    path: &Path,
    config: &ModelConfig,
    tensors: &[(String, Tensor)],
    tokenizer: &Tokenizer,
    info: &GgufTokenizerInfo,
    dtype: GgmlDType,
) -> Result<()> {
    if config.arch != Arch::Llama || config.attention_bias || config.mlp_bias {
        return Err(ModelError::InvalidInput(
            "only bias-free Llama models can be written to GGUF".into(),
        ));
    }
    let mut qtensors: Vec<(String, QTensor)> = Vec::new();
    for (name, tensor) in tensors {
        if config.tie_word_embeddings && name == "lm_head.weight" {
            continue;
        }
        let gguf_name = gguf_tensor_name(name)
            .ok_or_else(|| ModelError::InvalidInput(format!("no GGUF name for tensor {name}")))?;
        let mut t = tensor.to_dtype(candle_core::DType::F32)?;
        if name.ends_with("q_proj.weight") {
            t = permute_qk(&t, config.num_attention_heads)?;
        } else if name.ends_with("k_proj.weight") {
            t = permute_qk(&t, config.num_key_value_heads)?;
        }
        let q = if t.rank() == 1 {
            QTensor::quantize(&t, GgmlDType::F32)?
        } else {
            QTensor::quantize(&t, dtype)?
        };
        qtensors.push((gguf_name, q));
    }
    let (tokens, merges, types) = tokenizer_metadata(tokenizer)?;
    let u32v = |x: usize| Value::U32(x as u32);
    let strings = |v: &[String]| Value::Array(v.iter().map(|s| Value::String(s.clone())).collect());
    let mut meta: Vec<(String, Value)> = vec![
        ("general.architecture".into(), Value::String("llama".into())),
        ("general.name".into(), Value::String("hicra export".into())),
        ("llama.block_count".into(), u32v(config.num_hidden_layers)),
        (
            "llama.context_length".into(),
            u32v(config.max_position_embeddings),
        ),
        ("llama.embedding_length".into(), u32v(config.hidden_size)),
        (
            "llama.feed_forward_length".into(),
            u32v(config.intermediate_size),
        ),
        (
            "llama.attention.head_count".into(),
            u32v(config.num_attention_heads),
        ),
        (
            "llama.attention.head_count_kv".into(),
            u32v(config.num_key_value_heads),
        ),
        ("llama.attention.key_length".into(), u32v(config.head_dim)),
        ("llama.attention.value_length".into(), u32v(config.head_dim)),
        ("llama.rope.dimension_count".into(), u32v(config.head_dim)),
        (
            "llama.rope.freq_base".into(),
            Value::F32(config.rope_theta as f32),
        ),
        (
            "llama.attention.layer_norm_rms_epsilon".into(),
            Value::F32(config.rms_norm_eps as f32),
        ),
        ("llama.vocab_size".into(), u32v(config.vocab_size)),
        ("tokenizer.ggml.model".into(), Value::String("gpt2".into())),
        ("tokenizer.ggml.pre".into(), Value::String(info.pre.clone())),
        ("tokenizer.ggml.tokens".into(), strings(&tokens)),
        ("tokenizer.ggml.merges".into(), strings(&merges)),
        (
            "tokenizer.ggml.token_type".into(),
            Value::Array(types.into_iter().map(Value::I32).collect()),
        ),
        ("tokenizer.ggml.add_bos_token".into(), Value::Bool(false)),
    ];
    for (key, id) in [
        ("tokenizer.ggml.bos_token_id", info.bos_token_id),
        ("tokenizer.ggml.eos_token_id", info.eos_token_id),
        ("tokenizer.ggml.padding_token_id", info.padding_token_id),
    ] {
        if let Some(id) = id {
            meta.push((key.into(), Value::U32(id)));
        }
    }
    if let Some(t) = &info.chat_template {
        meta.push(("tokenizer.chat_template".into(), Value::String(t.clone())));
    }
    let meta_refs: Vec<(&str, &Value)> = meta.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let tensor_refs: Vec<(&str, &QTensor)> =
        qtensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let mut file = std::fs::File::create(path).map_err(|e| ModelError::io(path, e))?;
    candle_core::quantized::gguf_file::write(&mut file, &meta_refs, &tensor_refs)?;
    Ok(())
}
