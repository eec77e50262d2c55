//! `ModelConfig`: the hyper-parameters of a Llama/Qwen2/Qwen3 model, read from and written to
//! Hugging Face `config.json` (transformers 4.x and 5.x layouts).

use std::path::Path;

use serde_json::{Map, Value, json};

use crate::error::{ModelError, Result};

/// The supported decoder architectures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    /// Llama 2/3, SmolLM2: optional attention bias, GQA, tied or untied embeddings.
    Llama,
    /// Qwen2 / Qwen2.5: bias on the q/k/v projections.
    Qwen2,
    /// Qwen3: per-head RMSNorm on q and k, explicit `head_dim`.
    Qwen3,
}

impl Arch {
    /// The HF `model_type` string.
    pub fn model_type(self) -> &'static str {
        match self {
            Arch::Llama => "llama",
            Arch::Qwen2 => "qwen2",
            Arch::Qwen3 => "qwen3",
        }
    }

    /// The HF `architectures[0]` class name.
    pub fn hf_class(self) -> &'static str {
        match self {
            Arch::Llama => "LlamaForCausalLM",
            Arch::Qwen2 => "Qwen2ForCausalLM",
            Arch::Qwen3 => "Qwen3ForCausalLM",
        }
    }

    /// Parses a `model_type` or an `architectures` class name.
    pub fn from_hf_name(name: &str) -> Option<Arch> {
        match name {
            "llama" | "LlamaForCausalLM" => Some(Arch::Llama),
            "qwen2" | "Qwen2ForCausalLM" => Some(Arch::Qwen2),
            "qwen3" | "Qwen3ForCausalLM" => Some(Arch::Qwen3),
            _ => None,
        }
    }
}

/// RoPE frequency scaling (`rope_scaling` in 4.x, `rope_parameters` in 5.x).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum RopeScaling {
    /// Llama 3.x frequency-dependent scaling.
    Llama3 {
        /// Overall factor.
        factor: f64,
        /// Low-frequency factor.
        low_freq_factor: f64,
        /// High-frequency factor.
        high_freq_factor: f64,
        /// Context the model was pre-trained with.
        original_max_position_embeddings: usize,
    },
    /// Positions divided by `factor`.
    Linear {
        /// The divisor.
        factor: f64,
    },
}

/// Hyper-parameters of a decoder-only model.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ModelConfig {
    /// Architecture family.
    pub arch: Arch,
    /// Vocabulary size (rows of the embedding).
    pub vocab_size: usize,
    /// Model width.
    pub hidden_size: usize,
    /// MLP width.
    pub intermediate_size: usize,
    /// Number of decoder layers.
    pub num_hidden_layers: usize,
    /// Query heads.
    pub num_attention_heads: usize,
    /// Key/value heads (GQA); equals `num_attention_heads` for plain MHA.
    pub num_key_value_heads: usize,
    /// Per-head width.
    pub head_dim: usize,
    /// RMSNorm epsilon.
    pub rms_norm_eps: f64,
    /// RoPE base.
    pub rope_theta: f64,
    /// Optional RoPE scaling.
    pub rope_scaling: Option<RopeScaling>,
    /// Context length.
    pub max_position_embeddings: usize,
    /// Whether `lm_head` shares the embedding matrix.
    pub tie_word_embeddings: bool,
    /// Bias on q/k/v/o (Llama `attention_bias`); Qwen2 always has q/k/v bias.
    pub attention_bias: bool,
    /// Bias on the MLP projections (Llama `mlp_bias`).
    pub mlp_bias: bool,
    /// BOS id, if any.
    pub bos_token_id: Option<u32>,
    /// EOS ids from the config.
    pub eos_token_ids: Vec<u32>,
    /// The dtype the checkpoint declares (`torch_dtype`/`dtype`), e.g. "bfloat16".
    pub torch_dtype: Option<String>,
}

impl ModelConfig {
    /// Whether q/k/v projections carry a bias.
    pub fn qkv_bias(&self) -> bool {
        self.arch == Arch::Qwen2 || self.attention_bias
    }

    /// Whether the output projection carries a bias.
    pub fn o_bias(&self) -> bool {
        self.arch == Arch::Llama && self.attention_bias
    }

    /// Whether q and k get a per-head RMSNorm (Qwen3).
    pub fn qk_norm(&self) -> bool {
        self.arch == Arch::Qwen3
    }

