//! Saving a model with its tokenizer (a `LoadedModel`) as a Hugging Face directory that
//! transformers loads unchanged (`LlamaForCausalLM` / `Qwen2ForCausalLM` / `Qwen3ForCausalLM`)
//! and hicra loads back with identical logits: `config.json`, `model.safetensors` (tensors in the model's dtype,
//! `{"format": "pt"}` metadata, a tied `lm_head` left out as transformers does),
//! `tokenizer.json`, `tokenizer_config.json` (special tokens, `added_tokens_decoder`, chat
//! template), `special_tokens_map.json` and `generation_config.json`.
//!
//! The directory is written into a temporary sibling and swapped into place, so a reader
//! never sees a half-written export. A previous export at the target is replaced; a directory
//! holding other files is refused ([`save_hf`]) or written among them ([`save_hf_among`]).

use crate::error::{ModelError, Result};
use crate::io::atomic;
use crate::io::chat::ChatTemplate;
use crate::io::tokenizer::Tokenizer;
use crate::model::Model;
use candle_core::{DType, Tensor};
use serde_json::{Map, Value, json};
use std::borrow::Cow;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The transformers version the written files claim to come from (the 4.x layout).
const TRANSFORMERS_VERSION: &str = "4.46.0";

/// A tensor's raw little-endian bytes in the form the `safetensors` writer takes.
struct RawTensor {
    dtype: safetensors::Dtype,
    shape: Vec<usize>,
    data: Vec<u8>,
}

impl safetensors::View for &RawTensor {
    fn dtype(&self) -> safetensors::Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.data)
    }
    fn data_len(&self) -> usize {
        self.data.len()
    }
}

fn raw_tensor(tensor: &Tensor) -> Result<RawTensor> {
    let flat = tensor.flatten_all()?;
    let (dtype, data) = match tensor.dtype() {
        DType::F32 => (
            safetensors::Dtype::F32,
            flat.to_vec1::<f32>()?
                .iter()
                .flat_map(|x| x.to_le_bytes())
                .collect(),
        ),
        DType::BF16 => (
            safetensors::Dtype::BF16,
            flat.to_vec1::<half::bf16>()?
                .iter()
                .flat_map(|x| x.to_le_bytes())
                .collect(),
        ),
        DType::F16 => (
            safetensors::Dtype::F16,
            flat.to_vec1::<half::f16>()?
                .iter()
                .flat_map(|x| x.to_le_bytes())
                .collect(),
        ),
        other => {
            return Err(ModelError::InvalidInput(format!(
                "cannot export weights of dtype {other:?} (f32, bf16 or f16 only)"
            )));
        }
    };
    Ok(RawTensor {
        dtype,
        shape: tensor.dims().to_vec(),
        data,
    })
}

fn torch_dtype_name(dtype: DType) -> &'static str {
    match dtype {
        DType::BF16 => "bfloat16",
        DType::F16 => "float16",
        _ => "float32",
    }
}

fn write_json(dir: &Path, name: &str, value: &Value) -> Result<()> {
    let path = dir.join(name);
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| ModelError::Other(format!("{}: {e}", path.display())))?;
    std::fs::write(&path, text + "\n").map_err(|e| ModelError::io(&path, e))
}

/// The token text of `id` in a `tokenizer.json` value (added tokens first, then the vocab).
fn token_text(tokenizer_json: &Value, id: u32) -> Option<String> {
    let added = tokenizer_json.get("added_tokens").and_then(Value::as_array);
    if let Some(t) = added
        .into_iter()
        .flatten()
        .find(|t| t.get("id") == Some(&json!(id)))
    {
        return t.get("content").and_then(Value::as_str).map(str::to_string);
    }
    let vocab = tokenizer_json.get("model")?.get("vocab")?.as_object()?;
    vocab
        .iter()
        .find(|(_, v)| v.as_u64() == Some(id as u64))
        .map(|(k, _)| k.clone())
}

