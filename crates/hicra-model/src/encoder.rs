//! Sentence encoder for Strategic-Gram mining: all-MiniLM-L6-v2 (a 6-layer BERT) on candle,
//! mean pooling over the attention mask and L2 normalisation, as sentence-transformers does.
//!
//! The model directory (from `hicra models fetch all-minilm-l6-v2`) holds `config.json`,
//! `model.safetensors` and `tokenizer.json`.

use std::path::{Path, PathBuf};

use candle_core::{D, DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::{PaddingParams, PaddingStrategy, TruncationParams};

use crate::error::{ModelError, Result};

/// Longest input in word pieces (n-grams are far shorter; longer text is truncated).
pub const MAX_SEQUENCE_TOKENS: usize = 128;

/// A BERT sentence encoder (all-MiniLM-L6-v2 layout).
pub struct BertSentenceEncoder {
    model: BertModel,
    tokenizer: tokenizers::Tokenizer,
    hidden_size: usize,
    device: Device,
    dir: PathBuf,
}

fn file_error(path: &Path, message: impl std::fmt::Display) -> ModelError {
    ModelError::Config {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

impl BertSentenceEncoder {
    /// Loads the encoder from a model directory on the CPU.
    pub fn load(dir: &Path) -> Result<Self> {
        Self::load_on(dir, &Device::Cpu)
    }

    /// Loads the encoder from a model directory on `device`.
    pub fn load_on(dir: &Path, device: &Device) -> Result<Self> {
        let config_path = dir.join("config.json");
        let weights_path = dir.join("model.safetensors");
        let tokenizer_path = dir.join("tokenizer.json");
        for path in [&config_path, &weights_path, &tokenizer_path] {
            if !path.is_file() {
                return Err(file_error(
                    path,
                    "missing; a sentence-encoder directory needs config.json, model.safetensors and tokenizer.json (run `hicra models fetch all-minilm-l6-v2`)",
                ));
            }
        }
        let config_text = std::fs::read_to_string(&config_path).map_err(|e| ModelError::Io {
            path: config_path.clone(),
            source: e,
        })?;
        let config: Config =
            serde_json::from_str(&config_text).map_err(|e| file_error(&config_path, e))?;
        let hidden_size: usize = serde_json::from_str::<serde_json::Value>(&config_text)
            .ok()
            .and_then(|v| v.get("hidden_size")?.as_u64())
            .ok_or_else(|| file_error(&config_path, "no hidden_size"))?
            as usize;
        // SAFETY: the weights file is memory-mapped read-only; we do not modify it.
        let vb =
            unsafe { VarBuilder::from_mmaped_safetensors(&[&weights_path], DType::F32, device) }
                .map_err(|e| ModelError::CorruptWeights {
                    path: weights_path.clone(),
                    message: e.to_string(),
                })?;
        let model = BertModel::load(vb, &config).map_err(|e| ModelError::CorruptWeights {
            path: weights_path.clone(),
            message: e.to_string(),
        })?;
        let mut tokenizer = tokenizers::Tokenizer::from_file(&tokenizer_path).map_err(|e| {
            ModelError::Tokenizer {
                path: tokenizer_path.clone(),
                message: e.to_string(),
            }
        })?;
        let pad_id = tokenizer.token_to_id("[PAD]").unwrap_or(0);
        tokenizer.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            pad_id,
            pad_token: "[PAD]".into(),
            ..PaddingParams::default()
        }));
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_SEQUENCE_TOKENS,
                ..TruncationParams::default()
            }))
            .map_err(|e| ModelError::Tokenizer {
                path: tokenizer_path.clone(),
                message: e.to_string(),
            })?;
        Ok(Self {
            model,
            tokenizer,
            hidden_size,
            device: device.clone(),
            dir: dir.to_path_buf(),
        })
    }

    /// Embedding size (384 for all-MiniLM-L6-v2).
    pub fn dim(&self) -> usize {
        self.hidden_size
    }

    /// Embeds one batch of texts: one L2-normalised mean-pooled vector per text.
    pub fn embed_batch(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| ModelError::Tokenizer {
                path: self.dir.join("tokenizer.json"),
                message: e.to_string(),
            })?;
        let rows = encodings.len();
        let len = encodings.iter().map(|e| e.len()).max().unwrap_or(0);
        let mut ids = Vec::with_capacity(rows * len);
        let mut mask = Vec::with_capacity(rows * len);
        for e in &encodings {
            ids.extend_from_slice(e.get_ids());
            mask.extend_from_slice(e.get_attention_mask());
        }
        let input_ids = Tensor::from_vec(ids, (rows, len), &self.device)?;
        let attention = Tensor::from_vec(mask, (rows, len), &self.device)?;
        let token_types = input_ids.zeros_like()?;
        let hidden = self
            .model
            .forward(&input_ids, &token_types, Some(&attention))?;
        // Mean over real tokens: sum(h · mask) / sum(mask).
        let mask_f = attention.to_dtype(DType::F32)?.unsqueeze(2)?;
        let summed = hidden.broadcast_mul(&mask_f)?.sum(1)?;
        let counts = mask_f.sum(1)?.clamp(1e-9f32, f32::MAX)?;
        let mean = summed.broadcast_div(&counts)?;
        let norm = mean
            .sqr()?
            .sum_keepdim(D::Minus1)?
            .sqrt()?
            .clamp(1e-12f32, f32::MAX)?;
        Ok(mean.broadcast_div(&norm)?.to_vec2::<f32>()?)
    }
}