    /// Reads `config.json`.
    pub fn from_file(path: &Path) -> Result<ModelConfig> {
        let text = std::fs::read_to_string(path).map_err(|e| ModelError::io(path, e))?;
        Self::from_json_str(&text, path)
    }

    /// Parses the text of a `config.json`; `path` is used in error messages.
    pub fn from_json_str(text: &str, path: &Path) -> Result<ModelConfig> {
        let value: Value = serde_json::from_str(text).map_err(|e| ModelError::Config {
            path: path.into(),
            message: format!("invalid JSON: {e}"),
        })?;
        Self::from_json(&value, path)
    }

    /// Parses a `config.json` value; `path` is used in error messages.
    pub fn from_json(value: &Value, path: &Path) -> Result<ModelConfig> {
        let cfg_err = |message: String| ModelError::Config {
            path: path.into(),
            message,
        };
        let obj = value
            .as_object()
            .ok_or_else(|| cfg_err("config is not a JSON object".into()))?;
        let arch_name = obj
            .get("model_type")
            .and_then(Value::as_str)
            .map(str::to_string)
            .or_else(|| {
                obj.get("architectures")
                    .and_then(|a| a.get(0))
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .ok_or_else(|| cfg_err("missing required field `model_type`".into()))?;
        let arch =
            Arch::from_hf_name(&arch_name).ok_or_else(|| ModelError::UnknownArchitecture {
                path: path.into(),
                arch: arch_name.clone(),
            })?;
        let req = |name: &str| -> Result<usize> {
            match obj.get(name) {
                None | Some(Value::Null) => {
                    Err(cfg_err(format!("missing required field `{name}`")))
                }
                Some(v) => as_usize(v).ok_or_else(|| {
                    cfg_err(format!("field `{name}` is not a non-negative integer: {v}"))
                }),
            }
        };
        let opt_usize = |name: &str| -> Result<Option<usize>> {
            match obj.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => as_usize(v).map(Some).ok_or_else(|| {
                    cfg_err(format!("field `{name}` is not a non-negative integer: {v}"))
                }),
            }
        };
        let opt_f64 = |name: &str| -> Result<Option<f64>> {
            match obj.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => v
                    .as_f64()
                    .map(Some)
                    .ok_or_else(|| cfg_err(format!("field `{name}` is not a number: {v}"))),
            }
        };
        let opt_bool = |name: &str| -> Result<Option<bool>> {
            match obj.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => v
                    .as_bool()
                    .map(Some)
                    .ok_or_else(|| cfg_err(format!("field `{name}` is not a boolean: {v}"))),
            }
        };
        let vocab_size = req("vocab_size")?;
        let hidden_size = req("hidden_size")?;
        let intermediate_size = req("intermediate_size")?;
        let num_hidden_layers = req("num_hidden_layers")?;
        let num_attention_heads = req("num_attention_heads")?;
        if num_attention_heads == 0 || hidden_size == 0 || vocab_size == 0 {
            return Err(cfg_err(
                "`vocab_size`, `hidden_size` and `num_attention_heads` must be positive".into(),
            ));
        }
        let num_key_value_heads = opt_usize("num_key_value_heads")?.unwrap_or(num_attention_heads);
        if num_key_value_heads == 0 || num_attention_heads % num_key_value_heads != 0 {
            return Err(cfg_err(format!(
                "`num_attention_heads` ({num_attention_heads}) must be a multiple of `num_key_value_heads` ({num_key_value_heads})"
            )));
        }
        let head_dim = match opt_usize("head_dim")? {
            Some(h) => h,
            None => {
                if hidden_size % num_attention_heads != 0 {
                    return Err(cfg_err(
                        "`hidden_size` is not a multiple of `num_attention_heads` and `head_dim` is missing".into(),
                    ));
                }
                hidden_size / num_attention_heads
            }
        };
        if head_dim % 2 != 0 {
            return Err(cfg_err(format!(
                "`head_dim` ({head_dim}) must be even for RoPE"
            )));
        }
        // RoPE: 5.x `rope_parameters` first, then 4.x `rope_theta` + `rope_scaling`.
        let rope_params = obj.get("rope_parameters").filter(|v| !v.is_null());
        let rope_theta = match rope_params
            .and_then(|p| p.get("rope_theta"))
            .and_then(Value::as_f64)
        {
            Some(t) => t,
            None => opt_f64("rope_theta")?.unwrap_or(10000.0),
        };
        let scaling_value = obj
            .get("rope_scaling")
            .filter(|v| !v.is_null())
            .or(rope_params);
        let rope_scaling = match scaling_value {
            Some(v) => parse_rope_scaling(v).map_err(cfg_err)?,
            None => None,
        };
        let eos_token_ids = match obj.get("eos_token_id") {
            None | Some(Value::Null) => vec![],
            Some(v) => ids_from_value(v).ok_or_else(|| {
                cfg_err(format!(
                    "field `eos_token_id` is not an id or list of ids: {v}"
                ))
            })?,
        };
        let torch_dtype = obj
            .get("dtype")
            .or_else(|| obj.get("torch_dtype"))
            .and_then(Value::as_str)
            .map(str::to_string);
        if let Some(act) = obj.get("hidden_act").and_then(Value::as_str)
            && act != "silu"
        {
            return Err(cfg_err(format!(
                "unsupported `hidden_act` {act:?} (only silu)"
            )));
        }
        Ok(ModelConfig {
            arch,
            vocab_size,
            hidden_size,
            intermediate_size,
            num_hidden_layers,
            num_attention_heads,
            num_key_value_heads,
            head_dim,
            rms_norm_eps: opt_f64("rms_norm_eps")?.unwrap_or(1e-6),
            rope_theta,
            rope_scaling,
            max_position_embeddings: opt_usize("max_position_embeddings")?.unwrap_or(2048),
            tie_word_embeddings: opt_bool("tie_word_embeddings")?.unwrap_or(false),
            attention_bias: opt_bool("attention_bias")?.unwrap_or(false),
            mlp_bias: opt_bool("mlp_bias")?.unwrap_or(false),
            bos_token_id: opt_usize("bos_token_id")?.map(|v| v as u32),
            eos_token_ids,
            torch_dtype,
        })
    }

    /// The HF `config.json` value (transformers 4.x layout, which 5.x also reads).
    pub fn to_hf_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("architectures".into(), json!([self.arch.hf_class()]));
        m.insert("model_type".into(), json!(self.arch.model_type()));
        m.insert("vocab_size".into(), json!(self.vocab_size));
        m.insert("hidden_size".into(), json!(self.hidden_size));
        m.insert("intermediate_size".into(), json!(self.intermediate_size));
        m.insert("num_hidden_layers".into(), json!(self.num_hidden_layers));
        m.insert(
            "num_attention_heads".into(),
            json!(self.num_attention_heads),
        );
        m.insert(
            "num_key_value_heads".into(),
            json!(self.num_key_value_heads),
        );
        m.insert("head_dim".into(), json!(self.head_dim));
        m.insert("hidden_act".into(), json!("silu"));
        m.insert("rms_norm_eps".into(), json!(self.rms_norm_eps));
        m.insert("rope_theta".into(), json!(self.rope_theta));
        let scaling = match &self.rope_scaling {
            None => Value::Null,
            Some(RopeScaling::Llama3 {
                factor,
                low_freq_factor,
                high_freq_factor,
                original_max_position_embeddings,
            }) => json!({
                "rope_type": "llama3",
                "factor": factor,
                "low_freq_factor": low_freq_factor,
                "high_freq_factor": high_freq_factor,
                "original_max_position_embeddings": original_max_position_embeddings,
            }),
            Some(RopeScaling::Linear { factor }) => {
                json!({"rope_type": "linear", "factor": factor})
            }
        };
        m.insert("rope_scaling".into(), scaling);
        m.insert(
            "max_position_embeddings".into(),
            json!(self.max_position_embeddings),
        );
        m.insert(
            "tie_word_embeddings".into(),
            json!(self.tie_word_embeddings),
        );
        if self.arch == Arch::Llama {
            m.insert("attention_bias".into(), json!(self.attention_bias));
            m.insert("mlp_bias".into(), json!(self.mlp_bias));
        }
        if self.arch == Arch::Qwen3 {
            m.insert("attention_bias".into(), json!(false));
        }
        if self.arch != Arch::Llama {
            m.insert("use_sliding_window".into(), json!(false));
        }
        m.insert("attention_dropout".into(), json!(0.0));
        m.insert("initializer_range".into(), json!(0.02));
        m.insert("use_cache".into(), json!(true));
        if let Some(b) = self.bos_token_id {
            m.insert("bos_token_id".into(), json!(b));
        }
        match self.eos_token_ids.as_slice() {
            [] => {}
            [one] => {
                m.insert("eos_token_id".into(), json!(one));
            }
            many => {
                m.insert("eos_token_id".into(), json!(many));
            }
        }
        m.insert(
            "torch_dtype".into(),
            json!(self.torch_dtype.clone().unwrap_or_else(|| "float32".into())),
        );
        Value::Object(m)
    }

    /// Number of parameters (tied embeddings counted once).
    pub fn num_parameters(&self) -> usize {
        let d = self.hidden_size;
        let q = self.num_attention_heads * self.head_dim;
        let kv = self.num_key_value_heads * self.head_dim;
        let mut layer = d * q + 2 * d * kv + q * d + 3 * d * self.intermediate_size + 2 * d;
        if self.qkv_bias() {
            layer += q + 2 * kv;
        }
        if self.qk_norm() {
            layer += 2 * self.head_dim;
        }
        let emb = self.vocab_size * d;
        emb * if self.tie_word_embeddings { 1 } else { 2 } + self.num_hidden_layers * layer + d
    }
}