/// `tokenizer_config.json` as transformers writes it for a fast tokenizer.
fn tokenizer_config(
    source: &HfSource,
    tokenizer_json: &Value,
    bos: Option<&str>,
    eos: Option<&str>,
    pad: Option<&str>,
    unk: Option<&str>,
) -> Value {
    let mut decoder = Map::new();
    let added = tokenizer_json.get("added_tokens").and_then(Value::as_array);
    for t in added.into_iter().flatten() {
        let Some(id) = t.get("id").and_then(Value::as_u64) else {
            continue;
        };
        let field = |k: &str, default: bool| t.get(k).and_then(Value::as_bool).unwrap_or(default);
        decoder.insert(
            id.to_string(),
            json!({
                "content": t.get("content").cloned().unwrap_or(Value::Null),
                "lstrip": field("lstrip", false),
                "normalized": field("normalized", false),
                "rstrip": field("rstrip", false),
                "single_word": field("single_word", false),
                "special": field("special", false),
            }),
        );
    }
    let mut m = Map::new();
    m.insert("add_prefix_space".into(), json!(false));
    m.insert("added_tokens_decoder".into(), Value::Object(decoder));
    m.insert("bos_token".into(), json!(bos));
    if let Some(template) = source.chat_template {
        m.insert("chat_template".into(), json!(template.source()));
    }
    m.insert("clean_up_tokenization_spaces".into(), json!(false));
    m.insert("eos_token".into(), json!(eos));
    m.insert(
        "model_max_length".into(),
        json!(source.model.config().max_position_embeddings),
    );
    m.insert("pad_token".into(), json!(pad));
    m.insert("tokenizer_class".into(), json!("PreTrainedTokenizerFast"));
    m.insert("unk_token".into(), json!(unk));
    Value::Object(m)
}

/// What a Hugging Face directory is written from: a model with its tokenizer, chat template
/// and special tokens (a `LoadedModel`'s parts).
pub struct HfSource<'a> {
    /// The transformer.
    pub model: &'a Model,
    /// Its tokenizer.
    pub tokenizer: &'a Tokenizer,
    /// Its chat template, if it has one.
    pub chat_template: Option<&'a ChatTemplate>,
    /// Tokens that end generation.
    pub eos_token_ids: &'a [u32],
    /// The padding token.
    pub pad_token_id: u32,
}

/// Writes `source` as a Hugging Face directory at `dir`, atomically: into a temporary
/// sibling, then swapped into place. `dir` must be absent, empty or a previous export (only
/// the files an export writes, [`HF_FILES`]); anything else is refused
/// ([`ModelError::OutputInUse`]) and left untouched (see [`save_hf_among`]).
pub fn save_hf(source: &HfSource, dir: &Path) -> Result<()> {
    match export_target(dir)? {
        ExportTarget::Absent | ExportTarget::Empty | ExportTarget::PreviousExport => {}
        ExportTarget::Other(names) => {
            return Err(ModelError::OutputInUse {
                path: dir.to_path_buf(),
                message: format!(
                    "holds files an export does not write ({})",
                    names.join(", ")
                ),
            });
        }
    }
    let tmp = write_to_temp(source, dir)?;
    let result = swap_into_place(&tmp, dir);
    remove_dir_quietly(&tmp);
    result
}

/// Writes `source`'s Hugging Face files into the directory `dir` that also holds other files:
/// each of [`HF_FILES`] is replaced (file by file, so not atomically as a whole) and every
/// other file is left as it is.
pub fn save_hf_among(source: &HfSource, dir: &Path) -> Result<()> {
    if let ExportTarget::Absent | ExportTarget::Empty | ExportTarget::PreviousExport =
        export_target(dir)?
    {
        return save_hf(source, dir);
    }
    let tmp = write_to_temp(source, dir)?;
    let result = HF_FILES.iter().try_for_each(|name| {
        std::fs::rename(tmp.join(name), dir.join(name))
            .map_err(|e| ModelError::io(dir.join(name), e))
    });
    remove_dir_quietly(&tmp);
    atomic::sync_dir(dir);
    result
}

