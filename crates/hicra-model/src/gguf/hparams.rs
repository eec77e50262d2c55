//! GGUF metadata access with named errors, and the llama hyper-parameter keys turned into a
//! Hugging Face `config.json` value (LlamaForCausalLM, as transformers 4.x writes it).

use super::GgufError;
use super::tokenizer::GgufTokenizer;
use candle_core::quantized::gguf_file::{Content, Value};
use serde_json::json;
use std::collections::HashMap;
use std::path::Path;

/// Typed, error-naming access to a GGUF file's metadata.
pub struct Metadata<'a> {
    path: &'a Path,
    values: &'a HashMap<String, Value>,
}

impl<'a> Metadata<'a> {
    /// Wraps the metadata of the GGUF file at `path`.
    pub fn new(path: &'a Path, values: &'a HashMap<String, Value>) -> Self {
        Self { path, values }
    }

    /// The raw value of a key, if present.
    pub fn get(&self, key: &str) -> Option<&'a Value> {
        self.values.get(key)
    }

    fn err(&self, key: &str, message: impl Into<String>) -> GgufError {
        GgufError::Metadata {
            path: self.path.to_path_buf(),
            key: key.to_string(),
            message: message.into(),
        }
    }

    /// The path of the file (for error messages).
    pub fn path(&self) -> &Path {
        self.path
    }

    /// A required string.
    pub fn string(&self, key: &str) -> Result<&'a str, GgufError> {
        match self.values.get(key) {
            Some(Value::String(s)) => Ok(s),
            Some(_) => Err(self.err(key, "expected a string")),
            None => Err(self.err(key, "missing")),
        }
    }

    /// An optional string (wrong type counts as absent).
    pub fn opt_string(&self, key: &str) -> Option<&'a str> {
        match self.values.get(key) {
            Some(Value::String(s)) => Some(s),
            _ => None,
        }
    }

    /// An optional unsigned integer of any integer width.
    pub fn opt_u64(&self, key: &str) -> Result<Option<u64>, GgufError> {
        let Some(v) = self.values.get(key) else {
            return Ok(None);
        };
        let n = match v {
            Value::U8(x) => *x as u64,
            Value::U16(x) => *x as u64,
            Value::U32(x) => *x as u64,
            Value::U64(x) => *x,
            Value::I8(x) if *x >= 0 => *x as u64,
            Value::I16(x) if *x >= 0 => *x as u64,
            Value::I32(x) if *x >= 0 => *x as u64,
            Value::I64(x) if *x >= 0 => *x as u64,
            _ => return Err(self.err(key, "expected a non-negative integer")),
        };
        Ok(Some(n))
    }

    /// A required unsigned integer.
    pub fn u64(&self, key: &str) -> Result<u64, GgufError> {
        self.opt_u64(key)?.ok_or_else(|| self.err(key, "missing"))
    }

    /// An optional float (f32 or f64).
    pub fn opt_f64(&self, key: &str) -> Result<Option<f64>, GgufError> {
        match self.values.get(key) {
            None => Ok(None),
            Some(Value::F32(x)) => Ok(Some(*x as f64)),
            Some(Value::F64(x)) => Ok(Some(*x)),
            Some(_) => Err(self.err(key, "expected a float")),
        }
    }

    /// An optional boolean.
    pub fn opt_bool(&self, key: &str) -> Result<Option<bool>, GgufError> {
        match self.values.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(self.err(key, "expected a bool")),
        }
    }

    /// A required array.
    pub fn array(&self, key: &str) -> Result<&'a Vec<Value>, GgufError> {
        match self.values.get(key) {
            Some(Value::Array(a)) => Ok(a),
            Some(_) => Err(self.err(key, "expected an array")),
            None => Err(self.err(key, "missing")),
        }
    }

    /// A required array of strings.
    pub fn string_array(&self, key: &str) -> Result<Vec<&'a str>, GgufError> {
        self.array(key)?
            .iter()
            .enumerate()
            .map(|(i, v)| match v {
                Value::String(s) => Ok(s.as_str()),
                _ => Err(self.err(key, format!("element {i} is not a string"))),
            })
            .collect()
    }

    /// An optional array of integers (any integer width).
    pub fn opt_int_array(&self, key: &str) -> Result<Option<Vec<i64>>, GgufError> {
        let Some(Value::Array(a)) = self.values.get(key) else {
            return Ok(None);
        };
        a.iter()
            .enumerate()
            .map(|(i, v)| match v {
                Value::U8(x) => Ok(*x as i64),
                Value::I8(x) => Ok(*x as i64),
                Value::U16(x) => Ok(*x as i64),
                Value::I16(x) => Ok(*x as i64),
                Value::U32(x) => Ok(*x as i64),
                Value::I32(x) => Ok(*x as i64),
                Value::U64(x) => Ok(*x as i64),
                Value::I64(x) => Ok(*x),
                _ => Err(self.err(key, format!("element {i} is not an integer"))),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }
}

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
