//! Loading a model: a Hugging Face directory (config.json, safetensors — single or sharded —,
//! tokenizer.json, tokenizer_config.json, chat_template.jinja, generation_config.json), a
//! `.gguf` file, or a fetched model's name, into a [`LoadedModel`].

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use serde_json::Value;

use crate::config::ModelConfig;
use crate::device::LoadOptions;
use crate::error::{ModelError, Result};
use crate::io::chat::ChatTemplate;
use crate::io::loaded::LoadedModel;
use crate::io::tokenizer::Tokenizer;
use crate::model::Model;

/// Loads `spec`: an HF directory, a `.gguf` file, or a fetched model's name.
pub fn load_model(spec: &str, opts: &LoadOptions) -> Result<LoadedModel> {
    let path = crate::io::registry::resolve_model_path(spec)?;
    if path.is_file()
        && path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("gguf"))
    {
        return crate::io::gguf::load_gguf(&path, opts);
    }
    if !path.is_dir() {
        return Err(ModelError::Config {
            path,
            message: "not a model directory (with config.json) or a .gguf file".into(),
        });
    }
    load_hf_dir(&path, opts)
}

/// Loads a Hugging Face model directory.
pub fn load_hf_dir(dir: &Path, opts: &LoadOptions) -> Result<LoadedModel> {
    let config_path = dir.join("config.json");
    if !config_path.is_file() {
        return Err(ModelError::Config {
            path: config_path,
            message: "config.json not found".into(),
        });
    }
    let config = ModelConfig::from_file(&config_path)?;
    let (tensors, weights_name) = read_weights(dir)?;
    let model = Model::from_tensors_named(config, tensors, opts, &weights_name)?;
    let tokenizer = Tokenizer::from_file(&dir.join("tokenizer.json"))?;
    let specials = read_tokenizer_config(dir)?;
    let gen_eos = read_generation_eos(dir)?;

    let mut eos: BTreeSet<u32> = gen_eos.eos.iter().copied().collect();
    if eos.is_empty() {
        eos.extend(model.config().eos_token_ids.iter().copied());
    }
    if let Some(id) = specials
        .eos
        .as_deref()
        .and_then(|t| tokenizer.token_to_id(t))
    {
        eos.insert(id);
    }
    let eos_token_ids: Vec<u32> = eos.into_iter().collect();
    let pad_token_id = specials
        .pad
        .as_deref()
        .and_then(|t| tokenizer.token_to_id(t))
        .or(gen_eos.pad)
        .or_else(|| eos_token_ids.first().copied())
        .unwrap_or(0);
    let chat_template = match specials.chat_template {
        Some(src) => Some(ChatTemplate::new(
            &src,
            specials.bos.as_deref().unwrap_or(""),
            specials.eos.as_deref().unwrap_or(""),
        )?),
        None => None,
    };
    let loaded = LoadedModel {
        model,
        tokenizer,
        chat_template,
        eos_token_ids,
        pad_token_id,
        source: dir.display().to_string(),
    };
    loaded.check_vocabulary(&dir.join("tokenizer.json"))?;
    Ok(loaded)
}

/// Reads `model.safetensors` or the shards listed in `model.safetensors.index.json`.
/// Returns the tensors and a name for error messages.
pub fn read_weights(dir: &Path) -> Result<(HashMap<String, Tensor>, String)> {
    let single = dir.join("model.safetensors");
    if single.is_file() {
        return Ok((read_safetensors(&single)?, single.display().to_string()));
    }
    let index = dir.join("model.safetensors.index.json");
    if !index.is_file() {
        return Err(ModelError::CorruptWeights {
            path: single,
            message: "neither model.safetensors nor model.safetensors.index.json exists".into(),
        });
    }
    let text = std::fs::read_to_string(&index).map_err(|e| ModelError::io(&index, e))?;
    let value: Value = serde_json::from_str(&text).map_err(|e| ModelError::Config {
        path: index.clone(),
        message: format!("invalid JSON: {e}"),
    })?;
    let map = value
        .get("weight_map")
        .and_then(Value::as_object)
        .ok_or_else(|| ModelError::Config {
            path: index.clone(),
            message: "missing `weight_map` object".into(),
        })?;
    let files: BTreeSet<&str> = map.values().filter_map(Value::as_str).collect();
    let mut all = HashMap::new();
    for f in files {
        all.extend(read_safetensors(&dir.join(f))?);
    }
    Ok((all, index.display().to_string()))
}