/// The files an export writes.
pub const HF_FILES: [&str; 6] = [
    "config.json",
    "generation_config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
];

/// What is at an export's target path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExportTarget {
    /// Nothing.
    Absent,
    /// An empty directory.
    Empty,
    /// A directory holding only files an export writes.
    PreviousExport,
    /// A directory holding other files too (their names, sorted).
    Other(Vec<String>),
}

/// Looks at `dir` before an export: a regular file there is an error naming it.
pub fn export_target(dir: &Path) -> Result<ExportTarget> {
    let meta = match std::fs::metadata(dir) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ExportTarget::Absent),
        Err(e) => return Err(ModelError::io(dir, e)),
    };
    if !meta.is_dir() {
        return Err(ModelError::OutputInUse {
            path: dir.to_path_buf(),
            message: "is a file, not a directory".into(),
        });
    }
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| ModelError::io(dir, e))? {
        let entry = entry.map_err(|e| ModelError::io(dir, e))?;
        names.push(entry.file_name().to_string_lossy().into_owned());
    }
    let mut others: Vec<String> = names
        .iter()
        .filter(|n| !HF_FILES.contains(&n.as_str()))
        .cloned()
        .collect();
    others.sort();
    Ok(if names.is_empty() {
        ExportTarget::Empty
    } else if others.is_empty() {
        ExportTarget::PreviousExport
    } else {
        ExportTarget::Other(others)
    })
}

/// Writes the files into a fresh temporary sibling of `dir` (stale ones of earlier, killed
/// exports to `dir` are removed first) and returns it.
fn write_to_temp(source: &HfSource, dir: &Path) -> Result<PathBuf> {
    let parent = atomic::parent_of(dir);
    std::fs::create_dir_all(&parent).map_err(|e| ModelError::io(&parent, e))?;
    atomic::clean_stale_for(dir);
    let tmp = atomic::temp_path(dir);
    std::fs::create_dir(&tmp).map_err(|e| ModelError::io(&tmp, e))?;
    let written = write_hf_files(source, &tmp).and_then(|()| {
        HF_FILES.iter().try_for_each(|name| {
            let path = tmp.join(name);
            std::fs::File::open(&path)
                .and_then(|f| f.sync_all())
                .map_err(|e| ModelError::io(&path, e))
        })
    });
    match written {
        Ok(()) => Ok(tmp),
        Err(e) => {
            remove_dir_quietly(&tmp);
            Err(e)
        }
    }
}

/// Puts the complete directory `tmp` at `target`; a previous one ends up at `tmp` (for the
/// caller to remove), so a reader sees the old export or the new one, never neither.
fn swap_into_place(tmp: &Path, target: &Path) -> Result<()> {
    if !target.exists() {
        std::fs::rename(tmp, target).map_err(|e| ModelError::io(target, e))?;
    } else {
        exchange(tmp, target).map_err(|e| ModelError::io(target, e))?;
    }
    atomic::sync_dir(&atomic::parent_of(target));
    Ok(())
}

/// Exchanges two directories in one step (Linux `renameat2(RENAME_EXCHANGE)`); elsewhere, or
/// where the file system cannot, through a third name.
fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::ffi::CString;
        use std::os::unix::ffi::OsStrExt;
        let ca = CString::new(a.as_os_str().as_bytes())?;
        let cb = CString::new(b.as_os_str().as_bytes())?;
        // SAFETY: two valid NUL-terminated paths relative to the working directory.
        let rc = unsafe {
            libc::renameat2(
                libc::AT_FDCWD,
                ca.as_ptr(),
                libc::AT_FDCWD,
                cb.as_ptr(),
                libc::RENAME_EXCHANGE,
            )
        };
        if rc == 0 {
            return Ok(());
        }
    }
    let third = atomic::temp_path(b);
    std::fs::rename(b, &third)?;
    if let Err(e) = std::fs::rename(a, b) {
        let _ = std::fs::rename(&third, b);
        return Err(e);
    }
    std::fs::rename(&third, a)
}

