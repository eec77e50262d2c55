//! The llama hyper-parameter keys of a GGUF file turned into a Hugging Face `config.json` value (LlamaForCausalLM, as transformers 4.x writes it).

use super::error::GgufError;
use super::metadata::Metadata;
use super::tokenizer::GgufTokenizer;
use candle_core::quantized::gguf_file::Content;
use serde_json::json;

/// Hyper-parameters of a llama-architecture GGUF.
#[derive(Debug, Clone, PartialEq)]
pub struct LlamaHyperParams {
    /// Vocabulary size (rows of `token_embd.weight`).
    pub vocab_size: usize,
    /// `llama.embedding_length`.
    pub hidden_size: usize,
    /// `llama.feed_forward_length`.
    pub intermediate_size: usize,
    /// `llama.block_count`.
    pub num_hidden_layers: usize,
    /// `llama.attention.head_count`.
    pub num_attention_heads: usize,
    /// `llama.attention.head_count_kv` (defaults to the head count).
    pub num_key_value_heads: usize,
    /// Per-head dimension (`llama.attention.key_length`, else hidden / heads).
    pub head_dim: usize,
    /// `llama.context_length`.
    pub max_position_embeddings: usize,
    /// `llama.attention.layer_norm_rms_epsilon`.
    pub rms_norm_eps: f64,
    /// `llama.rope.freq_base` (default 10000).
    pub rope_theta: f64,
}

impl LlamaHyperParams {
    /// Reads the `llama.*` keys; the vocabulary size comes from the embedding tensor.
    pub fn from_metadata(meta: &Metadata<'_>, content: &Content) -> Result<Self, GgufError> {
        let a = "llama";
        let key = |k: &str| format!("{a}.{k}");
        let hidden_size = meta.u64(&key("embedding_length"))? as usize;
        let num_attention_heads = meta.u64(&key("attention.head_count"))? as usize;
        let num_key_value_heads = meta
            .opt_u64(&key("attention.head_count_kv"))?
            .map(|v| v as usize)
            .unwrap_or(num_attention_heads);
        if num_attention_heads == 0
            || num_key_value_heads == 0
            || !num_attention_heads.is_multiple_of(num_key_value_heads)
        {
            return Err(GgufError::Metadata {
                path: meta.path().to_path_buf(),
                key: key("attention.head_count_kv"),
                message: format!(
                    "{num_attention_heads} heads cannot be grouped over {num_key_value_heads} kv heads"
                ),
            });
        }
        let head_dim = match meta.opt_u64(&key("attention.key_length"))? {
            Some(v) => v as usize,
            None => hidden_size / num_attention_heads,
        };
        let rot = meta.opt_u64(&key("rope.dimension_count"))?;
        if let Some(rot) = rot.filter(|&r| r as usize != head_dim) {
            return Err(GgufError::Metadata {
                path: meta.path().to_path_buf(),
                key: key("rope.dimension_count"),
                message: format!("partial rotary ({rot} of {head_dim}) is not supported"),
            });
        }
        if meta.get(&key("rope.scaling.type")).is_some()
            || content.tensor_infos.contains_key("rope_freqs.weight")
        {
            return Err(GgufError::Metadata {
                path: meta.path().to_path_buf(),
                key: key("rope.scaling.type"),
                message: "rope scaling (rope_freqs) in GGUF files is not supported".into(),
            });
        }
        let vocab_size = match content.tensor_infos.get("token_embd.weight") {
            Some(info) => info.shape.dims()[0],
            None => {
                return Err(GgufError::Metadata {
                    path: meta.path().to_path_buf(),
                    key: "token_embd.weight".into(),
                    message: "the token embedding tensor is missing".into(),
                });
            }
        };
        Ok(Self {
            vocab_size,
            hidden_size,
            intermediate_size: meta.u64(&key("feed_forward_length"))? as usize,
            num_hidden_layers: meta.u64(&key("block_count"))? as usize,
            num_attention_heads,
            num_key_value_heads,
            head_dim,
            max_position_embeddings: meta
                .opt_u64(&key("context_length"))?
                .map(|v| v as usize)
                .unwrap_or(2048),
            rms_norm_eps: meta
                .opt_f64(&key("attention.layer_norm_rms_epsilon"))?
                .unwrap_or(1e-5),
            rope_theta: meta.opt_f64(&key("rope.freq_base"))?.unwrap_or(10000.0),
        })
    }

    /// The HF `config.json` value for these hyper-parameters.
    pub fn to_hf_config(&self, tied: bool, tok: &GgufTokenizer) -> serde_json::Value {
        // f32 rounding of the GGUF values: keep the decimal the model was published with.
        let eps = round_f32(self.rms_norm_eps);
        let theta = round_f32(self.rope_theta);
        let eos: serde_json::Value = match tok.eos_token_ids.as_slice() {
            [] => serde_json::Value::Null,
            [one] => json!(one),
            many => json!(many),
        };
        json!({
            "architectures": ["LlamaForCausalLM"],
            "attention_bias": false,
            "attention_dropout": 0.0,
            "bos_token_id": tok.bos_token_id,
            "eos_token_id": eos,
            "head_dim": self.head_dim,
            "hidden_act": "silu",
            "hidden_size": self.hidden_size,
            "initializer_range": 0.02,
            "intermediate_size": self.intermediate_size,
            "max_position_embeddings": self.max_position_embeddings,
            "mlp_bias": false,
            "model_type": "llama",
            "num_attention_heads": self.num_attention_heads,
            "num_hidden_layers": self.num_hidden_layers,
            "num_key_value_heads": self.num_key_value_heads,
            "pad_token_id": tok.pad_token_id,
            "pretraining_tp": 1,
            "rms_norm_eps": eps,
            "rope_scaling": null,
            "rope_theta": theta,
            "tie_word_embeddings": tied,
            "torch_dtype": "float32",
            "use_cache": true,
            "vocab_size": self.vocab_size,
        })
    }
}

/// Shortest decimal that round-trips through f32 (GGUF stores f32; 1e-5 reads as 9.9999997e-6).
fn round_f32(x: f64) -> f64 {
    let s = format!("{}", x as f32);
    s.parse().unwrap_or(x)
}