/// Reads every tensor of a safetensors file (memory-mapped) into CPU tensors.
pub fn read_safetensors(path: &Path) -> Result<HashMap<String, Tensor>> {
    let file = std::fs::File::open(path).map_err(|e| ModelError::io(path, e))?;
    // SAFETY: the map is read-only and dropped before returning; the file is not modified by us.
    let mmap = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| ModelError::io(path, e))?;
    let corrupt = |message: String| ModelError::CorruptWeights {
        path: path.into(),
        message,
    };
    let st = safetensors::SafeTensors::deserialize(&mmap).map_err(|e| corrupt(e.to_string()))?;
    let mut out = HashMap::new();
    for (name, view) in st.tensors() {
        let dtype = match view.dtype() {
            safetensors::Dtype::F32 => DType::F32,
            safetensors::Dtype::F16 => DType::F16,
            safetensors::Dtype::BF16 => DType::BF16,
            safetensors::Dtype::F64 => DType::F64,
            other => {
                return Err(corrupt(format!(
                    "tensor {name} has unsupported dtype {other:?}"
                )));
            }
        };
        let t = Tensor::from_raw_buffer(view.data(), dtype, view.shape(), &Device::Cpu)
            .map_err(|e| corrupt(format!("tensor {name}: {e}")))?;
        out.insert(name, t);
    }
    Ok(out)
}

/// Special tokens and chat template from tokenizer_config.json / chat_template.jinja.
#[derive(Debug, Default)]
struct SpecialTokens {
    bos: Option<String>,
    eos: Option<String>,
    pad: Option<String>,
    chat_template: Option<String>,
}

fn token_text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("content").and_then(Value::as_str).map(str::to_string),
        _ => None,
    }
}

fn read_tokenizer_config(dir: &Path) -> Result<SpecialTokens> {
    let path = dir.join("tokenizer_config.json");
    let mut out = SpecialTokens::default();
    if path.is_file() {
        let text = std::fs::read_to_string(&path).map_err(|e| ModelError::io(&path, e))?;
        let v: Value = serde_json::from_str(&text).map_err(|e| ModelError::Config {
            path: path.clone(),
            message: format!("invalid JSON: {e}"),
        })?;
        out.bos = token_text(v.get("bos_token"));
        out.eos = token_text(v.get("eos_token"));
        out.pad = token_text(v.get("pad_token"));
        out.chat_template = match v.get("chat_template") {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Array(list)) => {
                let named = |n: &str| {
                    list.iter()
                        .find(|e| e.get("name").and_then(Value::as_str) == Some(n))
                        .and_then(|e| e.get("template"))
                        .and_then(Value::as_str)
                };
                named("default")
                    .or_else(|| {
                        list.first()
                            .and_then(|e| e.get("template"))
                            .and_then(Value::as_str)
                    })
                    .map(str::to_string)
            }
            _ => None,
        };
    }
    let jinja = dir.join("chat_template.jinja");
    if jinja.is_file() {
        let text = std::fs::read_to_string(&jinja).map_err(|e| ModelError::io(&jinja, e))?;
        out.chat_template = Some(text);
    }
    Ok(out)
}

#[derive(Debug, Default)]
struct GenerationDefaults {
    eos: Vec<u32>,
    pad: Option<u32>,
}

fn read_generation_eos(dir: &Path) -> Result<GenerationDefaults> {
    let path = dir.join("generation_config.json");
    if !path.is_file() {
        return Ok(GenerationDefaults::default());
    }
    let text = std::fs::read_to_string(&path).map_err(|e| ModelError::io(&path, e))?;
    let v: Value = serde_json::from_str(&text).map_err(|e| ModelError::Config {
        path: path.clone(),
        message: format!("invalid JSON: {e}"),
    })?;
    let eos = match v.get("eos_token_id") {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_u64)
            .map(|x| x as u32)
            .collect(),
        Some(x) => x.as_u64().map(|x| vec![x as u32]).unwrap_or_default(),
        None => vec![],
    };
    let pad = v
        .get("pad_token_id")
        .and_then(Value::as_u64)
        .map(|x| x as u32);
    Ok(GenerationDefaults { eos, pad })
}