fn as_usize(v: &Value) -> Option<usize> {
    v.as_u64().map(|x| x as usize).or_else(|| {
        v.as_f64()
            .filter(|f| f.fract() == 0.0 && *f >= 0.0)
            .map(|f| f as usize)
    })
}

fn ids_from_value(v: &Value) -> Option<Vec<u32>> {
    match v {
        Value::Array(items) => items
            .iter()
            .map(|x| as_usize(x).map(|i| i as u32))
            .collect(),
        other => as_usize(other).map(|i| vec![i as u32]),
    }
}

/// Parses `rope_scaling` / `rope_parameters`; `None` for the default (unscaled) RoPE.
fn parse_rope_scaling(v: &Value) -> std::result::Result<Option<RopeScaling>, String> {
    let kind = v
        .get("rope_type")
        .or_else(|| v.get("type"))
        .and_then(Value::as_str)
        .unwrap_or("default");
    let num = |name: &str| -> std::result::Result<f64, String> {
        v.get(name)
            .and_then(Value::as_f64)
            .ok_or_else(|| format!("rope scaling `{kind}` lacks numeric field `{name}`"))
    };
    match kind {
        "default" => Ok(None),
        "linear" => Ok(Some(RopeScaling::Linear {
            factor: num("factor")?,
        })),
        "llama3" => Ok(Some(RopeScaling::Llama3 {
            factor: num("factor")?,
            low_freq_factor: num("low_freq_factor")?,
            high_freq_factor: num("high_freq_factor")?,
            original_max_position_embeddings: num("original_max_position_embeddings")? as usize,
        })),
        other => Err(format!(
            "unsupported rope scaling type {other:?} (supported: default, linear, llama3)"
        )),
    }
}