fn remove_dir_quietly(dir: &Path) {
    if dir.exists() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

fn write_hf_files(source: &HfSource, dir: &Path) -> Result<()> {
    let model = source.model;
    let dtype = model.dtype();
    let mut config = model.config().to_hf_json();
    let tokenizer_text = source.tokenizer.to_json()?;
    let tokenizer_json: Value = serde_json::from_str(&tokenizer_text)
        .map_err(|e| ModelError::Other(format!("tokenizer JSON: {e}")))?;
    let bos_id = model.config().bos_token_id;
    let bos = bos_id.and_then(|id| token_text(&tokenizer_json, id));
    let eos = source
        .eos_token_ids
        .first()
        .and_then(|&id| token_text(&tokenizer_json, id));
    let pad = token_text(&tokenizer_json, source.pad_token_id);
    let unk = tokenizer_json
        .get("model")
        .and_then(|m| m.get("unk_token"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let eos_value = match source.eos_token_ids {
        [] => Value::Null,
        [one] => json!(one),
        many => json!(many),
    };
    if let Value::Object(m) = &mut config {
        m.insert("torch_dtype".into(), json!(torch_dtype_name(dtype)));
        m.insert("pad_token_id".into(), json!(source.pad_token_id));
        m.insert("eos_token_id".into(), eos_value.clone());
        m.insert("transformers_version".into(), json!(TRANSFORMERS_VERSION));
    }
    write_json(dir, "config.json", &config)?;

    let mut generation = Map::new();
    generation.insert("_from_model_config".into(), json!(true));
    if let Some(b) = bos_id {
        generation.insert("bos_token_id".into(), json!(b));
    }
    generation.insert("eos_token_id".into(), eos_value);
    generation.insert("pad_token_id".into(), json!(source.pad_token_id));
    generation.insert("transformers_version".into(), json!(TRANSFORMERS_VERSION));
    write_json(dir, "generation_config.json", &Value::Object(generation))?;

    let weights_path = dir.join("model.safetensors");
    let raws: Vec<(String, RawTensor)> = model
        .named_tensors()
        .into_iter()
        .filter(|(name, _)| !(model.config().tie_word_embeddings && name == "lm_head.weight"))
        .map(|(name, t)| Ok((name, raw_tensor(&t)?)))
        .collect::<Result<_>>()?;
    let metadata: HashMap<String, String> = [("format".to_string(), "pt".to_string())].into();
    safetensors::serialize_to_file(
        raws.iter().map(|(n, r)| (n.as_str(), r)),
        Some(metadata),
        &weights_path,
    )
    .map_err(|e| ModelError::Other(format!("{}: {e}", weights_path.display())))?;

    let tok_path = dir.join("tokenizer.json");
    std::fs::write(&tok_path, &tokenizer_text).map_err(|e| ModelError::io(&tok_path, e))?;
    let tok_config = tokenizer_config(
        source,
        &tokenizer_json,
        bos.as_deref(),
        eos.as_deref(),
        pad.as_deref(),
        unk.as_deref(),
    );
    write_json(dir, "tokenizer_config.json", &tok_config)?;
    let mut special = Map::new();
    for (key, value) in [
        ("bos_token", &bos),
        ("eos_token", &eos),
        ("pad_token", &pad),
        ("unk_token", &unk),
    ] {
        if let Some(v) = value {
            special.insert(key.into(), json!(v));
        }
    }
    write_json(dir, "special_tokens_map.json", &Value::Object(special))?;
    Ok(())
}
