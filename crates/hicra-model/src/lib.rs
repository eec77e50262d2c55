//! Llama/Qwen-family transformer on candle: our own differentiable model code (training path
//! with chunked log-probs and backward), fast batched generation with a KV cache, loading from
//! Hugging Face directories and GGUF files, tokenizer and chat templates, tiny test models.

#[cfg(target_arch = "x86_64")]
pub mod amx;
pub mod batch;
#[cfg(target_arch = "x86_64")]
pub mod bf16_matmul;
pub mod chat;
pub mod config;
pub mod decode_attention;
pub mod decode_matmul;
pub mod decode_weights;
pub mod device;
pub mod encoder;
pub mod error;
pub mod export;
pub mod fused;
pub mod generate;
pub mod gguf;
pub mod hf_files;
pub(crate) mod layer_backward;
pub mod loader;
pub mod model;
pub mod ops;
pub mod packed;
pub mod registry;
pub mod sampling;
pub mod score;
pub mod skinny;
pub mod tiny;
pub(crate) mod token_picks;
pub mod tokenizer;
pub mod vexp;
pub mod weights;

#[cfg(test)]
mod test_util;

pub use batch::{Padding, TokenBatch};
pub use chat::{ChatMessage, ChatTemplate};
pub use config::{Arch, ModelConfig, RopeScaling};
pub use device::{DTypeSpec, DeviceSpec};
pub use error::{ModelError, Result};
pub use generate::{FinishReason, Generation, SamplingParams, StopCheck};
pub use loader::{LoadOptions, LoadedModel, load_hf_dir, load_model};
pub use model::Model;
pub use packed::DecodePrecision;
pub use score::{BackwardOutput, ScoreOptions, TokenChunk, TokenScores};
pub use tokenizer::Tokenizer;
