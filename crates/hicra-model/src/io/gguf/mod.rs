//! GGUF v3 model files (llama architecture) as a model source: reads the file with candle's
//! `gguf_file` reader, dequantises every tensor to f32, undoes llama.cpp's Q/K row
//! permutation so the weights are in Hugging Face layout, maps tensor names to HF names,
//! turns the hyper-parameter keys into an HF `config.json` value, and rebuilds the tokenizer
//! and chat template from the `tokenizer.*` metadata.
//!
//! Submodules: [`names`] (tensor names and the Q/K permutation), [`metadata`] (typed access to
//! the keys), [`hparams`] (keys → config),
//! [`tokenizer`] (`tokenizer.ggml.*` → `tokenizers::Tokenizer`), [`writer`] (HF → GGUF).

pub mod error;
pub mod hparams;
pub mod metadata;
pub mod names;
pub mod tokenizer;
pub mod writer;

pub use error::GgufError;

use candle_core::quantized::gguf_file;
use candle_core::{DType, Device, Tensor};
use std::collections::HashMap;
use std::io::{BufReader, Seek};
use std::path::Path;

use crate::config::ModelConfig;
use crate::device::LoadOptions;
use crate::error::ModelError;
use crate::io::chat::ChatTemplate;
use crate::io::loaded::LoadedModel;
use crate::io::tokenizer::Tokenizer;
use crate::model::Model;

/// Everything a GGUF file provides, in Hugging Face terms.
pub struct GgufContents {
    /// An HF `config.json` value (LlamaForCausalLM) built from the hyper-parameter keys.
    pub config_json: serde_json::Value,
    /// The weights under HF names, dequantised (f32 unless another dtype was asked), Q/K in HF layout.
    pub tensors: HashMap<String, Tensor>,
    /// The tokenizer rebuilt from `tokenizer.ggml.*`.
    pub tokenizer: tokenizers::Tokenizer,
    /// `tokenizer.chat_template`, if present.
    pub chat_template: Option<String>,
    /// Text of the BOS token, if the file names one.
    pub bos_token: Option<String>,
    /// Text of the EOS token, if the file names one.
    pub eos_token: Option<String>,
    /// EOS token ids (`tokenizer.ggml.eos_token_id`, plus `eot`/`eom` ids when present).
    pub eos_token_ids: Vec<u32>,
    /// `tokenizer.ggml.padding_token_id`, if present.
    pub pad_token_id: Option<u32>,
}

/// Reads the metadata and tensor directory of a GGUF file, with named errors.
pub fn read_header(path: &Path) -> Result<(gguf_file::Content, std::fs::File), GgufError> {
    let mut file = std::fs::File::open(path).map_err(|error| GgufError::Io {
        path: path.to_path_buf(),
        error,
    })?;
    let file_len = file
        .metadata()
        .map_err(|error| GgufError::Io {
            path: path.to_path_buf(),
            error,
        })?
        .len();
    let content = {
        let mut reader = BufReader::new(&mut file);
        gguf_file::Content::read(&mut reader).map_err(|e| classify_read_error(path, e))?
    };
    check_tensor_extents(path, &content, file_len)?;
    file.rewind().map_err(|error| GgufError::Io {
        path: path.to_path_buf(),
        error,
    })?;
    Ok((content, file))
}

/// Turns a candle reader error into a named [`GgufError`].
fn classify_read_error(path: &Path, err: candle_core::Error) -> GgufError {
    let message = err.to_string();
    if let Some(rest) = message.split("unknown dtype for tensor ").nth(1) {
        let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
        if let Ok(type_id) = digits.parse() {
            return GgufError::UnknownQuantType {
                path: path.to_path_buf(),
                type_id,
            };
        }
    }
    let eof = matches!(&err, candle_core::Error::Io(e) if e.kind() == std::io::ErrorKind::UnexpectedEof)
        || message.contains("failed to fill whole buffer")
        || message.contains("remaining");
    if eof {
        GgufError::Truncated {
            path: path.to_path_buf(),
            message: format!("the header is cut off ({message})"),
        }
    } else {
        GgufError::Corrupt {
            path: path.to_path_buf(),
            message,
        }
    }
}

/// Checks that every tensor's data lies inside the file.
fn check_tensor_extents(
    path: &Path,
    content: &gguf_file::Content,
    file_len: u64,
) -> Result<(), GgufError> {
    for (name, info) in &content.tensor_infos {
        let elems = info.shape.elem_count();
        let block = info.ggml_dtype.block_size();
        if !elems.is_multiple_of(block) {
            return Err(GgufError::Corrupt {
                path: path.to_path_buf(),
                message: format!(
                    "tensor {name} has {elems} elements, not a multiple of its block size {block}"
                ),
            });
        }
        let bytes = (elems / block) as u64 * info.ggml_dtype.type_size() as u64;
        let end = content
            .tensor_data_offset
            .saturating_add(info.offset)
            .saturating_add(bytes);
        if end > file_len {
            return Err(GgufError::Truncated {
                path: path.to_path_buf(),
                message: format!(
                    "tensor {name} ends at byte {end} but the file has {file_len} bytes"
                ),
            });
        }
    }
    Ok(())
}

