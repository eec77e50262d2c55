//! Writing the files of a Hugging Face model directory (weights, config, tokenizer, generation
//! config), each atomically (temporary file + rename).

use std::collections::HashMap;
use std::path::Path;

use candle_core::Tensor;
use serde_json::{Value, json};

use crate::config::ModelConfig;
use crate::error::{ModelError, Result};
use crate::io::tokenizer::Tokenizer;

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp-write");
    std::fs::write(&tmp, bytes).map_err(|e| ModelError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| ModelError::io(path, e))
}

/// Writes a JSON value, pretty-printed.
pub fn write_json(path: &Path, value: &Value) -> Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(|e| ModelError::Other(e.to_string()))?;
    write_atomic(path, text.as_bytes())
}

/// Writes tensors (any dtype candle can save) as a safetensors file.
pub fn write_safetensors(path: &Path, tensors: &HashMap<String, Tensor>) -> Result<()> {
    let tmp = path.with_extension("tmp-write");
    candle_core::safetensors::save(tensors, &tmp).map_err(|e| ModelError::CorruptWeights {
        path: path.into(),
        message: format!("cannot write: {e}"),
    })?;
    std::fs::rename(&tmp, path).map_err(|e| ModelError::io(path, e))
}

/// Writes `config.json`.
pub fn write_config(dir: &Path, config: &ModelConfig) -> Result<()> {
    write_json(&dir.join("config.json"), &config.to_hf_json())
}

/// Writes `tokenizer.json` and `tokenizer_config.json` (special tokens, optional chat template).
pub fn write_tokenizer_files(
    dir: &Path,
    tokenizer: &Tokenizer,
    bos: Option<&str>,
    eos: Option<&str>,
    pad: Option<&str>,
    chat_template: Option<&str>,
    model_max_length: usize,
) -> Result<()> {
    write_atomic(&dir.join("tokenizer.json"), tokenizer.to_json()?.as_bytes())?;
    let mut cfg = json!({
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": model_max_length,
        "clean_up_tokenization_spaces": false,
        "add_bos_token": false,
        "add_prefix_space": false,
        "bos_token": bos,
        "eos_token": eos,
        "pad_token": pad,
    });
    if let Some(t) = chat_template {
        cfg["chat_template"] = json!(t);
    }
    write_json(&dir.join("tokenizer_config.json"), &cfg)
}

/// Writes `generation_config.json` with the EOS ids.
pub fn write_generation_config(
    dir: &Path,
    bos: Option<u32>,
    eos_ids: &[u32],
    pad: Option<u32>,
) -> Result<()> {
    let mut v = json!({ "_from_model_config": false, "eos_token_id": eos_ids });
    if let Some(b) = bos {
        v["bos_token_id"] = json!(b);
    }
    if let Some(p) = pad {
        v["pad_token_id"] = json!(p);
    }
    write_json(&dir.join("generation_config.json"), &v)
}