/// Per-frequency inverse frequencies of RoPE for `config` (length `head_dim / 2`).
pub fn rope_inv_freq(config: &ModelConfig) -> Vec<f64> {
    let half = config.head_dim / 2;
    let base: Vec<f64> = (0..half)
        .map(|i| {
            1.0 / config
                .rope_theta
                .powf((2 * i) as f64 / config.head_dim as f64)
        })
        .collect();
    match &config.rope_scaling {
        None => base,
        Some(RopeScaling::Linear { factor }) => base.iter().map(|f| f / factor).collect(),
        Some(RopeScaling::Llama3 {
            factor,
            low_freq_factor,
            high_freq_factor,
            original_max_position_embeddings,
        }) => {
            let old = *original_max_position_embeddings as f64;
            let low_wavelen = old / low_freq_factor;
            let high_wavelen = old / high_freq_factor;
            base.iter()
                .map(|&f| {
                    let wavelen = 2.0 * std::f64::consts::PI / f;
                    if wavelen < high_wavelen {
                        f
                    } else if wavelen > low_wavelen {
                        f / factor
                    } else {
                        let smooth = (old / wavelen - low_freq_factor)
                            / (high_freq_factor - low_freq_factor);
                        (1.0 - smooth) * f / factor + smooth * f
                    }
                })
                .collect()
        }
    }
}