/// Reads a GGUF file into HF-layout tensors (on `device`, as `dtype`), an HF config, the
/// tokenizer and the chat template.
pub fn read_gguf(path: &Path, device: &Device, dtype: DType) -> Result<GgufContents, GgufError> {
    let (content, file) = read_header(path)?;
    let meta = metadata::Metadata::new(path, &content.metadata);
    let arch = meta.string("general.architecture")?;
    if arch != "llama" {
        return Err(GgufError::UnsupportedArchitecture {
            path: path.to_path_buf(),
            arch: arch.to_string(),
        });
    }
    let hp = hparams::LlamaHyperParams::from_metadata(&meta, &content)?;
    let tok = tokenizer::build_tokenizer(&meta)?;
    let tied = !content.tensor_infos.contains_key("output.weight");
    let config_json = hp.to_hf_config(tied, &tok);

    let mut reader = BufReader::new(file);
    let mut tensors = HashMap::with_capacity(content.tensor_infos.len());
    let mut names_sorted: Vec<&String> = content.tensor_infos.keys().collect();
    names_sorted.sort();
    for name in names_sorted {
        let Some(hf_name) = names::hf_tensor_name(name) else {
            if names::is_ignorable(name) {
                continue;
            }
            return Err(GgufError::UnexpectedTensor {
                path: path.to_path_buf(),
                name: name.clone(),
            });
        };
        let tensor_err = |error| GgufError::Tensor {
            path: path.to_path_buf(),
            name: name.clone(),
            error: Box::new(error),
        };
        let qtensor = content
            .tensor(&mut reader, name, &Device::Cpu)
            .map_err(|e| match classify_read_error(path, e) {
                GgufError::Corrupt { message, .. } => GgufError::Corrupt {
                    path: path.to_path_buf(),
                    message: format!("tensor {name}: {message}"),
                },
                other => other,
            })?;
        let mut tensor = qtensor.dequantize(&Device::Cpu).map_err(tensor_err)?;
        tensor = match names::qk_heads(name, &hp) {
            Some(heads) => names::unpermute_qk(&tensor, heads).map_err(tensor_err)?,
            None => tensor,
        };
        if tensor.dims().contains(&0) {
            return Err(GgufError::Corrupt {
                path: path.to_path_buf(),
                message: format!("tensor {name} has an empty dimension"),
            });
        }
        let tensor = tensor
            .to_dtype(dtype)
            .and_then(|t| t.to_device(device))
            .map_err(tensor_err)?;
        tensors.insert(hf_name, tensor);
    }
    Ok(GgufContents {
        config_json,
        tensors,
        chat_template: meta
            .opt_string("tokenizer.chat_template")
            .map(str::to_string),
        bos_token: tok.bos_token.clone(),
        eos_token: tok.eos_token.clone(),
        eos_token_ids: tok.eos_token_ids.clone(),
        pad_token_id: tok.pad_token_id,
        tokenizer: tok.tokenizer,
    })
}

/// Loads a GGUF file as a trainable `LoadedModel` (f32 unless `opts` asks otherwise).
pub(crate) fn load_gguf(path: &Path, opts: &LoadOptions) -> Result<LoadedModel, ModelError> {
    let contents = read_gguf(path, &Device::Cpu, DType::F32)?;
    let config = ModelConfig::from_json(&contents.config_json, path)?;
    let model =
        Model::from_tensors_named(config, contents.tensors, opts, &path.display().to_string())?;
    let tokenizer = Tokenizer::from_inner(contents.tokenizer);
    let chat_template = match &contents.chat_template {
        Some(source) => Some(ChatTemplate::new(
            source,
            contents.bos_token.as_deref().unwrap_or(""),
            contents.eos_token.as_deref().unwrap_or(""),
        )?),
        None => None,
    };
    let pad_token_id = contents
        .pad_token_id
        .or_else(|| contents.eos_token_ids.first().copied())
        .unwrap_or(0);
    let loaded = LoadedModel {
        model,
        tokenizer,
        chat_template,
        eos_token_ids: contents.eos_token_ids,
        pad_token_id,
        source: path.display().to_string(),
    };
    loaded.check_vocabulary(path)?;
    Ok(loaded)
}
